// The design's flows (design.md 5.1–5.4) end to end on one simulated switch: real redis
// (CONFIG_DB), the real API server with DaemonSet controller and scheduler (kwok node), a sandbox
// host root, and the real tools (ks-render, kubectl, ks-rollout, ks-patcher as the sidecar,
// ks-entrypoint + supervisord + the example daemon, ks-watchdog, ks-stub through the installed
// launcher). The pod runner (pod_runner.ts) plays the kubelet's container part. The steps run in
// the order a switch lives through them, each starting from the state the previous one left.
import assert from "node:assert/strict";
import { kubeBinDir, startKube } from "../../sandbox/harness/kube.ts";
import { waitUntil } from "../../sandbox/harness/net.ts";
import { startRedis } from "../../sandbox/harness/redis.ts";
import {
  createFlowSwitch,
  DROP_IN,
  type FlowSwitch,
  LAUNCHER,
  type Rendered,
} from "../../sandbox/flows/flow_switch.ts";

async function until(what: string, fn: () => boolean | Promise<boolean>, ms = 30_000) {
  await waitUntil(fn, ms, what, 100);
}

/** Waits like `until`; on timeout the error also shows what the recording systemctl saw. */
async function untilCalls(s: FlowSwitch, what: string, fn: () => boolean, ms = 30_000) {
  try {
    await waitUntil(fn, ms, what, 100);
  } catch (error) {
    const sidecar = (await s.runner.output("telemetry-sidecar")).split("\n").slice(-15).join("\n");
    throw new Error(
      `${(error as Error).message}; calls: ${
        JSON.stringify(s.systemctl.calls())
      }; sidecar:\n${sidecar}`,
    );
  }
}

Deno.test({
  name: "design flows 5.1-5.4 on a simulated switch",
  ignore: !kubeBinDir(),
  sanitizeResources: false,
  sanitizeOps: false,
}, async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "ks-flows-" });
  const redis = await startRedis({ dir: `${dir}/db` });
  const kube = await startKube();
  let sw: FlowSwitch | undefined;
  // systemd's ExecStart=telemetry.sh wait, started once v2 runs: it must hold through every pod
  // replacement below and return by itself only when Kubernetes no longer runs the feature.
  let waiter: Deno.ChildProcess | undefined;
  let waited: Promise<Deno.CommandOutput> | undefined;
  let waitEnded = false;
  try {
    await redis.setFeatureState("telemetry", "enabled");
    sw = await createFlowSwitch({ kube, redis, dir });
    const s = sw;
    let v2: Rendered;
    const waitAlive = () => assert.equal(waitEnded, false, "telemetry.sh wait returned early");

    await t.step("5.1 v1 rolls out: the sidecar keeps the native launcher", async () => {
      v2 = await s.render("v2");
      await s.apply(v2.common);
      await s.apply(v2.v1);
      const pod = await s.waitPod("the v1 pod", (p) => p.stage === "v1" && p.ready);
      await until(
        "the v1 sidecar running",
        () =>
          s.runner.running().some((r) => r.uid === pod.uid && r.container === "telemetry-sidecar"),
      );
      await until(
        "the v1 sidecar's first pass",
        async () => (await s.runner.output("telemetry-sidecar")).includes("manifest-native"),
      );
      assert.equal(await s.hostFile(LAUNCHER), s.nativeLauncher);
      assert.equal(await s.daemonUp(), false, "v1 runs no daemon");
    });

    await t.step(
      "5.1 v2 rolls out: stub launcher installed, daemon started, watchdog healthy, pod Ready",
      async () => {
        const r = await s.rollout(v2.v2);
        assert.equal(r.code, 0, r.stderr);
        const pod = await s.waitPod("the v2 pod Ready", (p) => p.stage === "v2" && p.ready);
        await until(
          "the stub launcher installed",
          async () => (await s.hostFile(LAUNCHER)) === v2.files["telemetry.sh"],
        );
        assert.equal(await s.hostFile(DROP_IN), v2.files["50-kubesonic.conf"]);
        await untilCalls(s, "the native container stopped and the unit restarted", () => {
          const calls = s.systemctl.calls();
          return calls.includes("docker stop telemetry") &&
            calls.includes("systemctl daemon-reload") &&
            calls.some((c) => /^systemctl restart telemetry/.test(c));
        });
        await until("the daemon listening", () => s.daemonUp());
        const wd = await s.watchdog();
        assert.equal(wd?.status, 200, wd?.body);
        const status = await s.launcher("status");
        assert.equal(status.code, 0, status.stdout + status.stderr);
        assert.match(status.stdout, new RegExp(`sonic/${pod.name}`));
        waiter = await s.spawnLauncher("wait");
        waited = waiter.output().finally(() => (waitEnded = true));
        await new Promise((r) => setTimeout(r, 1500));
        waitAlive();
      },
    );

    await t.step(
      "5.3 disabled after rollout: the stub's stop leads to an idle container",
      async () => {
        const before = await s.waitPod("the v2 pod", (p) => p.stage === "v2" && p.ready);
        await redis.setFeatureState("telemetry", "disabled");
        // featured: systemctl stop telemetry -> ExecStop=/usr/local/bin/telemetry.sh stop
        const stop = await s.launcher("stop");
        assert.equal(stop.code, 0, stop.stderr);
        assert.match(stop.stderr, /deleted pod/);
        const after = await s.waitPod("a new v2 pod Ready", (p) => p.uid !== before.uid && p.ready);
        await until("the daemon gone", async () => !(await s.daemonUp()));
        await until(
          "the watchdog answering OK while disabled",
          async () => (await s.watchdog())?.status === 200,
        );
        // Idle for a while: the container neither starts the daemon nor exits.
        await new Promise((r) => setTimeout(r, 2000));
        assert.equal(await s.daemonUp(), false);
        const running = s.runner.running().filter((r) => r.uid === after.uid);
        assert.ok(
          running.some((r) => r.container === "telemetry" && r.starts === 1),
          "no restarts",
        );
        assert.equal((await s.launcher("status")).code, 0, "the container runs (idle)");
      },
    );

    await t.step(
      "5.2 (after 5.3) enabled + restart through the stub: the daemon runs",
      async () => {
        waitAlive();
        const before = await s.waitPod("the idle v2 pod", (p) => p.stage === "v2" && p.ready);
        assert.equal(await s.daemonUp(), false);
        await redis.setFeatureState("telemetry", "enabled");
        // featured: systemctl restart telemetry -> ExecStop stop, ExecStartPre start, ExecStart wait
        const stop = await s.launcher("stop");
        assert.equal(stop.code, 0, stop.stderr);
        const start = await s.launcher("start");
        assert.equal(start.code, 0, start.stderr);
        const after = await s.waitPod("the restarted pod", (p) => p.uid !== before.uid && p.ready);
        await until("the daemon listening", () => s.daemonUp());
        const wd = await s.watchdog();
        assert.equal(wd?.status, 200, wd?.body);
        assert.notEqual(after.uid, before.uid);
      },
    );

    await t.step("5.4 v2+ -> v2: a release the watchdog fails is undone", async () => {
      waitAlive();
      const v2plus = await s.render("v2plus");
      await s.apply(v2plus.common);
      const r = await s.rollout(v2plus.v2, "15s");
      assert.equal(r.code, 4, `ks-rollout should stop and roll back: ${r.stdout}${r.stderr}`);
      await s.waitPod(
        "the v2 pod back and Ready",
        (p) => p.stage === "v2" && p.version === "latest" && p.ready,
      );
      await until("the daemon listening again", () => s.daemonUp());
      assert.equal((await s.watchdog())?.status, 200);
    });

    await t.step(
      "5.4 v2 -> v0: v1 restores the native launcher, then the DaemonSet goes",
      async () => {
        const before = s.systemctl.calls().length;
        const r = await s.rollout(v2.v1);
        assert.equal(r.code, 0, r.stderr);
        await s.waitPod("the v1 pod", (p) => p.stage === "v1" && p.ready);
        await until(
          "the native launcher restored",
          async () => (await s.hostFile(LAUNCHER)) === s.nativeLauncher,
        );
        await until("the drop-in removed", async () => (await s.hostFile(DROP_IN)) === undefined);
        const mode = (await Deno.stat(`${s.hostRoot}${LAUNCHER}`)).mode! & 0o777;
        assert.equal(mode, 0o755);
        await untilCalls(
          s,
          "the native unit restarted",
          () =>
            s.systemctl.calls().slice(before).some((c) => /^systemctl restart telemetry/.test(c)),
        );
        assert.equal(await s.daemonUp(), false, "no daemon from Kubernetes any more");
        // No feature pod any more (v1 pods run only the sidecar): wait returns after its grace.
        const out = await waited!;
        const err = new TextDecoder().decode(out.stderr);
        assert.equal(out.code, 0, err);
        assert.match(err, /following the replacement pod/);
        assert.match(err, /the pod is gone; returning/);
        // v0: nothing of the feature left in Kubernetes.
        const del = await kube.kubectl(["delete", "daemonset", "-n", "sonic", "telemetry"]);
        assert.equal(del.code, 0, del.stderr);
        await until(
          "no pod and no container process",
          async () => (await s.pods()).length === 0 && s.runner.running().length === 0,
        );
        assert.equal(await s.hostFile(LAUNCHER), s.nativeLauncher);
      },
    );

    await t.step(
      "5.2 from v0 with the feature disabled: v2 idles, watchdog OK; enable + restart runs it",
      async () => {
        await redis.setFeatureState("telemetry", "disabled");
        await s.apply(v2.v1);
        await s.waitPod("the v1 pod again", (p) => p.stage === "v1" && p.ready);
        const r = await s.rollout(v2.v2);
        assert.equal(r.code, 0, r.stderr);
        const idle = await s.waitPod("the v2 pod Ready", (p) => p.stage === "v2" && p.ready);
        await until(
          "the stub launcher installed again",
          async () => (await s.hostFile(LAUNCHER)) === v2.files["telemetry.sh"],
        );
        const wd = await s.watchdog();
        assert.equal(wd?.status, 200, wd?.body);
        assert.match(wd!.body, /disabled/);
        await new Promise((r) => setTimeout(r, 1500));
        assert.equal(await s.daemonUp(), false, "disabled: the container idles");
        // NDM enables it; featured restarts the unit: ExecStop, ExecStartPre.
        await redis.setFeatureState("telemetry", "enabled");
        assert.equal((await s.launcher("stop")).code, 0);
        assert.equal((await s.launcher("start")).code, 0);
        await s.waitPod("the restarted pod Ready", (p) => p.uid !== idle.uid && p.ready);
        await until("the daemon listening", () => s.daemonUp());
        const healthy = await s.watchdog();
        assert.equal(healthy?.status, 200, healthy?.body);
        assert.doesNotMatch(healthy!.body, /disabled/);
      },
    );
  } finally {
    if (waiter && !waitEnded) {
      try {
        waiter.kill("SIGKILL");
      } catch { /* gone */ }
      await waited;
    }
    await sw?.stop();
    await kube.stop();
    await redis.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
