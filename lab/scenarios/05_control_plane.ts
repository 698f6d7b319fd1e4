// Lab: the real control plane every later Kubernetes scenario uses: etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler and kwok started warm from the cached
// binaries, the lab's switch registered as a kwok node with SONiC labels, and a DaemonSet pod
// brought to Ready on it, each with its measured time. The cluster is left in `ctx.kube`.
import { join } from "node:path";
import type { LabScenario } from "../context.ts";
import { SONIC_NAMESPACE, startKube } from "../../sandbox/harness/kube.ts";
import { formatMs } from "../timeline.ts";

/** Node name of the lab's simulated switch. */
export const LAB_NODE = "sonic-lab";

export const scenario: LabScenario = {
  title: "a real control plane (etcd, apiserver, controller-manager, scheduler, kwok)",
  needs: ["kube"],
  async run(ctx) {
    const { timeline } = ctx;
    await timeline.step("warm start of the control plane, switch node Ready", async () => {
      const cluster = await startKube({ dir: join(ctx.dir, "kube"), nodes: [LAB_NODE] });
      ctx.defer(() => cluster.stop());
      ctx.kube = cluster;
      return `${cluster.server}, node ${LAB_NODE} Ready after ${
        formatMs(cluster.startMs)
      } (goal 30 s)`;
    });
    const cluster = ctx.kube;
    if (!cluster) return;
    timeline.note(`kubeconfig (admin): ${cluster.kubeconfigPath}; logs: ${cluster.dir}/logs`);

    await timeline.step("a DaemonSet pod is scheduled and Ready on the switch node", async () => {
      const t0 = performance.now();
      const r = await cluster.kubectl(["apply", "-f", "-"], {
        stdin: JSON.stringify({
          apiVersion: "apps/v1",
          kind: "DaemonSet",
          metadata: { name: "lab-smoke", namespace: SONIC_NAMESPACE },
          spec: {
            selector: { matchLabels: { raw_container_name: "lab-smoke" } },
            template: {
              metadata: { labels: { raw_container_name: "lab-smoke" } },
              spec: { hostNetwork: true, containers: [{ name: "lab-smoke", image: "lab:v1" }] },
            },
          },
        }),
      });
      if (r.code !== 0) throw new Error(`kubectl apply failed: ${r.stderr.trim()}`);
      // By watch (client-node), so the figure is when the API said Ready, not the next poll.
      await cluster.watchUntil<{ metadata?: { name?: string }; status?: { numberReady?: number } }>(
        `/apis/apps/v1/namespaces/${SONIC_NAMESPACE}/daemonsets`,
        {
          fieldSelector: "metadata.name=lab-smoke",
          done: ([ds]) => ds?.status?.numberReady === 1,
          timeoutMs: 60_000,
          what: "lab-smoke Ready",
        },
      );
      const took = performance.now() - t0;
      await cluster.rest.delete(
        `/apis/apps/v1/namespaces/${SONIC_NAMESPACE}/daemonsets/lab-smoke`,
        {
          propagationPolicy: "Background",
        },
      );
      return `Ready ${formatMs(took)} after kubectl apply`;
    });
  },
};
