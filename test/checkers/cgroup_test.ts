// Cgroup readers on fixture trees laid out like a cgroup v2 host (SONiC's current images) and
// like the systemd driver's slices: this host is cgroup v1 (hybrid) without systemd, so those
// layouts cannot be produced for real here (the v1 cgroupfs layouts are exercised for real in
// memory_check_test.ts). The file contents are the kernel's formats.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  cgroupCandidates,
  CgroupGoneError,
  cgroupOfPid,
  findCgroupByHints,
  readMemoryUsage,
} from "../../src/checkers/cgroup.ts";

const ID = "0123456789abcdef".repeat(4);
const UID = "6f1c2f4e-1b2a-4c3d-9e8f-0a1b2c3d4e5f";

const V2_STAT = `anon 52428800
file 20971520
kernel 1048576
shmem 0
inactive_anon 0
active_anon 52428800
inactive_file 15728640
active_file 5242880
`;
const V1_STAT = `cache 20971520
rss 52428800
inactive_file 1
active_file 2
total_cache 20971520
total_rss 52428800
total_inactive_file 15728640
total_active_file 5242880
`;

async function tree(files: Record<string, string>): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "ks-cgroup-" });
  for (const [path, content] of Object.entries(files)) {
    await Deno.mkdir(join(root, path, ".."), { recursive: true });
    await Deno.writeTextFile(join(root, path), content);
  }
  return root;
}

Deno.test("v2: memory.current minus inactive_file of Docker's systemd scope", async () => {
  const scope = `system.slice/docker-${ID}.scope`;
  const root = await tree({
    "cgroup.controllers": "cpuset cpu io memory pids\n",
    [`${scope}/memory.current`]: "73400320\n",
    [`${scope}/memory.stat`]: V2_STAT,
  });
  try {
    const loc = await findCgroupByHints({ id: ID }, root);
    assert.deepEqual(loc, { version: 2, dir: join(root, scope) });
    assert.deepEqual(await readMemoryUsage(loc!), {
      usage: 73400320,
      inactiveFile: 15728640,
      net: 73400320 - 15728640,
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("v2: the kubelet's systemd layout (burstable pod slice, cri-containerd scope)", async () => {
  const dir = `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${
    UID.replaceAll("-", "_")
  }.slice/cri-containerd-${ID}.scope`;
  const root = await tree({
    "cgroup.controllers": "memory pids\n",
    [`${dir}/memory.current`]: "1000\n",
    [`${dir}/memory.stat`]: V2_STAT,
  });
  try {
    const loc = await findCgroupByHints({ id: ID, podUid: UID }, root);
    assert.deepEqual(loc, { version: 2, dir: join(root, dir) });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("v1: the kubelet's cgroupfs layout and total_inactive_file", async () => {
  const dir = `memory/kubepods/besteffort/pod${UID}/${ID}`;
  const root = await tree({
    [`${dir}/memory.usage_in_bytes`]: "73400320\n",
    [`${dir}/memory.stat`]: V1_STAT,
  });
  try {
    const loc = await findCgroupByHints({ id: ID, podUid: UID }, root);
    assert.deepEqual(loc, { version: 1, dir: join(root, dir) });
    assert.equal((await readMemoryUsage(loc!)).net, 73400320 - 15728640);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("candidates cover Docker cgroupfs/systemd and kubelet cgroupfs/systemd layouts", () => {
  const c = cgroupCandidates({ id: ID, podUid: UID, cgroupParent: "/custom" });
  const sUid = UID.replaceAll("-", "_");
  for (
    const expected of [
      `custom/${ID}`,
      `docker/${ID}`,
      `system.slice/docker-${ID}.scope`,
      `kubepods/pod${UID}/${ID}`,
      `kubepods/burstable/pod${UID}/${ID}`,
      `kubepods/besteffort/pod${UID}/${ID}`,
      `kubepods.slice/kubepods-pod${sUid}.slice/cri-containerd-${ID}.scope`,
      `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${sUid}.slice/docker-${ID}.scope`,
    ]
  ) assert.ok(c.includes(expected), expected);
});

Deno.test("/proc/<pid>/cgroup: v1 memory line wins on hybrid hosts; v2 0:: line otherwise", async () => {
  const v1 = await tree({
    "proc/42/cgroup": `4:memory:/docker/${ID}\n1:cpu:/docker/${ID}\n0::/docker/${ID}\n`,
  });
  const v2 = await tree({
    "cg/cgroup.controllers": "memory\n",
    "proc/42/cgroup": `0::/system.slice/docker-${ID}.scope\n`,
  });
  try {
    assert.deepEqual(await cgroupOfPid(42, "/sys/fs/cgroup", join(v1, "proc")), {
      version: 1,
      dir: `/sys/fs/cgroup/memory/docker/${ID}`,
    });
    assert.deepEqual(await cgroupOfPid(42, join(v2, "cg"), join(v2, "proc")), {
      version: 2,
      dir: join(v2, "cg", `system.slice/docker-${ID}.scope`),
    });
    assert.equal(await cgroupOfPid(43, "/sys/fs/cgroup", join(v1, "proc")), undefined);
  } finally {
    await Deno.remove(v1, { recursive: true });
    await Deno.remove(v2, { recursive: true });
  }
});

Deno.test("a missing file is retried briefly, then reported as gone", async () => {
  const root = await tree({ "cg/memory.stat": V1_STAT });
  try {
    const loc = { version: 1 as const, dir: join(root, "cg") };
    // Appears during the retries: read fine.
    setTimeout(() => Deno.writeTextFileSync(join(root, "cg/memory.usage_in_bytes"), "100\n"), 50);
    assert.equal((await readMemoryUsage(loc, { attempts: 5, delayMs: 50 })).usage, 100);
    await Deno.remove(join(root, "cg/memory.usage_in_bytes"));
    const t0 = Date.now();
    await assert.rejects(readMemoryUsage(loc, { attempts: 3, delayMs: 50 }), CgroupGoneError);
    assert.ok(Date.now() - t0 >= 90);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("malformed usage or a stat without inactive_file is an error naming the file", async () => {
  const root = await tree({
    "a/memory.current": "lots\n",
    "a/memory.stat": V2_STAT,
    "b/memory.current": "10\n",
    "b/memory.stat": "anon 10\n",
  });
  try {
    await assert.rejects(readMemoryUsage({ version: 2, dir: join(root, "a") }), /memory\.current/);
    await assert.rejects(readMemoryUsage({ version: 2, dir: join(root, "b") }), /inactive_file/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
