// End-to-end through the bundled `ks-patcher` (test/harness/bin.ts), with the recording systemctl
// first on PATH.
import assert from "node:assert/strict";
import { runTool } from "../../sandbox/harness/bin.ts";
import { waitUntil } from "../../sandbox/harness/net.ts";
import {
  createPatcherSandbox,
  DROPIN,
  KUBE_CHECKER,
  KUBE_LAUNCHER,
  NATIVE_LAUNCHER,
  spawnPatcherLoop,
} from "../../sandbox/fixtures/patcher_host.ts";

Deno.test("ks-patcher --once converges (exit 0), prints JSON, and a second run changes nothing", async () => {
  const sb = await createPatcherSandbox();
  try {
    const env = { PATH: sb.systemctl.path };
    const first = await runTool("ks-patcher", [...sb.cliArgs(), "--once", "--output", "json"], {
      env,
    });
    assert.equal(first.code, 0, first.stderr);
    const result = JSON.parse(first.stdout);
    assert.equal(result.converged, true);
    assert.equal(result.changed.length, 3);
    assert.match(
      first.stderr,
      /ks-patcher\[\d+\]: telemetry: file reconciled path=\/usr\/local\/bin\/telemetry.sh/,
    );
    assert.equal(Deno.readTextFileSync(sb.host("usr/local/bin/telemetry.sh")), KUBE_LAUNCHER);
    const calls = sb.systemctl.calls().length;
    const second = await runTool("ks-patcher", [...sb.cliArgs(), "--once"], { env });
    assert.equal(second.code, 0);
    assert.match(second.stdout, /^converged$/m);
    assert.equal(sb.systemctl.calls().length, calls);
  } finally {
    await sb.cleanup();
  }
});

Deno.test("ks-patcher with an invalid manifest exits 2 with one line naming the file and field, writing nothing", async () => {
  const sb = await createPatcherSandbox();
  try {
    const bad = await Deno.readTextFile(sb.manifestPath);
    await Deno.writeTextFile(sb.manifestPath, bad.replace('mode: "0644"', 'mode: "rw-r--r--"'));
    const out = await runTool("ks-patcher", [...sb.cliArgs(), "--once"], {
      env: { PATH: sb.systemctl.path },
    });
    assert.equal(out.code, 2);
    const lines = out.stderr.trim().split("\n");
    assert.equal(lines.length, 1, out.stderr);
    assert.match(lines[0], new RegExp(`manifest ${sb.manifestPath}: files\\[1\\]\\.mode:`));
    assert.equal(Deno.readTextFileSync(sb.host("usr/local/bin/telemetry.sh")), NATIVE_LAUNCHER);
    assert.throws(() => Deno.statSync(sb.stateDir));
    assert.equal(sb.systemctl.calls().length, 0);
  } finally {
    await sb.cleanup();
  }
});

Deno.test("ks-patcher refuses a missing --allow-root with a usage error (exit 2)", async () => {
  const out = await runTool("ks-patcher", ["--manifest", "/nonexistent.yaml", "--once"]);
  assert.equal(out.code, 2);
  assert.match(out.stderr, /--allow-root/);
});

Deno.test("ks-patcher --dry-run prints the plan and touches nothing", async () => {
  const sb = await createPatcherSandbox();
  try {
    const out = await runTool("ks-patcher", [...sb.cliArgs(), "--dry-run"], {
      env: { PATH: sb.systemctl.path },
    });
    assert.equal(out.code, 0, out.stderr);
    assert.match(
      out.stdout,
      /^write +\/usr\/local\/bin\/telemetry.sh .*actions: daemon-reload, restart telemetry/m,
    );
    assert.match(out.stdout, /dry run: 3 change\(s\) planned, nothing touched/);
    assert.equal(Deno.readTextFileSync(sb.host("usr/local/bin/telemetry.sh")), NATIVE_LAUNCHER);
    assert.throws(() => Deno.statSync(sb.stateDir));
    assert.equal(sb.systemctl.calls().length, 0);
  } finally {
    await sb.cleanup();
  }
});

Deno.test("the ks-patcher loop undoes a postupgrade sed -i on inotify and stops cleanly on SIGTERM", async () => {
  const sb = await createPatcherSandbox();
  const child = await spawnPatcherLoop(sb, "10m", "piped");
  try {
    const checker = sb.host("usr/bin/container_checker");
    await waitUntil(() => Deno.readTextFileSync(checker) === KUBE_CHECKER, 20_000, "first pass");
    await waitUntil(() => sb.systemctl.calls().length === 3, 30_000, "first actions");
    const sed = await new Deno.Command("sed", { args: ["-i", "s/k8s/native/", checker] }).output();
    assert.ok(sed.success);
    // The periodic check is 10 minutes away: only the file event can repair it this fast.
    await waitUntil(
      () => Deno.readTextFileSync(checker) === KUBE_CHECKER,
      5_000,
      "repair on inotify",
    );
    await waitUntil(() => sb.systemctl.calls().length === 5, 30_000, "actions of the repair");
    assert.deepEqual(sb.systemctl.calls().slice(3), [
      "systemctl daemon-reload",
      "systemctl restart monit",
    ]);
    child.kill("SIGTERM");
    const status = await child.status;
    assert.equal(status.code, 0);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.stderr.cancel().catch(() => {});
    await child.status;
    await sb.cleanup();
  }
});

Deno.test("a patcher SIGKILLed with failing actions leaves them journaled; a restarted patcher runs them", async () => {
  const sb = await createPatcherSandbox();
  sb.systemctl.failNext(1000);
  const child = await spawnPatcherLoop(sb, "10m");
  try {
    const journal = `${sb.stateDir}/journal/telemetry.json`;
    await waitUntil(
      () => {
        try {
          return Deno.statSync(journal).isFile && sb.systemctl.calls().length >= 2;
        } catch {
          return false;
        }
      },
      20_000,
      "journaled, failing actions being retried",
    );
    child.kill("SIGKILL");
    await child.status;
    // A systemctl the killed patcher had started may still be running: let it finish first.
    let last = -1;
    while (sb.systemctl.calls().length !== last) {
      last = sb.systemctl.calls().length;
      await new Promise((r) => setTimeout(r, 200));
    }
    sb.systemctl.failNext(0);
    const before = sb.systemctl.calls().length;
    const out = await runTool("ks-patcher", [...sb.cliArgs(), "--once"], {
      env: { PATH: sb.systemctl.path },
    });
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(sb.systemctl.calls().slice(before), [
      "systemctl daemon-reload",
      "systemctl restart telemetry",
      "systemctl restart monit",
    ]);
    assert.throws(() => Deno.statSync(journal));
    assert.equal(Deno.readTextFileSync(sb.host("usr/bin/container_checker")), KUBE_CHECKER);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
    await sb.cleanup();
  }
});

Deno.test("the loop repairs a drop-in whose directory was removed and keeps watching the recreated directory", async () => {
  const sb = await createPatcherSandbox();
  const child = await spawnPatcherLoop(sb, "10m");
  try {
    const dir = sb.host("etc/systemd/system/telemetry.service.d");
    const dropin = `${dir}/kubesonic.conf`;
    const read = () => {
      try {
        return Deno.readTextFileSync(dropin);
      } catch {
        return null;
      }
    };
    await waitUntil(
      () => read() === DROPIN && sb.systemctl.calls().length === 3,
      20_000,
      "first pass",
    );
    await Deno.remove(dir, { recursive: true });
    await waitUntil(() => read() === DROPIN, 30_000, "drop-in back after rm -rf of its directory");
    await new Promise((r) => setTimeout(r, 100));
    await Deno.writeTextFile(dropin, "[Service]\nExecStartPre=/usr/bin/telemetry.sh start\n");
    await waitUntil(() => read() === DROPIN, 30_000, "edit in the recreated directory repaired");
  } finally {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await child.status;
    await sb.cleanup();
  }
});

Deno.test("the periodic re-check reloads a changed manifest (ConfigMap update) and installs the new content", async () => {
  const sb = await createPatcherSandbox();
  const child = await spawnPatcherLoop(sb, "300ms", "piped");
  const stderr: string[] = [];
  const reading = (async () => {
    const dec = new TextDecoder();
    for await (const chunk of child.stderr) stderr.push(dec.decode(chunk));
  })();
  try {
    const launcher = sb.host("usr/local/bin/telemetry.sh");
    await waitUntil(() => Deno.readTextFileSync(launcher) === KUBE_LAUNCHER, 20_000, "first pass");
    const v2 = KUBE_LAUNCHER.replace("kubesonic stub launcher", "kubesonic stub launcher v2");
    await Deno.writeTextFile(`${sb.sidecarDir}/files/telemetry.sh`, v2);
    await waitUntil(
      () => Deno.readTextFileSync(launcher) === v2,
      10_000,
      "v2 installed by a periodic pass",
    );
    // A broken manifest update is refused; the last good one keeps being enforced.
    await Deno.writeTextFile(sb.manifestPath, "apiVersion: kubesonic.io/v1\nkind: HostFiles\n");
    await waitUntil(
      () => stderr.join("").includes("keeping the previous manifest"),
      10_000,
      "bad reload logged",
    );
    await Deno.writeTextFile(launcher, "edited\n");
    await waitUntil(() => Deno.readTextFileSync(launcher) === v2, 10_000, "still enforced");
  } finally {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await child.status;
    await reading;
    await sb.cleanup();
  }
});
