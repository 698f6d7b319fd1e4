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

Deno.test("inside a per-ASIC container (no database_global.json) asicN is the container's own database_config.json, and only when it is asicN's", async () => {
  // SONiC's per-ASIC container: the host's /var/run/redis1 mounted as /var/run/redis (and at its
  // own path); its database_config.json names /var/run/redis1/redis.sock; no global file.
  const dir = await Deno.makeTempDir();
  try {
    const own = join(dir, "sonic-db", "database_config.json");
    await Deno.mkdir(join(dir, "sonic-db"));
    const config = (socket: string) =>
      JSON.stringify({
        INSTANCES: { redis: { hostname: "127.0.0.1", port: 6379, unix_socket_path: socket } },
        DATABASES: { CONFIG_DB: { id: 4, separator: "|", instance: "redis" } },
      });
    await Deno.writeTextFile(own, config("/var/run/redis1/redis.sock"));
    const missingGlobal = join(dir, "sonic-db", "database_global.json");
    const target = resolveRedisTarget({
      dbConfigPath: own,
      globalConfigPath: missingGlobal,
      namespace: "asic1",
    });
    assert.equal(target.socketPath, "/var/run/redis1/redis.sock");
    assert.equal(target.source, own);
    assert.equal(target.namespace, "asic1");
    // Another namespace's (or the host's) config is never taken for asic1's.
    assert.throws(
      () =>
        resolveRedisTarget({
          dbConfigPath: own,
          globalConfigPath: missingGlobal,
          namespace: "asic0",
        }),
      (e: Error) =>
        e instanceof DbConfigError && e.message.includes("database_global.json") &&
        e.message.includes("is not asic0's"),
    );
    await Deno.writeTextFile(own, config("/var/run/redis/redis.sock"));
    assert.throws(
      () =>
        resolveRedisTarget({
          dbConfigPath: own,
          globalConfigPath: missingGlobal,
          namespace: "asic1",
        }),
      /is not asic1's/,
    );
    // Neither file there yet (the database not up): "not found", which the tools wait for.
    assert.throws(
      () =>
        resolveRedisTarget({
          dbConfigPath: join(dir, "none.json"),
          globalConfigPath: missingGlobal,
          namespace: "asic1",
        }),
      (e: Error) => e instanceof DbConfigError && /\(not found\)/.test(e.message),
    );
    assert.throws(
      () =>
        resolveRedisTarget({
          dbConfigPath: own,
          globalConfigPath: missingGlobal,
          namespace: "asic1",
        }),
      (e: Error) => !/\(not found\)/.test(e.message),
      "another namespace's config is bad input, not something to wait for",
    );
    // With a global file present its INCLUDES decide, as before.
    const ns = join(dir, "ns1.json");
    await Deno.writeTextFile(ns, config("/somewhere/redis1/redis.sock"));
    await Deno.writeTextFile(
      missingGlobal,
      JSON.stringify({
        INCLUDES: [{ include: "database_config.json" }, { namespace: "asic1", include: ns }],
      }),
    );
    assert.equal(
      resolveRedisTarget({ dbConfigPath: own, globalConfigPath: missingGlobal, namespace: "asic1" })
        .source,
      ns,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
