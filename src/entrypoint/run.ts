// ks-entrypoint's gate and PID 1 duties: follow FEATURE|<feature> state through the CONFIG_DB
// subscription (src/sonic/feature_watch.ts), stay idle while it is off (one log line per change),
// and start the daemon the moment it is on — by exec (same PID; the default) or as a supervised
// child (spawn mode: signals forwarded, zombies reaped, the daemon's exit code returned, and the
// daemon stopped again when FEATURE goes back to off). SIGTERM/SIGINT while idle exit 0 at once.
import type { Logger } from "../log.ts";
import { UsageError } from "../cli.ts";
import { DbConfigError, type DbLocation, resolveRedisTarget } from "../sonic/db_config.ts";
import type { RedisTarget } from "../sonic/db_config.ts";
import { describeFeatureState, type FeatureState } from "../sonic/feature_state.ts";
import { type FeatureWatch, watchFeature } from "../sonic/feature_watch.ts";
import {
  describeErrno,
  disarmInspectorSignal,
  exitCodeOf,
  type ExitInfo,
  openLibc,
  SpawnError,
  startFailureExitCode,
} from "./libc.ts";
import { type Daemon, signalName, startDaemon } from "./supervise.ts";
import { startResidentTrim } from "../resident_pages.ts";

/** How the daemon is started once FEATURE is on. */
export type EntrypointMode = "exec" | "spawn";

/** Everything ks-entrypoint needs; built by bin/ks-entrypoint.ts from flags and environment. */
export interface EntrypointOptions {
  feature: string;
  /** Where CONFIG_DB is described (paths, namespace). */
  location: DbLocation;
  /** The daemon's argv (argv[0] is looked up on PATH). */
  command: string[];
  mode: EntrypointMode;
  log: Logger;
  /** Periodic FEATURE re-read (ms), for lost notifications. */
  resyncMs: number;
  /** Spawn mode: how long the daemon gets after SIGTERM (on disable) before SIGKILL (ms). */
  stopTimeoutMs: number;
  /** Log a "still waiting for CONFIG_DB" line when no state was read after this long (ms). */
  waitNoticeMs?: number;
}

// Not SIGUSR1: Deno turns it into a V8 inspector (see disarmInspectorSignal), so it is ignored.
const FORWARDED: Deno.Signal[] = ["SIGTERM", "SIGINT", "SIGHUP", "SIGUSR2"];
const STOPPING: ReadonlySet<Deno.Signal> = new Set(["SIGTERM", "SIGINT"]);

/** A tiny "something changed" broadcaster the gate loop waits on. */
class Wakeup {
  #waiters: (() => void)[] = [];
  wait(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
  notify(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Runs the entrypoint until it should exit and returns the exit code: 0 after SIGTERM/SIGINT
 * while idle, the daemon's code (128+signal when killed) in spawn mode, 127/126 when the command
 * cannot be started. In exec mode it does not return once the daemon starts (the process image is
 * replaced). Throws UsageError for a database config that is present but wrong.
 */
export async function runEntrypoint(opts: EntrypointOptions): Promise<number> {
  const { log, feature } = opts;
  const wake = new Wakeup();
  let stopSignal: Deno.Signal | undefined;
  let daemon: Daemon | undefined;
  let daemonStopping = false;

  const onSignal = (signal: Deno.Signal) => {
    if (daemon) {
      log.info(`${signal} forwarded to the daemon`, { pid: daemon.pid });
      daemon.kill(signal);
      if (STOPPING.has(signal)) daemonStopping = true;
      return;
    }
    if (STOPPING.has(signal)) {
      if (!stopSignal) log.info(`${signal} while idle: exiting`);
      stopSignal = signal;
      wake.notify();
    } else {
      log.info(`${signal} while idle: ignored`);
    }
  };
  const listeners = FORWARDED.map((s) => {
    const fn = () => onSignal(s);
    Deno.addSignalListener(s, fn);
    return [s, fn] as const;
  });
  const removeListeners = () => {
    for (const [s, fn] of listeners) Deno.removeSignalListener(s, fn);
  };

  // Open libc now, while idle, so the exec itself costs no dlopen when FEATURE turns on.
  openLibc();
  disarmInspectorSignal();
  try {
    const target = await resolveTarget(opts, () => stopSignal !== undefined, wake);
    if (!target) return 0;

    const watch = watchFeature({
      target,
      feature,
      log,
      resyncMs: opts.resyncMs,
      onChange: (state, previous) => {
        logChange(log, state, previous, daemon !== undefined);
        wake.notify();
      },
    });
    // Resident while FEATURE is off (or supervising): let go of the start-up's file pages.
    const stopTrim = startResidentTrim(log);
    const notice = setTimeout(() => {
      if (!watch.current) {
        log.warn("CONFIG_DB not reachable yet; waiting (the daemon starts once FEATURE is on)", {
          key: `FEATURE|${feature}`,
        });
      }
    }, opts.waitNoticeMs ?? 1000);

    try {
      while (true) {
        // Idle: wait for FEATURE on, or a stop signal.
        while (!watch.current?.on && !stopSignal) await wake.wait();
        if (stopSignal) return 0;

        if (opts.mode === "exec") {
          const libc = openLibc();
          if (!(libc instanceof Error)) {
            // No watch.close() first: the redis sockets are close-on-exec (Deno opens every fd
            // with O_CLOEXEC), and closing them would only delay the daemon.
            clearTimeout(notice);
            stopTrim();
            log.info("exec daemon", { command: opts.command.join(" "), pid: Deno.pid });
            const errno = libc.execvp(opts.command);
            log.error(`cannot exec ${opts.command[0]}: ${describeErrno(errno)}`);
            return startFailureExitCode(errno);
          }
          log.warn("cannot exec (falling back to spawn mode)", { reason: libc.message });
          opts = { ...opts, mode: "spawn" };
        }

        const outcome = await superviseOnce(opts, watch, wake, {
          set: (d) => (daemon = d),
          stopping: () => daemonStopping,
        });
        daemon = undefined;
        if (outcome.exit !== undefined) return outcome.exit;
        // Stopped because FEATURE went off: back to idle.
        daemonStopping = false;
      }
    } finally {
      clearTimeout(notice);
      stopTrim();
      await watch.close();
    }
  } finally {
    removeListeners();
  }
}

/** Resolves CONFIG_DB's location, waiting (and saying so once) while the config file is absent. */
async function resolveTarget(
  opts: EntrypointOptions,
  stopped: () => boolean,
  wake: Wakeup,
): Promise<RedisTarget | undefined> {
  let said = false;
  while (!stopped()) {
    try {
      return resolveRedisTarget(opts.location);
    } catch (error) {
      if (!(error instanceof DbConfigError)) throw error;
      if (!/\(not found\)/.test(error.message)) throw new UsageError(error.message);
      if (!said) {
        opts.log.warn("database config not there yet; waiting", { reason: error.message });
        said = true;
      }
      await Promise.race([sleep(1000), wake.wait()]);
    }
  }
  return undefined;
}

function logChange(
  log: Logger,
  state: FeatureState,
  previous: FeatureState | undefined,
  running: boolean,
): void {
  const label = describeFeatureState(state);
  if (previous && previous.on === state.on) {
    log.info("FEATURE state changed", { state: label });
  } else if (state.on) {
    log.info("FEATURE is on: starting the daemon", { state: label });
  } else if (running) {
    log.info("FEATURE is off: stopping the daemon", { state: label });
  } else {
    log.info("FEATURE is off: idle until it is enabled", { state: label });
  }
}

interface SuperviseOutcome {
  /** Set when the entrypoint should exit with this code; unset = go back to idle. */
  exit?: number;
}

/** Spawn mode: runs the daemon until it exits (-> exit code) or FEATURE goes off (-> stop, idle). */
async function superviseOnce(
  opts: EntrypointOptions,
  watch: FeatureWatch,
  wake: Wakeup,
  hooks: { set(d: Daemon): void; stopping(): boolean },
): Promise<SuperviseOutcome> {
  const { log } = opts;
  let daemon: Daemon;
  try {
    daemon = startDaemon(opts.command, {
      onOrphanReaped: (pid, info) => log.debug("reaped orphan", { pid, code: exitCodeOf(info) }),
    });
  } catch (error) {
    if (!(error instanceof SpawnError)) throw error;
    log.error(`cannot start ${error.command}: ${describeErrno(error.errno)}`);
    return { exit: startFailureExitCode(error.errno) };
  }
  hooks.set(daemon);
  log.info("daemon started", {
    command: opts.command.join(" "),
    pid: daemon.pid,
    reaps_orphans: daemon.reapsOrphans,
  });

  let ended: ExitInfo | undefined;
  const exited = daemon.exited.then((info) => {
    ended = info;
    wake.notify();
    return info;
  });
  while (!ended && (watch.current?.on ?? true)) await wake.wait();

  if (ended) {
    const code = exitCodeOf(ended);
    log.info("daemon exited", describeExit(ended, code));
    return { exit: code };
  }
  if (hooks.stopping()) {
    // A forwarded SIGTERM is already on its way; the daemon's own exit decides.
    const info = await exited;
    const code = exitCodeOf(info);
    log.info("daemon exited", describeExit(info, code));
    return { exit: code };
  }
  daemon.kill("SIGTERM");
  const timer = setTimeout(() => {
    log.warn("daemon did not stop in time: SIGKILL", { pid: daemon.pid });
    daemon.kill("SIGKILL");
  }, opts.stopTimeoutMs);
  const info = await exited;
  clearTimeout(timer);
  log.info("daemon stopped; idle until FEATURE is on again", describeExit(info, exitCodeOf(info)));
  if (hooks.stopping()) return { exit: exitCodeOf(info) };
  return {};
}

function describeExit(info: ExitInfo, code: number): Record<string, string | number> {
  return info.signal !== null ? { signal: signalName(info.signal), code } : { code };
}
