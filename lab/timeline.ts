// The lab's readable timeline: each step printed as it finishes with its time since the lab
// started, whether it converged, and its measured latency; a summary at the end.

/** One recorded step. */
export interface TimelineStep {
  scenario: string;
  name: string;
  ok: boolean;
  /** Milliseconds since the lab started, when the step finished. */
  at: number;
  /** How long the step took (ms). */
  took: number;
  detail?: string;
}

/** Collects and prints the steps of a lab run. */
export class Timeline {
  readonly steps: TimelineStep[] = [];
  #start = performance.now();
  #scenario = "";

  /** Starts a scenario heading (e.g. "5.1 enabled feature"). */
  scenario(title: string): void {
    this.#scenario = title;
    console.log(`\n== ${title}`);
  }

  /** A narration line (no pass/fail). */
  note(text: string): void {
    console.log(`   ${this.#clock()}    ${text}`);
  }

  /**
   * Runs `fn` as a step: its return value (a string) is the detail shown; a thrown error marks the
   * step failed (the lab goes on with the next scenario). Returns true when the step passed.
   */
  async step(name: string, fn: () => Promise<string | void> | string | void): Promise<boolean> {
    const t0 = performance.now();
    let ok = true;
    let detail: string | undefined;
    try {
      detail = (await fn()) ?? undefined;
    } catch (error) {
      ok = false;
      detail = error instanceof Error ? error.message.split("\n")[0] : String(error);
    }
    const took = performance.now() - t0;
    const step: TimelineStep = {
      scenario: this.#scenario,
      name,
      ok,
      at: performance.now() - this.#start,
      took,
      detail,
    };
    this.steps.push(step);
    const mark = ok ? "ok  " : "FAIL";
    console.log(
      `   ${this.#clock()} ${mark} ${name}${detail ? ` — ${detail}` : ""} (${formatMs(took)})`,
    );
    return ok;
  }

  /** Prints the summary and returns true when every step passed. */
  summary(): boolean {
    const failed = this.steps.filter((s) => !s.ok);
    console.log(
      `\nlab: ${this.steps.length - failed.length} of ${this.steps.length} steps converged` +
        ` in ${formatMs(performance.now() - this.#start)}`,
    );
    for (const f of failed) console.log(`lab: FAILED ${f.scenario}: ${f.name}: ${f.detail ?? ""}`);
    return failed.length === 0 && this.steps.length > 0;
  }

  #clock(): string {
    return `+${((performance.now() - this.#start) / 1000).toFixed(3).padStart(7)}s`;
  }
}

/** Formats milliseconds for humans: `0.8 ms`, `42 ms`, `1.25 s`. */
export function formatMs(ms: number): string {
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}
