import { startKube } from "./sandbox/harness/kube.ts";
import { startSwitches } from "./sandbox/harness/switch.ts";
import { FLOW_STEPS } from "./sandbox/flows/real_switch.ts";
Deno.test({ name: "v2 only", sanitizeOps: false, sanitizeResources: false, async fn(t) {
  const dir = await Deno.makeTempDir({ prefix: "ks-v2only-" });
  const cluster = await startKube({ dir: `${dir}/kube` });
  const lab = await startSwitches({ cluster, count: 1, dir: `${dir}/switches` });
  try {
    const env = { cluster, sw: lab.switches[0], others: [], imagesDir: lab.imagesDir, dir, note: (x: string) => console.error(`   ${x}`) };
    for (const step of [FLOW_STEPS[0], ...FLOW_STEPS.filter((s) => s.part === "5.1")]) {
      await t.step(step.name, async () => env.note(await step.run(env)));
    }
  } finally { await lab.stop(); await cluster.stop(); }
}});
