// A container's memory use read from its cgroup, as SONiC's memory_checker counts it: cgroup v2
// `memory.current` minus `inactive_file`, cgroup v1 `memory.usage_in_bytes` minus
// `total_inactive_file`. The cgroup is found from the container's PID (`/proc/<pid>/cgroup`,
// right for every driver and layout), else by trying the layouts Docker and the kubelet use with
// the cgroupfs and systemd drivers. Missing files are retried briefly (a container starting or
// stopping), then reported as CgroupGoneError.
import { joinPath as join } from "../path_join.ts";
import { pathExists } from "../path_exists.ts";

/** A memory cgroup directory and the cgroup version whose files it holds. */
export interface CgroupLocation {
  version: 1 | 2;
  dir: string;
}

/** Memory figures of one cgroup (bytes). */
export interface MemoryUsage {
  /** memory.current (v2) or memory.usage_in_bytes (v1). */
  usage: number;
  /** inactive_file (v2) or total_inactive_file (v1). */
  inactiveFile: number;
  /** usage - inactiveFile: what is compared with the threshold. */
  net: number;
}

/** The cgroup's files vanished (the container stopped, or restarted with a new cgroup). */
export class CgroupGoneError extends Error {
  override name = "CgroupGoneError";
}

/** The cgroup filesystem root: KS_CGROUP_ROOT or /sys/fs/cgroup. */
export function cgroupRoot(): string {
  return Deno.env.get("KS_CGROUP_ROOT") || "/sys/fs/cgroup";
}

/** True when `root` is a cgroup v2 (unified) hierarchy with the memory controller. */
export async function isUnifiedMemory(root: string): Promise<boolean> {
  try {
    const text = await Deno.readTextFile(join(root, "cgroup.controllers"));
    return text.split(/\s+/).includes("memory");
  } catch {
    return false;
  }
}

/**
 * The memory cgroup of process `pid` from `/proc/<pid>/cgroup`: the v1 `memory` line when the
 * memory controller is mounted as v1 (also on hybrid hosts), else the v2 `0::` line.
 * Undefined when the process is gone.
 */
export async function cgroupOfPid(
  pid: number,
  root = cgroupRoot(),
  procRoot = "/proc",
): Promise<CgroupLocation | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(join(procRoot, String(pid), "cgroup"));
  } catch {
    return undefined;
  }
  let v2Path: string | undefined;
  for (const line of text.split("\n")) {
    const first = line.indexOf(":");
    const second = line.indexOf(":", first + 1);
    if (first < 0 || second < 0) continue;
    const controllers = line.slice(first + 1, second);
    const path = line.slice(second + 1);
    if (controllers.split(",").includes("memory")) {
      return { version: 1, dir: join(root, "memory", path) };
    }
    if (line.startsWith("0::")) v2Path = path;
  }
  if (v2Path !== undefined && await isUnifiedMemory(root)) {
    return { version: 2, dir: join(root, v2Path) };
  }
  return undefined;
}

/** What is known about a container to guess its cgroup without a PID. */
export interface CgroupHints {
  /** Full container ID. */
  id: string;
  /** Pod UID (io.kubernetes.pod.uid) for kubelet-managed containers. */
  podUid?: string;
  /** Docker's HostConfig.CgroupParent, when set. */
  cgroupParent?: string;
}

/**
 * The cgroup paths (relative to the memory hierarchy) a container can have: Docker with cgroupfs
 * (`/docker/<id>` or `<parent>/<id>`) and systemd (`system.slice/docker-<id>.scope`); the kubelet
 * with cgroupfs (`kubepods[/<qos>]/pod<uid>/<id>`) and systemd
 * (`kubepods.slice[/kubepods-<qos>.slice]/kubepods[-<qos>]-pod<uid_>.slice/cri-containerd-<id>.scope`).
 */
export function cgroupCandidates(h: CgroupHints): string[] {
  const out: string[] = [];
  if (h.cgroupParent) {
    const p = h.cgroupParent.replace(/^\/+/, "");
    out.push(join(p, h.id));
    if (p.endsWith(".slice")) out.push(join(p, `docker-${h.id}.scope`));
  }
  out.push(join("docker", h.id), join("system.slice", `docker-${h.id}.scope`));
  if (h.podUid) {
    const uid = h.podUid;
    const sUid = uid.replaceAll("-", "_");
    for (const qos of ["", "burstable", "besteffort"]) {
      const cgroupfsPod = qos ? join("kubepods", qos, `pod${uid}`) : join("kubepods", `pod${uid}`);
      out.push(join(cgroupfsPod, h.id));
      const slice = qos
        ? join("kubepods.slice", `kubepods-${qos}.slice`, `kubepods-${qos}-pod${sUid}.slice`)
        : join("kubepods.slice", `kubepods-pod${sUid}.slice`);
      for (const prefix of ["cri-containerd", "crio", "docker"]) {
        out.push(join(slice, `${prefix}-${h.id}.scope`));
      }
    }
  }
  return out;
}

/** The first candidate cgroup that exists under `root`, in the hierarchy that holds memory. */
export async function findCgroupByHints(
  h: CgroupHints,
  root = cgroupRoot(),
): Promise<CgroupLocation | undefined> {
  const v2 = await isUnifiedMemory(root);
  const base = v2 ? root : join(root, "memory");
  for (const rel of cgroupCandidates(h)) {
    const dir = join(base, rel);
    if (await pathExists(dir)) return { version: v2 ? 2 : 1, dir };
  }
  return undefined;
}

async function readWithRetry(path: string, attempts: number, delayMs: number): Promise<string> {
  for (let i = 1;; i++) {
    try {
      return await Deno.readTextFile(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      if (i >= attempts) throw new CgroupGoneError(`${path} does not exist`);
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }
}

function statField(stat: string, key: string, path: string): number {
  const m = new RegExp(`^${key} (\\d+)$`, "m").exec(stat);
  if (!m) throw new Error(`${path}: no "${key}" line`);
  return Number(m[1]);
}

/**
 * Reads a cgroup's memory use. Retries a missing file `attempts` times (default 3, 100 ms apart)
 * and then throws CgroupGoneError; throws Error naming the file on malformed content.
 */
export async function readMemoryUsage(
  loc: CgroupLocation,
  opts: { attempts?: number; delayMs?: number } = {},
): Promise<MemoryUsage> {
  const attempts = opts.attempts ?? 3;
  const delayMs = opts.delayMs ?? 100;
  const usageFile = join(loc.dir, loc.version === 2 ? "memory.current" : "memory.usage_in_bytes");
  const statFile = join(loc.dir, "memory.stat");
  const usageText = (await readWithRetry(usageFile, attempts, delayMs)).trim();
  if (!/^\d+$/.test(usageText)) throw new Error(`${usageFile}: "${usageText}" is not a number`);
  const stat = await readWithRetry(statFile, attempts, delayMs);
  const inactiveFile = statField(
    stat,
    loc.version === 2 ? "inactive_file" : "total_inactive_file",
    statFile,
  );
  const usage = Number(usageText);
  return { usage, inactiveFile, net: usage - inactiveFile };
}
