// ks-memory-checker end to end: real containers in a private dockerd and a private containerd
// (pods through the CRI with crictl), a real memory hog (busybox awk holding a 64 MB string)
// crossing the threshold, a real OOM kill (exit 137) under a memory limit and the restart after
// it, and a container removed while the checker is reading it.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  dockerUnavailableReason,
  runDetached,
  startDocker,
  waitForDockerRestarts,
} from "../../sandbox/harness/docker.ts";
import {
  containerdUnavailableReason,
  crictlPath,
  startContainerd,
} from "../../sandbox/harness/containerd.ts";
import { importBusyboxDocker } from "../../sandbox/harness/images.ts";
import { runTool } from "../../sandbox/harness/bin.ts";
import { eventdUnavailableReason, startEventd } from "../../sandbox/harness/eventd.ts";
import { waitUntil } from "../../sandbox/harness/net.ts";
import { checkMemory } from "../../src/checkers/memory_check.ts";
import { CriClient } from "../../src/checkers/cri.ts";

const TOOL = "ks-memory-checker";
const HOG_BYTES = 64_000_000;
/** PID 1 holds a 64 MB string, says "ready", then sleeps. */
const HOG = `exec awk 'BEGIN { s = sprintf("%${HOG_BYTES}s", "x"); print "ready"; fflush(); ` +
  `system("sleep 600"); print length(s) }'`;
/** OOM-killed on its first start under a small limit; after a restart it only sleeps. */
const HOG_ONCE = `if [ -e /tmp/oomed ]; then exec sleep 600; fi; touch /tmp/oomed; ${HOG}`;

const skip = dockerUnavailableReason() ?? containerdUnavailableReason() ??
  (crictlPath() ? undefined : "crictl not built (scripts/build-kube.sh)");

const OVER =
  /^\[(\S+)\]: Memory usage \((\d+) Bytes\) is larger than the threshold \((\d+) Bytes\)!\n$/;

Deno.test({
  name: "ks-memory-checker against real Docker and containerd containers",
  ignore: skip !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const docker = await startDocker();
    const containerd = await startContainerd().catch(async (e) => {
      await docker.stop();
      throw e;
    });
    const endpoints = { docker: docker.socketPath, cri: containerd.socketPath, timeoutMs: 10_000 };
    // Generous runtime timeout: the suite shares 2 cores with every other suite.
    const env = { KS_CHECK_TIMEOUT: "10s" };
    const check = (args: string[]) =>
      runTool(TOOL, [
        "--docker-socket",
        docker.socketPath,
        "--cri-socket",
        containerd.socketPath,
        ...args,
      ], { env });
    try {
      const image = await importBusyboxDocker(docker);
      const dockerRun = (name: string, cmd: string, extra: string[] = []) =>
        runDetached(docker, name, image, cmd, extra);
      const waitReady = (name: string) =>
        waitUntil(
          async () => (await docker.docker(["logs", name])).stdout.includes("ready"),
          20_000,
          `${name} to allocate its memory`,
          100,
        );

      await t.step("a native Docker container under its threshold: exit 0, no output", async () => {
        await dockerRun("lldp", "exec sleep 600");
        const r = await check(["lldp", "104857600"]);
        assert.equal(r.stdout, "");
        assert.equal(r.code, 0, r.stderr);
        const j = JSON.parse((await check(["lldp", "104857600", "--output", "json"])).stdout);
        assert.equal(j.status, "under");
        assert.equal(j.container.runtime, "docker");
        assert.equal(j.cgroup.version, 1);
        assert.ok(j.cgroup.dir.endsWith(`/${j.container.id}`), j.cgroup.dir);
        assert.ok(j.memory.net > 0 && j.memory.net < 10_000_000, JSON.stringify(j.memory));
      });

      await t.step(
        "a native Docker container whose hog crosses the threshold: exit 3 and SONiC's line",
        async () => {
          const id = await dockerRun("snmp", HOG);
          await waitReady("snmp");
          const r = await check(["snmp", "30000000"]);
          assert.equal(r.code, 3, r.stdout + r.stderr);
          const m = OVER.exec(r.stdout);
          assert.ok(m, r.stdout);
          assert.equal(m[1], "snmp");
          assert.equal(m[3], "30000000");
          // The figure is usage_in_bytes - total_inactive_file of the container's own cgroup.
          const dir = `/sys/fs/cgroup/memory/docker/${id}`;
          const usage = Number(await Deno.readTextFile(join(dir, "memory.usage_in_bytes")));
          const stat = await Deno.readTextFile(join(dir, "memory.stat"));
          const inactive = Number(/^total_inactive_file (\d+)$/m.exec(stat)![1]);
          assert.ok(Math.abs(Number(m[2]) - (usage - inactive)) < 2_000_000, `${m[2]} vs ${usage}`);
          assert.ok(Number(m[2]) > HOG_BYTES, m[2]);
          // The same container under a higher threshold is fine.
          assert.equal((await check(["snmp", "200000000"])).code, 0);
        },
      );

      await t.step(
        "a kubelet-labelled Docker container is found by io.kubernetes.container.name",
        async () => {
          const uid = crypto.randomUUID();
          const labels = [
            "io.kubernetes.pod.namespace=sonic",
            "io.kubernetes.pod.name=gnmi-node1",
            `io.kubernetes.pod.uid=${uid}`,
          ];
          const l = (xs: string[]) => xs.flatMap((x) => ["--label", x]);
          await dockerRun(`k8s_POD_gnmi-node1_sonic_${uid}_0`, "exec sleep 600", [
            ...l([...labels, "io.kubernetes.docker.type=podsandbox"]),
            ...l(["io.kubernetes.container.name=POD"]),
          ]);
          await dockerRun(`k8s_gnmi_gnmi-node1_sonic_${uid}_0`, HOG, [
            ...l([...labels, "io.kubernetes.docker.type=container"]),
            ...l(["io.kubernetes.container.name=gnmi"]),
          ]);
          await waitReady(`k8s_gnmi_gnmi-node1_sonic_${uid}_0`);
          const r = await check(["gnmi", "30000000"]);
          assert.equal(r.code, 3, r.stdout + r.stderr);
          assert.match(r.stdout, /^\[gnmi\]: Memory usage \(\d+ Bytes\)/);
        },
      );

      await t.step(
        "a kubelet (CRI) container found by its labels: under 0, hog over 3, kubepods cgroup",
        async () => {
          const pod = await containerd.runPod({
            name: "telemetry-node1",
            containers: [
              { name: "telemetry", command: ["sh", "-c", HOG] },
              { name: "watchdog", command: ["sleep", "600"] },
            ],
          });
          const under = JSON.parse(
            (await check(["watchdog", "30000000", "--output", "json"])).stdout,
          );
          assert.equal(under.status, "under");
          assert.equal(under.container.runtime, "cri");
          assert.equal(under.container.id, pod.containerIds.watchdog);
          assert.match(under.cgroup.dir, new RegExp(`/kubepods/besteffort/pod${pod.uid}/`));
          let last = "";
          await waitUntil(
            async () => {
              const r = await check(["telemetry", "30000000"]);
              last = r.stdout + r.stderr;
              return r.code === 3;
            },
            20_000,
            "the CRI hog to cross the threshold",
            200,
          );
          assert.match(
            last,
            /^\[telemetry\]: Memory usage \(\d+ Bytes\) is larger than the threshold \(30000000 Bytes\)!/,
          );
          // Only the pods of the Kubernetes namespace asked for count.
          const elsewhere = await check(["telemetry", "30000000", "--kube-namespace", "other"]);
          assert.equal(elsewhere.code, 0, elsewhere.stdout + elsewhere.stderr);
          assert.equal(elsewhere.stdout, "", "not running in namespace other");
        },
      );

      await t.step({
        name:
          "over the threshold: mem-threshold-exceeded reaches a real subscriber via eventd's proxy",
        ignore: eventdUnavailableReason() !== undefined,
        async fn() {
          const eventd = await startEventd();
          try {
            const r = await runTool(TOOL, [
              "--docker-socket",
              docker.socketPath,
              "--cri-socket",
              containerd.socketPath,
              "telemetry",
              "30000000",
            ], { env: { ...env, KS_INIT_CFG: eventd.initCfgPath, KS_EVENTS_TIMEOUT: "10s" } });
            assert.equal(r.code, 3, r.stdout + r.stderr);
            const printed = OVER.exec(r.stdout)![2];
            const [msg, deinit] = await eventd.waitFor(2);
            assert.equal(msg.source, "sonic-events-host");
            const ev = msg.event?.["sonic-events-host:mem-threshold-exceeded"];
            assert.ok(ev, JSON.stringify(msg));
            assert.deepEqual(Object.keys(ev).sort(), [
              "ctr_name",
              "mem_usage",
              "threshold",
              "timestamp",
            ]);
            assert.equal(ev.ctr_name, "telemetry");
            assert.equal(ev.mem_usage, `${printed}.00`);
            assert.equal(ev.threshold, "30000000");
            assert.equal(msg.s, "1");
            assert.equal(deinit.d, "CONTROL_DEINIT");
            // Under the threshold: no event.
            const under = await runTool(TOOL, [
              "--docker-socket",
              docker.socketPath,
              "--cri-socket",
              containerd.socketPath,
              "telemetry",
              "900000000",
            ], { env: { ...env, KS_INIT_CFG: eventd.initCfgPath } });
            assert.equal(under.code, 0);
            await new Promise((res) => setTimeout(res, 500));
            assert.equal(eventd.received().length, 2);
          } finally {
            await eventd.stop();
          }
        },
      });

      await t.step("an ID prefix is not a container name: not matched (exit 0)", async () => {
        const id = (await docker.docker(["inspect", "-f", "{{.Id}}", "lldp"])).stdout.trim();
        assert.equal((await check(["lldp", "1"])).code, 3);
        const r = await check([id.slice(0, 8), "1"]);
        assert.equal(r.stdout, "");
        assert.equal(r.code, 0);
      });

      await t.step("a container that is not running: exit 0, no output", async () => {
        const r = await check(["radv", "1000"]);
        assert.equal(r.stdout, "");
        assert.equal(r.code, 0);
      });

      await t.step(
        "Docker OOM kill (137) and restart: reported running and under the threshold again",
        async () => {
          await dockerRun("bgp", HOG_ONCE, ["--memory", "24m", "--restart", "always"]);
          await waitForDockerRestarts(
            docker,
            "bgp",
            1,
            30_000,
            "bgp to be OOM-killed and restarted",
          );
          const events = await docker.docker([
            "events",
            "--since",
            "0",
            "--until",
            String(Math.ceil(Date.now() / 1000)),
            "--filter",
            "container=bgp",
            "--filter",
            "event=die",
            "--format",
            '{{index .Actor.Attributes "exitCode"}}',
          ]);
          assert.match(events.stdout, /^137$/m, events.stdout + events.stderr);
          const r = await check(["bgp", "20000000", "--output", "json"]);
          assert.equal(r.code, 0, r.stdout);
          const j = JSON.parse(r.stdout);
          assert.equal(j.status, "under");
          assert.equal(j.container.restartCount, 1);
        },
      );

      await t.step(
        "CRI OOM kill (137): not running -> exit 0; the kubelet's next attempt is checked",
        async () => {
          const pod = await containerd.runPod({
            name: "bmp-node1",
            containers: [{
              name: "bmp",
              command: ["sh", "-c", HOG],
              memoryLimitBytes: 24 * 1024 * 1024,
            }],
          });
          const cri = new CriClient(containerd.socketPath);
          try {
            let st = await cri.containerStatus(pod.containerIds.bmp);
            await waitUntil(
              async () => {
                st = await cri.containerStatus(pod.containerIds.bmp);
                return st.state === "exited";
              },
              20_000,
              "bmp to be OOM-killed",
              100,
            );
            // SIGKILLed by the kernel's OOM killer under the 24 MiB limit. (containerd 1.6 on this
            // 6.18 kernel reports reason "Error", not "OOMKilled": cgroup v1 OOM event
            // notifications do not reach it; the exit code is what the kubelet acts on.)
            assert.equal(st.exitCode, 137);
            assert.ok(["OOMKilled", "Error"].includes(st.reason), st.reason);
          } finally {
            cri.close();
          }
          const down = await check(["bmp", "20000000"]);
          assert.equal(down.stdout, "");
          assert.equal(down.code, 0);
          // Restart as a kubelet does: attempt 1 in the same sandbox.
          const again = await containerd.crictl([
            "create",
            pod.podId,
            ...await attemptConfig(
              containerd.dir,
              pod,
              "bmp",
            ),
          ]);
          assert.equal(again.code, 0, again.stderr);
          const newId = again.stdout.trim();
          assert.equal((await containerd.crictl(["start", newId])).code, 0);
          const j = JSON.parse((await check(["bmp", "20000000", "--output", "json"])).stdout);
          assert.equal(j.status, "under");
          assert.equal(j.container.id, newId);
        },
      );

      await t.step(
        "a container removed while it is being checked is not an error (exit 0)",
        async () => {
          await dockerRun("pmon", "exec sleep 600");
          const r = await checkMemory({
            name: "pmon",
            thresholdBytes: 1000,
            endpoints,
            beforeRead: async () => {
              const rm = await docker.docker(["rm", "-f", "pmon"]);
              assert.equal(rm.code, 0, rm.stderr);
            },
          });
          assert.equal(r.status, "not-running");
        },
      );

      await t.step("invalid arguments exit 2 with one line", async () => {
        for (
          const args of [["lldp"], ["lldp", "abc"], ["lldp", "0"], ["lldp", "-5"], ["a", "1", "2"]]
        ) {
          const r = await check(args);
          assert.equal(r.code, 2, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
          assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
        }
      });

      await t.step("an unreachable runtime: one line and exit 1 (internal error)", async () => {
        const dead = join(docker.dir, "dead.sock");
        Deno.listen({ transport: "unix", path: dead }).close();
        await Deno.stat(dead).catch(async () => await Deno.writeTextFile(dead, ""));
        const r = await runTool(TOOL, [
          "--docker-socket",
          dead,
          "--cri-socket",
          "none",
          "lldp",
          "1000",
        ]);
        assert.equal(r.code, 1);
        assert.match(
          r.stdout,
          /^Failed to check the memory usage of container 'lldp': cannot reach docker: \S+dead\.sock: connect: Connection refused \(os error 111\)\n$/,
        );
        assert.doesNotMatch(r.stdout + r.stderr, /\n\s+at /);
      });
    } finally {
      await containerd.stop();
      await docker.stop();
    }
  },
});

/** Writes a container config for the next attempt of `name` and returns [config, podConfig]. */
async function attemptConfig(
  dir: string,
  pod: { podId: string; uid: string },
  name: string,
): Promise<string[]> {
  const podDirs: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.name.startsWith("pod-")) podDirs.push(e.name);
  for (const d of podDirs) {
    const podPath = join(dir, d, "pod.json");
    const podConfig = JSON.parse(await Deno.readTextFile(podPath));
    if (podConfig.metadata.uid !== pod.uid) continue;
    const c = JSON.parse(await Deno.readTextFile(join(dir, d, `${name}.json`)));
    c.metadata.attempt = 1;
    c.command = ["sleep", "600"];
    c.log_path = `${name}-1.log`;
    const next = join(dir, d, `${name}-1.json`);
    await Deno.writeTextFile(next, JSON.stringify(c));
    return [next, podPath];
  }
  throw new Error(`no pod config for ${pod.uid}`);
}
