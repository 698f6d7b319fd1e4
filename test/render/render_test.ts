import assert from "node:assert/strict";
import { parse as parseYaml, parseAllDocuments } from "yaml";
import { buildTree } from "../../src/build/tree.ts";
import { loadFeatureSpec, parseFeatureSpec } from "../../src/feature/parse.ts";
import { SpecError } from "../../src/feature/spec.ts";
import { FILES_DIR } from "../../src/render/host_files.ts";
import { LAB_CAPABILITIES } from "../../src/render/profile.ts";
import { renderFeature, type RenderResult } from "../../src/render/render.ts";
import { parseManifest } from "../../src/patcher/manifest.ts";
import { baseSpec, FIXTURE_TREE, specYaml } from "../feature/spec_fixture.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

function docs(result: RenderResult, path: string): Any[] {
  const file = result.files.find((f) => f.path === path);
  assert.ok(file, `no ${path}`);
  return parseAllDocuments(file.content).map((d) => d.toJSON());
}

function container(ds: Any, name: string): Any {
  const c = ds.spec.template.spec.containers.find((x: Any) => x.name === name);
  assert.ok(c, `no container ${name} in ${ds.metadata.name}`);
  return c;
}

async function telemetry(profile: "production" | "lab" = "production") {
  const spec = await loadFeatureSpec("examples/telemetry/feature.yaml");
  return renderFeature(spec, { tree: FIXTURE_TREE, profile });
}

Deno.test("rendering twice gives byte-identical files", async () => {
  const a = await telemetry();
  const b = await telemetry();
  assert.deepEqual(a.files.map((f) => f.path), b.files.map((f) => f.path));
  for (let i = 0; i < a.files.length; i++) {
    assert.equal(a.files[i].content, b.files[i].content, a.files[i].path);
  }
});

Deno.test("key order in the spec does not change the output", () => {
  const spec = baseSpec();
  const reversed: Record<string, unknown> = {};
  for (const key of Object.keys(spec).reverse()) reversed[key] = spec[key];
  (reversed as Any).env = { B: "2", A: "1" };
  (spec as Any).env = { A: "1", B: "2" };
  const a = renderFeature(parseFeatureSpec(specYaml(spec), "a.yaml"), {
    tree: FIXTURE_TREE,
    profile: "production",
  });
  const b = renderFeature(parseFeatureSpec(specYaml(reversed), "b.yaml"), {
    tree: FIXTURE_TREE,
    profile: "production",
  });
  for (let i = 0; i < a.files.length; i++) {
    assert.equal(a.files[i].content, b.files[i].content, a.files[i].path);
  }
});

Deno.test("v2 DaemonSet: namespace sonic, SONiC labels, OnDelete, opt-in node label, host network", async () => {
  const [ds] = docs(await telemetry(), "v2/30-daemonset.yaml");
  assert.equal(ds.kind, "DaemonSet");
  assert.equal(ds.metadata.namespace, "sonic");
  assert.deepEqual(ds.spec.selector.matchLabels, {
    app: "telemetry",
    "app.kubernetes.io/instance": "telemetry",
  });
  const labels = ds.spec.template.metadata.labels;
  assert.equal(labels.app, "telemetry");
  assert.equal(labels.raw_container_name, "telemetry");
  assert.equal(labels["app.kubernetes.io/name"], "telemetry");
  assert.equal(labels["app.kubernetes.io/managed-by"], "ks-render");
  assert.equal(labels["kubesonic.io/stage"], "v2");
  assert.equal(labels.asic, undefined);
  assert.deepEqual(ds.spec.updateStrategy, { type: "OnDelete" });
  const pod = ds.spec.template.spec;
  assert.deepEqual(pod.nodeSelector, { "kubesonic.io/telemetry": "enabled" });
  assert.equal(pod.hostNetwork, true);
  assert.equal(pod.hostPID, true);
  assert.equal(pod.automountServiceAccountToken, false);
  assert.equal(pod.serviceAccountName, "telemetry-sidecar");
  assert.deepEqual(pod.tolerations, [{ operator: "Exists", effect: "NoSchedule" }]);
  assert.deepEqual(pod.containers.map((c: Any) => c.name), [
    "telemetry",
    "telemetry-watchdog",
    "telemetry-sidecar",
  ]);
});

Deno.test("v2 feature container: entrypoint wraps the command, 400Mi / 100m-500m, probes on the watchdog", async () => {
  const [ds] = docs(await telemetry(), "v2/30-daemonset.yaml");
  const feature = container(ds, "telemetry");
  assert.deepEqual(feature.command, [
    "/kubesonic/bin/ks-entrypoint",
    "--feature",
    "telemetry",
    "--",
    "/usr/bin/supervisord",
    "-n",
    "-c",
    "/etc/supervisor/supervisord.conf",
  ]);
  assert.deepEqual(feature.resources, {
    requests: { cpu: "100m", memory: "400Mi" },
    limits: { cpu: "500m", memory: "400Mi" },
  });
  assert.deepEqual(feature.livenessProbe.httpGet, {
    host: "127.0.0.1",
    path: "/livez",
    port: 50080,
    scheme: "HTTP",
  });
  assert.deepEqual(feature.readinessProbe.httpGet, {
    host: "127.0.0.1",
    path: "/readyz",
    port: 50080,
    scheme: "HTTP",
  });
  assert.deepEqual(feature.securityContext, { privileged: true });
  const watchdog = container(ds, "telemetry-watchdog");
  assert.deepEqual(watchdog.command, [
    "/opt/kubesonic/bin/ks-watchdog",
    "--feature",
    "telemetry",
    "--listen",
    "127.0.0.1:50080",
    "--tcp",
    "127.0.0.1:50051",
  ]);
  assert.ok(watchdog.volumeMounts.every((m: Any) => m.readOnly === true));
});

Deno.test("v2 pod: an init container copies the ks tree into an emptyDir the feature container mounts", async () => {
  const [ds] = docs(await telemetry(), "v2/30-daemonset.yaml");
  const pod = ds.spec.template.spec;
  assert.deepEqual(pod.initContainers.map((c: Any) => c.name), ["telemetry-tools"]);
  const init = pod.initContainers[0];
  assert.equal(init.image, "kubesonic/ks-tools:0.1.0");
  assert.deepEqual(init.command, [
    "/opt/kubesonic/bin/ks",
    "copy-tree",
    "/kubesonic",
    "--prime",
    "ks-entrypoint",
  ]);
  assert.deepEqual(init.volumeMounts, [{ name: "ks-tools", mountPath: "/kubesonic" }]);
  assert.deepEqual(pod.volumes.find((v: Any) => v.name === "ks-tools"), {
    name: "ks-tools",
    emptyDir: { sizeLimit: "256Mi" },
  });
  const feature = container(ds, "telemetry");
  assert.deepEqual(feature.volumeMounts.find((m: Any) => m.name === "ks-tools"), {
    name: "ks-tools",
    mountPath: "/kubesonic",
    readOnly: true,
  });
  assert.equal(feature.image, "docker-sonic-telemetry:latest", "the feature image, unmodified");
  assert.equal(feature.terminationMessagePolicy, "FallbackToLogsOnError");
  // Only the feature container sees the copy; v1 has no feature container and no init container.
  assert.equal(
    container(ds, "telemetry-watchdog").volumeMounts.some((m: Any) => m.name === "ks-tools"),
    false,
  );
  const [v1] = docs(await telemetry(), "v1/30-daemonset.yaml");
  assert.equal(v1.spec.template.spec.initContainers, undefined);
});

Deno.test("tools.inject: false renders the image's own entrypoint and no init container", () => {
  const raw = baseSpec();
  raw.tools = { inject: false };
  const result = renderFeature(parseFeatureSpec(specYaml(raw), "f.yaml"), {
    tree: FIXTURE_TREE,
    profile: "production",
  });
  const [ds] = docs(result, "v2/30-daemonset.yaml");
  assert.equal(ds.spec.template.spec.initContainers, undefined);
  assert.equal(container(ds, "telemetry").command[0], "/usr/local/bin/ks-entrypoint");
  assert.equal(container(ds, "telemetry").terminationMessagePolicy, undefined);
  assert.equal(ds.spec.template.spec.volumes.some((v: Any) => v.name === "ks-tools"), false);
});

Deno.test("sidecar: ks-patcher with the kube manifest in v2 and the native one in v1, host root at /host", async () => {
  const result = await telemetry();
  const [v1] = docs(result, "v1/30-daemonset.yaml");
  const [v2] = docs(result, "v2/30-daemonset.yaml");
  assert.deepEqual(v1.spec.template.spec.containers.map((c: Any) => c.name), ["telemetry-sidecar"]);
  assert.equal(
    v1.spec.template.metadata.labels.raw_container_name,
    undefined,
    "v1 has no feature container",
  );
  assert.equal(v1.spec.template.metadata.labels["kubesonic.io/stage"], "v1");
  assert.deepEqual(
    v1.spec.selector,
    v2.spec.selector,
    "same DaemonSet: v1 <-> v2 is an update, not a second set",
  );
  for (const [ds, mode] of [[v1, "native"], [v2, "kube"]] as const) {
    const side = container(ds, "telemetry-sidecar");
    const cmd: string[] = side.command;
    assert.equal(cmd[0], "/opt/kubesonic/bin/ks-patcher");
    assert.equal(cmd[cmd.indexOf("--manifest") + 1], `${FILES_DIR}/manifest-${mode}.json`);
    assert.equal(cmd[cmd.indexOf("--host-root") + 1], "/host");
    assert.deepEqual(
      cmd.flatMap((a, i) => (a === "--allow-root" ? [cmd[i + 1]] : [])),
      ["/etc/systemd/system/telemetry.service.d", "/usr/local/bin", "/usr/local/lib/kubesonic"],
    );
    assert.ok(
      side.volumeMounts.some((m: Any) => m.name === "host-root" && m.mountPath === "/host"),
    );
    assert.equal(ds.spec.template.spec.hostPID, true);
    const vols = ds.spec.template.spec.volumes;
    const cmVol = vols.find((v: Any) => v.name === "ks-files");
    assert.equal(cmVol.configMap.name, result.summary.configMap);
  }
});

Deno.test("sidecar: sidecar.interval and sidecar.staleClaim become ks-patcher's --interval and --stale-claim", () => {
  const spec = baseSpec() as Any;
  const plain = renderFeature(parseFeatureSpec(specYaml(spec), "a.yaml"), {
    tree: FIXTURE_TREE,
    profile: "production",
  });
  const cmdOf = (r: RenderResult) =>
    container(docs(r, "v2/30-daemonset.yaml")[0], "telemetry-sidecar").command as string[];
  assert.equal(cmdOf(plain)[cmdOf(plain).indexOf("--interval") + 1], "60s");
  assert.ok(!cmdOf(plain).includes("--stale-claim"), "the tool's default unless the spec says");
  spec.sidecar = { interval: "20s", staleClaim: "1m" };
  const short = renderFeature(parseFeatureSpec(specYaml(spec), "a.yaml"), {
    tree: FIXTURE_TREE,
    profile: "production",
  });
  const cmd = cmdOf(short);
  assert.equal(cmd[cmd.indexOf("--interval") + 1], "20s");
  assert.equal(cmd[cmd.indexOf("--stale-claim") + 1], "1m");
});

Deno.test("the manifests are valid for the patcher and install the host runtime, stub launcher and drop-in", async () => {
  // The real ks tree: the manifests' sources are its files (the ks-tools image's /opt/kubesonic).
  const { dir: tree, index } = await buildTree();
  const spec = await loadFeatureSpec("examples/telemetry/feature.yaml");
  const result = renderFeature(spec, { tree: index, profile: "production" });
  const [cm] = docs(result, "common/20-configmap.yaml");
  assert.equal(cm.immutable, true);
  assert.match(cm.metadata.name, /^telemetry-files-[0-9a-f]{10}$/);
  const dir = await Deno.makeTempDir();
  try {
    for (const [key, value] of Object.entries(cm.data)) {
      await Deno.writeTextFile(`${dir}/${key}`, value as string);
    }
    for (const mode of ["kube", "native"]) {
      const text = (cm.data[`manifest-${mode}.json`] as string)
        .replaceAll(`${FILES_DIR}/`, `${dir}/`)
        .replaceAll("/opt/kubesonic/", `${tree}/`);
      const manifest = await parseManifest(text, `${dir}/manifest-${mode}.json`);
      assert.equal(manifest.mode, mode);
      assert.equal(manifest.feature, "telemetry");
      const runtime = `/usr/local/lib/kubesonic/${index.hash}`;
      const bundle = index.files.map((f) => f.path).filter((p) => p.startsWith("lib/ks/"));
      assert.ok(bundle.includes("lib/ks/ks.js") && bundle.length > 2, `bundle: ${bundle}`);
      const hostRuntime = [
        `${runtime}/bin/deno`,
        ...bundle.map((p) => `${runtime}/${p}`),
        `${runtime}/bin/ks-stub`,
        "/usr/local/bin/ks-stub",
      ];
      const unitFiles = [
        "/etc/systemd/system/telemetry.service.d/50-kubesonic.conf",
        "/usr/local/bin/telemetry.sh",
      ];
      // kube installs the runtime before the launcher naming it; rollback takes it away last.
      assert.deepEqual(
        manifest.files.map((f) => f.path),
        mode === "kube" ? [...hostRuntime, ...unitFiles] : [...unitFiles, ...hostRuntime],
      );
      // Big sources carry their own size bound for the patcher.
      const deno = parseAllDocuments(text)[0].toJSON().files
        .find((f: Any) => f.path.endsWith("/bin/deno"));
      assert.ok(deno.maxBytes >= index.files.find((f) => f.path === "bin/deno")!.size);
      assert.match(
        new TextDecoder().decode(
          manifest.files.find((f) => f.path === "/usr/local/bin/ks-stub")!.content!,
        ),
        new RegExp(`\nKS_DENO_DIR=/run/kubesonic/deno exec ${runtime}/bin/ks-stub "\\$@"\n$`),
      );
      const launcher = manifest.files.find((f) => f.path === "/usr/local/bin/telemetry.sh")!;
      assert.equal(launcher.mode, 0o755);
      assert.ok(launcher.nativeContent, "native launcher from the spec");
      assert.deepEqual(
        launcher.actions,
        mode === "kube"
          ? ["stop-container telemetry", "reset-failed telemetry", "restart telemetry"]
          : ["reset-failed telemetry", "restart telemetry"],
      );
    }
    const launcher = cm.data["telemetry.sh"] as string;
    assert.match(launcher, /^#!\/bin\/sh\n/);
    assert.match(
      launcher,
      /\nexec \/usr\/local\/bin\/ks-stub telemetry --kube-namespace sonic "\$@"\n$/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("RBAC: the sidecar gets no rights, the stub lists/watches/deletes pods in its namespace only", async () => {
  const objects = docs(await telemetry(), "common/10-rbac.yaml");
  assert.deepEqual(objects.map((o) => `${o.kind}/${o.metadata.name}`), [
    "ServiceAccount/telemetry-sidecar",
    "ServiceAccount/telemetry-stub",
    "Role/telemetry-stub",
    "RoleBinding/telemetry-stub",
  ]);
  const role = objects.find((o) => o.kind === "Role");
  assert.deepEqual(role.rules, [{
    apiGroups: [""],
    resources: ["pods"],
    verbs: ["delete", "list", "watch"],
  }]);
  const binding = objects.find((o) => o.kind === "RoleBinding");
  assert.deepEqual(binding.subjects, [{
    kind: "ServiceAccount",
    name: "telemetry-stub",
    namespace: "sonic",
  }]);
  assert.ok(
    objects.filter((o) => o.kind === "ServiceAccount").every((o) =>
      o.automountServiceAccountToken === false
    ),
  );
});

Deno.test("stub.runtimeSocket: the launcher passes it; without it ks-stub's default holds", () => {
  const launcher = (stub?: Record<string, string>) => {
    const raw = baseSpec();
    if (stub) raw.stub = stub;
    const result = renderFeature(parseFeatureSpec(specYaml(raw), "f.yaml"), {
      profile: "production",
    });
    return docs(result, "common/20-configmap.yaml")[0].data["telemetry.sh"] as string;
  };
  assert.match(
    launcher({ runtimeSocket: "/run/cri-dockerd.sock" }),
    /--kube-namespace sonic --runtime-socket \/run\/cri-dockerd.sock "\$@"/,
  );
  assert.doesNotMatch(launcher(), /--runtime-socket/);
});

Deno.test("stub.apiServer: token Secret, synced credentials and a kubeconfig the launcher passes", () => {
  const raw = baseSpec();
  raw.stub = { apiServer: "https://10.0.0.1:6443/" };
  const result = renderFeature(parseFeatureSpec(specYaml(raw), "f.yaml"), {
    tree: FIXTURE_TREE,
    profile: "production",
  });
  const rbac = docs(result, "common/10-rbac.yaml");
  const secret = rbac.find((o) => o.kind === "Secret");
  assert.equal(secret.type, "kubernetes.io/service-account-token");
  assert.equal(secret.metadata.annotations["kubernetes.io/service-account.name"], "telemetry-stub");
  const [cm] = docs(result, "common/20-configmap.yaml");
  const kubeconfig = parseYaml(cm.data.kubeconfig);
  assert.equal(kubeconfig.clusters[0].cluster.server, "https://10.0.0.1:6443");
  assert.equal(kubeconfig.users[0].user.tokenFile, "/etc/kubesonic/telemetry/token");
  assert.match(
    cm.data["telemetry.sh"],
    /--kubeconfig \/etc\/kubesonic\/telemetry\/kubeconfig "\$@"/,
  );
  const manifest = JSON.parse(cm.data["manifest-kube.json"]);
  assert.deepEqual(manifest.files.map((f: Any) => f.path), [
    "/etc/kubesonic/telemetry/ca.crt",
    "/etc/kubesonic/telemetry/token",
    "/etc/kubesonic/telemetry/kubeconfig",
    "/etc/systemd/system/telemetry.service.d/50-kubesonic.conf",
    "/usr/local/bin/telemetry.sh",
  ]);
  assert.equal(manifest.files[1].mode, "0600");
  for (const path of ["v1/30-daemonset.yaml", "v2/30-daemonset.yaml"]) {
    const [ds] = docs(result, path);
    assert.ok(
      ds.spec.template.spec.volumes.some((v: Any) =>
        v.secret?.secretName === "telemetry-stub-token"
      ),
      `${path} mounts the stub's token (native mode removes the synced copy)`,
    );
  }
});

Deno.test("memory limit derived from monit's threshold shows in the container and the summary", () => {
  const raw = baseSpec();
  (raw.monit as Any).memoryThreshold = 838860800;
  const result = renderFeature(parseFeatureSpec(specYaml(raw), "f.yaml"), {
    tree: FIXTURE_TREE,
    profile: "production",
  });
  const [ds] = docs(result, "v2/30-daemonset.yaml");
  assert.equal(container(ds, "telemetry").resources.limits.memory, "800Mi");
  assert.equal(result.summary.memoryLimit, "800Mi");
  assert.equal(result.summary.memoryLimitFrom, "monit.memoryThreshold");
});

Deno.test("watchdog and sidecar budgets follow their measured footprint (64/96Mi, 56/80Mi, 64/160Mi installing the host runtime); a spec's own wins", async () => {
  const [ds] = docs(await telemetry(), "v2/30-daemonset.yaml");
  // ks-watchdog idles at 53-58 MiB RSS and peaks at 64-70 MiB; ks-patcher 48-53 and 52 MiB, and
  // the sidecar that installs the host runtime also holds the written pages until written back.
  assert.deepEqual(container(ds, "telemetry-watchdog").resources, {
    requests: { cpu: "10m", memory: "64Mi" },
    limits: { cpu: "200m", memory: "96Mi" },
  });
  assert.deepEqual(container(ds, "telemetry-sidecar").resources, {
    requests: { cpu: "10m", memory: "64Mi" },
    limits: { cpu: "200m", memory: "160Mi" },
  });
  // The tree's copy (init container) is charged its page cache: its own, wider limit.
  assert.deepEqual(ds.spec.template.spec.initContainers[0].resources, {
    requests: { cpu: "10m", memory: "48Mi" },
    limits: { cpu: "200m", memory: "128Mi" },
  });
  const [v1] = docs(await telemetry(), "v1/30-daemonset.yaml");
  assert.equal(container(v1, "telemetry-sidecar").resources.limits.memory, "160Mi");
  const copied = baseSpec();
  copied.stub = { source: "/opt/kubesonic/bin/ks-stub" };
  const [v1copy] = docs(
    renderFeature(parseFeatureSpec(specYaml(copied), "f.yaml"), { profile: "production" }),
    "v1/30-daemonset.yaml",
  );
  assert.deepEqual(container(v1copy, "telemetry-sidecar").resources, {
    requests: { cpu: "10m", memory: "56Mi" },
    limits: { cpu: "200m", memory: "80Mi" },
  });
  const raw = baseSpec();
  (raw.watchdog as Any).resources = { requests: { memory: "100Mi" }, limits: { memory: "200Mi" } };
  const own = renderFeature(parseFeatureSpec(specYaml(raw), "f.yaml"), { profile: "production" });
  const [ds2] = docs(own, "v2/30-daemonset.yaml");
  assert.equal(container(ds2, "telemetry-watchdog").resources.requests.memory, "100Mi");
  assert.equal(container(ds2, "telemetry-watchdog").resources.limits.memory, "200Mi");
});

Deno.test("multi-ASIC per-ASIC feature: one DaemonSet per ASIC with asic label, namespace and own ports", () => {
  const raw = baseSpec();
  raw.scope = { global: false, perAsic: true };
  const spec = parseFeatureSpec(specYaml(raw), "f.yaml");
  const result = renderFeature(spec, {
    tree: FIXTURE_TREE,
    profile: "production",
    facts: { global: false, perAsic: true, asics: 3 },
  });
  const v2 = docs(result, "v2/30-daemonset.yaml");
  assert.deepEqual(v2.map((d) => d.metadata.name), [
    "telemetry",
    "telemetry-asic0",
    "telemetry-asic1",
    "telemetry-asic2",
  ]);
  // No global instance: the `telemetry` DaemonSet carries only the sidecar (host files are per feature).
  assert.deepEqual(v2[0].spec.template.spec.containers.map((c: Any) => c.name), [
    "telemetry-sidecar",
  ]);
  for (let asic = 0; asic < 3; asic++) {
    const ds = v2[asic + 1];
    const labels = ds.spec.template.metadata.labels;
    assert.equal(labels.asic, String(asic));
    assert.equal(labels.raw_container_name, "telemetry");
    assert.equal(
      ds.spec.selector.matchLabels["app.kubernetes.io/instance"],
      `telemetry-asic${asic}`,
    );
    const feature = container(ds, "telemetry");
    assert.deepEqual(feature.command.slice(0, 6), [
      "/kubesonic/bin/ks-entrypoint",
      "--feature",
      "telemetry",
      "--asic-namespace",
      `asic${asic}`,
      "--",
    ]);
    assert.equal(feature.ports, undefined, "host ports would collide between ASICs");
    assert.ok(feature.env.some((e: Any) => e.name === "NAMESPACE_ID" && e.value === String(asic)));
    const port = 50080 + 1 + asic;
    assert.equal(feature.livenessProbe.httpGet.port, port);
    const wd = container(ds, "telemetry-watchdog").command;
    assert.equal(wd[wd.indexOf("--listen") + 1], `127.0.0.1:${port}`);
    assert.equal(wd[wd.indexOf("--asic-namespace") + 1], `asic${asic}`);
    const redis = ds.spec.template.spec.volumes.find((v: Any) => v.name === "redis");
    assert.equal(redis.hostPath.path, `/var/run/redis${asic}`);
    assert.equal(ds.spec.template.spec.hostPID, false, "no sidecar, no host PID namespace");
    assert.deepEqual(ds.spec.template.spec.containers.map((c: Any) => c.name), [
      "telemetry",
      "telemetry-watchdog",
    ]);
  }
  const [cm] = docs(result, "common/20-configmap.yaml");
  const manifest = JSON.parse(cm.data["manifest-kube.json"]);
  assert.equal(
    manifest.files[0].path,
    "/etc/systemd/system/telemetry@.service.d/50-kubesonic.conf",
  );
  assert.deepEqual(manifest.files[1].actions, [
    "stop-container telemetry0",
    "stop-container telemetry1",
    "stop-container telemetry2",
    "reset-failed telemetry@0",
    "restart telemetry@0",
    "reset-failed telemetry@1",
    "restart telemetry@1",
    "reset-failed telemetry@2",
    "restart telemetry@2",
  ]);
  assert.deepEqual(docs(result, "v1/30-daemonset.yaml").map((d) => d.metadata.name), ["telemetry"]);
});

Deno.test("per-ASIC probe targets: `{asic}` in a tcp or http target is accepted and expands per instance", () => {
  const raw = baseSpec();
  raw.scope = { global: false, perAsic: true };
  // deno-lint-ignore no-explicit-any
  (raw as any).watchdog.probes = [
    { tcp: "127.0.0.1:5006{asic}" },
    { http: "http://127.0.0.1:5007{asic}/{namespace}/health" },
  ];
  const spec = parseFeatureSpec(specYaml(raw), "f.yaml");
  const result = renderFeature(spec, {
    profile: "production",
    facts: { global: false, perAsic: true, asics: 2 },
  });
  const v2 = docs(result, "v2/30-daemonset.yaml");
  for (const asic of [0, 1]) {
    const wd = container(v2[asic + 1], "telemetry-watchdog").command;
    assert.equal(wd[wd.indexOf("--tcp") + 1], `127.0.0.1:5006${asic}`);
    assert.equal(wd[wd.indexOf("--http") + 1], `http://127.0.0.1:5007${asic}/asic${asic}/health`);
  }
  // Still refused when no instance's expansion is a host:port.
  // deno-lint-ignore no-explicit-any
  (raw as any).watchdog.probes = [{ tcp: "127.0.0.1:{namespace}" }];
  assert.throws(
    () => parseFeatureSpec(specYaml(raw), "f.yaml"),
    /watchdog\.probes\[0\]\.tcp: "127\.0\.0\.1:\{namespace\}" is not host:port/,
  );
});

Deno.test("multi-ASIC feature with both scopes: global instance plus one per ASIC", () => {
  const spec = parseFeatureSpec(specYaml(baseSpec()), "f.yaml");
  const result = renderFeature(spec, {
    tree: FIXTURE_TREE,
    profile: "production",
    facts: { global: true, perAsic: true, asics: 2 },
  });
  const v2 = docs(result, "v2/30-daemonset.yaml");
  assert.deepEqual(v2.map((d) => d.metadata.name), [
    "telemetry",
    "telemetry-asic0",
    "telemetry-asic1",
  ]);
  assert.deepEqual(v2[0].spec.template.spec.containers.map((c: Any) => c.name), [
    "telemetry",
    "telemetry-watchdog",
    "telemetry-sidecar",
  ]);
  assert.equal(v2[0].spec.template.metadata.labels.asic, undefined);
  const [cm] = docs(result, "common/20-configmap.yaml");
  const paths = JSON.parse(cm.data["manifest-kube.json"]).files.map((f: Any) => f.path);
  assert.deepEqual(paths, [
    "/etc/systemd/system/telemetry.service.d/50-kubesonic.conf",
    "/etc/systemd/system/telemetry@.service.d/50-kubesonic.conf",
    "/usr/local/bin/telemetry.sh",
  ]);
});

Deno.test("a per-ASIC feature on a single-ASIC switch runs as one plain instance", () => {
  const raw = baseSpec();
  raw.scope = { global: false, perAsic: true };
  const result = renderFeature(parseFeatureSpec(specYaml(raw), "f.yaml"), {
    tree: FIXTURE_TREE,
    profile: "production",
    asics: 1,
  });
  const v2 = docs(result, "v2/30-daemonset.yaml");
  assert.deepEqual(v2.map((d) => d.metadata.name), ["telemetry"]);
  assert.equal(container(v2[0], "telemetry").command.includes("--asic-namespace"), false);
});

Deno.test("--asics beats the config_db count, which beats the spec", () => {
  const raw = baseSpec();
  raw.scope = { global: false, perAsic: true, asics: 4 };
  const spec = parseFeatureSpec(specYaml(raw), "f.yaml");
  assert.equal(
    renderFeature(spec, { tree: FIXTURE_TREE, profile: "production" }).summary.instances.length,
    4,
  );
  assert.equal(
    renderFeature(spec, { tree: FIXTURE_TREE, profile: "production", facts: { asics: 2 } }).summary
      .instances.length,
    2,
  );
  assert.equal(
    renderFeature(spec, {
      tree: FIXTURE_TREE,
      profile: "production",
      facts: { asics: 2 },
      asics: 3,
    }).summary.instances
      .length,
    3,
  );
});

Deno.test("watchdog ports past 65535 for the ASICs are refused naming watchdog.port", () => {
  const raw = baseSpec();
  raw.scope = { global: false, perAsic: true };
  (raw.watchdog as Any).port = 65534;
  const spec = parseFeatureSpec(specYaml(raw), "f.yaml");
  assert.throws(
    () =>
      renderFeature(spec, {
        tree: FIXTURE_TREE,
        profile: "production",
        asics: 4,
        specFile: "f.yaml",
      }),
    (e: Error) =>
      e instanceof SpecError &&
      e.message.startsWith("f.yaml: watchdog.port: 65534 leaves no room for ASIC 1"),
  );
});

Deno.test("lab profile: privileged swapped for explicit capabilities (no SYS_RESOURCE), nothing else changes", async () => {
  const prod = await telemetry("production");
  const lab = await telemetry("lab");
  for (const path of ["v1/30-daemonset.yaml", "v2/30-daemonset.yaml"]) {
    const [p] = docs(prod, path);
    const [l] = docs(lab, path);
    for (const c of l.spec.template.spec.containers) {
      const sc = c.securityContext;
      if (c.name === "telemetry-watchdog") continue;
      assert.equal(sc.privileged, false, c.name);
      assert.deepEqual(sc.capabilities.add, [...LAB_CAPABILITIES]);
      assert.ok(!sc.capabilities.add.includes("SYS_RESOURCE"));
      assert.ok(sc.capabilities.add.includes("SYS_ADMIN"));
      assert.deepEqual(sc.seccompProfile, { type: "Unconfined" });
    }
    const strip = (d: Any) => {
      const copy = structuredClone(d);
      for (const c of copy.spec.template.spec.containers) {
        if (c.securityContext?.privileged !== undefined) delete c.securityContext;
      }
      return copy;
    };
    assert.deepEqual(strip(l), strip(p), `${path}: only securityContext differs`);
  }
  for (
    const path of ["common/00-namespace.yaml", "common/10-rbac.yaml", "common/20-configmap.yaml"]
  ) {
    assert.equal(
      lab.files.find((f) => f.path === path)!.content,
      prod.files.find((f) => f.path === path)!.content,
      path,
    );
  }
});

Deno.test("summary.json lists the objects per stage and every file's SHA-256", async () => {
  const result = await telemetry();
  const summary = JSON.parse(result.files.find((f) => f.path === "summary.json")!.content);
  assert.deepEqual(summary.objects.v1, [{
    kind: "DaemonSet",
    namespace: "sonic",
    name: "telemetry",
  }]);
  assert.equal(summary.objects.common.length, 8);
  assert.equal(summary.files.length, 6);
  for (const f of summary.files) assert.match(f.sha256, /^[0-9a-f]{64}$/);
});

Deno.test("the stub's admission policy: own feature's pods only; left out with admissionPolicy false", () => {
  const on = renderFeature(parseFeatureSpec(specYaml(baseSpec()), "f.yaml"), {
    tree: FIXTURE_TREE,
    profile: "production",
  });
  const [policy, binding] = docs(on, "common/15-admission.yaml");
  assert.equal(policy.kind, "ValidatingAdmissionPolicy");
  assert.equal(policy.metadata.name, "kubesonic-sonic-telemetry-stub");
  assert.deepEqual(policy.spec.matchConditions, [{
    name: "is-stub",
    expression: 'request.userInfo.username == "system:serviceaccount:sonic:telemetry-stub"',
  }]);
  assert.match(
    policy.spec.validations[0].expression,
    /oldObject\.metadata\.labels\["app"\] == "telemetry"/,
  );
  assert.deepEqual(binding.spec, { policyName: policy.metadata.name, validationActions: ["Deny"] });
  const raw = baseSpec();
  raw.stub = { admissionPolicy: false };
  const off = renderFeature(parseFeatureSpec(specYaml(raw), "f.yaml"), {
    tree: FIXTURE_TREE,
    profile: "production",
  });
  assert.equal(off.files.some((f) => f.path === "common/15-admission.yaml"), false);
});

Deno.test("containerName: the container, raw_container_name, ks-stub's argument and the native name follow it", () => {
  const raw = baseSpec();
  raw.containerName = "gnmi";
  const result = renderFeature(parseFeatureSpec(specYaml(raw), "f.yaml"), {
    tree: FIXTURE_TREE,
    profile: "production",
  });
  const [ds] = docs(result, "v2/30-daemonset.yaml");
  assert.equal(ds.spec.template.metadata.labels.raw_container_name, "gnmi");
  assert.equal(ds.spec.template.metadata.labels.app, "telemetry");
  container(ds, "gnmi");
  const [cm] = docs(result, "common/20-configmap.yaml");
  assert.match(
    cm.data["telemetry.sh"],
    /exec \/usr\/local\/bin\/ks-stub gnmi --kube-namespace sonic "\$@"/,
  );
  const manifest = JSON.parse(cm.data["manifest-kube.json"]);
  assert.equal(manifest.files[1].actions[0], "stop-container gnmi");
});
