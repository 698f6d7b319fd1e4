// What the watchdog answers: from the last known FEATURE state (the subscription's, never a redis
// round trip per request), the CONFIG_DB connection status and one round of probes, build the
// report for `/` and `/livez` (liveness: a database outage never fails it) or `/readyz` (readiness:
// fails once CONFIG_DB has been unreachable longer than the grace period). Concurrent requests
// share the probe round in flight, so the probe load does not grow with the request rate.
import { describeFeatureState, type FeatureState } from "../sonic/feature_state.ts";
import { type Probe, type ProbeResult, runProbes } from "./probes.ts";

/** The two probe semantics: `livez` (also `/`) and `readyz`. */
export type HealthCheck = "livez" | "readyz";

/** What the watchdog knows about CONFIG_DB when a request arrives. */
export interface DbView {
  /** Last known FEATURE state; undefined when it was never read. */
  state: FeatureState | undefined;
  connected: boolean;
  /** How long CONFIG_DB has been unreachable (ms); 0 when connected. */
  unreachableMs: number;
}

/** The JSON body of every answer. */
export interface HealthReport {
  feature: string;
  namespace?: string;
  check: HealthCheck;
  /** `enabled`, `disabled`, `always_enabled`, …, `missing` (no row) or `unknown` (never read). */
  state: string;
  healthy: boolean;
  /** One sentence; names the failed probe when unhealthy. */
  message: string;
  /** Each probe's result; empty when skipped. */
  probes: ProbeResult[];
  probes_skipped: boolean;
  config_db: { connected: boolean; unreachable_ms: number };
}

/** Settings of the evaluation. */
export interface HealthOptions {
  feature: string;
  namespace?: string;
  probes: readonly Probe[];
  /** Budget for one probe round (ms): a probe still running then is a failure. */
  probeBudgetMs: number;
  /** /readyz fails once CONFIG_DB has been unreachable this long (ms). */
  readyGraceMs: number;
}

/** Evaluates health reports; one instance per watchdog (it holds the shared probe round). */
export class HealthEvaluator {
  #round: Promise<ProbeResult[]> | undefined;
  constructor(readonly opts: HealthOptions) {}

  /** One probe round, shared with every request arriving while it runs. */
  probeRound(): Promise<ProbeResult[]> {
    this.#round ??= runProbes(this.opts.probes, this.opts.probeBudgetMs).finally(() => {
      this.#round = undefined;
    });
    return this.#round;
  }

  /** Builds the report for `check` from `db`; resolves within the probe budget. */
  async evaluate(check: HealthCheck, db: DbView): Promise<HealthReport> {
    const { feature, namespace, readyGraceMs } = this.opts;
    const base = {
      feature,
      ...(namespace ? { namespace } : {}),
      check,
      state: db.state ? describeFeatureState(db.state) : "unknown",
      config_db: { connected: db.connected, unreachable_ms: Math.round(db.unreachableMs) },
    };
    const skip = (healthy: boolean, message: string): HealthReport => ({
      ...base,
      healthy,
      message,
      probes: [],
      probes_skipped: true,
    });
    if (check === "readyz" && !db.connected && db.unreachableMs > readyGraceMs) {
      return skip(
        false,
        `CONFIG_DB unreachable for ${Math.round(db.unreachableMs / 1000)} s ` +
          `(grace ${Math.round(readyGraceMs / 1000)} s)`,
      );
    }
    if (!db.state) {
      return check === "readyz"
        ? skip(false, `FEATURE|${feature} state not read yet (CONFIG_DB unreachable)`)
        : skip(true, `FEATURE|${feature} state not read yet: probes skipped`);
    }
    if (!db.state.on) return skip(true, `${feature} is ${base.state}: probes skipped`);
    if (this.opts.probes.length === 0) {
      return {
        ...base,
        healthy: true,
        message: "no probes configured",
        probes: [],
        probes_skipped: false,
      };
    }
    const probes = await this.probeRound();
    const failed = probes.filter((p) => !p.ok);
    const message = failed.length === 0
      ? `all ${probes.length} probe(s) pass`
      : failed.map((p) => `probe ${p.name} failed: ${p.detail}`).join("; ");
    return { ...base, healthy: failed.length === 0, message, probes, probes_skipped: false };
  }
}
