// What ks-stub reads from a pod object: the few fields it needs (typed loosely, as the API server
// sends them), which pods carry the feature container, and a summary that status, start and
// wait decide on. No I/O here.

/** The subset of a v1.Pod that ks-stub reads. */
export interface Pod {
  metadata: {
    name: string;
    namespace?: string;
    uid: string;
    resourceVersion?: string;
    deletionTimestamp?: string;
    creationTimestamp?: string;
    labels?: Record<string, string>;
  };
  spec?: { nodeName?: string; containers?: { name: string; image?: string }[] };
  status?: {
    phase?: string;
    startTime?: string;
    containerStatuses?: ContainerStatus[];
  };
}

/** The subset of a v1.ContainerStatus that ks-stub reads. */
export interface ContainerStatus {
  name: string;
  ready?: boolean;
  restartCount?: number;
  image?: string;
  state?: {
    running?: { startedAt?: string };
    waiting?: { reason?: string };
    terminated?: { exitCode?: number; reason?: string };
  };
}

/** How ks-stub sees one pod. */
export interface PodSummary {
  name: string;
  uid: string;
  phase: string;
  /** The pod has a deletionTimestamp (it is being stopped). */
  terminating: boolean;
  /** The feature container's state: running, waiting (reason), terminated (reason), or unknown. */
  container: string;
  /** The feature container is running (and the pod is in phase Running). */
  running: boolean;
  /** Ready containers / all containers, as `kubectl get pod` shows them. */
  ready: string;
  /** Restarts of the feature container. */
  restarts: number;
  /** When the feature container (else the pod) started, ISO 8601. */
  since?: string;
  image?: string;
}

/**
 * The name of the pod's feature container: the value of its `raw_container_name` label (the
 * native container name), else the feature name.
 */
export function featureContainerName(pod: Pod, feature: string): string {
  return pod.metadata.labels?.raw_container_name || feature;
}

/** True when the pod's spec runs its feature container (v1 sidecar-only pods do not). */
export function hasFeatureContainer(pod: Pod, feature: string): boolean {
  const containers = pod.spec?.containers;
  // A watch event or list item without a spec cannot be judged; keep it.
  if (!containers) return true;
  const name = featureContainerName(pod, feature);
  return containers.some((c) => c.name === name);
}

/** Summarises a pod by its feature container (see featureContainerName). */
export function summarizePod(pod: Pod, feature: string): PodSummary {
  const phase = pod.status?.phase ?? "Unknown";
  const statuses = pod.status?.containerStatuses ?? [];
  const containerName = featureContainerName(pod, feature);
  const mine = statuses.find((s) => s.name === containerName);
  let container = "unknown";
  if (mine?.state?.running) container = "running";
  else if (mine?.state?.waiting) container = `waiting (${mine.state.waiting.reason ?? "?"})`;
  else if (mine?.state?.terminated) {
    const t = mine.state.terminated;
    container = `terminated (${t.reason ?? "exit"} ${t.exitCode ?? "?"})`;
  }
  const total = pod.spec?.containers?.length ?? statuses.length;
  const readyCount = statuses.filter((s) => s.ready).length;
  // Without container statuses the phase alone decides (a pod status written by a simulator).
  const running = phase === "Running" && (mine ? container === "running" : true);
  return {
    name: pod.metadata.name,
    uid: pod.metadata.uid,
    phase,
    terminating: Boolean(pod.metadata.deletionTimestamp),
    container,
    running,
    ready: `${readyCount}/${total}`,
    restarts: mine?.restartCount ?? 0,
    since: mine?.state?.running?.startedAt ?? pod.status?.startTime,
    image: mine?.image ?? pod.spec?.containers?.find((c) => c.name === containerName)?.image,
  };
}

/**
 * Picks the pod that stands for the feature on this node among `pods` (already filtered by
 * labels and node): only pods with the feature container; a live one before a terminating one,
 * then a running one, then the newest.
 */
export function pickPod(pods: Pod[], feature: string): Pod | undefined {
  const candidates = pods.filter((p) => hasFeatureContainer(p, feature));
  const rank = (p: Pod) =>
    (p.metadata.deletionTimestamp ? 0 : 2) + (summarizePod(p, feature).running ? 1 : 0);
  candidates.sort((a, b) =>
    rank(b) - rank(a) ||
    (b.metadata.creationTimestamp ?? "").localeCompare(a.metadata.creationTimestamp ?? "")
  );
  return candidates[0];
}
