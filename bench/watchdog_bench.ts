// `deno task bench watchdog`: the bundled ks-watchdog under a kubelet-like load far above the real
// one — 500 requests/s for ~10 s (open loop: a request every 2 ms whether or not the previous one
// answered, over keep-alive connections), FEATURE enabled, probing the bundled telemetry daemon
// (tcp + process). Reports answer latency p50/p99/max, errors, and the watchdog's RSS (VmRSS at
// the end, VmHWM peak), as shipped (the launcher's runtime flags, src/build/runtime_flags.ts) and
// with Deno's defaults. Beside it, the public Rust watchdog's figures as measured before (its
// code is not in this tree). Memory in detail: `deno task bench footprint`.
// A before/after comparison in the same run: KS_BENCH_COMPARE=<another ks-watchdog.js> (e.g. a
// bundle built from the previous commit) adds that bundle with the shipped flags, and
// KS_BENCH_ROUNDS=N interleaves N rounds of both (shipped, compared, shipped, ...).
import { startRedis } from "../sandbox/harness/redis.ts";
import { startTool } from "../sandbox/harness/running_tool.ts";
import { openLoop, quantile } from "../sandbox/harness/http_load.ts";
import {
  startProbingWatchdog,
  startTelemetryDaemon,
  type TelemetryDaemon,
} from "../sandbox/harness/watchdog_target.ts";
import { cpuMs } from "../sandbox/harness/memory.ts";
import { runtimeFlags } from "../src/build/runtime_flags.ts";

const RATE = Number(Deno.env.get("KS_BENCH_RATE") ?? 500);
const SECONDS = Number(Deno.env.get("KS_BENCH_SECONDS") ?? 10);

function memory(pid: number): { rss: number; hwm: number } {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (key: string) => Number(new RegExp(`${key}:\\s*(\\d+) kB`).exec(status)?.[1] ?? 0);
  return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 };
}

interface Result {
  label: string;
  p50: number;
  p99: number;
  max: number;
  errors: number;
  sent: number;
  idleRss: number;
  /** The watchdog's CPU time per answered request (µs). */
  cpuPerRequestUs: number;
  rss: number;
  hwm: number;
}

async function run(
  label: string,
  shipped: boolean,
  env: Record<string, string>,
  daemon: TelemetryDaemon,
  bundle?: string,
): Promise<Result> {
  // A bundle's first run also fills Deno's module-analysis cache (more memory that run only).
  await (await startTool("ks-watchdog", ["--version"], { env, runtimeFlags: shipped, bundle }))
    .status;
  const { wd, url } = await startProbingWatchdog(daemon, "ksbenchtelem", {
    env,
    runtimeFlags: shipped,
    bundle,
  });
  try {
    await new Promise((r) => setTimeout(r, 500));
    const idleRss = memory(wd.pid).rss;
    const cpu0 = cpuMs(wd.pid);
    const load = await openLoop(url, RATE, SECONDS);
    const { latencies, errors, sent: total } = load;
    const elapsed = load.seconds;
    const cpuPerRequestUs = ((cpuMs(wd.pid) - cpu0) * 1000) / Math.max(1, latencies.length);
    const mem = memory(wd.pid);
    console.log(
      `${label}: ${total} requests in ${elapsed.toFixed(1)} s (${(total / elapsed).toFixed(0)}/s)`,
    );
    return {
      label,
      p50: quantile(latencies, 0.5),
      p99: quantile(latencies, 0.99),
      max: latencies.at(-1) ?? NaN,
      errors,
      sent: total,
      idleRss,
      cpuPerRequestUs,
      ...mem,
    };
  } finally {
    await wd.stop();
  }
}

const redis = await startRedis();
const daemon = await startTelemetryDaemon("ksbenchtelem");
try {
  console.log(`load average at start: ${Deno.loadavg().map((l) => l.toFixed(1)).join(" ")}`);
  const compare = Deno.env.get("KS_BENCH_COMPARE");
  const rounds = Number(Deno.env.get("KS_BENCH_ROUNDS") ?? 1);
  const shipped = `as shipped: ${runtimeFlags("ks-watchdog").join(" ")}`;
  const results = [];
  for (let round = 1; round <= rounds; round++) {
    const tag = rounds > 1 ? ` (round ${round})` : "";
    results.push(await run(shipped + tag, true, redis.env, daemon));
    if (compare) {
      results.push(await run(`${compare}, same flags${tag}`, true, redis.env, daemon, compare));
    }
  }
  results.push(await run("Deno defaults", false, redis.env, daemon));
  console.log(`load average at end: ${Deno.loadavg().map((l) => l.toFixed(1)).join(" ")}`);
  console.log("");
  console.log(
    `| ks-watchdog, ${RATE} req/s x ${SECONDS} s, tcp + process probes | p50 | p99 | max | non-200 | CPU/request | RSS idle | RSS end | RSS peak |`,
  );
  console.log("|---|---|---|---|---|---|---|---|---|");
  for (const r of results) {
    console.log(
      `| ${r.label} | ${r.p50.toFixed(2)} ms | ${r.p99.toFixed(2)} ms | ${r.max.toFixed(1)} ms | ` +
        `${r.errors}/${r.sent} | ${r.cpuPerRequestUs.toFixed(0)} µs | ${
          r.idleRss.toFixed(0)
        } MB | ${r.rss.toFixed(0)} MB | ${r.hwm.toFixed(0)} MB |`,
    );
  }
  console.log(
    "| public Rust telemetry watchdog (measured before: 4 concurrent connections) | | ~42 ms | | | | 2.4 MB | | |",
  );
  console.log(
    "(its ~290 requests/s ceiling is below this load; kubelet sends ~2 probes per period)",
  );
} finally {
  await daemon.stop();
  await redis.stop();
}
