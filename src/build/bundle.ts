// Builds the distributable form of the tools: `deno bundle` of each `bin/ks-*.ts` into
// `dist/<tool>.js`, and a launcher script `dist/bin/<tool>` that runs it with the pinned Deno.
// Used by scripts/bundle.ts, by the test harness (to build a missing or stale bundle on demand)
// and by the image builds.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { runtimeFlags } from "./runtime_flags.ts";
import { trimBundle } from "./bundle_trim.ts";

/** The repository root (the folder holding deno.json). */
export const REPO_ROOT: string = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** Where bundles are written. */
export const DIST_DIR: string = join(REPO_ROOT, "dist");

/** The body of the lazy `require` both bundle layouts get (see requireShim). */
const LAZY_REQUIRE_BODY =
  '  const builtin = process.getBuiltinModule(id.startsWith("node:") ? id : `node:${id}`);\n' +
  "  if (builtin) return builtin;\n" +
  '  __ksRequire ??= process.getBuiltinModule("node:module").createRequire(import.meta.url);\n' +
  "  return __ksRequire(id);\n";

/**
 * The `require` a bundle with CommonJS code inside gets (npm CommonJS packages call
 * `__require("node:process")`…), or undefined when the bundle requires nothing. It is lazy: a
 * built-in is fetched with process.getBuiltinModule on first use and node:module's createRequire
 * (which costs a start-up ~4 MiB and ~40 ms of CPU) only for an id that is not a built-in, so a
 * tool whose run never reaches the CommonJS code (ks-stub status, the checkers) pays nothing.
 */
export function requireShim(bundleText: string): string | undefined {
  if (!/\b__require\b/.test(bundleText)) return undefined;
  return "let __ksRequire;\nfunction require(id) {\n" + LAZY_REQUIRE_BODY + "}\n";
}

/**
 * Makes a code-split chunk's `__require` lazy: `deno bundle --code-splitting` defines it with a
 * static `import { createRequire } from "node:module"` in the shared runtime chunk, which every
 * tool would then pay at start-up (see requireShim). Returns the chunk unchanged when it has none.
 */
export function lazySplitRequire(chunk: string): string {
  const eager = 'import { createRequire as __deno_internal_createRequire } from "node:module";\n' +
    "var __require = __deno_internal_createRequire(import.meta.url);\n";
  if (!chunk.includes(eager)) return chunk;
  return chunk.replace(
    eager,
    "let __ksRequire;\nvar __require = (id) => {\n" + LAZY_REQUIRE_BODY + "};\n",
  );
}

/**
 * Makes a code-split chunk's imports of other chunks (`import("./ks-rollout-ZV….js")`) opaque to
 * Deno's module graph: `deno run` reads, hashes and dependency-analyses every module a string
 * literal `import()` names before the program starts, so every tool paid for every other tool's
 * chunks (ks-rollout's 1.8 MB among them) on each run: 10 ms of system CPU and ~25 ms of wall
 * time of a ~60 ms `ks-stub status`. Wrapped in `String(…)` the specifier is resolved only when
 * the import runs, against the same importing chunk, so the chunk loads as before, when called.
 * Builtins (`node:…`) are left as they are (no file behind them).
 */
export function lazyChunkImports(chunk: string): string {
  return chunk.replace(/\bimport\("(\.\/[^"\\]+\.js)"\)/g, 'import(String("$1"))');
}

/** One tool's bundle outcome. */
export interface BundleResult {
  tool: string;
  output: string;
  built: boolean;
}

/** Lists the tool names (`ks-*`) that have an entry point under `bin/`. */
export function listTools(): string[] {
  const tools: string[] = [];
  for (const entry of Deno.readDirSync(join(REPO_ROOT, "bin"))) {
    const match = /^(ks-[a-z0-9-]+)\.ts$/.exec(entry.name);
    if (entry.isFile && match) tools.push(match[1]);
  }
  return tools.sort();
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of Deno.readDirSync(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) newest = Math.max(newest, newestMtime(path));
    else if (entry.isFile && entry.name.endsWith(".ts")) {
      newest = Math.max(newest, Deno.statSync(path).mtime?.getTime() ?? 0);
    }
  }
  return newest;
}

function mtimeOrZero(path: string): number {
  try {
    return Deno.statSync(path).mtime?.getTime() ?? 0;
  } catch {
    return 0;
  }
}

/**
 * The launcher `dist/bin/<tool>`: `deno run` of the bundle with the tool's runtime flags
 * (src/build/runtime_flags.ts).
 */
export function launcherScript(tool: string): string {
  const flags = runtimeFlags(tool).map((f) => `${f} `).join("");
  return `#!/bin/sh\n# ${tool}: runs the bundled tool with Deno (flags: src/build/runtime_flags.ts).\n` +
    `exec "\${KS_DENO:-deno}" run -A --no-config --quiet ${flags}"$(dirname "$0")/../${tool}.js" "$@"\n`;
}

/** The path of a tool's bundle (whether or not it exists yet). */
export function bundlePath(tool: string): string {
  return join(DIST_DIR, `${tool}.js`);
}

/**
 * Bundles the tools (all, or `only`), skipping those whose bundle is newer than every source file
 * under `src/` and `bin/` unless `force`. Throws with deno bundle's first error line on failure;
 * a failed build leaves the previous bundle in place (written to a temp file, then renamed).
 */
export async function bundleTools(
  opts: { force?: boolean; only?: string[] } = {},
): Promise<BundleResult[]> {
  const tools = opts.only && opts.only.length > 0 ? opts.only : listTools();
  const sourcesMtime = Math.max(
    newestMtime(join(REPO_ROOT, "src")),
    newestMtime(join(REPO_ROOT, "bin")),
    mtimeOrZero(join(REPO_ROOT, "deno.json")),
  );
  await Deno.mkdir(join(DIST_DIR, "bin"), { recursive: true });
  const results: BundleResult[] = [];
  for (const tool of tools) {
    const output = bundlePath(tool);
    if (!opts.force && mtimeOrZero(output) > sourcesMtime) {
      results.push({ tool, output, built: false });
      continue;
    }
    const tmp = `${output}.tmp-${Deno.pid}`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--quiet", "--platform", "deno", "-o", tmp, join("bin", `${tool}.ts`)],
      cwd: REPO_ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      await Deno.remove(tmp).catch(() => {});
      const text = new TextDecoder().decode(out.stderr).trim().split("\n").find((l) => l.trim());
      throw new Error(`deno bundle of bin/${tool}.ts failed: ${text ?? "no output"}`);
    }
    // npm CommonJS packages (yaml, redis) call require("node:process"); esbuild's shim throws
    // unless a `require` exists, so give the ES module bundle one, only when it has such calls.
    // What the tool never runs out: npm:redis's unused commands, unused modules (bundle_trim.ts).
    const text = trimBundle(await Deno.readTextFile(tmp)).text;
    const shim = requireShim(text);
    await Deno.writeTextFile(tmp, shim ? shim + text : text);
    await Deno.rename(tmp, output);
    const launcher = join(DIST_DIR, "bin", tool);
    await Deno.writeTextFile(launcher, launcherScript(tool));
    await Deno.chmod(launcher, 0o755);
    results.push({ tool, output, built: true });
  }
  return results;
}
