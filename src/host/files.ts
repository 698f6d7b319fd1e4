// File effects on the host: read a file with its mode and owner, write one atomically (temp file
// in the same directory, fsync, rename, fsync the directory; mode and owner set on the temp file
// before the rename so the final name never shows a half-written or wrongly-permissioned file),
// remove one durably, and sweep temp files a killed writer left behind. Paths here are on-disk
// paths; callers resolve host paths through HostPaths first.
import { basename, dirname, join } from "node:path";

/** The bytes and metadata of a file, or `null` content when it does not exist. */
export interface FileState {
  content: Uint8Array | null;
  mode: number;
  uid: number;
  gid: number;
}

/** Mode (permission bits) and owner to give a written file. */
export interface FileMeta {
  mode: number;
  uid: number;
  gid: number;
}

/** Mode 0600 owned by this process: how the tools' own state files are written. */
export function stateFileMeta(): FileMeta {
  return { mode: 0o600, uid: Deno.uid() ?? 0, gid: Deno.gid() ?? 0 };
}

/** Named points inside a write where a test may inject a crash (a thrown error). */
export type WritePoint = "temp-written" | "renamed";

/** Thrown by a FaultHook to simulate a crash: callers let it through instead of handling it. */
export class InjectedCrash extends Error {
  override name = "InjectedCrash";
}

/** Called at each WritePoint; throwing InjectedCrash there simulates a crash at that instant. */
export type FaultHook = (point: WritePoint, path: string) => void;

const TEMP_MARK = ".ks-tmp-";

/** Reads a regular file's bytes, mode and owner; content is null when it does not exist. */
export async function readFileState(path: string): Promise<FileState> {
  try {
    const info = await Deno.lstat(path);
    const content = await Deno.readFile(path);
    return { content, mode: (info.mode ?? 0) & 0o7777, uid: info.uid ?? 0, gid: info.gid ?? 0 };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return { content: null, mode: 0, uid: 0, gid: 0 };
    throw error;
  }
}

/** Fsyncs a directory so a rename or unlink in it survives a power loss. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await Deno.open(dir, { read: true });
  try {
    await handle.sync();
  } finally {
    handle.close();
  }
}

/** Creates the directories in `dirs` (outermost first) with mode 0755, fsyncing each parent. */
export async function makeDirs(dirs: string[]): Promise<void> {
  for (const dir of dirs) {
    try {
      await Deno.mkdir(dir, { mode: 0o755 });
      await syncDir(dirname(dir));
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
  }
}

/** The temp-file name prefix used for `path` (so leftovers can be found and swept). */
function tempPrefix(path: string, tag = ""): string {
  return join(dirname(path), `.${basename(path)}${TEMP_MARK}${tag ? `${tag}.` : ""}`);
}

/**
 * Replaces `path` with `bytes` atomically: a reader sees the old file or the new one, never a
 * mix, and after return the new one survives a crash. Mode and owner are set before the rename.
 * `syncDir: false` skips the directory fsync when the caller fsyncs the same directory next;
 * `tag` goes into the temp name so sweepTemps can tell whose leftovers they are.
 * Throws on any I/O error (the temp file is removed; the old file is untouched).
 */
export async function writeFileAtomic(
  path: string,
  bytes: Uint8Array,
  meta: FileMeta,
  fault?: FaultHook,
  options: { syncDir?: boolean; tag?: string } = {},
): Promise<void> {
  const random = crypto.getRandomValues(new Uint32Array(2)).join("");
  const temp = `${tempPrefix(path, options.tag)}${random}`;
  const file = await Deno.open(temp, { write: true, createNew: true, mode: 0o600 });
  let renamed = false;
  try {
    let offset = 0;
    while (offset < bytes.length) offset += await file.write(bytes.subarray(offset));
    await Deno.chown(temp, meta.uid, meta.gid);
    await Deno.chmod(temp, meta.mode);
    await file.sync();
    file.close();
    fault?.("temp-written", path);
    await Deno.rename(temp, path);
    renamed = true;
    fault?.("renamed", path);
    if (options.syncDir ?? true) await syncDir(dirname(path));
  } finally {
    try {
      file.close();
    } catch { /* already closed */ }
    if (!renamed) await Deno.remove(temp).catch(() => {});
  }
}

/** Sets mode and owner of an existing file in place (each call is atomic by itself). */
export async function setFileMeta(path: string, meta: FileMeta): Promise<void> {
  await Deno.chown(path, meta.uid, meta.gid);
  await Deno.chmod(path, meta.mode);
}

/** Removes `path` durably; a file that is already gone is fine. */
export async function removeFile(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  await syncDir(dirname(path));
}

/**
 * Removes temp files a killed writer with the same `tag` left next to `path` (another tag's may be
 * a write in flight); returns how many it removed.
 */
export async function sweepTemps(path: string, tag = ""): Promise<number> {
  const prefix = basename(tempPrefix(path, tag));
  let removed = 0;
  try {
    for await (const entry of Deno.readDir(dirname(path))) {
      if (entry.isFile && entry.name.startsWith(prefix)) {
        await Deno.remove(join(dirname(path), entry.name)).catch(() => {});
        removed++;
      }
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return removed;
}
