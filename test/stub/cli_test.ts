// ks-stub's command line, run as the bundled tool: help with an example and the exit codes,
// version, usage errors as one line with exit 2 (status: LSB's 4), and a kubeconfig that cannot be
// used as one line (status: 4, others: 2, bad input as in every tool).
import assert from "node:assert/strict";
import { runTool, toolCommand } from "../../sandbox/harness/bin.ts";

Deno.test("--help shows the verbs and an example; --version prints the version", async () => {
  const help = await runTool("ks-stub", ["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /start\|stop\|restart\|status\|wait/);
  assert.match(help.stdout, /Example[\s\S]*ks-stub telemetry status/);
  assert.match(help.stdout, /Exit codes: status keeps LSB's: 0 running, 3 not running, 4 unknown/);
  const version = await runTool("ks-stub", ["--version"]);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^ks-stub \d+\.\d+\.\d+/);
});

Deno.test("usage errors are one line naming the input: exit 2, or LSB's 4 (unknown) for status", async () => {
  const cases: [string[], RegExp, number][] = [
    [[], /missing <feature>/, 2],
    [["telemetry"], /missing verb/, 2],
    [["telemetry", "reload"], /unknown verb "reload"/, 2],
    [["telemetry", "stop", "--timeout", "soon"], /--timeout: "soon" is not a duration/, 2],
    [["telemetry", "start", "--kube-namespace", "Bad_NS"], /--kube-namespace: "Bad_NS"/, 2],
    [["telemetry", "wait", "--following", "uid-only"], /--following: "uid-only" is not/, 2],
    [["telemetry", "wait", "--following", "p/u\u0001"], /--following: "p\/u\\u0001" is not/, 2],
    [["telemetry", "start", "--hand-off"], /--hand-off and --following are options of wait/, 2],
    // status answers LSB: 1 and 2 would mean "dead", so anything but an answer is 4.
    [["telemetry", "status", "asicX"], /asic "asicX"/, 4],
    [["telemetry", "status", "--output", "yaml"], /--output: "yaml"/, 4],
    [["telemetry", "status", "--timeout", "soon"], /--timeout: "soon" is not a duration/, 4],
    [["telemetry", "status", "--node", "bad_node"], /node name "bad_node"/, 4],
    [["telemetry", "status", "--bogus"], /bogus/, 4],
  ];
  for (const [args, re, code] of cases) {
    const out = await runTool("ks-stub", args);
    assert.equal(out.code, code, `${args.join(" ")}: ${out.stderr}`);
    const lines = out.stderr.trim().split("\n");
    assert.equal(lines.length, 1, out.stderr);
    assert.match(lines[0], re);
  }
});

Deno.test(
  "an unusable kubeconfig is one line: status without a runtime says unknown (4), stop bad input (2)",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "ks-stub-cli-" });
    try {
      const bad = `${dir}/kubeconfig`;
      await Deno.writeTextFile(bad, "apiVersion: v1\nkind: Config\nclusters: 3\n");
      const status = await runTool("ks-stub", [
        "telemetry",
        "status",
        "--node",
        "sw1",
        "--kubeconfig",
        bad,
        "--runtime-socket",
        "none",
        "--output",
        "json",
      ]);
      assert.equal(status.code, 4, status.stdout + status.stderr);
      const report = JSON.parse(status.stdout);
      assert.equal(report.state, "unknown");
      assert.equal(report.source, "api");
      assert.match(report.detail, /clusters/);
      // With a runtime (here: its socket missing) status never reads the kubeconfig.
      const local = await runTool("ks-stub", [
        "telemetry",
        "status",
        "--node",
        "sw1",
        "--kubeconfig",
        bad,
        "--output",
        "json",
      ], { env: { KS_RUNTIME_SOCKET: `${dir}/containerd.sock` } });
      assert.equal(local.code, 4, local.stdout + local.stderr);
      assert.equal(JSON.parse(local.stdout).source, "runtime");
      assert.match(JSON.parse(local.stdout).detail, /containerd\.sock: connect ENOENT/);
      const stop = await runTool("ks-stub", ["telemetry", "stop", "--node", "sw1"], {
        env: { KUBECONFIG: `${dir}/missing` },
      });
      assert.equal(stop.code, 2, stop.stderr);
      const lines = stop.stderr.trim().split("\n");
      assert.equal(lines.length, 1, stop.stderr);
      assert.match(lines[0], /ks-stub\[\d+\]: telemetry: ERROR: cannot use the kubeconfig/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("a bounded verb dies at once on SIGTERM (systemd's start timeout)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ks-stub-cli-" });
  // A server that accepts and never answers: start keeps retrying within its 20 s bound.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const held: Deno.Conn[] = [];
  (async () => {
    for await (const c of listener) held.push(c);
  })().catch(() => {});
  try {
    await Deno.writeTextFile(
      `${dir}/kubeconfig`,
      `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "http://127.0.0.1:${port}"}
users:
- name: u
  user: {token: t}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
`,
    );
    const cmd = await toolCommand("ks-stub", [
      "telemetry",
      "start",
      "--node",
      "sw1",
      "--kubeconfig",
      `${dir}/kubeconfig`,
    ], { stdout: "null", stderr: "null" });
    const child = cmd.spawn();
    await new Promise((r) => setTimeout(r, 1500));
    const t0 = Date.now();
    child.kill("SIGTERM");
    const status = await child.status;
    assert.equal(status.signal, "SIGTERM");
    assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms to die`);
  } finally {
    listener.close();
    for (const c of held) c.close();
    await Deno.remove(dir, { recursive: true });
  }
});
