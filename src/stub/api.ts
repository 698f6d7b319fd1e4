// The three API-server calls ks-stub makes (list, delete, watch pods), as one small interface, and
// the error kinds the stub decides on. `kube_pods.ts` implements it over the lean `KubeRest`
// client; the stub's logic sees nothing else of Kubernetes.
import type { Pod } from "./pod.ts";
import type { PodQuery } from "./target.ts";

/** Why an API call failed, as far as the stub's decisions go. */
export type ApiErrorKind =
  /** Connection refused/reset, timeout, TLS failure, 5xx, 429: the API server is not answering. */
  | "unreachable"
  /** 401/403: our credentials or RBAC; retrying will not help soon. */
  | "denied"
  /** 410: the resourceVersion is too old; list again. */
  | "expired"
  /** 404 on a named object. */
  | "not-found"
  /** 409: a precondition (the pod's uid) no longer holds. */
  | "conflict"
  /** Anything else (400, 422 ...). */
  | "other";

/** An API failure with a one-line message naming the server and the call. */
export class StubApiError extends Error {
  override name = "StubApiError";
  constructor(readonly kind: ApiErrorKind, message: string, readonly status?: number) {
    super(message);
  }
}

/** One event of a pod watch (BOOKMARK events carry only metadata.resourceVersion). */
export interface PodWatchEvent {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: Pod | { kind?: string; code?: number; message?: string; metadata?: never };
}

/** A list result: the pods and the collection's resourceVersion to watch from. */
export interface PodList {
  items: Pod[];
  resourceVersion: string;
}

/** The API-server calls ks-stub needs. Every call is bounded by the implementation's timeout. */
export interface PodApi {
  /** The API server URL, for messages. */
  readonly server: string;
  /** Lists the pods matching `query`; throws StubApiError. */
  listPods(query: PodQuery, signal?: AbortSignal): Promise<PodList>;
  /**
   * Deletes the pod gracefully, only if it still has `uid` (a replacement with the same name is
   * never deleted). Returns false when it was already gone; throws StubApiError otherwise.
   */
  deletePod(namespace: string, name: string, uid: string): Promise<boolean>;
  /**
   * Watches the pods matching `query` from `resourceVersion`; the server ends the stream after
   * about `timeoutSeconds`, `signal` ends it early. Throws StubApiError (kind "expired" for 410).
   */
  watchPods(
    query: PodQuery,
    resourceVersion: string,
    timeoutSeconds: number,
    signal: AbortSignal,
  ): AsyncIterable<PodWatchEvent>;
}
