// A real Debian monit per suite, in the foreground (`monit -I -c monitrc`), with a short cycle
// (`set daemon 1`), private log/id/state/pid files, and its HTTP interface on a private unix
// socket so `monit status` can be asked what it saw. `stop()` ends it and removes its files.
import { join } from "node:path";
import { waitUntil } from "./net.ts";
import { runCommand, stopChild, trackExit } from "./process.ts";

/** Options for a private monit. */
export interface MonitOptions {
  /** Stanzas (check program ...) appended to the control file. */
  stanzas: string[];
  /** Cycle in seconds (default 1). */
  cycleSeconds?: number;
  /** Sandbox directory (default a new short temp dir under /tmp). */
  dir?: string;
}

/** Result of one monit CLI run. */
export interface MonitResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A running monit. */
export interface Monit {
  dir: string;
  rcPath: string;
  logPath: string;
  /** The monit log so far. */
  log(): Promise<string>;
  /** `monit -c rc status [name]` (asks the running daemon over its unix socket). */
  status(name?: string): Promise<MonitResult>;
  /** Waits until the log matches `pattern`; returns the log. Throws naming `what` after `ms`. */
  waitForLog(pattern: RegExp, ms: number, what: string): Promise<string>;
  stop(): Promise<void>;
}

/** Why monit cannot run here, or undefined. */
export function monitUnavailableReason(): string | undefined {
  try {
    Deno.statSync("/usr/bin/monit");
    return undefined;
  } catch {
    return "monit not installed (Debian package monit)";
  }
}

function runMonit(args: string[]): Promise<MonitResult> {
  return runCommand("monit", args);
}

/** Writes a control file (mode 600) for `stanzas` in `dir` and returns its path. */
export async function writeMonitrc(dir: string, stanzas: string[], cycleSeconds = 1) {
  const rcPath = join(dir, "monitrc");
  const text = [
    `set daemon ${cycleSeconds}`,
    `set logfile ${join(dir, "monit.log")}`,
    `set idfile ${join(dir, "monit.id")}`,
    `set statefile ${join(dir, "monit.state")}`,
    `set pidfile ${join(dir, "monit.pid")}`,
    `set httpd unixsocket ${join(dir, "monit.sock")}`,
    `    allow kstest:kspass`,
    "",
    ...stanzas,
    "",
  ].join("\n");
  await Deno.writeTextFile(rcPath, text, { mode: 0o600 });
  await Deno.chmod(rcPath, 0o600);
  return rcPath;
}

/** `monit -t -c <file>`: the syntax check. */
export function monitSyntaxCheck(rcPath: string): Promise<MonitResult> {
  return runMonit(["-t", "-c", rcPath]);
}

/** Starts monit in the foreground on the given stanzas; throws when the control file is invalid. */
export async function startMonit(opts: MonitOptions): Promise<Monit> {
  const dir = opts.dir ?? await Deno.makeTempDir({ dir: "/tmp", prefix: "ksm" });
  const rcPath = await writeMonitrc(dir, opts.stanzas, opts.cycleSeconds ?? 1);
  const syntax = await monitSyntaxCheck(rcPath);
  if (syntax.code !== 0) {
    if (!opts.dir) await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw new Error(
      `monit -t rejected the control file: ${(syntax.stdout + syntax.stderr).trim()}`,
    );
  }
  const logPath = join(dir, "monit.log");
  const child = new Deno.Command("monit", {
    args: ["-I", "-c", rcPath],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const daemon = trackExit(child);
  const log = async () => {
    try {
      return await Deno.readTextFile(logPath);
    } catch {
      return "";
    }
  };
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (!daemon.exited) await stopChild(child, daemon.status, 5000);
    if (!opts.dir) await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    await waitUntil(
      async () => daemon.exited || /started/.test(await log()),
      10_000,
      "monit to start",
      50,
    );
    if (daemon.exited) throw new Error(`monit exited at start: ${(await log()).trim()}`);
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    dir,
    rcPath,
    logPath,
    log,
    status: (name?: string) => runMonit(["-c", rcPath, "status", ...(name ? [name] : [])]),
    async waitForLog(pattern, ms, what) {
      let text = "";
      try {
        await waitUntil(async () => pattern.test(text = await log()), ms, what, 100);
      } catch (e) {
        throw new Error(`${(e as Error).message}; monit log:\n${text}`);
      }
      return text;
    },
    stop,
  };
}
