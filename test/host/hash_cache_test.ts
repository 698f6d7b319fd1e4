// The remembered hashes of large files: a file is not read again only while the kernel's view of
// it (identity, size, mtime and ctime) is the one its hash was taken with, and never when it was
// changed too recently before the read to be told apart. Real files and real stat calls.
import assert from "node:assert/strict";
import { join } from "node:path";
import { AT_FDCWD, closeFd, O_DIRECTORY, O_RDONLY, openAt, statFd } from "../../src/host/fd.ts";
import { IN_MEMORY_MAX, openRegular, readBody, readFileStateAt } from "../../src/host/files.ts";
import { HashCache } from "../../src/host/hash_cache.ts";
import { Sha256 } from "../../src/patcher/hash.ts";

/** Larger than what is held in memory, so it is streamed and its hash may be remembered. */
const LARGE = IN_MEMORY_MAX * 3 + 17;

const filled = (size: number, byte: number) => new Uint8Array(size).fill(byte);

async function touch(args: string[]): Promise<void> {
  const out = await new Deno.Command("touch", { args, stderr: "inherit" }).output();
  assert.ok(out.success, `touch ${args.join(" ")}`);
}

/** mtime to the nanosecond, as coreutils' stat prints it. */
async function statMtime(path: string): Promise<string> {
  const out = await new Deno.Command("stat", { args: ["-c", "%.9Y", path] }).output();
  assert.ok(out.success);
  return new TextDecoder().decode(out.stdout).trim();
}

async function withDir(fn: (dir: string, dirFd: number) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ks-hash-cache-test-" });
  const dirFd = openAt(AT_FDCWD, dir, O_RDONLY | O_DIRECTORY);
  try {
    await fn(dir, dirFd);
  } finally {
    closeFd(dirFd);
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("an unchanged large file is answered from the cache; rewritten in place with its mtime put back, it is read again", () =>
  withDir(async (dir, dirFd) => {
    const path = join(dir, "deno");
    await Deno.writeFile(path, filled(LARGE, 1));
    const hashes = new HashCache({ racyMs: 0 });
    const first = await readFileStateAt(dirFd, "deno", hashes);
    assert.equal(first.body!.sha256, Sha256.of(filled(LARGE, 1)));
    assert.equal(first.content, null, "a large file is streamed, not held");
    assert.equal(hashes.hits, 0);
    const again = await readFileStateAt(dirFd, "deno", hashes);
    assert.equal(again.body!.sha256, first.body!.sha256);
    assert.equal(hashes.hits, 1, "the second read of the unchanged file came from the cache");

    // Same inode, same size, the same mtime to the nanosecond (touch -r), other bytes: only
    // ctime tells.
    const times = join(dir, "times");
    await touch(["-r", path, times]);
    const file = await Deno.open(path, { write: true });
    await file.write(filled(4096, 2));
    file.close();
    await touch(["-r", times, path]);
    assert.equal(await statMtime(path), await statMtime(times));
    const changed = await readFileStateAt(dirFd, "deno", hashes);
    const want = filled(LARGE, 1);
    want.fill(2, 0, 4096);
    assert.equal(changed.body!.sha256, Sha256.of(want), "the rewritten bytes were read");
    assert.equal(hashes.hits, 1);
  }));

Deno.test("a file changed within the racy window before its read is not remembered", () =>
  withDir(async (dir, dirFd) => {
    await Deno.writeFile(join(dir, "fresh"), filled(LARGE, 3));
    const hashes = new HashCache(); // the shipped window: the file was written just now
    await readFileStateAt(dirFd, "fresh", hashes);
    await readFileStateAt(dirFd, "fresh", hashes);
    assert.equal(hashes.hits, 0, "both reads hashed the file");
  }));

Deno.test("a small file is always read; a file that changed during its read is not remembered", () =>
  withDir(async (dir, dirFd) => {
    await Deno.writeFile(join(dir, "small"), filled(100, 4));
    const hashes = new HashCache({ racyMs: 0 });
    const a = await readFileStateAt(dirFd, "small", hashes);
    const b = await readFileStateAt(dirFd, "small", hashes);
    assert.deepEqual(b.content, a.content);
    assert.equal(hashes.hits, 0, "small files are held, so hashing them again is the read itself");

    await Deno.writeFile(join(dir, "moving"), filled(LARGE, 5));
    const fd = openRegular(dirFd, "moving");
    try {
      const before = statFd(fd);
      await Deno.writeFile(join(dir, "moving"), filled(LARGE, 6)); // same inode, truncated + rewritten
      const after = statFd(fd);
      hashes.record(before, after, Date.now(), "0".repeat(64));
      assert.equal(hashes.lookup(after), null);
      assert.equal(hashes.lookup(before), null);
    } finally {
      closeFd(fd);
    }
  }));

Deno.test("a cached size still meets the read's limit", () =>
  withDir(async (dir, dirFd) => {
    await Deno.writeFile(join(dir, "big"), filled(LARGE, 7));
    const hashes = new HashCache({ racyMs: 0 });
    await readFileStateAt(dirFd, "big", hashes);
    const fd = openRegular(dirFd, "big");
    try {
      await assert.rejects(
        readBody(fd, { hashes, limit: LARGE - 1, what: "big" }),
        /big is larger than/,
      );
    } finally {
      closeFd(fd);
    }
  }));
