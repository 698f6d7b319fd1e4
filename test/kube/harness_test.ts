// The kube harness itself: two clusters started at once are independent (own ports, own data),
// stop() leaves no process and no directory behind, a given `dir` is kept, and bad node names are
// refused before anything starts.
import assert from "node:assert/strict";
import { join } from "node:path";
import { startKube } from "../../sandbox/harness/kube.ts";
import { pathExists } from "../../src/path_exists.ts";

/** PIDs of live processes whose command line mentions `dir`. */
function processesUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      if (Deno.readTextFileSync(`/proc/${e.name}/cmdline`).includes(dir)) pids.push(Number(e.name));
    } catch { /* gone */ }
  }
  return pids;
}

Deno.test("two clusters at once are independent and stop() leaves nothing behind", async () => {
  const kept = await Deno.makeTempDir({ prefix: "ks-kube-kept-" });
  const [a, b] = await Promise.all([
    startKube({ nodes: ["sonic-x1"] }),
    startKube({ nodes: ["sonic-x1"], dir: join(kept, "b") }),
  ]);
  try {
    assert.notEqual(a.server, b.server);
    assert.equal(
      processesUnder(a.dir).length,
      5,
      "etcd, apiserver, controller-manager, scheduler, kwok",
    );
    assert.equal(processesUnder(b.dir).length, 5);
    const r = await a.kubectl(["create", "configmap", "only-in-a", "-n", "sonic"]);
    assert.equal(r.code, 0, r.stderr);
    const inB = await b.kubectl(["get", "configmap", "only-in-a", "-n", "sonic"]);
    assert.notEqual(inB.code, 0, "b has its own etcd");
    const nodes = await b.kubectl([
      "get",
      "node",
      "sonic-x1",
      "-o",
      "jsonpath={.metadata.labels.hwsku}",
    ]);
    assert.equal(nodes.stdout, "Force10-S6000", "SONiC labels on the node");
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
  assert.deepEqual(processesUnder(a.dir), []);
  assert.deepEqual(processesUnder(b.dir), []);
  assert.equal(await pathExists(a.dir), false, "a temp dir made by startKube is removed");
  assert.equal(
    await pathExists(join(b.dir, "logs", "kube-apiserver.log")),
    true,
    "a given dir is kept",
  );
  await a.stop(); // a second stop is harmless
  await Deno.remove(kept, { recursive: true });
});

Deno.test("node names that are not lowercase DNS names are refused before anything starts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ks-kube-badname-" });
  try {
    await assert.rejects(
      startKube({ nodes: ["Sonic-1"], dir }),
      /"Sonic-1" is not a lowercase DNS name/,
    );
    assert.deepEqual(processesUnder(dir), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
