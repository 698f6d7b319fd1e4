// A stand-in for the kubelet's container work on ONE kwok node, for the flow tests. kwok writes
// the node's and pods' status but runs nothing; this runner watches the node's pods on the real
// API server and, while a pod exists and is not terminating, runs each container's command as a
// local process — the pod's own command from the rendered DaemonSet, not one the test invents.
// What it does, and where it differs from a kubelet:
// - Paths: a container sees its image and its volumes at container paths. The runner maps them:
//   hostPath volumes to the sandbox host root, configMap volumes to a directory it fills from the
//   ConfigMap (as the kubelet does), image paths (/usr/local/bin/ks-*, the supervisord config) to
//   what the test gives. Mapping is by path prefix on argv, env values and ConfigMap file text
//   (the kubelet gives a mount namespace instead; see docs/stub.md "Flows").
// - Lifecycle: a container is a session (setsid): its command and everything it starts, even in
//   process groups of their own (supervisord puts each program in one). The containers of a pod
//   start together; a container whose main process exits loses every process left in its session
//   (SIGKILL, as when a container's PID 1 ends) and is started again after a back-off
//   (restartPolicy Always); a pod that is deleted or terminating gets SIGTERM on each container's
//   process group and, after its grace (capped at 5 s) or once the main process is gone, SIGKILL
//   on every process of the session. A container counts as stopped only when none of its
//   processes is left. A new pod's containers start only after the old pod's are stopped, as host
//   ports would otherwise clash (kwok deletes the API object at once, a kubelet would not).
// - Readiness: the readinessProbe's httpGet (the watchdog's /readyz) is polled every 500 ms with
//   the kubelet's rules (not Ready until a probe succeeds, not Ready again after failureThreshold
//   failures); the result is written to the pod as the annotation `kubesonic.test/ready`, which
//   the harness's kwok stages turn into the pod's Ready condition. Pods must start with that
//   annotation "false" in their template (kwok alone would make them Ready at once). Liveness
//   restarts, resource limits and OOM kills are not emulated (the real-switch flows have a real
//   kubelet).
import { join } from "node:path";
import { type KubeRest, resourcePath } from "../../src/kube/rest.ts";
import { createLogger } from "../../src/log.ts";
import { procStats } from "../harness/process.ts";
import { kubePodApi } from "../../src/stub/kube_pods.ts";
import type { Pod } from "../../src/stub/pod.ts";
import { trackPods } from "../../src/stub/track.ts";

/** A container of the pod spec (the fields the runner reads). */
interface ContainerSpec {
  name: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  volumeMounts?: { name: string; mountPath: string }[];
  readinessProbe?: {
    httpGet?: { host?: string; port: number | string; path?: string };
    failureThreshold?: number;
  };
}

interface VolumeSpec {
  name: string;
  hostPath?: { path: string };
  configMap?: { name: string };
}

interface FullPod extends Omit<Pod, "spec"> {
  spec?: {
    nodeName?: string;
    containers?: (ContainerSpec & { image?: string })[];
    volumes?: VolumeSpec[];
    terminationGracePeriodSeconds?: number;
  };
}

/** Options of {@link startPodRunner}. */
export interface PodRunnerOptions {
  /** An admin client (reads pods and ConfigMaps, annotates pods). */
  rest: KubeRest;
  node: string;
  namespace?: string;
  /** The sandbox's `/`: hostPath volumes map below it. */
  hostRoot: string;
  /** Image paths (exact file or directory prefix) -> local paths. */
  imagePaths: Record<string, string>;
  /** Environment of every container process (PATH, KS_DB_CONFIG, ...), below the pod's env. */
  env: Record<string, string>;
  /** Where each container's output goes (`<pod>_<container>.log`) and ConfigMaps are filled. */
  dir: string;
}

/** One container process the runner runs. */
export interface RunningContainer {
  pod: string;
  uid: string;
  container: string;
  pid: number;
  starts: number;
}

/** A running pod runner. */
export interface PodRunner {
  /** The container processes running now. */
  running(): RunningContainer[];
  /** Everything `container` printed, over all its pods and starts ("pod-runner": its own log). */
  output(container: string): Promise<string>;
  /** Stops watching and stops every process (awaited). */
  stop(): Promise<void>;
}

interface Proc {
  pod: string;
  uid: string;
  container: string;
  child?: Deno.ChildProcess;
  starts: number;
  stopping: boolean;
  exited: Promise<void>;
}

/** The live (not zombie) processes of session `sid`; a container's processes share one. */
export function sessionPids(sid: number): number[] {
  return procStats().filter((p) => p.session === sid && p.state !== "Z").map((p) => p.pid);
}

/**
 * SIGKILLs every process left in session `sid` and waits until none is (as the end of a
 * container's PID namespace does); returns the pids it found. A session id is not reused while
 * any member lives, so this never reaches another container.
 */
export async function killSession(sid: number, waitMs = 10_000): Promise<number[]> {
  const found = new Set<number>();
  const deadline = Date.now() + waitMs;
  for (;;) {
    const left = sessionPids(sid);
    if (left.length === 0 || Date.now() > deadline) return [...found];
    for (const pid of left) {
      found.add(pid);
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

function mapPath(value: string, table: [string, string][]): string {
  for (const [from, to] of table) {
    if (value === from) return to;
    if (value.startsWith(from.endsWith("/") ? from : from + "/")) {
      return to + value.slice(from.length);
    }
  }
  return value;
}

function mapText(text: string, table: [string, string][]): string {
  let out = text;
  for (const [from, to] of table) {
    out = out.replace(
      new RegExp(`${from.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?=[/\\s"']|$)`, "gm"),
      to,
    );
  }
  return out;
}

/** Starts the runner for `opts.node`; resolves once the first list is handled. */
export async function startPodRunner(opts: PodRunnerOptions): Promise<PodRunner> {
  const namespace = opts.namespace ?? "sonic";
  await Deno.mkdir(opts.dir, { recursive: true });
  const runnerLog = await Deno.open(join(opts.dir, "pod-runner.log"), {
    append: true,
    create: true,
  });
  const encoder = new TextEncoder();
  const log = createLogger("pod-runner", opts.node, (line) => {
    runnerLog.writeSync(encoder.encode(line + "\n"));
  });
  const api = kubePodApi(opts.rest, { requestTimeoutMs: 5000, retries: 2 });
  const stopAll = new AbortController();
  const procs = new Map<string, Proc>(); // key: uid/container
  const lastByContainer = new Map<string, Proc>();
  // uid -> readiness last written; a new pod starts not Ready (its template says so).
  const readiness = new Map<string, boolean>();
  const pollers = new Map<string, ReturnType<typeof setInterval>>();
  let queue = Promise.resolve();
  let firstList: () => void;
  const listed = new Promise<void>((r) => (firstList = r));

  const materialize = async (pod: FullPod, volume: VolumeSpec, table: [string, string][]) => {
    const dir = join(opts.dir, "volumes", pod.metadata.uid, volume.name);
    await Deno.mkdir(dir, { recursive: true });
    const cm = await opts.rest.get<{ data?: Record<string, string> }>(
      resourcePath({ resource: "configmaps", namespace, name: volume.configMap!.name }),
    );
    for (const [key, text] of Object.entries(cm.data ?? {})) {
      await Deno.writeTextFile(join(dir, key), mapText(text, table));
    }
    return dir;
  };

  const mountTable = async (pod: FullPod, c: ContainerSpec): Promise<[string, string][]> => {
    const volumes = new Map((pod.spec?.volumes ?? []).map((v) => [v.name, v]));
    const table: [string, string][] = [];
    const configMaps: [VolumeSpec, string][] = [];
    for (const m of c.volumeMounts ?? []) {
      const v = volumes.get(m.name);
      if (v?.hostPath) table.push([m.mountPath, join(opts.hostRoot, v.hostPath.path)]);
      if (v?.configMap) configMaps.push([v, m.mountPath]);
    }
    for (const [path, local] of Object.entries(opts.imagePaths)) table.push([path, local]);
    // ConfigMap files may name other mounts' paths (a manifest's sources): fill them last.
    for (const [v, mountPath] of configMaps) {
      table.push([mountPath, join(opts.dir, "volumes", pod.metadata.uid, v.name)]);
    }
    table.sort((a, b) => b[0].length - a[0].length);
    for (const [v] of configMaps) await materialize(pod, v, table);
    return table;
  };

  const startProc = async (pod: FullPod, c: ContainerSpec, proc: Proc) => {
    const previous = lastByContainer.get(c.name);
    if (previous && previous !== proc) await previous.exited;
    lastByContainer.set(c.name, proc);
    const table = await mountTable(pod, c);
    const argv = [...(c.command ?? []), ...(c.args ?? [])].map((a) => mapPath(a, table));
    const env: Record<string, string> = { ...opts.env };
    for (const e of c.env ?? []) {
      if (e.value !== undefined) env[e.name] = mapPath(e.value, table);
      else if (e.valueFrom?.fieldRef?.fieldPath === "spec.nodeName") env[e.name] = opts.node;
      else if (e.valueFrom?.fieldRef?.fieldPath === "metadata.name") {
        env[e.name] = pod.metadata.name;
      }
    }
    const logFile = await Deno.open(join(opts.dir, `${c.name}.log`), {
      append: true,
      create: true,
    });
    let done: () => void;
    proc.exited = new Promise((r) => (done = r));
    const loop = async () => {
      let backoff = 1000;
      while (!proc.stopping) {
        proc.starts++;
        await logFile.write(
          new TextEncoder().encode(
            `--- pod-runner: start ${pod.metadata.name}/${c.name} #${proc.starts}: ${
              argv.join(" ")
            }\n`,
          ),
        );
        // The pod may have gone while the line was written: then nothing starts.
        if (proc.stopping) break;
        // setsid: the container's processes form one session, stopped together like a cgroup.
        proc.child = new Deno.Command("setsid", {
          args: argv,
          env,
          clearEnv: true,
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        log.info("container started", {
          pod: pod.metadata.name,
          container: c.name,
          pid: proc.child.pid,
        });
        const copy = async (stream: ReadableStream<Uint8Array>) => {
          for await (const chunk of stream) await logFile.write(chunk);
        };
        // The output ends when the last process holding the pipes does: wait for it after the
        // session's end below, not before (a leftover process would keep it open forever).
        const output = Promise.all([copy(proc.child.stdout), copy(proc.child.stderr)]);
        const status = await proc.child.status;
        log.info("container exited", {
          pod: pod.metadata.name,
          container: c.name,
          code: status.code,
          signal: status.signal ?? undefined,
        });
        // What the main process left behind (a daemon in a process group of its own) ends with
        // it, before a restart and before the container counts as stopped.
        const left = await killSession(proc.child.pid);
        if (left.length > 0) {
          log.info("killed the container's remaining processes", {
            pod: pod.metadata.name,
            container: c.name,
            pids: left.join(","),
          });
        }
        await output;
        if (proc.stopping) break;
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(10_000, backoff * 2);
      }
      logFile.close();
      done();
    };
    loop();
  };

  // Resolves once every process of the container is gone (proc.exited: see the loop above).
  const stopProc = async (proc: Proc, graceMs: number) => {
    proc.stopping = true;
    const child = proc.child;
    if (child) {
      try {
        Deno.kill(-child.pid, "SIGTERM");
      } catch { /* gone */ }
      const timer = setTimeout(() => {
        log.info("grace over: SIGKILL", { pod: proc.pod, container: proc.container });
        for (const pid of sessionPids(child.pid)) {
          try {
            Deno.kill(pid, "SIGKILL");
          } catch { /* gone */ }
        }
      }, graceMs);
      await proc.exited;
      clearTimeout(timer);
    }
  };

  const setReady = async (pod: FullPod, ready: boolean) => {
    if ((readiness.get(pod.metadata.uid) ?? false) === ready) return;
    readiness.set(pod.metadata.uid, ready);
    try {
      await opts.rest.patch(
        resourcePath({ resource: "pods", namespace, name: pod.metadata.name }),
        { metadata: { annotations: { "kubesonic.test/ready": String(ready) } } },
      );
      log.info("readiness", { pod: pod.metadata.name, ready });
    } catch (error) {
      readiness.delete(pod.metadata.uid);
      log.warn("cannot annotate readiness", { error: (error as Error).message });
    }
  };

  // Kubelet readiness semantics at a 500 ms period: a pod starts not Ready (its template carries
  // kubesonic.test/ready: "false", see flow_switch.ts), turns Ready on the first successful probe,
  // and loses it after failureThreshold failures in a row. Without a readinessProbe it turns
  // Ready once its containers run.
  const pollReadiness = (pod: FullPod) => {
    const probes = (pod.spec?.containers ?? []).flatMap((c) =>
      c.readinessProbe?.httpGet
        ? [{
          ...c.readinessProbe.httpGet,
          failureThreshold: c.readinessProbe.failureThreshold ?? 3,
        }]
        : []
    );
    if (probes.length === 0) {
      setReady(pod, true);
      return;
    }
    let ready = false;
    let failures = 0;
    const tick = async () => {
      let ok = true;
      for (const p of probes) {
        try {
          const url = `http://${p.host ?? "127.0.0.1"}:${p.port}${p.path ?? "/"}`;
          const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
          await res.body?.cancel();
          if (res.status < 200 || res.status >= 400) ok = false;
        } catch {
          ok = false;
        }
      }
      if (!pollers.has(pod.metadata.uid)) return;
      if (ok) {
        failures = 0;
        ready = true;
      } else if (++failures >= probes[0].failureThreshold) ready = false;
      await setReady(pod, ready);
    };
    pollers.set(pod.metadata.uid, setInterval(tick, 500));
  };

  const reconcile = async (pods: FullPod[]) => {
    const live = new Map<string, FullPod>();
    for (const pod of pods) if (!pod.metadata.deletionTimestamp) live.set(pod.metadata.uid, pod);
    // Stop what no live pod wants any more.
    const stops: Promise<void>[] = [];
    for (const [key, proc] of procs) {
      if (live.has(proc.uid)) continue;
      procs.delete(key);
      const poller = pollers.get(proc.uid);
      if (poller !== undefined) {
        clearInterval(poller);
        pollers.delete(proc.uid);
      }
      log.info("pod gone: stopping container", { pod: proc.pod, container: proc.container });
      stops.push(stopProc(proc, 5000));
    }
    // As a kubelet: a replacement's containers start only once the old pod's are gone (else the
    // old daemon may still hold the port the new watchdog probes, and a broken release looks Ready).
    await Promise.all(stops);
    // Start what a live pod has and nobody runs yet.
    for (const pod of live.values()) {
      let fresh = false;
      for (const c of pod.spec?.containers ?? []) {
        const key = `${pod.metadata.uid}/${c.name}`;
        if (procs.has(key)) continue;
        fresh = true;
        const proc: Proc = {
          pod: pod.metadata.name,
          uid: pod.metadata.uid,
          container: c.name,
          starts: 0,
          stopping: false,
          exited: Promise.resolve(),
        };
        procs.set(key, proc);
        startProc(pod, c, proc).catch((error) =>
          log.error("cannot start container", { container: c.name, error: error.message })
        );
      }
      if (fresh && !pollers.has(pod.metadata.uid)) pollReadiness(pod);
    }
  };

  const tracking = trackPods(
    api,
    {
      namespace,
      labelSelector: "",
      fieldSelector: `spec.nodeName=${opts.node}`,
    },
    log,
    {
      signal: stopAll.signal,
      minBackoffMs: 100,
      maxBackoffMs: 1000,
      decide: (pods) => {
        const snapshot = [...pods.values()] as unknown as FullPod[];
        queue = queue.then(() => reconcile(snapshot)).catch((error) =>
          log.error("reconcile failed", { error: (error as Error).message })
        );
        firstList();
        return false;
      },
    },
  );
  await listed;

  return {
    running: () =>
      [...procs.values()].filter((p) => p.child && !p.stopping).map((p) => ({
        pod: p.pod,
        uid: p.uid,
        container: p.container,
        pid: p.child!.pid,
        starts: p.starts,
      })),
    output: async (container) => {
      try {
        return await Deno.readTextFile(join(opts.dir, `${container}.log`));
      } catch {
        return "";
      }
    },
    stop: async () => {
      stopAll.abort();
      await tracking;
      await queue;
      for (const poller of pollers.values()) clearInterval(poller);
      pollers.clear();
      await Promise.all([...procs.values()].map((p) => stopProc(p, 2000)));
      procs.clear();
      runnerLog.close();
    },
  };
}
