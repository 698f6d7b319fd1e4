// How end-to-end tests and benchmarks run the tools: the bundled artifact `dist/<tool>.js`
// (built on demand when missing or older than the sources), through the pinned Deno, exactly as
// the images and the lab run it, with the tool's runtime flags (src/build/runtime_flags.ts).
import { bundlePath, bundleTools, DIST_DIR } from "../../src/build/bundle.ts";
import { runtimeFlags } from "../../src/build/runtime_flags.ts";
import { join } from "node:path";
import { runCommand } from "./process.ts";

const built = new Set<string>();

/**
 * Ensures the tool's bundle is current and returns the argv prefix that runs it, as its launcher
 * does (`runtimeFlags: false`: with Deno's defaults instead, for comparisons).
 */
export async function toolArgv(
  tool: string,
  opts: { runtimeFlags?: boolean } = {},
): Promise<string[]> {
  if (!built.has(tool)) {
    await bundleTools({ only: [tool] });
    built.add(tool);
  }
  const flags = opts.runtimeFlags === false ? [] : runtimeFlags(tool);
  return [Deno.execPath(), "run", "-A", "--no-config", "--quiet", ...flags, bundlePath(tool)];
}

/** The launcher script path for a tool (`dist/bin/<tool>`), after ensuring its bundle. */
export async function toolLauncher(tool: string): Promise<string> {
  await toolArgv(tool);
  return join(DIST_DIR, "bin", tool);
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
