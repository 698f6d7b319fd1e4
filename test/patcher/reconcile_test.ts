import assert from "node:assert/strict";
import { reconcileOnce } from "../../src/patcher/reconcile.ts";
import { BackupStore } from "../../src/patcher/backup.ts";
import { IN_MEMORY_MAX, InjectedCrash, type WritePoint } from "../../src/host/files.ts";
import { HashCache } from "../../src/host/hash_cache.ts";
import { join } from "node:path";
import {
  createPatcherSandbox,
  DROPIN,
  KUBE_CHECKER,
  KUBE_LAUNCHER,
  NATIVE_CHECKER,
  NATIVE_LAUNCHER,
  type PatcherSandbox,
  telemetryManifest,
  withPatcherSandbox,
} from "../../sandbox/fixtures/patcher_host.ts";

const text = (p: string) => Deno.readTextFileSync(p);
const mode = (p: string) => (Deno.statSync(p).mode ?? 0) & 0o7777;

/** Runs a pass that crashes (InjectedCrash) at the write point `at`; asserts that it did. */
async function crashingPass(sb: PatcherSandbox, at: WritePoint): Promise<void> {
  const crashing = await sb.context({
    fault: (point) => {
      if (point === at) throw new InjectedCrash("simulated crash");
    },
  });
  await assert.rejects(reconcileOnce(crashing), InjectedCrash);
}

Deno.test("a first pass installs the desired files, backs up originals and runs each action once, in order", () =>
  withPatcherSandbox(async (sb) => {
    const ctx = await sb.context();
    const result = await reconcileOnce(ctx);
    assert.deepEqual(result.errors, []);
    assert.ok(result.converged);
    assert.equal(text(sb.host("usr/local/bin/telemetry.sh")), KUBE_LAUNCHER);
    assert.equal(mode(sb.host("usr/local/bin/telemetry.sh")), 0o755);
    assert.equal(text(sb.host("etc/systemd/system/telemetry.service.d/kubesonic.conf")), DROPIN);
    assert.equal(mode(sb.host("etc/systemd/system/telemetry.service.d/kubesonic.conf")), 0o644);
    // /bin is a symlink to usr/bin (merged /usr): the checker lands in usr/bin.
    assert.equal(text(sb.host("usr/bin/container_checker")), KUBE_CHECKER);
    assert.deepEqual(sb.systemctl.calls(), [
      "systemctl daemon-reload",
      "systemctl restart telemetry",
      "systemctl restart monit",
    ]);
    const backups = new BackupStore(sb.stateDir);
    const launcher = await backups.get("/usr/local/bin/telemetry.sh");
    assert.equal(new TextDecoder().decode(launcher!.content!), NATIVE_LAUNCHER);
    assert.equal(launcher!.mode, 0o755);
    assert.equal(
      (await backups.get("/etc/systemd/system/telemetry.service.d/kubesonic.conf"))!.absent,
      true,
    );
    assert.equal(
      new TextDecoder().decode((await backups.get("/bin/container_checker"))!.content!),
      NATIVE_CHECKER,
    );
  }));

Deno.test("a pass with nothing changed runs no action and writes nothing", () =>
  withPatcherSandbox(async (sb) => {
    const ctx = await sb.context();
    await reconcileOnce(ctx);
    const before = sb.systemctl.calls().length;
    const inode = Deno.statSync(sb.host("usr/local/bin/telemetry.sh")).ino;
    const result = await reconcileOnce(ctx);
    assert.ok(result.converged);
    assert.deepEqual(result.changed, []);
    assert.equal(sb.systemctl.calls().length, before);
    assert.equal(Deno.statSync(sb.host("usr/local/bin/telemetry.sh")).ino, inode);
  }));

Deno.test("a postupgrade edit is undone, only its file's actions run, and the backup keeps the original", () =>
  withPatcherSandbox(async (sb) => {
    const ctx = await sb.context();
    await reconcileOnce(ctx);
    const sed = await new Deno.Command("sed", {
      args: ["-i", "s/k8s/native/", sb.host("bin/container_checker")],
    }).output();
    assert.ok(sed.success);
    const before = sb.systemctl.calls().length;
    const result = await reconcileOnce(ctx);
    assert.deepEqual(result.changed, ["/bin/container_checker"]);
    assert.equal(text(sb.host("usr/bin/container_checker")), KUBE_CHECKER);
    assert.deepEqual(sb.systemctl.calls().slice(before), [
      "systemctl daemon-reload",
      "systemctl restart monit",
    ]);
    const backup = await new BackupStore(sb.stateDir).get("/bin/container_checker");
    assert.equal(new TextDecoder().decode(backup!.content!), NATIVE_CHECKER);
  }));

Deno.test("a mode change alone is repaired (chmod -x of the launcher)", () =>
  withPatcherSandbox(async (sb) => {
    const ctx = await sb.context();
    await reconcileOnce(ctx);
    await Deno.chmod(sb.host("usr/local/bin/telemetry.sh"), 0o644);
    const result = await reconcileOnce(ctx);
    assert.equal(result.plan.find((p) => p.path === "/usr/local/bin/telemetry.sh")!.op, "meta");
    assert.equal(mode(sb.host("usr/local/bin/telemetry.sh")), 0o755);
  }));

Deno.test("failed actions stay journaled and are retried by the next pass until they succeed", () =>
  withPatcherSandbox(async (sb) => {
    const ctx = await sb.context();
    sb.systemctl.failNext(2);
    const first = await reconcileOnce(ctx);
    assert.equal(first.converged, false);
    assert.deepEqual(first.pending, ["daemon-reload", "restart telemetry", "restart monit"]);
    assert.deepEqual(await ctx.journal.pending(), first.pending);
    const second = await reconcileOnce(ctx); // budget: 1 failure left
    assert.equal(second.converged, false);
    const third = await reconcileOnce(ctx);
    assert.ok(third.converged, third.errors.join("; "));
    assert.deepEqual(third.actionsRun, ["daemon-reload", "restart telemetry", "restart monit"]);
    assert.deepEqual(await ctx.journal.pending(), []);
    assert.deepEqual(third.changed, [], "the files were already right; only the actions were owed");
  }));

Deno.test("a crash after the rename leaves the actions journaled; the next pass runs them", () =>
  withPatcherSandbox(async (sb) => {
    await crashingPass(sb, "renamed");
    assert.equal(sb.systemctl.calls().length, 0);
    const ctx = await sb.context();
    const second = await reconcileOnce(ctx);
    assert.ok(second.converged, second.errors.join("; "));
    assert.deepEqual(sb.systemctl.calls(), [
      "systemctl daemon-reload",
      "systemctl restart telemetry",
      "systemctl restart monit",
    ]);
  }));

Deno.test("a crash before the rename leaves the old file whole and no temp file behind after the next pass", () =>
  withPatcherSandbox(async (sb) => {
    await crashingPass(sb, "temp-written");
    assert.equal(text(sb.host("usr/local/bin/telemetry.sh")), NATIVE_LAUNCHER);
    // What a SIGKILL between write and rename leaves behind:
    await Deno.writeTextFile(
      sb.host("usr/local/bin/.telemetry.sh.ks-tmp-telemetry.4242"),
      "#!/bin/ba",
    );
    // Another feature's temp file may be a write in flight: left alone.
    await Deno.writeTextFile(sb.host("usr/local/bin/.telemetry.sh.ks-tmp-restapi.77"), "#!/bin/ba");
    await reconcileOnce(await sb.context());
    const leftovers = [...Deno.readDirSync(sb.host("usr/local/bin"))].map((e) => e.name);
    assert.deepEqual(leftovers.sort(), [".telemetry.sh.ks-tmp-restapi.77", "telemetry.sh"]);
  }));

Deno.test("dry run prints the plan and touches nothing (no file, no state, no action)", () =>
  withPatcherSandbox(async (sb) => {
    const ctx = await sb.context();
    const result = await reconcileOnce(ctx, { dryRun: true });
    assert.deepEqual(result.plan.map((p) => p.op), ["write", "write", "write"]);
    assert.equal(text(sb.host("usr/local/bin/telemetry.sh")), NATIVE_LAUNCHER);
    assert.throws(() => Deno.statSync(sb.stateDir));
    assert.equal(sb.systemctl.calls().length, 0);
  }));

Deno.test("native mode restores the exact originals, removes files that were absent, and releases ownership", () =>
  withPatcherSandbox(async (sb) => {
    await reconcileOnce(await sb.context());
    const nativePath = await sb.writeManifest(telemetryManifest("native"), "native.yaml");
    const native = await sb.context({ path: nativePath });
    const before = sb.systemctl.calls().length;
    const result = await reconcileOnce(native);
    assert.ok(result.converged, result.errors.join("; "));
    assert.equal(text(sb.host("usr/local/bin/telemetry.sh")), NATIVE_LAUNCHER);
    assert.equal(mode(sb.host("usr/local/bin/telemetry.sh")), 0o755);
    assert.equal(text(sb.host("usr/bin/container_checker")), NATIVE_CHECKER);
    assert.throws(() =>
      Deno.statSync(sb.host("etc/systemd/system/telemetry.service.d/kubesonic.conf"))
    );
    assert.deepEqual(sb.systemctl.calls().slice(before), [
      "systemctl daemon-reload",
      "systemctl restart telemetry",
      "systemctl restart monit",
    ]);
    assert.deepEqual(await native.owners.read(), {});
  }));

Deno.test("native mode uses nativeSource when no backup exists", () =>
  withPatcherSandbox(async (sb) => {
    await Deno.writeTextFile(sb.host("usr/local/bin/telemetry.sh"), "something else\n");
    await Deno.writeTextFile(`${sb.sidecarDir}/native.sh`, NATIVE_LAUNCHER);
    const doc = telemetryManifest("native");
    const files = doc.files as Record<string, unknown>[];
    files[0].nativeSource = "native.sh";
    const path = await sb.writeManifest({ ...doc, files: [files[0]] }, "native.yaml");
    const result = await reconcileOnce(await sb.context({ path }));
    assert.ok(result.converged, result.errors.join("; "));
    assert.equal(text(sb.host("usr/local/bin/telemetry.sh")), NATIVE_LAUNCHER);
  }));

Deno.test("two passes of one feature at once are serialised: the change and its actions happen once", () =>
  withPatcherSandbox(async (sb) => {
    const [a, b] = await Promise.all([sb.context(), sb.context()]);
    const results = await Promise.all([reconcileOnce(a), reconcileOnce(b)]);
    assert.ok(results.every((r) => r.converged));
    assert.equal(results[0].changed.length + results[1].changed.length, 3);
    assert.deepEqual(sb.systemctl.calls(), [
      "systemctl daemon-reload",
      "systemctl restart telemetry",
      "systemctl restart monit",
    ]);
  }));

Deno.test("with the state directory lost, our own content is never recorded as the original", () =>
  withPatcherSandbox(async (sb) => {
    await reconcileOnce(await sb.context());
    await Deno.remove(sb.stateDir, { recursive: true });
    await Deno.chmod(sb.host("usr/local/bin/telemetry.sh"), 0o600);
    const result = await reconcileOnce(await sb.context());
    assert.ok(result.converged, result.errors.join("; "));
    assert.equal(mode(sb.host("usr/local/bin/telemetry.sh")), 0o755);
    assert.equal(await new BackupStore(sb.stateDir).get("/usr/local/bin/telemetry.sh"), null);
    const native = await sb.writeManifest(telemetryManifest("native"), "native.yaml");
    const restore = await reconcileOnce(await sb.context({ path: native }));
    assert.equal(restore.converged, false);
    assert.ok(
      restore.errors.some((e) =>
        e.includes("/usr/local/bin/telemetry.sh: no backup and no nativeSource")
      ),
      restore.errors.join("; "),
    );
    assert.equal(
      text(sb.host("usr/local/bin/telemetry.sh")),
      KUBE_LAUNCHER,
      "left as is, not guessed",
    );
  }));

Deno.test("a rollback restores every original it can when one file has no backup, and keeps owning only that one", () =>
  withPatcherSandbox(async (sb) => {
    await reconcileOnce(await sb.context());
    const key = encodeURIComponent("/usr/local/bin/telemetry.sh");
    await Deno.remove(`${sb.stateDir}/backups/${key}.json`);
    const native = await sb.writeManifest(telemetryManifest("native"), "native.yaml");
    const ctx = await sb.context({ path: native });
    const result = await reconcileOnce(ctx);
    assert.equal(result.converged, false);
    assert.equal(result.errors.length, 1, result.errors.join("; "));
    assert.equal(text(sb.host("usr/bin/container_checker")), NATIVE_CHECKER);
    assert.throws(() =>
      Deno.statSync(sb.host("etc/systemd/system/telemetry.service.d/kubesonic.conf"))
    );
    assert.deepEqual(Object.keys(await ctx.owners.read()), ["/usr/local/bin/telemetry.sh"]);
  }));

Deno.test("a large managed file is not re-read while unchanged, and still repaired when rewritten to the same size and mtime", async () => {
  const sb = await createPatcherSandbox({ extraRoots: ["/usr/local/lib/kubesonic"] });
  try {
    const size = IN_MEMORY_MAX * 4 + 3;
    const want = new Uint8Array(size).fill(0x61);
    await Deno.writeFile(join(sb.sidecarDir, "files/deno"), want);
    const doc = telemetryManifest();
    (doc.files as unknown[]).push({
      path: "/usr/local/lib/kubesonic/t1/bin/deno",
      source: "files/deno",
      mode: "0755",
      maxBytes: size + 1,
    });
    await sb.writeManifest(doc);
    const hashes = new HashCache({ racyMs: 0 });
    const ctx = await sb.context({ hashes });
    const installed = sb.host("usr/local/lib/kubesonic/t1/bin/deno");
    assert.ok((await reconcileOnce(ctx)).converged);
    assert.deepEqual(await Deno.readFile(installed), want);
    // The second pass hashes what the first installed; the third answers it from the cache.
    for (let pass = 2; pass <= 3; pass++) assert.deepEqual((await reconcileOnce(ctx)).changed, []);
    assert.equal(hashes.hits, 1, "the unchanged installed file was answered from the cache");
    // Drift that keeps the size and (touch -r) the mtime to the nanosecond: ctime moves.
    const times = join(sb.dir, "times");
    const touch = (args: string[]) => new Deno.Command("touch", { args }).output();
    assert.ok((await touch(["-r", installed, times])).success);
    const file = await Deno.open(installed, { write: true });
    await file.write(new Uint8Array(4096).fill(0x62));
    file.close();
    assert.ok((await touch(["-r", times, installed])).success);
    const repaired = await reconcileOnce(ctx);
    assert.deepEqual(repaired.changed, ["/usr/local/lib/kubesonic/t1/bin/deno"]);
    assert.deepEqual(await Deno.readFile(installed), want);
  } finally {
    await sb.cleanup();
  }
});
