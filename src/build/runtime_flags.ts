// The Deno/V8 flags each tool runs with: ONE place for them. Read by the launchers that
// scripts/bundle.ts writes (dist/bin/ks-*), by the test and benchmark harness (so tests run the
// tools as shipped) and by anything else that builds a launcher: `runtimeFlags("ks-watchdog")`
// gives the flags to put between `deno run` and the bundle; `deno run src/build/runtime_flags.ts
// ks-watchdog` prints them on one line for shell scripts.
//
// Why these (figures and the command: docs/footprint.md, `deno task bench footprint`):
// - The resident tools (ks-watchdog, ks-patcher's loop, the idle ks-entrypoint) are I/O-bound and
//   run for months. `--lite-mode` (no optimizing compiler, no feedback vectors: V8's own
//   memory-for-speed trade) and a 1 MiB semi-space (the young generation capped: more, smaller
//   scavenges) take the watchdog from ~80 to ~55 MiB RSS idle and from ~105-115 to ~64 MiB at
//   500 probes/s. `--no-code-cache` drops the mapping of Deno's shared code-cache database
//   (another 1.5-2.5 MiB RSS) and costs nothing measurable at start-up for these bundles.
//   Measured and left out: `--max-old-space-size=32` (higher idle, and a burst becomes an OOM
//   crash instead of a GC), `--single-threaded-gc` and `--stack-size` (higher peaks),
//   `--jitless` (no gain over lite mode, slower), `--optimize-for-size` (no gain).
// - The short-lived tools monit, systemd and featured spawn (the checkers, ks-stub) pay start-up
//   on every call; every V8 flag tried made it slower (`--max-lazy`, `--lite-mode`: +20-30 ms of
//   CPU per run): Deno's defaults, as for ks-render and ks-rollout.

/** Deno flags for long-running, I/O-bound tools: memory over peak throughput. */
const RESIDENT = ["--no-code-cache", "--v8-flags=--lite-mode,--max-semi-space-size=1"];

const FLAGS: Record<string, readonly string[]> = {
  "ks-watchdog": RESIDENT,
  "ks-patcher": RESIDENT,
  "ks-entrypoint": RESIDENT,
};

/**
 * The flags to pass between `deno run` and `tool`'s bundle (e.g. `["--no-code-cache",
 * "--v8-flags=--lite-mode,--max-semi-space-size=1"]`); `[]` for a tool that runs with Deno's
 * defaults or a name this module does not know.
 */
export function runtimeFlags(tool: string): string[] {
  return [...(FLAGS[tool] ?? [])];
}

if (import.meta.main) {
  if (Deno.args.length !== 1 || Deno.args[0].startsWith("-")) {
    console.error("usage: deno run src/build/runtime_flags.ts ks-TOOL   (prints its Deno flags)");
    Deno.exit(2);
  }
  console.log(runtimeFlags(Deno.args[0]).join(" "));
}
