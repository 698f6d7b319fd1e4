// The one place that builds `@kubernetes/client-node` clients, for what runs long enough that its
// start-up (about 300 ms more than rest.ts) does not matter and a connection stays open: the pod
// watch ks-rollout keeps for a whole rollout, and the sandbox harness's and the lab's waits. From
// the same kubeconfig resolution as the REST client (kubeconfig.ts): `toClientNodeConfig()` gives
// the client-node KubeConfig, `watchEvents()` turns its `Watch` into an async iterator of the
// objects as the server sent them, with rest.ts's errors (KubeApiError with the status, 410 for an
// expired version; KubeUnreachableError), and `watchUntil()` waits for a condition by watch instead
// of polling. ks-stub, spawned on every `systemctl` call, uses rest.ts only.
import "./node_warnings.ts";
import { KubeConfig as ClientNodeConfig, Watch } from "@kubernetes/client-node";
import { type KubeConfig, KubeconfigError } from "./kubeconfig.ts";
import { KubeApiError, KubeUnreachableError, type WatchEvent } from "./rest.ts";

/**
 * The same endpoint and credentials as a client-node KubeConfig (inline data, no file paths).
 * Throws KubeconfigError for what rest.ts refuses too (skipping TLS verification).
 */
export function toClientNodeConfig(config: KubeConfig): ClientNodeConfig {
  if (config.insecureSkipTlsVerify && config.server.startsWith("https:")) {
    throw new KubeconfigError(
      `${config.source}: insecure-skip-tls-verify is not supported;` +
        " set certificate-authority(-data) for the cluster",
    );
  }
  const kc = new ClientNodeConfig();
  const b64 = (text?: string) =>
    text === undefined ? undefined : btoa(String.fromCharCode(...new TextEncoder().encode(text)));
  kc.loadFromOptions({
    clusters: [{
      name: "ks",
      server: config.server,
      caData: b64(config.caPem),
      // client-node refuses plain http:// unless told to skip verification; there is none to skip.
      skipTLSVerify: config.server.startsWith("http:"),
    }],
    users: [{
      name: "ks",
      certData: b64(config.certPem),
      keyData: b64(config.keyPem),
      // A token read from a file is re-read by client-node's file auth (at most once a minute).
      ...(config.tokenFile
        ? { authProvider: { name: "tokenFile", config: { tokenFile: config.tokenFile } } }
        : { token: config.token }),
      username: config.username,
      password: config.password,
    }],
    contexts: [{ name: "ks", cluster: "ks", user: "ks", namespace: config.namespace }],
    currentContext: "ks",
  });
  return kc;
}

/** Query parameters of a watch (`watch=true` is added). */
export interface WatchQuery {
  labelSelector?: string;
  fieldSelector?: string;
  resourceVersion?: string;
  allowWatchBookmarks?: boolean;
  /** The server ends the stream after this many seconds. */
  timeoutSeconds?: number;
}

/**
 * Watches `path` (a collection, e.g. `/api/v1/namespaces/sonic/pods`) with client-node's `Watch`
 * and yields its events as they come, objects as the server sent them (no model classes). Ends
 * when the server closes the stream or `signal` aborts. Throws KubeApiError for an `ERROR` event
 * (410 when `resourceVersion` expired) or an error status, KubeUnreachableError when the
 * connection fails.
 */
export async function* watchEvents<T>(
  kc: ClientNodeConfig,
  path: string,
  query: WatchQuery,
  signal: AbortSignal,
): AsyncGenerator<WatchEvent<T>> {
  // Events and the error that ended the stream, in the order they came.
  const queue: (WatchEvent<T> | Error)[] = [];
  let ended = false;
  let wake: (() => void) | undefined;
  const push = (item?: WatchEvent<T> | Error) => {
    if (item) queue.push(item);
    const w = wake;
    wake = undefined;
    w?.();
  };
  const params: Record<string, string> = {};
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params[k] = String(v);
  const controller = await new Watch(kc).watch(
    path,
    params,
    (type: string, object: unknown) => {
      if (type !== "ERROR") return push({ type, object } as WatchEvent<T>);
      const status = object as { code?: number; reason?: string; message?: string };
      push(
        new KubeApiError(
          `watch ${path}: ${status.message ?? "error event"}`,
          status.code ?? 500,
          status.reason,
        ),
      );
    },
    (error: unknown) => {
      ended = true;
      const e = error as { statusCode?: number; message?: string; name?: string } | null;
      if (!e || signal.aborted || e.name === "AbortError") return push();
      push(
        e.statusCode
          ? new KubeApiError(`watch ${path}: ${e.message ?? e.statusCode}`, e.statusCode)
          : new KubeUnreachableError(`watch ${path}: ${e.message ?? String(error)}`),
      );
    },
  );
  const onAbort = () => {
    controller.abort();
    ended = true;
    push();
  };
  if (signal.aborted) onAbort();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    while (true) {
      const item = queue.shift();
      if (item instanceof Error) throw item;
      if (item) {
        yield item;
        continue;
      }
      if (ended || signal.aborted) return;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    controller.abort();
  }
}

/** What {@link watchUntil} needs besides the path. */
export interface WatchUntilOptions<T> extends Omit<WatchQuery, "resourceVersion"> {
  /** True once the objects seen so far are what the caller waits for. */
  done: (objects: T[]) => boolean;
  timeoutMs: number;
  /** What is waited for, for the timeout's message. */
  what: string;
}

/**
 * Watches `path` until `done` holds for the objects seen so far (the watch starts with the current
 * objects as ADDED events, then follows changes; reopened from the last version when the server
 * ends it, from scratch when that version expired), and returns them. `done` must be about objects
 * seen, not about absence: it is asked while the current objects are still arriving. Rejects with
 * an Error naming `what` after `timeoutMs`.
 */
export async function watchUntil<T extends { metadata?: { uid?: string; name?: string } }>(
  kc: ClientNodeConfig,
  path: string,
  opts: WatchUntilOptions<T>,
): Promise<T[]> {
  const { done, timeoutMs, what, ...query } = opts;
  const objects = new Map<string, T>();
  const key = (o: T) => o.metadata?.uid ?? o.metadata?.name ?? "";
  const signal = AbortSignal.timeout(timeoutMs);
  let resourceVersion: string | undefined;
  let last = "no answer yet";
  while (!signal.aborted) {
    try {
      const events = watchEvents<T>(kc, path, {
        ...query,
        resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: query.timeoutSeconds ?? 60,
      }, signal);
      for await (const ev of events) {
        resourceVersion = (ev.object as { metadata?: { resourceVersion?: string } }).metadata
          ?.resourceVersion ?? resourceVersion;
        if (ev.type === "BOOKMARK") continue;
        if (ev.type === "DELETED") objects.delete(key(ev.object));
        else objects.set(key(ev.object), ev.object);
        if (done([...objects.values()])) return [...objects.values()];
      }
    } catch (error) {
      if (signal.aborted) break;
      last = (error as Error).message;
      if (error instanceof KubeApiError && error.status === 410) {
        resourceVersion = undefined;
        objects.clear();
      } else await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw new Error(`${what}: not within ${timeoutMs} ms (${objects.size} seen; last: ${last})`);
}
