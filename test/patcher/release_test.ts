// The release of paths a feature's kube manifest no longer lists, on real files in a sandbox host
// root: a tools upgrade (a new tree hash) leaves only the new tree, two features sharing the old
// tree keep it until the last one upgrades, a dropped file with an original gets it back, a
// crash at every step of the release converges on the next pass, and a rollback after the
// upgrade leaves the host as it was before the first install.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { InjectedCrash, type WritePoint } from "../../src/host/files.ts";
import { BackupStore } from "../../src/patcher/backup.ts";
import { reconcileOnce } from "../../src/patcher/reconcile.ts";
import {
  createPatcherSandbox,
  KUBE_CHECKER,
  NATIVE_CHECKER,
  NATIVE_LAUNCHER,
  type PatcherSandbox,
} from "../../sandbox/fixtures/patcher_host.ts";
import { runTool } from "../../sandbox/harness/bin.ts";

const PREFIX = "/usr/local/lib/kubesonic";
const TREE_FILES = ["bin/deno", "lib/ks/ks.js", "lib/ks/chunk-1.js", "bin/ks-stub"];
const OLD = "0123456789abcdef";
const NEW = "fedcba9876543210";

/** Every entry under `root` (path, type, mode, SHA-256 of files), the state directory left out. */
async function listing(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    for await (const e of Deno.readDir(join(root, rel))) {
      const path = `${rel}/${e.name}`;
      if (path === "/var/lib/kubesonic") continue;
      const st = await Deno.lstat(join(root, path));
      const sha = st.isFile
        ? createHash("sha256").update(await Deno.readFile(join(root, path))).digest("hex")
        : "-";
      const type = st.isDirectory ? "d" : st.isSymlink ? "l" : "f";
      out.push(`${path} ${type} ${(st.mode! & 0o7777).toString(8)} ${sha}`);
      if (st.isDirectory) await walk(path);
    }
  };
  await walk("");
  return out.sort();
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** The tree `hash` in the sidecar (its own bytes per hash) and the launcher naming it. */
async function treeSources(sb: PatcherSandbox, hash: string): Promise<void> {
  for (const f of TREE_FILES) {
    const path = join(sb.sidecarDir, "tree", hash, f);
    await Deno.mkdir(join(path, ".."), { recursive: true });
    await Deno.writeTextFile(path, `${f} of tree ${hash}\n`.repeat(f === "bin/deno" ? 4096 : 8));
  }
}

const launcherFor = (feature: string, hash: string) =>
  `#!/bin/sh\nexec ${PREFIX}/${hash}/bin/ks-stub ${feature} "$@"\n`;

/**
 * A feature's kube (or native) manifest: the tree `hash` first, then its launcher naming it;
 * `extra` are more entries (a checker, a drop-in).
 */
function manifest(
  feature: string,
  hash: string,
  mode: "kube" | "native" = "kube",
  extra: Record<string, unknown>[] = [],
): Record<string, unknown> {
  const tree = TREE_FILES.map((f) => ({
    path: `${PREFIX}/${hash}/${f}`,
    source: `tree/${hash}/${f}`,
    mode: f.startsWith("bin/") ? "0755" : "0644",
    actions: [],
  }));
  const launcher = {
    path: `/usr/local/bin/${feature}.sh`,
    content: launcherFor(feature, hash),
    mode: "0755",
    actions: [`restart ${feature}`],
  };
  const files = mode === "native" ? [...extra, launcher, ...tree] : [...tree, ...extra, launcher];
  return { apiVersion: "kubesonic.io/v1", kind: "HostFiles", feature, mode, files };
}

const CHECKER = {
  path: "/bin/container_checker",
  source: "files/container_checker",
  mode: "0755",
  actions: ["restart monit"],
};
const DROPIN = {
  path: "/etc/systemd/system/telemetry.service.d/50-kubesonic.conf",
  content: "[Service]\nUser=root\n",
  actions: ["daemon-reload"],
};

async function pass(sb: PatcherSandbox, doc: Record<string, unknown>, lines?: string[]) {
  const path = await sb.writeManifest(doc, `${doc.feature}-${doc.mode}.json`);
  const result = await reconcileOnce(
    await sb.context({ path, sink: lines ? (l) => lines.push(l) : undefined }),
  );
  assert.ok(result.converged, `${doc.feature} ${doc.mode}: ${result.errors.join("; ")}`);
  return result;
}

async function withSandbox(fn: (sb: PatcherSandbox) => Promise<void>): Promise<void> {
  const sb = await createPatcherSandbox({ extraRoots: [PREFIX] });
  try {
    await treeSources(sb, OLD);
    await treeSources(sb, NEW);
    await fn(sb);
  } finally {
    await sb.systemctl.remove().catch(() => {});
    await sb.cleanup();
  }
}

Deno.test("release: a tools upgrade leaves only the new tree, and the rollback the host as before", async () => {
  await withSandbox(async (sb) => {
    const before = await listing(sb.hostRoot);
    await pass(sb, manifest("telemetry", OLD));
    assert.ok(await exists(sb.host(`${PREFIX}/${OLD}/lib/ks/ks.js`)));

    // The upgrade: at the release's first step the launcher already names the new tree, and the
    // new tree is complete.
    const seen: string[] = [];
    const lines: string[] = [];
    const path = await sb.writeManifest(manifest("telemetry", NEW), "up.json");
    const ctx = await sb.context({
      path,
      sink: (l) => lines.push(l),
      fault: (point) => {
        if (point !== "release-restored" || seen.length > 0) return;
        seen.push(Deno.readTextFileSync(sb.host("/usr/local/bin/telemetry.sh")));
        for (const f of TREE_FILES) Deno.statSync(sb.host(`${PREFIX}/${NEW}/${f}`));
      },
    });
    const result = await reconcileOnce(ctx);
    assert.ok(result.converged, result.errors.join("; "));
    assert.deepEqual(seen, [launcherFor("telemetry", NEW)]);
    assert.deepEqual(await Array.fromAsync(Deno.readDir(sb.host(PREFIX)), (e) => e.name), [NEW]);
    const released = lines.filter((l) => l.includes("released: no longer in the manifest"));
    assert.equal(released.length, TREE_FILES.length, lines.join("\n"));
    assert.ok(released.every((l) => l.includes('done="removed (absent original)"')), released[0]);
    assert.deepEqual(
      result.plan.filter((p) => p.op === "release").map((p) => p.path).sort(),
      TREE_FILES.map((f) => `${PREFIX}/${OLD}/${f}`).sort(),
    );
    const owners = await ctx.owners.read();
    assert.ok(Object.keys(owners).every((p) => !p.includes(OLD)), Object.keys(owners).join(" "));
    const backups = new BackupStore(sb.stateDir);
    for (const f of TREE_FILES) assert.equal(await backups.get(`${PREFIX}/${OLD}/${f}`), null);
    // Nothing left to release: the next pass changes nothing.
    const again = await reconcileOnce(ctx);
    assert.deepEqual(again.changed, []);

    // The rollback (the new render's native manifest) leaves the host as before the install:
    // /usr/local/lib/kubesonic, created by the first install, goes too (its record moved to the
    // new tree's backups when the old tree was released).
    await pass(sb, manifest("telemetry", NEW, "native"));
    assert.deepEqual(await listing(sb.hostRoot), before);
  });
});

Deno.test("release: two features share the old tree, the first to upgrade keeps it for the second", async () => {
  await withSandbox(async (sb) => {
    const before = await listing(sb.hostRoot);
    await pass(sb, manifest("telemetry", OLD));
    await pass(sb, manifest("gnmi", OLD));
    const oldDeno = sb.host(`${PREFIX}/${OLD}/bin/deno`);

    const lines: string[] = [];
    await pass(sb, manifest("telemetry", NEW), lines);
    assert.ok(await exists(oldDeno), "the old tree went while gnmi still uses it");
    assert.ok(
      lines.some((l) =>
        l.includes("released: no longer in the manifest") &&
        l.includes("still used by gnmi")
      ),
      lines.join("\n"),
    );
    const ctx = await sb.context();
    let owners = await ctx.owners.read();
    assert.deepEqual(Object.keys(owners[`${PREFIX}/${OLD}/bin/deno`]), ["gnmi"]);
    // gnmi's launcher still runs the old tree.
    assert.equal(
      await Deno.readTextFile(sb.host("/usr/local/bin/gnmi.sh")),
      launcherFor("gnmi", OLD),
    );

    // gnmi upgrades: shares the new tree, and the old one is gone with its directories.
    await pass(sb, manifest("gnmi", NEW));
    assert.ok(!await exists(sb.host(`${PREFIX}/${OLD}`)));
    owners = await ctx.owners.read();
    assert.deepEqual(Object.keys(owners[`${PREFIX}/${NEW}/bin/deno`]).sort(), [
      "gnmi",
      "telemetry",
    ]);
    assert.ok(Object.keys(owners).every((p) => !p.includes(OLD)));

    // Both roll back: the host as before.
    await pass(sb, manifest("telemetry", NEW, "native"));
    assert.ok(await exists(sb.host(`${PREFIX}/${NEW}/bin/deno`)), "gnmi still uses the new tree");
    await pass(sb, manifest("gnmi", NEW, "native"));
    // gnmi.sh had no original: gone again, like the whole tree.
    assert.deepEqual(await listing(sb.hostRoot), before);
  });
});

Deno.test("release: a dropped file with an original gets it back, a dropped drop-in goes with its directory, their actions run", async () => {
  await withSandbox(async (sb) => {
    const checker = sb.host("/usr/bin/container_checker");
    const dropInDir = sb.host("/etc/systemd/system/telemetry.service.d");
    await pass(sb, manifest("telemetry", OLD, "kube", [CHECKER, DROPIN]));
    assert.equal(await Deno.readTextFile(checker), KUBE_CHECKER);
    assert.ok(await exists(dropInDir));

    // A dry run shows the release and touches nothing.
    const path = await sb.writeManifest(manifest("telemetry", OLD), "dropped.json");
    const dry = await reconcileOnce(await sb.context({ path }), { dryRun: true });
    assert.deepEqual(dry.plan.filter((p) => p.op === "release").map((p) => p.path), [
      CHECKER.path,
      DROPIN.path,
    ]);
    assert.equal(dry.converged, false);
    assert.equal(await Deno.readTextFile(checker), KUBE_CHECKER);

    const calls = sb.systemctl.calls().length;
    await pass(sb, manifest("telemetry", OLD));
    assert.equal(await Deno.readTextFile(checker), NATIVE_CHECKER);
    assert.equal((await Deno.stat(checker)).mode! & 0o7777, 0o755);
    assert.ok(!await exists(dropInDir), "the drop-in's directory stayed");
    const backups = new BackupStore(sb.stateDir);
    assert.equal(await backups.get(CHECKER.path), null);
    assert.deepEqual(
      [...Deno.readDirSync(join(sb.stateDir, "backups"))].map((e) => e.name).filter((n) =>
        n.includes("container_checker") || n.includes("50-kubesonic")
      ),
      [],
    );
    // The released entries' own actions ran (daemon-reload first), after the files were back.
    assert.deepEqual(sb.systemctl.calls().slice(calls), [
      "systemctl daemon-reload",
      "systemctl restart monit",
    ]);
    assert.deepEqual(await (await sb.context()).journal.pending(), []);

    // Nothing left to release: the next pass runs nothing.
    await pass(sb, manifest("telemetry", OLD));
    assert.equal(sb.systemctl.calls().length, calls + 2);

    // A postupgrade edit of the released file afterwards is SONiC's own: a rollback with the
    // older native manifest (which still lists it) does not restore it a second time.
    await Deno.writeTextFile(checker, "#!/usr/bin/python3\n# upgraded by SONiC\n");
    await pass(sb, manifest("telemetry", OLD, "native", [CHECKER, DROPIN]));
    assert.equal(await Deno.readTextFile(checker), "#!/usr/bin/python3\n# upgraded by SONiC\n");
    assert.equal(
      await Deno.readTextFile(sb.host("/usr/local/bin/telemetry.sh")),
      NATIVE_LAUNCHER,
    );
    assert.ok(!await exists(sb.host(PREFIX)));
  });
});

Deno.test("release: a crash at any step of the release converges on the next pass", async () => {
  const points: WritePoint[] = [
    "temp-written",
    "renamed",
    "release-restored",
    "release-dirs",
    "release-backup-dropped",
  ];
  let crashes = 0;
  for (const point of points) {
    for (let skip = 0; skip < 5; skip++) {
      await withSandbox(async (sb) => {
        const before = await listing(sb.hostRoot);
        await pass(sb, manifest("telemetry", OLD, "kube", [CHECKER, DROPIN]));
        // The upgrade drops the checker too (a present original: restored with an atomic write).
        const path = await sb.writeManifest(manifest("telemetry", NEW), "up.json");
        let n = 0;
        let crashed = false;
        try {
          await reconcileOnce(
            await sb.context({
              path,
              fault: (p, what) => {
                // Of the atomic writes, only the release's own (the checker's original back).
                const ours = p.startsWith("release-") || what === CHECKER.path;
                if (p === point && ours && n++ === skip) {
                  crashed = true;
                  throw new InjectedCrash(`crash at ${p}`);
                }
              },
            }),
          );
        } catch (error) {
          if (!(error instanceof InjectedCrash)) throw error;
        }
        if (crashed) crashes++;
        // The launcher never names a tree that is not there.
        const launcher = await Deno.readTextFile(sb.host("/usr/local/bin/telemetry.sh"));
        const named = /kubesonic\/([0-9a-f]{16})\//.exec(launcher)![1];
        for (const f of TREE_FILES) {
          assert.ok(await exists(sb.host(`${PREFIX}/${named}/${f}`)), `${point}/${skip}: ${f}`);
        }
        const result = await reconcileOnce(await sb.context({ path }));
        assert.ok(result.converged, `${point}/${skip}: ${result.errors.join("; ")}`);
        assert.deepEqual(
          await Array.fromAsync(Deno.readDir(sb.host(PREFIX)), (e) => e.name),
          [NEW],
          `${point}/${skip}`,
        );
        assert.equal(
          await Deno.readTextFile(sb.host("/usr/bin/container_checker")),
          NATIVE_CHECKER,
        );
        assert.ok(!await exists(sb.host("/etc/systemd/system/telemetry.service.d")));
        const owners = await (await sb.context({ path })).owners.read();
        assert.deepEqual(
          Object.keys(owners).filter((p) => p.includes(OLD) || p === CHECKER.path),
          [],
          `${point}/${skip}`,
        );
        const left = [...Deno.readDirSync(join(sb.stateDir, "backups"))].map((e) => e.name);
        assert.ok(left.every((n) => n.includes(NEW) || n.includes("telemetry.sh")), `${left}`);
        await pass(sb, manifest("telemetry", NEW, "native"));
        assert.deepEqual(await listing(sb.hostRoot), before, `${point}/${skip}`);
      });
    }
  }
  // Every point was reached (the release has 1 atomic write and 5 released tree/unit paths).
  assert.ok(crashes >= points.length, `only ${crashes} crashes injected`);
});

Deno.test("release: the bundled ks-patcher logs one line per released path", async () => {
  await withSandbox(async (sb) => {
    const v2 = await sb.writeManifest(manifest("telemetry", OLD), "v2.json");
    assert.equal(
      (await runTool("ks-patcher", [...sb.cliArgs(v2), "--once"], {
        env: { PATH: sb.systemctl.path },
      })).code,
      0,
    );
    const up = await sb.writeManifest(manifest("telemetry", NEW), "up.json");
    const r = await runTool("ks-patcher", [...sb.cliArgs(up), "--once"], {
      env: { PATH: sb.systemctl.path },
    });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stderr.split("\n").filter((l) => l.includes("released: no longer"));
    assert.equal(lines.length, TREE_FILES.length, r.stderr);
    assert.match(
      lines[0],
      /^ks-patcher\[\d+\]: telemetry: released: no longer in the manifest path=\/usr\/local\/lib\/kubesonic\/0123456789abcdef\/\S+ done="removed \(absent original\)"$/,
    );
    assert.match(r.stdout, /^release +\/usr\/local\/lib\/kubesonic\/0123456789abcdef\//m);
    assert.ok(!await exists(sb.host(`${PREFIX}/${OLD}`)));
  });
});

Deno.test("release: a failed release is reported, keeps the backup and claim, and the next pass does it", async () => {
  await withSandbox(async (sb) => {
    const dropInDir = sb.host("/etc/systemd/system/telemetry.service.d");
    await pass(sb, manifest("telemetry", OLD, "kube", [DROPIN]));
    // The drop-in's directory turns writable by everyone: the safety rules refuse the path.
    await Deno.chmod(dropInDir, 0o777);
    const path = await sb.writeManifest(manifest("telemetry", OLD), "dropped.json");
    const lines: string[] = [];
    const ctx = await sb.context({ path, sink: (l) => lines.push(l) });
    const failed = await reconcileOnce(ctx);
    assert.equal(failed.converged, false);
    assert.equal(failed.errors.length, 1, failed.errors.join("; "));
    assert.match(failed.errors[0], /50-kubesonic\.conf: release failed: .*writable by everyone/);
    assert.ok(lines.some((l) => l.includes("ERROR") && l.includes("release failed")));
    assert.ok(await exists(join(dropInDir, "50-kubesonic.conf")));
    assert.ok((await ctx.owners.read())[DROPIN.path]?.telemetry);
    assert.ok(await new BackupStore(sb.stateDir).get(DROPIN.path));

    await Deno.chmod(dropInDir, 0o755);
    const done = await reconcileOnce(ctx);
    assert.ok(done.converged, done.errors.join("; "));
    assert.ok(!await exists(dropInDir));
    assert.equal((await ctx.owners.read())[DROPIN.path], undefined);
    assert.equal(await new BackupStore(sb.stateDir).get(DROPIN.path), null);
  });
});
