// A measurement prototype, not a product: ks-watchdog's serve mode with the CONFIG_DB client
// swapped for a minimal RESP2 reader over Deno.connect (HGET on one connection, SUBSCRIBE to the
// keyspace channel on another, a re-read every 5 s and on every reconnect), to measure what
// npm:redis costs in memory against the same HTTP server, health logic and probes
// (src/watchdog/*). `deno task bench footprint` bundles and runs it beside the real tool.
//
// Usage: resp_watchdog.ts --feature NAME --listen HOST:PORT [--tcp HOST:PORT] [--process NAME]
import { parseArgs } from "node:util";
import { resolveRedisTarget } from "../../src/sonic/db_config.ts";
import { type FeatureState, interpretFeatureState } from "../../src/sonic/feature_state.ts";
import { HealthEvaluator } from "../../src/watchdog/health.ts";
import { type Probe, processProbe, tcpProbe } from "../../src/watchdog/probes.ts";
import { createHandler } from "../../src/watchdog/server.ts";

type Reply = string | number | null | Reply[] | Error;

/** Reads RESP2 replies from a byte stream, one at a time. */
class RespReader {
  #buf = new Uint8Array(0);
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }
  async #fill(): Promise<void> {
    const { value, done } = await this.#reader.read();
    if (done) throw new Error("connection closed");
    const next = new Uint8Array(this.#buf.length + value.length);
    next.set(this.#buf);
    next.set(value, this.#buf.length);
    this.#buf = next;
  }
  async #line(): Promise<string> {
    while (true) {
      const i = this.#buf.indexOf(13);
      if (i >= 0 && i + 1 < this.#buf.length) {
        const line = new TextDecoder().decode(this.#buf.subarray(0, i));
        this.#buf = this.#buf.subarray(i + 2);
        return line;
      }
      await this.#fill();
    }
  }
  async read(): Promise<Reply> {
    const line = await this.#line();
    const rest = line.slice(1);
    switch (line[0]) {
      case "+":
        return rest;
      case "-":
        return new Error(rest);
      case ":":
        return Number(rest);
      case "$": {
        const n = Number(rest);
        if (n < 0) return null;
        while (this.#buf.length < n + 2) await this.#fill();
        const s = new TextDecoder().decode(this.#buf.subarray(0, n));
        this.#buf = this.#buf.subarray(n + 2);
        return s;
      }
      case "*": {
        const n = Number(rest);
        if (n < 0) return null;
        const items: Reply[] = [];
        for (let i = 0; i < n; i++) items.push(await this.read());
        return items;
      }
      default:
        throw new Error(`bad RESP line ${JSON.stringify(line)}`);
    }
  }
}

function encode(args: string[]): Uint8Array {
  return new TextEncoder().encode(
    `*${args.length}\r\n` + args.map((a) => `$${new TextEncoder().encode(a).length}\r\n${a}\r\n`)
      .join(""),
  );
}

const { values } = parseArgs({
  options: {
    feature: { type: "string" },
    listen: { type: "string", default: "127.0.0.1:50069" },
    tcp: { type: "string", multiple: true, default: [] },
    process: { type: "string", multiple: true, default: [] },
  },
});
const feature = values.feature!;
const target = resolveRedisTarget({});
const key = `FEATURE|${feature}`;
const probes: Probe[] = [
  ...values.tcp!.map((t) => tcpProbe(t.split(":")[0], Number(t.split(":")[1]))),
  ...values.process!.map((p) => processProbe(p)),
];
let state: FeatureState | undefined;
let connected = false;

function dial(): Promise<Deno.Conn> {
  return target.socketPath
    ? Deno.connect({ transport: "unix", path: target.socketPath })
    : Deno.connect({ hostname: target.host, port: target.port });
}

/** The command connection: SELECT, then HGET on demand (serialised). */
async function commandLoop(): Promise<void> {
  while (true) {
    try {
      const conn = await dial();
      const reader = new RespReader(conn.readable);
      const writer = conn.writable.getWriter();
      const call = async (args: string[]) => {
        await writer.write(encode(args));
        return await reader.read();
      };
      await call(["SELECT", String(target.db)]);
      connected = true;
      refresh = async () => {
        const v = await call(["HGET", key, "state"]);
        if (v instanceof Error) return;
        const next = interpretFeatureState(v as string | null);
        if (next.raw !== state?.raw) {
          console.error(`resp_watchdog[${Deno.pid}]: ${feature}: FEATURE state state=${next.raw}`);
        }
        state = next;
      };
      await refresh();
      let timer: ReturnType<typeof setInterval> | undefined;
      await new Promise<void>((_, reject) => {
        timer = setInterval(() => refresh().catch(reject), 5000);
      }).catch(() => conn.close());
      clearInterval(timer);
    } catch { /* down: retry */ }
    connected = false;
    await new Promise((r) => setTimeout(r, 1000));
  }
}
let refresh: () => Promise<void> = () => Promise.resolve();

/** The subscriber connection: every keyspace event on the row triggers a re-read. */
async function subscribeLoop(): Promise<void> {
  while (true) {
    try {
      const conn = await dial();
      const reader = new RespReader(conn.readable);
      await conn.write(encode(["SUBSCRIBE", `__keyspace@${target.db}__:${key}`]));
      while (true) {
        const msg = await reader.read();
        if (Array.isArray(msg) && msg[0] === "message") void refresh().catch(() => {});
      }
    } catch { /* down: retry */ }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

const health = new HealthEvaluator({ feature, probes, probeBudgetMs: 775, readyGraceMs: 10_000 });
const [host, port] = values.listen!.split(":");
Deno.serve(
  { hostname: host, port: Number(port), onListen: () => {} },
  createHandler(
    feature,
    (check) => health.evaluate(check, { state, connected, unreachableMs: 0 }),
    800,
  ),
);
console.error(`resp_watchdog[${Deno.pid}]: ${feature}: serving listen=${values.listen}`);
void commandLoop();
void subscribeLoop();
