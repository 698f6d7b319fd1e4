// Wave planning for ks-rollout: parses `--waves 1,1%,10%,50%,100%` into cumulative node counts and
// orders the fleet so that every prefix of the order is a good sample: the pinned canaries first,
// then the rest spread round-robin across zones and, inside a zone, across racks. Pure functions:
// the order and the counts are computed once and recorded in the DaemonSet's annotation.
import { UsageError } from "../cli.ts";

/** One entry of `--waves`: an absolute node count or a percentage of the fleet (cumulative). */
export type WaveSpec = { kind: "count"; value: number } | { kind: "percent"; value: number };

/** The waves a rollout uses when `--waves` is not given. */
export const DEFAULT_WAVES = "1,1%,10%,50%,100%";

/** Node labels used to spread waves, in order of precedence (zone first, then rack). */
export const DEFAULT_SPREAD_LABELS = ["topology.kubernetes.io/zone", "kubesonic.io/rack"];

/**
 * Parses a `--waves` value such as `1,1%,10%,50%,100%`. Each entry is cumulative: `10%` means
 * "until 10% of the fleet runs the new revision". Throws UsageError naming the bad entry.
 */
export function parseWaves(text: string): WaveSpec[] {
  const parts = text.split(",").map((p) => p.trim()).filter((p) => p !== "");
  if (parts.length === 0) throw new UsageError(`--waves: "${text}" lists no wave`);
  return parts.map((part) => {
    const pct = /^(\d+(?:\.\d+)?)%$/.exec(part);
    if (pct) {
      const value = Number(pct[1]);
      if (value <= 0 || value > 100) {
        throw new UsageError(`--waves: "${part}" must be a percentage in (0, 100]`);
      }
      return { kind: "percent", value };
    }
    if (/^\d+$/.test(part) && Number(part) > 0) return { kind: "count", value: Number(part) };
    throw new UsageError(`--waves: "${part}" is neither a node count (e.g. 1) nor a percentage`);
  });
}

/**
 * Turns wave specs into strictly increasing cumulative node counts for a fleet of `total` nodes.
 * Percentages round up (a wave of 1% of 50 nodes is 1 node), entries that add no node are dropped,
 * and the last wave always covers the whole fleet. Returns [] for an empty fleet.
 */
export function waveCounts(specs: WaveSpec[], total: number): number[] {
  if (total <= 0) return [];
  const counts: number[] = [];
  for (const spec of specs) {
    const raw = spec.kind === "count"
      ? spec.value
      : Math.ceil(Math.round(total * spec.value * 1000) / 100_000);
    const n = Math.min(total, Math.max(1, raw));
    if (counts.length === 0 || n > counts[counts.length - 1]) counts.push(n);
  }
  if (counts[counts.length - 1] !== total) counts.push(total);
  return counts;
}

/** A node as the planner sees it: its name and labels. */
export interface PlanNode {
  name: string;
  labels?: Record<string, string>;
}

/** Interleaves groups round-robin: [[a1,a2],[b1]] -> [a1,b1,a2]. */
function interleave<T>(groups: T[][]): T[] {
  const out: T[] = [];
  const longest = Math.max(0, ...groups.map((g) => g.length));
  for (let i = 0; i < longest; i++) {
    for (const group of groups) if (i < group.length) out.push(group[i]);
  }
  return out;
}

function spread(nodes: PlanNode[], labels: string[]): string[] {
  if (labels.length === 0) return nodes.map((n) => n.name).sort();
  const [label, ...rest] = labels;
  const groups = new Map<string, PlanNode[]>();
  for (const node of nodes) {
    const key = node.labels?.[label] ?? "";
    const group = groups.get(key);
    if (group) group.push(node);
    else groups.set(key, [node]);
  }
  const keys = [...groups.keys()].sort();
  return interleave(keys.map((k) => spread(groups.get(k)!, rest)));
}

/**
 * Orders the fleet for a rollout: the `canaries` that are part of the fleet first (in the given
 * order), then the other nodes spread round-robin across the values of `spreadLabels` (zone, then
 * rack inside each zone), names sorted inside each group. Deterministic for the same input.
 */
export function orderNodes(
  nodes: PlanNode[],
  canaries: string[] = [],
  spreadLabels: string[] = DEFAULT_SPREAD_LABELS,
): string[] {
  const names = new Set(nodes.map((n) => n.name));
  const pinned = [...new Set(canaries)].filter((c) => names.has(c));
  const pinnedSet = new Set(pinned);
  const rest = nodes.filter((n) => !pinnedSet.has(n.name));
  return [...pinned, ...spread(rest, spreadLabels)];
}

/** The nodes of each wave (not cumulative) for an `order` and cumulative `counts`. */
export function waveNodes(order: string[], counts: number[]): string[][] {
  return counts.map((n, i) => order.slice(i === 0 ? 0 : counts[i - 1], n));
}
