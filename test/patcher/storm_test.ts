// The storm guard: a managed file that something else keeps rewriting is repaired, and its
// actions run, at most once per interval after N consecutive passes; it is reported once per
// interval, the loop does not spin on its events, and it converges once the rewriting stops.
import assert from "node:assert/strict";
import { join } from "node:path";
import { StormGuard } from "../../src/patcher/storm.ts";
import {
  createPatcherSandbox,
  KUBE_LAUNCHER,
  spawnPatcherLoop,
} from "../../sandbox/fixtures/patcher_host.ts";
import { waitUntil } from "../../sandbox/harness/net.ts";

Deno.test("the storm guard holds a file after N consecutive changing passes, once per interval", () => {
  let now = 1_000;
  const guard = new StormGuard(60_000, { passes: 3, now: () => now });
  assert.equal(guard.changed("/a"), false);
  assert.equal(guard.changed("/a"), false);
  assert.equal(guard.heldFor("/a"), 0);
  assert.equal(guard.changed("/a"), true, "third consecutive change: storming, reported");
  assert.equal(guard.heldFor("/a"), 60_000);
  now += 60_000;
  assert.equal(guard.heldFor("/a"), 0, "released after one interval");
  assert.equal(guard.changed("/a"), true, "changed again at once: held and reported again");
  now += 1_000;
  guard.stable("/a");
  assert.equal(guard.heldFor("/a"), 0, "a pass that found it as desired ends the streak");
  assert.equal(guard.changed("/a"), false);
  assert.equal(guard.nextRelease(), null);
});

Deno.test("a file another process keeps rewriting gets its actions at most once per interval, and converges afterwards", async () => {
  const sb = await createPatcherSandbox();
  const interval = 2_000;
  const child = await spawnPatcherLoop(sb, `${interval}ms`, "piped");
  const stderr: string[] = [];
  const reading = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      stderr.push(chunk);
    }
  })();
  let rewriter: Deno.ChildProcess | undefined;
  try {
    const launcher = sb.host("usr/local/bin/telemetry.sh");
    await waitUntil(() => sb.systemctl.calls().length >= 3, 20_000, "first pass");
    const before = sb.systemctl.calls().length;
    // A second process rewrites the launcher (like `sed -i`: temp file + rename) every 5 ms.
    const seconds = 6;
    rewriter = new Deno.Command("python3", {
      args: [
        "-c",
        `import os, time
end = time.time() + ${seconds}
path = ${JSON.stringify(launcher)}
i = 0
while time.time() < end:
    tmp = path + ".upgrade"
    with open(tmp, "w") as f:
        f.write("#!/bin/bash\\n# postupgrade %d\\n" % i)
    os.rename(tmp, path)
    i += 1
    time.sleep(0.005)
print(i)`,
      ],
      stdout: "piped",
    }).spawn();
    const rewrites = Number(new TextDecoder().decode((await rewriter.output()).stdout).trim());
    assert.ok(rewrites > 200, `rewrites: ${rewrites}`);
    const during = sb.systemctl.calls().slice(before);
    const restarts = during.filter((c) => c === "systemctl restart telemetry").length;
    // N (3) passes before the hold, then one repair per interval.
    const bound = 3 + Math.ceil((seconds * 1000) / interval) + 1;
    assert.ok(restarts <= bound, `restarts during the storm: ${restarts} > ${bound}`);
    assert.ok(restarts >= 1, "the file was repaired at all");
    assert.equal(during.filter((c) => c === "systemctl restart monit").length, 0);
    // Once the rewriting stops, the file converges (at the latest when the hold ends).
    await waitUntil(
      () => {
        try {
          return Deno.readTextFileSync(launcher) === KUBE_LAUNCHER;
        } catch {
          return false;
        }
      },
      interval * 3 + 5_000,
      "converged after the storm",
    );
    await waitUntil(
      () => stderr.join("").includes("telemetry: converged"),
      interval * 3 + 5_000,
      "converged line",
    );
    const text = stderr.join("");
    const reports = text.split("\n").filter((l) => l.includes("does not stay converged"));
    assert.ok(reports.length >= 1, text);
    assert.ok(reports.length <= Math.ceil((seconds * 1000) / interval) + 1, reports.join("\n"));
    const writes = text.split("\n").filter((l) =>
      l.includes("file reconciled path=/usr/local/bin/telemetry.sh")
    ).length;
    assert.ok(writes <= bound + 2, `writes: ${writes}`);
    assert.deepEqual(
      Deno.readDirSync(join(sb.hostRoot, "usr/local/bin")).map((e) => e.name).filter((n) =>
        n.includes(".ks-tmp-")
      ).toArray(),
      [],
    );
  } finally {
    try {
      rewriter?.kill("SIGKILL");
    } catch { /* done */ }
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await child.status;
    await reading.catch(() => {});
    await sb.cleanup();
  }
});
