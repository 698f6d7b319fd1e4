// Lab: ks-stub, what telemetry.service's start/stop/status/wait run once Kubernetes owns the
// container (the design's systemd stub, docs/design.md). The bundled stub, as the rendered `<feature>-stub` ServiceAccount with
// only its Role, against the lab's control plane: status with LSB codes, stop deleting the pod
// and the DaemonSet replacing it, wait following the pod, waiting through its absence and
// returning once the node runs the feature's v1 pod, and
// status answering 4 while the API server is cut off — each with its measured time.
import type { LabScenario } from "../context.ts";
import { runTool, toolCommand } from "../../sandbox/harness/bin.ts";
import { waitUntil } from "../../sandbox/harness/net.ts";
import {
  apiProxy,
  apply,
  featureDaemonSet,
  podsOn,
  stubRbac,
  TEST_NODE_LABEL,
} from "../../sandbox/fixtures/stub_api.ts";
import { formatMs } from "../timeline.ts";

const NODE = "lab-stub";
const FEATURE = "gnmi";

export const scenario: LabScenario = {
  title: "4.4 ks-stub: systemctl start/stop/status/wait on a Kubernetes-owned container",
  needs: ["kube"],
  async run(ctx) {
    const { timeline } = ctx;
    const kube = ctx.kube;
    if (!kube) throw new Error("the control plane scenario did not leave ctx.kube");
    await kube.addNodes([NODE], { [TEST_NODE_LABEL]: NODE });
    await apply(kube, stubRbac("sonic", "lab-stub"));
    const kubeconfig = await kube.serviceAccountKubeconfig("sonic", "lab-stub");
    const stub = (args: string[], config = kubeconfig) =>
      runTool("ks-stub", [FEATURE, ...args, "--node", NODE, "--kubeconfig", config], {
        // kwok runs no containers: status asks the API server (a switch asks its runtime).
        env: { KS_RUNTIME_SOCKET: "none" },
      });
    const livePods = async () =>
      (await podsOn(kube, NODE, `app=${FEATURE}`)).filter((p) => !p.deleting);
    timeline.note(
      `${FEATURE} DaemonSet pinned to kwok node ${NODE}; ks-stub runs as ServiceAccount lab-stub ` +
        "(pods list/watch/delete only)",
    );

    await timeline.step("status before any pod: exit 3 (not running)", async () => {
      const r = await stub(["status"]);
      if (r.code !== 3) throw new Error(`exit ${r.code}: ${r.stdout}${r.stderr}`);
      return r.stdout.split("\n")[1]?.trim();
    });

    await apply(kube, [featureDaemonSet({ feature: FEATURE, nodeLabel: NODE })]);
    await timeline.step("start: waits (watching) until the DaemonSet's pod runs", async () => {
      const t0 = performance.now();
      const r = await stub(["start", "--timeout", "60s"]);
      if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr.trim()}`);
      return `exit 0 after ${formatMs(performance.now() - t0)}`;
    });

    await timeline.step("status: exit 0 and a systemctl-like report", async () => {
      const t0 = performance.now();
      const r = await stub(["status"]);
      const took = performance.now() - t0;
      if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stdout}${r.stderr}`);
      for (const line of r.stdout.trimEnd().split("\n")) timeline.note(`  | ${line}`);
      return `exit 0 in ${formatMs(took)} (one process start + one list call)`;
    });

    await timeline.step("stop: pod deleted, old one gone; the DaemonSet replaces it", async () => {
      const [before] = await livePods();
      const t0 = performance.now();
      const r = await stub(["stop"]);
      const stopped = performance.now() - t0;
      if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr.trim()}`);
      let replacement = "";
      await waitUntil(
        async () => {
          const pods = (await livePods()).filter((p) =>
            p.uid !== before.uid && p.phase === "Running"
          );
          replacement = pods[0]?.name ?? "";
          return pods.length === 1;
        },
        60_000,
        "the replacement pod",
        50,
      );
      return `stop returned in ${formatMs(stopped)}; ${before.name} -> ${replacement} running ` +
        `${formatMs(performance.now() - t0)} after stop began (no back-off: a new pod)`;
    });

    await timeline.step(
      "status while the API server is unreachable: exit 4 (unknown)",
      async () => {
        const { proxy, via } = await apiProxy(kube, kubeconfig);
        try {
          proxy.cut();
          const t0 = performance.now();
          const r = await stub(["status", "--timeout", "2s"], via);
          if (r.code !== 4) throw new Error(`exit ${r.code}: ${r.stdout}${r.stderr}`);
          return `exit 4 after ${formatMs(performance.now() - t0)} (--timeout 2s)`;
        } finally {
          proxy.stop();
        }
      },
    );

    await timeline.step(
      "wait: blocks while the pod exists and while it is gone, returns once v1 runs",
      async () => {
        const child = (await toolCommand("ks-stub", [
          FEATURE,
          "wait",
          "--node",
          NODE,
          "--kubeconfig",
          kubeconfig,
          "--grace",
          "2s",
        ], { stdout: "null", stderr: "piped", env: { KS_RUNTIME_SOCKET: "none" } })).spawn();
        let exited = false;
        const done = child.output().finally(() => (exited = true));
        try {
          await new Promise((r) => setTimeout(r, 1000));
          const del = await kube.kubectl([
            "delete",
            "daemonset",
            "-n",
            "sonic",
            FEATURE,
            "--wait=false",
          ]);
          if (del.code !== 0) throw new Error(del.stderr.trim());
          await waitUntil(async () => (await livePods()).length === 0, 30_000, "no pod", 50);
          await new Promise((r) => setTimeout(r, 3000));
          if (exited) throw new Error("wait returned while the node had no pod");
          const t0 = performance.now();
          await apply(kube, [featureDaemonSet({ feature: FEATURE, nodeLabel: NODE, v1: true })]);
          const out = await done;
          if (out.code !== 0) throw new Error(`wait exited ${out.code}`);
          return `still waiting 3 s after the DaemonSet was deleted; returned ` +
            `${formatMs(performance.now() - t0)} after a v1 DaemonSet was applied (--grace 2s)`;
        } finally {
          if (!exited) child.kill("SIGKILL");
          await done.catch(() => {});
        }
      },
    );

    await timeline.step("status after the v2 DaemonSet is gone: exit 3", async () => {
      await waitUntil(
        async () => (await podsOn(kube, NODE, "raw_container_name")).length === 0,
        30_000,
        "no feature pod",
        50,
      );
      const r = await stub(["status"]);
      if (r.code !== 3) throw new Error(`exit ${r.code}: ${r.stdout}`);
    });
  },
};
