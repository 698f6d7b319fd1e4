// The rendered unit drop-ins, checked with the real `systemd-analyze verify` against SONiC's unit
// layout (sonic-today.md 1.4: ExecStartPre=<launcher> start, ExecStart=… wait, ExecStop=… stop).
import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { loadFeatureSpec, parseFeatureSpec } from "../../src/feature/parse.ts";
import { renderFeature } from "../../src/render/render.ts";
import {
  systemdAnalyzeAvailable,
  type UnitFile,
  verifyUnits,
} from "../../sandbox/harness/systemd_verify.ts";
import { baseSpec, FIXTURE_TREE, specYaml } from "../feature/spec_fixture.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

/** SONiC's telemetry.service.j2 shape; `instance` makes the per-ASIC template form. */
function sonicUnit(feature: string, perAsic: boolean): string {
  const arg = perAsic ? " %i" : "";
  return [
    "[Unit]",
    `Description=${feature} container`,
    "Requires=database.service",
    "After=database.service",
    "BindsTo=sonic.target",
    "After=sonic.target",
    "StartLimitIntervalSec=1200",
    "StartLimitBurst=3",
    "",
    "[Service]",
    "User=admin",
    `ExecStartPre=/usr/local/bin/${feature}.sh start${arg}`,
    `ExecStart=/usr/local/bin/${feature}.sh wait${arg}`,
    `ExecStop=/usr/local/bin/${feature}.sh stop${arg}`,
    "RestartSec=30",
    "",
    "[Install]",
    "WantedBy=sonic.target",
    "",
  ].join("\n");
}

const SUPPORT: UnitFile[] = [
  {
    path: "/etc/systemd/system/database.service",
    content: "[Unit]\nDescription=database\n[Service]\nType=oneshot\nExecStart=/bin/true\n",
  },
  { path: "/etc/systemd/system/sonic.target", content: "[Unit]\nDescription=SONiC\n" },
];

/** The drop-in files of a render, at their host paths, read from the kube manifest + ConfigMap. */
function dropIns(result: ReturnType<typeof renderFeature>): UnitFile[] {
  const cm = parseAllDocuments(
    result.files.find((f) => f.path === "common/20-configmap.yaml")!.content,
  )[0]
    .toJSON();
  const manifest = JSON.parse(cm.data["manifest-kube.json"]);
  return manifest.files
    .filter((f: Any) => f.path.startsWith("/etc/systemd/system/"))
    .map((f: Any) => ({ path: f.path, content: cm.data[f.source.split("/").pop()] }));
}

const ignore = !systemdAnalyzeAvailable();

Deno.test({
  name: "the rendered drop-in verifies with telemetry.service as SONiC lays it out",
  ignore,
  async fn() {
    const result = renderFeature(await loadFeatureSpec("examples/telemetry/feature.yaml"), {
      tree: FIXTURE_TREE,
      profile: "production",
    });
    const drops = dropIns(result);
    assert.deepEqual(drops.map((d) => d.path), [
      "/etc/systemd/system/telemetry.service.d/50-kubesonic.conf",
    ]);
    const units = [
      ...SUPPORT,
      { path: "/usr/lib/systemd/system/telemetry.service", content: sonicUnit("telemetry", false) },
      ...drops,
    ];
    const verdict = await verifyUnits(units, { executables: ["/usr/local/bin/telemetry.sh"] });
    assert.ok(verdict.ok, verdict.output);
  },
});

Deno.test({
  name:
    "multi-ASIC: the template unit's drop-in verifies for telemetry@0 and the global unit's too",
  ignore,
  async fn() {
    const spec = parseFeatureSpec(specYaml(baseSpec()), "f.yaml");
    const result = renderFeature(spec, {
      tree: FIXTURE_TREE,
      profile: "production",
      facts: { global: true, perAsic: true, asics: 2 },
    });
    const drops = dropIns(result);
    assert.equal(drops.length, 2);
    const units = [
      ...SUPPORT,
      { path: "/usr/lib/systemd/system/telemetry.service", content: sonicUnit("telemetry", false) },
      { path: "/usr/lib/systemd/system/telemetry@.service", content: sonicUnit("telemetry", true) },
      ...drops,
    ];
    const verdict = await verifyUnits(units, {
      executables: ["/usr/local/bin/telemetry.sh"],
      verify: [
        "/usr/lib/systemd/system/telemetry.service",
        "/usr/lib/systemd/system/telemetry@0.service",
      ],
    });
    assert.ok(verdict.ok, verdict.output);
  },
});

Deno.test({
  name: "the same check refuses a broken drop-in (it can fail)",
  ignore,
  async fn() {
    const units = [
      ...SUPPORT,
      { path: "/usr/lib/systemd/system/telemetry.service", content: sonicUnit("telemetry", false) },
      {
        path: "/etc/systemd/system/telemetry.service.d/50-kubesonic.conf",
        content: "[Service]\nUsr=root\n",
      },
    ];
    const verdict = await verifyUnits(units, { executables: ["/usr/local/bin/telemetry.sh"] });
    assert.equal(verdict.ok, false);
    assert.match(verdict.output, /Usr/);
  },
});
