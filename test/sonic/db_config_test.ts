import assert from "node:assert/strict";
import { join } from "node:path";
import { DbConfigError, resolveRedisTarget } from "../../src/sonic/db_config.ts";
import { startRedis } from "../../sandbox/harness/redis.ts";

Deno.test("resolves CONFIG_DB's socket, port and id 4 from database_config.json", async () => {
  const redis = await startRedis({ features: {} });
  try {
    const target = resolveRedisTarget({ dbConfigPath: redis.main.dbConfigPath });
    assert.equal(target.db, 4);
    assert.equal(target.socketPath, redis.main.socketPath);
    assert.equal(target.port, redis.main.port);
    assert.equal(target.namespace, "");
  } finally {
    await redis.stop();
  }
});

Deno.test("a namespace is found through database_global.json INCLUDES", async () => {
  const redis = await startRedis({ features: {}, namespaces: ["asic0", "asic1"] });
  try {
    const target = resolveRedisTarget({
      globalConfigPath: redis.globalConfigPath,
      namespace: "asic1",
    });
    assert.equal(target.socketPath, redis.namespaces.get("asic1")!.socketPath);
    assert.equal(target.namespace, "asic1");
    assert.throws(
      () => resolveRedisTarget({ globalConfigPath: redis.globalConfigPath, namespace: "asic7" }),
      (e: Error) => e instanceof DbConfigError && e.message.includes('"asic7"'),
    );
  } finally {
    await redis.stop();
  }
});

Deno.test("the environment is used when no flag is given, and the flag wins over it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = join(dir, "a.json");
    const b = join(dir, "b.json");
    const config = (port: number) =>
      JSON.stringify({
        INSTANCES: { redis: { hostname: "127.0.0.1", port } },
        DATABASES: { CONFIG_DB: { id: 4, instance: "redis" } },
      });
    await Deno.writeTextFile(a, config(1111));
    await Deno.writeTextFile(b, config(2222));
    Deno.env.set("KS_DB_CONFIG", a);
    try {
      assert.equal(resolveRedisTarget().port, 1111);
      assert.equal(resolveRedisTarget({ dbConfigPath: b }).port, 2222);
    } finally {
      Deno.env.delete("KS_DB_CONFIG");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a malformed or incomplete config names the file and the field", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bad = join(dir, "bad.json");
    await Deno.writeTextFile(bad, "{ not json");
    assert.throws(() => resolveRedisTarget({ dbConfigPath: bad }), /bad\.json: not valid JSON/);
    await Deno.writeTextFile(bad, JSON.stringify({ INSTANCES: {}, DATABASES: {} }));
    assert.throws(() => resolveRedisTarget({ dbConfigPath: bad }), /DATABASES\.CONFIG_DB\.id/);
    assert.throws(
      () => resolveRedisTarget({ dbConfigPath: join(dir, "missing.json") }),
      /missing\.json: cannot read database config \(not found\)/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
