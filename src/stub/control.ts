// The stub's verbs: status (LSB codes, from this node's container runtime), start (make sure the
// pod runs), stop (delete the pod so the DaemonSet controller recreates it at once and the new
// container reads FEATURE again; without the API server, stop the container through the runtime
// so the kubelet starts it again), restart (stop, then start) and wait (block while this node has
// the feature's instance, through API outages and node leaves; or, while its container runs,
// hand the watch on that container's process to the unit's launcher). Every verb but wait is
// bounded.
import type { LogFields, Logger } from "../log.ts";
import { type PodApi, StubApiError } from "./api.ts";
import { hasFeatureContainer, pickPod, type Pod, type PodSummary, summarizePod } from "./pod.ts";
import { type LocalInstance, type NodeRuntime, RUNTIME_STOP_MARGIN_S } from "./runtime.ts";
import { podQuery, type StubTarget, targetName } from "./target.ts";
import { asApiError, sleep, trackPods } from "./track.ts";
import type { Notify } from "./notify.ts";
import { waitStatusText, type WaitView } from "./unit_status.ts";
import { startResidentTrim } from "../resident_pages.ts";

/** LSB status codes (`systemctl status` / init scripts). */
export const STATUS_RUNNING = 0;
/** LSB: program is not running. */
export const STATUS_NOT_RUNNING = 3;
/** LSB: program or service status is unknown (here: the container runtime cannot be asked). */
export const STATUS_UNKNOWN = 4;
/** start/stop/restart could not do their job. */
export const EXIT_FAILED = 1;

/**
 * How long stop/restart/start give the API server to answer before taking the runtime path
 * (ms): a refused or reset connection fails at once, a silent network after this bound.
 */
export const API_PROBE_MS = 3000;
/** How long start watches for a pod when this node has none yet (ms), within its timeout. */
export const NO_POD_WINDOW_MS = 5000;
/** How often start polls the runtime while the API server is unreachable (ms). */
const RUNTIME_POLL_MS = 250;
/** How often wait checks the runtime while the API server is unreachable (ms). */
export const WAIT_RUNTIME_CHECK_MS = 5000;

/** What every verb needs. */
export interface StubContext {
  /** The API server (undefined: not needed, e.g. status with a runtime). */
  api?: PodApi;
  /** This node's container runtime (undefined: none; status then asks the API server). */
  runtime?: NodeRuntime;
  target: StubTarget;
  log: Logger;
  /** Bound of the whole verb (ms). */
  timeoutMs: number;
  /** Tells systemd the unit's status line (sd_notify STATUS=); undefined: not under systemd. */
  notify?: Notify;
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
  /** One line saying why (the pod's condition, or the runtime / API error). */
  detail: string;
  /** Who answered: this node's container runtime, or the API server (no runtime configured). */
  source?: "runtime" | "api";
}

function featurePods(pods: Iterable<Pod>, feature: string): Pod[] {
  return [...pods].filter((p) => hasFeatureContainer(p, feature));
}

/** Lists the target's pods, retrying an unreachable API server with back-off until `deadline`. */
async function listUntil(ctx: StubContext, deadline: number): Promise<Pod[]> {
  const api = needApi(ctx);
  let backoff = ctx.minBackoffMs ?? 200;
  while (true) {
    try {
      const signal = AbortSignal.timeout(Math.max(1, deadline - Date.now()));
      const list = await api.listPods(podQuery(ctx.target), signal);
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

function needApi(ctx: StubContext): PodApi {
  if (!ctx.api) throw new StubApiError("other", "no API server client (no kubeconfig loaded)");
  return ctx.api;
}

function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0];
}

/** How a pod of the runtime reads in a status report (the API's PodSummary shape). */
export function summarizeInstance(instance: LocalInstance): PodSummary {
  const c = instance.container;
  const container = !c
    ? "unknown"
    : c.state === "running"
    ? "running"
    : c.state === "created"
    ? "waiting (created)"
    : c.state === "exited"
    ? "terminated (exited)"
    : "unknown";
  return {
    name: instance.pod.name,
    uid: instance.pod.uid,
    phase: instance.sandboxReady ? "Running" : "Stopped",
    terminating: !instance.sandboxReady,
    container,
    running: instance.sandboxReady && c?.state === "running",
    ready: `${instance.running}/${instance.containers}`,
    restarts: c?.attempt ?? 0,
    since: c && c.createdMs > 0 ? new Date(c.createdMs).toISOString() : undefined,
    image: c?.image || undefined,
  };
}

/**
 * `status`: 0 when the feature container runs in this node's pod, 3 when not, 4 when unknown.
 * Answered by this node's container runtime (no API-server call) when one is configured, else by
 * the API server.
 */
export async function status(ctx: StubContext): Promise<StatusReport> {
  const { target } = ctx;
  const base = {
    feature: target.feature,
    asic: target.asic,
    node: target.node,
    namespace: target.namespace,
  };
  if (ctx.runtime) {
    let instances: LocalInstance[];
    try {
      instances = await ctx.runtime.instances(target);
    } catch (error) {
      return {
        ...base,
        state: "unknown",
        code: STATUS_UNKNOWN,
        detail: `${ctx.runtime.name}: ${errorText(error)}`,
        source: "runtime",
      };
    }
    const best = instances[0];
    if (!best) {
      return {
        ...base,
        state: "not-running",
        code: STATUS_NOT_RUNNING,
        detail: `no ${target.feature} pod in namespace ${target.namespace} on node ${target.node}`,
        source: "runtime",
      };
    }
    return statusOf(base, summarizeInstance(best), "runtime");
  }
  let pods: Pod[];
  try {
    pods = await listUntil(ctx, Date.now() + ctx.timeoutMs);
  } catch (error) {
    const apiError = asApiError(error);
    return {
      ...base,
      state: "unknown",
      code: STATUS_UNKNOWN,
      detail: `API server ${ctx.api?.server ?? ""}: ${apiError.message}`,
      source: "api",
    };
  }
  const pod = pickPod(pods, target.feature);
  if (!pod) {
    return {
      ...base,
      state: "not-running",
      code: STATUS_NOT_RUNNING,
      detail: `no ${target.feature} pod in namespace ${target.namespace} on node ${target.node}`,
      source: "api",
    };
  }
  return statusOf(base, summarizePod(pod, target.feature), "api");
}

function statusOf(
  base: Pick<StatusReport, "feature" | "asic" | "node" | "namespace">,
  summary: PodSummary,
  source: "runtime" | "api",
): StatusReport {
  const running = summary.running;
  return {
    ...base,
    state: running ? "running" : "not-running",
    code: running ? STATUS_RUNNING : STATUS_NOT_RUNNING,
    pod: summary,
    detail: `pod ${summary.phase}${summary.terminating ? ", terminating" : ""}` +
      `, container ${summary.container}`,
    source,
  };
}

/** The runtime's running instance of the target, undefined when none; throws when unreachable. */
async function runningLocally(ctx: StubContext): Promise<LocalInstance | undefined> {
  const best = (await ctx.runtime!.instances(ctx.target))[0];
  return best && best.sandboxReady && best.container?.state === "running" ? best : undefined;
}

/**
 * Asks the API server for the target's pods once, within API_PROBE_MS (and the verb's deadline):
 * the pods, or the error that says the API server is not there (kind "unreachable") or refuses.
 */
async function probeApi(ctx: StubContext, deadline: number): Promise<Pod[] | StubApiError> {
  if (!ctx.api) return new StubApiError("unreachable", "no kubeconfig");
  try {
    const bound = Math.max(1, Math.min(API_PROBE_MS, deadline - Date.now()));
    const list = await ctx.api.listPods(podQuery(ctx.target), AbortSignal.timeout(bound));
    return featurePods(list.items, ctx.target.feature);
  } catch (error) {
    return asApiError(error);
  }
}

/**
 * `start`: succeeds at once when the feature container runs on this node (asked of the runtime,
 * no API call); otherwise watches the API server up to the timeout for the DaemonSet's pod to
 * run. When this node has no pod (not selected by the DaemonSet, or its pod not created yet) it
 * watches NO_POD_WINDOW_MS for one, then returns 0 into "waiting for this node's instance": the
 * unit's `wait` follows the pod when it comes, so a leave never uses up the unit's start limit.
 * With the API server unreachable it watches the runtime instead (the kubelet restarts the
 * container) and returns 0 at the deadline either way. 1 only when our credentials are refused.
 */
export async function start(ctx: StubContext): Promise<number> {
  const { target, log } = ctx;
  const t0 = Date.now();
  const deadline = t0 + ctx.timeoutMs;
  if (ctx.runtime) {
    try {
      const local = await runningLocally(ctx);
      if (local) {
        log.info("already running; nothing to do", {
          pod: local.pod.name,
          seen_by: "runtime",
        });
        return 0;
      }
    } catch (error) {
      log.debug("runtime not answering", { error: errorText(error) });
    }
    // Not running here: ask the API server within the probe's bound before watching it.
    const probed = await probeApi(ctx, deadline);
    if (probed instanceof StubApiError && probed.kind === "unreachable") {
      return await startThroughRuntime(ctx, deadline, probed.message);
    }
  }
  if (!ctx.api) return await startThroughRuntime(ctx, deadline, "no kubeconfig");
  const stopTracking = new AbortController();
  let lists = 0;
  let last: Pod[] = [];
  let lastError: StubApiError | undefined;
  let found: PodSummary | undefined;
  let noPod = false;
  let noPodTimer: ReturnType<typeof setTimeout> | undefined;
  const result = await trackPods(ctx.api, podQuery(target), log, {
    signal: AbortSignal.any([
      AbortSignal.timeout(Math.max(1, deadline - Date.now())),
      stopTracking.signal,
    ]),
    minBackoffMs: ctx.minBackoffMs,
    maxBackoffMs: ctx.maxBackoffMs ?? 2000,
    quiet: Boolean(ctx.runtime),
    onError: (e) => {
      lastError = e;
      // Without the API server the runtime tells whether the kubelet runs it.
      if (ctx.runtime && e.kind === "unreachable") stopTracking.abort();
    },
    decide: (pods) => {
      lists++;
      lastError = undefined;
      last = featurePods(pods.values(), target.feature);
      const live = last.filter((p) => !p.metadata.deletionTimestamp);
      const pod = pickPod(live, target.feature);
      const summary = pod && summarizePod(pod, target.feature);
      if (summary?.running) found = summary;
      if (live.length === 0 && noPodTimer === undefined && !noPod) {
        log.debug("no pod of the feature on this node yet; watching for one", {
          window_ms: Math.min(NO_POD_WINDOW_MS, deadline - Date.now()),
        });
        noPodTimer = setTimeout(() => {
          noPod = true;
          stopTracking.abort();
        }, Math.max(0, Math.min(NO_POD_WINDOW_MS, deadline - Date.now())));
      } else if (live.length > 0 && noPodTimer !== undefined) {
        clearTimeout(noPodTimer);
        noPodTimer = undefined;
      }
      return Boolean(found);
    },
  });
  if (noPodTimer !== undefined) clearTimeout(noPodTimer);
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
  if (lastError?.kind === "unreachable" && ctx.runtime) {
    return await startThroughRuntime(ctx, deadline, lastError.message);
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
      waited_ms: Date.now() - t0,
    });
    return 0;
  }
  log.warn(
    `no ${targetName(target)} pod on node ${target.node}: waiting for this node's instance` +
      " (node not selected by the DaemonSet, or its pod not created yet)",
    { namespace: target.namespace, waited_ms: Date.now() - t0 },
  );
  return 0;
}

/** start without the API server: waits (polling the runtime) until the container runs. */
async function startThroughRuntime(
  ctx: StubContext,
  deadline: number,
  why: string,
): Promise<number> {
  const { log } = ctx;
  const t0 = Date.now();
  let error = "";
  while (ctx.runtime) {
    try {
      const local = await runningLocally(ctx);
      if (local) {
        log.info("running (seen in the container runtime; API server unreachable)", {
          pod: local.pod.name,
          after_ms: Date.now() - t0,
          api_error: why,
        });
        return 0;
      }
      error = "";
    } catch (e) {
      error = errorText(e);
    }
    if (Date.now() + RUNTIME_POLL_MS >= deadline) break;
    await sleep(RUNTIME_POLL_MS);
  }
  log.warn("API server unreachable and the container not running yet; the kubelet owns it", {
    api_error: why,
    ...(error ? { runtime_error: error } : {}),
    waited_ms: Date.now() - t0,
  });
  return 0;
}

/**
 * `stop`: with the API server reachable, deletes the feature's pod on this node (graceful, uid
 * precondition) and waits until it is gone; the DaemonSet controller creates a fresh pod, whose
 * entrypoint reads FEATURE again. When the API server does not answer within API_PROBE_MS, stops
 * the feature container through this node's runtime instead: the kubelet starts it again in the
 * same pod (and the entrypoint reads FEATURE again). Returns 0 when there was nothing to stop, when
 * it is stopped / gone, or still terminating at the deadline; 1 when neither path can act.
 */
export async function stop(ctx: StubContext): Promise<number> {
  const { target, log } = ctx;
  const t0 = Date.now();
  const deadline = t0 + ctx.timeoutMs;
  const probed = await probeApi(ctx, deadline);
  if (probed instanceof StubApiError) {
    if (probed.kind === "unreachable" && ctx.runtime) {
      return await stopThroughRuntime(ctx, deadline, probed.message);
    }
    if (probed.kind !== "unreachable" || !ctx.api) {
      log.error("cannot stop: API server call failed", {
        server: ctx.api?.server,
        error: probed.message,
      });
      return EXIT_FAILED;
    }
  }
  let pods: Pod[];
  try {
    pods = probed instanceof StubApiError ? await listUntil(ctx, deadline) : probed;
  } catch (error) {
    log.error("cannot stop: API server call failed", {
      server: ctx.api?.server,
      error: asApiError(error).message,
    });
    return EXIT_FAILED;
  }
  const api = needApi(ctx);
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
        const deleted = await api.deletePod(
          target.namespace,
          pod.metadata.name,
          pod.metadata.uid,
        );
        log.info(
          deleted ? "deleted pod; Kubernetes recreates it" : "pod already gone",
          { pod: pod.metadata.name, path: "api", why: "API server reachable: graceful delete" },
        );
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
  const result = await trackPods(api, podQuery(target), log, {
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

/** stop without the API server: the feature container through the runtime. */
async function stopThroughRuntime(
  ctx: StubContext,
  deadline: number,
  why: string,
): Promise<number> {
  const { log } = ctx;
  const runtime = ctx.runtime!;
  const t0 = Date.now();
  let instances: LocalInstance[];
  try {
    instances = await runtime.instances(ctx.target);
  } catch (error) {
    log.error("cannot stop: the API server and the container runtime are both unreachable", {
      api_error: why,
      runtime_error: errorText(error),
    });
    return EXIT_FAILED;
  }
  const running = instances.filter((i) => i.container?.state === "running");
  if (running.length === 0) {
    log.info("no running container on this node; nothing to stop", {
      path: "runtime",
      why: `API server unreachable: ${why}`,
    });
    return 0;
  }
  // Leave the call room (RUNTIME_STOP_MARGIN_S) to answer before the verb's own deadline.
  const grace = Math.max(
    1,
    Math.min(30, Math.floor((deadline - Date.now()) / 1000) - RUNTIME_STOP_MARGIN_S),
  );
  for (const instance of running) {
    const id = instance.container!.id;
    log.info("stopping the container through the runtime; the kubelet starts it again", {
      path: "runtime",
      why: `API server unreachable: ${why}`,
      pod: instance.pod.name,
      container: id.slice(0, 13),
      grace_s: grace,
    });
    try {
      await runtime.stopContainer(id, grace);
    } catch (error) {
      log.error("cannot stop: the container runtime refused", {
        container: id.slice(0, 13),
        error: errorText(error),
      });
      return EXIT_FAILED;
    }
  }
  log.info("stopped: the container exited", { after_ms: Date.now() - t0 });
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
  /**
   * How long this node may run only the feature's v1 (sidecar-only) pod before wait returns
   * (ms): the feature went back to its native launcher here.
   */
  graceMs: number;
  /** Watch re-establishment / re-list tuning (tests shorten them). */
  watchTimeoutSeconds?: number;
  relistEveryMs?: number;
  /** How often the runtime is checked while the API server is unreachable (ms). */
  runtimeCheckMs?: number;
  /**
   * Hand the wait to the caller (the unit's launcher) while the followed pod's container runs on
   * this node: wait then calls this with the container's process and returns 0, and the launcher
   * watches that process (no resident Deno) and runs wait again, with `following`, when it ends.
   * Undefined: wait stays resident (no hand-off).
   */
  handOff?: (to: HandOff) => void;
  /** The pod a previous wait handed off on (its container's process has ended since). */
  following?: { name: string; uid: string };
}

/** What wait hands to the launcher: the process to watch, and the pod it belongs to. */
export interface HandOff {
  pid: number;
  podUid: string;
  podName: string;
}

/** How long a followed pod's container must run before the hand-off: one change's events settle. */
export const HAND_OFF_AFTER_MS = 2000;
/** How often a hand-off that found no process yet (the runtime behind the API) is tried again. */
const HAND_OFF_RETRY_MS = 5000;

/**
 * Whether `pid` is still the init process of container `id`: the process exists and its cgroup
 * path names the container (containerd's `cri-containerd-<id>.scope` or `/<id>`, Docker's
 * `docker-<id>.scope` or `/docker/<id>`). A process that ended, or a PID reused since, is not.
 */
export async function isContainerProcess(pid: number, id: string): Promise<boolean> {
  try {
    return (await Deno.readTextFile(`/proc/${pid}/cgroup`)).includes(id);
  } catch {
    return false;
  }
}

/** The pod label selector of everything the feature runs on this node (v1 pods included). */
function allStagesQuery(target: StubTarget) {
  const q = podQuery(target);
  return {
    ...q,
    labelSelector: q.labelSelector.split(",").filter((part) => part !== "raw_container_name")
      .join(","),
  };
}

/**
 * `wait`: blocks while this node has the feature's instance under Kubernetes and follows it
 * across pod replacements (rolling update, another client's delete), API-server outages of any
 * length (the runtime is checked meanwhile: the kubelet keeps the container running) and node
 * leaves (no pod: "waiting for this node's instance" until the DaemonSet's pod comes back). It
 * returns 0 only when the instance is gone for good — the node runs the feature's v1
 * (sidecar-only) pod and no feature pod for `graceMs`, i.e. the feature went back to its native
 * launcher on this node — or on SIGTERM. With `opts.handOff` it also returns 0 once the followed
 * pod's container has run for HAND_OFF_AFTER_MS (API server reachable), naming its process.
 */
export async function wait(ctx: StubContext, opts: WaitOptions): Promise<number> {
  const { target, log } = ctx;
  const api = needApi(ctx);
  const gone = new AbortController();
  let goneTimer: ReturnType<typeof setTimeout> | undefined;
  let noPodTimer: ReturnType<typeof setTimeout> | undefined;
  let following: string | undefined = opts.following?.uid;
  let state: "following" | "no-pod" | "v1" | undefined;
  let handedOff: HandOff | undefined;
  let handOffFor: string | undefined;
  let goneSince: number | undefined;
  let apiDown = false;
  let absentSince: number | undefined;
  let followingName: string | undefined = opts.following?.name;
  // What systemctl status shows (STATUS=), refreshed on every change.
  const view: WaitView = {
    name: targetName(target),
    namespace: target.namespace,
    node: target.node,
    graceMs: opts.graceMs,
  };
  const refresh = () => ctx.notify?.(waitStatusText(view));
  const stopAll = AbortSignal.any([opts.signal, gone.signal]);
  const checker = ctx.runtime
    ? watchRuntime(ctx, () => apiDown, stopAll, opts, (local) => {
      view.local = local;
      if (apiDown) refresh();
    })
    : undefined;
  const handOff = ctx.runtime && opts.handOff ? opts.handOff : undefined;
  let handingOff: Promise<void> | undefined;
  // Resident for as long as there is nothing to hand off (an API outage, a leave, a pod being
  // replaced): let go of the start-up's file pages like the pod's resident tools.
  const stopTrim = startResidentTrim(log);
  /**
   * Once the followed pod's container has run for HAND_OFF_AFTER_MS, finds its process through the
   * runtime and ends the tracking with it, unless anything changed meanwhile (another pod, the API
   * server gone, the container not running).
   */
  const tryHandOff = async (uid: string, podName: string) => {
    const still = () =>
      !stopAll.aborted && following === uid && state === "following" && !apiDown &&
      view.pod?.container === "running";
    await sleep(HAND_OFF_AFTER_MS, stopAll);
    while (still()) {
      try {
        const local = (await ctx.runtime!.instances(target)).find((i) =>
          i.pod.uid === uid && i.container?.state === "running"
        );
        const id = local?.container?.id;
        const pid = id ? await ctx.runtime!.containerPid(id) : undefined;
        if (id && pid && still() && await isContainerProcess(pid, id)) {
          handedOff = { pid, podUid: uid, podName };
          gone.abort();
          return;
        }
        log.debug("no process to hand the wait to yet", { pod: podName, container: id ?? "" });
      } catch (error) {
        log.debug("hand-off: the runtime did not answer", { error: errorText(error) });
      }
      await sleep(HAND_OFF_RETRY_MS, stopAll);
    }
    if (handOffFor === uid) handOffFor = undefined;
  };
  const result = await trackPods(api, allStagesQuery(target), log, {
    signal: stopAll,
    watchTimeoutSeconds: opts.watchTimeoutSeconds,
    relistEveryMs: opts.relistEveryMs,
    minBackoffMs: ctx.minBackoffMs,
    maxBackoffMs: ctx.maxBackoffMs,
    onError: (e) => {
      if (e.kind !== "unreachable" && e.kind !== "denied") return;
      apiDown = true;
      view.apiDownSince ??= Date.now();
      view.apiDenied = e.kind === "denied";
      refresh();
    },
    decide: (pods) => {
      apiDown = false;
      view.apiDownSince = undefined;
      view.local = undefined;
      const all = [...pods.values()];
      const pod = pickPod(all.filter((p) => p.metadata.labels?.raw_container_name), target.feature);
      if (noPodTimer !== undefined) clearTimeout(noPodTimer);
      noPodTimer = undefined;
      if (pod) {
        if (goneTimer !== undefined) clearTimeout(goneTimer);
        goneTimer = undefined;
        goneSince = undefined;
        absentSince = undefined;
        const summary = summarizePod(pod, target.feature);
        Object.assign(view, {
          pod: {
            name: summary.name,
            phase: summary.phase,
            container: summary.container,
            terminating: summary.terminating,
          },
          lostPod: undefined,
          noPodSince: undefined,
          v1Since: undefined,
        });
        followingName = pod.metadata.name;
        refresh();
        if (pod.metadata.uid !== following) {
          log.info(
            following
              ? "following the replacement pod"
              : state === "no-pod"
              ? "this node's instance is back; following it"
              : "waiting while the pod exists",
            { pod: pod.metadata.name },
          );
          following = pod.metadata.uid;
        } else if (state === undefined && opts.following) {
          log.info("the container's process ended; following the pod again", {
            pod: pod.metadata.name,
            container: summary.container,
          });
        }
        state = "following";
        if (handOff && summary.running && !summary.terminating && handOffFor !== following) {
          handOffFor = following;
          handingOff = tryHandOff(following, pod.metadata.name);
        }
        return false;
      }
      view.pod = undefined;
      absentSince ??= Date.now();
      const v1 = all.some((p) => !p.metadata.deletionTimestamp);
      if (v1) {
        if (state !== "v1") {
          state = "v1";
          goneSince = Date.now();
          view.v1Since = goneSince;
          refresh();
          if (opts.graceMs <= 0) return true;
          log.info(
            "only the feature's v1 pod on this node; returning unless a feature pod appears",
            {
              grace_ms: opts.graceMs,
            },
          );
          goneTimer = setTimeout(() => gone.abort(), opts.graceMs);
        }
        return false;
      }
      if (goneTimer !== undefined) clearTimeout(goneTimer);
      goneTimer = undefined;
      view.v1Since = undefined;
      if (state !== "no-pod") view.lostPod = followingName;
      refresh();
      // A replacement normally follows within the grace; only a longer absence is worth a line.
      if (state !== "no-pod" && noPodTimer === undefined) {
        noPodTimer = setTimeout(() => {
          noPodTimer = undefined;
          state = "no-pod";
          following = undefined;
          followingName = undefined;
          view.lostPod = undefined;
          view.noPodSince = absentSince;
          if (!apiDown) refresh();
          log.info(
            "no pod on this node: waiting for this node's instance (node not selected by the" +
              " DaemonSet, or its pod being created); the unit stays active",
            { node: target.node, after_ms: opts.graceMs },
          );
        }, Math.max(0, opts.graceMs));
      }
      return false;
    },
  });
  stopTrim();
  if (goneTimer !== undefined) clearTimeout(goneTimer);
  if (noPodTimer !== undefined) clearTimeout(noPodTimer);
  await checker;
  await handingOff;
  if (handedOff && handOff && !opts.signal.aborted) {
    view.pod = view.pod && { ...view.pod, pid: handedOff.pid };
    refresh();
    log.info(
      "the container runs: the launcher watches its process and runs wait again when it ends",
      { pod: handedOff.podName, pid: handedOff.pid },
    );
    handOff(handedOff);
    return 0;
  }
  if (!handedOff && (result === "done" || gone.signal.aborted)) {
    log.info(
      "the pod is gone; returning so systemd sees the service end: the feature runs as v1 on this node",
      {
        node: target.node,
        gone_ms: goneSince === undefined ? 0 : Date.now() - goneSince,
      },
    );
  } else {
    log.info("wait ended by signal");
  }
  return 0;
}

/**
 * While the API server is unreachable, checks the runtime every `runtimeCheckMs` and logs what
 * the kubelet does with the container (one line per change). It never ends wait.
 */
async function watchRuntime(
  ctx: StubContext,
  apiDown: () => boolean,
  signal: AbortSignal,
  opts: WaitOptions,
  onLocal: (local: NonNullable<WaitView["local"]>) => void,
): Promise<void> {
  const every = opts.runtimeCheckMs ?? WAIT_RUNTIME_CHECK_MS;
  let last = "";
  while (!signal.aborted) {
    await sleep(every, signal);
    if (signal.aborted) break;
    if (!apiDown()) {
      last = "";
      continue;
    }
    let now: NonNullable<WaitView["local"]>["state"];
    let fields: LogFields = {};
    let local: LocalInstance | undefined;
    try {
      local = await runningLocally(ctx);
      now = local ? "running" : "not-running";
      if (local) fields = { pod: local.pod.name, restarts: local.container?.attempt };
    } catch (error) {
      now = "unknown";
      fields = { error: errorText(error) };
    }
    onLocal({ state: now, pod: local?.pod.name, restarts: local?.container?.attempt });
    if (now === last) continue;
    last = now;
    const text = now === "running"
      ? "API server unreachable; the container runs on this node: the unit stays active"
      : now === "not-running"
      ? "API server unreachable; no running container on this node (the kubelet restarts it):" +
        " the unit stays active"
      : "API server and container runtime unreachable; the unit stays active";
    ctx.log.info(text, fields);
  }
}
