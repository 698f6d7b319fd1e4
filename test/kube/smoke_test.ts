// The control plane's smoke test (issue 4's "done when"): a DaemonSet applied with kubectl gets
// one Ready pod on each of three kwok nodes, a new template rolls out, `kubectl rollout undo`
// brings the previous one back through the controller revisions; each step is checked through
// the API, not through kubectl's own output.
import assert from "node:assert/strict";
import { SONIC_NAMESPACE, startKube } from "../../sandbox/harness/kube.ts";
import { waitUntil } from "../../sandbox/harness/net.ts";

const NODES = ["sonic-a1", "sonic-a2", "sonic-a3"];

interface Pod {
  metadata: { name: string; uid: string; labels?: Record<string, string> };
  spec: { nodeName?: string; containers: { name: string; image: string }[] };
  status: {
    phase?: string;
    conditions?: { type: string; status: string }[];
  };
}
interface DaemonSet {
  metadata: { generation: number };
  spec: { template: { spec: { containers: { image: string }[] } } };
  status: {
    observedGeneration?: number;
    desiredNumberScheduled: number;
    numberReady: number;
    updatedNumberScheduled?: number;
    numberAvailable?: number;
  };
}
interface Revision {
  metadata: { name: string };
  revision: number;
}

function daemonSet(image: string): string {
  return JSON.stringify({
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { name: "telemetry", namespace: SONIC_NAMESPACE },
    spec: {
      selector: { matchLabels: { raw_container_name: "telemetry" } },
      updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } },
      template: {
        metadata: { labels: { raw_container_name: "telemetry" } },
        spec: {
          hostNetwork: true,
          nodeSelector: { hwsku: "Force10-S6000" },
          containers: [{ name: "telemetry", image }],
        },
      },
    },
  });
}

const isReady = (p: Pod) =>
  p.status.phase === "Running" &&
  (p.status.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");

Deno.test("DaemonSet on three kwok nodes: Ready, rolled out, rolled back", async (t) => {
  const cluster = await startKube({ nodes: NODES });
  try {
    const rest = cluster.rest;
    const dsPath = `/apis/apps/v1/namespaces/${SONIC_NAMESPACE}/daemonsets/telemetry`;
    const pods = async () =>
      (await rest.list<Pod>(`/api/v1/namespaces/${SONIC_NAMESPACE}/pods`, {
        labelSelector: "raw_container_name=telemetry",
      })).items;
    /** All three pods Ready, one per node, running `image`, with the DaemonSet status agreeing. */
    const converged = async (image: string) => {
      const ds = await rest.get<DaemonSet>(dsPath);
      const ps = (await pods()).filter((p) => !("deletionTimestamp" in p.metadata));
      return ds.status.observedGeneration === ds.metadata.generation &&
        ds.status.desiredNumberScheduled === 3 &&
        ds.status.numberReady === 3 &&
        ds.status.updatedNumberScheduled === 3 &&
        ps.length === 3 &&
        ps.every((p) => isReady(p) && p.spec.containers[0].image === image) &&
        new Set(ps.map((p) => p.spec.nodeName)).size === 3 &&
        ps.every((p) => NODES.includes(p.spec.nodeName ?? ""));
    };

    await t.step("applied DaemonSet has one Ready pod on each node", async () => {
      const applied = await cluster.kubectl(["apply", "-f", "-"], {
        stdin: daemonSet("telemetry:v1"),
      });
      assert.equal(applied.code, 0, applied.stderr);
      await waitUntil(() => converged("telemetry:v1"), 60_000, "3 Ready v1 pods", 100);
    });

    await t.step("a new template rolls out to every node", async () => {
      const before = new Set((await pods()).map((p) => p.metadata.uid));
      const applied = await cluster.kubectl(["apply", "-f", "-"], {
        stdin: daemonSet("telemetry:v2"),
      });
      assert.equal(applied.code, 0, applied.stderr);
      await waitUntil(() => converged("telemetry:v2"), 60_000, "3 Ready v2 pods", 100);
      const after = await pods();
      assert.ok(after.every((p) => !before.has(p.metadata.uid)), "every pod was replaced");
      const revs = await rest.list<Revision>(
        `/apis/apps/v1/namespaces/${SONIC_NAMESPACE}/controllerrevisions`,
      );
      assert.deepEqual(revs.items.map((r) => r.revision).sort(), [1, 2]);
      const status = await cluster.kubectl([
        "rollout",
        "status",
        "daemonset/telemetry",
        "-n",
        SONIC_NAMESPACE,
        "--timeout=30s",
      ]);
      assert.equal(status.code, 0, status.stderr);
    });

    await t.step("rollout undo brings the previous template back", async () => {
      const undo = await cluster.kubectl([
        "rollout",
        "undo",
        "daemonset/telemetry",
        "-n",
        SONIC_NAMESPACE,
      ]);
      assert.equal(undo.code, 0, undo.stderr);
      await waitUntil(() => converged("telemetry:v1"), 60_000, "3 Ready v1 pods after undo", 100);
      const ds = await rest.get<DaemonSet>(dsPath);
      assert.equal(ds.spec.template.spec.containers[0].image, "telemetry:v1");
      // Undo re-uses revision 1's template under a new revision number (3); still two revisions.
      const revs = await rest.list<Revision>(
        `/apis/apps/v1/namespaces/${SONIC_NAMESPACE}/controllerrevisions`,
      );
      assert.deepEqual(revs.items.map((r) => r.revision).sort(), [2, 3]);
    });
  } finally {
    await cluster.stop();
  }
});
