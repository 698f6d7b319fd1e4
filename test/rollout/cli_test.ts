// ks-rollout's command line without a cluster: help with an example and the exit codes, version,
// usage errors and bad input as one line with exit 2, an unreachable API server exit 1 (the
// bundled tool, as operators run it).
import assert from "node:assert/strict";
import { runTool } from "../../sandbox/harness/bin.ts";

Deno.test("ks-rollout --help shows usage with an example; --version prints the version", async () => {
  const help = await runTool("ks-rollout", ["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage: ks-rollout <feature> --to/);
  assert.match(help.stdout, /Example:\n\s+ks-rollout telemetry --to/);
  const version = await runTool("ks-rollout", ["--version"]);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^ks-rollout \S+/);
});

Deno.test("ks-rollout rejects bad input with one line naming it and exit 2", async () => {
  const cases: [string[], RegExp][] = [
    [["telemetry"], /--to is required/],
    [["telemetry", "--to", "2", "--waves", "1,abc"], /--waves: "abc"/],
    [["telemetry", "--to", "2", "--failure-budget", "lots"], /--failure-budget: "lots"/],
    [["telemetry", "--to", "2", "--bake", "soon"], /--bake: "soon" is not a duration/],
    [["telemetry", "--to", "2", "--max-in-flight", "0"], /--max-in-flight: "0"/],
    [["telemetry", "--to", "2", "--output", "xml"], /--output: "xml"/],
    [["telemetry", "--to", "2", "--bogus"], /bogus/],
    [["status"], /missing <feature>/],
    [["Bad_Name!", "--to", "2"], /<feature>: "Bad_Name!"/],
  ];
  for (const [args, pattern] of cases) {
    const r = await runTool("ks-rollout", args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
});

Deno.test("ks-rollout: a kubeconfig that cannot be used is bad input (exit 2), an API server that does not answer a failure (exit 1)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const missing = await runTool("ks-rollout", [
      "status",
      "telemetry",
      "--kubeconfig",
      `${dir}/missing.conf`,
    ]);
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /missing\.conf/);
    assert.equal(missing.stderr.trim().split("\n").length, 1, missing.stderr);
    // A closed port on loopback: nothing listens there.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    await Deno.writeTextFile(
      `${dir}/closed.conf`,
      `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:${port}"}}]
users: [{name: u, user: {}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`,
    );
    const closed = await runTool("ks-rollout", [
      "status",
      "telemetry",
      "--kubeconfig",
      `${dir}/closed.conf`,
    ]);
    assert.equal(closed.code, 1, closed.stderr);
    assert.match(closed.stderr, new RegExp(`127\\.0\\.0\\.1:${port}`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
