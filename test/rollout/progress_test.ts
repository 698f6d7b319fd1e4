import assert from "node:assert/strict";
import { progressLine, statusText, summarize } from "../../src/rollout/progress.ts";
import { freshState } from "./machine_sim.ts";

Deno.test("progress: counts per wave, failures with reasons and a time-left estimate", () => {
  const order = Array.from({ length: 10 }, (_, i) => `sw${i}`);
  const state = freshState(order, [1, 4, 10]);
  state.startedAt = 0;
  state.heartbeat = 9_000;
  state.wave = 2;
  state.marks = "ddfdi.....";
  state.reasons = { sw2: "not Ready within 5s" };
  const p = summarize(state, 10_000);
  assert.equal(p.done, 3);
  assert.equal(p.failed, 1);
  assert.equal(p.inflight, 1);
  assert.equal(p.pending, 5);
  assert.deepEqual(p.waves.map((w) => w.status), ["passed", "passed", "rolling"]);
  assert.deepEqual(p.waves.map((w) => w.size), [1, 3, 6]);
  assert.deepEqual(p.failures, [{ node: "sw2", reason: "not Ready within 5s" }]);
  // 4 nodes settled in 10 s -> 2.5 s a node, 6 left.
  assert.equal(p.etaMs, 15_000);
  assert.match(
    progressLine(p),
    /^wave 3\/3 rolling: 3\/10 done, 1 failed, 1 in flight, 5 pending; about 15s left$/,
  );
  const text = statusText("telemetry", p);
  assert.match(text, /failed sw2: not Ready within 5s/);
  assert.match(text, /wave 3:\s+6 nodes \(up to 10\)\s+rolling/);
});

Deno.test("progress: a rolled-back rollout shows why it stopped and the rollback counts", () => {
  const state = freshState(["a", "b", "c"], [1, 3]);
  state.phase = "rolled-back";
  state.marks = "f..";
  state.undo = "d..";
  state.stopReason = "1 of 1 nodes failed";
  state.finishedAt = 5000;
  const p = summarize(state, 60_000);
  assert.equal(p.etaMs, undefined);
  assert.deepEqual(p.rollback, { pending: 0, inflight: 0, done: 1, failed: 0 });
  assert.match(statusText("telemetry", p), /stopped: 1 of 1 nodes failed/);
  assert.equal(p.elapsedMs, 5000);
});
