// Benchmark-style memory check of the resident tools, run by `deno task test` (CI) but not timed:
// the real bundled ks-watchdog (against a real redis, FEATURE enabled) and ks-patcher loop (on a
// sandbox switch), each started through its ks tree launcher dist/ks-tree/bin/ks-* exactly as shipped
// (runtime flags from src/build/runtime_flags.ts), must idle under a bound in RSS.
//
// The goal is 48 MiB RSS per resident tool. The per-tool watchdog bundle reaches it with npm:redis
// (46.7-47.8 MiB measured: the client's command table narrowed and the unused modules dropped from the bundle,
// signal(2) bound without a fast-call trampoline); the patcher idles at 49-50 MiB (its FFI calls
// now go through function pointers; node:crypto and yaml are what it still loads). Each bound is
// the figure reached from the ks tree's code-split bundle (watchdog 48.9-52.9, patcher ~55.8 MiB;
// the per-tool bundles reach 47 and ~50) plus ~3 MiB of headroom for run-to-run variance and a
// loaded CI machine: watchdog 56, patcher 59.
// `deno task bench footprint` prints the figures (docs/footprint.md).
import assert from "node:assert/strict";
import { join } from "node:path";
import { toolLauncher } from "../../sandbox/harness/bin.ts";
import { type Footprint, mib, settledFootprint } from "../../sandbox/harness/memory.ts";
import { freePort, waitForPort, waitUntil } from "../../sandbox/harness/net.ts";
import { startRedis } from "../../sandbox/harness/redis.ts";
import { stopChild } from "../../sandbox/harness/process.ts";
import { createPatcherSandbox, KUBE_LAUNCHER } from "../../sandbox/fixtures/patcher_host.ts";

/** Idle RSS bounds (MiB): the figures reached plus a margin (above). */
const WATCHDOG_IDLE_RSS_MIB = 56;
const PATCHER_IDLE_RSS_MIB = 59;

async function idleOfLauncher(
  tool: string,
  args: string[],
  env: Record<string, string>,
  ready: (stderr: () => string) => Promise<void>,
): Promise<Footprint> {
  const launcher = await toolLauncher(tool);
  // A bundle's first run also fills Deno's module-analysis cache (+5-8 MiB that run only, the
  // images run each tool once at build time for the same reason): not the figure under test.
  await new Deno.Command(launcher, { args: ["--version"], stdout: "null" }).output();
  const child = new Deno.Command(launcher, {
    args,
    env,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  const reading = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) stderr += decoder.decode(chunk, { stream: true });
  })();
  try {
    await ready(() => stderr);
    // The launcher execs Deno on the multi-call bundle: the launcher's PID is the tool's.
    const argv = Deno.readTextFileSync(`/proc/${child.pid}/cmdline`).split("\0");
    assert.ok(
      argv.some((a) => a.endsWith("/ks.js")) && argv.includes(tool),
      `pid ${child.pid} runs ${argv.join(" ")}`,
    );
    return await settledFootprint(child.pid);
  } finally {
    await stopChild(child, child.status, 3000);
    await reading.catch(() => {});
  }
}

Deno.test("ks-watchdog idles under its RSS bound as shipped (launcher flags, real redis)", async () => {
  const redis = await startRedis();
  try {
    const port = freePort();
    const fp = await idleOfLauncher(
      "ks-watchdog",
      ["--feature", "telemetry", "--listen", `127.0.0.1:${port}`],
      redis.env,
      async (stderr) => {
        await waitForPort(port, 20_000);
        await waitUntil(() => /FEATURE state state=enabled/.test(stderr()), 20_000, "enabled");
        const r = await fetch(`http://127.0.0.1:${port}/readyz`);
        await r.body?.cancel();
        assert.equal(r.status, 200);
      },
    );
    console.log(`ks-watchdog idle: RSS ${mib(fp.rss)} PSS ${mib(fp.pss)} anon ${mib(fp.anon)} MiB`);
    assert.ok(
      fp.rss <= WATCHDOG_IDLE_RSS_MIB,
      `ks-watchdog idles at ${mib(fp.rss)} MiB RSS, over its bound ${WATCHDOG_IDLE_RSS_MIB} MiB`,
    );
  } finally {
    await redis.stop();
  }
});

Deno.test("ks-patcher's loop idles under its RSS bound as shipped (launcher flags)", async () => {
  const sb = await createPatcherSandbox();
  try {
    const launcher = join(sb.hostRoot, "usr/local/bin/telemetry.sh");
    const fp = await idleOfLauncher(
      "ks-patcher",
      [...sb.cliArgs(), "--interval", "10m"],
      { PATH: sb.systemctl.path },
      async () => {
        await waitUntil(
          () => {
            try {
              return Deno.readTextFileSync(launcher) === KUBE_LAUNCHER;
            } catch {
              return false;
            }
          },
          30_000,
          "the first pass",
        );
      },
    );
    console.log(`ks-patcher idle: RSS ${mib(fp.rss)} PSS ${mib(fp.pss)} anon ${mib(fp.anon)} MiB`);
    assert.ok(
      fp.rss <= PATCHER_IDLE_RSS_MIB,
      `ks-patcher idles at ${mib(fp.rss)} MiB RSS, over its bound ${PATCHER_IDLE_RSS_MIB} MiB`,
    );
  } finally {
    await sb.cleanup();
  }
});
