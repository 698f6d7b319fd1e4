// The rules every tool shares (src/cli.ts), checked on the bundled tools: --help lists the exit
// codes; bad input (a file the command line names) exits 2 in every tool, like a usage error; the
// ASIC namespace and the Kubernetes namespace have names of their own, and the old shared
// `--namespace` / `KS_NAMESPACE` still work with one deprecation line.
import assert from "node:assert/strict";
import { runTool } from "../sandbox/harness/bin.ts";

const TOOLS = [
  "ks-entrypoint",
  "ks-watchdog",
  "ks-patcher",
  "ks-stub",
  "ks-render",
  "ks-container-checker",
  "ks-memory-checker",
  "ks-rollout",
];

Deno.test("every tool's --help lists its exit codes and shows an example", async () => {
  for (const tool of TOOLS) {
    const r = await runTool(tool, ["--help"]);
    assert.equal(r.code, 0, tool);
    assert.match(r.stdout, /Exit codes[^:]*:[^\n]*\b0\b/, `${tool} --help lists exit codes`);
    assert.match(r.stdout, /\b2\b[^\n]*(usage|invalid arguments)/, `${tool}: 2 is a usage error`);
    assert.match(r.stdout, /Examples?[^\n]*:\n/, `${tool} --help has an example`);
  }
});

Deno.test("a bad input file exits 2 in every tool that reads one, with one line naming it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ks-cli-" });
  try {
    const bad = `${dir}/bad.yaml`;
    await Deno.writeTextFile(bad, "kind: [unclosed\n");
    const cases: [string, string[]][] = [
      ["ks-render", [bad, "-o", `${dir}/out`]],
      ["ks-patcher", ["--manifest", bad, "--allow-root", dir, "--host-root", dir, "--once"]],
      ["ks-rollout", ["status", "telemetry", "--kubeconfig", bad]],
      ["ks-stub", ["telemetry", "stop", "--node", "sw1", "--kubeconfig", bad]],
    ];
    for (const [tool, args] of cases) {
      const r = await runTool(tool, args);
      assert.equal(r.code, 2, `${tool}: ${r.stderr}`);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, `${tool}: ${r.stderr}`);
      assert.match(lines[0], /bad\.yaml/, tool);
    }
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name),
      ["bad.yaml"],
      "nothing written",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the old --namespace of the pod tools means the ASIC namespace: one deprecation line", async () => {
  const r = await runTool("ks-watchdog", ["probe", "--feature", "bmp", "--namespace", "asicX"]);
  assert.equal(r.code, 2, r.stderr);
  assert.deepEqual(r.stderr.trim().split("\n"), [
    "ks-watchdog: warning: --namespace is deprecated, use --asic-namespace (the multi-ASIC namespace)",
    'ks-watchdog: --asic-namespace: "asicX" is not an ASIC namespace (asic0, asic1, ...) (see ks-watchdog --help)',
  ]);
});

Deno.test("ks-rollout reads the Kubernetes namespace from KS_KUBE_NAMESPACE, the old KS_NAMESPACE with a warning", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ks-cli-" });
  const args = ["status", "telemetry", "--kubeconfig", `${dir}/missing`];
  try {
    const old = await runTool("ks-rollout", args, { env: { KS_NAMESPACE: "Not_A_Name" } });
    assert.equal(old.code, 2);
    assert.deepEqual(old.stderr.trim().split("\n"), [
      "ks-rollout: warning: KS_NAMESPACE is deprecated, use KS_KUBE_NAMESPACE (the Kubernetes namespace)",
      'ks-rollout: --kube-namespace: "Not_A_Name" is not a Kubernetes namespace name (see ks-rollout --help)',
    ]);
    // The new name wins and the old one is then not read: no warning.
    const both = await runTool("ks-rollout", args, {
      env: { KS_NAMESPACE: "Not_A_Name", KS_KUBE_NAMESPACE: "sonic" },
    });
    assert.equal(both.code, 2);
    assert.doesNotMatch(both.stderr, /deprecated|Not_A_Name/);
    assert.match(both.stderr, /missing/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ks-stub takes --kube-namespace (the old --namespace with a warning) and never KS_NAMESPACE", async () => {
  const base = ["telemetry", "stop", "--node", "sw1"];
  const old = await runTool("ks-stub", [...base, "--namespace", "Bad_NS"]);
  assert.equal(old.code, 2);
  assert.deepEqual(old.stderr.trim().split("\n"), [
    "ks-stub: warning: --namespace is deprecated, use --kube-namespace (the Kubernetes namespace)",
    'ks-stub: --kube-namespace: "Bad_NS" is not a Kubernetes namespace name (see ks-stub --help)',
  ]);
  const env = await runTool("ks-stub", base, {
    env: { KS_KUBE_NAMESPACE: "Bad_NS", KS_NAMESPACE: "asic0" },
  });
  assert.equal(env.code, 2);
  assert.match(env.stderr, /--kube-namespace: "Bad_NS"/);
  assert.doesNotMatch(env.stderr, /deprecated|asic0/);
});
