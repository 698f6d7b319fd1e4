// The CRI runtime (containerd's `runtime.v1.RuntimeService`) as the checkers see it: list the
// running containers with their labels, and one container's status (state, exit code, PID) —
// straight over the CRI gRPC socket, no crictl needed on the node.
import { asString, decodeFields, decodeMapEntry, ProtoWriter } from "./protobuf.ts";
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
}

/** ContainerStatus (verbose) of one container. */
export interface CriContainerStatus {
  id: string;
  state: CriState;
  exitCode: number;
  reason: string;
  labels: Record<string, string>;
  /** The init process PID from the verbose info, when the runtime reports it. */
  pid?: number;
}

function stateOf(n: number): CriState {
  return CRI_STATES[n] ?? "unknown";
}

function decodeContainer(buf: Uint8Array): CriContainer {
  const c: CriContainer = {
    id: "",
    podSandboxId: "",
    name: "",
    attempt: 0,
    state: "created",
    labels: {},
  };
  for (const f of decodeFields(buf)) {
    if (f.field === 1) c.id = asString(f.value);
    else if (f.field === 2) c.podSandboxId = asString(f.value);
    else if (f.field === 3 && typeof f.value !== "number") {
      for (const m of decodeFields(f.value)) {
        if (m.field === 1) c.name = asString(m.value);
        else if (m.field === 2 && typeof m.value === "number") c.attempt = m.value;
      }
    } else if (f.field === 6 && typeof f.value === "number") c.state = stateOf(f.value);
    else if (f.field === 8 && typeof f.value !== "number") {
      const [k, v] = decodeMapEntry(f.value);
      c.labels[k] = v;
    }
  }
  return c;
}

/** A CRI runtime client on one socket. */
export class CriClient {
  readonly grpc: GrpcUnixClient;

  constructor(readonly socketPath: string, timeoutMs = 2000) {
    this.grpc = new GrpcUnixClient(socketPath, timeoutMs);
  }

  /**
   * Lists containers, optionally only `running` ones and only those carrying `labels`.
   * Rejects with RuntimeUnreachableError / GrpcError.
   */
  async listContainers(
    filter: { running?: boolean; labels?: Record<string, string> } = {},
  ): Promise<CriContainer[]> {
    const f = new ProtoWriter();
    if (filter.running) f.bytes(2, new ProtoWriter().varint(1, 1));
    if (filter.labels) f.map(4, filter.labels);
    const req = new ProtoWriter().bytes(1, f);
    const resp = await this.grpc.call(`${SERVICE}/ListContainers`, req.finish());
    const out: CriContainer[] = [];
    for (const field of decodeFields(resp)) {
      if (field.field === 1 && typeof field.value !== "number") {
        out.push(decodeContainer(field.value));
      }
    }
    return out;
  }

  /** The verbose status of container `id`. Rejects with GrpcError NOT_FOUND when it is gone. */
  async containerStatus(id: string): Promise<CriContainerStatus> {
    const req = new ProtoWriter().bytes(1, id).varint(2, true).finish();
    const resp = await this.grpc.call(`${SERVICE}/ContainerStatus`, req);
    const s: CriContainerStatus = { id, state: "unknown", exitCode: 0, reason: "", labels: {} };
    for (const f of decodeFields(resp)) {
      if (f.field === 1 && typeof f.value !== "number") {
        for (const m of decodeFields(f.value)) {
          if (m.field === 3 && typeof m.value === "number") s.state = stateOf(m.value);
          else if (m.field === 7 && typeof m.value === "number") {
            s.exitCode = m.value > 0x7fffffff ? m.value - 2 ** 64 : m.value;
          } else if (m.field === 10) s.reason = asString(m.value);
          else if (m.field === 12 && typeof m.value !== "number") {
            const [k, v] = decodeMapEntry(m.value);
            s.labels[k] = v;
          }
        }
      } else if (f.field === 2 && typeof f.value !== "number") {
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

  /**
   * Lists the runtime's images (the CRI's ImageService, namespace `k8s.io` for containerd) as
   * their references: repo_tags and repo_digests. Rejects with RuntimeUnreachableError / GrpcError.
   */
  async listImageRefs(): Promise<string[]> {
    const req = new ProtoWriter().finish(); // ListImagesRequest without a filter
    const resp = await this.grpc.call(`${IMAGE_SERVICE}/ListImages`, req);
    const refs: string[] = [];
    for (const field of decodeFields(resp)) {
      if (field.field !== 1 || typeof field.value === "number") continue;
      for (const f of decodeFields(field.value)) {
        if ((f.field === 2 || f.field === 3) && typeof f.value !== "number") {
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
      if (f.field === 1 && typeof f.value !== "number") out.stdout = asString(f.value);
      else if (f.field === 2 && typeof f.value !== "number") out.stderr = asString(f.value);
      else if (f.field === 3 && typeof f.value === "number") {
        out.exitCode = f.value > 0x7fffffff ? f.value - 2 ** 64 : f.value;
      }
    }
    return out;
  }

  /** Closes the connection. */
  close(): void {
    this.grpc.close();
  }
}
