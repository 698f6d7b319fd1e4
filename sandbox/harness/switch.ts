// Real lab switches for end-to-end tests and the lab: N node containers (`sw1`…) on a
// private dockerd, each with systemd as PID 1, the database (redis-server + SONiC's
// database_config.json), containerd, the native Docker, monit, SONiC's telemetry.service in its
// native v0 form, and a real kubelet registered with the lab's API server as `system:node:<name>`.
//
// Networking: every switch has its own network namespace (`--network none`: loopback only), so
// several switches never clash on ports (redis 6379, kubelet 10250, telemetry 50051, …) and
// nothing they do can reach any other address. The node address the kubelet insists on (it
// refuses loopback) is a /32 on the switch's own `lo`. The API server (host loopback) is reached
// through a unix socket in the switch's config dir: this process forwards it to the API server's
// 127.0.0.1 port, and a socat unit in the switch listens on its own 127.0.0.1:6443.
//
// `stop()` removes the containers (their PID namespaces take every nested process with them),
// the cgroups the switches created, the dockerd, the node objects and the forwarders.
import { join } from "node:path";
import { startDocker } from "./docker.ts";
import type { DockerEngine, DockerResult } from "./docker.ts";
import { blackholeRoute, waitUntil } from "./net.ts";
import { makeCert } from "./pki.ts";

const REPO = new URL("../../", import.meta.url).pathname;
const BUILD_SCRIPT = join(REPO, "scripts", "switch", "build-switch-image.sh");
/** Runtime that gives node containers the capabilities Docker 20.10 cannot name (BPF, …). */
const RUNC_ALLCAPS = join(REPO, "scripts", "switch", "runc-allcaps");

/** The part of a KubeCluster (sandbox/harness/kube.ts) the switches need. */
export interface SwitchClusterRef {
  dir: string;
  server: string;
  /** Admin kubeconfig (host side), for tools the flows run from the host. */
  kubeconfigPath: string;
  kubectl(
    args: string[],
    opts?: { stdin?: string },
  ): Promise<{ code: number; stdout: string; stderr: string }>;
}

/** Options for {@link startSwitches}. */
export interface SwitchOptions {
  /** The lab's control plane (startKube()). Its `pki/ca.key` signs each kubelet's certificate. */
  cluster: SwitchClusterRef;
  /** How many switches (default 1), named sw1…swN unless `names` is given. */
  count?: number;
  /** Explicit lowercase hostnames (overrides count). */
  names?: string[];
  /** Node labels for every switch (merged over the SONiC ones). */
  nodeLabels?: Record<string, string>;
  /** Extra CONFIG_DB seed (redis-cli lines) loaded on first boot after /etc/sonic/init_cfg.redis. */
  initConfig?: string;
  /**
   * ASICs per switch (default 1). With 2 or more each switch is a multi-ASIC platform: its
   * `/usr/share/sonic/device/<platform>/asic.conf` says NUM_ASIC=N (the platform named by
   * `/host/machine.conf`), and at boot the image's generator and database units lay it out as SONiC
   * does (a database per namespace behind `database_global.json`, `<feature>@N` instances).
   */
  asics?: number;
  /**
   * Extra CONFIG_DB seed of namespace asicN (index = N), loaded after `initConfig` into that
   * namespace's CONFIG_DB only (SONiC's config_dbN.json).
   */
  asicInitConfig?: string[];
  /** Parent directory (default a new temp dir, removed by stop()). */
  dir?: string;
  /** Milliseconds to wait for each switch's boot and node Ready (default 480 s). */
  readyTimeoutMs?: number;
  /** Progress lines (default to stderr). */
  log?: (line: string) => void;
}

/** One running lab switch. */
export interface SwitchNode {
  name: string;
  /** Docker container id in the lab's private dockerd. */
  containerId: string;
  /** The kubelet's node IP (a /32 on the switch's own loopback). */
  nodeIp: string;
  /** Host directory mounted at /etc/kubesonic/switch (switch.env, kubelet.conf, sockets). */
  configDir: string;
  /** The switch's cgroup (v1, absolute, e.g. /docker/<id>). */
  cgroup: string;
  /** Host PID of the switch's systemd (for nsenter from the host). */
  pid: number;
  /** ASICs of this switch (1: single-ASIC). */
  asics: number;
  /** Runs argv inside the switch (docker exec). */
  exec(argv: string[], opts?: { stdin?: string; timeoutMs?: number }): Promise<DockerResult>;
  /** `systemctl <args>` inside the switch. */
  systemctl(...args: string[]): Promise<DockerResult>;
  /** `redis-cli -n 4 <args>` (CONFIG_DB) inside the switch; stdout trimmed. Throws on failure. */
  configDb(...args: string[]): Promise<string>;
  /**
   * `redis-cli -n <db> <args>` on a namespace's database (asic N's socket
   * `/var/run/redisN/redis.sock`; undefined: the host's); stdout trimmed. Throws on failure.
   */
  redisCli(asic: number | undefined, db: number, ...args: string[]): Promise<string>;
  /** `crictl <args>` inside the switch. */
  crictl(...args: string[]): Promise<DockerResult>;
  /**
   * The switch's memory (its v1 memory cgroup, nested containers included): `usage` as the
   * cgroup counts it (page cache included), `rss` (anonymous memory) and `cache`, in bytes.
   */
  memory(): Promise<{ usage: number; rss: number; cache: number }>;
  /** Last `lines` of `journalctl -u unit` (for failure messages). */
  journal(unit: string, lines?: number): Promise<string>;
  /** Cuts or restores this switch's API-server link (the forwarded socket); see ApiLinkState. */
  apiLink(state: ApiLinkState): Promise<void>;
}

/** A running set of lab switches. */
export interface SwitchLab {
  dir: string;
  docker: DockerEngine;
  /** The image build output directory (switch.tar, images/*.tar). */
  imagesDir: string;
  switches: SwitchNode[];
  /** Milliseconds startSwitches() took (image build/reuse, engine, boot, Ready). */
  startMs: number;
  /** Stops every switch and process this lab started. Safe to call twice. */
  stop(): Promise<void>;
}

function which(cmd: string): boolean {
  for (const dir of [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/sbin", "/sbin"]) {
    try {
      if (Deno.statSync(join(dir, cmd)).isFile) return true;
    } catch { /* next */ }
  }
  return false;
}

/** Why real switches cannot run here (not root, dockerd/debootstrap missing), or undefined. */
export function switchUnavailableReason(): string | undefined {
  if (Deno.build.os !== "linux") return "real switches need Linux";
  if (Deno.uid() !== 0) return "real switches need root (dockerd, debootstrap)";
  for (const cmd of ["dockerd", "debootstrap", "openssl"]) {
    if (!which(cmd)) return `${cmd} is not installed (run scripts/setup.sh)`;
  }
  return undefined;
}

/**
 * Builds (or reuses from the cache) the switch, feature and pause images and returns the output
 * directory. Progress goes to stderr. Throws with the script's last lines on failure.
 */
export async function ensureSwitchImages(): Promise<string> {
  const out = await new Deno.Command("bash", {
    args: [BUILD_SCRIPT],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const dir = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
  if (!out.success || !dir) {
    throw new Error(`${BUILD_SCRIPT} failed (exit ${out.code}); see its progress lines above`);
  }
  return dir;
}

const b64 = (text: string) => btoa(String.fromCharCode(...new TextEncoder().encode(text)));

/**
 * A kubelet kubeconfig for `node`: a client certificate `system:node:<node>` (group
 * system:nodes, as kubeadm issues) signed by the cluster CA, server https://127.0.0.1:6443.
 */
async function kubeletKubeconfig(clusterDir: string, node: string, dir: string): Promise<string> {
  const pki = join(clusterDir, "pki");
  const key = join(dir, "kubelet.key");
  const crt = join(dir, "kubelet.crt");
  await makeCert({
    keyPath: key,
    certPath: crt,
    subject: `/O=system:nodes/CN=system:node:${node}`,
    days: 365,
    ca: { certPath: join(pki, "ca.crt"), keyPath: join(pki, "ca.key") },
    extensions: [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=clientAuth",
    ],
  });
  const ca = await Deno.readTextFile(join(pki, "ca.crt"));
  return `apiVersion: v1
kind: Config
clusters:
- name: kubesonic-lab
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: ${b64(ca)}
users:
- name: system:node:${node}
  user:
    client-certificate-data: ${b64(await Deno.readTextFile(crt))}
    client-key-data: ${b64(await Deno.readTextFile(key))}
contexts:
- name: kubesonic-lab
  context:
    cluster: kubesonic-lab
    user: system:node:${node}
current-context: kubesonic-lab
`;
}

/**
 * How the switch's API-server link behaves: `up` forwards; `blackhole` is a partition as a
 * datacenter network makes one (connections are accepted, nothing gets through, nothing is
 * refused: callers see timeouts); `refuse` closes the socket (callers see the connection reset at
 * once). Leaving `up` drops every open connection; coming back `up` drops the ones opened meanwhile.
 */
export type ApiLinkState = "up" | "blackhole" | "refuse";

/** Forwards connections on a unix socket to 127.0.0.1:port (the API server) until closed. */
class UnixToTcpForwarder {
  #listener?: Deno.Listener;
  #conns = new Set<Deno.Conn>();
  #done: Promise<void> = Promise.resolve();
  #state: ApiLinkState = "up";

  constructor(readonly path: string, readonly port: number) {
    this.#listen();
  }

  #listen(): void {
    try {
      Deno.removeSync(this.path);
    } catch { /* none */ }
    const listener = Deno.listen({ transport: "unix", path: this.path });
    this.#listener = listener;
    this.#done = this.#accept(listener);
  }

  async #accept(listener: Deno.Listener): Promise<void> {
    try {
      for await (const conn of listener) {
        if (this.#state === "blackhole") this.#hold(conn);
        else this.#pipe(conn);
      }
    } catch { /* closed */ }
  }

  /** A partitioned connection: open, read and discarded, never answered. */
  async #hold(conn: Deno.Conn): Promise<void> {
    this.#conns.add(conn);
    try {
      const buf = new Uint8Array(16384);
      while (await conn.read(buf) !== null) { /* dropped */ }
    } catch { /* closed */ }
    this.#conns.delete(conn);
    try {
      conn.close();
    } catch { /* closed */ }
  }

  async #pipe(conn: Deno.Conn): Promise<void> {
    this.#conns.add(conn);
    let upstream: Deno.Conn | undefined;
    try {
      upstream = await Deno.connect({ hostname: "127.0.0.1", port: this.port });
      this.#conns.add(upstream);
      await Promise.all([
        conn.readable.pipeTo(upstream.writable).catch(() => {}),
        upstream.readable.pipeTo(conn.writable).catch(() => {}),
      ]);
    } catch {
      /* API server gone */
    } finally {
      for (const c of [conn, upstream]) {
        if (!c) continue;
        this.#conns.delete(c);
        try {
          c.close();
        } catch { /* closed */ }
      }
    }
  }

  #dropAll(): void {
    for (const c of this.#conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    this.#conns.clear();
  }

  /** Changes the link (see ApiLinkState). */
  async set(state: ApiLinkState): Promise<void> {
    if (state === this.#state) return;
    const was = this.#state;
    this.#state = state;
    this.#dropAll();
    if (state === "refuse") {
      try {
        this.#listener?.close();
      } catch { /* closed */ }
      this.#listener = undefined;
      await this.#done;
      try {
        await Deno.remove(this.path);
      } catch { /* gone */ }
    } else if (was === "refuse") {
      this.#listen();
    }
  }

  async close(): Promise<void> {
    try {
      this.#listener?.close();
    } catch { /* closed */ }
    this.#dropAll();
    await this.#done;
  }
}

/** Every cgroup directory (all v1 controllers) at or under `path`, deepest first. */
async function cgroupTree(path: string): Promise<string[]> {
  const dirs: string[] = [];
  const walk = async (dir: string) => {
    try {
      for await (const e of Deno.readDir(dir)) {
        if (e.isDirectory) await walk(join(dir, e.name));
      }
      dirs.push(dir);
    } catch { /* gone */ }
  };
  for await (const c of Deno.readDir("/sys/fs/cgroup")) {
    if (c.isDirectory && c.name !== "unified") await walk(join("/sys/fs/cgroup", c.name, path));
  }
  return dirs.sort((a, b) => b.split("/").length - a.split("/").length);
}

async function removeCgroups(dirs: string[]): Promise<void> {
  for (let attempt = 0; attempt < 20 && dirs.length; attempt++) {
    const left: string[] = [];
    for (const d of dirs) {
      try {
        await Deno.remove(d);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) left.push(d);
      }
    }
    dirs = left;
    if (dirs.length) await new Promise((r) => setTimeout(r, 100));
  }
}

/** The node IPs the switches put on their own loopback (`10.250.0.N/32`, one per switch). */
export const SWITCH_NODE_NET = "10.250.0.0/24";

/** The platform a multi-ASIC lab switch names in /host/machine.conf. */
export const MULTI_ASIC_PLATFORM = "x86_64-kubesonic_lab-r0";

/**
 * Starts the switches: builds or reuses the images, a private dockerd, one node container per
 * switch, and waits until every switch's systemd finished booting (`running`, or `degraded` with
 * the failed units named in the log) and its Node is Ready. Throws (after stopping what it
 * started) with the kubelet's journal when a switch does not come up.
 */
export async function startSwitches(opts: SwitchOptions): Promise<SwitchLab> {
  const t0 = performance.now();
  const log = opts.log ?? ((l: string) => console.error(`switch: ${l}`));
  const reason = switchUnavailableReason();
  if (reason) throw new Error(`cannot start real switches: ${reason}`);
  const names = opts.names ?? Array.from({ length: opts.count ?? 1 }, (_, i) => `sw${i + 1}`);
  const asics = opts.asics ?? 1;
  if (!Number.isInteger(asics) || asics < 1 || asics > 10) {
    throw new Error(`asics ${asics}: expected an integer from 1 to 10`);
  }
  for (const n of names) {
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(n)) {
      throw new Error(`switch name ${JSON.stringify(n)}: expected a lowercase DNS label`);
    }
  }
  const ownDir = !opts.dir;
  const dir = opts.dir ?? await Deno.makeTempDir({ prefix: "ks-switch-" });
  const apiPort = Number(new URL(opts.cluster.server).port);
  const forwarders: UnixToTcpForwarder[] = [];
  const switches: SwitchNode[] = [];
  let docker: DockerEngine | undefined;
  let stopped = false;

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    const cgroups: string[] = [];
    for (const sw of switches) cgroups.push(...await cgroupTree(sw.cgroup));
    if (docker) {
      for (const sw of switches) {
        await docker.docker(["rm", "-f", "-v", sw.containerId]).catch(() => {});
      }
    }
    await removeCgroups(cgroups);
    await docker?.stop();
    for (const f of forwarders) await f.close();
    for (const sw of switches) {
      await opts.cluster.kubectl(["delete", "node", sw.name, "--wait=false"]).catch(() => {});
    }
    if (ownDir) await Deno.remove(dir, { recursive: true }).catch(() => {});
  };

  try {
    log("images: building or reusing (scripts/switch/build-switch-image.sh)");
    const imagesDir = await ensureSwitchImages();
    const tag = `kubesonic/switch:${imagesDir.split("/").pop()}`;
    docker = await startDocker({
      dir: join(dir, "docker"),
      extraArgs: ["--add-runtime", `ks-runc=${RUNC_ALLCAPS}`],
    });
    const tLoad = performance.now();
    const loaded = await docker.docker(["load", "-i", join(imagesDir, "switch.tar")]);
    if (loaded.code !== 0) throw new Error(`docker load of the switch image: ${loaded.stderr}`);
    log(`images: switch image loaded in ${Math.round(performance.now() - tLoad)} ms`);

    const labels = {
      "kubesonic.io/switch": "true",
      sonic_version: "SONiC.master.0-kubesonic",
      ...opts.nodeLabels,
    };
    // The node IPs live only on each switch's own loopback, but the kubelet reports them to the
    // API server: anything on the host dialling one (kubectl logs/exec) would otherwise leave
    // through the default route.
    const routeError = await blackholeRoute(SWITCH_NODE_NET);
    if (routeError) log(`WARNING: no blackhole route for ${SWITCH_NODE_NET}: ${routeError}`);
    for (const [i, name] of names.entries()) {
      const configDir = join(dir, name);
      await Deno.mkdir(configDir, { recursive: true });
      const nodeIp = `10.250.0.${i + 1}`;
      await Deno.writeTextFile(
        join(configDir, "switch.env"),
        [
          `KS_NODE_NAME=${name}`,
          `KS_NODE_IP=${nodeIp}`,
          `KS_NODE_LABELS=${Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(",")}`,
          `KS_KUBELET_V=1`,
          "",
        ].join("\n"),
      );
      const kubeconfig = join(configDir, "kubelet.conf");
      await Deno.writeTextFile(kubeconfig, await kubeletKubeconfig(opts.cluster.dir, name, dir));
      // The launchers run as `admin` (SONiC's User=admin) and read it, as on a switch.
      await Deno.chmod(kubeconfig, 0o644);
      if (opts.initConfig) {
        await Deno.writeTextFile(join(configDir, "init_cfg.redis"), opts.initConfig);
      }
      // A multi-ASIC platform: machine.conf names it, its asic.conf gives NUM_ASIC (both read at
      // boot by the generator, the database units and the tools, as on SONiC).
      const platformMounts: string[] = [];
      if (asics > 1) {
        await Deno.writeTextFile(
          join(configDir, "machine.conf"),
          `onie_platform=${MULTI_ASIC_PLATFORM}\nonie_machine=kubesonic_lab\n`,
        );
        await Deno.writeTextFile(join(configDir, "asic.conf"), `NUM_ASIC=${asics}\n`);
        platformMounts.push(
          "-v",
          `${join(configDir, "machine.conf")}:/host/machine.conf:ro`,
          "-v",
          `${
            join(configDir, "asic.conf")
          }:/usr/share/sonic/device/${MULTI_ASIC_PLATFORM}/asic.conf:ro`,
        );
        for (const [asic, text] of (opts.asicInitConfig ?? []).entries()) {
          if (text) await Deno.writeTextFile(join(configDir, `init_cfg${asic}.redis`), text);
        }
      }
      const forwarder = new UnixToTcpForwarder(join(configDir, "apiserver.sock"), apiPort);
      forwarders.push(forwarder);
      const r = await docker.docker([
        "run",
        "-d",
        "--name",
        name,
        "--hostname",
        name,
        "--runtime",
        "ks-runc",
        "--network",
        "none",
        "--cgroupns=host",
        "-v",
        "/sys/fs/cgroup:/sys/fs/cgroup:rw",
        "--tmpfs",
        "/run",
        "--tmpfs",
        "/run/lock",
        "-e",
        "container=docker",
        "--cap-add",
        "ALL",
        "--cap-drop",
        "SYS_RESOURCE",
        "--security-opt",
        "seccomp=unconfined",
        "--security-opt",
        "apparmor=unconfined",
        "--device",
        "/dev/kmsg",
        // Nested overlayfs needs these on the host's filesystem, not the container's overlay.
        "-v",
        "/var/lib/containerd",
        "-v",
        "/var/lib/docker",
        "-v",
        "/var/lib/kubelet",
        "-v",
        `${configDir}:/etc/kubesonic/switch`,
        "-v",
        `${kubeconfig}:/etc/kubernetes/kubelet.conf:ro`,
        "-v",
        `${join(imagesDir, "images")}:/var/lib/kubesonic/images:ro`,
        ...platformMounts,
        "--label",
        "io.kubesonic.lab=switch",
        tag,
      ]);
      if (r.code !== 0) throw new Error(`docker run ${name}: ${r.stderr.trim()}`);
      const containerId = r.stdout.trim();
      const inspect = await docker.docker(["inspect", "-f", "{{.State.Pid}}", containerId]);
      const pid = Number(inspect.stdout.trim());
      const engine = docker;
      const exec = async (
        argv: string[],
        o: { stdin?: string; timeoutMs?: number } = {},
      ): Promise<DockerResult> => {
        const args = ["exec", ...(o.stdin !== undefined ? ["-i"] : []), containerId, ...argv];
        if (!o.timeoutMs) return await engine.docker(args, { stdin: o.stdin });
        return await engine.docker([
          "exec",
          containerId,
          "timeout",
          String(o.timeoutMs / 1000),
          ...argv,
        ]);
      };
      const cgLine = (await Deno.readTextFile(`/proc/${pid}/cgroup`)).split("\n")
        .find((l) => l.split(":")[1] === "memory") ?? "";
      const cgroup = cgLine.split(":")[2].replace(/\/init\.scope$/, "");
      const redisCli = async (asic: number | undefined, db: number, ...args: string[]) => {
        const socket = `/var/run/redis${asic ?? ""}/redis.sock`;
        const res = await exec(["redis-cli", "-s", socket, "-n", String(db), ...args]);
        if (res.code !== 0) {
          throw new Error(`redis-cli -s ${socket} ${args.join(" ")} on ${name}: ${res.stderr}`);
        }
        return res.stdout.trim();
      };
      switches.push({
        name,
        containerId,
        nodeIp,
        configDir,
        cgroup,
        pid,
        asics,
        exec,
        systemctl: (...args) => exec(["systemctl", ...args]),
        crictl: (...args) => exec(["crictl", ...args]),
        configDb: (...args) => redisCli(undefined, 4, ...args),
        redisCli,
        memory: async () => {
          const base = join("/sys/fs/cgroup/memory", cgroup);
          const stat = Object.fromEntries(
            (await Deno.readTextFile(join(base, "memory.stat"))).trim().split("\n")
              .map((l) => l.split(" ")).map(([k, v]) => [k, Number(v)]),
          );
          return {
            usage: Number(await Deno.readTextFile(join(base, "memory.usage_in_bytes"))),
            rss: stat.total_rss ?? 0,
            cache: stat.total_cache ?? 0,
          };
        },
        journal: async (unit, lines = 30) =>
          (await exec(["journalctl", "-u", unit, "-n", String(lines), "--no-pager"])).stdout,
        apiLink: (state) => forwarder.set(state),
      });
      log(`${name}: started (node IP ${nodeIp}, cgroup ${cgroup})`);
    }

    // Booting systemd, loading the images and registering the kubelet take ~35 s on a quiet
    // machine and several minutes beside a loaded suite: the wait ends as soon as they are done.
    const timeout = opts.readyTimeoutMs ?? 480_000;
    await Promise.all(switches.map(async (sw) => {
      // Right after `docker run` systemd's bus may not be up yet ("offline" on a loaded machine:
      // systemctl found no manager to ask): ask again until it answers.
      let boot: DockerResult = { code: 1, stdout: "", stderr: "" };
      await waitUntil(
        async () => {
          boot = await sw.exec(["systemctl", "is-system-running", "--wait"], {
            timeoutMs: timeout,
          });
          const answer = boot.stdout.trim();
          return answer !== "" && answer !== "offline";
        },
        timeout,
        `${sw.name}: systemd's bus`,
        200,
      );
      const state = boot.stdout.trim();
      if (state !== "running") {
        const failed = await sw.systemctl("--failed", "--no-legend", "--plain");
        log(`${sw.name}: systemd says ${state}; failed units: ${failed.stdout.trim() || "none"}`);
        if (state !== "degraded") {
          throw new Error(`${sw.name}: systemd did not finish booting (${state || boot.stderr})`);
        }
      }
      try {
        await waitUntil(
          async () => {
            const r = await opts.cluster.kubectl([
              "get",
              "node",
              sw.name,
              "-o",
              'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
            ]);
            return r.stdout.trim() === "True";
          },
          timeout,
          `node ${sw.name} Ready`,
          500,
        );
      } catch (e) {
        throw new Error(
          `${(e as Error).message}; kubelet journal:\n${await sw.journal("kubelet")}`,
        );
      }
      log(`${sw.name}: systemd ${state}, node Ready`);
    }));
    return { dir, docker, imagesDir, switches, startMs: performance.now() - t0, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
