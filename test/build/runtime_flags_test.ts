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

Deno.test("require shim: none without CommonJS; lazy built-ins, no static import, createRequire only for other ids", async () => {
  assert.equal(requireShim("console.log(1);\n"), undefined);
  const shim = requireShim('var __require = (x) => x;\nvar a = __require("node:process");\n')!;
  assert.doesNotMatch(shim, /^import /m);
  // The shim really serves built-ins (with and without the node: prefix) once evaluated.
  const mod = `data:text/javascript,${encodeURIComponent(shim + "export { require };\n")}`;
  const { require } = await import(mod);
  assert.equal(require("node:process"), process);
  assert.equal(typeof require("events"), "function");
});
