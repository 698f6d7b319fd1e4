// The stub's PodApi over the lean `KubeRest` client (fetch + mTLS, ~100 ms start-up): list,
// graceful delete with a uid precondition, and watch of `sonic` pods; maps the client's errors to
// the kinds the stub decides on.
import { KubeApiError, type KubeRest, KubeUnreachableError, resourcePath } from "../kube/rest.ts";
import { type PodApi, type PodList, type PodWatchEvent, StubApiError } from "./api.ts";
import type { Pod } from "./pod.ts";
import type { PodQuery } from "./target.ts";

/** Maps a KubeRest error (or an abort) to a StubApiError with a one-line message. */
export function toStubError(error: unknown): StubApiError {
  if (error instanceof StubApiError) return error;
  const message = (error instanceof Error ? error.message : String(error)).split("\n")[0];
  if (error instanceof KubeApiError) {
    const s = error.status;
    const kind = s === 401 || s === 403
      ? "denied"
      : s === 410
      ? "expired"
      : s === 404
      ? "not-found"
      : s === 409
      ? "conflict"
      : s >= 500 || s === 429
      ? "unreachable"
      : "other";
    return new StubApiError(kind, message, s);
  }
  if (error instanceof KubeUnreachableError) return new StubApiError("unreachable", message);
  // DOMException TimeoutError/AbortError from a caller's deadline, fetch TypeErrors...
  return new StubApiError("unreachable", message || "aborted");
}

/**
 * A PodApi on `rest`. `requestTimeoutMs` bounds each attempt; `retries` is KubeRest's own retry
 * count per call (the stub's verbs add their deadline-bounded retries on top).
 */
export function kubePodApi(
  rest: KubeRest,
  opts: { requestTimeoutMs?: number; retries?: number } = {},
): PodApi {
  const timeoutMs = opts.requestTimeoutMs;
  const retries = opts.retries ?? 1;
  const collection = (ns: string) => resourcePath({ resource: "pods", namespace: ns });
  return {
    server: rest.config.server,
    async listPods(query: PodQuery, signal?: AbortSignal): Promise<PodList> {
      try {
        const list = await rest.list<Pod>(collection(query.namespace), {
          labelSelector: query.labelSelector,
          fieldSelector: query.fieldSelector,
          timeoutMs,
          retries,
          signal,
        });
        return { items: list.items ?? [], resourceVersion: list.metadata?.resourceVersion ?? "" };
      } catch (error) {
        throw toStubError(error);
      }
    },
    async deletePod(namespace: string, name: string, uid: string): Promise<boolean> {
      try {
        await rest.delete(resourcePath({ resource: "pods", namespace, name }), {
          preconditions: { uid },
          timeoutMs,
          retries,
        });
        return true;
      } catch (error) {
        const e = toStubError(error);
        // 404: already gone; 409: the uid no longer matches, i.e. it was replaced already.
        if (e.kind === "not-found" || e.kind === "conflict") return false;
        throw e;
      }
    },
    async *watchPods(
      query: PodQuery,
      resourceVersion: string,
      timeoutSeconds: number,
      signal: AbortSignal,
    ): AsyncIterable<PodWatchEvent> {
      try {
        for await (
          const event of rest.watch<Pod>(collection(query.namespace), {
            labelSelector: query.labelSelector,
            fieldSelector: query.fieldSelector,
            resourceVersion,
            timeoutSeconds,
            allowWatchBookmarks: true,
            timeoutMs,
            retries,
            signal,
          })
        ) {
          yield event;
        }
      } catch (error) {
        if (signal.aborted) return;
        throw toStubError(error);
      }
    },
  };
}
