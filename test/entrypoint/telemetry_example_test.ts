// The bundled telemetry example daemon (examples/telemetry/telemetry.py) on its own: what the
// entrypoint, the watchdog and the later OOM tests rely on.
import assert from "node:assert/strict";
import { TELEMETRY_EXAMPLE } from "../../examples/telemetry/sandbox.ts";
import { freePort, waitForPort, waitUntil } from "../../sandbox/harness/net.ts";

function rssMiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s*(\d+) kB/.exec(status)![1]) / 1024;
}

Deno.test("the telemetry example answers on its port, is named telemetry, grows to --grow-mb and exits 0 on SIGTERM", async () => {
  const port = freePort();
  const child = new Deno.Command("/usr/bin/python3", {
    args: [
      TELEMETRY_EXAMPLE.daemon,
      "--listen",
      `127.0.0.1:${port}`,
      "--grow-mb",
      "48",
      "--grow-rate",
      "200",
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  try {
    await waitForPort(port);
    assert.equal(Deno.readTextFileSync(`/proc/${child.pid}/comm`).trim(), "telemetry");
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const buf = new Uint8Array(32);
    const n = await conn.read(buf);
    conn.close();
    assert.equal(new TextDecoder().decode(buf.subarray(0, n ?? 0)), "telemetry ok\n");
    await waitUntil(() => rssMiB(child.pid) >= 48, 30_000, "RSS grown to 48 MiB");
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(rssMiB(child.pid) < 48 + 40, "holds, does not keep growing");
    child.kill("SIGTERM");
    const status = await child.status;
    assert.equal(status.code, 0);
    const stderr = new TextDecoder().decode(await new Response(child.stderr).arrayBuffer());
    assert.match(stderr, /holding 48 MiB/);
    assert.match(stderr, /SIGTERM: exiting/);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await child.status;
  }
});

Deno.test("the telemetry example: bad --listen exits 2, a port in use exits 1", async () => {
  const bad = await new Deno.Command("/usr/bin/python3", {
    args: [TELEMETRY_EXAMPLE.daemon, "--listen", "nowhere"],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(bad.code, 2);
  assert.match(new TextDecoder().decode(bad.stderr), /--listen: "nowhere" is not host:port/);
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const inUse = await new Deno.Command("/usr/bin/python3", {
      args: [TELEMETRY_EXAMPLE.daemon, "--listen", `127.0.0.1:${busy.addr.port}`],
      env: { TELEMETRY_LISTEN: "ignored:1" },
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(inUse.code, 1, new TextDecoder().decode(inUse.stderr));
  } finally {
    busy.close();
  }
});
