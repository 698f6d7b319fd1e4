import assert from "node:assert/strict";
import { UsageError } from "../../src/cli.ts";
import {
  allowedFailures,
  overBudget,
  parseBudget,
  podHealth,
  podView,
} from "../../src/rollout/gate.ts";

function pod(status: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    metadata: {
      name: "telemetry-abcde",
      uid: "u1",
      labels: { "controller-revision-hash": "h2" },
      creationTimestamp: "2026-11-25T20:00:00Z",
    },
    spec: { nodeName: "sw1" },
    status,
    ...extra,
  };
}

Deno.test("gate: a Ready pod with no restarts is healthy", () => {
  const view = podView(pod({
    conditions: [{ type: "Ready", status: "True" }],
    containerStatuses: [{ ready: true, restartCount: 0, state: { running: {} } }],
  }));
  assert.equal(view.node, "sw1");
  assert.equal(view.hash, "h2");
  assert.equal(view.createdAt, Date.parse("2026-11-25T20:00:00Z"));
  assert.deepEqual(podHealth(view), { state: "ready" });
});

Deno.test("gate: OOM kill (137), CrashLoopBackOff and restarts are failures", () => {
  const oom = podView(pod({
    conditions: [{ type: "Ready", status: "True" }],
    containerStatuses: [{
      restartCount: 1,
      lastState: { terminated: { exitCode: 137, reason: "OOMKilled" } },
    }],
  }));
  assert.deepEqual(podHealth(oom), { state: "failed", reason: "OOMKilled (exit 137)" });
  const crash = podView(pod({
    containerStatuses: [{ restartCount: 3, state: { waiting: { reason: "CrashLoopBackOff" } } }],
  }));
  assert.deepEqual(podHealth(crash), { state: "failed", reason: "CrashLoopBackOff" });
  const restarted = podView(pod({
    conditions: [{ type: "Ready", status: "True" }],
    containerStatuses: [{ restartCount: 2 }],
  }));
  assert.equal(podHealth(restarted).state, "failed");
});

Deno.test("gate: a not-Ready pod is still starting (the deadline is the machine's)", () => {
  const view = podView(pod({ conditions: [{ type: "Ready", status: "False" }] }));
  assert.deepEqual(podHealth(view), { state: "starting" });
});

Deno.test("gate: an unscheduled DaemonSet pod belongs to the node of its affinity", () => {
  const view = podView({
    metadata: { name: "p", uid: "u" },
    spec: {
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{
              matchFields: [{ key: "metadata.name", operator: "In", values: ["sw9"] }],
            }],
          },
        },
      },
    },
  });
  assert.equal(view.node, "sw9");
});

Deno.test("gate: a 2% budget tolerates no failure among 10 nodes and 20 among 1000", () => {
  const budget = parseBudget("2%");
  assert.equal(allowedFailures(budget, 1), 0);
  assert.equal(allowedFailures(budget, 10), 0);
  assert.equal(allowedFailures(budget, 50), 1);
  assert.equal(allowedFailures(budget, 1000), 20);
  assert.equal(overBudget(budget, 1, 10), true);
  assert.equal(overBudget(budget, 20, 1000), false);
  assert.equal(overBudget(budget, 21, 1000), true);
});

Deno.test("gate: an absolute budget counts nodes; a bad budget is a usage error", () => {
  assert.equal(allowedFailures(parseBudget("3"), 1), 3);
  assert.throws(
    () => parseBudget("two"),
    (e) => e instanceof UsageError && /"two"/.test(e.message),
  );
  assert.throws(() => parseBudget("120%"), UsageError);
});

Deno.test("gate: the Ready condition's last transition is kept (0 when absent or unparsable)", () => {
  const at = "2026-11-25T20:00:07Z";
  const ready = podView(pod({
    conditions: [{
      type: "Initialized",
      status: "True",
      lastTransitionTime: "2026-11-25T20:00:01Z",
    }, {
      type: "Ready",
      status: "True",
      lastTransitionTime: at,
    }],
  }));
  assert.equal(ready.readySince, Date.parse(at));
  assert.equal(podView(pod({ conditions: [{ type: "Ready", status: "True" }] })).readySince, 0);
  const bad = podView(
    pod({ conditions: [{ type: "Ready", status: "False", lastTransitionTime: "x" }] }),
  );
  assert.equal(bad.readySince, 0);
  assert.equal(bad.ready, false);
});
