// Child-process plumbing shared by the harnesses: run a command to completion and capture
// `{ code, stdout, stderr }` (optionally feeding stdin); spawn a daemon with its stdout+stderr
// in one log file and track whether it has exited; stop it (a signal, SIGKILL after a grace,
// status awaited); read the tail of its log for the error when it did not come up; list the
// machine's processes from /proc (pid, state, parent, group, session). Nothing here
// knows which daemon it runs; the harnesses (docker, containerd, monit, kube, bin) own that.

/** Exit code and decoded output of one finished command. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options for runCommand. */
export interface RunCommandOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** Text written to the command's stdin (then closed); without it stdin is /dev/null. */
  stdin?: string;
}

/** Runs `cmd args` to completion and returns its exit code and decoded stdout and stderr. */
export async function runCommand(
  cmd: string,
  args: string[],
  options: RunCommandOptions = {},
): Promise<CommandResult> {
  const child = new Deno.Command(cmd, {
    args,
    env: options.env,
    cwd: options.cwd,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/**
 * Runs `cmd args` (in `cwd`) and returns its stdout; throws `<cmd> <args> failed (<code>):
 * <stderr>` when it exits non-zero.
 */
export async function runChecked(cmd: string, args: string[], cwd?: string): Promise<string> {
  const out = await runCommand(cmd, args, { cwd });
  if (out.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed (${out.code}): ${out.stderr.trim()}`);
  }
  return out.stdout;
}

/** A spawned child whose exit is tracked. */
export interface TrackedChild {
  /** Resolves with the exit status (the child's own `status`, observed). */
  readonly status: Promise<Deno.CommandStatus>;
  /** true once the child has exited. */
  readonly exited: boolean;
}

/** Starts tracking `child`'s exit, so callers can ask `exited` synchronously. */
export function trackExit(child: Deno.ChildProcess): TrackedChild {
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  return {
    status,
    get exited() {
      return exited;
    },
  };
}

/**
 * Copies `child`'s stdout and stderr, as they come, into `file` (one log for both) and closes
 * the file when both streams end (the daemon exited). Write errors are ignored so the pipes keep
 * draining. The returned promise never rejects.
 */
export function drainToFile(
  child: { stdout: ReadableStream<Uint8Array>; stderr: ReadableStream<Uint8Array> },
  file: Deno.FsFile,
): Promise<void> {
  const writer = file.writable.getWriter();
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) await writer.write(chunk).catch(() => {});
  };
  return Promise.all([drain(child.stdout), drain(child.stderr)])
    .then(() => {}, () => {})
    .finally(() => writer.close().catch(() => {}));
}

/** A daemon started by spawnLogged: its stdout and stderr go to one log file. */
export interface LoggedChild extends TrackedChild {
  child: Deno.ChildProcess;
  pid: number;
  /** Resolves once both streams are in the log file (the daemon exited). Never rejects. */
  logged: Promise<void>;
  /**
   * Unless it already exited: SIGTERM, SIGKILL after `graceMs`, status awaited (stopChild).
   * Then waits until its output is in the log.
   */
  stop(graceMs: number): Promise<void>;
}

/**
 * Spawns `cmd args` (stdin /dev/null, in `cwd`) with stdout and stderr copied into `logPath`
 * (created or truncated first), and tracks its exit.
 */
export async function spawnLogged(
  cmd: string,
  args: string[],
  logPath: string,
  options: { cwd?: string } = {},
): Promise<LoggedChild> {
  const log = await Deno.open(logPath, { write: true, create: true, truncate: true });
  const child = new Deno.Command(cmd, {
    args,
    cwd: options.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const logged = drainToFile(child, log);
  const tracked = trackExit(child);
  return {
    child,
    pid: child.pid,
    logged,
    status: tracked.status,
    get exited() {
      return tracked.exited;
    },
    async stop(graceMs: number) {
      if (!tracked.exited) await stopChild(child, tracked.status, graceMs);
      await logged;
    },
  };
}

/** Options for stopChild. */
export interface StopChildOptions {
  /** The first signal (default SIGTERM). */
  signal?: Deno.Signal;
  /** What to do once the grace is over (default: SIGKILL the child, ignoring "already gone"). */
  escalate?: () => void;
}

/**
 * Sends `signal` (default SIGTERM) to `child`, escalates (SIGKILL) if `status` has not resolved
 * after `graceMs`, and resolves with the status. "Already gone" errors are ignored.
 */
export async function stopChild<T>(
  child: { kill(signal?: Deno.Signal): void },
  status: Promise<T>,
  graceMs: number,
  options: StopChildOptions = {},
): Promise<T> {
  try {
    child.kill(options.signal ?? "SIGTERM");
  } catch { /* gone */ }
  const escalate = options.escalate ?? (() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  });
  const timer = setTimeout(escalate, graceMs);
  try {
    return await status;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The last `lines` lines of the log at `path` (trimmed), joined with `joiner`; undefined when it
 * cannot be read. For error messages about a daemon that did not come up.
 */
export async function logTail(
  path: string,
  lines: number,
  joiner = "\n",
): Promise<string | undefined> {
  try {
    return (await Deno.readTextFile(path)).trim().split("\n").slice(-lines).join(joiner);
  } catch {
    return undefined;
  }
}

/**
 * For a daemon that did not come up: stops it (LoggedChild.stop with `graceMs`), runs `cleanUp`,
 * and returns the error to throw: `<name> exited|did not answer on <where>: <last 5 log lines>`.
 */
export async function daemonStartError(
  name: string,
  daemon: LoggedChild,
  graceMs: number,
  logPath: string,
  where: string,
  cleanUp: () => Promise<void>,
): Promise<Error> {
  const exited = daemon.exited;
  await daemon.stop(graceMs);
  const tail = await logTail(logPath, 5, " | ");
  await cleanUp();
  return new Error(
    `${name} ${exited ? "exited" : "did not answer"} on ${where}: ${tail || "no log"}`,
  );
}

/** One process as /proc/<pid>/stat shows it. */
export interface ProcStat {
  pid: number;
  /** The command name (the kernel's 15-character comm). */
  comm: string;
  /** The state letter: R, S, D, Z (zombie), T, ... */
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
}

/** Every process on the machine, from /proc (a process gone while reading is left out). */
export function procStats(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      // pid (comm) state ppid pgrp session ...; comm may hold spaces and parentheses.
      const close = stat.lastIndexOf(")");
      const [state, ppid, pgrp, session] = stat.slice(close + 2).split(" ");
      out.push({
        pid: Number(entry.name),
        comm: stat.slice(stat.indexOf("(") + 1, close),
        state,
        ppid: Number(ppid),
        pgrp: Number(pgrp),
        session: Number(session),
      });
    } catch { /* gone meanwhile */ }
  }
  return out;
}
