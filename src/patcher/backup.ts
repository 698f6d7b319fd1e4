// Backups of the originals in the state directory: taken once, before the first overwrite of a
// host file, and never replaced afterwards (so a patched file can never become "the original").
// A file that did not exist is recorded as absent, so a restore removes it. Layout:
// `<state>/backups/<encoded host path>.json` (metadata, written last = the commit point) and
// `<state>/backups/<encoded host path>.orig` (the bytes).
import { join } from "node:path";
import { type FileState, stateFileMeta, writeFileAtomic } from "../host/files.ts";
import { sha256Hex } from "./hash.ts";

/** A recorded original. */
export interface Backup {
  path: string;
  /** True when the file did not exist before the first overwrite. */
  absent: boolean;
  content: Uint8Array | null;
  mode: number;
  uid: number;
  gid: number;
  sha256: string | null;
  /** Absent originals: the directories the first write created (outermost first). */
  createdDirs?: string[];
}

interface BackupMeta {
  path: string;
  absent: boolean;
  mode: number;
  uid: number;
  gid: number;
  sha256: string | null;
  takenAt: string;
  createdDirs?: string[];
}

/** Backups for one state directory. */
export class BackupStore {
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, "backups");
  }

  #paths(hostPath: string): { meta: string; data: string } {
    const key = encodeURIComponent(hostPath);
    return { meta: join(this.dir, `${key}.json`), data: join(this.dir, `${key}.orig`) };
  }

  /** The backup of `hostPath`, or null when none was taken. Throws if it is corrupt. */
  async get(hostPath: string): Promise<Backup | null> {
    const { meta, data } = this.#paths(hostPath);
    let parsed: BackupMeta;
    try {
      parsed = JSON.parse(await Deno.readTextFile(meta));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw new Error(`backup ${meta} is unreadable: ${(error as Error).message}`);
    }
    let content: Uint8Array | null = null;
    if (!parsed.absent) {
      content = await Deno.readFile(data);
      const sha = await sha256Hex(content);
      if (sha !== parsed.sha256) {
        throw new Error(`backup ${data} does not match its recorded sha256 ${parsed.sha256}`);
      }
    }
    return { ...parsed, content };
  }

  /**
   * Records `current` as the original of `hostPath` unless a backup already exists (then it does
   * nothing: an existing backup is never replaced). Returns true when it took one. For an absent
   * original, `createdDirs` are the directories the write is about to create: a restore removes
   * them again once empty.
   */
  async takeOnce(
    hostPath: string,
    current: FileState,
    createdDirs: string[] = [],
  ): Promise<boolean> {
    const { meta, data } = this.#paths(hostPath);
    try {
      await Deno.lstat(meta);
      return false;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    await Deno.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const absent = current.content === null;
    if (!absent) {
      // The metadata's rename below fsyncs the same directory.
      await writeFileAtomic(data, current.content!, stateFileMeta(), undefined, { syncDir: false });
    }
    const record: BackupMeta = {
      path: hostPath,
      absent,
      mode: current.mode,
      uid: current.uid,
      gid: current.gid,
      sha256: absent ? null : await sha256Hex(current.content!),
      takenAt: new Date().toISOString(),
      ...(absent && createdDirs.length > 0 ? { createdDirs } : {}),
    };
    await writeFileAtomic(
      meta,
      new TextEncoder().encode(JSON.stringify(record) + "\n"),
      stateFileMeta(),
    );
    return true;
  }
}

/** Reads a backup's file state in the same shape as a host file (for comparisons). */
export function backupAsState(backup: Backup): FileState {
  return { content: backup.content, mode: backup.mode, uid: backup.uid, gid: backup.gid };
}
