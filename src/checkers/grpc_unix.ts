// Unary gRPC calls over a unix socket (HTTP/2 without TLS, `node:http2` on a `node:net` unix
// connection), with a deadline on every call. Just enough for the CRI's RuntimeService; errors
// come back as GrpcError (a gRPC status) or RuntimeUnreachableError (socket / transport).
// node:http2 and node:net are loaded on the first call, not at start-up: they cost the checkers
// (spawned by monit every cycle) ~50 ms of CPU, and a run that never calls the CRI does not pay.
import type http2 from "node:http2";

let http2Modules: Promise<{ http2: typeof http2; net: typeof import("node:net") }> | undefined;
function loadHttp2() {
  http2Modules ??= Promise.all([import("node:http2"), import("node:net")]).then((
    [h, n],
  ) => ({ http2: h.default, net: n.default }));
  return http2Modules;
}

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

/** One HTTP/2 connection to a gRPC server on a unix socket. */
export class GrpcUnixClient {
  #session?: http2.ClientHttp2Session;
  #failure?: Error;

  constructor(readonly socketPath: string, readonly timeoutMs = 2000) {}

  async #connect(): Promise<http2.ClientHttp2Session> {
    const { http2, net } = await loadHttp2();
    if (this.#session && !this.#session.closed && !this.#session.destroyed) return this.#session;
    this.#failure = undefined;
    const session = http2.connect("http://localhost", {
      createConnection: () => net.connect({ path: this.socketPath }),
    });
    session.on("error", (e: Error) => {
      this.#failure = e;
    });
    this.#session = session;
    return session;
  }

  /**
   * Calls `method` (e.g. `/runtime.v1.RuntimeService/ListContainers`) with an encoded request;
   * resolves to the encoded response message. Rejects with GrpcError or RuntimeUnreachableError.
   */
  async call(
    method: string,
    request: Uint8Array,
    timeoutMs = this.timeoutMs,
  ): Promise<Uint8Array> {
    const session = await this.#connect().catch((e) => e as Error);
    return await new Promise((resolve, reject) => {
      let done = false;
      const finish = (err?: Error, data?: Uint8Array) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(data!);
      };
      const unreachable = (e: unknown) => {
        // Report the root cause ("connect ECONNREFUSED <path>"), not the stream wrapper.
        let root = e;
        while (root instanceof Error && root.cause instanceof Error) root = root.cause;
        const why = root instanceof Error ? root.message : String(root);
        return new RuntimeUnreachableError(
          why.includes(this.socketPath) ? why : `${this.socketPath}: ${why}`,
        );
      };
      const timer = setTimeout(() => {
        finish(new RuntimeUnreachableError(`${this.socketPath}: no answer within ${timeoutMs} ms`));
        this.close();
      }, timeoutMs);
      if (session instanceof Error) {
        finish(unreachable(session));
        return;
      }
      session.once("error", (e: Error) => finish(unreachable(e)));
      const req = session.request({
        ":method": "POST",
        ":path": method,
        "content-type": "application/grpc",
        "te": "trailers",
        "grpc-timeout": `${timeoutMs}m`,
      });
      const chunks: Uint8Array[] = [];
      let status: number | undefined;
      let message = "";
      const takeStatus = (h: http2.IncomingHttpHeaders) => {
        if (h["grpc-status"] !== undefined) {
          status = Number(h["grpc-status"]);
          message = decodeURIComponent(String(h["grpc-message"] ?? ""));
        }
      };
      req.on("response", takeStatus);
      req.on("trailers", takeStatus);
      req.on("data", (d: Uint8Array) => chunks.push(d));
      req.on(
        "error",
        (e: Error) => finish(this.#failure ? unreachable(this.#failure) : unreachable(e)),
      );
      req.on("end", () => {
        if (status === undefined) {
          finish(unreachable(new Error(`${method}: stream ended without a gRPC status`)));
          return;
        }
        if (status !== 0) {
          finish(new GrpcError(status, `${method}: ${message || `gRPC status ${status}`}`));
          return;
        }
        const total = chunks.reduce((n, c) => n + c.length, 0);
        const all = new Uint8Array(total);
        let off = 0;
        for (const c of chunks) {
          all.set(c, off);
          off += c.length;
        }
        if (all.length < 5) {
          finish(undefined, new Uint8Array());
          return;
        }
        if (all[0] !== 0) {
          finish(new GrpcError(12, `${method}: compressed responses are not supported`));
          return;
        }
        const len = new DataView(all.buffer, all.byteOffset).getUint32(1);
        finish(undefined, all.subarray(5, 5 + len));
      });
      const frame = new Uint8Array(5 + request.length);
      new DataView(frame.buffer).setUint32(1, request.length);
      frame.set(request, 5);
      req.end(frame);
    });
  }

  /** Closes the connection (safe to call twice). */
  close(): void {
    const s = this.#session;
    this.#session = undefined;
    if (s && !s.destroyed) s.destroy();
  }
}
