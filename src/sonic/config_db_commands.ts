// The npm:redis commands the tools send to CONFIG_DB: table key (as @redis/client names the command
// module) -> the client method. The bundles keep only these in the client's command table
// (src/build/bundle_trim.ts) and `RedisClient` (src/sonic/config_db.ts) offers only these
// methods, so a new command is added here first. No imports: the build reads it.
export const CONFIG_DB_COMMANDS = {
  HGET: "hGet",
  HGETALL: "hGetAll",
  SCAN: "scan",
} as const;
