import assert from "node:assert/strict";
import { abortRollout, step } from "../../src/rollout/machine.ts";
import { countMarks, countUndo, type RolloutState } from "../../src/rollout/state.ts";
import { parseWaves, waveCounts } from "../../src/rollout/waves.ts";
import { FleetSim, freshState } from "./machine_sim.ts";

interface Drive {
  state: RolloutState;
  steps: number;
  maxInFlightSeen: number;
  phases: string[];
}

/** Runs the machine against the model until a final phase (or `limit` steps). */
function drive(sim: FleetSim, state: RolloutState, limit = 10_000, stopAfter?: number): Drive {
  let now = state.startedAt;
  let maxInFlightSeen = 0;
  const phases: string[] = [state.phase];
  let steps = 0;
  sim.template = state.phase === "rolling-back" ? state.previous.hash : state.target.hash;
  while (steps < limit && !["done", "rolled-back", "rollback-failed"].includes(state.phase)) {
    if (stopAfter !== undefined && steps >= stopAfter) break;
    now += 1000;
    const result = step(state, { now, pods: sim.observe() });
    state = result.state;
    if (result.restoreTemplate) sim.template = state.previous.hash;
    sim.apply(result.deletes);
    sim.tick();
    const c = state.phase === "rolling-back" ? countUndo(state.undo) : countMarks(state.marks);
    maxInFlightSeen = Math.max(maxInFlightSeen, c.inflight);
    if (phases[phases.length - 1] !== state.phase) phases.push(state.phase);
    steps++;
  }
  return { state, steps, maxInFlightSeen, phases };
}

function deletedPerNode(sim: FleetSim, uidsByNode: Map<string, string[]>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const [node, uids] of uidsByNode) {
    counts.set(node, uids.filter((u) => sim.deletedUids.includes(u)).length);
  }
  return counts;
}

Deno.test("machine: a healthy rollout moves every node once, wave by wave, within max-in-flight", () => {
  const sim = new FleetSim({ nodes: 50 });
  const waves = waveCounts(parseWaves("1,1%,10%,50%,100%"), 50);
  const start = freshState(sim.nodes, waves, { maxInFlight: 4 });
  const originalUids = new Set(sim.observe().map((p) => p.uid));
  const run = drive(sim, start);
  assert.equal(run.state.phase, "done");
  assert.equal(countMarks(run.state.marks).done, 50);
  assert.ok(run.maxInFlightSeen <= 4, `in flight ${run.maxInFlightSeen}`);
  // Exactly the 50 original pods were deleted, each once; every node now runs "new".
  assert.equal(sim.deletedUids.length, 50);
  assert.deepEqual(new Set(sim.deletedUids), originalUids);
  assert.ok(sim.observe().every((p) => p.hash === "new" && p.ready));
});

Deno.test("machine: a revision that is never Ready stops in the canary wave and is rolled back", () => {
  const sim = new FleetSim({ nodes: 50, healthy: (_n, hash) => hash !== "new" });
  const run = drive(sim, freshState(sim.nodes, [1, 5, 25, 50], { readyTimeoutMs: 3000 }));
  assert.equal(run.state.phase, "rolled-back");
  assert.deepEqual(run.phases, ["rolling", "rolling-back", "rolled-back"]);
  assert.equal(sim.everOn.get("new")?.size, 1);
  assert.equal(countMarks(run.state.marks).failed, 1);
  assert.match(run.state.reasons[sim.nodes[0]], /not Ready within 3s/);
  assert.match(run.state.stopReason ?? "", /budget of 2%/);
  assert.ok(sim.observe().every((p) => p.hash === "old" && p.ready));
});

Deno.test("machine: a restore slower than --ready-timeout still counts within --restore-timeout", () => {
  // The new revision is never Ready (3 s bound); the previous one takes 6 steps to come back.
  const slow = () => new FleetSim({ nodes: 4, healthy: (_n, h) => h !== "new", oldReadyAfter: 6 });
  const bounded = drive(slow(), freshState(slow().nodes, [1, 4], { readyTimeoutMs: 3000 }));
  assert.equal(bounded.state.phase, "rollback-failed", "without a restore bound, the ready bound");
  assert.match(bounded.state.reasons.sw000 ?? "", /not Ready on the previous revision within 3s/);
  const settings = { readyTimeoutMs: 3000, restoreTimeoutMs: 20_000 };
  const run = drive(slow(), freshState(slow().nodes, [1, 4], settings));
  assert.equal(run.state.phase, "rolled-back");
  assert.equal(run.state.undo, "d...");
});

Deno.test("machine: 5% bad nodes stop the first wave past the budget; never more on it than the wave", () => {
  // 100 nodes, 5 bad ones; with waves 1,10,50,100 and 2% the wave holding a bad node stops.
  const bad = new Set(["sw007", "sw031", "sw048", "sw066", "sw090"]);
  const sim = new FleetSim({ nodes: 100, healthy: (n, hash) => hash !== "new" || !bad.has(n) });
  const run = drive(sim, freshState(sim.nodes, [1, 10, 50, 100], { readyTimeoutMs: 3000 }));
  assert.equal(run.state.phase, "rolled-back");
  // sw007 is in the second wave (up to 10 nodes): 1 failure > floor(2% of 10) = 0.
  assert.equal(run.state.wave, 1);
  assert.ok(sim.everOn.get("new")!.size <= 10, `${sim.everOn.get("new")!.size} nodes on new`);
  assert.deepEqual(
    run.state.order.filter((_n, i) => run.state.marks[i] === "f"),
    ["sw007"],
  );
  assert.ok(sim.observe().every((p) => p.hash === "old" && p.ready));
});

Deno.test("machine: an OOM kill during the bake fails the node and the gate", () => {
  const sim = new FleetSim({ nodes: 10 });
  let state = freshState(sim.nodes, [2, 10], { bakeMs: 5000 });
  const first = drive(sim, state, 100, 4);
  state = first.state;
  assert.equal(state.phase, "baking");
  // The canary's container is OOM-killed while baking.
  const canary = sim.pods.get(state.order[0])!;
  canary.oomKilled = true;
  canary.restarts = 1;
  const rest = drive(sim, state);
  assert.equal(rest.state.phase, "rolled-back");
  assert.equal(rest.state.reasons[state.order[0]], "OOMKilled (exit 137)");
  assert.equal(sim.everOn.get("new")!.size, 2);
});

Deno.test("machine: the gate waits for the bake to end before the next wave", () => {
  const sim = new FleetSim({ nodes: 4 });
  const run = drive(sim, freshState(sim.nodes, [1, 4], { bakeMs: 10_000 }), 100, 8);
  assert.equal(run.state.phase, "baking");
  assert.equal(run.state.wave, 0);
  assert.equal(sim.everOn.get("new")!.size, 1);
  const done = drive(sim, run.state);
  assert.equal(done.state.phase, "done");
});

Deno.test("machine: a run that crashed after recording but before deleting resumes without a double move", () => {
  const sim = new FleetSim({ nodes: 12 });
  const uidsByNode = new Map(sim.observe().map((p) => [p.node, [p.uid]]));
  let state = freshState(sim.nodes, [1, 12], { maxInFlight: 4 });
  // Steps until deletes are due in wave 2; record the state but "crash" before deleting.
  let now = 0;
  sim.template = "new";
  for (let i = 0; i < 50; i++) {
    now += 1000;
    const r = step(state, { now, pods: sim.observe() });
    state = r.state;
    if (state.wave === 1 && r.deletes.length > 0) break; // crash: these deletes never happen
    sim.apply(r.deletes);
    sim.tick();
  }
  assert.equal(countMarks(state.marks).inflight, 4);
  // Another run resumes from the recorded state; some time passes first.
  now += 1000;
  const resumed = step(state, { now, pods: sim.observe() });
  assert.equal(resumed.deletes.length, 4, "the recorded pods are deleted, by their uids");
  for (const d of resumed.deletes) assert.equal(d.uid, state.inflight[d.node].uid);
  const run = drive(sim, resumed.state);
  sim.apply(resumed.deletes);
  assert.equal(run.state.phase, "done");
  for (const [node, n] of deletedPerNode(sim, uidsByNode)) assert.equal(n, 1, node);
  assert.equal(sim.deletedUids.length, 12);
});

Deno.test("machine: a run that crashed after deleting resumes without deleting the new pods", () => {
  const sim = new FleetSim({ nodes: 8, readyAfter: 3 });
  const state = freshState(sim.nodes, [8], { maxInFlight: 8 });
  const first = drive(sim, state, 100, 1); // one step: 8 deletes done, nothing Ready yet
  assert.equal(countMarks(first.state.marks).inflight, 8);
  const resumed = step(first.state, { now: 3000, pods: sim.observe() });
  assert.equal(resumed.deletes.length, 0);
  const run = drive(sim, resumed.state);
  assert.equal(run.state.phase, "done");
  assert.equal(sim.deletedUids.length, 8);
});

Deno.test("machine: an operator's abort mid-bake restores the touched nodes only", () => {
  const sim = new FleetSim({ nodes: 10 });
  const baking = drive(sim, freshState(sim.nodes, [3, 10], { bakeMs: 60_000 }), 100, 6);
  assert.equal(baking.state.phase, "baking");
  const stopped = abortRollout(baking.state, { now: 10_000, pods: sim.observe() }, "operator");
  assert.equal(stopped.restoreTemplate, true);
  assert.equal(stopped.state.stopReason, "operator");
  assert.equal(stopped.state.undo, "ppp.......");
  const run = drive(sim, stopped.state);
  assert.equal(run.state.phase, "rolled-back");
  assert.ok(sim.observe().every((p) => p.hash === "old" && p.ready));
  // Nothing to abort once final.
  assert.equal(abortRollout(run.state, { now: 0, pods: [] }, "x").restoreTemplate, false);
});

Deno.test("machine: with --min-ready a node counts only after its pod stayed Ready that long", () => {
  const sim = new FleetSim({ nodes: 2 });
  let state = freshState(sim.nodes, [2], { minReadyMs: 3000, maxInFlight: 2 });
  sim.template = "new";
  let now = 0;
  const at = (ms: number) => {
    now = ms;
    const r = step(state, { now, pods: sim.observe() });
    state = r.state;
    sim.apply(r.deletes);
  };
  at(1000); // both old pods deleted, new ones created
  sim.tick(); // new pods Ready
  at(2000);
  assert.equal(state.marks, "ii", "Ready for 0 s is not enough");
  // sw001 flaps: not Ready again, then Ready; its clock restarts.
  sim.pods.get("sw001")!.ready = false;
  at(3500);
  sim.pods.get("sw001")!.ready = true;
  at(4000);
  assert.equal(state.marks, "ii");
  at(5000);
  assert.equal(state.marks, "di", "sw000 Ready since 2 s, held 3 s");
  at(7000);
  assert.equal(state.marks, "dd");
  assert.equal(state.phase, "done");
});

Deno.test("machine: the --min-ready clock is the new pod's own; a replacement starts it again", () => {
  const sim = new FleetSim({ nodes: 1 });
  let state = freshState(sim.nodes, [1], { minReadyMs: 3000 });
  sim.template = "new";
  const at = (now: number) => {
    const r = step(state, { now, pods: sim.observe() });
    state = r.state;
    sim.apply(r.deletes);
  };
  at(1000); // the old pod deleted, a new one created
  sim.tick();
  at(2000); // Ready: the clock starts
  // That pod is replaced (someone deletes it) by one already Ready when first seen, as a pod
  // whose previous Ready status the node agent reports at once.
  const first = sim.pods.get("sw000")!;
  sim.pods.set("sw000", { ...first, uid: "uid-replacement", name: "ds-replacement", ready: true });
  at(4500);
  at(5000); // 3 s after the first pod turned Ready, only 0.5 s after the replacement was seen
  assert.equal(state.marks, "i", "Ready time of the replaced pod does not count");
  at(7500);
  assert.equal(state.marks, "d");
});

Deno.test("machine: a Ready condition that changed between two observations restarts the clock", () => {
  const sim = new FleetSim({ nodes: 1 });
  let state = freshState(sim.nodes, [1], { minReadyMs: 3000 });
  sim.template = "new";
  const at = (now: number) => {
    const r = step(state, { now, pods: sim.observe() });
    state = r.state;
    sim.apply(r.deletes);
  };
  at(1000);
  sim.tick();
  sim.pods.get("sw000")!.readySince = 1500;
  at(2000);
  // Lost readiness and got it back between two looks: Ready again, with a later transition.
  sim.pods.get("sw000")!.readySince = 4000;
  at(4200);
  at(5000);
  assert.equal(state.marks, "i", "a brief loss of readiness that no observation saw still counts");
  at(7200);
  assert.equal(state.marks, "d");
});
