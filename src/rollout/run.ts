// The ks-rollout runner: claims the rollout on the DaemonSet (or refuses a conflicting one), then
// loops "observe -> step -> record -> act" until the rollout is done or rolled back. Recording is
// a compare-and-swap on the state annotation, and it always happens before the deletes it
// decided, so a run killed at any instant leaves a state the next run resumes from. `status`
// reads the same annotation.
import type { Logger } from "../log.ts";
import type { KubeRest } from "../kube/rest.ts";
import { type Budget, formatBudget } from "./gate.ts";
import {
  type DaemonSet,
  PodCache,
  type PodTemplate,
  RolloutCluster,
  StateConflict,
  WriteConflict,
} from "./cluster.ts";
import { abortRollout, type Deletion, step } from "./machine.ts";
import { progressLine, type RolloutProgress, summarize } from "./progress.ts";
import {
  decideAbort,
  decideClaim,
  decodeState,
  encodeState,
  holderId,
  isFinal,
  type RolloutState,
  STATE_ANNOTATION,
} from "./state.ts";
import {
  currentRevision,
  resolveTarget,
  revisionHash,
  revisionTemplate,
  type Target,
} from "./target.ts";
import { orderNodes, waveCounts, waveNodes, type WaveSpec } from "./waves.ts";

/** Exit codes of ks-rollout (also in its --help). */
/** The least time a node moved back gets to be Ready again, unless --restore-timeout says less. */
export const RESTORE_TIMEOUT_MIN_MS = 5 * 60_000;

export const EXIT = {
  done: 0,
  error: 1,
  usage: 2,
  refused: 3,
  rolledBack: 4,
  rollbackFailed: 5,
} as const;

/** Everything a rollout run needs besides the API client. */
export interface RolloutOptions {
  feature: string;
  namespace: string;
  daemonset: string;
  /** `--to`: a manifest path or a revision (number, name or hash). */
  to: string;
  waves: WaveSpec[];
  budget: Budget;
  bakeMs: number;
  readyTimeoutMs: number;
  /**
   * How long a node moved back may take to be Ready on the previous revision (default: the
   * ready timeout, at least RESTORE_TIMEOUT_MIN_MS): a slow restore is not a failed one.
   */
  restoreTimeoutMs?: number;
  /** How long a new pod must stay Ready before its node counts as done. */
  minReadyMs?: number;
  maxInFlight: number;
  /** Only nodes matching this label selector are rolled. */
  selector?: string;
  /** Nodes rolled first, in this order. */
  canaries: string[];
  spreadLabels: string[];
  dryRun: boolean;
  /** A holder that has not written for this long is considered gone. */
  leaseMs: number;
  /** Pause between observations. */
  pollMs: number;
  /** Stop the unfinished rollout and roll it back (`ks-rollout abort`); `to` is ignored. */
  abort?: boolean;
  logger: Logger;
  /** Called after every step with the current progress. */
  onProgress?: (progress: RolloutProgress) => void;
}

/** How a run ended. */
export type RolloutResult = "done" | "rolled-back" | "rollback-failed" | "refused" | "dry-run";

/** What a run reports (`--output json` prints it). */
export interface RolloutReport {
  result: RolloutResult;
  feature: string;
  daemonset: string;
  /** Why the run was refused. */
  reason?: string;
  progress?: RolloutProgress;
  /** The plan, for --dry-run. */
  plan?: { target: string; waves: { wave: number; nodes: string[] }[] };
  /** API requests this run made, and per node of the fleet. */
  requests: number;
  requestsPerNode?: number;
  durationMs: number;
}

/** Maps a report to the process exit code. */
export function exitCodeOf(report: RolloutReport): number {
  switch (report.result) {
    case "done":
    case "dry-run":
      return EXIT.done;
    case "refused":
      return EXIT.refused;
    case "rolled-back":
      return EXIT.rolledBack;
    case "rollback-failed":
      return EXIT.rollbackFailed;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Progress without a decision behind it is recorded at most this often. */
const WRITE_EVERY_MS = 1000;
/** After a pod event, wait this long for more before stepping (events come in bursts). */
const BATCH_MS = 100;
/** A pod deleted by this run is not deleted again within this time. */
const REDELETE_MS = 5000;

async function planNodes(
  cluster: RolloutCluster,
  ds: DaemonSet,
  opts: RolloutOptions,
): Promise<string[]> {
  const [nodes, { pods }] = await Promise.all([
    cluster.listNodes(opts.selector),
    cluster.listPods(ds),
  ]);
  const withPod = new Set(pods.map((p) => p.node));
  const eligible = nodes
    .filter((n) => withPod.has(n.metadata.name))
    .map((n) => ({ name: n.metadata.name, labels: n.metadata.labels }));
  return orderNodes(eligible, opts.canaries, opts.spreadLabels);
}

function newId(): string {
  return crypto.randomUUID().slice(0, 8);
}

type Claim =
  | { kind: "run"; state: RolloutState; written: string }
  | { kind: "refused"; reason: string }
  | { kind: "dry-run"; plan: NonNullable<RolloutReport["plan"]> };

async function claim(cluster: RolloutCluster, opts: RolloutOptions, me: string): Promise<Claim> {
  const log = opts.logger;
  for (let attempt = 0; attempt < 8; attempt++) {
    const ds = await cluster.getDaemonSet();
    const strategy = ds.spec.updateStrategy?.type ?? "RollingUpdate";
    if (strategy !== "OnDelete") {
      throw new Error(
        `daemonset ${opts.namespace}/${opts.daemonset} has updateStrategy ${strategy}; ` +
          "ks-rollout moves only OnDelete DaemonSets (as ks-render emits them)",
      );
    }
    const annotations = ds.metadata.annotations ?? {};
    const existing = decodeState(annotations[STATE_ANNOTATION]);
    if (opts.abort) {
      const now = Date.now();
      const decision = decideAbort(existing, me, now, opts.leaseMs);
      if (decision.action === "refuse") return { kind: "refused", reason: decision.reason };
      let state: RolloutState = { ...existing!, holder: me, heartbeat: now };
      let template: PodTemplate | undefined;
      if (state.phase === "rolling" || state.phase === "baking") {
        const { pods } = await cluster.listPods(ds);
        const stopped = abortRollout(state, { now, pods }, "aborted by the operator");
        state = stopped.state;
        template = revisionTemplate(await cluster.getRevision(state.previous.revision));
      }
      const written = encodeState(state);
      try {
        await cluster.patchState(
          STATE_ANNOTATION,
          annotations[STATE_ANNOTATION],
          written,
          template,
        );
      } catch (error) {
        if (error instanceof StateConflict) continue;
        throw error;
      }
      log.warn("rollout stopped, rolling back", {
        id: state.id,
        reason: "aborted by the operator",
        previous_holder: existing!.holder,
        revision: state.previous.revision,
      });
      return { kind: "run", state, written };
    }
    const sameAsExisting = existing !== undefined && !isFinal(existing) &&
      (opts.to === existing.target.to || opts.to === existing.target.hash);
    let target: Target | undefined;
    let digest: string;
    if (sameAsExisting) digest = existing!.target.digest;
    else {
      target = await resolveTarget(opts.to, opts.daemonset, () => cluster.listRevisions(ds));
      digest = target.digest;
    }
    const now = Date.now();
    const decision = decideClaim(existing, digest, me, now, opts.leaseMs);
    if (opts.dryRun) {
      const order = await planNodes(cluster, ds, opts);
      const counts = waveCounts(opts.waves, order.length);
      return {
        kind: "dry-run",
        plan: {
          target: target?.source ?? existing!.target.source,
          waves: waveNodes(order, counts).map((nodes, i) => ({ wave: i + 1, nodes })),
        },
      };
    }
    if (decision.action === "refuse") return { kind: "refused", reason: decision.reason };
    if (decision.action === "resume") {
      const state: RolloutState = { ...existing!, holder: me, heartbeat: now };
      const written = encodeState(state);
      try {
        await cluster.patchState(STATE_ANNOTATION, annotations[STATE_ANNOTATION], written);
      } catch (error) {
        if (error instanceof StateConflict) continue;
        throw error;
      }
      log.info(decision.takeover ? "resuming a rollout left by another run" : "resuming", {
        id: state.id,
        previous_holder: existing!.holder,
        phase: state.phase,
        wave: state.wave + 1,
      });
      return { kind: "run", state, written };
    }
    // Start: record the state and set the new template in one compare-and-swap write.
    const revisions = await cluster.listRevisions(ds);
    const current = currentRevision(revisions);
    if (!current) {
      throw new Error(
        `daemonset ${opts.namespace}/${opts.daemonset} has no ControllerRevision yet ` +
          "(the controller has not synced it); try again in a moment",
      );
    }
    const order = await planNodes(cluster, ds, opts);
    if (order.length === 0) {
      throw new Error(
        `no node runs a pod of daemonset ${opts.namespace}/${opts.daemonset}` +
          (opts.selector ? ` among nodes matching ${opts.selector}` : ""),
      );
    }
    const state: RolloutState = {
      v: 1,
      id: newId(),
      phase: "rolling",
      holder: me,
      heartbeat: now,
      startedAt: now,
      target: { digest, hash: "", to: opts.to, source: target!.source },
      previous: { revision: current.metadata.name, hash: revisionHash(current) },
      settings: {
        budget: formatBudget(opts.budget),
        bakeMs: opts.bakeMs,
        readyTimeoutMs: opts.readyTimeoutMs,
        restoreTimeoutMs: opts.restoreTimeoutMs ??
          Math.max(opts.readyTimeoutMs, RESTORE_TIMEOUT_MIN_MS),
        maxInFlight: opts.maxInFlight,
        minReadyMs: opts.minReadyMs ?? 0,
      },
      waves: waveCounts(opts.waves, order.length),
      wave: 0,
      order,
      marks: ".".repeat(order.length),
      inflight: {},
      reasons: {},
      undo: "",
    };
    const written = encodeState(state);
    const updated: DaemonSet = structuredClone(ds);
    updated.metadata.annotations = { ...annotations, [STATE_ANNOTATION]: written };
    updated.spec.template = target!.template;
    try {
      await cluster.replaceDaemonSet(updated);
    } catch (error) {
      if (error instanceof WriteConflict) continue;
      throw error;
    }
    log.info("rollout started", {
      id: state.id,
      to: state.target.source,
      from: current.metadata.name,
      nodes: order.length,
      waves: state.waves.join(","),
      budget: state.settings.budget,
    });
    return { kind: "run", state, written };
  }
  throw new Error(
    `daemonset ${opts.namespace}/${opts.daemonset} kept changing while claiming the rollout; try again`,
  );
}

async function deleteAll(cluster: RolloutCluster, deletes: Deletion[], limit: number) {
  const queue = [...deletes];
  const worker = async () => {
    while (queue.length > 0) {
      const d = queue.shift()!;
      await cluster.deletePod(d.pod, d.uid);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, queue.length)) }, worker));
}

function withoutHeartbeat(state: RolloutState): string {
  return encodeState({ ...state, heartbeat: 0 });
}

/**
 * Runs (or resumes) a rollout to `opts.to` until it is done, rolled back or refused. Throws for
 * errors that leave the state as recorded (the API unreachable after retries, a bad --to): a
 * rerun resumes from there.
 */
export async function runRollout(rest: KubeRest, opts: RolloutOptions): Promise<RolloutReport> {
  const t0 = Date.now();
  const cluster = new RolloutCluster(rest, opts.namespace, opts.daemonset);
  const me = holderId();
  const log = opts.logger;
  const base = { feature: opts.feature, daemonset: `${opts.namespace}/${opts.daemonset}` };
  const finish = (
    report: Omit<RolloutReport, "requests" | "durationMs" | "feature" | "daemonset">,
  ) => {
    const nodes = report.progress?.nodes;
    return {
      ...base,
      ...report,
      requests: cluster.requests,
      requestsPerNode: nodes ? Math.round((cluster.requests / nodes) * 100) / 100 : undefined,
      durationMs: Date.now() - t0,
    };
  };

  const claimed = await claim(cluster, opts, me);
  if (claimed.kind === "refused") {
    log.warn("refused", { reason: claimed.reason });
    return finish({ result: "refused", reason: claimed.reason });
  }
  if (claimed.kind === "dry-run") return finish({ result: "dry-run", plan: claimed.plan });

  let state = claimed.state;
  let written = claimed.written;
  let recorded = withoutHeartbeat(state);
  let lastWrite = Date.now();
  // The DaemonSet is re-read only when needed: at the start, after a template change (to wait
  // for the controller), and after a conflict. Ownership needs no read: every write of the state
  // is conditional on the annotation still holding what this run wrote last.
  let ds: DaemonSet | undefined;
  let cache: PodCache | undefined;
  const recent = new Map<string, number>();
  try {
    while (!isFinal(state)) {
      if (!ds) {
        ds = await cluster.getDaemonSet();
        const found = ds.metadata.annotations?.[STATE_ANNOTATION];
        if (found !== written) {
          const other = decodeState(found);
          const reason = `another run took over rollout ${state.id} (holder ${
            other?.holder ?? "?"
          })`;
          log.warn("stopped", { reason });
          return finish({ result: "refused", reason, progress: summarize(state, Date.now()) });
        }
        // Delete nothing until the controller has seen the template we set.
        if ((ds.status?.observedGeneration ?? 0) < (ds.metadata.generation ?? 0)) {
          ds = undefined;
          await sleep(Math.min(opts.pollMs, 200));
          continue;
        }
      }
      if (!state.target.hash) {
        const current = currentRevision(await cluster.listRevisions(ds));
        if (!current) throw new Error("the DaemonSet lost its ControllerRevisions");
        state = { ...state, target: { ...state.target, hash: revisionHash(current) } };
        log.info("target revision", { hash: state.target.hash, revision: current.metadata.name });
      }
      if (!cache) {
        cache = new PodCache(cluster, ds);
        await cache.start();
      }
      const now = Date.now();
      const result = step(state, { now, pods: cache.snapshot() });
      const next = result.state;
      const changed = withoutHeartbeat(next) !== recorded;
      // Record before acting (deletes, template, end); other progress at most once a second
      // (a rerun re-derives it from the pods), and a heartbeat within a third of the lease.
      const mustWrite = result.deletes.length > 0 || result.restoreTemplate || isFinal(next) ||
        next.phase !== state.phase || next.wave !== state.wave;
      const due = (changed && now - lastWrite >= WRITE_EVERY_MS) ||
        now - lastWrite > opts.leaseMs / 3;
      if ((changed && mustWrite) || due || result.restoreTemplate) {
        next.heartbeat = now;
        const text = encodeState(next);
        const template = result.restoreTemplate
          ? revisionTemplate(await cluster.getRevision(state.previous.revision))
          : undefined;
        try {
          await cluster.patchState(STATE_ANNOTATION, written, text, template);
        } catch (error) {
          if (!(error instanceof StateConflict)) throw error;
          ds = undefined; // re-read: the top of the loop decides
          continue;
        }
        if (template) ds = undefined; // wait for the controller to see the restored template
        written = text;
        recorded = withoutHeartbeat(next);
        lastWrite = now;
      }
      state = next;
      for (const e of result.events) {
        const fields = { id: state.id, ...e.fields };
        if (e.message === "node done" || e.message === "node restored") {
          log.debug(e.message, fields);
        } else if (e.message.includes("fail") || e.message.includes("stopped")) {
          log.warn(e.message, fields);
        } else log.info(e.message, fields);
      }
      // A pod deleted a moment ago may still look alive in the cache: do not send that again.
      const deletes = result.deletes.filter((d) => (recent.get(d.uid) ?? 0) < now - REDELETE_MS);
      for (const d of deletes) recent.set(d.uid, now);
      if (deletes.length > 0) await deleteAll(cluster, deletes, state.settings.maxInFlight);
      opts.onProgress?.(summarize(state, now));
      if (isFinal(state)) break;
      // Wait for the next pod event (or the poll interval), then a moment more to batch events.
      await cache.changed(opts.pollMs);
      await sleep(BATCH_MS);
    }
  } finally {
    await cache?.stop();
  }
  const progress = summarize(state, Date.now());
  log.info("finished", { id: state.id, phase: state.phase, line: progressLine(progress) });
  const result: RolloutResult = state.phase === "done"
    ? "done"
    : state.phase === "rolled-back"
    ? "rolled-back"
    : "rollback-failed";
  return finish({ result, progress });
}

/**
 * The DaemonSet of a feature: `explicit` when given, else the one named like the feature, else
 * the only one in the namespace labelled `raw_container_name=<feature>` (as ks-render labels it).
 * Throws an Error naming what was looked for when there is none.
 */
export async function findDaemonSet(
  rest: KubeRest,
  namespace: string,
  feature: string,
  explicit?: string,
): Promise<string> {
  if (explicit) return explicit;
  const byName = new RolloutCluster(rest, namespace, feature);
  try {
    await byName.getDaemonSet();
    return feature;
  } catch (error) {
    if (!(error instanceof Error) || !/not found/.test(error.message)) throw error;
  }
  const list = await rest.list<DaemonSet>(
    `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/daemonsets`,
    { labelSelector: `raw_container_name=${feature}` },
  );
  if (list.items.length === 1) return list.items[0].metadata.name;
  throw new Error(
    `no daemonset ${namespace}/${feature}` +
      (list.items.length > 1
        ? ` and ${list.items.length} labelled raw_container_name=${feature}: pick one with --daemonset`
        : ` nor one labelled raw_container_name=${feature}`),
  );
}

/** What `ks-rollout status` reports. */
export interface StatusReport {
  feature: string;
  daemonset: string;
  /** undefined when no rollout was ever recorded on the DaemonSet. */
  progress?: RolloutProgress;
}

/** Reads the recorded rollout of a feature's DaemonSet. */
export async function rolloutStatus(
  rest: KubeRest,
  namespace: string,
  daemonset: string,
  feature: string,
): Promise<StatusReport> {
  const cluster = new RolloutCluster(rest, namespace, daemonset);
  const ds = await cluster.getDaemonSet();
  const state = decodeState(ds.metadata.annotations?.[STATE_ANNOTATION]);
  return {
    feature,
    daemonset: `${namespace}/${daemonset}`,
    progress: state ? summarize(state, Date.now()) : undefined,
  };
}
