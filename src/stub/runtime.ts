// This node's own container runtime as ks-stub sees it: the feature's pod sandboxes and its
// container, found by the labels the kubelet puts on them (the pod's labels `app`,
// `raw_container_name`, `asic` on the sandbox; io.kubernetes.pod.namespace/name/uid and
// io.kubernetes.container.name on every container), and stopping that container. containerd's
// CRI (or any CRI socket: cri-dockerd, CRI-O) over gRPC, or the Docker Engine API where a kubelet
// runs on Docker (dockershim's labels). No API-server call, no binary: the checkers' clients.
import { CriClient } from "../checkers/cri.ts";
import { DockerClient } from "../checkers/docker_api.ts";
import {
  DEFAULT_CRI_SOCKET,
  DEFAULT_DOCKER_SOCKET,
  K8S_CONTAINER_NAME_LABEL,
  K8S_DOCKER_TYPE_LABEL,
  K8S_NAMESPACE_LABEL,
  K8S_POD_NAME_LABEL,
  K8S_POD_UID_LABEL,
} from "../checkers/runtimes.ts";
import { UsageError } from "../cli.ts";
import { APP_LABEL, ASIC_LABEL, FEATURE_LABEL, type StubTarget } from "./target.ts";

/** Which API the runtime socket speaks. */
export type RuntimeKind = "cri" | "docker";

/** Where this node's runtime is; `socket` undefined = none (status then asks the API server). */
export interface RuntimeSetting {
  kind: RuntimeKind;
  socket?: string;
}

/** The feature's container in one local pod. */
export interface LocalContainer {
  id: string;
  state: "running" | "created" | "exited" | "unknown";
  /** The kubelet's restart attempt (the pod's restartCount for this container). */
  attempt: number;
  image: string;
  createdMs: number;
}

/** One of the target's pods as this node's runtime runs it. */
export interface LocalInstance {
  pod: { name: string; uid: string; namespace: string; createdMs: number };
  /** The pod's sandbox runs (false once the kubelet tore it down: the pod is going away). */
  sandboxReady: boolean;
  /** The feature container's newest attempt (undefined: not created yet). */
  container?: LocalContainer;
  /** Running containers of the pod / all of its containers (newest attempt of each name). */
  running: number;
  containers: number;
}

/** The runtime calls ks-stub makes. Every call is bounded by the client's timeout. */
export interface NodeRuntime {
  /** "containerd /run/containerd/containerd.sock", for messages. */
  readonly name: string;
  /** The target's pods on this node, best first (a live one with its container running). */
  instances(target: StubTarget): Promise<LocalInstance[]>;
  /**
   * Stops a container (SIGTERM, SIGKILL after `graceSeconds`; the call may take
   * RUNTIME_STOP_MARGIN_S longer); the kubelet starts it again.
   */
  stopContainer(id: string, graceSeconds: number): Promise<void>;
  /** The host PID of a running container's init process; undefined when the runtime has none. */
  containerPid(id: string): Promise<number | undefined>;
  close(): void;
}

/** What a runtime stop call gets beyond the container's grace to answer (s). */
export const RUNTIME_STOP_MARGIN_S = 8;

/** The environment variables that name the runtime socket, in precedence order. */
export const RUNTIME_SOCKET_ENVS = ["KS_RUNTIME_SOCKET", "CONTAINER_RUNTIME_ENDPOINT"];

/**
 * Resolves the runtime: kind `--runtime` > KS_RUNTIME > cri; socket `--runtime-socket` >
 * KS_RUNTIME_SOCKET > CONTAINER_RUNTIME_ENDPOINT (the kubelet's own name for it) > the kind's
 * default (/run/containerd/containerd.sock, /var/run/docker.sock). `unix://` is accepted;
 * `none` means this node has no runtime to ask. Throws UsageError for anything else.
 */
export function resolveRuntime(
  flags: { runtime?: string; socket?: string } = {},
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
): RuntimeSetting {
  const kindValue = flags.runtime || env("KS_RUNTIME") || "cri";
  if (kindValue !== "cri" && kindValue !== "docker") {
    throw new UsageError(
      `${flags.runtime ? "--runtime" : "KS_RUNTIME"}: "${kindValue}" is not cri or docker`,
    );
  }
  const kind = kindValue as RuntimeKind;
  let value = flags.socket;
  let from = "--runtime-socket";
  if (value === undefined || value === "") {
    value = undefined;
    for (const name of RUNTIME_SOCKET_ENVS) {
      const v = env(name);
      if (v) {
        value = v;
        from = name;
        break;
      }
    }
  }
  if (value === undefined) {
    return { kind, socket: kind === "cri" ? DEFAULT_CRI_SOCKET : DEFAULT_DOCKER_SOCKET };
  }
  const v = value.trim();
  if (v === "none") return { kind };
  const path = v.replace(/^unix:\/\//, "");
  if (!path.startsWith("/") || path.includes("\0")) {
    throw new UsageError(`${from}: "${value}" is not an absolute unix socket path (or none)`);
  }
  return { kind, socket: path };
}

function asicMatches(labels: Record<string, string>, asic: string | undefined): boolean {
  const value = labels[ASIC_LABEL];
  if (asic === undefined) return value === undefined;
  return value === asic || value === `asic${asic}`;
}

/** The target's pods among `sandboxes`: feature pods (raw_container_name) of the right ASIC. */
function isTargetPod(labels: Record<string, string>, target: StubTarget): boolean {
  return labels[APP_LABEL] === target.feature &&
    labels[FEATURE_LABEL] !== undefined &&
    labels[K8S_NAMESPACE_LABEL] === target.namespace &&
    asicMatches(labels, target.asic);
}

interface RawContainer extends LocalContainer {
  sandboxId: string;
  name: string;
}

/** Joins sandboxes and containers into instances, best first. */
function toInstances(
  sandboxes: {
    id: string;
    ready: boolean;
    labels: Record<string, string>;
    pod: LocalInstance["pod"];
  }[],
  containers: RawContainer[],
): LocalInstance[] {
  const newer = (a: RawContainer, b: RawContainer) =>
    a.attempt - b.attempt || a.createdMs - b.createdMs;
  const out = sandboxes.map((s) => {
    const newest = new Map<string, RawContainer>();
    for (const c of containers) {
      if (c.sandboxId !== s.id) continue;
      const seen = newest.get(c.name);
      if (!seen || newer(c, seen) > 0) newest.set(c.name, c);
    }
    const mine = newest.get(s.labels[FEATURE_LABEL]);
    const all = [...newest.values()];
    return {
      pod: s.pod,
      sandboxReady: s.ready,
      container: mine && {
        id: mine.id,
        state: mine.state,
        attempt: mine.attempt,
        image: mine.image,
        createdMs: mine.createdMs,
      },
      running: all.filter((c) => c.state === "running").length,
      containers: all.length,
    };
  });
  const rank = (i: LocalInstance) =>
    (i.sandboxReady ? 2 : 0) + (i.container?.state === "running" ? 1 : 0);
  return out.sort((a, b) => rank(b) - rank(a) || b.pod.createdMs - a.pod.createdMs);
}

/** A NodeRuntime over the CRI socket at `socket`. */
export function criRuntime(socket: string, timeoutMs: number): NodeRuntime {
  const client = new CriClient(socket, timeoutMs);
  return {
    name: `CRI runtime ${socket}`,
    async instances(target) {
      // Both calls at once: one round trip of wall time.
      const [all, containers] = await Promise.all([
        client.listPodSandboxes({
          [K8S_NAMESPACE_LABEL]: target.namespace,
          [APP_LABEL]: target.feature,
        }),
        client.listContainers({ labels: { [K8S_NAMESPACE_LABEL]: target.namespace } }),
      ]);
      const sandboxes = all.filter((s) => isTargetPod(s.labels, target));
      if (sandboxes.length === 0) return [];
      return toInstances(
        sandboxes.map((s) => ({
          id: s.id,
          ready: s.ready,
          labels: s.labels,
          pod: { name: s.name, uid: s.uid, namespace: s.namespace, createdMs: s.createdMs },
        })),
        containers.map((c) => ({
          id: c.id,
          sandboxId: c.podSandboxId,
          name: c.labels[K8S_CONTAINER_NAME_LABEL] ?? c.name,
          state: c.state,
          attempt: c.attempt,
          image: c.image,
          createdMs: c.createdMs,
        })),
      );
    },
    async stopContainer(id, graceSeconds) {
      await client.stopContainer(id, graceSeconds, RUNTIME_STOP_MARGIN_S * 1000);
    },
    async containerPid(id) {
      const status = await client.containerStatus(id);
      return status.state === "running" ? status.pid : undefined;
    },
    close: () => client.close(),
  };
}

/** dockershim / cri-dockerd keep a sandbox's id on its containers under this label. */
const DOCKER_SANDBOX_ID_LABEL = "io.kubernetes.sandbox.id";
/** ... and the kubelet's annotations as labels with this prefix. */
const DOCKER_RESTART_COUNT_LABEL = "annotation.io.kubernetes.container.restartCount";

/** A NodeRuntime over the Docker Engine API (a kubelet on dockershim / cri-dockerd). */
export function dockerRuntime(socket: string, timeoutMs: number): NodeRuntime {
  const client = new DockerClient(socket, timeoutMs);
  const state = (s: string): LocalContainer["state"] =>
    s === "running" ? "running" : s === "created" ? "created" : s === "exited" ? "exited" : (
      s === "dead" ? "exited" : "unknown"
    );
  return {
    name: `Docker ${socket}`,
    async instances(target) {
      const sandboxes = (await client.list({
        labels: {
          [K8S_DOCKER_TYPE_LABEL]: "podsandbox",
          [K8S_NAMESPACE_LABEL]: target.namespace,
          [APP_LABEL]: target.feature,
        },
      })).filter((s) => isTargetPod(s.labels, target));
      if (sandboxes.length === 0) return [];
      const containers = await client.list({
        labels: { [K8S_DOCKER_TYPE_LABEL]: "container", [K8S_NAMESPACE_LABEL]: target.namespace },
      });
      return toInstances(
        sandboxes.map((s) => ({
          id: s.id,
          ready: s.state === "running",
          labels: s.labels,
          pod: {
            name: s.labels[K8S_POD_NAME_LABEL] ?? s.name,
            uid: s.labels[K8S_POD_UID_LABEL] ?? "",
            namespace: target.namespace,
            createdMs: s.createdMs,
          },
        })),
        containers.map((c) => ({
          id: c.id,
          sandboxId: c.labels[DOCKER_SANDBOX_ID_LABEL] ?? "",
          name: c.labels[K8S_CONTAINER_NAME_LABEL] ?? "",
          state: state(c.state),
          attempt: Number(c.labels[DOCKER_RESTART_COUNT_LABEL] ?? 0) || 0,
          image: c.image,
          createdMs: c.createdMs,
        })),
      );
    },
    async stopContainer(id, graceSeconds) {
      await client.stop(id, graceSeconds, RUNTIME_STOP_MARGIN_S * 1000);
    },
    async containerPid(id) {
      const found = await client.inspect(id);
      return found?.running && found.pid > 0 ? found.pid : undefined;
    },
    close: () => client.close(),
  };
}

/** The NodeRuntime for `setting`, or undefined when it is `none`. */
export function nodeRuntime(setting: RuntimeSetting, timeoutMs: number): NodeRuntime | undefined {
  if (!setting.socket) return undefined;
  return setting.kind === "docker"
    ? dockerRuntime(setting.socket, timeoutMs)
    : criRuntime(setting.socket, timeoutMs);
}
