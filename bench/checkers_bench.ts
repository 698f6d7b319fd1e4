// `deno task bench checkers`: wall time and peak RSS of one ks-container-checker run (the bundled
// tool, as monit runs it) with 50 containers running (40 native in a private dockerd, 10 kubelet
// pods through the CRI of a private containerd) and 50 FEATURE rows, beside the public Python
// checker's approach: one `docker` CLI call per container (here `docker inspect` per expected
// name, in a shell loop; the CONFIG_DB read is not even counted for it). Also one
// ks-memory-checker run beside memory_checker's `docker ps --no-trunc --filter name=` + reading
// the cgroup files, and the in-process time of one check (without Deno's start-up).
import { join } from "node:path";
import { toolArgv } from "../sandbox/harness/bin.ts";
import { dockerCliPath, dockerUnavailableReason, startDocker } from "../sandbox/harness/docker.ts";
import {
  containerdUnavailableReason,
  crictlPath,
  startContainerd,
} from "../sandbox/harness/containerd.ts";
import { importBusyboxDocker } from "../sandbox/harness/images.ts";
import { startRedis } from "../sandbox/harness/redis.ts";
import { checkContainers } from "../src/checkers/container_check.ts";

const RUNS = Number(Deno.env.get("KS_BENCH_RUNS") ?? 20);
const WARMUP = 3;
const NATIVE = 40;
const KUBE = 10;

interface Timing {
  median: number;
  p90: number;
  rssMb: number;
  /** Median CPU time (user + system) in ms: less sensitive to a loaded machine than wall time. */
  cpu: number;
}

async function timeRuns(argv: string[], env: Record<string, string>, expect: number) {
  const times: number[] = [];
  const cpus: number[] = [];
  let rss = 0;
  for (let i = 0; i < WARMUP + RUNS; i++) {
    const t0 = performance.now();
    // /usr/bin/time: peak RSS (KiB) and user/system CPU seconds of the command and its children.
    const out = await new Deno.Command("/usr/bin/time", {
      args: ["-f", "%M %U %S", ...argv],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const ms = performance.now() - t0;
    const stderr = new TextDecoder().decode(out.stderr).trim();
    if (out.code !== expect) {
      throw new Error(`${argv.join(" ")} exited ${out.code}: ${stderr}`);
    }
    if (i >= WARMUP) {
      times.push(ms);
      const [kib, user, sys] = (stderr.split("\n").at(-1) ?? "").split(" ").map(Number);
      rss = Math.max(rss, kib / 1024);
      cpus.push((user + sys) * 1000);
    }
  }
  times.sort((a, b) => a - b);
  cpus.sort((a, b) => a - b);
  return {
    median: times[Math.floor(times.length / 2)],
    p90: times[Math.floor(times.length * 0.9)],
    rssMb: rss,
    cpu: cpus[Math.floor(cpus.length / 2)],
  } satisfies Timing;
}

const fmt = (t: Timing) =>
  `median ${t.median.toFixed(1)} ms, p90 ${t.p90.toFixed(1)} ms, CPU ${t.cpu.toFixed(0)} ms, ` +
  `peak RSS ${t.rssMb.toFixed(0)} MB`;

async function main() {
  const skip = dockerUnavailableReason() ?? containerdUnavailableReason() ??
    (crictlPath() ? undefined : "crictl not built");
  if (skip) {
    console.log(`checkers_bench: skipped (${skip})`);
    return;
  }
  const names = Array.from(
    { length: NATIVE + KUBE },
    (_, i) => `feat${String(i).padStart(2, "0")}`,
  );
  const redis = await startRedis({
    features: Object.fromEntries(names.map((n) => [n, { state: "enabled" }])),
  });
  const docker = await startDocker();
  const containerd = await startContainerd();
  const dir = await Deno.makeTempDir({ prefix: "ks-checkers-bench-" });
  try {
    const image = await importBusyboxDocker(docker);
    await docker.docker(["tag", image, "docker-sonic-telemetry:latest"]);
    for (const n of names.slice(0, NATIVE)) {
      const r = await docker.docker([
        "run",
        "-d",
        "--network",
        "host",
        "--name",
        n,
        image,
        "sleep",
        "3600",
      ]);
      if (r.code !== 0) throw new Error(`docker run ${n}: ${r.stderr}`);
    }
    for (const n of names.slice(NATIVE)) {
      await containerd.runPod({
        name: `${n}-node`,
        containers: [{ name: n, command: ["sleep", "3600"] }],
      });
    }
    const env = { ...redis.env, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: dir };
    const runtimeArgs = [
      "--docker-socket",
      docker.socketPath,
      "--cri-socket",
      containerd.socketPath,
    ];

    const ours = await timeRuns(
      [...await toolArgv("ks-container-checker"), ...runtimeArgs],
      env,
      0,
    );

    // The public checker's approach: one docker CLI call per container (native ones; the 10
    // kubelet containers are not visible to it at all).
    const script = join(dir, "per-container.sh");
    await Deno.writeTextFile(
      script,
      `#!/bin/sh\nmissing=""\nfor n in ${names.slice(0, NATIVE).join(" ")}; do\n` +
        `  [ "$(${dockerCliPath()} -H unix://${docker.socketPath} inspect -f '{{.State.Running}}' "$n" 2>/dev/null)" = true ] || missing="$missing $n"\n` +
        `done\n[ -z "$missing" ] || { echo "Expected containers not running:$missing"; exit 3; }\n`,
      { mode: 0o755 },
    );
    const perContainer = await timeRuns(["sh", script], env, 0);

    const inProcRuns: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const s = performance.now();
      const r = await checkContainers({
        endpoints: { docker: docker.socketPath, cri: containerd.socketPath, timeoutMs: 2000 },
        db: { dbConfigPath: redis.env.KS_DB_CONFIG },
        asicConf: join(dir, "none.conf"),
      });
      if (r.missing.length) throw new Error(`missing ${r.missing}`);
      inProcRuns.push(performance.now() - s);
    }
    inProcRuns.sort((a, b) => a - b);

    // Memory: ours vs memory_checker's docker ps + cgroup read (one container).
    const mem = await timeRuns(
      [...await toolArgv("ks-memory-checker"), ...runtimeArgs, "feat00", "419430400"],
      env,
      0,
    );
    const memScript = join(dir, "memory.sh");
    await Deno.writeTextFile(
      memScript,
      `#!/bin/sh\nid=$(${dockerCliPath()} -H unix://${docker.socketPath} ps --no-trunc --filter name=feat00 | awk 'NR>1 {print $1; exit}')\n` +
        `u=$(cat /sys/fs/cgroup/memory/docker/$id/memory.usage_in_bytes)\n` +
        `c=$(awk '/^total_inactive_file/ {print $2}' /sys/fs/cgroup/memory/docker/$id/memory.stat)\n` +
        `[ $((u - c)) -gt 419430400 ] && exit 3\nexit 0\n`,
      { mode: 0o755 },
    );
    const memAnchor = await timeRuns(["sh", memScript], env, 0);

    console.log(
      `containers: ${NATIVE} native (dockerd) + ${KUBE} kubelet-style (CRI), ${names.length} FEATURE rows, ${RUNS} runs`,
    );
    console.log(`ks-container-checker (bundled, CONFIG_DB + Docker API + CRI): ${fmt(ours)}`);
    console.log(
      `one docker CLI call per container (${NATIVE} calls, no CONFIG_DB, blind to CRI): ${
        fmt(perContainer)
      }`,
    );
    console.log(
      `  ratio: ${(perContainer.median / ours.median).toFixed(1)}x wall, ${
        (perContainer.cpu / ours.cpu).toFixed(1)
      }x CPU`,
    );
    console.log(
      `checkContainers() in process (no start-up): median ${
        inProcRuns[Math.floor(RUNS / 2)].toFixed(1)
      } ms, p90 ${inProcRuns[Math.floor(RUNS * 0.9)].toFixed(1)} ms`,
    );
    console.log(`ks-memory-checker (bundled, one container): ${fmt(mem)}`);
    console.log(`memory_checker's approach (docker ps --filter + cgroup files): ${fmt(memAnchor)}`);
    console.log(
      `  ratio: ${(memAnchor.median / mem.median).toFixed(1)}x wall, ${
        (memAnchor.cpu / mem.cpu).toFixed(1)
      }x CPU`,
    );
  } finally {
    await containerd.stop();
    await docker.stop();
    await redis.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await main();
