// featured's exact systemctl sequences as a regression test on a real lab switch (systemd as PID
// 1, the native Docker, containerd and a real kubelet): the auto_restart drop-in + daemon-reload,
// disable (wait while activating, stop, disable, mask), enable (unmask, enable, start), then five
// quick disable/enable cycles, first on the native v0 unit and then on the same unit backed by
// the v2 pod. Both must leave the same unit and daemon states, every mask and unmask must
// succeed (telemetry.service lives in /usr/lib/systemd/system as on SONiC), and no moment may see
// two telemetry instances (sampled through Docker and the CRI all along).
import assert from "node:assert/strict";
import { FLOW_STEPS, type FlowEnv } from "../../sandbox/flows/real_switch.ts";
import {
  checkOneInstance,
  featuredSequences,
  type FeaturedTarget,
} from "../../sandbox/flows/featured.ts";
import {
  realSwitchUnavailableReason,
  rollOutToV2,
  withRealSwitch,
} from "../../sandbox/flows/real_switch_fixture.ts";

/** The single-ASIC switch's telemetry: one instance, its daemon on 50051. */
const TARGET: FeaturedTarget = { feature: "telemetry", ports: { telemetry: 50051 } };

const reason = realSwitchUnavailableReason();

Deno.test({
  name:
    "featured's sequences on a real switch: v0 and v2 leave the same unit and daemon states, mask/unmask work, never two instances",
  ignore: reason !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const journal = async (env: FlowEnv) =>
      env.note(`telemetry journal: ${await env.sw.journal("telemetry", 12)}`);
    await withRealSwitch({ prefix: "ks-featured-", beforeStop: journal }, async (env) => {
      const seen: Record<string, Record<string, unknown>> = {};
      await t.step("v0 native: featured's sequences", async () => {
        env.note(await FLOW_STEPS[0].run(env));
        seen.v0 = await featuredSequences(env.sw, TARGET, "docker");
        env.note(JSON.stringify(seen.v0));
      });
      await rollOutToV2(t, env, "rolled out to v2 (5.1): the unit is backed by the pod");
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
    });
  },
});
