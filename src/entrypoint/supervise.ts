// The daemon as a child of ks-entrypoint (spawn mode): started with a clean signal state, signals
// forwarded to it, and — when libc FFI is available — every zombie reaped, including orphans the
// kernel reparents to us when we are PID 1. Without FFI it falls back to Deno.Command (the daemon
// is still supervised, but orphans cannot be reaped; the caller logs that once).
import { type ExitInfo, type Libc, openLibc, SpawnError } from "./libc.ts";

/** Signal names and numbers on Linux (x86_64 / aarch64) for the signals we forward or report. */
export const SIGNAL_NUMBERS: Readonly<Record<string, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGABRT: 6,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
};

/** The name of signal `n` (e.g. 15 -> SIGTERM), or `signal N`. */
export function signalName(n: number): string {
  return Object.entries(SIGNAL_NUMBERS).find(([, v]) => v === n)?.[0] ?? `signal ${n}`;
}

/** A running daemon child. */
export interface Daemon {
  readonly pid: number;
  /** Resolves once, when the daemon has ended (it has been reaped). */
  readonly exited: Promise<ExitInfo>;
  /** Sends `signal` to the daemon; ignores an already-gone process. */
  kill(signal: Deno.Signal): void;
  /** true when orphaned descendants are reaped too (the FFI path). */
  readonly reapsOrphans: boolean;
}

/** Options for starting the daemon. */
export interface StartOptions {
  env?: Record<string, string>;
  /** Called for each reaped process that is not the daemon (an orphan). */
  onOrphanReaped?: (pid: number, info: ExitInfo) => void;
}

/** The zombie reaper: one SIGCHLD listener plus a slow sweep, shared by every daemon we start. */
class Reaper {
  #waiters = new Map<number, (info: ExitInfo) => void>();
  #onOrphan?: (pid: number, info: ExitInfo) => void;
  constructor(private libc: Libc) {
    Deno.addSignalListener("SIGCHLD", () => this.sweep());
    // SIGCHLD can coalesce or arrive before a waiter registers; the sweep catches any stragglers.
    const timer = setInterval(() => this.sweep(), 1000);
    Deno.unrefTimer(timer);
  }
  set onOrphan(fn: ((pid: number, info: ExitInfo) => void) | undefined) {
    this.#onOrphan = fn;
  }
  /** Must be called in the same JS turn as the spawn, before any sweep can run. */
  wait(pid: number): Promise<ExitInfo> {
    return new Promise((resolve) => this.#waiters.set(pid, resolve));
  }
  sweep(): void {
    for (const { pid, info } of this.libc.reapAll()) {
      const waiter = this.#waiters.get(pid);
      if (waiter) {
        this.#waiters.delete(pid);
        waiter(info);
      } else {
        this.#onOrphan?.(pid, info);
      }
    }
  }
}

let reaper: Reaper | undefined;

/**
 * Starts `argv` as a supervised child. Throws SpawnError (with the errno) when the command cannot
 * be started; with FFI the failure is immediate (ENOENT/EACCES from posix_spawnp).
 */
export function startDaemon(argv: string[], opts: StartOptions = {}): Daemon {
  const env = opts.env ?? Deno.env.toObject();
  const libc = openLibc();
  if (!(libc instanceof Error)) {
    reaper ??= new Reaper(libc);
    reaper.onOrphan = opts.onOrphanReaped;
    const pid = libc.spawn(argv, env);
    const exited = reaper.wait(pid); // same JS turn as the spawn: no sweep can run in between
    return { pid, exited, kill: (s) => killQuietly(pid, s), reapsOrphans: true };
  }
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      env,
      clearEnv: true,
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
  } catch (error) {
    throw new SpawnError(argv[0], error instanceof Deno.errors.NotFound ? 2 : 13);
  }
  const exited = child.status.then((s): ExitInfo =>
    s.signal
      ? { code: null, signal: SIGNAL_NUMBERS[s.signal] ?? 0 }
      : { code: s.code, signal: null }
  );
  return { pid: child.pid, exited, kill: (s) => killQuietly(child.pid, s), reapsOrphans: false };
}

function killQuietly(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(pid, signal);
  } catch {
    // already gone
  }
}
