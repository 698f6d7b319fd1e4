// What a resident tool keeps mapped of Deno's binary and its libraries. Start-up runs code and
// reads data (module loading, the first connections, the first pass) that the tool never touches
// again, and those file pages stay mapped, counted in its RSS and PSS, for the life of the
// process: about 27 of a watchdog's 46 MiB. Once start-up has settled, and again every few
// minutes, the tool drops its clean mappings of those files (madvise MADV_DONTNEED): the pages
// stay in the page cache, and what the tool runs afterwards faults back in from there (minor
// faults, no disk I/O), ~13 MiB of them in the watchdog's steady state.
//
// Only mappings that can never hold data of the process's own are dropped: of Deno's executable
// or a shared library (mapped once at start and never unmapped), not writable, and without a
// private copy (Anonymous 0: glibc's relocated RELRO pages are private copies and are kept).

import type { Logger } from "./log.ts";

/** A mapping that dropping cannot change the contents of. */
export interface CleanMapping {
  start: bigint;
  end: bigint;
  path: string;
  /** Resident KiB before the drop. */
  rssKib: number;
}

const MADV_DONTNEED = 4;
/** After start-up has settled: what the first connections and the first pass touched is done. */
export const FIRST_TRIM_AFTER_MS = 5_000;
/** Then again every: what a burst of requests or a large pass mapped is let go. */
export const TRIM_EVERY_MS = 5 * 60_000;

const MAPPING = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+\s+(\S.*)$/;
const LIBRARY = /\/[^/]+\.so(\.\d+)*$/;

/**
 * The clean file mappings of `executable` and of shared libraries in the text of
 * /proc/<pid>/smaps: read-only or executable, private, with no anonymous (copied) pages.
 */
export function cleanFileMappings(smaps: string, executable: string): CleanMapping[] {
  const out: CleanMapping[] = [];
  let current: { m: CleanMapping; perms: string; rss: number; anon: number } | undefined;
  const flush = () => {
    if (!current) return;
    const { m, perms, rss, anon } = current;
    const fileOk = m.path === executable || LIBRARY.test(m.path);
    if (fileOk && perms[1] === "-" && perms[3] === "p" && anon === 0) {
      out.push({ ...m, rssKib: rss });
    }
    current = undefined;
  };
  for (const line of smaps.split("\n")) {
    const head = MAPPING.exec(line);
    if (head) {
      flush();
      current = {
        m: { start: BigInt(`0x${head[1]}`), end: BigInt(`0x${head[2]}`), path: head[4], rssKib: 0 },
        perms: head[3],
        rss: 0,
        anon: -1,
      };
      continue;
    }
    if (!current) continue;
    if (line.startsWith("Rss:")) current.rss = parseInt(line.slice(4));
    else if (line.startsWith("Anonymous:")) current.anon = parseInt(line.slice(10));
  }
  flush();
  return out;
}

type Madvise = (addr: Deno.PointerValue, len: bigint, advice: number) => Promise<number>;
let madvise: Madvise | Error | undefined;
/** Deno's executable as the kernel names it in smaps (resolved once: it cannot change). */
let executablePath: string | undefined;

/**
 * madvise(2) bound nonblocking (one call per mapping on Deno's blocking pool): a synchronous
 * symbol would get a fast-call trampoline compiled at dlopen, resident code of its own
 * (src/libc.ts).
 */
function bindMadvise(): Madvise | Error {
  if (madvise) return madvise;
  try {
    const lib = Deno.dlopen("libc.so.6", {
      madvise: { parameters: ["pointer", "usize", "i32"], result: "i32", nonblocking: true },
    });
    madvise = lib.symbols.madvise as Madvise;
  } catch (error) {
    madvise = error as Error;
  }
  return madvise;
}

/** What one drop did. */
export interface TrimResult {
  mappings: number;
  /** Resident KiB of those mappings before the drop. */
  droppedKib: number;
}

/** Drops this process's clean file mappings once; an Error when FFI or /proc is not there. */
export async function dropCleanFileMappings(): Promise<TrimResult | Error> {
  const call = bindMadvise();
  if (call instanceof Error) return call;
  let smaps: string;
  let executable: string;
  try {
    smaps = await Deno.readTextFile("/proc/self/smaps");
    executable = executablePath ??= await Deno.realPath(Deno.execPath());
  } catch (error) {
    return error as Error;
  }
  let mappings = 0;
  let droppedKib = 0;
  for (const m of cleanFileMappings(smaps, executable)) {
    if (m.rssKib === 0) continue;
    const rc = await call(Deno.UnsafePointer.create(m.start), m.end - m.start, MADV_DONTNEED);
    if (rc === 0) {
      mappings++;
      droppedKib += m.rssKib;
    }
  }
  return { mappings, droppedKib };
}

/**
 * Drops the clean file mappings FIRST_TRIM_AFTER_MS after the call (the caller's start-up is
 * done), then every TRIM_EVERY_MS, on timers that keep no process alive. The first drop is logged
 * (info), the later ones at debug. Returns a function that stops it.
 */
export function startResidentTrim(
  log: Logger,
  opts: { firstAfterMs?: number; everyMs?: number } = {},
): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  let first = true;
  const run = async () => {
    const r = await dropCleanFileMappings();
    if (stopped) return;
    if (r instanceof Error) {
      if (first) log.debug("start-up file pages kept", { reason: r.message.split("\n")[0] });
      return; // no FFI or no /proc here: nothing to retry
    }
    const fields = { mappings: r.mappings, kib: r.droppedKib };
    if (first) log.info("dropped start-up file pages (they fault back in as used)", fields);
    else log.debug("dropped file pages", fields);
    first = false;
    schedule(opts.everyMs ?? TRIM_EVERY_MS);
  };
  const schedule = (ms: number) => {
    timer = setTimeout(() => void run(), ms);
    Deno.unrefTimer(timer);
  };
  schedule(opts.firstAfterMs ?? FIRST_TRIM_AFTER_MS);
  return () => {
    stopped = true;
    if (timer !== undefined) clearTimeout(timer);
  };
}
