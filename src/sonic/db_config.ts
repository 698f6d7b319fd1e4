// Finds CONFIG_DB the way SONiC does: `database_config.json` (INSTANCES: unix socket / host /
// port; DATABASES.CONFIG_DB.id, 4 on every SONiC image) and, for a multi-ASIC namespace
// (`asic0`…), `database_global.json` whose INCLUDES name each namespace's database_config.json (inside
// a per-ASIC container, where there is none, the namespace's own database_config.json).
// Paths follow flag > environment (KS_DB_CONFIG, KS_DB_GLOBAL_CONFIG) > SONiC's default.
import { basename, dirname, isAbsolute, join } from "node:path";

/** SONiC's default single-ASIC database config path. */
export const DEFAULT_DB_CONFIG = "/var/run/redis/sonic-db/database_config.json";
/** SONiC's default multi-ASIC global database config path. */
export const DEFAULT_DB_GLOBAL_CONFIG = "/var/run/redis/sonic-db/database_global.json";

/** How to reach one redis database: a unix socket or a TCP host/port, plus the db index. */
export interface RedisTarget {
  /** Unix socket path, when the instance has one (preferred, like swsscommon). */
  socketPath?: string;
  host: string;
  port: number;
  db: number;
  /** The database_config.json this was read from (for messages). */
  source: string;
  /** The namespace (`asic0`…) or "" for the host's default database. */
  namespace: string;
}

/** Where to look for the database configuration (each unset field falls back to env, then default). */
export interface DbLocation {
  dbConfigPath?: string;
  globalConfigPath?: string;
  /** Multi-ASIC namespace such as `asic0`; empty or undefined = the host's database. */
  namespace?: string;
}

/** A configuration problem, with a message naming the file and the field. */
export class DbConfigError extends Error {
  override name = "DbConfigError";
}

interface DatabaseConfigJson {
  INSTANCES?: Record<
    string,
    { hostname?: string; port?: number; unix_socket_path?: string }
  >;
  DATABASES?: Record<string, { id?: number; instance?: string; separator?: string }>;
}

interface DatabaseGlobalJson {
  INCLUDES?: { namespace?: string; include?: string }[];
}

function readJson<T>(path: string): T {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound ? "not found" : String(error);
    throw new DbConfigError(`${path}: cannot read database config (${reason})`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new DbConfigError(`${path}: not valid JSON (${(error as Error).message})`);
  }
}

/**
 * Whether the database_config.json at `path` is namespace `asicN`'s own: SONiC writes each
 * namespace's unix socket as `/var/run/redis<N>/redis.sock` (database_config.json.j2's `$DEV`).
 * "absent" when the file is not there (yet).
 */
function namespaceConfig(path: string, namespace: string): "yes" | "no" | "absent" {
  const index = /^asic(\d+)$/.exec(namespace)?.[1];
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (error) {
    return error instanceof Deno.errors.NotFound ? "absent" : "no";
  }
  let config: DatabaseConfigJson;
  try {
    config = JSON.parse(text) as DatabaseConfigJson;
  } catch {
    return "no";
  }
  const instance = config.INSTANCES?.[config.DATABASES?.CONFIG_DB?.instance ?? "redis"];
  const socket = instance?.unix_socket_path;
  return index !== undefined && typeof socket === "string" &&
      basename(dirname(socket)) === `redis${index}`
    ? "yes"
    : "no";
}

/**
 * Resolves the database_config.json path for `location`: the host's for no namespace; for
 * `asicN` the one database_global.json's INCLUDES name. Inside a per-ASIC container there is no
 * database_global.json: SONiC mounts the namespace's `/var/run/redis<N>` as the container's
 * `/var/run/redis` (and at its own path), so the default database_config.json is that
 * namespace's, which its socket path `/var/run/redis<N>/…` shows; it is used then, and only then
 * (neither file there yet: "not found", which callers wait for; another one's: bad input).
 */
export function resolveDbConfigPath(location: DbLocation = {}): string {
  const namespace = location.namespace ?? "";
  const localPath = location.dbConfigPath || Deno.env.get("KS_DB_CONFIG") || DEFAULT_DB_CONFIG;
  if (namespace === "") return localPath;
  const globalPath = location.globalConfigPath || Deno.env.get("KS_DB_GLOBAL_CONFIG") ||
    DEFAULT_DB_GLOBAL_CONFIG;
  let globalExists = true;
  try {
    Deno.statSync(globalPath);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) globalExists = false;
  }
  if (!globalExists) {
    const local = namespaceConfig(localPath, namespace);
    if (local === "yes") return localPath;
    if (local === "absent") {
      throw new DbConfigError(
        `${globalPath}: cannot read database config (not found), nor ${localPath}`,
      );
    }
    throw new DbConfigError(
      `${globalPath} does not exist and ${localPath} is not ${namespace}'s ` +
        `(its unix_socket_path is not under /var/run/redis${namespace.slice(4)}/)`,
    );
  }
  const global = readJson<DatabaseGlobalJson>(globalPath);
  const entry = (global.INCLUDES ?? []).find((inc) => (inc.namespace ?? "") === namespace);
  if (!entry?.include) {
    const known = (global.INCLUDES ?? []).map((i) => i.namespace).filter(Boolean).join(", ");
    throw new DbConfigError(
      `${globalPath}: INCLUDES has no namespace "${namespace}" (known: ${known || "none"})`,
    );
  }
  return isAbsolute(entry.include) ? entry.include : join(dirname(globalPath), entry.include);
}

/**
 * Reads the database config and returns how to reach `dbName` (default CONFIG_DB).
 * Throws DbConfigError naming the file and field when something is missing or malformed.
 */
export function resolveRedisTarget(location: DbLocation = {}, dbName = "CONFIG_DB"): RedisTarget {
  const path = resolveDbConfigPath(location);
  const config = readJson<DatabaseConfigJson>(path);
  const db = config.DATABASES?.[dbName];
  if (!db || typeof db.id !== "number") {
    throw new DbConfigError(`${path}: DATABASES.${dbName}.id is missing`);
  }
  const instanceName = db.instance ?? "redis";
  const instance = config.INSTANCES?.[instanceName];
  if (!instance) {
    throw new DbConfigError(`${path}: INSTANCES.${instanceName} (used by ${dbName}) is missing`);
  }
  if (!instance.unix_socket_path && typeof instance.port !== "number") {
    throw new DbConfigError(
      `${path}: INSTANCES.${instanceName} has neither unix_socket_path nor port`,
    );
  }
  return {
    socketPath: instance.unix_socket_path || undefined,
    host: instance.hostname ?? "127.0.0.1",
    port: instance.port ?? 6379,
    db: db.id,
    source: path,
    namespace: location.namespace ?? "",
  };
}

/** The key separator for a database (`|` for CONFIG_DB), as SONiC's configs declare it. */
export const CONFIG_DB_SEPARATOR = "|";

/** Describes a target for log lines: `unix:/path db=4` or `127.0.0.1:6379 db=4`. */
export function describeTarget(target: RedisTarget): string {
  const where = target.socketPath ? `unix:${target.socketPath}` : `${target.host}:${target.port}`;
  return `${where} db=${target.db}${target.namespace ? ` ns=${target.namespace}` : ""}`;
}
