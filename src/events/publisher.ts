// SONiC's event publisher (sonic-swss-common events.cpp, events_common.h), reimplemented: the
// checkers' `event-down-ctr` and `mem-threshold-exceeded` (YANG module sonic-events-host) go to
// eventd's XSUB endpoint as SONiC's publisher sends them. Each event is a two-part ZMQ message:
//   1. the source, `sonic-events-host`, as a Boost text archive of a std::string;
//   2. a Boost text archive of std::map<string,string> {d, r, s, t}: d = the event as compact JSON
//      `{"sonic-events-host:<tag>":{<params>, "timestamp": …}}` (keys sorted, as nlohmann
//      dumps a std::map), r = this publisher's runtime ID (a UUID), s = its sequence number from
//      1, t = the publish time in nanoseconds since the epoch.
// After its events the publisher retires its runtime ID with a `CONTROL_DEINIT` message, as
// events_deinit_publisher does. The endpoint comes from `/etc/sonic/init_cfg.json`
// (`events.xsub_path`), default `tcp://127.0.0.1:5570`. Publishing never throws and is bounded
// by a deadline: without eventd it is a refused connection and a debug line.
import type { Logger } from "../log.ts";
import { boostString, boostStringMap, compareBytes } from "./boost_text.ts";
import { ZmtpPublisher } from "./zmtp.ts";

/** The YANG module of the host's events (the publisher's source). */
export const EVENTS_SOURCE_HOST = "sonic-events-host";
/** SONiC's init config, whose `events` object names the proxy's endpoints. */
export const INIT_CFG_PATH = "/etc/sonic/init_cfg.json";
/** eventd's XSUB endpoint when init_cfg.json does not name one (events_common.cpp). */
export const DEFAULT_XSUB_ENDPOINT = "tcp://127.0.0.1:5570";
/** The control message that retires a runtime ID. */
export const CONTROL_DEINIT = "CONTROL_DEINIT";
/** The parameter the framework adds to every event when the caller did not. */
export const TIMESTAMP_PARAM = "timestamp";

/** One event: its tag (the YANG container) and its leaves as strings. */
export interface SonicEvent {
  tag: string;
  params: Record<string, string>;
}

/** Where and how long to publish. */
export interface PublishOptions {
  /** The XSUB endpoint; default: from `initCfgPath`. */
  endpoint?: string;
  /** init_cfg.json (default KS_INIT_CFG, else /etc/sonic/init_cfg.json). */
  initCfgPath?: string;
  /** Bound on the whole publish (connect, handshake, send, close); default 1000 ms. */
  timeoutMs?: number;
  logger?: Logger;
  /** The clock (tests): epoch milliseconds with a fraction. */
  nowMs?: () => number;
}

/** What publishing did. */
export interface PublishResult {
  endpoint: string;
  published: number;
  /** Why nothing went out (no eventd, nobody subscribed, a bad endpoint), if so. */
  skipped?: string;
}

/**
 * eventd's XSUB endpoint: `events.xsub_path` of init_cfg.json, else the default. A missing or
 * unreadable file, or one without that key, gives the default (SONiC's publisher does the same
 * for a missing file); a key that is not a string is ignored with the default too.
 */
export async function resolveXsubEndpoint(initCfgPath?: string): Promise<string> {
  const path = initCfgPath ?? Deno.env.get("KS_INIT_CFG") ?? INIT_CFG_PATH;
  try {
    const cfg = JSON.parse(await Deno.readTextFile(path)) as { events?: { xsub_path?: unknown } };
    const value = cfg?.events?.xsub_path;
    return typeof value === "string" && value !== "" ? value : DEFAULT_XSUB_ENDPOINT;
  } catch {
    return DEFAULT_XSUB_ENDPOINT;
  }
}

/**
 * The `timestamp` leaf as SONiC's get_timestamp writes it, `%FT%H:%M:%S.<µs>Z`; here always in
 * UTC (SONiC formats local time, UTC on a switch) and the microseconds zero-padded to 6 digits
 * (SONiC drops leading zeros, which misreads as a larger fraction).
 */
export function eventTimestamp(epochMs: number): string {
  const d = new Date(Math.floor(epochMs));
  const micros = Math.floor(epochMs * 1000) % 1_000_000;
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())}T` +
    `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}.${p(micros, 6)}Z`;
}

/** The event's JSON (`d`): `{"<source>:<tag>":{params}}`, keys sorted, compact. */
export function eventJson(source: string, event: SonicEvent, epochMs: number): string {
  const params: Record<string, string> = { ...event.params };
  if (!(TIMESTAMP_PARAM in params)) params[TIMESTAMP_PARAM] = eventTimestamp(epochMs);
  const sorted: Record<string, string> = {};
  for (const k of Object.keys(params).sort(compareBytes)) sorted[k] = params[k];
  return JSON.stringify({ [`${source}:${event.tag}`]: sorted });
}

const encoder = new TextEncoder();

/** The two ZMQ parts of one message of publisher `runtimeId` with sequence `seq`. */
export function eventMessage(
  source: string,
  data: string,
  runtimeId: string,
  seq: number,
  epochMs: number,
): [Uint8Array, Uint8Array] {
  const epochNs = (BigInt(Math.floor(epochMs)) * 1_000_000n +
    BigInt(Math.floor((epochMs % 1) * 1_000_000))).toString();
  return [
    encoder.encode(boostString(source)),
    encoder.encode(boostStringMap({ d: data, r: runtimeId, s: String(seq), t: epochNs })),
  ];
}

/**
 * Publishes `events` from `source` as one publisher instance (one runtime ID, sequence 1..n, then
 * CONTROL_DEINIT). Never throws; resolves within about `timeoutMs`. Nothing is sent when nobody
 * listens at the endpoint or nobody subscribed to the source (a PUB socket drops such messages).
 */
export async function publishEvents(
  source: string,
  events: SonicEvent[],
  opts: PublishOptions = {},
): Promise<PublishResult> {
  const endpoint = opts.endpoint ?? await resolveXsubEndpoint(opts.initCfgPath);
  const now = opts.nowMs ?? (() => performance.timeOrigin + performance.now());
  const log = opts.logger;
  if (events.length === 0) return { endpoint, published: 0, skipped: "no events" };
  const deadline = Date.now() + (opts.timeoutMs ?? 1000);
  let pub: ZmtpPublisher;
  try {
    pub = await ZmtpPublisher.connect(endpoint, deadline - Date.now());
  } catch (e) {
    const reason = (e as Error).message;
    log?.debug("events not published: no eventd", { endpoint, reason });
    return { endpoint, published: 0, skipped: reason };
  }
  try {
    const topic = encoder.encode(boostString(source));
    if (!await pub.waitSubscribed(topic, deadline)) {
      log?.debug("events not published: nobody subscribed", { endpoint });
      return { endpoint, published: 0, skipped: "nobody subscribed" };
    }
    const runtimeId = crypto.randomUUID();
    let seq = 0;
    for (const event of events) {
      const t = now();
      const data = eventJson(source, event, t);
      await pub.send(eventMessage(source, data, runtimeId, ++seq, t), deadline);
      log?.debug("event published", { endpoint, event: `${source}:${event.tag}`, seq });
    }
    await pub.send(eventMessage(source, CONTROL_DEINIT, runtimeId, ++seq, now()), deadline);
    return { endpoint, published: events.length };
  } catch (e) {
    const reason = (e as Error).message;
    log?.debug("events not published", { endpoint, reason });
    return { endpoint, published: 0, skipped: reason };
  } finally {
    await pub.finish(deadline);
  }
}
