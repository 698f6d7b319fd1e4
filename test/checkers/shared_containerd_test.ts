// The runtime layouts of a real SONiC switch: dockerd on the same containerd the kubelet uses
// (Docker's containers in containerd namespace `moby`, the kubelet's in `k8s.io`), and a
// containerd with the CRI plugin disabled (as Docker ships it) that must be skipped, not alarmed.
import assert from "node:assert/strict";
import { join } from "node:path";
import { type RedisSandbox, startRedis } from "../../sandbox/harness/redis.ts";
import { dockerUnavailableReason, startDocker } from "../../sandbox/harness/docker.ts";
import {
  containerdUnavailableReason,
  crictlPath,
  startContainerd,
} from "../../sandbox/harness/containerd.ts";
import { BUSYBOX_CRI_REF, importBusyboxDocker } from "../../sandbox/harness/images.ts";
import { runTool, type ToolResult } from "../../sandbox/harness/bin.ts";

const TOOL = "ks-container-checker";
/**
 * Runs the checker against the given Docker and CRI sockets, with CONFIG_DB from `redis` and no
 * ASIC config (single-ASIC), each runtime given 10 s.
 */
function check(
  redis: RedisSandbox,
  dockerSocket: string,
  criSocket: string,
  extra: string[] = [],
): Promise<ToolResult> {
  return runTool(TOOL, [
    "--docker-socket",
    dockerSocket,
    "--cri-socket",
    criSocket,
    "--asic-conf",
    join(redis.dir, "none.conf"),
    ...extra,
  ], { env: { ...redis.env, KS_CHECK_TIMEOUT: "10s" } });
}

const skip = dockerUnavailableReason() ?? containerdUnavailableReason() ??
  (crictlPath() ? undefined : "crictl not built (scripts/build-kube.sh)");

Deno.test({
  name: "Docker and the kubelet sharing one containerd: each container counted once",
  ignore: skip !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const redis = await startRedis({
      features: {
        lldp: { state: "enabled" },
        telemetry: { state: "enabled", set_owner: "kube" },
      },
    });
    const containerd = await startContainerd().catch(async (e) => {
      await redis.stop();
      throw e;
    });
    const docker = await startDocker({ extraArgs: ["--containerd", containerd.socketPath] })
      .catch(async (e) => {
        await containerd.stop();
        await redis.stop();
        throw e;
      });
    try {
      const image = await importBusyboxDocker(docker);
      // telemetry's image, pulled by the kubelet into the CRI's namespace.
      const tag = await containerd.ctr(
        [
          "-n",
          "k8s.io",
          "images",
          "tag",
          BUSYBOX_CRI_REF,
          "registry:5000/docker-sonic-telemetry:1",
        ],
      );
      assert.equal(tag.code, 0, tag.stderr);
      const run = await docker.docker(["run", "-d", "--name", "lldp", image, "sleep", "600"]);
      assert.equal(run.code, 0, run.stderr);
      // Docker's container lives in the shared containerd, namespace moby.
      const moby = await containerd.ctr(["-n", "moby", "containers", "ls", "-q"]);
      assert.equal(moby.stdout.trim(), run.stdout.trim());
      await containerd.runPod({
        name: "telemetry-sw1",
        containers: [{ name: "telemetry", command: ["sleep", "600"] }],
      });
      const r = await check(redis, docker.socketPath, containerd.socketPath, ["--output", "json"]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const out = JSON.parse(r.stdout);
      assert.deepEqual(out.running, ["lldp", "telemetry"]);
      const counts = Object.fromEntries(
        out.runtimes.map((s: { runtime: string; containers: number }) => [s.runtime, s.containers]),
      );
      // The CRI lists only the kubelet's container, not Docker's (moby) one.
      assert.deepEqual(counts, { docker: 1, cri: 1 });
    } finally {
      await docker.stop();
      await containerd.stop();
      await redis.stop();
    }
  },
});

Deno.test({
  name: "a containerd without the CRI plugin is skipped (not installed), not reported unreachable",
  ignore: containerdUnavailableReason() !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const redis = await startRedis({ features: { lldp: { state: "enabled" } } });
    const containerd = await startContainerd({ disableCri: true, importImages: false }).catch(
      async (e) => {
        await redis.stop();
        throw e;
      },
    );
    try {
      const r = await check(redis, "none", containerd.socketPath, ["--output", "json"]);
      const out = JSON.parse(r.stdout);
      assert.equal(out.runtimes[1].status, "absent", r.stdout);
      assert.match(out.runtimes[1].error, /unknown service runtime\.v1\.RuntimeService/);
      // Nothing runs lldp here: the verdict is the missing container, not a runtime alarm.
      assert.equal(r.code, 3);
      const text = await check(redis, "none", containerd.socketPath);
      assert.equal(text.stdout, "Expected containers not running: lldp\n");
    } finally {
      await containerd.stop();
      await redis.stop();
    }
  },
});
