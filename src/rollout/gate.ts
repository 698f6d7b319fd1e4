// The health gate of ks-rollout: what a DaemonSet pod looks like to the rollout (a small view of
// the API object), whether it is healthy, still starting or failed (not Ready in time, restarted,
// OOM-killed / exit 137, CrashLoopBackOff), and the failure budget (`--failure-budget 2%` or an
// absolute count) that decides when a rollout stops and rolls back. Pure functions.
import { UsageError } from "../cli.ts";

/** The parts of a pod the rollout looks at. */
export interface PodView {
  name: string;
  uid: string;
  /** The node the pod is bound to (or pinned to by the DaemonSet's node affinity). */
  node: string;
  /** The `controller-revision-hash` label: which template revision the pod runs. */
  hash: string;
  /** The Ready condition is True. */
  ready: boolean;
  /** When the Ready condition last changed (lastTransitionTime, ms since the epoch; 0 unknown). */
  readySince?: number;
  /** Being deleted (deletionTimestamp set). */
  deleting: boolean;
  /** Sum of the containers' restart counts. */
  restarts: number;
  /** A container was OOM-killed or ended with exit code 137 (current or last state). */
  oomKilled: boolean;
  /** A container waits in CrashLoopBackOff. */
  crashLoop: boolean;
  /** Creation time in ms since the epoch (0 when unknown). */
  createdAt: number;
}

interface ContainerStatusLike {
  ready?: boolean;
  restartCount?: number;
  state?: {
    waiting?: { reason?: string };
    terminated?: { exitCode?: number; reason?: string };
  };
  lastState?: { terminated?: { exitCode?: number; reason?: string } };
}

/** The subset of a v1.Pod that {@link podView} reads. */
export interface PodLike {
  metadata?: {
    name?: string;
    uid?: string;
    labels?: Record<string, string>;
    deletionTimestamp?: string;
    creationTimestamp?: string;
  };
  spec?: {
    nodeName?: string;
    affinity?: {
      nodeAffinity?: {
        requiredDuringSchedulingIgnoredDuringExecution?: {
          nodeSelectorTerms?: {
            matchFields?: { key?: string; operator?: string; values?: string[] }[];
          }[];
        };
      };
    };
  };
  status?: {
    conditions?: { type?: string; status?: string; lastTransitionTime?: string }[];
    containerStatuses?: ContainerStatusLike[];
    initContainerStatuses?: ContainerStatusLike[];
  };
}

/** The node a DaemonSet pod belongs to: spec.nodeName, else its `metadata.name` node affinity. */
export function podNode(pod: PodLike): string {
  if (pod.spec?.nodeName) return pod.spec.nodeName;
  const terms = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution
    ?.nodeSelectorTerms ?? [];
  for (const term of terms) {
    for (const field of term.matchFields ?? []) {
      if (field.key === "metadata.name" && field.values?.length === 1) return field.values[0];
    }
  }
  return "";
}

/** Projects a v1.Pod onto the {@link PodView} the rollout reasons about. */
export function podView(pod: PodLike): PodView {
  const statuses = [
    ...(pod.status?.initContainerStatuses ?? []),
    ...(pod.status?.containerStatuses ?? []),
  ];
  const is137 = (t?: { exitCode?: number; reason?: string }) =>
    t !== undefined && (t.exitCode === 137 || t.reason === "OOMKilled");
  const readyCondition = (pod.status?.conditions ?? []).find((c) => c.type === "Ready");
  return {
    name: pod.metadata?.name ?? "",
    uid: pod.metadata?.uid ?? "",
    node: podNode(pod),
    hash: pod.metadata?.labels?.["controller-revision-hash"] ?? "",
    ready: readyCondition?.status === "True",
    readySince: Date.parse(readyCondition?.lastTransitionTime ?? "") || 0,
    deleting: Boolean(pod.metadata?.deletionTimestamp),
    restarts: statuses.reduce((sum, s) => sum + (s.restartCount ?? 0), 0),
    oomKilled: statuses.some((s) => is137(s.state?.terminated) || is137(s.lastState?.terminated)),
    crashLoop: statuses.some((s) => s.state?.waiting?.reason === "CrashLoopBackOff"),
    createdAt: Date.parse(pod.metadata?.creationTimestamp ?? "") || 0,
  };
}

/** What the gate concludes about one new pod. */
export type PodHealth =
  | { state: "ready" }
  | { state: "starting" }
  | { state: "failed"; reason: string };

/**
 * Judges a pod running the new revision: failed when it was OOM-killed (137), is in
 * CrashLoopBackOff or restarted; ready when its Ready condition is True; else still starting.
 * (The deadline for "starting" is the caller's: see machine.ts.)
 */
export function podHealth(pod: PodView): PodHealth {
  if (pod.oomKilled) return { state: "failed", reason: "OOMKilled (exit 137)" };
  if (pod.crashLoop) return { state: "failed", reason: "CrashLoopBackOff" };
  if (pod.restarts > 0) return { state: "failed", reason: `restarted ${pod.restarts} time(s)` };
  if (pod.ready) return { state: "ready" };
  return { state: "starting" };
}

/** How many failed nodes a rollout tolerates: a share of the nodes rolled, or a fixed count. */
export type Budget = { kind: "percent"; value: number } | { kind: "count"; value: number };

/** Parses `--failure-budget` (`2%`, `0.5%` or a node count such as `3`); throws UsageError. */
export function parseBudget(text: string): Budget {
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(text.trim());
  if (pct && Number(pct[1]) <= 100) return { kind: "percent", value: Number(pct[1]) };
  if (/^\d+$/.test(text.trim())) return { kind: "count", value: Number(text.trim()) };
  throw new UsageError(
    `--failure-budget: "${text}" is neither a percentage (e.g. 2%) nor a node count (e.g. 3)`,
  );
}

/** Renders a budget back to its flag form. */
export function formatBudget(budget: Budget): string {
  return budget.kind === "percent" ? `${budget.value}%` : String(budget.value);
}

/**
 * Failures tolerated among `rolled` nodes: floor(percent × rolled) for a percentage (so a canary
 * wave of one node tolerates none at 2%), the count itself for an absolute budget.
 */
export function allowedFailures(budget: Budget, rolled: number): number {
  if (budget.kind === "count") return budget.value;
  return Math.floor(Math.round(rolled * budget.value * 1000) / 100_000);
}

/** True when `failed` exceeds what the budget allows for `rolled` nodes. */
export function overBudget(budget: Budget, failed: number, rolled: number): boolean {
  return failed > allowedFailures(budget, rolled);
}
