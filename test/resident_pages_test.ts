// The resident tools' drop of their start-up file pages (src/resident_pages.ts): which mappings
// qualify, read from smaps text shaped like a real Deno process's, and the drop itself run on this
// test process (its own Deno binary), whose RSS must fall and whose code must keep running.
import assert from "node:assert/strict";
import { cleanFileMappings, dropCleanFileMappings } from "../src/resident_pages.ts";

const EXE = "/opt/kubesonic/bin/deno";

function mapping(range: string, perms: string, path: string, rss: number, anon: number): string {
  return [
    `${range} ${perms} 00000000 fd:01 1234                       ${path}`,
    `Size:               ${rss * 2} kB`,
    `Rss:                ${rss} kB`,
    `Pss:                ${rss} kB`,
    `Anonymous:          ${anon} kB`,
    `VmFlags: rd mr mw me`,
  ].join("\n");
}

Deno.test("only clean read-only or executable mappings of Deno and its libraries qualify", () => {
  const smaps = [
    mapping("55a91f000000-55a91f532000", "r--p", EXE, 2000, 0),
    mapping("55a91f532000-55a9210c0000", "r-xp", EXE, 15000, 0),
    mapping("55a9210c0000-55a921336000", "r--p", EXE, 900, 900), // RELRO: relocated, private
    mapping("55a921336000-55a92502a000", "rw-p", EXE, 2600, 2600), // data
    mapping("7f0000000000-7f0000200000", "r-xp", "/usr/lib/x86_64-linux-gnu/libc.so.6", 1100, 0),
    mapping("7f0000200000-7f0000300000", "r--s", "/tmp/cache/dep_analysis_cache_v2-shm", 32, 0),
    mapping("7f0000300000-7f0000400000", "r--p", "/tmp/cache/dep_analysis_cache_v2", 28, 0),
    mapping("7f0000400000-7f0000500000", "rw-p", "", 5000, 5000), // heap-like anonymous
    mapping("7ffd00000000-7ffd00002000", "r-xp", "[vdso]", 8, 0),
  ].join("\n");
  const got = cleanFileMappings(smaps, EXE);
  assert.deepEqual(
    got.map((m) => [m.start.toString(16), m.end.toString(16), m.path, m.rssKib]),
    [
      ["55a91f000000", "55a91f532000", EXE, 2000],
      ["55a91f532000", "55a9210c0000", EXE, 15000],
      ["7f0000000000", "7f0000200000", "/usr/lib/x86_64-linux-gnu/libc.so.6", 1100],
    ],
  );
  // A mapping whose Anonymous line is missing (an unexpected format) is not trusted.
  const noAnon = `55a91f000000-55a91f532000 r--p 00000000 fd:01 1 ${EXE}\nRss: 10 kB\n`;
  assert.deepEqual(cleanFileMappings(noAnon, EXE), []);
});

Deno.test("dropping this process's clean file mappings lowers its RSS and it keeps running", async () => {
  const rss = () => {
    const m = /^Rss:\s+(\d+) kB/m.exec(Deno.readTextFileSync("/proc/self/smaps_rollup"));
    return Number(m![1]);
  };
  const before = rss();
  const r = await dropCleanFileMappings();
  assert.ok(!(r instanceof Error), String(r));
  assert.ok(r.mappings >= 2, `dropped ${r.mappings} mappings`);
  const after = rss();
  assert.ok(after < before - 4096, `RSS ${before} -> ${after} KiB after dropping ${r.droppedKib}`);
  // What the process runs afterwards faults back in: code, timers, I/O and a subprocess.
  await new Promise((resolve) => setTimeout(resolve, 10));
  const out = await new Deno.Command(Deno.execPath(), { args: ["--version"] }).output();
  assert.ok(out.success);
  assert.match(new TextDecoder().decode(out.stdout), /^deno \d/);
  assert.equal(JSON.parse(JSON.stringify({ a: [1, 2] })).a[1], 2);
});
