// The host runtime, for real: two features rendered against the ks tree, each sidecar's bundled
// ks-patcher run with the rendered command (mounts mapped to temp dirs as the kubelet maps them)
// on a sandbox host root. kube mode installs Deno, the bundle and ks-stub under
// /usr/local/lib/kubesonic/<tree hash>/ with a launcher naming it; both features share it; the
// first rollback (native mode) leaves it to the other, the last removes every file and directory
// it added, so the host tree is exactly as before. A tools upgrade (v2 -> v2', a new tree hash)
// leaves only the new tree once the last feature sharing the old one has upgraded, and the rollback
// after it leaves the host as before v1.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { ageClaims } from "../../sandbox/fixtures/patcher_host.ts";
import { runTool } from "../../sandbox/harness/bin.ts";
import { createRecordingSystemctl } from "../../sandbox/harness/recording_systemctl.ts";
import { buildTree, indexTree, TREE_BUNDLE, TREE_INDEX } from "../../src/build/tree.ts";
import { VERSION } from "../../src/version.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

const SONIC_CHECKER = "#!/usr/bin/python3\n# SONiC's own checker\n";

const spec = (name: string, port: number, extra = "") =>
  `apiVersion: kubesonic.io/v1
kind: FeatureSpec
name: ${name}
images: {feature: docker-sonic-${name}:1.0, watchdog: kubesonic/ks-tools:0.1.0, sidecar: kubesonic/ks-tools:0.1.0}
command: [/usr/bin/supervisord]
resources: {limits: {memory: 400Mi}}
watchdog: {port: ${port}, probes: [{tcp: "127.0.0.1:8080"}]}
hostRuntime: {checkers: ${name === "telemetry"}}
unit: {name: ${name}, launcher: /usr/local/bin/${name}.sh}
native:
  launcher: |
    #!/bin/bash
    exec /usr/bin/${name}.sh "$@"
${extra}`;

/** Every entry under `root`: path, type, mode, owner and SHA-256 (files). */
async function listing(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    for await (const e of Deno.readDir(join(root, rel))) {
      const path = `${rel}/${e.name}`;
      const st = await Deno.lstat(join(root, path));
      const sha = st.isFile
        ? createHash("sha256").update(await Deno.readFile(join(root, path))).digest("hex")
        : "-";
      const type = st.isDirectory ? "d" : st.isSymlink ? "l" : "f";
      out.push(`${path} ${type} ${(st.mode! & 0o7777).toString(8)} ${st.uid}:${st.gid} ${sha}`);
      if (st.isDirectory) await walk(path);
    }
  };
  await walk("");
  return out.sort();
}

function sidecarCommand(dsText: string, feature: string): string[] {
  const [ds] = parseAllDocuments(dsText).map((d) => d.toJSON());
  return ds.spec.template.spec.containers.find((c: Any) => c.name === `${feature}-sidecar`)
    .command;
}

/** The stock switch at `host`: native launchers, SONiC's checkers; returns its listing. */
async function stockSwitch(host: string): Promise<string[]> {
  // The stock switch: native launchers, /usr/local/lib as Debian leaves it, no ks-* anywhere.
  for (
    const d of ["usr/local/bin", "usr/local/lib", "usr/bin", "etc/systemd/system", "var/lib"]
  ) {
    await Deno.mkdir(join(host, d), { recursive: true });
  }
  for (const f of ["telemetry", "gnmi"]) {
    await Deno.writeTextFile(
      join(host, `usr/local/bin/${f}.sh`),
      `#!/bin/bash\nexec /usr/bin/${f}.sh "$@"\n`,
    );
    await Deno.chmod(join(host, `usr/local/bin/${f}.sh`), 0o755);
  }
  for (const c of ["container_checker", "memory_checker"]) {
    await Deno.writeTextFile(join(host, "usr/bin", c), SONIC_CHECKER);
    await Deno.chmod(join(host, "usr/bin", c), 0o755);
  }
  return await listing(host);
}

/**
 * Renders `feature` (stage v2: with `tree`) and runs its sidecar's bundled ks-patcher `--once`
 * with the rendered command (the ConfigMap and the tree at the mounts the kubelet would give).
 * Returns the sidecar's command and the patcher's stderr.
 */
function runner(dir: string, host: string, recPath: string, defaultTree: string) {
  return async (feature: string, stage: "v1" | "v2", tree = defaultTree, extra = "") => {
    const out = join(dir, feature);
    const cm = join(out, "cm");
    if (stage === "v2") {
      await Deno.writeTextFile(
        join(dir, `${feature}.yaml`),
        spec(feature, feature === "gnmi" ? 50090 : 50080, extra),
      );
      const r = await runTool("ks-render", [
        join(dir, `${feature}.yaml`),
        "-o",
        out,
        "--tools-tree",
        tree,
      ]);
      assert.equal(r.code, 0, r.stderr);
      // The ConfigMap at its mount, the ks-tools image's tree at /opt/kubesonic.
      const [map] = parseAllDocuments(
        await Deno.readTextFile(join(out, "common/20-configmap.yaml")),
      )
        .map((d) => d.toJSON());
      await Deno.mkdir(cm, { recursive: true });
      for (const [key, value] of Object.entries(map.data as Record<string, string>)) {
        await Deno.writeTextFile(
          join(cm, key),
          value.replaceAll("/etc/kubesonic/files/", `${cm}/`).replaceAll(
            "/opt/kubesonic/",
            `${tree}/`,
          ),
        );
      }
    }
    const cmd = sidecarCommand(
      await Deno.readTextFile(join(out, stage, "30-daemonset.yaml")),
      feature,
    );
    const args = cmd.slice(1).map((a) =>
      a.replace(/^\/etc\/kubesonic\/files\//, `${cm}/`).replace(/^\/host(?=\/|$)/, host)
    );
    const r = await runTool("ks-patcher", [...args, "--once", "--nsenter", "never"], {
      env: { PATH: recPath, HOME: dir, NO_COLOR: "1" },
    });
    assert.equal(r.code, 0, `${feature} ${stage}: ${r.stdout}\n${r.stderr}`);
    return { cmd, stderr: r.stderr };
  };
}

Deno.test("the host runtime arrives with kube mode, is shared by two features and leaves with the last rollback", async () => {
  const { dir: tree, index } = await buildTree();
  const dir = await Deno.makeTempDir({ prefix: "ks-host-runtime-" });
  const rec = await createRecordingSystemctl(join(dir, "recording-bin"));
  const host = join(dir, "host");
  try {
    const before = await stockSwitch(host);
    const run = runner(dir, host, rec.path, tree);

    const { cmd } = await run("telemetry", "v2");
    assert.ok(cmd.includes("/usr/local/lib/kubesonic"), `allow-root: ${cmd.join(" ")}`);
    const prefix = `/usr/local/lib/kubesonic/${index.hash}`;
    const chunks = index.files.map((x) => x.path).filter((p) => p.startsWith("lib/ks/"));
    assert.ok(chunks.includes("lib/ks/ks.js") && chunks.length > 2, `bundle files: ${chunks}`);
    for (const f of ["bin/deno", ...chunks, "bin/ks-stub", "bin/ks-container-checker"]) {
      const want = index.files.find((x) => x.path === f)!;
      const got = await Deno.readFile(join(host, prefix, f));
      assert.equal(createHash("sha256").update(got).digest("hex"), want.sha256, f);
      assert.equal(
        ((await Deno.stat(join(host, prefix, f))).mode! & 0o777).toString(8),
        want.mode.slice(1),
      );
    }
    const stubLauncher = await Deno.readTextFile(join(host, "usr/local/bin/ks-stub"));
    assert.match(stubLauncher, new RegExp(`exec ${prefix}/bin/ks-stub "\\$@"`));
    assert.match(
      await Deno.readTextFile(join(host, "usr/local/bin/telemetry.sh")),
      /exec \/usr\/local\/bin\/ks-stub telemetry/,
    );
    assert.match(
      await Deno.readTextFile(join(host, "usr/bin/memory_checker")),
      /bin\/ks-memory-checker "\$@"/,
    );
    // The installed tree runs by itself (the host launcher names host paths; run the tree's).
    const v = await new Deno.Command(join(host, prefix, "bin/ks-stub"), {
      args: ["--version"],
      clearEnv: true,
      env: { KS_DENO_DIR: join(dir, "deno-cache") },
      stdout: "piped",
    }).output();
    assert.equal(new TextDecoder().decode(v.stdout).trim(), `ks-stub ${VERSION}`);

    // A second feature wants the same runtime: shared, not refused.
    await run("gnmi", "v2");
    const owners = JSON.parse(await Deno.readTextFile(join(host, "var/lib/kubesonic/owners.json")));
    assert.deepEqual(Object.keys(owners[`${prefix}/bin/deno`]).sort(), ["gnmi", "telemetry"]);

    // The first rollback leaves the shared runtime (gnmi still uses it), restores its launcher.
    await run("telemetry", "v1");
    assert.equal(
      await Deno.readTextFile(join(host, "usr/local/bin/telemetry.sh")),
      '#!/bin/bash\nexec /usr/bin/telemetry.sh "$@"\n',
    );
    assert.ok((await Deno.stat(join(host, prefix, "bin/deno"))).isFile);
    assert.equal(await Deno.readTextFile(join(host, "usr/local/bin/ks-stub")), stubLauncher);
    // telemetry alone asked for the checkers: SONiC's come back with its rollback.
    assert.equal(await Deno.readTextFile(join(host, "usr/bin/memory_checker")), SONIC_CHECKER);
    await assert.rejects(() => Deno.lstat(join(host, prefix, "bin/ks-memory-checker")));

    // The last rollback removes every file and directory the runtime added.
    await run("gnmi", "v1");
    const state = "/var/lib/kubesonic";
    const after = (await listing(host)).filter((l) =>
      !l.startsWith(state) && !l.startsWith("/var ")
    );
    const beforeNoState = before.filter((l) => !l.startsWith(state) && !l.startsWith("/var "));
    assert.deepEqual(after, beforeNoState);
  } finally {
    await rec.remove().catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

/** Longer than the rendered sidecar's stale-claim time (15 min by default). */
const STALE_MS = 16 * 60_000;

/** v2': a copy of `tree` with one more line in its bundle, so a new tree hash. */
async function nextTree(tree: string, dir: string): Promise<string> {
  const next = join(dir, "ks-tree-next");
  const cp = await new Deno.Command("cp", { args: ["-a", tree, next] }).output();
  assert.ok(cp.success, new TextDecoder().decode(cp.stderr));
  await Deno.writeTextFile(join(next, TREE_BUNDLE), "// v2'\n", { append: true });
  const index = await indexTree(next);
  await Deno.writeTextFile(join(next, TREE_INDEX), JSON.stringify(index, null, 1) + "\n");
  return next;
}

Deno.test("a tools upgrade leaves only the new host runtime once the last feature sharing the old one upgraded, and the rollback the host as before", async () => {
  const { dir: tree, index } = await buildTree();
  const dir = await Deno.makeTempDir({ prefix: "ks-host-runtime-up-" });
  const rec = await createRecordingSystemctl(join(dir, "recording-bin"));
  const host = join(dir, "host");
  try {
    const before = await stockSwitch(host);
    const run = runner(dir, host, rec.path, tree);
    const next = await nextTree(tree, dir);
    const nextIndex = JSON.parse(await Deno.readTextFile(join(next, TREE_INDEX)));
    assert.notEqual(nextIndex.hash, index.hash);
    const lib = join(host, "usr/local/lib/kubesonic");
    const trees = async () => (await Array.fromAsync(Deno.readDir(lib), (e) => e.name)).sort();
    // gnmi's ks-stub launcher at its own path: the two features share the tree itself, not the
    // launcher (its bytes name one tree, and a shared path must have one content).
    const gnmiStub = "stub: {path: /usr/local/bin/ks-stub-gnmi}\n";

    await run("telemetry", "v2");
    await run("gnmi", "v2", tree, gnmiStub);
    assert.deepEqual(await trees(), [index.hash]);

    // telemetry upgrades first: the new tree arrives, its launcher names it; gnmi still runs the
    // old tree, which stays. telemetry's old sidecar is gone for the stale time (its claims
    // aged; the new one releases only what no live manifest of telemetry lists).
    const state = join(host, "var/lib/kubesonic");
    await ageClaims(state, "telemetry", STALE_MS);
    const up = await run("telemetry", "v2", next);
    assert.deepEqual(await trees(), [index.hash, nextIndex.hash].sort());
    assert.match(
      await Deno.readTextFile(join(host, "usr/local/bin/ks-stub")),
      new RegExp(`kubesonic/${nextIndex.hash}/bin/ks-stub "\\$@"`),
    );
    assert.match(
      await Deno.readTextFile(join(host, "usr/local/bin/ks-stub-gnmi")),
      new RegExp(`kubesonic/${index.hash}/bin/ks-stub "\\$@"`),
    );
    const released = up.stderr.split("\n").filter((l) => l.includes("released: no longer"));
    const kept = released.filter((l) => l.includes("still used by gnmi"));
    assert.ok(kept.length > 2, up.stderr);
    // telemetry alone asked for the checkers: their tools in the old tree go at once.
    assert.deepEqual(
      released.filter((l) => !kept.includes(l)).map((l) => /path=(\S+)/.exec(l)![1]),
      ["ks-container-checker", "ks-memory-checker"].map((t) =>
        `/usr/local/lib/kubesonic/${index.hash}/bin/${t}`
      ),
    );
    assert.ok(released.every((l) => kept.includes(l) || l.includes("removed (absent original)")));

    // gnmi upgrades (its old sidecar gone for the stale time): the old tree goes, with every
    // directory it created.
    await ageClaims(state, "gnmi", STALE_MS);
    const last = await run("gnmi", "v2", next, gnmiStub);
    assert.deepEqual(await trees(), [nextIndex.hash]);
    const removed = last.stderr.split("\n").filter((l) => l.includes("released: no longer"));
    assert.equal(removed.length, kept.length, last.stderr);
    assert.ok(removed.every((l) => l.includes('done="removed (absent original)"')), last.stderr);
    const owners = JSON.parse(await Deno.readTextFile(join(host, "var/lib/kubesonic/owners.json")));
    assert.deepEqual(Object.keys(owners).filter((p) => p.includes(index.hash)), []);
    const backups = [...Deno.readDirSync(join(host, "var/lib/kubesonic/backups"))];
    assert.deepEqual(backups.filter((e) => e.name.includes(index.hash)).map((e) => e.name), []);

    // Both roll back (the upgraded render's v1): the host as before v1, state directory aside.
    await run("telemetry", "v1");
    await run("gnmi", "v1");
    const noState = (l: string) => !l.startsWith("/var/lib/kubesonic") && !l.startsWith("/var ");
    assert.deepEqual((await listing(host)).filter(noState), before.filter(noState));
  } finally {
    await rec.remove().catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
