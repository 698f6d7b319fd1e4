// The relocatable ks tree (src/build/tree.ts): copied to a random directory and run with an empty
// environment (no HOME, no PATH, no DENO_DIR), every tool keeps its command line, output and exit
// codes, whether started as `ks-<tool>`, `ks <tool>` or `ks ks-<tool>`.
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { lazyChunkImports, listTools } from "../../src/build/bundle.ts";
import { buildTree, launcherScript, readTreeIndex, TREE_BUNDLE_DIR } from "../../src/build/tree.ts";
import { MODULE_ANALYSIS_DB, TREE_CACHE_DIR } from "../../src/build/runtime_cache.ts";
import { VERSION } from "../../src/version.ts";
import { TOOLS } from "../../bin/ks.ts";

const decoder = new TextDecoder();

async function run(exe: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(exe, {
    args,
    clearEnv: true,
    env,
    cwd: "/",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

Deno.test("ks knows every bin/ks-*.ts tool and nothing else", () => {
  assert.deepEqual(Object.keys(TOOLS).map((t) => `ks-${t}`).sort(), listTools());
});

Deno.test("chunk imports are opaque to Deno's graph, so a tool reads only the chunks it runs", async () => {
  assert.equal(
    lazyChunkImports(
      'TOOLS = { a: () => import("./ks-a-X1.js"), n: () => import("node:process") }',
    ),
    'TOOLS = { a: () => import(String("./ks-a-X1.js")), n: () => import("node:process") }',
  );
  // A literal import() would make `deno run` read and analyse that chunk before starting.
  const { dir } = await buildTree();
  let opaque = 0;
  for await (const entry of Deno.readDir(join(dir, TREE_BUNDLE_DIR))) {
    const text = await Deno.readTextFile(join(dir, TREE_BUNDLE_DIR, entry.name));
    assert.doesNotMatch(text, /\bimport\("\.\//, entry.name);
    opaque += text.match(/\bimport\(String\("\.\//g)?.length ?? 0;
  }
  // ks.js: one per tool and copy-tree; ks-stub: its lazily loaded API client and notifier.
  assert.ok(opaque >= Object.keys(TOOLS).length + 1, `${opaque} opaque chunk imports`);
});

Deno.test("the ks tree runs from a random directory with an empty environment", async (t) => {
  const { dir } = await buildTree();
  const tmp = await Deno.makeTempDir({ prefix: "ks-tree-copy-" });
  const root = join(tmp, "some where", "tree");
  try {
    await Deno.mkdir(join(tmp, "some where"));
    const cp = await new Deno.Command("cp", { args: ["-a", dir, root] }).output();
    assert.ok(cp.success);
    // A copy with no lib/cache: the tree must not depend on one.
    await Deno.remove(join(root, "lib", "cache"), { recursive: true }).catch(() => {});
    const bin = (name: string) => join(root, "bin", name);

    await t.step("ks-<tool> --version / --help, the tool's own name and exit 0", async () => {
      for (const tool of listTools()) {
        const v = await run(bin(tool), ["--version"]);
        assert.equal(v.code, 0, v.stderr);
        assert.equal(v.stdout.trim(), `${tool} ${VERSION}`);
        const h = await run(bin(tool), ["--help"]);
        assert.equal(h.code, 0, h.stderr);
        assert.match(h.stdout, new RegExp(`^${tool} — `));
      }
    });
    await t.step("ks <tool> and ks ks-<tool> are the same program", async () => {
      const a = await run(bin("ks"), ["watchdog", "--version"]);
      const b = await run(bin("ks"), ["ks-watchdog", "--version"]);
      assert.equal(a.stdout.trim(), `ks-watchdog ${VERSION}`);
      assert.equal(b.stdout, a.stdout);
      assert.equal((await run(bin("ks"), ["--version"])).stdout.trim(), `ks ${VERSION}`);
    });
    await t.step("usage errors keep each tool's one line and exit 2", async () => {
      const stub = await run(bin("ks-stub"), ["telemetry", "bogus"]);
      assert.equal(stub.code, 2);
      assert.equal(stub.stderr.trim().split("\n").length, 1);
      assert.match(stub.stderr, /^ks-stub: unknown verb "bogus"/);
      const wd = await run(bin("ks-watchdog"), ["--deadline", "1ms", "--feature", "x"]);
      assert.equal(wd.code, 2);
      assert.match(wd.stderr, /^ks-watchdog: --deadline: "1ms" is below 50ms/);
      const ks = await run(bin("ks"), ["nope"]);
      assert.equal(ks.code, 2);
      assert.match(ks.stderr, /^ks: unknown tool "nope"/);
    });
    await t.step("ks-stub status with an unreachable API server: LSB 4, one line", async () => {
      const kubeconfig = join(tmp, "kubeconfig");
      await Deno.writeTextFile(
        kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n" +
          "users:\n- name: u\n  user:\n    token: x\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n" +
          "current-context: c\n",
      );
      const r = await run(bin("ks-stub"), [
        "telemetry",
        "status",
        "--kubeconfig",
        kubeconfig,
        "--node",
        "n1",
        "--timeout",
        "2s",
      ]);
      assert.equal(r.code, 4, r.stderr);
    });
    await t.step("ks copy-tree copies a tree that runs from its new place", async () => {
      const dest = join(tmp, "copied");
      const r = await run(bin("ks"), ["copy-tree", dest]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /^ks\[\d+\]: copy-tree: copied .*files=\d+/);
      const index = await readTreeIndex(root);
      assert.equal((await readTreeIndex(dest)).hash, index.hash);
      const v = await run(join(dest, "bin", "ks-entrypoint"), ["--version"]);
      assert.equal(v.stdout.trim(), `ks-entrypoint ${VERSION}`);
      const bad = await run(bin("ks"), ["copy-tree"]);
      assert.equal(bad.code, 2);
    });
    await t.step(
      "ks copy-tree --prime and ks prime-cache write the cache for the copy's path",
      async () => {
        const dest = join(tmp, "primed");
        const r = await run(bin("ks"), ["copy-tree", dest, "--prime", "ks-entrypoint"]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /copy-tree: primed dest=\S+ launchers=ks-entrypoint/);
        const entries = () => {
          const db = new DatabaseSync(join(dest, TREE_CACHE_DIR, MODULE_ANALYSIS_DB), {
            readOnly: true,
          });
          try {
            return db.prepare("SELECT specifier FROM moduleinfocache").all()
              .map((row) => String(row.specifier));
          } finally {
            db.close();
          }
        };
        const afterCopy = entries();
        // The entries name the copy's own modules: a cache written elsewhere would not be hit.
        assert.ok(
          afterCopy.some((s) => s === `file://${dest}/lib/ks/ks-entrypoint.js`),
          afterCopy.join(),
        );
        assert.ok(afterCopy.every((s) => s.startsWith(`file://${dest}/lib/ks/`)), afterCopy.join());
        const p = await run(join(dest, "bin", "ks"), ["prime-cache"]);
        assert.equal(p.code, 0, p.stderr);
        assert.match(p.stderr, /prime-cache: primed tree=\S+ launchers=9 /);
        assert.ok(entries().includes(`file://${dest}/lib/ks/ks-watchdog.js`));
        assert.equal((await run(bin("ks"), ["prime-cache", "--x"])).code, 2);
        assert.equal((await run(bin("ks"), ["copy-tree", dest, "--prime"])).code, 2);
        const missing = await run(bin("ks"), ["prime-cache", join(tmp, "no-such-tree")]);
        assert.equal(missing.code, 1);
        assert.match(missing.stderr, /^ks prime-cache: \S+no-such-tree: /);
      },
    );
    await t.step("a link to a launcher finds the tree it points into", async () => {
      const link = join(tmp, "ks-stub-link");
      await Deno.symlink(bin("ks-stub"), link);
      const v = await run(link, ["--version"]);
      assert.equal(v.code, 0, v.stderr);
      assert.equal(v.stdout.trim(), `ks-stub ${VERSION}`);
    });
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a launcher without glibc's loader fails at once with one line naming it", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "ks-launcher-" });
  try {
    // The same launcher for an architecture whose loader this machine does not have.
    const path = join(tmp, "ks-entrypoint");
    await Deno.writeTextFile(path, launcherScript("ks-entrypoint", "aarch64", true), {
      mode: 0o755,
    });
    const r = await run("/bin/sh", [path, "--version"]);
    assert.equal(r.code, 127);
    assert.equal(
      r.stderr,
      "ks-entrypoint: this image has no glibc for aarch64 (/lib/ld-linux-aarch64.so.1 is missing): " +
        "kubesonic's ks-entrypoint needs glibc >= 2.27 on aarch64\n",
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
