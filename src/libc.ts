// The one Deno.dlopen of libc every tool shares: the process calls ks-entrypoint needs as PID 1
// (execvp, posix_spawnp, waitpid, signal masks) and the descriptor-relative file calls ks-patcher
// writes host files with (openat, statx, renameat, unlinkat, ...), and the datagram ks-stub tells
// systemd its status with (socket, sendto). Opened lazily, once;
// `loadLibc()` returns an Error value (not thrown) when FFI is unavailable here (no
// --allow-ffi, or no glibc), so each caller decides whether to fall back or refuse.

const SYMBOLS = {
  // processes (src/entrypoint/libc.ts)
  execvp: { parameters: ["buffer", "buffer"], result: "i32" },
  posix_spawnp: {
    parameters: ["buffer", "buffer", "pointer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  posix_spawnattr_init: { parameters: ["buffer"], result: "i32" },
  posix_spawnattr_setflags: { parameters: ["buffer", "i16"], result: "i32" },
  posix_spawnattr_setsigmask: { parameters: ["buffer", "buffer"], result: "i32" },
  posix_spawnattr_setsigdefault: { parameters: ["buffer", "buffer"], result: "i32" },
  sigemptyset: { parameters: ["buffer"], result: "i32" },
  sigfillset: { parameters: ["buffer"], result: "i32" },
  sigprocmask: { parameters: ["i32", "buffer", "pointer"], result: "i32" },
  signal: { parameters: ["i32", "pointer"], result: "pointer" },
  waitpid: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  // descriptor-relative files (src/host/fd.ts). openat's mode is its variadic third argument,
  // passed in a register like a fixed one on x86_64 and aarch64.
  openat: { parameters: ["i32", "buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  statx: { parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32", optional: true },
  readlinkat: { parameters: ["i32", "buffer", "buffer", "usize"], result: "isize" },
  mkdirat: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  renameat: { parameters: ["i32", "buffer", "i32", "buffer"], result: "i32" },
  unlinkat: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  fchmod: { parameters: ["i32", "u32"], result: "i32" },
  fchown: { parameters: ["i32", "u32", "u32"], result: "i32" },
  getdents64: { parameters: ["i32", "buffer", "usize"], result: "isize", optional: true },
  // sd_notify's datagram to systemd (src/stub/notify.ts)
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  // Small reads and writes of regular files (page cache) run inline; large ones, fsync and flock
  // can wait on the disk or on another process and run off the event loop, so signals, timers
  // and file events stay live meanwhile.
  read_now: { name: "read", parameters: ["i32", "buffer", "usize"], result: "isize" },
  write_now: { name: "write", parameters: ["i32", "buffer", "usize"], result: "isize" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize", nonblocking: true },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize", nonblocking: true },
  fsync: { parameters: ["i32"], result: "i32", nonblocking: true },
  flock: { parameters: ["i32", "i32"], result: "i32", nonblocking: true },
} as const;

/** The bound libc symbols (one dlopen handle for the process). */
export type LibcSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let cached: LibcSymbols | Error | undefined;

/**
 * Binds SYMBOLS. A synchronous symbol bound by `Deno.dlopen` gets a fast-call trampoline
 * compiled at dlopen (Cranelift), which only optimized code would call: the resident tools run
 * V8 in lite mode (src/build/runtime_flags.ts), so it is never used, and compiling it keeps ~2 MiB
 * of Deno's code resident. Each synchronous function is therefore looked up by address (a
 * pointer static) and called through `Deno.UnsafeFnPointer` (libffi, the same path dlopen's
 * symbols take without the trampoline); the nonblocking ones, which get no trampoline, are bound
 * by dlopen as usual.
 */
function bind(): LibcSymbols {
  const statics: Record<string, Deno.ForeignStatic> = {};
  const nonblocking: Record<string, Deno.ForeignFunction> = {};
  for (const [key, def] of Object.entries(SYMBOLS) as [string, Deno.ForeignFunction][]) {
    if (def.nonblocking) nonblocking[key] = def;
    else statics[key] = { name: def.name ?? key, type: "pointer", optional: def.optional };
  }
  const lib = Deno.dlopen("libc.so.6", { ...statics, ...nonblocking });
  const found = lib.symbols as Record<string, unknown>;
  const symbols: Record<string, unknown> = {};
  for (const key of Object.keys(nonblocking)) symbols[key] = found[key];
  for (const key of Object.keys(statics)) {
    const pointer = found[key] as Deno.PointerObject<Deno.ForeignFunction> | null;
    if (pointer === null) {
      symbols[key] = null; // an optional symbol this libc lacks
      continue;
    }
    const def = SYMBOLS[key as keyof typeof SYMBOLS] as Deno.ForeignFunction;
    const fn = new Deno.UnsafeFnPointer(pointer, {
      parameters: def.parameters,
      result: def.result,
    });
    symbols[key] = fn.call.bind(fn);
  }
  return symbols as LibcSymbols;
}

/** Opens libc once; returns an Error value (not thrown) when FFI is not available here. */
export function loadLibc(): LibcSymbols | Error {
  if (cached) return cached;
  try {
    cached = bind();
  } catch (error) {
    cached = new Error(`libc FFI unavailable: ${(error as Error).message.split("\n")[0]}`);
  }
  return cached;
}

/** The calling thread's errno (read right after the failed call). */
export function errnoOf(sym: LibcSymbols): number {
  const ptr = sym.__errno_location();
  return ptr ? new Deno.UnsafePointerView(ptr).getInt32() : 0;
}
