// Test helper: a bundled tool started in the background with its stderr collected line by line,
// so a test can wait for a log line ("idle until it is enabled") instead of sleeping. Always
// stopped by `stop()` (SIGKILL after a grace), which tests call in `finally`.
import { toolArgv, toolEntryPath, toolLauncher } from "./bin.ts";
import { waitUntil } from "./net.ts";
import { procStats, stopChild } from "./process.ts";

/** A running tool with collected output. */
export interface RunningTool {
  child: Deno.ChildProcess;
  readonly pid: number;
  /** stderr lines so far. */
  readonly lines: string[];
  /** stdout text so far. */
  stdout(): string;
  /** Waits for a stderr line matching `pattern`; throws with the output so far after `ms`. */
  waitForLine(pattern: RegExp, ms?: number): Promise<string>;
  /** Resolves with the exit status. */
  readonly status: Promise<Deno.CommandStatus>;
  /** SIGTERM (or `signal`), then SIGKILL after `graceMs`; resolves when it has exited. */
  stop(signal?: Deno.Signal, graceMs?: number): Promise<Deno.CommandStatus>;
}

async function collect(
  stream: ReadableStream<Uint8Array>,
  onText: (text: string) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  for await (const chunk of stream) onText(decoder.decode(chunk, { stream: true }));
}

/**
 * Starts `tool` with `args`. `denoFlags` go between `deno run` and the bundle (e.g. `--deny-ffi`);
 * `wrap` puts a command in front (e.g. `unshare --pid --fork --mount-proc`); `launcher` runs the
 * tree's own launcher `bin/<tool>` (its Deno, its flags, its DENO_DIR: exactly what ships)
 * instead of this Deno on the tool's entry.
 */
export async function startTool(
  tool: string,
  args: string[],
  opts: {
    env?: Record<string, string>;
    denoFlags?: string[];
    wrap?: string[];
    /** false: Deno's defaults instead of the tool's runtime flags (for comparisons). */
    runtimeFlags?: boolean;
    /** Runs this bundle file instead of the tool's entry in the tree (a prototype). */
    bundle?: string;
    /** The Deno executable to run (default: this one). */
    deno?: string;
    /** true: the tree's launcher (no other option but env and wrap applies). */
    launcher?: boolean;
  } = {},
): Promise<RunningTool> {
  const [exe, run, ...rest] = await toolArgv(tool, { runtimeFlags: opts.runtimeFlags });
  if (opts.bundle) rest.splice(rest.indexOf(toolEntryPath(tool)), 1, opts.bundle);
  // setsid: the tool leads its own process group, so stop() can kill every daemon it started.
  const argv = opts.launcher
    ? ["setsid", ...(opts.wrap ?? []), await toolLauncher(tool), ...args]
    : [
      "setsid",
      ...(opts.wrap ?? []),
      opts.deno ?? exe,
      run,
      ...(opts.denoFlags ?? []),
      ...rest,
      ...args,
    ];
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    env: opts.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  let partial = "";
  let out = "";
  const done = Promise.all([
    collect(child.stderr, (text) => {
      partial += text;
      const parts = partial.split("\n");
      partial = parts.pop()!;
      lines.push(...parts);
    }),
    collect(child.stdout, (text) => (out += text)),
  ]);
  // Daemons that outlive the tool keep the pipes open: give the readers a moment, not forever.
  const status = child.status.then(async (s) => {
    await Promise.race([done.catch(() => {}), new Promise((r) => setTimeout(r, 200))]);
    return s;
  });
  let exited = false;
  void status.then(() => (exited = true));
  return {
    child,
    pid: child.pid,
    lines,
    stdout: () => out,
    status,
    async waitForLine(pattern, ms = 10_000) {
      let found: string | undefined;
      try {
        await waitUntil(
          () => (found = lines.find((l) => pattern.test(l))) !== undefined,
          ms,
          `${pattern}`,
        );
      } catch {
        throw new Error(`no log line ${pattern} within ${ms} ms; got:\n${lines.join("\n")}`);
      }
      return found!;
    },
    async stop(signal = "SIGTERM", graceMs = 3000) {
      const killGroup = () => {
        try {
          Deno.kill(-child.pid, "SIGKILL");
        } catch { /* group gone */ }
      };
      if (!exited) await stopChild(child, status, graceMs, { signal, escalate: killGroup });
      killGroup(); // leftovers (a daemon of a killed entrypoint, orphans)
      return await status;
    },
  };
}

/** true when a process with `pid` exists (zombies included). */
export function processExists(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/** The children of `pid` with their state letter (R, S, Z…), read from /proc. */
export function childrenOf(pid: number): { pid: number; state: string; comm: string }[] {
  return procStats().filter((p) => p.ppid === pid).map(({ pid, state, comm }) => ({
    pid,
    state,
    comm,
  }));
}
