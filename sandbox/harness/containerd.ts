// A private containerd 1.6 per suite with the CRI plugin on: its own root, state, gRPC/ttrpc
// sockets, /opt path, an ephemeral CRI stream port and the busybox pause image as sandbox image,
// so `crictl runp/create/start` (or a kubelet) can run pods the way a kubelet does, with no
// registry. Pods are expected to use the node's network (`namespace_options.network: 2`): no CNI
// plugin touches the host. `stop()` ends containerd and its shims, unmounts and removes its dirs.
import { join } from "node:path";
import { cgroupDirsOf, cleanUpSandbox } from "./docker.ts";
import { BUSYBOX_CRI_REF, importBusyboxContainerd, PAUSE_CRI_REF } from "./images.ts";
import { daemonStartError, runCommand, spawnLogged } from "./process.ts";

/** How long containerd gets after SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 10_000;

/** Options for a private containerd. */
export interface ContainerdOptions {
  /** Parent directory for root, config and logs (default a new temp dir). */
  dir?: string;
  /** Import the busybox + pause images into the `k8s.io` namespace (default true). */
  importImages?: boolean;
  /** Milliseconds to wait for the gRPC socket (default 20 s). */
  startTimeoutMs?: number;
  /** Disable the CRI plugin, like the containerd Docker ships with (default false). */
  disableCri?: boolean;
}

/** Result of one ctr/crictl run. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A running private containerd. */
export interface Containerd {
  dir: string;
  /** The gRPC socket (also the CRI endpoint). */
  socketPath: string;
  /** `unix://<socketPath>`, the CRI runtime endpoint for crictl / kubelet. */
  endpoint: string;
  root: string;
  state: string;
  /** runc's state root for this instance's containers (pass `--runc-root` to `ctr run`). */
  runcRoot: string;
  configPath: string;
  logPath: string;
  pid: number;
  /** Runs `ctr --address <socket> ...`. */
  ctr(args: string[]): Promise<CliResult>;
  /** Runs `crictl --runtime-endpoint ... --image-endpoint ... <args>` (needs crictl). */
  crictl(args: string[], opts?: { crictlPath?: string }): Promise<CliResult>;
  /**
   * Runs a pod the way a kubelet does, through the CRI with crictl (runp, create, start): a
   * host-network sandbox with the kubelet's labels, then each container with
   * `io.kubernetes.container.name` / `pod.name` / `pod.namespace` / `pod.uid`. Needs crictl.
   */
  runPod(spec: PodSpec): Promise<RunningPod>;
  /** Stops containerd and everything it started, removes its directories. Safe to call twice. */
  stop(): Promise<void>;
}

/** A pod to run through the CRI (see Containerd.runPod). */
export interface PodSpec {
  name: string;
  /** Pod namespace (default "sonic"). */
  namespace?: string;
  /** Pod UID (default a random UUID). */
  uid?: string;
  /** The pod's own labels (app, raw_container_name, ...): a kubelet puts them on the sandbox. */
  labels?: Record<string, string>;
  /** cgroup parent as a kubelet with the cgroupfs driver sets it (default /kubepods/besteffort/pod<uid>). */
  cgroupParent?: string;
  containers: {
    name: string;
    command: string[];
    /** memory limit (bytes) like resources.limits.memory. */
    memoryLimitBytes?: number;
    image?: string;
  }[];
}

/** A pod started by runPod. */
export interface RunningPod {
  podId: string;
  uid: string;
  /** Container IDs by container name. */
  containerIds: Record<string, string>;
}

function findBinary(cmd: string): string | undefined {
  for (const dir of [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/sbin", "/usr/bin"]) {
    try {
      if (dir && Deno.statSync(join(dir, cmd)).isFile) return join(dir, cmd);
    } catch { /* next */ }
  }
  return undefined;
}

/** Why a private containerd cannot start here, or undefined if it can. */
export function containerdUnavailableReason(): string | undefined {
  if (!findBinary("containerd")) return "containerd not installed (Debian package containerd)";
  if (!findBinary("ctr")) return "ctr not installed (Debian package containerd)";
  if (Deno.uid() !== 0) return "containerd needs root";
  return undefined;
}

/**
 * crictl from KS_KUBE_BIN or `scripts/build-kube.sh --print-dir`, then PATH; undefined if it is
 * not built (yet).
 */
export function crictlPath(): string | undefined {
  const dirs: string[] = [];
  const env = Deno.env.get("KS_KUBE_BIN");
  if (env) dirs.push(env);
  try {
    const out = new Deno.Command("bash", {
      args: [new URL("../../scripts/build-kube.sh", import.meta.url).pathname, "--print-dir"],
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    if (out.success) dirs.push(new TextDecoder().decode(out.stdout).trim());
  } catch { /* no script */ }
  for (const d of dirs) {
    try {
      if (Deno.statSync(join(d, "crictl")).isFile) return join(d, "crictl");
    } catch { /* next */ }
  }
  return findBinary("crictl");
}

function configToml(p: {
  root: string;
  state: string;
  socket: string;
  opt: string;
  cniConf: string;
  disableCri?: boolean;
}): string {
  return `version = 2
${p.disableCri ? 'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n' : ""}root = "${p.root}"
state = "${p.state}"
oom_score = 0

[grpc]
  address = "${p.socket}"

[ttrpc]
  address = "${p.socket}.ttrpc"

[debug]
  address = ""
  level = "warn"

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "${p.opt}"
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "${PAUSE_CRI_REF}"
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    enable_selinux = false
    restrict_oom_score_adj = true
    disable_apparmor = true
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "${p.cniConf}"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
          Root = "${p.state}/runc"
`;
}

/**
 * Starts a private containerd and waits until `ctr version` answers; imports the busybox and
 * pause images unless told not to. Throws with the tail of its log if it does not come up.
 */
export async function startContainerd(opts: ContainerdOptions = {}): Promise<Containerd> {
  const reason = containerdUnavailableReason();
  if (reason) throw new Error(`cannot start containerd: ${reason}`);
  const dir = opts.dir ?? await Deno.makeTempDir({ prefix: "ks-containerd-" });
  await Deno.mkdir(dir, { recursive: true });
  // Short private dir for sockets and state (unix socket paths are limited to 108 bytes).
  const short = await Deno.makeTempDir({ dir: "/tmp", prefix: "ksc" });
  const socketPath = join(short, "c.sock");
  const state = join(short, "s");
  const root = join(dir, "root");
  const opt = join(dir, "opt");
  const cniConf = join(dir, "cni");
  await Deno.mkdir(cniConf, { recursive: true });
  const configPath = join(dir, "config.toml");
  const logPath = join(dir, "containerd.log");
  await Deno.writeTextFile(
    configPath,
    configToml({ root, state, socket: socketPath, opt, cniConf, disableCri: opts.disableCri }),
  );

  const crictlConfig = join(dir, "crictl.yaml");
  await Deno.writeTextFile(
    crictlConfig,
    `runtime-endpoint: unix://${socketPath}\nimage-endpoint: unix://${socketPath}\ntimeout: 20\n`,
  );
  const daemon = await spawnLogged(findBinary("containerd")!, ["--config", configPath], logPath);

  const ctrBin = findBinary("ctr")!;
  const ctr = (args: string[]): Promise<CliResult> =>
    runCommand(ctrBin, ["--address", socketPath, ...args]);
  const crictl = async (args: string[], o: { crictlPath?: string } = {}): Promise<CliResult> => {
    const bin = o.crictlPath ?? crictlPath();
    if (!bin) throw new Error("crictl is not built: run scripts/build-kube.sh");
    return await runCommand(bin, ["--config", crictlConfig, ...args]);
  };

  const runPod = async (spec: PodSpec): Promise<RunningPod> => {
    const uid = spec.uid ?? crypto.randomUUID();
    const namespace = spec.namespace ?? "sonic";
    const podDir = await Deno.makeTempDir({ dir, prefix: "pod-" });
    const podLabels = {
      "io.kubernetes.pod.name": spec.name,
      "io.kubernetes.pod.namespace": namespace,
      "io.kubernetes.pod.uid": uid,
    };
    const podConfig = {
      metadata: { name: spec.name, namespace, uid, attempt: 0 },
      log_directory: podDir,
      labels: { ...spec.labels, ...podLabels },
      linux: {
        cgroup_parent: spec.cgroupParent ?? `/kubepods/besteffort/pod${uid}`,
        security_context: { namespace_options: { network: 2 } },
      },
    };
    const podPath = join(podDir, "pod.json");
    await Deno.writeTextFile(podPath, JSON.stringify(podConfig));
    const runp = await crictl(["runp", podPath]);
    if (runp.code !== 0) throw new Error(`crictl runp ${spec.name}: ${runp.stderr.trim()}`);
    const podId = runp.stdout.trim();
    const containerIds: Record<string, string> = {};
    for (const c of spec.containers) {
      const cPath = join(podDir, `${c.name}.json`);
      await Deno.writeTextFile(
        cPath,
        JSON.stringify({
          metadata: { name: c.name, attempt: 0 },
          image: { image: c.image ?? BUSYBOX_CRI_REF },
          command: c.command,
          log_path: `${c.name}.log`,
          labels: { ...podLabels, "io.kubernetes.container.name": c.name },
          linux: c.memoryLimitBytes
            ? { resources: { memory_limit_in_bytes: c.memoryLimitBytes } }
            : {},
        }),
      );
      const created = await crictl(["create", podId, cPath, podPath]);
      if (created.code !== 0) {
        throw new Error(`crictl create ${c.name}: ${created.stderr.trim()}`);
      }
      const id = created.stdout.trim();
      const started = await crictl(["start", id]);
      if (started.code !== 0) throw new Error(`crictl start ${c.name}: ${started.stderr.trim()}`);
      containerIds[c.name] = id;
    }
    return { podId, uid, containerIds };
  };

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // Record every task's cgroups, kill and delete tasks; pods via the CRI; then containerd;
    // then whatever is left (shims by our paths, container processes by their cgroups).
    const cgroups: string[] = [];
    if (!daemon.exited) {
      const nss = (await ctr(["namespaces", "ls", "-q"]).catch(() => undefined))?.stdout ?? "";
      for (const ns of nss.split("\n").filter((s) => s)) {
        const tasks = (await ctr(["-n", ns, "tasks", "ls"]).catch(() => undefined))?.stdout ?? "";
        for (const line of tasks.split("\n").slice(1)) {
          const [id, pid] = line.trim().split(/\s+/);
          if (!id || !pid) continue;
          cgroups.push(...await cgroupDirsOf(Number(pid)));
          await ctr(["-n", ns, "tasks", "kill", "-a", "-s", "SIGKILL", id]).catch(() => {});
        }
      }
    }
    const bin = crictlPath();
    if (!daemon.exited && bin) {
      const pods = await crictl(["pods", "-q"], { crictlPath: bin }).catch(() => undefined);
      for (const id of pods?.stdout.split("\n").filter((s) => s) ?? []) {
        await crictl(["stopp", id], { crictlPath: bin }).catch(() => {});
        await crictl(["rmp", "-f", id], { crictlPath: bin }).catch(() => {});
      }
    }
    await daemon.stop(STOP_GRACE_MS);
    // Shims mention our socket (`-address`) and state paths: only those go.
    await cleanUpSandbox({
      mentioning: [short, root],
      cgroups,
      short,
      dir,
      ownDir: !opts.dir,
      data: root,
    });
  };

  const deadline = Date.now() + (opts.startTimeoutMs ?? 20_000);
  while (true) {
    let ok = false;
    try {
      await Deno.stat(socketPath);
      ok = (await ctr(["version"])).code === 0;
    } catch { /* not yet */ }
    if (ok) break;
    if (daemon.exited || Date.now() > deadline) {
      throw await daemonStartError("containerd", daemon, STOP_GRACE_MS, logPath, socketPath, stop);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  const handle: Containerd = {
    dir,
    socketPath,
    endpoint: `unix://${socketPath}`,
    root,
    state,
    runcRoot: join(state, "runc"),
    configPath,
    logPath,
    pid: daemon.pid,
    ctr,
    crictl,
    runPod,
    stop,
  };
  if (opts.importImages !== false) {
    try {
      await importBusyboxContainerd(handle);
    } catch (e) {
      await stop();
      throw e;
    }
  }
  return handle;
}
