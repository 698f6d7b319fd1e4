// The one-line status `wait` gives systemd (sd_notify STATUS=, src/stub/notify.ts), so the
// unit's `systemctl status` says what this node's instance is doing while the unit stays active:
// following a pod, waiting through an API outage (and what the runtime sees meanwhile), waiting
// through a node leave, or about to end because the feature went back to v1. No I/O here.

/** What wait knows; the newest fact wins (an outage hides the pod state it cannot see). */
export interface WaitView {
  /** "telemetry" or "bgp@0" (targetName). */
  name: string;
  namespace: string;
  node: string;
  /** The pod being followed (API server reachable). */
  pod?: {
    name: string;
    phase: string;
    container: string;
    terminating?: boolean;
    /** Wait handed off: the launcher watches this process of the container. */
    pid?: number;
  };
  /** The followed pod just went; its replacement is expected within the grace. */
  lostPod?: string;
  /** No feature pod on this node for longer than the grace (a leave), since (ms epoch). */
  noPodSince?: number;
  /** Only the feature's v1 pod on this node, since (ms epoch): wait ends after `graceMs`. */
  v1Since?: number;
  graceMs: number;
  /** The API server has not answered (or refused the stub) since (ms epoch). */
  apiDownSince?: number;
  apiDenied?: boolean;
  /** What the runtime showed during the outage (undefined: not asked yet). */
  local?: { state: "running" | "not-running" | "unknown"; pod?: string; restarts?: number };
}

/** ISO 8601 to the second, UTC ("2026-12-01T17:46:43Z"). */
export function isoSecond(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");
}

/** The STATUS= text for `view`. */
export function waitStatusText(view: WaitView): string {
  const { name, namespace, node } = view;
  if (view.apiDownSince !== undefined) {
    const api = view.apiDenied
      ? `API server refuses the stub's credentials since ${isoSecond(view.apiDownSince)}`
      : `API server unreachable since ${isoSecond(view.apiDownSince)}`;
    const local = view.local;
    if (!local) return `${api}; asking the container runtime`;
    if (local.state === "running") {
      return `${api}, container running (pod ${namespace}/${local.pod}, restarts ${local.restarts})`;
    }
    if (local.state === "not-running") {
      return `${api}, no running ${name} container on node ${node} (the kubelet restarts it)`;
    }
    return `${api}, container runtime unreachable too`;
  }
  if (view.pod) {
    const { name: pod, phase, container, terminating, pid } = view.pod;
    return `pod ${namespace}/${pod} on node ${node}: ${phase}, container ${container}` +
      (terminating ? ", terminating" : "") + (pid ? ` (pid ${pid})` : "");
  }
  if (view.v1Since !== undefined) {
    return `only ${name}'s v1 pod on node ${node} since ${isoSecond(view.v1Since)}: ending ${
      Math.round(view.graceMs / 1000)
    } s after unless a ${name} pod appears`;
  }
  if (view.noPodSince !== undefined) {
    return `no ${name} pod on node ${node} since ${isoSecond(view.noPodSince)}: node not ` +
      "selected by the DaemonSet, or its pod not created yet; waiting for this node's instance";
  }
  if (view.lostPod) return `pod ${namespace}/${view.lostPod} gone; waiting for its replacement`;
  return `waiting for a ${name} pod on node ${node}`;
}
