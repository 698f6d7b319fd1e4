import assert from "node:assert/strict";
import type { StatusReport } from "../../src/stub/control.ts";
import { formatAgo, formatStatusJson, formatStatusText } from "../../src/stub/report.ts";

const base = { feature: "telemetry", node: "sw1", namespace: "sonic" };

Deno.test("elapsed times read like systemctl's", () => {
  assert.equal(formatAgo(4_200), "4s");
  assert.equal(formatAgo(182_000), "3min 2s");
  assert.equal(formatAgo(3_840_000), "1h 4min");
  assert.equal(formatAgo(2 * 86_400_000 + 3 * 3_600_000), "2 days 3h");
});

Deno.test("a running pod prints active (running) with the pod, readiness and restarts", () => {
  const report: StatusReport = {
    ...base,
    state: "running",
    code: 0,
    detail: "pod Running, container running",
    pod: {
      name: "telemetry-abcde",
      uid: "u",
      phase: "Running",
      terminating: false,
      container: "running",
      running: true,
      ready: "3/3",
      restarts: 1,
      since: "2026-11-25T20:00:00Z",
      image: "docker-sonic-telemetry:v2",
    },
  };
  const text = formatStatusText(report, Date.parse("2026-11-25T20:03:02Z"));
  const lines = text.split("\n");
  assert.equal(lines[0], "● telemetry - Kubernetes pod sonic/telemetry-abcde on node sw1");
  assert.match(lines[1], /Active: active \(running\) since 2026-11-25T20:00:00Z; 3min 2s ago/);
  assert.match(lines[2], /ready 3\/3, restarts 1, image docker-sonic-telemetry:v2/);
  const json = JSON.parse(formatStatusJson(report));
  assert.equal(json.state, "running");
  assert.equal(json.code, 0);
  assert.equal(json.asic, null);
  assert.equal(json.pod.name, "telemetry-abcde");
});

Deno.test("no pod prints inactive (dead); an unreachable API prints unknown", () => {
  const dead = formatStatusText({ ...base, state: "not-running", code: 3, detail: "no pod" });
  assert.match(dead, /^○ telemetry - no Kubernetes pod on node sw1\n +Active: inactive \(dead\)/);
  const unknown = formatStatusText({
    ...base,
    asic: "0",
    state: "unknown",
    code: 4,
    detail: "connection refused",
  });
  assert.match(unknown, /^\? telemetry@asic0 .*\n +Active: unknown/);
});
