// Every API call ks-rollout makes, in one place. The long-lived part, the watch of the
// DaemonSet's pods that PodCache keeps open for the whole rollout, goes through
// `@kubernetes/client-node`'s Watch (src/kube/client.ts). The short calls go through the REST
// client (src/kube/rest.ts): a timeout on every call, retries with back-off on 5xx / connection
// errors, Retry-After on 429, and objects exactly as the server sent them. That matters for the
// DaemonSet, which is only ever written whole with PUT carrying the resourceVersion it was read at
// (compare-and-swap: the server answers 409 when anything changed since): client-node's model
// classes keep only the fields they know, so a read-modify-write through them would strip fields
// newer than the library from the template. Pods are only deleted with a uid precondition. The
// class counts the calls it makes, so runs can report API requests per node.
import type { KubeConfig as ClientNodeConfig } from "@kubernetes/client-node";
import { toClientNodeConfig, watchEvents } from "../kube/client.ts";
import { isConflict, isNotFound, KubeApiError, type KubeRest } from "../kube/rest.ts";
import { type PodLike, type PodView, podView } from "./gate.ts";

/** A DaemonSet as ks-rollout reads and writes it (the API object, loosely typed). */
export interface DaemonSet {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid: string;
    resourceVersion: string;
    generation?: number;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    [key: string]: unknown;
  };
  spec: {
    selector: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] };
    template: PodTemplate;
    updateStrategy?: { type?: string };
    [key: string]: unknown;
  };
  status?: { observedGeneration?: number; [key: string]: unknown };
}

/** A pod template (`spec.template`). */
export type PodTemplate = Record<string, unknown> & {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
};

/** A ControllerRevision of the DaemonSet. */
export interface ControllerRevision {
  metadata: {
    name: string;
    uid?: string;
    labels?: Record<string, string>;
    ownerReferences?: { uid?: string; kind?: string; name?: string }[];
  };
  revision: number;
  data?: { spec?: { template?: PodTemplate } };
}

/** A node: name and labels. */
export interface NodeLike {
  metadata: { name: string; labels?: Record<string, string> };
}

/** The DaemonSet was changed since it was read (HTTP 409 on a compare-and-swap write). */
export class WriteConflict extends Error {
  override name = "WriteConflict";
}

/** Pods per page when listing (bounds the memory one response takes). */
const LIST_PAGE = 500;

/** The recorded state on the DaemonSet is not the one this run wrote last (someone else wrote). */
export class StateConflict extends Error {
  override name = "StateConflict";
}

/**
 * Outer bound of one logical call (the REST client's attempts, timeouts and back-offs included):
 * a last resort should a call's own timeout ever fail to fire, so a rollout never hangs on the API.
 */
export const CALL_DEADLINE_MS = 120_000;

/** Rejects when `call` has not settled within {@link CALL_DEADLINE_MS}. */
function bounded<T>(call: Promise<T>, ms = CALL_DEADLINE_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer from the API server within ${ms} ms`)),
      ms,
    );
  });
  return Promise.race([call, deadline]).finally(() => clearTimeout(timer));
}

/** Escapes a key for a JSON Pointer (RFC 6901). */
function pointer(key: string): string {
  return key.replaceAll("~", "~0").replaceAll("/", "~1");
}

/** Renders `matchLabels` as a label selector string. */
export function labelSelector(matchLabels: Record<string, string> | undefined): string {
  return Object.entries(matchLabels ?? {}).map(([k, v]) => `${k}=${v}`).join(",");
}

/** The API surface of one feature's DaemonSet, with a request counter. */
export class RolloutCluster {
  /** API requests made so far (logical calls; the REST client's retries are not counted). */
  requests = 0;
  readonly #dsPath: string;
  readonly #nsApps: string;
  readonly #nsCore: string;
  #watchConfig?: ClientNodeConfig;

  constructor(
    readonly rest: KubeRest,
    readonly namespace: string,
    readonly name: string,
  ) {
    const ns = encodeURIComponent(namespace);
    this.#nsApps = `/apis/apps/v1/namespaces/${ns}`;
    this.#nsCore = `/api/v1/namespaces/${ns}`;
    this.#dsPath = `${this.#nsApps}/daemonsets/${encodeURIComponent(name)}`;
  }

  /** Reads the DaemonSet; throws an Error naming it when it does not exist. */
  async getDaemonSet(): Promise<DaemonSet> {
    this.requests++;
    try {
      return await bounded(this.rest.get<DaemonSet>(this.#dsPath));
    } catch (error) {
      if (isNotFound(error)) {
        throw new Error(`daemonset ${this.namespace}/${this.name} not found`);
      }
      throw error;
    }
  }

  /** Writes the whole DaemonSet back if unchanged since read; throws WriteConflict on 409. */
  async replaceDaemonSet(ds: DaemonSet): Promise<DaemonSet> {
    this.requests++;
    try {
      return await bounded(this.rest.replace<DaemonSet>(this.#dsPath, ds));
    } catch (error) {
      if (isConflict(error)) {
        throw new WriteConflict(`daemonset ${this.namespace}/${this.name} changed since read`);
      }
      throw error;
    }
  }

  /**
   * Replaces the annotation `key` with `next` only if it still holds `expected` (a JSON Patch whose
   * `test` op the server evaluates atomically against the stored object, so status updates by the
   * controller do not conflict but another writer of the state does), optionally setting the pod
   * template in the same write. Throws StateConflict when the annotation changed.
   */
  async patchState(
    key: string,
    expected: string,
    next: string,
    template?: PodTemplate,
  ): Promise<DaemonSet> {
    this.requests++;
    const path = `/metadata/annotations/${pointer(key)}`;
    const ops: unknown[] = [
      { op: "test", path, value: expected },
      { op: "replace", path, value: next },
    ];
    if (template) ops.push({ op: "replace", path: "/spec/template", value: template });
    try {
      return await bounded(this.rest.patch<DaemonSet>(this.#dsPath, ops, { type: "json" }));
    } catch (error) {
      if (error instanceof KubeApiError && (error.status === 422 || error.status === 409)) {
        throw new StateConflict(
          `the rollout state on daemonset ${this.namespace}/${this.name} was changed by someone else`,
        );
      }
      throw error;
    }
  }

  /** The DaemonSet's ControllerRevisions (owned by its uid), oldest revision first. */
  async listRevisions(ds: DaemonSet): Promise<ControllerRevision[]> {
    this.requests++;
    const list = await bounded(
      this.rest.list<ControllerRevision>(`${this.#nsApps}/controllerrevisions`, {
        labelSelector: labelSelector(ds.spec.selector.matchLabels),
      }),
    );
    return list.items
      .filter((cr) => cr.metadata.ownerReferences?.some((o) => o.uid === ds.metadata.uid))
      .sort((a, b) => a.revision - b.revision);
  }

  /** Reads one ControllerRevision by name. */
  async getRevision(name: string): Promise<ControllerRevision> {
    this.requests++;
    return await bounded(
      this.rest.get<ControllerRevision>(
        `${this.#nsApps}/controllerrevisions/${encodeURIComponent(name)}`,
      ),
    );
  }

  /** The DaemonSet's pods (by its selector), read in pages, as views; and the list's version. */
  async listPods(ds: DaemonSet): Promise<{ pods: PodView[]; resourceVersion: string }> {
    const pods: PodView[] = [];
    let cont: string | undefined;
    let resourceVersion = "";
    do {
      this.requests++;
      const page = await bounded(this.rest.list<PodLike>(`${this.#nsCore}/pods`, {
        labelSelector: labelSelector(ds.spec.selector.matchLabels),
        limit: LIST_PAGE,
        continue: cont,
      }));
      for (const pod of page.items) pods.push(podView(pod));
      cont = page.metadata.continue || undefined;
      resourceVersion = page.metadata.resourceVersion ?? "";
    } while (cont);
    return { pods, resourceVersion };
  }

  /**
   * Opens a watch of the DaemonSet's pods from `resourceVersion` (one request), through
   * client-node's Watch with the REST client's credentials.
   */
  watchPods(ds: DaemonSet, resourceVersion: string, signal: AbortSignal) {
    this.requests++;
    this.#watchConfig ??= toClientNodeConfig(this.rest.config);
    return watchEvents<PodLike>(this.#watchConfig, `${this.#nsCore}/pods`, {
      labelSelector: labelSelector(ds.spec.selector.matchLabels),
      resourceVersion,
      allowWatchBookmarks: true,
      timeoutSeconds: 60,
    }, signal);
  }

  /** Nodes (name and labels only), optionally filtered by a label selector; read in pages. */
  async listNodes(selector?: string): Promise<NodeLike[]> {
    const nodes: NodeLike[] = [];
    let cont: string | undefined;
    do {
      this.requests++;
      const page = await bounded(this.rest.list<NodeLike>("/api/v1/nodes", {
        labelSelector: selector,
        limit: LIST_PAGE,
        continue: cont,
      }));
      for (const n of page.items) {
        nodes.push({ metadata: { name: n.metadata.name, labels: n.metadata.labels } });
      }
      cont = page.metadata.continue || undefined;
    } while (cont);
    return nodes;
  }

  /**
   * Deletes a pod only if it still has `uid`. Returns false when it was already gone or replaced
   * (404, or 409 for a failed precondition), true when this call deleted it.
   */
  async deletePod(name: string, uid: string): Promise<boolean> {
    this.requests++;
    try {
      await bounded(this.rest.delete(`${this.#nsCore}/pods/${encodeURIComponent(name)}`, {
        preconditions: uid ? { uid } : undefined,
      }));
      return true;
    } catch (error) {
      if (isNotFound(error) || isConflict(error)) return false;
      if (error instanceof KubeApiError && error.status === 422) return false;
      throw error;
    }
  }
}

/**
 * The DaemonSet's pods kept current by list + watch (an informer in miniature): `snapshot()` is
 * the latest view, `changed(ms)` resolves at the next event or after `ms`. The watch reopens from
 * the last version it saw, and re-lists when the server says that version expired (410).
 */
export class PodCache {
  readonly #pods = new Map<string, PodView>();
  readonly #abort = new AbortController();
  #wake: (() => void) | undefined;
  /** Some event arrived since the last snapshot. */
  #dirty = false;
  #loop: Promise<void> | undefined;
  /** The last error of the watch loop, for the runner's log. */
  lastError?: string;

  constructor(readonly cluster: RolloutCluster, readonly ds: DaemonSet) {}

  /** Lists the pods and starts watching; resolves after the first list. */
  async start(): Promise<void> {
    let rv = await this.#relist();
    this.#loop = (async () => {
      let failures = 0;
      while (!this.#abort.signal.aborted) {
        try {
          for await (const ev of this.cluster.watchPods(this.ds, rv, this.#abort.signal)) {
            const meta = (ev.object as { metadata?: { resourceVersion?: string } }).metadata;
            rv = meta?.resourceVersion ?? rv;
            failures = 0;
            if (ev.type === "BOOKMARK") continue;
            const view = podView(ev.object);
            if (ev.type === "DELETED") this.#pods.delete(view.uid);
            else this.#pods.set(view.uid, view);
            this.#notify();
          }
        } catch (error) {
          if (this.#abort.signal.aborted) return;
          this.lastError = (error as Error).message;
          if (error instanceof KubeApiError && error.status === 410) {
            rv = await this.#relist().catch(() => rv);
            continue;
          }
          failures++;
          await new Promise((r) => setTimeout(r, Math.min(200 * 2 ** failures, 5000)));
        }
      }
    })();
  }

  async #relist(): Promise<string> {
    const { pods, resourceVersion } = await this.cluster.listPods(this.ds);
    this.#pods.clear();
    for (const pod of pods) this.#pods.set(pod.uid, pod);
    this.#notify();
    return resourceVersion;
  }

  #notify() {
    this.#dirty = true;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** The pods as last seen. */
  snapshot(): PodView[] {
    this.#dirty = false;
    return [...this.#pods.values()];
  }

  /** Resolves at once if a pod event came since the last snapshot, else at the next, or after `ms`. */
  changed(ms: number): Promise<void> {
    if (this.#dirty) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /**
   * Stops the watch. Waits at most a second for the stream to close: an aborted watch was seen
   * to stay open under load until the server ended it (timeoutSeconds), and a finished rollout
   * must not wait for that.
   */
  async stop(): Promise<void> {
    this.#abort.abort();
    this.#notify();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#loop?.catch(() => {}),
      new Promise((r) => (timer = setTimeout(r, 1000))),
    ]);
    clearTimeout(timer);
  }
}
