// The state directory's own temp files: a patcher killed while writing its journal, a backup or
// the ownership registry leaves `.…ks-tmp-…` files there; the next start sweeps this feature's
// (and the registry's, under its lock) through the state directory's descriptors, leaves another
// feature's in-flight ones alone, and never follows a symlink planted among them.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  createPatcherSandbox,
  NATIVE_CHECKER,
  NATIVE_LAUNCHER,
  type PatcherSandbox,
  runPatcherBounded,
} from "../../sandbox/fixtures/patcher_host.ts";
import { toolCommand } from "../../sandbox/harness/bin.ts";

function tempsUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of Deno.readDirSync(d)) {
      const p = join(d, e.name);
      if (e.name.includes(".ks-tmp-")) out.push(p.slice(dir.length + 1));
      if (e.isDirectory) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

Deno.test("temp files a killed writer left in the state directory are swept at start; others' and symlinks are left", async () => {
  const sb = await createPatcherSandbox();
  try {
    const first = await runPatcherBounded(sb, [...sb.cliArgs(), "--once"], 30_000);
    assert.equal(first.code, 0, first.stderr);
    const outside = join(sb.dir, "outside-target");
    await Deno.writeTextFile(outside, "must stay\n");
    const plant = {
      journal: "journal/.telemetry.json.ks-tmp-123456",
      backup: "backups/.%2Fusr%2Flocal%2Fbin%2Ftelemetry.sh.orig.ks-tmp-telemetry.987654",
      backupMeta: "backups/.%2Fusr%2Flocal%2Fbin%2Ftelemetry.sh.json.ks-tmp-telemetry.55",
      registry: ".owners.json.ks-tmp-777",
      other: "backups/.%2Fbin%2Fx.orig.ks-tmp-restapi.4242",
    };
    for (const rel of Object.values(plant)) {
      await Deno.writeTextFile(join(sb.stateDir, rel), "half-written\n");
    }
    await Deno.symlink(outside, join(sb.stateDir, "journal/.telemetry.json.ks-tmp-link"));
    const second = await runPatcherBounded(sb, [...sb.cliArgs(), "--once"], 30_000);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /swept temp files a killed writer left count=4/);
    assert.deepEqual(
      tempsUnder(sb.stateDir),
      [
        plant.other, // another feature's: may be a write in flight
        "journal/.telemetry.json.ks-tmp-link", // a symlink: not ours, not followed
      ].sort(),
    );
    assert.equal(Deno.readTextFileSync(outside), "must stay\n");
  } finally {
    await sb.cleanup();
  }
});

/** Puts the native originals back and forgets the backups, so the next run writes them again. */
async function reset(sb: PatcherSandbox): Promise<void> {
  await Deno.writeTextFile(sb.host("usr/local/bin/telemetry.sh"), NATIVE_LAUNCHER);
  await Deno.writeTextFile(sb.host("usr/bin/container_checker"), NATIVE_CHECKER);
  await Deno.remove(sb.host("etc/systemd/system/telemetry.service.d"), { recursive: true })
    .catch(() => {});
  for (const e of Deno.readDirSync(join(sb.stateDir, "backups"))) {
    if (!e.name.includes(".ks-tmp-")) await Deno.remove(join(sb.stateDir, "backups", e.name));
  }
}

Deno.test("after a series of real SIGKILLs mid-write, the next start leaves no temp file in the state directory", async () => {
  const sb = await createPatcherSandbox();
  try {
    const first = await runPatcherBounded(sb, [...sb.cliArgs(), "--once"], 30_000);
    assert.equal(first.code, 0, first.stderr);
    let leftMax = 0;
    for (let i = 0; i < 24; i++) {
      await reset(sb);
      sb.systemctl.failNext(1); // keeps a journal around between runs
      const cmd = await toolCommand("ks-patcher", [...sb.cliArgs(), "--once"], {
        env: { PATH: sb.systemctl.path },
        stdout: "null",
        stderr: "piped",
      });
      const child = cmd.spawn();
      const reader = child.stderr.getReader();
      const { value } = await reader.read(); // the "started" line
      assert.ok(value);
      await new Promise((r) => setTimeout(r, (i * 7) % 40));
      try {
        child.kill("SIGKILL");
      } catch { /* already done */ }
      reader.releaseLock();
      await child.stderr.cancel().catch(() => {});
      await child.status;
      leftMax = Math.max(leftMax, tempsUnder(sb.stateDir).length);
    }
    console.log(`most temp files left in the state directory by one kill: ${leftMax}`);
    await Deno.writeTextFile(
      join(sb.stateDir, "journal/.telemetry.json.ks-tmp-planted"),
      "as a kill mid-journal-write leaves it\n",
    );
    sb.systemctl.failNext(0);
    const last = await runPatcherBounded(sb, [...sb.cliArgs(), "--once"], 30_000);
    assert.equal(last.code, 0, last.stderr);
    assert.deepEqual(tempsUnder(sb.stateDir), []);
    assert.deepEqual(tempsUnder(sb.hostRoot), []);
  } finally {
    await sb.cleanup();
  }
});
