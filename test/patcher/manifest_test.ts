import assert from "node:assert/strict";
import { ManifestError, parseManifest, sourceReadBudgetMs } from "../../src/patcher/manifest.ts";
import { sha256Hex } from "../../src/patcher/hash.ts";

const good = {
  apiVersion: "kubesonic.io/v1",
  kind: "HostFiles",
  feature: "telemetry",
  mode: "kube",
  files: [{
    path: "/usr/local/bin/telemetry.sh",
    content: '#!/bin/sh\nexec ks-stub telemetry "$@"\n',
    mode: "0755",
    owner: "0:0",
    actions: ["daemon-reload", "restart telemetry"],
  }],
};

function withFile(patch: Record<string, unknown>) {
  return { ...good, files: [{ ...good.files[0], ...patch }] };
}

async function errorOf(doc: unknown, file = "/sidecar/m.json"): Promise<string> {
  try {
    await parseManifest(JSON.stringify(doc), file);
  } catch (error) {
    assert.ok(error instanceof ManifestError, String(error));
    assert.ok(!error.message.includes("\n"), "one line");
    return error.message;
  }
  throw new Error("expected a ManifestError");
}

Deno.test("a contract-3 manifest parses, in YAML and JSON, with mode, owner, actions and sha256", async () => {
  const sha = await sha256Hex(new TextEncoder().encode(good.files[0].content));
  const yaml = `apiVersion: kubesonic.io/v1
kind: HostFiles
feature: telemetry
mode: kube
files:
  - path: /usr/local/bin/telemetry.sh
    content: "x\\n"
    mode: "0755"
    owner: "0:0"
    actions: ["daemon-reload", "restart telemetry"]
`;
  const fromYaml = await parseManifest(yaml, "/sidecar/m.yaml");
  assert.equal(fromYaml.files[0].mode, 0o755);
  assert.deepEqual(fromYaml.files[0].actions, ["daemon-reload", "restart telemetry"]);
  const fromJson = await parseManifest(
    JSON.stringify(withFile({ sha256: sha })),
    "/sidecar/m.json",
  );
  assert.equal(fromJson.files[0].sha256, sha);
  assert.equal(fromJson.feature, "telemetry");
});

Deno.test("each bad field is refused with one line naming the file and the field", async () => {
  const cases: [unknown, string][] = [
    [{ ...good, apiVersion: "v2" }, "apiVersion"],
    [{ ...good, kind: "Pod" }, "kind"],
    [{ ...good, feature: "Tele metry" }, "feature"],
    [{ ...good, mode: "hybrid" }, "mode"],
    [{ ...good, files: [] }, "files"],
    [{ ...good, surprise: 1 }, "surprise"],
    [withFile({ path: "usr/local/bin/x" }), "files[0].path"],
    [withFile({ path: "/usr/local/../../etc/shadow" }), "files[0].path"],
    [withFile({ mode: "0999" }), "files[0].mode"],
    [withFile({ mode: 755 }), "files[0].mode"],
    [withFile({ owner: "root" }), "files[0].owner"],
    [withFile({ actions: ["reboot"] }), "files[0].actions[0]"],
    [withFile({ actions: ["restart a;b"] }), "files[0].actions[0]"],
    [withFile({ sha256: "0".repeat(64) }), "files[0].sha256"],
    [withFile({ source: "/nonexistent/file" }), "files[0]"],
    [withFile({ content: undefined, source: "/nonexistent/file" }), "files[0].source"],
    [{ ...good, files: [good.files[0], good.files[0]] }, "files[1].path"],
    [withFile({ typo: true }), "files[0].typo"],
  ];
  for (const [doc, field] of cases) {
    const message = await errorOf(doc);
    assert.ok(message.startsWith(`manifest /sidecar/m.json: ${field}:`), `${field}: ${message}`);
  }
});

Deno.test("a declared sha256 that does not match the content names both hashes", async () => {
  const message = await errorOf(withFile({ sha256: "a".repeat(64) }));
  assert.match(message, /declared a{64} but the content hashes to [0-9a-f]{64}/);
});

Deno.test("a source's read time bound grows with its size: 30 s, plus 1 s per MiB", () => {
  assert.equal(sourceReadBudgetMs(0), 30_000);
  assert.equal(sourceReadBudgetMs(4096), 31_000);
  // The host runtime's Deno (~95 MB) gets more than two minutes, not 30 s.
  const deno = 95_600_728;
  assert.equal(sourceReadBudgetMs(deno), 30_000 + 92 * 1_000);
  assert.ok(sourceReadBudgetMs(deno) > 120_000);
});
