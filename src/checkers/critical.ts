// system-health's view of the features Kubernetes runs. SONiC's service checker
// (system-health/health_checker/service_checker.py) finds containers by their Docker name, reads
// their critical processes from `/etc/supervisor/critical_processes` and asks
// `supervisorctl status` inside them; it skips every container of pod namespace `sonic` and the
// features of CONTAINER_K8S_WHITELIST, so a migrated feature is invisible to it. This is the same
// check for those containers, run through the runtime that holds them (the CRI's ExecSync, or
// Docker's exec for kubelet-labelled Docker containers), with the service checker's messages:
//   Container '<c>' is not running
//   Process '<p>' in container '<c>' is not running
// Its output is system-health's user-defined checker format (a category line, then
// `<object>:OK|<message>` lines), so `user_defined_checkers` in
// system_health_monitoring_config.json adds it to `show system-health` unchanged.
import type { Logger } from "../log.ts";
import { EVENTS_SOURCE_HOST, publishEvents, type PublishOptions } from "../events/publisher.ts";
import { checkContainers, type ContainerCheckOptions } from "./container_check.ts";
import { CriClient } from "./cri.ts";
import { DockerClient } from "./docker_api.ts";
import { K8S_NAMESPACE_LABEL, type RunningContainer } from "./runtimes.ts";

/** The features SONiC's service checker leaves out as Kubernetes-run. */
export const CONTAINER_K8S_WHITELIST = new Set(["telemetry", "acms", "restapi"]);
/** Where a SONiC container lists its critical programs. */
export const CRITICAL_PROCESSES_PATH = "/etc/supervisor/critical_processes";
/** The category the objects are reported under (the service checker's). */
export const HEALTH_CATEGORY = "Services";
/** service_checker's event for a container whose processes cannot be asked. */
export const EVENT_PROCESS_NOT_RUNNING = "process-not-running";

/** One system-health object: a container or one of its critical processes. */
export interface HealthObject {
  /** `<container>` or `<container>/<process>` (system-health's format allows no colon). */
  name: string;
  ok: boolean;
  /** The service checker's message when not ok. */
  message?: string;
}

/**
 * The `program:<name>` entries of a critical_processes file, as the service checker reads it
 * (`group:` entries and blank lines are not programs).
 */
export function parseCriticalProcesses(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*(.+?):(.*?)\s*$/.exec(line);
    if (m && m[1].trim() === "program" && m[2].trim() !== "") out.push(m[2].trim());
  }
  return out;
}

/** `supervisorctl status` lines -> program name -> state (RUNNING, STOPPED, EXITED, …). */
export function parseSupervisorctlStatus(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const items = line.trim().split(/\s+/);
    if (items.length >= 2 && items[0] !== "") out.set(items[0], items[1]);
  }
  return out;
}

/** The user-defined checker's output for `objects`. */
export function healthLines(objects: HealthObject[]): string[] {
  return [HEALTH_CATEGORY, ...objects.map((o) => `${o.name}:${o.ok ? "OK" : o.message}`)];
}

type Exec = (cmd: string[]) => Promise<{ exitCode: number; stdout: string }>;

function execIn(c: RunningContainer, opts: ContainerCheckOptions): Exec {
  const timeoutMs = Math.max(opts.endpoints.timeoutMs, 15_000); // the service checker's 15 s
  return async (cmd) => {
    if (c.runtime === "cri") {
      const client = new CriClient(opts.endpoints.cri!, timeoutMs);
      try {
        return await client.execSync(c.id, cmd, Math.ceil(timeoutMs / 1000));
      } finally {
        client.close();
      }
    }
    const client = new DockerClient(opts.endpoints.docker!, timeoutMs);
    try {
      return await client.exec(c.id, cmd, timeoutMs);
    } finally {
      client.close();
    }
  };
}

/** The critical processes of one running container and their states. */
async function processObjects(
  name: string,
  exec: Exec,
  log?: Logger,
): Promise<{ objects: HealthObject[]; unreachable: string[] }> {
  let critical: string[] = [];
  try {
    const file = await exec(["cat", CRITICAL_PROCESSES_PATH]);
    if (file.exitCode === 0) critical = parseCriticalProcesses(file.stdout);
  } catch (e) {
    log?.debug("cannot read critical_processes", { container: name, error: (e as Error).message });
  }
  if (critical.length === 0) return { objects: [], unreachable: [] };
  const notRunning = (p: string) => ({
    name: `${name}/${p}`,
    ok: false,
    message: `Process '${p}' in container '${name}' is not running`,
  });
  let status: Map<string, string>;
  try {
    // supervisorctl exits non-zero when a program is not RUNNING: only its output counts.
    status = parseSupervisorctlStatus((await exec(["supervisorctl", "status"])).stdout);
  } catch (e) {
    log?.debug("supervisorctl status failed", { container: name, error: (e as Error).message });
    return { objects: critical.map(notRunning), unreachable: critical };
  }
  // As the service checker: a critical program supervisord does not know is not checked.
  const objects = critical.filter((p) => status.has(p)).map((p) =>
    status.get(p) === "RUNNING" ? { name: `${name}/${p}`, ok: true } : notRunning(p)
  );
  return { objects, unreachable: [] };
}

/**
 * system-health's container and critical-process objects for the containers the service checker
 * does not see: expected containers of CONTAINER_K8S_WHITELIST features (native or not) and
 * expected containers that run under Kubernetes. Throws (one line) when CONFIG_DB cannot be read.
 */
export async function checkKubernetesHealth(
  opts: ContainerCheckOptions & { events?: PublishOptions | false },
): Promise<HealthObject[]> {
  const result = await checkContainers(opts);
  const kube = (n: string) =>
    result.seen.find((c) => c.name === n && c.labels[K8S_NAMESPACE_LABEL] !== undefined);
  const feature = (n: string) => result.numAsics > 1 ? n.replace(/\d+$/, "") : n;
  const objects: HealthObject[] = [];
  for (const name of result.expected) {
    // The service checker skips whitelisted features wherever they run (natively too), and every
    // container of pod namespace sonic: those are checked here, the rest stays its own.
    const whitelisted = CONTAINER_K8S_WHITELIST.has(feature(name));
    const instance = kube(name) ??
      (whitelisted ? result.seen.find((c) => c.name === name) : undefined);
    if (!instance && !whitelisted) continue;
    if (!instance) {
      objects.push({ name, ok: false, message: `Container '${name}' is not running` });
      continue;
    }
    objects.push({ name, ok: true });
    const { objects: procs, unreachable } = await processObjects(
      name,
      execIn(instance, opts),
      opts.logger,
    );
    objects.push(...procs);
    if (unreachable.length > 0 && opts.events !== false) {
      await publishEvents(
        EVENTS_SOURCE_HOST,
        unreachable.map((p) => ({
          tag: EVENT_PROCESS_NOT_RUNNING,
          params: { ctr_name: name, process_name: p },
        })),
        { logger: opts.logger, ...opts.events },
      );
    }
  }
  return objects;
}

/**
 * `ks-container-checker --system-health`: prints the user-defined checker's lines (or, with
 * `--output json`, the objects); returns 0, or 1 with one object naming the error when CONFIG_DB
 * cannot be read.
 */
export async function runSystemHealth(
  opts: ContainerCheckOptions & { output: "text" | "json"; events?: PublishOptions | false },
): Promise<number> {
  let objects: HealthObject[];
  let code = 0;
  try {
    objects = await checkKubernetesHealth(opts);
  } catch (e) {
    const message = `Cannot check containers: ${e instanceof Error ? e.message : e}`;
    objects = [{ name: "ks-container-checker", ok: false, message }];
    code = 1;
  }
  if (opts.output === "json") console.log(JSON.stringify({ category: HEALTH_CATEGORY, objects }));
  else for (const line of healthLines(objects)) console.log(line);
  opts.logger?.debug("system-health objects", {
    objects: objects.length,
    failing: objects.filter((o) => !o.ok).map((o) => o.name).join(",") || undefined,
  });
  return code;
}
