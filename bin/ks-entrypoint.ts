// ks-entrypoint: the feature container's ENTRYPOINT. Idle while FEATURE|<feature> is off, starts
// the daemon the moment it is on (exec by default, or supervised with --spawn). Thin: flags here,
// the logic in src/entrypoint/run.ts.
import {
  asicNamespaceSetting,
  featureSetting,
  parseCli,
  parseDuration,
  runCli,
  UsageError,
} from "../src/cli.ts";
import { createLogger } from "../src/log.ts";
import { runEntrypoint } from "../src/entrypoint/run.ts";

const TOOL = "ks-entrypoint";
const HELP = `${TOOL} — start a feature's daemon only while CONFIG_DB FEATURE|<feature> state is on

Usage: ${TOOL} --feature NAME [options] -- COMMAND [ARGS...]

  --feature NAME        the FEATURE row to follow (env KS_FEATURE)
  --asic-namespace asicN  multi-ASIC namespace; its CONFIG_DB is found via database_global.json
                        (env KS_ASIC_NAMESPACE; the old --namespace / KS_NAMESPACE still work)
  --db-config PATH      database_config.json (env KS_DB_CONFIG,
                        default /var/run/redis/sonic-db/database_config.json)
  --db-global-config P  database_global.json for --asic-namespace (env KS_DB_GLOBAL_CONFIG)
  --spawn               run the daemon as a child instead of exec'ing it: signals forwarded,
                        zombies reaped, its exit code returned (128+signal when killed), and the
                        daemon stopped again when FEATURE goes off (the entrypoint returns to idle)
  --stop-timeout DUR    --spawn: grace between SIGTERM and SIGKILL on disable (default 10s)
  --resync DUR          periodic FEATURE re-read besides keyspace notifications (default 5s)
  --help, --version

States enabled/always_enabled are on; disabled/always_disabled, a missing row or any other value
are off. While off the entrypoint idles (one log line per change); SIGTERM/SIGINT then exit 0.
CONFIG_DB unreachable: it keeps waiting and says so; it never exits for that.
Exit codes: the daemon's own (exec, or --spawn: 128+signal when killed), 0 after SIGTERM while
idle, 2 usage error or bad input (a malformed database_config.json), 126/127 the command cannot
be started.

Example:
  ${TOOL} --feature telemetry -- /usr/bin/supervisord -n -c /etc/supervisor/supervisord.conf`;

async function cli(args: string[]): Promise<number> {
  const { values, positionals } = parseCli({
    tool: TOOL,
    help: HELP,
    options: {
      feature: { type: "string" },
      "asic-namespace": { type: "string" },
      namespace: { type: "string" },
      "db-config": { type: "string" },
      "db-global-config": { type: "string" },
      spawn: { type: "boolean", default: false },
      "stop-timeout": { type: "string", default: "10s" },
      resync: { type: "string", default: "5s" },
    },
  }, args);
  const feature = featureSetting(values.feature);
  const namespace = asicNamespaceSetting(TOOL, values["asic-namespace"], values.namespace);
  if (positionals.length === 0) {
    throw new UsageError("no command: give the daemon after -- (e.g. -- /usr/bin/supervisord -n)");
  }
  const resyncMs = parseDuration(values.resync!, "--resync");
  if (resyncMs < 100) throw new UsageError(`--resync: "${values.resync}" is below 100ms`);
  const log = createLogger(TOOL, namespace ? `${feature}@${namespace}` : feature);
  return await runEntrypoint({
    feature,
    location: {
      dbConfigPath: values["db-config"],
      globalConfigPath: values["db-global-config"],
      namespace,
    },
    command: positionals,
    mode: values.spawn ? "spawn" : "exec",
    log,
    resyncMs,
    stopTimeoutMs: parseDuration(values["stop-timeout"]!, "--stop-timeout"),
  });
}

/** Runs the tool with `args` (its command line without the program name) and exits. */
export function main(args: string[]): Promise<never> {
  return runCli(TOOL, () => cli(args));
}

if (import.meta.main) await main(Deno.args);
