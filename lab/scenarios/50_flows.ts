// Lab: the design's rollout and rollback flows (5.1 to 5.4, docs/design.md) on one simulated switch: the
// lab's CONFIG_DB (real redis), the lab's control plane (kwok node), a sandbox host root, the real
// tools (ks-render, ks-rollout, ks-patcher as sidecar, ks-entrypoint + supervisord + the example
// daemon, ks-watchdog, ks-stub via the installed launcher) and the pod runner playing the
// kubelet's container part (sandbox/flows/pod_runner.ts). Each step shows what converged and when.
import { join } from "node:path";
import type { LabScenario } from "../context.ts";
import { waitUntil } from "../../sandbox/harness/net.ts";
import {
  createFlowSwitch,
  DROP_IN,
  LAUNCHER,
  type Rendered,
} from "../../sandbox/flows/flow_switch.ts";
import { formatMs } from "../timeline.ts";

const NODE = "lab-flows";

async function until(what: string, fn: () => boolean | Promise<boolean>, ms = 60_000) {
  await waitUntil(fn, ms, what, 50);
}

export const scenario: LabScenario = {
  title: "flows 5.1 to 5.4: rollout and rollback on a simulated switch",
  needs: ["kube"],
  async run(ctx) {
    const { timeline, redis } = ctx;
    const kube = ctx.kube;
    if (!kube) throw new Error("the control plane scenario did not leave ctx.kube");
    await redis.setFeatureState("telemetry", "enabled");
    const sw = await createFlowSwitch({ kube, redis, dir: join(ctx.dir, "flows"), node: NODE });
    ctx.defer(async () => {
      await sw.stop();
      await kube.kubectl(["delete", "daemonset", "-n", "sonic", "telemetry", "--ignore-not-found"]);
    });
    timeline.note(
      `switch ${NODE}: host root ${sw.hostRoot}, daemon port ${sw.ports.daemon}, watchdog ` +
        `${sw.ports.watchdog}; systemctl/docker are the recording fakes (${sw.systemctl.logPath})`,
    );
    let v2: Rendered | undefined;

    await timeline.step("5.1 v1 rolled out: sidecar running, native launcher kept", async () => {
      v2 = await sw.render("v2");
      await sw.apply(v2.common);
      const t0 = performance.now();
      await sw.apply(v2.v1);
      await sw.waitPod("the v1 pod Ready", (p) => p.stage === "v1" && p.ready);
      await until(
        "the sidecar's first pass",
        async () => (await sw.runner.output("telemetry-sidecar")).includes("manifest-native"),
      );
      if ((await sw.hostFile(LAUNCHER)) !== sw.nativeLauncher) {
        throw new Error("v1 changed the native launcher");
      }
      return `v1 pod Ready and sidecar converged ${formatMs(performance.now() - t0)} after apply`;
    });
    if (!v2) return;
    const rendered = v2;

    await timeline.step(
      "5.1 v2 rolled out (ks-rollout): stub installed, daemon up, Ready",
      async () => {
        const t0 = performance.now();
        const r = await sw.rollout(rendered.v2);
        if (r.code !== 0) {
          throw new Error(
            `ks-rollout exit ${r.code}: ${r.stderr.trim().split("\n").pop()}`,
          );
        }
        const rolled = performance.now() - t0;
        await until(
          "the stub launcher",
          async () => (await sw.hostFile(LAUNCHER)) === rendered.files["telemetry.sh"],
        );
        await until("the drop-in", async () => (await sw.hostFile(DROP_IN)) !== undefined);
        await until("the daemon listening", () => sw.daemonUp());
        const status = await sw.launcher("status");
        if (status.code !== 0) throw new Error(`telemetry.sh status exit ${status.code}`);
        return `rollout ${formatMs(rolled)}; launcher -> ks-stub, native container stopped and ` +
          `telemetry restarted (${sw.systemctl.calls().length} recorded calls); telemetry.sh status 0`;
      },
    );

    await timeline.step(
      "5.3 FEATURE disabled + telemetry.sh stop: the container idles",
      async () => {
        const [before] = (await sw.pods()).filter((p) => !p.deleting);
        await redis.setFeatureState("telemetry", "disabled");
        const t0 = performance.now();
        const stop = await sw.launcher("stop");
        if (stop.code !== 0) throw new Error(`stop exit ${stop.code}: ${stop.stderr.trim()}`);
        const stopped = performance.now() - t0;
        await sw.waitPod("a new pod Ready", (p) => p.uid !== before.uid && p.ready);
        await until("the daemon gone", async () => !(await sw.daemonUp()));
        const wd = await sw.watchdog();
        if (wd?.status !== 200) throw new Error(`watchdog answered ${wd?.status}`);
        return `stop ${formatMs(stopped)}; new pod idle and Ready ${
          formatMs(performance.now() - t0)
        } after stop began; watchdog 200 (${wd.body.trim().slice(0, 60)})`;
      },
    );

    await timeline.step(
      "5.2 FEATURE enabled + telemetry.sh stop/start: the daemon runs",
      async () => {
        await redis.setFeatureState("telemetry", "enabled");
        const t0 = performance.now();
        const stop = await sw.launcher("stop");
        const start = await sw.launcher("start");
        if (stop.code !== 0 || start.code !== 0) {
          throw new Error(
            `stop exit ${stop.code}, start exit ${start.code}: ${start.stderr.trim()}`,
          );
        }
        const restarted = performance.now() - t0;
        await until("the daemon listening", () => sw.daemonUp());
        return `restart through the stub ${formatMs(restarted)}; daemon listening ${
          formatMs(performance.now() - t0)
        } after it began`;
      },
    );

    await timeline.step("5.4 v2+ whose watchdog fails is undone back to v2", async () => {
      const v2plus = await sw.render("v2plus");
      await sw.apply(v2plus.common);
      const t0 = performance.now();
      const r = await sw.rollout(v2plus.v2, "15s");
      if (r.code !== 4) throw new Error(`ks-rollout exit ${r.code} (expected 4, rolled back)`);
      await sw.waitPod("v2 back and Ready", (p) => p.version === "latest" && p.ready);
      await until("the daemon listening", () => sw.daemonUp());
      return `rolled back (exit 4) and v2 Ready again ${
        formatMs(performance.now() - t0)
      } after start`;
    });

    await timeline.step(
      "5.4 v2 -> v0: v1 restores the native launcher, DaemonSet removed",
      async () => {
        const t0 = performance.now();
        const r = await sw.rollout(rendered.v1);
        if (r.code !== 0) throw new Error(`ks-rollout exit ${r.code}`);
        await until(
          "the native launcher",
          async () => (await sw.hostFile(LAUNCHER)) === sw.nativeLauncher,
        );
        await until("the drop-in removed", async () => (await sw.hostFile(DROP_IN)) === undefined);
        const restored = performance.now() - t0;
        const del = await kube.kubectl(["delete", "daemonset", "-n", "sonic", "telemetry"]);
        if (del.code !== 0) throw new Error(del.stderr.trim());
        await until(
          "no pod and no process",
          async () => (await sw.pods()).length === 0 && sw.runner.running().length === 0,
        );
        return `original launcher bytes back ${formatMs(restored)} after the v1 rollout began; ` +
          "no Kubernetes object or process left";
      },
    );

    await timeline.step(
      "5.2 from v0, FEATURE disabled: v2 idles; enable + restart runs it",
      async () => {
        await redis.setFeatureState("telemetry", "disabled");
        await sw.apply(rendered.v1);
        await sw.waitPod("the v1 pod", (p) => p.stage === "v1" && p.ready);
        const t0 = performance.now();
        const r = await sw.rollout(rendered.v2);
        if (r.code !== 0) throw new Error(`ks-rollout exit ${r.code}`);
        const idle = await sw.waitPod("the idle v2 pod", (p) => p.stage === "v2" && p.ready);
        const wd = await sw.watchdog();
        if (wd?.status !== 200 || !/disabled/.test(wd.body) || await sw.daemonUp()) {
          throw new Error(`expected an idle pod and a 200 "disabled" watchdog, got ${wd?.status}`);
        }
        const idleAt = performance.now() - t0;
        await redis.setFeatureState("telemetry", "enabled");
        const t1 = performance.now();
        if ((await sw.launcher("stop")).code !== 0 || (await sw.launcher("start")).code !== 0) {
          throw new Error("restart through the stub failed");
        }
        await sw.waitPod("the restarted pod", (p) => p.uid !== idle.uid && p.ready);
        await until("the daemon listening", () => sw.daemonUp());
        return `v2 idle and Ready ${formatMs(idleAt)} after the rollout began; daemon listening ` +
          `${formatMs(performance.now() - t1)} after enable + restart`;
      },
    );
  },
};
