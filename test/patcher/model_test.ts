// The model-based randomized proof of issue 3. Each schedule is a random interleaving of
// postupgrade-style edits done with real commands (`sed -i`, `cp`, `rm`, `chmod`), rollouts of a
// new desired version, patcher passes,
// in-process crashes injected at the write points (and the steps of a release), files dropped from
// the kube manifest and listed again, failing actions, and SIGKILL of a REAL bundled
// `ks-patcher` process at a random instant (while a reader polls the files for torn content).
// After every step: no managed file is ever torn, backups never change once taken and are never
// the patched content, and a backup goes only with the release of a file the manifest dropped.
// After one quiet pass: exactly the desired bytes and mode (kube; a dropped file: its original,
// its backup and claim gone) or the backed-up originals (native, the restore schedules), no temp
// files, no owed action, the
// actions of the last change executed, and one more pass runs nothing.
//
// Reproduce a run: KS_MODEL_SEED=<printed seed> deno test -A test/patcher/model_test.ts
// Size: KS_MODEL_SCHEDULES (default 500), KS_MODEL_REAL_KILL (share of schedules with a real
// process killed, default 0.2), KS_MODEL_CONCURRENCY (schedules at once, default 8).
import assert from "node:assert/strict";
import { join } from "node:path";
import { InjectedCrash, type WritePoint } from "../../src/host/files.ts";
import { dedupeActions } from "../../src/patcher/actions.ts";
import { BackupStore } from "../../src/patcher/backup.ts";
import { type PatcherContext, reconcileOnce } from "../../src/patcher/reconcile.ts";
import { toolCommand } from "../../sandbox/harness/bin.ts";
import {
  createPatcherSandbox,
  DROPIN,
  KUBE_CHECKER,
  KUBE_LAUNCHER,
  NATIVE_CHECKER,
  NATIVE_LAUNCHER,
  type PatcherSandbox,
  telemetryManifest,
} from "../../sandbox/fixtures/patcher_host.ts";
import { prng } from "../../sandbox/harness/prng.ts";

interface FileModel {
  hostPath: string;
  rel: string; // on-disk path relative to the host root (after the /bin -> usr/bin symlink)
  desired: string;
  desiredMode: number;
  /** The sidecar file holding the desired content (rolled out to new versions), if any. */
  source?: string;
  /** Every desired version so far (a rollout adds one): none may ever become the backup. */
  patched: Set<string>;
  original: string | null;
  actions: string[];
  /** Every whole version the file may legitimately have (null = absent). */
  versions: Set<string | null>;
  /** The backup as first seen (undefined = not taken yet, or dropped by a release). */
  backup?: { content: string | null; mode: number; firstSeenAfterEdit: boolean };
  /** Whether the kube manifest lists it (a dropped file is released). */
  listed: boolean;
  /** The original a release brought back (until the file is edited again). */
  releasedTo?: { content: string | null; mode: number };
}

/**
 * The schedules' stale-claim time. A dropped file is released only once no manifest of the
 * feature confirmed its claim for that long (another live manifest of the feature may still list
 * it), so a drop waits it out before the next step, as the sidecar that listed it is gone.
 */
const STALE_MS = 200;
const STALE_ARGS = ["--interval", "100ms", "--stale-claim", `${STALE_MS}ms`];

function models(): FileModel[] {
  const restart = ["daemon-reload", "restart telemetry"];
  const mk = (
    hostPath: string,
    rel: string,
    desired: string,
    mode: number,
    original: string | null,
    actions: string[],
    source?: string,
  ) => ({
    hostPath,
    rel,
    desired,
    desiredMode: mode,
    source,
    patched: new Set([desired]),
    original,
    actions,
    versions: new Set<string | null>([desired, original, null]),
    listed: true,
  });
  return [
    mk(
      "/usr/local/bin/telemetry.sh",
      "usr/local/bin/telemetry.sh",
      KUBE_LAUNCHER,
      0o755,
      NATIVE_LAUNCHER,
      restart,
      "files/telemetry.sh",
    ),
    mk(
      "/etc/systemd/system/telemetry.service.d/kubesonic.conf",
      "etc/systemd/system/telemetry.service.d/kubesonic.conf",
      DROPIN,
      0o644,
      null,
      restart,
    ),
    mk(
      "/bin/container_checker",
      "usr/bin/container_checker",
      KUBE_CHECKER,
      0o755,
      NATIVE_CHECKER,
      ["daemon-reload", "restart monit"],
      "files/container_checker",
    ),
  ];
}

function readOrNull(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

function modeOf(path: string): number {
  return (Deno.statSync(path).mode ?? 0) & 0o7777;
}

async function sh(args: string[]): Promise<void> {
  const out = await new Deno.Command(args[0], {
    args: args.slice(1),
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}

interface Snapshot {
  contents: (string | null)[];
  modes: (number | null)[];
  calls: number;
}

class Schedule {
  readonly files = models();
  readonly log: string[] = [];
  mode: "kube" | "native" = "kube";
  editsSoFar = 0;
  /** Calls-log length before the last patcher step that changed a file, and those files. */
  lastChange: { callsBefore: number; changed: FileModel[] } | null = null;

  constructor(
    readonly sb: PatcherSandbox,
    readonly rand: () => number,
    readonly nativeManifest: string,
  ) {}

  pick<T>(items: T[]): T {
    return items[Math.floor(this.rand() * items.length)];
  }

  snapshot(): Snapshot {
    return {
      contents: this.files.map((f) => readOrNull(this.sb.host(f.rel))),
      modes: this.files.map((f) => {
        try {
          return modeOf(this.sb.host(f.rel));
        } catch {
          return null;
        }
      }),
      calls: this.sb.systemctl.calls().length,
    };
  }

  /** Checks the always-invariants: whole versions only, backups immutable and never patched. */
  async checkInvariants(where: string): Promise<void> {
    const backups = new BackupStore(this.sb.stateDir);
    for (const f of this.files) {
      const content = readOrNull(this.sb.host(f.rel));
      assert.ok(
        f.versions.has(content),
        `${where}: ${f.hostPath} is torn or unknown: ${JSON.stringify(content)}`,
      );
      const backup = await backups.get(f.hostPath);
      if (!backup) {
        if (f.backup !== undefined && this.mode === "kube" && !f.listed) {
          // Released: its original is back and the backup dropped.
          f.releasedTo = { content: f.backup.content, mode: f.backup.mode };
          f.backup = undefined;
        }
        assert.equal(f.backup, undefined, `${where}: backup of ${f.hostPath} disappeared`);
        continue;
      }
      const text = backup.content === null ? null : new TextDecoder().decode(backup.content);
      if (f.backup === undefined) {
        assert.ok(
          text === null || !f.patched.has(text),
          `${where}: a patched content became the backup of ${f.hostPath}`,
        );
        assert.ok(f.versions.has(text), `${where}: backup of ${f.hostPath} is not a whole version`);
        f.backup = { content: text, mode: backup.mode, firstSeenAfterEdit: this.editsSoFar > 0 };
        f.releasedTo = undefined;
      } else {
        assert.equal(text, f.backup.content, `${where}: backup of ${f.hostPath} changed`);
        assert.equal(backup.mode, f.backup.mode, `${where}: backup mode of ${f.hostPath} changed`);
      }
    }
  }

  /** What the patcher should converge to now. */
  target(f: FileModel): { content: string | null; mode: number | null } {
    if (this.mode === "kube" && f.listed) return { content: f.desired, mode: f.desiredMode };
    if (this.mode === "kube") {
      const original = f.backup ?? f.releasedTo;
      if (original === undefined) return { content: readOrNull(this.sb.host(f.rel)), mode: null };
      return { content: original.content, mode: original.content === null ? null : original.mode };
    }
    if (f.backup === undefined) return { content: readOrNull(this.sb.host(f.rel)), mode: null };
    return { content: f.backup.content, mode: f.backup.content === null ? null : f.backup.mode };
  }

  /** Records which files a patcher step moved to the target, with the calls-log position before. */
  noteChange(before: Snapshot): void {
    const after = this.snapshot();
    const changed = this.files.filter((f, i) => {
      // A released file runs no action (its manifest entry, with its actions, is gone).
      if (this.mode === "kube" && !f.listed) return false;
      const t = this.target(f);
      const moved = before.contents[i] !== after.contents[i] || before.modes[i] !== after.modes[i];
      return moved && after.contents[i] === t.content;
    });
    if (changed.length > 0) this.lastChange = { callsBefore: before.calls, changed };
  }

  async edit(): Promise<void> {
    const f = this.pick(this.files);
    const path = this.sb.host(f.rel);
    const exists = readOrNull(path) !== null;
    const kind = exists ? this.pick(["sed", "sed", "cp", "rm", "chmod"]) : "cp";
    const n = Math.floor(this.rand() * 3);
    if (kind === "sed") await sh(["sed", "-i", `1a # postupgrade edit ${n}`, path]);
    else if (kind === "rm") await sh(["rm", "-f", path]);
    else if (kind === "chmod") await sh(["chmod", this.pick(["644", "600", "755"]), path]);
    else {
      const upgrade = join(this.sb.dir, `upgrade-${n}-${f.rel.replaceAll("/", "_")}`);
      await Deno.writeTextFile(upgrade, `# upgraded ${f.hostPath} v${n}\n`.repeat(64 * (n + 1)));
      await Deno.mkdir(join(path, ".."), { recursive: true });
      await sh(["cp", upgrade, path]);
    }
    this.editsSoFar++;
    // A released file is SONiC's again: any content is fine from now on.
    if (f.backup === undefined) f.releasedTo = undefined;
    f.versions.add(readOrNull(path));
    this.log.push(`${kind} ${f.hostPath}`);
  }

  /** The sidecar gets a new desired version (a rollout / ConfigMap update, design.md 4.6). */
  async rollout(): Promise<void> {
    const sourced = this.files.filter((x) => x.source !== undefined && x.listed);
    if (sourced.length === 0) {
      this.log.push("no rollout (nothing sourced listed)");
      return;
    }
    const f = this.pick(sourced);
    const next = `${f.desired}# rollout ${f.patched.size}\n`;
    await Deno.writeTextFile(join(this.sb.sidecarDir, f.source!), next);
    f.desired = next;
    f.patched.add(next);
    f.versions.add(next);
    this.log.push(`rollout ${f.hostPath}`);
  }

  /** The kube manifest drops a file, or lists a dropped one again (at least one stays listed). */
  async toggleListing(): Promise<void> {
    if (this.mode !== "kube") {
      this.log.push("listing unchanged (native)");
      return;
    }
    const listed = this.files.filter((f) => f.listed);
    const f = this.pick(listed.length > 1 ? this.files : this.files.filter((x) => !x.listed));
    f.listed = !f.listed;
    const doc = telemetryManifest("kube") as { files: { path: string }[] };
    doc.files = doc.files.filter((e) => this.files.find((x) => x.hostPath === e.path)!.listed);
    await this.sb.writeManifest(doc);
    if (!f.listed) await new Promise((r) => setTimeout(r, STALE_MS + 50));
    this.log.push(`${f.listed ? "list" : "drop"} ${f.hostPath}`);
  }

  async context(fault?: (point: WritePoint) => void): Promise<PatcherContext> {
    return await this.sb.context({
      path: this.mode === "kube" ? this.sb.manifestPath : this.nativeManifest,
      fault: fault ? (point) => fault(point) : undefined,
      staleClaimMs: STALE_MS,
    });
  }

  async pass(): Promise<void> {
    const before = this.snapshot();
    await reconcileOnce(await this.context());
    this.noteChange(before);
    this.log.push("pass");
  }

  async crashPass(): Promise<void> {
    const points: WritePoint[] = [
      "temp-written",
      "renamed",
      "release-restored",
      "release-dirs",
      "release-backup-dropped",
    ];
    const point = this.pick(points);
    let skip = Math.floor(this.rand() * 3);
    const before = this.snapshot();
    try {
      await reconcileOnce(
        await this.context((p) => {
          if (p === point && skip-- === 0) throw new InjectedCrash(`crash at ${p}`);
        }),
      );
    } catch (error) {
      if (!(error instanceof InjectedCrash)) throw error;
    }
    this.noteChange(before);
    this.log.push(`crash-pass ${point}`);
  }

  async realKill(): Promise<void> {
    const manifest = this.mode === "kube" ? this.sb.manifestPath : this.nativeManifest;
    // The kill lands at a random instant of the pass itself: counted from the process's
    // "started" line (start-up is ~100+ ms of nothing interesting), 0-35 ms later.
    const delay = Math.floor(this.rand() * 35);
    const before = this.snapshot();
    const child =
      (await toolCommand("ks-patcher", [...this.sb.cliArgs(manifest), "--once", ...STALE_ARGS], {
        env: { PATH: this.sb.systemctl.path },
        stdout: "null",
        stderr: "piped",
      })).spawn();
    let started = false;
    const reading = (async () => {
      const dec = new TextDecoder();
      let text = "";
      for await (const chunk of child.stderr) {
        text += dec.decode(chunk);
        if (!started && text.includes(" started ")) started = true;
      }
    })();
    let exited = false;
    child.status.then(() => (exited = true));
    let deadline = Infinity;
    const giveUp = performance.now() + 20_000;
    // The torn-file observer: poll the managed files while the real patcher runs.
    while (performance.now() < Math.min(deadline, giveUp) && !exited) {
      if (started && deadline === Infinity) deadline = performance.now() + delay;
      for (const f of this.files) {
        const content = readOrNull(this.sb.host(f.rel));
        assert.ok(
          f.versions.has(content),
          `torn read of ${f.hostPath} during a real run: ${JSON.stringify(content)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    const exitedBeforeKill = exited;
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
    await child.status;
    await reading;
    // A systemctl the killed patcher had started may still be running: let it finish first.
    for (let last = -1; this.sb.systemctl.calls().length !== last;) {
      last = this.sb.systemctl.calls().length;
      await new Promise((r) => setTimeout(r, 30));
    }
    const after = this.snapshot();
    const touched = after.calls !== before.calls ||
      this.files.some((_, i) =>
        after.contents[i] !== before.contents[i] || after.modes[i] !== before.modes[i]
      );
    this.noteChange(before);
    const when = exitedBeforeKill
      ? "had exited"
      : touched
      ? "killed mid-work"
      : "killed before any effect";
    this.log.push(`real-kill after ${delay} ms (${when})`);
  }

  /** The quiet pass and the final assertions. */
  async finish(): Promise<void> {
    this.sb.systemctl.failNext(0);
    const before = this.snapshot();
    const ctx = await this.context();
    const result = await reconcileOnce(ctx);
    this.noteChange(before);
    assert.ok(result.converged, `quiet pass did not converge: ${result.errors.join("; ")}`);
    await this.checkInvariants("after the quiet pass");
    for (const f of this.files) {
      const path = this.sb.host(f.rel);
      const t = this.target(f);
      assert.equal(readOrNull(path), t.content, `${f.hostPath}: final content`);
      if (t.mode !== null) assert.equal(modeOf(path), t.mode, `${f.hostPath}: final mode`);
      if (this.mode === "kube" && f.listed) {
        assert.ok(f.backup !== undefined, `${f.hostPath}: no backup was taken`);
      }
      if (this.mode === "kube" && !f.listed) {
        assert.equal(f.backup, undefined, `${f.hostPath}: released, but its backup stayed`);
        const owners = await ctx.owners.read();
        assert.equal(owners[f.hostPath], undefined, `${f.hostPath}: released, but still claimed`);
      }
      if (this.mode === "native" && f.backup && !f.backup.firstSeenAfterEdit) {
        assert.equal(readOrNull(path), f.original, `${f.hostPath}: not the exact original bytes`);
      }
      const dir = join(path, "..");
      let names: string[] = [];
      try {
        names = [...Deno.readDirSync(dir)].map((e) => e.name);
      } catch { /* directory never created */ }
      const leftovers = names.filter((n) => n.includes(".ks-tmp-"));
      assert.deepEqual(leftovers, [], `temp files left in ${dir}`);
    }
    assert.deepEqual(await ctx.journal.pending(), [], "actions still owed");
    if (this.lastChange) {
      const expected = dedupeActions(
        ...this.files.filter((f) => this.lastChange!.changed.includes(f)).map((f) => f.actions),
      ).map((a) => `systemctl ${a}`);
      const ran = this.sb.systemctl.calls().slice(this.lastChange.callsBefore).filter((c) =>
        !c.endsWith("FAILED")
      );
      let at = 0;
      for (const call of ran) if (call === expected[at]) at++;
      assert.equal(
        at,
        expected.length,
        `last change's actions ${expected.join(", ")} not all run after it: ${ran.join(", ")}`,
      );
    }
    if (this.mode === "native") {
      assert.deepEqual(await ctx.owners.read(), {}, "ownership not released");
    }
    const calls = this.sb.systemctl.calls().length;
    const again = await reconcileOnce(ctx);
    assert.ok(again.converged);
    assert.deepEqual(again.changed, []);
    assert.equal(
      this.sb.systemctl.calls().length,
      calls,
      "a pass with nothing changed ran an action",
    );
  }
}

async function runSchedule(seed: number, index: number, realKillShare: number): Promise<string[]> {
  const rand = prng(seed * 1_000_003 + index);
  const sb = await createPatcherSandbox();
  const nativeManifest = await sb.writeManifest(telemetryManifest("native"), "native.yaml");
  const s = new Schedule(sb, rand, nativeManifest);
  const restore = rand() < 0.35;
  const steps = 3 + Math.floor(rand() * 8);
  const switchAt = restore ? 1 + Math.floor(rand() * (steps - 1)) : -1;
  const realKillAt = rand() < realKillShare ? Math.floor(rand() * steps) : -1;
  try {
    for (let step = 0; step < steps; step++) {
      if (step === switchAt) {
        s.mode = "native";
        s.log.push("switch to native");
      }
      if (step === realKillAt) await s.realKill();
      else {
        const r = rand();
        if (r < 0.38) await s.edit();
        else if (r < 0.65) await s.pass();
        else if (r < 0.83) await s.crashPass();
        else if (r < 0.9) await s.rollout();
        else if (r < 0.96) await s.toggleListing();
        else {
          sb.systemctl.failNext(1 + Math.floor(rand() * 3));
          s.log.push("actions fail next");
        }
      }
      await s.checkInvariants(`step ${step} (${s.log.at(-1)})`);
    }
    await s.finish();
    return s.log;
  } catch (error) {
    throw new Error(
      `schedule ${index} (seed ${seed}) failed: ${(error as Error).message}\n  steps: ${
        s.log.join(" -> ")
      }`,
    );
  } finally {
    await sb.systemctl.remove();
    await sb.cleanup();
  }
}

Deno.test("model: any interleaving of postupgrade edits, passes, crashes and SIGKILLs converges to the desired files (kube) or the originals (native)", async () => {
  const seed = Number(Deno.env.get("KS_MODEL_SEED") ?? Math.floor(Math.random() * 2 ** 31));
  const schedules = Number(Deno.env.get("KS_MODEL_SCHEDULES") ?? 500);
  const realKillShare = Number(Deno.env.get("KS_MODEL_REAL_KILL") ?? 0.2);
  const concurrency = Number(Deno.env.get("KS_MODEL_CONCURRENCY") ?? 8);
  console.log(`model test: seed=${seed} schedules=${schedules} (replay: KS_MODEL_SEED=${seed})`);
  const t0 = performance.now();
  let restores = 0;
  let drops = 0;
  let kills = 0;
  const killOutcomes: Record<string, number> = {};
  // Schedules are independent sandboxes; a few run at once because a pass mostly waits on fsync.
  let next = 0;
  const worker = async () => {
    while (next < schedules) {
      const log = await runSchedule(seed, next++, realKillShare);
      if (log.includes("switch to native")) restores++;
      if (log.some((l) => l.startsWith("drop "))) drops++;
      const kill = log.find((l) => l.startsWith("real-kill"));
      if (kill) {
        kills++;
        const when = /\((.*)\)$/.exec(kill)![1];
        killOutcomes[when] = (killOutcomes[when] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  console.log(
    `model test: ${schedules} schedules (${restores} with restore, ${drops} dropping a file, ` +
      `${kills} with a real SIGKILL) ` +
      `in ${((performance.now() - t0) / 1000).toFixed(1)} s; SIGKILLs: ` +
      Object.entries(killOutcomes).map(([k, v]) => `${v} ${k}`).join(", "),
  );
});
