// The patcher's driver: load the manifest, build the context, then either one pass (`--once`,
// `--dry-run`) or the loop. The loop has three triggers feeding the same reconcileOnce(): start,
// file-system events on the managed files' directories (debounced), and a periodic re-check with
// jitter; a pass that leaves errors or owed actions is retried with exponential back-off.
import { dirname } from "node:path";
import { EXIT_BAD_INPUT } from "../cli.ts";
import { createHostCommands, type NsenterMode } from "../host/commands.ts";
import { fdUnavailable } from "../host/fd.ts";
import { HostPaths } from "../host/paths.ts";
import { escapeText, type Logger } from "../log.ts";
import { sameBody } from "../host/files.ts";
import { HashCache } from "../host/hash_cache.ts";
import { loadManifest, type Manifest, ManifestError, type ManifestOptions } from "./manifest.ts";
import {
  createPatcherContext,
  type PassResult,
  type PatcherContext,
  reconcileOnce,
} from "./reconcile.ts";

/** Everything `ks-patcher` is configured with. */
export interface PatcherOptions {
  manifestPath: string;
  hostRoot: string;
  stateDir: string;
  allowRoots: string[];
  once: boolean;
  dryRun: boolean;
  /** Periodic re-check interval (ms); each wait is jittered by ±10 %. */
  intervalMs: number;
  /** Quiet time after a file-system event before the pass runs (ms). */
  debounceMs: number;
  /** Age after which another feature's unconfirmed ownership claim stops blocking (ms). */
  staleClaimMs?: number;
  nsenter: NsenterMode;
  output: "text" | "json";
  /** Size bound of each source and inline content unless an entry sets maxBytes. */
  maxSourceBytes?: number;
  log: Logger;
  /** Stops the loop (SIGTERM in the tool). */
  signal?: AbortSignal;
  /** Called after each loop pass (benchmarks and tests observe the loop through it). */
  onPass?: (result: PassResult, trigger: string) => void;
}

/** Exit code for a manifest or configuration that fails validation (nothing was written). */
export { EXIT_BAD_INPUT };

/** After SIGTERM/SIGINT the pass in flight gets this long before the process exits anyway. */
export const STOP_GRACE_MS = 5_000;

/**
 * Prints a pass result for humans (one line per file, every manifest-derived text escaped so it
 * cannot forge a line) or as one JSON document.
 */
export function formatResult(result: PassResult, output: "text" | "json"): string {
  if (output === "json") return JSON.stringify(result);
  const e = escapeText;
  const lines = result.plan.map((p) =>
    `${p.op.padEnd(6)} ${e(p.path)}  ${e(p.reason)}${
      p.actions.length ? `  actions: ${e(p.actions.join(", "))}` : ""
    }`
  );
  if (result.pending.length) lines.push(`pending actions: ${e(result.pending.join(", "))}`);
  for (const error of result.errors) lines.push(`error: ${e(error)}`);
  lines.push(
    result.dryRun
      ? `dry run: ${
        result.plan.filter((p) => p.op !== "none" && p.op !== "skip").length
      } change(s) planned, nothing touched`
      : result.converged
      ? "converged"
      : "not converged",
  );
  return lines.join("\n");
}

/**
 * Runs the patcher. Returns the exit code: once/dry-run 0 converged (dry run: no errors) / 1
 * errors; the loop 0 after the signal stops it; EXIT_BAD_INPUT when the manifest or the host
 * root is invalid (then nothing was touched).
 */
export async function runPatcher(options: PatcherOptions): Promise<number> {
  let log = options.log;
  let ctx: PatcherContext;
  // One cache of large files' hashes for the sources and the host files: a loop's pass reads
  // again only what changed (src/host/hash_cache.ts).
  const hashes = new HashCache();
  const manifestOptions: ManifestOptions = { maxSourceBytes: options.maxSourceBytes, hashes };
  const noFd = fdUnavailable();
  if (noFd !== null) {
    // Without descriptor-relative calls there is no safe way to touch host files: no fallback.
    log.error(`cannot touch host files safely: ${noFd}; refusing to run`);
    return EXIT_BAD_INPUT;
  }
  try {
    const manifest = await loadManifest(options.manifestPath, manifestOptions);
    const paths = new HostPaths({ hostRoot: options.hostRoot, allowRoots: options.allowRoots });
    const host = createHostCommands({ nsenter: options.nsenter, hostRoot: options.hostRoot });
    log = log.withFeature(manifest.feature);
    ctx = createPatcherContext({
      manifest,
      paths,
      host,
      stateDir: options.stateDir,
      log,
      staleClaimMs: options.staleClaimMs,
      stormIntervalMs: options.once || options.dryRun ? undefined : options.intervalMs,
      hashes,
    });
  } catch (error) {
    log.error((error as Error).message.split("\n")[0]);
    return EXIT_BAD_INPUT;
  }
  log.info("started", {
    mode: ctx.manifest.mode,
    files: ctx.manifest.files.length,
    nsenter: ctx.host.viaNsenter,
    once: options.once || options.dryRun,
  });
  if (options.once || options.dryRun) {
    const result = await reconcileOnce(ctx, { dryRun: options.dryRun });
    console.log(formatResult(result, options.output));
    if (result.refused) return EXIT_BAD_INPUT;
    if (options.dryRun) return result.errors.length === 0 ? 0 : 1;
    return result.converged ? 0 : 1;
  }
  await new PatcherLoop(ctx, options).run();
  return 0;
}

/** Whether two manifests want the same state (content compared by hash, native bytes directly). */
function sameManifest(a: Manifest, b: Manifest): boolean {
  const key = (m: Manifest) =>
    JSON.stringify([
      m.feature,
      m.mode,
      m.files.map((f) => [f.path, f.sha256, f.mode, f.uid, f.gid, f.actions]),
    ]);
  return key(a) === key(b) &&
    a.files.every((f, i) => sameBody(f.nativeBody ?? null, b.files[i].nativeBody ?? null));
}

const MIN_BACKOFF_MS = 200;
const MAX_BACKOFF_MS = 30_000;

/** The long-running loop: triggers -> serialised passes. */
class PatcherLoop {
  #ctx: PatcherContext;
  #options: PatcherOptions;
  #wake: (() => void) | null = null;
  #triggers: string[] = [];
  #watchers = new Map<string, { watcher: Deno.FsWatcher; ino: number }>();
  #managed = new Set<string>();
  /** On-disk paths of the files the storm guard holds right now. */
  #held = new Set<string>();
  #periodic: ReturnType<typeof setTimeout> | undefined;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #debounce: ReturnType<typeof setTimeout> | undefined;
  #backoff = MIN_BACKOFF_MS;
  #stopped = false;
  #lastSummary = "";

  constructor(ctx: PatcherContext, options: PatcherOptions) {
    this.#ctx = ctx;
    this.#options = options;
  }

  #trigger(reason: string): void {
    this.#triggers.push(reason);
    this.#wake?.();
  }

  #schedulePeriodic(): void {
    clearTimeout(this.#periodic);
    const jitter = 0.9 + Math.random() * 0.2;
    this.#periodic = setTimeout(() => this.#trigger("periodic"), this.#options.intervalMs * jitter);
  }

  #managedReal(): Set<string> {
    const out = new Set<string>();
    for (const file of this.#ctx.manifest.files) {
      try {
        out.add(this.#ctx.paths.resolve(file.path).real);
      } catch { /* reported by the pass */ }
    }
    return out;
  }

  /**
   * Watches the directory of every managed file (or, while it is missing, its nearest existing
   * ancestor, to see it appear); re-arms a watcher whose directory was replaced (a new inode);
   * drops watchers no longer needed. Returns true when it armed one (an edit just before that was
   * not seen: the caller checks again).
   */
  #ensureWatchers(): boolean {
    let armed = false;
    this.#managed = this.#managedReal();
    const wanted = new Map<string, number>();
    for (const path of this.#managed) {
      let dir = dirname(path);
      while (true) {
        try {
          const info = Deno.statSync(dir);
          if (info.isDirectory) {
            wanted.set(dir, info.ino ?? 0);
            break;
          }
        } catch { /* missing: look further up */ }
        if (dir === this.#ctx.paths.hostRoot || dir === "/") break;
        dir = dirname(dir);
      }
    }
    for (const [dir, entry] of this.#watchers) {
      if (wanted.get(dir) !== entry.ino) {
        entry.watcher.close();
        this.#watchers.delete(dir);
      }
    }
    for (const [dir, ino] of wanted) {
      if (this.#watchers.has(dir)) continue;
      let watcher: Deno.FsWatcher;
      try {
        watcher = Deno.watchFs(dir, { recursive: false });
      } catch {
        continue; // gone again: the periodic check or the next pass covers it
      }
      this.#watchers.set(dir, { watcher, ino });
      armed = true;
      (async () => {
        try {
          for await (const event of watcher) {
            if (event.kind === "remove" && event.paths.includes(dir)) {
              // The watched directory itself is gone: this watcher is dead even if a new
              // directory appears under the same name (and maybe the same inode number).
              watcher.close();
              break;
            }
            if (event.paths.some((p) => this.#relevant(p))) this.#onFsEvent();
          }
        } catch { /* watcher closed or directory gone */ }
        // Ended on its own (its directory was removed): forget it and check again; that pass
        // re-arms a watcher on whatever is there now (an inode number may have been reused, so
        // the inode check alone cannot be trusted to notice).
        if (this.#watchers.get(dir)?.watcher === watcher) {
          this.#watchers.delete(dir);
          if (!this.#stopped) this.#trigger("watch-lost");
        }
      })();
    }
    return armed;
  }

  /**
   * A managed file, or a directory on the way to one (created, removed, renamed). A file the
   * storm guard holds does not count: its events would only spin the loop.
   */
  #relevant(path: string): boolean {
    if (this.#held.has(path)) return false;
    if (this.#managed.has(path)) return true;
    for (const managed of this.#managed) if (managed.startsWith(path + "/")) return true;
    return false;
  }

  #onFsEvent(): void {
    if (this.#debounce !== undefined) return;
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      this.#trigger("inotify");
    }, this.#options.debounceMs);
  }

  async #reloadManifest(): Promise<void> {
    try {
      const manifest = await loadManifest(this.#options.manifestPath, {
        maxSourceBytes: this.#options.maxSourceBytes,
        hashes: this.#ctx.hashes,
      });
      if (!sameManifest(manifest, this.#ctx.manifest)) {
        if (manifest.feature !== this.#ctx.manifest.feature) {
          throw new ManifestError(
            `manifest ${this.#options.manifestPath}: feature: changed from ` +
              `"${this.#ctx.manifest.feature}" to "${manifest.feature}" (restart the patcher instead)`,
          );
        }
        this.#ctx.manifest = manifest;
        this.#ctx.log.info("manifest reloaded", {
          mode: manifest.mode,
          files: manifest.files.length,
        });
      }
    } catch (error) {
      this.#ctx.log.error(`${(error as Error).message}; keeping the previous manifest`);
    }
  }

  async run(): Promise<void> {
    const signal = this.#options.signal;
    const onAbort = () => {
      this.#stopped = true;
      this.#wake?.();
    };
    signal?.addEventListener("abort", onAbort);
    this.#ensureWatchers();
    this.#trigger("start");
    this.#schedulePeriodic();
    try {
      while (!this.#stopped && !signal?.aborted) {
        if (this.#triggers.length === 0) {
          await new Promise<void>((resolve) => (this.#wake = resolve));
          this.#wake = null;
          continue;
        }
        const reasons = [...new Set(this.#triggers.splice(0))];
        this.#ctx.log.debug("pass", {
          trigger: reasons.join("+"),
          watching: [...this.#watchers.keys()].join(","),
        });
        if (reasons.includes("periodic")) {
          await this.#reloadManifest();
          this.#schedulePeriodic();
        }
        let result: PassResult;
        try {
          result = await reconcileOnce(this.#ctx);
        } catch (error) {
          // Not a per-file problem (e.g. the state directory is not writable): retry later.
          const message = `pass failed: ${(error as Error).message.split("\n")[0]}`;
          result = {
            feature: this.#ctx.manifest.feature,
            mode: this.#ctx.manifest.mode,
            dryRun: false,
            plan: [],
            changed: [],
            actionsRun: [],
            pending: [],
            held: [],
            errors: [message],
            converged: false,
          };
          this.#ctx.log.error(message);
        }
        this.#report(result, reasons.join("+"));
        this.#options.onPass?.(result, reasons.join("+"));
        if (this.#ensureWatchers()) this.#trigger("watch-armed");
        this.#held = new Set(
          result.held.flatMap((p) => {
            try {
              return [this.#ctx.paths.resolve(p).real];
            } catch {
              return [];
            }
          }),
        );
        clearTimeout(this.#retry);
        const release = this.#ctx.storm?.nextRelease() ?? null;
        if (result.errors.length > 0 || result.pending.length > 0) {
          this.#retry = setTimeout(() => this.#trigger("retry"), this.#backoff);
          this.#backoff = Math.min(this.#backoff * 2, MAX_BACKOFF_MS, this.#options.intervalMs);
        } else {
          this.#backoff = MIN_BACKOFF_MS;
          // Only held files left: the next pass is due when the first hold ends.
          if (release !== null) {
            this.#retry = setTimeout(
              () => this.#trigger("storm-release"),
              Math.max(0, release - Date.now()) + 5,
            );
          }
        }
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      clearTimeout(this.#periodic);
      clearTimeout(this.#retry);
      clearTimeout(this.#debounce);
      for (const { watcher } of this.#watchers.values()) watcher.close();
      this.#watchers.clear();
      this.#ctx.log.info("stopped");
    }
  }

  /** One log line per change of state, not per pass. */
  #report(result: PassResult, trigger: string): void {
    const summary = result.converged
      ? "converged"
      : `not converged: ${result.errors.length} error(s), ` +
        `${result.pending.length} action(s) owed` +
        (result.held.length ? `, ${result.held.length} file(s) held` : "");
    if (summary !== this.#lastSummary || result.changed.length > 0) {
      const fields = {
        trigger,
        changed: result.changed.length,
        retry_ms: result.converged ? undefined : this.#backoff,
      };
      if (result.converged) this.#ctx.log.info(summary, fields);
      else this.#ctx.log.warn(summary, fields);
      this.#lastSummary = summary;
    }
  }
}
