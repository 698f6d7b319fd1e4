// The engine harnesses themselves: a private dockerd runs a container from the registry-free
// busybox image and leaves nothing behind when stopped.
import assert from "node:assert/strict";
import { dockerUnavailableReason, pidsMentioning, startDocker } from "../harness/docker.ts";
import { importBusyboxDocker } from "../harness/images.ts";

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
