// The action journal: the follow-up actions a change owes, written to the state directory BEFORE
// the host file is touched and cleared only after the actions succeeded, so a patcher killed at
// any point finds them on restart and runs them. One file per feature:
// `<state>/journal/<feature>.json` = `{"feature": ..., "pending": [...], "since": ...}`.
import { join } from "node:path";
import { stateFileMeta, writeFileAtomic } from "../host/files.ts";
import type { Action } from "./actions.ts";

interface JournalFile {
  feature: string;
  pending: Action[];
  since: string;
}

/** The pending-action journal of one feature. */
export class Journal {
  readonly path: string;
  readonly feature: string;

  constructor(stateDir: string, feature: string) {
    this.feature = feature;
    this.path = join(stateDir, "journal", `${feature}.json`);
  }

  /** The pending actions in order (empty when none). Throws when the journal is corrupt. */
  async pending(): Promise<Action[]> {
    try {
      const parsed = JSON.parse(await Deno.readTextFile(this.path)) as JournalFile;
      if (!Array.isArray(parsed.pending)) throw new Error("no pending list");
      return parsed.pending;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return [];
      throw new Error(`journal ${this.path} is unreadable: ${(error as Error).message}`);
    }
  }

  /** Takes the feature's exclusive pass lock (`<state>/journal/<feature>.lock`); close to release. */
  async lock(): Promise<Deno.FsFile> {
    await Deno.mkdir(join(this.path, ".."), { recursive: true, mode: 0o700 });
    const file = await Deno.open(this.path.replace(/\.json$/, ".lock"), {
      create: true,
      write: true,
      mode: 0o600,
    });
    try {
      await file.lock(true);
    } catch (error) {
      file.close();
      throw error;
    }
    return file;
  }

  /** Durably records `pending` (an empty list clears the journal). */
  async set(pending: Action[]): Promise<void> {
    if (pending.length === 0) {
      // No directory fsync: if a power loss brings the journal back, its actions run again.
      await Deno.remove(this.path).catch((error) => {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      });
      return;
    }
    await Deno.mkdir(join(this.path, ".."), { recursive: true, mode: 0o700 });
    const body: JournalFile = { feature: this.feature, pending, since: new Date().toISOString() };
    await writeFileAtomic(
      this.path,
      new TextEncoder().encode(JSON.stringify(body) + "\n"),
      stateFileMeta(),
    );
  }
}
