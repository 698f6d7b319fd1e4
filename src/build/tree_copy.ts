// `ks copy-tree DIR`: copies the ks tree this program runs from (lib/tree.json lists its files)
// into DIR, each file written to a temporary name and renamed, modes kept, then checked against
// its SHA-256. The v2 pod's init container runs it to put the entrypoint into an emptyDir that
// the unmodified feature image mounts, then (`--prime`) has the tools run there write Deno's module
// analysis cache for that path (src/build/runtime_cache.ts): the feature container mounts the
// copy read-only.
import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import { createLogger } from "../log.ts";
import { MAPPED_FILE_WRITE } from "../page_cache.ts";
import { runningTreeRoot } from "./running_tree.ts";
import { primeRuntimeCache } from "./runtime_cache.ts";
import type { TreeIndex } from "./tree.ts";

const USAGE = `Usage: ks copy-tree DIR [--prime LAUNCHER]...
Copies the ks tree (bin/deno, lib/ks/, the launchers) this ks runs from into DIR. With --prime,
runs DIR/bin/LAUNCHER --version afterwards so Deno's module analysis cache is written for DIR
(a tool run from a read-only DIR then does not parse its modules again into memory it keeps);
a priming that fails is logged and leaves the copy in place.
Exit codes: 0 copied and verified, 1 a copy failed, 2 bad usage.
Example (the v2 pod's init container):
  /opt/kubesonic/bin/ks copy-tree /kubesonic --prime ks-entrypoint`;

/** Dirty bytes a copy may leave unsynced: the page cache a small init container's cgroup holds. */
const SYNC_EVERY = 8 * 1024 * 1024;

/**
 * Copies `from` to a new file `to` (mode `mode`), hashing what it copies, and syncs every
 * SYNC_EVERY bytes: the init container that copies the ~95 MB Deno runs under a memory limit, and
 * dirty pages of its cgroup cannot be reclaimed until written back (it was OOM-killed at 96 MiB
 * with one unsynced copy). Writes at most MAPPED_FILE_WRITE bytes at a time, so every process
 * running the copied Deno maps it in small folios (src/page_cache.ts). Returns the SHA-256 of the
 * bytes copied.
 */
export async function copySynced(from: string, to: string, mode: number): Promise<string> {
  const hash = createHash("sha256");
  using src = await Deno.open(from);
  using dst = await Deno.open(to, { write: true, createNew: true, mode });
  const buf = new Uint8Array(1024 * 1024);
  let unsynced = 0;
  for (;;) {
    const n = await src.read(buf);
    if (n === null) break;
    const chunk = buf.subarray(0, n);
    hash.update(chunk);
    for (let off = 0; off < n;) {
      off += await dst.write(chunk.subarray(off, Math.min(n, off + MAPPED_FILE_WRITE)));
    }
    unsynced += n;
    if (unsynced >= SYNC_EVERY) {
      await dst.syncData();
      unsynced = 0;
    }
  }
  await dst.syncData();
  await Deno.chmod(to, mode); // the umask may have narrowed createNew's mode
  return hash.digest("hex");
}

/** Copies every file of the tree at `root` into `dest`; throws naming the first failure. */
export async function copyTree(root: string, dest: string): Promise<TreeIndex> {
  const index = JSON.parse(await Deno.readTextFile(join(root, "lib", "tree.json"))) as TreeIndex;
  for (const f of [...index.files, { path: "lib/tree.json", mode: "0644", sha256: "" }]) {
    const target = join(dest, f.path);
    await Deno.mkdir(dirname(target), { recursive: true });
    const tmp = `${target}.tmp-${Deno.pid}`;
    await Deno.remove(tmp).catch(() => {});
    const sha256 = await copySynced(join(root, f.path), tmp, parseInt(f.mode, 8));
    if (f.sha256 && sha256 !== f.sha256) {
      await Deno.remove(tmp).catch(() => {});
      throw new Error(`${f.path}: the copy's SHA-256 differs from lib/tree.json's`);
    }
    await Deno.rename(tmp, target);
  }
  return index;
}

/** The command: exit code as documented in USAGE. */
export async function copyTreeCli(args: string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  const dirs: string[] = [];
  const prime: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--prime" && /^ks(-[a-z-]+)?$/.test(args[i + 1] ?? "")) prime.push(args[++i]);
    else if (!args[i].startsWith("-")) dirs.push(args[i]);
    else {
      console.error(
        `ks copy-tree: bad argument "${args[i]}"${
          args[i] === "--prime" ? ` (--prime takes a launcher name: ks-entrypoint)` : ""
        } (see ks copy-tree --help)`,
      );
      return 2;
    }
  }
  if (dirs.length !== 1) {
    console.error(
      `ks copy-tree: expected one DIR, got ${JSON.stringify(dirs)} (see ks copy-tree --help)`,
    );
    return 2;
  }
  const dest = dirs[0];
  const root = runningTreeRoot();
  if (!root) {
    console.error("ks copy-tree: this ks does not run from a ks tree (no lib/tree.json beside it)");
    return 1;
  }
  const log = createLogger("ks", "copy-tree");
  let index: TreeIndex;
  try {
    const t0 = performance.now();
    index = await copyTree(root, dest);
    log.info("copied", {
      dest,
      files: index.files.length,
      bytes: index.files.reduce((n, f) => n + f.size, 0),
      hash: index.hash,
      ms: Math.round(performance.now() - t0),
    });
  } catch (error) {
    console.error(`ks copy-tree: ${dest}: ${(error as Error).message.split("\n")[0]}`);
    return 1;
  }
  if (prime.length > 0) {
    const t0 = performance.now();
    try {
      await primeRuntimeCache(dest, prime);
      log.info("primed", {
        dest,
        launchers: prime.join(","),
        ms: Math.round(performance.now() - t0),
      });
    } catch (error) {
      log.warn("not primed: the tools will parse their modules at each start", {
        dest,
        error: (error as Error).message.split("\n")[0],
      });
    }
  }
  return 0;
}
