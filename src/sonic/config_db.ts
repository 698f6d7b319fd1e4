// The one redis client for CONFIG_DB: connects to a RedisTarget (unix socket preferred), survives
// redis restarts (reconnect with capped backoff, commands fail fast while down instead of
// queueing), and reads FEATURE rows. Everything that talks to CONFIG_DB goes through here.
// The client is npm:redis's own: `@redis/client`, the package `redis` re-exports (same pinned
// version), without the RedisBloom/JSON/Search/TimeSeries command modules `redis` adds, which
// CONFIG_DB never uses: 250 KB less bundle and 2-3 MiB less resident memory per process.
import { createClient, type RedisClientType } from "@redis/client";
import type { RedisTarget } from "./db_config.ts";
import { describeTarget } from "./db_config.ts";
import { CONFIG_DB_COMMANDS } from "./config_db_commands.ts";

/**
 * The npm:redis client as the tools use it: the connection, pub/sub and the commands of
 * CONFIG_DB_COMMANDS only (the bundles carry no other command; see src/build/bundle_trim.ts).
 */
export type RedisClient = Pick<
  RedisClientType,
  | (typeof CONFIG_DB_COMMANDS)[keyof typeof CONFIG_DB_COMMANDS]
  | "subscribe"
  | "on"
  | "once"
  | "connect"
  | "destroy"
  | "duplicate"
  | "isOpen"
  | "isReady"
>;

/** Options for a CONFIG_DB connection. */
export interface ConnectOptions {
  /** Per-command timeout (ms); default 2000. */
  commandTimeoutMs?: number;
  /** First reconnect delay (ms); doubles up to maxBackoffMs. Default 50. */
  minBackoffMs?: number;
  /** Reconnect delay cap (ms). Default 1000 (a restarted database is picked up within 1 s). */
  maxBackoffMs?: number;
  /** Called on connection state changes (for one log line per change). */
  onConnectionChange?: (connected: boolean, detail: string) => void;
}

/** Creates (but does not wait for) a client for `target`; it reconnects forever on its own. */
export function createConfigDbClient(target: RedisTarget, opts: ConnectOptions = {}): RedisClient {
  const minBackoff = opts.minBackoffMs ?? 50;
  const maxBackoff = opts.maxBackoffMs ?? 1000;
  const socket = target.socketPath
    ? { path: target.socketPath }
    : { host: target.host, port: target.port };
  const client = createClient({
    socket: {
      ...socket,
      connectTimeout: opts.commandTimeoutMs ?? 2000,
      reconnectStrategy: (retries: number) => Math.min(maxBackoff, minBackoff * 2 ** retries),
    },
    database: target.db,
    disableOfflineQueue: true,
  });
  let connected = false;
  client.on("ready", () => {
    if (!connected) {
      connected = true;
      opts.onConnectionChange?.(true, describeTarget(target));
    }
  });
  client.on("error", (error: Error) => {
    if (connected) {
      connected = false;
      opts.onConnectionChange?.(false, `${describeTarget(target)}: ${error.message}`);
    }
  });
  client.on("end", () => {
    connected = false;
  });
  return client;
}

/**
 * Starts connecting `client` in the background. Never rejects: while the server is down the
 * client keeps retrying with backoff. Returns a promise that resolves when first connected.
 */
export function connectInBackground(client: RedisClient): Promise<void> {
  if (client.isReady) return Promise.resolve();
  return new Promise((resolve) => {
    client.once("ready", () => resolve());
    if (!client.isOpen) {
      client.connect().catch(() => {
        // The reconnect strategy keeps trying; "ready" resolves us later.
      });
    }
  });
}

/** Rejects after `ms` with a message naming `what`, unless `promise` settles first. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The CONFIG_DB key of a feature's row: `FEATURE|<feature>`. */
export function featureKey(feature: string): string {
  return `FEATURE|${feature}`;
}

/**
 * Reads one feature's `state` field; null when the row or field is missing.
 * Throws when CONFIG_DB cannot be reached within the timeout.
 */
export async function readFeatureStateField(
  client: RedisClient,
  feature: string,
  timeoutMs = 2000,
): Promise<string | null> {
  if (!client.isReady) throw new Error("CONFIG_DB is not connected");
  const value = await withTimeout(
    client.hGet(featureKey(feature), "state"),
    timeoutMs,
    `HGET ${featureKey(feature)} state`,
  );
  return value ?? null;
}

/** A FEATURE table: feature name -> its fields. */
export type FeatureTable = Map<string, Record<string, string>>;

/** Reads the whole FEATURE table (SCAN, not KEYS, so a big database is not blocked). */
export async function readFeatureTable(
  client: RedisClient,
  timeoutMs = 5000,
): Promise<FeatureTable> {
  if (!client.isReady) throw new Error("CONFIG_DB is not connected");
  const work = async () => {
    const table: FeatureTable = new Map();
    const keys: string[] = [];
    let cursor = "0";
    do {
      const reply = await client.scan(cursor, { MATCH: "FEATURE|*", COUNT: 500 });
      cursor = String(reply.cursor);
      keys.push(...reply.keys);
    } while (cursor !== "0");
    for (const key of keys.sort()) {
      const fields = await client.hGetAll(key);
      table.set(key.slice("FEATURE|".length), { ...fields });
    }
    return table;
  };
  return await withTimeout(work(), timeoutMs, "reading the FEATURE table");
}
