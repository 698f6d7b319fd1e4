// How end-to-end tests and benchmarks run the tools: each tool's entry in the ks tree's bundle
// (`dist/ks-tree/lib/ks/ks-<tool>.js`, built on demand when missing or older than the sources),
// through the pinned Deno, exactly as the launchers of the images, the host runtime and the lab
// run it, with the tool's runtime flags (src/build/runtime_flags.ts).
import { runtimeFlags } from "../../src/build/runtime_flags.ts";
import { join } from "node:path";
import {
  buildTree,
  DENO_RUN_FLAGS,
  TREE_BUNDLE,
  TREE_DIR,
  treeEntry,
} from "../../src/build/tree.ts";
import { runCommand } from "./process.ts";

let built: Promise<unknown> | undefined;

/** Ensures the ks tree is current (once per process). */
export function ensureTree(): Promise<unknown> {
  built ??= buildTree();
  return built;
}

/** The multi-call bundle (`ks <tool>`). */
export const TREE_BUNDLE_PATH = join(TREE_DIR, TREE_BUNDLE);

/** The entry a tool's launcher runs (`dist/ks-tree/lib/ks/ks-stub.js`). */
export function toolEntryPath(tool: string): string {
  return join(TREE_DIR, treeEntry(tool));
}

/**
 * Ensures the ks tree is current and returns the argv prefix that runs `tool` (`ks-stub`) as its
 * launcher does: `deno run <flags> <tool's entry>` (`runtimeFlags: false`: with Deno's defaults
 * instead of the tool's runtime flags, for comparisons).
 */
export async function toolArgv(
  tool: string,
  opts: { runtimeFlags?: boolean } = {},
): Promise<string[]> {
  await ensureTree();
  const flags = opts.runtimeFlags === false ? [] : runtimeFlags(tool);
  return [Deno.execPath(), "run", ...DENO_RUN_FLAGS, ...flags, toolEntryPath(tool)];
}

/** The tree's launcher for a tool (`dist/ks-tree/bin/<tool>`), after ensuring the tree. */
export async function toolLauncher(tool: string): Promise<string> {
  await ensureTree();
  return join(TREE_DIR, "bin", tool);
}

/** A Deno.Command running the bundled tool with `args`. */
export async function toolCommand(
  tool: string,
  args: string[],
  options: Omit<Deno.CommandOptions, "args"> = {},
): Promise<Deno.Command> {
  const [exe, ...prefix] = await toolArgv(tool);
  return new Deno.Command(exe, { ...options, args: [...prefix, ...args] });
}

/** Output of one run of a tool. */
export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the bundled tool to completion and returns its exit code and decoded output. */
export async function runTool(
  tool: string,
  args: string[],
  options: { env?: Record<string, string>; stdin?: string; cwd?: string } = {},
): Promise<ToolResult> {
  const [exe, ...prefix] = await toolArgv(tool);
  return await runCommand(exe, [...prefix, ...args], options);
}

/** A copy of the ks tree mounted read-only on itself, as the ks-tools image's root is in a pod. */
export interface ReadOnlyTree {
  root: string;
  /** The copy's launcher for a tool (`<root>/bin/ks-watchdog`). */
  launcher(tool: string): string;
  /** Unmounts and removes the copy. */
  remove(): Promise<void>;
}

/**
 * Copies the ks tree to `dir` (`ks copy-tree`), primes Deno's module analysis cache there as the
 * ks-tools image build does (`ks prime-cache`; `prime: false` leaves it out) and bind-mounts the
 * copy read-only on itself (needs root): what a tool started from the image meets.
 */
export async function readOnlyTree(
  dir: string,
  opts: { prime?: boolean } = {},
): Promise<ReadOnlyTree> {
  await ensureTree();
  const must = async (cmd: string, args: string[]) => {
    const r = await runCommand(cmd, args);
    if (r.code !== 0) {
      throw new Error(`${cmd} ${args.join(" ")}: exit ${r.code}: ${r.stderr.trim()}`);
    }
  };
  let mounted = false;
  const remove = async () => {
    if (mounted) {
      await runCommand("umount", [dir]).then((r) =>
        r.code === 0 ? r : runCommand("umount", ["-l", dir])
      );
    }
    await Deno.remove(dir, { recursive: true });
  };
  try {
    await must(join(TREE_DIR, "bin", "ks"), ["copy-tree", dir]);
    if (opts.prime !== false) await must(join(dir, "bin", "ks"), ["prime-cache"]);
    await must("mount", ["--bind", dir, dir]);
    mounted = true;
    await must("mount", ["-o", "remount,ro,bind", dir]);
  } catch (error) {
    await remove().catch(() => {});
    throw error;
  }
  return { root: dir, launcher: (tool) => join(dir, "bin", tool), remove };
}
