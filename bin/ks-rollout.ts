// ks-rollout: moves a feature's OnDelete DaemonSet to a new template wave by wave, gated on pod
// health, rolling back automatically over the failure budget; `status` shows a recorded rollout.
// Parses flags, builds the API client and calls src/rollout/run.ts; exit codes live here.
import { kubeNamespaceSetting, parseCli, parseDuration, runCli, UsageError } from "../src/cli.ts";
import { createLogger, stderrSink } from "../src/log.ts";
import { KubeRest } from "../src/kube/rest.ts";
import { parseBudget } from "../src/rollout/gate.ts";
import { progressLine, type RolloutProgress, statusText } from "../src/rollout/progress.ts";
import {
  EXIT,
  exitCodeOf,
  findDaemonSet,
  type RolloutReport,
  rolloutStatus,
  runRollout,
} from "../src/rollout/run.ts";
import { DEFAULT_SPREAD_LABELS, DEFAULT_WAVES, parseWaves } from "../src/rollout/waves.ts";

const HELP = `ks-rollout — roll a feature's DaemonSet across the fleet in health-gated waves

Usage: ks-rollout <feature> --to <manifest|revision> [options]
       ks-rollout status <feature> [--output json]
       ks-rollout abort <feature>      stop an unfinished rollout (its run gone or killed first)
                                       and roll every touched switch back

The DaemonSet (updateStrategy OnDelete) gets the new template; then per wave its nodes' old pods
are deleted (at most --max-in-flight at once) and each new pod must turn Ready within
--ready-timeout. Failures (not Ready in time, restarts, OOM kills / exit 137, CrashLoopBackOff)
count against --failure-budget during the wave and its bake; over budget the previous revision's
template is restored and every touched node is moved back. Progress lives in the DaemonSet's
annotation kubesonic.io/rollout: a rerun resumes, a conflicting rollout is refused.

Options:
  --to T                 a manifest (YAML/JSON with the feature's DaemonSet) or a revision
                         (number, ControllerRevision name or hash)
  --waves LIST           cumulative wave sizes, counts or percentages (default ${DEFAULT_WAVES})
  --failure-budget B     tolerated failures: a share of the nodes rolled (2%) or a count (default 2%)
  --bake D               watch each finished wave this long before the next (default 5m)
  --max-in-flight N      pods deleted and not yet Ready at once (default 10)
  --ready-timeout D      how long a new pod may take to be Ready (default 5m)
  --restore-timeout D    how long a node moved back may take to be Ready on the previous
                         revision (default: --ready-timeout, at least 5m)
  --min-ready D          how long it must then stay Ready to count (default 0s; like a
                         DaemonSet's minReadySeconds)
  --selector LABELS      only roll nodes matching this label selector
  --canary NODES         nodes rolled first, comma-separated (repeatable)
  --spread-labels LIST   node labels to spread waves over (default ${
  DEFAULT_SPREAD_LABELS.join(",")
})
  --lease D              a run silent this long is presumed gone and may be taken over (default 30s)
  --poll-interval D      pause between observations (default 1s)
  --dry-run              print the plan (waves and their nodes), change nothing
  --output F             text (default) or json (the final report on stdout)
  --kube-namespace NS    Kubernetes namespace of the DaemonSet (env KS_KUBE_NAMESPACE, default
                         sonic; the old --namespace / KS_NAMESPACE still work)
  --daemonset NAME       the DaemonSet (default: named like the feature, else labelled
                         raw_container_name=<feature>)
  --kubeconfig P         kubeconfig (default: KUBECONFIG, then /etc/kubernetes/kubelet.conf)
  --help, --version

Exit codes: 0 rolled out (or dry run), 1 failed (API server unreachable, an unexpected error),
2 usage error or bad input (a --to manifest or revision, a kubeconfig that cannot be used; one
line naming it), 3 refused (a conflicting rollout, or another run holds it), 4 stopped and
rolled back, 5 rolled back incompletely.

Example:
  ks-rollout telemetry --to out/telemetry-v2.yaml --waves 1,1%,10%,50%,100% \\
    --failure-budget 2% --bake 5m --max-in-flight 20
  ks-rollout status telemetry
  ks-rollout abort telemetry`;

function positiveInt(text: string, what: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) {
    throw new UsageError(`${what}: "${text}" is not a positive integer`);
  }
  return Number(text);
}

/** Runs the tool with `args` (its command line without the program name) and exits. */
export async function main(args: string[]): Promise<void> {
  await runCli("ks-rollout", async () => {
    const { values, positionals } = parseCli({
      tool: "ks-rollout",
      help: HELP,
      options: {
        to: { type: "string" },
        waves: { type: "string", default: DEFAULT_WAVES },
        "failure-budget": { type: "string", default: "2%" },
        bake: { type: "string", default: "5m" },
        "max-in-flight": { type: "string", default: "10" },
        "ready-timeout": { type: "string", default: "5m" },
        "restore-timeout": { type: "string" },
        "min-ready": { type: "string", default: "0s" },
        selector: { type: "string" },
        canary: { type: "string", multiple: true, default: [] },
        "spread-labels": { type: "string", default: DEFAULT_SPREAD_LABELS.join(",") },
        lease: { type: "string", default: "30s" },
        "poll-interval": { type: "string", default: "1s" },
        "dry-run": { type: "boolean", default: false },
        output: { type: "string", default: "text" },
        "kube-namespace": { type: "string" },
        namespace: { type: "string" },
        daemonset: { type: "string" },
        kubeconfig: { type: "string" },
      },
    }, args);
    const output = values.output;
    if (output !== "text" && output !== "json") {
      throw new UsageError(`--output: "${output}" is not text or json`);
    }
    const verb = positionals[0] === "status" || positionals[0] === "abort"
      ? positionals[0]
      : undefined;
    const isStatus = verb === "status";
    const feature = verb ? positionals[1] : positionals[0];
    if (!feature) throw new UsageError("missing <feature>");
    if (positionals.length > (verb ? 2 : 1)) {
      throw new UsageError(`unexpected argument "${positionals[verb ? 2 : 1]}"`);
    }
    if (!/^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$/.test(feature)) {
      throw new UsageError(`<feature>: "${feature}" is not a feature name`);
    }
    const namespace = kubeNamespaceSetting(
      "ks-rollout",
      values["kube-namespace"],
      values.namespace,
      {
        oldEnv: true,
      },
    );
    // On a terminal the progress line is redrawn in place; log lines are printed above it.
    const tty = output === "text" && !isStatus && Deno.stderr.isTerminal();
    const encoder = new TextEncoder();
    let lastLine = "";
    const logger = createLogger("ks-rollout", feature, (line) => {
      if (tty && lastLine) Deno.stderr.writeSync(encoder.encode("\r\x1b[K"));
      stderrSink(line);
      if (tty && lastLine) Deno.stderr.writeSync(encoder.encode(lastLine));
    });

    if (isStatus) {
      const rest = await KubeRest.connect({ path: values.kubeconfig }, { logger });
      try {
        const name = await findDaemonSet(rest, namespace, feature, values.daemonset);
        const report = await rolloutStatus(rest, namespace, name, feature);
        if (output === "json") console.log(JSON.stringify(report, null, 2));
        else if (!report.progress) {
          console.log(`${feature}: no rollout recorded on ${report.daemonset}`);
        } else console.log(statusText(feature, report.progress));
        return EXIT.done;
      } finally {
        rest.close();
      }
    }

    const abort = verb === "abort";
    if (!values.to && !abort) throw new UsageError("--to is required (a manifest or a revision)");
    const opts = {
      feature,
      namespace,
      to: values.to ?? "",
      abort,
      waves: parseWaves(values.waves),
      budget: parseBudget(values["failure-budget"]),
      bakeMs: parseDuration(values.bake, "--bake"),
      readyTimeoutMs: parseDuration(values["ready-timeout"], "--ready-timeout"),
      restoreTimeoutMs: values["restore-timeout"] === undefined
        ? undefined
        : parseDuration(values["restore-timeout"], "--restore-timeout"),
      minReadyMs: parseDuration(values["min-ready"], "--min-ready"),
      maxInFlight: positiveInt(values["max-in-flight"], "--max-in-flight"),
      selector: values.selector,
      canaries: values.canary.flatMap((c) => c.split(",")).map((c) => c.trim()).filter(Boolean),
      spreadLabels: values["spread-labels"].split(",").map((l) => l.trim()).filter(Boolean),
      dryRun: values["dry-run"],
      leaseMs: parseDuration(values.lease, "--lease"),
      pollMs: parseDuration(values["poll-interval"], "--poll-interval"),
      logger,
    };
    const rest = await KubeRest.connect({ path: values.kubeconfig }, {
      logger,
      timeoutMs: 15_000,
      retries: 4,
    });
    let lastLogged = 0;
    const onProgress = (p: RolloutProgress) => {
      const line = progressLine(p);
      if (line === lastLine) return;
      if (tty) {
        Deno.stderr.writeSync(encoder.encode(`\r\x1b[K${line}`));
      } else if (Date.now() - lastLogged > 5000) {
        logger.info("progress", { line });
        lastLogged = Date.now();
      }
      lastLine = line;
    };
    let report: RolloutReport;
    try {
      const daemonset = await findDaemonSet(rest, namespace, feature, values.daemonset);
      report = await runRollout(rest, { ...opts, daemonset, onProgress });
    } finally {
      rest.close();
      if (tty && lastLine) Deno.stderr.writeSync(encoder.encode("\n"));
    }
    if (output === "json") console.log(JSON.stringify(report, null, 2));
    else if (report.result === "dry-run") {
      console.log(`${feature}: plan for ${report.daemonset} to ${report.plan!.target}`);
      for (const w of report.plan!.waves) {
        console.log(`  wave ${w.wave}: ${w.nodes.length} nodes: ${w.nodes.join(" ")}`);
      }
    } else if (report.result === "refused") console.log(`${feature}: refused: ${report.reason}`);
    else {
      console.log(statusText(feature, report.progress!));
      console.log(`  API requests: ${report.requests} (${report.requestsPerNode} per node)`);
    }
    return exitCodeOf(report);
  });
}

if (import.meta.main) await main(Deno.args);
