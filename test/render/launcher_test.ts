// The rendered launcher run for real by /bin/sh, as systemd runs it, against a recording stand-in
// for ks-stub (named so: it only writes its argv to a file).
import assert from "node:assert/strict";
import { parseFeatureSpec } from "../../src/feature/parse.ts";
import { stubLauncher } from "../../src/render/host_files.ts";
import { baseSpec, specYaml } from "../feature/spec_fixture.ts";

async function setup(dir: string, kubeconfig?: string): Promise<{ launcher: string; log: string }> {
  const log = `${dir}/calls.log`;
  const fakeStub = `${dir}/recording-ks-stub`;
  await Deno.writeTextFile(fakeStub, `#!/bin/sh\necho "$*" >> ${log}\n`, { mode: 0o755 });
  await Deno.chmod(fakeStub, 0o755);
  const raw = baseSpec();
  raw.stub = { path: fakeStub };
  const spec = parseFeatureSpec(specYaml(raw), "f.yaml");
  const launcher = `${dir}/telemetry.sh`;
  await Deno.writeTextFile(launcher, stubLauncher(spec, kubeconfig), { mode: 0o755 });
  await Deno.chmod(launcher, 0o755);
  return { launcher, log };
}

async function run(launcher: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(launcher, {
    args,
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  return out.code;
}

async function calls(log: string): Promise<string[]> {
  try {
    return (await Deno.readTextFile(log)).trim().split("\n").filter(Boolean);
  } catch {
    return [];
  }
}

Deno.test("the launcher hands every verb and the ASIC argument to ks-stub", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { launcher, log } = await setup(dir, "/etc/kubesonic/telemetry/kubeconfig");
    for (const args of [["start"], ["wait"], ["stop"], ["status"], ["start", "0"]]) {
      assert.equal(await run(launcher, args), 0);
    }
    assert.deepEqual(await calls(log), [
      "telemetry --kube-namespace sonic --kubeconfig /etc/kubesonic/telemetry/kubeconfig start",
      "telemetry --kube-namespace sonic --kubeconfig /etc/kubesonic/telemetry/kubeconfig wait",
      "telemetry --kube-namespace sonic --kubeconfig /etc/kubesonic/telemetry/kubeconfig stop",
      "telemetry --kube-namespace sonic --kubeconfig /etc/kubesonic/telemetry/kubeconfig status",
      "telemetry --kube-namespace sonic --kubeconfig /etc/kubesonic/telemetry/kubeconfig start 0",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ExecStop after the main process ended on its own (EXIT_CODE set) deletes nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { launcher, log } = await setup(dir);
    assert.equal(await run(launcher, ["stop"], { EXIT_CODE: "exited", EXIT_STATUS: "0" }), 0);
    assert.equal(
      await run(launcher, ["stop", "1"], { EXIT_CODE: "killed", EXIT_STATUS: "TERM" }),
      0,
    );
    assert.deepEqual(await calls(log), [], "no ks-stub call");
    // systemctl stop of a running unit: the main process is alive, no EXIT_CODE: the stub stops.
    assert.equal(await run(launcher, ["stop"], { SERVICE_RESULT: "success" }), 0);
    // Other verbs are never skipped.
    assert.equal(await run(launcher, ["start"], { EXIT_CODE: "exited" }), 0);
    assert.deepEqual(await calls(log), [
      "telemetry --kube-namespace sonic stop",
      "telemetry --kube-namespace sonic start",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
