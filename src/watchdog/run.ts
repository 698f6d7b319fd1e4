// ks-watchdog's two modes: `serve` (the long-lived HTTP endpoint: FEATURE followed through the
// CONFIG_DB subscription, CONFIG_DB outages timed for /readyz, one log line per health change) and
// `probeOnce` (the same checks once, for exec probes: one FEATURE read, the probes, exit 0/1).
import type { Logger } from "../log.ts";
import { UsageError } from "../cli.ts";
import { DbConfigError, type DbLocation, resolveRedisTarget } from "../sonic/db_config.ts";
import type { RedisTarget } from "../sonic/db_config.ts";
import {
  connectInBackground,
  createConfigDbClient,
  readFeatureStateField,
  withTimeout,
} from "../sonic/config_db.ts";
import { describeFeatureState, interpretFeatureState } from "../sonic/feature_state.ts";
import { type FeatureWatch, watchFeature } from "../sonic/feature_watch.ts";
import { type DbView, type HealthCheck, HealthEvaluator, type HealthReport } from "./health.ts";
import type { Probe } from "./probes.ts";
import { createHandler } from "./server.ts";
import { disarmInspectorSignal } from "../entrypoint/libc.ts";
import { startResidentTrim } from "../resident_pages.ts";

/** Everything the watchdog needs; built by bin/ks-watchdog.ts. */
export interface WatchdogOptions {
  feature: string;
  location: DbLocation;
  probes: Probe[];
  /** Every answer goes out within this (ms); default 800, under the kubelet's 1 s probe timeout. */
  deadlineMs: number;
  /** /readyz fails after CONFIG_DB has been unreachable this long (ms). */
  readyGraceMs: number;
  resyncMs: number;
  log: Logger;
}

/** Time kept back from the deadline for building and sending the answer (ms). */
const ANSWER_MARGIN_MS = 25;

/** The target, or the not-found error to wait on; throws UsageError for a config that is wrong. */
function tryResolve(location: DbLocation): RedisTarget | DbConfigError {
  try {
    return resolveRedisTarget(location);
  } catch (error) {
    if (error instanceof DbConfigError && /\(not found\)/.test(error.message)) return error;
    if (error instanceof DbConfigError) throw new UsageError(error.message);
    throw error;
  }
}

function evaluator(opts: WatchdogOptions): HealthEvaluator {
  return new HealthEvaluator({
    feature: opts.feature,
    namespace: opts.location.namespace || undefined,
    probes: opts.probes,
    probeBudgetMs: Math.max(1, opts.deadlineMs - ANSWER_MARGIN_MS),
    readyGraceMs: opts.readyGraceMs,
  });
}

/** A running watchdog server. */
export interface WatchdogServer {
  /** The address actually bound (port 0 resolves to a real port). */
  readonly addr: Deno.NetAddr;
  /** Resolves when the server has stopped. */
  readonly finished: Promise<void>;
  shutdown(): Promise<void>;
}

/**
 * Starts serving on `listen`. Throws (AddrInUse…) when the address cannot be bound. The FEATURE
 * state comes from watchFeature; an unreachable CONFIG_DB is retried forever, never fatal.
 */
export function serveWatchdog(
  opts: WatchdogOptions,
  listen: { host: string; port: number },
): WatchdogServer {
  const { log } = opts;
  const health = evaluator(opts);
  let watch: FeatureWatch | undefined;
  let closed = false;
  const startWatch = (target: RedisTarget) => {
    watch = watchFeature({
      target,
      feature: opts.feature,
      log,
      resyncMs: opts.resyncMs,
      onChange: (state) => log.info("FEATURE state", { state: describeFeatureState(state) }),
    });
  };
  // CONFIG_DB outage clock for /readyz: sampled, since the watch reports state, not transitions.
  let downSince: number | undefined = Date.now();
  const sample = () => {
    if (watch?.connected) downSince = undefined;
    else downSince ??= Date.now();
  };
  const sampler = setInterval(sample, 100);
  const dbView = (): DbView => {
    sample();
    return {
      state: watch?.current,
      connected: watch?.connected ?? false,
      unreachableMs: downSince === undefined ? 0 : Date.now() - downSince,
    };
  };

  // One log line per health change (per check), not per request.
  const last = new Map<HealthCheck, string>();
  const report = async (check: HealthCheck): Promise<HealthReport> => {
    const r = await health.evaluate(check, dbView());
    const key = `${r.healthy}|${r.state}|${r.probes_skipped}|${r.probes.map((p) => p.ok).join()}`;
    if (last.get(check) !== key) {
      last.set(check, key);
      (r.healthy ? log.info : log.warn)(`${check} ${r.healthy ? "healthy" : "unhealthy"}`, {
        state: r.state,
        message: r.message,
      });
    }
    return r;
  };

  const server = Deno.serve({
    hostname: listen.host,
    port: listen.port,
    onListen: () => {},
  }, createHandler(opts.feature, report, opts.deadlineMs));
  // A database config that is absent (database not up yet) is waited for; a wrong one is fatal.
  const first = tryResolve(opts.location);
  let retry: ReturnType<typeof setInterval> | undefined;
  if (first instanceof Error) {
    log.warn("database config not there yet; answering from state unknown and retrying", {
      reason: first.message,
    });
    retry = setInterval(() => {
      const t = tryResolve(opts.location);
      if (t instanceof Error || closed) return;
      clearInterval(retry);
      startWatch(t);
    }, 1000);
  } else startWatch(first);
  const addr = server.addr as Deno.NetAddr;
  log.info("serving /, /livez, /readyz", {
    listen: `${addr.hostname}:${addr.port}`,
    probes: opts.probes.map((p) => p.name).join(", ") || "none",
    deadline_ms: opts.deadlineMs,
  });
  let stopping: Promise<void> | undefined;
  return {
    addr,
    finished: server.finished,
    shutdown() {
      stopping ??= (async () => {
        closed = true;
        clearInterval(sampler);
        clearInterval(retry);
        await server.shutdown();
        await watch?.close();
      })();
      return stopping;
    },
  };
}

/** Serves until SIGTERM/SIGINT, then stops cleanly; returns the exit code (0). */
export async function runWatchdog(
  opts: WatchdogOptions,
  listen: { host: string; port: number },
): Promise<number> {
  let server: WatchdogServer;
  try {
    server = serveWatchdog(opts, listen);
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      throw new UsageError(`--listen: ${listen.host}:${listen.port} is already in use`);
    }
    throw error;
  }
  disarmInspectorSignal();
  const stopTrim = startResidentTrim(opts.log);
  const stop = () => {
    opts.log.info("stopping");
    void server.shutdown();
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  await server.finished;
  stopTrim();
  await server.shutdown();
  return 0;
}

/**
 * The same checks once: one FEATURE read (bounded by the deadline), then the probes. Returns the
 * report; an unreachable CONFIG_DB counts as "never read" (livez skips, readyz fails).
 */
export async function probeOnce(opts: WatchdogOptions, check: HealthCheck): Promise<HealthReport> {
  const t0 = Date.now();
  let view: DbView = { state: undefined, connected: false, unreachableMs: 0 };
  const target = tryResolve(opts.location); // absent config = not read (livez 0, readyz 1)
  if (!(target instanceof Error)) {
    const client = createConfigDbClient(target, { commandTimeoutMs: opts.deadlineMs });
    client.on("error", () => {});
    try {
      const budget = Math.max(1, opts.deadlineMs / 2);
      await withTimeout(connectInBackground(client), budget, "connecting to CONFIG_DB");
      const raw = await readFeatureStateField(client, opts.feature, budget);
      view = { state: interpretFeatureState(raw), connected: true, unreachableMs: 0 };
    } catch (error) {
      opts.log.debug("FEATURE read failed", { reason: (error as Error).message });
    } finally {
      try {
        client.destroy();
      } catch { /* closed */ }
    }
  }
  if (!view.connected) view.unreachableMs = Date.now() - t0;
  const remaining = Math.max(1, opts.deadlineMs - (Date.now() - t0) - ANSWER_MARGIN_MS);
  const health = new HealthEvaluator({ ...evaluator(opts).opts, probeBudgetMs: remaining });
  return await health.evaluate(check, view);
}
