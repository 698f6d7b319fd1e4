// ks-entrypoint end to end: the bundled tool against a real redis-server, real daemons (sh,
// supervisord), real signals, and a real PID namespace for the PID 1 duties.
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathExists } from "../../src/path_exists.ts";
import { type RedisSandbox, startRedis } from "../../sandbox/harness/redis.ts";
import { runTool } from "../../sandbox/harness/bin.ts";
import { freePort, waitForPort, waitUntil } from "../../sandbox/harness/net.ts";
import {
  childrenOf,
  processExists,
  type RunningTool,
  startTool,
} from "../../sandbox/harness/running_tool.ts";
import { writeTelemetrySandbox } from "../../examples/telemetry/sandbox.ts";

const TOOL = "ks-entrypoint";
const IDLE = /FEATURE is off: idle until it is enabled/;

/** A daemon that writes its PID and signal state to `marker`, then sleeps. */
function markerDaemon(marker: string, tail = "exec sleep 60"): string[] {
  return [
    "sh",
    "-c",
    `grep -E '^Sig(Ign|Blk)' /proc/$$/status > ${marker}.sig; echo $$ > ${marker}; ${tail}`,
  ];
}

async function readMarker(path: string): Promise<string | undefined> {
  try {
    const text = await Deno.readTextFile(path);
    return text.endsWith("\n") ? text.trim() : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Starts the entrypoint for telemetry (with `flags` before `--`) on the marker daemon writing
 * `marker`, against `redis`, and registers it in `running` so the sandbox stops it.
 */
async function startOnMarker(
  redis: RedisSandbox,
  running: RunningTool[],
  marker: string,
  flags: string[] = [],
  env: Record<string, string> = {},
): Promise<RunningTool> {
  const ep = await startTool(TOOL, [
    "--feature",
    "telemetry",
    ...flags,
    "--",
    ...markerDaemon(marker),
  ], {
    env: { ...redis.env, ...env },
  });
  running.push(ep);
  return ep;
}

async function withSandbox(
  fn: (redis: RedisSandbox, dir: string, stops: RunningTool[]) => Promise<void>,
  redisOpts: Parameters<typeof startRedis>[0] = {},
): Promise<void> {
  const redis = await startRedis(redisOpts);
  const dir = await Deno.makeTempDir({ prefix: "ks-entrypoint-test-" });
  const running: RunningTool[] = [];
  try {
    await fn(redis, dir, running);
  } finally {
    for (const r of running) await r.stop("SIGKILL", 100);
    await redis.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

Deno.test("stays idle for every off value (disabled, always_disabled, missing row, unknown) and execs the daemon once enabled", async () => {
  await withSandbox(async (redis, dir, running) => {
    const offValues: (string | null)[] = [
      "disabled",
      "always_disabled",
      null,
      "{% if x %}enabled{% endif %}",
    ];
    for (const [i, value] of offValues.entries()) {
      if (value === null) await redis.command(["DEL", "FEATURE|telemetry"]);
      else await redis.setFeatureState("telemetry", value);
      const marker = join(dir, `m${i}`);
      const ep = await startOnMarker(redis, running, marker);
      const line = await ep.waitForLine(IDLE);
      assert.match(
        line,
        new RegExp(`state=${value === null ? "missing" : value.startsWith("{") ? '"' : value}`),
      );
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await readMarker(marker), undefined, `daemon started while ${value}`);
      if (value?.startsWith("{")) {
        assert.ok(
          ep.lines.some((l) => l.includes("WARN") && l.includes("treating it as disabled")),
        );
      }
      assert.equal(ep.lines.filter((l) => IDLE.test(l)).length, 1, "one log line per state change");
      await redis.setFeatureState("telemetry", "enabled");
      await waitUntil(
        async () => (await readMarker(marker)) !== undefined,
        30_000,
        "daemon started",
      );
      assert.equal(
        await readMarker(marker),
        String(ep.pid),
        "exec: the daemon has the entrypoint's PID",
      );
      await ep.stop();
    }
  });
});

Deno.test("starts at once for enabled and always_enabled; the exec'd daemon has SIGPIPE at default and no blocked signals", async () => {
  await withSandbox(async (redis, dir, running) => {
    for (const value of ["enabled", "always_enabled"]) {
      await redis.setFeatureState("telemetry", value);
      const marker = join(dir, value);
      // grep reads its own status (dash would show its fork-time mask, not what exec handed on).
      const daemon = [
        "sh",
        "-c",
        `echo $$ > ${marker}.pid; exec grep -E '^Sig(Ign|Blk)' /proc/self/status > ${marker}`,
      ];
      const ep = await startTool(TOOL, ["--feature", "telemetry", "--", ...daemon], {
        env: redis.env,
      });
      running.push(ep);
      assert.equal((await ep.status).code, 0, ep.lines.join("\n"));
      assert.equal(await readMarker(`${marker}.pid`), String(ep.pid), "exec: same PID");
      const sig = await Deno.readTextFile(marker);
      const ignored = BigInt("0x" + /SigIgn:\s*([0-9a-f]+)/.exec(sig)![1]);
      assert.equal(ignored & (1n << 12n), 0n, `SIGPIPE must not be ignored: ${sig}`);
      assert.match(sig, /SigBlk:\s*0+\n/);
    }
  });
});

Deno.test("--spawn follows FEATURE both ways: stops the daemon on disable, idles, starts it again on enable", async () => {
  await withSandbox(async (redis, dir, running) => {
    await redis.setFeatureState("telemetry", "enabled");
    const marker = join(dir, "m");
    const ep = await startOnMarker(redis, running, marker, ["--spawn"]);
    await waitUntil(async () => (await readMarker(marker)) !== undefined, 30_000, "first start");
    const first = Number(await readMarker(marker));
    assert.notEqual(first, ep.pid, "spawn: a child, not the entrypoint itself");
    await Deno.remove(marker);
    await redis.setFeatureState("telemetry", "disabled");
    await ep.waitForLine(/daemon stopped; idle until FEATURE is on again/);
    assert.equal(processExists(first), false, "the daemon was stopped and reaped");
    await redis.setFeatureState("telemetry", "always_enabled");
    await waitUntil(async () => (await readMarker(marker)) !== undefined, 30_000, "second start");
    assert.notEqual(Number(await readMarker(marker)), first);
    assert.equal((await ep.stop()).code, 143, "SIGTERM forwarded; sleep dies of it: 128+15");
  });
});

Deno.test("exit codes reach the container runtime: the daemon's own code, 128+signal when killed, a trap's code after SIGTERM/HUP/INT (exec and --spawn)", async () => {
  await withSandbox(async (redis, dir, running) => {
    // A script with a trap says when the trap is set (this file), and only then is it signalled:
    // on a loaded machine a fixed pause was not always long enough.
    const armed = join(dir, "armed");
    for (const mode of [[], ["--spawn"]]) {
      const run = async (script: string, signal?: Deno.Signal) => {
        await Deno.remove(armed).catch(() => {});
        const ep = await startTool(TOOL, [
          "--feature",
          "telemetry",
          ...mode,
          "--",
          "sh",
          "-c",
          script,
        ], {
          env: redis.env,
        });
        running.push(ep);
        await ep.waitForLine(/daemon started|exec daemon/);
        if (signal) {
          await waitUntil(() => pathExists(armed), 30_000, "the script's trap set");
          ep.child.kill(signal);
        }
        // Deno reports a death by signal as 128+signal, as a container runtime does.
        return (await ep.status).code;
      };
      const m = mode.join("") || "exec";
      assert.equal(await run("exit 7"), 7, m);
      assert.equal(await run("exit 0"), 0, m);
      assert.equal(await run("kill -KILL $$"), 137, m);
      assert.equal(await run("kill -SEGV $$"), 139, m);
      assert.equal(
        await run(`trap 'exit 42' TERM; : > ${armed}; sleep 30 & wait`, "SIGTERM"),
        42,
        m,
      );
      assert.equal(await run(`trap 'exit 43' HUP; : > ${armed}; sleep 30 & wait`, "SIGHUP"), 43, m);
      assert.equal(await run(`trap 'exit 44' INT; : > ${armed}; sleep 30 & wait`, "SIGINT"), 44, m);
    }
  });
});

Deno.test("SIGTERM and SIGINT while idle exit 0 within 1 s", async () => {
  await withSandbox(async (redis, _dir, running) => {
    await redis.setFeatureState("bmp", "disabled");
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      for (const spawn of [false, true]) {
        const ep = await startTool(TOOL, [
          "--feature",
          "bmp",
          ...(spawn ? ["--spawn"] : []),
          "--",
          "true",
        ], {
          env: redis.env,
        });
        running.push(ep);
        await ep.waitForLine(IDLE);
        const t0 = performance.now();
        ep.child.kill(signal);
        const status = await ep.status;
        const took = performance.now() - t0;
        assert.equal(status.code, 0, `${signal} spawn=${spawn}: ${ep.lines.join("\n")}`);
        assert.ok(took < 1000, `${signal} took ${took} ms`);
      }
    }
  });
});

Deno.test("redis unreachable at start: says so once, keeps waiting, starts the daemon once redis is back and enabled", async () => {
  await withSandbox(async (redis, dir, running) => {
    await redis.setFeatureState("telemetry", "disabled");
    await redis.kill();
    const marker = join(dir, "m");
    const ep = await startOnMarker(redis, running, marker);
    await ep.waitForLine(/CONFIG_DB not reachable yet; waiting/, 30_000);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(processExists(ep.pid), true, "never exits while redis is down");
    assert.equal(
      ep.lines.filter((l) => /not reachable yet/.test(l)).length,
      1,
      ep.lines.join("\n"),
    );
    await redis.restart();
    await ep.waitForLine(IDLE, 30_000);
    await redis.setFeatureState("telemetry", "enabled");
    await waitUntil(async () => (await readMarker(marker)) !== undefined, 30_000, "daemon started");
  });
});

Deno.test("redis restart while idle: keeps the state, picks up an enable made while it was down", async () => {
  await withSandbox(async (redis, dir, running) => {
    await redis.setFeatureState("telemetry", "disabled");
    const marker = join(dir, "m");
    const ep = await startOnMarker(redis, running, marker);
    await ep.waitForLine(IDLE);
    await redis.kill();
    await ep.waitForLine(/CONFIG_DB unreachable; keeping the last known state/);
    assert.equal(await readMarker(marker), undefined);
    await redis.restart();
    await redis.setFeatureState("telemetry", "enabled");
    await waitUntil(async () => (await readMarker(marker)) !== undefined, 30_000, "daemon started");
    assert.equal(await readMarker(marker), String(ep.pid));
  });
});

Deno.test("--spawn: a redis restart while the daemon runs leaves the daemon running", async () => {
  await withSandbox(async (redis, dir, running) => {
    await redis.setFeatureState("telemetry", "enabled");
    const marker = join(dir, "m");
    const ep = await startOnMarker(redis, running, marker, ["--spawn"]);
    await waitUntil(async () => (await readMarker(marker)) !== undefined, 30_000, "daemon started");
    const pid = Number(await readMarker(marker));
    await redis.kill();
    await ep.waitForLine(/CONFIG_DB unreachable/);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(processExists(pid), true);
    await redis.restart();
    await ep.waitForLine(/CONFIG_DB reconnected/, 30_000);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(processExists(pid), true, "still running after the reconnect");
    assert.equal(ep.lines.filter((l) => /daemon started/.test(l)).length, 1);
  });
});

/** Why a PID namespace cannot be made here (not root, no unshare), or undefined when it can. */
function pidNamespaceUnavailable(): string | undefined {
  try {
    const out = new Deno.Command("unshare", {
      args: ["--pid", "--fork", "--mount-proc", "true"],
      stdout: "null",
      stderr: "piped",
    }).outputSync();
    return out.success ? undefined : new TextDecoder().decode(out.stderr).trim().split("\n")[0];
  } catch (error) {
    return (error as Error).message;
  }
}
const noPidNamespace = pidNamespaceUnavailable();
if (noPidNamespace) console.error(`skipping the PID 1 test: ${noPidNamespace}`);

Deno.test({
  name:
    "as PID 1 in a PID namespace: exec makes the daemon PID 1; --spawn reaps orphaned zombies and forwards SIGTERM",
  ignore: noPidNamespace !== undefined,
}, async () => {
  await withSandbox(async (redis, dir, running) => {
    await redis.setFeatureState("telemetry", "enabled");
    const wrap = ["unshare", "--pid", "--fork", "--mount-proc"];
    // exec: the daemon reports its own PID.
    const marker = join(dir, "exec");
    const ex = await startTool(TOOL, ["--feature", "telemetry", "--", ...markerDaemon(marker)], {
      env: redis.env,
      wrap,
    });
    running.push(ex);
    await waitUntil(async () => (await readMarker(marker)) !== undefined, 30_000, "exec daemon");
    assert.equal(await readMarker(marker), "1");
    await ex.stop("SIGKILL");

    // spawn: the daemon leaves orphans behind (subshells whose child outlives them); PID 1 (us)
    // inherits them and must reap each one when it exits.
    const script = "for i in 1 2 3 4 5; do (sleep 0.2 &) ; done; echo $$ > " + join(dir, "spawn") +
      "; trap 'exit 9' TERM; sleep 30 & wait";
    const sp = await startTool(TOOL, [
      "--feature",
      "telemetry",
      "--spawn",
      "--",
      "sh",
      "-c",
      script,
    ], {
      env: { ...redis.env, KS_DEBUG: "1" },
      wrap,
    });
    running.push(sp);
    await waitUntil(
      async () => (await readMarker(join(dir, "spawn"))) !== undefined,
      10_000,
      "spawn",
    );
    // The entrypoint is the unshare process's only child (PID 1 inside).
    await waitUntil(() => childrenOf(sp.pid).length === 1, 30_000, "pid 1 found");
    const pid1 = childrenOf(sp.pid)[0].pid;
    assert.equal(
      Deno.readTextFileSync(`/proc/${pid1}/status`).match(/NSpid:\s*\d+\s+(\d+)/)?.[1],
      "1",
    );
    await sp.waitForLine(/reaped orphan/, 30_000);
    await waitUntil(
      () => sp.lines.filter((l) => /reaped orphan/.test(l)).length === 5,
      30_000,
      "5 orphans reaped",
    );
    assert.deepEqual(childrenOf(pid1).filter((c) => c.state === "Z"), [], "no zombies left");
    Deno.kill(pid1, "SIGTERM"); // PID 1 forwards it to the daemon, whose trap exits 9
    assert.equal((await sp.status).code, 9, sp.lines.join("\n"));
  });
});

Deno.test("without FFI (--deny-ffi) exec falls back to spawn mode and says so", async () => {
  await withSandbox(async (redis, dir, running) => {
    await redis.setFeatureState("telemetry", "enabled");
    const marker = join(dir, "m");
    const ep = await startTool(TOOL, [
      "--feature",
      "telemetry",
      "--",
      ...markerDaemon(marker, "exit 5"),
    ], {
      env: redis.env,
      denoFlags: ["--deny-ffi"],
    });
    running.push(ep);
    assert.equal((await ep.status).code, 5, ep.lines.join("\n"));
    assert.ok(ep.lines.some((l) => /cannot exec \(falling back to spawn mode\)/.test(l)));
    assert.ok(ep.lines.some((l) => /reaps_orphans=false/.test(l)));
  });
});

Deno.test("a command that does not exist exits 127 with one line, in exec and spawn mode", async () => {
  await withSandbox(async (redis) => {
    await redis.setFeatureState("telemetry", "enabled");
    for (const spawn of [[], ["--spawn"]]) {
      const r = await runTool(TOOL, [
        "--feature",
        "telemetry",
        ...spawn,
        "--",
        "/nonexistent/daemon",
      ], {
        env: redis.env,
      });
      assert.equal(r.code, 127, r.stderr);
      assert.match(r.stderr, /cannot (exec|start) \/nonexistent\/daemon: command not found/);
    }
  });
});

Deno.test("--asic-namespace asic1 follows that namespace's CONFIG_DB, not the host's", async () => {
  await withSandbox(async (redis, dir, running) => {
    await redis.setFeatureState("telemetry", "disabled", "asic1");
    await redis.setFeatureState("telemetry", "enabled", "");
    const marker = join(dir, "m");
    const ep = await startOnMarker(redis, running, marker, ["--asic-namespace", "asic1"]);
    const line = await ep.waitForLine(IDLE);
    assert.match(line, /telemetry@asic1:/);
    assert.equal(ep.lines.filter((l) => /deprecated/.test(l)).length, 0);
    await redis.setFeatureState("telemetry", "enabled", "asic0");
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await readMarker(marker), undefined);
    await redis.setFeatureState("telemetry", "enabled", "asic1");
    await waitUntil(async () => (await readMarker(marker)) !== undefined, 30_000, "asic1 enabled");
  }, { namespaces: ["asic0", "asic1"] });
});

Deno.test("the old KS_NAMESPACE still selects the ASIC, with one deprecation line", async () => {
  await withSandbox(async (redis, dir, running) => {
    await redis.setFeatureState("telemetry", "disabled", "asic1");
    await redis.setFeatureState("telemetry", "enabled", "");
    const marker = join(dir, "m");
    const ep = await startOnMarker(redis, running, marker, [], { KS_NAMESPACE: "asic1" });
    assert.match(await ep.waitForLine(IDLE), /telemetry@asic1:/);
    assert.deepEqual(ep.lines.filter((l) => /deprecated/.test(l)), [
      "ks-entrypoint: warning: KS_NAMESPACE is deprecated, use KS_ASIC_NAMESPACE (the multi-ASIC namespace)",
    ]);
    assert.equal(await readMarker(marker), undefined, "asic1 is off, whatever the host says");
  }, { namespaces: ["asic0", "asic1"] });
});

Deno.test("runs the bundled telemetry example: supervisord starts the daemon and its port answers", async () => {
  await withSandbox(async (redis, dir, running) => {
    await redis.setFeatureState("telemetry", "disabled");
    const port = freePort();
    const sbx = await writeTelemetrySandbox(join(dir, "telemetry"), {
      listen: `127.0.0.1:${port}`,
    });
    const ep = await startTool(TOOL, ["--feature", "telemetry", "--", ...sbx.argv], {
      env: { ...redis.env, ...sbx.env },
    });
    running.push(ep);
    await ep.waitForLine(IDLE);
    await redis.setFeatureState("telemetry", "enabled");
    await waitForPort(port, 30_000);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const buf = new Uint8Array(64);
    const n = await conn.read(buf);
    conn.close();
    assert.equal(new TextDecoder().decode(buf.subarray(0, n ?? 0)), "telemetry ok\n");
    assert.equal(
      (await ep.stop("SIGTERM", 10_000)).code,
      0,
      "supervisord stops cleanly on SIGTERM",
    );
  });
});

Deno.test("bad input exits 2 with one line naming it", async () => {
  const cases: [string[], RegExp][] = [
    [["--", "true"], /--feature is required/],
    [["--feature", "telemetry"], /no command/],
    [["--feature", "telemetry", "--bogus", "--", "true"], /bogus/],
    [["--feature", "tele metry", "--", "true"], /--feature: "tele metry"/],
    [
      ["--feature", "telemetry", "--asic-namespace", "asicX", "--", "true"],
      /--asic-namespace: "asicX"/,
    ],
    [["--feature", "telemetry", "--resync", "soon", "--", "true"], /--resync: "soon"/],
  ];
  for (const [args, pattern] of cases) {
    const r = await runTool(TOOL, args, {
      env: { KS_DB_CONFIG: "/nonexistent/database_config.json" },
    });
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
  const help = await runTool(TOOL, ["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Example:/);
  assert.match((await runTool(TOOL, ["--version"])).stdout, /^ks-entrypoint \d/);
});

Deno.test("SIGUSR1 does not open Deno's V8 inspector in the idle entrypoint (it is ignored)", async () => {
  await withSandbox(async (redis, _dir, running) => {
    await redis.setFeatureState("bmp", "disabled");
    const ep = await startTool(TOOL, ["--feature", "bmp", "--", "true"], { env: redis.env });
    running.push(ep);
    await ep.waitForLine(IDLE);
    await new Promise((r) => setTimeout(r, 1500)); // past Deno's 500 ms handler grace and ours
    ep.child.kill("SIGUSR1");
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(processExists(ep.pid), true, "still running");
    assert.ok(!ep.lines.some((l) => /Debugger listening/.test(l)), ep.lines.join("\n"));
    assert.equal((await ep.stop()).code, 0);
  });
});
