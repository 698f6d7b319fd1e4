// Follows the target's pods on this node through the API server: list, then watch from the
// list's resourceVersion, apply each event to a local map and let the caller decide after every
// change. Re-watches when the server closes the stream, re-lists on 410 and at a bounded interval,
// and survives API-server outages (back-off, one log line when it goes away, one when it is back).
import type { Logger } from "../log.ts";
import { type PodApi, StubApiError } from "./api.ts";
import type { Pod } from "./pod.ts";
import type { PodQuery } from "./target.ts";

/** Tuning of a tracking loop; the defaults suit `wait` on a switch. */
export interface TrackOptions {
  /** Ends tracking (returns "aborted"). */
  signal: AbortSignal;
  /** Server-side watch timeout (s); the stream is re-established after it. Default 240. */
  watchTimeoutSeconds?: number;
  /** List again at least this often even when the watch is healthy (ms). Default 600000. */
  relistEveryMs?: number;
  /** First back-off after a failed call (ms), doubled up to maxBackoffMs. Default 250. */
  minBackoffMs?: number;
  /** Back-off cap (ms). Default 15000. */
  maxBackoffMs?: number;
  /** Called with the current pods (by uid) after the list and after every event; true = done. */
  decide(pods: ReadonlyMap<string, Pod>): boolean;
  /** Called for each failed call (after the first failure, once per outage is logged). */
  onError?(error: StubApiError): void;
  /** Log an outage at debug level only (the caller says what it does about it). */
  quiet?: boolean;
}

/** Turns anything thrown by an API call into a StubApiError. */
export function asApiError(error: unknown): StubApiError {
  if (error instanceof StubApiError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new StubApiError("unreachable", message.split("\n")[0]);
}

/** Sleeps `ms`, returning early (without throwing) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Tracks the pods matching `query` until `decide` returns true ("done") or the signal aborts
 * ("aborted"). API failures never end it: they are reported to `onError` / the log and retried
 * with capped back-off (a 410 re-lists at once).
 */
export async function trackPods(
  api: PodApi,
  query: PodQuery,
  log: Logger,
  opts: TrackOptions,
): Promise<"done" | "aborted"> {
  const watchTimeout = opts.watchTimeoutSeconds ?? 240;
  const relistEvery = opts.relistEveryMs ?? 600_000;
  const minBackoff = opts.minBackoffMs ?? 250;
  const maxBackoff = opts.maxBackoffMs ?? 15_000;
  let backoff = minBackoff;
  let down: StubApiError | undefined;
  const pods = new Map<string, Pod>();

  while (!opts.signal.aborted) {
    try {
      const list = await api.listPods(query, opts.signal);
      if (down) {
        log.info("API server reachable again", { server: api.server, after: down.message });
        down = undefined;
      }
      backoff = minBackoff;
      pods.clear();
      for (const pod of list.items) pods.set(pod.metadata.uid, pod);
      if (opts.decide(pods)) return "done";
      let rv = list.resourceVersion;
      const listedAt = Date.now();
      while (!opts.signal.aborted && Date.now() - listedAt < relistEvery) {
        // A silent network (no FIN) must not hang the stream forever: bound it locally too.
        const guard = AbortSignal.any([
          opts.signal,
          AbortSignal.timeout((watchTimeout + 15) * 1000),
        ]);
        const watchedAt = Date.now();
        for await (const event of api.watchPods(query, rv, watchTimeout, guard)) {
          if (event.type === "ERROR") {
            const status = event.object as { code?: number; message?: string };
            if (status.code === 410) throw new StubApiError("expired", status.message ?? "410");
            throw new StubApiError("other", `watch error: ${status.message ?? "unknown"}`);
          }
          const pod = event.object as Pod;
          if (pod.metadata?.resourceVersion) rv = pod.metadata.resourceVersion;
          if (event.type === "BOOKMARK") continue;
          if (event.type === "DELETED") pods.delete(pod.metadata.uid);
          else pods.set(pod.metadata.uid, pod);
          if (opts.decide(pods)) return "done";
        }
        // A stream the server ends at once, again and again, must not become a busy loop.
        if (Date.now() - watchedAt < 1000) await sleep(minBackoff, opts.signal);
      }
    } catch (error) {
      if (opts.signal.aborted) break;
      const apiError = asApiError(error);
      if (apiError.kind === "expired") {
        log.debug("watch expired; listing again", { detail: apiError.message });
        continue;
      }
      opts.onError?.(apiError);
      if (!down) {
        (opts.quiet ? log.debug : log.warn).call(log, "API server call failed; retrying", {
          server: api.server,
          kind: apiError.kind,
          error: apiError.message,
        });
        down = apiError;
      }
      await sleep(backoff, opts.signal);
      backoff = Math.min(maxBackoff, backoff * 2);
    }
  }
  return "aborted";
}
