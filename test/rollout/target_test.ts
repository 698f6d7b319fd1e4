import assert from "node:assert/strict";
import { join } from "node:path";
import {
  daemonSetFromManifest,
  resolveTarget,
  revisionTemplate,
  TargetError,
  templateDigest,
} from "../../src/rollout/target.ts";
import type { ControllerRevision } from "../../src/rollout/cluster.ts";

const ds = (name: string, image: string) => ({
  apiVersion: "apps/v1",
  kind: "DaemonSet",
  metadata: { name },
  spec: {
    selector: { matchLabels: { app: name } },
    template: { metadata: { labels: { app: name } }, spec: { containers: [{ name, image }] } },
  },
});

function revision(n: number, hash: string, image: string): ControllerRevision {
  return {
    metadata: { name: `telemetry-${hash}`, labels: { "controller-revision-hash": hash } },
    revision: n,
    data: { spec: { template: { ...ds("telemetry", image).spec.template, $patch: "replace" } } },
  };
}

Deno.test("target: the feature's DaemonSet is picked from a multi-document manifest", () => {
  const text = [
    "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: telemetry}",
    JSON.stringify(ds("gnmi", "gnmi:v2")),
    JSON.stringify(ds("telemetry", "telemetry:v2")),
  ].join("\n---\n");
  const picked = daemonSetFromManifest(text, "m.yaml", "telemetry");
  assert.equal(picked.metadata.name, "telemetry");
  // A List works too, and a single DaemonSet is taken whatever its name.
  const list = JSON.stringify({ kind: "List", items: [ds("other", "x:1")] });
  assert.equal(daemonSetFromManifest(list, "l.json", "telemetry").metadata.name, "other");
});

Deno.test("target: a manifest without the DaemonSet, or not YAML, names the file", () => {
  assert.throws(
    () => daemonSetFromManifest("kind: ConfigMap\nmetadata: {name: x}", "cm.yaml", "telemetry"),
    (e) =>
      e instanceof TargetError && /--to cm\.yaml: no DaemonSet named telemetry/.test(e.message),
  );
  assert.throws(
    () => daemonSetFromManifest("a: [unclosed", "bad.yaml", "telemetry"),
    (e) => e instanceof TargetError && /--to bad\.yaml: not YAML/.test(e.message),
  );
});

Deno.test("target: the digest ignores key order and changes with the template", () => {
  const a = { metadata: { labels: { a: "1", b: "2" } }, spec: { containers: [] } };
  const b = { spec: { containers: [] }, metadata: { labels: { b: "2", a: "1" } } };
  assert.equal(templateDigest(a), templateDigest(b));
  assert.notEqual(templateDigest(a), templateDigest({ ...a, spec: { containers: [{}] } }));
});

Deno.test("target: a revision is found by number, name or hash; the $patch marker is dropped", async () => {
  const revisions = [revision(1, "aaa111", "telemetry:v1"), revision(2, "bbb222", "telemetry:v2")];
  const list = () => Promise.resolve(revisions);
  for (const to of ["1", "telemetry-aaa111", "aaa111"]) {
    const t = await resolveTarget(to, "telemetry", list);
    assert.equal(t.source, "revision 1 (telemetry-aaa111)");
    assert.equal(
      (t.template.spec as { containers: { image: string }[] }).containers[0].image,
      "telemetry:v1",
    );
    assert.equal("$patch" in t.template, false);
  }
  assert.deepEqual(revisionTemplate(revisions[1]), ds("telemetry", "telemetry:v2").spec.template);
  await assert.rejects(
    resolveTarget("7", "telemetry", list),
    (e) => e instanceof TargetError && /revisions: 1 \(telemetry-aaa111\), 2/.test(e.message),
  );
});

Deno.test("target: an existing file is read as the manifest", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "v2.yaml");
    await Deno.writeTextFile(path, JSON.stringify(ds("telemetry", "telemetry:v2")));
    const t = await resolveTarget(path, "telemetry", () => Promise.reject(new Error("unused")));
    assert.equal(t.source, path);
    assert.equal(t.digest, templateDigest(ds("telemetry", "telemetry:v2").spec.template));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
