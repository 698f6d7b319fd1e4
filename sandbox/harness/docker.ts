// A private Docker engine per suite (Debian's docker.io 20.10): its own data-root, exec-root,
// pidfile, unix socket, daemon.json and managed containerd, `--iptables=false --bridge=none` and
// no host sysctl changes, so several suites run side by side without touching the machine's
// Docker. `stop()` ends the daemon (SIGTERM, then SIGKILL), then any shim it left, unmounts what
// it mounted under its directories and removes them; safe to call twice.
import { basename, dirname, join } from "node:path";
import { waitUntil } from "./net.ts";
import { daemonStartError, runCommand, spawnLogged } from "./process.ts";

/** How long dockerd gets after SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 20_000;

/** Options for a private dockerd. */
export interface DockerOptions {
  /** Parent directory for data-root, config and logs (default a new temp dir). */
  dir?: string;
  /** Extra dockerd flags (e.g. `--exec-opt native.cgroupdriver=systemd`). */
  extraArgs?: string[];
  /** Milliseconds to wait for the API to answer (default 30 s). */
  startTimeoutMs?: number;
}

/** Result of one docker CLI run. */
export interface DockerResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A running private dockerd. */
export interface DockerEngine {
  /** The sandbox directory (data-root, daemon.json, log). */
  dir: string;
  /** The engine API's unix socket. */
  socketPath: string;
  /** `unix://<socketPath>`. */
  host: string;
  /** Environment for clients: DOCKER_HOST (and a private DOCKER_CONFIG for the CLI). */
  env: Record<string, string>;
  dataRoot: string;
  execRoot: string;
  /** dockerd's PID. */
  pid: number;
  /** The daemon's log file (stdout+stderr), for diagnostics. */
  logPath: string;
  /** Runs the docker CLI (Debian's, matching the engine) against this engine. */
  docker(args: string[], opts?: { stdin?: string }): Promise<DockerResult>;
  /** Stops the daemon and everything it started, removes its directories. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * `docker run -d --name <name> <extra...> <image> sh -c <cmd>` on `engine`: a detached container
 * running a shell command. Returns its ID; throws with docker's stderr when it does not start.
 */
export async function runDetached(
  engine: DockerEngine,
  name: string,
  image: string,
  cmd: string,
  extra: string[] = [],
): Promise<string> {
  const r = await engine.docker(["run", "-d", "--name", name, ...extra, image, "sh", "-c", cmd]);
  if (r.code !== 0) throw new Error(`docker run ${name}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/** The docker CLI to use: Debian's `/usr/bin/docker` (same version as the engine) if present. */
export function dockerCliPath(): string {
  try {
    Deno.statSync("/usr/bin/docker");
    return "/usr/bin/docker";
  } catch {
    return "docker";
  }
}

function which(cmd: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      const p = join(dir, cmd);
      if (Deno.statSync(p).isFile) return p;
    } catch { /* next */ }
  }
  for (const dir of ["/usr/sbin", "/usr/bin", "/sbin"]) {
    try {
      if (Deno.statSync(join(dir, cmd)).isFile) return join(dir, cmd);
    } catch { /* next */ }
  }
  return undefined;
}

/** Why a private dockerd cannot start here (missing binary, not root), or undefined if it can. */
export function dockerUnavailableReason(): string | undefined {
  if (!which("dockerd")) return "dockerd not installed (Debian package docker.io)";
  if (!which("containerd")) return "containerd not installed (dockerd needs it)";
  if (Deno.uid() !== 0) return "dockerd needs root";
  return undefined;
}

/** Sends `GET /_ping` over a unix socket; true on an HTTP 200. */
export async function pingUnix(path: string, apiPath = "/_ping"): Promise<boolean> {
  let conn: Deno.UnixConn | undefined;
  try {
    conn = await Deno.connect({ transport: "unix", path });
    await conn.write(
      new TextEncoder().encode(`GET ${apiPath} HTTP/1.0\r\nHost: docker\r\n\r\n`),
    );
    const buf = new Uint8Array(256);
    const n = await conn.read(buf);
    if (!n) return false;
    return /^HTTP\/1\.[01] 200/.test(new TextDecoder().decode(buf.subarray(0, n)));
  } catch {
    return false;
  } finally {
    try {
      conn?.close();
    } catch { /* closed */ }
  }
}

/** PIDs of processes whose command line mentions `needle` (our own private paths only). */
export async function pidsMentioning(needle: string): Promise<number[]> {
  const pids: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const pid = Number(e.name);
    if (pid === Deno.pid) continue;
    try {
      const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`);
      if (cmdline.includes(needle)) pids.push(pid);
    } catch { /* gone */ }
  }
  return pids;
}

/** Lazily unmounts every mount point under `prefix` (deepest first). */
export async function unmountUnder(prefix: string): Promise<void> {
  let info = "";
  try {
    info = await Deno.readTextFile("/proc/self/mountinfo");
  } catch {
    return;
  }
  const points = info.split("\n").map((l) => l.split(" ")[4]).filter((p): p is string =>
    p !== undefined && (p === prefix || p.startsWith(prefix + "/"))
  ).map((p) => p.replace(/\\040/g, " "));
  points.sort((a, b) => b.length - a.length);
  for (const p of points) {
    await new Deno.Command("umount", { args: ["-l", p], stdout: "null", stderr: "null" })
      .output().catch(() => {});
  }
}

/** Waits until `pid` is gone (or a zombie we cannot reap); true if it went within `ms`. */
export async function waitPidGone(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
      if (/^\d+ \(.*\) Z /.test(stat)) return true;
    } catch {
      return true;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}

/** The v1 cgroup directories (every controller) that `pid` belongs to, or [] if it is gone. */
export async function cgroupDirsOf(pid: number): Promise<string[]> {
  let text = "";
  try {
    text = await Deno.readTextFile(`/proc/${pid}/cgroup`);
  } catch {
    return [];
  }
  const dirs: string[] = [];
  for (const line of text.split("\n")) {
    const [, controllers, path] = line.split(":");
    if (!controllers || !path || path === "/") continue;
    for (const c of controllers.split(",")) {
      dirs.push(join("/sys/fs/cgroup", c.replace(/^name=/, ""), path));
    }
  }
  return dirs;
}

/**
 * Ends container processes for good: SIGKILLs every process in the given cgroup directories (a
 * container's cgroups, recorded while it ran), then removes the emptied directories.
 */
export async function killCgroups(dirs: string[]): Promise<void> {
  const pids = new Set<number>();
  for (const dir of dirs) {
    try {
      for (const p of (await Deno.readTextFile(join(dir, "cgroup.procs"))).split("\n")) {
        if (p.trim()) pids.add(Number(p));
      }
    } catch { /* gone */ }
  }
  pids.delete(Deno.pid);
  await killPids([...pids]);
  for (const dir of [...dirs].sort((a, b) => b.length - a.length)) {
    await Deno.remove(dir).catch(() => {});
    // A kubelet-style pod level (`.../pod<uid>` or `...-pod<uid>.slice`) is ours too.
    const parent = dirname(dir);
    if (/(^|[-/])pod[0-9a-f_-]+(\.slice)?$/.test(basename(parent))) {
      await Deno.remove(parent).catch(() => {});
    }
  }
}

/** Kills `pids` (SIGKILL) and waits briefly for them to go. */
export async function killPids(pids: number[]): Promise<void> {
  for (const pid of pids) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* gone */ }
  }
  for (const pid of pids) await waitPidGone(pid, 3000);
}

/** What cleanUpSandbox removes: see there. */
export interface SandboxLeftovers {
  /** Processes whose command line mentions one of these paths are SIGKILLed. */
  mentioning: string[];
  /** cgroup directories whose processes are SIGKILLed, then removed (killCgroups). */
  cgroups: string[];
  /** The short private directory under /tmp (sockets, exec/state root): always removed. */
  short: string;
  /** The sandbox directory: removed if `ownDir`, else only `data` in it is. */
  dir: string;
  ownDir: boolean;
  data: string;
}

/**
 * After a private engine's daemon has stopped: kills what outlived it (shims by our paths,
 * container processes by their cgroups), unmounts what it mounted under its directories and
 * removes them (a caller-given `dir` stays, only its `data` goes).
 */
export async function cleanUpSandbox(left: SandboxLeftovers): Promise<void> {
  const pids: number[] = [];
  for (const path of left.mentioning) pids.push(...await pidsMentioning(path));
  await killPids([...new Set(pids)]);
  await killCgroups(left.cgroups);
  await unmountUnder(left.short);
  await unmountUnder(left.dir);
  await Deno.remove(left.short, { recursive: true }).catch(() => {});
  if (left.ownDir) await Deno.remove(left.dir, { recursive: true }).catch(() => {});
  else await Deno.remove(left.data, { recursive: true }).catch(() => {});
}

/**
 * Starts a private dockerd and waits until its API answers. Throws with the tail of the daemon's
 * log if it does not come up (the daemon is stopped and cleaned up first).
 */
export async function startDocker(opts: DockerOptions = {}): Promise<DockerEngine> {
  const reason = dockerUnavailableReason();
  if (reason) throw new Error(`cannot start dockerd: ${reason}`);
  const dir = opts.dir ?? await Deno.makeTempDir({ prefix: "ks-docker-" });
  await Deno.mkdir(dir, { recursive: true });
  // Unix socket paths are limited to 108 bytes, and the managed containerd puts its socket deep
  // under the exec-root: keep exec-root and socket in a short private directory under /tmp.
  const short = await Deno.makeTempDir({ dir: "/tmp", prefix: "ksd" });
  const execRoot = join(short, "x");
  const socketPath = join(short, "docker.sock");
  const dataRoot = join(dir, "data");
  const configPath = join(dir, "daemon.json");
  const pidfile = join(dir, "dockerd.pid");
  const logPath = join(dir, "dockerd.log");
  const cliConfig = join(dir, "cli");
  await Deno.mkdir(cliConfig, { recursive: true });
  await Deno.writeTextFile(configPath, "{}\n");

  const args = [
    "--config-file",
    configPath,
    "--data-root",
    dataRoot,
    "--exec-root",
    execRoot,
    "-H",
    `unix://${socketPath}`,
    "--pidfile",
    pidfile,
    "--iptables=false",
    "--ip-forward=false",
    "--ip-masq=false",
    "--bridge=none",
    "--userland-proxy=false",
    "--shutdown-timeout=2",
    "--log-level=warn",
    ...(opts.extraArgs ?? []),
  ];
  // Both streams into one log file; the pipes close when the daemon exits.
  const daemon = await spawnLogged(which("dockerd")!, args, logPath);

  const env = { DOCKER_HOST: `unix://${socketPath}`, DOCKER_CONFIG: cliConfig };
  const cli = dockerCliPath();
  let stopped = false;

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // The cgroups of this engine's containers (default cgroupfs parent `/docker/<id>`), recorded
    // now so that nothing survives a daemon that had to be SIGKILLed.
    const cgroups: string[] = [];
    try {
      for await (const e of Deno.readDir(join(dataRoot, "containers"))) {
        for (const c of ["pids", "memory", "cpu", "cpuacct", "blkio", "devices", "freezer"]) {
          cgroups.push(join("/sys/fs/cgroup", c, "docker", e.name));
        }
      }
    } catch { /* none */ }
    // Killing the containers first makes the daemon's own shutdown quick (about 1 s, not 11).
    await killCgroups(cgroups);
    await daemon.stop(STOP_GRACE_MS);
    // Shims and containerd that outlived the daemon mention our private paths: only those go.
    await cleanUpSandbox({
      mentioning: [execRoot, dataRoot],
      cgroups,
      short,
      dir,
      ownDir: !opts.dir,
      data: dataRoot,
    });
  };

  const docker = (cliArgs: string[], o: { stdin?: string } = {}): Promise<DockerResult> =>
    runCommand(cli, cliArgs, { env, stdin: o.stdin });

  const deadline = Date.now() + (opts.startTimeoutMs ?? 30_000);
  while (!await pingUnix(socketPath)) {
    if (daemon.exited || Date.now() > deadline) {
      throw await daemonStartError("dockerd", daemon, STOP_GRACE_MS, logPath, socketPath, stop);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  return {
    dir,
    socketPath,
    host: `unix://${socketPath}`,
    env,
    dataRoot,
    execRoot,
    pid: daemon.pid,
    logPath,
    docker,
    stop,
  };
}

/**
 * Waits (polling `docker inspect` every 100 ms) until container `name` has been restarted
 * `restarts` times and is running again; throws naming `what` after `ms`.
 */
export async function waitForDockerRestarts(
  engine: DockerEngine,
  name: string,
  restarts: number,
  ms: number,
  what: string,
): Promise<void> {
  await waitUntil(
    async () => {
      const s = await engine.docker([
        "inspect",
        "-f",
        "{{.RestartCount}} {{.State.Running}}",
        name,
      ]);
      return s.stdout.trim() === `${restarts} true`;
    },
    ms,
    what,
    100,
  );
}
