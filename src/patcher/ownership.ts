// The ownership registry in the state directory: which feature owns which host path, with the
// SHA-256 it wants there and when its patcher last confirmed the claim. A feature may claim a path
// another feature already owns only with the same content (shared ownership); a different content
// is refused naming both owners — this is what stops two sidecars from overwriting each other's
// `container_checker` forever. A claim not confirmed for `staleMs` (its sidecar is gone without a
// rollback) no longer blocks anyone: the next claimant takes the path over and says so. Updates
// are serialised across processes by an exclusive lock on `<state>/owners.lock`. Every access goes
// through the state directory's descriptor (src/host/state_dir.ts).
import { join } from "node:path";
import { StateDir } from "../host/state_dir.ts";

/** One feature's claim on a path. */
export interface Claim {
  sha256: string;
  /** When its patcher last confirmed it (ISO time). */
  seen: string;
  /** The actions its manifest entry declares (run again when the path is released). */
  actions?: string[];
  /**
   * The stale-claim time of the patcher that confirmed it (ms): it promises to confirm again well
   * within it. A release waits for the longer of this and its own (a manifest with a longer
   * interval and stale time confirms less often).
   */
  staleMs?: number;
}

/** A path a feature claims: the content it wants there and its entry's actions. */
export interface Want {
  path: string;
  sha256: string;
  actions?: string[];
}

/** path -> feature -> claim */
export type Registry = Record<string, Record<string, Claim>>;

/** A refused claim. */
export interface OwnershipConflict {
  path: string;
  feature: string;
  other: string;
  sha256: string;
  otherSha256: string;
}

/** A stale claim of another feature that a claim replaced. */
export interface TakeOver {
  path: string;
  other: string;
  seen: string;
}

/** Default age after which an unconfirmed claim stops blocking others (15 minutes). */
export const DEFAULT_STALE_MS = 15 * 60_000;

/** Formats a conflict as a one-line error naming both owners. */
export function conflictMessage(c: OwnershipConflict): string {
  return `${c.path} is owned by feature "${c.other}" with different content ` +
    `(sha256 ${c.otherSha256.slice(0, 12)}…); feature "${c.feature}" wants ` +
    `${c.sha256.slice(0, 12)}…: refused, give both features the same file or one owner`;
}

/**
 * Whether `claim` was not confirmed within the stale time before `now`: `staleMs` (the
 * caller's) or the one its confirmer recorded, whichever is longer (a sidecar with a longer
 * interval and stale time confirms less often). An unreadable time counts as unconfirmed; one in
 * the future (the clock stepped back) as confirmed, and its patcher confirms it again at once.
 *
 * This decides both whether another feature's claim still blocks, and whether a claim of our own
 * feature that our manifest no longer lists may be released. Claims are per feature, and several
 * manifests of one feature can be live on a node at once (an old pod's sidecar in its termination
 * grace beside the new one's, two tools versions); each pass confirms what its manifest lists, so
 * a claim another live manifest lists stays fresh: its patcher re-confirms a claim older than a
 * tenth of its stale time, and passes at least once per 1.1 x interval, the interval being at
 * most half the stale time (the tool refuses less). So a live manifest's claim is never older
 * than about 0.1 x stale + 1.1 x interval <= 0.65 x stale, plus the length of one pass.
 */
export function isStale(claim: Claim, now: number, staleMs: number): boolean {
  return !(now - Date.parse(claim.seen) <= Math.max(staleMs, claim.staleMs ?? 0));
}

/** Whether `seen` lies within `ms` before `now` (not in the future, not unreadable). */
function fresh(seen: string, now: number, ms: number): boolean {
  const age = now - Date.parse(seen);
  return age >= 0 && age <= ms;
}

/** The live claims of features other than `feature` on `path`. */
export function otherOwners(
  registry: Registry,
  path: string,
  feature: string,
  now: number,
  staleMs: number,
): [string, Claim][] {
  return Object.entries(registry[path] ?? {})
    .filter(([other, claim]) => other !== feature && !isStale(claim, now, staleMs));
}

/** The conflicts `feature` claiming `wants` would meet (pure; used by claims and dry runs). */
export function findConflicts(
  registry: Registry,
  feature: string,
  wants: { path: string; sha256: string }[],
  now: number,
  staleMs: number,
): OwnershipConflict[] {
  return wants.flatMap(({ path, sha256 }) =>
    otherOwners(registry, path, feature, now, staleMs)
      .filter(([, claim]) => claim.sha256 !== sha256)
      .map(([other, claim]) => ({ path, feature, other, sha256, otherSha256: claim.sha256 }))
  );
}

/** The registry of one state directory. */
export class OwnershipRegistry {
  readonly path: string;
  readonly lockPath: string;
  readonly staleMs: number;
  readonly #state: StateDir;

  constructor(stateDir: string, staleMs = DEFAULT_STALE_MS) {
    this.path = join(stateDir, "owners.json");
    this.lockPath = join(stateDir, "owners.lock");
    this.staleMs = staleMs;
    this.#state = new StateDir(stateDir);
  }

  /** Reads the registry without locking (for reports). */
  async read(): Promise<Registry> {
    try {
      const bytes = await this.#state.read("", "owners.json", 64 * 1024 * 1024);
      return bytes === null ? {} : JSON.parse(new TextDecoder().decode(bytes)) as Registry;
    } catch (error) {
      throw new Error(`ownership registry ${this.path} is unreadable: ${(error as Error).message}`);
    }
  }

  /** Runs `fn` under the exclusive lock on `<state>/owners.lock`. */
  async #underLock<T>(fn: () => Promise<T>): Promise<T> {
    const lock = await this.#state.lock("", "owners.lock");
    try {
      return await fn();
    } finally {
      lock.close();
    }
  }

  /**
   * Removes the registry temp files a killed writer (of any feature) left; run under the lock,
   * where no other writer can be in flight. Returns how many.
   */
  async sweepTemps(): Promise<number> {
    return await this.#underLock(() =>
      this.#state.sweepTemps("", (name) => name.startsWith(".owners.json."))
    );
  }

  /** Runs `fn` on the registry under the exclusive lock; writes it back when fn says so. */
  async update<T>(fn: (registry: Registry) => { write: boolean; value: T }): Promise<T> {
    return await this.updateAsync((registry) => Promise.resolve(fn(registry)));
  }

  /**
   * Like update(), for a `fn` that works on host files while it holds the lock (a release decides
   * "nobody else uses this path" and restores it before anyone can claim it meanwhile). When fn
   * throws, the registry is not written.
   */
  async updateAsync<T>(
    fn: (registry: Registry) => Promise<{ write: boolean; value: T }>,
  ): Promise<T> {
    return await this.#underLock(async () => {
      const registry = await this.read();
      const { write, value } = await fn(registry);
      if (write) {
        await this.#state.write(
          "",
          "owners.json",
          new TextEncoder().encode(JSON.stringify(registry, null, 1) + "\n"),
        );
      }
      return value;
    });
  }

  /**
   * Claims every `path -> sha256` for `feature`, all or nothing: when any path is owned by another
   * live feature with a different sha256, nothing is recorded and the conflicts are returned.
   * Stale claims of others on those paths are removed (returned in `takenOver`). Our own claims
   * are re-confirmed when older than a tenth of the stale age (so the file is not rewritten on
   * every pass).
   */
  async claim(
    feature: string,
    wants: Want[],
    now = Date.now(),
  ): Promise<{ conflicts: OwnershipConflict[]; takenOver: TakeOver[] }> {
    return await this.update<{ conflicts: OwnershipConflict[]; takenOver: TakeOver[] }>(
      (registry) => {
        const conflicts = findConflicts(registry, feature, wants, now, this.staleMs);
        if (conflicts.length > 0) return { write: false, value: { conflicts, takenOver: [] } };
        const takenOver: TakeOver[] = [];
        let changed = false;
        const seen = new Date(now).toISOString();
        for (const { path, sha256, actions = [] } of wants) {
          const owners = registry[path] ??= {};
          for (const [other, claim] of Object.entries(owners)) {
            if (other !== feature && isStale(claim, now, this.staleMs)) {
              takenOver.push({ path, other, seen: claim.seen });
              delete owners[other];
              changed = true;
            }
          }
          const mine = owners[feature];
          if (
            mine === undefined || mine.sha256 !== sha256 ||
            (mine.actions ?? []).join("\n") !== actions.join("\n") ||
            mine.staleMs !== this.staleMs || !fresh(mine.seen, now, this.staleMs / 10)
          ) {
            owners[feature] = {
              sha256,
              seen,
              ...(actions.length > 0 ? { actions } : {}),
              staleMs: this.staleMs,
            };
            changed = true;
          }
        }
        return { write: changed, value: { conflicts: [], takenOver } };
      },
    );
  }

  /** Releases `feature`'s claim on `paths`. */
  async release(feature: string, paths: string[]): Promise<void> {
    await this.update((registry) => {
      let changed = false;
      for (const path of paths) {
        if (registry[path]?.[feature] !== undefined) {
          delete registry[path][feature];
          if (Object.keys(registry[path]).length === 0) delete registry[path];
          changed = true;
        }
      }
      return { write: changed, value: undefined };
    });
  }
}
