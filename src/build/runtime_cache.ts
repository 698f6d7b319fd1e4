// Deno's module analysis cache of a ks tree (`lib/cache`, the launchers' DENO_DIR), primed where
// the tree runs. Before it runs a module Deno parses it for its imports and keeps the result in
// SQLite files under DENO_DIR. Where that directory cannot be written (the ks-tools image's
// read-only root, the feature container's read-only mount of the injected tree) Deno falls back
// to in-memory databases and parses every module again at each start, which leaves ~6-7 MiB of
// malloc'd memory resident in each tool for its whole life. A cache primed at the tree's final
// path is opened read-only instead: the entries are keyed by the modules' absolute URLs, so it
// has to be written where the tree will run (the image build runs it in a chroot of the image,
// `ks copy-tree` at the emptyDir's path).
import { join } from "node:path";
import { createLogger } from "../log.ts";
import { runningTreeRoot } from "./running_tree.ts";

/** The cache directory under a tree (what the launchers set DENO_DIR to). */
export const TREE_CACHE_DIR = "lib/cache";
/** The database Deno keeps each module's imports in; its presence says the cache was written. */
export const MODULE_ANALYSIS_DB = "dep_analysis_cache_v2";

const USAGE = `Usage: ks prime-cache [DIR]
Runs each launcher of the ks tree at DIR (default: the tree this ks runs from) once with --version,
so Deno writes its module analysis cache under DIR/${TREE_CACHE_DIR} for the tree at this path.
Run it where the tree will run (the path is part of every entry), before the directory is made
read-only. Exit codes: 0 primed, 1 a launcher failed or no cache was written, 2 bad usage.
Example (the ks-tools image build, in a chroot of the image): /opt/kubesonic/bin/ks prime-cache`;

/** The launchers of the tree at `tree`: `bin/ks` and every `bin/ks-<tool>`. */
export function treeLaunchers(tree: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(join(tree, "bin"))) {
    if (e.isFile && (e.name === "ks" || e.name.startsWith("ks-"))) out.push(e.name);
  }
  return out.sort();
}

/**
 * Runs `bin/<launcher> --version` of the tree at `tree` for each launcher (default: all), one at a
 * time, with the launchers' own DENO_DIR (KS_DENO_DIR and DENO_DIR cleared). Throws naming the
 * launcher that failed, or when Deno wrote no module analysis database.
 */
export async function primeRuntimeCache(tree: string, launchers?: string[]): Promise<string[]> {
  const names = launchers ?? treeLaunchers(tree);
  const env = Deno.env.toObject();
  delete env.KS_DENO_DIR;
  delete env.DENO_DIR;
  for (const name of names) {
    const out = await new Deno.Command(join(tree, "bin", name), {
      args: ["--version"],
      env,
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) {
      const why = new TextDecoder().decode(out.stderr).trim().split("\n")[0] || "no output";
      throw new Error(`bin/${name} --version exited ${out.code}: ${why}`);
    }
  }
  try {
    Deno.statSync(join(tree, TREE_CACHE_DIR, MODULE_ANALYSIS_DB));
  } catch {
    throw new Error(`Deno wrote no ${TREE_CACHE_DIR}/${MODULE_ANALYSIS_DB}`);
  }
  return names;
}

/** The command: exit code as documented in USAGE. */
export async function primeCacheCli(args: string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  if (args.length > 1 || args.some((a) => a.startsWith("-"))) {
    console.error(
      `ks prime-cache: expected at most one DIR, got ${
        JSON.stringify(args)
      } (see ks prime-cache --help)`,
    );
    return 2;
  }
  const tree = args[0] ?? runningTreeRoot();
  if (!tree) {
    console.error(
      "ks prime-cache: this ks does not run from a ks tree (no lib/tree.json beside it)",
    );
    return 1;
  }
  const log = createLogger("ks", "prime-cache");
  const t0 = performance.now();
  try {
    const names = await primeRuntimeCache(tree);
    log.info("primed", {
      tree,
      launchers: names.length,
      ms: Math.round(performance.now() - t0),
    });
    return 0;
  } catch (error) {
    console.error(`ks prime-cache: ${tree}: ${(error as Error).message}`);
    return 1;
  }
}
