// ks-stub: what a feature's systemd unit runs once Kubernetes owns its container
// (ExecStartPre start, ExecStart wait, ExecStop stop; featured's restart), against this node's
// pod of the feature's DaemonSet. Parses flags and calls src/stub/run.ts.
import {
  DEFAULT_KUBE_NAMESPACE,
  kubeNamespaceSetting,
  parseCli,
  parseDuration,
  runCli,
  setting,
  UsageError,
} from "../src/cli.ts";
import { STATUS_UNKNOWN } from "../src/stub/control.ts";
import { DEFAULT_GRACE_MS, run } from "../src/stub/run.ts";
import { resolveRuntime } from "../src/stub/runtime.ts";

const HELP = `ks-stub — systemd's start/stop/status for a feature whose container Kubernetes runs

Usage: ks-stub <feature> start|stop|restart|status|wait [asic] [options]
  start            make sure this node's pod of the feature runs (no-op when it does); with no
                   pod on this node, exit 0 after 5 s: wait then waits for this node's instance
  stop             API server reachable: delete the pod (graceful, uid precondition); the
                   DaemonSet recreates it and the new container reads FEATURE again. API server
                   unreachable (3 s): stop the container through the runtime; the kubelet
                   starts it again. The log line names the path taken and why
  restart          stop, then start
  status           from this node's container runtime, no API call: exit 0 running,
                   3 not running, 4 unknown (runtime unreachable; at most 2 s per call)
  wait             block while this node has the feature's instance, through API outages and
                   node leaves; return only when the node runs the feature's v1 pod instead.
                   Under systemd ($NOTIFY_SOCKET: the unit's NotifyAccess=) it keeps the unit's
                   Status: line saying what it waits for (sd_notify STATUS=)
  [asic]           ASIC index for a per-ASIC instance (0 or asic0); pods labelled asic=<n>

Options:
  --runtime-socket P  this node's container runtime socket (default: KS_RUNTIME_SOCKET, then
                   CONTAINER_RUNTIME_ENDPOINT, then /run/containerd/containerd.sock; "none":
                   no runtime, status asks the API server)
  --runtime K      cri (containerd, cri-dockerd, CRI-O) or docker (a kubelet on Docker's
                   Engine API; socket default /var/run/docker.sock) (default: KS_RUNTIME, cri)
  --kubeconfig P   kubeconfig (default: KUBECONFIG, then /etc/kubernetes/kubelet.conf)
  --node NAME      Kubernetes node name (default: KS_NODE_NAME, then the lowercased hostname)
  --kube-namespace NS  Kubernetes namespace of the DaemonSet (env KS_KUBE_NAMESPACE, default
                   ${DEFAULT_KUBE_NAMESPACE}; the old --namespace still works)
  --timeout D      bound of the verb (default start 20s, stop/restart 30s, status 5s)
  --grace D        wait: how long the node may run only the v1 pod before wait returns (default ${
  DEFAULT_GRACE_MS / 1000
}s)
  --hand-off       wait: while the pod's container runs on this node, print its process and
                   the pod ("<pid> <pod name>/<pod uid>") and exit 0; the unit's launcher
                   watches that process and runs wait again with --following when it ends
                   (no Deno resident meanwhile)
  --following P    wait: the pod ("<pod name>/<pod uid>") a previous --hand-off named
  --output F       status output: text (default) or json
  --help, --version

Pods are selected by labels app=<feature> and raw_container_name (feature pods only; its value
names the feature container), asic (per-ASIC) and field spec.nodeName; in the runtime by the same
pod labels on the sandbox, io.kubernetes.pod.namespace and io.kubernetes.container.name.

Exit codes: status keeps LSB's: 0 running, 3 not running, 4 unknown (also for a usage error or a
kubeconfig that cannot be used: status never answers 1 or 2, which LSB reserves for "dead").
start, stop, restart, wait: 0 done, 1 failed (API server unreachable, timed out), 2 usage error
or a kubeconfig that cannot be used.

Example:
  ks-stub telemetry status --output json
telemetry.service's launcher /usr/local/bin/telemetry.sh runs
  exec ks-stub telemetry --kube-namespace sonic "$@"  (start, wait, stop; restart, status)`;

/** Runs the tool with `args` (its command line without the program name) and exits. */
export async function main(args: string[]): Promise<void> {
  // Any failure of status, a usage error included, is "unknown" (4) to LSB callers.
  const statusFailure = args.includes("status") ? STATUS_UNKNOWN : undefined;
  await runCli("ks-stub", async () => {
    const { values, positionals } = parseCli({
      tool: "ks-stub",
      help: HELP,
      options: {
        kubeconfig: { type: "string" },
        "runtime-socket": { type: "string" },
        runtime: { type: "string" },
        node: { type: "string" },
        "kube-namespace": { type: "string" },
        namespace: { type: "string" },
        timeout: { type: "string" },
        grace: { type: "string" },
        "hand-off": { type: "boolean", default: false },
        following: { type: "string" },
        output: { type: "string", default: "text" },
      },
    }, args);
    if (positionals.length > 3) {
      throw new UsageError(`unexpected argument "${positionals[3]}"`);
    }
    const pod = values.following === undefined
      ? undefined
      : /^([a-z0-9][a-z0-9.-]{0,252})\/([0-9a-zA-Z-]{1,64})$/.exec(values.following);
    if (values.following !== undefined && !pod) {
      throw new UsageError(
        `--following: ${JSON.stringify(values.following)} is not <pod name>/<pod uid>`,
      );
    }
    const following = pod ? { name: pod[1], uid: pod[2] } : undefined;
    if ((values["hand-off"] || following !== undefined) && positionals[1] !== "wait") {
      throw new UsageError("--hand-off and --following are options of wait");
    }
    const output = values.output;
    if (output !== "text" && output !== "json") {
      throw new UsageError(`--output: "${output}" is not text or json`);
    }
    // Only `wait` ends gracefully on SIGTERM (systemd stopping the unit: exit 0); the bounded
    // verbs keep the default action, so systemd's own timeouts still kill them at once.
    const stopping = new AbortController();
    if (positionals[1] === "wait") {
      const onSignal = () => stopping.abort();
      Deno.addSignalListener("SIGTERM", onSignal);
      Deno.addSignalListener("SIGINT", onSignal);
    }
    return await run({
      feature: positionals[0],
      verb: positionals[1],
      asic: positionals[2],
      kubeconfig: values.kubeconfig,
      runtime: resolveRuntime({ runtime: values.runtime, socket: values["runtime-socket"] }),
      node: setting(values.node, "KS_NODE_NAME"),
      // Never KS_NAMESPACE: ks-entrypoint and ks-watchdog read that as the ASIC namespace.
      namespace: kubeNamespaceSetting("ks-stub", values["kube-namespace"], values.namespace),
      timeoutMs: values.timeout === undefined
        ? undefined
        : parseDuration(values.timeout, "--timeout"),
      graceMs: values.grace === undefined ? undefined : parseDuration(values.grace, "--grace"),
      handOff: values["hand-off"],
      following,
      output,
      signal: stopping.signal,
    });
  }, statusFailure);
}

if (import.meta.main) await main(Deno.args);
