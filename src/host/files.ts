// File effects on the host and in the state directory, all relative to a held directory
// descriptor and one plain name (src/host/fd.ts): read a file with its mode and owner, write one
// atomically (temp file created O_EXCL|O_NOFOLLOW in the same directory, written, owner and mode
// set, fsynced, renamed over the name, directory fsynced), fix mode/owner in place through the
// opened file, remove one durably, and sweep temp files a killed writer left behind. No call here
// takes a path string, so nothing can be redirected through a symlink swapped in after the
// directory was checked.
import {
  closeFd,
  fsyncFd,
  O_CREAT,
  O_EXCL,
  O_NOCTTY,
  O_NOFOLLOW,
  O_NONBLOCK,
  O_RDONLY,
  O_WRONLY,
  openAt,
  readDirFd,
  readFd,
  renameAt,
  setMetaFd,
  statAt,
  statFd,
  unlinkAt,
  writeAllFd,
} from "./fd.ts";
import { Sha256 } from "../patcher/hash.ts";
import type { HashCache } from "./hash_cache.ts";
import { MAPPED_FILE_WRITE } from "../page_cache.ts";

/**
 * File bytes: held in memory (`bytes`) up to IN_MEMORY_MAX, else streamed from a descriptor
 * `open()` returns (positioned at the start) and checked against `sha256` while copied.
 */
export interface Body {
  size: number;
  sha256: string;
  bytes: Uint8Array | null;
  open?: () => number;
}

/**
 * Bodies up to this size are held in memory; larger ones are streamed, CHUNK at a time. Both are
 * small on purpose: the sidecar's loop checks the host runtime (Deno and ~30 bundle files, up to
 * 2 MB each) every interval, and bodies held plus 1 MiB read buffers kept its anonymous memory
 * at ~30 MiB instead of ~15 (glibc raises its mmap threshold after a 1 MiB buffer is freed, and
 * the next ones fragment its heap: docs/footprint.md).
 */
export const IN_MEMORY_MAX = 64 * 1024;
const CHUNK = 64 * 1024;

/** The bytes and metadata of a file; `content`/`body` are null when it does not exist. */
export interface FileState {
  /** The bytes when held in memory (absent: null; a large file: null with `body` set). */
  content: Uint8Array | null;
  body: Body | null;
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

/**
 * Named points inside a write where a test may inject a crash (a thrown error); the `release-*`
 * ones are the steps of the patcher's release of a path its manifest no longer lists.
 */
export type WritePoint =
  | "temp-written"
  | "renamed"
  | "release-restored"
  | "release-dirs"
  | "release-backup-dropped";

/** Thrown by a FaultHook to simulate a crash: callers let it through instead of handling it. */
export class InjectedCrash extends Error {
  override name = "InjectedCrash";
}

/** Called at each WritePoint; throwing InjectedCrash there simulates a crash at that instant. */
export type FaultHook = (point: WritePoint, path: string) => void;

/** The marker in every temp file name (`.<name>.ks-tmp-<tag>.<random>`). */
export const TEMP_MARK = ".ks-tmp-";

/** A body held in memory. */
export function bytesBody(bytes: Uint8Array): Body {
  return { size: bytes.length, sha256: Sha256.of(bytes), bytes };
}

/** Whether two bodies hold the same bytes (size and SHA-256). */
export function sameBody(a: Body | null, b: Body | null): boolean {
  if (a === null || b === null) return a === b;
  return a.size === b.size && a.sha256 === b.sha256;
}

/** Opens regular file `name` in `dir` for reading; throws when it is anything else. */
export function openRegular(dir: number, name: string): number {
  // O_NONBLOCK: a FIFO swapped in must not block the open; it is refused by the fstat below.
  const fd = openAt(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  const info = statFd(fd);
  if (info.type !== "file") {
    closeFd(fd);
    throw new Error(`${name} is a ${info.type}, not a regular file`);
  }
  return fd;
}

/** How readBody reads. */
export interface ReadOptions {
  /** Keep the bytes when the file is at most this large (default IN_MEMORY_MAX). */
  keepMax?: number;
  /** Refuse a file larger than this. */
  limit?: number;
  /** Give up at this time (ms since the epoch). */
  deadline?: number;
  /** The file, in errors. */
  what?: string;
  /** Remembered hashes: a file too large to keep is not read again while unchanged. */
  hashes?: HashCache;
}

/**
 * Reads all of descriptor `fd` (a regular file), hashing as it goes. Keeps the bytes when the
 * total stays within `keepMax`. Throws when it exceeds `limit` bytes or `deadline` (ms epoch).
 * With `hashes`, a file larger than `keepMax` that has not changed since it was last hashed is
 * not read: its remembered hash is returned (src/host/hash_cache.ts says when that is safe).
 */
export async function readBody(
  fd: number,
  options: ReadOptions = {},
): Promise<{ size: number; sha256: string; bytes: Uint8Array | null }> {
  const keepMax = options.keepMax ?? IN_MEMORY_MAX;
  const limit = options.limit ?? Number.MAX_SAFE_INTEGER;
  const before = statFd(fd);
  const hint = Math.max(before.size, 0);
  if (options.hashes !== undefined && hint > keepMax && hint <= limit) {
    const known = options.hashes.lookup(before);
    if (known !== null) return { size: hint, sha256: known, bytes: null };
  }
  const readStart = Date.now();
  const hash = new Sha256();
  // Sized to the file (one read plus the one that sees the end), at most CHUNK at a time.
  const chunk = new Uint8Array(Math.min(hint + 1, CHUNK));
  let kept: Uint8Array | null = hint <= keepMax ? new Uint8Array(hint) : null;
  let size = 0;
  while (true) {
    if (options.deadline !== undefined && Date.now() > options.deadline) {
      throw new Error(`${options.what ?? "read"}: not read within the time bound`);
    }
    const n = await readFd(fd, chunk);
    if (n === 0) break;
    size += n;
    if (size > limit) {
      throw new Error(`${options.what ?? "file"} is larger than ${limit} bytes`);
    }
    const part = chunk.subarray(0, n);
    hash.update(part);
    if (kept !== null && size > keepMax) kept = null;
    if (kept !== null) {
      if (size > kept.length) {
        // It grew since the fstat: make room (doubling, up to keepMax).
        const grown: Uint8Array = new Uint8Array(
          Math.min(keepMax, Math.max(size, kept.length * 2)),
        );
        grown.set(kept.subarray(0, size - n));
        kept = grown;
      }
      kept.set(part, size - n);
    }
  }
  const bytes = kept === null ? null : kept.length === size ? kept : kept.slice(0, size);
  const sha256 = hash.hex();
  if (options.hashes !== undefined && bytes === null && size === hint) {
    options.hashes.record(before, statFd(fd), readStart, sha256);
  }
  return { size, sha256, bytes };
}

const ABSENT: FileState = { content: null, body: null, mode: 0, uid: 0, gid: 0 };

/**
 * Reads regular file `name` in directory `dir` (null: the directory does not exist): bytes (when
 * small), SHA-256, mode and owner. Absent -> content and body null. Throws when it is a symlink
 * or not a regular file.
 */
export async function readFileStateAt(
  dir: number | null,
  name: string,
  hashes?: HashCache,
): Promise<FileState> {
  if (dir === null) return ABSENT;
  const info = statAt(dir, name);
  if (info === null) return ABSENT;
  if (info.type !== "file") throw new Error(`${name} is a ${info.type}, not a regular file`);
  let fd: number;
  try {
    fd = openRegular(dir, name);
  } catch (error) {
    if (statAt(dir, name) === null) return ABSENT; // removed meanwhile
    throw error;
  }
  try {
    const meta = statFd(fd);
    const read = await readBody(fd, { hashes });
    const body: Body = {
      ...read,
      open: read.bytes === null ? () => openRegular(dir, name) : undefined,
    };
    return { content: read.bytes, body, mode: meta.mode, uid: meta.uid, gid: meta.gid };
  } finally {
    closeFd(fd);
  }
}

/**
 * Writes `bytes` to `out` at most MAPPED_FILE_WRITE at a time: a file the patcher installs may be
 * a runtime processes map (the host runtime's Deno), and small writes keep its page cache in
 * small folios (src/page_cache.ts).
 */
async function writeInPieces(out: number, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length; off += MAPPED_FILE_WRITE) {
    await writeAllFd(out, bytes.subarray(off, off + MAPPED_FILE_WRITE));
  }
}

/** Copies `body` into descriptor `out` (streamed and re-hashed when not in memory). */
async function writeBody(out: number, body: Body, what: string): Promise<void> {
  if (body.bytes !== null) {
    await writeInPieces(out, body.bytes);
    return;
  }
  const input = body.open!();
  try {
    const hash = new Sha256();
    const chunk = new Uint8Array(CHUNK);
    let size = 0;
    while (true) {
      const n = await readFd(input, chunk);
      if (n === 0) break;
      size += n;
      if (size > body.size) break;
      hash.update(chunk.subarray(0, n));
      await writeInPieces(out, chunk.subarray(0, n));
    }
    if (size !== body.size || hash.hex() !== body.sha256) {
      throw new Error(`${what}: its source changed while being copied (sha256 no longer matches)`);
    }
  } finally {
    closeFd(input);
  }
}

/** The temp-name prefix for `name` and `tag` (a long name is cut so the result fits NAME_MAX). */
function tempPrefix(name: string, tag: string): string {
  return `.${name.slice(0, 160)}${TEMP_MARK}${tag ? `${tag}.` : ""}`;
}

/** A fresh temp name for `name` with `tag` (so sweepTempsAt can tell whose it is). */
function tempName(name: string, tag: string): string {
  return tempPrefix(name, tag) + crypto.getRandomValues(new Uint32Array(2)).join("");
}

/**
 * Replaces `name` in directory `dir` with `body` atomically: a reader sees the old file or the
 * new one, never a mix, and after return the new one survives a crash. Mode and owner are set
 * before the rename. `syncDir: false` skips the directory fsync when the caller fsyncs the same
 * directory next; `tag` goes into the temp name. Throws on any I/O error (the temp file is
 * removed; the old file is untouched).
 */
export async function writeFileAtomicAt(
  dir: number,
  name: string,
  body: Body | Uint8Array,
  meta: FileMeta,
  fault?: FaultHook,
  options: { syncDir?: boolean; tag?: string; what?: string } = {},
): Promise<void> {
  const what = options.what ?? name;
  const temp = tempName(name, options.tag ?? "");
  const fd = openAt(dir, temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  let renamed = false;
  let open = true;
  try {
    await writeBody(fd, body instanceof Uint8Array ? { ...bytesBody(body) } : body, what);
    setMetaFd(fd, meta.mode, meta.uid, meta.gid);
    await fsyncFd(fd);
    closeFd(fd);
    open = false;
    fault?.("temp-written", what);
    renameAt(dir, temp, name);
    renamed = true;
    fault?.("renamed", what);
    if (options.syncDir ?? true) await fsyncFd(dir);
  } finally {
    if (open) closeFd(fd);
    if (!renamed) {
      try {
        unlinkAt(dir, temp);
      } catch { /* best effort: the sweep removes it later */ }
    }
  }
}

/** Sets mode and owner of regular file `name` in `dir`, through the opened file. */
export function setFileMetaAt(dir: number, name: string, meta: FileMeta): void {
  const fd = openRegular(dir, name);
  try {
    setMetaFd(fd, meta.mode, meta.uid, meta.gid);
  } finally {
    closeFd(fd);
  }
}

/** Removes `name` from `dir` durably; a file that is already gone is fine. Never a directory. */
export async function removeFileAt(dir: number | null, name: string): Promise<void> {
  if (dir === null) return;
  const info = statAt(dir, name);
  if (info === null) return;
  if (info.type === "dir") throw new Error(`${name} is a directory: not removed`);
  if (unlinkAt(dir, name)) await fsyncFd(dir);
}

/**
 * Removes temp files of `name` with `tag` that a killed writer left in `dir` (another tag's may be
 * a write in flight); returns how many it removed. Only regular files and only through `dir`.
 */
export function sweepTempsAt(dir: number | null, name: string, tag = ""): number {
  if (dir === null) return 0;
  const prefix = tempPrefix(name, tag);
  let removed = 0;
  for (const entry of readDirFd(dir)) {
    if (!entry.name.startsWith(prefix)) continue;
    const info = statAt(dir, entry.name);
    if (info?.type === "file" && unlinkAt(dir, entry.name)) removed++;
  }
  return removed;
}
