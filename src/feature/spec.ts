// The feature spec: the operator's description of one SONiC feature container that ks-render turns
// into Kubernetes objects and host files. These are the validated, defaulted types (what the
// renderer reads); src/feature/parse.ts turns YAML into them. docs/render.md is the reference.

/** The spec's apiVersion and kind, checked exactly so a future format cannot be misread. */
export const SPEC_API_VERSION = "kubesonic.io/v1";
/** The spec's kind. */
export const SPEC_KIND = "FeatureSpec";

/** A container port of the feature (informational under host networking, see docs/render.md). */
export interface PortSpec {
  name: string;
  port: number;
  protocol: "TCP" | "UDP" | "SCTP";
}

/**
 * A host directory or file mounted into the feature container (and the watchdog's when
 * `watchdog` is true). `{asic}` in hostPath/path expands to the ASIC index for per-ASIC instances
 * and to "" for the global one (SONiC's `$DEV`), `{namespace}` to `asicN` / "".
 */
export interface MountSpec {
  name: string;
  hostPath: string;
  path: string;
  readOnly: boolean;
  watchdog: boolean;
  type?: "Directory" | "DirectoryOrCreate" | "File" | "FileOrCreate" | "Socket";
}

/** CPU / memory requests or limits, as quantity strings ("100m", "400Mi"). */
export interface ResourceAmounts {
  cpu?: string;
  memory?: string;
}

/** Requests and limits of one container. */
export interface ResourceSpec {
  requests: ResourceAmounts;
  limits: ResourceAmounts;
}

/** One ks-watchdog check (its `--tcp`, `--process`, `--http` flags). */
export type WatchdogProbe =
  | { kind: "tcp"; target: string }
  | { kind: "process"; target: string }
  | { kind: "http"; target: string };

/** Kubelet probe timing against the watchdog's /livez or /readyz. */
export interface ProbeTiming {
  initialDelaySeconds: number;
  periodSeconds: number;
  timeoutSeconds: number;
  failureThreshold: number;
}

/** A pod toleration (the subset of core/v1 Toleration the spec accepts). */
export interface TolerationSpec {
  key?: string;
  operator: "Exists" | "Equal";
  value?: string;
  effect?: "NoSchedule" | "PreferNoSchedule" | "NoExecute";
}

/** Which instances the feature has; overridden by the switch's FEATURE flags (--config-db). */
export interface ScopeSpec {
  global: boolean;
  perAsic: boolean;
  /** ASIC count used when neither --asics nor a multi-ASIC --config-db gives one. */
  asics: number;
}

/** The validated feature spec with every default filled in. */
export interface FeatureSpec {
  /** FEATURE table key, systemd unit base, DaemonSet name and `app` label. */
  name: string;
  /** Kubernetes namespace of every namespaced object (default `sonic`). */
  namespace: string;
  /** The native docker container name (and `raw_container_name`); per-ASIC adds the index. */
  containerName: string;
  /** `app.kubernetes.io/version`; defaults to the feature image's tag. */
  version: string;
  /** `tools`: the ks-tools image whose tree the v2 pod's init container copies (tools.inject). */
  images: { feature: string; watchdog: string; sidecar: string; tools: string; pullPolicy: string };
  /** The feature's own command (supervisord …), run by ks-entrypoint after its gate. */
  command: string[];
  ports: PortSpec[];
  env: Record<string, string>;
  mounts: MountSpec[];
  resources: ResourceSpec;
  /** memory_checker's threshold in bytes, when the feature had one; derives limits.memory. */
  monitMemoryThreshold?: number;
  /** Where resources.limits.memory came from: written by the operator or derived from monit. */
  memoryLimitFrom: "resources.limits.memory" | "monit.memoryThreshold";
  scope: ScopeSpec;
  hostNetwork: boolean;
  hostIPC: boolean;
  /** Feature container privileged (production); the lab profile swaps it for capabilities. */
  privileged: boolean;
  /** Extra capabilities of the feature container when not privileged. */
  capabilities: string[];
  watchdog: {
    port: number;
    probes: WatchdogProbe[];
    liveness: ProbeTiming;
    readiness: ProbeTiming;
    resources: ResourceSpec;
  };
  /** ks-patcher's periodic re-check and (optional) stale-claim time (`--stale-claim`). */
  sidecar: { interval: string; staleClaim?: string; resources: ResourceSpec };
  stub: {
    path: string;
    source?: string;
    apiServer?: string;
    admissionPolicy: boolean;
    /** This node's container runtime socket for ks-stub (default: containerd's). */
    runtimeSocket?: string;
  };
  /**
   * The host runtime the kube-mode sidecar installs (default on unless stub.source is given): the
   * ks tree's Deno, bundle and ks-stub launcher under `<prefix>/<tree hash>/`, and `stub.path` as
   * a launcher naming that tree (one atomic write switches versions); `checkers` replaces
   * SONiC's /usr/bin/container_checker and memory_checker with ks-container-checker's and
   * ks-memory-checker's launchers. Rollback removes it.
   */
  hostRuntime: { install: boolean; prefix: string; checkers: boolean };
  unit: { name: string; launcher: string };
  native: { launcher?: string; launcherSource?: string };
  nodeSelector: Record<string, string>;
  tolerations: TolerationSpec[];
  updateStrategy: "OnDelete" | "RollingUpdate";
  /**
   * Tool paths. `inject` (default): the feature image is SONiC's own, unmodified; an init
   * container copies the ks tree from `images.tools` into an emptyDir mounted at INJECTED_TREE,
   * and the feature container runs `entrypoint` from there. Off: the feature image carries it.
   */
  tools: { entrypoint: string; watchdog: string; patcher: string; inject: boolean };
}

/** Default prefix of the host runtime (one directory per tree version below it). */
export const HOST_RUNTIME_PREFIX = "/usr/local/lib/kubesonic";

/** Where the ks-tools image holds the ks tree (bin/ks-*, bin/deno, lib/ks/). */
export const TOOLS_IMAGE_TREE = "/opt/kubesonic";
/** Where the feature container sees the tree copied by the init container (tools.inject). */
export const INJECTED_TREE = "/kubesonic";

/** Defaults for the ks-* tool paths inside the images. */
export const DEFAULT_TOOLS = {
  /** The injected copy (tools.inject); `/usr/local/bin/ks-entrypoint` when the image has one. */
  entrypoint: `${INJECTED_TREE}/bin/ks-entrypoint`,
  imageEntrypoint: "/usr/local/bin/ks-entrypoint",
  watchdog: `${TOOLS_IMAGE_TREE}/bin/ks-watchdog`,
  patcher: `${TOOLS_IMAGE_TREE}/bin/ks-patcher`,
} as const;

/** Default kubelet probe timings against the watchdog. */
export const DEFAULT_LIVENESS: ProbeTiming = {
  initialDelaySeconds: 30,
  periodSeconds: 10,
  timeoutSeconds: 2,
  failureThreshold: 3,
};
/** Readiness answers sooner than liveness: a not-ready pod only stops counting as available. */
export const DEFAULT_READINESS: ProbeTiming = {
  initialDelaySeconds: 5,
  periodSeconds: 5,
  timeoutSeconds: 2,
  failureThreshold: 3,
};

/**
 * The watchdog container's default budget, from its measured footprint as shipped (runtime flags
 * of src/build/runtime_flags.ts; `deno task bench footprint`, docs/footprint.md): ks-watchdog idles
 * at 53-58 MiB RSS and peaks at 64-70 MiB under 500 probes/s and a burst at the highest rate the
 * benchmark reaches. Request = idle + 10-20 %; limit = peak + 35-50 %, so a probe storm never gets
 * it OOM-killed (which would fail the pod's liveness).
 */
export const DEFAULT_WATCHDOG_RESOURCES: ResourceSpec = {
  requests: { cpu: "10m", memory: "64Mi" },
  limits: { cpu: "200m", memory: "96Mi" },
};

/**
 * The sidecar container's default budget: ks-patcher's loop idles at 48-50 MiB RSS and peaks at
 * 52 MiB in a drift loop (61 MiB with Deno's defaults). Request = idle + 12-16 %; limit = peak +
 * 30-50 %.
 */
export const DEFAULT_SIDECAR_RESOURCES: ResourceSpec = {
  requests: { cpu: "10m", memory: "56Mi" },
  limits: { cpu: "200m", memory: "80Mi" },
};

/**
 * The sidecar's budget when it installs the host runtime: ks-patcher streams each source (a
 * 100 MiB file installs at ~61 MiB peak RSS), but writing the ~95 MB Deno binary also fills the
 * container's cgroup with page cache while it is written back: the limit leaves room for that
 * (the kernel reclaims it; a tight limit only slows the install).
 */
export const HOST_RUNTIME_SIDECAR_RESOURCES: ResourceSpec = {
  requests: { cpu: "10m", memory: "64Mi" },
  limits: { cpu: "200m", memory: "160Mi" },
};

/**
 * The v2 pod's init container that copies the ks tree into the emptyDir (`ks copy-tree`): Deno's
 * floor plus the copy's page cache, which its cgroup is charged for until written back (the copy
 * syncs every 8 MiB; one unsynced copy was OOM-killed at 96Mi inside the lab switch).
 */
export const TOOLS_INIT_RESOURCES: ResourceSpec = {
  requests: { cpu: "10m", memory: "48Mi" },
  limits: { cpu: "200m", memory: "128Mi" },
};

/** The node label that opts a node in, unless the spec sets nodeSelector. */
export function defaultOptInLabel(feature: string): Record<string, string> {
  return { [`kubesonic.io/${feature}`]: "enabled" };
}

/** A spec error: one line, naming the file and the field. */
export class SpecError extends Error {
  override name = "SpecError";
}
