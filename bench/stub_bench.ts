// `deno task bench stub`, in one run:
//   1. on a real lab switch (systemd, containerd, a real kubelet; needs root and the switch
//      images): `ks-stub telemetry status` answered by the switch's containerd (the bundled
//      tool, its CRI socket reached through /proc/<pid>/root) beside one `kubectl get pods` from
//      the switch's network namespace through its API-server link, both under `nsenter -n`;
//      `restart` -> the daemon listening again, for the graceful pod delete (API reachable) and
//      the runtime path (API partitioned); status with the API partitioned;
//   2. on kwok (no runtime): status answered by the API server (`--runtime-socket none`) beside
//      the design's kubectl-based stub (two kubectl calls) and one kubectl call. ks-stub is timed
//      three ways there: as the sidecar installs it on a stock switch (the host launcher -> the
//      versioned tree's launcher -> its Deno on the multi-call bundle), the multi-call bundle run
//      directly, and the per-tool bundle with the system's Deno (what the lab's switch image
//      used to preinstall).
import { join } from "node:path";
import { toolArgv } from "../sandbox/harness/bin.ts";
import { bundlePath, bundleTools } from "../src/build/bundle.ts";
import { buildTree } from "../src/build/tree.ts";
import { copyTree } from "../src/build/tree_copy.ts";
import { kubeBinDir, type KubeCluster, startKube } from "../sandbox/harness/kube.ts";
import { waitUntil } from "../sandbox/harness/net.ts";
import { startSwitches, switchUnavailableReason } from "../sandbox/harness/switch.ts";
import { type FlowEnv, portOwner, stepsThroughV2 } from "../sandbox/flows/real_switch.ts";
import {
  apply,
  featureDaemonSet,
  podsOn,
  stubRbac,
  TEST_NODE_LABEL,
} from "../sandbox/fixtures/stub_api.ts";

const RUNS = Number(Deno.env.get("KS_BENCH_RUNS") ?? 30);
const WARMUP = 5;
/** restart -> daemon back rounds per path (each is seconds long). */
const RESTART_ROUNDS = Number(Deno.env.get("KS_BENCH_RESTARTS") ?? 3);
const NODE = "bench-sw1";

/** The design's stub `status`, verbatim but for the kubeconfig flag and a lowercase node name. */
const DESIGN_STUB = `#!/usr/bin/env bash
NAMESPACE="sonic"
LABEL_SELECTOR="app=telemetry"
NODE_NAME="$KS_NODE"
get_pod_name() {
    kubectl --kubeconfig "$KS_KUBECONFIG" get pods -n "$NAMESPACE" \\
      -l "$LABEL_SELECTOR" \\
      --field-selector spec.nodeName="$NODE_NAME" \\
      -o jsonpath='{.items[0].metadata.name}' 2>/dev/null
}
check_status() {
    POD_NAME=$(get_pod_name)
    if [[ -z "$POD_NAME" ]]; then
        exit 1
    fi
    STATUS=$(kubectl --kubeconfig "$KS_KUBECONFIG" get pod "$POD_NAME" -n "$NAMESPACE" -o jsonpath='{.status.phase}')
    if [[ "$STATUS" != "Running" ]]; then
        exit 1
    fi
}
check_status
`;

interface Candidate {
  argv: string[];
  env: Record<string, string>;
  times: number[];
}

/** Runs the candidates interleaved (one of each per round), so machine load hits all alike. */
async function timeRounds(candidates: Candidate[], runs = RUNS, warmup = WARMUP): Promise<void> {
  for (let i = 0; i < warmup + runs; i++) {
    for (const c of candidates) {
      const t0 = performance.now();
      const out = await new Deno.Command(c.argv[0], {
        args: c.argv.slice(1),
        env: c.env,
        stdout: "null",
        stderr: "piped",
      }).output();
      const ms = performance.now() - t0;
      if (out.code !== 0) {
        throw new Error(
          `${c.argv.join(" ")} exited ${out.code}: ${new TextDecoder().decode(out.stderr).trim()}`,
        );
      }
      if (i >= warmup) c.times.push(ms);
    }
  }
}

function stats(times: number[]) {
  const sorted = [...times].sort((a, b) => a - b);
  return {
    median: sorted[Math.floor(sorted.length / 2)],
    p90: sorted[Math.floor(sorted.length * 0.9)],
  };
}

const f = (ms: number) => `${ms.toFixed(1)} ms`;

/** The real-switch part (see the header). */
async function onSwitch(kube: KubeCluster, bin: string, dir: string): Promise<void> {
  const why = switchUnavailableReason();
  if (why) {
    console.log(`stub_bench: real switch part skipped (${why})`);
    return;
  }
  const lab = await startSwitches({
    cluster: kube,
    count: 1,
    dir: join(dir, "switches"),
    readyTimeoutMs: 600_000,
  });
  try {
    const sw = lab.switches[0];
    const env: FlowEnv = { cluster: kube, sw, dir, note: () => {} };
    for (const flow of stepsThroughV2()) await flow.run(env);
    const inSwitchNet = ["nsenter", "-t", String(sw.pid), "-n"];
    const stubC: Candidate = {
      argv: [
        ...inSwitchNet,
        ...await toolArgv("ks-stub"),
        "telemetry",
        "status",
        "--node",
        sw.name,
        "--runtime-socket",
        `/proc/${sw.pid}/root/run/containerd/containerd.sock`,
      ],
      env: { HOME: dir },
      times: [],
    };
    const kubectlC: Candidate = {
      argv: [
        ...inSwitchNet,
        join(bin, "kubectl"),
        "--kubeconfig",
        join(sw.configDir, "kubelet.conf"),
        "get",
        "pods",
        "-n",
        "sonic",
        "-l",
        "app=telemetry",
        "--field-selector",
        `spec.nodeName=${sw.name}`,
        "-o",
        "name",
      ],
      env: { HOME: dir },
      times: [],
    };
    await timeRounds([stubC, kubectlC]);
    const stub = stats(stubC.times);
    const kubectl = stats(kubectlC.times);
    const load = (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
    console.log(
      `stub_bench: real switch ${sw.name} (kubelet + containerd), ${RUNS} interleaved rounds ` +
        `after ${WARMUP} warm-up rounds (load average ${load})`,
    );
    console.log(
      `  ks-stub telemetry status via containerd  median ${f(stub.median)}  p90 ${f(stub.p90)}` +
        `  -> ${(stub.median / kubectl.median).toFixed(2)}x one kubectl get pods`,
    );
    console.log(
      `  one kubectl get pods (switch's API link)  median ${f(kubectl.median)}  p90 ${
        f(kubectl.p90)
      }`,
    );
    const restartBack = async (): Promise<number> => {
      const before = (await sw.crictl("ps", "-q", "--name", "^telemetry$", "--state", "running"))
        .stdout.trim();
      const t0 = performance.now();
      const r = await sw.exec(["/usr/local/bin/telemetry.sh", "restart"]);
      if (r.code !== 0) throw new Error(`telemetry.sh restart exit ${r.code}: ${r.stderr}`);
      await waitUntil(
        async () => {
          const now = (await sw.crictl("ps", "-q", "--name", "^telemetry$", "--state", "running"))
            .stdout.trim();
          return now !== "" && now !== before && (await portOwner(sw)) === "kubernetes";
        },
        120_000,
        "the daemon back after restart",
        100,
      );
      return performance.now() - t0;
    };
    const graceful: number[] = [];
    for (let i = 0; i < RESTART_ROUNDS; i++) graceful.push(await restartBack());
    await sw.apiLink("blackhole");
    const runtime: number[] = [];
    const cut: Candidate = { ...stubC, times: [] };
    try {
      // The kubelet backs a container's restarts off (10 s, 20 s, ...): space them out.
      for (let i = 0; i < RESTART_ROUNDS; i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, 45_000));
        runtime.push(await restartBack());
      }
      await timeRounds([cut], 10, 2);
    } finally {
      await sw.apiLink("up");
    }
    const g = stats(graceful);
    const rt = stats(runtime);
    const c = stats(cut.times);
    console.log(
      `  restart -> daemon back, API reachable (graceful pod delete)  median ${f(g.median)}` +
        `  (${graceful.map((t) => Math.round(t)).join(", ")} ms)`,
    );
    console.log(
      `  restart -> daemon back, API partitioned (runtime stop)       median ${f(rt.median)}` +
        `  (${runtime.map((t) => Math.round(t)).join(", ")} ms)`,
    );
    console.log(
      `  ks-stub telemetry status with the API partitioned          median ${f(c.median)}` +
        `  p90 ${f(c.p90)} (exit 0)`,
    );
  } finally {
    await lab.stop();
  }
}

async function main() {
  const bin = kubeBinDir();
  if (!bin) {
    console.log("stub_bench: skipped (no Kubernetes binaries; run scripts/build-kube.sh)");
    return;
  }
  const kube = await startKube();
  const dir = await Deno.makeTempDir({ prefix: "ks-stub-bench-" });
  try {
    await onSwitch(kube, bin, dir);
    await apply(kube, stubRbac("sonic", "ks-stub"));
    // The design's script also GETs the pod by name.
    await apply(kube, stubRbac("sonic", "kubectl-stub", ["get", "list"]));
    await kube.addNodes([NODE], { [TEST_NODE_LABEL]: NODE });
    await apply(kube, [featureDaemonSet({ feature: "telemetry", nodeLabel: NODE })]);
    await waitUntil(
      async () =>
        (await podsOn(kube, NODE, "raw_container_name=telemetry")).some((p) =>
          p.phase === "Running"
        ),
      60_000,
      "the telemetry pod running",
      100,
    );
    const kubeconfig = await kube.serviceAccountKubeconfig("sonic", "ks-stub");
    const kubectlConfig = await kube.serviceAccountKubeconfig("sonic", "kubectl-stub");
    const script = join(dir, "k8s-telemetry.sh");
    await Deno.writeTextFile(script, DESIGN_STUB, { mode: 0o755 });
    const env = {
      PATH: `${bin}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
      KS_KUBECONFIG: kubeconfig,
      KS_NODE: NODE,
      HOME: dir,
    };
    const stubC: Candidate = {
      argv: [
        ...await toolArgv("ks-stub"),
        "telemetry",
        "status",
        "--node",
        NODE,
        "--kubeconfig",
        kubeconfig,
        "--runtime-socket",
        "none",
      ],
      env,
      times: [],
    };
    // The host runtime as the patcher lays it out: <prefix>/<hash>/ and a launcher naming it.
    const { dir: tree, index } = await buildTree();
    const prefix = join(dir, "usr/local/lib/kubesonic", index.hash);
    await copyTree(tree, prefix);
    const hostLauncher = join(dir, "ks-stub");
    await Deno.writeTextFile(
      hostLauncher,
      `#!/bin/sh\nKS_DENO_DIR=${join(dir, "run-deno")} exec ${prefix}/bin/ks-stub "$@"\n`,
      { mode: 0o755 },
    );
    const stubArgs = [
      "telemetry",
      "status",
      "--node",
      NODE,
      "--kubeconfig",
      kubeconfig,
      "--runtime-socket",
      "none",
    ];
    const hostC: Candidate = { argv: [hostLauncher, ...stubArgs], env, times: [] };
    await bundleTools({ only: ["ks-stub"] });
    const preC: Candidate = {
      argv: [
        Deno.execPath(),
        "run",
        "-A",
        "--no-config",
        "--quiet",
        bundlePath("ks-stub"),
        ...stubArgs,
      ],
      env: { ...env, DENO_DIR: join(dir, "deno-dir") },
      times: [],
    };
    const designC: Candidate = {
      argv: ["bash", script],
      env: { ...env, KS_KUBECONFIG: kubectlConfig },
      times: [],
    };
    const oneC: Candidate = {
      argv: [
        join(bin, "kubectl"),
        "--kubeconfig",
        kubectlConfig,
        "get",
        "pods",
        "-n",
        "sonic",
        "-l",
        "app=telemetry",
        "--field-selector",
        `spec.nodeName=${NODE}`,
        "-o",
        "name",
      ],
      env,
      times: [],
    };
    await timeRounds([hostC, stubC, preC, designC, oneC]);
    const host = stats(hostC.times);
    const pre = stats(preC.times);
    const stub = stats(stubC.times);
    const design = stats(designC.times);
    const oneKubectl = stats(oneC.times);
    const load = (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
    console.log(
      `stub_bench: kwok node (no runtime), ${RUNS} interleaved rounds after ${WARMUP} warm-up ` +
        `rounds, same pod and API server (load average ${load})`,
    );
    console.log(
      `  ks-stub status, installed host tree     median ${f(host.median)}  p90 ${f(host.p90)}` +
        `  -> ${(host.median / pre.median).toFixed(2)}x the preinstalled per-tool bundle`,
    );
    console.log(
      `  ks-stub status, multi-call bundle       median ${f(stub.median)}  p90 ${f(stub.p90)}`,
    );
    console.log(
      `  ks-stub status, preinstalled (per-tool)  median ${f(pre.median)}  p90 ${f(pre.p90)}`,
    );
    console.log(
      `  design's kubectl stub status (2 calls)  median ${f(design.median)}  p90 ${f(design.p90)}` +
        `  -> the installed ks-stub takes ${(host.median / design.median).toFixed(2)}x its time`,
    );
    console.log(
      `  one kubectl get pods (anchor)           median ${f(oneKubectl.median)}  p90 ${
        f(oneKubectl.p90)
      }  -> the installed ks-stub takes ${(host.median / oneKubectl.median).toFixed(2)}x its time`,
    );
  } finally {
    await kube.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await main();
