// ks-patcher: keeps host files (stub launcher, unit drop-ins, monit checkers) in the state a
// feature's manifest wants, or restores the originals in native mode. Thin: flags -> runPatcher().
import { parseCli, parseDuration, runCli, setting, UsageError } from "../src/cli.ts";
import { createLogger } from "../src/log.ts";
import type { NsenterMode } from "../src/host/commands.ts";
import { runPatcher } from "../src/patcher/run.ts";

const HELP = `ks-patcher — keep a feature's host files as its manifest wants them (crash-safe)

Usage: ks-patcher --manifest M [--host-root DIR] [--state-dir DIR] --allow-root PATH... [options]
  --manifest M        HostFiles manifest (YAML or JSON)                       env KS_PATCHER_MANIFEST
  --host-root DIR     the host's / as seen here (default /; /host in a sidecar) env KS_HOST_ROOT
  --state-dir DIR     backups, journal, ownership registry
                      (default <host-root>/var/lib/kubesonic)                  env KS_PATCHER_STATE_DIR
  --allow-root PATH   host path under which files may be written (repeatable; required)
  --once              one pass, then exit (codes below)
  --dry-run           print the plan and touch nothing (exit 0, or 1 on errors)
  --interval D        periodic re-check, jittered ±10 % (default 60s)          env KS_PATCHER_INTERVAL
  --debounce D        quiet time after a file event before a pass (default 20ms)
  --stale-claim D     another feature's ownership claim not confirmed for this long no longer
                      blocks a different content (default 15m or 3 x --interval if longer)
  --nsenter MODE      run host commands through nsenter into PID 1: auto|always|never
                      (default auto: when our mount namespace is not PID 1's)  env KS_NSENTER
  --output FORMAT     text|json for the --once/--dry-run result (default text)
  --help, --version

Exit codes: --once 0 converged, 1 not converged (errors); --dry-run 0 planned, 1 errors; the
loop 0 after SIGTERM/SIGINT; all of them 2 usage error or bad input (a bad manifest or host root:
one line naming it, nothing touched).

Example (in the telemetry sidecar):
  ks-patcher --manifest /etc/kubesonic/patcher.yaml --host-root /host \\
    --state-dir /host/var/lib/kubesonic --allow-root /usr/local/bin --allow-root /etc/systemd/system`;

async function main(): Promise<number> {
  const { values } = parseCli({
    tool: "ks-patcher",
    help: HELP,
    allowPositionals: false,
    options: {
      manifest: { type: "string" },
      "host-root": { type: "string" },
      "state-dir": { type: "string" },
      "allow-root": { type: "string", multiple: true, default: [] },
      once: { type: "boolean", default: false },
      "dry-run": { type: "boolean", default: false },
      interval: { type: "string" },
      debounce: { type: "string", default: "20ms" },
      "stale-claim": { type: "string" },
      nsenter: { type: "string" },
      output: { type: "string", default: "text" },
    },
  }, Deno.args);
  const manifestPath = setting(values.manifest, "KS_PATCHER_MANIFEST");
  if (!manifestPath) throw new UsageError("--manifest is required");
  const hostRoot = setting(values["host-root"], "KS_HOST_ROOT", "/");
  const stateDir = setting(
    values["state-dir"],
    "KS_PATCHER_STATE_DIR",
    `${hostRoot.replace(/\/$/, "")}/var/lib/kubesonic`,
  );
  const allowRoots = values["allow-root"] ?? [];
  if (allowRoots.length === 0) throw new UsageError("at least one --allow-root is required");
  const nsenter = setting(values.nsenter, "KS_NSENTER", "auto");
  if (!["auto", "always", "never"].includes(nsenter)) {
    throw new UsageError(`--nsenter: "${nsenter}" is not auto, always or never`);
  }
  if (values.output !== "text" && values.output !== "json") {
    throw new UsageError(`--output: "${values.output}" is not text or json`);
  }
  const intervalMs = parseDuration(
    setting(values.interval, "KS_PATCHER_INTERVAL", "60s"),
    "--interval",
  );
  if (intervalMs < 100) throw new UsageError("--interval: must be at least 100ms");
  // A live patcher confirms its claims at least once per interval: stale must be well above it.
  const staleClaimMs = values["stale-claim"] === undefined
    ? Math.max(15 * 60_000, 3 * intervalMs)
    : parseDuration(values["stale-claim"], "--stale-claim");
  if (staleClaimMs < 2 * intervalMs) {
    throw new UsageError(
      "--stale-claim: must be at least 2 x --interval (live claims are confirmed each pass)",
    );
  }
  const stop = new AbortController();
  for (const sig of ["SIGTERM", "SIGINT"] as const) Deno.addSignalListener(sig, () => stop.abort());
  return await runPatcher({
    manifestPath,
    hostRoot,
    stateDir,
    allowRoots,
    once: values.once ?? false,
    dryRun: values["dry-run"] ?? false,
    intervalMs,
    debounceMs: parseDuration(values.debounce ?? "20ms", "--debounce"),
    staleClaimMs,
    nsenter: nsenter as NsenterMode,
    output: values.output,
    log: createLogger("ks-patcher"),
    signal: stop.signal,
  });
}

if (import.meta.main) await runCli("ks-patcher", main);
