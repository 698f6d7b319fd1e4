// ks-container-checker end to end: the bundled tool against a real redis (FEATURE table), a
// private dockerd (native containers by name; dockershim-style containers with kubelet labels)
// and a private containerd whose pods are started through the CRI with crictl, as a kubelet would.
import assert from "node:assert/strict";
import { join } from "node:path";
import { importBusyboxDocker } from "../../sandbox/harness/images.ts";
import { TELEMETRY_SKIPPED_MESSAGE } from "../../src/checkers/expected.ts";
import { runTool } from "../../sandbox/harness/bin.ts";
import { eventdUnavailableReason, startEventd } from "../../sandbox/harness/eventd.ts";
import {
  checkerRuntimesUnavailableReason,
  runContainerChecker,
  startCheckerRuntimes,
  tagCriImage,
} from "../../sandbox/fixtures/checker_runtimes.ts";

const TOOL = "ks-container-checker";

function feature(state: string, extra: Record<string, string> = {}) {
  return {
    state,
    auto_restart: "enabled",
    has_global_scope: "True",
    has_per_asic_scope: "False",
    ...extra,
  };
}

const FEATURES = {
  database: feature("always_enabled"),
  lldp: feature("enabled"),
  telemetry: feature("enabled", { set_owner: "kube" }),
  gnmi: feature("disabled", { set_owner: "kube" }),
  bmp: feature("disabled"),
  mux: feature("always_disabled"),
  frr_bmp: feature("enabled"),
};

const skip = checkerRuntimesUnavailableReason();

Deno.test({
  name: "ks-container-checker against real Docker and containerd",
  ignore: skip !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const runtimes = await startCheckerRuntimes({ features: FEATURES });
    const { redis, docker, containerd } = runtimes;
    // Generous runtime timeout: the suite shares 2 cores with every other suite.
    const slow = { KS_CHECK_TIMEOUT: "10s" };
    const sockets = { docker: docker.socketPath, cri: containerd.socketPath };
    const check = (extra: string[] = [], env: Record<string, string> = {}) =>
      runContainerChecker(redis, sockets, extra, env);
    try {
      const image = await importBusyboxDocker(docker);
      // The telemetry image as a kubelet pulls it: in the CRI only, under its registry's name.
      const ctrTag = (ref: string) => tagCriImage(containerd, ref);
      const ctrUntag = async (ref: string) => {
        const r = await containerd.ctr(["-n", "k8s.io", "images", "rm", ref]);
        assert.equal(r.code, 0, r.stderr);
      };
      await ctrTag("registry:5000/docker-sonic-telemetry:v2");
      const dockerRun = async (name: string, labels: Record<string, string> = {}) => {
        const args = ["run", "-d", "--network", "host", "--name", name];
        for (const [k, v] of Object.entries(labels)) args.push("--label", `${k}=${v}`);
        const r = await docker.docker([...args, image, "sleep", "600"]);
        assert.equal(r.code, 0, r.stderr);
        return r.stdout.trim();
      };
      await dockerRun("database");
      await dockerRun("lldp");
      // A container that is not a feature and a FEATURE row that is not a container: both ignored.
      await dockerRun("unrelated");
      const pod = await containerd.runPod({
        name: "telemetry-node1",
        containers: [{ name: "telemetry", command: ["sleep", "600"] }],
      });

      await t.step(
        "exits 0 and prints nothing when native (Docker) and kubelet (CRI) containers all run",
        async () => {
          const r = await check();
          assert.equal(r.stdout, "");
          assert.equal(r.code, 0, r.stderr);
        },
      );

      await t.step("json output lists expected, running and each runtime's status", async () => {
        const r = await check(["--output", "json"]);
        assert.equal(r.code, 0, r.stderr);
        const out = JSON.parse(r.stdout);
        assert.deepEqual(out.expected, ["database", "lldp", "telemetry"]);
        assert.deepEqual(out.missing, []);
        assert.ok(out.running.includes("telemetry"));
        assert.deepEqual(out.runtimes.map((s: { status: string }) => s.status), ["ok", "ok"]);
      });

      await t.step(
        "a stopped kubelet container is reported: Expected containers not running: telemetry",
        async () => {
          const stop = await containerd.crictl(["stop", "-t", "0", pod.containerIds.telemetry]);
          assert.equal(stop.code, 0, stop.stderr);
          const r = await check();
          assert.equal(r.code, 3);
          assert.equal(r.stdout, "Expected containers not running: telemetry\n");
        },
      );

      await t.step(
        "two missing containers are listed in one line, comma separated",
        async () => {
          assert.equal((await docker.docker(["stop", "-t", "0", "lldp"])).code, 0);
          const r = await check();
          assert.equal(r.code, 3);
          assert.equal(r.stdout, "Expected containers not running: lldp, telemetry\n");
        },
      );

      await t.step({
        name:
          "one event-down-ctr per missing container reaches a real subscriber via eventd's proxy",
        ignore: eventdUnavailableReason() !== undefined,
        async fn() {
          const eventd = await startEventd();
          try {
            const r = await check([], {
              KS_INIT_CFG: eventd.initCfgPath,
              KS_EVENTS_TIMEOUT: "10s",
            });
            assert.equal(r.code, 3);
            assert.equal(r.stdout, "Expected containers not running: lldp, telemetry\n");
            const got = await eventd.waitFor(3);
            assert.deepEqual(
              got.map((m) => m.event?.["sonic-events-host:event-down-ctr"]?.ctr_name ?? m.d),
              ["lldp", "telemetry", "CONTROL_DEINIT"],
            );
            assert.deepEqual(got.map((m) => m.s), ["1", "2", "3"]);
            assert.deepEqual(got.map((m) => m.source), Array(3).fill("sonic-events-host"));
            // With nothing listening at the endpoint: same verdict, no delay worth noting.
            await eventd.stop();
            const t0 = Date.now();
            const again = await check([], { KS_INIT_CFG: eventd.initCfgPath });
            assert.equal(again.code, 3);
            assert.equal(again.stdout, r.stdout);
            assert.equal(again.stderr, "");
            assert.ok(Date.now() - t0 < 20_000);
          } finally {
            await eventd.stop();
          }
        },
      });

      await t.step(
        "a kubelet-labelled Docker container counts under io.kubernetes.container.name",
        async () => {
          const uid = crypto.randomUUID();
          const base = {
            "io.kubernetes.pod.name": "telemetry-node1",
            "io.kubernetes.pod.namespace": "sonic",
            "io.kubernetes.pod.uid": uid,
          };
          await dockerRun(`k8s_POD_telemetry-node1_sonic_${uid}_0`, {
            ...base,
            "io.kubernetes.docker.type": "podsandbox",
            "io.kubernetes.container.name": "POD",
          });
          // The sandbox alone does not count.
          let r = await check();
          assert.equal(r.stdout, "Expected containers not running: lldp, telemetry\n");
          await dockerRun(`k8s_telemetry_telemetry-node1_sonic_${uid}_0`, {
            ...base,
            "io.kubernetes.docker.type": "container",
            "io.kubernetes.container.name": "telemetry",
          });
          r = await check();
          assert.equal(r.code, 3);
          assert.equal(r.stdout, "Expected containers not running: lldp\n");
        },
      );

      await t.step(
        "containers of another pod namespace or with an empty name do not count",
        async () => {
          await redis.setFeatureState("gnmi", "enabled");
          const base = { "io.kubernetes.pod.uid": crypto.randomUUID() };
          await dockerRun("k8s_gnmi_other_kube-system_0", {
            ...base,
            "io.kubernetes.pod.namespace": "kube-system",
            "io.kubernetes.docker.type": "container",
            "io.kubernetes.container.name": "gnmi",
          });
          await dockerRun("k8s_novalue_sonic_0", {
            ...base,
            "io.kubernetes.pod.namespace": "sonic",
            "io.kubernetes.docker.type": "container",
            "io.kubernetes.container.name": "<no value>",
          });
          await containerd.runPod({
            name: "gnmi-elsewhere",
            namespace: "default",
            containers: [{ name: "gnmi", command: ["sleep", "600"] }],
          });
          const r = await check();
          assert.equal(r.stdout, "Expected containers not running: gnmi, lldp\n");
          await redis.setFeatureState("gnmi", "disabled");
        },
      );

      await t.step("a restarted container is running again: exit 0", async () => {
        assert.equal((await docker.docker(["start", "lldp"])).code, 0);
        const r = await check();
        assert.equal(r.stdout, "");
        assert.equal(r.code, 0);
      });

      await t.step("multi-ASIC: per-ASIC instances come from NUM_ASIC in asic.conf", async () => {
        const asicConf = join(redis.dir, "asic.conf");
        await Deno.writeTextFile(asicConf, "NUM_ASIC=2\nDEV_ID_ASIC_0=00:00.0\n");
        await redis.command(["HSET", "FEATURE|lldp", "has_per_asic_scope", "True"]);
        try {
          const r = await runTool(TOOL, [
            "--docker-socket",
            docker.socketPath,
            "--cri-socket",
            containerd.socketPath,
          ], { env: { ...redis.env, ...slow, KS_ASIC_CONF: asicConf } });
          assert.equal(r.code, 3);
          assert.equal(r.stdout, "Expected containers not running: lldp0, lldp1\n");
        } finally {
          await redis.command(["HSET", "FEATURE|lldp", "has_per_asic_scope", "False"]);
        }
      });

      await t.step("--always-running adds platform containers (database-chassis)", async () => {
        const r = await check(["--always-running", "database-chassis"]);
        assert.equal(r.code, 3);
        assert.equal(r.stdout, "Expected containers not running: database-chassis\n");
      });

      await t.step(
        "a runtime that is not installed (no socket) is skipped: exit 0 from the other",
        async () => {
          await redis.setFeatureState("telemetry", "disabled");
          try {
            const r = await runTool(TOOL, [
              "--docker-socket",
              docker.socketPath,
              "--cri-socket",
              join(redis.dir, "no-containerd.sock"),
            ], { env: { ...redis.env, ...slow } });
            assert.equal(r.stdout, "");
            assert.equal(r.code, 0, r.stderr);
          } finally {
            await redis.setFeatureState("telemetry", "enabled");
          }
        },
      );

      await t.step(
        "an unreachable runtime: one clear line, exit 3, no stack trace",
        async () => {
          // A socket file nobody serves (as after a crashed daemon).
          const dead = join(redis.dir, "dead.sock");
          const l = Deno.listen({ transport: "unix", path: dead });
          l.close();
          await Deno.stat(dead).catch(async () => await Deno.writeTextFile(dead, ""));
          const r = await check(["--cri-socket", dead]);
          assert.equal(r.code, 3);
          // telemetry still counts through its kubelet-labelled Docker container.
          assert.match(
            r.stdout,
            new RegExp(
              `^Container runtime cri is unreachable: connect ECONNREFUSED ${dead}\n$`,
            ),
          );
          assert.doesNotMatch(r.stdout + r.stderr, /\n\s+at /);
        },
      );

      await t.step(
        "a runtime that accepts but never answers times out within --timeout",
        async () => {
          const hung = join(redis.dir, "hung.sock");
          const l = Deno.listen({ transport: "unix", path: hung });
          const conns: Deno.Conn[] = [];
          const accepting = (async () => {
            for await (const c of l) conns.push(c);
          })();
          try {
            // --timeout is also CONFIG_DB's: 3 s, so that on a loaded machine redis still
            // answers within it and only the hung runtime runs out.
            const t0 = Date.now();
            const r = await check(["--docker-socket", hung, "--timeout", "3s"]);
            assert.equal(r.code, 3, r.stdout + r.stderr);
            assert.match(
              r.stdout,
              /^Container runtime docker is unreachable: .*no answer within 3000 ms/,
            );
            assert.ok(Date.now() - t0 < 30_000, "bounded by --timeout, not hung");
          } finally {
            l.close();
            for (const c of conns) c.close();
            await accepting.catch(() => {});
          }
        },
      );

      await t.step(
        "no telemetry or gnmi image in either runtime: the telemetry check is skipped with SONiC's line",
        async () => {
          // Nothing runs as telemetry any more, and its image is gone from the CRI.
          const ps = await docker.docker([
            "ps",
            "-aq",
            "--filter",
            "label=io.kubernetes.pod.name=telemetry-node1",
          ]);
          for (const id of ps.stdout.split("\n").filter((l) => l !== "")) {
            assert.equal((await docker.docker(["rm", "-f", id])).code, 0);
          }
          await ctrUntag("registry:5000/docker-sonic-telemetry:v2");
          const r = await check(["--output", "json"]);
          assert.equal(JSON.parse(r.stdout).telemetry, "skip");
          const text = await check();
          assert.equal(text.stdout, `${TELEMETRY_SKIPPED_MESSAGE}\n`);
          assert.equal(text.code, 0, text.stderr);
        },
      );

      await t.step(
        "only a gnmi image, pulled into the CRI under a registry path: gnmi is checked instead",
        async () => {
          await ctrTag("registry:5000/sonic/docker-sonic-gnmi:v3");
          // Without a FEATURE|gnmi row, gnmi follows the telemetry row (enabled).
          await redis.command(["DEL", "FEATURE|gnmi"]);
          let r = await check();
          assert.equal(r.stdout, "Expected containers not running: gnmi\n");
          assert.equal(r.code, 3);
          await containerd.runPod({
            name: "gnmi-node1",
            containers: [{ name: "gnmi", command: ["sleep", "600"] }],
          });
          r = await check();
          assert.equal(r.stdout, "");
          assert.equal(r.code, 0, r.stderr);
          // With its own row, gnmi follows that row, as SONiC reads FEATURE|gnmi: disabled.
          await redis.command(["HSET", "FEATURE|gnmi", "state", "disabled"]);
          r = await check(["--output", "json"]);
          const out = JSON.parse(r.stdout);
          assert.equal(out.telemetry, "gnmi");
          assert.ok(!out.expected.includes("gnmi") && !out.expected.includes("telemetry"));
          assert.equal(r.code, 0, r.stderr);
        },
      );

      await t.step(
        "a docker-sonic-telemetry image in Docker: telemetry is expected again, not gnmi",
        async () => {
          assert.equal(
            (await docker.docker(["tag", image, "docker-sonic-telemetry:latest"])).code,
            0,
          );
          const r = await check();
          assert.equal(r.stdout, "Expected containers not running: telemetry\n");
          assert.equal(r.code, 3);
        },
      );

      await t.step("CONFIG_DB unreachable: one line, exit 1", async () => {
        const r = await check(["--db-config", join(redis.dir, "missing.json")]);
        assert.equal(r.code, 1);
        assert.match(r.stdout, /^Cannot check containers: .*missing\.json.*\n$/);
        assert.doesNotMatch(r.stdout + r.stderr, /\n\s+at /);
      });

      await t.step("usage errors exit 2; --help shows an example", async () => {
        const bad = await runTool(TOOL, ["--bogus"]);
        assert.equal(bad.code, 2);
        assert.equal(bad.stderr.trim().split("\n").length, 1);
        const help = await runTool(TOOL, ["--help"]);
        assert.equal(help.code, 0);
        assert.match(help.stdout, /Example/);
      });
    } finally {
      await runtimes.stop();
    }
  },
});
