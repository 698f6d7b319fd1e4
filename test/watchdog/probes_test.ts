// The probe matrix, in process, against real sockets and real processes: tcp / process / http,
// each passing, failing and (where it can) hanging — a hang is a failure by the deadline.
import assert from "node:assert/strict";
import { join } from "node:path";
import { httpProbe, processProbe, runProbes, tcpProbe } from "../../src/watchdog/probes.ts";
import { freePort, waitUntil } from "../../sandbox/harness/net.ts";
import { hangingHttp, hangingTcp } from "./hang.ts";

Deno.test("tcp probe: passes on a listening port, fails on a closed one, fails by the deadline on a hung connect", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = (listener.addr as Deno.NetAddr).port;
  const hung = await hangingTcp();
  try {
    const t0 = performance.now();
    const [pass, refused, hang] = await runProbes([
      tcpProbe("127.0.0.1", open),
      tcpProbe("127.0.0.1", freePort()),
      tcpProbe("127.0.0.1", hung.port),
    ], 300);
    const took = performance.now() - t0;
    assert.deepEqual([pass.ok, pass.detail], [true, "connected"]);
    assert.deepEqual([refused.ok, refused.detail], [false, "connection refused"]);
    assert.deepEqual([hang.ok, hang.detail], [false, "no answer within 300 ms"]);
    assert.ok(took < 1000, `one deadline for all probes, not one each: ${took} ms`);
  } finally {
    listener.close();
    await hung.close();
  }
});

Deno.test("process probe: matches /proc comm or argv[0] basename, fails when no such process", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ks-probe-" });
  const name = `ksprobe${crypto.randomUUID().slice(0, 6)}`;
  await Deno.symlink("/bin/sleep", join(dir, name));
  const child = new Deno.Command(join(dir, name), { args: ["30"] }).spawn();
  try {
    // The probe looks for a process that exists: wait until the child has exec'd under its name,
    // and give the round room for a /proc scan on a loaded machine (deadlines are tested elsewhere).
    await waitUntil(
      () => {
        try {
          return Deno.readTextFileSync(`/proc/${child.pid}/comm`).trim() === name;
        } catch {
          return false;
        }
      },
      5000,
      `${name} running`,
    );
    const [byComm, missing] = await runProbes([
      processProbe(name),
      processProbe(`${name}x`),
    ], 3000);
    assert.equal(byComm.ok, true, byComm.detail);
    assert.equal(byComm.detail, `pid ${child.pid}`);
    assert.deepEqual([missing.ok, missing.detail], [false, "no such process"]);
    // The remembered PID is re-checked: once the process is gone the probe fails.
    child.kill("SIGKILL");
    await child.status;
    const [gone] = await runProbes([processProbe(name)], 3000);
    assert.equal(gone.ok, false);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("process probe: a zombie with the name does not count as running", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ks-probe-" });
  const name = `kszomb${crypto.randomUUID().slice(0, 6)}`;
  await Deno.symlink("/bin/sleep", join(dir, name));
  // The shell execs into a long sleep that never waits for its short-lived child: a zombie.
  const parent = new Deno.Command("sh", {
    args: ["-c", `${join(dir, name)} 0.05 & exec sleep 30`],
  }).spawn();
  try {
    const zombie = () => {
      for (const e of Deno.readDirSync("/proc")) {
        try {
          const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
          if (stat.includes(`(${name})`) && stat[stat.lastIndexOf(")") + 2] === "Z") return true;
        } catch { /* gone */ }
      }
      return false;
    };
    const deadline = Date.now() + 3000;
    while (!zombie()) {
      if (Date.now() > deadline) throw new Error("no zombie appeared");
      await new Promise((r) => setTimeout(r, 20));
    }
    const [r] = await runProbes([processProbe(name)], 500);
    assert.deepEqual([r.ok, r.detail], [false, "no such process"]);
  } finally {
    parent.kill("SIGKILL");
    await parent.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("process probe: a long name matches on the kernel's 15-character comm", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ks-probe-" });
  const name = `ks-long-process-name-${crypto.randomUUID().slice(0, 4)}`;
  await Deno.symlink("/bin/sleep", join(dir, name));
  const child = new Deno.Command(join(dir, name), { args: ["30"] }).spawn();
  try {
    // Probe only once the child has exec'd (its comm is then the name's first 15 characters).
    await waitUntil(
      () => {
        try {
          return Deno.readTextFileSync(`/proc/${child.pid}/comm`).trim() === name.slice(0, 15);
        } catch {
          return false;
        }
      },
      5000,
      `${name} running`,
    );
    const probe = processProbe(name);
    const [r] = await runProbes([probe], 3000);
    assert.equal(r.ok, true, r.detail);
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("http probe: 2xx/3xx pass, 500 fails, refused fails, a server that never answers fails by the deadline", async () => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/ok") return new Response("fine");
    if (path === "/moved") return Response.redirect("http://127.0.0.1:1/elsewhere", 302);
    return new Response("broken", { status: 500 });
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  const hung = hangingHttp();
  try {
    const [ok, moved, broken, refused, hang] = await runProbes([
      httpProbe(`${base}/ok`),
      httpProbe(`${base}/moved`),
      httpProbe(`${base}/broken`),
      httpProbe(`http://127.0.0.1:${freePort()}/`),
      httpProbe(`http://127.0.0.1:${hung.port}/health`),
    ], 400);
    assert.deepEqual([ok.ok, ok.detail], [true, "status 200"]);
    assert.deepEqual([moved.ok, moved.detail], [true, "status 302"]);
    assert.deepEqual([broken.ok, broken.detail], [false, "status 500"]);
    assert.equal(refused.ok, false);
    assert.deepEqual([hang.ok, hang.detail], [false, "no answer within 400 ms"]);
  } finally {
    await server.shutdown();
    await hung.close();
  }
});

Deno.test("a hung tcp connect is shared by later rounds instead of opening a new socket each time", async () => {
  const hung = await hangingTcp();
  try {
    const probe = tcpProbe("127.0.0.1", hung.port);
    const before = countSynSent(hung.port);
    for (let i = 0; i < 5; i++) await runProbes([probe], 50);
    assert.equal(countSynSent(hung.port) - before, 1, "one pending connect, not five");
  } finally {
    await hung.close();
  }
});

/** Sockets of this process in SYN_SENT to `port` (from /proc/net/tcp, state 02). */
function countSynSent(port: number): number {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  return Deno.readTextFileSync("/proc/net/tcp").split("\n").filter((line) => {
    const cols = line.trim().split(/\s+/);
    return cols[2]?.endsWith(`:${hex}`) && cols[3] === "02";
  }).length;
}
