// ks-rollout on ks-render's real output (examples/telemetry, lab profile) on the kwok control
// plane: the design's v1 (sidecar only) -> v2 (feature + watchdog + sidecar) move done as a
// health-gated rollout from the rendered multi-document manifest, and back to v1 by revision
// number (the rollback state), each switch moved exactly once each way.
import assert from "node:assert/strict";
import { join } from "node:path";
import { kubeBinDir, SONIC_NAMESPACE, startKube } from "../../sandbox/harness/kube.ts";
import { runTool } from "../../sandbox/harness/bin.ts";
import { REPO_ROOT } from "../../src/build/bundle.ts";
import {
  addFleet,
  fleetNames,
  PodRecorder,
  podsByNode,
  waitReady,
} from "../../sandbox/fixtures/fleet.ts";
import type { RolloutReport } from "../../src/rollout/run.ts";

const FLEET = 12;
const SELECTOR = "app=telemetry,app.kubernetes.io/instance=telemetry";

interface Pod {
  metadata: { labels?: Record<string, string>; deletionTimestamp?: string };
  spec: { containers: { name: string }[] };
}

Deno.test({
  name: "ks-rollout moves ks-render's telemetry from v1 to v2 and back to v1 by revision",
  ignore: kubeBinDir() === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "ks-rollout-render-" });
    const kube = await startKube();
    try {
      const out = join(dir, "out");
      const render = await runTool("ks-render", [
        join(REPO_ROOT, "examples", "telemetry", "feature.yaml"),
        "--profile",
        "lab",
        "-o",
        out,
      ]);
      assert.equal(render.code, 0, render.stderr);
      await addFleet(kube, fleetNames(FLEET), 200, { "kubesonic.io/telemetry": "enabled" });
      const applied = await kube.kubectl([
        "apply",
        "-f",
        join(out, "common"),
        "-f",
        join(out, "v1"),
      ]);
      assert.equal(applied.code, 0, applied.stderr);
      await waitReady(kube, "telemetry", FLEET, 120_000);
      const v1 = await podsByNode(kube, "telemetry", SELECTOR);
      const v1Hash = [...v1.values()][0].hash;

      const recorder = await PodRecorder.start(kube, "telemetry", SELECTOR);
      const args = (to: string) => [
        "telemetry",
        "--to",
        to,
        "--kubeconfig",
        kube.kubeconfigPath,
        "--bake",
        "1s",
        "--ready-timeout",
        "60s",
        "--output",
        "json",
      ];
      const up = await runTool("ks-rollout", args(join(out, "v2", "30-daemonset.yaml")));
      assert.equal(up.code, 0, up.stderr.slice(-2000));
      const report: RolloutReport = JSON.parse(up.stdout);
      assert.equal(report.progress!.done, FLEET);
      const pods = await kube.rest.list<Pod>(`/api/v1/namespaces/${SONIC_NAMESPACE}/pods`, {
        labelSelector: SELECTOR,
      });
      const live = pods.items.filter((p) => !p.metadata.deletionTimestamp);
      assert.equal(live.length, FLEET);
      for (const pod of live) {
        assert.equal(
          pod.metadata.labels?.["controller-revision-hash"],
          report.progress!.targetHash,
        );
        assert.equal(pod.metadata.labels?.["kubesonic.io/stage"], "v2");
        assert.ok(pod.spec.containers.some((c) => c.name === "telemetry-watchdog"));
      }

      // Back to the rollback state: revision 1 is v1.
      const down = await runTool("ks-rollout", args("1"));
      assert.equal(down.code, 0, down.stderr.slice(-2000));
      assert.equal(JSON.parse(down.stdout).progress.targetHash, v1Hash);
      await recorder.stop();
      const after = await podsByNode(kube, "telemetry", SELECTOR);
      for (const [node, pod] of after) {
        assert.equal(pod.hash, v1Hash, node);
        assert.ok(pod.ready, node);
        // One v2 pod and one new v1 pod per switch: each moved exactly once each way.
        assert.equal(recorder.createdPerNode.get(node), 2, node);
      }
    } finally {
      await kube.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
