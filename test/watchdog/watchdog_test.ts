// ks-watchdog end to end: the bundled tool against a real redis-server, real listeners and real
// HTTP clients (fetch, and raw sockets for the HTTP/1.1 details).
import assert from "node:assert/strict";
import { join } from "node:path";
import { type RedisSandbox, startRedis } from "../../sandbox/harness/redis.ts";
import { runTool } from "../../sandbox/harness/bin.ts";
import { freePort, waitForPort, waitUntil } from "../../sandbox/harness/net.ts";
import { type RunningTool, startTool } from "../../sandbox/harness/running_tool.ts";
import { hangingHttp } from "./hang.ts";

const TOOL = "ks-watchdog";

interface Answer {
  status: number;
  body: Record<string, unknown> & { probes: { name: string; ok: boolean; detail: string }[] };
}

async function get(port: number, path: string): Promise<Answer> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: await response.json() };
}

async function withWatchdog(
  args: string[],
  fn: (ctx: { redis: RedisSandbox; port: number; wd: RunningTool }) => Promise<void>,
  env: Record<string, string> = {},
): Promise<void> {
  const redis = await startRedis();
  const port = freePort();
  let wd: RunningTool | undefined;
  try {
    wd = await startTool(TOOL, ["--listen", `127.0.0.1:${port}`, ...args], {
      env: { ...redis.env, ...env },
    });
    await waitForPort(port);
    await fn({ redis, port, wd });
  } finally {
    await wd?.stop();
    await redis.stop();
  }
}

Deno.test("FEATURE off (every off value) -> 200 probes skipped; on -> 200 when every probe passes, 503 naming the failed one", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const daemonPort = (listener.addr as Deno.NetAddr).port;
  const deadPort = freePort();
  try {
    await withWatchdog([
      "--feature",
      "telemetry",
      "--tcp",
      `127.0.0.1:${daemonPort}`,
    ], async ({ redis, port, wd }) => {
      await wd.waitForLine(/FEATURE state state=enabled/);
      let a = await get(port, "/");
      assert.equal(a.status, 200, JSON.stringify(a.body));
      assert.equal(a.body.feature, "telemetry");
      assert.equal(a.body.state, "enabled");
      assert.deepEqual(a.body.probes.map((p) => [p.name, p.ok]), [[
        `tcp 127.0.0.1:${daemonPort}`,
        true,
      ]]);

      listener.close();
      for (const path of ["/", "/livez", "/readyz"]) {
        a = await get(port, path);
        assert.equal(a.status, 503, path);
        assert.match(
          String(a.body.message),
          new RegExp(`probe tcp 127.0.0.1:${daemonPort} failed: connection refused`),
        );
      }
      for (const value of ["disabled", "always_disabled", null, "{{ unrendered }}"]) {
        if (value === null) await redis.command(["DEL", "FEATURE|telemetry"]);
        else await redis.setFeatureState("telemetry", value);
        const label = value === null
          ? "missing"
          : value.startsWith("{")
          ? JSON.stringify(value)
          : value;
        await waitUntil(
          async () => (await get(port, "/readyz")).body.state === label,
          30_000,
          label,
        );
        for (const path of ["/", "/livez", "/readyz"]) {
          a = await get(port, path);
          assert.equal(a.status, 200, `${value} ${path}`);
          assert.equal(a.body.probes_skipped, true);
          assert.deepEqual(a.body.probes, []);
        }
      }
      await redis.setFeatureState("telemetry", "always_enabled");
      await waitUntil(
        async () => (await get(port, "/")).body.state === "always_enabled",
        30_000,
        "on",
      );
      assert.equal((await get(port, "/")).status, 503, "on again: the dead port fails");
      assert.notEqual(deadPort, daemonPort);
    });
  } finally {
    try {
      listener.close();
    } catch { /* closed above */ }
  }
});

/** Sends raw bytes on one connection and reads until `expect` answers have arrived (or 2 s). */
async function raw(port: number, request: string, untilCount: number): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(request));
  let text = "";
  const buf = new Uint8Array(65536);
  const deadline = Date.now() + 2000;
  try {
    while (Date.now() < deadline && (text.match(/HTTP\/1\.1 /g)?.length ?? 0) < untilCount) {
      const n = await Promise.race([
        conn.read(buf),
        new Promise<null>((r) => setTimeout(() => r(null), 300)),
      ]);
      if (n === null) continue;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    // give a trailing body a moment
    const n = await Promise.race([
      conn.read(buf),
      new Promise<null>((r) => setTimeout(() => r(null), 100)),
    ]);
    if (n) text += new TextDecoder().decode(buf.subarray(0, n));
  } finally {
    conn.close();
  }
  return text;
}

Deno.test("HTTP/1.1: Content-Length matches the body, HEAD has headers but no body, 404, 405 with Allow, keep-alive", async () => {
  await withWatchdog(["--feature", "bmp"], async ({ port, wd }) => {
    await wd.waitForLine(/FEATURE state state=disabled/);
    // Three requests pipelined on one connection: keep-alive serves them all, in order.
    const text = await raw(
      port,
      "GET /livez HTTP/1.1\r\nHost: x\r\n\r\n" +
        "HEAD /readyz HTTP/1.1\r\nHost: x\r\n\r\n" +
        "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n",
      3,
    );
    const answers = text.split(/(?=HTTP\/1\.1 )/);
    assert.equal(answers.length, 3, text);
    const [getA, headA, notFound] = answers.map((a) => {
      const [head, body = ""] = a.split("\r\n\r\n");
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1]);
      return { status: Number(head.split(" ")[1]), length, body, head };
    });
    assert.equal(getA.status, 200);
    assert.equal(
      new TextEncoder().encode(getA.body).length,
      getA.length,
      "Content-Length = body bytes",
    );
    assert.equal(JSON.parse(getA.body).feature, "bmp");
    assert.equal(headA.status, 200);
    assert.ok(headA.length > 0, "HEAD announces the GET body's length");
    assert.equal(headA.body, "", "HEAD carries no body");
    assert.equal(notFound.status, 404);
    assert.match(notFound.head, /content-type: application\/json/i);

    for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
      const response = await fetch(`http://127.0.0.1:${port}/`, { method });
      assert.equal(response.status, 405, method);
      assert.equal(response.headers.get("allow"), "GET, HEAD");
      await response.body?.cancel();
    }
    // A query string does not change the path.
    assert.equal((await get(port, "/readyz?verbose=1")).status, 200);
  });
});

Deno.test("a hung probe gives 503 before the deadline; 50 concurrent requests are all answered within it", async () => {
  const hung = hangingHttp();
  try {
    await withWatchdog([
      "--feature",
      "telemetry",
      "--http",
      `http://127.0.0.1:${hung.port}/health`,
      "--process",
      "redis-server",
      "--deadline",
      "300ms",
    ], async ({ port, wd }) => {
      await wd.waitForLine(/FEATURE state state=enabled/);
      const t0 = performance.now();
      const answers = await Promise.all(
        Array.from({ length: 50 }, async () => {
          const s = performance.now();
          const a = await get(port, "/livez");
          return { ...a, ms: performance.now() - s };
        }),
      );
      const total = performance.now() - t0;
      for (const a of answers) {
        assert.equal(a.status, 503);
        assert.match(String(a.body.message), /probe http .* failed: no answer within 2\d\d ms/);
        assert.deepEqual(a.body.probes.map((p) => [p.name.split(" ")[0], p.ok]), [
          ["process", true],
          ["http", false],
        ]);
      }
      // Concurrent, not one after another: 50 x 300 ms would be 15 s.
      assert.ok(total < 3000, `50 concurrent answers took ${total} ms`);
      assert.ok(Math.max(...answers.map((a) => a.ms)) < 2000);
    });
  } finally {
    await hung.close();
  }
});

Deno.test("the state comes from the subscription: 100 requests cost no redis command each", async () => {
  await withWatchdog(["--feature", "bmp", "--resync", "60s"], async ({ redis, port, wd }) => {
    await wd.waitForLine(/FEATURE state state=disabled/);
    const processed = async () =>
      Number(
        /total_commands_processed:(\d+)/.exec(String(await redis.command(["INFO", "stats"])))![1],
      );
    const before = await processed();
    for (let i = 0; i < 100; i++) assert.equal((await get(port, "/readyz")).status, 200);
    const used = (await processed()) - before - 1; // minus our own INFO
    assert.ok(used < 5, `redis commands during 100 requests: ${used}`);
    await redis.setFeatureState("bmp", "enabled");
    await waitUntil(
      async () => (await get(port, "/")).body.state === "enabled",
      30_000,
      "flip seen",
    );
  });
});

Deno.test("redis down: /livez keeps the last known state, /readyz fails after the grace period and recovers", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    await withWatchdog([
      "--feature",
      "telemetry",
      "--tcp",
      `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
      "--ready-grace",
      "1s",
    ], async ({ redis, port, wd }) => {
      await wd.waitForLine(/FEATURE state state=enabled/);
      assert.equal((await get(port, "/readyz")).status, 200);
      await redis.kill();
      await wd.waitForLine(/CONFIG_DB unreachable/);
      let live = await get(port, "/livez");
      assert.equal(live.status, 200, "within the grace");
      // Within the grace readiness still passes; on a loaded machine this answer may already be
      // past it, so the check is that status and the reported outage agree.
      const early = await get(port, "/readyz");
      const downMs = (early.body.config_db as { unreachable_ms: number }).unreachable_ms;
      assert.equal(early.status, downMs <= 1000 ? 200 : 503, `unreachable ${downMs} ms`);
      await new Promise((r) => setTimeout(r, 1300));
      live = await get(port, "/livez");
      assert.equal(live.status, 200, "liveness never fails for a database outage");
      assert.equal(live.body.state, "enabled", "last known state");
      assert.deepEqual(
        live.body.config_db && (live.body.config_db as { connected: boolean }).connected,
        false,
      );
      const ready = await get(port, "/readyz");
      assert.equal(ready.status, 503);
      assert.match(String(ready.body.message), /CONFIG_DB unreachable for \d+ s \(grace 1 s\)/);
      await redis.restart();
      await waitUntil(
        async () => (await get(port, "/readyz")).status === 200,
        30_000,
        "ready again",
      );
    });
  } finally {
    listener.close();
  }
});

Deno.test("database config absent at start: serves state unknown (livez 200, readyz 503) and follows it once it appears", async () => {
  const redis = await startRedis();
  const dir = await Deno.makeTempDir({ prefix: "ks-watchdog-test-" });
  const later = join(dir, "database_config.json");
  const port = freePort();
  const wd = await startTool(TOOL, [
    "--feature",
    "bmp",
    "--listen",
    `127.0.0.1:${port}`,
    "--db-config",
    later,
  ]);
  try {
    await waitForPort(port);
    await wd.waitForLine(/database config not there yet/);
    assert.equal((await get(port, "/livez")).status, 200);
    const ready = await get(port, "/readyz");
    assert.equal(ready.status, 503);
    assert.equal(ready.body.state, "unknown");
    await Deno.copyFile(redis.main.dbConfigPath, later);
    await waitUntil(
      async () => (await get(port, "/readyz")).status === 200,
      30_000,
      "config picked up",
    );
    assert.equal((await get(port, "/readyz")).body.state, "disabled");
  } finally {
    await wd.stop();
    await redis.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("probe subcommand: exit 0 healthy, 1 naming the failed probe, JSON output; readyz fails when CONFIG_DB is down", async () => {
  const redis = await startRedis();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const up = `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
  const down = `127.0.0.1:${freePort()}`;
  try {
    const probe = (args: string[]) =>
      runTool(TOOL, ["probe", "--feature", "telemetry", ...args], { env: redis.env });
    let r = await probe(["--tcp", up]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^healthy: all 1 probe\(s\) pass/);
    r = await probe(["--tcp", up, "--tcp", down, "--output", "json"]);
    assert.equal(r.code, 1);
    const report = JSON.parse(r.stdout);
    assert.equal(report.healthy, false);
    assert.match(report.message, new RegExp(`probe tcp ${down} failed: connection refused`));
    await redis.setFeatureState("telemetry", "disabled");
    r = await probe(["--tcp", down]);
    assert.equal(r.code, 0, "disabled: probes skipped");
    assert.match(r.stdout, /probes skipped/);
    await redis.kill();
    assert.equal(
      (await probe(["--tcp", up, "--deadline", "300ms"])).code,
      0,
      "livez: an outage never fails it",
    );
    r = await probe(["--tcp", up, "--deadline", "300ms", "--check", "readyz"]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /not read yet/);
  } finally {
    listener.close();
    await redis.stop();
  }
});

Deno.test("bad flags exit 2 with one line naming the input", async () => {
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const redis = await startRedis({ features: {} });
  try {
    const cases: [string[], RegExp][] = [
      [["--tcp", "127.0.0.1:1"], /--feature is required/],
      [["--feature", "telemetry", "--tcp", "nohost"], /--tcp: "nohost"/],
      [["--feature", "telemetry", "--http", "ftp://x/"], /--http: "ftp:\/\/x\/"/],
      [["--feature", "telemetry", "--deadline", "fast"], /--deadline: "fast"/],
      [["--feature", "telemetry", "--check", "maybe"], /--check: "maybe"/],
      [["--feature", "telemetry", "--wat"], /wat/],
      [["--feature", "telemetry", "serve-later"], /unexpected argument "serve-later"/],
      [
        ["--feature", "telemetry", "--listen", `127.0.0.1:${(busy.addr as Deno.NetAddr).port}`],
        /already in use/,
      ],
    ];
    for (const [args, pattern] of cases) {
      const r = await runTool(TOOL, args, { env: redis.env });
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    }
    const help = await runTool(TOOL, ["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Examples:/);
    assert.match(help.stdout, /default 127\.0\.0\.1:50069/);
  } finally {
    busy.close();
    await redis.stop();
  }
});

Deno.test("--asic-namespace asic1 answers from that namespace's FEATURE row and names it", async () => {
  const redis = await startRedis({ namespaces: ["asic0", "asic1"] });
  const port = freePort();
  await redis.setFeatureState("bmp", "enabled", "");
  await redis.setFeatureState("bmp", "disabled", "asic1");
  const wd = await startTool(TOOL, [
    "--feature",
    "bmp",
    "--asic-namespace",
    "asic1",
    "--listen",
    `127.0.0.1:${port}`,
    "--tcp",
    `127.0.0.1:${freePort()}`,
  ], { env: redis.env });
  try {
    await waitForPort(port);
    await wd.waitForLine(/bmp@asic1: FEATURE state state=disabled/);
    let a = await get(port, "/readyz");
    assert.equal(a.status, 200, "asic1 is disabled, whatever the host says");
    assert.equal(a.body.namespace, "asic1");
    await redis.setFeatureState("bmp", "enabled", "asic1");
    await waitUntil(
      async () => (await get(port, "/readyz")).body.state === "enabled",
      30_000,
      "on",
    );
    a = await get(port, "/readyz");
    assert.equal(a.status, 503, "on in asic1: the closed port fails");
  } finally {
    await wd.stop();
    await redis.stop();
  }
});

Deno.test("listens on 127.0.0.1:50069 by default (checked in a private network namespace)", async () => {
  const probe = new Deno.Command("unshare", { args: ["--net", "true"], stderr: "null" })
    .outputSync();
  if (!probe.success) {
    console.error("skipped: cannot create a network namespace here");
    return;
  }
  const redis = await startRedis();
  // lo comes up inside the new namespace; 50069 there collides with nobody.
  const wd = await startTool(TOOL, ["--feature", "bmp"], {
    env: redis.env,
    wrap: ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"],
  });
  try {
    const line = await wd.waitForLine(/serving \/, \/livez, \/readyz/);
    assert.match(line, /listen=127\.0\.0\.1:50069/);
    // setsid, unshare and sh all exec in place: wd.pid is the watchdog, inside the namespace.
    const curl = await new Deno.Command("nsenter", {
      args: ["-t", String(wd.pid), "-n", "curl", "-s", "http://127.0.0.1:50069/readyz"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(JSON.parse(new TextDecoder().decode(curl.stdout)).feature, "bmp");
  } finally {
    await wd.stop();
    await redis.stop();
  }
});

Deno.test("probe subcommand with the database config absent: livez exits 0, readyz exits 1 (not a usage error)", async () => {
  const env = { KS_DB_CONFIG: "/nonexistent/database_config.json" };
  const base = ["probe", "--feature", "telemetry", "--tcp", `127.0.0.1:${freePort()}`];
  const live = await runTool(TOOL, base, { env });
  assert.equal(live.code, 0, live.stdout + live.stderr);
  assert.match(live.stdout, /not read yet/);
  const ready = await runTool(TOOL, [...base, "--check", "readyz"], { env });
  assert.equal(ready.code, 1, ready.stdout + ready.stderr);
});

Deno.test("SIGUSR1 is ignored: it opens no V8 inspector and the watchdog keeps serving", async () => {
  await withWatchdog(["--feature", "telemetry"], async ({ port, wd }) => {
    // The disarm runs 1 s after start (past Deno's 500 ms handler grace): wait for SIG_IGN.
    const ignored = () => {
      const line = Deno.readTextFileSync(`/proc/${wd.pid}/status`).split("\n")
        .find((l) => l.startsWith("SigIgn:"))!;
      return (BigInt(`0x${line.split(/\s+/)[1]}`) & (1n << 9n)) !== 0n; // bit 9: signal 10
    };
    await waitUntil(ignored, 10_000, "SIGUSR1 set to SIG_IGN");
    wd.child.kill("SIGUSR1");
    await new Promise((r) => setTimeout(r, 700));
    assert.equal((await get(port, "/livez")).status, 200);
    assert.ok(!wd.lines.some((l) => /Debugger listening/.test(l)), wd.lines.join("\n"));
  });
});
