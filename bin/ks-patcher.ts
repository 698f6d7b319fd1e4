// ks-patcher: keeps host files (stub launcher, unit drop-ins, monit checkers) in the state a
// feature's manifest wants, or restores the originals in native mode. Thin: flags -> runPatcher().
import { parseCli, parseDuration, runCli, setting, UsageError } from "../src/cli.ts";
import { createLogger } from "../src/log.ts";
import { startResidentTrim } from "../src/resident_pages.ts";
import type { NsenterMode } from "../src/host/commands.ts";
import { DEFAULT_MAX_SOURCE_BYTES } from "../src/patcher/manifest.ts";
import { runPatcher, STOP_GRACE_MS } from "../src/patcher/run.ts";

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
  --max-source-bytes N  size bound for each source and inline content (default 4MiB; a manifest
                      entry's maxBytes overrides it); suffixes KiB, MiB, GiB
  --help, --version

Exit codes: 0 converged (loop: stopped by SIGTERM/SIGINT, within 5 s even mid-pass);
  1 errors or actions still owed (--once); 2 bad input: usage, manifest, or a manifest path
  refused on this host (nothing was written)

Example (in the telemetry sidecar):
  ks-patcher --manifest /etc/kubesonic/patcher.yaml --host-root /host \\
    --state-dir /host/var/lib/kubesonic --allow-root /usr/local/bin --allow-root /etc/systemd/system`;

async function cli(args: string[]): Promise<number> {
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
      "max-source-bytes": { type: "string" },
    },
  }, args);
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
  const maxSourceBytes = values["max-source-bytes"] === undefined
    ? DEFAULT_MAX_SOURCE_BYTES
    : parseBytes(values["max-source-bytes"], "--max-source-bytes");
  const stop = new AbortController();
  const log = createLogger("ks-patcher");
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(sig, () => {
      stop.abort();
      // The pass in flight normally ends within milliseconds; if it does not, leave it (every
      // write is atomic and the journal holds the owed actions, so this is a clean crash).
      const timer = setTimeout(() => {
        log.warn("stopping: the pass did not finish in time, abandoned", {
          grace_ms: STOP_GRACE_MS,
        });
        Deno.exit(0);
      }, STOP_GRACE_MS);
      Deno.unrefTimer(timer);
    });
  }
  // The loop is resident: once its first pass is done, it lets go of the start-up's file pages.
  let stopTrim: (() => void) | undefined;
  const loop = !(values.once ?? false) && !(values["dry-run"] ?? false);
  const onPass = loop ? () => void (stopTrim ??= startResidentTrim(log)) : undefined;
  const code = await runPatcher({
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
    maxSourceBytes,
    log,
    signal: stop.signal,
    onPass,
  });
  stopTrim?.();
  return code;
}

/** Parses a byte count like `4194304`, `512KiB`, `100MiB` or `1GiB` (K/M/G alone mean the same). */
function parseBytes(text: string, flag: string): number {
  const m = /^(\d{1,15})\s*(k|m|g|kib|mib|gib)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`${flag}: "${text}" is not a byte count like 4194304 or 100MiB`);
  const unit = (m[2] ?? "").toLowerCase()[0];
  const scale = unit === "k" ? 1024 : unit === "m" ? 1024 ** 2 : unit === "g" ? 1024 ** 3 : 1;
  return Number(m[1]) * scale;
}

/** Runs the tool with `args` (its command line without the program name) and exits. */
export function main(args: string[]): Promise<never> {
  return runCli("ks-patcher", () => cli(args));
}

if (import.meta.main) await main(Deno.args);
