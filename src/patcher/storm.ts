// The storm guard: a managed file that does not stay converged (something else keeps rewriting
// it, or a write does not stick) would otherwise be rewritten, and its actions (restarts) rerun,
// on every pass the loop's own file events trigger. After `passes` consecutive passes that each
// had to change it, the file is held for one interval: no write and no action for it meanwhile,
// and its file events do not trigger passes. When the hold ends it is repaired once (its actions
// run once); if it is changed again straight away, it is held again. So its actions run at most
// once per interval and it is reported once per interval, while the other files keep being
// reconciled as usual.

/** Default: a file changed by this many consecutive passes is storming. */
export const STORM_PASSES = 3;

interface FileStorm {
  streak: number;
  heldUntil: number;
  reportedAt: number;
}

/** Per-file storm state across the passes of one loop. */
export class StormGuard {
  readonly passes: number;
  readonly intervalMs: number;
  readonly #now: () => number;
  #files = new Map<string, FileStorm>();

  constructor(intervalMs: number, options: { passes?: number; now?: () => number } = {}) {
    this.intervalMs = intervalMs;
    this.passes = options.passes ?? STORM_PASSES;
    this.#now = options.now ?? Date.now;
  }

  #get(path: string): FileStorm {
    let s = this.#files.get(path);
    if (!s) this.#files.set(path, s = { streak: 0, heldUntil: 0, reportedAt: -Infinity });
    return s;
  }

  /** Milliseconds `path` stays held (0 when it may be changed now). */
  heldFor(path: string): number {
    const s = this.#files.get(path);
    return s ? Math.max(0, s.heldUntil - this.#now()) : 0;
  }

  /** The earliest time (ms epoch) a hold ends, or null when nothing is held. */
  nextRelease(): number | null {
    let next: number | null = null;
    for (const s of this.#files.values()) {
      if (s.heldUntil > this.#now() && (next === null || s.heldUntil < next)) next = s.heldUntil;
    }
    return next;
  }

  /** A pass found `path` as desired: its streak ends. */
  stable(path: string): void {
    const s = this.#files.get(path);
    if (s) {
      s.streak = 0;
      s.heldUntil = 0;
    }
  }

  /**
   * A pass changed `path`. Returns true when this makes it storming (it is now held for one
   * interval) and it was not reported within the last interval: the caller reports it.
   */
  changed(path: string): boolean {
    const s = this.#get(path);
    s.streak++;
    if (s.streak < this.passes) return false;
    const now = this.#now();
    s.heldUntil = now + this.intervalMs;
    if (now - s.reportedAt < this.intervalMs) return false;
    s.reportedAt = now;
    return true;
  }
}
