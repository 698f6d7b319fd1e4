// `deno task bench rollout`: rolls a kwok fleet (KS_BENCH_FLEET, default 1000 switches) with the
// bundled ks-rollout (zero bake, --max-in-flight 10% of the fleet) and reports wall time, API
// requests per node and the tool's peak RSS; then a revision not Ready on a random 5% of the
// switches: where it stopped, how many switches ever ran it, how long the rollback took; beside it, `kubectl rollout status` of a RollingUpdate
// DaemonSet (maxUnavailable 10%, the same unavailability) after `kubectl set image`, on the same
// fleet and control plane. Also prints how long the fleet and the first DaemonSet took.
import { toolArgv } from "../sandbox/harness/bin.ts";
import { kubeBinDir, SONIC_NAMESPACE, startKube } from "../sandbox/harness/kube.ts";
import {
  addFleet,
  createDaemonSet,
  daemonSet,
  deleteDaemonSet,
  fleetNames,
  PodRecorder,
  waitReady,
  writeManifest,
} from "../sandbox/fixtures/fleet.ts";
import type { RolloutReport } from "../src/rollout/run.ts";
import { waitUntil } from "../sandbox/harness/net.ts";

const FLEET = Number(Deno.env.get("KS_BENCH_FLEET") ?? 1000);
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Runs argv under /usr/bin/time; returns exit code, stdout, stderr and max RSS in MB. */
async function timed(argv: string[]) {
  const out = await new Deno.Command("/usr/bin/time", {
    args: ["-f", "KS_MAXRSS_KB=%M", ...argv],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  const kb = Number(/KS_MAXRSS_KB=(\d+)/.exec(stderr)?.[1] ?? 0);
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr,
    rssMb: kb / 1024,
  };
}

async function main() {
  if (!kubeBinDir()) {
    console.log("rollout_bench: skipped (no Kubernetes binaries; run scripts/build-kube.sh)");
    return;
  }
  const inFlight = Math.max(1, Math.round(FLEET / 10));
  const kube = await startKube();
  const dir = await Deno.makeTempDir({ prefix: "ks-rollout-bench-" });
  try {
    let t0 = performance.now();
    await addFleet(kube, fleetNames(FLEET));
    const nodesMs = performance.now() - t0;
    t0 = performance.now();
    await createDaemonSet(kube, "telemetry", FLEET, {}, 900_000);
    const dsMs = performance.now() - t0;
    console.log(
      `fleet: ${FLEET} kwok nodes Ready in ${s(nodesMs)}; OnDelete DaemonSet Ready in ${s(dsMs)}`,
    );

    const v2 = await writeManifest(
      dir,
      "telemetry-v2",
      daemonSet("telemetry", { image: "kubesonic/telemetry:v2" }),
    );
    const argv = await toolArgv("ks-rollout");
    t0 = performance.now();
    const run = await timed([
      ...argv,
      "telemetry",
      "--to",
      v2,
      "--kubeconfig",
      kube.kubeconfigPath,
      "--bake",
      "0s",
      "--max-in-flight",
      String(inFlight),
      "--ready-timeout",
      "5m",
      "--output",
      "json",
    ]);
    const rolloutMs = performance.now() - t0;
    if (run.code !== 0) {
      throw new Error(`ks-rollout exited ${run.code}: ${run.stderr.slice(-1500)}`);
    }
    const report: RolloutReport = JSON.parse(run.stdout);
    console.log(
      `ks-rollout: ${FLEET} nodes in ${s(rolloutMs)} (waves ${
        report.progress!.waves.map((w) => w.upTo).join(",")
      }, zero bake, --max-in-flight ${inFlight}); ${report.requests} API requests = ` +
        `${report.requestsPerNode} per node; peak RSS ${run.rssMb.toFixed(0)} MB`,
    );
    // The same fleet, a revision whose readiness fails on a random 5% of the switches.
    const flaky = fleetNames(FLEET).sort(() => Math.random() - 0.5).slice(0, Math.ceil(FLEET / 20));
    const v3 = await writeManifest(
      dir,
      "telemetry-v3",
      daemonSet("telemetry", {
        image: "kubesonic/telemetry:v3",
        annotations: { "kubesonic.test/not-ready-nodes": flaky.join(",") },
      }),
    );
    const recorder = await PodRecorder.start(kube, "telemetry");
    t0 = performance.now();
    const bad = await timed([
      ...argv,
      "telemetry",
      "--to",
      v3,
      "--kubeconfig",
      kube.kubeconfigPath,
      "--bake",
      "10s",
      "--max-in-flight",
      String(inFlight),
      "--ready-timeout",
      "20s",
      "--output",
      "json",
    ]);
    const badMs = performance.now() - t0;
    await recorder.stop();
    if (bad.code !== 4) {
      throw new Error(`ks-rollout (5% bad) exited ${bad.code}: ${bad.stderr.slice(-1500)}`);
    }
    const badReport: RolloutReport = JSON.parse(bad.stdout);
    const stopped = badReport.progress!.waves.find((w) => w.status === "stopped")!;
    const onBad = recorder.nodesByHash.get(badReport.progress!.targetHash)?.size ?? 0;
    console.log(
      `ks-rollout, not Ready on a random 5% (${flaky.length} switches): stopped in wave ` +
        `${stopped.wave} (up to ${stopped.upTo} switches) with ${badReport.progress!.failed} ` +
        `failed; ${onBad} switches ever ran it; rolled back, in ${s(badMs)} overall ` +
        `(--bake 10s, --ready-timeout 20s); ${badReport.requestsPerNode} requests per node`,
    );
    if (onBad > stopped.upTo) throw new Error(`${onBad} switches ran the bad revision`);
    await deleteDaemonSet(kube, "telemetry");
    await waitUntil(
      async () => {
        const pods = await kube.rest.list(`/api/v1/namespaces/${SONIC_NAMESPACE}/pods`, {
          labelSelector: "raw_container_name=telemetry",
          limit: 1,
        });
        return pods.items.length === 0;
      },
      600_000,
      "the first DaemonSet's pods gone",
      1000,
    );

    // The anchor: the DaemonSet controller's own RollingUpdate, at the same unavailability.
    const ru = daemonSet("gnmi") as { spec: Record<string, unknown> };
    ru.spec.updateStrategy = { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "10%" } };
    await kube.rest.create(`/apis/apps/v1/namespaces/${SONIC_NAMESPACE}/daemonsets`, ru);
    await waitReady(kube, "gnmi", FLEET, 900_000);
    t0 = performance.now();
    const set = await kube.kubectl([
      "-n",
      SONIC_NAMESPACE,
      "set",
      "image",
      "ds/gnmi",
      "gnmi=gnmi:v2",
    ]);
    if (set.code !== 0) throw new Error(`kubectl set image: ${set.stderr}`);
    const status = await kube.kubectl([
      "-n",
      SONIC_NAMESPACE,
      "rollout",
      "status",
      "ds/gnmi",
      "--timeout=15m",
    ]);
    const kubectlMs = performance.now() - t0;
    if (status.code !== 0) throw new Error(`kubectl rollout status: ${status.stderr}`);
    console.log(
      `kubectl rollout (RollingUpdate, maxUnavailable 10%): ${FLEET} nodes in ${s(kubectlMs)}`,
    );
    console.log(
      `ratio: ks-rollout / kubectl rollout = ${(rolloutMs / kubectlMs).toFixed(2)} ` +
        "(ks-rollout adds the canary waves, the health gate and resumable state)",
    );
  } finally {
    await kube.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await main();
