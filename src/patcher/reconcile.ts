// One reconcile pass of the patcher: observe the managed host files -> compare with the desired
// state (SHA-256, mode, owner) -> act (journal the owed actions, back up originals, write
// atomically or restore, run the actions) -> record (journal cleared, ownership updated). The same
// function serves `--once`, `--dry-run` and every trigger of the loop. A pass writes nothing when
// a path fails the safety rules, two entries name one file, or the ownership registry refuses a
// claim. Every host file is reached through the descriptor of its directory (HostPaths.open), so
// what was checked is what is written.
import type { HostCommands } from "../host/commands.ts";
import {
  type Body,
  type FaultHook,
  type FileState,
  InjectedCrash,
  readFileStateAt,
  removeFileAt,
  sameBody,
  setFileMetaAt,
  sweepTempsAt,
  writeFileAtomicAt,
} from "../host/files.ts";
import { HashCache } from "../host/hash_cache.ts";
import { HostPaths, type OpenedPath, PathSafetyError } from "../host/paths.ts";
import { escapeText, type Logger } from "../log.ts";
import { type Action, dedupeActions, parseAction, runAction } from "./actions.ts";
import { type Backup, BackupStore } from "./backup.ts";
import { Journal } from "./journal.ts";
import { StormGuard } from "./storm.ts";
import type { ManagedFile, Manifest } from "./manifest.ts";
import {
  conflictMessage,
  findConflicts,
  isStale,
  otherOwners,
  type OwnershipConflict,
  OwnershipRegistry,
  type Registry,
} from "./ownership.ts";

/** Everything a pass needs; built once by run() (or a test) and reused across passes. */
export interface PatcherContext {
  manifest: Manifest;
  paths: HostPaths;
  host: HostCommands;
  backups: BackupStore;
  journal: Journal;
  owners: OwnershipRegistry;
  log: Logger;
  /** Test seam: called inside writes; throwing there simulates a crash at that point. */
  fault?: FaultHook;
  /** The loop's storm guard (none for a single pass). */
  storm?: StormGuard;
  /** Set once the state directory's leftover temp files were swept (first pass). */
  stateSwept?: boolean;
  /** Test seam: the clock (default Date.now) for claims and their staleness. */
  now?: () => number;
  /** The unlisted paths whose deferred release was already logged (one line, not one a pass). */
  deferredLogged?: Set<string>;
  /** Hashes of large host files already read (an unchanged one is not read again). */
  hashes: HashCache;
}

/** Builds a PatcherContext from its parts (state objects live under `stateDir`). */
export function createPatcherContext(options: {
  manifest: Manifest;
  paths: HostPaths;
  host: HostCommands;
  stateDir: string;
  log: Logger;
  /** Age after which another feature's unconfirmed claim stops blocking (default 15 min). */
  staleClaimMs?: number;
  fault?: FaultHook;
  /** Hold a file that does not stay converged for this long (the loop's interval). */
  stormIntervalMs?: number;
  /** Test seam: the clock (default Date.now). */
  now?: () => number;
  /** Shared with the manifest's loading (default: a cache of this context's own). */
  hashes?: HashCache;
}): PatcherContext {
  return {
    manifest: options.manifest,
    paths: options.paths,
    host: options.host,
    backups: new BackupStore(options.stateDir, options.manifest.feature),
    journal: new Journal(options.stateDir, options.manifest.feature),
    owners: new OwnershipRegistry(options.stateDir, options.staleClaimMs),
    log: options.log,
    fault: options.fault,
    now: options.now,
    hashes: options.hashes ?? new HashCache(),
    storm: options.stormIntervalMs === undefined
      ? undefined
      : new StormGuard(options.stormIntervalMs),
  };
}

/** What a pass does (or, in a dry run, would do) to one file. */
export interface PlanItem {
  path: string;
  /** write = replace content; meta = fix mode/owner only; remove = restore an absent original;
   * none = already as desired; skip = nothing to do here (e.g. shared with another owner);
   * release = a path this feature owns that the kube manifest no longer lists (see release()). */
  op: "write" | "meta" | "remove" | "none" | "skip" | "release";
  reason: string;
  actions: Action[];
}

/** The outcome of one pass. */
export interface PassResult {
  feature: string;
  mode: "kube" | "native";
  dryRun: boolean;
  plan: PlanItem[];
  /** Paths changed by this pass. */
  changed: string[];
  /** Actions that ran successfully in this pass. */
  actionsRun: Action[];
  /** Actions still owed (journaled) after this pass. */
  pending: Action[];
  /** Paths held by the storm guard (not changed, their actions not run, in this pass). */
  held: string[];
  /**
   * True when the manifest was refused against this host before anything was touched (a path
   * the safety rules refuse, two entries naming one file): bad input, `--once` exits 2.
   */
  refused?: boolean;
  errors: string[];
  /** True when every file is as desired and no action is owed. */
  converged: boolean;
}

interface Desired {
  state: Want;
  /** Show in the plan as "restore from backup" etc. */
  origin: string;
}

/** A desired state: bytes (null = absent), mode and owner. */
interface Want {
  body: Body | null;
  mode: number;
  uid: number;
  gid: number;
}

function describe(state: { body: Body | null; mode: number }): string {
  return state.body === null ? "absent" : `mode ${state.mode.toString(8).padStart(4, "0")}`;
}

function compare(file: ManagedFile, current: FileState, desired: Desired | null): PlanItem {
  if (desired === null) {
    return { path: file.path, op: "skip", reason: "nothing to restore", actions: [] };
  }
  const want = desired.state;
  if (want.body === null) {
    return current.body === null
      ? { path: file.path, op: "none", reason: "absent as desired", actions: [] }
      : {
        path: file.path,
        op: "remove",
        reason: `${desired.origin}: absent`,
        actions: file.actions,
      };
  }
  if (!sameBody(current.body, want.body)) {
    const have = current.body === null ? "absent" : `sha256 ${current.body.sha256.slice(0, 12)}`;
    return {
      path: file.path,
      op: "write",
      reason: `${have} -> sha256 ${want.body.sha256.slice(0, 12)} (${desired.origin})`,
      actions: file.actions,
    };
  }
  if (current.mode !== want.mode || current.uid !== want.uid || current.gid !== want.gid) {
    return {
      path: file.path,
      op: "meta",
      reason: `${describe(current)} ${current.uid}:${current.gid} -> ${
        describe(want)
      } ${want.uid}:${want.gid}`,
      actions: file.actions,
    };
  }
  return { path: file.path, op: "none", reason: "as desired", actions: [] };
}

function wanted(file: ManagedFile): Want {
  return { body: file.body, mode: file.mode, uid: file.uid, gid: file.gid };
}

function fromBackup(backup: Backup): Want {
  return { body: backup.body, mode: backup.mode, uid: backup.uid, gid: backup.gid };
}

/**
 * Runs one pass. Never throws for per-file problems: they are returned in `errors` (and logged),
 * and the pass converges only when there are none. With `dryRun` it returns the plan and touches
 * nothing (no state, no host file, no action).
 */
export async function reconcileOnce(
  ctx: PatcherContext,
  options: { dryRun?: boolean } = {},
): Promise<PassResult> {
  if (options.dryRun) return await pass(ctx, true);
  // One pass per feature at a time, across processes (two sidecar pods of one feature during a
  // rollout): an exclusive flock, released by the kernel if the holder is killed.
  const lock = await ctx.journal.lock();
  try {
    if (!ctx.stateSwept) await sweepState(ctx);
    return await pass(ctx, false);
  } finally {
    lock.close();
  }
}

/**
 * Removes the temp files a killed patcher of this feature left in the state directory (journal,
 * backups; the registry's under its own lock), through the state directory's descriptors. Runs
 * once, on the first pass, under the feature's pass lock.
 */
async function sweepState(ctx: PatcherContext): Promise<void> {
  const removed = await ctx.journal.sweepTemps() + await ctx.backups.sweepTemps() +
    await ctx.owners.sweepTemps();
  if (removed > 0) ctx.log.info("swept temp files a killed writer left", { count: removed });
  ctx.stateSwept = true;
}

async function pass(ctx: PatcherContext, dryRun: boolean): Promise<PassResult> {
  const { manifest } = ctx;
  const result: PassResult = {
    feature: manifest.feature,
    mode: manifest.mode,
    dryRun,
    plan: [],
    changed: [],
    actionsRun: [],
    pending: [],
    held: [],
    errors: [],
    converged: false,
  };
  const opened: OpenedPath[] = [];
  try {
    return await passWith(ctx, dryRun, result, opened);
  } finally {
    for (const o of opened) o.close();
  }
}

async function passWith(
  ctx: PatcherContext,
  dryRun: boolean,
  result: PassResult,
  opened: OpenedPath[],
): Promise<PassResult> {
  const { manifest, log } = ctx;
  const failedPaths = new Set<string>();
  const fail = (message: string, fields?: Record<string, string>) => {
    result.errors.push(message);
    log.error(message, fields);
  };
  const failFile = (path: string, message: string) => {
    failedPaths.add(path);
    fail(message, { path });
  };

  // Observe: resolve every path first (all or nothing), holding each file's directory open,
  // then read the files through those descriptors.
  const resolved = new Map<string, OpenedPath>();
  for (const file of manifest.files) {
    try {
      const where = ctx.paths.open(file.path);
      opened.push(where);
      resolved.set(file.path, where);
    } catch (error) {
      if (error instanceof PathSafetyError) result.refused = true;
      fail((error as Error).message);
    }
  }
  for (const message of aliasErrors(manifest, resolved)) {
    result.refused = true;
    fail(message);
  }
  let pending: Action[] = [];
  try {
    pending = await ctx.journal.pending();
  } catch (error) {
    fail((error as Error).message);
  }
  if (result.errors.length > 0) {
    return finish(result, dryRun ? pending : await runOwed(ctx, pending, result, fail));
  }

  // Ownership: kube claims every path (all or nothing); native looks for other owners.
  const sharedWithOthers = new Set<string>();
  let registry: Registry = {};
  try {
    registry = await ctx.owners.read();
  } catch (error) {
    fail((error as Error).message);
    return finish(result, pending);
  }
  const now = ctx.now?.() ?? Date.now();
  if (manifest.mode === "kube") {
    const wants = manifest.files.map((f) => ({
      path: f.path,
      sha256: f.sha256,
      actions: f.actions,
    }));
    let conflicts: OwnershipConflict[];
    if (dryRun) {
      conflicts = findConflicts(registry, manifest.feature, wants, now, ctx.owners.staleMs);
    } else {
      const claimed = await ctx.owners.claim(manifest.feature, wants, now);
      conflicts = claimed.conflicts;
      for (const t of claimed.takenOver) {
        log.warn("took over a stale claim", { path: t.path, from: t.other, last_seen: t.seen });
      }
    }
    for (const conflict of conflicts) fail(conflictMessage(conflict), { path: conflict.path });
    if (conflicts.length > 0) {
      return finish(result, dryRun ? pending : await runOwed(ctx, pending, result, fail));
    }
  } else {
    for (const file of manifest.files) {
      const others = otherOwners(registry, file.path, manifest.feature, now, ctx.owners.staleMs);
      if (others.length > 0) sharedWithOthers.add(file.path);
    }
  }

  // Compare.
  const currents = new Map<string, FileState>();
  for (const file of manifest.files) {
    const where = resolved.get(file.path)!;
    try {
      if (!dryRun) sweepTempsAt(where.dirFd, where.base, manifest.feature);
      const current = await readFileStateAt(where.dirFd, where.base, ctx.hashes);
      currents.set(file.path, current);
      let desired: Desired | null;
      if (manifest.mode === "kube") desired = { state: wanted(file), origin: "desired" };
      else if (sharedWithOthers.has(file.path)) desired = null;
      else {
        const backup = await ctx.backups.get(file.path);
        if (backup) desired = { state: fromBackup(backup), origin: "restore backup" };
        else if (file.nativeBody) {
          desired = {
            state: { body: file.nativeBody, mode: file.mode, uid: file.uid, gid: file.gid },
            origin: "restore nativeSource",
          };
        } else if (
          current.body !== null && current.body.sha256 === file.sha256 &&
          registry[file.path]?.[manifest.feature] !== undefined
        ) {
          // Our content is there but its original is not known (state directory lost).
          failFile(
            file.path,
            `${file.path}: no backup and no nativeSource: cannot restore the original`,
          );
          desired = null;
        } else desired = null; // we never wrote it: nothing to restore
      }
      const item = compare(file, current, desired);
      if (sharedWithOthers.has(file.path)) item.reason = "still owned by another feature";
      if (!dryRun && ctx.storm) {
        const heldMs = ctx.storm.heldFor(file.path);
        if (item.op === "none") ctx.storm.stable(file.path);
        else if (heldMs > 0 && item.op !== "skip") {
          item.reason = `held: it does not stay converged (${item.op} ${item.reason}); ` +
            `next repair in ${Math.ceil(heldMs / 1000)}s`;
          item.op = "skip";
          item.actions = [];
          result.held.push(file.path);
        }
      }
      result.plan.push(item);
    } catch (error) {
      failFile(file.path, `${file.path}: ${(error as Error).message}`);
    }
  }
  if (dryRun) {
    if (manifest.mode === "kube") {
      const { due, held } = unlisted(registry, manifest, now, ctx.owners.staleMs);
      deferred(ctx, registry, held, result, now, false);
      for (const path of due) {
        const others = otherOwners(registry, path, manifest.feature, now, ctx.owners.staleMs);
        result.plan.push({
          path,
          op: "release",
          reason: others.length > 0
            ? `no longer in the manifest: claim dropped, still used by ${
              others.map(([o]) => o).join(", ")
            }`
            : "no longer in the manifest: original restored, backup and claim dropped",
          actions: [],
        });
      }
    }
    return finish(result, pending);
  }
  // kube installs all or nothing; a rollback restores every original it can.
  if (result.errors.length > 0 && manifest.mode === "kube") {
    return finish(result, await runOwed(ctx, pending, result, fail));
  }

  // Act: journal the owed actions before touching any file.
  const changes = result.plan.filter((p) =>
    p.op === "write" || p.op === "meta" || p.op === "remove"
  );
  if (changes.length > 0) {
    const next = orderActions(manifest, dedupeActions(pending, ...changes.map((c) => c.actions)));
    try {
      if (next.join("\n") !== pending.join("\n")) await ctx.journal.set(next);
      pending = next;
    } catch (error) {
      fail(`journal: ${(error as Error).message}`);
      return finish(result, pending);
    }
  }
  for (const item of changes) {
    const file = manifest.files.find((f) => f.path === item.path)!;
    const where = resolved.get(item.path)!;
    const current = currents.get(item.path)!;
    try {
      // Back up what we are about to replace, unless it already is our content (then the
      // original is unknown, and recording ours as "the original" would be wrong).
      const ours = current.body !== null && sameBody(current.body, file.body);
      if (
        manifest.mode === "kube" && !ours &&
        await ctx.backups.takeOnce(item.path, current, where.missingDirs)
      ) {
        log.info("backup taken", { path: item.path, original: describe(current) });
      }
      if (item.op === "remove") {
        await removeFileAt(where.dirFd, where.base);
        await removeCreatedDirs(ctx, await ctx.backups.get(item.path));
      } else if (item.op === "meta") {
        setFileMetaAt(
          where.dirFd!,
          where.base,
          desiredMeta(ctx, file, await ctx.backups.get(file.path)),
        );
      } else {
        const desiredState = manifest.mode === "kube"
          ? wanted(file)
          : await restoreState(ctx, file);
        const dir = await where.makeDirs();
        await writeFileAtomicAt(dir, where.base, desiredState.body!, desiredState, ctx.fault, {
          tag: manifest.feature,
          what: item.path,
        });
      }
      result.changed.push(item.path);
      if (ctx.storm?.changed(item.path)) {
        log.warn("file does not stay converged: something else keeps changing it", {
          path: item.path,
          passes: ctx.storm.passes,
          held_s: Math.round(ctx.storm.intervalMs / 1000),
        });
      }
      log.info(manifest.mode === "kube" ? "file reconciled" : "original restored", {
        path: item.path,
        op: item.op,
        reason: item.reason,
      });
    } catch (error) {
      if (error instanceof InjectedCrash) throw error;
      failFile(item.path, `${item.path}: ${item.op} failed: ${(error as Error).message}`);
    }
  }

  // Act: run the owed actions in order.
  pending = await runOwed(ctx, pending, result, fail);

  // Release what the manifest no longer lists, only once every write and action of this pass is
  // done: the launcher already names the new tree before the old one goes.
  if (
    manifest.mode === "kube" && result.errors.length === 0 && pending.length === 0 &&
    result.held.length === 0
  ) {
    try {
      pending = await release(ctx, resolved, result, fail);
    } catch (error) {
      if (error instanceof InjectedCrash) throw error;
      fail(`release: ${(error as Error).message}`);
    }
  }

  // Record: native mode gives up ownership of each path whose original is back.
  if (manifest.mode === "native") {
    try {
      const restored = manifest.files.map((f) => f.path).filter((p) => !failedPaths.has(p));
      await ctx.owners.release(manifest.feature, restored);
    } catch (error) {
      fail(`ownership: ${(error as Error).message}`);
    }
  }
  return finish(result, pending);
}

/**
 * The paths `manifest`'s feature owns in `registry` that the manifest does not list: `due` ones
 * nobody confirmed for the stale time (isStale()), `held` ones another manifest of this
 * feature still lists (it confirmed the claim recently; see isStale() for why a live one
 * always has).
 */
function unlisted(
  registry: Registry,
  manifest: Manifest,
  now: number,
  staleMs: number,
): { due: string[]; held: string[] } {
  const listed = new Set(manifest.files.map((f) => f.path));
  const paths = Object.keys(registry)
    .filter((p) => registry[p][manifest.feature] !== undefined && !listed.has(p))
    .sort();
  const due = paths.filter((p) => isStale(registry[p][manifest.feature], now, staleMs));
  return { due, held: paths.filter((p) => !due.includes(p)) };
}

/**
 * Shows the held (not yet due) releases as `skip` plan items, and logs each path once per
 * process (`log`), not once per pass.
 */
function deferred(
  ctx: PatcherContext,
  registry: Registry,
  held: string[],
  result: PassResult,
  now: number,
  log: boolean,
): void {
  const logged = ctx.deferredLogged ??= new Set();
  for (const path of held) {
    const claim = registry[path][ctx.manifest.feature];
    const ago = Math.max(0, Math.round((now - Date.parse(claim.seen)) / 1000));
    const after = Math.round(Math.max(ctx.owners.staleMs, claim.staleMs ?? 0) / 1000);
    result.plan.push({
      path,
      op: "skip",
      reason: `no longer in the manifest: release deferred, a manifest of this feature ` +
        `confirmed it ${ago}s ago (released once unconfirmed for ${after}s)`,
      actions: [],
    });
    if (log && !logged.has(path)) {
      logged.add(path);
      ctx.log.info(
        "release deferred: a manifest of this feature confirmed it within the stale time",
        {
          path,
          confirmed_s_ago: String(ago),
          release_after_s: String(after),
        },
      );
    }
  }
}

/** depth-first order: deeper directories first, so a parent is tried after its children. */
function deepestFirst(dirs: Iterable<string>): string[] {
  return [...new Set(dirs)].sort((a, b) =>
    b.split("/").length - a.split("/").length || (a < b ? -1 : a > b ? 1 : 0)
  );
}

/**
 * Releases every path this feature owns in the registry that its kube manifest no longer lists
 * (a tools upgrade's old tree, a dropped file) once nobody confirmed its claim for the stale
 * time: until then another manifest of this feature may still list it (an old pod's sidecar
 * beside the new one's), and the path is left alone (a `skip` item, logged once). Under the
 * registry's lock, so no other feature claims a path while it is being restored: a path another feature still holds a live claim on
 * keeps its file and backup, only our claim goes; otherwise the original comes back as native
 * mode would restore it (an absent original: the file removed, then the directories its first
 * write created, deepest first, each when empty; a present original: rewritten from its backup),
 * the backup is dropped, then the claim. Every step is idempotent and the claim, dropped last
 * (the registry write), is what keeps the release owed: after a crash at any point the next pass
 * does it again. Directories still holding another of our files hand over to that file's backup.
 * The actions the released entries declared (recorded with their claims; not stop-container, as
 * in native mode) are journaled before the first file is touched and run afterwards; returns
 * the actions still owed.
 */
async function release(
  ctx: PatcherContext,
  resolved: Map<string, OpenedPath>,
  result: PassResult,
  fail: (message: string, fields?: Record<string, string>) => void,
): Promise<Action[]> {
  const { manifest, log } = ctx;
  const feature = manifest.feature;
  // The common case, nothing to release, costs one unlocked read.
  const snapshot = await ctx.owners.read();
  const at = ctx.now?.() ?? Date.now();
  const first = unlisted(snapshot, manifest, at, ctx.owners.staleMs);
  deferred(ctx, snapshot, first.held, result, at, true);
  if (first.due.length === 0) return [];
  let owed: Action[] = [];
  const listedKeys = new Set<string>();
  for (const where of resolved.values()) {
    listedKeys.add(`canonical ${where.canonical}`);
    if (where.dirId !== null) listedKeys.add(`dir ${where.dirId}/${where.base}`);
  }
  const released: { path: string; what: string; changed: boolean }[] = [];
  await ctx.owners.updateAsync(async (registry) => {
    const now = ctx.now?.() ?? Date.now();
    // Decided again under the lock: another manifest of this feature may have confirmed a path
    // since the unlocked read.
    const { due } = unlisted(registry, manifest, now, ctx.owners.staleMs);
    const dropClaim: string[] = [];
    const dropBackup: string[] = [];
    const dirs: string[] = [];
    const done = (path: string, what: string, changed = false) => {
      dropClaim.push(path);
      released.push({ path, what, changed });
    };
    // A directory step that failed keeps every backup and claim: the next pass does it again.
    let keepState = false;
    // The actions of the paths whose original comes back, journaled before any file changes.
    owed = releaseActions(
      due
        .filter((p) => otherOwners(registry, p, feature, now, ctx.owners.staleMs).length === 0)
        .map((p) => registry[p][feature].actions ?? []),
    );
    if (owed.length > 0) await ctx.journal.set(owed);
    for (const path of due) {
      ctx.deferredLogged?.delete(path);
      const others = otherOwners(registry, path, feature, now, ctx.owners.staleMs);
      if (others.length > 0) {
        done(path, `claim dropped, file kept: still used by ${others.map(([o]) => o).join(", ")}`);
        continue;
      }
      let where: OpenedPath | null = null;
      try {
        where = ctx.paths.open(path);
        if (
          listedKeys.has(`canonical ${where.canonical}`) ||
          (where.dirId !== null && listedKeys.has(`dir ${where.dirId}/${where.base}`))
        ) {
          done(path, `claim dropped, file kept: the manifest lists it as ${where.canonical}`);
          continue;
        }
        const backup = await ctx.backups.get(path);
        if (backup === null) {
          const current = await readFileStateAt(where.dirFd, where.base, ctx.hashes);
          if (current.body !== null && current.body.sha256 === registry[path][feature].sha256) {
            fail(`${path}: release failed: no backup: cannot restore the original`, { path });
            continue;
          }
          // Never written by us, or restored by a release a crash interrupted.
          done(path, "claim dropped, nothing of ours there");
          continue;
        }
        sweepTempsAt(where.dirFd, where.base, feature);
        if (backup.absent) {
          await removeFileAt(where.dirFd, where.base);
          dirs.push(...backup.createdDirs ?? []);
        } else {
          const current = await readFileStateAt(where.dirFd, where.base, ctx.hashes);
          const want = fromBackup(backup);
          if (
            !sameBody(current.body, want.body) || current.mode !== want.mode ||
            current.uid !== want.uid || current.gid !== want.gid
          ) {
            const dir = await where.makeDirs();
            await writeFileAtomicAt(dir, where.base, want.body!, want, ctx.fault, {
              tag: feature,
              what: path,
            });
          }
        }
        ctx.fault?.("release-restored", path);
        dropBackup.push(path);
        done(path, backup.absent ? "removed (absent original)" : "original restored", true);
      } catch (error) {
        if (error instanceof InjectedCrash) throw error;
        fail(`${path}: release failed: ${(error as Error).message}`, { path });
      } finally {
        where?.close();
      }
    }
    // The directories the released files' first writes created, deepest first, each when empty.
    const kept: string[] = [];
    for (const dir of deepestFirst(dirs)) {
      try {
        const outcome = await ctx.paths.removeEmptyDir(dir);
        if (outcome === "removed") log.info("created directory removed", { path: dir });
        if (outcome === "kept") kept.push(dir);
      } catch (error) {
        keepState = true;
        fail(`${dir}: created directory not removed: ${(error as Error).message}`, { path: dir });
      }
    }
    ctx.fault?.("release-dirs", dirs[0] ?? "");
    // A created directory another claimed file still fills: its backup takes the record over.
    const gone = new Set(dropBackup);
    for (const other of Object.keys(registry)) {
      if (gone.has(other)) continue;
      const inside = kept.filter((d) => other.startsWith(`${d}/`));
      if (inside.length === 0) continue;
      try {
        await ctx.backups.addCreatedDirs(other, inside);
      } catch (error) {
        keepState = true;
        fail(`${other}: backup: ${(error as Error).message}`, { path: other });
      }
    }
    if (keepState) {
      released.length = 0;
      return { write: false, value: undefined };
    }
    for (const path of dropBackup) await ctx.backups.drop(path);
    ctx.fault?.("release-backup-dropped", dropBackup[0] ?? "");
    for (const path of dropClaim) {
      delete registry[path][feature];
      if (Object.keys(registry[path]).length === 0) delete registry[path];
    }
    return { write: dropClaim.length > 0, value: undefined };
  });
  // Reported once the registry no longer holds the claims.
  for (const { path, what, changed } of released) {
    result.plan.push({
      path,
      op: "release",
      reason: `no longer in the manifest: ${what}`,
      actions: [],
    });
    if (changed) result.changed.push(path);
    log.info("released: no longer in the manifest", { path, done: what });
  }
  return await runOwed(ctx, owed, result, fail);
}

/**
 * The actions released entries recorded (valid ones only: the registry is state, not input),
 * de-duplicated, daemon-reload first, without stop-container (the original's own container may
 * be the one that runs again).
 */
function releaseActions(lists: string[][]): Action[] {
  const valid = lists.map((list) =>
    list.flatMap((a) => {
      try {
        const action = parseAction(a);
        return action.startsWith("stop-container ") ? [] : [action];
      } catch {
        return [];
      }
    })
  );
  const all = dedupeActions(...valid);
  return [...all.filter((a) => a === "daemon-reload"), ...all.filter((a) => a !== "daemon-reload")];
}

/**
 * After restoring an absent original: removes the directories its first write created, deepest
 * first, each only when empty (another file, ours or not, keeps it), so a rollback leaves the
 * tree as it found it.
 */
async function removeCreatedDirs(ctx: PatcherContext, backup: Backup | null): Promise<void> {
  for (const dir of [...backup?.createdDirs ?? []].reverse()) {
    const outcome = await ctx.paths.removeEmptyDir(dir);
    if (outcome === "kept") return; // not empty (or not ours): its parents are not empty either
    if (outcome === "removed") ctx.log.info("created directory removed", { path: dir });
  }
}

/**
 * Runs the owed actions in order and stops at the first failure; the journal then keeps exactly
 * the actions not done yet (retried by a later pass), or is cleared when all succeeded. Progress
 * between actions is not journaled: after a crash there, the done ones run again, which is
 * harmless (daemon-reload, restart, reset-failed and stop are idempotent) and saves an fsync per
 * action. Owed actions run even when this pass cannot touch the files: they belong to an earlier
 * change.
 */
async function runOwed(
  ctx: PatcherContext,
  owed: Action[],
  result: PassResult,
  fail: (message: string, fields?: Record<string, string>) => void,
): Promise<Action[]> {
  let pending = owed;
  while (pending.length > 0) {
    const action = pending[0];
    const { ok, result: out } = await runAction(ctx.host, action);
    if (!ok) {
      const why = escapeText(out.stderr.trim().split("\n")[0] ?? "");
      fail(`action "${action}" failed (exit ${out.code}): ${why}`, { action });
      break;
    }
    ctx.log.info("action done", { action });
    result.actionsRun.push(action);
    pending = pending.slice(1);
  }
  if (pending.length !== owed.length) {
    try {
      await ctx.journal.set(pending);
    } catch (error) {
      fail(`journal: ${(error as Error).message}`);
    }
  }
  return pending;
}

/**
 * Puts owed actions in the manifest's declared order (first appearance across its files), so a
 * `daemon-reload` owed by a new change still runs before the restarts left over from an earlier
 * one; actions the manifest no longer lists (from an older manifest) keep their place in front.
 */
export function orderActions(manifest: Manifest, actions: Action[]): Action[] {
  const declared = dedupeActions(...manifest.files.map((f) => f.actions));
  const wanted = new Set(actions);
  return [
    ...actions.filter((a) => !declared.includes(a)),
    ...declared.filter((a) => wanted.has(a)),
  ];
}

function desiredMeta(ctx: PatcherContext, file: ManagedFile, backup: Backup | null): Want {
  if (ctx.manifest.mode === "native" && backup) return fromBackup(backup);
  return wanted(file);
}

async function restoreState(ctx: PatcherContext, file: ManagedFile): Promise<Want> {
  const backup = await ctx.backups.get(file.path);
  if (backup) return fromBackup(backup);
  return { body: file.nativeBody!, mode: file.mode, uid: file.uid, gid: file.gid };
}

/**
 * Two entries that reach one file after resolution (a symlinked directory, a bind mount):
 * one line per pair, naming both. Such a manifest would rewrite the file on every pass.
 */
function aliasErrors(manifest: Manifest, resolved: Map<string, OpenedPath>): string[] {
  const errors: string[] = [];
  const seen = new Map<string, number>();
  manifest.files.forEach((file, i) => {
    const where = resolved.get(file.path);
    if (!where) return;
    const keys = [`canonical ${where.canonical}`];
    if (where.dirId !== null) keys.push(`dir ${where.dirId}/${where.base}`);
    for (const key of keys) {
      const earlier = seen.get(key);
      if (earlier !== undefined) {
        errors.push(
          `files[${earlier}].path ${JSON.stringify(manifest.files[earlier].path)} and ` +
            `files[${i}].path ${JSON.stringify(file.path)} name the same file ` +
            `(${where.canonical}): refused, list it once`,
        );
        return;
      }
    }
    for (const key of keys) seen.set(key, i);
  });
  return errors;
}

function finish(result: PassResult, pending: Action[]): PassResult {
  result.pending = pending;
  result.converged = result.errors.length === 0 && pending.length === 0 && !result.dryRun &&
    result.held.length === 0;
  if (result.dryRun) {
    result.converged = result.errors.length === 0 &&
      result.plan.every((p) => p.op === "none" || p.op === "skip") && pending.length === 0;
  }
  return result;
}
