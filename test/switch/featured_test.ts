// featured's exact systemctl sequences as a regression test on a real lab switch (systemd as PID
// 1, the native Docker, containerd and a real kubelet): the auto_restart drop-in + daemon-reload,
// disable (wait while activating, stop, disable, mask), enable (unmask, enable, start), then five
// quick disable/enable cycles, first on the native v0 unit and then on the same unit backed by
// the v2 pod. Both must leave the same unit and daemon states, every mask and unmask must
// succeed (telemetry.service lives in /usr/lib/systemd/system as on SONiC), and no moment may see
// two telemetry instances (sampled through Docker and the CRI all along).
import assert from "node:assert/strict";
import { kubeBinDir, startKube } from "../../sandbox/harness/kube.ts";
import { startSwitches, switchUnavailableReason } from "../../sandbox/harness/switch.ts";
import { FLOW_STEPS, type FlowEnv, missingTools } from "../../sandbox/flows/real_switch.ts";
import {
  checkOneInstance,
  featuredSequences,
  type FeaturedTarget,
} from "../../sandbox/flows/featured.ts";

/** The single-ASIC switch's telemetry: one instance, its daemon on 50051. */
const TARGET: FeaturedTarget = { feature: "telemetry", ports: { telemetry: 50051 } };

const reason = switchUnavailableReason() ??
  (kubeBinDir() ? undefined : "the Kubernetes binaries are not built (scripts/build-kube.sh)");

Deno.test({
  name:
    "featured's sequences on a real switch: v0 and v2 leave the same unit and daemon states, mask/unmask work, never two instances",
  ignore: reason !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "ks-featured-" });
    const cluster = await startKube({ dir: `${dir}/kube` });
    try {
      const lab = await startSwitches({ cluster, count: 1, dir: `${dir}/switches` });
      const env: FlowEnv = {
        cluster,
        sw: lab.switches[0],
        dir,
        note: (text: string) => console.error(`   ${text}`),
      };
      try {
        const seen: Record<string, Record<string, unknown>> = {};
        await t.step("v0 native: featured's sequences", async () => {
          env.note(await FLOW_STEPS[0].run(env));
          seen.v0 = await featuredSequences(env.sw, TARGET, "docker");
          env.note(JSON.stringify(seen.v0));
        });
        const rollout = FLOW_STEPS.filter((s) => s.part === "5.1");
        await t.step({
          name: "rolled out to v2 (5.1): the unit is backed by the pod",
          ignore: rollout.some((s) => missingTools(s).length > 0),
          async fn() {
            for (const step of rollout) env.note(await step.run(env));
          },
        });
        await t.step({
          name: "v2 Kubernetes: featured's sequences leave the same states as on v0",
          ignore: !seen.v0,
          async fn() {
            seen.v2 = await featuredSequences(env.sw, TARGET, "kubernetes");
            env.note(JSON.stringify(seen.v2));
            const { instances: i0, ...v0 } = seen.v0;
            const { instances: i2, ...v2 } = seen.v2;
            assert.deepEqual(v2, v0);
            for (const [v, i] of [["v0", i0], ["v2", i2]] as const) {
              env.note(`${v} instances: ${JSON.stringify(i)}`);
              env.note(checkOneInstance(v, i));
            }
          },
        });
      } finally {
        env.note(`telemetry journal: ${await lab.switches[0].journal("telemetry", 12)}`);
        await lab.stop();
      }
    } finally {
      await cluster.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
