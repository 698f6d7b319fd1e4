// What a process costs in memory (and CPU), read from the kernel the way an operator would: RSS, PSS
// (resident pages divided by the number of processes mapping them: the fair share of a runtime file
// that several tools map) and anonymous memory (the process's own heap, never shared) from
// /proc/<pid>/smaps_rollup, plus VmHWM (the kernel's RSS high-water mark) from /proc/<pid>/status.
// A sampler keeps the maximum of each while a load runs, since only RSS has a kernel peak. The
// CPU a process used so far (utime + stime) is the figure a loaded machine does not move.

/** One process's memory, in MiB. */
export interface Footprint {
  rss: number;
  pss: number;
  anon: number;
  /** VmHWM: the highest RSS since the process started. */
  hwm: number;
}

const MIB = 1024;

function field(text: string, key: string): number {
  const match = new RegExp(`^${key}:\\s*(\\d+) kB`, "m").exec(text);
  return match ? Number(match[1]) / MIB : 0;
}

/** utime + stime of `pid` so far, in ms (/proc/<pid>/stat, USER_HZ 100). */
export function cpuMs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Reads `pid`'s footprint. Throws (NotFound) when the process is gone. */
export function footprint(pid: number): Footprint {
  const rollup = Deno.readTextFileSync(`/proc/${pid}/smaps_rollup`);
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return {
    rss: field(rollup, "Rss"),
    pss: field(rollup, "Pss"),
    anon: field(rollup, "Anonymous"),
    hwm: field(status, "VmHWM"),
  };
}

/** The field-wise maximum of two footprints. */
export function maxFootprint(a: Footprint, b: Footprint): Footprint {
  return {
    rss: Math.max(a.rss, b.rss),
    pss: Math.max(a.pss, b.pss),
    anon: Math.max(a.anon, b.anon),
    hwm: Math.max(a.hwm, b.hwm),
  };
}

/** The field-wise sum (for the processes of one feature). */
export function sumFootprints(list: Footprint[]): Footprint {
  return list.reduce(
    (s, f) => ({
      rss: s.rss + f.rss,
      pss: s.pss + f.pss,
      anon: s.anon + f.anon,
      hwm: s.hwm + f.hwm,
    }),
    { rss: 0, pss: 0, anon: 0, hwm: 0 },
  );
}

/** A running sampler: `stop()` returns the peak of every field seen (and the RSS high-water). */
export interface FootprintSampler {
  stop(): Footprint;
}

/** Samples `pid` every `everyMs` until stopped; the result includes VmHWM read at the end. */
export function sampleFootprint(pid: number, everyMs = 50): FootprintSampler {
  let peak = footprint(pid);
  const timer = setInterval(() => {
    try {
      peak = maxFootprint(peak, footprint(pid));
    } catch { /* gone: stop() reports what was seen */ }
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      try {
        peak = maxFootprint(peak, footprint(pid));
      } catch { /* gone */ }
      return peak;
    },
  };
}

/**
 * Waits until `pid`'s RSS has settled (two reads `everyMs` apart within 0.25 MiB, after at least
 * `minMs`; V8 shrinks its heap some time after start-up), at most `maxMs`, then returns the
 * footprint. The idle figure of a resident tool.
 */
export async function settledFootprint(
  pid: number,
  opts: { minMs?: number; maxMs?: number; everyMs?: number } = {},
): Promise<Footprint> {
  const { minMs = 3000, maxMs = 12_000, everyMs = 1000 } = opts;
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, minMs));
  let last = footprint(pid);
  while (Date.now() - t0 < maxMs) {
    await new Promise((r) => setTimeout(r, everyMs));
    const now = footprint(pid);
    const steady = Math.abs(now.rss - last.rss) < 0.25;
    last = now;
    if (steady) break;
  }
  return last;
}

/** `12.3` with one decimal, for tables. */
export function mib(n: number): string {
  return n.toFixed(1);
}
