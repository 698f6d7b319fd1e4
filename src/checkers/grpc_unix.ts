// Unary gRPC calls over a unix socket: HTTP/2 without TLS (prior knowledge) through Deno's own
// fetch on a unix-socket client, with a deadline on every call. Just enough for the CRI's
// RuntimeService, and cheap to start: no Node compatibility layer (node:http2 alone costs a
// short-lived tool ~30 ms of CPU at start-up). Errors come back as GrpcError (a gRPC status) or
// RuntimeUnreachableError (socket / transport).

/** The runtime's socket could not be used (missing, refused, reset, timed out). */
export class RuntimeUnreachableError extends Error {
  override name = "RuntimeUnreachableError";
}

/** The server answered with a non-OK gRPC status. */
export class GrpcError extends Error {
  override name = "GrpcError";
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

/** gRPC status code UNKNOWN. */
export const GRPC_UNKNOWN = 2;
/** gRPC status code NOT_FOUND. */
export const GRPC_NOT_FOUND = 5;
/** gRPC status code UNIMPLEMENTED. */
export const GRPC_UNIMPLEMENTED = 12;

/** errno names for the connect failures a unix socket gives, as Node spells them. */
const ERRNO: Record<string, string> = {
  "2": "ENOENT",
  "13": "EACCES",
  "104": "ECONNRESET",
  "111": "ECONNREFUSED",
};

/** One HTTP/2 connection to a gRPC server on a unix socket. */
export class GrpcUnixClient {
  #client?: Deno.HttpClient;

  constructor(readonly socketPath: string, readonly timeoutMs = 2000) {}

  /** "connect ECONNREFUSED <path>" rather than fetch's "error sending request …". */
  #unreachable(e: unknown, timeoutMs: number): RuntimeUnreachableError {
    if (e instanceof DOMException && (e.name === "TimeoutError" || e.name === "AbortError")) {
      return new RuntimeUnreachableError(`${this.socketPath}: no answer within ${timeoutMs} ms`);
    }
    let root = e;
    while (root instanceof Error && root.cause instanceof Error) root = root.cause;
    const why = root instanceof Error ? root.message : String(root);
    const errno = /\(os error (\d+)\)/.exec(why)?.[1];
    if (/\(Connect\)/.test(why) && errno && ERRNO[errno]) {
      return new RuntimeUnreachableError(`connect ${ERRNO[errno]} ${this.socketPath}`);
    }
    const text = why.replace(/^error sending request for url \([^)]*\): /, "");
    return new RuntimeUnreachableError(`${this.socketPath}: ${text}`);
  }

  /**
   * Calls `method` (e.g. `/runtime.v1.RuntimeService/ListContainers`) with an encoded request;
   * resolves to the encoded response message. Rejects with GrpcError or RuntimeUnreachableError.
   * A status the server sends in the headers (trailers-only responses: every error a unary call
   * gets before its answer) is read; fetch does not expose trailers, so a response with its
   * message is taken as OK and one without a message and without a status as UNKNOWN.
   */
  async call(method: string, request: Uint8Array, timeoutMs = this.timeoutMs): Promise<Uint8Array> {
    this.#client ??= Deno.createHttpClient({
      proxy: { transport: "unix", path: this.socketPath },
      http1: false,
      http2: true,
    });
    const frame = new Uint8Array(5 + request.length);
    new DataView(frame.buffer).setUint32(1, request.length);
    frame.set(request, 5);
    let headers: Headers;
    let all: Uint8Array;
    try {
      const res = await fetch(`http://localhost${method}`, {
        method: "POST",
        client: this.#client,
        headers: {
          "content-type": "application/grpc",
          "te": "trailers",
          "grpc-timeout": `${timeoutMs}m`,
        },
        body: frame,
        signal: AbortSignal.timeout(timeoutMs),
      });
      headers = res.headers;
      all = new Uint8Array(await res.arrayBuffer());
      if (res.status !== 200 && headers.get("grpc-status") === null) {
        throw new GrpcError(GRPC_UNKNOWN, `${method}: HTTP ${res.status}`);
      }
    } catch (e) {
      if (e instanceof GrpcError) throw e;
      throw this.#unreachable(e, timeoutMs);
    }
    const status = headers.get("grpc-status");
    if (status !== null && status !== "0") {
      const message = decodeURIComponent(headers.get("grpc-message") ?? "");
      throw new GrpcError(Number(status), `${method}: ${message || `gRPC status ${status}`}`);
    }
    if (all.length < 5) {
      if (status === "0") return new Uint8Array();
      throw new GrpcError(GRPC_UNKNOWN, `${method}: no response message`);
    }
    if (all[0] !== 0) {
      throw new GrpcError(GRPC_UNIMPLEMENTED, `${method}: compressed responses are not supported`);
    }
    const len = new DataView(all.buffer, all.byteOffset).getUint32(1);
    return all.subarray(5, 5 + len);
  }

  /** Closes the connection (safe to call twice). */
  close(): void {
    this.#client?.close();
    this.#client = undefined;
  }
}
