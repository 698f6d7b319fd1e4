// The CRI runtime (containerd's `runtime.v1.RuntimeService`) as the checkers and ks-stub see it:
// list pod sandboxes and containers with their labels, one container's status (state, exit code,
// PID), and stop a container — straight over the CRI gRPC socket, no crictl needed on the node.
import { asString, decodeFields, decodeMapEntry, int32, int64, ProtoWriter } from "./protobuf.ts";
import { GrpcUnixClient } from "./grpc_unix.ts";

const SERVICE = "/runtime.v1.RuntimeService";
const IMAGE_SERVICE = "/runtime.v1.ImageService";

/** CRI container states (runtime.v1.ContainerState). */
export const CRI_STATES = ["created", "running", "exited", "unknown"] as const;
/** One of CRI_STATES. */
export type CriState = typeof CRI_STATES[number];

/** A container as ListContainers reports it. */
export interface CriContainer {
  id: string;
  podSandboxId: string;
  /** metadata.name: the container's name inside its pod. */
  name: string;
  attempt: number;
  state: CriState;
  labels: Record<string, string>;
  /** The image as the kubelet named it (user_specified_image), else the runtime's image ref. */
  image: string;
  /** Creation time, ms since the epoch (0 when unknown). */
  createdMs: number;
}

/** A pod sandbox as ListPodSandbox reports it (labels: the pod's labels + the kubelet's). */
export interface CriSandbox {
  id: string;
  name: string;
  uid: string;
  namespace: string;
  attempt: number;
  /** READY while the pod's sandbox runs; NOTREADY once it is being torn down or stopped. */
  ready: boolean;
  createdMs: number;
  labels: Record<string, string>;
}

/** ContainerStatus (verbose) of one container. */
export interface CriContainerStatus {
  id: string;
  state: CriState;
  /** The exit code (int32: a runtime may report a negative one). */
  exitCode: number;
  /** When the container started and finished, in nanoseconds since the epoch (0n: not yet). */
  startedAtNs: bigint;
  finishedAtNs: bigint;
  reason: string;
  labels: Record<string, string>;
  /** The init process PID from the verbose info, when the runtime reports it. */
  pid?: number;
}

function stateOf(n: number): CriState {
  return CRI_STATES[n] ?? "unknown";
}

/** A CRI int64 timestamp in nanoseconds as milliseconds. */
function nsToMs(value: bigint | Uint8Array): number {
  return typeof value === "bigint" ? Number(int64(value) / 1_000_000n) : 0;
}

function decodeImage(buf: Uint8Array): string {
  let image = "";
  let userSpecified = "";
  for (const f of decodeFields(buf)) {
    if (f.field === 1) image = asString(f.value);
    else if (f.field === 18) userSpecified = asString(f.value);
  }
  return userSpecified || image;
}

function decodeSandbox(buf: Uint8Array): CriSandbox {
  const s: CriSandbox = {
    id: "",
    name: "",
    uid: "",
    namespace: "",
    attempt: 0,
    ready: true,
    createdMs: 0,
    labels: {},
  };
  for (const f of decodeFields(buf)) {
    if (f.field === 1) s.id = asString(f.value);
    else if (f.field === 2 && f.value instanceof Uint8Array) {
      for (const m of decodeFields(f.value)) {
        if (m.field === 1) s.name = asString(m.value);
        else if (m.field === 2) s.uid = asString(m.value);
        else if (m.field === 3) s.namespace = asString(m.value);
        else if (m.field === 4) s.attempt = int32(m.value);
      }
    } else if (f.field === 3 && typeof f.value === "bigint") s.ready = f.value === 0n;
    else if (f.field === 4) s.createdMs = nsToMs(f.value);
    else if (f.field === 5 && f.value instanceof Uint8Array) {
      const [k, v] = decodeMapEntry(f.value);
      s.labels[k] = v;
    }
  }
  return s;
}

function decodeContainer(buf: Uint8Array): CriContainer {
  const c: CriContainer = {
    id: "",
    podSandboxId: "",
    name: "",
    attempt: 0,
    state: "created",
    labels: {},
    image: "",
    createdMs: 0,
  };
  let imageRef = "";
  for (const f of decodeFields(buf)) {
    if (f.field === 1) c.id = asString(f.value);
    else if (f.field === 2) c.podSandboxId = asString(f.value);
    else if (f.field === 3 && f.value instanceof Uint8Array) {
      for (const m of decodeFields(f.value)) {
        if (m.field === 1) c.name = asString(m.value);
        else if (m.field === 2) c.attempt = int32(m.value);
      }
    } else if (f.field === 4 && f.value instanceof Uint8Array) c.image = decodeImage(f.value);
    else if (f.field === 5) imageRef = asString(f.value);
    else if (f.field === 6) c.state = stateOf(int32(f.value));
    else if (f.field === 7) c.createdMs = nsToMs(f.value);
    else if (f.field === 8 && f.value instanceof Uint8Array) {
      const [k, v] = decodeMapEntry(f.value);
      c.labels[k] = v;
    }
  }
  if (!c.image) c.image = imageRef;
  return c;
}

/**
 * Decodes a ContainerStatusResponse (status: id 1, state 3, started_at 5, finished_at 6,
 * exit_code 7, reason 10, labels 12; the verbose info map 2 with the PID).
 */
export function decodeContainerStatus(id: string, resp: Uint8Array): CriContainerStatus {
  const s: CriContainerStatus = {
    id,
    state: "unknown",
    exitCode: 0,
    startedAtNs: 0n,
    finishedAtNs: 0n,
    reason: "",
    labels: {},
  };
  for (const f of decodeFields(resp)) {
    if (f.field === 1 && f.value instanceof Uint8Array) {
      for (const m of decodeFields(f.value)) {
        if (m.field === 3) s.state = stateOf(int32(m.value));
        else if (m.field === 5) s.startedAtNs = int64(m.value);
        else if (m.field === 6) s.finishedAtNs = int64(m.value);
        else if (m.field === 7) s.exitCode = int32(m.value);
        else if (m.field === 10) s.reason = asString(m.value);
        else if (m.field === 12 && m.value instanceof Uint8Array) {
          const [k, v] = decodeMapEntry(m.value);
          s.labels[k] = v;
        }
      }
    } else if (f.field === 2 && f.value instanceof Uint8Array) {
      const [k, v] = decodeMapEntry(f.value);
      if (k === "info") {
        try {
          const info = JSON.parse(v) as { pid?: number };
          if (typeof info.pid === "number" && info.pid > 0) s.pid = info.pid;
        } catch { /* not JSON: no pid */ }
      }
    }
  }
  return s;
}

/** A CRI runtime client on one socket. */
export class CriClient {
  readonly grpc: GrpcUnixClient;

  constructor(readonly socketPath: string, timeoutMs = 2000) {
    this.grpc = new GrpcUnixClient(socketPath, timeoutMs);
  }

  /**
   * Lists pod sandboxes carrying `labels` (pod labels and the kubelet's io.kubernetes.pod.*),
   * ready or not. Rejects with RuntimeUnreachableError / GrpcError.
   */
  async listPodSandboxes(labels: Record<string, string> = {}): Promise<CriSandbox[]> {
    const req = new ProtoWriter().bytes(1, new ProtoWriter().map(3, labels));
    const resp = await this.grpc.call(`${SERVICE}/ListPodSandbox`, req.finish());
    const out: CriSandbox[] = [];
    for (const field of decodeFields(resp)) {
      if (field.field === 1 && field.value instanceof Uint8Array) {
        out.push(decodeSandbox(field.value));
      }
    }
    return out;
  }

  /**
   * Stops container `id`: SIGTERM, SIGKILL after `timeoutSeconds` (the kubelet, when its pod
   * still wants the container, starts it again). The call waits for the stop, so its deadline is
   * the timeout plus `marginMs` (default: the client's timeout). Rejects with
   * RuntimeUnreachableError / GrpcError (NOT_FOUND).
   */
  async stopContainer(
    id: string,
    timeoutSeconds: number,
    marginMs = this.grpc.timeoutMs,
  ): Promise<void> {
    const req = new ProtoWriter().bytes(1, id).varint(2, Math.max(0, Math.round(timeoutSeconds)));
    await this.grpc.call(
      `${SERVICE}/StopContainer`,
      req.finish(),
      timeoutSeconds * 1000 + marginMs,
    );
  }

  /**
   * Lists containers, optionally only `running` ones, only those of one pod sandbox and only
   * those carrying `labels`. Rejects with RuntimeUnreachableError / GrpcError.
   */
  async listContainers(
    filter: { running?: boolean; podSandboxId?: string; labels?: Record<string, string> } = {},
  ): Promise<CriContainer[]> {
    const f = new ProtoWriter();
    if (filter.running) f.bytes(2, new ProtoWriter().varint(1, 1));
    if (filter.podSandboxId) f.bytes(3, filter.podSandboxId);
    if (filter.labels) f.map(4, filter.labels);
    const req = new ProtoWriter().bytes(1, f);
    const resp = await this.grpc.call(`${SERVICE}/ListContainers`, req.finish());
    const out: CriContainer[] = [];
    for (const field of decodeFields(resp)) {
      if (field.field === 1 && field.value instanceof Uint8Array) {
        out.push(decodeContainer(field.value));
      }
    }
    return out;
  }

  /** The verbose status of container `id`. Rejects with GrpcError NOT_FOUND when it is gone. */
  async containerStatus(id: string): Promise<CriContainerStatus> {
    const req = new ProtoWriter().bytes(1, id).varint(2, true).finish();
    return decodeContainerStatus(id, await this.grpc.call(`${SERVICE}/ContainerStatus`, req));
  }

  /**
   * Lists the runtime's images (the CRI's ImageService, namespace `k8s.io` for containerd) as
   * their references: repo_tags and repo_digests. Rejects with RuntimeUnreachableError / GrpcError.
   */
  async listImageRefs(): Promise<string[]> {
    const req = new ProtoWriter().finish(); // ListImagesRequest without a filter
    const resp = await this.grpc.call(`${IMAGE_SERVICE}/ListImages`, req);
    const refs: string[] = [];
    for (const field of decodeFields(resp)) {
      if (field.field !== 1 || !(field.value instanceof Uint8Array)) continue;
      for (const f of decodeFields(field.value)) {
        if ((f.field === 2 || f.field === 3) && f.value instanceof Uint8Array) {
          refs.push(asString(f.value));
        }
      }
    }
    return refs;
  }

  /**
   * Runs `cmd` in container `id` and waits for it (the CRI's ExecSync, what `crictl exec -s`
   * does), at most `timeoutSec` seconds on the runtime's side. Rejects with GrpcError (e.g.
   * NOT_FOUND for a container that is gone) or RuntimeUnreachableError.
   */
  async execSync(
    id: string,
    cmd: string[],
    timeoutSec: number,
  ): Promise<{ exitCode: number; stdout: string; stderr: string }> {
    const req = new ProtoWriter().bytes(1, id);
    for (const arg of cmd) req.bytes(2, arg);
    req.varint(3, timeoutSec);
    const resp = await this.grpc.call(
      `${SERVICE}/ExecSync`,
      req.finish(),
      (timeoutSec + 2) * 1000,
    );
    const out = { exitCode: 0, stdout: "", stderr: "" };
    for (const f of decodeFields(resp)) {
      if (f.field === 1 && f.value instanceof Uint8Array) out.stdout = asString(f.value);
      else if (f.field === 2 && f.value instanceof Uint8Array) out.stderr = asString(f.value);
      else if (f.field === 3) out.exitCode = int32(f.value);
    }
    return out;
  }

  /** Closes the connection. */
  close(): void {
    this.grpc.close();
  }
}
