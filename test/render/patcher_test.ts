// What the rendered sidecar does, for real: the bundled ks-patcher run with exactly the rendered
// sidecar command (the volume mounts mapped to temp dirs as the kubelet would map them) on a
// sandbox host root, in kube mode (v2) and back in native mode (v1). Host commands go to the
// recording systemctl/docker fakes (systemd is not PID 1 here).
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { runTool } from "../../sandbox/harness/bin.ts";
import { createRecordingSystemctl } from "../../sandbox/harness/recording_systemctl.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

const SPEC = `apiVersion: kubesonic.io/v1
kind: FeatureSpec
name: bgp
images: {feature: docker-fpm-frr:1.0, watchdog: kubesonic/ks-tools:0.1.0, sidecar: kubesonic/ks-tools:0.1.0}
command: [/usr/bin/supervisord]
resources: {limits: {memory: 1Gi}}
scope: {global: false, perAsic: true}
watchdog: {port: 51000, probes: [{process: bgpd}]}
stub: {apiServer: "https://10.0.0.1:6443", source: /opt/kubesonic/host/ks-stub}
native:
  launcher: |
    #!/bin/bash
    exec /usr/bin/bgp.sh "$@"
`;

const NATIVE_BYTES = '#!/bin/bash\n# as the image installed it\nexec /usr/bin/bgp.sh "$@"\n';

function sidecarArgs(ds: Any): string[] {
  const c = ds.spec.template.spec.containers.find((x: Any) => x.name === "bgp-sidecar");
  assert.ok(c, "sidecar container");
  return c.command as string[];
}

/** The rendered command with its paths mapped the way the pod's mounts map them. */
function mapped(cmd: string[], dir: string): string[] {
  const args = cmd.slice(1).map((a) =>
    a.replace(/^\/etc\/kubesonic\/files\//, `${dir}/cm/`)
      .replace(/^\/host$/, `${dir}/host`)
      .replace(/^\/host\//, `${dir}/host/`)
  );
  return [...args, "--once", "--nsenter", "never"];
}

async function mode(path: string): Promise<number> {
  return (await Deno.stat(path)).mode! & 0o7777;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("the rendered sidecar installs the host files with the real ks-patcher, and v1 restores the originals", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ks-render-patcher-" });
  const rec = await createRecordingSystemctl(join(dir, "recording-bin"));
  try {
    await Deno.writeTextFile(`${dir}/feature.yaml`, SPEC);
    const r = await runTool("ks-render", [
      `${dir}/feature.yaml`,
      "--asics",
      "2",
      "-o",
      `${dir}/out`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const [cm] = parseAllDocuments(await Deno.readTextFile(`${dir}/out/common/20-configmap.yaml`))
      .map((d) => d.toJSON());
    const [v1] = parseAllDocuments(await Deno.readTextFile(`${dir}/out/v1/30-daemonset.yaml`))
      .map((d) => d.toJSON());
    const [v2] = parseAllDocuments(await Deno.readTextFile(`${dir}/out/v2/30-daemonset.yaml`))
      .map((d) => d.toJSON());

    // The pod's view: ConfigMap, token Secret and the sidecar image's ks-stub, at mapped paths.
    await Deno.mkdir(`${dir}/cm`);
    for (const [key, value] of Object.entries(cm.data as Record<string, string>)) {
      const text = value
        .replaceAll("/etc/kubesonic/files/", `${dir}/cm/`)
        .replaceAll("/var/run/kubesonic/stub-credentials/", `${dir}/creds/`)
        .replaceAll("/opt/kubesonic/host/ks-stub", `${dir}/image/ks-stub`);
      await Deno.writeTextFile(`${dir}/cm/${key}`, text);
    }
    await Deno.mkdir(`${dir}/creds`);
    await Deno.writeTextFile(`${dir}/creds/token`, "token-of-bgp-stub");
    await Deno.writeTextFile(`${dir}/creds/ca.crt`, "-----BEGIN CERTIFICATE-----\n");
    await Deno.mkdir(`${dir}/image`);
    await Deno.writeTextFile(`${dir}/image/ks-stub`, "#!/bin/sh\necho ks-stub\n");

    // The switch in v0: the native launcher, no drop-in directory, no /etc/kubesonic.
    const host = `${dir}/host`;
    await Deno.mkdir(`${host}/usr/local/bin`, { recursive: true });
    await Deno.mkdir(`${host}/etc/systemd/system`, { recursive: true });
    await Deno.writeTextFile(`${host}/usr/local/bin/bgp.sh`, NATIVE_BYTES, { mode: 0o755 });
    await Deno.chmod(`${host}/usr/local/bin/bgp.sh`, 0o755);

    const env = { PATH: rec.path, HOME: dir, NO_COLOR: "1" };
    const kube = await runTool("ks-patcher", mapped(sidecarArgs(v2), dir), { env });
    assert.equal(kube.code, 0, `kube mode: ${kube.stdout}\n${kube.stderr}`);
    const launcher = await Deno.readTextFile(`${host}/usr/local/bin/bgp.sh`);
    assert.match(
      launcher,
      /exec \/usr\/local\/bin\/ks-stub bgp --kube-namespace sonic --kubeconfig \/etc\/kubesonic\/bgp\/kubeconfig "\$@"/,
    );
    assert.equal(await mode(`${host}/usr/local/bin/bgp.sh`), 0o755);
    assert.equal(await Deno.readTextFile(`${host}/etc/kubesonic/bgp/token`), "token-of-bgp-stub");
    assert.equal(await mode(`${host}/etc/kubesonic/bgp/token`), 0o600);
    assert.equal(await mode(`${host}/etc/kubesonic/bgp/kubeconfig`), 0o600);
    assert.match(
      await Deno.readTextFile(`${host}/etc/kubesonic/bgp/kubeconfig`),
      /tokenFile: \/etc\/kubesonic\/bgp\/token/,
    );
    assert.equal(
      await Deno.readTextFile(`${host}/usr/local/bin/ks-stub`),
      "#!/bin/sh\necho ks-stub\n",
    );
    assert.match(
      await Deno.readTextFile(`${host}/etc/systemd/system/bgp@.service.d/50-kubesonic.conf`),
      /User=root\nNotifyAccess=all\n/,
    );
    // (ks-patcher orders the owed actions itself: daemon-reload before anything that restarts.)
    assert.deepEqual(rec.calls(), [
      "systemctl daemon-reload",
      "docker stop bgp0",
      "docker stop bgp1",
      "systemctl reset-failed bgp@0",
      "systemctl restart bgp@0",
      "systemctl reset-failed bgp@1",
      "systemctl restart bgp@1",
    ]);

    // v1: the same sidecar in native mode puts the switch back as it was.
    const native = await runTool("ks-patcher", mapped(sidecarArgs(v1), dir), { env });
    assert.equal(native.code, 0, `native mode: ${native.stdout}\n${native.stderr}`);
    assert.equal(await Deno.readTextFile(`${host}/usr/local/bin/bgp.sh`), NATIVE_BYTES);
    for (
      const gone of [
        "/etc/systemd/system/bgp@.service.d/50-kubesonic.conf",
        "/etc/kubesonic/bgp/token",
        "/etc/kubesonic/bgp/kubeconfig",
        "/usr/local/bin/ks-stub",
      ]
    ) {
      assert.equal(await exists(`${host}${gone}`), false, `${gone} removed`);
    }
    const after = rec.calls().slice(7);
    assert.ok(after.includes("systemctl daemon-reload"), after.join("; "));
    assert.ok(
      after.includes("systemctl restart bgp@0") && after.includes("systemctl restart bgp@1"),
      after.join("; "),
    );
    assert.ok(!after.some((c) => c.startsWith("docker stop")), "native mode stops no container");
  } finally {
    await rec.remove().catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
