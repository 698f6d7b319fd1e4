// ks-watchdog: the feature pod's health endpoint (`/`, `/livez`, `/readyz`) and, as
// `ks-watchdog probe`, the same checks once for exec probes. Thin: flags here, the logic in
// src/watchdog/.
import {
  asicNamespaceSetting,
  featureSetting,
  parseCli,
  parseDuration,
  parseHostPort,
  runCli,
  UsageError,
} from "../src/cli.ts";
import { createLogger } from "../src/log.ts";
import { httpProbe, type Probe, processProbe, tcpProbe } from "../src/watchdog/probes.ts";
import { probeOnce, runWatchdog, type WatchdogOptions } from "../src/watchdog/run.ts";

const TOOL = "ks-watchdog";
const HELP =
  `${TOOL} — a feature pod's health endpoint that follows CONFIG_DB FEATURE|<feature> state

Usage: ${TOOL} --feature NAME [--listen HOST:PORT] [probes] [options]
       ${TOOL} probe --feature NAME [probes] [--check livez|readyz] [--output text|json]

Probes (repeatable, all must pass while the feature is on):
  --tcp HOST:PORT       a TCP connect is accepted
  --process NAME        a process named NAME runs (/proc/PID/comm as pgrep -x, or argv[0])
  --http URL            GET URL answers 2xx/3xx
Options:
  --feature NAME        the FEATURE row to follow (env KS_FEATURE)
  --listen HOST:PORT    where to serve (default 127.0.0.1:50069)
  --deadline DUR        every answer within this (default 800ms); a probe still running then fails
  --ready-grace DUR     /readyz fails once CONFIG_DB has been unreachable this long (default 10s)
  --asic-namespace asicN  multi-ASIC namespace (env KS_ASIC_NAMESPACE; the old --namespace /
                        KS_NAMESPACE still work)
  --db-config PATH      database_config.json (env KS_DB_CONFIG)
  --db-global-config P  database_global.json for --asic-namespace (env KS_DB_GLOBAL_CONFIG)
  --resync DUR          periodic FEATURE re-read besides keyspace notifications (default 5s)
  --check livez|readyz  probe: which semantics (default livez)
  --output text|json    probe: output format (default text)
  --help, --version

Endpoints: / and /livez (liveness: a CONFIG_DB outage keeps the last known state), /readyz
(readiness: also fails once CONFIG_DB is unreachable past --ready-grace). FEATURE off -> 200,
probes skipped; on -> 200 when every probe passes, else 503 naming the failed probe. JSON body.
Exit codes: serving 0 after SIGTERM/SIGINT; probe 0 healthy, 1 unhealthy; both 2 usage error or
bad input (a bad flag, a malformed database_config.json, a --listen address in use), 1 any other
failure.

Examples:
  ${TOOL} --feature telemetry --listen 127.0.0.1:50069 --tcp 127.0.0.1:50051 --process telemetry
  ${TOOL} probe --feature telemetry --tcp 127.0.0.1:50051 --check readyz`;

function buildProbes(values: { tcp?: string[]; process?: string[]; http?: string[] }): Probe[] {
  const probes: Probe[] = [];
  for (const t of values.tcp ?? []) {
    const { host, port } = parseHostPort(t, "--tcp");
    probes.push(tcpProbe(host, port));
  }
  for (const p of values.process ?? []) {
    if (!/^[^\s/]+$/.test(p)) throw new UsageError(`--process: "${p}" is not a process name`);
    probes.push(processProbe(p));
  }
  for (const u of values.http ?? []) {
    let url: URL;
    try {
      url = new URL(u);
    } catch {
      throw new UsageError(`--http: "${u}" is not a URL (e.g. http://127.0.0.1:8080/health)`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new UsageError(`--http: "${u}" is not an http:// or https:// URL`);
    }
    probes.push(httpProbe(url.href));
  }
  return probes;
}

async function cli(args: string[]): Promise<number> {
  const { values, positionals } = parseCli({
    tool: TOOL,
    help: HELP,
    options: {
      feature: { type: "string" },
      listen: { type: "string", default: "127.0.0.1:50069" },
      tcp: { type: "string", multiple: true },
      process: { type: "string", multiple: true },
      http: { type: "string", multiple: true },
      deadline: { type: "string", default: "800ms" },
      "ready-grace": { type: "string", default: "10s" },
      "asic-namespace": { type: "string" },
      namespace: { type: "string" },
      "db-config": { type: "string" },
      "db-global-config": { type: "string" },
      resync: { type: "string", default: "5s" },
      check: { type: "string", default: "livez" },
      output: { type: "string", default: "text" },
    },
  }, args);
  const mode = positionals[0] ?? "serve";
  if (mode !== "serve" && mode !== "probe" || positionals.length > 1) {
    throw new UsageError(`unexpected argument "${positionals.at(-1)}" (the only command is probe)`);
  }
  const feature = featureSetting(values.feature);
  const namespace = asicNamespaceSetting(TOOL, values["asic-namespace"], values.namespace);
  const deadlineMs = parseDuration(values.deadline!, "--deadline");
  if (deadlineMs < 50) throw new UsageError(`--deadline: "${values.deadline}" is below 50ms`);
  const resyncMs = parseDuration(values.resync!, "--resync");
  if (resyncMs < 100) throw new UsageError(`--resync: "${values.resync}" is below 100ms`);
  const check = values.check;
  if (check !== "livez" && check !== "readyz") {
    throw new UsageError(`--check: "${check}" is not livez or readyz`);
  }
  if (values.output !== "text" && values.output !== "json") {
    throw new UsageError(`--output: "${values.output}" is not text or json`);
  }
  const listen = parseHostPort(values.listen!, "--listen");
  const opts: WatchdogOptions = {
    feature,
    location: {
      dbConfigPath: values["db-config"],
      globalConfigPath: values["db-global-config"],
      namespace,
    },
    probes: buildProbes(values),
    deadlineMs,
    readyGraceMs: parseDuration(values["ready-grace"]!, "--ready-grace"),
    resyncMs,
    log: createLogger(TOOL, namespace ? `${feature}@${namespace}` : feature),
  };
  if (mode === "serve") return await runWatchdog(opts, listen);

  const report = await probeOnce(opts, check);
  if (values.output === "json") console.log(JSON.stringify(report));
  else {
    console.log(`${report.healthy ? "healthy" : "unhealthy"}: ${report.message}`);
    for (const p of report.probes) {
      console.log(`  ${p.ok ? "ok  " : "FAIL"} ${p.name}: ${p.detail} (${p.ms} ms)`);
    }
  }
  return report.healthy ? 0 : 1;
}

/** Runs the tool with `args` (its command line without the program name) and exits. */
export function main(args: string[]): Promise<never> {
  return runCli(TOOL, () => cli(args));
}

if (import.meta.main) await main(Deno.args);
