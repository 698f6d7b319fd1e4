// Per-tool runtime flags for the launchers of the ks tree (dist/ks-tree/bin/ks-<tool>) and of the
// host runtime: V8 flags a tool starts with. Empty means Deno's defaults. The one place to tune a
// tool's heap (e.g. `--max-semi-space-size=1`): the launchers are generated from this table.

/** V8 flags per tool (`ks-<tool>` -> flags, each like `--max-old-space-size=64`). */
export const V8_FLAGS: Readonly<Record<string, readonly string[]>> = {
  "ks-container-checker": [],
  "ks-entrypoint": [],
  "ks-memory-checker": [],
  "ks-patcher": [],
  "ks-render": [],
  "ks-rollout": [],
  "ks-stub": [],
  "ks-watchdog": [],
};

/** The `deno run` arguments carrying a tool's V8 flags (none when it has none). */
export function runtimeArgs(tool: string): string[] {
  const flags = V8_FLAGS[tool] ?? [];
  return flags.length > 0 ? [`--v8-flags=${flags.join(",")}`] : [];
}
