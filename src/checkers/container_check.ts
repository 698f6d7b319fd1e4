// One pass of ks-container-checker: read the FEATURE table (CONFIG_DB) and the node's runtimes
// in parallel, compute expected minus running, and turn the outcome into the lines and the exit
// code monit acts on (`Expected containers not running: a, b` / exit 3). The API server is never
// asked, so the check keeps working while it is unreachable.
import type { Logger } from "../log.ts";
import { downContainerEvents } from "../events/host_events.ts";
import { EVENTS_SOURCE_HOST, publishEvents, type PublishOptions } from "../events/publisher.ts";
import {
  connectInBackground,
  createConfigDbClient,
  readFeatureTable,
  withTimeout,
} from "../sonic/config_db.ts";
import { type DbLocation, describeTarget, resolveRedisTarget } from "../sonic/db_config.ts";
import {
  applyTelemetryChoice,
  expectedContainers,
  readAsicCount,
  resolveAsicConfPath,
  TELEMETRY_SKIPPED_MESSAGE,
  telemetryContainer,
} from "./expected.ts";
import {
  listAllImageRefs,
  listAllRuntimes,
  type RunningContainer,
  type RuntimeEndpoints,
  type RuntimeStatus,
} from "./runtimes.ts";

/** Exit code when every expected container runs. */
export const EXIT_OK = 0;
/** Exit code monit alerts on: something expected is not running, or a runtime is unreachable. */
export const EXIT_ALERT = 3;

/** Inputs of one container check. */
export interface ContainerCheckOptions {
  endpoints: RuntimeEndpoints;
  db?: DbLocation;
  /** asic.conf path (flag value; env and platform default are resolved here). */
  asicConf?: string;
  /** Extra always-running containers (e.g. `database-chassis`). */
  alwaysRunning?: string[];
  /** CONFIG_DB timeout (ms), default 3000. */
  dbTimeoutMs?: number;
  logger?: Logger;
}

/** The outcome of one container check. */
export interface ContainerCheckResult {
  numAsics: number;
  expected: string[];
  running: string[];
  missing: string[];
  runtimes: RuntimeStatus[];
  /**
   * What the FEATURE row `telemetry` was checked as (SONiC's image rule): `telemetry`, `gnmi`
   * (no docker-sonic-telemetry image, a docker-sonic-gnmi one), `skip` (neither), `unknown` (a
   * runtime could not be asked: kept as telemetry); undefined without a telemetry row.
   */
  telemetry?: "telemetry" | "gnmi" | "skip" | "unknown";
  /** Every running container the runtimes listed (not printed). */
  seen: RunningContainer[];
}

async function loadFeatureTable(db: DbLocation, timeoutMs: number) {
  const target = resolveRedisTarget(db);
  const client = createConfigDbClient(target, { commandTimeoutMs: timeoutMs });
  try {
    await withTimeout(
      connectInBackground(client),
      timeoutMs,
      `CONFIG_DB at ${describeTarget(target)}`,
    );
    return await readFeatureTable(client, timeoutMs);
  } finally {
    if (client.isOpen) client.destroy();
  }
}

/**
 * Runs one check. Throws (one-line message) only when CONFIG_DB or asic.conf cannot be read;
 * unreachable runtimes are reported in `runtimes` instead.
 */
export async function checkContainers(opts: ContainerCheckOptions): Promise<ContainerCheckResult> {
  const asicConfPath = await resolveAsicConfPath(opts.asicConf);
  const [table, numAsics, seen] = await Promise.all([
    loadFeatureTable(opts.db ?? {}, opts.dbTimeoutMs ?? 3000),
    readAsicCount(asicConfPath),
    listAllRuntimes(opts.endpoints),
  ]);
  // SONiC's slim images ship gnmi (or neither) instead of docker-sonic-telemetry: which one the
  // telemetry row stands for is decided by the images present, in Docker and in the CRI alike.
  let telemetry: ContainerCheckResult["telemetry"];
  let checked = table;
  const telemetryState = table.get("telemetry")?.state;
  // A disabled row expects nothing, whichever image it would stand for: no need to ask.
  if (
    telemetryState !== undefined && telemetryState !== "disabled" &&
    telemetryState !== "always_disabled"
  ) {
    const images = await listAllImageRefs(opts.endpoints);
    telemetry = telemetryContainer(images.refs, images.complete);
    checked = applyTelemetryChoice(table, telemetry);
    if (telemetry !== "telemetry") {
      opts.logger?.debug("telemetry row checked by image", { as: telemetry });
    }
  }
  const { expected } = expectedContainers(checked, numAsics, opts.alwaysRunning ?? []);
  const running = new Set<string>();
  for (const c of seen.containers) if (c.name) running.add(c.name);
  const missing = [...expected].filter((n) => !running.has(n)).sort();
  for (const s of seen.statuses) {
    opts.logger?.debug("runtime", {
      runtime: s.runtime,
      status: s.status,
      socket: s.socket,
      containers: s.containers,
    });
  }
  return {
    numAsics,
    expected: [...expected].sort(),
    running: [...running].sort(),
    missing,
    runtimes: seen.statuses,
    telemetry,
    seen: seen.containers,
  };
}

/** The lines to print (monit appends them to its alert) for a result. */
export function containerCheckLines(result: ContainerCheckResult): string[] {
  const lines: string[] = [];
  if (result.telemetry === "skip") lines.push(TELEMETRY_SKIPPED_MESSAGE);
  for (const r of result.runtimes) {
    if (r.status === "unreachable") {
      lines.push(`Container runtime ${r.runtime} is unreachable: ${r.error}`);
    }
  }
  if (result.missing.length > 0) {
    lines.push(`Expected containers not running: ${result.missing.join(", ")}`);
  }
  return lines;
}

/** 3 when something is missing or a runtime could not be asked; else 0. */
export function containerCheckExitCode(result: ContainerCheckResult): number {
  const unreachable = result.runtimes.some((r) => r.status === "unreachable");
  return unreachable || result.missing.length > 0 ? EXIT_ALERT : EXIT_OK;
}

/** Options of the ks-container-checker command (already parsed). */
export interface ContainerCheckerRun extends ContainerCheckOptions {
  output: "text" | "json";
  /** Where `event-down-ctr` goes (SONiC's eventd); false publishes nothing. */
  events?: PublishOptions | false;
}

/**
 * The command: runs one check, prints the result (text lines or one JSON object on stdout),
 * logs one line, returns the exit code. CONFIG_DB problems -> one line and exit 1.
 */
export async function runContainerChecker(opts: ContainerCheckerRun): Promise<number> {
  let result: ContainerCheckResult;
  try {
    result = await checkContainers(opts);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    opts.logger?.debug("check failed", { error: message });
    if (opts.output === "json") console.log(JSON.stringify({ error: message }));
    else console.log(`Cannot check containers: ${message}`);
    return 1;
  }
  const code = containerCheckExitCode(result);
  if (opts.output === "json") {
    const { seen: _seen, ...printed } = result;
    console.log(JSON.stringify({ ...printed, exitCode: code }));
  } else {
    for (const line of containerCheckLines(result)) console.log(line);
  }
  // As SONiC's container_checker: one event-down-ctr per missing container, through eventd when
  // it runs (skipped quietly when not; never changes the exit code).
  if (result.missing.length > 0 && opts.events !== false) {
    await publishEvents(EVENTS_SOURCE_HOST, downContainerEvents(result.missing), {
      logger: opts.logger,
      ...opts.events,
    });
  }
  // monit appends stdout AND stderr to its alert, so the verdict is the stdout line only; the
  // log line is debug (KS_DEBUG=1) to keep monit's message exactly SONiC's wording.
  if (code !== EXIT_OK) {
    opts.logger?.debug("containers not running", {
      missing: result.missing.join(",") || undefined,
      unreachable: result.runtimes.filter((r) => r.status === "unreachable").map((r) => r.runtime)
        .join(",") || undefined,
    });
  } else {
    opts.logger?.debug("all expected containers run", { expected: result.expected.length });
  }
  return code;
}
