// The Docker Engine API as the checkers see it, spoken directly over its unix socket (fetch with a
// unix-socket HTTP client; no docker CLI, no Python SDK): list running containers with their
// names and labels, inspect one (ID, PID, state, cgroup parent), and stop one (ks-stub).
import { RuntimeUnreachableError } from "./grpc_unix.ts";

/** A running container as `GET /containers/json` reports it. */
export interface DockerContainer {
  id: string;
  /** The container's name without the leading slash. */
  name: string;
  labels: Record<string, string>;
  state: string;
  image: string;
  /** Creation time, ms since the epoch. */
  createdMs: number;
}

/** The parts of `GET /containers/<id>/json` the checkers use. */
export interface DockerInspect {
  id: string;
  name: string;
  running: boolean;
  pid: number;
  exitCode: number;
  oomKilled: boolean;
  restartCount: number;
  cgroupParent: string;
  labels: Record<string, string>;
}

/** A Docker Engine API client on one unix socket. */
export class DockerClient {
  #client?: Deno.HttpClient;

  constructor(readonly socketPath: string, readonly timeoutMs = 2000) {}

  async #get(
    path: string,
    post?: unknown,
    timeoutMs = this.timeoutMs,
    method = post === undefined ? "GET" : "POST",
  ): Promise<{ status: number; body: unknown; raw?: Uint8Array }> {
    this.#client ??= Deno.createHttpClient({
      proxy: { transport: "unix", path: this.socketPath },
    });
    let res: Response;
    try {
      res = await fetch(`http://docker${path}`, {
        method,
        client: this.#client,
        signal: AbortSignal.timeout(timeoutMs),
        ...(post === undefined ? {} : {
          headers: { "content-type": "application/json" },
          body: JSON.stringify(post),
        }),
      });
    } catch (e) {
      throw new RuntimeUnreachableError(`${this.socketPath}: ${this.#reason(e, timeoutMs)}`);
    }
    if (res.headers.get("content-type")?.startsWith("application/vnd.docker.")) {
      // An exec's output: the multiplexed stream, read to its end.
      return { status: res.status, body: undefined, raw: new Uint8Array(await res.arrayBuffer()) };
    }
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch { /* plain text error */ }
    return { status: res.status, body };
  }

  /** "connect: Connection refused (os error 111)" rather than fetch's "fetch failed". */
  #reason(e: unknown, timeoutMs: number): string {
    if (e instanceof DOMException && e.name === "TimeoutError") {
      return `no answer within ${timeoutMs} ms`;
    }
    let root = e;
    while (root instanceof Error && root.cause instanceof Error) root = root.cause;
    const text = root instanceof Error ? root.message : String(root);
    return text.replace(/^error sending request for url \([^)]*\): /, "")
      .replace(/^client error \(Connect\): /, "connect: ");
  }

  /** Lists running containers. Rejects with RuntimeUnreachableError or an Error on HTTP errors. */
  listRunning(): Promise<DockerContainer[]> {
    return this.list({ running: true });
  }

  /**
   * Lists containers (only running ones with `running`) carrying every label of `labels`.
   * Rejects with RuntimeUnreachableError or an Error on HTTP errors.
   */
  async list(
    opts: { running?: boolean; labels?: Record<string, string> } = {},
  ): Promise<DockerContainer[]> {
    const filter: Record<string, string[]> = {};
    if (opts.running) filter.status = ["running"];
    const labels = Object.entries(opts.labels ?? {}).map(([k, v]) => `${k}=${v}`);
    if (labels.length) filter.label = labels;
    const filters = encodeURIComponent(JSON.stringify(filter));
    const all = opts.running ? "" : "&all=1";
    const { status, body } = await this.#get(`/containers/json?filters=${filters}${all}`);
    if (status !== 200 || !Array.isArray(body)) {
      throw new Error(`docker: GET /containers/json answered ${status}: ${messageOf(body)}`);
    }
    return body.map((c: Record<string, unknown>) => ({
      id: String(c.Id ?? ""),
      name: String((c.Names as string[] | undefined)?.[0] ?? "").replace(/^\//, ""),
      labels: (c.Labels as Record<string, string> | null) ?? {},
      state: String(c.State ?? ""),
      image: String(c.Image ?? ""),
      createdMs: Number(c.Created ?? 0) * 1000,
    }));
  }

  /**
   * Stops a container (SIGTERM, SIGKILL after `timeoutSeconds`; the call may take `marginMs`
   * longer); false when the engine does not know it (404). Rejects with RuntimeUnreachableError
   * or an Error on HTTP errors.
   */
  async stop(id: string, timeoutSeconds: number, marginMs = this.timeoutMs): Promise<boolean> {
    const t = Math.max(0, Math.round(timeoutSeconds));
    const { status, body } = await this.#get(
      `/containers/${encodeURIComponent(id)}/stop?t=${t}`,
      undefined,
      t * 1000 + marginMs,
      "POST",
    );
    if (status === 404) return false;
    if (status !== 204 && status !== 304) {
      throw new Error(`docker: POST /containers/${id}/stop answered ${status}: ${messageOf(body)}`);
    }
    return true;
  }

  /**
   * Lists the engine's images as their references (`RepoTags` and `RepoDigests`, e.g.
   * `registry:5000/docker-sonic-gnmi:v2`). Rejects like listRunning.
   */
  async listImageRefs(): Promise<string[]> {
    const { status, body } = await this.#get("/images/json");
    if (status !== 200 || !Array.isArray(body)) {
      throw new Error(`docker: GET /images/json answered ${status}: ${messageOf(body)}`);
    }
    const refs: string[] = [];
    for (const img of body as Record<string, unknown>[]) {
      for (const key of ["RepoTags", "RepoDigests"]) {
        const list = img[key];
        if (Array.isArray(list)) { for (const r of list) if (typeof r === "string") refs.push(r); }
      }
    }
    return refs;
  }

  /** Inspects one container by name or ID; undefined when the engine does not know it (404). */
  async inspect(nameOrId: string): Promise<DockerInspect | undefined> {
    const { status, body } = await this.#get(`/containers/${encodeURIComponent(nameOrId)}/json`);
    if (status === 404) return undefined;
    if (status !== 200 || typeof body !== "object" || body === null) {
      throw new Error(
        `docker: GET /containers/${nameOrId}/json answered ${status}: ${messageOf(body)}`,
      );
    }
    const b = body as Record<string, Record<string, unknown> | string | number>;
    const state = (b.State ?? {}) as Record<string, unknown>;
    const host = (b.HostConfig ?? {}) as Record<string, unknown>;
    const config = (b.Config ?? {}) as Record<string, unknown>;
    return {
      id: String(b.Id ?? ""),
      name: String(b.Name ?? "").replace(/^\//, ""),
      running: state.Running === true,
      pid: Number(state.Pid ?? 0),
      exitCode: Number(state.ExitCode ?? 0),
      oomKilled: state.OOMKilled === true,
      restartCount: Number(b.RestartCount ?? 0),
      cgroupParent: String(host.CgroupParent ?? ""),
      labels: (config.Labels as Record<string, string> | null) ?? {},
    };
  }

  /**
   * Runs `cmd` in container `nameOrId` (exec create, start attached, inspect) and returns its
   * exit code and output, within `timeoutMs`. Rejects on API errors (a container that is not
   * running answers 409) and with RuntimeUnreachableError.
   */
  async exec(
    nameOrId: string,
    cmd: string[],
    timeoutMs: number,
  ): Promise<{ exitCode: number; stdout: string; stderr: string }> {
    const created = await this.#get(`/containers/${encodeURIComponent(nameOrId)}/exec`, {
      AttachStdout: true,
      AttachStderr: true,
      Cmd: cmd,
    });
    const id = (created.body as { Id?: string } | undefined)?.Id;
    if (created.status !== 201 || !id) {
      throw new Error(
        `docker: exec in ${nameOrId} answered ${created.status}: ${messageOf(created.body)}`,
      );
    }
    const started = await this.#get(`/exec/${id}/start`, { Detach: false, Tty: false }, timeoutMs);
    if (started.status !== 200) {
      throw new Error(`docker: exec start answered ${started.status}: ${messageOf(started.body)}`);
    }
    const out = demultiplex(started.raw ?? new Uint8Array());
    const info = await this.#get(`/exec/${id}/json`);
    return { exitCode: Number((info.body as { ExitCode?: number })?.ExitCode ?? -1), ...out };
  }

  /** Closes the HTTP client. */
  close(): void {
    this.#client?.close();
    this.#client = undefined;
  }
}

function messageOf(body: unknown): string {
  if (typeof body === "object" && body !== null && "message" in body) {
    return String((body as { message: unknown }).message);
  }
  return String(body).slice(0, 200);
}

/** Docker's multiplexed exec stream: 8-byte headers (stream 1 stdout, 2 stderr; BE size). */
function demultiplex(raw: Uint8Array): { stdout: string; stderr: string } {
  const parts: Record<number, Uint8Array[]> = { 1: [], 2: [] };
  let i = 0;
  while (i + 8 <= raw.length) {
    const size = new DataView(raw.buffer, raw.byteOffset + i + 4, 4).getUint32(0);
    parts[raw[i]]?.push(raw.subarray(i + 8, i + 8 + size));
    i += 8 + size;
  }
  const text = (chunks: Uint8Array[]) =>
    new TextDecoder().decode(
      Uint8Array.from(chunks.flatMap((c) => [...c])),
    );
  return { stdout: text(parts[1]), stderr: text(parts[2]) };
}
