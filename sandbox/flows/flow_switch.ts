// One simulated switch for the design's rollout/rollback flows (docs/design.md): a kwok node on the
// real API server, the real redis as its CONFIG_DB, a sandbox host root in the v0 state (the
// native launcher), the recording systemctl/docker, and the pod runner playing the kubelet's
// container part. Everything else is the real tools, bundled: ks-render renders the telemetry
// example, kubectl applies it, ks-rollout rolls it, ks-patcher (the sidecar) writes host files,
// ks-entrypoint + supervisord + the example daemon and ks-watchdog run in the "pods", and the
// installed launcher runs ks-stub. Used by the flows test and lab/scenarios/50_flows.ts.
import { dirname, join } from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { REPO_ROOT } from "../../src/build/bundle.ts";
import { runTool, toolLauncher, type ToolResult } from "../harness/bin.ts";
import type { KubeCluster } from "../harness/kube.ts";
import { freePort, waitUntil } from "../harness/net.ts";
import {
  createRecordingSystemctl,
  type RecordingSystemctl,
} from "../harness/recording_systemctl.ts";
import type { RedisSandbox } from "../harness/redis.ts";
import { writeTelemetrySandbox } from "../../examples/telemetry/sandbox.ts";
import { type PodRunner, startPodRunner } from "./pod_runner.ts";

const EXAMPLE_SPEC = join(REPO_ROOT, "examples", "telemetry", "feature.yaml");
/** The launcher the unit runs (ExecStartPre/ExecStart/ExecStop), relative to the host root. */
export const LAUNCHER = "/usr/local/bin/telemetry.sh";
/** The drop-in ks-render adds in kube mode. */
export const DROP_IN = "/etc/systemd/system/telemetry.service.d/50-kubesonic.conf";

/** A rendered variant of the telemetry example. */
export interface Rendered {
  dir: string;
  common: string;
  v1: string;
  v2: string;
  /** The ConfigMap's data (host files and manifests) by key. */
  files: Record<string, string>;
}

/** The simulated switch. */
export interface FlowSwitch {
  node: string;
  hostRoot: string;
  /** The daemon's port (gnmi) and the watchdog's port on this switch. */
  ports: { daemon: number; watchdog: number };
  /** The v0 launcher's bytes, as the image installed them. */
  nativeLauncher: string;
  systemctl: RecordingSystemctl;
  runner: PodRunner;
  /** The stub's kubeconfig: the rendered `telemetry-stub` ServiceAccount's token. */
  stubKubeconfig(): Promise<string>;
  /** Renders the example; `variant` "v2plus" is a release whose daemon listens on the wrong port. */
  render(variant: "v2" | "v2plus"): Promise<Rendered>;
  /** kubectl apply -f of a directory or file; throws on failure. */
  apply(path: string): Promise<void>;
  /** ks-rollout telemetry --to <manifest> (waves 100%, short bake). */
  rollout(manifest: string, readyTimeout?: string): Promise<ToolResult>;
  /** Runs the installed launcher as systemd would (`telemetry.sh <verb>`), as root with the stub's kubeconfig. */
  launcher(verb: string): Promise<ToolResult>;
  /** Starts the installed launcher in the background (systemd's ExecStart=… wait). */
  spawnLauncher(verb: string): Promise<Deno.ChildProcess>;
  /** Reads a host file (relative to the host root); undefined when absent. */
  hostFile(path: string): Promise<string | undefined>;
  /** True when the daemon accepts TCP connections. */
  daemonUp(): Promise<boolean>;
  /** The watchdog's /readyz answer (status, body), or undefined when it does not answer. */
  watchdog(): Promise<{ status: number; body: string } | undefined>;
  /** This node's telemetry pods (name, uid, ready, version label, deleting). */
  pods(): Promise<FlowPod[]>;
  /** Waits until exactly one live pod runs on the node with `predicate` true. */
  waitPod(what: string, predicate: (p: FlowPod) => boolean, ms?: number): Promise<FlowPod>;
  stop(): Promise<void>;
}

/** A pod of the feature on the switch, as the flows look at it. */
export interface FlowPod {
  name: string;
  uid: string;
  stage: string;
  version: string;
  ready: boolean;
  deleting: boolean;
}

/** Options of {@link createFlowSwitch}. */
export interface FlowSwitchOptions {
  kube: KubeCluster;
  redis: RedisSandbox;
  dir: string;
  node?: string;
}

async function specVariant(
  dir: string,
  variant: "v2" | "v2plus",
  ports: { daemon: number; watchdog: number; wrong: number },
  stubPath: string,
): Promise<string> {
  const spec = parseYaml(await Deno.readTextFile(EXAMPLE_SPEC)) as Record<string, unknown>;
  // This switch's ports (tests run side by side) and its ks-stub (the bundled tool here, where a
  // switch has /usr/local/bin/ks-stub); everything else is the example as shipped.
  spec.ports = [{ name: "gnmi", port: ports.daemon }];
  const watchdog = spec.watchdog as Record<string, unknown>;
  watchdog.port = ports.watchdog;
  watchdog.probes = [{ tcp: `127.0.0.1:${ports.daemon}` }];
  const listen = variant === "v2" ? ports.daemon : ports.wrong;
  spec.env = { ...(spec.env as Record<string, string>), TELEMETRY_LISTEN: `127.0.0.1:${listen}` };
  spec.stub = { ...(spec.stub as Record<string, unknown> ?? {}), path: stubPath };
  // The stub is the ks tree's own here; the host runtime install is proved on a real switch and
  // in test/render/host_runtime_test.ts.
  spec.hostRuntime = { install: false };
  if (variant === "v2plus") {
    const images = spec.images as Record<string, string>;
    images.feature = "docker-sonic-telemetry:v2plus";
  }
  const path = join(dir, `feature-${variant}.yaml`);
  await Deno.writeTextFile(path, stringifyYaml(spec));
  return path;
}

/** Creates the switch: node, host root in the v0 state, recording systemctl, pod runner. */
export async function createFlowSwitch(opts: FlowSwitchOptions): Promise<FlowSwitch> {
  const { kube, redis } = opts;
  const node = opts.node ?? "switch1";
  const dir = opts.dir;
  const hostRoot = join(dir, "host");
  const ports = { daemon: freePort(), watchdog: freePort(), wrong: freePort() };
  const stubPath = await toolLauncher("ks-stub");
  for (const tool of ["ks-entrypoint", "ks-watchdog", "ks-patcher", "ks-render", "ks-rollout"]) {
    await toolLauncher(tool);
  }

  // v0: the image's native launcher and unit directory; the sandbox's database and config dirs.
  const nativeSpec = parseYaml(await Deno.readTextFile(EXAMPLE_SPEC)) as {
    native: { launcher: string };
  };
  const nativeLauncher = nativeSpec.native.launcher;
  await Deno.mkdir(join(hostRoot, dirname(LAUNCHER)), { recursive: true });
  await Deno.writeTextFile(join(hostRoot, LAUNCHER), nativeLauncher, { mode: 0o755 });
  await Deno.chmod(join(hostRoot, LAUNCHER), 0o755);
  for (const d of ["etc/systemd/system", "etc/sonic", "var/run/redis", "var/lib/kubesonic"]) {
    await Deno.mkdir(join(hostRoot, d), { recursive: true });
  }

  await kube.addNodes([node], { "kubesonic.io/telemetry": "enabled" });
  const systemctl = await createRecordingSystemctl(join(dir, "recording-bin"));
  const telemetry = await writeTelemetrySandbox(join(dir, "telemetry"), {});
  const distBin = dirname(stubPath);
  const path = `${systemctl.binDir}:${dirname(Deno.execPath())}:/usr/sbin:/usr/bin:/sbin:/bin`;
  const runner = await startPodRunner({
    rest: kube.rest,
    node,
    hostRoot,
    dir: join(dir, "pods"),
    imagePaths: {
      // The entrypoint the init container copies into the pod, the ks-tools image's tools.
      "/kubesonic/bin/ks-entrypoint": join(distBin, "ks-entrypoint"),
      "/opt/kubesonic/bin/ks-watchdog": join(distBin, "ks-watchdog"),
      "/opt/kubesonic/bin/ks-patcher": join(distBin, "ks-patcher"),
      "/etc/supervisor/supervisord.conf": telemetry.configPath,
    },
    // KS_NSENTER=never: in a pod (hostPID) the sidecar reaches the host's systemd through
    // nsenter into PID 1; here the host is this machine's namespace, with the recording systemctl
    // first on PATH.
    env: { ...redis.env, PATH: path, HOME: dir, NO_COLOR: "1", KS_NSENTER: "never" },
  });

  let stubConfig: string | undefined;
  const kubeEnv = { KUBECONFIG: kube.kubeconfigPath };

  const sw: FlowSwitch = {
    node,
    hostRoot,
    ports: { daemon: ports.daemon, watchdog: ports.watchdog },
    nativeLauncher,
    systemctl,
    runner,
    async stubKubeconfig() {
      stubConfig ??= await kube.serviceAccountKubeconfig("sonic", "telemetry-stub");
      return stubConfig;
    },
    async render(variant) {
      const spec = await specVariant(dir, variant, ports, stubPath);
      const out = join(dir, `out-${variant}`);
      const r = await runTool("ks-render", [spec, "--profile", "lab", "-o", out]);
      if (r.code !== 0) throw new Error(`ks-render ${variant} failed: ${r.stderr.trim()}`);
      // The one change to ks-render's output: pods start not Ready, as on a kubelet (kwok would
      // mark them Ready at once); the pod runner reports readiness from the probes.
      for (const stage of ["v1", "v2"]) {
        const file = join(out, stage, "30-daemonset.yaml");
        const ds = parseYaml(await Deno.readTextFile(file)) as {
          spec: { template: { metadata: { annotations?: Record<string, string> } } };
        };
        const meta = ds.spec.template.metadata;
        meta.annotations = { ...meta.annotations, "kubesonic.test/ready": "false" };
        await Deno.writeTextFile(file, stringifyYaml(ds));
      }
      const cm = parseYaml(await Deno.readTextFile(join(out, "common", "20-configmap.yaml"))) as {
        data: Record<string, string>;
      };
      return {
        dir: out,
        common: join(out, "common"),
        v1: join(out, "v1", "30-daemonset.yaml"),
        v2: join(out, "v2", "30-daemonset.yaml"),
        files: cm.data,
      };
    },
    async apply(p) {
      const r = await kube.kubectl(["apply", "-f", p]);
      if (r.code !== 0) throw new Error(`kubectl apply -f ${p} failed: ${r.stderr.trim()}`);
    },
    rollout(manifest, readyTimeout = "60s") {
      return runTool("ks-rollout", [
        "telemetry",
        "--to",
        manifest,
        "--waves",
        "100%",
        "--bake",
        "2s",
        "--ready-timeout",
        readyTimeout,
        "--poll-interval",
        "200ms",
        "--failure-budget",
        "0",
        "--kubeconfig",
        kube.kubeconfigPath,
      ], { env: kubeEnv });
    },
    async spawnLauncher(verb) {
      const kubeconfig = await sw.stubKubeconfig();
      return new Deno.Command("sh", {
        args: [join(hostRoot, LAUNCHER), ...verb.split(" ")],
        // kwok runs no containers: no runtime for the stub to ask (status asks the API server).
        env: {
          KUBECONFIG: kubeconfig,
          KS_NODE_NAME: node,
          KS_RUNTIME_SOCKET: "none",
          PATH: path,
          HOME: dir,
        },
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    },
    async launcher(verb) {
      const out = await (await sw.spawnLauncher(verb)).output();
      const dec = new TextDecoder();
      return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
    },
    async hostFile(p) {
      try {
        return await Deno.readTextFile(join(hostRoot, p));
      } catch {
        return undefined;
      }
    },
    async daemonUp() {
      try {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: ports.daemon });
        conn.close();
        return true;
      } catch {
        return false;
      }
    },
    async watchdog() {
      try {
        const res = await fetch(`http://127.0.0.1:${ports.watchdog}/readyz`, {
          signal: AbortSignal.timeout(2000),
        });
        return { status: res.status, body: await res.text() };
      } catch {
        return undefined;
      }
    },
    async pods() {
      const r = await kube.kubectl([
        "get",
        "pods",
        "-n",
        "sonic",
        "-l",
        "app=telemetry",
        "--field-selector",
        `spec.nodeName=${node}`,
        "-o",
        "json",
      ]);
      if (r.code !== 0) throw new Error(`kubectl get pods failed: ${r.stderr.trim()}`);
      const list = JSON.parse(r.stdout) as {
        items: {
          metadata: {
            name: string;
            uid: string;
            labels?: Record<string, string>;
            deletionTimestamp?: string;
          };
          status?: { conditions?: { type: string; status: string }[] };
        }[];
      };
      return list.items.map((p) => ({
        name: p.metadata.name,
        uid: p.metadata.uid,
        stage: p.metadata.labels?.["kubesonic.io/stage"] ?? "",
        version: p.metadata.labels?.["app.kubernetes.io/version"] ?? "",
        ready: p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ??
          false,
        deleting: Boolean(p.metadata.deletionTimestamp),
      }));
    },
    async waitPod(what, predicate, ms = 60_000) {
      let found: FlowPod | undefined;
      await waitUntil(
        async () => {
          const live = (await sw.pods()).filter((p) => !p.deleting);
          found = live.length === 1 && predicate(live[0]) ? live[0] : undefined;
          return found !== undefined;
        },
        ms,
        what,
        200,
      );
      return found!;
    },
    async stop() {
      await runner.stop();
      await systemctl.remove();
    },
  };
  return sw;
}
