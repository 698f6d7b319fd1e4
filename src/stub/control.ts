// The stub's verbs: status (LSB codes), start (make sure the pod runs), stop (delete the pod so the
// DaemonSet controller recreates it at once and the new container reads FEATURE again), restart
// (stop, then start) and wait (block while the feature has a pod on this node). Every verb is
// bounded in time; API failures are retried with back-off inside that bound.
import type { Logger } from "../log.ts";
import { type PodApi, type StubApiError } from "./api.ts";
import { hasFeatureContainer, pickPod, type Pod, type PodSummary, summarizePod } from "./pod.ts";
import { podQuery, type StubTarget, targetName } from "./target.ts";
import { asApiError, sleep, trackPods } from "./track.ts";

/** LSB status codes (`systemctl status` / init scripts). */
export const STATUS_RUNNING = 0;
/** LSB: program is not running. */
export const STATUS_NOT_RUNNING = 3;
/** LSB: program or service status is unknown (here: the API server cannot be reached). */
export const STATUS_UNKNOWN = 4;
/** start/stop/restart could not do their job. */
export const EXIT_FAILED = 1;

/** What every verb needs. */
export interface StubContext {
  api: PodApi;
  target: StubTarget;
  log: Logger;
  /** Bound of the whole verb (ms). */
  timeoutMs: number;
  /** Tracking tuning (tests shorten the back-off); see TrackOptions. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/** The outcome of `status`. */
export interface StatusReport {
  feature: string;
  asic?: string;
  node: string;
  namespace: string;
  state: "running" | "not-running" | "unknown";
  code: number;
  pod?: PodSummary;
  /** One line saying why (the pod's condition, or the API error). */
  detail: string;
}

function featurePods(pods: Iterable<Pod>, feature: string): Pod[] {
  return [...pods].filter((p) => hasFeatureContainer(p, feature));
}

/** Lists the target's pods, retrying an unreachable API server with back-off until `deadline`. */
async function listUntil(ctx: StubContext, deadline: number): Promise<Pod[]> {
  let backoff = ctx.minBackoffMs ?? 200;
  while (true) {
    try {
      const signal = AbortSignal.timeout(Math.max(1, deadline - Date.now()));
      const list = await ctx.api.listPods(podQuery(ctx.target), signal);
      return featurePods(list.items, ctx.target.feature);
    } catch (error) {
      const apiError = asApiError(error);
      if (apiError.kind !== "unreachable" || Date.now() + backoff >= deadline) throw apiError;
      ctx.log.debug("list failed; retrying", { error: apiError.message });
      await sleep(backoff);
      backoff = Math.min(ctx.maxBackoffMs ?? 2000, backoff * 2);
    }
  }
}

/** `status`: 0 when the feature container runs in this node's pod, 3 when not, 4 when unknown. */
export async function status(ctx: StubContext): Promise<StatusReport> {
  const { target } = ctx;
  const base = {
    feature: target.feature,
    asic: target.asic,
    node: target.node,
    namespace: target.namespace,
  };
  let pods: Pod[];
  try {
    pods = await listUntil(ctx, Date.now() + ctx.timeoutMs);
  } catch (error) {
    const apiError = asApiError(error);
    return {
      ...base,
      state: "unknown",
      code: STATUS_UNKNOWN,
      detail: `API server ${ctx.api.server}: ${apiError.message}`,
    };
  }
  const pod = pickPod(pods, target.feature);
  if (!pod) {
    return {
      ...base,
      state: "not-running",
      code: STATUS_NOT_RUNNING,
      detail: `no ${target.feature} pod in namespace ${target.namespace} on node ${target.node}`,
    };
  }
  const summary = summarizePod(pod, target.feature);
  const running = summary.running;
  return {
    ...base,
    state: running ? "running" : "not-running",
    code: running ? STATUS_RUNNING : STATUS_NOT_RUNNING,
    pod: summary,
    detail: `pod ${summary.phase}${summary.terminating ? ", terminating" : ""}` +
      `, container ${summary.container}`,
  };
}

/**
 * `start`: succeeds at once when a live pod of the feature runs on this node; otherwise waits
 * (watching) up to the timeout for the DaemonSet's pod to run. Returns 0 when it runs, when a pod
 * exists but is still starting at the deadline (Kubernetes owns its start), and when the API
 * server stays unreachable (an API blip must not fail the unit); 1 when the API server answers
 * and there is no pod for this node, or our credentials are refused.
 */
export async function start(ctx: StubContext): Promise<number> {
  const { target, log } = ctx;
  const deadline = AbortSignal.timeout(ctx.timeoutMs);
  let lists = 0;
  let last: Pod[] = [];
  let lastError: StubApiError | undefined;
  let found: PodSummary | undefined;
  const t0 = Date.now();
  const result = await trackPods(ctx.api, podQuery(target), log, {
    signal: deadline,
    minBackoffMs: ctx.minBackoffMs,
    maxBackoffMs: ctx.maxBackoffMs ?? 2000,
    onError: (e) => (lastError = e),
    decide: (pods) => {
      lists++;
      lastError = undefined;
      last = featurePods(pods.values(), target.feature);
      const live = last.filter((p) => !p.metadata.deletionTimestamp);
      const pod = pickPod(live, target.feature);
      const summary = pod && summarizePod(pod, target.feature);
      if (summary?.running) found = summary;
      return Boolean(found);
    },
  });
  if (result === "done" && found) {
    log.info(lists === 1 ? "already running; nothing to do" : "running", {
      pod: found.name,
      after_ms: Date.now() - t0,
    });
    return 0;
  }
  if (lastError?.kind === "denied") {
    log.error("cannot start: the API server refused our credentials", {
      error: lastError.message,
    });
    return EXIT_FAILED;
  }
  if (lastError || lists === 0) {
    log.warn("API server unreachable; the container stays Kubernetes' to run", {
      server: ctx.api.server,
      error: lastError?.message,
    });
    return 0;
  }
  const live = last.filter((p) => !p.metadata.deletionTimestamp);
  if (live.length > 0) {
    const s = summarizePod(live[0], target.feature);
    log.warn("pod not running yet; Kubernetes keeps starting it", {
      pod: s.name,
      phase: s.phase,
      container: s.container,
      waited_ms: ctx.timeoutMs,
    });
    return 0;
  }
  log.error(
    `no ${targetName(target)} pod on node ${target.node} after ${ctx.timeoutMs} ms` +
      " (is the node opted in to the DaemonSet?)",
    { namespace: target.namespace },
  );
  return EXIT_FAILED;
}

/**
 * `stop`: deletes the feature's pod on this node (graceful, uid precondition) and waits until it
 * is gone; the DaemonSet controller creates a fresh pod, whose entrypoint reads FEATURE again
 * (idle when disabled). Returns 0 when there was no pod, when it is gone, or when it is still
 * terminating at the deadline (the deletion is committed); 1 when the API server cannot be
 * reached or refuses the deletion.
 */
export async function stop(ctx: StubContext): Promise<number> {
  const { target, log } = ctx;
  const t0 = Date.now();
  const deadline = t0 + ctx.timeoutMs;
  let pods: Pod[];
  try {
    pods = await listUntil(ctx, deadline);
  } catch (error) {
    log.error("cannot stop: API server call failed", {
      server: ctx.api.server,
      error: asApiError(error).message,
    });
    return EXIT_FAILED;
  }
  if (pods.length === 0) {
    log.info("no pod on this node; nothing to stop", { node: target.node });
    return 0;
  }
  const uids = new Set(pods.map((p) => p.metadata.uid));
  for (const pod of pods) {
    if (pod.metadata.deletionTimestamp) continue;
    let backoff = ctx.minBackoffMs ?? 200;
    while (true) {
      try {
        const deleted = await ctx.api.deletePod(
          target.namespace,
          pod.metadata.name,
          pod.metadata.uid,
        );
        log.info(deleted ? "deleted pod; Kubernetes recreates it" : "pod already gone", {
          pod: pod.metadata.name,
        });
        break;
      } catch (error) {
        const apiError = asApiError(error);
        if (apiError.kind !== "unreachable" || Date.now() + backoff >= deadline) {
          log.error("cannot stop: deleting the pod failed", {
            pod: pod.metadata.name,
            error: apiError.message,
          });
          return EXIT_FAILED;
        }
        await sleep(backoff);
        backoff = Math.min(2000, backoff * 2);
      }
    }
  }
  const result = await trackPods(ctx.api, podQuery(target), log, {
    signal: AbortSignal.timeout(Math.max(1, deadline - Date.now())),
    minBackoffMs: ctx.minBackoffMs,
    maxBackoffMs: ctx.maxBackoffMs ?? 2000,
    decide: (now) => ![...now.keys()].some((uid) => uids.has(uid)),
  });
  if (result === "done") {
    log.info("stopped: the old pod is gone", { after_ms: Date.now() - t0 });
  } else {
    log.warn("old pod still terminating at the deadline; Kubernetes finishes it", {
      waited_ms: ctx.timeoutMs,
    });
  }
  return 0;
}

/** `restart`: stop, then start (each bounded by the timeout). */
export async function restart(ctx: StubContext): Promise<number> {
  const stopped = await stop(ctx);
  if (stopped !== 0) return stopped;
  return await start(ctx);
}

/** Options of `wait`. */
export interface WaitOptions {
  /** Ends the wait (SIGTERM from systemd); wait then returns 0. */
  signal: AbortSignal;
  /** How long the feature may have no pod on this node before wait returns (ms). */
  graceMs: number;
  /** Watch re-establishment / re-list tuning (tests shorten them). */
  watchTimeoutSeconds?: number;
  relistEveryMs?: number;
}

/**
 * `wait`: blocks while the feature has a pod on this node, following a replacement pod (rolling
 * update, another client's delete) that appears within the grace period, and returns 0 once no
 * pod has existed for `graceMs`. An unreachable API server never ends it: the container keeps
 * running under the kubelet, so the unit stays active and the watch is re-established.
 */
export async function wait(ctx: StubContext, opts: WaitOptions): Promise<number> {
  const { target, log } = ctx;
  const gone = new AbortController();
  let goneTimer: ReturnType<typeof setTimeout> | undefined;
  let following: string | undefined;
  let goneSince: number | undefined;
  const result = await trackPods(ctx.api, podQuery(target), log, {
    signal: AbortSignal.any([opts.signal, gone.signal]),
    watchTimeoutSeconds: opts.watchTimeoutSeconds,
    relistEveryMs: opts.relistEveryMs,
    minBackoffMs: ctx.minBackoffMs,
    maxBackoffMs: ctx.maxBackoffMs,
    decide: (pods) => {
      const pod = pickPod([...pods.values()], target.feature);
      if (pod) {
        if (goneTimer !== undefined) clearTimeout(goneTimer);
        goneTimer = undefined;
        goneSince = undefined;
        if (pod.metadata.uid !== following) {
          log.info(following ? "following the replacement pod" : "waiting while the pod exists", {
            pod: pod.metadata.name,
          });
          following = pod.metadata.uid;
        }
        return false;
      }
      if (goneSince === undefined) {
        goneSince = Date.now();
        if (opts.graceMs <= 0) return true;
        log.info("no pod on this node; returning unless one appears", {
          grace_ms: opts.graceMs,
        });
        goneTimer = setTimeout(() => gone.abort(), opts.graceMs);
      }
      return false;
    },
  });
  if (goneTimer !== undefined) clearTimeout(goneTimer);
  if (result === "done" || gone.signal.aborted) {
    log.info("the pod is gone; returning so systemd sees the service end", {
      node: target.node,
      gone_ms: goneSince === undefined ? 0 : Date.now() - goneSince,
    });
  } else {
    log.info("wait ended by signal");
  }
  return 0;
}
