// The node's container runtimes as one view for the checkers: where their sockets are (flag >
// environment > default; "none" disables one), which are installed, reachable or not, and the
// Kubernetes label rules that decide under which name a running container counts — the same
// rules SONiC's container_checker applies (namespace `sonic`, `io.kubernetes.docker.type` =
// `container`, never the `POD` sandbox), for Docker and for the kubelet's CRI runtime alike.
import { CriClient } from "./cri.ts";
import { DockerClient } from "./docker_api.ts";
import { GRPC_UNIMPLEMENTED, GrpcError, RuntimeUnreachableError } from "./grpc_unix.ts";

/** Pod namespace label a kubelet sets on every container. */
export const K8S_NAMESPACE_LABEL = "io.kubernetes.pod.namespace";
/** Container name label a kubelet sets (the name inside the pod spec). */
export const K8S_CONTAINER_NAME_LABEL = "io.kubernetes.container.name";
/** Pod name label. */
export const K8S_POD_NAME_LABEL = "io.kubernetes.pod.name";
/** Pod UID label. */
export const K8S_POD_UID_LABEL = "io.kubernetes.pod.uid";
/** dockershim's container type label (`container` or `podsandbox`). */
export const K8S_DOCKER_TYPE_LABEL = "io.kubernetes.docker.type";
/** The Kubernetes namespace SONiC's feature pods run in unless `--kube-namespace` says otherwise. */
export const SONIC_POD_NAMESPACE = "sonic";

/** Docker's default socket on SONiC. */
export const DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock";
/** containerd's default socket (the kubelet's CRI endpoint). */
export const DEFAULT_CRI_SOCKET = "/run/containerd/containerd.sock";

/** Which runtime a container was seen in. */
export type RuntimeKind = "docker" | "cri";

/** Where the runtimes are; an undefined socket means that runtime is disabled. */
export interface RuntimeEndpoints {
  docker?: string;
  cri?: string;
  /** Per-call timeout (ms). */
  timeoutMs: number;
  /** The Kubernetes namespace whose pods' containers count (default `sonic`). */
  kubeNamespace?: string;
}

function socketFrom(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v === "" || v === "none") return undefined;
  return v.replace(/^unix:\/\//, "");
}

/**
 * Resolves the runtime sockets: `--docker-socket` > KS_DOCKER_SOCKET > DOCKER_HOST (unix://) >
 * /var/run/docker.sock, and `--cri-socket` > KS_CRI_SOCKET > CONTAINER_RUNTIME_ENDPOINT >
 * /run/containerd/containerd.sock. The value `none` disables a runtime.
 */
export function resolveEndpoints(
  flags: { dockerSocket?: string; criSocket?: string; timeoutMs?: number; kubeNamespace?: string } =
    {},
): RuntimeEndpoints {
  const pick = (flag: string | undefined, envs: string[], fallback: string) => {
    if (flag !== undefined && flag !== "") return socketFrom(flag);
    for (const e of envs) {
      const v = Deno.env.get(e);
      if (
        v !== undefined && v !== "" &&
        (v.startsWith("unix://") || v.startsWith("/") || v === "none")
      ) {
        return socketFrom(v);
      }
    }
    return fallback;
  };
  return {
    docker: pick(flags.dockerSocket, ["KS_DOCKER_SOCKET", "DOCKER_HOST"], DEFAULT_DOCKER_SOCKET),
    cri: pick(flags.criSocket, ["KS_CRI_SOCKET", "CONTAINER_RUNTIME_ENDPOINT"], DEFAULT_CRI_SOCKET),
    timeoutMs: flags.timeoutMs ?? 2000,
    kubeNamespace: flags.kubeNamespace ?? SONIC_POD_NAMESPACE,
  };
}

/**
 * The name under which a running container counts for container_checker, or undefined when it
 * must not count: a container with a pod-namespace label counts only in `kubeNamespace`, only
 * as a real container (not the `POD` sandbox, not `io.kubernetes.docker.type=podsandbox`), under
 * its `io.kubernetes.container.name`; a container without that label (a native SONiC container)
 * counts under its own name (Docker only).
 */
export function checkerName(
  runtime: RuntimeKind,
  labels: Record<string, string>,
  nativeName: string,
  kubeNamespace = SONIC_POD_NAMESPACE,
): string | undefined {
  const ns = labels[K8S_NAMESPACE_LABEL];
  if (ns === undefined) return runtime === "docker" && nativeName !== "" ? nativeName : undefined;
  if (ns !== kubeNamespace) return undefined;
  const type = labels[K8S_DOCKER_TYPE_LABEL];
  if (runtime === "docker" ? type !== "container" : type !== undefined && type !== "container") {
    return undefined;
  }
  const name = labels[K8S_CONTAINER_NAME_LABEL] ?? "";
  if (name === "" || name === "<no value>" || name === "POD") return undefined;
  return name;
}

/** A running container seen in one of the runtimes. */
export interface RunningContainer {
  runtime: RuntimeKind;
  id: string;
  /** Docker's container name, or the CRI metadata name. */
  runtimeName: string;
  /** The name it counts under (checkerName), undefined if it does not count. */
  name?: string;
  labels: Record<string, string>;
}

/** What happened when asking one runtime. */
export interface RuntimeStatus {
  runtime: RuntimeKind;
  socket?: string;
  /** ok; absent = not installed on this node (no socket / no CRI service); unreachable; disabled. */
  status: "ok" | "absent" | "unreachable" | "disabled";
  error?: string;
  containers: number;
}

async function socketExists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    return true; // permission problems surface as "unreachable" when we try
  }
}

/**
 * Runs `ask` against one runtime's client and turns every outcome into a RuntimeStatus: disabled,
 * absent (no socket; containerd without the CRI service), unreachable, or ok with `count(value)`.
 * Never throws.
 */
async function askRuntime<T>(
  runtime: RuntimeKind,
  endpoints: RuntimeEndpoints,
  empty: T,
  ask: (client: DockerClient | CriClient) => Promise<T>,
  count: (value: T) => number,
): Promise<{ status: RuntimeStatus; value: T }> {
  const socket = runtime === "docker" ? endpoints.docker : endpoints.cri;
  if (!socket) return { status: { runtime, status: "disabled", containers: 0 }, value: empty };
  if (!await socketExists(socket)) {
    return { status: { runtime, socket, status: "absent", containers: 0 }, value: empty };
  }
  const client = runtime === "docker"
    ? new DockerClient(socket, endpoints.timeoutMs)
    : new CriClient(socket, endpoints.timeoutMs);
  try {
    const value = await ask(client);
    return { status: { runtime, socket, status: "ok", containers: count(value) }, value };
  } catch (e) {
    if (e instanceof GrpcError && e.code === GRPC_UNIMPLEMENTED) {
      // A containerd without the CRI plugin (Docker's own): no kubelet can be using it.
      return {
        status: { runtime, socket, status: "absent", error: e.message, containers: 0 },
        value: empty,
      };
    }
    const message = e instanceof Error ? e.message : String(e);
    return {
      status: {
        runtime,
        socket,
        status: "unreachable",
        error: e instanceof RuntimeUnreachableError ? message : `${socket}: ${message}`,
        containers: 0,
      },
      value: empty,
    };
  } finally {
    client.close();
  }
}

/** Asks one runtime for its running containers; never throws (errors become a status). */
export async function listRuntime(
  runtime: RuntimeKind,
  endpoints: RuntimeEndpoints,
): Promise<{ status: RuntimeStatus; containers: RunningContainer[] }> {
  const kubeNamespace = endpoints.kubeNamespace ?? SONIC_POD_NAMESPACE;
  const toRunning = (c: { id: string; name: string; labels: Record<string, string> }) => ({
    runtime,
    id: c.id,
    runtimeName: c.name,
    name: checkerName(runtime, c.labels, c.name, kubeNamespace),
    labels: c.labels,
  });
  const { status, value } = await askRuntime(
    runtime,
    endpoints,
    [] as RunningContainer[],
    async (client) =>
      client instanceof DockerClient
        ? (await client.listRunning()).map(toRunning)
        : (await client.listContainers({
          running: true,
          labels: { [K8S_NAMESPACE_LABEL]: kubeNamespace },
        })).map(toRunning),
    (list) => list.length,
  );
  return { status, containers: value };
}

/**
 * The image references (repo tags and digests) of every enabled runtime, Docker's and the CRI's,
 * asked in parallel. `complete` is false when a runtime that is installed could not be asked, so
 * an image missing from `refs` may still be there. Never throws.
 */
export async function listAllImageRefs(
  endpoints: RuntimeEndpoints,
): Promise<{ refs: string[]; complete: boolean; statuses: RuntimeStatus[] }> {
  const results = await Promise.all(
    (["docker", "cri"] as const).map((runtime) =>
      askRuntime(runtime, endpoints, [] as string[], (c) => c.listImageRefs(), (r) => r.length)
    ),
  );
  return {
    refs: results.flatMap((r) => r.value),
    complete: results.every((r) => r.status.status !== "unreachable"),
    statuses: results.map((r) => r.status),
  };
}

/** Asks every enabled runtime in parallel. */
export async function listAllRuntimes(
  endpoints: RuntimeEndpoints,
): Promise<{ statuses: RuntimeStatus[]; containers: RunningContainer[] }> {
  const results = await Promise.all([
    listRuntime("docker", endpoints),
    listRuntime("cri", endpoints),
  ]);
  return {
    statuses: results.map((r) => r.status),
    containers: results.flatMap((r) => r.containers),
  };
}
