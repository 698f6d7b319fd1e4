// The pod behaviours tests simulate through kwok stages (test/harness/kwok/): a container made
// not ready and ready again by annotation, an OOM kill (exit 137, OOMKilled, restartCount + 1),
// per-container targeting, and a deleted DaemonSet pod recreated on its node. Checked through the
// API against a real apiserver, controller-manager and scheduler.
import assert from "node:assert/strict";
import { type KubeCluster, SONIC_NAMESPACE, startKube } from "../../sandbox/harness/kube.ts";
import { waitUntil } from "../../sandbox/harness/net.ts";

interface ContainerStatus {
  name: string;
  ready: boolean;
  restartCount: number;
  state?: { running?: { startedAt: string } };
  lastState?: { terminated?: { exitCode: number; reason: string } };
}
interface Pod {
  metadata: {
    name: string;
    uid: string;
    annotations?: Record<string, string>;
    deletionTimestamp?: string;
  };
  spec: { nodeName?: string };
  status: {
    phase?: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: ContainerStatus[];
  };
}

const NODES = ["sonic-b1", "sonic-b2"];

function daemonSet(name: string, annotations: Record<string, string> = {}): string {
  return JSON.stringify({
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { name, namespace: SONIC_NAMESPACE },
    spec: {
      selector: { matchLabels: { raw_container_name: name } },
      updateStrategy: { type: "OnDelete" },
      template: {
        metadata: { labels: { raw_container_name: name }, annotations },
        spec: {
          hostNetwork: true,
          containers: [
            { name: name, image: `${name}:v1` },
            { name: "watchdog", image: "watchdog:v1" },
          ],
        },
      },
    },
  });
}

const condition = (p: Pod, type: string) =>
  p.status.conditions?.find((c) => c.type === type)?.status;
const container = (p: Pod, name: string) =>
  p.status.containerStatuses?.find((c) => c.name === name);

async function podsOf(cluster: KubeCluster, name: string): Promise<Pod[]> {
  const list = await cluster.rest.list<Pod>(`/api/v1/namespaces/${SONIC_NAMESPACE}/pods`, {
    labelSelector: `raw_container_name=${name}`,
  });
  return list.items.filter((p) => !p.metadata.deletionTimestamp);
}

async function apply(cluster: KubeCluster, manifest: string): Promise<void> {
  const r = await cluster.kubectl(["apply", "-f", "-"], { stdin: manifest });
  assert.equal(r.code, 0, r.stderr);
}

async function annotate(cluster: KubeCluster, pod: string, ...kv: string[]): Promise<void> {
  const r = await cluster.kubectl([
    "annotate",
    "--overwrite",
    "-n",
    SONIC_NAMESPACE,
    `pod/${pod}`,
    ...kv,
  ]);
  assert.equal(r.code, 0, r.stderr);
}

/** Waits until `name` has one pod per node that satisfies `ok`; returns them. */
async function waitPods(
  cluster: KubeCluster,
  name: string,
  ok: (p: Pod) => boolean,
  what: string,
): Promise<Pod[]> {
  let pods: Pod[] = [];
  await waitUntil(
    async () => {
      pods = await podsOf(cluster, name);
      return pods.length === NODES.length && pods.every(ok);
    },
    30_000,
    what,
    50,
  );
  return pods;
}

async function getPod(cluster: KubeCluster, name: string): Promise<Pod> {
  return await cluster.rest.get<Pod>(`/api/v1/namespaces/${SONIC_NAMESPACE}/pods/${name}`);
}

Deno.test("kwok stages simulate readiness, OOM kills and pod recreation", async (t) => {
  const cluster = await startKube({ nodes: NODES });
  try {
    await t.step(
      "a pod annotated ready=false turns not ready, and Ready again when cleared",
      async () => {
        await apply(cluster, daemonSet("telemetry"));
        const [pod] = await waitPods(
          cluster,
          "telemetry",
          (p) => condition(p, "Ready") === "True",
          "Ready pods",
        );
        await annotate(cluster, pod.metadata.name, "kubesonic.test/ready=false");
        await waitUntil(
          async () => {
            const p = await getPod(cluster, pod.metadata.name);
            return condition(p, "Ready") === "False" && p.status.phase === "Running" &&
              (p.status.containerStatuses ?? []).every((c) => !c.ready);
          },
          30_000,
          "pod not ready",
          50,
        );
        const ds = await cluster.rest.get<{ status: { numberReady: number } }>(
          `/apis/apps/v1/namespaces/${SONIC_NAMESPACE}/daemonsets/telemetry`,
        );
        await waitUntil(
          async () => {
            const d = await cluster.rest.get<typeof ds>(
              `/apis/apps/v1/namespaces/${SONIC_NAMESPACE}/daemonsets/telemetry`,
            );
            return d.status.numberReady === NODES.length - 1;
          },
          30_000,
          "DaemonSet numberReady to drop by one",
          50,
        );
        await annotate(cluster, pod.metadata.name, "kubesonic.test/ready=true");
        await waitUntil(
          async () => {
            const p = await getPod(cluster, pod.metadata.name);
            return condition(p, "Ready") === "True" &&
              (p.status.containerStatuses ?? []).every((c) => c.ready);
          },
          30_000,
          "pod Ready again",
          50,
        );
        assert.equal((await getPod(cluster, pod.metadata.name)).metadata.uid, pod.metadata.uid);
      },
    );

    await t.step("kubesonic.test/container limits not-ready to that container", async () => {
      const [pod] = await podsOf(cluster, "telemetry");
      await annotate(
        cluster,
        pod.metadata.name,
        "kubesonic.test/container=watchdog",
        "kubesonic.test/ready=false",
      );
      await waitUntil(
        async () => {
          const p = await getPod(cluster, pod.metadata.name);
          return condition(p, "Ready") === "False" &&
            container(p, "watchdog")?.ready === false && container(p, "telemetry")?.ready === true;
        },
        30_000,
        "only the watchdog container not ready",
        50,
      );
      await annotate(
        cluster,
        pod.metadata.name,
        "kubesonic.test/container-",
        "kubesonic.test/ready-",
      );
      await waitUntil(
        async () => condition(await getPod(cluster, pod.metadata.name), "Ready") === "True",
        30_000,
        "pod Ready again",
        50,
      );
    });

    await t.step(
      "an OOM kill shows exit code 137, OOMKilled and one more restart each time",
      async () => {
        const [pod] = await podsOf(cluster, "telemetry");
        await annotate(
          cluster,
          pod.metadata.name,
          "kubesonic.test/container=telemetry",
          "kubesonic.test/oom=true",
        );
        let p!: Pod;
        await waitUntil(
          async () => {
            p = await getPod(cluster, pod.metadata.name);
            return container(p, "telemetry")?.restartCount === 1;
          },
          30_000,
          "restartCount 1",
          50,
        );
        const c = container(p, "telemetry")!;
        assert.equal(c.lastState?.terminated?.exitCode, 137);
        assert.equal(c.lastState?.terminated?.reason, "OOMKilled");
        assert.ok(c.state?.running, "restarted container is running");
        assert.equal(container(p, "watchdog")?.restartCount, 0, "the other container untouched");
        assert.equal(container(p, "watchdog")?.lastState?.terminated, undefined);
        await waitUntil(
          async () =>
            (await getPod(cluster, pod.metadata.name)).metadata.annotations
              ?.["kubesonic.test/oom"] ===
              "done",
          30_000,
          "oom annotation marked done",
          50,
        );
        // A second kill on request, and the pod stays Ready with the same uid (a restart, not a new pod).
        await annotate(cluster, pod.metadata.name, "kubesonic.test/oom=true");
        await waitUntil(
          async () => {
            p = await getPod(cluster, pod.metadata.name);
            return container(p, "telemetry")?.restartCount === 2;
          },
          30_000,
          "restartCount 2",
          50,
        );
        assert.equal(p.metadata.uid, pod.metadata.uid);
        assert.equal(condition(p, "Ready"), "True");
      },
    );

    await t.step(
      "a pod template annotated ready=false gives Running pods that never turn Ready",
      async () => {
        await apply(cluster, daemonSet("gnmi", { "kubesonic.test/ready": "false" }));
        await waitPods(
          cluster,
          "gnmi",
          (p) => p.status.phase === "Running" && condition(p, "Ready") === "False",
          "Running, not Ready gnmi pods",
        );
      },
    );

    await t.step(
      "a deleted DaemonSet pod is recreated on the same node and becomes Ready",
      async () => {
        const before = await podsOf(cluster, "telemetry");
        const victim = before[0];
        const r = await cluster.kubectl([
          "delete",
          "pod",
          "-n",
          SONIC_NAMESPACE,
          victim.metadata.name,
          "--wait=false",
        ]);
        assert.equal(r.code, 0, r.stderr);
        const after = await waitPods(
          cluster,
          "telemetry",
          (p) => condition(p, "Ready") === "True" && p.metadata.uid !== victim.metadata.uid,
          "replacement pod Ready",
        );
        const replacement = after.find((p) => p.spec.nodeName === victim.spec.nodeName);
        assert.ok(replacement, "a pod on the victim's node");
        assert.notEqual(replacement.metadata.uid, victim.metadata.uid);
        await waitUntil(
          async () =>
            condition(await getPod(cluster, replacement.metadata.name), "Ready") === "True",
          30_000,
          "replacement Ready",
          50,
        );
        const gone = await cluster.rest.list<Pod>(`/api/v1/namespaces/${SONIC_NAMESPACE}/pods`, {
          fieldSelector: `metadata.name=${victim.metadata.name}`,
        });
        assert.equal(gone.items.length, 0, "the deleted pod is gone (kwok finished the deletion)");
      },
    );
  } finally {
    await cluster.stop();
  }
});
