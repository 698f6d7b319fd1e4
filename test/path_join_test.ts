import assert from "node:assert/strict";
import { join } from "node:path";
import { joinPath } from "../src/path_join.ts";

Deno.test("joinPath gives node:path's join for cgroup-style and odd inputs", () => {
  const cases: string[][] = [
    ["/sys/fs/cgroup", "memory", "/docker/abc"],
    ["/sys/fs/cgroup", "/../../kubepods/pod1/c1"],
    ["/proc", "123", "cgroup"],
    ["kubepods", "burstable", "pod1"],
    ["/usr/share/sonic/device", "x86_64-kvm", "asic.conf"],
    ["a", "..", "..", "b"],
    ["/", ".."],
    ["", ""],
    ["a/", "b/"],
    ["./a", ".", "b//c"],
    ["/a/b", "../../../c"],
    [".."],
    ["a", ""],
  ];
  for (const c of cases) assert.equal(joinPath(...c), join(...c), JSON.stringify(c));
});
