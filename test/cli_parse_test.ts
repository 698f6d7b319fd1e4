import assert from "node:assert/strict";
import { parseArgs } from "node:util";
import { parseCli, UsageError } from "../src/cli.ts";

const options = {
  feature: { type: "string" },
  tcp: { type: "string", multiple: true },
  once: { type: "boolean", default: false },
  out: { type: "string", short: "o" },
  interval: { type: "string", default: "60s" },
  "allow-root": { type: "string", multiple: true, default: [] as string[] },
} as const;

Deno.test("flags parse as node:util parseArgs (strict) parses them, errors included", () => {
  const cases: string[][] = [
    [],
    ["--feature", "telemetry", "--once"],
    ["--feature=telemetry", "--tcp", "a:1", "--tcp=b:2", "pos"],
    ["-o", "dir", "spec.yaml"],
    ["-odir"],
    ["--allow-root", "/a", "--allow-root", "/b", "--interval", "5s"],
    ["x", "--", "--feature", "-n"],
    ["--feature="],
    ["-"],
    ["--unknown"],
    ["--feature"],
    ["--feature", "--once"],
    ["--feature", "-"],
    ["--tcp", "a", "x", "--tcp", "b"],
    ["--once=yes"],
    ["-z"],
  ];
  for (const args of cases) {
    let expected: unknown;
    try {
      const r = parseArgs({ args, options, allowPositionals: true, strict: true });
      expected = { values: { ...r.values }, positionals: r.positionals };
    } catch (e) {
      expected = `error: ${(e as Error).message.split("\n")[0]}`;
    }
    let actual: unknown;
    try {
      const r = parseCli({ tool: "ks-x", help: "", options }, args);
      actual = { values: { ...r.values }, positionals: r.positionals };
    } catch (e) {
      assert.ok(e instanceof UsageError, `${args}: ${e}`);
      actual = `error: ${e.message}`;
    }
    assert.deepEqual(actual, expected, JSON.stringify(args));
  }
});

Deno.test("a tool without positionals refuses one, naming it", () => {
  assert.throws(
    () => parseCli({ tool: "ks-x", help: "", options, allowPositionals: false }, ["stray"]),
    (e: unknown) => e instanceof UsageError && /Unexpected argument 'stray'/.test(e.message),
  );
});
