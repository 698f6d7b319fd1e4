import assert from "node:assert/strict";
import { hasFeatureContainer, pickPod, type Pod, summarizePod } from "../../src/stub/pod.ts";

function pod(name: string, opts: {
  containers?: string[];
  phase?: string;
  deleting?: boolean;
  created?: string;
  running?: boolean;
  ready?: boolean;
  restarts?: number;
}): Pod {
  const containers = opts.containers ?? ["telemetry", "telemetry-watchdog", "telemetry-sidecar"];
  return {
    metadata: {
      name,
      uid: `uid-${name}`,
      creationTimestamp: opts.created ?? "2026-11-25T20:00:00Z",
      deletionTimestamp: opts.deleting ? "2026-11-25T20:05:00Z" : undefined,
    },
    spec: { nodeName: "sw1", containers: containers.map((c) => ({ name: c, image: `${c}:v2` })) },
    status: {
      phase: opts.phase ?? "Running",
      startTime: "2026-11-25T20:00:01Z",
      containerStatuses: containers.map((c) => ({
        name: c,
        ready: opts.ready ?? true,
        restartCount: c === "telemetry" ? opts.restarts ?? 0 : 0,
        image: `${c}:v2`,
        state: opts.running === false
          ? { waiting: { reason: "CrashLoopBackOff" } }
          : { running: { startedAt: "2026-11-25T20:00:02Z" } },
      })),
    },
  };
}

Deno.test("a v1 sidecar-only pod is not the feature's pod", () => {
  assert.equal(
    hasFeatureContainer(pod("v1", { containers: ["telemetry-sidecar"] }), "telemetry"),
    false,
  );
  assert.equal(hasFeatureContainer(pod("v2", {}), "telemetry"), true);
  assert.equal(pickPod([pod("v1", { containers: ["telemetry-sidecar"] })], "telemetry"), undefined);
});

Deno.test("the feature container is the one raw_container_name names", () => {
  const p = pod("bmp", { containers: ["bmp", "bmp-watchdog"] });
  p.metadata.labels = { app: "frr_bmp", raw_container_name: "bmp" };
  assert.equal(hasFeatureContainer(p, "frr_bmp"), true);
  assert.equal(summarizePod(p, "frr_bmp").image, "bmp:v2");
  p.metadata.labels.raw_container_name = "other";
  assert.equal(hasFeatureContainer(p, "frr_bmp"), false);
});

Deno.test("the summary reports the feature container's state, readiness and restarts", () => {
  const s = summarizePod(pod("p", { restarts: 2 }), "telemetry");
  assert.equal(s.running, true);
  assert.equal(s.ready, "3/3");
  assert.equal(s.restarts, 2);
  assert.equal(s.since, "2026-11-25T20:00:02Z");
  assert.equal(s.image, "telemetry:v2");
  const crashing = summarizePod(pod("c", { running: false, ready: false }), "telemetry");
  assert.equal(crashing.running, false);
  assert.equal(crashing.container, "waiting (CrashLoopBackOff)");
  assert.equal(crashing.ready, "0/3");
  assert.equal(summarizePod(pod("pending", { phase: "Pending" }), "telemetry").running, false);
});

Deno.test("a live running pod wins over a terminating one, then the newest", () => {
  const old = pod("old", { deleting: true, created: "2026-11-25T19:00:00Z" });
  const fresh = pod("new", { created: "2026-11-25T20:10:00Z" });
  const older = pod("older", { created: "2026-11-25T20:01:00Z" });
  assert.equal(pickPod([old, older, fresh], "telemetry")?.metadata.name, "new");
  assert.equal(pickPod([old], "telemetry")?.metadata.name, "old");
  const pending = pod("pending", { phase: "Pending", created: "2026-11-25T20:20:00Z" });
  assert.equal(pickPod([pending, older], "telemetry")?.metadata.name, "older");
});
