// ks-render: a feature spec (+ optionally a switch's config_db.json) -> the feature's Kubernetes
// objects (v1 / v2 DaemonSets, RBAC, ConfigMap with host files and manifests). Thin: flags ->
// runRender().
import { parseCli, runCli, UsageError } from "../src/cli.ts";
import { type Profile, PROFILES } from "../src/render/profile.ts";
import { runRender } from "../src/render/run.ts";

const HELP = `ks-render — render a SONiC feature's Kubernetes objects and host files from its spec

Usage: ks-render SPEC -o DIR [--config-db FILE] [--asics N] [--profile production|lab]
  SPEC               feature spec (YAML, kind FeatureSpec; see docs/render.md)
  -o, --out DIR      output directory, replaced as a whole (must be new, empty, or an
                     earlier ks-render output)
  --config-db FILE   a switch's config_db.json: FEATURE|<name> has_global_scope /
                     has_per_asic_scope, and the ASIC count of a multi-ASIC file
                     ({"localhost": …, "asic0": …})
  --asics N          ASIC count (overrides the config_db and the spec's scope.asics)
  --profile P        production (default) or lab: lab swaps privileged: true for an
                     explicit capability list (machines without CAP_SYS_RESOURCE)
  --output FORMAT    text (the files written, default) or json (the summary)
  --tools-tree DIR   the ks tree the host runtime is rendered from (its lib/tree.json: file
                     hashes and version); default: the tree this ks-render runs from
  --help, --version

Output (apply common/ first, then v1/ or v2/):
  common/00-namespace.yaml  common/10-rbac.yaml  common/20-configmap.yaml
  v1/30-daemonset.yaml (sidecar only, native mode: the rollback state)
  v2/30-daemonset.yaml (feature + watchdog + sidecar; one DaemonSet per ASIC)
  summary.json

Exit codes: 0 written; 2 usage error or bad input (a bad spec, config_db or output dir: one
line naming the file and field, nothing written); 1 any other failure.

Example:
  ks-render examples/telemetry/feature.yaml --config-db /etc/sonic/config_db.json -o out/telemetry
  kubectl apply -f out/telemetry/common -f out/telemetry/v1`;

async function cli(args: string[]): Promise<number> {
  const { values, positionals } = parseCli({
    tool: "ks-render",
    help: HELP,
    options: {
      out: { type: "string", short: "o" },
      "config-db": { type: "string" },
      asics: { type: "string" },
      profile: { type: "string", default: "production" },
      output: { type: "string", default: "text" },
      "tools-tree": { type: "string" },
    },
  }, args);
  if (positionals.length !== 1) {
    throw new UsageError(positionals.length === 0 ? "a feature spec is required" : "give one spec");
  }
  if (!values.out) throw new UsageError("-o DIR is required");
  const profile = values.profile ?? "production";
  if (!(PROFILES as readonly string[]).includes(profile)) {
    throw new UsageError(`--profile: "${profile}" is not production or lab`);
  }
  if (values.output !== "text" && values.output !== "json") {
    throw new UsageError(`--output: "${values.output}" is not text or json`);
  }
  let asics: number | undefined;
  if (values.asics !== undefined) {
    if (!/^\d{1,2}$/.test(values.asics) || Number(values.asics) > 16) {
      throw new UsageError(`--asics: "${values.asics}" is not an ASIC count (0..16)`);
    }
    asics = Number(values.asics);
  }
  return await runRender({
    specPath: positionals[0],
    configDbPath: values["config-db"],
    asics,
    profile: profile as Profile,
    outDir: values.out,
    output: values.output,
    toolsTree: values["tools-tree"],
  });
}

/** Runs the tool with `args` (its command line without the program name) and exits. */
export function main(args: string[]): Promise<never> {
  return runCli("ks-render", () => cli(args));
}

if (import.meta.main) await main(Deno.args);
