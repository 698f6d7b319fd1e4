// What the watchdog benchmarks load: the bundled telemetry daemon on a free loopback port under
// a process name of the caller's, and a bundled ks-watchdog probing it (tcp + process) for
// FEATURE|telemetry, started and checked healthy (/readyz 200) before any load is sent.
import { TELEMETRY_EXAMPLE } from "../../examples/telemetry/sandbox.ts";
import { freePort, waitForPort } from "./net.ts";
import { type RunningTool, startTool } from "./running_tool.ts";

/** The running telemetry example daemon. */
export interface TelemetryDaemon {
  port: number;
  /** SIGTERM, then waits for its exit. */
  stop(): Promise<void>;
}

/**
 * Starts the example daemon (python3) on 127.0.0.1:<free port> named `name` (for the watchdog's
 * process probe) and waits until the port accepts. Throws (the daemon killed) when it does not.
 */
export async function startTelemetryDaemon(name: string): Promise<TelemetryDaemon> {
  const port = freePort();
  const child = new Deno.Command("/usr/bin/python3", {
    args: [TELEMETRY_EXAMPLE.daemon, "--listen", `127.0.0.1:${port}`, "--name", name],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await child.status;
  };
  try {
    await waitForPort(port);
  } catch (e) {
    await stop();
    throw e;
  }
  return { port, stop };
}

/**
 * Starts the bundled ks-watchdog for telemetry on a free loopback port, probing `daemon` (tcp)
 * and its process `name`, with `opts` for startTool (runtime flags, Deno flags, another bundle);
 * returns it once /readyz answers 200, with that URL. Throws (the watchdog stopped) otherwise.
 */
export async function startProbingWatchdog(
  daemon: TelemetryDaemon,
  name: string,
  opts: Parameters<typeof startTool>[2] = {},
): Promise<{ wd: RunningTool; url: string }> {
  const port = freePort();
  const wd = await startTool("ks-watchdog", [
    "--feature",
    "telemetry",
    "--listen",
    `127.0.0.1:${port}`,
    "--tcp",
    `127.0.0.1:${daemon.port}`,
    "--process",
    name,
  ], opts);
  try {
    await waitForPort(port);
    await wd.waitForLine(/FEATURE state state=enabled/);
    const url = `http://127.0.0.1:${port}/readyz`;
    const first = await fetch(url);
    const body = await first.text();
    if (first.status !== 200) {
      throw new Error(`ks-watchdog: /readyz answered ${first.status}: ${body}`);
    }
    return { wd, url };
  } catch (error) {
    await wd.stop();
    throw error;
  }
}
