// The rendered launcher run for real by /bin/sh, as systemd runs it, against a recording stand-in
// for ks-stub (named so: it only writes its argv to a file, and for wait prints what a file says).
// The real ks-stub's hand-off runs on the real switch (test/switch: flows, partition).
import assert from "node:assert/strict";
import { parseFeatureSpec } from "../../src/feature/parse.ts";
import { stubLauncher } from "../../src/render/host_files.ts";
import { baseSpec, specYaml } from "../feature/spec_fixture.ts";

/**
 * The stand-in records its argv; its Nth call prints the file `answer.N` if there is one (what a
 * wait hands off: "<pid> <pod uid>") and exits with `code.N` if there is one, else 0.
 */
async function setup(dir: string, kubeconfig?: string): Promise<{ launcher: string; log: string }> {
  const log = `${dir}/calls.log`;
  const fakeStub = `${dir}/recording-ks-stub`;
  await Deno.writeTextFile(
    fakeStub,
    [
      "#!/bin/sh",
      `echo "$*" >> ${log}`,
      `n=$(wc -l < ${log})`,
      `[ -f ${dir}/answer.$n ] && cat ${dir}/answer.$n`,
      `[ -f ${dir}/code.$n ] && exit "$(cat ${dir}/code.$n)"`,
      "exit 0",
      "",
    ].join("\n"),
    { mode: 0o755 },
  );
  await Deno.chmod(fakeStub, 0o755);
  const raw = baseSpec();
  raw.stub = { path: fakeStub };
  const spec = parseFeatureSpec(specYaml(raw), "f.yaml");
  const launcher = `${dir}/telemetry.sh`;
  await Deno.writeTextFile(launcher, stubLauncher(spec, kubeconfig), { mode: 0o755 });
  await Deno.chmod(launcher, 0o755);
  return { launcher, log };
}

function command(launcher: string, args: string[], env: Record<string, string> = {}) {
  return new Deno.Command(launcher, {
    args,
    env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", ...env },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  });
}

async function run(launcher: string, args: string[], env: Record<string, string> = {}) {
  return (await command(launcher, args, env).output()).code;
}

/** PIDs of processes whose command line is `tail --pid=<pid> …`. */
async function tailsOf(pid: number): Promise<number[]> {
  const found: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const argv = (await Deno.readTextFile(`/proc/${e.name}/cmdline`)).split("\0");
      if (argv[0].endsWith("tail") && argv.includes(`--pid=${pid}`)) found.push(Number(e.name));
    } catch { /* gone */ }
  }
  return found;
}

/** A process to hand off on (`sleep`), and a way to end it. */
function sleeper() {
  const child = new Deno.Command("sleep", { args: ["300"], stdout: "null", stderr: "null" })
    .spawn();
  return {
    pid: child.pid,
    async end() {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
    },
  };
}

async function until(what: string, ok: () => Promise<boolean>) {
  for (let i = 0; i < 300; i++) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`not within 30 s: ${what}`);
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
      "telemetry --kube-namespace sonic --kubeconfig /etc/kubesonic/telemetry/kubeconfig wait " +
      "--hand-off",
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

Deno.test("wait: the launcher watches the handed-off process and runs wait again once it ends", async () => {
  const dir = await Deno.makeTempDir();
  const first = sleeper();
  const second = sleeper();
  try {
    const { launcher, log } = await setup(dir);
    await Deno.writeTextFile(`${dir}/answer.1`, `${first.pid} pod-a/uid-1\n`);
    await Deno.writeTextFile(`${dir}/answer.2`, `${second.pid} pod-b/uid-2\n`);
    const child = command(launcher, ["wait", "0"]).spawn();
    await until(
      "a tail watching the first process",
      async () => (await tailsOf(first.pid)).length === 1,
    );
    assert.equal((await calls(log)).length, 1, "no second wait while the process runs");
    await first.end();
    await until(
      "a tail watching the second process",
      async () => (await tailsOf(second.pid)).length === 1,
    );
    await second.end();
    // The third wait prints nothing: the instance is gone for good, the launcher returns 0.
    const out = await child.output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.deepEqual(await calls(log), [
      "telemetry --kube-namespace sonic wait --hand-off 0",
      "telemetry --kube-namespace sonic wait --hand-off --following pod-a/uid-1 0",
      "telemetry --kube-namespace sonic wait --hand-off --following pod-b/uid-2 0",
    ]);
  } finally {
    await first.end();
    await second.end();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("wait: a failing wait's exit code is the launcher's", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { launcher } = await setup(dir);
    await Deno.writeTextFile(`${dir}/code.1`, "1");
    assert.equal(await run(launcher, ["wait"]), 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** The launcher's wait, handed off on `watched` by the stand-in; returns once its tail watches. */
async function handedOff(dir: string, watched: { pid: number }) {
  const { launcher, log } = await setup(dir);
  await Deno.writeTextFile(`${dir}/answer.1`, `${watched.pid} pod-a/uid-1\n`);
  const child = command(launcher, ["wait"]).spawn();
  let tails: number[] = [];
  await until(
    "a tail watching the process",
    async () => (tails = await tailsOf(watched.pid)).length === 1,
  );
  return { child, log, tail: tails[0] };
}

for (
  const [what, victim] of [
    ["SIGTERM to the launcher (systemd stopping the unit)", "launcher"],
    ["a tail killed by a signal", "tail"],
  ] as const
) {
  Deno.test(`wait: ${what} ends the launcher with 0, its tail and no other wait`, async () => {
    const dir = await Deno.makeTempDir();
    const watched = sleeper();
    try {
      const { child, log, tail } = await handedOff(dir, watched);
      if (victim === "launcher") child.kill("SIGTERM");
      else Deno.kill(tail, "SIGTERM");
      const out = await child.output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      assert.equal(new TextDecoder().decode(out.stderr), "", "no job message in the journal");
      await until("the tail gone", async () => (await tailsOf(watched.pid)).length === 0);
      assert.equal((await calls(log)).length, 1, "no wait after it");
    } finally {
      await watched.end();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("wait: without tail on PATH the launcher runs wait resident (no --hand-off)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { launcher, log } = await setup(dir);
    // A PATH with sh's helpers but no tail: the shell's builtins and a bin dir of our own.
    const bin = `${dir}/bin`;
    await Deno.mkdir(bin);
    for (const tool of ["cat", "wc"]) await Deno.symlink(`/usr/bin/${tool}`, `${bin}/${tool}`);
    assert.equal(await run(launcher, ["wait"], { PATH: bin }), 0);
    assert.deepEqual(await calls(log), ["telemetry --kube-namespace sonic wait"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
