// A lean Kubernetes REST client on `fetch` + `Deno.createHttpClient` (mutual TLS): get, list,
// create, patch, delete and watch, each with a timeout per attempt, retries with exponential
// back-off on connection errors and 5xx, and `Retry-After` honoured on 429. Short-lived tools
// (ks-stub, run by systemd on every start/stop/status) use this instead of client-node, whose
// start-up costs about 300 ms more (docs/kube.md).
import type { Logger } from "../log.ts";
import {
  type KubeConfig,
  KubeconfigError,
  loadKubeconfig,
  type LoadKubeconfigOptions,
} from "./kubeconfig.ts";

/** Tuning of a {@link KubeRest} client. */
export interface KubeRestOptions {
  /** Timeout of one attempt in ms, headers and body included (default 5000). */
  timeoutMs?: number;
  /** Extra attempts after the first on retryable failures (default 3). */
  retries?: number;
  /** First back-off in ms, doubled per attempt with ±20 % jitter (default 200). */
  backoffMs?: number;
  /** Back-off ceiling, also the cap for a `Retry-After` (ms, default 4000). */
  maxBackoffMs?: number;
  /** User-Agent header (default `kubesonic-migrate`). */
  userAgent?: string;
  /** Receives one warn line per retry. */
  logger?: Logger;
}

/** Per-call options; `timeoutMs` / `retries` override the client's. */
export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** Content-Type of `body` (default application/json). */
  contentType?: string;
  timeoutMs?: number;
  retries?: number;
  /** Aborts the call (no retry after an abort by the caller). */
  signal?: AbortSignal;
}

/** Selectors and paging for {@link KubeRest.list} and {@link KubeRest.watch}. */
export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
  timeoutMs?: number;
  retries?: number;
  signal?: AbortSignal;
}

/** Options of a watch: where to start and how long the server keeps it open. */
export interface WatchOptions extends ListOptions {
  /** Server-side watch duration in seconds (the server ends the stream after it). */
  timeoutSeconds?: number;
  allowWatchBookmarks?: boolean;
}

/** Patch flavours and their content types. */
export type PatchType = "merge" | "strategic" | "json" | "apply";

const PATCH_TYPES: Record<PatchType, string> = {
  merge: "application/merge-patch+json",
  strategic: "application/strategic-merge-patch+json",
  json: "application/json-patch+json",
  apply: "application/apply-patch+yaml",
};

/** Minimal object metadata every returned object carries. */
export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

/** A list response. */
export interface KubeList<T> {
  apiVersion?: string;
  kind?: string;
  metadata: { resourceVersion?: string; continue?: string };
  items: T[];
}

/** One watch event; `ERROR` events are thrown as KubeApiError instead of yielded. */
export interface WatchEvent<T> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK";
  object: T;
}

/** The API server answered with an error status (after retries, for retryable ones). */
export class KubeApiError extends Error {
  override name = "KubeApiError";
  constructor(
    message: string,
    /** HTTP status, e.g. 404, 409, 410 (watch expired), 403. */
    readonly status: number,
    /** The Status object's `reason` (NotFound, AlreadyExists, Forbidden, Expired...). */
    readonly reason?: string,
  ) {
    super(message);
  }
}

/** No HTTP answer: connection refused/reset, TLS failure, or every attempt timed out. */
export class KubeUnreachableError extends Error {
  override name = "KubeUnreachableError";
}

/** True for a KubeApiError with status 404. */
export function isNotFound(error: unknown): boolean {
  return error instanceof KubeApiError && error.status === 404;
}

/** True for a KubeApiError with status 409 (AlreadyExists or a conflict). */
export function isConflict(error: unknown): boolean {
  return error instanceof KubeApiError && error.status === 409;
}

/** Where a resource lives. `apiVersion` "v1" is the core group; others are `group/version`. */
export interface ResourceRef {
  apiVersion?: string;
  /** Plural resource name: pods, daemonsets, configmaps... */
  resource: string;
  namespace?: string;
  name?: string;
  subresource?: string;
}

/** Builds the URL path of a resource, e.g. `/apis/apps/v1/namespaces/sonic/daemonsets/telemetry`. */
export function resourcePath(ref: ResourceRef): string {
  const apiVersion = ref.apiVersion ?? "v1";
  let path = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  if (ref.namespace) path += `/namespaces/${encodeURIComponent(ref.namespace)}`;
  path += `/${ref.resource}`;
  if (ref.name) path += `/${encodeURIComponent(ref.name)}`;
  if (ref.subresource) path += `/${ref.subresource}`;
  return path;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Parses a Retry-After header (seconds or an HTTP date) to ms; undefined when absent/invalid. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

interface Attempt {
  response?: Response;
  /** Set when the attempt failed without an HTTP answer. */
  failure?: string;
}

/**
 * A Kubernetes API client for one kubeconfig. Every call has a timeout; retryable failures
 * (connection errors, timeouts, 5xx, 429) are retried with back-off; other HTTP errors throw
 * KubeApiError at once, and a call that never got an answer throws KubeUnreachableError.
 * Call `close()` when done (it releases the TLS client).
 */
export class KubeRest {
  readonly config: KubeConfig;
  readonly #client: Deno.HttpClient;
  readonly #timeoutMs: number;
  readonly #retries: number;
  readonly #backoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #userAgent: string;
  readonly #logger?: Logger;
  #token?: string;
  #tokenReadAt = 0;
  #closed = false;

  /** Builds a client; throws KubeconfigError for configurations it cannot honour. */
  constructor(config: KubeConfig, opts: KubeRestOptions = {}) {
    if (config.insecureSkipTlsVerify && config.server.startsWith("https:")) {
      throw new KubeconfigError(
        `${config.source}: insecure-skip-tls-verify is not supported;` +
          " set certificate-authority(-data) for the cluster",
      );
    }
    this.config = config;
    const tls: { caCerts?: string[]; cert?: string; key?: string } = {};
    if (config.caPem) tls.caCerts = [config.caPem];
    if (config.certPem && config.keyPem) {
      tls.cert = config.certPem;
      tls.key = config.keyPem;
    }
    this.#client = Deno.createHttpClient(tls as Parameters<typeof Deno.createHttpClient>[0]);
    this.#timeoutMs = opts.timeoutMs ?? 5000;
    this.#retries = opts.retries ?? 3;
    this.#backoffMs = opts.backoffMs ?? 200;
    this.#maxBackoffMs = opts.maxBackoffMs ?? 4000;
    this.#userAgent = opts.userAgent ?? "kubesonic-migrate";
    this.#logger = opts.logger;
    this.#token = config.token;
    this.#tokenReadAt = Date.now();
  }

  /** Loads the kubeconfig (see loadKubeconfig's precedence) and builds a client. */
  static async connect(
    load: LoadKubeconfigOptions = {},
    opts: KubeRestOptions = {},
  ): Promise<KubeRest> {
    return new KubeRest(await loadKubeconfig(load), opts);
  }

  /** Releases the HTTP client; safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.close();
  }

  /** GET one object; throws KubeApiError (404 when absent, see isNotFound). */
  get<T = unknown>(path: string, opts: RequestOptions = {}): Promise<T> {
    return this.request<T>("GET", path, opts);
  }

  /** GET a collection with selectors; returns the list (items + resourceVersion). */
  list<T = unknown>(path: string, opts: ListOptions = {}): Promise<KubeList<T>> {
    return this.request<KubeList<T>>("GET", path, {
      query: {
        labelSelector: opts.labelSelector,
        fieldSelector: opts.fieldSelector,
        limit: opts.limit,
        continue: opts.continue,
        resourceVersion: opts.resourceVersion,
      },
      timeoutMs: opts.timeoutMs,
      retries: opts.retries,
      signal: opts.signal,
    });
  }

  /** POST an object to a collection path; 409 (already exists) throws KubeApiError. */
  create<T = unknown>(path: string, body: unknown, opts: RequestOptions = {}): Promise<T> {
    return this.request<T>("POST", path, { ...opts, body });
  }

  /** PUT (replace) an object. */
  replace<T = unknown>(path: string, body: unknown, opts: RequestOptions = {}): Promise<T> {
    return this.request<T>("PUT", path, { ...opts, body });
  }

  /**
   * PATCH an object (default a JSON merge patch). For `apply` (server-side apply) pass
   * `fieldManager` and optionally `force`.
   */
  patch<T = unknown>(
    path: string,
    body: unknown,
    opts: RequestOptions & { type?: PatchType; fieldManager?: string; force?: boolean } = {},
  ): Promise<T> {
    const type = opts.type ?? "merge";
    return this.request<T>("PATCH", path, {
      ...opts,
      body,
      contentType: PATCH_TYPES[type],
      query: { ...opts.query, fieldManager: opts.fieldManager, force: opts.force },
    });
  }

  /** DELETE an object; returns the server's answer (the object or a Status). */
  delete<T = unknown>(
    path: string,
    opts: RequestOptions & {
      gracePeriodSeconds?: number;
      propagationPolicy?: "Foreground" | "Background" | "Orphan";
      preconditions?: { uid?: string; resourceVersion?: string };
    } = {},
  ): Promise<T> {
    const body: Record<string, unknown> = { apiVersion: "v1", kind: "DeleteOptions" };
    if (opts.gracePeriodSeconds !== undefined) body.gracePeriodSeconds = opts.gracePeriodSeconds;
    if (opts.propagationPolicy) body.propagationPolicy = opts.propagationPolicy;
    if (opts.preconditions) body.preconditions = opts.preconditions;
    return this.request<T>("DELETE", path, { ...opts, body });
  }

  /**
   * Watches a collection: yields ADDED/MODIFIED/DELETED/BOOKMARK events until the server ends the
   * stream (`timeoutSeconds`) or `signal` aborts (then it returns quietly). Only opening the
   * stream is subject to the timeout and retries. An ERROR event (e.g. 410 Expired: re-list) is
   * thrown as KubeApiError.
   */
  async *watch<T = unknown>(path: string, opts: WatchOptions = {}): AsyncGenerator<WatchEvent<T>> {
    const response = await this.#send("GET", path, {
      query: {
        watch: 1,
        labelSelector: opts.labelSelector,
        fieldSelector: opts.fieldSelector,
        resourceVersion: opts.resourceVersion,
        timeoutSeconds: opts.timeoutSeconds,
        allowWatchBookmarks: opts.allowWatchBookmarks,
      },
      timeoutMs: opts.timeoutMs,
      retries: opts.retries,
      signal: opts.signal,
    }, true);
    if (!response.body) return;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    try {
      while (true) {
        let chunk: ReadableStreamReadResult<string>;
        try {
          chunk = await reader.read();
        } catch (error) {
          if (opts.signal?.aborted) return;
          throw new KubeUnreachableError(
            `watch ${path}: stream broke: ${(error as Error).message}`,
          );
        }
        if (chunk.done) break;
        buffer += chunk.value;
        let nl: number;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, nl).trim();
          buffer = buffer.slice(nl + 1);
          if (line === "") continue;
          const event = JSON.parse(line) as { type: string; object: T };
          if (event.type === "ERROR") {
            const status = event.object as { code?: number; reason?: string; message?: string };
            throw new KubeApiError(
              `watch ${path}: ${status.message ?? "error event"}`,
              status.code ?? 500,
              status.reason,
            );
          }
          yield event as WatchEvent<T>;
        }
      }
    } finally {
      await reader.cancel().catch(() => {});
    }
  }

  /**
   * Sends one request and decodes the JSON answer. Throws KubeApiError for an error status,
   * KubeUnreachableError when no attempt got an answer.
   */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const response = await this.#send(method, path, opts, false);
    const text = await response.text();
    if (text === "") return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new KubeApiError(
        `${method} ${path}: the server answered ${response.status} with a body that is not JSON`,
        response.status,
      );
    }
  }

  async #authHeader(): Promise<string | undefined> {
    const cfg = this.config;
    if (cfg.tokenFile && Date.now() - this.#tokenReadAt > 60_000) {
      // Projected service-account tokens rotate; re-read at most once a minute as client-go does.
      try {
        this.#token = (await Deno.readTextFile(cfg.tokenFile)).trim();
        this.#tokenReadAt = Date.now();
      } catch { /* keep the last token */ }
    }
    if (this.#token) return `Bearer ${this.#token}`;
    if (cfg.username !== undefined) return `Basic ${btoa(`${cfg.username}:${cfg.password ?? ""}`)}`;
    return undefined;
  }

  #url(path: string, query?: RequestOptions["query"]): string {
    const url = new URL(this.config.server + path);
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v !== undefined && v !== "") url.searchParams.set(k, String(v));
    }
    return url.toString();
  }

  /** Runs the attempts; returns the first OK response (body unread), or throws. */
  async #send(
    method: string,
    path: string,
    opts: RequestOptions,
    stream: boolean,
  ): Promise<Response> {
    if (this.#closed) throw new Error(`KubeRest for ${this.config.server} is closed`);
    const timeoutMs = opts.timeoutMs ?? this.#timeoutMs;
    const retries = opts.retries ?? this.#retries;
    const url = this.#url(path, opts.query);
    const headers: Record<string, string> = {
      accept: "application/json",
      "user-agent": this.#userAgent,
    };
    const auth = await this.#authHeader();
    if (auth) headers.authorization = auth;
    let body: string | undefined;
    if (opts.body !== undefined) {
      headers["content-type"] = opts.contentType ?? "application/json";
      body = typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
    }
    let lastProblem = "";
    for (let attempt = 0; attempt <= retries; attempt++) {
      const { response, failure } = await this.#attempt(
        method,
        url,
        headers,
        body,
        timeoutMs,
        opts.signal,
        stream,
      );
      let waitMs: number | undefined;
      if (response) {
        if (response.ok) return response;
        const retryable = response.status >= 500 || response.status === 429;
        const problem = await describeError(response);
        if (!retryable || attempt === retries) {
          throw new KubeApiError(
            `${method} ${path}: ${response.status} ${problem.message}`,
            response.status,
            problem.reason,
          );
        }
        lastProblem = `${response.status} ${problem.message}`;
        if (response.status === 429) {
          const after = parseRetryAfter(response.headers.get("retry-after"));
          if (after !== undefined) waitMs = Math.min(after, this.#maxBackoffMs);
        }
      } else {
        if (opts.signal?.aborted) throw opts.signal.reason;
        lastProblem = failure!;
        if (attempt === retries) break;
      }
      waitMs ??= this.#backoff(attempt);
      this.#logger?.warn("kube API call failed, retrying", {
        method,
        path,
        problem: lastProblem,
        attempt: attempt + 1,
        in_ms: Math.round(waitMs),
      });
      await sleep(waitMs, opts.signal);
    }
    throw new KubeUnreachableError(
      `${method} ${path}: ${this.config.server} unreachable after ${
        retries + 1
      } attempts: ${lastProblem}`,
    );
  }

  #backoff(attempt: number): number {
    const base = Math.min(this.#backoffMs * 2 ** attempt, this.#maxBackoffMs);
    return base * (0.8 + Math.random() * 0.4);
  }

  async #attempt(
    method: string,
    url: string,
    headers: Record<string, string>,
    body: string | undefined,
    timeoutMs: number,
    callerSignal: AbortSignal | undefined,
    stream: boolean,
  ): Promise<Attempt> {
    // One controller aborted by the attempt's timer or by the caller's signal. Not
    // AbortSignal.any(): Deno may collect that combined signal while fetch still runs, and the
    // abort (or the timeout) is then silently lost. Here the caller's signal holds the listener,
    // which holds the controller, for as long as the caller holds its signal.
    const timeout = new AbortController();
    const timer = setTimeout(
      () => timeout.abort(new DOMException("timed out", "TimeoutError")),
      timeoutMs,
    );
    const onCallerAbort = () => timeout.abort(callerSignal?.reason);
    if (callerSignal?.aborted) onCallerAbort();
    else callerSignal?.addEventListener("abort", onCallerAbort, { once: true });
    let keepCallerListener = false;
    try {
      const response = await fetch(url, {
        method,
        headers,
        body,
        signal: timeout.signal,
        client: this.#client,
      });
      // A watch stream may stay open for minutes: once its headers are in, only the caller's
      // signal may end it (the finally below clears the attempt's timer).
      if (response.ok && stream) {
        keepCallerListener = true;
        return { response };
      }
      // Read the body (error bodies too) inside the timeout: a stalled body is a failed attempt.
      const text = await response.text();
      return {
        // A 204/304 may not carry a body, not even an empty one.
        response: new Response(text === "" ? null : text, {
          status: response.status,
          statusText: response.statusText,
          headers: response.headers,
        }),
      };
    } catch (error) {
      if (timeout.signal.aborted && !callerSignal?.aborted) {
        return { failure: `no answer within ${timeoutMs} ms` };
      }
      if (callerSignal?.aborted) return { failure: "aborted" };
      return { failure: describeFetchError(error) };
    } finally {
      clearTimeout(timer);
      if (!keepCallerListener) callerSignal?.removeEventListener("abort", onCallerAbort);
    }
  }
}

function describeFetchError(error: unknown): string {
  const e = error as Error & { cause?: unknown };
  let text = e?.message ?? String(error);
  if (e?.cause instanceof Error && !text.includes(e.cause.message)) text += `: ${e.cause.message}`;
  return text.split("\n")[0];
}

async function describeError(response: Response): Promise<{ message: string; reason?: string }> {
  const text = await response.text().catch(() => "");
  try {
    const status = JSON.parse(text) as { message?: string; reason?: string };
    if (status && typeof status.message === "string") {
      return { message: status.message, reason: status.reason };
    }
  } catch { /* not a Status */ }
  return { message: text.trim().split("\n")[0] || response.statusText };
}
