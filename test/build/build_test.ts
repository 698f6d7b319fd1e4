import assert from "node:assert/strict";
import { bundlePath, bundleTools, listTools } from "../../src/build/bundle.ts";
import { compileKs, compileTools, denortUnavailableReason } from "../../src/build/compile.ts";
import { VERSION } from "../../src/version.ts";

const tools = listTools();
const tool = tools.includes("ks-watchdog") ? "ks-watchdog" : tools[0];

Deno.test({
  name: "a bundled tool runs on its own and reports the product version",
  ignore: tool === undefined,
  async fn() {
    await bundleTools({ only: [tool] });
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-config", bundlePath(tool), "--version"],
      cwd: "/",
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.equal(new TextDecoder().decode(out.stdout).trim(), `${tool} ${VERSION}`);
  },
});

const noDenort = denortUnavailableReason();
if (noDenort) console.error(`skipping the compile test: ${noDenort}`);

Deno.test({
  name: `a compiled tool runs as a single file${noDenort ? ` (skipped: ${noDenort})` : ""}`,
  ignore: tool === undefined || noDenort !== undefined,
  async fn() {
    const [result] = await compileTools([tool]);
    const out = await new Deno.Command(result.output, {
      args: ["--version"],
      stdout: "piped",
    }).output();
    assert.equal(new TextDecoder().decode(out.stdout).trim(), `${tool} ${VERSION}`);
  },
});

Deno.test({
  name: `the compiled ks dispatches on the name it is started as${
    noDenort ? ` (skipped: ${noDenort})` : ""
  }`,
  ignore: noDenort !== undefined,
  async fn() {
    const results = await compileKs();
    for (const r of results) {
      const out = await new Deno.Command(r.output, {
        args: ["--version"],
        clearEnv: true,
        stdout: "piped",
      }).output();
      assert.equal(new TextDecoder().decode(out.stdout).trim(), `${r.tool} ${VERSION}`);
    }
    const stub = await new Deno.Command(results[0].output, {
      args: ["stub", "telemetry", "bogus"],
      clearEnv: true,
      stderr: "piped",
    }).output();
    assert.equal(stub.code, 2);
  },
});

Deno.test({
  name: "compiling without a base binary fails with one line naming DENORT_BIN",
  ignore: tool === undefined,
  async fn() {
    const saved = Deno.env.get("DENORT_BIN");
    Deno.env.set("DENORT_BIN", "/nonexistent/denort");
    try {
      await assert.rejects(
        () => compileTools([tool]),
        (e: Error) => e.message.includes("DENORT_BIN") && !e.message.includes("\n"),
      );
    } finally {
      if (saved === undefined) Deno.env.delete("DENORT_BIN");
      else Deno.env.set("DENORT_BIN", saved);
    }
  },
});
