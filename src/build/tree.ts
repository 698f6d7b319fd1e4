// The relocatable ks tree: the pinned Deno runtime, the one bundle of bin/ks.ts and a POSIX sh
// launcher per tool, working from whatever directory it is copied to and needing no path outside
// it (no DENO_DIR, no network, no config). Layout:
//   bin/deno          the pinned Deno (the npm package's binary this build runs on)
//   lib/ks/ks.js      `deno bundle --code-splitting` of bin/ks.ts and every bin/ks-<tool>.ts,
//   lib/ks/ks-<tool>.js  beside their chunks in lib/ks/: each tool loads only the chunks it
//                     imports (its own code and what it shares; the import() of another chunk is
//                     opaque to Deno's graph, lazyChunkImports); ks.js imports a tool's entry
//   bin/ks            `ks <tool> ARGS` (ks.js: the multi-call dispatch)
//   bin/ks-<tool>     `ks-<tool> ARGS`, the tool's own command line: runs lib/ks/ks-<tool>.js
//                     directly (no dispatch, no dynamic import: ~2.5 MiB less resident memory)
//   lib/tree.json     version, architecture, minimum glibc and every file's SHA-256 and mode
// The host runtime and the v2 pod's injected entrypoint are copies of this tree.
import { createHash } from "node:crypto";
import { join } from "node:path";
import { DIST_DIR, lazyChunkImports, lazySplitRequire, listTools, REPO_ROOT } from "./bundle.ts";
import { trimBundle } from "./bundle_trim.ts";
import { runtimeFlags } from "./runtime_flags.ts";
import { copySynced } from "./tree_copy.ts";
import { VERSION } from "../version.ts";

/** Where the tree is built. */
export const TREE_DIR: string = join(DIST_DIR, "ks-tree");
/** The bundle's directory inside the tree (the entry and its chunks). */
export const TREE_BUNDLE_DIR = "lib/ks";
/** The multi-call bundle's entry inside the tree. */
export const TREE_BUNDLE = `${TREE_BUNDLE_DIR}/ks.js`;
/** A tool's own entry inside the tree (`ks-watchdog` -> `lib/ks/ks-watchdog.js`). */
export function treeEntry(tool: string): string {
  return `${TREE_BUNDLE_DIR}/${tool}.js`;
}
/** The tree's own description. */
export const TREE_INDEX = "lib/tree.json";
/**
 * The newest glibc symbol version the pinned Deno binary needs (`objdump -T bin/deno`, highest
 * GLIBC_x.y): feature images must have at least this glibc.
 */
export const MIN_GLIBC = "2.27";

/** glibc's dynamic loader per architecture: its presence is how a launcher knows glibc is there. */
const LOADERS: Record<string, string> = {
  x86_64: "/lib64/ld-linux-x86-64.so.2",
  aarch64: "/lib/ld-linux-aarch64.so.1",
};

/** One file of the tree as lib/tree.json lists it. */
export interface TreeFile {
  path: string;
  sha256: string;
  size: number;
  mode: string;
}

/** lib/tree.json. */
export interface TreeIndex {
  version: string;
  arch: string;
  minGlibc: string;
  loader: string;
  /** SHA-256 over every file's path, mode and SHA-256: the tree's identity, 16 hex digits. */
  hash: string;
  files: TreeFile[];
}

/** The flags every launcher gives `deno run`: nothing from outside the tree, no prompts. */
export const DENO_RUN_FLAGS: readonly string[] = [
  "-A",
  "--no-config",
  "--no-lock",
  "--no-remote",
  "--no-npm",
  "--cached-only",
  "--quiet",
];

/**
 * A launcher: finds the tree from its own path (following one link to it), checks that glibc's
 * loader exists (one line naming what is missing, exit 127, before anything else can fail) and
 * execs the tree's Deno on the bundle. `checkGlibcVersion` also compares glibc's version with
 * MIN_GLIBC (one fork of the loader): for the entrypoint, which runs inside foreign images.
 */
export function launcherScript(
  tool: string | undefined,
  arch: string,
  checkGlibcVersion = false,
): string {
  const name = tool ?? "ks";
  const loader = LOADERS[arch] ?? LOADERS.x86_64;
  const [major, minor] = MIN_GLIBC.split(".");
  const need = `kubesonic's ${name} needs glibc >= ${MIN_GLIBC} on ${arch}`;
  const lines = [
    "#!/bin/sh",
    `# ${name}: kubesonic's ${
      tool ?? "multi-call program"
    } from the self-contained tree this file is`,
    "# in (bin/deno, lib/ks/); it reads nothing outside the tree and never uses the network.",
    'p=$0; [ -L "$p" ] && p=$(readlink -f "$p")',
    "case $p in */*) t=${p%/*}/.. ;; *) t=.. ;; esac",
    `if [ ! -e ${loader} ]; then`,
    `  echo "${name}: this image has no glibc for ${arch} (${loader} is missing): ${need}" >&2`,
    "  exit 127",
    "fi",
  ];
  if (checkGlibcVersion) {
    lines.push(
      `v=$(${loader} --version 2>/dev/null) || v=`,
      "v=${v#*version }; v=${v%%[!0-9.]*}; v=${v%.}; M=${v%%.*}; m=${v#*.}; m=${m%%.*}",
      `if [ -n "$v" ] && { [ "$M" -lt ${major} ] || { [ "$M" -eq ${major} ] && [ "$m" -lt ${minor} ]; }; }; then`,
      `  echo "${name}: this image's glibc is $v: ${need}" >&2`,
      "  exit 127",
      "fi",
    );
  }
  const flags = [...DENO_RUN_FLAGS, ...(tool ? runtimeFlags(tool) : [])].join(" ");
  lines.push(
    "DENO_NO_UPDATE_CHECK=1 DENO_NO_PROMPT=1 DENO_DIR=${KS_DENO_DIR:-$t/lib/cache}; export DENO_NO_UPDATE_CHECK DENO_NO_PROMPT DENO_DIR",
    `exec "$t/bin/deno" run ${flags} "$t/${tool ? treeEntry(tool) : TREE_BUNDLE}" "$@"`,
    "",
  );
  return lines.join("\n");
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path);
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

/** Lists a tree's files (sorted, relative paths), hashing each. */
export async function indexTree(root: string, arch = Deno.build.arch): Promise<TreeIndex> {
  const files: TreeFile[] = [];
  const walk = async (rel: string) => {
    for await (const entry of Deno.readDir(join(root, rel))) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      if (path === TREE_INDEX || path === "lib/cache") continue;
      if (entry.isDirectory) await walk(path);
      else if (entry.isFile) {
        const stat = await Deno.stat(join(root, path));
        files.push({
          path,
          sha256: await sha256File(join(root, path)),
          size: stat.size,
          mode: ((stat.mode ?? 0o644) & 0o777).toString(8).padStart(4, "0"),
        });
      }
    }
  };
  await walk("");
  files.sort((a, b) => a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  const hash = createHash("sha256")
    .update(files.map((f) => `${f.path} ${f.mode} ${f.sha256}\n`).join(""))
    .digest("hex").slice(0, 16);
  const loader = LOADERS[arch] ?? LOADERS.x86_64;
  return { version: VERSION, arch, minGlibc: MIN_GLIBC, loader, hash, files };
}

/** Reads a tree's lib/tree.json. */
export async function readTreeIndex(root: string = TREE_DIR): Promise<TreeIndex> {
  return JSON.parse(await Deno.readTextFile(join(root, TREE_INDEX))) as TreeIndex;
}

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of Deno.readDirSync(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) newest = Math.max(newest, newestSource(path));
    else if (entry.isFile && entry.name.endsWith(".ts")) {
      newest = Math.max(newest, Deno.statSync(path).mtime?.getTime() ?? 0);
    }
  }
  return newest;
}

function mtime(path: string): number {
  try {
    return Deno.statSync(path).mtime?.getTime() ?? 0;
  } catch {
    return 0;
  }
}

async function writeAtomic(path: string, data: string | Uint8Array, mode: number) {
  const tmp = `${path}.tmp-${Deno.pid}`;
  if (typeof data === "string") await Deno.writeTextFile(tmp, data, { mode });
  else await Deno.writeFile(tmp, data, { mode });
  await Deno.chmod(tmp, mode);
  await Deno.rename(tmp, path);
}

/**
 * Builds (or, unless `force`, keeps when newer than every source and the runtime) the tree at
 * `dir`. `deno` is the runtime to carry (default: the one running this build). Returns the index.
 * A failed bundle leaves the previous tree in place.
 */
export async function buildTree(
  opts: { dir?: string; deno?: string; force?: boolean } = {},
): Promise<{ dir: string; index: TreeIndex; built: boolean }> {
  const dir = opts.dir ?? TREE_DIR;
  const deno = await Deno.realPath(opts.deno ?? Deno.execPath());
  const sources = Math.max(
    newestSource(join(REPO_ROOT, "src")),
    newestSource(join(REPO_ROOT, "bin")),
    mtime(join(REPO_ROOT, "deno.json")),
    mtime(deno),
  );
  if (!opts.force && mtime(join(dir, TREE_INDEX)) > sources) {
    return { dir, index: await readTreeIndex(dir), built: false };
  }
  await Deno.mkdir(join(dir, "bin"), { recursive: true });
  await Deno.mkdir(join(dir, "lib"), { recursive: true });
  // Bundle into a fresh directory, then swap it in: no chunk of an older build stays behind.
  const bundleDir = join(dir, TREE_BUNDLE_DIR);
  const fresh = `${bundleDir}.new-${Deno.pid}`;
  await Deno.remove(fresh, { recursive: true }).catch(() => {});
  // One entry per tool beside ks.ts: a launcher runs its tool's module without ks.js's dispatch
  // and dynamic import (whose module records stay resident), and ks.js imports the same module.
  const tools = listTools();
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--platform",
      "deno",
      "--code-splitting",
      "--outdir",
      fresh,
      join("bin", "ks.ts"),
      ...tools.map((tool) => join("bin", `${tool}.ts`)),
    ],
    cwd: REPO_ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    await Deno.remove(fresh, { recursive: true }).catch(() => {});
    const text = new TextDecoder().decode(out.stderr).trim().split("\n").find((l) => l.trim());
    throw new Error(`deno bundle of bin/ks.ts failed: ${text ?? "no output"}`);
  }
  for (const entry of [TREE_BUNDLE, ...tools.map(treeEntry)]) {
    const name = entry.slice(TREE_BUNDLE_DIR.length + 1);
    if (mtime(join(fresh, name)) === 0) {
      await Deno.remove(fresh, { recursive: true }).catch(() => {});
      throw new Error(`deno bundle of bin/ks.ts wrote no ${name} (the entries a launcher runs)`);
    }
  }
  for await (const entry of Deno.readDir(fresh)) {
    const path = join(fresh, entry.name);
    // What no tool runs (npm:redis's unused commands, modules nothing requires: bundle_trim.ts;
    // a name another chunk imports is in this chunk's export list, so it stays).
    const text = await Deno.readTextFile(path);
    const lazy = lazyChunkImports(lazySplitRequire(trimBundle(text).text));
    if (lazy !== text) await Deno.writeTextFile(path, lazy);
    await Deno.chmod(path, 0o644);
  }
  const old = `${bundleDir}.old-${Deno.pid}`;
  await Deno.rename(bundleDir, old).catch(() => {});
  await Deno.rename(fresh, bundleDir);
  await Deno.remove(old, { recursive: true }).catch(() => {});
  await Deno.remove(join(dir, "lib", "ks.js")).catch(() => {}); // the unsplit layout's bundle
  if (
    mtime(join(dir, "bin", "deno")) === 0 ||
    await sha256File(deno) !== await sha256File(join(dir, "bin", "deno"))
  ) {
    // Not Deno.copyFile: written in small writes, so every tool maps it in small folios
    // (src/page_cache.ts: ~4 MiB RSS per process against a copy_file_range copy).
    const copy = `${join(dir, "bin", "deno")}.tmp-${Deno.pid}`;
    await Deno.remove(copy).catch(() => {});
    await copySynced(deno, copy, 0o755);
    await Deno.rename(copy, join(dir, "bin", "deno"));
  }
  const arch = Deno.build.arch;
  await writeAtomic(join(dir, "bin", "ks"), launcherScript(undefined, arch), 0o755);
  for (const tool of tools) {
    await writeAtomic(
      join(dir, "bin", tool),
      launcherScript(tool, arch, tool === "ks-entrypoint"),
      0o755,
    );
  }
  // Launchers of tools that no longer exist go.
  for await (const entry of Deno.readDir(join(dir, "bin"))) {
    if (/^ks-/.test(entry.name) && !tools.includes(entry.name)) {
      await Deno.remove(join(dir, "bin", entry.name));
    }
  }
  const index = await indexTree(dir, arch);
  await writeAtomic(join(dir, TREE_INDEX), JSON.stringify(index, null, 2) + "\n", 0o644);
  return { dir, index, built: true };
}
