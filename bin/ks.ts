// ks: every kubesonic tool in one program. `ks stub telemetry status` runs ks-stub; so does the
// program started under the name `ks-stub` (a link to a compiled `ks`), and `ks ks-stub …` (what
// the launchers of the ks tree run). Each tool is imported only when it runs, so a tool loads only
// the modules it uses; its command line, output and exit codes are the tool's own.
import { VERSION } from "../src/version.ts";

type ToolModule = { main(args: string[]): Promise<unknown> };

/** The tools, by their short name (`ks <name>`); the program name is `ks-<name>`. */
export const TOOLS: Readonly<Record<string, () => Promise<ToolModule>>> = {
  "container-checker": () => import("./ks-container-checker.ts"),
  entrypoint: () => import("./ks-entrypoint.ts"),
  "memory-checker": () => import("./ks-memory-checker.ts"),
  patcher: () => import("./ks-patcher.ts"),
  render: () => import("./ks-render.ts"),
  rollout: () => import("./ks-rollout.ts"),
  stub: () => import("./ks-stub.ts"),
  watchdog: () => import("./ks-watchdog.ts"),
};

const HELP = `ks — every kubesonic tool in one program

Usage: ks <tool> [ARGS...]        ks stub telemetry status
       ks-<tool> [ARGS...]        the same, started under the tool's name (a link or launcher)
       ks copy-tree DIR [--prime LAUNCHER]...
                                  copy the self-contained tree this ks runs from into DIR
                                  (what the v2 pod's init container runs)
       ks prime-cache [DIR]       write Deno's module analysis cache of the tree at DIR for that
                                  path (the ks-tools image build; DIR is then read-only)

Tools: ${Object.keys(TOOLS).join(", ")}. Each keeps its own flags, output and exit codes
(ks <tool> --help). ks itself exits 2 for an unknown tool.

Example:
  ks watchdog --version
  ks-stub telemetry status --output json`;

/** The tool named by a program name or first argument (`stub`, `ks-stub`), if any. */
export function toolOf(name: string | undefined): string | undefined {
  if (name === undefined) return undefined;
  const base = name.slice(name.lastIndexOf("/") + 1);
  const short = base.startsWith("ks-") ? base.slice(3) : base;
  return Object.hasOwn(TOOLS, short) ? short : undefined;
}

async function programName(): Promise<string> {
  // The name the program was started as (argv[0]): only a compiled ks can be started as ks-stub.
  const { default: process } = await import("node:process");
  return process.argv0;
}

/** Dispatches `args` (the command line without the program name) and exits. */
export async function main(args: string[]): Promise<void> {
  const asStarted = Deno.build.standalone ? toolOf(await programName()) : undefined;
  const tool = asStarted ?? toolOf(args[0]);
  const rest = asStarted ? args : args.slice(1);
  if (tool !== undefined) {
    await (await TOOLS[tool]()).main(rest);
    return;
  }
  if (args[0] === "copy-tree") {
    const { copyTreeCli } = await import("../src/build/tree_copy.ts");
    Deno.exit(await copyTreeCli(rest));
  }
  if (args[0] === "prime-cache") {
    const { primeCacheCli } = await import("../src/build/runtime_cache.ts");
    Deno.exit(await primeCacheCli(rest));
  }
  if (args[0] === "--help" || args[0] === "-h") {
    console.log(HELP);
    Deno.exit(0);
  }
  if (args[0] === "--version") {
    console.log(`ks ${VERSION}`);
    Deno.exit(0);
  }
  console.error(
    args[0] === undefined
      ? "ks: no tool given (see ks --help)"
      : `ks: unknown tool "${args[0]}" (tools: ${Object.keys(TOOLS).join(", ")}; see ks --help)`,
  );
  Deno.exit(2);
}

if (import.meta.main) await main(Deno.args);
