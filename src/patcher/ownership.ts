// The ownership registry in the state directory: which feature owns which host path, with the
// SHA-256 it wants there. A feature may claim a path another feature already owns only with the
// same content (shared ownership); a different content is refused naming both owners — this is
// what stops two sidecars from overwriting each other's `container_checker` forever. Updates are
// serialised across processes by an exclusive lock on `<state>/owners.lock`.
import { join } from "node:path";
import { stateFileMeta, writeFileAtomic } from "../host/files.ts";

/** path -> feature -> sha256 */
export type Registry = Record<string, Record<string, string>>;

/** A refused claim. */
export interface OwnershipConflict {
  path: string;
  feature: string;
  other: string;
  sha256: string;
  otherSha256: string;
}

/** Formats a conflict as a one-line error naming both owners. */
export function conflictMessage(c: OwnershipConflict): string {
  return `${c.path} is owned by feature "${c.other}" with different content ` +
    `(sha256 ${c.otherSha256.slice(0, 12)}…); feature "${c.feature}" wants ` +
    `${c.sha256.slice(0, 12)}…: refused, give both features the same file or one owner`;
}

/** The registry of one state directory. */
export class OwnershipRegistry {
  readonly path: string;
  readonly lockPath: string;

  constructor(stateDir: string) {
    this.path = join(stateDir, "owners.json");
    this.lockPath = join(stateDir, "owners.lock");
  }

  /** Reads the registry without locking (for reports). */
  async read(): Promise<Registry> {
    try {
      return JSON.parse(await Deno.readTextFile(this.path)) as Registry;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return {};
      throw new Error(`ownership registry ${this.path} is unreadable: ${(error as Error).message}`);
    }
  }

  /** Runs `fn` on the registry under the exclusive lock; writes it back when fn returns true. */
  async update<T>(fn: (registry: Registry) => { write: boolean; value: T }): Promise<T> {
    await Deno.mkdir(join(this.path, ".."), { recursive: true, mode: 0o700 });
    const lock = await Deno.open(this.lockPath, { create: true, write: true, mode: 0o600 });
    try {
      await lock.lock(true);
      const registry = await this.read();
      const { write, value } = fn(registry);
      if (write) {
        await writeFileAtomic(
          this.path,
          new TextEncoder().encode(JSON.stringify(registry, null, 1) + "\n"),
          stateFileMeta(),
        );
      }
      return value;
    } finally {
      lock.close();
    }
  }

  /**
   * Claims every `path -> sha256` for `feature`, all or nothing: when any path is owned by another
   * feature with a different sha256, nothing is recorded and the conflicts are returned.
   */
  async claim(
    feature: string,
    wants: { path: string; sha256: string }[],
  ): Promise<OwnershipConflict[]> {
    return await this.update((registry) => {
      const conflicts: OwnershipConflict[] = [];
      for (const { path, sha256 } of wants) {
        for (const [other, otherSha256] of Object.entries(registry[path] ?? {})) {
          if (other !== feature && otherSha256 !== sha256) {
            conflicts.push({ path, feature, other, sha256, otherSha256 });
          }
        }
      }
      if (conflicts.length > 0) return { write: false, value: conflicts };
      let changed = false;
      for (const { path, sha256 } of wants) {
        const owners = registry[path] ??= {};
        if (owners[feature] !== sha256) {
          owners[feature] = sha256;
          changed = true;
        }
      }
      return { write: changed, value: [] };
    });
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
