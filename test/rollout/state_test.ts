import assert from "node:assert/strict";
import {
  decideAbort,
  decideClaim,
  decodeState,
  encodeState,
  holderIsDeadHere,
  StateError,
} from "../../src/rollout/state.ts";
import { freshState } from "./machine_sim.ts";

Deno.test("state: the annotation round-trips and stays small for 1000 nodes", () => {
  const order = Array.from({ length: 1000 }, (_, i) => `switch-${String(i).padStart(4, "0")}`);
  const state = freshState(order, [1, 10, 100, 500, 1000]);
  const text = encodeState(state);
  assert.deepEqual(decodeState(text), state);
  // Annotations may hold 256 KiB in total; one character per node keeps the state far below.
  assert.ok(text.length < 32_000, `${text.length} bytes`);
  assert.equal(decodeState(undefined), undefined);
});

Deno.test("state: a corrupt or foreign annotation is an error, never 'no rollout'", () => {
  assert.throws(() => decodeState("{not json"), StateError);
  assert.throws(() => decodeState(JSON.stringify({ v: 2 })), /unknown version/);
  const state = freshState(["a", "b"], [2]);
  assert.throws(() => decodeState(JSON.stringify({ ...state, marks: "." })), /marks/);
});

Deno.test("state: a second run with another target is refused while a rollout is unfinished", () => {
  const state = freshState(["a"], [1]);
  state.heartbeat = 1000;
  const d = decideClaim(state, "d-other", "host/2", 2000, 30_000, () => false);
  assert.equal(d.action, "refuse");
  assert.match((d as { reason: string }).reason, /conflicting rollout r1 to manifest\.yaml/);
  // Even an abandoned one: a different target never silently replaces it.
  assert.equal(
    decideClaim(state, "d-other", "host/2", 10_000_000, 30_000, () => true).action,
    "refuse",
  );
});

Deno.test("state: the same target resumes after the holder died or its lease expired, not before", () => {
  const state = freshState(["a"], [1]);
  state.heartbeat = 1000;
  assert.equal(decideClaim(state, "d-new", "host/2", 2000, 30_000, () => false).action, "refuse");
  assert.deepEqual(decideClaim(state, "d-new", "host/2", 2000, 30_000, () => true), {
    action: "resume",
    takeover: true,
  });
  assert.deepEqual(decideClaim(state, "d-new", "host/2", 40_000, 30_000, () => false), {
    action: "resume",
    takeover: true,
  });
  assert.deepEqual(decideClaim(state, "d-new", "host/1", 2000, 30_000, () => false), {
    action: "resume",
    takeover: false,
  });
  state.phase = "rolled-back";
  assert.equal(decideClaim(state, "d-other", "host/2", 2000, 30_000).action, "start");
});

Deno.test("state: a holder on this host is dead when its process is gone", async () => {
  const host = Deno.hostname();
  const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
  try {
    // A live process that is not a ks-rollout does not hold the rollout either.
    assert.equal(holderIsDeadHere(`${host}/${child.pid}`), true);
    assert.equal(holderIsDeadHere(`other-host/${child.pid}`), false);
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
  assert.equal(holderIsDeadHere(`${host}/${child.pid}`), true);
});

Deno.test("state: abort takes over only a rollout whose run is gone, and only an unfinished one", () => {
  const state = freshState(["a"], [1]);
  state.heartbeat = 1000;
  assert.equal(decideAbort(state, "host/2", 2000, 30_000, () => false).action, "refuse");
  assert.deepEqual(decideAbort(state, "host/2", 2000, 30_000, () => true), {
    action: "resume",
    takeover: true,
  });
  assert.equal(decideAbort(state, "host/2", 40_000, 30_000, () => false).action, "resume");
  state.phase = "done";
  assert.match(
    (decideAbort(state, "host/2", 2000, 30_000, () => true) as { reason: string }).reason,
    /no rollout in progress/,
  );
});
