// Path safety for every file the tools touch on the host: a host path (as the switch sees it,
// e.g. `/usr/local/bin/telemetry.sh`) is resolved under the host root (`/host` in a sidecar, `/`
// on the host) component by component through directory descriptors, like a chroot would: each
// directory is opened O_NOFOLLOW|O_DIRECTORY relative to the one before, starting from the host
// root's descriptor. `..` and `.` are refused, a symlink on the way is read (readlinkat) and
// followed by the walk itself only inside the host root and only when the result stays inside an
// allowed root, the managed file itself must not be a symlink, and every directory on the way must
// be owned by a trusted uid and not writable by everyone (checked with fstat on the held
// descriptor). The caller gets the descriptor of the file's directory and writes through it
// (src/host/files.ts), so a component swapped for a symlink after the check cannot redirect the
// write: the check and the write name the same directory.
import { join } from "node:path";
import {
  AT_FDCWD,
  closeFd,
  EEXIST,
  ELOOP,
  ENOENT,
  ENOTDIR,
  ENOTEMPTY,
  FdError,
  fdUnavailable,
  fsyncFd,
  mkdirAt,
  O_DIRECTORY,
  O_NOFOLLOW,
  O_RDONLY,
  openAt,
  readLinkAt,
  type Stat,
  statAt,
  statFd,
  unlinkAt,
} from "./fd.ts";

/** A host path refused by the safety rules; the message names the path and the rule. */
export class PathSafetyError extends Error {
  override name = "PathSafetyError";
}

/** Where a host path lives on this machine's file system, after the safety checks. */
export interface ResolvedPath {
  /** The host path as given (e.g. `/usr/local/bin/telemetry.sh`). */
  hostPath: string;
  /** The host path after following the symlinks on the way (e.g. `/usr/bin/x` for `/bin/x`). */
  canonical: string;
  /** The on-disk path of the file (host root + canonical). */
  real: string;
  /** The on-disk path of its directory. */
  dir: string;
  /** The file name. */
  base: string;
  /** Host directories (canonical, outermost first) that do not exist yet and must be created. */
  missingDirs: string[];
}

/** A resolved path with its directory held open (see HostPaths.open); close() when done. */
export interface OpenedPath extends ResolvedPath {
  /** Descriptor of the file's directory, or null while that directory does not exist. */
  dirFd: number | null;
  /** `<dev>:<ino>` of the file's directory (null while missing): tells two paths' dirs apart. */
  dirId: string | null;
  /** Creates the missing directories (0755, each parent fsynced) and opens the file's one. */
  makeDirs(): Promise<number>;
  close(): void;
}

/** Options for a HostPaths resolver. */
export interface HostPathsOptions {
  /** The host root on this machine's file system (`/host`, `/`). */
  hostRoot: string;
  /** Host paths under which files may be written (e.g. `/usr/local/bin`). */
  allowRoots: string[];
  /** Uids allowed to own directories on the way (default: 0 and this process's uid). */
  trustedUids?: number[];
}

const MAX_SYMLINK_HOPS = 40;

/** The longest file name and host path accepted (Linux NAME_MAX and PATH_MAX). */
const NAME_MAX = 255;
const PATH_MAX = 4095;
const utf8 = new TextEncoder();

/**
 * Splits an absolute host path into components, refusing relative paths, `.` and `..`, a
 * trailing "/", control characters (NUL, newline, ...), lone surrogates (bytes that were not
 * UTF-8) and over-long names. Messages quote the path JSON-escaped.
 */
export function splitHostPath(path: string, what = "path", isFile = true): string[] {
  const shown = JSON.stringify(path);
  if (typeof path !== "string" || !path.startsWith("/")) {
    throw new PathSafetyError(`${what} ${shown} is not an absolute path`);
  }
  if (!path.isWellFormed() || path.includes("\uFFFD")) {
    throw new PathSafetyError(`${what} ${shown} is not valid UTF-8`);
  }
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(path)) {
    throw new PathSafetyError(`${what} ${shown} contains a control character`);
  }
  if (utf8.encode(path).length > PATH_MAX) {
    throw new PathSafetyError(`${what} ${shown} is longer than ${PATH_MAX} bytes`);
  }
  const parts = path.split("/").filter((p) => p !== "");
  for (const part of parts) {
    if (part === "." || part === "..") {
      throw new PathSafetyError(`${what} ${shown} contains "${part}" (refused: path escape)`);
    }
    if (utf8.encode(part).length > NAME_MAX) {
      throw new PathSafetyError(`${what} ${shown} has a name longer than ${NAME_MAX} bytes`);
    }
  }
  if (isFile && parts.length > 0 && path.endsWith("/")) {
    throw new PathSafetyError(`${what} ${shown} ends in "/" (a file path names no directory)`);
  }
  return parts;
}

function isUnder(parts: string[], root: string[]): boolean {
  return root.length <= parts.length && root.every((p, i) => parts[i] === p);
}

/** A directory open on the way: its descriptor and the fstat taken through it. */
interface Held {
  fd: number;
  info: Stat;
}

const DIR_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;

/** Resolves host paths under one host root with the allowed roots and ownership rules. */
export class HostPaths {
  readonly hostRoot: string;
  readonly allowRoots: string[];
  readonly trustedUids: number[];
  #allowLexical: string[][];

  constructor(options: HostPathsOptions) {
    const why = fdUnavailable();
    if (why !== null) {
      throw new PathSafetyError(`cannot resolve host paths safely: ${why}; refusing to run`);
    }
    this.hostRoot = Deno.realPathSync(options.hostRoot);
    if (options.allowRoots.length === 0) {
      throw new PathSafetyError("no allowed root given: nothing may be written");
    }
    this.allowRoots = options.allowRoots;
    this.#allowLexical = options.allowRoots.map((r) => splitHostPath(r, "allowed root", false));
    const own = Deno.uid();
    this.trustedUids = options.trustedUids ?? [0, ...(own !== null && own !== 0 ? [own] : [])];
  }

  /** The on-disk path of host path components (for watching and messages only, never writes). */
  onDisk(parts: string[]): string {
    return parts.length === 0 ? this.hostRoot : join(this.hostRoot, ...parts);
  }

  /** Opens the host root (the operator's configured directory). */
  #openRoot(): Held {
    const fd = openAt(AT_FDCWD, this.hostRoot, O_RDONLY | O_DIRECTORY);
    return { fd, info: statFd(fd) };
  }

  /**
   * Walks `parts` from the host root's descriptor, one O_NOFOLLOW directory open at a time, and
   * follows symlinks (read with readlinkat) itself without ever leaving the host root. Returns
   * the canonical components, how many of them exist, and the held descriptors of the existing
   * directories (the caller closes them). Throws PathSafetyError on an escape, a loop, a
   * non-directory on the way or an untrusted directory.
   */
  #walk(
    parts: string[],
    what: string,
    isManagedFile: boolean,
    checkTrust = isManagedFile,
  ): { canonical: string[]; existing: number; held: Held[] } {
    const held: Held[] = [this.#openRoot()];
    const done: string[] = [];
    const todo = [...parts];
    let hops = 0;
    let missing = 0; // components pushed after the first missing one
    try {
      while (todo.length > 0) {
        const name = todo.shift()!;
        if (name === "." || name === "") continue;
        if (name === "..") {
          if (done.length === 0) {
            throw new PathSafetyError(`${what}: a symlink leads above the host root`);
          }
          if (missing > 0) {
            throw new PathSafetyError(`${what}: a symlink leads through a missing directory`);
          }
          done.pop();
          closeFd(held.pop()!.fd);
          continue;
        }
        if (missing > 0) {
          done.push(name);
          missing++;
          continue;
        }
        const isLast = todo.length === 0;
        const parent = held[held.length - 1].fd;
        const info = statAt(parent, name);
        if (info === null) {
          done.push(name);
          missing = 1;
          continue;
        }
        if (info.type === "symlink") {
          if (++hops > MAX_SYMLINK_HOPS) throw new PathSafetyError(`${what}: too many symlinks`);
          const target = readLinkAt(parent, name);
          if (isLast && isManagedFile) {
            throw new PathSafetyError(
              `${what} is a symlink (to ${JSON.stringify(target)}): refusing to replace it`,
            );
          }
          if (target.startsWith("/")) {
            while (held.length > 1) closeFd(held.pop()!.fd);
            done.length = 0;
          }
          todo.unshift(...target.split("/"));
          continue;
        }
        if (isLast && isManagedFile) {
          done.push(name);
          if (info.type !== "file") {
            throw new PathSafetyError(`${what} exists and is not a regular file (a ${info.type})`);
          }
          continue;
        }
        if (info.type !== "dir") {
          throw new PathSafetyError(`${what}: /${[...done, name].join("/")} is not a directory`);
        }
        let fd: number;
        try {
          fd = openAt(parent, name, DIR_FLAGS);
        } catch (error) {
          const errno = error instanceof FdError ? error.errno : 0;
          if (errno === ELOOP || errno === ENOTDIR || errno === ENOENT) {
            // Swapped between the stat and the open: look at this component again.
            if (++hops > MAX_SYMLINK_HOPS) {
              throw new PathSafetyError(`${what}: /${[...done, name].join("/")} keeps changing`);
            }
            todo.unshift(name);
            continue;
          }
          throw error;
        }
        const opened = statFd(fd);
        done.push(name);
        held.push({ fd, info: opened });
        if (checkTrust) this.#checkDir(done, opened, what);
      }
      return { canonical: done, existing: done.length - missing, held };
    } catch (error) {
      for (const h of held) closeFd(h.fd);
      throw error;
    }
  }

  #checkDir(parts: string[], info: Stat, what: string): void {
    if (parts.length === 0) return;
    const dir = "/" + parts.join("/");
    if (!this.trustedUids.includes(info.uid)) {
      throw new PathSafetyError(
        `${what}: directory ${dir} is owned by uid ${info.uid}, not by ${
          this.trustedUids.join("/")
        }`,
      );
    }
    if ((info.mode & 0o002) !== 0 && (info.mode & 0o1000) === 0) {
      throw new PathSafetyError(`${what}: directory ${dir} is writable by everyone`);
    }
  }

  /**
   * Checks `hostPath` against the safety rules and returns where it lives, with its directory
   * held open (or null while missing). Throws PathSafetyError (message names the path and the
   * rule) when it is outside the allowed roots or an allowed root itself, contains `..`, leads
   * through a symlink out of the allowed roots, is itself a symlink or not a regular file, or
   * passes through an untrusted directory.
   */
  open(hostPath: string): OpenedPath {
    const what = `path ${JSON.stringify(hostPath)}`;
    const parts = splitHostPath(hostPath);
    if (parts.length === 0) throw new PathSafetyError(`${what}: is the root directory`);
    if (this.#allowLexical.some((root) => root.length === parts.length && isUnder(parts, root))) {
      throw new PathSafetyError(`${what} is an allowed root itself, not a file under one`);
    }
    if (!this.#allowLexical.some((root) => isUnder(parts, root))) {
      throw new PathSafetyError(
        `${what} is outside the allowed roots (${this.allowRoots.join(", ")})`,
      );
    }
    const { canonical, existing, held } = this.#walk(parts, what, true);
    const dirCount = canonical.length - 1;
    // Keep only the descriptor of the file's own directory (when it exists).
    const dirHeld = existing >= dirCount ? held[dirCount] ?? null : null;
    for (const h of held) if (h !== dirHeld) closeFd(h.fd);
    let dirFd: number | null = dirHeld?.fd ?? null;
    const close = () => {
      if (dirFd !== null) closeFd(dirFd);
      dirFd = null;
    };
    // The result must lie strictly inside an allowed root, itself resolved the same way. The
    // roots that lexically hold the path are tried first: usually the answer.
    const order = [...this.#allowLexical].sort((a, b) =>
      Number(isUnder(parts, b)) - Number(isUnder(parts, a))
    );
    let verdict: "inside" | "root" | "outside" = "outside";
    for (const root of order) {
      const walked = this.#walk(root, `allowed root ${"/" + root.join("/")}`, false);
      for (const h of walked.held) closeFd(h.fd);
      const canonRoot = walked.canonical;
      if (!isUnder(canonical, canonRoot)) continue;
      if (canonical.length > canonRoot.length) {
        verdict = "inside";
        break;
      }
      verdict = "root";
    }
    if (verdict === "root") {
      close();
      throw new PathSafetyError(
        `${what} leads (through a symlink) to /${canonical.join("/")}, an allowed root itself`,
      );
    }
    if (verdict === "outside") {
      close();
      throw new PathSafetyError(
        `${what} leads (through a symlink) to /${canonical.join("/")}, outside the allowed roots`,
      );
    }
    const missingDirs: string[] = [];
    for (let i = existing + 1; i < canonical.length; i++) {
      missingDirs.push("/" + canonical.slice(0, i).join("/"));
    }
    const base = canonical[canonical.length - 1];
    const trusted = this.#checkDir.bind(this);
    const opened: OpenedPath = {
      hostPath,
      canonical: "/" + canonical.join("/"),
      real: this.onDisk(canonical),
      dir: this.onDisk(canonical.slice(0, -1)),
      base,
      missingDirs,
      dirFd,
      dirId: dirHeld ? dirHeld.info.id : null,
      makeDirs: async () => {
        if (dirFd !== null) return dirFd;
        // Re-walk to the deepest existing directory, then create the rest one by one through
        // the held descriptors (mkdirat + O_NOFOLLOW open), fsyncing each parent.
        const again = this.#walk(canonical.slice(0, existing), what, false, true);
        let fd = again.held[again.held.length - 1].fd;
        for (const h of again.held.slice(0, -1)) closeFd(h.fd);
        try {
          if (again.canonical.join("/") !== canonical.slice(0, existing).join("/")) {
            throw new PathSafetyError(`${what}: a directory on the way changed meanwhile`);
          }
          for (let i = existing; i < canonical.length - 1; i++) {
            const created = mkdirAt(fd, canonical[i], 0o755);
            const child = openAt(fd, canonical[i], DIR_FLAGS);
            const info = statFd(child);
            if (created) await fsyncFd(fd);
            closeFd(fd);
            fd = child;
            trusted(canonical.slice(0, i + 1), info, what);
          }
        } catch (error) {
          closeFd(fd);
          throw error;
        }
        dirFd = fd;
        opened.dirFd = fd;
        return fd;
      },
      close: () => {
        close();
        opened.dirFd = null;
      },
    };
    return opened;
  }

  /**
   * Removes the directory `dir` (a canonical host path) when it is empty, through its parent's
   * held descriptor, and only at or under an allowed root: a rollback's undo of a directory the
   * patcher created. "kept" when it is not empty, not a directory, or reached through a symlink
   * (then it is not the directory that was created); "absent" when it is gone already.
   */
  async removeEmptyDir(dir: string): Promise<"removed" | "absent" | "kept"> {
    const what = `directory ${JSON.stringify(dir)}`;
    const parts = splitHostPath(dir, "directory", false);
    if (parts.length === 0 || !this.#allowLexical.some((root) => isUnder(parts, root))) {
      return "kept";
    }
    const parentParts = parts.slice(0, -1);
    const name = parts[parts.length - 1];
    const { canonical, existing, held } = this.#walk(parentParts, what, false, true);
    try {
      if (existing < canonical.length) return "absent";
      if (canonical.join("/") !== parentParts.join("/")) return "kept";
      const parent = held[held.length - 1].fd;
      const info = statAt(parent, name);
      if (info === null) return "absent";
      if (info.type !== "dir") return "kept";
      try {
        if (!unlinkAt(parent, name, { dir: true })) return "absent";
      } catch (error) {
        if (error instanceof FdError && (error.errno === ENOTEMPTY || error.errno === EEXIST)) {
          return "kept";
        }
        throw error;
      }
      await fsyncFd(parent);
      return "removed";
    } finally {
      for (const h of held) closeFd(h.fd);
    }
  }

  /** Like open() but closes the directory again: where a host path lives (watchers, reports). */
  resolve(hostPath: string): ResolvedPath {
    const opened = this.open(hostPath);
    opened.close();
    const { hostPath: h, canonical, real, dir, base, missingDirs } = opened;
    return { hostPath: h, canonical, real, dir, base, missingDirs };
  }
}
