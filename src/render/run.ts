// ks-render's run(): load and validate everything (spec, config_db), render in memory, then write
// the output directory in one step. Nothing is written unless every input is good.
import { EXIT_BAD_INPUT } from "../cli.ts";
import { loadFeatureSpec } from "../feature/parse.ts";
import { SpecError } from "../feature/spec.ts";
import { loadSwitchFacts, type SwitchFacts } from "../feature/switch_facts.ts";
import { createLogger, type Logger } from "../log.ts";
import { readTreeIndex, type TreeIndex } from "../build/tree.ts";
import { runningTreeRoot } from "../build/running_tree.ts";
import { type Profile } from "./profile.ts";
import { renderFeature } from "./render.ts";
import { OutputError, writeOutputDir } from "./write.ts";

/** What one ks-render invocation asks for. */
export interface RenderRun {
  specPath: string;
  configDbPath?: string;
  asics?: number;
  profile: Profile;
  outDir: string;
  output: "text" | "json";
  /** The ks tree whose lib/tree.json the host runtime installs (default: the one running). */
  toolsTree?: string;
  /** Where stdout text goes (tests collect it). */
  print?: (text: string) => void;
  logger?: Logger;
}

/**
 * Runs one render. Returns 0 on success, EXIT_BAD_INPUT (2) after printing one error line
 * (naming the file and the field) on stderr when an input is bad or the output cannot be written.
 */
export async function runRender(run: RenderRun): Promise<number> {
  const print = run.print ?? ((text: string) => console.log(text));
  let log = run.logger ?? createLogger("ks-render");
  try {
    const spec = await loadFeatureSpec(run.specPath);
    log = log.withFeature(spec.name);
    let facts: SwitchFacts | undefined;
    if (run.configDbPath) facts = await loadSwitchFacts(run.configDbPath, spec.name);
    let tree: TreeIndex | undefined;
    const treeDir = run.toolsTree ?? runningTreeRoot();
    if (spec.hostRuntime.install && treeDir) {
      try {
        tree = await readTreeIndex(treeDir);
      } catch (error) {
        throw new SpecError(
          `--tools-tree ${treeDir}: cannot read lib/tree.json: ${
            (error as Error).message.split("\n")[0]
          }`,
        );
      }
    }
    const result = renderFeature(spec, {
      tree,
      profile: run.profile,
      facts,
      asics: run.asics,
      specFile: run.specPath,
      configDbFile: run.configDbPath,
    });
    await writeOutputDir(run.outDir, result.files);
    const s = result.summary;
    log.info("rendered", {
      out: run.outDir,
      profile: s.profile,
      instances: s.instances.map((i) => i.name).join(","),
      scope_from: s.scope.from,
      memory_limit: s.memoryLimit,
      memory_limit_from: s.memoryLimitFrom,
      configmap: s.configMap,
    });
    if (run.output === "json") print(JSON.stringify(s, null, 2));
    else {
      for (const f of result.files) print(`${run.outDir.replace(/\/$/, "")}/${f.path}`);
    }
    return 0;
  } catch (error) {
    if (error instanceof SpecError || error instanceof OutputError) {
      console.error(`ks-render: ${error.message}`);
      return EXIT_BAD_INPUT;
    }
    throw error;
  }
}
