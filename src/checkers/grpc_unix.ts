// Unary gRPC calls over a unix socket: HTTP/2 without TLS (prior knowledge) on a plain
// Deno.connect socket, with a deadline on every call. Just enough HTTP/2 for the CRI's
// RuntimeService (one connection, concurrent streams, HPACK from ./hpack.ts, flow control by
// opening our receive windows wide), and cheap to start: no Node compatibility layer (node:http2
// costs a short-lived tool ~30 ms of CPU at start-up) and not Deno's fetch stack either (creating
// its HTTP client and a first request cost ~18 ms of CPU, half of a `ks-stub status`). Errors
// come back as GrpcError (a gRPC status) or RuntimeUnreachableError (socket / transport).
import { encodeHeaders, HpackDecoder } from "./hpack.ts";

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

/** gRPC status code INTERNAL. */
export const GRPC_INTERNAL = 13;

/** errno names for the connect failures a unix socket gives, as Node spells them. */
const CONNECT_ERRNO: [new (...args: never[]) => Error, string][] = [
  [Deno.errors.NotFound, "ENOENT"],
  [Deno.errors.PermissionDenied, "EACCES"],
  [Deno.errors.ConnectionReset, "ECONNRESET"],
  [Deno.errors.ConnectionRefused, "ECONNREFUSED"],
];

const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PUSH_PROMISE = 0x5;
const PING = 0x6;
const GOAWAY = 0x7;
const WINDOW_UPDATE = 0x8;
const CONTINUATION = 0x9;
const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;
const SETTINGS_ENABLE_PUSH = 0x2;
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
const SETTINGS_MAX_FRAME_SIZE = 0x5;
/** RST_STREAM's CANCEL. */
const CANCEL = 0x8;
/** HTTP/2's defaults for the window and frame sizes. */
const DEFAULT_WINDOW = 65_535;
const DEFAULT_MAX_FRAME = 16_384;
const MAX_WINDOW = 2 ** 31 - 1;
/** Received DATA octets after which the connection's receive window is topped up again. */
const TOP_UP = 1 << 24;

function frame(type: number, flags: number, stream: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(9 + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, payload.length << 8);
  out[3] = type;
  out[4] = flags;
  view.setUint32(5, stream);
  out.set(payload, 9);
  return out;
}

function u32(...values: number[]): Uint8Array {
  const out = new Uint8Array(4 * values.length);
  values.forEach((v, i) => new DataView(out.buffer).setUint32(4 * i, v));
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A stream's answer: its headers and trailers (later wins) and its DATA. */
interface Answer {
  headers: Map<string, string>;
  body: Uint8Array;
}

interface Stream {
  fields: [string, string][];
  data: Uint8Array[];
  resolve(answer: Answer): void;
  reject(error: Error): void;
}

/** One HTTP/2 client connection: streams are requests, answered in any order. */
class H2Connection {
  #streams = new Map<number, Stream>();
  #next = 1;
  #decoder = new HpackDecoder();
  /** Why this connection cannot take new streams (set once). */
  #broken?: string;
  #sendWindow = DEFAULT_WINDOW;
  #streamWindow = DEFAULT_WINDOW;
  #maxFrame = DEFAULT_MAX_FRAME;
  #received = 0;
  /** A header block continued in CONTINUATION frames. */
  #pending?: { stream: number; flags: number; parts: Uint8Array[] };
  /** Frames not written yet: everything sent while connecting or writing goes out in one write. */
  #outbox: Uint8Array[] = [];
  #flushing = false;
  #conn?: Deno.UnixConn;

  /** Connects to `path`; requests may be sent at once (they go out once connected). */
  constructor(readonly path: string, connectError: (e: unknown) => string) {
    // Preface, our settings (no push; stream windows as wide as HTTP/2 allows) and the
    // connection's window opened as wide: nothing we receive waits for a WINDOW_UPDATE.
    this.#outbox.push(
      PREFACE,
      frame(SETTINGS, 0, 0, new Uint8Array([0, SETTINGS_ENABLE_PUSH, 0, 0, 0, 0])),
      frame(SETTINGS, 0, 0, new Uint8Array([0, SETTINGS_INITIAL_WINDOW_SIZE, ...u32(MAX_WINDOW)])),
      frame(WINDOW_UPDATE, 0, 0, u32(MAX_WINDOW - DEFAULT_WINDOW)),
    );
    Deno.connect({ transport: "unix", path }).then((conn) => {
      this.#conn = conn;
      if (!this.usable) return conn.close();
      if (this.#streams.size === 0) conn.unref();
      this.#flush();
      this.#readLoop(conn);
    }, (e) => this.#fail(connectError(e)));
  }

  get usable(): boolean {
    return this.#broken === undefined;
  }

  #send(...frames: Uint8Array[]): void {
    this.#outbox.push(...frames);
    this.#flush();
  }

  async #flush(): Promise<void> {
    const conn = this.#conn;
    if (!conn || this.#flushing) return;
    this.#flushing = true;
    try {
      while (this.#outbox.length > 0 && this.usable) {
        const bytes = concat(this.#outbox.splice(0));
        for (let at = 0; at < bytes.length && this.usable;) {
          at += await conn.write(bytes.subarray(at));
        }
      }
    } catch (e) {
      this.#fail(`${this.path}: ${(e as Error).message}`);
    } finally {
      this.#flushing = false;
    }
  }

  /** Sends one unary request; `done` settles with the answer or a RuntimeUnreachableError. */
  request(path: string, headers: [string, string][], body: Uint8Array) {
    if (this.#broken !== undefined) throw new RuntimeUnreachableError(this.#broken);
    const id = this.#next;
    this.#next += 2;
    if (this.#next > MAX_WINDOW) this.#broken = `${this.path}: out of stream ids`;
    const block = encodeHeaders([
      [":method", "POST"],
      [":scheme", "http"],
      [":path", path],
      [":authority", "localhost"],
      ...headers,
    ]);
    if (block.length > this.#maxFrame) {
      throw new RuntimeUnreachableError(`${this.path}: request headers too large`);
    }
    // Our requests are small: one that does not fit the peer's windows at once is refused
    // rather than waiting for WINDOW_UPDATEs.
    if (body.length > Math.min(this.#sendWindow, this.#streamWindow)) {
      throw new RuntimeUnreachableError(`${this.path}: request of ${body.length} bytes too large`);
    }
    this.#sendWindow -= body.length;
    const frames = [frame(HEADERS, END_HEADERS, id, block)];
    for (let at = 0; at < body.length || frames.length === 1; at += this.#maxFrame) {
      const end = at + this.#maxFrame >= body.length;
      frames.push(frame(DATA, end ? END_STREAM : 0, id, body.subarray(at, at + this.#maxFrame)));
    }
    const done = new Promise<Answer>((resolve, reject) => {
      this.#streams.set(id, { fields: [], data: [], resolve, reject });
    });
    this.#conn?.ref();
    this.#send(...frames);
    return { id, done };
  }

  /** Gives up on stream `id` (its deadline passed): RST_STREAM CANCEL, the answer dropped. */
  cancel(id: number): void {
    if (!this.#streams.delete(id)) return;
    this.#idle();
    if (this.usable) this.#send(frame(RST_STREAM, 0, id, u32(CANCEL)));
  }

  #idle(): void {
    if (this.#streams.size === 0) this.#conn?.unref();
  }

  #finish(id: number): void {
    const s = this.#streams.get(id);
    if (!s) return;
    this.#streams.delete(id);
    this.#idle();
    s.resolve({ headers: new Map(s.fields), body: concat(s.data) });
  }

  /** The connection is unusable: every open stream fails with `why` (the whole message). */
  #fail(why: string): void {
    this.#broken ??= why;
    const error = new RuntimeUnreachableError(this.#broken);
    for (const s of this.#streams.values()) s.reject(error);
    this.#streams.clear();
    try {
      this.#conn?.close();
    } catch { /* closed already */ }
  }

  close(): void {
    this.#fail(`${this.path}: connection closed by the client`);
  }

  async #readLoop(conn: Deno.UnixConn): Promise<void> {
    const chunk = new Uint8Array(65_536);
    let buf = new Uint8Array(0);
    try {
      for (;;) {
        const n = await conn.read(chunk);
        if (n === null) throw new Error("connection closed by the runtime");
        const next = new Uint8Array(buf.length + n);
        next.set(buf);
        next.set(chunk.subarray(0, n), buf.length);
        buf = next;
        let at = 0;
        while (buf.length - at >= 9) {
          const len = (buf[at] << 16) | (buf[at + 1] << 8) | buf[at + 2];
          if (len > DEFAULT_MAX_FRAME) throw new Error(`HTTP/2 frame of ${len} bytes`);
          if (buf.length - at < 9 + len) break;
          const stream = new DataView(buf.buffer, buf.byteOffset + at + 5, 4).getUint32(0) &
            0x7fff_ffff;
          this.#frame(buf[at + 3], buf[at + 4], stream, buf.subarray(at + 9, at + 9 + len));
          at += 9 + len;
        }
        buf = buf.subarray(at);
      }
    } catch (e) {
      if (this.usable) this.#fail(`${this.path}: ${(e as Error).message}`);
    }
  }

  #frame(type: number, flags: number, id: number, payload: Uint8Array): void {
    if (this.#pending && type !== CONTINUATION) throw new Error("HTTP/2 header block interrupted");
    const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
    const unpad = (p: Uint8Array) => (flags & PADDED) ? p.subarray(1, p.length - p[0]) : p;
    switch (type) {
      case DATA: {
        this.#received += payload.length;
        if (this.#received >= TOP_UP) {
          this.#send(frame(WINDOW_UPDATE, 0, 0, u32(this.#received)));
          this.#received = 0;
        }
        this.#streams.get(id)?.data.push(unpad(payload));
        if (flags & END_STREAM) this.#finish(id);
        return;
      }
      case HEADERS: {
        let block = unpad(payload);
        if (flags & PRIORITY) block = block.subarray(5);
        this.#pending = { stream: id, flags, parts: [block] };
        if (flags & END_HEADERS) this.#headerBlock();
        return;
      }
      case CONTINUATION: {
        if (!this.#pending || this.#pending.stream !== id) {
          throw new Error("HTTP/2 CONTINUATION without its HEADERS");
        }
        this.#pending.parts.push(payload);
        if (flags & END_HEADERS) this.#headerBlock();
        return;
      }
      case RST_STREAM: {
        const s = this.#streams.get(id);
        this.#streams.delete(id);
        this.#idle();
        s?.reject(
          new RuntimeUnreachableError(
            `${this.path}: stream reset by the runtime (HTTP/2 error ${view.getUint32(0)})`,
          ),
        );
        return;
      }
      case SETTINGS: {
        if (flags & ACK) return;
        for (let at = 0; at + 6 <= payload.length; at += 6) {
          const key = view.getUint16(at);
          const value = view.getUint32(at + 2);
          if (key === SETTINGS_INITIAL_WINDOW_SIZE) this.#streamWindow = value;
          else if (key === SETTINGS_MAX_FRAME_SIZE) this.#maxFrame = value;
        }
        this.#send(frame(SETTINGS, ACK, 0, new Uint8Array()));
        return;
      }
      case PING:
        if (!(flags & ACK)) this.#send(frame(PING, ACK, 0, payload));
        return;
      case GOAWAY: {
        // Streams up to the last one the server took still get their answers.
        const last = view.getUint32(0) & 0x7fff_ffff;
        this.#broken ??= `${this.path}: the runtime closed the connection (GOAWAY ${
          view.getUint32(4)
        })`;
        for (const [sid, s] of this.#streams) {
          if (sid <= last) continue;
          this.#streams.delete(sid);
          s.reject(new RuntimeUnreachableError(this.#broken));
        }
        this.#idle();
        return;
      }
      case WINDOW_UPDATE:
        if (id === 0) this.#sendWindow += view.getUint32(0) & 0x7fff_ffff;
        return;
      case PUSH_PROMISE:
        throw new Error("HTTP/2 PUSH_PROMISE although push is off");
      default:
        return; // PRIORITY and unknown frame types are ignored, as HTTP/2 requires
    }
  }

  #headerBlock(): void {
    const { stream, flags, parts } = this.#pending!;
    this.#pending = undefined;
    // Every block goes through the decoder, a dropped stream's too: the table is shared.
    const fields = this.#decoder.decode(concat(parts));
    const s = this.#streams.get(stream);
    if (!s) return;
    s.fields.push(...fields);
    if (flags & END_STREAM) this.#finish(stream);
  }
}

/** One HTTP/2 connection to a gRPC server on a unix socket (opened on the first call). */
export class GrpcUnixClient {
  #conn?: H2Connection;

  constructor(readonly socketPath: string, readonly timeoutMs = 2000) {}

  /** "connect ECONNREFUSED <path>", as Node words it. */
  #connectError = (e: unknown): string => {
    for (const [kind, errno] of CONNECT_ERRNO) {
      if (e instanceof kind) return `connect ${errno} ${this.socketPath}`;
    }
    return `${this.socketPath}: ${(e as Error).message}`;
  };

  /** The open connection, or a new one when there is none or it broke (the next call retries). */
  #connection(): H2Connection {
    if (this.#conn?.usable) return this.#conn;
    this.#conn?.close();
    this.#conn = new H2Connection(this.socketPath, this.#connectError);
    return this.#conn;
  }

  /**
   * Calls `method` (e.g. `/runtime.v1.RuntimeService/ListContainers`) with an encoded request;
   * resolves to the encoded response message. Rejects with GrpcError (the status from the
   * trailers, or from the headers of a trailers-only answer) or RuntimeUnreachableError (the
   * socket, the connection, or no answer within `timeoutMs`).
   */
  async call(method: string, request: Uint8Array, timeoutMs = this.timeoutMs): Promise<Uint8Array> {
    const body = new Uint8Array(5 + request.length);
    new DataView(body.buffer).setUint32(1, request.length);
    body.set(request, 5);
    // AbortSignal.timeout, not setTimeout: a first setTimeout loads Deno's Node-compatible
    // timers (~10 ms of CPU, more wall time under load), which a status call would pay.
    const signal = AbortSignal.timeout(timeoutMs);
    let expired = () => {};
    const deadline = new Promise<never>((_, reject) => {
      expired = () =>
        reject(
          new RuntimeUnreachableError(`${this.socketPath}: no answer within ${timeoutMs} ms`),
        );
      signal.addEventListener("abort", expired, { once: true });
    });
    let answer: Answer;
    try {
      const conn = this.#connection();
      const { id, done } = conn.request(method, [
        ["content-type", "application/grpc"],
        ["te", "trailers"],
        ["grpc-timeout", `${timeoutMs}m`],
      ], body);
      try {
        answer = await Promise.race([done, deadline]);
      } catch (e) {
        conn.cancel(id);
        throw e;
      }
    } finally {
      signal.removeEventListener("abort", expired);
    }
    const { headers, body: all } = answer;
    const status = headers.get("grpc-status");
    const http = headers.get(":status");
    if (http !== "200" && status === undefined) {
      throw new GrpcError(GRPC_UNKNOWN, `${method}: HTTP ${http}`);
    }
    if (status !== undefined && status !== "0") {
      const message = decodeURIComponent(headers.get("grpc-message") ?? "");
      throw new GrpcError(Number(status), `${method}: ${message || `gRPC status ${status}`}`);
    }
    if (status === undefined) throw new GrpcError(GRPC_INTERNAL, `${method}: no grpc-status`);
    if (all.length < 5) return new Uint8Array();
    if (all[0] !== 0) {
      throw new GrpcError(GRPC_UNIMPLEMENTED, `${method}: compressed responses are not supported`);
    }
    const len = new DataView(all.buffer, all.byteOffset).getUint32(1);
    if (all.length < 5 + len) throw new GrpcError(GRPC_INTERNAL, `${method}: truncated message`);
    return all.subarray(5, 5 + len);
  }

  /** Closes the connection (safe to call twice). */
  close(): void {
    this.#conn?.close();
    this.#conn = undefined;
  }
}
