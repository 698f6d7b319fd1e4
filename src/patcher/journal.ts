// The action journal: the follow-up actions a change owes, written to the state directory BEFORE
// the host file is touched and cleared only after the actions succeeded, so a patcher killed at
// any point finds them on restart and runs them. One file per feature:
// `<state>/journal/<feature>.json` = `{"feature": ..., "pending": [...], "since": ...}`, written
// and read through the state directory's descriptor (src/host/state_dir.ts).
import { join } from "node:path";
import { type HeldLock, StateDir } from "../host/state_dir.ts";
import type { Action } from "./actions.ts";

interface JournalFile {
  feature: string;
  pending: Action[];
  since: string;
}

const SUB = "journal";
/** A journal is a short list of actions: anything larger is not ours. */
const MAX_JOURNAL_BYTES = 1024 * 1024;

/** The pending-action journal of one feature. */
export class Journal {
  readonly path: string;
  readonly feature: string;
  readonly #state: StateDir;
  readonly #name: string;

  constructor(stateDir: string, feature: string) {
    this.feature = feature;
    this.#state = new StateDir(stateDir);
    this.#name = `${feature}.json`;
    this.path = join(stateDir, SUB, this.#name);
  }

  /** The pending actions in order (empty when none). Throws when the journal is corrupt. */
  async pending(): Promise<Action[]> {
    try {
      const bytes = await this.#state.read(SUB, this.#name, MAX_JOURNAL_BYTES);
      if (bytes === null) return [];
      const parsed = JSON.parse(new TextDecoder().decode(bytes)) as JournalFile;
      if (!Array.isArray(parsed.pending)) throw new Error("no pending list");
      return parsed.pending;
    } catch (error) {
      throw new Error(`journal ${this.path} is unreadable: ${(error as Error).message}`);
    }
  }

  /** Takes the feature's exclusive pass lock (`<state>/journal/<feature>.lock`); close to release. */
  async lock(): Promise<HeldLock> {
    return await this.#state.lock(SUB, `${this.feature}.lock`);
  }

  /** Removes the journal temp files a killed writer of this feature left; returns how many. */
  async sweepTemps(): Promise<number> {
    return await this.#state.sweepTemps(SUB, (name) => name.startsWith(`.${this.#name}.ks-tmp-`));
  }

  /** Durably records `pending` (an empty list clears the journal). */
  async set(pending: Action[]): Promise<void> {
    if (pending.length === 0) {
      // No directory fsync: if a power loss brings the journal back, its actions run again.
      await this.#state.remove(SUB, this.#name);
      return;
    }
    const body: JournalFile = { feature: this.feature, pending, since: new Date().toISOString() };
    await this.#state.write(SUB, this.#name, new TextEncoder().encode(JSON.stringify(body) + "\n"));
  }
}
