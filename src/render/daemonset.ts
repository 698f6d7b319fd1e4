// The feature's DaemonSets: v1 (sidecar only, ks-patcher in native mode: the rollback state) and
// v2 (feature + ks-watchdog + sidecar), one per instance for multi-ASIC features. The containers,
// probes, resources, volumes and labels are decided here; the profile only swaps `privileged`.
import {
  type FeatureSpec,
  INJECTED_TREE,
  type ProbeTiming,
  type ResourceSpec,
  TOOLS_IMAGE_TREE,
  TOOLS_INIT_RESOURCES,
} from "../feature/spec.ts";
import { FILES_DIR, STUB_CREDENTIALS_DIR } from "./host_files.ts";
import { expandInstance, type Instance } from "./instances.ts";
import {
  commonLabels,
  type KubeObject,
  sidecarAccountName,
  sortedRecord,
  stubTokenSecretName,
} from "./objects.ts";
import { privilegedContext, type Profile } from "./profile.ts";

/** Where the host's / is mounted in the sidecar. */
export const HOST_ROOT = "/host";
/** The pod label naming the feature container's raw (docker) name; ks-stub selects by it. */
export const FEATURE_LABEL = "raw_container_name";
/** The pod label naming the ASIC of a per-ASIC instance. */
export const ASIC_LABEL = "asic";
/** Annotation and pod label telling v1 from v2. */
export const STAGE_LABEL = "kubesonic.io/stage";
/** The emptyDir holding the ks tree copied for the feature container (tools.inject). */
export const TOOLS_VOLUME = "ks-tools";
/** Bound of that emptyDir: the tree is about 95 MB (the Deno runtime), with room to spare. */
export const TOOLS_VOLUME_LIMIT = "256Mi";

/** What one DaemonSet carries. */
export interface DaemonSetPlan {
  stage: "v1" | "v2";
  /** DaemonSet name (`telemetry`, `telemetry-asic0`). */
  name: string;
  /** The feature instance it runs (v2 with a feature container), else undefined. */
  instance?: Instance;
  /** Whether the pod carries the sidecar (the `<feature>` DaemonSet always does). */
  sidecar: boolean;
}

/** Inputs shared by every DaemonSet of the feature. */
export interface DaemonSetContext {
  spec: FeatureSpec;
  profile: Profile;
  configMapName: string;
  allowRoots: string[];
}

function resources(res: ResourceSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (Object.keys(res.requests).length > 0) out.requests = sortedRecord({ ...res.requests });
  if (Object.keys(res.limits).length > 0) out.limits = sortedRecord({ ...res.limits });
  return out;
}

function probe(
  path: string,
  port: number,
  timing: ProbeTiming,
  hostNetwork: boolean,
): Record<string, unknown> {
  return {
    httpGet: { ...(hostNetwork ? { host: "127.0.0.1" } : {}), path, port, scheme: "HTTP" },
    initialDelaySeconds: timing.initialDelaySeconds,
    periodSeconds: timing.periodSeconds,
    timeoutSeconds: timing.timeoutSeconds,
    failureThreshold: timing.failureThreshold,
  };
}

function featureContainer(ctx: DaemonSetContext, instance: Instance): Record<string, unknown> {
  const { spec } = ctx;
  const command = [spec.tools.entrypoint, "--feature", spec.name];
  if (instance.namespace) command.push("--asic-namespace", instance.namespace);
  command.push("--", ...spec.command);
  const env: Record<string, string> = {};
  if (instance.asic !== undefined) {
    // What SONiC's docker_image_ctl gives per-ASIC containers.
    env.NAMESPACE_ID = String(instance.asic);
    env.NAMESPACE_PREFIX = "asic";
  }
  for (const [key, value] of Object.entries(spec.env)) env[key] = expandInstance(value, instance);
  const container: Record<string, unknown> = {
    name: spec.containerName,
    image: spec.images.feature,
    imagePullPolicy: spec.images.pullPolicy,
    command,
  };
  if (Object.keys(env).length > 0) {
    container.env = Object.keys(env).sort().map((name) => ({ name, value: env[name] }));
  }
  // Per-ASIC instances share the host network: declared (host) ports would collide between ASICs
  // and make the scheduler refuse all but one, so they are left out there.
  if (spec.ports.length > 0 && !(spec.hostNetwork && instance.asic !== undefined)) {
    container.ports = spec.ports.map((p) => ({
      name: p.name,
      containerPort: p.port,
      protocol: p.protocol,
    }));
  }
  container.resources = resources(spec.resources);
  // The entrypoint's launcher says in one line what the image lacks (glibc) and exits 127: that
  // line becomes the container's termination message, so `kubectl get pod` shows it.
  if (spec.tools.inject) container.terminationMessagePolicy = "FallbackToLogsOnError";
  container.livenessProbe = probe(
    "/livez",
    instance.watchdogPort,
    spec.watchdog.liveness,
    spec.hostNetwork,
  );
  container.readinessProbe = probe(
    "/readyz",
    instance.watchdogPort,
    spec.watchdog.readiness,
    spec.hostNetwork,
  );
  container.securityContext = spec.privileged
    ? privilegedContext(ctx.profile)
    : spec.capabilities.length > 0
    ? { capabilities: { add: [...spec.capabilities] } }
    : {};
  if (Object.keys(container.securityContext as object).length === 0) {
    delete container.securityContext;
  }
  const volumeMounts: Record<string, unknown>[] = spec.mounts.map((m) => ({
    name: m.name,
    mountPath: expandInstance(m.path, instance),
    ...(m.readOnly ? { readOnly: true } : {}),
  }));
  if (spec.tools.inject) {
    volumeMounts.push({ name: TOOLS_VOLUME, mountPath: INJECTED_TREE, readOnly: true });
  }
  if (volumeMounts.length > 0) container.volumeMounts = volumeMounts;
  return container;
}

/**
 * The init container of a v2 pod with tools.inject: copies the ks tree from the ks-tools image
 * into the emptyDir the feature container mounts at INJECTED_TREE (the feature image stays
 * SONiC's own), and primes Deno's cache for the entrypoint there. ks-entrypoint then execs the
 * image's command, so nothing of ours stays resident.
 */
/**
 * `--prime <launcher>` for the feature container's entrypoint when it is a launcher of the injected
 * tree: the feature container mounts the tree read-only, so Deno's module analysis cache is
 * written at copy time (src/build/runtime_cache.ts).
 */
function primeArgs(spec: FeatureSpec): string[] {
  const m = new RegExp(`^${INJECTED_TREE}/bin/(ks(?:-[a-z-]+)?)$`).exec(spec.tools.entrypoint);
  return m ? ["--prime", m[1]] : [];
}

function toolsInitContainer(ctx: DaemonSetContext): Record<string, unknown> {
  const { spec } = ctx;
  return {
    name: `${spec.name}-tools`,
    image: spec.images.tools,
    imagePullPolicy: spec.images.pullPolicy,
    command: [`${TOOLS_IMAGE_TREE}/bin/ks`, "copy-tree", INJECTED_TREE, ...primeArgs(spec)],
    resources: resources(TOOLS_INIT_RESOURCES),
    securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true },
    volumeMounts: [{ name: TOOLS_VOLUME, mountPath: INJECTED_TREE }],
  };
}

function watchdogContainer(ctx: DaemonSetContext, instance: Instance): Record<string, unknown> {
  const { spec } = ctx;
  const listenHost = spec.hostNetwork ? "127.0.0.1" : "0.0.0.0";
  const command = [
    spec.tools.watchdog,
    "--feature",
    spec.name,
    "--listen",
    `${listenHost}:${instance.watchdogPort}`,
  ];
  for (const p of spec.watchdog.probes) {
    command.push(`--${p.kind}`, expandInstance(p.target, instance));
  }
  if (instance.namespace) command.push("--asic-namespace", instance.namespace);
  const mounts = spec.mounts.filter((m) => m.watchdog);
  return {
    name: `${spec.name}-watchdog`,
    image: spec.images.watchdog,
    imagePullPolicy: spec.images.pullPolicy,
    command,
    resources: resources(spec.watchdog.resources),
    livenessProbe: {
      tcpSocket: {
        ...(spec.hostNetwork ? { host: "127.0.0.1" } : {}),
        port: instance.watchdogPort,
      },
      initialDelaySeconds: 5,
      periodSeconds: 10,
      timeoutSeconds: 2,
      failureThreshold: 3,
    },
    securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true },
    ...(mounts.length > 0
      ? {
        volumeMounts: mounts.map((m) => ({
          name: m.name,
          mountPath: expandInstance(m.path, instance),
          readOnly: true,
        })),
      }
      : {}),
  };
}

function sidecarContainer(ctx: DaemonSetContext, stage: "v1" | "v2"): Record<string, unknown> {
  const { spec } = ctx;
  const mode = stage === "v1" ? "native" : "kube";
  const command = [
    spec.tools.patcher,
    "--manifest",
    `${FILES_DIR}/manifest-${mode}.json`,
    "--host-root",
    HOST_ROOT,
    "--state-dir",
    `${HOST_ROOT}/var/lib/kubesonic`,
  ];
  for (const root of ctx.allowRoots) command.push("--allow-root", root);
  command.push("--interval", spec.sidecar.interval);
  if (spec.sidecar.staleClaim) command.push("--stale-claim", spec.sidecar.staleClaim);
  const volumeMounts: Record<string, unknown>[] = [
    // HostToContainer: mounts the host makes later (a tmpfs on /run…) show up under /host too.
    { name: "host-root", mountPath: HOST_ROOT, mountPropagation: "HostToContainer" },
    { name: "ks-files", mountPath: FILES_DIR, readOnly: true },
  ];
  if (spec.stub.apiServer) {
    volumeMounts.push({
      name: "stub-credentials",
      mountPath: STUB_CREDENTIALS_DIR,
      readOnly: true,
    });
  }
  return {
    name: `${spec.name}-sidecar`,
    image: spec.images.sidecar,
    imagePullPolicy: spec.images.pullPolicy,
    command,
    resources: resources(spec.sidecar.resources),
    securityContext: privilegedContext(ctx.profile),
    volumeMounts,
  };
}

/** Builds one DaemonSet. */
export function daemonSetObject(ctx: DaemonSetContext, plan: DaemonSetPlan): KubeObject {
  const { spec } = ctx;
  const instance = plan.instance;
  const selector = { app: spec.name, "app.kubernetes.io/instance": plan.name };
  const podLabels: Record<string, string> = {
    ...commonLabels(spec),
    "app.kubernetes.io/instance": plan.name,
    "app.kubernetes.io/component": instance ? "feature" : "sidecar",
    [STAGE_LABEL]: plan.stage,
  };
  if (instance) podLabels[FEATURE_LABEL] = spec.containerName;
  if (instance?.asic !== undefined) podLabels[ASIC_LABEL] = String(instance.asic);

  const containers: Record<string, unknown>[] = [];
  if (instance) containers.push(featureContainer(ctx, instance), watchdogContainer(ctx, instance));
  if (plan.sidecar) containers.push(sidecarContainer(ctx, plan.stage));

  const volumes: Record<string, unknown>[] = [];
  const inject = instance !== undefined && spec.tools.inject;
  if (inject) volumes.push({ name: TOOLS_VOLUME, emptyDir: { sizeLimit: TOOLS_VOLUME_LIMIT } });
  if (instance) {
    for (const m of spec.mounts) {
      volumes.push({
        name: m.name,
        hostPath: {
          path: expandInstance(m.hostPath, instance),
          ...(m.type ? { type: m.type } : {}),
        },
      });
    }
  }
  if (plan.sidecar) {
    volumes.push(
      { name: "host-root", hostPath: { path: "/", type: "Directory" } },
      { name: "ks-files", configMap: { name: ctx.configMapName } },
    );
    if (spec.stub.apiServer) {
      volumes.push({ name: "stub-credentials", secret: { secretName: stubTokenSecretName(spec) } });
    }
  }

  const processProbe = spec.watchdog.probes.some((p) => p.kind === "process");
  const podSpec: Record<string, unknown> = {
    serviceAccountName: sidecarAccountName(spec),
    automountServiceAccountToken: false,
    hostNetwork: spec.hostNetwork,
    // The sidecar reaches systemd and docker through nsenter into PID 1; a per-ASIC pod without
    // it shares one PID namespace between its containers when the watchdog checks processes.
    hostPID: plan.sidecar,
    ...(!plan.sidecar && instance && processProbe ? { shareProcessNamespace: true } : {}),
    hostIPC: instance ? spec.hostIPC : false,
    // Host-network features resolve names as they did natively (the switch's resolv.conf), not
    // through cluster DNS that a switch may not reach.
    dnsPolicy: spec.hostNetwork ? "Default" : "ClusterFirst",
    nodeSelector: sortedRecord(spec.nodeSelector),
    tolerations: spec.tolerations.map((t) => ({ ...t })),
    terminationGracePeriodSeconds: 30,
    ...(inject ? { initContainers: [toolsInitContainer(ctx)] } : {}),
    containers,
    volumes,
  };

  return {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: {
      name: plan.name,
      namespace: spec.namespace,
      labels: sortedRecord({ ...commonLabels(spec), "app.kubernetes.io/instance": plan.name }),
      annotations: { [STAGE_LABEL]: plan.stage },
    },
    spec: {
      selector: { matchLabels: sortedRecord(selector) },
      updateStrategy: spec.updateStrategy === "OnDelete"
        ? { type: "OnDelete" }
        : { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } },
      revisionHistoryLimit: 10,
      template: {
        metadata: {
          labels: sortedRecord(podLabels),
          annotations: {
            "kubectl.kubernetes.io/default-container": instance
              ? spec.containerName
              : `${spec.name}-sidecar`,
          },
        },
        spec: podSpec,
      },
    },
  };
}
