// ks-stub's runtime path against real runtimes: a private containerd whose pods crictl creates the
// way a kubelet does (the pod's labels on the sandbox, the kubelet's io.kubernetes.* labels on
// every container), and a private dockerd with dockershim's labels. status answers from them with
// no API server at all; stop and start take the runtime path when the API server refuses
// connections (a kubeconfig whose server port is closed); a runtime that is gone or hangs is 4
// within the stated bound. The bundled dist/ks-stub.js runs every step.
import assert from "node:assert/strict";
import { join } from "node:path";
import { runTool, toolCommand } from "../../sandbox/harness/bin.ts";
import {
  type Containerd,
  containerdUnavailableReason,
  crictlPath,
  startContainerd,
} from "../../sandbox/harness/containerd.ts";
import { dockerUnavailableReason, startDocker } from "../../sandbox/harness/docker.ts";
import { BUSYBOX_REF, importBusyboxDocker } from "../../sandbox/harness/images.ts";
import { freePort, waitUntil } from "../../sandbox/harness/net.ts";
import { startNotifySocket } from "../../sandbox/harness/notify_socket.ts";
import { makeCert } from "../../sandbox/harness/pki.ts";

const skip = containerdUnavailableReason() ??
  (crictlPath() ? undefined : "crictl not built (scripts/build-kube.sh)");

/** A kubeconfig whose API server refuses connections (nothing listens on its port). */
async function deadApiKubeconfig(dir: string): Promise<string> {
  const key = join(dir, "ca.key");
  const crt = join(dir, "ca.crt");
  await makeCert({ keyPath: key, certPath: crt, subject: "/CN=ks-test-ca", days: 1 });
  const path = join(dir, "dead.kubeconfig");
  await Deno.writeTextFile(
    path,
    `apiVersion: v1
kind: Config
clusters:
- name: dead
  cluster:
    server: https://127.0.0.1:${freePort()}
    certificate-authority: ${crt}
users:
- name: stub
  user:
    token: not-a-real-token
contexts:
- name: dead
  context: {cluster: dead, user: stub}
current-context: dead
`,
  );
  return path;
}

/** A pod as the kubelet runs it for ks-render's DaemonSet: feature + watchdog containers. */
function featurePod(
  c: Containerd,
  name: string,
  labels: Record<string, string>,
  containers = ["telemetry", "telemetry-watchdog"],
) {
  return c.runPod({
    name,
    labels,
    containers: containers.map((n) => ({ name: n, command: ["sleep", "3600"] })),
  });
}

async function containerState(c: Containerd, id: string): Promise<string> {
  const r = await c.crictl(["inspect", "-o", "json", id]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout).status.state;
}

Deno.test({
  name: "ks-stub status/stop/start through containerd's CRI, with no API server",
  ignore: skip !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
}, async (t) => {
  const c = await startContainerd();
  const dir = await Deno.makeTempDir({ prefix: "ks-stub-runtime-" });
  try {
    const deadApi = await deadApiKubeconfig(dir);
    const stub = (args: string[], env: Record<string, string> = {}) =>
      runTool("ks-stub", [...args, "--node", "sw1", "--kubeconfig", deadApi], {
        env: { KS_RUNTIME_SOCKET: c.socketPath, ...env },
      });
    const telemetry = await featurePod(c, "telemetry-x7k2p", {
      app: "telemetry",
      raw_container_name: "telemetry",
    });
    // ks-render's v1 stage: the sidecar only, no raw_container_name.
    await featurePod(c, "gnmi-v1abc", { app: "gnmi" }, ["gnmi-sidecar"]);
    await featurePod(c, "bgp-asic1-q9z", {
      app: "bgp",
      raw_container_name: "bgp",
      asic: "1",
    }, ["bgp"]);

    await t.step(
      "status 0 from the runtime: the kubelet's labels, same text and JSON",
      async () => {
        const text = await stub(["telemetry", "status"]);
        assert.equal(text.code, 0, text.stdout + text.stderr);
        assert.match(
          text.stdout,
          /^● telemetry - Kubernetes pod sonic\/telemetry-x7k2p on node sw1/,
        );
        assert.match(text.stdout, /Active: active \(running\) since \S+; \d+s ago/);
        assert.match(text.stdout, /Pod: pod Running, container running, ready 2\/2, restarts 0/);
        const json = await stub(["telemetry", "status", "--output", "json"]);
        assert.equal(json.code, 0, json.stderr);
        const report = JSON.parse(json.stdout);
        assert.equal(report.state, "running");
        assert.equal(report.source, "runtime");
        assert.equal(report.pod.uid, telemetry.uid);
        assert.equal(report.pod.name, "telemetry-x7k2p");
        assert.match(report.pod.image, /busybox/);
        // The API server was never asked: its port is closed and nothing was logged about it.
        assert.doesNotMatch(json.stderr, /API server/);
      },
    );

    await t.step("status 3: another feature, a v1 sidecar-only pod, the wrong ASIC", async () => {
      assert.equal((await stub(["lldp", "status"])).code, 3);
      const v1 = await stub(["gnmi", "status"]);
      assert.equal(v1.code, 3, v1.stdout);
      assert.match(v1.stdout, /inactive \(dead\)/);
      assert.equal((await stub(["bgp", "status", "asic1"])).code, 0);
      assert.equal((await stub(["bgp", "status", "0"])).code, 3);
      assert.equal((await stub(["bgp", "status"])).code, 3, "the global instance is not ASIC 1's");
    });

    await t.step(
      "wait through an API outage: blocks, says what the runtime sees (log and STATUS=), ends 0 on SIGTERM",
      async () => {
        const pod = await featurePod(c, "ntp-w4it", { app: "ntp", raw_container_name: "ntp" }, [
          "ntp",
        ]);
        // systemd's notify socket, as a unit with NotifyAccess= gets it.
        const notify = await startNotifySocket(join(dir, "notify"));
        const child = (await toolCommand("ks-stub", [
          "ntp",
          "wait",
          "--node",
          "sw1",
          "--kubeconfig",
          deadApi,
          "--grace",
          "1s",
        ], {
          stdout: "null",
          stderr: "piped",
          env: { KS_RUNTIME_SOCKET: c.socketPath, NOTIFY_SOCKET: notify.address },
        })).spawn();
        let stderr = "";
        const reading = (async () => {
          const dec = new TextDecoder();
          for await (const chunk of child.stderr) stderr += dec.decode(chunk);
        })();
        let exited = false;
        const status = child.status.finally(() => (exited = true));
        try {
          await waitUntil(
            () => Promise.resolve(/the container runs on this node/.test(stderr)),
            30_000,
            "wait reporting the running container",
            200,
          );
          // The container stops (the kubelet would restart it): wait says so and stays.
          const stop = await c.crictl(["stop", pod.containerIds.ntp]);
          assert.equal(stop.code, 0, stop.stderr);
          await waitUntil(
            () => Promise.resolve(/no running container on this node/.test(stderr)),
            30_000,
            "wait reporting the stopped container",
            200,
          );
          assert.equal(exited, false, "an API outage never ends wait");
          await waitUntil(
            () => Promise.resolve(notify.messages().some((m) => /no running ntp/.test(m))),
            10_000,
            "STATUS= for the stopped container",
            100,
          );
          child.kill("SIGTERM");
          assert.equal((await status).code, 0);
          await reading;
          assert.match(stderr, /API server call failed; retrying/);
          assert.match(stderr, /wait ended by signal/);
          const since = "since \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ";
          const messages = notify.messages();
          assert.match(messages[0], new RegExp(`^STATUS=API server unreachable ${since}; asking`));
          assert.ok(
            messages.some((m) =>
              new RegExp(
                `^STATUS=API server unreachable ${since}, container running \\(pod sonic/ntp-w4it, restarts 0\\)$`,
              ).test(m)
            ),
            messages.join("\n"),
          );
          assert.match(
            messages.at(-1)!,
            new RegExp(
              `^STATUS=API server unreachable ${since}, no running ntp container on node sw1 \\(the kubelet restarts it\\)$`,
            ),
          );
          assert.equal(new Set(messages).size, messages.length, "each status sent once");
        } finally {
          if (!exited) child.kill("SIGKILL");
          await status;
          await notify.stop();
        }
      },
    );

    await t.step("start with the API server refusing: 0 at once, seen in the runtime", async () => {
      const out = await stub(["telemetry", "start"]);
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.stderr, /already running; nothing to do .*seen_by=runtime/);
    });

    await t.step(
      "stop with the API server refusing: the container is stopped through the CRI",
      async () => {
        const id = telemetry.containerIds.telemetry;
        const out = await stub(["telemetry", "stop", "--timeout", "12s"]);
        assert.equal(out.code, 0, out.stderr);
        const lines = out.stderr.split("\n").filter((l) => /stopping the container/.test(l));
        assert.equal(lines.length, 1, out.stderr);
        assert.match(lines[0], /path=runtime/);
        assert.match(lines[0], /why="API server unreachable: .*(refused|ECONNREFUSED)/i);
        assert.equal(await containerState(c, id), "CONTAINER_EXITED");
        // The watchdog container of the same pod is left alone.
        assert.equal(
          await containerState(c, telemetry.containerIds["telemetry-watchdog"]),
          "CONTAINER_RUNNING",
        );
        const status = await stub(["telemetry", "status"]);
        assert.equal(status.code, 3, status.stdout);
        assert.match(status.stdout, /container terminated \(exited\), ready 1\/2/);
        const again = await stub(["telemetry", "stop"]);
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stderr, /no running container on this node; nothing to stop/);
      },
    );

    await t.step(
      "start with the API server refusing and no container running: 0 at its deadline",
      async () => {
        const t0 = Date.now();
        const out = await stub(["telemetry", "start", "--timeout", "2s"]);
        assert.equal(out.code, 0, out.stderr);
        assert.match(out.stderr, /API server unreachable and the container not running yet/);
        assert.ok(Date.now() - t0 < 10_000, `start took ${Date.now() - t0} ms`);
      },
    );

    await t.step("a runtime that is gone: status 4 at once, stop 1 in one line", async () => {
      const gone = join(dir, "gone.sock");
      const t0 = Date.now();
      const out = await stub(["telemetry", "status", "--runtime-socket", `unix://${gone}`]);
      assert.equal(out.code, 4, out.stdout + out.stderr);
      assert.match(out.stdout, /Active: unknown \(container runtime unreachable\)/);
      assert.match(out.stdout, /ENOENT/);
      assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
      const stop = await stub(["telemetry", "stop"], { KS_RUNTIME_SOCKET: gone });
      assert.equal(stop.code, 1, stop.stderr);
      const errors = stop.stderr.split("\n").filter((l) => /ERROR/.test(l));
      assert.equal(errors.length, 1, stop.stderr);
      assert.match(errors[0], /both unreachable/);
    });

    await t.step("a runtime that accepts and never answers: status 4 within 2 s", async () => {
      const path = join(dir, "hung.sock");
      const listener = Deno.listen({ transport: "unix", path });
      const held: Deno.Conn[] = [];
      (async () => {
        for await (const conn of listener) held.push(conn);
      })().catch(() => {});
      try {
        const t0 = Date.now();
        const out = await stub(["telemetry", "status", "--runtime-socket", path]);
        const took = Date.now() - t0;
        assert.equal(out.code, 4, out.stdout + out.stderr);
        assert.match(out.stdout, /no answer within 2000 ms/);
        // 2 s of silence plus the tool's start-up, on a loaded machine.
        assert.ok(took < 8000, `took ${took} ms`);
      } finally {
        listener.close();
        for (const conn of held) conn.close();
      }
    });

    await t.step(
      "a bad --runtime-socket or --runtime is a usage error (status: 4, stop: 2)",
      async () => {
        // status keeps LSB's codes (a usage error is 4, never 1 or 2); the other verbs exit 2.
        const rel = await stub(["telemetry", "status", "--runtime-socket", "relative.sock"]);
        assert.equal(rel.code, 4, rel.stderr);
        assert.match(rel.stderr, /--runtime-socket: "relative.sock" is not an absolute/);
        const kind = await stub(["telemetry", "stop", "--runtime", "rkt"]);
        assert.equal(kind.code, 2, kind.stderr);
        assert.match(kind.stderr, /--runtime: "rkt" is not cri or docker/);
      },
    );
  } finally {
    await c.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test({
  name: "ks-stub status/stop through the Docker Engine API (a kubelet on Docker's labels)",
  ignore: dockerUnavailableReason() !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const docker = await startDocker();
  try {
    await importBusyboxDocker(docker);
    const uid = crypto.randomUUID();
    const pod = [
      "--label",
      "io.kubernetes.pod.namespace=sonic",
      "--label",
      "io.kubernetes.pod.name=telemetry-d0ck3",
      "--label",
      `io.kubernetes.pod.uid=${uid}`,
    ];
    const sandbox = await docker.docker([
      "run",
      "-d",
      "--name",
      `k8s_POD_telemetry-d0ck3_sonic_${uid}_0`,
      ...pod,
      "--label",
      "io.kubernetes.docker.type=podsandbox",
      "--label",
      "app=telemetry",
      "--label",
      "raw_container_name=telemetry",
      BUSYBOX_REF,
      "sleep",
      "3600",
    ]);
    assert.equal(sandbox.code, 0, sandbox.stderr);
    const sandboxId = sandbox.stdout.trim();
    const feature = await docker.docker([
      "run",
      "-d",
      "--name",
      `k8s_telemetry_telemetry-d0ck3_sonic_${uid}_0`,
      ...pod,
      "--label",
      "io.kubernetes.docker.type=container",
      "--label",
      `io.kubernetes.sandbox.id=${sandboxId}`,
      "--label",
      "io.kubernetes.container.name=telemetry",
      "--label",
      "annotation.io.kubernetes.container.restartCount=2",
      BUSYBOX_REF,
      "sleep",
      "3600",
    ]);
    assert.equal(feature.code, 0, feature.stderr);
    const env = { KS_RUNTIME: "docker", KS_RUNTIME_SOCKET: docker.socketPath };
    const status = await runTool("ks-stub", [
      "telemetry",
      "status",
      "--node",
      "sw1",
      "--output",
      "json",
    ], { env });
    assert.equal(status.code, 0, status.stdout + status.stderr);
    const report = JSON.parse(status.stdout);
    assert.equal(report.pod.name, "telemetry-d0ck3");
    assert.equal(report.pod.uid, uid);
    assert.equal(report.pod.restarts, 2);
    assert.equal(report.pod.ready, "1/1");
    const stop = await runTool("ks-stub", [
      "telemetry",
      "stop",
      "--node",
      "sw1",
      "--kubeconfig",
      "/nonexistent/kubeconfig",
    ], { env });
    // No kubeconfig is not an outage: stop refuses in one line (bad input) rather than guessing.
    assert.equal(stop.code, 2, stop.stderr);
    assert.match(stop.stderr, /cannot use the kubeconfig/);
    const dir = await Deno.makeTempDir({ prefix: "ks-stub-docker-" });
    try {
      const deadApi = await deadApiKubeconfig(dir);
      const stopped = await runTool("ks-stub", [
        "telemetry",
        "stop",
        "--node",
        "sw1",
        "--kubeconfig",
        deadApi,
        // busybox's sleep as PID 1 ignores SIGTERM: a short grace (timeout - the call's margin).
        "--timeout",
        "12s",
      ], { env });
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.match(stopped.stderr, /stopping the container through the runtime.*path=runtime/);
      const state = await docker.docker([
        "inspect",
        "-f",
        "{{.State.Status}}",
        feature.stdout.trim(),
      ]);
      assert.equal(state.stdout.trim(), "exited");
      const after = await runTool("ks-stub", ["telemetry", "status", "--node", "sw1"], { env });
      assert.equal(after.code, 3, after.stdout);
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  } finally {
    await docker.stop();
  }
});
