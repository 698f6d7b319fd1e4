// The rollout state machine as one pure function: `step(state, observation)` compares the recorded
// state with the pods observed now and returns the next state, the pods to delete and the events to
// log. The runner (run.ts) loops "observe -> step -> record (CAS) -> act", always recording before
// acting: a node is marked in flight, with the uid of the pod about to be deleted, before the
// delete is sent, and every delete carries that uid as a precondition. A crashed run therefore
// resumes without skipping a node and never moves a node twice.
import { allowedFailures, overBudget, parseBudget, podHealth, type PodView } from "./gate.ts";
import { countMarks, countUndo, type Mark, type RolloutState, setMark } from "./state.ts";

/** What the runner observed: the DaemonSet's pods, at `now` (ms since epoch). */
export interface Observation {
  now: number;
  pods: PodView[];
}

/** A pod to delete, with the uid it must still have (a precondition on the delete). */
export interface Deletion {
  node: string;
  pod: string;
  uid: string;
}

/** Something worth one log line. */
export interface StepEvent {
  message: string;
  fields?: Record<string, string | number>;
}

/** The outcome of one step. */
export interface StepResult {
  state: RolloutState;
  deletes: Deletion[];
  events: StepEvent[];
  /** The rollout just stopped: the runner must restore the previous template (with the state). */
  restoreTemplate: boolean;
}

/** The pod that represents each node now: a live one before a terminating one, newest first. */
export function podsByNode(pods: PodView[]): Map<string, PodView> {
  const byNode = new Map<string, PodView>();
  for (const pod of pods) {
    if (!pod.node) continue;
    const seen = byNode.get(pod.node);
    const better = !seen ||
      (seen.deleting && !pod.deleting) ||
      (seen.deleting === pod.deleting && pod.createdAt > seen.createdAt);
    if (better) byNode.set(pod.node, pod);
  }
  return byNode;
}

function cloneState(state: RolloutState): RolloutState {
  return structuredClone(state);
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10}s`;
}

/** Stops the rollout: every touched node (and any node found on the target) is to be restored. */
function enterRollback(
  s: RolloutState,
  byNode: Map<string, PodView>,
  reason: string,
  events: StepEvent[],
  now: number,
): void {
  s.phase = "rolling-back";
  s.stopReason = reason;
  s.stoppedAt = now;
  s.bakeUntil = undefined;
  s.inflight = {};
  let undo = "";
  for (let i = 0; i < s.order.length; i++) {
    const touched = s.marks[i] !== ".";
    const onTarget = byNode.get(s.order[i])?.hash === s.target.hash;
    undo += touched || onTarget ? "p" : ".";
  }
  s.undo = undo;
  events.push({
    message: "rollout stopped, rolling back",
    fields: { reason, restore: countUndo(undo).pending, revision: s.previous.revision },
  });
}

/** Applies the gate at the end of a wave (after its bake): next wave, done, or roll back. */
function gate(s: RolloutState, byNode: Map<string, PodView>, now: number, events: StepEvent[]) {
  const budget = parseBudget(s.settings.budget);
  const rolled = s.waves[s.wave];
  const failed = countMarks(s.marks).failed;
  if (overBudget(budget, failed, rolled)) {
    enterRollback(
      s,
      byNode,
      `${failed} of ${rolled} nodes failed, over the budget of ${s.settings.budget} ` +
        `(${allowedFailures(budget, rolled)} allowed)`,
      events,
      now,
    );
    return;
  }
  events.push({
    message: "wave passed the gate",
    fields: { wave: s.wave + 1, of: s.waves.length, rolled, failed },
  });
  s.bakeUntil = undefined;
  if (s.wave + 1 < s.waves.length) {
    s.wave++;
    s.phase = "rolling";
    events.push({
      message: "wave started",
      fields: { wave: s.wave + 1, of: s.waves.length, nodes: s.waves[s.wave] - rolled },
    });
  } else {
    s.phase = "done";
    s.finishedAt = now;
    events.push({ message: "rollout complete", fields: { nodes: rolled, failed } });
  }
}

function stepForward(
  s: RolloutState,
  obs: Observation,
  byNode: Map<string, PodView>,
  deletes: Deletion[],
  events: StepEvent[],
): void {
  const { now } = obs;
  const { readyTimeoutMs, maxInFlight } = s.settings;
  const fail = (i: number, reason: string) => {
    const node = s.order[i];
    s.marks = setMark(s.marks, i, "f");
    s.reasons[node] = reason;
    delete s.inflight[node];
    events.push({ message: "node failed", fields: { node, reason } });
  };

  // 1. Nodes in flight: Ready on the target -> done; failed or past the deadline -> failed.
  for (let i = 0; i < s.order.length; i++) {
    if (s.marks[i] !== "i") continue;
    const node = s.order[i];
    const pod = byNode.get(node);
    const rec = s.inflight[node] ?? { uid: "", since: now };
    s.inflight[node] = rec;
    const late = now - rec.since > readyTimeoutMs;
    if (pod && pod.hash === s.target.hash && !pod.deleting) {
      const health = podHealth(pod);
      const minReady = s.settings.minReadyMs ?? 0;
      if (health.state === "ready" && minReady > 0) {
        // Ready must hold for minReady before the node counts (Kubernetes' minReadySeconds). The
        // clock belongs to this pod and this Ready spell: a replacement pod, or a Ready condition
        // that changed between two observations (lost and regained), starts it again.
        const spell = `${pod.uid}@${pod.readySince ?? 0}`;
        if (rec.readySpell !== spell || rec.readyAt === undefined) {
          rec.readySpell = spell;
          rec.readyAt = now;
        }
        if (now - rec.readyAt < minReady) continue;
      } else if (health.state !== "ready") {
        rec.readyAt = undefined;
        rec.readySpell = undefined;
      }
      if (health.state === "ready") {
        s.marks = setMark(s.marks, i, "d");
        delete s.inflight[node];
        events.push({ message: "node done", fields: { node, pod: pod.name } });
      } else if (health.state === "failed") fail(i, health.reason);
      else if (late) fail(i, `not Ready within ${seconds(readyTimeoutMs)}`);
      continue;
    }
    if (late) {
      fail(
        i,
        pod
          ? `still on revision ${pod.hash} after ${seconds(readyTimeoutMs)}`
          : `no pod after ${seconds(readyTimeoutMs)}`,
      );
    } else if (pod && !pod.deleting && pod.hash !== s.target.hash) {
      // The old pod is still there (the run crashed between recording and deleting, or the
      // delete failed), or the controller recreated it from a stale template: delete that pod.
      rec.uid = pod.uid;
      deletes.push({ node, pod: pod.name, uid: pod.uid });
    }
  }

  // 2. Nodes already done stay under watch: a restart, an OOM kill or lost readiness is a failure.
  for (let i = 0; i < s.order.length; i++) {
    if (s.marks[i] !== "d") continue;
    const pod = byNode.get(s.order[i]);
    if (!pod || pod.deleting) continue;
    if (pod.hash !== s.target.hash) fail(i, `pod replaced by revision ${pod.hash}`);
    else {
      const health = podHealth(pod);
      if (health.state === "failed") fail(i, health.reason);
      else if (health.state === "starting") fail(i, "lost readiness after being Ready");
    }
  }

  // 3. Stop as soon as the wave can no longer pass, without waiting for its end.
  const budget = parseBudget(s.settings.budget);
  const failed = countMarks(s.marks).failed;
  if (overBudget(budget, failed, s.waves[s.wave])) {
    deletes.length = 0; // nothing more moves forward; the template is restored first
    enterRollback(
      s,
      byNode,
      `${failed} failed nodes exceed the budget of ${s.settings.budget} for ` +
        `${s.waves[s.wave]} nodes (${allowedFailures(budget, s.waves[s.wave])} allowed)`,
      events,
      now,
    );
    return;
  }

  // 4. Move more nodes of the current wave, never more than maxInFlight at once; a wave that
  // passes its gate (no bake) lets the next one start in the same step.
  if (s.phase === "baking" && now >= (s.bakeUntil ?? 0)) gate(s, byNode, now, events);
  while (s.phase === "rolling") {
    let inflight = countMarks(s.marks).inflight;
    const end = s.waves[s.wave];
    for (let i = 0; i < end && inflight < maxInFlight; i++) {
      if (s.marks[i] !== ".") continue;
      const node = s.order[i];
      const pod = byNode.get(node);
      if (pod && !pod.deleting && pod.hash === s.target.hash && podHealth(pod).state === "ready") {
        // Already there and healthy (e.g. the revision it came from): nothing to move.
        s.marks = setMark(s.marks, i, "d");
        events.push({ message: "node done", fields: { node, pod: pod.name, moved: "no" } });
        continue;
      }
      s.marks = setMark(s.marks, i, "i");
      inflight++;
      if (pod && !pod.deleting && pod.hash !== s.target.hash) {
        s.inflight[node] = { uid: pod.uid, since: now };
        deletes.push({ node, pod: pod.name, uid: pod.uid });
      } else {
        // On the target but not Ready yet, or its pod is going away: just wait for it.
        s.inflight[node] = { uid: "", since: now };
      }
    }
    const waveMarks = s.marks.slice(0, end);
    if (waveMarks.includes(".") || waveMarks.includes("i")) break;
    if (s.settings.bakeMs > 0) {
      s.phase = "baking";
      s.bakeUntil = now + s.settings.bakeMs;
      events.push({
        message: "wave moved, baking",
        fields: { wave: s.wave + 1, bake: seconds(s.settings.bakeMs) },
      });
      break;
    }
    gate(s, byNode, now, events);
  }
}

function stepBack(
  s: RolloutState,
  obs: Observation,
  byNode: Map<string, PodView>,
  deletes: Deletion[],
  events: StepEvent[],
): void {
  const { now } = obs;
  const { maxInFlight } = s.settings;
  const restoreTimeoutMs = s.settings.restoreTimeoutMs ?? s.settings.readyTimeoutMs;
  const prev = s.previous.hash;
  const mark = (i: number, m: Mark) => (s.undo = setMark(s.undo, i, m));

  // A node that got the target revision some other way is restored too.
  for (let i = 0; i < s.order.length; i++) {
    if (s.undo[i] === "." && byNode.get(s.order[i])?.hash === s.target.hash) mark(i, "p");
  }
  for (let i = 0; i < s.order.length; i++) {
    if (s.undo[i] !== "i") continue;
    const node = s.order[i];
    const pod = byNode.get(node);
    const rec = s.inflight[node] ?? { uid: "", since: now };
    s.inflight[node] = rec;
    const late = now - rec.since > restoreTimeoutMs;
    if (pod && !pod.deleting && pod.hash === prev) {
      const health = podHealth(pod);
      if (health.state === "ready") {
        mark(i, "d");
        delete s.inflight[node];
        events.push({ message: "node restored", fields: { node, pod: pod.name } });
        continue;
      }
      if (health.state === "starting" && !late) continue;
      const reason = health.state === "failed"
        ? `previous revision failed too: ${health.reason}`
        : `not Ready on the previous revision within ${seconds(restoreTimeoutMs)}`;
      mark(i, "f");
      s.reasons[node] = s.reasons[node] ? `${s.reasons[node]}; ${reason}` : reason;
      delete s.inflight[node];
      events.push({ message: "node not restored", fields: { node, reason } });
    } else if (late) {
      const reason = `not back on revision ${prev} within ${seconds(restoreTimeoutMs)}`;
      mark(i, "f");
      s.reasons[node] = s.reasons[node] ? `${s.reasons[node]}; ${reason}` : reason;
      delete s.inflight[node];
      events.push({ message: "node not restored", fields: { node, reason } });
    } else if (pod && !pod.deleting && pod.hash !== prev) {
      rec.uid = pod.uid;
      deletes.push({ node, pod: pod.name, uid: pod.uid });
    }
  }
  let inflight = countUndo(s.undo).inflight;
  for (let i = 0; i < s.order.length && inflight < maxInFlight; i++) {
    if (s.undo[i] !== "p") continue;
    const node = s.order[i];
    const pod = byNode.get(node);
    mark(i, "i");
    inflight++;
    if (pod && !pod.deleting && pod.hash !== prev) {
      s.inflight[node] = { uid: pod.uid, since: now };
      deletes.push({ node, pod: pod.name, uid: pod.uid });
    } else s.inflight[node] = { uid: "", since: now };
  }
  const counts = countUndo(s.undo);
  if (counts.pending === 0 && counts.inflight === 0) {
    s.phase = counts.failed > 0 ? "rollback-failed" : "rolled-back";
    s.finishedAt = now;
    events.push({
      message: counts.failed > 0 ? "rollback incomplete" : "rollback complete",
      fields: { restored: counts.done, failed: counts.failed },
    });
  }
}

/**
 * One reconcile step of a rollout (pure). In `rolling` / `baking`: judges the nodes in flight,
 * watches the nodes done, stops over budget, starts more nodes of the wave (at most maxInFlight in
 * flight) and applies the gate at the end of a wave. In `rolling-back`: restores every touched node
 * to the previous revision the same way. Final phases are returned unchanged.
 */
export function step(state: RolloutState, obs: Observation): StepResult {
  const s = cloneState(state);
  const deletes: Deletion[] = [];
  const events: StepEvent[] = [];
  const byNode = podsByNode(obs.pods);
  if (s.phase === "rolling" || s.phase === "baking") {
    stepForward(s, obs, byNode, deletes, events);
    const stopped = (s.phase as RolloutState["phase"]) === "rolling-back";
    return { state: s, deletes, events, restoreTemplate: stopped };
  }
  if (s.phase === "rolling-back") stepBack(s, obs, byNode, deletes, events);
  return { state: s, deletes, events, restoreTemplate: false };
}

/**
 * Stops a rollout in `rolling` or `baking` on an operator's request: the same rollback as over
 * budget (every touched node restored, the previous template first). Returns the state unchanged
 * (restoreTemplate false) in any other phase.
 */
export function abortRollout(state: RolloutState, obs: Observation, reason: string): StepResult {
  const s = cloneState(state);
  const events: StepEvent[] = [];
  if (s.phase !== "rolling" && s.phase !== "baking") {
    return { state: s, deletes: [], events, restoreTemplate: false };
  }
  enterRollback(s, podsByNode(obs.pods), reason, events, obs.now);
  return { state: s, deletes: [], events, restoreTemplate: true };
}
