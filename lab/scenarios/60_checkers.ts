// Lab: the monit checkers on a simulated switch's runtimes (the design's monitoring,
// docs/design.md). A private dockerd runs the native containers the FEATURE table expects; the
// Kubernetes-owned features (set_owner=kube) run as kubelet-style pods through the CRI of a
// private containerd (or, without crictl, as Docker containers with the kubelet's labels).
// ks-container-checker counts them all; a stopped pod is reported the way monit shows it; a
// container over its memory threshold is reported by ks-memory-checker.
import type { LabScenario } from "../context.ts";
import { runTool } from "../../sandbox/harness/bin.ts";
import { dockerUnavailableReason, startDocker } from "../../sandbox/harness/docker.ts";
import {
  containerdUnavailableReason,
  crictlPath,
  startContainerd,
} from "../../sandbox/harness/containerd.ts";
import { importBusyboxDocker } from "../../sandbox/harness/images.ts";
import { waitUntil } from "../../sandbox/harness/net.ts";
import { expectedContainers } from "../../src/checkers/expected.ts";
import {
  connectInBackground,
  createConfigDbClient,
  readFeatureTable,
} from "../../src/sonic/config_db.ts";
import { resolveRedisTarget } from "../../src/sonic/db_config.ts";

const HOG = `exec awk 'BEGIN { s = sprintf("%64000000s", "x"); print "ready"; fflush(); ` +
  `system("sleep 3600"); print length(s) }'`;

export const scenario: LabScenario = {
  title: "Monitoring: ks-container-checker and ks-memory-checker on real Docker and containerd",
  needs: ["docker"],
  async run(ctx) {
    const { timeline } = ctx;
    const reason = dockerUnavailableReason();
    if (reason) {
      ctx.skip(reason);
      return;
    }
    const useCri = containerdUnavailableReason() === undefined && crictlPath() !== undefined;

    let docker: Awaited<ReturnType<typeof startDocker>> | undefined;
    let containerd: Awaited<ReturnType<typeof startContainerd>> | undefined;
    const started = await timeline.step(
      "private dockerd" + (useCri ? " and containerd (CRI)" : ""),
      async () => {
        docker = await startDocker();
        ctx.defer(() => docker!.stop());
        if (useCri) {
          containerd = await startContainerd();
          ctx.defer(() => containerd!.stop());
        }
        return `docker ${docker.socketPath}` +
          (containerd
            ? `, CRI ${containerd.socketPath}`
            : ", no crictl: kubelet-labelled Docker containers instead");
      },
    );
    if (!started || !docker) return;
    const d = docker;
    const image = await importBusyboxDocker(d);
    // The image the telemetry row stands for (without it or a gnmi image the row is skipped).
    await d.docker(["tag", image, "docker-sonic-telemetry:latest"]);

    const target = resolveRedisTarget({ dbConfigPath: ctx.redis.env.KS_DB_CONFIG });
    const client = createConfigDbClient(target);
    await connectInBackground(client);
    const table = await readFeatureTable(client);
    client.destroy();
    const { expected } = expectedContainers(table, 1);
    const kubeOwned = [...expected].filter((n) => table.get(n)?.set_owner === "kube");
    const native = [...expected].filter((n) => !kubeOwned.includes(n));
    const kubeIds: Record<string, string> = {};
    /** `docker run -d --network host --name <name> <flags> <image> sleep 3600`; throws on failure. */
    const runSleeping = async (name: string, flags: string[] = []) => {
      const r = await d.docker(
        ["run", "-d", "--network", "host", "--name", name, ...flags, image, "sleep", "3600"],
      );
      if (r.code !== 0) throw new Error(`docker run ${name}: ${r.stderr.trim()}`);
    };

    await timeline.step(
      `start ${native.length} native and ${kubeOwned.length} Kubernetes containers`,
      async () => {
        for (const n of native) {
          await runSleeping(n);
        }
        for (const n of kubeOwned) {
          if (containerd) {
            const pod = await containerd.runPod({
              name: `${n}-lab-sw1`,
              containers: [{ name: n, command: ["sleep", "3600"] }],
            });
            kubeIds[n] = pod.containerIds[n];
          } else {
            const uid = crypto.randomUUID();
            const labels = [
              "io.kubernetes.pod.namespace=sonic",
              `io.kubernetes.pod.name=${n}-lab-sw1`,
              `io.kubernetes.pod.uid=${uid}`,
              "io.kubernetes.docker.type=container",
              `io.kubernetes.container.name=${n}`,
            ].flatMap((l) => ["--label", l]);
            const name = `k8s_${n}_${n}-lab-sw1_sonic_${uid}_0`;
            await runSleeping(name, labels);
            kubeIds[n] = name;
          }
        }
        return `native: ${native.join(", ")}; Kubernetes: ${kubeOwned.join(", ") || "none"}`;
      },
    );

    const runtimeArgs = [
      "--docker-socket",
      d.socketPath,
      "--cri-socket",
      containerd?.socketPath ?? "none",
    ];
    const check = () => runTool("ks-container-checker", runtimeArgs, { env: ctx.redis.env });

    await timeline.step(
      "ks-container-checker: every expected container counts, Kubernetes ones by label",
      async () => {
        const r = await check();
        if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stdout.trim()} ${r.stderr.trim()}`);
        return `exit 0 for ${expected.size} expected containers`;
      },
    );

    const victim = kubeOwned[0];
    if (victim) {
      await timeline.step(
        `stop ${victim}'s Kubernetes container: reported as monit shows it`,
        async () => {
          const stop = containerd
            ? await containerd.crictl(["stop", "-t", "0", kubeIds[victim]])
            : await d.docker(["stop", "-t", "0", kubeIds[victim]]);
          if (stop.code !== 0) throw new Error(stop.stderr.trim());
          const r = await check();
          const want = `Expected containers not running: ${victim}`;
          if (r.code !== 3 || r.stdout.trim() !== want) {
            throw new Error(`exit ${r.code}: ${r.stdout.trim()}`);
          }
          return `exit 3: "${r.stdout.trim()}"`;
        },
      );
    }

    await timeline.step(
      "ks-memory-checker: a container over its threshold is reported (exit 3)",
      async () => {
        const r0 = await d.docker(["run", "-d", "--name", "memhog", image, "sh", "-c", HOG]);
        if (r0.code !== 0) throw new Error(r0.stderr.trim());
        await waitUntil(
          async () => (await d.docker(["logs", "memhog"])).stdout.includes("ready"),
          20_000,
          "the hog to allocate",
          100,
        );
        const t0 = performance.now();
        const r = await runTool("ks-memory-checker", [...runtimeArgs, "memhog", "30000000"]);
        const ms = performance.now() - t0;
        if (r.code !== 3) throw new Error(`exit ${r.code}: ${r.stdout.trim()} ${r.stderr.trim()}`);
        return `exit 3 in ${ms.toFixed(0)} ms: "${r.stdout.trim()}"`;
      },
    );

    const underName = kubeOwned[1] ?? native[0];
    if (underName) {
      await timeline.step(
        `ks-memory-checker: ${underName} under SONiC's 400 MB threshold (exit 0)`,
        async () => {
          const r = await runTool("ks-memory-checker", [
            ...runtimeArgs,
            underName,
            "419430400",
            "--output",
            "json",
          ]);
          if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stdout.trim()}`);
          const j = JSON.parse(r.stdout);
          return `${j.container.runtime} container, ${
            (j.memory.net / 1024).toFixed(0)
          } KiB in ${j.cgroup.dir}`;
        },
      );
    }
  },
};
