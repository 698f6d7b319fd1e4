// Runs the bundled telemetry example outside an image (tests, benchmarks, the lab): copies
// supervisord.conf into a sandbox with its two image paths rewritten — /var/run/telemetry/ to the
// sandbox and /usr/local/bin/telemetry.py to this folder's daemon — and returns the supervisord
// command line plus the environment that configures the daemon.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));

/** The example's files in the repository. */
export const TELEMETRY_EXAMPLE = {
  daemon: join(HERE, "telemetry.py"),
  supervisordConf: join(HERE, "supervisord.conf"),
};

/** The daemon's settings (see telemetry.py). */
export interface TelemetrySettings {
  /** host:port to listen on (default 127.0.0.1:50051). */
  listen?: string;
  /** Grow to this many MiB of touched memory (default 0 = no growth). */
  growMb?: number;
  /** Growth rate in MiB/s (default 64). */
  growRate?: number;
  /** Process name for pgrep / the watchdog's process probe (default telemetry). */
  name?: string;
}

/** A sandboxed supervisord set-up for the example. */
export interface TelemetrySandbox {
  dir: string;
  configPath: string;
  /** `supervisord -n -c <config>`: the command ks-entrypoint starts. */
  argv: string[];
  /** TELEMETRY_* variables for the daemon (merge into the entrypoint's environment). */
  env: Record<string, string>;
}

/** Writes the sandboxed supervisord.conf under `dir` (created if missing). */
export async function writeTelemetrySandbox(
  dir: string,
  settings: TelemetrySettings = {},
): Promise<TelemetrySandbox> {
  const runDir = join(dir, "run");
  await Deno.mkdir(runDir, { recursive: true });
  const original = await Deno.readTextFile(TELEMETRY_EXAMPLE.supervisordConf);
  const text = original
    .replaceAll("/var/run/telemetry/", `${runDir}/`)
    .replaceAll("/usr/local/bin/telemetry.py", TELEMETRY_EXAMPLE.daemon);
  const configPath = join(dir, "supervisord.conf");
  await Deno.writeTextFile(configPath, text);
  const env: Record<string, string> = {};
  if (settings.listen) env.TELEMETRY_LISTEN = settings.listen;
  if (settings.growMb !== undefined) env.TELEMETRY_GROW_MB = String(settings.growMb);
  if (settings.growRate !== undefined) env.TELEMETRY_GROW_RATE = String(settings.growRate);
  if (settings.name) env.TELEMETRY_NAME = settings.name;
  return { dir, configPath, argv: ["supervisord", "-n", "-c", configPath], env };
}
