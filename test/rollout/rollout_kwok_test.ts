// ks-rollout end to end on the real control plane with a kwok fleet (test/harness/kube.ts): the
// bundled tool (dist/ks-rollout.js) moves an OnDelete DaemonSet across 60 simulated switches.
// A healthy revision completes every wave; a revision that is never Ready, or not Ready on a
// random 5% of the switches, is stopped in the first wave past the budget and rolled back, with
// no more switches ever on it than that wave's size (a pod watch records every pod created); pods
// that start seconds late pass --min-ready when healthy, and are stopped when Ready only briefly;
// `kill -9` mid-wave and a rerun leave every switch moved exactly once; a racing rollout is refused.
import assert from "node:assert/strict";
import {
  kubeBinDir,
  type KubeCluster,
  SONIC_NAMESPACE,
  startKube,
} from "../../sandbox/harness/kube.ts";
import { runTool, toolCommand } from "../../sandbox/harness/bin.ts";
import { waitUntil } from "../../sandbox/harness/net.ts";
import {
  addFleet,
  createDaemonSet,
  daemonSet,
  deleteDaemonSet,
  fleetNames,
  PodRecorder,
  podsByNode,
  writeManifest,
} from "../../sandbox/fixtures/fleet.ts";
import { decodeState, STATE_ANNOTATION } from "../../src/rollout/state.ts";
import type { RolloutReport } from "../../src/rollout/run.ts";

const FLEET = 60;
const NODES = fleetNames(FLEET);
const binDir = kubeBinDir();

interface Ds {
  metadata: { annotations?: Record<string, string> };
  spec: { template: { spec: { containers: { image: string }[] } } };
}

async function rolloutState(cluster: KubeCluster, feature: string) {
  const ds = await cluster.rest.get<Ds>(
    `/apis/apps/v1/namespaces/${SONIC_NAMESPACE}/daemonsets/${feature}`,
  );
  return { ds, state: decodeState(ds.metadata.annotations?.[STATE_ANNOTATION]) };
}

function rolloutArgs(cluster: KubeCluster, feature: string, to: string, extra: string[] = []) {
  return [
    feature,
    "--to",
    to,
    "--kubeconfig",
    cluster.kubeconfigPath,
    "--bake",
    "0s",
    "--poll-interval",
    "300ms",
    "--output",
    "json",
    ...extra,
  ];
}

function parseReport(stdout: string, stderr: string): RolloutReport {
  try {
    return JSON.parse(stdout);
  } catch {
    throw new Error(`no JSON report; stderr: ${stderr.slice(-2000)}`);
  }
}

Deno.test({
  name: "ks-rollout on a 60-switch kwok fleet",
  ignore: binDir === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const cluster = await startKube();
    const dir = await Deno.makeTempDir({ prefix: "ks-rollout-test-" });
    try {
      await addFleet(cluster, NODES);

      await t.step(
        "--dry-run plans canaries first, zones alternating, and changes nothing",
        async () => {
          const feature = "lldp";
          await createDaemonSet(cluster, feature, FLEET);
          const v2 = await writeManifest(dir, "lldp-v2", daemonSet(feature, { image: "lldp:v2" }));
          const run = await runTool(
            "ks-rollout",
            rolloutArgs(cluster, feature, v2, [
              "--dry-run",
              "--canary",
              "sw-0031",
              "--selector",
              "topology.kubernetes.io/zone=z1",
            ]),
          );
          assert.equal(run.code, 0, run.stderr);
          const plan = parseReport(run.stdout, run.stderr).plan!;
          const nodes = plan.waves.flatMap((w) => w.nodes);
          // z1 holds every third switch: 20 of 60.
          assert.equal(nodes.length, 20);
          assert.ok(nodes.every((n) => Number(n.slice(3)) % 3 === 1), nodes.join(","));
          assert.deepEqual(plan.waves[0].nodes, ["sw-0031"]);
          assert.deepEqual(plan.waves.map((w) => w.nodes.length), [1, 1, 8, 10]);
          const { ds, state } = await rolloutState(cluster, feature);
          assert.equal(state, undefined);
          assert.equal(ds.spec.template.spec.containers[0].image, "kubesonic/lldp:v1");
        },
      );

      await t.step(
        "--selector moves only the matching switches; --to a revision number moves back",
        async () => {
          const feature = "lldp";
          const v2 = `${dir}/lldp-v2.yaml`;
          const before = await podsByNode(cluster, feature);
          const oldHash = [...before.values()][0].hash;
          const run = await runTool(
            "ks-rollout",
            rolloutArgs(cluster, feature, v2, ["--selector", "topology.kubernetes.io/zone=z1"]),
          );
          assert.equal(run.code, 0, run.stderr.slice(-2000));
          const report = parseReport(run.stdout, run.stderr);
          assert.equal(report.progress!.done, 20);
          let after = await podsByNode(cluster, feature);
          for (const [node, pod] of after) {
            const inZ1 = Number(node.slice(3)) % 3 === 1;
            assert.equal(pod.hash, inZ1 ? report.progress!.targetHash : oldHash, node);
          }
          // Revision 1 is the original template: only the 20 moved switches have to move back.
          const back = await runTool("ks-rollout", rolloutArgs(cluster, feature, "1"));
          assert.equal(back.code, 0, back.stderr.slice(-2000));
          const backReport = parseReport(back.stdout, back.stderr);
          assert.equal(backReport.progress!.targetHash, oldHash);
          assert.equal(backReport.progress!.done, FLEET);
          after = await podsByNode(cluster, feature);
          for (const [node, pod] of after) {
            assert.equal(pod.hash, oldHash, node);
            if (Number(node.slice(3)) % 3 !== 1) assert.equal(pod.uid, before.get(node)!.uid, node);
          }
          await deleteDaemonSet(cluster, feature);
        },
      );

      await t.step(
        "a RollingUpdate DaemonSet, an unknown feature (exit 1) or a --to that is not YAML (exit 2) is refused with one line",
        async () => {
          const feature = "dhcp-relay";
          const ds = daemonSet(feature) as { spec: Record<string, unknown> };
          ds.spec.updateStrategy = { type: "RollingUpdate" };
          await cluster.rest.create(`/apis/apps/v1/namespaces/${SONIC_NAMESPACE}/daemonsets`, ds);
          const run = await runTool("ks-rollout", rolloutArgs(cluster, feature, "1"));
          assert.equal(run.code, 1);
          assert.match(run.stderr, /updateStrategy RollingUpdate; ks-rollout moves only OnDelete/);
          await deleteDaemonSet(cluster, feature);
          const missing = await runTool(
            "ks-rollout",
            rolloutArgs(cluster, "nosuchfeature", "1"),
          );
          assert.equal(missing.code, 1);
          assert.match(missing.stderr, /no daemonset sonic\/nosuchfeature/);
          // A --to file that is not YAML is bad input: exit 2, as in every tool, one line.
          await cluster.rest.create(
            `/apis/apps/v1/namespaces/${SONIC_NAMESPACE}/daemonsets`,
            daemonSet("bmp"),
          );
          await Deno.writeTextFile(`${dir}/bad.yaml`, "kind: [unclosed\n");
          const bad = await runTool("ks-rollout", rolloutArgs(cluster, "bmp", `${dir}/bad.yaml`));
          assert.equal(bad.code, 2, bad.stderr);
          assert.match(bad.stderr, /bad\.yaml: not YAML/);
          await deleteDaemonSet(cluster, "bmp");
        },
      );

      await t.step("a healthy revision completes every wave, each switch moved once", async () => {
        const feature = "telemetry";
        await createDaemonSet(cluster, feature, FLEET);
        const v2 = await writeManifest(
          dir,
          "telemetry-v2",
          daemonSet(feature, { image: "kubesonic/telemetry:v2" }),
        );
        const before = await podsByNode(cluster, feature);
        const recorder = await PodRecorder.start(cluster, feature);
        const run = await runTool(
          "ks-rollout",
          rolloutArgs(cluster, feature, v2, [
            "--max-in-flight",
            "8",
            "--ready-timeout",
            "60s",
            "--min-ready",
            "1s",
          ]),
        );
        await recorder.stop();
        const report = parseReport(run.stdout, run.stderr);
        assert.equal(run.code, 0, run.stderr.slice(-2000));
        assert.equal(report.result, "done");
        assert.deepEqual(report.progress!.waves.map((w) => w.upTo), [1, 6, 30, 60]);
        assert.ok(report.progress!.waves.every((w) => w.status === "passed" && w.done === w.size));
        const after = await podsByNode(cluster, feature);
        const hash = report.progress!.targetHash;
        assert.equal(after.size, FLEET);
        for (const node of NODES) {
          const pod = after.get(node)!;
          assert.equal(pod.hash, hash, node);
          assert.ok(pod.ready, `${node} Ready`);
          assert.notEqual(pod.uid, before.get(node)!.uid, `${node} got a new pod`);
          assert.equal(recorder.createdPerNode.get(node), 1, `${node}: one new pod`);
        }
        assert.ok(report.requestsPerNode! < 4, `requests per node ${report.requestsPerNode}`);
        // status reads the same record from the DaemonSet.
        const status = await runTool("ks-rollout", [
          "status",
          feature,
          "--kubeconfig",
          cluster.kubeconfigPath,
        ]);
        assert.equal(status.code, 0, status.stderr);
        assert.match(status.stdout, /done/);
        assert.match(status.stdout, new RegExp(`nodes ${FLEET}: ${FLEET} done, 0 failed`));
        await deleteDaemonSet(cluster, feature);
      });

      await t.step(
        "a revision never Ready stops in the canary wave and is rolled back",
        async () => {
          const feature = "gnmi";
          await createDaemonSet(cluster, feature, FLEET);
          const bad = await writeManifest(
            dir,
            "gnmi-bad",
            daemonSet(feature, {
              image: "kubesonic/gnmi:bad",
              annotations: { "kubesonic.test/ready": "false" },
            }),
          );
          const before = await podsByNode(cluster, feature);
          const oldHash = [...before.values()][0].hash;
          const recorder = await PodRecorder.start(cluster, feature);
          const run = await runTool(
            "ks-rollout",
            rolloutArgs(cluster, feature, bad, ["--ready-timeout", "4s", "--max-in-flight", "8"]),
          );
          await recorder.stop();
          const report = parseReport(run.stdout, run.stderr);
          assert.equal(run.code, 4, run.stderr.slice(-2000));
          assert.equal(report.result, "rolled-back");
          const badHash = report.progress!.targetHash;
          assert.equal(recorder.nodesByHash.get(badHash)?.size, 1, "only the canary ran it");
          assert.equal(report.progress!.failures.length, 1);
          assert.match(report.progress!.failures[0].reason, /not Ready within 4s/);
          assert.match(run.stderr, /rollout stopped, rolling back/);
          const after = await podsByNode(cluster, feature);
          assert.equal(after.size, FLEET);
          for (const [node, pod] of after) {
            assert.equal(pod.hash, oldHash, `${node} back on the old revision`);
            assert.ok(pod.ready, `${node} Ready`);
          }
          // The template is the old one again.
          const { ds } = await rolloutState(cluster, feature);
          assert.equal(ds.spec.template.spec.containers[0].image, "kubesonic/gnmi:v1");
          await deleteDaemonSet(cluster, feature);
        },
      );

      await t.step(
        "pods that start seconds late: a release Ready only briefly is stopped by --min-ready; " +
          "a slow healthy one passes",
        async () => {
          const feature = "sflow";
          await createDaemonSet(cluster, feature, FLEET);
          const oldHash = [...(await podsByNode(cluster, feature)).values()][0].hash;
          // Ready about 3 s after the start (rollout-ready-late.yaml); the broken one loses it
          // again about 2 s later, well inside --min-ready.
          const late = (lose: boolean) => ({
            "kubesonic.test/ready": "false",
            "kubesonic.test/late": "start",
            ...(lose ? { "kubesonic.test/late-lose": "true" } : {}),
          });
          const broken = await writeManifest(
            dir,
            "sflow-broken",
            daemonSet(feature, { image: "kubesonic/sflow:broken", annotations: late(true) }),
          );
          const recorder = await PodRecorder.start(cluster, feature);
          const run = await runTool(
            "ks-rollout",
            rolloutArgs(cluster, feature, broken, [
              "--min-ready",
              "8s",
              "--ready-timeout",
              "16s",
              "--max-in-flight",
              "8",
            ]),
          );
          await recorder.stop();
          assert.equal(run.code, 4, run.stderr.slice(-2000));
          const report = parseReport(run.stdout, run.stderr);
          assert.equal(report.result, "rolled-back");
          const badHash = report.progress!.targetHash;
          assert.equal(recorder.nodesByHash.get(badHash)?.size, 1, "only the canary ran it");
          assert.equal(report.progress!.failures.length, 1);
          assert.match(report.progress!.failures[0].reason, /not Ready within 16s/);
          let after = await podsByNode(cluster, feature);
          assert.ok([...after.values()].every((p) => p.hash === oldHash && p.ready));

          const slow = await writeManifest(
            dir,
            "sflow-slow",
            daemonSet(feature, { image: "kubesonic/sflow:slow", annotations: late(false) }),
          );
          const ok = await runTool(
            "ks-rollout",
            rolloutArgs(cluster, feature, slow, [
              "--selector",
              "topology.kubernetes.io/zone=z1",
              "--waves",
              "1,100%",
              "--max-in-flight",
              "20",
              "--min-ready",
              "3s",
              "--ready-timeout",
              "60s",
            ]),
          );
          assert.equal(ok.code, 0, ok.stderr.slice(-2000));
          const done = parseReport(ok.stdout, ok.stderr);
          assert.equal(done.progress!.done, 20);
          after = await podsByNode(cluster, feature);
          const moved = [...after.values()].filter((p) => p.hash === done.progress!.targetHash);
          assert.equal(moved.length, 20);
          assert.ok(moved.every((p) => p.ready));
          await deleteDaemonSet(cluster, feature);
        },
      );

      await t.step("an OOM-killed revision (exit 137) is stopped with that reason", async () => {
        const feature = "radv";
        await createDaemonSet(cluster, feature, FLEET);
        const oom = await writeManifest(
          dir,
          "radv-oom",
          daemonSet(feature, { image: "radv:oom", annotations: { "kubesonic.test/oom": "true" } }),
        );
        const oldHash = [...(await podsByNode(cluster, feature)).values()][0].hash;
        const run = await runTool(
          "ks-rollout",
          rolloutArgs(cluster, feature, oom, ["--ready-timeout", "20s", "--waves", "3,100%"]),
        );
        assert.equal(run.code, 4, run.stderr.slice(-2000));
        const report = parseReport(run.stdout, run.stderr);
        assert.ok(report.progress!.failures.length >= 1);
        for (const f of report.progress!.failures) {
          assert.match(f.reason, /OOMKilled \(exit 137\)|restarted/, f.reason);
        }
        const after = await podsByNode(cluster, feature);
        assert.ok([...after.values()].every((p) => p.hash === oldHash && p.ready));
        await deleteDaemonSet(cluster, feature);
      });

      await t.step(
        "not Ready on a random 5% of switches: stopped in the first wave past the budget",
        async () => {
          const feature = "bmp";
          await createDaemonSet(cluster, feature, FLEET);
          const shuffled = [...NODES].sort(() => Math.random() - 0.5);
          const flaky = shuffled.slice(0, Math.round(FLEET * 0.05));
          const bad = await writeManifest(
            dir,
            "bmp-flaky",
            daemonSet(feature, {
              image: "kubesonic/bmp:flaky",
              annotations: { "kubesonic.test/not-ready-nodes": flaky.join(",") },
            }),
          );
          const oldHash = [...(await podsByNode(cluster, feature)).values()][0].hash;
          const recorder = await PodRecorder.start(cluster, feature);
          const run = await runTool(
            "ks-rollout",
            // A short bake: under load kwok may report a flaky pod Ready for a moment first.
            rolloutArgs(cluster, feature, bad, [
              "--ready-timeout",
              "4s",
              "--max-in-flight",
              "8",
              "--bake",
              "2s",
            ]),
          );
          await recorder.stop();
          const report = parseReport(run.stdout, run.stderr);
          assert.equal(run.code, 4, run.stderr.slice(-2000));
          const p = report.progress!;
          const stoppedWave = p.waves.find((w) => w.status === "stopped")!;
          assert.ok(stoppedWave, JSON.stringify(p.waves));
          // Every earlier wave had no failure, the stopped wave had at least one.
          for (const w of p.waves.slice(0, stoppedWave.wave - 1)) assert.equal(w.failed, 0);
          assert.ok(stoppedWave.failed >= 1);
          const onBad = recorder.nodesByHash.get(p.targetHash)?.size ?? 0;
          assert.ok(
            onBad <= stoppedWave.upTo,
            `${onBad} switches ran it, wave ${stoppedWave.upTo}`,
          );
          for (const f of p.failures) assert.ok(flaky.includes(f.node), `${f.node} is not flaky`);
          const after = await podsByNode(cluster, feature);
          assert.equal(after.size, FLEET);
          for (const [node, pod] of after) {
            assert.equal(pod.hash, oldHash, `${node} back on the old revision`);
            assert.ok(pod.ready, `${node} Ready`);
          }
          await deleteDaemonSet(cluster, feature);
        },
      );

      await t.step(
        "kill -9 mid-wave, then a rerun resumes: no switch skipped or moved twice",
        async () => {
          const feature = "restapi";
          await createDaemonSet(cluster, feature, FLEET);
          const v2 = await writeManifest(
            dir,
            "restapi-v2",
            daemonSet(feature, { image: "kubesonic/restapi:v2" }),
          );
          const recorder = await PodRecorder.start(cluster, feature);
          const args = rolloutArgs(cluster, feature, v2, [
            "--max-in-flight",
            "3",
            "--poll-interval",
            "1s",
            "--ready-timeout",
            "60s",
          ]);
          const first = (await toolCommand("ks-rollout", args, {
            stdout: "null",
            stderr: "null",
          })).spawn();
          let killedAt = "";
          try {
            await waitUntil(
              async () => {
                const { state } = await rolloutState(cluster, feature);
                if (!state || state.wave < 2 || !state.marks.includes("i")) return false;
                first.kill("SIGKILL");
                killedAt = state.marks;
                return true;
              },
              120_000,
              "the first run in the middle of wave 3",
              50,
            );
          } finally {
            try {
              first.kill("SIGKILL");
            } catch { /* already dead */ }
            await first.status;
          }
          const { state: left } = await rolloutState(cluster, feature);
          assert.equal(left?.phase, "rolling", "the killed run left a rollout in progress");
          assert.ok(killedAt.includes("d") && killedAt.includes("."), killedAt);
          // status shows the interrupted rollout from the record alone: waves, counts, time left.
          const status = await runTool("ks-rollout", [
            "status",
            feature,
            "--kubeconfig",
            cluster.kubeconfigPath,
            "--output",
            "json",
          ]);
          assert.equal(status.code, 0, status.stderr);
          const progress = JSON.parse(status.stdout).progress;
          assert.equal(progress.phase, "rolling");
          assert.ok(progress.wave >= 3, `wave ${progress.wave}`);
          const statuses = progress.waves.map((w: { status: string }) => w.status);
          assert.equal(statuses[progress.wave - 1], "rolling");
          assert.ok(statuses.slice(0, progress.wave - 1).every((x: string) => x === "passed"));
          assert.ok(progress.done > 0 && progress.pending > 0, JSON.stringify(progress));
          assert.equal(typeof progress.etaMs, "number");
          const rerun = await runTool("ks-rollout", args);
          await recorder.stop();
          const report = parseReport(rerun.stdout, rerun.stderr);
          assert.equal(rerun.code, 0, rerun.stderr.slice(-2000));
          assert.match(rerun.stderr, /resuming a rollout left by another run/);
          assert.equal(report.progress!.id, left!.id, "the same rollout resumed");
          assert.equal(report.progress!.done, FLEET);
          const after = await podsByNode(cluster, feature);
          for (const node of NODES) {
            assert.equal(after.get(node)?.hash, report.progress!.targetHash, `${node} moved`);
            assert.equal(recorder.createdPerNode.get(node), 1, `${node}: exactly one new pod`);
          }
          await deleteDaemonSet(cluster, feature);
        },
      );

      await t.step(
        "abort: refused while the run lives; after kill -9 it rolls back the touched switches",
        async () => {
          const feature = "teamd";
          await createDaemonSet(cluster, feature, FLEET);
          const v2 = await writeManifest(
            dir,
            "teamd-v2",
            daemonSet(feature, { image: "teamd:v2" }),
          );
          const oldHash = [...(await podsByNode(cluster, feature)).values()][0].hash;
          const recorder = await PodRecorder.start(cluster, feature);
          const args = rolloutArgs(cluster, feature, v2, ["--waves", "2,100%", "--bake", "120s"]);
          const run = (await toolCommand("ks-rollout", args, { stdout: "null", stderr: "null" }))
            .spawn();
          try {
            await waitUntil(
              async () => (await rolloutState(cluster, feature)).state?.phase === "baking",
              60_000,
              "the first wave baking",
              100,
            );
            const refused = await runTool("ks-rollout", [
              "abort",
              feature,
              "--kubeconfig",
              cluster.kubeconfigPath,
            ]);
            assert.equal(refused.code, 3, refused.stderr);
            assert.match(refused.stderr, /driven by a live run/);
          } finally {
            try {
              run.kill("SIGKILL");
            } catch { /* gone */ }
            await run.status;
          }
          const abort = await runTool("ks-rollout", [
            "abort",
            feature,
            "--kubeconfig",
            cluster.kubeconfigPath,
            "--output",
            "json",
          ]);
          await recorder.stop();
          assert.equal(abort.code, 4, abort.stderr.slice(-2000));
          const report = parseReport(abort.stdout, abort.stderr);
          assert.equal(report.progress!.stopReason, "aborted by the operator");
          assert.equal(report.progress!.rollback!.done, 2);
          assert.equal(recorder.nodesByHash.get(report.progress!.targetHash)?.size, 2);
          const after = await podsByNode(cluster, feature);
          assert.ok([...after.values()].every((p) => p.hash === oldHash && p.ready));
          await deleteDaemonSet(cluster, feature);
        },
      );

      await t.step("two rollouts racing: one wins, the other is refused", async () => {
        const feature = "snmp";
        await createDaemonSet(cluster, feature, FLEET);
        const a = await writeManifest(dir, "snmp-a", daemonSet(feature, { image: "snmp:a" }));
        const b = await writeManifest(dir, "snmp-b", daemonSet(feature, { image: "snmp:b" }));
        // A long bake keeps the winner busy; both start at the same moment.
        const extra = ["--bake", "60s", "--waves", "1,100%"];
        const [ra, rb] = await Promise.all([
          (await toolCommand("ks-rollout", rolloutArgs(cluster, feature, a, extra), {
            stdout: "piped",
            stderr: "piped",
          })).spawn(),
          (await toolCommand("ks-rollout", rolloutArgs(cluster, feature, b, extra), {
            stdout: "piped",
            stderr: "piped",
          })).spawn(),
        ]);
        const outA = ra.output();
        const outB = rb.output();
        try {
          const first = await Promise.race([
            outA.then((o) => ({ who: "a", code: o.code })),
            outB.then((o) => ({ who: "b", code: o.code })),
          ]);
          assert.equal(first.code, 3, "the loser exits 3 (refused)");
          const winner = first.who === "a" ? "b" : "a";
          const { ds, state } = await rolloutState(cluster, feature);
          assert.equal(ds.spec.template.spec.containers[0].image, `snmp:${winner}`);
          assert.equal(state?.target.to, winner === "a" ? a : b);
          // A third run, for the same target as the winner, is refused while the winner lives.
          const third = await runTool(
            "ks-rollout",
            rolloutArgs(cluster, feature, winner === "a" ? a : b, extra),
          );
          assert.equal(third.code, 3, third.stderr);
          assert.match(parseReport(third.stdout, third.stderr).reason!, /under another run/);
        } finally {
          for (const child of [ra, rb]) {
            try {
              child.kill("SIGKILL");
            } catch { /* gone */ }
          }
          await Promise.allSettled([outA, outB]);
        }
        await deleteDaemonSet(cluster, feature);
      });
    } finally {
      await cluster.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
