// `deno task bench footprint`: what each resident tool costs in memory, beside Deno's floor (a
// `deno run` of an empty script by the ks tree's Deno) measured in the same run. RSS, PSS and
// anonymous memory (/proc/<pid>/smaps_rollup) idle and at peak, for the tools as shipped (the ks
// tree's launchers dist/ks-tree/bin/ks-*: the tree's Deno, its runtime flags from
// src/build/runtime_flags.ts, the tool's own entry lib/ks/ks-<tool>.js) and with Deno's defaults
// (the same Deno and entry, no runtime flags):
//   - ks-watchdog against a real redis, FEATURE enabled, probing the example telemetry daemon
//     (tcp + process): idle, then 500 probes/s for 10 s (open loop; p50/p99 printed), then a burst
//     (64 keep-alive connections in a closed loop for 5 s: the highest rate this machine reaches);
//   - ks-patcher's loop on a sandbox switch: idle, then a drift loop (a managed file overwritten
//     as soon as it was repaired, for 10 s); then with the sidecar's manifest, the host runtime
//     (~95 MB in ~30 files) included: its footprint and CPU per pass;
//   - ks-entrypoint idling while its FEATURE is disabled (resident until it execs the daemon);
//   - a raw-RESP prototype of the watchdog (bench/prototypes/resp_watchdog.ts: the same server,
//     health logic and probes without npm:redis), to show what the redis client costs;
//   - the per-feature sum (watchdog + sidecar patcher) of this run; with `--real`, the same sum on
//     the real switch (systemd + containerd + kubelet node container, telemetry at v2): PSS of
//     every resident ks-* process of the feature and the memory use of its containers' cgroups.
// Each variant is started once before it is measured, so every figure is taken with warm caches
// (the launchers' DENO_DIR in the tree; the other variants' in a DENO_DIR of their own).
//
// Run: deno run -A bench/footprint_bench.ts [--real] [--rate N] [--seconds S] [--burst-seconds S]
//      [--concurrency N] [--matrix]   (--matrix: the watchdog with each candidate V8 flag alone)
//      [--only-real]   (only the real switch's per-feature sum)
import { parseArgs } from "node:util";
import { join } from "node:path";
import { DENO_RUN_FLAGS, TREE_DIR } from "../src/build/tree.ts";
import { runtimeFlags } from "../src/build/runtime_flags.ts";
import { pathExists } from "../src/path_exists.ts";
import { maxBytesFor } from "../src/render/host_files.ts";
import { toolArgv } from "../sandbox/harness/bin.ts";
import { closedLoop, type LoadResult, openLoop, quantile } from "../sandbox/harness/http_load.ts";
import {
  cpuMs,
  type Footprint,
  footprint,
  maxFootprint,
  mib,
  sampleFootprint,
  settledFootprint,
  sumFootprints,
} from "../sandbox/harness/memory.ts";
import { waitUntil } from "../sandbox/harness/net.ts";
import { startRedis } from "../sandbox/harness/redis.ts";
import { type RunningTool, startTool } from "../sandbox/harness/running_tool.ts";
import {
  startProbingWatchdog,
  startTelemetryDaemon,
  type TelemetryDaemon,
} from "../sandbox/harness/watchdog_target.ts";
import {
  createPatcherSandbox,
  KUBE_LAUNCHER,
  telemetryManifest,
} from "../sandbox/fixtures/patcher_host.ts";

const { values } = parseArgs({
  options: {
    real: { type: "boolean", default: false },
    "only-real": { type: "boolean", default: false },
    matrix: { type: "boolean", default: false },
    rate: { type: "string", default: "500" },
    seconds: { type: "string", default: "10" },
    "burst-seconds": { type: "string", default: "5" },
    concurrency: { type: "string", default: "64" },
  },
});
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const BURST_S = Number(values["burst-seconds"]);
const CONCURRENCY = Number(values.concurrency);
/** The goal per resident tool (MiB RSS idle / at peak). */
const GOAL_IDLE = 48;
const GOAL_PEAK = 64;
const GOAL_FEATURE_PSS = 64;

const work = await Deno.makeTempDir({ prefix: "ks-footprint-" });
/** The Deno every variant runs: the ks tree's (its page cache is what the launchers map). */
const TREE_DENO = join(TREE_DIR, "bin", "deno");
/** The sidecar-manifest patcher: a pass every 5 s, measured over 30 s. */
const SIDECAR_INTERVAL_S = 5;
const SIDECAR_SECONDS = 30;

/** How a variant starts a tool (startTool's options, env aside). */
type Start = Omit<NonNullable<Parameters<typeof startTool>[2]>, "env">;
/** As shipped: the tree's launcher. */
const SHIPPED: Start = { launcher: true };
/** Deno's defaults: the tree's Deno on the tool's entry, no runtime flags, its own DENO_DIR. */
const DEFAULTS: Start = { deno: TREE_DENO, runtimeFlags: false };
/**
 * The environment of a variant: one that is not a launcher (which sets its own DENO_DIR) gets a
 * DENO_DIR of its own, so its code cache is built with its own V8 flags.
 */
function variantEnv(start: Start, env: Record<string, string>): Record<string, string> {
  if (start.launcher) return env;
  const name = JSON.stringify(start).replace(/[^a-z0-9]+/gi, "_");
  return { DENO_DIR: join(work, `deno-dir${name}`), ...env };
}

interface Row {
  what: string;
  idle: Footprint;
  peak?: Footprint;
  note?: string;
}

const rows: Row[] = [];
const fmtF = (f: Footprint) => `${mib(f.rss)} / ${mib(f.pss)} / ${mib(f.anon)}`;

function printRow(r: Row): void {
  console.log(
    `| ${r.what} | ${fmtF(r.idle)} | ${
      r.peak ? `${fmtF(r.peak)} (hwm ${mib(r.peak.hwm)})` : ""
    } | ${r.note ?? ""} |`,
  );
}

// ---- Deno's floor ------------------------------------------------------------------------------

async function floor(flags: string[], label: string): Promise<Footprint> {
  const script = join(work, `empty-${label.replace(/[^a-z0-9]+/gi, "_")}.js`);
  await Deno.writeTextFile(script, "setInterval(() => {}, 1 << 30);\n");
  const child = new Deno.Command(TREE_DENO, {
    args: ["run", ...DENO_RUN_FLAGS, ...flags, script],
    env: { DENO_DIR: join(work, "deno-dir") },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    return await settledFootprint(child.pid, { minMs: 2000 });
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
}

// ---- the watchdog ------------------------------------------------------------------------------

interface WatchdogFigures {
  idle: Footprint;
  load: LoadResult;
  loadPeak: Footprint;
  burst: LoadResult;
  burstPeak: Footprint;
}

function startWatchdog(
  start: Start,
  env: Record<string, string>,
  daemon: TelemetryDaemon,
): Promise<{ wd: RunningTool; url: string }> {
  return startProbingWatchdog(daemon, "ksfootprint", { ...start, env: variantEnv(start, env) });
}

async function measureWatchdog(
  start: Start,
  env: Record<string, string>,
  daemon: TelemetryDaemon,
  opts: { burst?: boolean; during?: (pid: number) => Promise<void> } = {},
): Promise<WatchdogFigures> {
  // Warm-up start: fills this variant's caches.
  await (await startWatchdog(start, env, daemon)).wd.stop();
  const { wd, url } = await startWatchdog(start, env, daemon);
  try {
    const idle = await settledFootprint(wd.pid);
    await opts.during?.(wd.pid);
    let sampler = sampleFootprint(wd.pid);
    const load = await openLoop(url, RATE, SECONDS);
    const loadPeak = sampler.stop();
    let burst: LoadResult = { sent: 0, errors: 0, seconds: 0, rate: 0, latencies: [] };
    let burstPeak = loadPeak;
    if (opts.burst !== false) {
      sampler = sampleFootprint(wd.pid);
      burst = await closedLoop(url, CONCURRENCY, BURST_S);
      burstPeak = sampler.stop();
    }
    return { idle, load, loadPeak, burst, burstPeak };
  } finally {
    await wd.stop();
  }
}

function latencyNote(f: WatchdogFigures): string {
  const l = f.load;
  const b = f.burst;
  return `${RATE}/s x ${SECONDS} s: p50 ${quantile(l.latencies, 0.5).toFixed(2)} ms, p99 ${
    quantile(l.latencies, 0.99).toFixed(2)
  } ms, ${l.errors} errors` +
    (b.sent > 0
      ? `; burst ${b.rate.toFixed(0)}/s (${CONCURRENCY} conns), p99 ${
        quantile(b.latencies, 0.99).toFixed(1)
      } ms, ${b.errors} errors`
      : "");
}

// ---- the patcher -------------------------------------------------------------------------------

interface PatcherFigures {
  idle: Footprint;
  peak: Footprint;
  repairs: number;
  p99: number;
}

async function measurePatcher(start: Start, driftSeconds: number): Promise<PatcherFigures> {
  const sb = await createPatcherSandbox();
  // The sidecar's manifest is JSON (ks-render's manifest-kube.json).
  const manifest = await sb.writeManifest(telemetryManifest(), "manifest-kube.json");
  const launcher = sb.host("usr/local/bin/telemetry.sh");
  const repaired = () => {
    try {
      return Deno.readTextFileSync(launcher) === KUBE_LAUNCHER;
    } catch {
      return false;
    }
  };
  // The storm guard holds a file for one --interval after 3 consecutive passes that each had to
  // repair it, and the drift loop repairs one file again and again: the drifting process runs
  // with a 1 s interval (held at most 1 s), the idle one with the loop's usual 10 minutes.
  const run = async (interval = "10m") => {
    const p = await startTool("ks-patcher", [...sb.cliArgs(manifest), "--interval", interval], {
      ...start,
      env: variantEnv(start, { PATH: sb.systemctl.path }),
    });
    await waitUntil(repaired, 30_000, "the patcher's first pass");
    return p;
  };
  try {
    await (await run()).stop(); // warm-up: this variant's caches
    Deno.writeTextFileSync(launcher, "# native again\n");
    let p = await run();
    try {
      const idle = await settledFootprint(p.pid);
      await p.stop();
      Deno.writeTextFileSync(launcher, "# native again\n");
      p = await run("1s");
      const sampler = sampleFootprint(p.pid);
      const latencies: number[] = [];
      const end = performance.now() + driftSeconds * 1000;
      let i = 0;
      while (performance.now() < end) {
        Deno.writeTextFileSync(launcher, `# upgraded ${i++}\n`);
        const t0 = performance.now();
        await waitUntil(repaired, 10_000, "repair", 1);
        latencies.push(performance.now() - t0);
        await new Promise((r) => setTimeout(r, 5));
      }
      const peak = sampler.stop();
      latencies.sort((a, b) => a - b);
      return { idle, peak, repairs: latencies.length, p99: quantile(latencies, 0.99) };
    } finally {
      await p.stop();
    }
  } finally {
    await sb.cleanup();
  }
}

/** What the sidecar's loop costs with the host runtime in its manifest, per pass and idle. */
interface SidecarFigures {
  idle: Footprint;
  files: number;
  passes: number;
  cpuPerPassMs: number;
}

/**
 * ks-patcher's loop with the sidecar's manifest: the three host files plus the host runtime (the
 * tree's Deno, every file of its bundle and the ks-stub launcher, ~95 MB in ~30 files), as
 * ks-render lists it. A pass every `intervalS` seconds for `seconds`: the CPU per pass is what
 * checking the host runtime costs the switch every interval; the footprint is read at the end.
 */
async function measureSidecarPatcher(
  start: Start,
  intervalS: number,
  seconds: number,
): Promise<SidecarFigures> {
  const sb = await createPatcherSandbox({ extraRoots: ["/usr/local/lib/kubesonic"] });
  try {
    const doc = telemetryManifest();
    const runtime = [
      "bin/deno",
      "bin/ks-stub",
      ...[...Deno.readDirSync(join(TREE_DIR, "lib/ks"))].map((e) => `lib/ks/${e.name}`),
    ];
    for (const rel of runtime) {
      const size = Deno.statSync(join(TREE_DIR, rel)).size;
      (doc.files as unknown[]).push({
        path: `/usr/local/lib/kubesonic/tree/${rel}`,
        source: join(TREE_DIR, rel),
        mode: rel.startsWith("bin/") ? "0755" : "0644",
        ...(size > 1048576 ? { maxBytes: maxBytesFor(size) } : {}),
      });
    }
    const manifest = await sb.writeManifest(doc, "manifest-kube.json");
    const installed = sb.host("usr/local/lib/kubesonic/tree/bin/ks-stub");
    const run = async () => {
      const p = await startTool("ks-patcher", [
        ...sb.cliArgs(manifest),
        "--interval",
        `${intervalS}s`,
      ], {
        ...start,
        env: variantEnv(start, { PATH: sb.systemctl.path }),
      });
      await waitUntil(() => pathExists(installed), 120_000, "the sidecar patcher's first pass");
      return p;
    };
    await (await run()).stop(); // warm-up, and the host runtime installed
    const p = await run();
    try {
      // Passes at a steady state: the files installed a while ago, the first pass over.
      await new Promise((r) => setTimeout(r, intervalS * 1000));
      const c0 = cpuMs(p.pid);
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, seconds * 1000));
      const used = cpuMs(p.pid) - c0;
      const passes = Math.max(1, Math.round((performance.now() - t0) / (intervalS * 1000)));
      const idle = await settledFootprint(p.pid, { minMs: 0 });
      return { idle, files: (doc.files as unknown[]).length, passes, cpuPerPassMs: used / passes };
    } finally {
      await p.stop();
    }
  } finally {
    await sb.cleanup();
  }
}

// ---- the idle entrypoint -----------------------------------------------------------------------

/** ks-entrypoint idling while its FEATURE is disabled (until it execs the daemon it is resident). */
async function measureEntrypoint(start: Start, env: Record<string, string>): Promise<Footprint> {
  const run = async () => {
    const ep = await startTool("ks-entrypoint", ["--feature", "bmp", "--", "/bin/true"], {
      ...start,
      env: variantEnv(start, env),
    });
    await ep.waitForLine(/idle until it is enabled/);
    return ep;
  };
  await (await run()).stop(); // warm-up: this variant's caches
  const ep = await run();
  try {
    return await settledFootprint(ep.pid);
  } finally {
    await ep.stop();
  }
}

// ---- the prototype -----------------------------------------------------------------------------

async function bundlePrototype(): Promise<string> {
  const out = join(work, "resp_watchdog.js");
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--platform",
      "deno",
      "-o",
      out,
      new URL("./prototypes/resp_watchdog.ts", import.meta.url).pathname,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!r.success) throw new Error(`bundling the prototype: ${new TextDecoder().decode(r.stderr)}`);
  return out;
}

// ---- the real switch ---------------------------------------------------------------------------

/** PSS etc. of the resident ks-* processes of each feature on a real switch at v2. */
async function realSwitch(): Promise<void> {
  const { switchUnavailableReason, startSwitches } = await import("../sandbox/harness/switch.ts");
  const why = switchUnavailableReason();
  if (why) {
    console.log(`real switch: skipped (${why})`);
    return;
  }
  const { startKube } = await import("../sandbox/harness/kube.ts");
  const { stepsThroughV2 } = await import("../sandbox/flows/real_switch.ts");
  const cluster = await startKube({ dir: join(work, "kube") });
  try {
    const lab = await startSwitches({ cluster, dir: join(work, "switches"), log: () => {} });
    try {
      const sw = lab.switches[0];
      const env = { cluster, sw, others: [], dir: work, note: () => {} };
      // v0, v1, then v2 (the pod with entrypoint -> daemon, watchdog, sidecar; the stub on the host)
      for (const step of stepsThroughV2()) await step.run(env);
      await new Promise((r) => setTimeout(r, 5000));
      const perFeature = new Map<
        string,
        { procs: string[]; fp: Footprint[]; cgroups: Set<string> }
      >();
      const podFeature = new Map<string, string>();
      const found: { pid: number; tool: string; feature?: string; pod?: string; cg: string }[] = [];
      // The processes of the features' units (the launcher and what it runs: a resident ks-stub
      // wait, or the tail that watches the container after wait handed off).
      const inUnits: { pid: number; unit: string; cmd: string[] }[] = [];
      for (const entry of Deno.readDirSync("/proc")) {
        if (!/^\d+$/.test(entry.name)) continue;
        let cmd: string[];
        let cg: string;
        let cgroups: string;
        try {
          cgroups = Deno.readTextFileSync(`/proc/${entry.name}/cgroup`);
          cmd = cgroups.includes(sw.cgroup)
            ? Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).split("\0")
            : [];
          cg = /:memory:(.*)/.exec(cgroups)?.[1] ?? "";
        } catch {
          continue;
        }
        const unit = cmd.length
          ? /\/system\.slice\/([\w@.-]+)\.service/.exec(cgroups)?.[1]
          : undefined;
        if (unit) inUnits.push({ pid: Number(entry.name), unit, cmd });
        const script = cmd.find((a) => /\/ks-[a-z-]+\.js$/.test(a));
        if (!script) continue;
        const tool = /(ks-[a-z-]+)\.js$/.exec(script)![1];
        const rest = cmd.slice(cmd.indexOf(script) + 1);
        const flag = rest.indexOf("--feature");
        const feature = flag >= 0 ? rest[flag + 1] : tool === "ks-stub" ? rest[0] : undefined;
        const pod = /(.*\/pod[0-9a-f_-]+)/.exec(cg)?.[1];
        if (pod && feature) podFeature.set(pod, feature);
        found.push({ pid: Number(entry.name), tool, feature, pod, cg });
      }
      const features = new Set(found.map((p) => p.feature).filter((f) => f !== undefined));
      for (const u of inUnits) {
        const feature = u.unit.replace(/@.*$/, "");
        if (!features.has(feature) || found.some((p) => p.pid === u.pid)) continue;
        const tool = [u.cmd[0].split("/").at(-1), u.cmd[1]?.split("/").at(-1)]
          .filter(Boolean).join(" ").slice(0, 40);
        found.push({ pid: u.pid, tool, feature, cg: "" });
      }
      for (const p of found) {
        const feature = p.feature ?? (p.pod ? podFeature.get(p.pod) : undefined) ?? "(unknown)";
        const e = perFeature.get(feature) ?? { procs: [], fp: [], cgroups: new Set<string>() };
        try {
          const fp = footprint(p.pid);
          e.fp.push(fp);
          e.procs.push(`${p.tool}[${p.pid}] ${fmtF(fp)}`);
          if (p.pod) e.cgroups.add(p.cg);
        } catch { /* gone */ }
        perFeature.set(feature, e);
      }
      console.log("");
      console.log(`real switch ${sw.name}, telemetry at v2 (the switch image's own launchers):`);
      console.log(
        "| feature | resident kubesonic processes | sum RSS / PSS / anon (MiB) | " +
          "containers' cgroups: usage - inactive_file (MiB) |",
      );
      console.log("|---|---|---|---|");
      for (const [feature, e] of perFeature) {
        const sum = sumFootprints(e.fp);
        const cgroups: string[] = [];
        for (const cg of e.cgroups) {
          try {
            const base = `/sys/fs/cgroup/memory${cg}`;
            const usage = Number(Deno.readTextFileSync(`${base}/memory.usage_in_bytes`));
            const stat = Deno.readTextFileSync(`${base}/memory.stat`);
            const inactive = Number(/^total_inactive_file (\d+)/m.exec(stat)?.[1] ?? 0);
            cgroups.push(
              `${cg.split("/").at(-1)!.slice(0, 12)} ${mib((usage - inactive) / 1048576)}`,
            );
          } catch { /* cgroup v2 or gone */ }
        }
        console.log(
          `| ${feature} | ${e.procs.join(", ")} | ${fmtF(sum)} (goal PSS <= ${GOAL_FEATURE_PSS}: ${
            sum.pss <= GOAL_FEATURE_PSS ? "met" : "MISSED"
          }) | ${cgroups.join(", ")} |`,
        );
      }
    } finally {
      await lab.stop();
    }
  } finally {
    await cluster.stop();
  }
}

// ---- main --------------------------------------------------------------------------------------

if (values["only-real"]) {
  try {
    await realSwitch();
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  Deno.exit(0);
}
const redis = await startRedis();
const daemon = await startTelemetryDaemon("ksfootprint");
try {
  await toolArgv("ks-watchdog");
  await toolArgv("ks-patcher");
  await toolArgv("ks-entrypoint");
  const shippedWd = runtimeFlags("ks-watchdog");
  const shippedPatcher = runtimeFlags("ks-patcher");
  console.log(`load average at start: ${Deno.loadavg().map((l) => l.toFixed(1)).join(" ")}`);
  console.log(`ks-watchdog runtime flags: ${shippedWd.join(" ") || "(none)"}`);
  console.log(`ks-patcher runtime flags: ${shippedPatcher.join(" ") || "(none)"}`);

  const floorDefaults = await floor([], "defaults");
  const floorFlags = await floor(shippedWd, "flags");
  rows.push({ what: "Deno floor: `deno run` of an empty script, defaults", idle: floorDefaults });
  rows.push({ what: `Deno floor, ${shippedWd.join(" ")}`, idle: floorFlags });

  // As shipped (the launchers), then with Deno's defaults, then the prototype.
  const wd = await measureWatchdog(SHIPPED, redis.env, daemon);
  rows.push({
    what: "ks-watchdog as shipped",
    idle: wd.idle,
    peak: maxFootprint(wd.loadPeak, wd.burstPeak),
    note: latencyNote(wd) + `; peak at ${RATE}/s ${mib(wd.loadPeak.rss)} RSS`,
  });
  const pt = await measurePatcher(SHIPPED, SECONDS);
  rows.push({
    what: "ks-patcher loop as shipped",
    idle: pt.idle,
    peak: pt.peak,
    note: `drift loop ${SECONDS} s: ${pt.repairs} repairs, p99 ${pt.p99.toFixed(1)} ms`,
  });

  const sidecar = await measureSidecarPatcher(SHIPPED, SIDECAR_INTERVAL_S, SIDECAR_SECONDS);
  rows.push({
    what: "ks-patcher loop as shipped, the sidecar's manifest (with the host runtime)",
    idle: sidecar.idle,
    note: `${sidecar.files} files; CPU per pass ${
      sidecar.cpuPerPassMs.toFixed(0)
    } ms (${sidecar.passes} passes, every ${SIDECAR_INTERVAL_S} s)`,
  });

  const wdDefaults = await measureWatchdog(DEFAULTS, redis.env, daemon);
  rows.push({
    what: "ks-watchdog, Deno defaults",
    idle: wdDefaults.idle,
    peak: maxFootprint(wdDefaults.loadPeak, wdDefaults.burstPeak),
    note: latencyNote(wdDefaults),
  });
  const ptDefaults = await measurePatcher(DEFAULTS, SECONDS);
  rows.push({
    what: "ks-patcher loop, Deno defaults",
    idle: ptDefaults.idle,
    peak: ptDefaults.peak,
    note: `drift loop: ${ptDefaults.repairs} repairs, p99 ${ptDefaults.p99.toFixed(1)} ms`,
  });

  for (const [label, start] of [["as shipped", SHIPPED], ["Deno defaults", DEFAULTS]] as const) {
    rows.push({
      what: `ks-entrypoint idle (FEATURE disabled), ${label}`,
      idle: await measureEntrypoint(start, redis.env),
      note: "gone once it execs the daemon",
    });
  }

  const proto = await measureWatchdog(
    { deno: TREE_DENO, runtimeFlags: false, denoFlags: shippedWd, bundle: await bundlePrototype() },
    redis.env,
    daemon,
  );
  rows.push({
    what: "watchdog prototype without npm:redis (raw RESP), same flags",
    idle: proto.idle,
    peak: maxFootprint(proto.loadPeak, proto.burstPeak),
    note: latencyNote(proto),
  });

  const matrix: Row[] = [];
  if (values.matrix) {
    const candidates = [
      [],
      ["--lite-mode"],
      ["--max-semi-space-size=1"],
      ["--lite-mode", "--max-semi-space-size=1"],
      ["--lite-mode", "--max-semi-space-size=1", "--single-threaded-gc"],
      ["--lite-mode", "--max-semi-space-size=1", "--max-old-space-size=32"],
      ["--lite-mode", "--max-semi-space-size=1", "--stack-size=256"],
      ["--lite-mode", "--max-semi-space-size=1", "--optimize-for-size"],
      ["--jitless"],
    ];
    for (const v8 of candidates) {
      const flags = v8.length ? [`--v8-flags=${v8.join(",")}`] : [];
      const label = v8.join(" ") || "defaults";
      const f = await measureWatchdog(
        { deno: TREE_DENO, runtimeFlags: false, denoFlags: flags },
        redis.env,
        daemon,
        { burst: false },
      );
      matrix.push({ what: label, idle: f.idle, peak: f.loadPeak, note: latencyNote(f) });
    }
  }
  console.log(`load average at end: ${Deno.loadavg().map((l) => l.toFixed(1)).join(" ")}`);

  console.log("");
  console.log(
    `| what | idle RSS / PSS / anon (MiB) | peak RSS / PSS / anon (MiB) | load, latency |`,
  );
  console.log("|---|---|---|---|");
  for (const r of rows) printRow(r);
  const feature = sumFootprints([wd.idle, pt.idle]);
  const featurePeak = sumFootprints([maxFootprint(wd.loadPeak, wd.burstPeak), pt.peak]);
  console.log(
    `| per feature (watchdog + sidecar patcher, as shipped) | ${fmtF(feature)} | ${
      fmtF(featurePeak)
    } | PSS here counts each tool alone; on a switch they share Deno's pages |`,
  );
  console.log("");
  for (
    const [what, idle, peak] of [
      ["ks-watchdog", wd.idle, maxFootprint(wd.loadPeak, wd.burstPeak)],
      ["ks-patcher", pt.idle, pt.peak],
    ] as const
  ) {
    console.log(
      `goal ${what}: idle RSS ${mib(idle.rss)} <= ${GOAL_IDLE} MiB: ${
        idle.rss <= GOAL_IDLE ? "met" : "MISSED"
      }; peak RSS ${mib(peak.hwm)} <= ${GOAL_PEAK} MiB: ${
        peak.hwm <= GOAL_PEAK ? "met" : "MISSED"
      }`,
    );
  }
  console.log(
    `npm:redis costs the watchdog ${mib(wd.idle.rss - proto.idle.rss)} MiB RSS / ${
      mib(wd.idle.anon - proto.idle.anon)
    } MiB anonymous idle (against the raw-RESP prototype)`,
  );
  if (matrix.length) {
    console.log("");
    console.log("| ks-watchdog V8 flags | idle RSS / PSS / anon | peak at 500/s | latency |");
    console.log("|---|---|---|---|");
    for (const r of matrix) printRow(r);
  }
  if (values.real) await realSwitch();
  else console.log("(the real switch's per-feature sum: add --real; it boots a switch, ~5-10 min)");
} finally {
  await daemon.stop();
  await redis.stop();
  await Deno.remove(work, { recursive: true }).catch(() => {});
}
