// scripts/build-kube.sh takes one lock per pinned version set: a second caller waits for the
// build that holds it and then reuses its binaries (run here with the binaries already built, the
// lock held by flock(1) standing in for a running build).
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { REPO_ROOT } from "../../src/build/bundle.ts";
import { kubeBinDir } from "../../sandbox/harness/kube.ts";
import { runCommand } from "../../sandbox/harness/process.ts";
import { waitUntil } from "../../sandbox/harness/net.ts";

const SCRIPT = join(REPO_ROOT, "scripts", "build-kube.sh");
const bin = kubeBinDir();

Deno.test({
  name: "a second build-kube waits for the build holding the lock, then reuses its binaries",
  ignore: bin === undefined,
  fn: async () => {
    // <cache>/kube/<key>/bin -> <cache>/kube/.build-<key>.lock
    const key = dirname(bin!);
    const lock = join(dirname(key), `.build-${key.split("/").pop()}.lock`);
    const holder = new Deno.Command("flock", { args: [lock, "sleep", "3"], stdout: "null" })
      .spawn();
    let held = true;
    const released = holder.status.then(() => (held = false));
    await waitUntil(
      async () => (await runCommand("flock", ["-n", lock, "true"])).code !== 0,
      10_000,
      "the lock held",
    );
    const r = await runCommand("bash", [SCRIPT]);
    const heldWhenDone = held;
    await released;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /another build into .* is running: waiting for it/);
    assert.equal(heldWhenDone, false, "it returned while the lock was still held");
    assert.equal(r.stdout.trim(), bin);
    assert.match(r.stderr, /all binaries present/);
  },
});
