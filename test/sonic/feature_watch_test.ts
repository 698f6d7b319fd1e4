import assert from "node:assert/strict";
import { resolveRedisTarget } from "../../src/sonic/db_config.ts";
import type { FeatureState } from "../../src/sonic/feature_state.ts";
import { watchFeature } from "../../src/sonic/feature_watch.ts";
import { createLogger, type Logger } from "../../src/log.ts";
import { startRedis } from "../../sandbox/harness/redis.ts";
import { waitUntil } from "../../sandbox/harness/net.ts";

const quiet = createLogger("test", "telemetry", () => {});

Deno.test("reports the first state and each flip, both ways, from keyspace notifications", async () => {
  const redis = await startRedis();
  const changes: (string | null)[] = [];
  const watch = watchFeature({
    target: resolveRedisTarget({ dbConfigPath: redis.main.dbConfigPath }),
    feature: "telemetry",
    log: quiet,
    resyncMs: 60_000, // long: only notifications can deliver the flips in time
    onChange: (s: FeatureState) => changes.push(s.raw),
  });
  try {
    assert.equal((await watch.firstState).on, true);
    for (const value of ["disabled", "always_enabled", "always_disabled", "enabled"]) {
      await redis.setFeatureState("telemetry", value);
      await waitUntil(() => watch.current?.raw === value, 30_000, value);
    }
    await redis.command(["DEL", "FEATURE|telemetry"]);
    await waitUntil(() => watch.current?.raw === null, 30_000, "row deleted");
    assert.deepEqual(changes, [
      "enabled",
      "disabled",
      "always_enabled",
      "always_disabled",
      "enabled",
      null,
    ]);
  } finally {
    await watch.close();
    await redis.stop();
  }
});

Deno.test("falls back to the periodic re-read when notifications are off", async () => {
  const redis = await startRedis({ notifyKeyspaceEvents: "" });
  const watch = watchFeature({
    target: resolveRedisTarget({ dbConfigPath: redis.main.dbConfigPath }),
    feature: "bmp",
    log: quiet,
    resyncMs: 100,
  });
  try {
    assert.equal((await watch.firstState).on, false);
    await redis.setFeatureState("bmp", "enabled");
    await waitUntil(() => watch.current?.on === true, 30_000, "bmp enabled by resync");
  } finally {
    await watch.close();
    await redis.stop();
  }
});

Deno.test("keeps the last known state while redis is down and picks up changes after it returns", async () => {
  const redis = await startRedis();
  const lines: string[] = [];
  const watch = watchFeature({
    target: resolveRedisTarget({ dbConfigPath: redis.main.dbConfigPath }),
    feature: "telemetry",
    log: createLogger("test", "telemetry", (l) => lines.push(l)),
    resyncMs: 60_000,
  });
  try {
    assert.equal((await watch.firstState).on, true);
    await redis.kill();
    await waitUntil(() => !watch.connected, 30_000, "disconnect noticed");
    assert.equal(watch.current?.on, true, "last known state kept");
    // The change happens while the watcher is disconnected: only the re-read on reconnect sees it.
    await redis.restart();
    await redis.setFeatureState("telemetry", "disabled");
    await waitUntil(() => watch.current?.raw === "disabled", 30_000, "state after restart")
      .catch((error) => {
        throw new Error(`${error.message}; the watcher logged:\n${lines.join("\n")}`);
      });
    assert.ok(lines.some((l) => l.includes("CONFIG_DB unreachable")), lines.join("\n"));
    assert.ok(lines.some((l) => l.includes("CONFIG_DB reconnected")), lines.join("\n"));
  } finally {
    await watch.close();
    await redis.stop();
  }
});

Deno.test("starts with the database down and connects when it comes up", async () => {
  const redis = await startRedis();
  await redis.kill();
  const watch = watchFeature({
    target: resolveRedisTarget({ dbConfigPath: redis.main.dbConfigPath }),
    feature: "telemetry",
    log: quiet,
  });
  try {
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(watch.current, undefined);
    await redis.restart();
    const first = await watch.firstState;
    assert.equal(first.on, true);
  } finally {
    await watch.close();
    await redis.stop();
  }
});

Deno.test("a FEATURE row it cannot read: retries less often, warns once, reads it once fixed", async () => {
  const redis = await startRedis();
  // A string where SONiC keeps a hash: every HGET answers WRONGTYPE while redis is connected.
  await redis.command(["SET", "FEATURE|restapi", "enabled"]);
  const lines: { level: string; message: string }[] = [];
  const record = (level: string) => (message: string) => lines.push({ level, message });
  const log: Logger = {
    ...quiet,
    debug: record("debug"),
    info: record("info"),
    warn: record("warn"),
    error: record("error"),
  };
  const watch = watchFeature({
    target: resolveRedisTarget({ dbConfigPath: redis.main.dbConfigPath }),
    feature: "restapi",
    log,
    resyncMs: 60_000,
  });
  try {
    const warned = () => lines.find((l) => l.message.startsWith("FEATURE cannot be read"));
    await waitUntil(() => warned() !== undefined, 30_000, "the warning");
    // Then 2 s and 4 s apart (every 250 ms without the backoff: 12 more in 3 s).
    const failed = () => lines.filter((l) => l.message === "FEATURE read failed").length;
    const before = failed();
    await new Promise((r) => setTimeout(r, 3_000));
    assert.ok(failed() - before <= 2, `${failed() - before} more failed reads in 3 s`);
    assert.equal(lines.filter((l) => l.level === "warn").length, 1);
    assert.equal(watch.current, undefined, "no state invented from a row it could not read");
    await redis.command(["DEL", "FEATURE|restapi"]);
    await redis.setFeatureState("restapi", "enabled");
    // The row absent between the two (off) may be read first: what counts is where it ends.
    await waitUntil(() => watch.current?.on === true, 30_000, "enabled once readable");
  } finally {
    await watch.close();
    await redis.stop();
  }
});
