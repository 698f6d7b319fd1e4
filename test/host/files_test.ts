// Descriptor-relative writes: once HostPaths.open() has checked a file's directory, the write,
// the mode fix, the removal and the temp sweep go through that directory's descriptor, so a
// directory swapped for a symlink afterwards cannot redirect any of them.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  bytesBody,
  readFileStateAt,
  removeFileAt,
  setFileMetaAt,
  sweepTempsAt,
  writeFileAtomicAt,
} from "../../src/host/files.ts";
import { HostPaths } from "../../src/host/paths.ts";

async function layout(): Promise<{ base: string; root: string; outside: string }> {
  const base = await Deno.makeTempDir({ prefix: "ks-files-test-" });
  const root = join(base, "host");
  const outside = join(base, "outside");
  await Deno.mkdir(join(root, "usr/local/bin/sub"), { recursive: true });
  await Deno.mkdir(outside);
  await Deno.writeTextFile(join(root, "usr/local/bin/sub/tool"), "original\n");
  await Deno.writeTextFile(join(outside, "tool"), "outside\n");
  await Deno.writeTextFile(join(outside, ".tool.ks-tmp-telemetry.1"), "not ours to delete\n");
  return { base, root, outside };
}

Deno.test("a directory swapped for a symlink after the check cannot redirect the write, chmod, sweep or removal", async () => {
  const { base, root, outside } = await layout();
  try {
    const paths = new HostPaths({ hostRoot: root, allowRoots: ["/usr/local/bin"] });
    const where = paths.open("/usr/local/bin/sub/tool");
    try {
      // The race: the checked directory moves away and a symlink to outside takes its name.
      await Deno.rename(join(root, "usr/local/bin/sub"), join(root, "usr/local/bin/moved"));
      await Deno.symlink(outside, join(root, "usr/local/bin/sub"));
      assert.equal(sweepTempsAt(where.dirFd, where.base, "telemetry"), 0);
      await writeFileAtomicAt(
        where.dirFd!,
        where.base,
        bytesBody(new TextEncoder().encode("new\n")),
        {
          mode: 0o700,
          uid: Deno.uid() ?? 0,
          gid: Deno.gid() ?? 0,
        },
      );
      setFileMetaAt(where.dirFd!, where.base, { mode: 0o640, uid: Deno.uid()!, gid: Deno.gid()! });
      const state = await readFileStateAt(where.dirFd, where.base);
      assert.equal(new TextDecoder().decode(state.content!), "new\n");
      assert.equal(state.mode, 0o640);
      assert.equal(Deno.readTextFileSync(join(root, "usr/local/bin/moved/tool")), "new\n");
      await removeFileAt(where.dirFd, where.base);
      assert.throws(() => Deno.statSync(join(root, "usr/local/bin/moved/tool")));
    } finally {
      where.close();
    }
    assert.equal(Deno.readTextFileSync(join(outside, "tool")), "outside\n");
    assert.equal((Deno.statSync(join(outside, "tool")).mode ?? 0) & 0o777, 0o644);
    assert.ok(Deno.statSync(join(outside, ".tool.ks-tmp-telemetry.1")).isFile);
    // A fresh resolution sees the symlink and refuses (it leads out of the host root's view).
    assert.throws(() => paths.open("/usr/local/bin/sub/tool"));
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("a FIFO in place of the managed file is refused without blocking on it", async () => {
  const { base, root } = await layout();
  try {
    const paths = new HostPaths({ hostRoot: root, allowRoots: ["/usr/local/bin"] });
    const where = paths.open("/usr/local/bin/sub/tool");
    try {
      await Deno.remove(join(root, "usr/local/bin/sub/tool"));
      const fifo = await new Deno.Command("mkfifo", {
        args: [join(root, "usr/local/bin/sub/tool")],
      })
        .output();
      assert.ok(fifo.success);
      await assert.rejects(readFileStateAt(where.dirFd, where.base), /fifo, not a regular file/);
      assert.throws(
        () => setFileMetaAt(where.dirFd!, where.base, { mode: 0o600, uid: 0, gid: 0 }),
        /fifo/,
      );
    } finally {
      where.close();
    }
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});
