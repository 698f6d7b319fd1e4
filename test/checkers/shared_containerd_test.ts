// The runtime layouts of a real SONiC switch: dockerd on the same containerd the kubelet uses
// (Docker's containers in containerd namespace `moby`, the kubelet's in `k8s.io`), and a
// containerd with the CRI plugin disabled (as Docker ships it) that must be skipped, not alarmed.
import assert from "node:assert/strict";
import { startRedis } from "../../sandbox/harness/redis.ts";
import { containerdUnavailableReason, startContainerd } from "../../sandbox/harness/containerd.ts";
import { importBusyboxDocker } from "../../sandbox/harness/images.ts";
import {
  checkerRuntimesUnavailableReason,
  runContainerChecker,
  startCheckerRuntimes,
  tagCriImage,
} from "../../sandbox/fixtures/checker_runtimes.ts";

const skip = checkerRuntimesUnavailableReason();

Deno.test({
  name: "Docker and the kubelet sharing one containerd: each container counted once",
  ignore: skip !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const runtimes = await startCheckerRuntimes({
      features: {
        lldp: { state: "enabled" },
        telemetry: { state: "enabled", set_owner: "kube" },
      },
      containerd: "shared",
    });
    const { redis, docker, containerd } = runtimes;
    try {
      const image = await importBusyboxDocker(docker);
      // telemetry's image, pulled by the kubelet into the CRI's namespace.
      await tagCriImage(containerd, "registry:5000/docker-sonic-telemetry:1");
      const run = await docker.docker(["run", "-d", "--name", "lldp", image, "sleep", "600"]);
      assert.equal(run.code, 0, run.stderr);
      // Docker's container lives in the shared containerd, namespace moby.
      const moby = await containerd.ctr(["-n", "moby", "containers", "ls", "-q"]);
      assert.equal(moby.stdout.trim(), run.stdout.trim());
      await containerd.runPod({
        name: "telemetry-sw1",
        containers: [{ name: "telemetry", command: ["sleep", "600"] }],
      });
      const r = await runContainerChecker(
        redis,
        { docker: docker.socketPath, cri: containerd.socketPath },
        ["--output", "json"],
      );
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const out = JSON.parse(r.stdout);
      assert.deepEqual(out.running, ["lldp", "telemetry"]);
      const counts = Object.fromEntries(
        out.runtimes.map((s: { runtime: string; containers: number }) => [s.runtime, s.containers]),
      );
      // The CRI lists only the kubelet's container, not Docker's (moby) one.
      assert.deepEqual(counts, { docker: 1, cri: 1 });
    } finally {
      await runtimes.stop();
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
      const sockets = { docker: "none", cri: containerd.socketPath };
      const r = await runContainerChecker(redis, sockets, ["--output", "json"]);
      const out = JSON.parse(r.stdout);
      assert.equal(out.runtimes[1].status, "absent", r.stdout);
      assert.match(out.runtimes[1].error, /unknown service runtime\.v1\.RuntimeService/);
      // Nothing runs lldp here: the verdict is the missing container, not a runtime alarm.
      assert.equal(r.code, 3);
      const text = await runContainerChecker(redis, sockets);
      assert.equal(text.stdout, "Expected containers not running: lldp\n");
    } finally {
      await containerd.stop();
      await redis.stop();
    }
  },
});
