// Lab (`deno task lab --real`): the design's flows on a real switch — systemd as PID 1,
// the database, containerd, Docker, monit and a real kubelet in a node container registered with
// its own control plane — printed step by step with what systemd, the API server and the runtime
// said. The steps are the end-to-end test's (sandbox/flows/real_switch.ts). KS_SWITCHES=N starts N
// switches (default 1); the flows run on sw1, the others show that switches stay apart.
import { join } from "node:path";
import type { LabScenario } from "../context.ts";
import { startKube } from "../../sandbox/harness/kube.ts";
import { startSwitches } from "../../sandbox/harness/switch.ts";
import { FLOW_STEPS, missingTools } from "../../sandbox/flows/real_switch.ts";
import { formatMs } from "../timeline.ts";

export const scenario: LabScenario = {
  title: "the flows on a real switch (systemd, containerd, kubelet in a node container)",
  needs: ["real", "kube"],
  async run(ctx) {
    const { timeline } = ctx;
    const count = Number(Deno.env.get("KS_SWITCHES") ?? "1");
    // A control plane of its own: the other scenarios' DaemonSets stay off the real switches.
    const cluster = await startKube({ dir: join(ctx.dir, "real-kube") });
    ctx.defer(() => cluster.stop());
    let lab: Awaited<ReturnType<typeof startSwitches>> | undefined;
    const up = await timeline.step(`${count} switch(es) booted, kubelets Ready`, async () => {
      lab = await startSwitches({
        cluster,
        count,
        dir: join(ctx.dir, "switches"),
        log: (l) => timeline.note(l),
      });
      ctx.defer(() => lab!.stop());
      const mem = await Promise.all(lab.switches.map(async (s) => {
        const m = await s.memory();
        const mib = (n: number) => Math.round(n / 1048576);
        return `${s.name} ${mib(m.rss)} MiB rss (+${mib(m.cache)} MiB page cache)`;
      }));
      return `warm start ${formatMs(lab.startMs)} (images from the cache); memory: ${
        mem.join(", ")
      }`;
    });
    if (!up || !lab) return;
    const sw = lab.switches[0];
    timeline.note(
      `inspect: DOCKER_HOST=${lab.docker.env.DOCKER_HOST} docker exec -it ${sw.name} bash; ` +
        `KUBECONFIG=${cluster.kubeconfigPath}`,
    );
    const env = {
      cluster,
      sw,
      others: lab.switches.slice(1),
      imagesDir: lab.imagesDir,
      dir: ctx.dir,
      note: (t: string) => timeline.note(t),
    };
    let failed = "";
    for (const step of FLOW_STEPS) {
      const missing = missingTools(step);
      if (missing.length) {
        ctx.skip(`${step.name}: blocked on ${missing.join(", ")}`);
        continue;
      }
      if (failed) {
        timeline.note(`skipped ${step.name}: ${failed}`);
        continue;
      }
      const ok = await timeline.step(step.name, () => step.run(env));
      if (!ok) failed = `after "${step.name}" failed`;
      if (step.name.startsWith("5.1 v2")) {
        const m = await sw.memory();
        timeline.note(
          `${sw.name} with the v2 pod running: ${Math.round(m.rss / 1048576)} MiB rss ` +
            `(+${Math.round(m.cache / 1048576)} MiB page cache)`,
        );
      }
    }
  },
};
