// Lab: the feature pod's own tools on the simulated switch (flows 5.1 to 5.3 of docs/design.md, the
// pod's part): ks-entrypoint gating the bundled telemetry example (real supervisord + daemon) on
// CONFIG_DB FEATURE state, and ks-watchdog answering the kubelet's probes. The "pod" is the
// entrypoint process; what the stub does on disable (restart the container) is a process restart.
import type { LabContext, LabScenario } from "../context.ts";
import { formatMs } from "../timeline.ts";
import { freePort, waitForPort, waitUntil } from "../../sandbox/harness/net.ts";
import { type RunningTool, startTool } from "../../sandbox/harness/running_tool.ts";
import { writeTelemetrySandbox } from "../../examples/telemetry/sandbox.ts";
import { join } from "node:path";

interface Pod {
  entrypoint: RunningTool;
  watchdog: RunningTool;
  daemonPort: number;
  watchdogPort: number;
}

async function health(
  port: number,
  path = "/readyz",
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: await response.json() };
}

/** Time from `t0` until /proc/pid/comm stops being deno's (the exec happened): polled every 1 ms. */
async function waitForExec(pid: number, t0: number, ms = 10_000): Promise<number> {
  await waitUntil(
    () => {
      try {
        return Deno.readTextFileSync(`/proc/${pid}/comm`).trim() !== "deno";
      } catch {
        return false;
      }
    },
    ms,
    `pid ${pid} exec'd the daemon`,
    1,
  );
  return performance.now() - t0;
}

async function portClosed(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return false;
  } catch {
    return true;
  }
}

/** Starts the feature's "pod": ks-entrypoint (+ supervisord + daemon) and ks-watchdog. */
async function startPod(
  ctx: LabContext,
  feature: string,
  opts: { spawn?: boolean; daemonPort?: number; watchdogPort?: number } = {},
): Promise<Pod> {
  const daemonPort = opts.daemonPort ?? freePort();
  const watchdogPort = opts.watchdogPort ?? freePort();
  const sbx = await writeTelemetrySandbox(join(ctx.dir, `${feature}-pod`), {
    listen: `127.0.0.1:${daemonPort}`,
    name: feature,
  });
  const env = { ...ctx.redis.env, ...sbx.env };
  const entrypoint = await startTool("ks-entrypoint", [
    "--feature",
    feature,
    ...(opts.spawn ? ["--spawn"] : []),
    "--",
    ...sbx.argv,
  ], { env });
  ctx.defer(() => entrypoint.stop("SIGTERM", 5000).then(() => {}));
  const watchdog = await startTool("ks-watchdog", [
    "--feature",
    feature,
    "--listen",
    `127.0.0.1:${watchdogPort}`,
    "--tcp",
    `127.0.0.1:${daemonPort}`,
    "--process",
    feature,
  ], { env: ctx.redis.env });
  ctx.defer(() => watchdog.stop().then(() => {}));
  await waitForPort(watchdogPort);
  return { entrypoint, watchdog, daemonPort, watchdogPort };
}

export const scenario: LabScenario = {
  title:
    "flows 5.1 to 5.3, the feature pod: ks-entrypoint gates the daemon on FEATURE, ks-watchdog reports it",
  async run(ctx) {
    // Later scenarios read the seeded FEATURE table: put telemetry and bmp back afterwards.
    const original = await Promise.all(
      ["telemetry", "bmp"].map(async (f) =>
        [f, await ctx.redis.command(["HGET", `FEATURE|${f}`, "state"])] as const
      ),
    );
    try {
      await runScenario(ctx);
    } finally {
      for (const [f, state] of original) {
        if (typeof state === "string") await ctx.redis.setFeatureState(f, state);
      }
    }
  },
};

async function runScenario(ctx: LabContext): Promise<void> {
  const { timeline: tl, redis } = ctx;

  // 5.1 FEATURE enabled in the golden config: the pod starts and the daemon runs.
  tl.note("5.1 telemetry: FEATURE|telemetry state=enabled (as on a real switch)");
  await redis.setFeatureState("telemetry", "enabled");
  let pod: Pod | undefined;
  await tl.step(
    "telemetry pod starts: ks-entrypoint execs supervisord, the daemon listens",
    async () => {
      const t0 = performance.now();
      pod = await startPod(ctx, "telemetry");
      const exec = await waitForExec(pod.entrypoint.pid, t0);
      await waitForPort(pod.daemonPort, 15_000);
      return `exec after ${formatMs(exec)} (pod start incl. Deno start-up), ` +
        `daemon port ${pod.daemonPort} open after ${formatMs(performance.now() - t0)}`;
    },
  );
  if (!pod) return;
  const p1 = pod;
  await tl.step("ks-watchdog: /readyz 200, every probe passes", async () => {
    const t0 = performance.now();
    await waitUntil(async () => (await health(p1.watchdogPort)).status === 200, 10_000, "ready");
    const h = await health(p1.watchdogPort);
    return `${h.body.message} (healthy ${formatMs(performance.now() - t0)} after the port opened)`;
  });

  // 5.3 disable while running: featured stops the stub unit, which restarts the container;
  // it comes back idle. Here: HSET, then the pod's process restart.
  tl.note("5.3 NDM sets FEATURE|telemetry disabled while the daemon runs");
  await tl.step("ks-watchdog sees disabled: 200, probes skipped", async () => {
    const t0 = performance.now();
    await redis.setFeatureState("telemetry", "disabled");
    await waitUntil(
      async () => (await health(p1.watchdogPort)).body.state === "disabled",
      5000,
      "disabled",
    );
    const h = await health(p1.watchdogPort);
    if (h.status !== 200 || h.body.probes_skipped !== true) {
      throw new Error(JSON.stringify(h.body));
    }
    return `HSET -> watchdog answers "disabled" in ${formatMs(performance.now() - t0)}`;
  });
  await tl.step(
    "the stub restarts the container: it comes back idle, the daemon is gone",
    async () => {
      const t0 = performance.now();
      const code = (await p1.entrypoint.stop("SIGTERM", 10_000)).code;
      const stopped = performance.now() - t0;
      if (!(await portClosed(p1.daemonPort))) throw new Error("daemon port still open");
      await p1.watchdog.stop();
      const t1 = performance.now();
      const again = await startPod(ctx, "telemetry", {
        daemonPort: p1.daemonPort,
        watchdogPort: p1.watchdogPort,
      });
      await again.entrypoint.waitForLine(/FEATURE is off: idle until it is enabled/);
      const idle = performance.now() - t1;
      await new Promise((r) => setTimeout(r, 300));
      if (!(await portClosed(p1.daemonPort))) throw new Error("daemon started while disabled");
      const h = await health(again.watchdogPort);
      if (h.status !== 200) throw new Error(`watchdog ${h.status}: ${JSON.stringify(h.body)}`);
      await again.entrypoint.stop();
      await again.watchdog.stop();
      return `supervisord stopped on SIGTERM (exit ${code}) in ${formatMs(stopped)}; ` +
        `restarted pod idle after ${formatMs(idle)}; watchdog 200 skipped`;
    },
  );

  // 5.2 FEATURE disabled in the golden config (bmp): idle pod, watchdog OK; enabling starts it.
  tl.note("5.2 bmp: FEATURE|bmp state=disabled");
  await redis.setFeatureState("bmp", "disabled");
  let bmp: Pod | undefined;
  await tl.step("bmp pod starts idle; ks-watchdog 200 with probes skipped", async () => {
    const t0 = performance.now();
    bmp = await startPod(ctx, "bmp");
    await bmp.entrypoint.waitForLine(/FEATURE is off: idle until it is enabled/);
    const idle = performance.now() - t0;
    await waitUntil(
      async () => (await health(bmp!.watchdogPort)).body.state === "disabled",
      5000,
      "state",
    );
    const h = await health(bmp.watchdogPort);
    if (h.status !== 200 || h.body.probes_skipped !== true) {
      throw new Error(JSON.stringify(h.body));
    }
    return `idle after ${formatMs(idle)}; watchdog: ${h.body.message}`;
  });
  if (!bmp) return;
  const p2 = bmp;
  await tl.step(
    "NDM enables bmp: the daemon starts at once, the watchdog turns healthy",
    async () => {
      const t0 = performance.now();
      await redis.setFeatureState("bmp", "enabled");
      const exec = await waitForExec(p2.entrypoint.pid, t0);
      await waitForPort(p2.daemonPort, 15_000);
      const port = performance.now() - t0;
      await waitUntil(
        async () => (await health(p2.watchdogPort)).status === 200,
        10_000,
        "healthy",
      );
      return `HSET -> exec ${formatMs(exec)} (goal <= 250 ms), -> port open ${formatMs(port)} ` +
        `(supervisord start-up), -> watchdog 200 ${formatMs(performance.now() - t0)}`;
    },
  );

  // The --spawn variant follows FEATURE both ways without a container restart.
  tl.note("--spawn: the entrypoint stays PID 1 and follows FEATURE both ways itself");
  await redis.setFeatureState("bmp", "disabled");
  await p2.entrypoint.stop("SIGTERM", 10_000);
  await p2.watchdog.stop();
  await tl.step(
    "ks-entrypoint --spawn: disable stops the daemon, enable starts it again",
    async () => {
      const pod3 = await startPod(ctx, "bmp", { spawn: true });
      await pod3.entrypoint.waitForLine(/idle until it is enabled/);
      let t0 = performance.now();
      await redis.setFeatureState("bmp", "enabled");
      await pod3.entrypoint.waitForLine(/daemon started/);
      const started = performance.now() - t0;
      await waitForPort(pod3.daemonPort, 15_000);
      t0 = performance.now();
      await redis.setFeatureState("bmp", "disabled");
      await pod3.entrypoint.waitForLine(/daemon stopped; idle/, 15_000);
      const stopped = performance.now() - t0;
      if (!(await portClosed(pod3.daemonPort))) throw new Error("daemon port still open");
      const code = (await pod3.entrypoint.stop()).code;
      await pod3.watchdog.stop();
      return `HSET enabled -> daemon spawned ${formatMs(started)}; HSET disabled -> ` +
        `daemon stopped ${formatMs(stopped)}; SIGTERM while idle -> exit ${code}`;
    },
  );
}
