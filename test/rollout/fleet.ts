// Test helpers for ks-rollout on the kwok control plane (test/harness/kube.ts): a fleet of kwok
// switches spread over zones and racks, a minimal OnDelete DaemonSet shaped like ks-render's,
// manifests for good and bad revisions, and a pod watch that records every node that ever ran a
// pod of each revision (to prove how far a bad revision got). Shared by the tests, the benchmark
// and the lab scenario.
import { join } from "node:path";
import type { KubeCluster } from "../harness/kube.ts";
import { SONIC_NAMESPACE } from "../harness/kube.ts";
import { waitUntil } from "../harness/net.ts";
import { type PodLike, podNode } from "../../src/rollout/gate.ts";

/** Node names of a simulated fleet: `sw-0000`... */
export function fleetNames(n: number, prefix = "sw"): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(4, "0")}`);
}

/** Creates `names` as kwok nodes spread over 3 zones and 4 racks per zone, in batches. */
export async function addFleet(
  cluster: KubeCluster,
  names: string[],
  batch = 200,
  extraLabels: Record<string, string> = {},
): Promise<void> {
  for (let i = 0; i < names.length; i += batch) {
    const slice = names.slice(i, i + batch);
    // Group by zone/rack so each addNodes call carries one label set.
    const groups = new Map<string, string[]>();
    slice.forEach((name, j) => {
      const k = i + j;
      const key = `z${k % 3}/r${Math.floor(k / 3) % 4}`;
      groups.set(key, [...(groups.get(key) ?? []), name]);
    });
    await Promise.all([...groups].map(([key, group]) => {
      const [zone, rack] = key.split("/");
      return cluster.addNodes(group, {
        "topology.kubernetes.io/zone": zone,
        "kubesonic.io/rack": `${zone}-${rack}`,
        ...extraLabels,
      });
    }));
  }
}

/** Options for a test DaemonSet's template. */
export interface TemplateOptions {
  image?: string;
  /** Pod annotations (kwok stages key on kubesonic.test/*). */
  annotations?: Record<string, string>;
  /** Node selector (to keep the DaemonSet on one fleet in a shared cluster). */
  nodeSelector?: Record<string, string>;
}

/** A minimal DaemonSet of ks-render's shape: namespace sonic, OnDelete, raw_container_name. */
export function daemonSet(feature: string, t: TemplateOptions = {}): Record<string, unknown> {
  return {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: {
      name: feature,
      namespace: SONIC_NAMESPACE,
      labels: { app: feature, raw_container_name: feature },
    },
    spec: {
      selector: { matchLabels: { raw_container_name: feature } },
      updateStrategy: { type: "OnDelete" },
      template: {
        metadata: {
          labels: { app: feature, raw_container_name: feature },
          annotations: t.annotations ?? {},
        },
        spec: {
          hostNetwork: true,
          terminationGracePeriodSeconds: 0,
          ...(t.nodeSelector ? { nodeSelector: t.nodeSelector } : {}),
          containers: [{ name: feature, image: t.image ?? `kubesonic/${feature}:v1` }],
        },
      },
    },
  };
}

/** Writes a manifest (YAML is JSON) for a revision and returns its path. */
export async function writeManifest(
  dir: string,
  name: string,
  ds: Record<string, unknown>,
): Promise<string> {
  const path = join(dir, `${name}.yaml`);
  await Deno.writeTextFile(path, JSON.stringify(ds, null, 2));
  return path;
}

interface PodLite {
  metadata: {
    name: string;
    uid: string;
    labels?: Record<string, string>;
    deletionTimestamp?: string;
  };
  spec: { nodeName?: string };
  status?: { conditions?: { type: string; status: string }[] };
}

interface DsLite {
  metadata: { generation?: number };
  status?: {
    observedGeneration?: number;
    desiredNumberScheduled?: number;
    numberReady?: number;
  };
}

const dsPath = (feature: string) =>
  `/apis/apps/v1/namespaces/${SONIC_NAMESPACE}/daemonsets/${feature}`;
const podsPath = `/api/v1/namespaces/${SONIC_NAMESPACE}/pods`;

/** Creates the DaemonSet and waits until a Ready pod runs on each of `nodes` nodes. */
export async function createDaemonSet(
  cluster: KubeCluster,
  feature: string,
  nodes: number,
  t: TemplateOptions = {},
  ms = 300_000,
): Promise<void> {
  await cluster.rest.create(
    `/apis/apps/v1/namespaces/${SONIC_NAMESPACE}/daemonsets`,
    daemonSet(feature, t),
  );
  await waitReady(cluster, feature, nodes, ms);
}

/** Waits until the DaemonSet reports `nodes` Ready pods for its current generation. */
export async function waitReady(
  cluster: KubeCluster,
  feature: string,
  nodes: number,
  ms = 300_000,
): Promise<void> {
  await waitUntil(
    async () => {
      const ds = await cluster.rest.get<DsLite>(dsPath(feature));
      return ds.status?.observedGeneration === ds.metadata.generation &&
        ds.status?.desiredNumberScheduled === nodes && ds.status?.numberReady === nodes;
    },
    ms,
    `daemonset ${feature} Ready on ${nodes} nodes`,
    500,
  );
}

/** Deletes the DaemonSet and its pods (background propagation). */
export async function deleteDaemonSet(cluster: KubeCluster, feature: string): Promise<void> {
  try {
    await cluster.rest.delete(dsPath(feature), { propagationPolicy: "Background" });
  } catch { /* already gone */ }
}

/** The live pods of a feature: node -> { hash, ready, uid }. */
export async function podsByNode(
  cluster: KubeCluster,
  feature: string,
  selector = `raw_container_name=${feature}`,
): Promise<Map<string, { hash: string; ready: boolean; uid: string }>> {
  const list = await cluster.rest.list<PodLite>(podsPath, { labelSelector: selector });
  const out = new Map<string, { hash: string; ready: boolean; uid: string }>();
  for (const p of list.items) {
    if (p.metadata.deletionTimestamp || !p.spec.nodeName) continue;
    out.set(p.spec.nodeName, {
      hash: p.metadata.labels?.["controller-revision-hash"] ?? "",
      uid: p.metadata.uid,
      ready: (p.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True"),
    });
  }
  return out;
}

/**
 * Watches a feature's pods from now on and records, per revision hash, every node that ever had a
 * pod of it, and every pod deleted (uid -> node). Stop with `stop()`.
 */
export class PodRecorder {
  readonly nodesByHash = new Map<string, Set<string>>();
  readonly createdPerNode = new Map<string, number>();
  #abort = new AbortController();
  #done: Promise<void>;

  constructor(cluster: KubeCluster, selector: string, resourceVersion: string) {
    this.#done = (async () => {
      let rv = resourceVersion;
      while (!this.#abort.signal.aborted) {
        try {
          for await (
            const ev of cluster.rest.watch<PodLite>(podsPath, {
              labelSelector: selector,
              resourceVersion: rv,
              timeoutSeconds: 60,
              signal: this.#abort.signal,
            })
          ) {
            rv = (ev.object.metadata as { resourceVersion?: string }).resourceVersion ?? rv;
            if (ev.type !== "ADDED") continue;
            const hash = ev.object.metadata.labels?.["controller-revision-hash"] ?? "";
            // DaemonSet pods are created with a node affinity; nodeName is set once scheduled.
            const node = podNode(ev.object as PodLike);
            if (!this.nodesByHash.has(hash)) this.nodesByHash.set(hash, new Set());
            this.nodesByHash.get(hash)!.add(node);
            this.createdPerNode.set(node, (this.createdPerNode.get(node) ?? 0) + 1);
          }
        } catch (error) {
          if (this.#abort.signal.aborted) return;
          throw error;
        }
      }
    })();
  }

  /** Starts recording from the current state of the pod list. */
  static async start(
    cluster: KubeCluster,
    feature: string,
    selector = `raw_container_name=${feature}`,
  ): Promise<PodRecorder> {
    const list = await cluster.rest.list<PodLite>(podsPath, { labelSelector: selector });
    return new PodRecorder(cluster, selector, list.metadata.resourceVersion ?? "0");
  }

  /**
   * Stops the watch. Waits at most a second: an aborted watch can stay open until the server ends
   * it (src/kube/rest.ts's abort signal can be garbage-collected; see docs/rollout.md).
   */
  async stop(): Promise<void> {
    this.#abort.abort();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#done.catch(() => {}),
      new Promise((r) => (timer = setTimeout(r, 1000))),
    ]);
    clearTimeout(timer);
  }
}
