// SHA-256 of file contents, the patcher's only notion of "same file": one-shot for bytes in
// memory, incremental for files streamed in chunks.
import { createHash, type Hash } from "node:crypto";

/** Returns the lowercase hex SHA-256 of `bytes`. */
export function sha256Hex(bytes: Uint8Array): Promise<string> {
  return Promise.resolve(Sha256.of(bytes));
}

/** An incremental SHA-256 (update with chunks, then hex()). */
export class Sha256 {
  #hash: Hash = createHash("sha256");

  /** The lowercase hex SHA-256 of `bytes`. */
  static of(bytes: Uint8Array): string {
    return new Sha256().update(bytes).hex();
  }

  /** Adds `bytes`; returns this. */
  update(bytes: Uint8Array): this {
    this.#hash.update(bytes);
    return this;
  }

  /** The digest of everything added so far (call once). */
  hex(): string {
    return this.#hash.digest("hex");
  }
}

/** Whether two byte arrays hold the same bytes. */
export function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
