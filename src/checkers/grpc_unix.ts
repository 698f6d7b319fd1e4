// Unary gRPC calls over a unix socket: HTTP/2 without TLS (prior knowledge) through Deno's own
// fetch and an HTTP client bound to the socket, with a deadline on every call. Just enough for the
// CRI's RuntimeService; errors come back as GrpcError (a gRPC status) or RuntimeUnreachableError
// (socket / transport). Deno's fetch instead of node:http2 + node:net: those two cost the
// checkers, which monit spawns every cycle, ~50 ms of CPU per start-up.
//
// fetch does not expose HTTP trailers, where a gRPC server puts the status after a message. The
// status is read where it can be seen: a failed call is "trailers-only" (the status in the
// headers, no message: how gRPC servers answer an error), and a call that returned a whole
// length-prefixed message succeeded (unary: the server sends its one message only on success).

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

/** gRPC status code NOT_FOUND. */
export const GRPC_NOT_FOUND = 5;
/** gRPC status code UNIMPLEMENTED. */
export const GRPC_UNIMPLEMENTED = 12;

/**
 * Why a fetch over a unix socket failed, in one line: "connect: Connection refused (os error
 * 111)" or "no answer within N ms" rather than fetch's "error sending request for url (…)".
 */
export function fetchFailureReason(e: unknown, timeoutMs: number): string {
  if (e instanceof DOMException && e.name === "TimeoutError") {
    return `no answer within ${timeoutMs} ms`;
  }
  let root = e;
  while (root instanceof Error && root.cause instanceof Error) root = root.cause;
  const text = root instanceof Error ? root.message : String(root);
  return text.replace(/^error sending request for url \([^)]*\): /, "")
    .replace(/^client error \(Connect\): /, "connect: ").split("\n")[0];
}

/** One HTTP/2 connection (pool) to a gRPC server on a unix socket. */
export class GrpcUnixClient {
  #client?: Deno.HttpClient;

  constructor(readonly socketPath: string, readonly timeoutMs = 2000) {}

  /**
   * Calls `method` (e.g. `/runtime.v1.RuntimeService/ListContainers`) with an encoded request;
   * resolves to the encoded response message. Rejects with GrpcError or RuntimeUnreachableError.
   */
  async call(
    method: string,
    request: Uint8Array,
    timeoutMs = this.timeoutMs,
  ): Promise<Uint8Array> {
    this.#client ??= Deno.createHttpClient({
      proxy: { transport: "unix", path: this.socketPath },
      http1: false,
      http2: true,
    });
    const frame = new Uint8Array(5 + request.length);
    new DataView(frame.buffer).setUint32(1, request.length);
    frame.set(request, 5);
    const signal = AbortSignal.timeout(timeoutMs);
    let all: Uint8Array;
    let headers: Headers;
    let httpStatus: number;
    try {
      const res = await fetch(`http://localhost${method}`, {
        method: "POST",
        client: this.#client,
        signal,
        headers: {
          "content-type": "application/grpc",
          "te": "trailers",
          "grpc-timeout": `${timeoutMs}m`,
        },
        body: frame,
      });
      headers = res.headers;
      httpStatus = res.status;
      all = new Uint8Array(await res.arrayBuffer());
    } catch (e) {
      throw new RuntimeUnreachableError(`${this.socketPath}: ${fetchFailureReason(e, timeoutMs)}`);
    }
    const grpcStatus = headers.get("grpc-status");
    if (grpcStatus !== null && grpcStatus !== "0") {
      const code = Number(grpcStatus);
      const message = decodeURIComponent(headers.get("grpc-message") ?? "");
      throw new GrpcError(code, `${method}: ${message || `gRPC status ${code}`}`);
    }
    if (httpStatus !== 200) {
      throw new RuntimeUnreachableError(`${this.socketPath}: ${method}: HTTP status ${httpStatus}`);
    }
    if (all.length < 5) {
      if (grpcStatus === "0") return new Uint8Array();
      throw new RuntimeUnreachableError(
        `${this.socketPath}: ${method}: the answer ended without a message or a gRPC status`,
      );
    }
    if (all[0] !== 0) {
      throw new GrpcError(12, `${method}: compressed responses are not supported`);
    }
    const len = new DataView(all.buffer, all.byteOffset).getUint32(1);
    if (all.length < 5 + len) {
      throw new RuntimeUnreachableError(`${this.socketPath}: ${method}: the answer was cut short`);
    }
    return all.subarray(5, 5 + len);
  }

  /** Closes the connection (safe to call twice). */
  close(): void {
    const c = this.#client;
    this.#client = undefined;
    try {
      c?.close();
    } catch { /* closed */ }
  }
}
