// The SHA-256 of large files this process has already read, so that a periodic pass does not read
// and hash them again while the kernel says they have not changed. The sidecar's loop checks the
// host runtime (Deno, ~95 MB, and the tree's bundle) and re-reads its sources every interval:
// without this, ~200 MB are read and hashed a pass (~0.4 s of CPU) for files that never change.
//
// An entry is keyed by what a write cannot leave as it was: the file's identity (device, inode),
// its size, and its mtime and ctime to the nanosecond. A write, a truncate, a chmod or a rename
// over the name moves ctime, which no system call sets back. One gap remains, the same as git's
// "racily clean" index entries: a file written in the same clock tick as it was read could keep
// the ctime the read saw. So an entry is recorded only for a file whose ctime is RACY_MS older
// than the start of the read that hashed it; a file changed more recently is hashed again on
// every pass until it has been quiet that long. The descriptor is stat'ed again after the read,
// and nothing is recorded when anything moved meanwhile.
import type { Stat } from "./fd.ts";

/** How long a file must have been unchanged before the read for its hash to be remembered. */
export const RACY_MS = 2_000;

/** At most this many files are remembered (then the cache starts over; a pass re-reads). */
const MAX_ENTRIES = 4096;

/** Remembered hashes of files (by identity, size and times), for one process. */
export class HashCache {
  #entries = new Map<string, { key: string; sha256: string }>();
  #hits = 0;
  #racyMs: number;

  /** `racyMs`: how long a file must have been unchanged before a read (tests shorten it). */
  constructor(options: { racyMs?: number } = {}) {
    this.#racyMs = options.racyMs ?? RACY_MS;
  }

  /** The SHA-256 recorded for the file `stat` describes, or null (never read, or changed). */
  lookup(stat: Stat): string | null {
    const entry = this.#entries.get(stat.id);
    if (entry === undefined || entry.key !== keyOf(stat)) return null;
    this.#hits++;
    return entry.sha256;
  }

  /**
   * Records `sha256` for the file read between `before` (fstat before the read, taken at
   * `readStartMs`) and `after` (fstat after it), unless it changed during the read or too
   * recently before it.
   */
  record(before: Stat, after: Stat, readStartMs: number, sha256: string): void {
    const key = keyOf(before);
    if (before.id !== after.id || key !== keyOf(after)) return;
    if (before.ctimeMs > readStartMs - this.#racyMs) {
      this.#entries.delete(before.id);
      return;
    }
    if (this.#entries.size >= MAX_ENTRIES && !this.#entries.has(before.id)) this.#entries.clear();
    this.#entries.set(before.id, { key, sha256 });
  }

  /** How many lookups were answered from the cache (for tests and the debug log). */
  get hits(): number {
    return this.#hits;
  }
}

function keyOf(stat: Stat): string {
  return `${stat.size}/${stat.times}`;
}
