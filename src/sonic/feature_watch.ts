// Follows one feature's FEATURE|<name> state: keyspace notifications for instant reaction, a
// periodic re-read for when notifications are off or lost, a re-read on every reconnect, and the
// last known state kept through redis restarts. Reports each change once to a callback.
import type { RedisTarget } from "./db_config.ts";
import { describeTarget } from "./db_config.ts";
import {
  connectInBackground,
  createConfigDbClient,
  featureKey,
  readFeatureStateField,
  type RedisClient,
} from "./config_db.ts";
import { describeFeatureState, type FeatureState, interpretFeatureState } from "./feature_state.ts";
import type { Logger } from "../log.ts";

/** Options for watching a feature. */
export interface FeatureWatchOptions {
  target: RedisTarget;
  feature: string;
  log: Logger;
  /** Periodic re-read interval (ms), for lost or disabled notifications. Default 5000. */
  resyncMs?: number;
  /** Called once per state change (and once for the first state read). */
  onChange?: (state: FeatureState, previous: FeatureState | undefined) => void;
}

/** A running watch; `current` is the last known state (undefined until the first read). */
export interface FeatureWatch {
  readonly current: FeatureState | undefined;
  /** true while CONFIG_DB is reachable. */
  readonly connected: boolean;
  /** Date.now() of the last successful read or notification, 0 if none yet. */
  readonly lastContactAt: number;
  /** Resolves with the first state read from CONFIG_DB. */
  readonly firstState: Promise<FeatureState>;
  /** Re-reads the state now (also used on notification); resolves when done. */
  refresh(): Promise<void>;
  /** Stops the subscription, the timer and both connections. */
  close(): Promise<void>;
}

/** A failed read while connected is tried again after this (ms), doubling up to the re-read's. */
const READ_RETRY_MS = 250;
/** Failed reads in a row, while connected, after which the failure is worth a warning. */
const READ_FAILURES_WARN = 4;

/** Starts watching `opts.feature`; never throws for an unreachable database (it keeps trying). */
export function watchFeature(opts: FeatureWatchOptions): FeatureWatch {
  const { target, feature, log } = opts;
  const resyncMs = opts.resyncMs ?? 5000;
  const channel = `__keyspace@${target.db}__:${featureKey(feature)}`;
  let current: FeatureState | undefined;
  let connected = false;
  let lastContactAt = 0;
  let closed = false;
  let resolveFirst!: (state: FeatureState) => void;
  const firstState = new Promise<FeatureState>((resolve) => (resolveFirst = resolve));
  let everConnected = false;

  const onConnectionChange = (up: boolean, detail: string) => {
    if (closed) return;
    if (up === connected) return;
    connected = up;
    if (up) {
      log.info(everConnected ? "CONFIG_DB reconnected" : "CONFIG_DB connected", { db: detail });
      everConnected = true;
      void refresh();
    } else {
      log.warn("CONFIG_DB unreachable; keeping the last known state and retrying", {
        state: current ? describeFeatureState(current) : "unknown",
        reason: detail,
      });
    }
  };

  const client: RedisClient = createConfigDbClient(target, { onConnectionChange });
  const subscriber: RedisClient = client.duplicate();
  subscriber.on("error", () => {/* the main client reports connection changes */});

  let inFlight: Promise<void> | undefined;
  let retry: ReturnType<typeof setTimeout> | undefined;
  let again = false;
  let failures = 0;
  async function readOnce(): Promise<void> {
    try {
      const raw = await readFeatureStateField(client, feature);
      lastContactAt = Date.now();
      failures = 0;
      const next = interpretFeatureState(raw);
      const previous = current;
      if (!previous || previous.raw !== next.raw) {
        current = next;
        if (next.warning) log.warn(next.warning, { key: featureKey(feature) });
        if (!previous) resolveFirst(next);
        opts.onChange?.(next, previous);
      }
    } catch (error) {
      const reason = (error as Error).message.split("\n")[0];
      if (!connected) {
        log.debug("FEATURE read failed", { reason });
        return; // the reconnect re-reads
      }
      // Connected but the read failed: a restarted redis answers LOADING until its dump is in,
      // and the re-read on reconnect is then lost. Try again shortly rather than at the next
      // periodic re-read, less often the longer it lasts.
      failures++;
      const fields = { key: featureKey(feature), reason, failures };
      if (failures === READ_FAILURES_WARN) {
        log.warn("FEATURE cannot be read; keeping the last known state and retrying", fields);
      } else log.debug("FEATURE read failed", fields);
      if (!closed && retry === undefined) {
        const delay = Math.min(
          READ_RETRY_MS * 2 ** (failures - 1),
          Math.max(resyncMs, READ_RETRY_MS),
        );
        retry = setTimeout(() => {
          retry = undefined;
          void refresh();
        }, delay);
      }
    }
  }
  function refresh(): Promise<void> {
    if (closed) return Promise.resolve();
    if (inFlight) {
      again = true;
      return inFlight;
    }
    inFlight = (async () => {
      do {
        again = false;
        await readOnce();
      } while (again && !closed);
      inFlight = undefined;
    })();
    return inFlight;
  }

  subscriber.on("ready", () => {
    // After a resubscribe, anything published while we were away is lost: re-read.
    void refresh();
  });

  void connectInBackground(client);
  void connectInBackground(subscriber).then(async () => {
    if (closed) return;
    try {
      await subscriber.subscribe(channel, () => {
        lastContactAt = Date.now();
        void refresh();
      });
    } catch (error) {
      log.warn("keyspace subscription failed; relying on periodic re-read", {
        channel,
        reason: (error as Error).message,
      });
    }
  });

  const timer = setInterval(() => void refresh(), resyncMs);
  log.debug("watching feature", { db: describeTarget(target), channel, resync_ms: resyncMs });

  return {
    get current() {
      return current;
    },
    get connected() {
      return connected;
    },
    get lastContactAt() {
      return lastContactAt;
    },
    firstState,
    refresh,
    async close() {
      closed = true;
      clearInterval(timer);
      clearTimeout(retry);
      for (const c of [subscriber, client]) {
        try {
          if (c.isOpen) c.destroy();
        } catch {
          // already closed
        }
      }
      await inFlight?.catch(() => {});
    },
  };
}
