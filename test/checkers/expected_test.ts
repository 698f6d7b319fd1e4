// The expected set, computed as SONiC's container_checker does, from FEATURE rows and asic.conf.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  applyTelemetryChoice,
  expectedContainers,
  imageRepositoryName,
  readAsicCount,
  telemetryContainer,
} from "../../src/checkers/expected.ts";
import { checkerName } from "../../src/checkers/runtimes.ts";

const row = (state: string, extra: Record<string, string> = {}) => ({ state, ...extra });

Deno.test("single ASIC: every feature not disabled/always_disabled, frr_bmp skipped", () => {
  const table = new Map([
    ["database", row("always_enabled")],
    ["swss", row("enabled")],
    ["telemetry", row("enabled", { has_per_asic_scope: "True" })],
    ["bmp", row("disabled")],
    ["mux", row("always_disabled")],
    ["frr_bmp", row("enabled")],
    ["templated", row("{% if x %}enabled{% endif %}")],
  ]);
  const { expected, alwaysRunning } = expectedContainers(table, 1);
  assert.deepEqual([...expected].sort(), ["database", "swss", "telemetry", "templated"]);
  assert.deepEqual([...alwaysRunning], ["database"]);
});

Deno.test("multi-ASIC: global and per-ASIC scopes, always_enabled per ASIC, extras", () => {
  const table = new Map([
    ["database", row("always_enabled", { has_global_scope: "True", has_per_asic_scope: "True" })],
    ["bgp", row("enabled", { has_global_scope: "False", has_per_asic_scope: "True" })],
    ["telemetry", row("enabled")], // has_global_scope defaults to True, per-ASIC to False
    ["lldp", row("disabled", { has_per_asic_scope: "True" })],
  ]);
  const { expected, alwaysRunning } = expectedContainers(table, 3, ["database-chassis"]);
  assert.deepEqual([...expected].sort(), [
    "bgp0",
    "bgp1",
    "bgp2",
    "database",
    "database-chassis",
    "database0",
    "database1",
    "database2",
    "telemetry",
  ]);
  assert.deepEqual([...alwaysRunning].sort(), [
    "database",
    "database-chassis",
    "database0",
    "database1",
    "database2",
  ]);
});

Deno.test("asic.conf: NUM_ASIC read; a missing file means one ASIC; garbage is an error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "a.conf"), "NUM_ASIC=4\nDEV_ID_ASIC_0=03:00.0\n");
    assert.equal(await readAsicCount(join(dir, "a.conf")), 4);
    assert.equal(await readAsicCount(join(dir, "none.conf")), 1);
    assert.equal(await readAsicCount(undefined), 1);
    await Deno.writeTextFile(join(dir, "b.conf"), "NUM_ASIC=two\n");
    await assert.rejects(readAsicCount(join(dir, "b.conf")), /b\.conf: NUM_ASIC="two"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("label rules: sonic namespace, container type, never POD or <no value>", () => {
  const k8s = (extra: Record<string, string>) => ({
    "io.kubernetes.pod.namespace": "sonic",
    "io.kubernetes.container.name": "telemetry",
    ...extra,
  });
  assert.equal(checkerName("docker", {}, "swss"), "swss");
  assert.equal(checkerName("cri", {}, "swss"), undefined);
  assert.equal(
    checkerName("docker", k8s({ "io.kubernetes.docker.type": "container" }), "x"),
    "telemetry",
  );
  assert.equal(checkerName("docker", k8s({}), "x"), undefined);
  assert.equal(checkerName("cri", k8s({}), "x"), "telemetry");
  assert.equal(
    checkerName("docker", k8s({ "io.kubernetes.docker.type": "podsandbox" }), "x"),
    undefined,
  );
  assert.equal(
    checkerName("cri", k8s({ "io.kubernetes.pod.namespace": "default" }), "x"),
    undefined,
  );
  // --kube-namespace: another namespace counts instead of sonic, never both.
  assert.equal(
    checkerName("cri", k8s({ "io.kubernetes.pod.namespace": "default" }), "x", "default"),
    "telemetry",
  );
  assert.equal(checkerName("cri", k8s({}), "x", "default"), undefined);
  for (const bad of ["POD", "<no value>", ""]) {
    assert.equal(checkerName("cri", k8s({ "io.kubernetes.container.name": bad }), "x"), undefined);
  }
});

Deno.test("image references: the repository's last path component, without tag or digest", () => {
  assert.equal(imageRepositoryName("docker-sonic-telemetry"), "docker-sonic-telemetry");
  assert.equal(imageRepositoryName("docker-sonic-telemetry:latest"), "docker-sonic-telemetry");
  assert.equal(imageRepositoryName("registry:5000/docker-sonic-gnmi:v2"), "docker-sonic-gnmi");
  assert.equal(imageRepositoryName("registry:5000/sonic/docker-sonic-gnmi"), "docker-sonic-gnmi");
  assert.equal(
    imageRepositoryName("acr.io/sonic/docker-sonic-gnmi@sha256:" + "a".repeat(64)),
    "docker-sonic-gnmi",
  );
  assert.equal(imageRepositoryName("<none>:<none>"), "<none>");
  // A registry port is not a tag; a lookalike name is not the image.
  assert.equal(imageRepositoryName("docker-sonic-telemetry-dbg:1"), "docker-sonic-telemetry-dbg");
});

Deno.test("telemetry row: telemetry image wins, else gnmi, else skipped; unknown keeps it", () => {
  assert.equal(
    telemetryContainer(["docker-sonic-telemetry:latest", "r:5000/docker-sonic-gnmi:v1"], true),
    "telemetry",
  );
  assert.equal(telemetryContainer(["r:5000/docker-sonic-gnmi:v1"], true), "gnmi");
  assert.equal(telemetryContainer(["docker-sonic-telemetry-dbg:latest"], true), "skip");
  assert.equal(telemetryContainer([], false), "unknown");
  // Seen somewhere: a runtime that could not be asked does not matter.
  assert.equal(telemetryContainer(["docker-sonic-telemetry:x"], false), "telemetry");

  const table = new Map([["telemetry", row("enabled", { has_per_asic_scope: "True" })]]);
  assert.equal(applyTelemetryChoice(table, "telemetry"), table);
  assert.equal(applyTelemetryChoice(table, "unknown"), table);
  assert.deepEqual([...applyTelemetryChoice(table, "skip").keys()], []);
  // gnmi without its own row follows the telemetry row, scopes included.
  const asGnmi = applyTelemetryChoice(table, "gnmi");
  assert.deepEqual([...expectedContainers(asGnmi, 2).expected].sort(), ["gnmi", "gnmi0", "gnmi1"]);
  // gnmi with its own row follows that row (SONiC reads FEATURE|gnmi).
  const both = new Map([...table, ["gnmi", row("disabled")]]);
  assert.deepEqual([...expectedContainers(applyTelemetryChoice(both, "gnmi"), 1).expected], []);
  assert.equal(table.size, 1, "the input table is not changed");
});
