// The resume state of a rollout, kept in one annotation on the DaemonSet (`kubesonic.io/rollout`)
// so that a crashed run resumes where it stopped, `ks-rollout status` can show progress from
// anywhere, and a second run can see (and refuse) a rollout in progress. Every write of it is a
// compare-and-swap on the DaemonSet's resourceVersion (see run.ts). This module holds the shape,
// its compact encoding (one character per node), validation on read, and the claim decision.

/** The annotation that carries the state. */
export const STATE_ANNOTATION = "kubesonic.io/rollout";

/** Where a rollout is. `done`, `rolled-back` and `rollback-failed` are final. */
export type Phase =
  | "rolling"
  | "baking"
  | "rolling-back"
  | "done"
  | "rolled-back"
  | "rollback-failed";

/** Final phases: a new rollout may start over a state in one of these. */
export const FINAL_PHASES: readonly Phase[] = ["done", "rolled-back", "rollback-failed"];

/**
 * Per-node marks, one character per node of `order`:
 * `.` pending, `i` in flight (old pod deleted or being deleted), `d` done (Ready on the target),
 * `f` failed (reason in `reasons`). The undo string uses `.` untouched, `p` to restore,
 * `i` in flight, `d` restored (Ready on the previous revision), `f` not restored.
 */
export type Mark = "." | "i" | "d" | "f" | "p";

/** Settings a rollout was started with; a resumed run keeps them. */
export interface RolloutSettings {
  /** Failure budget, in flag form (`2%` or `3`). */
  budget: string;
  bakeMs: number;
  readyTimeoutMs: number;
  maxInFlight: number;
  /** How long a new pod must stay Ready before its node counts as done (absent = 0). */
  minReadyMs?: number;
  /** How long a node moved back may take to be Ready on the previous revision (absent = readyTimeoutMs). */
  restoreTimeoutMs?: number;
}

/** The whole recorded state of one rollout. */
export interface RolloutState {
  v: 1;
  /** Random id of this rollout (stable across resumes). */
  id: string;
  phase: Phase;
  /** Who drives it: `host/pid` of the ks-rollout process, and when it last wrote. */
  holder: string;
  heartbeat: number;
  startedAt: number;
  finishedAt?: number;
  /**
   * What the rollout moves to: a digest of the template asked for, its revision hash (once the
   * controller made the revision), what `--to` said, and that in words.
   */
  target: { digest: string; hash: string; to: string; source: string };
  /** The revision it came from: ControllerRevision name and hash (restored on rollback). */
  previous: { revision: string; hash: string };
  settings: RolloutSettings;
  /** Cumulative node counts per wave, and the index of the current wave. */
  waves: number[];
  wave: number;
  /** End of the current wave's bake (ms since epoch), while baking. */
  bakeUntil?: number;
  /** Nodes in rollout order, and one mark per node (see {@link Mark}). */
  order: string[];
  marks: string;
  /**
   * For nodes in flight: the uid of the pod deleted and when (ms), for the Ready deadline; and
   * since when (ms, this tool's clock) its new pod has been seen Ready, for the minimum, with
   * which pod and Ready transition that was (`uid@lastTransitionTime`).
   */
  inflight: Record<string, { uid: string; since: number; readyAt?: number; readySpell?: string }>;
  /** Why each failed node failed. */
  reasons: Record<string, string>;
  /** Rollback progress (same length as order) once rolling back, else "". */
  undo: string;
  /** Why the rollout stopped and when (ms), when it rolled back. */
  stopReason?: string;
  stoppedAt?: number;
}

/** Counts of nodes per mark. */
export interface MarkCounts {
  pending: number;
  inflight: number;
  done: number;
  failed: number;
}

/** Counts the marks of `marks` (a string of {@link Mark} characters). */
export function countMarks(marks: string): MarkCounts {
  const counts: MarkCounts = { pending: 0, inflight: 0, done: 0, failed: 0 };
  for (const ch of marks) {
    if (ch === "d") counts.done++;
    else if (ch === "f") counts.failed++;
    else if (ch === "i") counts.inflight++;
    else if (ch === "p" || ch === ".") counts.pending++;
  }
  return counts;
}

/** Counts rollback marks: like countMarks, but untouched nodes (`.`) are not counted at all. */
export function countUndo(undo: string): MarkCounts {
  return countMarks(undo.replaceAll(".", ""));
}

/** Returns `marks` with position `index` set to `mark`. */
export function setMark(marks: string, index: number, mark: Mark): string {
  return marks.slice(0, index) + mark + marks.slice(index + 1);
}

/** Serializes the state for the annotation (compact JSON). */
export function encodeState(state: RolloutState): string {
  return JSON.stringify(state);
}

/** A state annotation that cannot be read; the message names what is wrong. */
export class StateError extends Error {
  override name = "StateError";
}

/**
 * Parses the annotation value; returns undefined when absent, throws StateError when it is not a
 * state this version understands (so a corrupt annotation is never mistaken for "no rollout").
 */
export function decodeState(text: string | undefined): RolloutState | undefined {
  if (text === undefined || text === "") return undefined;
  let state: RolloutState;
  try {
    state = JSON.parse(text);
  } catch {
    throw new StateError(`annotation ${STATE_ANNOTATION} is not JSON`);
  }
  const bad = (what: string) =>
    new StateError(`annotation ${STATE_ANNOTATION}: ${what}; remove it to start over`);
  if (typeof state !== "object" || state === null || state.v !== 1) throw bad("unknown version");
  if (!Array.isArray(state.order) || typeof state.marks !== "string") throw bad("no node list");
  if (state.marks.length !== state.order.length) throw bad("marks do not match the node list");
  if (state.undo && state.undo.length !== state.order.length) throw bad("undo marks mismatch");
  if (!Array.isArray(state.waves) || typeof state.wave !== "number") throw bad("no waves");
  if (!state.target?.digest || !state.previous) throw bad("no target or previous revision");
  return state;
}

/** True when the rollout is over (a new one may start). */
export function isFinal(state: RolloutState): boolean {
  return FINAL_PHASES.includes(state.phase);
}

/** Who we are, as a holder string: `host/pid`. */
export function holderId(host = Deno.hostname(), pid = Deno.pid): string {
  return `${host}/${pid}`;
}

/**
 * Whether the holder recorded in a state is known to be dead: it ran on this host and its process
 * is gone (or is no longer a ks-rollout). Unknown (another host) returns false.
 */
export function holderIsDeadHere(holder: string, host = Deno.hostname()): boolean {
  const slash = holder.lastIndexOf("/");
  if (slash < 0 || holder.slice(0, slash) !== host) return false;
  const pid = Number(holder.slice(slash + 1));
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    const cmdline = Deno.readTextFileSync(`/proc/${pid}/cmdline`);
    return !cmdline.includes("ks-rollout");
  } catch {
    return true;
  }
}

/** What a run may do given the state it found. */
export type ClaimDecision =
  | { action: "start" }
  | { action: "resume"; takeover: boolean }
  | { action: "refuse"; reason: string };

/**
 * Decides whether a run targeting `digest` may start, resume, or must refuse, given the `state`
 * found on the DaemonSet. A different target while a rollout is unfinished -> refuse (a conflicting
 * rollout). The same target -> resume when the holder is us, is known dead, or its lease
 * (`leaseMs` since the last heartbeat) expired; refuse while another live holder drives it.
 */
export function decideClaim(
  state: RolloutState | undefined,
  digest: string,
  me: string,
  now: number,
  leaseMs: number,
  holderDead: (holder: string) => boolean = holderIsDeadHere,
): ClaimDecision {
  if (!state || isFinal(state)) return { action: "start" };
  const age = Math.max(0, Math.round((now - state.heartbeat) / 1000));
  const who = `${state.holder}, last heartbeat ${age}s ago`;
  if (state.target.digest !== digest) {
    return {
      action: "refuse",
      reason: `a conflicting rollout ${state.id} to ${state.target.source} is ${state.phase} ` +
        `(${who}); wait for it or let it finish before starting another`,
    };
  }
  if (state.holder === me) return { action: "resume", takeover: false };
  if (holderDead(state.holder) || now - state.heartbeat > leaseMs) {
    return { action: "resume", takeover: true };
  }
  return {
    action: "refuse",
    reason:
      `rollout ${state.id} to the same target is ${state.phase} under another run (${who}); ` +
      `it resumes here once that run is gone or its lease (${Math.round(leaseMs / 1000)}s) expires`,
  };
}

/**
 * Decides whether `ks-rollout abort` may take a rollout over: only an unfinished one, and only
 * from a holder that is us, known dead, or past its lease (a live run would fight the abort:
 * stop it first). `rollback` = the rollout is rolling back already (resume that).
 */
export function decideAbort(
  state: RolloutState | undefined,
  me: string,
  now: number,
  leaseMs: number,
  holderDead: (holder: string) => boolean = holderIsDeadHere,
): ClaimDecision {
  if (!state || isFinal(state)) {
    return { action: "refuse", reason: "no rollout in progress to abort" };
  }
  const gone = state.holder === me || holderDead(state.holder) ||
    now - state.heartbeat > leaseMs;
  if (!gone) {
    const age = Math.max(0, Math.round((now - state.heartbeat) / 1000));
    return {
      action: "refuse",
      reason: `rollout ${state.id} is driven by a live run (${state.holder}, last heartbeat ` +
        `${age}s ago): stop that run first, or wait ${Math.round(leaseMs / 1000)}s for its lease`,
    };
  }
  return { action: "resume", takeover: state.holder !== me };
}
