// The few libc calls a Deno PID 1 needs and Deno does not offer: execvp (become the daemon, same
// PID), posix_spawnp with a clean signal state (start the daemon as a child we own), waitpid(-1)
// (reap every zombie, including orphans reparented to PID 1) and the wait-status decoding.
// Bound through the shared src/libc.ts handle; `openLibc()` returns an error value when FFI is
// unavailable (no --allow-ffi, or no glibc), so callers can fall back.

import { errnoOf, type LibcSymbols, loadLibc } from "../libc.ts";

const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const SIG_SETMASK = 2;
const WNOHANG = 1;
const SIGPIPE = 13;
const SIGUSR1 = 10;
/** signal(2)'s SIG_IGN handler value. */
const SIG_IGN = 1n;
/** glibc x86_64/aarch64: sizeof(posix_spawnattr_t) is 336, sizeof(sigset_t) 128; room to spare. */
const SPAWNATTR_BYTES = 512;
const SIGSET_BYTES = 128;

/** errno values callers map to exit codes. */
export const ENOENT = 2;
/** Permission denied (not executable). */
export const EACCES = 13;
/** No child processes (waitpid). */
export const ECHILD = 10;

/** How a child ended, decoded from a wait status. */
export interface ExitInfo {
  /** The exit code (WEXITSTATUS) when it exited, else null. */
  code: number | null;
  /** The signal number that killed it, else null. */
  signal: number | null;
}

/** Decodes a waitpid status word (glibc's W* macros). */
export function decodeWaitStatus(status: number): ExitInfo {
  const low = status & 0x7f;
  if (low === 0) return { code: (status >> 8) & 0xff, signal: null };
  return { code: null, signal: low };
}

/** The exit code a parent should report for `info`: the code, or 128 + signal. */
export function exitCodeOf(info: ExitInfo): number {
  return info.signal !== null ? 128 + info.signal : info.code ?? 1;
}

/** One reaped child: its pid and how it ended. */
export interface Reaped {
  pid: number;
  info: ExitInfo;
}

/** The libc operations, bound to one dlopen handle. */
export interface Libc {
  /**
   * Replaces this process with `argv[0]` (searched on PATH) — same PID. Resets SIGPIPE to its
   * default and unblocks every signal first (Deno ignores SIGPIPE; an exec'd daemon must not
   * inherit that). Only returns on failure, with the errno.
   */
  execvp(argv: string[]): number;
  /**
   * Starts `argv` as a child with default signal dispositions and an empty signal mask.
   * Returns the pid, or throws with the errno in the message (e.g. ENOENT for a missing command).
   */
  spawn(argv: string[], env: Record<string, string>): number;
  /** Reaps every child that has ended (waitpid(-1, WNOHANG) until none is left). */
  reapAll(): Reaped[];
}

const encoder = new TextEncoder();

/** Builds a NULL-terminated `char *[]` from strings; `keep` holds the buffers alive. */
function cStringArray(items: string[], keep: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const pointers = new BigUint64Array(items.length + 1);
  items.forEach((item, i) => {
    const bytes = encoder.encode(item + "\0");
    keep.push(bytes);
    pointers[i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(bytes)));
  });
  return new Uint8Array(pointers.buffer);
}

function cString(text: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(text + "\0");
}

let cached: Libc | Error | undefined;

/** Opens libc once; returns an Error value (not thrown) when FFI is not available here. */
export function openLibc(): Libc | Error {
  if (cached) return cached;
  const loaded = loadLibc();
  if (loaded instanceof Error) return (cached = loaded);
  const sym: LibcSymbols = loaded;
  cached = {
    execvp(argv) {
      const keep: Uint8Array[] = [];
      const empty = new Uint8Array(SIGSET_BYTES);
      sym.sigemptyset(empty);
      sym.signal(SIGPIPE, null); // SIG_DFL
      sym.signal(SIGUSR1, null); // see disarmInspectorSignal()
      sym.sigprocmask(SIG_SETMASK, empty, null);
      sym.execvp(cString(argv[0]), cStringArray(argv, keep));
      return errnoOf(sym);
    },
    spawn(argv, env) {
      const keep: Uint8Array[] = [];
      const attr = new Uint8Array(SPAWNATTR_BYTES);
      const none = new Uint8Array(SIGSET_BYTES);
      const all = new Uint8Array(SIGSET_BYTES);
      sym.sigemptyset(none);
      sym.sigfillset(all);
      sym.posix_spawnattr_init(attr);
      sym.posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
      sym.posix_spawnattr_setsigmask(attr, none);
      sym.posix_spawnattr_setsigdefault(attr, all);
      const pid = new Int32Array(1);
      const envp = Object.entries(env).map(([k, v]) => `${k}=${v}`);
      const rc = sym.posix_spawnp(
        new Uint8Array(pid.buffer),
        cString(argv[0]),
        null,
        attr,
        cStringArray(argv, keep),
        cStringArray(envp, keep),
      );
      if (rc !== 0) throw new SpawnError(argv[0], rc);
      return pid[0];
    },
    reapAll() {
      const reaped: Reaped[] = [];
      const status = new Int32Array(1);
      const view = new Uint8Array(status.buffer);
      while (true) {
        const pid = sym.waitpid(-1, view, WNOHANG);
        if (pid <= 0) break;
        reaped.push({ pid, info: decodeWaitStatus(status[0]) });
      }
      return reaped;
    },
  };
  return cached;
}

/** posix_spawnp failed; `errno` says why (ENOENT: not found, EACCES: not executable). */
export class SpawnError extends Error {
  override name = "SpawnError";
  constructor(readonly command: string, readonly errno: number) {
    super(`${command}: ${describeErrno(errno)}`);
  }
}

/** A short text for the errno values a command start can fail with. */
export function describeErrno(code: number): string {
  switch (code) {
    case ENOENT:
      return "command not found (ENOENT)";
    case EACCES:
      return "permission denied (EACCES)";
    default:
      return `errno ${code}`;
  }
}

/** Shell convention for a command that could not be started: 127 not found, 126 otherwise. */
export function startFailureExitCode(code: number): number {
  return code === ENOENT ? 127 : 126;
}

/**
 * Deno >= 2.9.2 opens a V8 inspector on 127.0.0.1:9229 when it receives SIGUSR1 (Node's
 * convention; the handler is installed 500 ms after start, with no switch to turn it off). For a
 * long-lived PID 1 or probe server in a host-network pod that is a local debug port nobody asked
 * for, so once Deno's handler is in place this sets SIGUSR1 to SIG_IGN (twice, in case start-up
 * was slow). No-op without FFI. SIGUSR1 is then neither forwarded nor acted on.
 *
 * signal(2) gets its own binding, declared nonblocking (the call runs once on Deno's blocking
 * pool): for a synchronous symbol Deno compiles a fast-call trampoline at dlopen with Cranelift,
 * ~2.5 MiB of resident code the watchdog, whose only FFI call this is, would keep for nothing.
 */
export function disarmInspectorSignal(): void {
  let lib;
  try {
    lib = Deno.dlopen("libc.so.6", {
      signal: { parameters: ["i32", "usize"], result: "usize", nonblocking: true },
    });
  } catch {
    return;
  }
  const { signal } = lib.symbols;
  for (const ms of [1000, 5000]) {
    const timer = setTimeout(() => void signal(SIGUSR1, SIG_IGN).catch(() => {}), ms);
    Deno.unrefTimer(timer);
  }
}
