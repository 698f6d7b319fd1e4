// Single-file executables: `deno compile` of each `bin/ks-*.ts` into `dist/compiled/<tool>`, and
// of the multi-call bin/ks.ts into `dist/compiled/ks` (links `ks-<tool>` to it).
// deno compile needs the `denort` base binary: `DENORT_BIN` when set, else Deno's own download
// (cached in DENO_DIR). Where neither works the build fails with one line saying so.
import { join } from "node:path";
import { DIST_DIR, listTools, REPO_ROOT } from "./bundle.ts";
import { runtimeFlags } from "./runtime_flags.ts";

/** Where compiled executables go. */
export const COMPILED_DIR: string = join(DIST_DIR, "compiled");

/** Why compiling cannot work here, or undefined when a base binary should be available. */
export function denortUnavailableReason(): string | undefined {
  const fromEnv = Deno.env.get("DENORT_BIN");
  if (fromEnv) {
    try {
      return Deno.statSync(fromEnv).isFile ? undefined : `DENORT_BIN=${fromEnv} is not a file`;
    } catch {
      return `DENORT_BIN=${fromEnv} does not exist`;
    }
  }
  const version = Deno.version.deno;
  const denoDir = Deno.env.get("DENO_DIR") ??
    join(Deno.env.get("HOME") ?? "/root", ".cache", "deno");
  const cached = join(
    denoDir,
    "dl",
    "release",
    `v${version}`,
    "denort-x86_64-unknown-linux-gnu.zip",
  );
  try {
    Deno.statSync(cached);
    return undefined;
  } catch {
    return `no denort base binary: DENORT_BIN is unset and ${cached} is not cached ` +
      `(deno compile would download it from dl.deno.land)`;
  }
}

/**
 * Compiles bin/ks.ts, the multi-call program, into `dist/compiled/ks` with a link `ks-<tool>` per
 * tool (it dispatches on the name it is started as). Same errors as compileTools.
 */
export async function compileKs(): Promise<CompileResult[]> {
  const [ks] = await compileTools(["ks"]);
  const results = [ks];
  for (const tool of listTools()) {
    const link = join(COMPILED_DIR, tool);
    await Deno.remove(link).catch(() => {});
    await Deno.symlink("ks", link);
    results.push({ tool, output: link });
  }
  return results;
}

/** The outcome of compiling one tool. */
export interface CompileResult {
  tool: string;
  output: string;
}

/**
 * Compiles the tools (all, or `only`). Throws with one line naming the tool and deno's first
 * error line (for a missing base binary: that the base binary could not be had, and how to fix).
 */
export async function compileTools(only: string[] = []): Promise<CompileResult[]> {
  const tools = only.length > 0 ? only : listTools();
  await Deno.mkdir(COMPILED_DIR, { recursive: true });
  const results: CompileResult[] = [];
  for (const tool of tools) {
    const output = join(COMPILED_DIR, tool);
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "compile",
        "-A",
        "--quiet",
        ...runtimeFlags(tool), // baked into the executable
        "-o",
        output,
        join("bin", `${tool}.ts`),
      ],
      cwd: REPO_ROOT,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      const text = new TextDecoder().decode(out.stderr);
      if (/denort|base binary|dl\.deno\.land/i.test(text)) {
        throw new Error(
          `deno compile of ${tool} needs the denort base binary, which could not be had here: ` +
            `set DENORT_BIN to a denort ${Deno.version.deno} binary, or run where dl.deno.land is reachable`,
        );
      }
      const first = text.split("\n").map((l) => l.trim()).find((l) => l.startsWith("error")) ??
        text.trim().split("\n")[0];
      throw new Error(`deno compile of bin/${tool}.ts failed: ${first}`);
    }
    results.push({ tool, output });
  }
  return results;
}
