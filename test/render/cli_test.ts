// ks-render as operators run it: the bundled tool, real files, exit codes.
import assert from "node:assert/strict";
import { runTool } from "../../sandbox/harness/bin.ts";
import { baseSpec, writeSpec } from "../feature/spec_fixture.ts";

async function readTree(dir: string, prefix = ""): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for await (const entry of Deno.readDir(dir)) {
    const rel = prefix + entry.name;
    if (entry.isDirectory) {
      for (const [k, v] of await readTree(`${dir}/${entry.name}`, `${rel}/`)) out.set(k, v);
    } else out.set(rel, await Deno.readFile(`${dir}/${entry.name}`));
  }
  return out;
}

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ks-render-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("ks-render twice gives byte-identical output trees", () =>
  withTemp(async (dir) => {
    for (const out of ["a", "b"]) {
      const r = await runTool("ks-render", [
        "examples/telemetry/feature.yaml",
        "-o",
        `${dir}/${out}`,
      ]);
      assert.equal(r.code, 0, r.stderr);
    }
    const a = await readTree(`${dir}/a`);
    const b = await readTree(`${dir}/b`);
    assert.deepEqual([...a.keys()].sort(), [
      "common/00-namespace.yaml",
      "common/10-rbac.yaml",
      "common/15-admission.yaml",
      "common/20-configmap.yaml",
      "summary.json",
      "v1/30-daemonset.yaml",
      "v2/30-daemonset.yaml",
    ]);
    for (const [path, bytes] of a) assert.deepEqual(b.get(path), bytes, path);
  }));

Deno.test("a bad spec: exit 2 (bad input, as in every tool), one line naming file and field, nothing written", () =>
  withTemp(async (dir) => {
    const spec = baseSpec();
    (spec.resources as Record<string, Record<string, string>>).limits.memory = "400Mx";
    const path = await writeSpec(dir, spec);
    const r = await runTool("ks-render", [path, "-o", `${dir}/out`]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, "");
    assert.equal(
      r.stderr,
      `ks-render: ${path}: resources.limits.memory: "400Mx" is not a quantity (e.g. 100m, 0.5, 400Mi)\n`,
    );
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name),
      ["feature.yaml"],
      "no out dir, no temp dir",
    );
  }));

Deno.test("every kind of bad input (YAML, field, config_db, render-time) writes nothing", () =>
  withTemp(async (dir) => {
    const perAsic = baseSpec();
    perAsic.scope = { global: false, perAsic: true };
    (perAsic.watchdog as Record<string, unknown>).port = 65534;
    const cases: [string, Record<string, unknown> | string, string[], RegExp][] = [
      ["yaml", "name: [unclosed\n", [], /feature\.yaml: not valid YAML/],
      ["unknown field", { ...baseSpec(), extra: 1 }, [], /feature\.yaml: extra: unknown field/],
      [
        "ports past 65535",
        perAsic,
        ["--asics", "4"],
        /feature\.yaml: watchdog\.port: 65534 leaves no room/,
      ],
      [
        "config_db flag",
        baseSpec(),
        ["--config-db", `${dir}/bad_db.json`],
        /bad_db\.json: FEATURE\.telemetry\.has_global_scope: "maybe"/,
      ],
    ];
    await Deno.writeTextFile(
      `${dir}/bad_db.json`,
      JSON.stringify({ FEATURE: { telemetry: { has_global_scope: "maybe" } } }),
    );
    for (const [what, spec, extra, expected] of cases) {
      const path = await writeSpec(dir, spec);
      const r = await runTool("ks-render", [path, ...extra, "-o", `${dir}/out`]);
      assert.equal(r.code, 2, what);
      assert.equal(r.stderr.split("\n").filter(Boolean).length, 1, `${what}: ${r.stderr}`);
      assert.match(r.stderr, expected, what);
      const left = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
      assert.deepEqual(left, ["bad_db.json", "feature.yaml"], `${what}: nothing written`);
    }
    await Deno.writeTextFile(`${dir}/file`, "");
    const r = await runTool("ks-render", ["examples/telemetry/feature.yaml", "-o", `${dir}/file`]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /file: exists and is not a directory\n$/);
  }));

Deno.test("a bad spec leaves an earlier render untouched", () =>
  withTemp(async (dir) => {
    const good = await runTool("ks-render", [
      "examples/telemetry/feature.yaml",
      "-o",
      `${dir}/out`,
    ]);
    assert.equal(good.code, 0, good.stderr);
    const before = await readTree(`${dir}/out`);
    const spec = baseSpec();
    delete spec.command;
    const path = await writeSpec(dir, spec);
    const r = await runTool("ks-render", [path, "-o", `${dir}/out`]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^ks-render: .*feature\.yaml: command: required\n$/);
    assert.deepEqual(await readTree(`${dir}/out`), before);
  }));

Deno.test("re-rendering replaces an earlier output; a foreign directory is refused", () =>
  withTemp(async (dir) => {
    for (let i = 0; i < 2; i++) {
      const r = await runTool("ks-render", ["examples/telemetry/feature.yaml", "-o", `${dir}/out`]);
      assert.equal(r.code, 0, r.stderr);
    }
    await Deno.mkdir(`${dir}/mine`);
    await Deno.writeTextFile(`${dir}/mine/notes.txt`, "keep me");
    const r = await runTool("ks-render", ["examples/telemetry/feature.yaml", "-o", `${dir}/mine`]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /mine: not empty and not an earlier ks-render output/);
    assert.equal(await Deno.readTextFile(`${dir}/mine/notes.txt`), "keep me");
  }));

Deno.test("usage errors exit 2 with one line", async () => {
  for (
    const args of [
      [],
      ["examples/telemetry/feature.yaml"],
      ["examples/telemetry/feature.yaml", "-o", "/tmp/x", "--profile", "test"],
      ["examples/telemetry/feature.yaml", "-o", "/tmp/x", "--asics", "many"],
      ["examples/telemetry/feature.yaml", "-o", "/tmp/x", "--bogus"],
    ]
  ) {
    const r = await runTool("ks-render", args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
  }
});

Deno.test("--config-db of a multi-ASIC switch and --output json: per-ASIC instances in the summary", () =>
  withTemp(async (dir) => {
    const spec = baseSpec();
    const path = await writeSpec(dir, spec);
    await Deno.writeTextFile(
      `${dir}/config_db.json`,
      JSON.stringify({
        localhost: {
          FEATURE: {
            telemetry: { state: "enabled", has_global_scope: "False", has_per_asic_scope: "True" },
          },
        },
        asic0: {},
        asic1: {},
      }),
    );
    const r = await runTool("ks-render", [
      path,
      "--config-db",
      `${dir}/config_db.json`,
      "-o",
      `${dir}/out`,
      "--output",
      "json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.deepEqual(summary.scope, { global: false, perAsic: true, asics: 2, from: "config-db" });
    assert.deepEqual(summary.instances.map((i: { name: string }) => i.name), [
      "telemetry-asic0",
      "telemetry-asic1",
    ]);
    assert.match(
      r.stderr,
      /^ks-render\[\d+\]: telemetry: rendered .*instances=telemetry-asic0,telemetry-asic1/,
    );
  }));

Deno.test("a config_db without the feature is one line naming the file and key", () =>
  withTemp(async (dir) => {
    await Deno.writeTextFile(`${dir}/config_db.json`, JSON.stringify({ FEATURE: { bgp: {} } }));
    const r = await runTool("ks-render", [
      "examples/telemetry/feature.yaml",
      "--config-db",
      `${dir}/config_db.json`,
      "-o",
      `${dir}/out`,
    ]);
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr,
      `ks-render: ${dir}/config_db.json: FEATURE.telemetry: no such FEATURE entry\n`,
    );
    assert.equal([...Deno.readDirSync(dir)].length, 1);
  }));

Deno.test("--help shows an example and --version the version", async () => {
  const help = await runTool("ks-render", ["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Example:\n {2}ks-render examples\/telemetry\/feature.yaml/);
  const version = await runTool("ks-render", ["--version"]);
  assert.match(version.stdout, /^ks-render \d+\.\d+\.\d+\n$/);
});
