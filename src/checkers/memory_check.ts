// One pass of ks-memory-checker: find the container by name (native Docker) or by the kubelet's
// labels (namespace `sonic`, `io.kubernetes.container.name`) in Docker and in the CRI runtime,
// read its memory use from its cgroup and compare with the threshold. Exit codes are SONiC's
// memory_checker contract: 0 under (or not running), 3 over, 2 invalid arguments, 1 internal error.
import type { Logger } from "../log.ts";
import { memoryThresholdEvent } from "../events/host_events.ts";
import { EVENTS_SOURCE_HOST, publishEvents, type PublishOptions } from "../events/publisher.ts";
import {
  CgroupGoneError,
  type CgroupLocation,
  cgroupOfPid,
  cgroupRoot,
  findCgroupByHints,
  type MemoryUsage,
  readMemoryUsage,
} from "./cgroup.ts";
import { CriClient } from "./cri.ts";
import { DockerClient } from "./docker_api.ts";
import { GRPC_NOT_FOUND, GRPC_UNIMPLEMENTED, GrpcError } from "./grpc_unix.ts";
import {
  checkerName,
  K8S_CONTAINER_NAME_LABEL,
  K8S_NAMESPACE_LABEL,
  K8S_POD_UID_LABEL,
  type RuntimeEndpoints,
  type RuntimeKind,
  SONIC_POD_NAMESPACE,
} from "./runtimes.ts";

/** Under the threshold, or the container is not running. */
export const MEMORY_OK = 0;
/** Internal error (runtime unreachable, cgroup unreadable). */
export const MEMORY_INTERNAL_ERROR = 1;
/** Invalid arguments. */
export const MEMORY_INVALID = 2;
/** Over the threshold. */
export const MEMORY_EXCEEDED = 3;

/** A container the checker found for the requested name. */
export interface FoundContainer {
  runtime: RuntimeKind;
  id: string;
  /** Docker's name or the CRI metadata name. */
  runtimeName: string;
  pid?: number;
  podUid?: string;
  cgroupParent?: string;
  /** Docker only: restarts so far and whether the last exit was an OOM kill. */
  restartCount?: number;
  oomKilled?: boolean;
}

/** The outcome of one memory check. */
export interface MemoryCheckResult {
  name: string;
  thresholdBytes: number;
  status: "under" | "over" | "not-running" | "error";
  container?: FoundContainer;
  cgroup?: CgroupLocation;
  memory?: MemoryUsage;
  /** For status "error": what went wrong, one line. */
  error?: string;
}

/** Inputs of one memory check. */
export interface MemoryCheckOptions {
  name: string;
  thresholdBytes: number;
  endpoints: RuntimeEndpoints;
  cgroupRoot?: string;
  logger?: Logger;
  /** Test seam: called after a container is found and before its cgroup is read. */
  beforeRead?: (c: FoundContainer) => Promise<void>;
}

/**
 * Parses the threshold argument like SONiC's memory_checker: a positive integer of bytes.
 * Returns undefined when invalid.
 */
export function parseThreshold(text: string): number | undefined {
  if (!/^\+?\d+$/.test(text.trim())) return undefined;
  const n = Number(text.trim());
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

async function socketExists(path: string | undefined): Promise<boolean> {
  if (!path) return false;
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    return !(e instanceof Deno.errors.NotFound);
  }
}

function matchesK8s(
  runtime: RuntimeKind,
  labels: Record<string, string>,
  name: string,
  kubeNamespace: string,
): boolean {
  return labels[K8S_NAMESPACE_LABEL] !== undefined &&
    checkerName(runtime, labels, "", kubeNamespace) === name;
}

/** Docker: the native container `name`, else running containers with the kubelet's labels. */
async function findInDocker(
  docker: DockerClient,
  name: string,
  kubeNamespace: string,
): Promise<FoundContainer[]> {
  const native = await docker.inspect(name);
  const found: FoundContainer[] = [];
  // The engine also resolves ID prefixes ("bad" could be an ID): only an exact name counts.
  if (
    native?.running && native.name === name && native.labels[K8S_NAMESPACE_LABEL] === undefined
  ) {
    found.push({
      runtime: "docker",
      id: native.id,
      runtimeName: native.name,
      pid: native.pid,
      cgroupParent: native.cgroupParent,
      restartCount: native.restartCount,
      oomKilled: native.oomKilled,
    });
    return found;
  }
  for (const c of await docker.listRunning()) {
    if (!matchesK8s("docker", c.labels, name, kubeNamespace)) continue;
    const info = await docker.inspect(c.id);
    if (!info?.running) continue;
    found.push({
      runtime: "docker",
      id: info.id,
      runtimeName: info.name,
      pid: info.pid,
      podUid: c.labels[K8S_POD_UID_LABEL],
      cgroupParent: info.cgroupParent,
      restartCount: info.restartCount,
      oomKilled: info.oomKilled,
    });
  }
  return found;
}

/** CRI: running containers of namespace `kubeNamespace` whose container name is `name`. */
async function findInCri(
  cri: CriClient,
  name: string,
  kubeNamespace: string,
): Promise<FoundContainer[]> {
  const list = await cri.listContainers({
    running: true,
    labels: { [K8S_NAMESPACE_LABEL]: kubeNamespace, [K8S_CONTAINER_NAME_LABEL]: name },
  });
  const found: FoundContainer[] = [];
  for (const c of list) {
    if (!matchesK8s("cri", c.labels, name, kubeNamespace)) continue;
    let pid: number | undefined;
    try {
      const st = await cri.containerStatus(c.id);
      if (st.state !== "running") continue;
      pid = st.pid;
    } catch (e) {
      if (e instanceof GrpcError && e.code === GRPC_NOT_FOUND) continue; // gone meanwhile
      throw e;
    }
    found.push({
      runtime: "cri",
      id: c.id,
      runtimeName: c.name,
      pid,
      podUid: c.labels[K8S_POD_UID_LABEL],
    });
  }
  return found;
}

/** Whether container `c` still runs as the same container (same ID). */
async function stillRunning(
  c: FoundContainer,
  docker: DockerClient | undefined,
  cri: CriClient | undefined,
): Promise<boolean> {
  try {
    if (c.runtime === "docker" && docker) return (await docker.inspect(c.id))?.running === true;
    if (c.runtime === "cri" && cri) return (await cri.containerStatus(c.id)).state === "running";
  } catch (e) {
    if (e instanceof GrpcError && e.code === GRPC_NOT_FOUND) return false;
    throw e;
  }
  return false;
}

async function locate(c: FoundContainer, root: string): Promise<CgroupLocation | undefined> {
  if (c.pid && c.pid > 0) {
    const byPid = await cgroupOfPid(c.pid, root);
    if (byPid) return byPid;
  }
  return await findCgroupByHints(
    { id: c.id, podUid: c.podUid, cgroupParent: c.cgroupParent },
    root,
  );
}

/**
 * Runs one memory check. Never throws: an unreachable runtime (when the container is not found
 * in another), an unreadable cgroup of a container that still runs, etc. give status "error".
 */
export async function checkMemory(opts: MemoryCheckOptions): Promise<MemoryCheckResult> {
  const base = { name: opts.name, thresholdBytes: opts.thresholdBytes };
  const root = opts.cgroupRoot ?? cgroupRoot();
  const kubeNamespace = opts.endpoints.kubeNamespace ?? SONIC_POD_NAMESPACE;
  const docker = await socketExists(opts.endpoints.docker)
    ? new DockerClient(opts.endpoints.docker!, opts.endpoints.timeoutMs)
    : undefined;
  const cri = await socketExists(opts.endpoints.cri)
    ? new CriClient(opts.endpoints.cri!, opts.endpoints.timeoutMs)
    : undefined;
  try {
    const errors: string[] = [];
    const lookups = await Promise.all([
      docker
        ? findInDocker(docker, opts.name, kubeNamespace).catch((e) => {
          errors.push(`docker: ${e instanceof Error ? e.message : e}`);
          return [];
        })
        : [],
      cri
        ? findInCri(cri, opts.name, kubeNamespace).catch((e) => {
          // A containerd without the CRI plugin is not a kubelet's runtime: nothing to find.
          if (!(e instanceof GrpcError && e.code === GRPC_UNIMPLEMENTED)) {
            errors.push(`cri: ${e instanceof Error ? e.message : e}`);
          }
          return [];
        })
        : [],
    ]);
    const found = lookups.flat();
    if (found.length === 0) {
      if (errors.length > 0) {
        return { ...base, status: "error", error: `cannot reach ${errors.join("; ")}` };
      }
      opts.logger?.debug(
        `exits without checking memory usage since container '${opts.name}' is not running`,
      );
      return { ...base, status: "not-running" };
    }
    // Check every match (normally one); the largest use decides.
    let worst: MemoryCheckResult | undefined;
    for (const c of found) {
      let cgroup: CgroupLocation | undefined;
      let memory: MemoryUsage | undefined;
      try {
        await opts.beforeRead?.(c);
        cgroup = await locate(c, root);
        if (!cgroup) throw new CgroupGoneError(`no memory cgroup found for ${c.runtime} ${c.id}`);
        memory = await readMemoryUsage(cgroup);
      } catch (e) {
        if (!await stillRunning(c, docker, cri).catch(() => true)) {
          opts.logger?.debug(`container '${opts.name}' stopped during memory check`, {
            runtime: c.runtime,
            id: c.id.slice(0, 12),
          });
          continue;
        }
        const message = e instanceof Error ? e.message : String(e);
        return { ...base, status: "error", container: c, cgroup, error: message };
      }
      const r: MemoryCheckResult = {
        ...base,
        status: memory.net > opts.thresholdBytes ? "over" : "under",
        container: c,
        cgroup,
        memory,
      };
      if (!worst || (worst.memory?.net ?? -1) < memory.net) worst = r;
    }
    return worst ?? { ...base, status: "not-running" };
  } finally {
    docker?.close();
    cri?.close();
  }
}

/** The exit code for a result (SONiC's memory_checker contract). */
export function memoryCheckExitCode(r: MemoryCheckResult): number {
  switch (r.status) {
    case "over":
      return MEMORY_EXCEEDED;
    case "error":
      return MEMORY_INTERNAL_ERROR;
    default:
      return MEMORY_OK;
  }
}

/** The line SONiC's memory_checker prints when over (monit appends it to its alert). */
export function overThresholdLine(r: MemoryCheckResult): string {
  return `[${r.name}]: Memory usage (${r.memory?.net} Bytes) is larger than the threshold (${r.thresholdBytes} Bytes)!`;
}

/** Options of the ks-memory-checker command (already parsed). */
export interface MemoryCheckerRun extends MemoryCheckOptions {
  output: "text" | "json";
  /** Where `mem-threshold-exceeded` goes (SONiC's eventd); false publishes nothing. */
  events?: PublishOptions | false;
}

/** The command: one check, printed as text (SONiC's wording) or JSON; returns the exit code. */
export async function runMemoryChecker(opts: MemoryCheckerRun): Promise<number> {
  const r = await checkMemory(opts);
  const code = memoryCheckExitCode(r);
  if (opts.output === "json") {
    console.log(JSON.stringify({ ...r, exitCode: code }));
  } else if (r.status === "over") {
    console.log(overThresholdLine(r));
  } else if (r.status === "error") {
    console.log(`Failed to check the memory usage of container '${r.name}': ${r.error}`);
  }
  if (r.status === "over" && r.memory && opts.events !== false) {
    await publishEvents(
      EVENTS_SOURCE_HOST,
      [memoryThresholdEvent(r.name, r.memory.net, r.thresholdBytes)],
      { logger: opts.logger, ...opts.events },
    );
  }
  const fields = {
    runtime: r.container?.runtime,
    id: r.container?.id.slice(0, 12),
    usage: r.memory?.net,
    threshold: r.thresholdBytes,
  };
  // monit appends stdout AND stderr to its alert, so the verdict is the stdout line only; the
  // log line is debug (KS_DEBUG=1) to keep monit's message exactly SONiC's wording.
  opts.logger?.debug(`memory check: ${r.status}`, { ...fields, error: r.error });
  return code;
}
