// Descriptor-relative file calls (libc through Deno FFI, src/libc.ts): every file the patcher
// reads, writes, stats or removes on the host or in its state directory is named by a directory
// descriptor it holds plus one plain name (no "/", never "." or ".."), and opened with O_NOFOLLOW.
// A directory swapped for a symlink after we opened it cannot redirect a write: the descriptor
// still names the directory we checked. There is no path-string fallback: without FFI the tools
// that need this refuse to start (fdUnavailable()).
import { errnoOf, type LibcSymbols, loadLibc } from "../libc.ts";

const arm = Deno.build.arch === "aarch64";

/** open(2) flags (asm-generic values on aarch64 where they differ). */
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_NOCTTY = 0o400;
export const O_NONBLOCK = 0o4000;
export const O_DIRECTORY = arm ? 0o40000 : 0o200000;
export const O_NOFOLLOW = arm ? 0o100000 : 0o400000;
export const O_CLOEXEC = 0o2000000;
/** The current directory as a dirfd (only for paths the operator configured). */
export const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_REMOVEDIR = 0x200;
const AT_EMPTY_PATH = 0x1000;
const STATX_BASIC = 0x7ff;
const LOCK_EX = 2;

/** errno values callers branch on. */
export const ENOENT = 2;
export const EEXIST = 17;
export const ENOTDIR = 20;
export const ENOTEMPTY = 39;
export const ELOOP = 40;

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  5: "EIO",
  6: "ENXIO",
  13: "EACCES",
  16: "EBUSY",
  17: "EEXIST",
  18: "EXDEV",
  20: "ENOTDIR",
  21: "EISDIR",
  22: "EINVAL",
  28: "ENOSPC",
  30: "EROFS",
  36: "ENAMETOOLONG",
  39: "ENOTEMPTY",
  40: "ELOOP",
};

/** A failed call: `errno` (0 when unknown, e.g. a call run off the event loop). */
export class FdError extends Error {
  override name = "FdError";
  constructor(readonly op: string, readonly target: string, readonly errno: number) {
    super(`${op} ${target}: ${errno ? ERRNO_NAMES[errno] ?? `errno ${errno}` : "failed"}`);
  }
}

/** What statx says about one file. */
export interface Stat {
  type: "file" | "dir" | "symlink" | "fifo" | "char" | "block" | "socket" | "other";
  /** Permission bits (0..0o7777). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** `<dev major>:<dev minor>:<ino>`: the file's identity. */
  id: string;
  /** mtime and ctime to the nanosecond (`<sec>.<nsec>/<sec>.<nsec>`): changes on every write. */
  times: string;
  /** ctime in ms since the epoch (when the content or the inode last changed). */
  ctimeMs: number;
}

const encoder = new TextEncoder();
const strict = new TextDecoder("utf-8", { fatal: true });

function cName(name: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(name + "\0");
}

/** Refuses anything but one plain directory-entry name (the callers' invariant, checked again). */
function checkName(name: string): void {
  if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0")) {
    throw new FdError("name", JSON.stringify(name), 22);
  }
}

let sym: LibcSymbols | null = null;
let unavailable: string | null | undefined;

/**
 * Null when descriptor-relative file access works here, else one line saying why not (no FFI,
 * or a libc without statx/getdents64). Tools refuse to touch host files then.
 */
export function fdUnavailable(): string | null {
  if (unavailable !== undefined) return unavailable;
  const loaded = loadLibc();
  if (loaded instanceof Error) {
    unavailable = `${loaded.message}: descriptor-relative file access needs --allow-ffi and glibc`;
  } else if (!loaded.statx || !loaded.getdents64) {
    unavailable = "libc has no statx/getdents64 (glibc >= 2.30 needed)";
  } else {
    sym = loaded;
    unavailable = null;
  }
  return unavailable;
}

function libc(): LibcSymbols {
  if (sym) return sym;
  const why = fdUnavailable();
  if (why !== null) throw new Error(why);
  return sym!;
}

function typeOf(mode: number): Stat["type"] {
  switch (mode & 0o170000) {
    case 0o100000:
      return "file";
    case 0o040000:
      return "dir";
    case 0o120000:
      return "symlink";
    case 0o010000:
      return "fifo";
    case 0o020000:
      return "char";
    case 0o060000:
      return "block";
    case 0o140000:
      return "socket";
    default:
      return "other";
  }
}

function decodeStatx(buf: Uint8Array<ArrayBuffer>): Stat {
  const v = new DataView(buf.buffer);
  const mode = v.getUint16(28, true);
  return {
    type: typeOf(mode),
    mode: mode & 0o7777,
    uid: v.getUint32(20, true),
    gid: v.getUint32(24, true),
    size: Number(v.getBigUint64(40, true)),
    id: `${v.getUint32(136, true)}:${v.getUint32(140, true)}:${v.getBigUint64(32, true)}`,
    // statx_timestamp { i64 tv_sec; u32 tv_nsec; }: stx_ctime at 96, stx_mtime at 112.
    times: `${v.getBigInt64(112, true)}.${v.getUint32(120, true)}/` +
      `${v.getBigInt64(96, true)}.${v.getUint32(104, true)}`,
    ctimeMs: Number(v.getBigInt64(96, true)) * 1000 + Math.floor(v.getUint32(104, true) / 1e6),
  };
}

/** Opens `name` in directory `dir` (a descriptor, or AT_FDCWD with an operator path). */
export function openAt(dir: number, name: string, flags: number, mode = 0): number {
  if (dir !== AT_FDCWD) checkName(name);
  const fd = libc().openat(dir, cName(name), flags | O_CLOEXEC, mode);
  if (fd < 0) throw new FdError("open", name, errnoOf(libc()));
  return fd;
}

/** Closes a descriptor (errors ignored: nothing useful to do with them). */
export function closeFd(fd: number): void {
  if (fd >= 0) libc().close(fd);
}

/** lstat of `name` in `dir` (the entry itself, never a symlink's target); null when absent. */
export function statAt(dir: number, name: string): Stat | null {
  checkName(name);
  const buf = new Uint8Array(256);
  if (libc().statx!(dir, cName(name), AT_SYMLINK_NOFOLLOW, STATX_BASIC, buf) !== 0) {
    const errno = errnoOf(libc());
    if (errno === ENOENT) return null;
    throw new FdError("stat", name, errno);
  }
  return decodeStatx(buf);
}

/** fstat of an open descriptor. */
export function statFd(fd: number): Stat {
  const buf = new Uint8Array(256);
  if (libc().statx!(fd, cName(""), AT_EMPTY_PATH, STATX_BASIC, buf) !== 0) {
    throw new FdError("fstat", `fd ${fd}`, errnoOf(libc()));
  }
  return decodeStatx(buf);
}

/** A symlink's target (must be UTF-8). */
export function readLinkAt(dir: number, name: string): string {
  checkName(name);
  const buf = new Uint8Array(4097);
  const n = Number(libc().readlinkat(dir, cName(name), buf, BigInt(buf.length)));
  if (n < 0) throw new FdError("readlink", name, errnoOf(libc()));
  if (n >= buf.length) throw new FdError("readlink", name, 36);
  try {
    return strict.decode(buf.subarray(0, n));
  } catch {
    throw new FdError("readlink (target is not UTF-8)", name, 22);
  }
}

/** Creates directory `name` in `dir`; false when it already exists. */
export function mkdirAt(dir: number, name: string, mode: number): boolean {
  checkName(name);
  if (libc().mkdirat(dir, cName(name), mode) === 0) return true;
  const errno = errnoOf(libc());
  if (errno === EEXIST) return false;
  throw new FdError("mkdir", name, errno);
}

/** Renames `from` to `to`, both in `dir` (atomic replace of `to`). */
export function renameAt(dir: number, from: string, to: string): void {
  checkName(from);
  checkName(to);
  if (libc().renameat(dir, cName(from), dir, cName(to)) !== 0) {
    throw new FdError("rename", `${from} -> ${to}`, errnoOf(libc()));
  }
}

/** Removes entry `name` (a directory with `dir: true`); false when it was already gone. */
export function unlinkAt(dir: number, name: string, options: { dir?: boolean } = {}): boolean {
  checkName(name);
  if (libc().unlinkat(dir, cName(name), options.dir ? AT_REMOVEDIR : 0) === 0) return true;
  const errno = errnoOf(libc());
  if (errno === ENOENT) return false;
  throw new FdError("unlink", name, errno);
}

/** fchmod + fchown of an open descriptor (owner first: chown clears setuid bits). */
export function setMetaFd(fd: number, mode: number, uid: number, gid: number): void {
  if (libc().fchown(fd, uid, gid) !== 0) throw new FdError("chown", `fd ${fd}`, errnoOf(libc()));
  if (libc().fchmod(fd, mode) !== 0) throw new FdError("chmod", `fd ${fd}`, errnoOf(libc()));
}

/** One directory entry as getdents64 reports it. */
export interface DirEntry {
  name: string;
  /** d_type: "file", "dir", "symlink", or "other" (also for DT_UNKNOWN). */
  type: "file" | "dir" | "symlink" | "other";
}

/** The entries of directory `dir` (names that are not UTF-8 are skipped: we never make those). */
export function readDirFd(dir: number): DirEntry[] {
  // A fresh descriptor of the same directory (its own read offset): the one exception to the
  // plain-name rule, since "." names `dir` itself.
  const fd = libc().openat(dir, cName("."), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (fd < 0) throw new FdError("open", `fd ${dir}`, errnoOf(libc()));
  const out: DirEntry[] = [];
  try {
    const buf = new Uint8Array(32768);
    const view = new DataView(buf.buffer);
    while (true) {
      const n = Number(libc().getdents64!(fd, buf, BigInt(buf.length)));
      if (n < 0) throw new FdError("getdents64", `fd ${dir}`, errnoOf(libc()));
      if (n === 0) break;
      for (let off = 0; off < n;) {
        const reclen = view.getUint16(off + 16, true);
        const dtype = buf[off + 18];
        const end = buf.indexOf(0, off + 19);
        try {
          const name = strict.decode(buf.subarray(off + 19, end));
          if (name !== "." && name !== "..") {
            out.push({
              name,
              type: dtype === 8 ? "file" : dtype === 4 ? "dir" : dtype === 10 ? "symlink" : "other",
            });
          }
        } catch { /* not UTF-8: not ours */ }
        off += reclen;
      }
    }
  } finally {
    closeFd(fd);
  }
  return out;
}

/** Up to this many bytes per call, reads and writes run inline (a thread hop costs more). */
const INLINE_IO = 64 * 1024;

/**
 * Reads up to `into.length` bytes at the current offset; 0 at the end. Buffers above 64 KiB are
 * read off the event loop.
 */
export async function readFd(fd: number, into: Uint8Array<ArrayBuffer>): Promise<number> {
  const sym = libc();
  const len = BigInt(into.length);
  const n = Number(
    into.length <= INLINE_IO ? sym.read_now(fd, into, len) : await sym.read(fd, into, len),
  );
  if (n < 0) throw new FdError("read", `fd ${fd}`, into.length <= INLINE_IO ? errnoOf(sym) : 0);
  return n;
}

/** Writes all of `bytes` (chunks above 64 KiB off the event loop). */
export async function writeAllFd(fd: number, bytes: Uint8Array): Promise<void> {
  const sym = libc();
  // FFI needs an ArrayBuffer-backed view; a subarray of one keeps its offset.
  let rest = bytes as Uint8Array<ArrayBuffer>;
  while (rest.length > 0) {
    const len = BigInt(rest.length);
    const n = Number(
      rest.length <= INLINE_IO ? sym.write_now(fd, rest, len) : await sym.write(fd, rest, len),
    );
    if (n <= 0) throw new FdError("write", `fd ${fd}`, rest.length <= INLINE_IO ? errnoOf(sym) : 0);
    rest = rest.subarray(n);
  }
}

/** fsync of a file or directory descriptor. Runs off the event loop. */
export async function fsyncFd(fd: number): Promise<void> {
  if (await libc().fsync(fd) !== 0) throw new FdError("fsync", `fd ${fd}`, 0);
}

/** Takes an exclusive flock on `fd` (waits for it off the event loop). */
export async function lockFd(fd: number): Promise<void> {
  if (await libc().flock(fd, LOCK_EX) !== 0) throw new FdError("flock", `fd ${fd}`, 0);
}

/** Runs `fn` with `fd` and closes it afterwards. */
export async function withFd<T>(fd: number, fn: (fd: number) => Promise<T> | T): Promise<T> {
  try {
    return await fn(fd);
  } finally {
    closeFd(fd);
  }
}
