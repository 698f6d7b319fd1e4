// Lab: ks-rollout on a fleet of simulated switches (kwok nodes, `--fleet N`, default 20): a good
// revision moves wave by wave through the health gate; a revision whose watchdog never reports
// Ready is stopped in its first wave and rolled back automatically; `ks-rollout status` shows the
// record kept on the DaemonSet. Uses the lab's control plane (05_control_plane) when it is up,
// else starts one; the bundled tool runs as an operator would run it.
import { join } from "node:path";
import type { LabScenario } from "../context.ts";
import { type KubeCluster, startKube } from "../../sandbox/harness/kube.ts";
import { runTool, toolCommand } from "../../sandbox/harness/bin.ts";
import {
  addFleet,
  createDaemonSet,
  daemonSet,
  deleteDaemonSet,
  fleetNames,
  podsByNode,
  writeManifest,
} from "../../sandbox/fixtures/fleet.ts";
import type { RolloutReport } from "../../src/rollout/run.ts";
import { formatMs } from "../timeline.ts";

const FEATURE = "fleet-telemetry";
const FLEET_LABEL = { "kubesonic.io/lab-fleet": "rollout" };

/** Narrates one of the tool's log lines as a timeline note when it is a wave/gate/rollback event. */
function narrate(note: (text: string) => void, line: string) {
  const m = /ks-rollout\[\d+\]: [^:]+: (?:WARN: )?(.*)$/.exec(line);
  if (!m) return;
  if (
    /^(rollout started|wave |rollout stopped|rollback |rollout complete|node failed)/.test(m[1])
  ) {
    note(`ks-rollout: ${m[1].replace(/ id=\w+/, "")}`);
  }
}

/** Runs the bundled ks-rollout, narrating its events as they happen; returns code and stdout. */
async function rollout(args: string[], note: (text: string) => void) {
  const child = (await toolCommand("ks-rollout", args, { stdout: "piped", stderr: "piped" }))
    .spawn();
  const stdout = new Response(child.stdout).text();
  let last = "";
  let buffer = "";
  for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      last = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      narrate(note, last);
    }
  }
  const { code } = await child.status;
  return { code, stdout: await stdout, lastLine: last };
}

export const scenario: LabScenario = {
  title: "ks-rollout: health-gated waves and automatic rollback on a simulated fleet",
  needs: ["kube"],
  async run(ctx) {
    const { timeline } = ctx;
    const n = ctx.options.fleet;
    let cluster: KubeCluster | undefined = ctx.kube;
    if (!cluster) {
      await timeline.step("start a control plane for the fleet", async () => {
        cluster = await startKube({ dir: join(ctx.dir, "kube-rollout") });
        ctx.defer(() => cluster!.stop());
        return cluster.server;
      });
    }
    if (!cluster) return;
    const kube = cluster;
    const nodes = fleetNames(n, "lab-sw");
    const tpl = { nodeSelector: FLEET_LABEL };
    const manifests = join(ctx.dir, "rollout");
    await Deno.mkdir(manifests, { recursive: true });

    await timeline.step(
      `${n} simulated switches join, spread over 3 zones and 4 racks`,
      async () => {
        await addFleet(kube, nodes, 200, FLEET_LABEL);
        return `kwok nodes ${nodes[0]} .. ${nodes[n - 1]} Ready`;
      },
    );
    await timeline.step(
      "the feature's DaemonSet (OnDelete, v1) is Ready on every switch",
      async () => {
        await createDaemonSet(kube, FEATURE, n, { ...tpl, image: "kubesonic/telemetry:v1" });
        return `${n} pods Ready`;
      },
    );

    const args = (to: string, extra: string[] = []) => [
      FEATURE,
      "--to",
      to,
      "--kubeconfig",
      kube.kubeconfigPath,
      "--bake",
      "2s",
      "--ready-timeout",
      "8s",
      "--max-in-flight",
      String(Math.max(2, Math.ceil(n / 10))),
      "--poll-interval",
      "500ms",
      "--output",
      "json",
      ...extra,
    ];

    let v2Hash = "";
    await timeline.step("ks-rollout --to v2: every wave passes the health gate", async () => {
      const v2 = await writeManifest(
        manifests,
        "v2",
        daemonSet(FEATURE, { ...tpl, image: "kubesonic/telemetry:v2" }),
      );
      const r = await rollout(args(v2), (t) => timeline.note(t));
      if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.lastLine}`);
      const report: RolloutReport = JSON.parse(r.stdout);
      v2Hash = report.progress!.targetHash;
      return `${report.progress!.done}/${n} switches on v2 in ${formatMs(report.durationMs)}, ` +
        `waves ${report.progress!.waves.map((w) => w.upTo).join(",")} (2 s bake each), ` +
        `${report.requestsPerNode} API requests per switch`;
    });

    await timeline.step("ks-rollout status reads the record from the DaemonSet", async () => {
      const r = await runTool("ks-rollout", [
        "status",
        FEATURE,
        "--kubeconfig",
        kube.kubeconfigPath,
      ]);
      if (r.code !== 0) throw new Error(r.stderr.trim());
      const lines = r.stdout.trim().split("\n");
      for (const line of lines.slice(0, 3)) timeline.note(line.trim());
      return lines[0];
    });

    await timeline.step(
      "ks-rollout --to v3 (watchdog never Ready): stopped, rolled back",
      async () => {
        const v3 = await writeManifest(
          manifests,
          "v3",
          daemonSet(FEATURE, {
            ...tpl,
            image: "kubesonic/telemetry:v3",
            annotations: { "kubesonic.test/ready": "false" },
          }),
        );
        const r = await rollout(args(v3), (t) => timeline.note(t));
        if (r.code !== 4) throw new Error(`expected exit 4 (rolled back), got ${r.code}`);
        const report: RolloutReport = JSON.parse(r.stdout);
        const p = report.progress!;
        const failed = p.failures.map((f) => `${f.node}: ${f.reason}`).join("; ");
        return `stopped in wave ${p.wave} (${p.stopReason}); failed ${failed}; ` +
          `${p.rollback?.done} switch(es) restored in ${formatMs(report.durationMs)}`;
      },
    );

    await timeline.step("every switch runs v2 again and is Ready", async () => {
      const pods = await podsByNode(kube, FEATURE);
      const bad = nodes.filter((node) => pods.get(node)?.hash !== v2Hash || !pods.get(node)?.ready);
      if (bad.length > 0) throw new Error(`not back on v2: ${bad.join(", ")}`);
      return `${n}/${n} on revision ${v2Hash}, Ready`;
    });

    // Leave a shared control plane as we found it: later scenarios' DaemonSets would land on the
    // fleet's switches too.
    if (kube === ctx.kube) {
      await deleteDaemonSet(kube, FEATURE);
      await Promise.all(
        nodes.map((node) => kube.rest.delete(`/api/v1/nodes/${node}`).catch(() => {})),
      );
      timeline.note(`fleet removed from the shared control plane (${n} nodes)`);
    }
  },
};
