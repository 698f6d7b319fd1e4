// The engine harnesses themselves: a private dockerd runs a container from the registry-free
// busybox image and leaves nothing behind when stopped; a private containerd does the same with
// the OCI archive of that image.
import assert from "node:assert/strict";
import {
  dockerUnavailableReason,
  pidsMentioning,
  startDocker,
  waitPidGone,
} from "../../sandbox/harness/docker.ts";
import { containerdUnavailableReason, startContainerd } from "../../sandbox/harness/containerd.ts";
import { BUSYBOX_CRI_REF, importBusyboxDocker } from "../../sandbox/harness/images.ts";

const dockerSkip = dockerUnavailableReason();

Deno.test({
  name: "private dockerd runs a busybox container from an imported rootfs and cleans up on stop",
  ignore: dockerSkip !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const engine = await startDocker();
    let execRoot = engine.execRoot;
    try {
      const ref = await importBusyboxDocker(engine);
      const run = await engine.docker([
        "run",
        "--rm",
        "--network",
        "host",
        ref,
        "/bin/sh",
        "-c",
        "echo hello from busybox",
      ]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout.trim(), "hello from busybox");
      const bg = await engine.docker(["run", "-d", "--name", "sleeper", ref, "sleep", "600"]);
      assert.equal(bg.code, 0, bg.stderr);
      execRoot = engine.execRoot;
    } finally {
      await engine.stop();
    }
    assert.deepEqual(await pidsMentioning(execRoot), []);
    await assert.rejects(Deno.stat(engine.dir));
  },
});

const containerdSkip = containerdUnavailableReason();

Deno.test({
  name: "private containerd imports the OCI busybox archive, runs a task and kills it on stop",
  ignore: containerdSkip !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const c = await startContainerd();
    let pid = 0;
    const id = `engines-${crypto.randomUUID().slice(0, 8)}`;
    try {
      const images = await c.ctr(["-n", "k8s.io", "images", "ls", "-q"]);
      assert.match(images.stdout, /ks-busybox:latest/);
      assert.match(images.stdout, /ks-pause:latest/);
      const run = await c.ctr([
        "-n",
        "k8s.io",
        "run",
        "-d",
        "--runc-root",
        c.runcRoot,
        BUSYBOX_CRI_REF,
        id,
        "sleep",
        "600",
      ]);
      assert.equal(run.code, 0, run.stderr);
      const tasks = await c.ctr(["-n", "k8s.io", "tasks", "ls"]);
      pid = Number(tasks.stdout.match(new RegExp(`${id}\\s+(\\d+)\\s+RUNNING`))?.[1]);
      assert.ok(pid > 0, tasks.stdout);
    } finally {
      await c.stop();
    }
    assert.equal(await waitPidGone(pid, 5000), true, `container process ${pid} survived stop()`);
    await assert.rejects(Deno.stat(c.dir));
  },
});
