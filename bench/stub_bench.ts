// `deno task bench stub`: median wall time of `ks-stub <feature> status` (the bundled tool, as
// systemd and featured run it) on a warm host, beside the design's kubectl-based stub
// (`kubectl get pods -l … --field-selector spec.nodeName=…` for the name, then
// `kubectl get pod … -o jsonpath={.status.phase}`), against the same real API server and pod.
import { join } from "node:path";
import { toolArgv } from "../sandbox/harness/bin.ts";
import { kubeBinDir, startKube } from "../sandbox/harness/kube.ts";
import { waitUntil } from "../sandbox/harness/net.ts";
import {
  apply,
  featureDaemonSet,
  podsOn,
  stubRbac,
  TEST_NODE_LABEL,
} from "../sandbox/fixtures/stub_api.ts";

const RUNS = Number(Deno.env.get("KS_BENCH_RUNS") ?? 30);
const WARMUP = 5;
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
async function timeRounds(candidates: Candidate[]): Promise<void> {
  for (let i = 0; i < WARMUP + RUNS; i++) {
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
      if (i >= WARMUP) c.times.push(ms);
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

async function main() {
  const bin = kubeBinDir();
  if (!bin) {
    console.log("stub_bench: skipped (no Kubernetes binaries; run scripts/build-kube.sh)");
    return;
  }
  const kube = await startKube();
  const dir = await Deno.makeTempDir({ prefix: "ks-stub-bench-" });
  try {
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
      ],
      env,
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
    await timeRounds([stubC, designC, oneC]);
    const stub = stats(stubC.times);
    const design = stats(designC.times);
    const oneKubectl = stats(oneC.times);
    const load = (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
    const f = (ms: number) => `${ms.toFixed(1)} ms`;
    console.log(
      `stub_bench: ${RUNS} interleaved rounds after ${WARMUP} warm-up rounds, same pod and API ` +
        `server (load average ${load})`,
    );
    console.log(
      `  ks-stub telemetry status (bundled)      median ${f(stub.median)}  p90 ${f(stub.p90)}`,
    );
    console.log(
      `  design's kubectl stub status (2 calls)  median ${f(design.median)}  p90 ${f(design.p90)}` +
        `  -> ks-stub takes ${(stub.median / design.median).toFixed(2)}x its time`,
    );
    console.log(
      `  one kubectl get pods (anchor)           median ${f(oneKubectl.median)}  p90 ${
        f(oneKubectl.p90)
      }  -> ks-stub takes ${(stub.median / oneKubectl.median).toFixed(2)}x its time`,
    );
  } finally {
    await kube.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await main();
