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
import { DEFAULT_STALE_MS } from "../../src/patcher/ownership.ts";
import { reconcileOnce } from "../../src/patcher/reconcile.ts";
import {
  createPatcherSandbox,
  KUBE_CHECKER,
  NATIVE_CHECKER,
  NATIVE_LAUNCHER,
  type PatcherSandbox,
} from "../../sandbox/fixtures/patcher_host.ts";
import { runTool, toolCommand } from "../../sandbox/harness/bin.ts";

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

/**
 * The in-process passes' clock. A path the kube manifest no longer lists is released only once
 * no manifest of the feature confirmed its claim for the stale time (another one may still list
 * it), so a test moves this clock on where the previous manifest's sidecar is gone.
 */
let clock = Date.now();

/** The previous manifest's sidecar is gone for the stale time (no pass confirms its claims). */
function staleGone(): void {
  clock += DEFAULT_STALE_MS + 1;
}

async function withSandbox(fn: (sb: PatcherSandbox) => Promise<void>): Promise<void> {
  const real = await createPatcherSandbox({ extraRoots: [PREFIX] });
  clock = Date.now();
  const sb: PatcherSandbox = {
    ...real,
    context: (options = {}) => real.context({ now: () => clock, ...options }),
  };
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
    staleGone();

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
    // telemetry's old sidecar is gone for the stale time; gnmi's keeps confirming its claims.
    clock += DEFAULT_STALE_MS / 2;
    await pass(sb, manifest("gnmi", OLD));
    clock += DEFAULT_STALE_MS / 2 + 1;
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

    // gnmi upgrades (its old sidecar gone for the stale time, telemetry's new one confirming):
    // shares the new tree, and the old one is gone with its directories.
    clock += DEFAULT_STALE_MS / 2;
    await pass(sb, manifest("telemetry", NEW));
    clock += DEFAULT_STALE_MS / 2 + 1;
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

    // Right after the manifest that lists them, the release is deferred (a manifest of this
    // feature confirmed them just now); a dry run shows that and touches nothing.
    const path = await sb.writeManifest(manifest("telemetry", OLD), "dropped.json");
    const early = await reconcileOnce(await sb.context({ path }), { dryRun: true });
    assert.deepEqual(early.plan.filter((p) => p.op === "release"), []);
    const deferredItems = early.plan.filter((p) => p.reason.includes("release deferred"));
    assert.deepEqual(deferredItems.map((p) => [p.op, p.path]), [
      ["skip", CHECKER.path],
      ["skip", DROPIN.path],
    ]);
    assert.equal(early.converged, true);
    // Once gone for the stale time: a dry run shows the release and touches nothing.
    staleGone();
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
        staleGone();
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
    // A short stale-claim time: the v2 run is "gone" for it after a real sleep.
    const short = ["--once", "--interval", "100ms", "--stale-claim", "200ms"];
    const v2 = await sb.writeManifest(manifest("telemetry", OLD), "v2.json");
    assert.equal(
      (await runTool("ks-patcher", [...sb.cliArgs(v2), ...short], {
        env: { PATH: sb.systemctl.path },
      })).code,
      0,
    );
    await new Promise((r) => setTimeout(r, 300));
    const up = await sb.writeManifest(manifest("telemetry", NEW), "up.json");
    const r = await runTool("ks-patcher", [...sb.cliArgs(up), ...short], {
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
    staleGone();
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

/** Two manifests of one feature: `older` (the old tree, the checker) and `newer` (the new tree). */
function twoManifests(): { older: Record<string, unknown>; newer: Record<string, unknown> } {
  // Without the launcher (its bytes name one tree, so the two would rewrite it in turn): what is
  // shared has the same content in both, what is not is the release's business.
  const withoutLauncher = (doc: Record<string, unknown>) => ({
    ...doc,
    files: (doc.files as { path: string }[]).filter((f) => !f.path.endsWith("/telemetry.sh")),
  });
  return {
    older: withoutLauncher(manifest("telemetry", OLD, "kube", [CHECKER, DROPIN])),
    newer: withoutLauncher(manifest("telemetry", NEW, "kube", [DROPIN])),
  };
}

/** The managed files' contents and the backups (names and bytes), to compare across passes. */
async function hostState(sb: PatcherSandbox): Promise<string[]> {
  const files = [
    ...[OLD, NEW].flatMap((h) => TREE_FILES.map((f) => `${PREFIX}/${h}/${f}`)),
    "/usr/bin/container_checker",
    "/etc/systemd/system/telemetry.service.d/50-kubesonic.conf",
  ];
  const out: string[] = [];
  for (const f of files) {
    const sha = await exists(sb.host(f))
      ? createHash("sha256").update(await Deno.readFile(sb.host(f))).digest("hex")
      : "absent";
    out.push(`${f} ${sha}`);
  }
  const backups = join(sb.stateDir, "backups");
  for (const e of [...Deno.readDirSync(backups)].sort((a, b) => a.name < b.name ? -1 : 1)) {
    const sha = createHash("sha256").update(await Deno.readFile(join(backups, e.name)));
    out.push(`backup ${e.name} ${sha.digest("hex")}`);
  }
  return out;
}

Deno.test("release: two live manifests of one feature release nothing the other lists, until one is gone for the stale time", async () => {
  await withSandbox(async (sb) => {
    const { older, newer } = twoManifests();
    // One context each, as two sidecar loops keep theirs (the deferral is logged once).
    const linesOld: string[] = [];
    const linesNew: string[] = [];
    const ctxOld = await sb.context({
      path: await sb.writeManifest(older, "older.json"),
      sink: (l) => linesOld.push(l),
    });
    const ctxNew = await sb.context({
      path: await sb.writeManifest(newer, "newer.json"),
      sink: (l) => linesNew.push(l),
    });
    // The slowest a live sidecar confirms: passes 1.1 x interval apart, the interval half the
    // stale time (the smallest the tool accepts), and a claim re-confirmed only once older than a
    // tenth of it. The two alternate, so each one's passes are 0.55 x stale apart.
    const step = DEFAULT_STALE_MS * 0.275;
    let first: string[] = [];
    for (let i = 0; i < 10; i++) {
      const result = await reconcileOnce(i % 2 === 0 ? ctxOld : ctxNew);
      assert.ok(result.converged, `pass ${i}: ${result.errors.join("; ")}`);
      assert.deepEqual(result.plan.filter((p) => p.op === "release"), [], `pass ${i}`);
      if (i >= 2) assert.deepEqual(result.changed, [], `pass ${i}: a file was rewritten`);
      if (i === 1) first = await hostState(sb);
      if (i >= 1) assert.deepEqual(await hostState(sb), first, `pass ${i}`);
      clock += step;
    }
    // Both trees complete, the checker still ours, every backup as first taken.
    assert.equal(await Deno.readTextFile(sb.host("/usr/bin/container_checker")), KUBE_CHECKER);
    for (const h of [OLD, NEW]) {
      for (const f of TREE_FILES) assert.ok(await exists(sb.host(`${PREFIX}/${h}/${f}`)), f);
    }
    // The newer one logged each deferred path once, not once a pass; so did the older one (the
    // new tree is not in its manifest).
    const deferredNew = linesNew.filter((l) => l.includes("release deferred"));
    assert.equal(deferredNew.length, TREE_FILES.length + 1, deferredNew.join("\n"));
    assert.ok(deferredNew.some((l) => l.includes(`path=${CHECKER.path}`)));
    assert.equal(linesOld.filter((l) => l.includes("release deferred")).length, TREE_FILES.length);
    assert.ok(!linesNew.concat(linesOld).some((l) => l.includes("released:")));

    // The older sidecar is gone. Within the stale time of its last pass, still nothing goes.
    clock += DEFAULT_STALE_MS / 2 - step;
    const held = await reconcileOnce(ctxNew);
    assert.deepEqual(held.plan.filter((p) => p.op === "release"), []);
    assert.deepEqual(await hostState(sb), first);
    // Past it: exactly what only the older one listed is released (the old tree removed, the
    // checker's original back), with its action; the shared drop-in and the new tree stay.
    clock += DEFAULT_STALE_MS / 2 + step;
    const calls = sb.systemctl.calls().length;
    const done = await reconcileOnce(ctxNew);
    assert.ok(done.converged, done.errors.join("; "));
    assert.deepEqual(
      done.plan.filter((p) => p.op === "release").map((p) => p.path).sort(),
      [CHECKER.path, ...TREE_FILES.map((f) => `${PREFIX}/${OLD}/${f}`)].sort(),
    );
    assert.deepEqual(await Array.fromAsync(Deno.readDir(sb.host(PREFIX)), (e) => e.name), [NEW]);
    assert.equal(await Deno.readTextFile(sb.host("/usr/bin/container_checker")), NATIVE_CHECKER);
    assert.equal(await Deno.readTextFile(sb.host(DROPIN.path)), DROPIN.content);
    assert.deepEqual(sb.systemctl.calls().slice(calls), ["systemctl restart monit"]);
    const owners = await ctxNew.owners.read();
    assert.deepEqual(
      Object.keys(owners).filter((p) => p.includes(OLD) || p === CHECKER.path),
      [],
    );
    // The backups of what stays are the ones first taken; the new tree's (absent originals) only
    // took over the record of /usr/local/lib/kubesonic, which the old tree's first write created.
    const stays = (l: string) =>
      l.startsWith("backup ") && !l.includes(OLD) && !l.includes("container_checker") &&
      !l.includes(NEW);
    assert.deepEqual((await hostState(sb)).filter(stays), first.filter(stays));
    const backups = new BackupStore(sb.stateDir);
    for (const f of TREE_FILES) {
      const backup = await backups.get(`${PREFIX}/${NEW}/${f}`);
      assert.equal(backup?.absent, true, f);
      assert.ok(backup?.createdDirs?.includes(PREFIX), `${f}: ${backup?.createdDirs}`);
    }
    // Nothing left to release.
    const again = await reconcileOnce(ctxNew);
    assert.deepEqual(again.changed, []);
    assert.deepEqual(again.plan.filter((p) => p.op === "release" || p.op === "skip"), []);
  });
});

/** Starts the bundled loop on `manifestPath` and collects its stderr into `lines`. */
async function spawnLoop(
  sb: PatcherSandbox,
  manifestPath: string,
  args: string[],
  lines: string[],
): Promise<{ child: Deno.ChildProcess; done: Promise<void> }> {
  const child = (await toolCommand("ks-patcher", [...sb.cliArgs(manifestPath), ...args], {
    env: { PATH: sb.systemctl.path },
    stdout: "null",
    stderr: "piped",
  })).spawn();
  const done = (async () => {
    let rest = "";
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      lines.push(...parts);
    }
  })();
  return { child, done };
}

async function waitUntilTrue(what: string, ms: number, ok: () => Promise<boolean>): Promise<void> {
  const end = performance.now() + ms;
  while (!(await ok())) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test("release: two bundled ks-patcher loops of one feature do not fight; the survivor releases once the other is gone for the stale time", async () => {
  await withSandbox(async (sb) => {
    const { older, newer } = twoManifests();
    const args = ["--interval", "1s", "--stale-claim", "10s"];
    const linesOld: string[] = [];
    const linesNew: string[] = [];
    const a = await spawnLoop(sb, await sb.writeManifest(older, "older.json"), args, linesOld);
    const b = await spawnLoop(sb, await sb.writeManifest(newer, "newer.json"), args, linesNew);
    let killed = false;
    try {
      await waitUntilTrue(
        "both loops converged",
        60_000,
        async () =>
          linesOld.some((l) => l.includes("converged")) &&
          linesNew.some((l) => l.includes("converged")) &&
          (await hostState(sb)).every((l) => !l.endsWith(" absent") || l.includes("/usr/bin")),
      );
      // Both live for several periodic passes each: nothing released, nothing rewritten.
      const first = await hostState(sb);
      const writes = () =>
        linesOld.concat(linesNew).filter((l) => l.includes("file reconciled")).length;
      const writesBefore = writes();
      for (let i = 0; i < 12; i++) {
        await new Promise((r) => setTimeout(r, 500));
        assert.deepEqual(await hostState(sb), first, `after ${(i + 1) * 500} ms`);
      }
      assert.ok(!linesOld.concat(linesNew).some((l) => l.includes("released:")));
      assert.equal(writes(), writesBefore, "a loop rewrote a file the other had written");
      assert.ok(linesNew.some((l) => l.includes("release deferred")), linesNew.join("\n"));

      // The older sidecar is gone without notice (SIGKILL): the newer one releases what only
      // the older listed once nobody confirmed it for the stale time, not before.
      a.child.kill("SIGKILL");
      killed = true;
      const gone = performance.now();
      await waitUntilTrue(
        "the old tree released",
        60_000,
        async () =>
          !await exists(sb.host(`${PREFIX}/${OLD}`)) &&
          await Deno.readTextFile(sb.host("/usr/bin/container_checker")) === NATIVE_CHECKER,
      );
      const after = performance.now() - gone;
      const releasedLine = (l: string) => l.includes("released: no longer in the manifest");
      await waitUntilTrue(
        "the release's log lines",
        10_000,
        () => Promise.resolve(linesNew.filter(releasedLine).length >= TREE_FILES.length + 1),
      );
      // Its last confirmation was at most 0.1 x 10 s + about two passes before the kill.
      assert.ok(after > 6_000, `released ${Math.round(after)} ms after the kill`);
      const released = linesNew.filter(releasedLine);
      assert.equal(released.length, TREE_FILES.length + 1, released.join("\n"));
      assert.equal(await Deno.readTextFile(sb.host(DROPIN.path)), DROPIN.content);
      for (const f of TREE_FILES) assert.ok(await exists(sb.host(`${PREFIX}/${NEW}/${f}`)), f);
      // And stays so.
      const settled = await hostState(sb);
      await new Promise((r) => setTimeout(r, 2500));
      assert.deepEqual(await hostState(sb), settled);
    } finally {
      if (!killed) a.child.kill("SIGKILL");
      b.child.kill("SIGTERM");
      await Promise.all([a.child.status, b.child.status, a.done, b.done]);
    }
  });
});
