// ks-rollout's command line without a cluster: help with an example, version, and usage errors
// as one line with exit 2 (the bundled tool, as operators run it).
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

Deno.test("ks-rollout without a reachable API server fails with one line, exit 1", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const r = await runTool("ks-rollout", [
      "status",
      "telemetry",
      "--kubeconfig",
      `${dir}/missing.conf`,
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /missing\.conf/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
