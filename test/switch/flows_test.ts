// The design's flows on a real lab switch: systemd as PID 1, the database, containerd, the native
// Docker, monit and a real kubelet in a node container (test/harness/switch.ts), registered with a
// real control plane (test/harness/kube.ts). Steps are shared with the lab (test/switch/flows.ts);
// each checks systemd, the API server and the container runtime. Needs root, dockerd, debootstrap
// and the Kubernetes binaries; the images are built once and reused from the cache.
import { kubeBinDir, startKube } from "../../sandbox/harness/kube.ts";
import { startSwitches, switchUnavailableReason } from "../../sandbox/harness/switch.ts";
import { FLOW_STEPS, missingTools } from "../../sandbox/flows/real_switch.ts";

const reason = switchUnavailableReason() ??
  (kubeBinDir() ? undefined : "the Kubernetes binaries are not built (scripts/build-kube.sh)");

Deno.test({
  name:
    "real switches: on sw1 v0 -> 5.1 -> 5.3 -> 5.2 -> OOM -> faults -> 5.4 (sw2 untouched), checked via systemd, API server and CRI",
  ignore: reason !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "ks-switch-flows-" });
    const cluster = await startKube({ dir: `${dir}/kube` });
    try {
      // Two switches: the flows run on sw1; sw2 shows that switches stay apart.
      // Boot loads the images into each switch's containerd and Docker (~70 s for one switch on a
      // quiet machine); two switches side by side on a loaded machine need more than the default.
      const lab = await startSwitches({
        cluster,
        count: 2,
        dir: `${dir}/switches`,
        readyTimeoutMs: 480_000,
      });
      const cgroups = lab.switches.map((s) => `/sys/fs/cgroup/memory${s.cgroup}`);
      try {
        const env = {
          cluster,
          sw: lab.switches[0],
          others: lab.switches.slice(1),
          imagesDir: lab.imagesDir,
          dir,
          note: (text: string) => console.error(`   ${text}`),
        };
        let failed = "";
        for (const step of FLOW_STEPS) {
          const missing = missingTools(step);
          const blocked = missing.length ? `blocked on ${missing.join(", ")}` : failed;
          await t.step({
            name: `${step.name}${blocked ? ` [skipped: ${blocked}]` : ""}`,
            ignore: blocked !== "",
            async fn() {
              try {
                env.note(await step.run(env));
              } catch (e) {
                failed = `after "${step.name}" failed`;
                env.note(`kubelet: ${await lab.switches[0].journal("kubelet", 5)}`);
                env.note(`telemetry: ${await lab.switches[0].journal("telemetry", 15)}`);
                throw e;
              }
            },
          });
        }
      } finally {
        await lab.stop();
      }
      await t.step("stop() leaves no switch cgroup and no engine behind", async () => {
        for (const cg of cgroups) {
          const left = await Deno.stat(cg).then(() => true, () => false);
          if (left) throw new Error(`${cg} still exists after stop()`);
        }
        const engine = await Deno.stat(lab.docker.socketPath).then(() => true, () => false);
        if (engine) throw new Error(`${lab.docker.socketPath} still exists after stop()`);
      });
    } finally {
      await cluster.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
