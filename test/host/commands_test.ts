import assert from "node:assert/strict";
import { join } from "node:path";
import { createHostCommands, needsNsenter, NSENTER_PREFIX } from "../../src/host/commands.ts";

Deno.test("host commands run directly: exit code and output, 127 when missing, 124 on timeout", async () => {
  const host = createHostCommands({ nsenter: "never", hostRoot: "/" });
  assert.equal(host.viaNsenter, false);
  const ok = await host.run(["sh", "-c", "echo out; echo err >&2; exit 3"]);
  assert.deepEqual(ok, { code: 3, stdout: "out\n", stderr: "err\n" });
  assert.equal((await host.run(["/nonexistent/systemctl"])).code, 127);
  const slow = await host.run(["sleep", "5"], { timeoutMs: 100 });
  assert.equal(slow.code, 124);
});

Deno.test("in a container, host commands go through nsenter into PID 1's namespaces", async () => {
  // A recording `nsenter` first on PATH shows the exact argv the host would run.
  const dir = await Deno.makeTempDir({ prefix: "ks-nsenter-test-" });
  try {
    await Deno.writeTextFile(join(dir, "nsenter"), '#!/bin/sh\necho "$@"\n', { mode: 0o755 });
    await Deno.chmod(join(dir, "nsenter"), 0o755);
    const host = createHostCommands({
      nsenter: "always",
      hostRoot: "/",
      env: { PATH: `${dir}:${Deno.env.get("PATH")}` },
    });
    assert.equal(host.viaNsenter, true);
    const out = await host.run(["systemctl", "daemon-reload"]);
    assert.equal(
      out.stdout.trim(),
      [...NSENTER_PREFIX.slice(1), "systemctl", "daemon-reload"].join(" "),
    );
    assert.deepEqual(NSENTER_PREFIX, [
      "nsenter",
      "--target",
      "1",
      "--mount",
      "--uts",
      "--ipc",
      "--net",
      "--pid",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("auto mode uses nsenter for a host root other than / when PID 1's namespace cannot be read", () => {
  assert.equal(needsNsenter("never", "/tmp"), false);
  assert.equal(needsNsenter("always", "/"), true);
  let readable = true;
  try {
    Deno.readLinkSync("/proc/1/ns/mnt");
  } catch {
    readable = false;
  }
  if (!readable) {
    assert.equal(needsNsenter("auto", "/"), false);
    assert.equal(needsNsenter("auto", Deno.cwd() === "/" ? "/tmp" : Deno.cwd()), true);
  } else {
    // Same mount namespace as PID 1 here: direct, whatever the host root.
    const same = Deno.readLinkSync("/proc/self/ns/mnt") === Deno.readLinkSync("/proc/1/ns/mnt");
    assert.equal(needsNsenter("auto", "/tmp"), !same);
  }
});
