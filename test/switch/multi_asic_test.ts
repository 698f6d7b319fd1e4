// The design's flows end to end on a 2-ASIC real lab switch (startSwitches({ asics: 2 }): a
// database per namespace behind database_global.json, asic.conf NUM_ASIC=2, SONiC's per-namespace
// unit template telemetry@.service) for the per-ASIC telemetry feature, plus featured's exact
// sequences on telemetry@0/1 in v0 and v2. Every step checks the ASIC it acts on and that the
// other one was untouched, through systemd, the API server and the CRI (sandbox/flows/multi_asic.ts).
// Needs root, dockerd, debootstrap and the Kubernetes binaries; slow (several minutes).
import assert from "node:assert/strict";
import { kubeBinDir, startKube } from "../../sandbox/harness/kube.ts";
import { startSwitches, switchUnavailableReason } from "../../sandbox/harness/switch.ts";
import { type FlowEnv, type FlowStep, missingTools } from "../../sandbox/flows/real_switch.ts";
import { checkOneInstance, featuredSequences } from "../../sandbox/flows/featured.ts";
import {
  ASICS,
  featuredBoot,
  MULTI_ASIC_INIT_CONFIG,
  MULTI_ASIC_STEPS,
  PER_ASIC_TARGET,
} from "../../sandbox/flows/multi_asic.ts";

const reason = switchUnavailableReason() ??
  (kubeBinDir() ? undefined : "the Kubernetes binaries are not built (scripts/build-kube.sh)");

Deno.test({
  name:
    "2-ASIC real switch: per-ASIC telemetry through v0 -> 5.1 -> 5.3 -> 5.2 -> 5.4, each ASIC on its own CONFIG_DB and pod, the other untouched; featured's sequences on telemetry@0/1 alike in v0 and v2",
  ignore: reason !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "ks-multi-asic-" });
    const cluster = await startKube({ dir: `${dir}/kube` });
    try {
      const lab = await startSwitches({
        cluster,
        count: 1,
        asics: ASICS,
        initConfig: MULTI_ASIC_INIT_CONFIG,
        dir: `${dir}/switches`,
      });
      const sw = lab.switches[0];
      const env: FlowEnv = { cluster, sw, dir, note: (text) => console.error(`   ${text}`) };
      let failed = "";
      const step = async (name: string, tools: string[], fn: () => Promise<string>) => {
        const missing = missingTools({ tools } as FlowStep);
        const blocked = missing.length ? `blocked on ${missing.join(", ")}` : failed;
        await t.step({
          name: `${name}${blocked ? ` [skipped: ${blocked}]` : ""}`,
          ignore: blocked !== "",
          async fn() {
            try {
              env.note(await fn());
            } catch (e) {
              failed = `after "${name}" failed`;
              for (const unit of ["telemetry@0", "telemetry@1", "kubelet"]) {
                env.note(`${unit}: ${await sw.journal(unit, 12)}`);
              }
              throw e;
            }
          },
        });
      };
      const flow = async (part: (s: FlowStep) => boolean) => {
        for (const s of MULTI_ASIC_STEPS.filter(part)) {
          await step(s.name, s.tools, () => s.run(env));
        }
      };
      try {
        const seen: Record<string, Record<string, unknown>> = {};
        await step(
          "featured at boot: scope sync masks telemetry.service, auto_restart drop-ins",
          [],
          () => featuredBoot(sw),
        );
        await flow((s) => s.part === "layout");
        await step("v0: featured's sequences on telemetry@0/1", [], async () => {
          seen.v0 = await featuredSequences(sw, PER_ASIC_TARGET, "docker");
          return JSON.stringify(seen.v0);
        });
        await flow((s) => s.part === "5.1");
        await step(
          "v2: featured's sequences on telemetry@0/1 leave the same states as v0",
          [],
          async () => {
            seen.v2 = await featuredSequences(sw, PER_ASIC_TARGET, "kubernetes");
            const { instances: i0, ...v0 } = seen.v0;
            const { instances: i2, ...v2 } = seen.v2;
            assert.deepEqual(v2, v0);
            return `${JSON.stringify(v2)}; ${checkOneInstance("v0", i0)}; ${
              checkOneInstance("v2", i2)
            }`;
          },
        );
        await flow((s) => !["layout", "5.1"].includes(s.part));
      } finally {
        await lab.stop();
      }
    } finally {
      await cluster.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
