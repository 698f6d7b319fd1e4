// What ks-stub tells systemd (sd_notify STATUS=): the datagram reaches a real unix datagram
// socket bound to a path and to an abstract name, as one line, once per change; a bad or missing
// socket is one log line and never an exception; no NOTIFY_SOCKET, no notifier. The texts wait
// sends for each situation (unit_status.ts). The real systemd reading them back as the unit's
// Status: line is the real-switch test's (test/switch/partition_test.ts).
import assert from "node:assert/strict";
import { join } from "node:path";
import { notifyAddress, systemdNotifier } from "../../src/stub/notify.ts";
import { isoSecond, waitStatusText } from "../../src/stub/unit_status.ts";
import { createLogger } from "../../src/log.ts";
import { startNotifySocket } from "../../sandbox/harness/notify_socket.ts";
import { waitUntil } from "../../sandbox/harness/net.ts";

function recordingLog() {
  const lines: string[] = [];
  return { log: createLogger("ks-stub", "telemetry", (l) => lines.push(l)), lines };
}

Deno.test("STATUS= reaches a path socket and an abstract one, one line, once per change", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ks-notify-" });
  const abstract = `@ks-notify-test-${crypto.randomUUID()}`;
  for (const address of [join(dir, "notify"), abstract]) {
    const sock = await startNotifySocket(address);
    try {
      const { log, lines } = recordingLog();
      const notify = systemdNotifier(log, address)!;
      notify("API server unreachable since 2026-12-01T17:46:43Z\n, container running");
      notify("API server unreachable since 2026-12-01T17:46:43Z\n, container running");
      notify("pod sonic/telemetry-x7k2p on node sw1: Running, container running");
      await waitUntil(() => Promise.resolve(sock.messages().length >= 2), 10_000, "two datagrams");
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(sock.messages(), [
        "STATUS=API server unreachable since 2026-12-01T17:46:43Z , container running",
        "STATUS=pod sonic/telemetry-x7k2p on node sw1: Running, container running",
      ]);
      assert.deepEqual(lines, []);
    } finally {
      await sock.stop();
    }
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("no NOTIFY_SOCKET: no notifier; a bad or absent socket: one warning, no throw", async () => {
  assert.equal(systemdNotifier(recordingLog().log, undefined), undefined);
  assert.equal(systemdNotifier(recordingLog().log, ""), undefined);

  const bad = recordingLog();
  const relative = systemdNotifier(bad.log, "run/notify")!;
  relative("a");
  relative("b");
  assert.equal(bad.lines.length, 1, bad.lines.join("\n"));
  assert.match(bad.lines[0], /cannot tell systemd the unit's status.*not an absolute path/);

  // Nobody bound there (systemd restarting): one line; a later change is tried again.
  const dir = await Deno.makeTempDir({ prefix: "ks-notify-" });
  const path = join(dir, "notify");
  const absent = recordingLog();
  const notify = systemdNotifier(absent.log, path)!;
  notify("first");
  assert.equal(absent.lines.length, 1);
  assert.match(absent.lines[0], /sendto: errno 2\b/);
  const sock = await startNotifySocket(path);
  try {
    notify("first"); // not sent before: sent now
    await waitUntil(() => Promise.resolve(sock.messages().length === 1), 10_000, "the retry");
    assert.deepEqual(sock.messages(), ["STATUS=first"]);
    assert.equal(absent.lines.length, 1, "the failure is logged once");
  } finally {
    await sock.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("notifyAddress: sockaddr_un for a path (NUL-terminated) and an abstract name", () => {
  const path = notifyAddress("/run/systemd/notify");
  assert.ok(!(path instanceof Error));
  assert.equal(path.len, 2 + "/run/systemd/notify".length + 1);
  assert.deepEqual([...path.addr.subarray(0, 3)], [1, 0, "/".charCodeAt(0)]);
  const abs = notifyAddress("@/org/freedesktop/systemd1/notify");
  assert.ok(!(abs instanceof Error));
  assert.equal(abs.len, 3 + "/org/freedesktop/systemd1/notify".length);
  assert.deepEqual([...abs.addr.subarray(0, 4)], [1, 0, 0, "/".charCodeAt(0)]);
  assert.ok(notifyAddress("/" + "x".repeat(107)) instanceof Error);
  assert.ok(notifyAddress("/a\0b") instanceof Error);
  assert.ok(notifyAddress("vsock:2:1234") instanceof Error);
});

Deno.test("wait's status texts: following, outage (with what the runtime sees), leave, v1", () => {
  const t = Date.UTC(2026, 11, 1, 17, 46, 43, 549);
  assert.equal(isoSecond(t), "2026-12-01T17:46:43Z");
  const base = { name: "telemetry", namespace: "sonic", node: "sw1", graceMs: 10_000 };
  assert.equal(waitStatusText(base), "waiting for a telemetry pod on node sw1");
  const pod = { name: "telemetry-x7k2p", phase: "Running", container: "running" };
  assert.equal(
    waitStatusText({ ...base, pod }),
    "pod sonic/telemetry-x7k2p on node sw1: Running, container running",
  );
  assert.equal(
    waitStatusText({ ...base, pod: { ...pod, terminating: true } }),
    "pod sonic/telemetry-x7k2p on node sw1: Running, container running, terminating",
  );
  // An outage hides the pod state the stub cannot see any more.
  assert.equal(
    waitStatusText({ ...base, pod, apiDownSince: t }),
    "API server unreachable since 2026-12-01T17:46:43Z; asking the container runtime",
  );
  assert.equal(
    waitStatusText({
      ...base,
      pod,
      apiDownSince: t,
      local: { state: "running", pod: "telemetry-x7k2p", restarts: 2 },
    }),
    "API server unreachable since 2026-12-01T17:46:43Z, container running (pod" +
      " sonic/telemetry-x7k2p, restarts 2)",
  );
  assert.equal(
    waitStatusText({ ...base, apiDownSince: t, local: { state: "not-running" } }),
    "API server unreachable since 2026-12-01T17:46:43Z, no running telemetry container on node" +
      " sw1 (the kubelet restarts it)",
  );
  assert.equal(
    waitStatusText({ ...base, apiDownSince: t, apiDenied: true, local: { state: "unknown" } }),
    "API server refuses the stub's credentials since 2026-12-01T17:46:43Z, container runtime" +
      " unreachable too",
  );
  assert.equal(
    waitStatusText({ ...base, lostPod: "telemetry-x7k2p" }),
    "pod sonic/telemetry-x7k2p gone; waiting for its replacement",
  );
  assert.equal(
    waitStatusText({ ...base, noPodSince: t }),
    "no telemetry pod on node sw1 since 2026-12-01T17:46:43Z: node not selected by the" +
      " DaemonSet, or its pod not created yet; waiting for this node's instance",
  );
  assert.equal(
    waitStatusText({ ...base, v1Since: t }),
    "only telemetry's v1 pod on node sw1 since 2026-12-01T17:46:43Z: ending 10 s after unless a" +
      " telemetry pod appears",
  );
});
