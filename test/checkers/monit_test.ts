// The checkers under a real monit: stanzas rendered by src/checkers/monit.ts, checked with
// `monit -t`, run by `monit -I` every second against a private dockerd and a real redis. What
// monit reports (its log, `monit status`) and what it executes (restart_service, recorded by a
// script standing in for SONiC's) are asserted.
import assert from "node:assert/strict";
import { join } from "node:path";
import { renderContainerCheckerStanza, renderMemoryStanza } from "../../src/checkers/monit.ts";
import { toolLauncher } from "../../sandbox/harness/bin.ts";
import {
  dockerUnavailableReason,
  runDetached,
  waitForDockerRestarts,
} from "../../sandbox/harness/docker.ts";
import { importBusyboxDocker } from "../../sandbox/harness/images.ts";
import {
  monitSyntaxCheck,
  monitUnavailableReason,
  startMonit,
  writeMonitrc,
} from "../../sandbox/harness/monit.ts";
import { kubeletLabelArgs, startCheckerRuntimes } from "../../sandbox/fixtures/checker_runtimes.ts";
import { waitUntil } from "../../sandbox/harness/net.ts";

/** OOM-killed on its first start under a small limit; after the restart it only sleeps. */
const HOG_ONCE = () => `if [ -e /tmp/oomed ]; then exec sleep 600; fi; touch /tmp/oomed; ${HOG}`;
const HOG = `exec awk 'BEGIN { s = sprintf("%64000000s", "x"); print "ready"; fflush(); ` +
  `system("sleep 600"); print length(s) }'`;

Deno.test("rendered memory stanza has SONiC's shape and defaults", () => {
  assert.equal(
    renderMemoryStanza({ feature: "telemetry", thresholdBytes: 419430400 }).split("\n").slice(3)
      .join("\n"),
    `check program container_memory_telemetry with path "/usr/local/bin/ks-memory-checker telemetry 419430400"
    if status == 3 for 10 times within 20 cycles then exec "/usr/bin/restart_service telemetry" repeat every 2 cycles
`,
  );
  assert.equal(
    renderContainerCheckerStanza(),
    `check program container_checker with path "/usr/local/bin/ks-container-checker"
    if status != 0 for 5 times within 5 cycles then alert
`,
  );
});

Deno.test("rendering refuses what would break monit's quoting or rules", () => {
  assert.throws(
    () => renderMemoryStanza({ feature: 'bad"name', thresholdBytes: 1 }),
    /feature: "bad"name"/,
  );
  assert.throws(() => renderMemoryStanza({ feature: "gnmi", thresholdBytes: 0 }), /threshold/);
  assert.throws(
    () => renderMemoryStanza({ feature: "gnmi", thresholdBytes: 5, checkerArgs: ["a b"] }),
    /checker argument/,
  );
  assert.throws(
    () => renderContainerCheckerStanza({ rule: { times: 5, cycles: 2 } }),
    /5 times cannot fit within 2 cycles/,
  );
});

Deno.test({
  name: "monit -t accepts the rendered stanzas for every feature of a switch",
  ignore: monitUnavailableReason() !== undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "ksm" });
    try {
      // monit -t insists that the programs exist: point at the real launchers.
      const restart = join(dir, "restart_service");
      await Deno.writeTextFile(restart, "#!/bin/sh\n", { mode: 0o755 });
      const memoryChecker = await toolLauncher("ks-memory-checker");
      const stanzas = [
        renderContainerCheckerStanza({ checker: await toolLauncher("ks-container-checker") }),
        ...[["telemetry", 419430400], ["gnmi", 419430400], ["bmp", 838860800], [
          "snmp",
          4294967296,
        ]].map(([f, t]) =>
          renderMemoryStanza({
            feature: f as string,
            thresholdBytes: t as number,
            checker: memoryChecker,
            restartCommand: restart,
          })
        ),
      ];
      const rc = await writeMonitrc(dir, stanzas);
      const r = await monitSyntaxCheck(rc);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout + r.stderr, /Control file syntax OK/);
      // And monit -t does reject a broken stanza (the check can fail).
      const broken = await writeMonitrc(dir, [stanzas[1].replace("if status", "if statos")]);
      assert.notEqual((await monitSyntaxCheck(broken)).code, 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

const skip = monitUnavailableReason() ?? dockerUnavailableReason();

Deno.test({
  name:
    "monit runs both checkers: memory over threshold execs restart_service; missing container alerts",
  ignore: skip !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const runtimes = await startCheckerRuntimes({
      features: {
        database: { state: "always_enabled" },
        telemetry: { state: "enabled", set_owner: "kube" },
        gnmi: { state: "enabled", set_owner: "kube" },
        lldp: { state: "enabled" },
        snmp: { state: "enabled" },
      },
      containerd: "none",
    });
    const { redis, docker } = runtimes;
    const work = await Deno.makeTempDir({ dir: "/tmp", prefix: "ksw" });
    let monit: Awaited<ReturnType<typeof startMonit>> | undefined;
    try {
      const image = await importBusyboxDocker(docker);
      // The image the telemetry row stands for (else container_checker skips that row).
      assert.equal((await docker.docker(["tag", image, "docker-sonic-telemetry:latest"])).code, 0);
      const run = (name: string, cmd: string, extra: string[] = []) =>
        runDetached(docker, name, image, cmd, extra);
      await run("database", "exec sleep 600");
      await run("telemetry", HOG);
      // snmp is OOM-killed (137) under its 24 MiB limit once and restarted by Docker.
      await run("snmp", HOG_ONCE(), ["--memory", "24m", "--restart", "always"]);
      const uid = crypto.randomUUID();
      await run(
        `k8s_gnmi_gnmi-node1_sonic_${uid}_0`,
        "exec sleep 600",
        kubeletLabelArgs({ pod: "gnmi-node1", uid, container: "gnmi" }),
      );
      // lldp is expected but not started yet.

      // monit execs programs with a minimal PATH: wrappers pin Deno for the bundled tools.
      const wrapper = async (tool: string) => {
        const path = join(work, tool);
        await Deno.writeTextFile(
          path,
          `#!/bin/sh\nKS_DENO=${Deno.execPath()} exec ${await toolLauncher(tool)} "$@"\n`,
        );
        await Deno.chmod(path, 0o755);
        return path;
      };
      const memoryChecker = await wrapper("ks-memory-checker");
      const containerChecker = await wrapper("ks-container-checker");
      const restarts = join(work, "restarts.log");
      const restartService = join(work, "restart_service");
      await Deno.writeTextFile(restartService, `#!/bin/sh\necho "$@" >> ${restarts}\n`);
      await Deno.chmod(restartService, 0o755);

      const runtimeArgs = [
        "--docker-socket",
        docker.socketPath,
        "--cri-socket",
        "none",
        "--timeout",
        "10s",
      ];
      const rule = { times: 2, cycles: 3, repeatEvery: 2 };
      monit = await startMonit({
        stanzas: [
          renderContainerCheckerStanza({
            checker: containerChecker,
            checkerArgs: [...runtimeArgs, "--db-config", redis.env.KS_DB_CONFIG],
            rule: { times: 1, cycles: 1 },
            timeoutSeconds: 30,
          }),
          ...["telemetry", "gnmi", "snmp"].map((feature) =>
            renderMemoryStanza({
              feature,
              thresholdBytes: 30_000_000,
              checker: memoryChecker,
              checkerArgs: runtimeArgs,
              restartCommand: restartService,
              rule,
            })
          ),
        ],
      });
      const m = monit;

      await t.step(
        "the hog over its threshold: monit logs SONiC's line and execs restart_service telemetry",
        async () => {
          const log = await m.waitForLog(
            /'container_memory_telemetry' exec: '.*restart_service telemetry'/,
            30_000,
            "monit to exec restart_service telemetry",
          );
          assert.match(
            log,
            /'container_memory_telemetry' status failed \(3\) -- \[telemetry\]: Memory usage \(\d+ Bytes\) is larger than the threshold \(30000000 Bytes\)!/,
          );
          await waitUntil(
            async () => (await Deno.readTextFile(restarts).catch(() => "")).includes("telemetry"),
            30_000,
            "restart_service to be executed",
          );
          const status = await m.status("container_memory_telemetry");
          assert.match(status.stdout, /status\s+Status failed/);
          assert.match(status.stdout, /last exit value\s+3/);
        },
      );

      await t.step(
        "a kubelet-labelled container under its threshold: status ok, never restarted",
        async () => {
          const status = await m.status("container_memory_gnmi");
          assert.match(status.stdout, /status\s+OK/, status.stdout + status.stderr);
          assert.match(status.stdout, /last exit value\s+0/);
          assert.doesNotMatch(await Deno.readTextFile(restarts), /gnmi/);
        },
      );

      await t.step(
        "the container checker alerts with 'Expected containers not running: lldp'",
        async () => {
          await m.waitForLog(
            /'container_checker' status failed \(3\) -- Expected containers not running: lldp/,
            20_000,
            "monit to report lldp missing",
          );
        },
      );

      await t.step(
        "an OOM-killed (137) and restarted container: memory check OK, no restart_service",
        async () => {
          await waitForDockerRestarts(
            docker,
            "snmp",
            1,
            30_000,
            "snmp to be OOM-killed and restarted",
          );
          // Two more cycles after the restart, then ask monit.
          await new Promise((r) => setTimeout(r, 2500));
          const status = await m.status("container_memory_snmp");
          assert.match(status.stdout, /status\s+OK/, status.stdout);
          assert.match(status.stdout, /last exit value\s+0/);
          assert.doesNotMatch(await Deno.readTextFile(restarts), /snmp/);
        },
      );

      await t.step("once lldp runs, monit reports the checker succeeded", async () => {
        await run("lldp", "exec sleep 600");
        await m.waitForLog(
          /'container_checker' status succeeded/,
          20_000,
          "monit to see the container checker succeed",
        );
        const status = await m.status("container_checker");
        assert.match(status.stdout, /last exit value\s+0/);
      });
    } finally {
      await monit?.stop();
      await runtimes.stop();
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  },
});
