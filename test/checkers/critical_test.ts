// system-health's view of Kubernetes-run containers (ks-container-checker --system-health): the
// parsers against SONiC's file formats, and the exec paths for real: a CRI container (ExecSync
// through a private containerd, started as a kubelet would) and a kubelet-labelled Docker
// container (Docker's exec API). Inside them `supervisorctl` is a busybox script printing the
// status lines a test sets, a stand-in for Debian's supervisorctl; the real supervisord is
// exercised on the real switch (test/switch/health_test.ts).
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  healthLines,
  parseCriticalProcesses,
  parseSupervisorctlStatus,
} from "../../src/checkers/critical.ts";
import { runDetached } from "../../sandbox/harness/docker.ts";
import { importBusyboxDocker } from "../../sandbox/harness/images.ts";
import { runTool } from "../../sandbox/harness/bin.ts";
import {
  checkerRuntimesUnavailableReason,
  kubeletLabelArgs,
  runContainerChecker,
  startCheckerRuntimes,
  tagCriImage,
} from "../../sandbox/fixtures/checker_runtimes.ts";

Deno.test("critical_processes: program entries only, as the service checker reads them", () => {
  assert.deepEqual(
    parseCriticalProcesses(
      "program:telemetry\ngroup:dialout\n\n  program: gnmi-native \nprogram:\n",
    ),
    ["telemetry", "gnmi-native"],
  );
  assert.deepEqual(parseCriticalProcesses(""), []);
});

Deno.test("supervisorctl status lines: name -> state", () => {
  const s = parseSupervisorctlStatus(
    "telemetry                        RUNNING   pid 67, uptime 1:03:56\n" +
      "critical-exit                    STOPPED   Dec 01 11:00 AM\n\nbroken\n",
  );
  assert.equal(s.get("telemetry"), "RUNNING");
  assert.equal(s.get("critical-exit"), "STOPPED");
  assert.equal(s.has("broken"), false);
  assert.deepEqual(
    healthLines([{ name: "telemetry", ok: true }, {
      name: "telemetry/telemetry",
      ok: false,
      message: "Process 'telemetry' in container 'telemetry' is not running",
    }]),
    [
      "Services",
      "telemetry:OK",
      "telemetry/telemetry:Process 'telemetry' in container 'telemetry' is not running",
    ],
  );
});

const skip = checkerRuntimesUnavailableReason();

/** A container that looks like a SONiC feature to the check: critical_processes, supervisorctl. */
const FEATURE_CMD = "mkdir -p /etc/supervisor && " +
  "echo program:telemetry > /etc/supervisor/critical_processes && " +
  "echo 'telemetry                        RUNNING   pid 7, uptime 0:00:01' > /tmp/status && " +
  "printf '#!/bin/sh\\ncat /tmp/status\\n' > /bin/supervisorctl && " +
  "chmod 755 /bin/supervisorctl && exec sleep 600";

Deno.test({
  name:
    "--system-health: Kubernetes containers and their critical processes, through the CRI and Docker",
  ignore: skip !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const runtimes = await startCheckerRuntimes({
      features: {
        lldp: { state: "enabled" },
        telemetry: { state: "enabled", set_owner: "kube" },
        gnmi: { state: "enabled", set_owner: "kube" },
        restapi: { state: "enabled" },
        bmp: { state: "disabled" },
      },
    });
    const { redis, docker, containerd } = runtimes;
    const health = () =>
      runContainerChecker(redis, { docker: docker.socketPath, cri: containerd.socketPath }, [
        "--system-health",
      ]);
    try {
      const image = await importBusyboxDocker(docker);
      await tagCriImage(containerd, "registry:5000/docker-sonic-telemetry:2");
      // lldp native: the service checker's own, not reported here.
      assert.equal(
        (await docker.docker(["run", "-d", "--name", "lldp", image, "sleep", "600"])).code,
        0,
      );
      const pod = await containerd.runPod({
        name: "telemetry-sw1",
        containers: [{ name: "telemetry", command: ["sh", "-c", FEATURE_CMD] }],
      });
      const uid = crypto.randomUUID();
      await runDetached(
        docker,
        `k8s_gnmi_gnmi-sw1_sonic_${uid}_0`,
        image,
        FEATURE_CMD.replaceAll("telemetry", "gnmi"),
        kubeletLabelArgs({ pod: "gnmi-sw1", uid, container: "gnmi" }),
      );
      await new Promise((r) => setTimeout(r, 1500)); // the containers write their files

      await t.step(
        "all running: every object OK; restapi (whitelisted, not running) reported",
        async () => {
          const r = await health();
          assert.equal(r.code, 0, r.stderr);
          assert.equal(
            r.stdout,
            [
              "Services",
              "gnmi:OK",
              "gnmi/gnmi:OK",
              "restapi:Container 'restapi' is not running",
              "telemetry:OK",
              "telemetry/telemetry:OK",
              "",
            ].join("\n"),
          );
        },
      );

      await t.step(
        "a critical process not RUNNING in the CRI container: the service checker's message",
        async () => {
          const set = await containerd.crictl([
            "exec",
            "-s",
            pod.containerIds.telemetry,
            "sh",
            "-c",
            "echo 'telemetry                        EXITED    Dec 01 11:00 AM' > /tmp/status",
          ]);
          assert.equal(set.code, 0, set.stderr);
          const r = await health();
          assert.match(
            r.stdout,
            /^telemetry\/telemetry:Process 'telemetry' in container 'telemetry' is not running$/m,
          );
          assert.match(r.stdout, /^gnmi\/gnmi:OK$/m);
        },
      );

      await t.step(
        "the Kubernetes container gone: Container 'telemetry' is not running",
        async () => {
          assert.equal(
            (await containerd.crictl(["stop", "-t", "0", pod.containerIds.telemetry])).code,
            0,
          );
          const r = await health();
          assert.match(r.stdout, /^telemetry:Container 'telemetry' is not running$/m);
          assert.doesNotMatch(r.stdout, /^telemetry\/telemetry:/m);
        },
      );

      await t.step(
        "Docker's exec path: a process state in the kubelet-labelled container",
        async () => {
          const set = await docker.docker([
            "exec",
            `k8s_gnmi_gnmi-sw1_sonic_${uid}_0`,
            "sh",
            "-c",
            "echo 'gnmi                             STOPPED   Dec 01 11:00 AM' > /tmp/status",
          ]);
          assert.equal(set.code, 0, set.stderr);
          const r = await health();
          assert.match(r.stdout, /^gnmi\/gnmi:Process 'gnmi' in container 'gnmi' is not running$/m);
        },
      );

      await t.step("CONFIG_DB unreadable: one object naming it, exit 1", async () => {
        const r = await runTool("ks-container-checker", [
          "--system-health",
          "--db-config",
          join(redis.dir, "missing.json"),
        ]);
        assert.equal(r.code, 1);
        assert.match(
          r.stdout,
          /^Services\nks-container-checker:Cannot check containers: .*missing\.json/,
        );
      });
    } finally {
      await runtimes.stop();
    }
  },
});
