// A ZeroMQ PUB socket's side of one connection, spoken directly (ZMTP 3.0, RFC 23/ZMTP with the
// NULL mechanism, RFC 29/PUBSUB): the 64-byte greeting, the READY handshake with
// `Socket-Type: PUB`, the peer's subscriptions, and framed multipart messages. Enough to publish
// into eventd's XSUB endpoint the way libzmq's PUB socket does, without libzmq: a message goes out
// only when the peer has subscribed to a prefix of its first frame, as a PUB filters.
// Endpoints: `tcp://host:port` and `ipc:///path` (a unix socket).

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const FLAG_MORE = 0x01;
const FLAG_LONG = 0x02;
const FLAG_COMMAND = 0x04;

/** Socket types a PUB may talk to (RFC 29). */
const PUB_PEERS = new Set(["SUB", "XSUB"]);

/** A connection problem: refused, reset, timed out, a peer that is not a ZMTP subscriber. */
export class ZmtpError extends Error {}

/** Where to connect, parsed from a ZeroMQ endpoint string. Throws ZmtpError when unsupported. */
export function parseEndpoint(
  endpoint: string,
): { transport: "tcp"; hostname: string; port: number } | { transport: "unix"; path: string } {
  const tcp = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d{1,5})$/.exec(endpoint);
  if (tcp) {
    const port = Number(tcp[2]);
    if (port < 1 || port > 65535) throw new ZmtpError(`${endpoint}: port out of range`);
    return { transport: "tcp", hostname: tcp[1].replace(/^\[|\]$/g, ""), port };
  }
  const ipc = /^ipc:\/\/(\/.+)$/.exec(endpoint);
  if (ipc) return { transport: "unix", path: ipc[1] };
  throw new ZmtpError(`${endpoint}: not a tcp:// or ipc:// endpoint`);
}

/** The greeting: signature, version 3.0, mechanism NULL, as-server 0, filler. */
export function greeting(): Uint8Array {
  const g = new Uint8Array(64);
  g[0] = 0xff;
  g[9] = 0x7f;
  g[10] = 3;
  g[11] = 0;
  g.set(encoder.encode("NULL"), 12);
  return g;
}

/** One frame: flags, 1- or 8-byte size, body. */
export function frame(body: Uint8Array, flags: number): Uint8Array {
  const long = body.length > 255;
  const head = long ? 9 : 2;
  const out = new Uint8Array(head + body.length);
  out[0] = flags | (long ? FLAG_LONG : 0);
  if (long) new DataView(out.buffer).setBigUint64(1, BigInt(body.length));
  else out[1] = body.length;
  out.set(body, head);
  return out;
}

/** The READY command body with its metadata properties (name: 1-byte length, value: 4-byte). */
export function readyCommand(properties: Record<string, string>): Uint8Array {
  const parts: number[] = [5, ...encoder.encode("READY")];
  for (const [name, value] of Object.entries(properties)) {
    const v = encoder.encode(value);
    parts.push(name.length, ...encoder.encode(name));
    parts.push(
      (v.length >>> 24) & 0xff,
      (v.length >>> 16) & 0xff,
      (v.length >>> 8) & 0xff,
      v.length & 0xff,
    );
    parts.push(...v);
  }
  return Uint8Array.from(parts);
}

/** A frame as read from the peer. */
interface PeerFrame {
  command: boolean;
  more: boolean;
  body: Uint8Array;
}

/** A PUB connection to one subscriber endpoint (eventd's XSUB). */
export class ZmtpPublisher {
  #conn: Deno.Conn;
  #buf = new Uint8Array(0);
  #subscriptions: Uint8Array[] = [];
  #closed = false;
  #peerType = "";

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** The peer's Socket-Type from its READY (`SUB` or `XSUB`). */
  get peerSocketType(): string {
    return this.#peerType;
  }

  /**
   * Connects to `endpoint` and completes the greeting and the NULL handshake within `timeoutMs`.
   * Rejects with ZmtpError (refused, no answer, not a ZMTP 3 SUB/XSUB peer).
   */
  static async connect(endpoint: string, timeoutMs: number): Promise<ZmtpPublisher> {
    const target = parseEndpoint(endpoint);
    const deadline = Date.now() + timeoutMs;
    let conn: Deno.Conn;
    try {
      conn = await withDeadline(Deno.connect(target as Deno.ConnectOptions), deadline, endpoint);
    } catch (e) {
      throw e instanceof ZmtpError ? e : new ZmtpError(`${endpoint}: ${(e as Error).message}`);
    }
    const pub = new ZmtpPublisher(conn);
    try {
      await withDeadline(conn.write(greeting()), deadline, endpoint).then(() => {});
      const peer = await pub.#readExactly(64, deadline, endpoint);
      if (peer[0] !== 0xff || peer[9] !== 0x7f) throw new ZmtpError(`${endpoint}: not a ZMTP peer`);
      if (peer[10] < 3) throw new ZmtpError(`${endpoint}: ZMTP ${peer[10]}.x peer, 3.x needed`);
      const mechanism = decoder.decode(peer.subarray(12, 32)).replace(/\0+$/, "");
      if (mechanism !== "NULL") {
        throw new ZmtpError(`${endpoint}: peer wants the ${mechanism} mechanism, not NULL`);
      }
      await withDeadline(
        conn.write(frame(readyCommand({ "Socket-Type": "PUB" }), FLAG_COMMAND)),
        deadline,
        endpoint,
      );
      const ready = await pub.#readFrame(deadline, endpoint);
      const { name, data } = parseCommand(ready, endpoint);
      if (name === "ERROR") {
        throw new ZmtpError(`${endpoint}: peer refused: ${decoder.decode(data.subarray(1))}`);
      }
      if (name !== "READY") throw new ZmtpError(`${endpoint}: expected READY, got ${name}`);
      const type = readyProperties(data)["socket-type"] ?? "";
      if (!PUB_PEERS.has(type.toUpperCase())) {
        throw new ZmtpError(
          `${endpoint}: peer is a ${type || "socket without type"}, not SUB/XSUB`,
        );
      }
      pub.#peerType = type.toUpperCase();
      return pub;
    } catch (e) {
      pub.close();
      throw e instanceof ZmtpError ? e : new ZmtpError(`${endpoint}: ${(e as Error).message}`);
    }
  }

  /**
   * Waits until the peer has subscribed to a prefix of `topic` (libzmq's XSUB sends its
   * subscriptions right after the handshake). Resolves false when `deadline` passes first or the
   * peer closes; never rejects.
   */
  async waitSubscribed(topic: Uint8Array, deadline: number): Promise<boolean> {
    while (!this.subscribedTo(topic)) {
      let f: PeerFrame;
      try {
        f = await this.#readFrame(deadline, "peer");
      } catch {
        return false;
      }
      this.#noteFrame(f);
    }
    return true;
  }

  /** True when a subscription received so far is a prefix of `topic`. */
  subscribedTo(topic: Uint8Array): boolean {
    return this.#subscriptions.some((s) =>
      s.length <= topic.length && s.every((b, i) => topic[i] === b)
    );
  }

  #noteFrame(f: PeerFrame) {
    // ZMTP 3.0 subscriptions are messages whose first byte is 1 (subscribe) or 0 (cancel); 3.1
    // peers may send SUBSCRIBE / CANCEL commands instead.
    let kind: number | undefined;
    let topic: Uint8Array | undefined;
    if (f.command) {
      const c = parseCommand(f, "peer");
      if (c.name === "SUBSCRIBE") [kind, topic] = [1, c.data];
      else if (c.name === "CANCEL") [kind, topic] = [0, c.data];
    } else if (f.body.length > 0) {
      [kind, topic] = [f.body[0], f.body.subarray(1)];
    }
    if (topic === undefined) return;
    const same = (s: Uint8Array) =>
      s.length === topic!.length && s.every((b, i) => topic![i] === b);
    if (kind === 1) this.#subscriptions.push(topic.slice());
    else if (kind === 0) {
      const i = this.#subscriptions.findIndex(same);
      if (i !== -1) this.#subscriptions.splice(i, 1);
    }
  }

  /** Sends one multipart message (all frames but the last carry MORE) before `deadline`. */
  async send(parts: Uint8Array[], deadline: number): Promise<void> {
    const frames = parts.map((p, i) => frame(p, i < parts.length - 1 ? FLAG_MORE : 0));
    const all = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
    let at = 0;
    for (const f of frames) {
      all.set(f, at);
      at += f.length;
    }
    let written = 0;
    while (written < all.length) {
      written += await withDeadline(this.#conn.write(all.subarray(written)), deadline, "send");
    }
  }

  /**
   * Ends the connection gracefully: half-closes (FIN after everything written), then reads what
   * the peer still sends until it closes or `deadline` passes, so no RST discards queued data.
   */
  async finish(deadline: number): Promise<void> {
    try {
      await this.#conn.closeWrite();
      const buf = new Uint8Array(4096);
      while ((await withDeadline(this.#conn.read(buf), deadline, "close")) !== null) { /* drain */ }
    } catch { /* deadline or reset: closing anyway */ }
    this.close();
  }

  /** Closes the connection at once. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }

  async #fill(n: number, deadline: number, what: string) {
    while (this.#buf.length < n) {
      const chunk = new Uint8Array(Math.max(4096, n - this.#buf.length));
      const got = await withDeadline(this.#conn.read(chunk), deadline, what);
      if (got === null) throw new ZmtpError(`${what}: connection closed by the peer`);
      const next = new Uint8Array(this.#buf.length + got);
      next.set(this.#buf);
      next.set(chunk.subarray(0, got), this.#buf.length);
      this.#buf = next;
    }
  }

  async #readExactly(n: number, deadline: number, what: string): Promise<Uint8Array> {
    await this.#fill(n, deadline, what);
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(n);
    return out;
  }

  async #readFrame(deadline: number, what: string): Promise<PeerFrame> {
    const [flags] = await this.#readExactly(1, deadline, what);
    let size: number;
    if (flags & FLAG_LONG) {
      const b = await this.#readExactly(8, deadline, what);
      const big = new DataView(b.buffer).getBigUint64(0);
      if (big > 1n << 20n) throw new ZmtpError(`${what}: a ${big}-byte frame from the peer`);
      size = Number(big);
    } else size = (await this.#readExactly(1, deadline, what))[0];
    const body = await this.#readExactly(size, deadline, what);
    return { command: (flags & FLAG_COMMAND) !== 0, more: (flags & FLAG_MORE) !== 0, body };
  }
}

function parseCommand(f: PeerFrame, what: string): { name: string; data: Uint8Array } {
  if (!f.command || f.body.length < 1 || f.body.length < 1 + f.body[0]) {
    throw new ZmtpError(`${what}: expected a command frame`);
  }
  const n = f.body[0];
  return { name: decoder.decode(f.body.subarray(1, 1 + n)), data: f.body.subarray(1 + n) };
}

/** READY's metadata, names lower-cased (ZMTP names are case-insensitive). */
function readyProperties(data: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const n = data[i];
    const name = decoder.decode(data.subarray(i + 1, i + 1 + n)).toLowerCase();
    i += 1 + n;
    if (i + 4 > data.length) break;
    const len = new DataView(data.buffer, data.byteOffset + i, 4).getUint32(0);
    i += 4;
    out[name] = decoder.decode(data.subarray(i, i + len));
    i += len;
  }
  return out;
}

/** `p`, or a ZmtpError once `deadline` (epoch ms) passes. */
async function withDeadline<T>(p: Promise<T>, deadline: number, what: string): Promise<T> {
  const left = deadline - Date.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new ZmtpError(`${what}: no answer in time`)),
          Math.max(0, left),
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
