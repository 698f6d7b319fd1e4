// Benchmark-style memory check of the resident tools, run by `deno task test` (CI) but not timed:
// the real bundled ks-watchdog (against a real redis, FEATURE enabled) and ks-patcher loop (on a
// sandbox switch, reading a JSON manifest as the sidecar does), each started through its ks tree
// launcher exactly as shipped (the tree's Deno, the runtime flags of src/build/runtime_flags.ts,
// the tool's own entry lib/ks/ks-<tool>.js) from a copy of the tree primed and mounted read-only
// as the ks-tools image is in a pod, must idle under a bound in RSS. A third test keeps the
// priming itself: from a read-only tree without it, Deno parses every module again at each start
// into memory the tool keeps (src/build/runtime_cache.ts).
//
// The goal is 48 MiB RSS per resident tool; each bound is the goal plus 1 MiB, 49, for the page
// cache's state (src/page_cache.ts). Since the tools drop the file pages their start-up mapped
// (src/resident_pages.ts) they idle at 22-25 MiB; a second bound, Deno's floor (an empty script,
// 33.4-33.9 MiB) plus 2, fails when that drop stops working (the tools idled at 45.1-48.5 before).
// `deno task bench footprint` prints the figures (docs/footprint.md).
import assert from "node:assert/strict";
import { join } from "node:path";
import { readOnlyTree } from "../../sandbox/harness/bin.ts";
import { type Footprint, mib, settledFootprint } from "../../sandbox/harness/memory.ts";
import { freePort, waitForPort, waitUntil } from "../../sandbox/harness/net.ts";
import { startRedis } from "../../sandbox/harness/redis.ts";
import { stopChild } from "../../sandbox/harness/process.ts";
import {
  createPatcherSandbox,
  KUBE_LAUNCHER,
  telemetryManifest,
} from "../../sandbox/fixtures/patcher_host.ts";

/** Idle RSS bounds (MiB): the goal, 48, plus 1 MiB for the page cache's state (above). */
const WATCHDOG_IDLE_RSS_MIB = 49;
const PATCHER_IDLE_RSS_MIB = 49;
/** After the start-up's file pages are dropped: under Deno's untrimmed floor plus 2 MiB. */
const TRIMMED_IDLE_RSS_MIB = 36;

/**
 * Anonymous memory a tool keeps when Deno parses its modules at start-up (no cache it can use):
 * 6.5-6.8 MiB measured (watchdog 21.4 against 14.6); the test asks for half.
 */
const UNPRIMED_EXTRA_ANON_MIB = 3;

/** The line a resident tool logs once it has let go of its start-up's file pages. */
const TRIMMED = /dropped start-up file pages/;

/** Prints the figures and checks both idle bounds (the goal's, and the one after the drop). */
function assertIdleBounds(tool: string, fp: Footprint, goalBound: number): void {
  console.log(`${tool} idle: RSS ${mib(fp.rss)} PSS ${mib(fp.pss)} anon ${mib(fp.anon)} MiB`);
  assert.ok(
    fp.rss <= goalBound,
    `${tool} idles at ${mib(fp.rss)} MiB RSS, over its bound ${goalBound} MiB`,
  );
  assert.ok(
    fp.rss <= TRIMMED_IDLE_RSS_MIB,
    `${tool} idles at ${mib(fp.rss)} MiB RSS after dropping its start-up's file pages, over ` +
      `${TRIMMED_IDLE_RSS_MIB} MiB: are they still mapped?`,
  );
}

/** The idle footprint of `tool` started from a read-only copy of the tree (primed unless told). */
async function idleOfLauncher(
  tool: string,
  args: string[],
  env: Record<string, string>,
  ready: (stderr: () => string) => Promise<void>,
  opts: { prime?: boolean } = {},
): Promise<Footprint> {
  const tree = await readOnlyTree(await Deno.makeTempDir({ prefix: "ks-ro-tree-" }), opts);
  try {
    return await idleOf(tree.launcher(tool), tool, args, env, ready);
  } finally {
    await tree.remove();
  }
}

async function idleOf(
  launcher: string,
  tool: string,
  args: string[],
  env: Record<string, string>,
  ready: (stderr: () => string) => Promise<void>,
): Promise<Footprint> {
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
    // The launcher execs Deno on the tool's entry in the tree: the launcher's PID is the tool's.
    const argv = Deno.readTextFileSync(`/proc/${child.pid}/cmdline`).split("\0");
    assert.ok(
      argv.some((a) => a.endsWith(`/lib/ks/${tool}.js`)),
      `pid ${child.pid} runs ${argv.join(" ")}`,
    );
    return await settledFootprint(child.pid);
  } finally {
    await stopChild(child, child.status, 3000);
    await reading.catch(() => {});
  }
}

/** The watchdog's idle footprint against a fresh real redis, from a read-only tree. */
async function watchdogIdle(opts: { prime?: boolean } = {}): Promise<Footprint> {
  const redis = await startRedis();
  try {
    const port = freePort();
    return await idleOfLauncher(
      "ks-watchdog",
      ["--feature", "telemetry", "--listen", `127.0.0.1:${port}`],
      redis.env,
      async (stderr) => {
        await waitForPort(port, 20_000);
        await waitUntil(() => /FEATURE state state=enabled/.test(stderr()), 20_000, "enabled");
        const r = await fetch(`http://127.0.0.1:${port}/readyz`);
        await r.body?.cancel();
        assert.equal(r.status, 200);
        await waitUntil(() => TRIMMED.test(stderr()), 30_000, "the start-up's file pages dropped");
      },
      opts,
    );
  } finally {
    await redis.stop();
  }
}

Deno.test("ks-watchdog idles under its RSS bound as shipped (launcher flags, real redis)", async () => {
  const fp = await watchdogIdle();
  assertIdleBounds("ks-watchdog", fp, WATCHDOG_IDLE_RSS_MIB);
});

Deno.test("a read-only tree without ks prime-cache costs each tool its modules' parse", async () => {
  const primed = await watchdogIdle();
  const unprimed = await watchdogIdle({ prime: false });
  console.log(`ks-watchdog anon: primed ${mib(primed.anon)}, unprimed ${mib(unprimed.anon)} MiB`);
  assert.ok(
    unprimed.anon >= primed.anon + UNPRIMED_EXTRA_ANON_MIB,
    `unprimed ${mib(unprimed.anon)} MiB anonymous against primed ${
      mib(primed.anon)
    }: the priming ` +
      `no longer saves ${UNPRIMED_EXTRA_ANON_MIB} MiB (does Deno still parse into kept memory?)`,
  );
});

Deno.test("ks-patcher's loop idles under its RSS bound as shipped (launcher flags)", async () => {
  const sb = await createPatcherSandbox();
  try {
    const launcher = join(sb.hostRoot, "usr/local/bin/telemetry.sh");
    // The sidecar's manifest: ks-render writes it as JSON (manifest-kube.json).
    const manifest = await sb.writeManifest(telemetryManifest(), "manifest-kube.json");
    const fp = await idleOfLauncher(
      "ks-patcher",
      [...sb.cliArgs(manifest), "--interval", "10m"],
      { PATH: sb.systemctl.path },
      async (stderr) => {
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
        await waitUntil(() => TRIMMED.test(stderr()), 30_000, "the start-up's file pages dropped");
      },
    );
    assertIdleBounds("ks-patcher", fp, PATCHER_IDLE_RSS_MIB);
  } finally {
    await sb.cleanup();
  }
});
