// ks-stub wait --hand-off against a real kube-apiserver (kwok node, the stub's Role) and a real
// containerd: the kwok pod's twin runs in containerd under the same pod name and uid, with the
// kubelet's labels, so the API server and the runtime see one pod as they do on a switch. wait
// hands off only once the followed pod's container runs there, names the container's own init
// process (its cgroup names the container), and does not hand off on a container that stopped.
// The launcher's side (tail, the loop) is launcher_test.ts's; both together run on the real
// switch (test/switch).
import assert from "node:assert/strict";
import { toolCommand } from "../../sandbox/harness/bin.ts";
import {
  containerdUnavailableReason,
  crictlPath,
  startContainerd,
} from "../../sandbox/harness/containerd.ts";
import { kubeBinDir, startKube } from "../../sandbox/harness/kube.ts";
import { waitUntil } from "../../sandbox/harness/net.ts";
import {
  apply,
  featureDaemonSet,
  podsOn,
  stubRbac,
  TEST_NODE_LABEL,
} from "../../sandbox/fixtures/stub_api.ts";

const skip = !kubeBinDir()
  ? "Kubernetes binaries not built (scripts/build-kube.sh)"
  : containerdUnavailableReason() ?? (crictlPath() ? undefined : "crictl not built");

Deno.test({
  name: "wait --hand-off names the running container's process, and only a running one",
  ignore: skip !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
}, async (t) => {
  const kube = await startKube();
  const containerd = await startContainerd();
  try {
    await apply(kube, stubRbac("sonic", "ks-stub"));
    const kubeconfig = await kube.serviceAccountKubeconfig("sonic", "ks-stub");
    await kube.addNodes(["sw-hand"], { [TEST_NODE_LABEL]: "sw-hand" });
    await apply(kube, [featureDaemonSet({ feature: "telemetry", nodeLabel: "sw-hand" })]);
    let pod = { name: "", uid: "" };
    await waitUntil(
      async () => {
        const pods = (await podsOn(kube, "sw-hand", "app=telemetry")).filter((p) =>
          p.phase === "Running" && !p.deleting
        );
        if (pods.length === 1) pod = pods[0];
        return pods.length === 1;
      },
      120_000,
      "the kwok pod running",
      200,
    );
    const twin = await containerd.runPod({
      name: pod.name,
      uid: pod.uid,
      labels: { app: "telemetry", raw_container_name: "telemetry" },
      containers: [{ name: "telemetry", command: ["sleep", "3600"] }],
    });
    const id = twin.containerIds.telemetry;
    const wait = (extra: string[] = []) =>
      toolCommand("ks-stub", [
        "telemetry",
        "wait",
        "--hand-off",
        ...extra,
        "--node",
        "sw-hand",
        "--kubeconfig",
        kubeconfig,
      ], {
        stdout: "piped",
        stderr: "piped",
        env: { KS_RUNTIME_SOCKET: containerd.socketPath },
      });

    await t.step("it prints the container's init process and the pod, and exits 0", async () => {
      const child = (await wait()).spawn();
      const out = await child.output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, stderr);
      const m = /^(\d+) (\S+)\/(\S+)\n$/.exec(new TextDecoder().decode(out.stdout));
      assert.ok(m, `stdout: ${new TextDecoder().decode(out.stdout)}; ${stderr}`);
      assert.equal(m[2], pod.name);
      assert.equal(m[3], pod.uid);
      const pid = Number(m[1]);
      assert.ok((await Deno.readTextFile(`/proc/${pid}/cgroup`)).includes(id), "its cgroup");
      assert.equal((await Deno.readTextFile(`/proc/${pid}/cmdline`)).split("\0")[0], "sleep");
      assert.match(stderr, /the container runs: the launcher watches its process/);
    });

    await t.step(
      "with the container stopped it stays resident; SIGTERM ends it with 0",
      async () => {
        const stopped = await containerd.crictl(["stop", id]);
        assert.equal(stopped.code, 0, stopped.stderr);
        const child = (await wait(["--following", `${pod.name}/${pod.uid}`])).spawn();
        let exited = false;
        const done = child.output().then((o) => {
          exited = true;
          return o;
        });
        // The API (kwok) still says the container runs; the runtime does not.
        await new Promise((r) => setTimeout(r, 10_000));
        const early = exited ? await done : undefined;
        assert.equal(
          exited,
          false,
          `wait returned on a stopped container: ${
            early && new TextDecoder().decode(early.stdout)
          } ${early && new TextDecoder().decode(early.stderr)}`,
        );
        child.kill("SIGTERM");
        const out = await done;
        const stderr = new TextDecoder().decode(out.stderr);
        assert.equal(out.code, 0, stderr);
        assert.equal(new TextDecoder().decode(out.stdout), "", "nothing handed off");
        assert.match(stderr, /the container's process ended; following the pod again/);
      },
    );
  } finally {
    await containerd.stop();
    await kube.stop();
  }
});
