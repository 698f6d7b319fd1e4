// A tool's own state directory (the patcher's journal, backups and ownership registry), reached
// the same way as host files: the directory the operator configured is opened once per use, and
// everything in it is named by that descriptor plus one plain name, opened O_NOFOLLOW. A symlink
// planted in the state directory is never followed (reads refuse it, writes replace the name
// atomically, the lock refuses it), and the temp files a killed writer left are swept through
// the same descriptors.
import {
  AT_FDCWD,
  closeFd,
  FdError,
  fsyncFd,
  lockFd,
  mkdirAt,
  O_CREAT,
  O_DIRECTORY,
  O_NOFOLLOW,
  O_RDONLY,
  O_WRONLY,
  openAt,
  readDirFd,
  statAt,
  statFd,
  unlinkAt,
} from "./fd.ts";
import {
  type Body,
  type FileMeta,
  openRegular,
  readBody,
  stateFileMeta,
  TEMP_MARK,
  writeFileAtomicAt,
} from "./files.ts";

const DIR_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;

/** A held exclusive lock; close() releases it. */
export interface HeldLock {
  close(): void;
}

/** One state directory (`<state>`), with subdirectories such as `journal` and `backups`. */
export class StateDir {
  constructor(readonly path: string) {}

  /**
   * Opens subdirectory `sub` ("" = the state directory itself), creating what is missing when
   * `create` (0700); null when it does not exist and `create` is false. The caller closes it.
   */
  open(sub: string, create: boolean): number | null {
    if (create) Deno.mkdirSync(this.path, { recursive: true, mode: 0o700 });
    let top: number;
    try {
      top = openAt(AT_FDCWD, this.path, O_RDONLY | O_DIRECTORY);
    } catch (error) {
      if (error instanceof FdError && error.errno === 2 && !create) return null;
      throw error;
    }
    if (sub === "") return top;
    try {
      if (create) mkdirAt(top, sub, 0o700);
      const info = statAt(top, sub);
      if (info === null) return null;
      if (info.type !== "dir") {
        throw new Error(`state directory ${this.path}: ${sub} is a ${info.type}, not a directory`);
      }
      return openAt(top, sub, DIR_FLAGS);
    } finally {
      closeFd(top);
    }
  }

  /** Runs `fn` with subdirectory `sub` open (fn gets null when it does not exist). */
  async with<T>(
    sub: string,
    create: boolean,
    fn: (dir: number | null) => Promise<T> | T,
  ): Promise<T> {
    const dir = this.open(sub, create);
    try {
      return await fn(dir);
    } finally {
      if (dir !== null) closeFd(dir);
    }
  }

  /** Bytes of `sub/name`, or null when absent. Throws on a symlink or special file. */
  async read(
    sub: string,
    name: string,
    limit = Number.MAX_SAFE_INTEGER,
  ): Promise<Uint8Array | null> {
    return await this.with(sub, false, async (dir) => {
      if (dir === null || statAt(dir, name) === null) return null;
      const fd = openRegular(dir, name);
      try {
        const read = await readBody(fd, {
          keepMax: limit,
          limit,
          what: `${this.path}/${sub}/${name}`,
        });
        return read.bytes;
      } finally {
        closeFd(fd);
      }
    });
  }

  /** Writes `sub/name` atomically (temp tagged `tag`, fsync, rename, fsync of the directory). */
  async write(
    sub: string,
    name: string,
    body: Body | Uint8Array,
    options: { tag?: string; syncDir?: boolean; meta?: FileMeta } = {},
  ): Promise<void> {
    await this.with(sub, true, async (dir) => {
      await writeFileAtomicAt(dir!, name, body, options.meta ?? stateFileMeta(), undefined, {
        tag: options.tag,
        syncDir: options.syncDir,
        what: `${this.path}/${sub}/${name}`,
      });
    });
  }

  /** Whether `sub/name` exists (as anything). */
  async exists(sub: string, name: string): Promise<boolean> {
    return await this.with(sub, false, (dir) => dir !== null && statAt(dir, name) !== null);
  }

  /**
   * Removes `sub/name` (the directory fsynced only with `sync`, so the removal survives a power
   * loss); false when it was not there.
   */
  async remove(sub: string, name: string, options: { sync?: boolean } = {}): Promise<boolean> {
    return await this.with(sub, false, async (dir) => {
      if (dir === null || !unlinkAt(dir, name)) return false;
      if (options.sync) await fsyncFd(dir);
      return true;
    });
  }

  /** Takes an exclusive flock on `sub/name` (created 0600, never through a symlink). */
  async lock(sub: string, name: string): Promise<HeldLock> {
    const dir = this.open(sub, true)!;
    let fd: number;
    try {
      fd = openAt(dir, name, O_WRONLY | O_CREAT | O_NOFOLLOW, 0o600);
    } finally {
      closeFd(dir);
    }
    try {
      if (statFd(fd).type !== "file") throw new Error(`lock ${name} is not a regular file`);
      await lockFd(fd);
    } catch (error) {
      closeFd(fd);
      throw error;
    }
    return { close: () => closeFd(fd) };
  }

  /**
   * Removes the temp files (`*.ks-tmp-*`, regular files only) in `sub` whose name `match`
   * accepts; returns how many.
   */
  async sweepTemps(sub: string, match: (name: string) => boolean): Promise<number> {
    return await this.with(sub, false, (dir) => {
      if (dir === null) return 0;
      let removed = 0;
      for (const entry of readDirFd(dir)) {
        if (!entry.name.startsWith(".") || !entry.name.includes(TEMP_MARK)) continue;
        if (!match(entry.name)) continue;
        if (statAt(dir, entry.name)?.type === "file" && unlinkAt(dir, entry.name)) removed++;
      }
      return removed;
    });
  }
}
