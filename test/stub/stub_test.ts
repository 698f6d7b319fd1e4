// ks-stub end to end: the bundled tool against a real kube-apiserver (+ controller-manager's
// DaemonSet controller, scheduler and kwok nodes), authenticated as a service account that holds
// only the stub's Role. Each step owns its node(s) and DaemonSet(s) so steps cannot see each other.
// kwok runs no containers, so the stub is told this node has no runtime (KS_RUNTIME_SOCKET=none):
// status then asks the API server, and every verb takes its API path (the runtime path is
// runtime_test.ts's and the real switch's).
import assert from "node:assert/strict";
import { runTool, toolCommand } from "../../sandbox/harness/bin.ts";
import { startTool } from "../../sandbox/harness/running_tool.ts";
import { kubeBinDir, type KubeCluster, startKube } from "../../sandbox/harness/kube.ts";
import { waitUntil } from "../../sandbox/harness/net.ts";
import {
  apiProxy,
  apply,
  featureDaemonSet,
  kubectlOk,
  podsOn,
  stubRbac,
  TEST_NODE_LABEL,
} from "../../sandbox/fixtures/stub_api.ts";

const SA = "ks-stub";
/** No container runtime on a kwok node. */
const NO_RUNTIME = { KS_RUNTIME_SOCKET: "none" };

async function addNode(kube: KubeCluster, name: string) {
  await kube.addNodes([name], { [TEST_NODE_LABEL]: name });
}

async function runningPod(kube: KubeCluster, node: string, selector = "app") {
  let pods: Awaited<ReturnType<typeof podsOn>> = [];
  await waitUntil(
    async () => {
      pods = (await podsOn(kube, node, selector)).filter((p) =>
        p.phase === "Running" && !p.deleting
      );
      return pods.length === 1;
    },
    120_000,
    `one running pod on ${node}`,
    100,
  );
  return pods[0];
}

Deno.test({
  name: "ks-stub against the real API server",
  ignore: !kubeBinDir(),
  sanitizeResources: false,
  sanitizeOps: false,
}, async (t) => {
  const kube = await startKube();
  try {
    await apply(kube, stubRbac("sonic", SA));
    const kubeconfig = await kube.serviceAccountKubeconfig("sonic", SA);
    const stub = (args: string[], env: Record<string, string> = {}) =>
      runTool("ks-stub", [...args, "--kubeconfig", kubeconfig], { env: { ...NO_RUNTIME, ...env } });

    await t.step("status is 0 with the pod's name while the feature's pod runs", async () => {
      await addNode(kube, "sw-status");
      await apply(kube, [featureDaemonSet({ feature: "telemetry", nodeLabel: "sw-status" })]);
      const pod = await runningPod(kube, "sw-status");
      const text = await stub(["telemetry", "status", "--node", "sw-status"]);
      assert.equal(text.code, 0, text.stdout + text.stderr);
      assert.match(text.stdout, new RegExp(`● telemetry - Kubernetes pod sonic/${pod.name}`));
      assert.match(text.stdout, /Active: active \(running\)/);
      const json = await stub(["telemetry", "status", "--node", "SW-Status", "--output", "json"]);
      assert.equal(json.code, 0, json.stderr);
      const report = JSON.parse(json.stdout);
      assert.equal(report.state, "running");
      assert.equal(report.node, "sw-status");
      assert.equal(report.pod.uid, pod.uid);
    });

    await t.step("status is 3 on a node without the pod and for another feature", async () => {
      await addNode(kube, "sw-empty");
      const none = await stub(["telemetry", "status", "--node", "sw-empty"]);
      assert.equal(none.code, 3, none.stdout + none.stderr);
      assert.match(none.stdout, /inactive \(dead\)/);
      const other = await stub(["gnmi", "status", "--node", "sw-status"]);
      assert.equal(other.code, 3, other.stdout);
    });

    await t.step(
      "status is 4 within its timeout when the API server cannot be reached",
      async () => {
        const { proxy, via } = await apiProxy(kube, kubeconfig);
        try {
          proxy.cut();
          const t0 = Date.now();
          const out = await runTool("ks-stub", [
            "telemetry",
            "status",
            "--node",
            "sw-status",
            "--kubeconfig",
            via,
            "--timeout",
            "2s",
          ], { env: NO_RUNTIME });
          assert.equal(out.code, 4, out.stdout + out.stderr);
          assert.match(out.stdout, /unknown \(API server unreachable\)/);
          assert.ok(Date.now() - t0 < 6000, `took ${Date.now() - t0} ms`);
        } finally {
          proxy.stop();
        }
      },
    );

    await t.step(
      "KUBECONFIG is used without --kubeconfig, and --kubeconfig wins over it",
      async () => {
        const env = await runTool("ks-stub", ["telemetry", "status", "--node", "sw-status"], {
          env: { ...NO_RUNTIME, KUBECONFIG: kubeconfig },
        });
        assert.equal(env.code, 0, env.stdout + env.stderr);
        const flag = await runTool(
          "ks-stub",
          ["telemetry", "status", "--node", "sw-status", "--kubeconfig", kubeconfig],
          { env: { ...NO_RUNTIME, KUBECONFIG: "/nonexistent/kubeconfig" } },
        );
        assert.equal(flag.code, 0, flag.stdout + flag.stderr);
      },
    );

    await t.step("a v1 sidecar-only pod of the feature does not count", async () => {
      await addNode(kube, "sw-v1");
      await apply(kube, [featureDaemonSet({ feature: "bmp", nodeLabel: "sw-v1", v1: true })]);
      await runningPod(kube, "sw-v1", "app=bmp");
      const out = await stub(["bmp", "status", "--node", "sw-v1"]);
      assert.equal(out.code, 3, out.stdout);
    });

    await t.step("per-ASIC instances are told apart by the asic label", async () => {
      await addNode(kube, "sw-asic");
      await apply(kube, [
        featureDaemonSet({ feature: "bgp", name: "bgp-asic0", nodeLabel: "sw-asic", asic: "0" }),
      ]);
      await runningPod(kube, "sw-asic", "raw_container_name=bgp");
      assert.equal((await stub(["bgp", "status", "0", "--node", "sw-asic"])).code, 0);
      assert.equal((await stub(["bgp", "status", "asic0", "--node", "sw-asic"])).code, 0);
      assert.equal((await stub(["bgp", "status", "1", "--node", "sw-asic"])).code, 3);
      assert.equal((await stub(["bgp", "status", "--node", "sw-asic"])).code, 3);
    });

    await t.step("start is a no-op while the pod runs", async () => {
      const before = await runningPod(kube, "sw-status");
      const out = await stub(["telemetry", "start", "--node", "sw-status"]);
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.stderr, /already running; nothing to do/);
      const after = await runningPod(kube, "sw-status");
      assert.equal(after.uid, before.uid);
    });

    await t.step(
      "stop deletes the pod, returns once it is gone; the DaemonSet brings a new one",
      async () => {
        const before = await runningPod(kube, "sw-status");
        const out = await stub(["telemetry", "stop", "--node", "sw-status"]);
        assert.equal(out.code, 0, out.stderr);
        assert.match(out.stderr, /deleted pod/);
        assert.match(out.stderr, /stopped: the old pod is gone/);
        const pods = await podsOn(kube, "sw-status", "raw_container_name=telemetry");
        assert.ok(!pods.some((p) => p.uid === before.uid), "the old pod is gone when stop returns");
        const fresh = await runningPod(kube, "sw-status");
        assert.notEqual(fresh.uid, before.uid);
      },
    );

    await t.step("restart returns with a new pod running", async () => {
      const before = await runningPod(kube, "sw-status");
      const out = await stub(["telemetry", "restart", "--node", "sw-status"]);
      assert.equal(out.code, 0, out.stderr);
      const status = await stub(["telemetry", "status", "--node", "sw-status", "--output", "json"]);
      assert.equal(status.code, 0, status.stdout);
      assert.notEqual(JSON.parse(status.stdout).pod.uid, before.uid);
    });

    await t.step("a running pod that is not Ready is running (0) and says so", async () => {
      await addNode(kube, "sw-notready");
      await apply(kube, [
        featureDaemonSet({
          feature: "restapi",
          name: "restapi-notready",
          nodeLabel: "sw-notready",
          annotations: { "kubesonic.test/ready": "false" },
        }),
      ]);
      await runningPod(kube, "sw-notready");
      let out = await stub(["restapi", "status", "--node", "sw-notready"]);
      await waitUntil(
        async () => {
          out = await stub(["restapi", "status", "--node", "sw-notready"]);
          return /ready 0\/2/.test(out.stdout);
        },
        30_000,
        "the pod reported not ready",
        200,
      );
      assert.equal(out.code, 0, out.stdout);
      assert.match(out.stdout, /active \(running\)/);
    });

    await t.step("stop without a pod succeeds and changes nothing", async () => {
      const out = await stub(["telemetry", "stop", "--node", "sw-empty"]);
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.stderr, /nothing to stop/);
    });

    await t.step(
      "start on a node without a pod: 0 in bounded time, one line, waiting for the instance",
      async () => {
        const t0 = Date.now();
        const out = await stub(["telemetry", "start", "--node", "sw-empty", "--timeout", "2s"]);
        assert.equal(out.code, 0, out.stderr);
        const lines = out.stderr.trim().split("\n");
        assert.equal(lines.length, 1, out.stderr);
        assert.match(
          lines[0],
          /no telemetry pod on node sw-empty: waiting for this node's instance/,
        );
        assert.ok(Date.now() - t0 < 8000);
      },
    );

    await t.step(
      "start waits (watching) for the DaemonSet's pod and returns when it runs",
      async () => {
        await addNode(kube, "sw-start");
        const tool = await startTool("ks-stub", [
          "restapi",
          "start",
          "--node",
          "sw-start",
          "--kubeconfig",
          kubeconfig,
          "--timeout",
          "30s",
        ], { env: { ...NO_RUNTIME, KS_DEBUG: "1" } });
        try {
          // The DaemonSet comes once start has listed no pod and watches (a fixed delay let a slow
          // start list the pod already running: "already running", not the wait under test).
          await tool.waitForLine(/no pod of the feature on this node yet/, 30_000);
          await apply(kube, [featureDaemonSet({ feature: "restapi", nodeLabel: "sw-start" })]);
          const status = await tool.status;
          const stderr = tool.lines.join("\n");
          assert.equal(status.code, 0, stderr);
          assert.match(stderr, /ks-stub\[\d+\]: restapi: running/);
        } finally {
          await tool.stop();
        }
      },
    );

    await t.step("stop is refused in one line when RBAC does not allow deleting pods", async () => {
      await apply(kube, [{
        apiVersion: "v1",
        kind: "ServiceAccount",
        metadata: { name: "reader", namespace: "sonic" },
      }, {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "Role",
        metadata: { name: "reader", namespace: "sonic" },
        rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["list", "watch"] }],
      }, {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        metadata: { name: "reader", namespace: "sonic" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "reader" },
        subjects: [{ kind: "ServiceAccount", name: "reader", namespace: "sonic" }],
      }]);
      const reader = await kube.serviceAccountKubeconfig("sonic", "reader");
      const out = await runTool("ks-stub", [
        "telemetry",
        "stop",
        "--node",
        "sw-status",
        "--kubeconfig",
        reader,
      ], { env: NO_RUNTIME });
      assert.equal(out.code, 1, out.stderr);
      const errors = out.stderr.split("\n").filter((l) => /ERROR/.test(l));
      assert.equal(errors.length, 1, out.stderr);
      assert.match(errors[0], /forbidden/i);
    });

    await t.step(
      "wait follows a replaced pod, survives an API outage and a leave, returns once v1 runs",
      async () => {
        await addNode(kube, "sw-wait");
        await apply(kube, [featureDaemonSet({ feature: "gnmi", nodeLabel: "sw-wait" })]);
        const first = await runningPod(kube, "sw-wait");
        const { proxy, via } = await apiProxy(kube, kubeconfig);
        const cmd = await toolCommand("ks-stub", [
          "gnmi",
          "wait",
          "--node",
          "sw-wait",
          "--kubeconfig",
          via,
          "--grace",
          "3s",
        ], { stdout: "piped", stderr: "piped", env: NO_RUNTIME });
        const child = cmd.spawn();
        let exited = false;
        const done = child.output().then((o) => {
          exited = true;
          return o;
        });
        const told = (o: Deno.CommandOutput) =>
          `exit ${o.code}: ${
            new TextDecoder().decode(o.stderr).trim().split("\n").slice(-6).join(" | ")
          }`;
        /** Fails, with what wait printed, if it has returned. */
        const stillWaiting = async (why: string) => {
          if (exited) assert.fail(`${why}, but wait returned (${told(await done)})`);
        };
        try {
          await new Promise((r) => setTimeout(r, 1500));
          await stillWaiting("wait blocks while the pod exists");
          // Another client deletes the pod: the DaemonSet replaces it and wait follows.
          await kubectlOk(kube, ["delete", "pod", "-n", "sonic", first.name, "--wait=false"]);
          const second = await runningPod(kube, "sw-wait");
          assert.notEqual(second.uid, first.uid);
          await new Promise((r) => setTimeout(r, 4000));
          await stillWaiting("a pod replaced within the grace keeps wait blocking");
          // The API server goes away for longer than the grace: wait must not return.
          proxy.cut();
          await new Promise((r) => setTimeout(r, 5000));
          await stillWaiting("an API outage does not end wait");
          proxy.restore();
          await new Promise((r) => setTimeout(r, 1500));
          await stillWaiting("the API server back");
          // The DaemonSet is removed (as a node leave looks): wait keeps waiting for the instance.
          await kubectlOk(kube, ["delete", "daemonset", "-n", "sonic", "gnmi", "--wait=false"]);
          await waitUntil(
            async () => (await podsOn(kube, "sw-wait", "app=gnmi")).length === 0,
            120_000,
            "no gnmi pod on sw-wait",
            100,
          );
          await new Promise((r) => setTimeout(r, 5000));
          await stillWaiting("no pod for longer than the grace does not end wait");
          // It comes back (a join): wait follows it.
          await apply(kube, [featureDaemonSet({ feature: "gnmi", nodeLabel: "sw-wait" })]);
          await runningPod(kube, "sw-wait");
          await new Promise((r) => setTimeout(r, 1000));
          await stillWaiting("the instance back");
          // The feature goes back to v1 on this node: wait returns after the grace.
          await apply(kube, [
            featureDaemonSet({ feature: "gnmi", nodeLabel: "sw-wait", v1: true }),
          ]);
          for (const p of await podsOn(kube, "sw-wait", "raw_container_name=gnmi")) {
            await kubectlOk(kube, ["delete", "pod", "-n", "sonic", p.name, "--wait=false"]);
          }
          // A bound only so that a wait that never returns fails the step instead of hanging it.
          let timer: ReturnType<typeof setTimeout> | undefined;
          const late = new Promise<"late">((r) => timer = setTimeout(() => r("late"), 180_000));
          const ended = await Promise.race([done, late]).finally(() => clearTimeout(timer));
          if (ended === "late") {
            child.kill("SIGKILL");
            assert.fail(`wait did not return within 180 s of v1 (${told(await done)})`);
          }
          const out = ended;
          const stderr = new TextDecoder().decode(out.stderr);
          assert.equal(out.code, 0, stderr);
          assert.match(stderr, /following the replacement pod/);
          assert.match(stderr, /API server call failed; retrying/);
          assert.match(stderr, /API server reachable again/);
          assert.match(stderr, /waiting for this node's instance/);
          assert.match(stderr, /this node's instance is back; following it/);
          assert.match(stderr, /the feature runs as v1 on this node/);
        } finally {
          if (!exited) {
            try {
              child.kill("SIGKILL");
            } catch { /* gone */ }
            await done;
          }
          proxy.stop();
        }
      },
    );

    await t.step("wait ends quietly with 0 on SIGTERM (systemd stopping the unit)", async () => {
      const cmd = await toolCommand("ks-stub", [
        "telemetry",
        "wait",
        "--node",
        "sw-status",
        "--kubeconfig",
        kubeconfig,
      ], { stdout: "piped", stderr: "piped", env: NO_RUNTIME });
      const child = cmd.spawn();
      await new Promise((r) => setTimeout(r, 1500));
      child.kill("SIGTERM");
      const out = await child.output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    });

    await t.step(
      "a wait that stays resident (no pod on its node) drops its start-up's file pages",
      async () => {
        const tool = await startTool("ks-stub", [
          "telemetry",
          "wait",
          "--node",
          "sw-empty",
          "--kubeconfig",
          kubeconfig,
        ], { env: NO_RUNTIME });
        let status: Deno.CommandStatus;
        try {
          await tool.waitForLine(/telemetry: dropped start-up file pages .*kib=[1-9]/, 30_000);
        } finally {
          status = await tool.stop("SIGTERM");
        }
        assert.equal(status.code, 0, tool.lines.join("\n"));
      },
    );
  } finally {
    await kube.stop();
  }
});
