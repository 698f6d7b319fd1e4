// Backups of the originals in the state directory: taken once, before the first overwrite of a
// host file, and never replaced afterwards (so a patched file can never become "the original").
// A file that did not exist is recorded as absent, so a restore removes it. Layout:
// `<state>/backups/<encoded host path>.json` (metadata, written last = the commit point) and
// `<state>/backups/<encoded host path>.orig` (the bytes), both reached through the state
// directory's descriptor; a large original is streamed, never held whole in memory.
import { join } from "node:path";
import { closeFd } from "../host/fd.ts";
import { type Body, type FileState, IN_MEMORY_MAX, openRegular, readBody } from "../host/files.ts";
import { StateDir } from "../host/state_dir.ts";
import { Sha256 } from "./hash.ts";

/** A recorded original. */
export interface Backup {
  path: string;
  /** True when the file did not exist before the first overwrite. */
  absent: boolean;
  /** The bytes when small enough to hold (IN_MEMORY_MAX); null when absent or large. */
  content: Uint8Array | null;
  /** The bytes (in memory or streamed from the backup file); null when absent. */
  body: Body | null;
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

const SUB = "backups";

/** Backups for one state directory. */
export class BackupStore {
  readonly dir: string;
  readonly #state: StateDir;
  readonly #tag: string;

  /** `tag` (the feature) marks this writer's temp files, so it sweeps only its own. */
  constructor(stateDir: string, tag = "") {
    this.dir = join(stateDir, SUB);
    this.#state = new StateDir(stateDir);
    this.#tag = tag;
  }

  #names(hostPath: string): { meta: string; data: string } {
    let key = encodeURIComponent(hostPath);
    if (key.length > 200) key = `sha256-${Sha256.of(new TextEncoder().encode(hostPath))}`;
    return { meta: `${key}.json`, data: `${key}.orig` };
  }

  /** The backup of `hostPath`, or null when none was taken. Throws if it is corrupt. */
  async get(hostPath: string): Promise<Backup | null> {
    const { meta, data } = this.#names(hostPath);
    let parsed: BackupMeta;
    try {
      const bytes = await this.#state.read(SUB, meta, 1024 * 1024);
      if (bytes === null) return null;
      parsed = JSON.parse(new TextDecoder().decode(bytes));
    } catch (error) {
      throw new Error(`backup ${join(this.dir, meta)} is unreadable: ${(error as Error).message}`);
    }
    if (parsed.absent) return { ...parsed, content: null, body: null };
    const body = await this.#state.with(SUB, false, async (dir) => {
      if (dir === null) throw new Error(`backup ${join(this.dir, data)} is missing`);
      const fd = openRegular(dir, data);
      try {
        return await readBody(fd, { keepMax: IN_MEMORY_MAX });
      } finally {
        closeFd(fd);
      }
    });
    if (body.sha256 !== parsed.sha256) {
      throw new Error(
        `backup ${join(this.dir, data)} does not match its recorded sha256 ${parsed.sha256}`,
      );
    }
    const open = body.bytes === null
      ? () => {
        const dir = this.#state.open(SUB, false);
        if (dir === null) throw new Error(`backup ${join(this.dir, data)} is missing`);
        try {
          return openRegular(dir, data);
        } finally {
          closeFd(dir);
        }
      }
      : undefined;
    return { ...parsed, content: body.bytes, body: { ...body, open } };
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
    const { meta, data } = this.#names(hostPath);
    if (await this.#state.exists(SUB, meta)) return false;
    const absent = current.body === null;
    if (!absent) {
      // The metadata's rename below fsyncs the same directory.
      await this.#state.write(SUB, data, current.body!, { tag: this.#tag, syncDir: false });
    }
    const record: BackupMeta = {
      path: hostPath,
      absent,
      mode: current.mode,
      uid: current.uid,
      gid: current.gid,
      sha256: absent ? null : current.body!.sha256,
      takenAt: new Date().toISOString(),
      ...(absent && createdDirs.length > 0 ? { createdDirs } : {}),
    };
    await this.#state.write(SUB, meta, new TextEncoder().encode(JSON.stringify(record) + "\n"), {
      tag: this.#tag,
    });
    return true;
  }

  /**
   * Drops the backup of `hostPath` (the path is no longer ours): the metadata first (the commit
   * point, fsynced), then the bytes. Returns false when there was none.
   */
  async drop(hostPath: string): Promise<boolean> {
    const { meta, data } = this.#names(hostPath);
    const had = await this.#state.remove(SUB, meta, { sync: true });
    await this.#state.remove(SUB, data);
    return had;
  }

  /**
   * Adds `dirs` to the directories an absent original's first write created (a released path's
   * directories that another of our files still fills hand over to that file's backup, so its
   * restore removes them). Nothing for a present original or when all are recorded already.
   */
  async addCreatedDirs(hostPath: string, dirs: string[]): Promise<boolean> {
    const { meta } = this.#names(hostPath);
    const bytes = await this.#state.read(SUB, meta, 1024 * 1024);
    if (bytes === null) return false;
    const record = JSON.parse(new TextDecoder().decode(bytes)) as BackupMeta;
    if (!record.absent) return false;
    const known = new Set(record.createdDirs ?? []);
    if (dirs.every((d) => known.has(d))) return false;
    // Outermost first, as takeOnce records them.
    record.createdDirs = [...new Set([...known, ...dirs])].sort((a, b) =>
      a.split("/").length - b.split("/").length || (a < b ? -1 : a > b ? 1 : 0)
    );
    await this.#state.write(SUB, meta, new TextEncoder().encode(JSON.stringify(record) + "\n"), {
      tag: this.#tag,
    });
    return true;
  }

  /** Removes the backup temp files a killed writer with this tag left; returns how many. */
  async sweepTemps(): Promise<number> {
    if (this.#tag === "") return 0;
    return await this.#state.sweepTemps(SUB, (name) => name.includes(`.ks-tmp-${this.#tag}.`));
  }
}

/** Reads a backup's file state in the same shape as a host file (for comparisons). */
export function backupAsState(backup: Backup): FileState {
  return {
    content: backup.content,
    body: backup.body,
    mode: backup.mode,
    uid: backup.uid,
    gid: backup.gid,
  };
}
