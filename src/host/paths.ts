// Path safety for every file the tools touch on the host: a host path (as the switch sees it,
// e.g. `/usr/local/bin/telemetry.sh`) is resolved under the host root (`/host` in a sidecar, `/`
// on the host) component by component, like a chroot would: `..` and `.` are refused, symlinks are
// followed only inside the host root and only when the result stays inside an allowed root, the
// managed file itself must not be a symlink, and every existing directory on the way must be owned
// by a trusted uid and not writable by everyone (else another user could swap it under us).
import { join } from "node:path";

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

/** Splits an absolute host path into components, refusing `.`, `..`, NUL and relative paths. */
export function splitHostPath(path: string, what = "path"): string[] {
  if (typeof path !== "string" || !path.startsWith("/")) {
    throw new PathSafetyError(`${what} "${path}" is not an absolute path`);
  }
  if (path.includes("\0")) throw new PathSafetyError(`${what} "${path}" contains a NUL byte`);
  const parts = path.split("/").filter((p) => p !== "");
  for (const part of parts) {
    if (part === "." || part === "..") {
      throw new PathSafetyError(`${what} "${path}" contains "${part}" (refused: path escape)`);
    }
  }
  return parts;
}

function isUnder(parts: string[], root: string[]): boolean {
  return root.length <= parts.length && root.every((p, i) => parts[i] === p);
}

function lstatOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** Resolves host paths under one host root with the allowed roots and ownership rules. */
export class HostPaths {
  readonly hostRoot: string;
  readonly allowRoots: string[];
  readonly trustedUids: number[];
  #allowLexical: string[][];

  constructor(options: HostPathsOptions) {
    this.hostRoot = Deno.realPathSync(options.hostRoot);
    if (options.allowRoots.length === 0) {
      throw new PathSafetyError("no allowed root given: nothing may be written");
    }
    this.allowRoots = options.allowRoots;
    this.#allowLexical = options.allowRoots.map((r) => splitHostPath(r, "allowed root"));
    const own = Deno.uid();
    this.trustedUids = options.trustedUids ?? [0, ...(own !== null && own !== 0 ? [own] : [])];
  }

  /** The on-disk path of host path components (no checks). */
  onDisk(parts: string[]): string {
    return parts.length === 0 ? this.hostRoot : join(this.hostRoot, ...parts);
  }

  /**
   * Follows `parts` under the host root, symlink by symlink, without ever leaving it. Returns the
   * canonical components and how many of them exist. Throws PathSafetyError on an escape, a
   * loop, a non-directory on the way or an untrusted directory.
   */
  #walk(
    parts: string[],
    what: string,
    isManagedFile: boolean,
  ): { canonical: string[]; existing: number } {
    const done: string[] = [];
    const todo = [...parts];
    let hops = 0;
    let existing = 0;
    let missing = false;
    while (todo.length > 0) {
      const name = todo.shift()!;
      if (name === "..") {
        if (done.length === 0) {
          throw new PathSafetyError(`${what}: a symlink leads above the host root`);
        }
        done.pop();
        continue;
      }
      if (name === "." || name === "") continue;
      done.push(name);
      if (missing) continue;
      const info = lstatOrNull(this.onDisk(done));
      if (info === null) {
        missing = true;
        continue;
      }
      const isLast = todo.length === 0;
      if (info.isSymlink) {
        if (++hops > MAX_SYMLINK_HOPS) throw new PathSafetyError(`${what}: too many symlinks`);
        const target = Deno.readLinkSync(this.onDisk(done));
        done.pop();
        if (target.startsWith("/")) done.length = 0;
        todo.unshift(...target.split("/"));
        if (isLast && isManagedFile) {
          throw new PathSafetyError(
            `${what} is a symlink (to "${target}"): refusing to replace it`,
          );
        }
        continue;
      }
      existing = done.length;
      if (!isLast) {
        if (!info.isDirectory) {
          throw new PathSafetyError(`${what}: /${done.join("/")} is not a directory`);
        }
        if (isManagedFile) this.#checkDir(done, info, what);
      }
    }
    return { canonical: done, existing };
  }

  #checkDir(parts: string[], info: Deno.FileInfo, what: string): void {
    if (parts.length === 0) return;
    const dir = "/" + parts.join("/");
    if (info.uid !== null && !this.trustedUids.includes(info.uid)) {
      throw new PathSafetyError(
        `${what}: directory ${dir} is owned by uid ${info.uid}, not by ${
          this.trustedUids.join("/")
        }`,
      );
    }
    const mode = info.mode ?? 0;
    if ((mode & 0o002) !== 0 && (mode & 0o1000) === 0) {
      throw new PathSafetyError(`${what}: directory ${dir} is writable by everyone`);
    }
  }

  /**
   * Checks `hostPath` against the safety rules and returns where it lives. Throws PathSafetyError
   * (message names the path and the rule) when it is outside the allowed roots, contains `..`,
   * leads through a symlink out of the allowed roots, is itself a symlink or not a regular file,
   * or passes through an untrusted directory.
   */
  resolve(hostPath: string): ResolvedPath {
    const what = `path ${hostPath}`;
    const parts = splitHostPath(hostPath);
    if (parts.length === 0) throw new PathSafetyError(`${what}: is the root directory`);
    if (!this.#allowLexical.some((root) => isUnder(parts, root))) {
      throw new PathSafetyError(
        `${what} is outside the allowed roots (${this.allowRoots.join(", ")})`,
      );
    }
    const { canonical, existing } = this.#walk(parts, what, true);
    const allowed = this.#allowLexical.map((root) =>
      this.#walk(root, `allowed root ${"/" + root.join("/")}`, false).canonical
    );
    if (!allowed.some((root) => isUnder(canonical, root) && canonical.length > root.length)) {
      throw new PathSafetyError(
        `${what} leads (through a symlink) to /${canonical.join("/")}, outside the allowed roots`,
      );
    }
    const real = this.onDisk(canonical);
    if (existing === canonical.length) {
      const info = Deno.lstatSync(real);
      if (!info.isFile) throw new PathSafetyError(`${what} exists and is not a regular file`);
    }
    const missingDirs: string[] = [];
    for (let i = existing + 1; i < canonical.length; i++) {
      missingDirs.push("/" + canonical.slice(0, i).join("/"));
    }
    return {
      hostPath,
      canonical: "/" + canonical.join("/"),
      real,
      dir: this.onDisk(canonical.slice(0, -1)),
      base: canonical[canonical.length - 1],
      missingDirs,
    };
  }
}
