// The host runtime, for real: two features rendered against the ks tree, each sidecar's bundled
// ks-patcher run with the rendered command (mounts mapped to temp dirs as the kubelet maps them)
// on a sandbox host root. kube mode installs Deno, the bundle and ks-stub under
// /usr/local/lib/kubesonic/<tree hash>/ with a launcher naming it; both features share it; the
// first rollback (native mode) leaves it to the other, the last removes every file and directory
// it added, so the host tree is exactly as before.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { runTool } from "../../sandbox/harness/bin.ts";
import { createRecordingSystemctl } from "../../sandbox/harness/recording_systemctl.ts";
import { buildTree } from "../../src/build/tree.ts";
import { VERSION } from "../../src/version.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

const SONIC_CHECKER = "#!/usr/bin/python3\n# SONiC's own checker\n";

const spec = (name: string, port: number) =>
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
`;

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

Deno.test("the host runtime arrives with kube mode, is shared by two features and leaves with the last rollback", async () => {
  const { dir: tree, index } = await buildTree();
  const dir = await Deno.makeTempDir({ prefix: "ks-host-runtime-" });
  const rec = await createRecordingSystemctl(join(dir, "recording-bin"));
  const host = join(dir, "host");
  try {
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
    const before = await listing(host);

    const run = async (feature: string, stage: "v1" | "v2") => {
      const out = join(dir, feature);
      const cm = join(out, "cm");
      if (stage === "v2") {
        await Deno.writeTextFile(
          join(dir, `${feature}.yaml`),
          spec(feature, feature === "gnmi" ? 50090 : 50080),
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
        env: { PATH: rec.path, HOME: dir, NO_COLOR: "1" },
      });
      assert.equal(r.code, 0, `${feature} ${stage}: ${r.stdout}\n${r.stderr}`);
      return cmd;
    };

    const cmd = await run("telemetry", "v2");
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
