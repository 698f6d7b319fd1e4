// A racing host: while patcher passes run (in-process, back to back, and the bundled loop at the
// same time), a second process (python3, renameat2(RENAME_EXCHANGE) through ctypes) swaps the
// managed files' directories with symlinks that lead outside the host root, thousands of times,
// and keeps spoiling the managed files so the passes keep writing. Nothing outside the allowed
// roots may be written or deleted (a decoy tree, with bait temp files for the sweep, is
// checksummed before and after), and once the swapping stops the files converge.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join, relative } from "node:path";
import { reconcileOnce } from "../../src/patcher/reconcile.ts";
import { createPatcherSandbox, spawnPatcherLoop } from "../../sandbox/fixtures/patcher_host.ts";

const RACER = `
import ctypes, os, random, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
AT_FDCWD, RENAME_EXCHANGE = -100, 2
def exchange(a, b):
    if libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), RENAME_EXCHANGE) != 0:
        raise OSError(ctypes.get_errno(), "renameat2 %s %s" % (a, b))
pairs = [tuple(p.split("|")) for p in sys.argv[2:]]
random.seed(int(sys.argv[1]))
swaps = 0
target = 2000
while swaps < target:
    real, evil, spoil = random.choice(pairs)
    exchange(real, evil)        # the real directory now sits at evil's name, the symlink at real's
    swaps += 1
    time.sleep(random.random() * 0.002)
    exchange(real, evil)        # and back
    swaps += 1
    if random.random() < 0.3:   # spoil the managed file so that passes keep writing
        with open(spoil + ".spoil", "w") as f:
            f.write("spoiled %d\\n" % swaps)
        os.rename(spoil + ".spoil", spoil)
    time.sleep(random.random() * 0.001)
print(swaps)
`;

/** Every entry under `dir`: file -> sha256, symlink -> target, dir -> "dir". */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of Deno.readDirSync(d)) {
      const p = join(d, e.name);
      const rel = relative(dir, p);
      if (e.isSymlink) out[rel] = `-> ${Deno.readLinkSync(p)}`;
      else if (e.isDirectory) {
        out[rel] = "dir";
        walk(p);
      } else out[rel] = createHash("sha256").update(Deno.readFileSync(p)).digest("hex");
    }
  };
  walk(dir);
  return out;
}

Deno.test("directories swapped for outside symlinks >= 1000 times under running passes: no write or delete outside the roots, then convergence", async () => {
  const sb = await createPatcherSandbox();
  const seed = Number(Deno.env.get("KS_RACE_SEED") ?? Date.now() % 100000);
  console.log(`race test: seed=${seed} (replay: KS_RACE_SEED=${seed})`);
  let loop: Deno.ChildProcess | undefined;
  try {
    const bin = sb.host("usr/local/bin");
    const decoy = join(sb.dir, "decoy");
    // The decoy mirrors the managed layout, so a write or sweep through a symlink would land.
    for (const d of ["", "deep", "deep/inner"]) {
      await Deno.mkdir(join(decoy, d), { recursive: true });
    }
    await Deno.writeTextFile(join(decoy, "tool"), "decoy tool\n");
    await Deno.writeTextFile(join(decoy, ".tool.ks-tmp-telemetry.1"), "sweep bait\n");
    await Deno.writeTextFile(join(decoy, "deep/inner/conf"), "decoy conf\n");
    await Deno.writeTextFile(join(decoy, "deep/inner/.conf.ks-tmp-telemetry.2"), "sweep bait\n");
    const secret = sb.host("etc/secret");
    await Deno.mkdir(secret, { recursive: true });
    await Deno.writeTextFile(join(secret, "tool"), "host file outside the allowed roots\n");
    // Managed: /usr/local/bin/sub/tool and /usr/local/bin/sub2/deep/inner/conf.
    await Deno.mkdir(join(bin, "sub"));
    await Deno.mkdir(join(bin, "sub2/deep/inner"), { recursive: true });
    await Deno.symlink(decoy, join(bin, "evil-abs")); // absolute, out of the host root
    await Deno.symlink(relative(bin, decoy), join(bin, "evil-rel")); // ../../../decoy
    await Deno.symlink(join(decoy, "deep"), join(bin, "sub2/evil-deep"));
    await Deno.symlink("/etc/secret", join(bin, "evil-host")); // inside the host root, not allowed
    await sb.writeManifest({
      apiVersion: "kubesonic.io/v1",
      kind: "HostFiles",
      feature: "telemetry",
      files: [
        { path: "/usr/local/bin/sub/tool", content: "desired tool\n", mode: "0755" },
        { path: "/usr/local/bin/sub2/deep/inner/conf", content: "desired conf\n" },
      ],
    });
    const outside = () => ({ decoy: snapshot(decoy), secret: snapshot(secret) });
    const before = outside();

    const ctx = await sb.context();
    const first = await reconcileOnce(ctx);
    assert.deepEqual(first.errors, []);
    loop = await spawnPatcherLoop(sb, "10m");
    const racer = new Deno.Command("python3", {
      args: [
        "-c",
        RACER,
        String(seed),
        `${join(bin, "sub")}|${join(bin, "evil-abs")}|${join(bin, "sub/tool")}`,
        `${join(bin, "sub")}|${join(bin, "evil-rel")}|${join(bin, "sub/tool")}`,
        `${join(bin, "sub")}|${join(bin, "evil-host")}|${join(bin, "sub/tool")}`,
        `${join(bin, "sub2/deep")}|${join(bin, "sub2/evil-deep")}|${
          join(bin, "sub2/deep/inner/conf")
        }`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let done = false;
    const racerOut = racer.output().finally(() => (done = true));
    let passes = 0;
    let refused = 0;
    let wrote = 0;
    while (!done) {
      const result = await reconcileOnce(ctx);
      passes++;
      if (result.errors.length > 0) refused++;
      wrote += result.changed.length;
    }
    const out = await racerOut;
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const swaps = Number(new TextDecoder().decode(out.stdout).trim());
    console.log(
      `race test: ${swaps} swaps; ${passes} in-process passes (${refused} refused a path, ` +
        `${wrote} writes) beside the bundled loop`,
    );
    assert.ok(swaps >= 1000);
    assert.ok(passes >= 20, `passes during the race: ${passes}`);

    // Swapping stopped: the next passes converge.
    let converged = false;
    for (let i = 0; i < 10 && !converged; i++) converged = (await reconcileOnce(ctx)).converged;
    assert.ok(converged, "converged after the swapping stopped");
    assert.equal(Deno.readTextFileSync(join(bin, "sub/tool")), "desired tool\n");
    assert.equal(Deno.readTextFileSync(join(bin, "sub2/deep/inner/conf")), "desired conf\n");
    loop.kill("SIGTERM");
    assert.equal((await loop.status).code, 0);
    loop = undefined;
    assert.deepEqual(outside(), before, "nothing outside the allowed roots was written or deleted");
  } finally {
    try {
      loop?.kill("SIGKILL");
    } catch { /* gone */ }
    await loop?.status;
    await sb.cleanup();
  }
});
