// `deno task bench kube`: what the test control plane costs. Warm start of startKube() (etcd,
// apiserver, controller-manager, scheduler, kwok, three SONiC-labelled kwok nodes Ready) against
// the goal of 30 s; stop(); a DaemonSet from `kubectl apply` to Ready on three nodes; then a
// fleet of F nodes: nodes Ready, DaemonSet Ready on all, a RollingUpdate (maxUnavailable 10 %)
// finished; and the RSS of the five processes. Anchor: an earlier build measured the
// apiserver's /readyz 3.3 s after start and 1000 kwok nodes Ready in 27 s on this machine type.
//
// Run: deno run -A bench/kube_bench.ts [--starts N] [--fleet F]
import { parseArgs } from "node:util";
import { type KubeCluster, SONIC_NAMESPACE, startKube } from "../sandbox/harness/kube.ts";
import { waitUntil } from "../sandbox/harness/net.ts";

const { values } = parseArgs({
  options: {
    starts: { type: "string", default: "3" },
    fleet: { type: "string", default: "100" },
  },
});
const STARTS = Number(values.starts);
const FLEET = Number(values.fleet);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

function daemonSet(image: string): string {
  return JSON.stringify({
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { name: "bench", namespace: SONIC_NAMESPACE },
    spec: {
      selector: { matchLabels: { raw_container_name: "bench" } },
      updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "10%" } },
      template: {
        metadata: { labels: { raw_container_name: "bench" } },
        spec: { hostNetwork: true, containers: [{ name: "bench", image }] },
      },
    },
  });
}

async function dsConverged(cluster: KubeCluster, want: number): Promise<boolean> {
  const ds = await cluster.rest.get<{
    metadata: { generation: number };
    status: { observedGeneration?: number; numberReady?: number; updatedNumberScheduled?: number };
  }>(`/apis/apps/v1/namespaces/${SONIC_NAMESPACE}/daemonsets/bench`);
  return ds.status.observedGeneration === ds.metadata.generation &&
    ds.status.numberReady === want && ds.status.updatedNumberScheduled === want;
}

async function applyDs(cluster: KubeCluster, image: string): Promise<void> {
  const r = await cluster.kubectl(["apply", "-f", "-"], { stdin: daemonSet(image) });
  if (r.code !== 0) throw new Error(`kubectl apply: ${r.stderr}`);
}

/** Sum of VmRSS (MiB) of the processes whose command line mentions the cluster's directory. */
function controlPlaneRssMiB(dir: string): number {
  let kib = 0;
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const cmd = Deno.readTextFileSync(`/proc/${e.name}/cmdline`);
      if (!cmd.includes(dir)) continue;
      const status = Deno.readTextFileSync(`/proc/${e.name}/status`);
      kib += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    } catch { /* gone */ }
  }
  return kib / 1024;
}

const starts: number[] = [];
const stops: number[] = [];
const firstReady: number[] = [];
for (let i = 0; i < STARTS; i++) {
  const cluster = await startKube({ nodes: ["sonic-1", "sonic-2", "sonic-3"] });
  starts.push(cluster.startMs);
  try {
    const t0 = performance.now();
    await applyDs(cluster, "bench:v1");
    await waitUntil(() => dsConverged(cluster, 3), 60_000, "DaemonSet Ready on 3 nodes", 20);
    firstReady.push(performance.now() - t0);
  } finally {
    const t1 = performance.now();
    await cluster.stop();
    stops.push(performance.now() - t1);
  }
}
console.log(
  `warm start (3 nodes Ready): median ${s(median(starts))} of ${STARTS} ` +
    `[${starts.map(s).join(", ")}]; goal 30 s -> ${(30_000 / median(starts)).toFixed(1)}x under`,
);
console.log(`stop(): median ${Math.round(median(stops))} ms`);
console.log(`DaemonSet apply -> Ready on 3 nodes: median ${s(median(firstReady))}`);

if (FLEET > 0) {
  const cluster = await startKube();
  try {
    const names = Array.from(
      { length: FLEET },
      (_, i) => `sonic-${String(i + 1).padStart(4, "0")}`,
    );
    let t0 = performance.now();
    await cluster.addNodes(names);
    console.log(`${FLEET} kwok nodes created and Ready: ${s(performance.now() - t0)}`);
    t0 = performance.now();
    await applyDs(cluster, "bench:v1");
    await waitUntil(() => dsConverged(cluster, FLEET), 600_000, "fleet DaemonSet Ready", 100);
    console.log(`DaemonSet Ready on ${FLEET} nodes: ${s(performance.now() - t0)}`);
    t0 = performance.now();
    await applyDs(cluster, "bench:v2");
    await waitUntil(() => dsConverged(cluster, FLEET), 600_000, "fleet rollout", 100);
    console.log(
      `RollingUpdate (maxUnavailable 10 %) on ${FLEET} nodes: ${s(performance.now() - t0)}`,
    );
    console.log(
      `control plane RSS with ${FLEET} nodes / ${FLEET} pods: ${
        Math.round(controlPlaneRssMiB(cluster.dir))
      } MiB`,
    );
  } finally {
    await cluster.stop();
  }
}
