import assert from "node:assert/strict";
import { launcherScript, requireShim } from "../../src/build/bundle.ts";
import { runtimeFlags } from "../../src/build/runtime_flags.ts";

Deno.test("the resident tools get the memory flags; the short-lived ones and unknown names none", () => {
  for (const tool of ["ks-watchdog", "ks-patcher", "ks-entrypoint"]) {
    const flags = runtimeFlags(tool);
    assert.ok(flags.includes("--no-code-cache"), `${tool}: ${flags}`);
    const v8 = flags.find((f) => f.startsWith("--v8-flags="));
    assert.ok(v8?.includes("--lite-mode") && v8.includes("--max-semi-space-size=1"), `${tool}`);
  }
  for (const tool of ["ks-memory-checker", "ks-container-checker", "ks-stub", "ks-render", "x"]) {
    assert.deepEqual(runtimeFlags(tool), [], tool);
  }
  // A copy: callers may push to it without changing the next caller's flags.
  runtimeFlags("ks-watchdog").push("--inspect");
  assert.ok(!runtimeFlags("ks-watchdog").includes("--inspect"));
});

Deno.test("the launcher passes the tool's runtime flags before its bundle", () => {
  const script = launcherScript("ks-watchdog");
  assert.ok(script.startsWith("#!/bin/sh\n"));
  const exec = script.split("\n").find((l) => l.startsWith("exec "))!;
  const flags = runtimeFlags("ks-watchdog").join(" ");
  assert.ok(exec.includes(`--quiet ${flags} "$(dirname "$0")/../ks-watchdog.js" "$@"`), exec);
  assert.ok(launcherScript("ks-stub").includes(`--quiet "$(dirname "$0")/../ks-stub.js"`));
});

Deno.test("printed for shell scripts on one line; a bad call exits 2", async () => {
  const url = new URL("../../src/build/runtime_flags.ts", import.meta.url).pathname;
  const ok = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-config", url, "ks-patcher"],
    stdout: "piped",
  }).output();
  assert.equal(new TextDecoder().decode(ok.stdout), runtimeFlags("ks-patcher").join(" ") + "\n");
  const bad = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-config", url],
    stderr: "piped",
  }).output();
  assert.equal(bad.code, 2);
  assert.match(new TextDecoder().decode(bad.stderr), /^usage: /);
});

Deno.test("require shim: none without CommonJS, exactly the required built-ins, createRequire for dynamic ids", () => {
  assert.equal(requireShim("console.log(1);\n"), undefined);
  const shim = requireShim(
    'var __require = (x) => x;\nvar a = __require("node:process");\nvar b = __require("events");\n',
  )!;
  assert.match(shim, /import \* as __ks0 from "node:events";/);
  assert.match(shim, /import \* as __ks1 from "node:process";/);
  assert.doesNotMatch(shim, /node:module/);
  for (const other of ["__require(name)", '__require("./local.js")']) {
    const shim = requireShim(
      `var __require = (x) => x;\nvar a = __require("node:os");\n${other};\n`,
    )!;
    assert.match(shim, /createRequire/, other);
  }
});
