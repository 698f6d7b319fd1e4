// What `ks-rollout status` and the running progress display show, computed from the recorded
// state alone: per wave the nodes done / failed / in flight / pending, the overall counts, which
// nodes failed and why, and an estimate of the time left. Pure functions, plus the text rendering.
import { countMarks, countUndo, type MarkCounts, type RolloutState } from "./state.ts";

/** Counts of one wave. */
export interface WaveProgress extends MarkCounts {
  wave: number;
  /** Nodes in this wave (not cumulative). */
  size: number;
  /** Cumulative nodes up to and including this wave. */
  upTo: number;
  status: "pending" | "rolling" | "baking" | "passed" | "stopped";
}

/** The summary of a rollout, as `status --output json` prints it. */
export interface RolloutProgress extends MarkCounts {
  id: string;
  phase: RolloutState["phase"];
  holder: string;
  heartbeatAgeMs: number;
  target: string;
  targetHash: string;
  previousRevision: string;
  nodes: number;
  wave: number;
  waves: WaveProgress[];
  failures: { node: string; reason: string }[];
  /** Rollback counts, once rolling back. */
  rollback?: MarkCounts;
  stopReason?: string;
  elapsedMs: number;
  /** Estimated time left (ms), undefined when nothing is known yet or the rollout is over. */
  etaMs?: number;
}

/** Summarizes a state at `now`. */
export function summarize(state: RolloutState, now: number): RolloutProgress {
  const totals = countMarks(state.marks);
  const waves: WaveProgress[] = state.waves.map((upTo, i) => {
    const from = i === 0 ? 0 : state.waves[i - 1];
    const counts = countMarks(state.marks.slice(from, upTo));
    let status: WaveProgress["status"] = "pending";
    if (i < state.wave) status = "passed";
    else if (i === state.wave) {
      if (state.phase === "rolling") status = "rolling";
      else if (state.phase === "baking") status = "baking";
      else if (state.phase === "done") status = "passed";
      else status = "stopped";
    }
    return { wave: i + 1, size: upTo - from, upTo, status, ...counts };
  });
  const end = state.finishedAt ?? now;
  const elapsedMs = Math.max(0, end - state.startedAt);
  const settled = totals.done + totals.failed;
  let etaMs: number | undefined;
  if (state.phase === "rolling" || state.phase === "baking") {
    const remainingNodes = state.order.length - settled;
    const perNode = settled > 0 ? elapsedMs / settled : undefined;
    const bakesLeft = state.waves.length - state.wave - (state.phase === "baking" ? 1 : 0);
    const bakeNow = state.phase === "baking" ? Math.max(0, (state.bakeUntil ?? now) - now) : 0;
    if (perNode !== undefined) {
      // Time spent so far includes bakes; take them out of the per-node rate.
      const bakesDone = state.wave * state.settings.bakeMs;
      const rate = Math.max(0, elapsedMs - bakesDone) / settled;
      etaMs = Math.round(remainingNodes * rate + bakesLeft * state.settings.bakeMs + bakeNow);
    }
  } else if (state.phase === "rolling-back") {
    const undo = countUndo(state.undo);
    const restored = undo.done + undo.failed;
    const left = undo.pending + undo.inflight;
    const took = now - (state.stoppedAt ?? now);
    etaMs = restored > 0 ? Math.round((left * took) / restored) : undefined;
  }
  const failures = state.order
    .filter((_node, i) => state.marks[i] === "f" || state.undo?.[i] === "f")
    .map((node) => ({ node, reason: state.reasons[node] ?? "unknown" }));
  return {
    id: state.id,
    phase: state.phase,
    holder: state.holder,
    heartbeatAgeMs: Math.max(0, now - state.heartbeat),
    target: state.target.source,
    targetHash: state.target.hash,
    previousRevision: state.previous.revision,
    nodes: state.order.length,
    wave: state.wave + 1,
    waves,
    failures,
    rollback: state.undo ? countUndo(state.undo) : undefined,
    stopReason: state.stopReason,
    elapsedMs,
    etaMs,
    ...totals,
  };
}

/** Formats ms as `1h02m`, `3m05s`, `12s`. */
export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/** One progress line for the running display, e.g. `wave 2/5 rolling: 7/11 done, 0 failed`. */
export function progressLine(p: RolloutProgress): string {
  const w = p.waves[p.wave - 1];
  let line = `${p.phase}`;
  if (w && (p.phase === "rolling" || p.phase === "baking")) {
    line = `wave ${p.wave}/${p.waves.length} ${p.phase}`;
  }
  line += `: ${p.done}/${p.nodes} done, ${p.failed} failed, ${p.inflight} in flight, ` +
    `${p.pending} pending`;
  if (p.rollback) {
    line += `; rollback ${p.rollback.done} restored, ${p.rollback.failed} not restored, ` +
      `${p.rollback.pending + p.rollback.inflight} to go`;
  }
  if (p.etaMs !== undefined) line += `; about ${formatDuration(p.etaMs)} left`;
  return line;
}

/** The human-readable `ks-rollout status` text. */
export function statusText(feature: string, p: RolloutProgress): string {
  const lines = [
    `${feature}: rollout ${p.id} to ${p.target} (revision ${p.targetHash || "?"}) ${p.phase}`,
    `  holder ${p.holder}, heartbeat ${formatDuration(p.heartbeatAgeMs)} ago, ` +
    `elapsed ${formatDuration(p.elapsedMs)}` +
    (p.etaMs !== undefined ? `, about ${formatDuration(p.etaMs)} left` : ""),
    `  nodes ${p.nodes}: ${p.done} done, ${p.failed} failed, ${p.inflight} in flight, ` +
    `${p.pending} pending`,
  ];
  for (const w of p.waves) {
    lines.push(
      `  wave ${w.wave}: ${String(w.size).padStart(5)} nodes (up to ${w.upTo})  ${
        w.status.padEnd(7)
      }  done ${w.done}  failed ${w.failed}  in flight ${w.inflight}  pending ${w.pending}`,
    );
  }
  if (p.stopReason) lines.push(`  stopped: ${p.stopReason}`);
  if (p.rollback) {
    lines.push(
      `  rollback to ${p.previousRevision}: ${p.rollback.done} restored, ${p.rollback.failed} ` +
        `not restored, ${p.rollback.pending + p.rollback.inflight} to go`,
    );
  }
  for (const f of p.failures.slice(0, 50)) lines.push(`  failed ${f.node}: ${f.reason}`);
  if (p.failures.length > 50) lines.push(`  ... and ${p.failures.length - 50} more failed nodes`);
  return lines.join("\n");
}
