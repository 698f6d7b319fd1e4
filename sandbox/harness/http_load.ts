// HTTP load for benchmarks: an open loop (a GET every 1/rate s whether or not the previous one
// answered, as many probers would) and a closed loop (N connections, each sending its next request
// when the last answer arrived: the highest rate the client and the server reach together).
// Loopback only: the URL is whatever the caller started on 127.0.0.1.

/** What a load run measured. */
export interface LoadResult {
  sent: number;
  /** Answers other than `expectStatus`, plus failed requests. */
  errors: number;
  seconds: number;
  /** Answered requests per second. */
  rate: number;
  /** Latencies in ms, sorted ascending. */
  latencies: number[];
}

/** The q-quantile (0..1) of ascending `sorted` values; NaN when empty. */
export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function timedGet(url: string, expectStatus: number): Promise<number | undefined> {
  const sent = performance.now();
  try {
    const response = await fetch(url);
    await response.arrayBuffer();
    return response.status === expectStatus ? performance.now() - sent : undefined;
  } catch {
    return undefined;
  }
}

/** Sends `rate` GETs per second for `seconds` (open loop) and waits for every answer. */
export async function openLoop(
  url: string,
  rate: number,
  seconds: number,
  expectStatus = 200,
): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  const total = Math.round(rate * seconds);
  const interval = 1000 / rate;
  const inflight: Promise<void>[] = [];
  const t0 = performance.now();
  for (let i = 0; i < total; i++) {
    const wait = t0 + i * interval - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inflight.push(
      timedGet(url, expectStatus).then((ms) => {
        if (ms === undefined) errors++;
        else latencies.push(ms);
      }),
    );
  }
  await Promise.all(inflight);
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return { sent: total, errors, seconds: elapsed, rate: latencies.length / elapsed, latencies };
}

/** `concurrency` request loops for `seconds` (closed loop): the burst at the highest rate. */
export async function closedLoop(
  url: string,
  concurrency: number,
  seconds: number,
  expectStatus = 200,
): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let sent = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      sent++;
      const ms = await timedGet(url, expectStatus);
      if (ms === undefined) errors++;
      else latencies.push(ms);
    }
  }));
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return { sent, errors, seconds: elapsed, rate: latencies.length / elapsed, latencies };
}
