// A real redis-server per suite for tests, benchmarks and the lab: a temp unix socket plus a
// loopback port, `notify-keyspace-events` enabled as SONiC's database sets it, a sandbox
// `database_config.json` (and, for multi-ASIC, `database_global.json` plus one instance per
// namespace) pointing at it, and FEATURE rows shaped like a real switch's. Always stopped by
// `stop()`; `kill()` / `restart()` simulate a database crash and its return on the same socket.
import { join } from "node:path";
import { createClient } from "redis";
import { freePort, waitUntil } from "./net.ts";

/** FEATURE rows as a real single-ASIC switch carries them (the shape the design shows). */
export const SWITCH_FEATURES: Record<string, Record<string, string>> = {
  telemetry: feature("enabled", { set_owner: "kube" }),
  gnmi: feature("enabled", { set_owner: "kube" }),
  bmp: feature("disabled", { set_owner: "kube" }),
  restapi: feature("disabled", { set_owner: "kube" }),
  database: feature("always_enabled", { auto_restart: "always_enabled" }),
  swss: feature("enabled", { check_up_status: "False" }),
  syncd: feature("enabled"),
  bgp: feature("enabled"),
  lldp: feature("enabled"),
  pmon: feature("enabled"),
  snmp: feature("enabled", { delayed: "True" }),
  teamd: feature("enabled"),
  radv: feature("enabled"),
  dhcp_relay: feature("disabled"),
  mux: feature("always_disabled"),
};

function feature(state: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    auto_restart: "enabled",
    state,
    delayed: "False",
    check_up_status: "False",
    has_per_asic_scope: "False",
    has_global_scope: "True",
    high_mem_alert: "disabled",
    set_owner: "local",
    support_syslog_rate_limit: "true",
    ...extra,
  };
}

/** Options for starting a redis for a suite. */
export interface RedisOptions {
  /** FEATURE rows to seed (default SWITCH_FEATURES); pass {} for an empty table. */
  features?: Record<string, Record<string, string>>;
  /** Multi-ASIC namespaces (`asic0`…) to create, each with its own redis instance. */
  namespaces?: string[];
  /** Parent directory for the sandbox (default a new temp dir). */
  dir?: string;
  /** Keyspace notifications setting (default "AKE", as SONiC's database.sh sets it). */
  notifyKeyspaceEvents?: string;
}

/** One running redis-server instance. */
export interface RedisInstance {
  namespace: string;
  socketPath: string;
  port: number;
  /** The database_config.json describing this instance. */
  dbConfigPath: string;
}

/** A running redis sandbox. */
export interface RedisSandbox {
  dir: string;
  /** The host (default namespace) instance. */
  main: RedisInstance;
  /** Per-namespace instances, keyed by namespace. */
  namespaces: Map<string, RedisInstance>;
  /** Path of database_global.json (only meaningful with namespaces). */
  globalConfigPath: string;
  /** Environment variables that point the tools at this sandbox (KS_DB_CONFIG...). */
  env: Record<string, string>;
  /** Runs a redis command against CONFIG_DB (db 4) of `namespace` ("" = host); returns the reply. */
  command(args: string[], namespace?: string): Promise<unknown>;
  /** HSET FEATURE|<feature> state <value> (namespace "" = host). */
  setFeatureState(feature: string, state: string, namespace?: string): Promise<void>;
  /** Stops the server(s) abruptly (SIGKILL); the socket disappears as on a crash. */
  kill(namespace?: string): Promise<void>;
  /** Starts a killed server again on the same socket and port, with the data it had. */
  restart(namespace?: string): Promise<void>;
  /** Stops every server and removes the sandbox. Safe to call twice. */
  stop(): Promise<void>;
}

async function waitForSocket(path: string, child: Deno.ChildProcess, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      const conn = await Deno.connect({ transport: "unix", path });
      conn.close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  try {
    child.kill("SIGKILL");
  } catch { /* gone */ }
  throw new Error(`redis-server did not open ${path} within ${ms} ms`);
}

interface ServerHandle {
  instance: RedisInstance;
  confPath: string;
  child?: Deno.ChildProcess;
}

function databaseConfig(socketPath: string, port: number) {
  return {
    INSTANCES: {
      redis: {
        hostname: "127.0.0.1",
        port,
        unix_socket_path: socketPath,
        persistence_for_warm_boot: "yes",
      },
    },
    DATABASES: {
      APPL_DB: { id: 0, separator: ":", instance: "redis" },
      ASIC_DB: { id: 1, separator: ":", instance: "redis" },
      COUNTERS_DB: { id: 2, separator: ":", instance: "redis" },
      CONFIG_DB: { id: 4, separator: "|", instance: "redis" },
      STATE_DB: { id: 6, separator: "|", instance: "redis" },
    },
    VERSION: "1.0",
  };
}

/** Starts redis-server(s) in a sandbox and seeds the FEATURE table. Throws if redis-server is missing. */
export async function startRedis(opts: RedisOptions = {}): Promise<RedisSandbox> {
  const dir = opts.dir ?? await Deno.makeTempDir({ prefix: "ks-redis-" });
  const servers = new Map<string, ServerHandle>();
  const notify = opts.notifyKeyspaceEvents ?? "AKE";

  const spawn = (handle: ServerHandle) => {
    handle.child = new Deno.Command("redis-server", {
      args: [handle.confPath],
      stdout: "null",
      stderr: "null",
      stdin: "null",
    }).spawn();
  };

  const namespaces = ["", ...(opts.namespaces ?? [])];
  for (const ns of namespaces) {
    const sub = join(dir, ns === "" ? "redis" : `redis-${ns}`);
    await Deno.mkdir(join(sub, "sonic-db"), { recursive: true });
    const socketPath = join(sub, "redis.sock");
    const port = freePort();
    const confPath = join(sub, "redis.conf");
    await Deno.writeTextFile(
      confPath,
      [
        `bind 127.0.0.1`,
        `port ${port}`,
        `unixsocket ${socketPath}`,
        `unixsocketperm 777`,
        `dir ${sub}`,
        `save ""`,
        `appendonly yes`,
        `appendfsync always`,
        `databases 16`,
        `notify-keyspace-events "${notify}"`,
        `logfile ${join(sub, "redis.log")}`,
        `protected-mode no`,
      ].join("\n") + "\n",
    );
    const dbConfigPath = join(sub, "sonic-db", "database_config.json");
    await Deno.writeTextFile(
      dbConfigPath,
      JSON.stringify(databaseConfig(socketPath, port), null, 2),
    );
    const handle: ServerHandle = {
      instance: { namespace: ns, socketPath, port, dbConfigPath },
      confPath,
    };
    servers.set(ns, handle);
    spawn(handle);
    await waitForSocket(socketPath, handle.child!);
  }

  const globalConfigPath = join(dir, "redis", "sonic-db", "database_global.json");
  await Deno.writeTextFile(
    globalConfigPath,
    JSON.stringify(
      {
        INCLUDES: namespaces.map((ns) =>
          ns === ""
            ? { include: "database_config.json" }
            : { namespace: ns, include: `../../redis-${ns}/sonic-db/database_config.json` }
        ),
        VERSION: "1.0",
      },
      null,
      2,
    ),
  );

  const clients = new Map<string, ReturnType<typeof createClient>>();
  const clientFor = async (ns: string) => {
    let c = clients.get(ns);
    if (c?.isReady) return c;
    if (c) {
      try {
        c.destroy();
      } catch { /* closed */ }
    }
    const handle = servers.get(ns);
    if (!handle) throw new Error(`no redis for namespace "${ns}"`);
    c = createClient({
      socket: { path: handle.instance.socketPath, reconnectStrategy: false },
      database: 4,
    });
    c.on("error", () => {});
    await c.connect();
    clients.set(ns, c);
    return c;
  };

  const features = opts.features ?? SWITCH_FEATURES;
  for (const ns of namespaces) {
    const c = await clientFor(ns);
    for (const [name, fields] of Object.entries(features)) {
      await c.hSet(`FEATURE|${name}`, fields);
    }
  }

  let stopped = false;
  const sandbox: RedisSandbox = {
    dir,
    main: servers.get("")!.instance,
    namespaces: new Map(
      [...servers].filter(([ns]) => ns !== "").map(([ns, h]) => [ns, h.instance]),
    ),
    globalConfigPath,
    env: {
      KS_DB_CONFIG: servers.get("")!.instance.dbConfigPath,
      KS_DB_GLOBAL_CONFIG: globalConfigPath,
    },
    async command(args, ns = "") {
      const c = await clientFor(ns);
      return await c.sendCommand(args);
    },
    async setFeatureState(name, state, ns = "") {
      const c = await clientFor(ns);
      await c.hSet(`FEATURE|${name}`, "state", state);
    },
    async kill(ns = "") {
      const handle = servers.get(ns)!;
      const c = clients.get(ns);
      if (c) {
        try {
          c.destroy();
        } catch { /* closed */ }
        clients.delete(ns);
      }
      if (handle.child) {
        try {
          handle.child.kill("SIGKILL");
        } catch { /* gone */ }
        await handle.child.status;
        handle.child = undefined;
      }
      await Deno.remove(handle.instance.socketPath).catch(() => {});
    },
    async restart(ns = "") {
      const handle = servers.get(ns)!;
      if (handle.child) await sandbox.kill(ns);
      spawn(handle);
      await waitForSocket(handle.instance.socketPath, handle.child!);
      // The socket is there before the dump is loaded; until then every command gets LOADING
      // (seen on a loaded machine): back means serving.
      await waitUntil(
        async () => {
          try {
            return String(await (await clientFor(ns)).sendCommand(["PING"])) === "PONG";
          } catch {
            return false;
          }
        },
        30_000,
        `redis ${ns || "(main)"} serving again after its restart`,
        20,
      );
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const c of clients.values()) {
        try {
          c.destroy();
        } catch { /* closed */ }
      }
      for (const handle of servers.values()) {
        if (!handle.child) continue;
        try {
          handle.child.kill("SIGKILL");
        } catch { /* gone */ }
        await handle.child.status;
      }
      if (!opts.dir) await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  return sandbox;
}
