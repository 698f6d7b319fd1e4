import assert from "node:assert/strict";
import { loadFeatureSpec, parseFeatureSpec } from "../../src/feature/parse.ts";
import { SpecError } from "../../src/feature/spec.ts";
import { baseSpec, specYaml } from "./spec_fixture.ts";

type Spec = Record<string, unknown>;
// deno-lint-ignore no-explicit-any
type Any = any;

function parse(spec: Spec | string) {
  return parseFeatureSpec(typeof spec === "string" ? spec : specYaml(spec), "feature.yaml");
}

function expectError(mutate: (s: Any) => void, expected: string | RegExp): void {
  const spec = baseSpec();
  mutate(spec);
  let error: unknown;
  try {
    parse(spec);
  } catch (e) {
    error = e;
  }
  assert.ok(
    error instanceof SpecError,
    `expected a SpecError for ${String(expected)}, got ${error}`,
  );
  const message = (error as Error).message;
  assert.ok(!message.includes("\n"), `one line: ${message}`);
  if (typeof expected === "string") {
    assert.ok(
      message.startsWith(`feature.yaml: ${expected}`),
      `"${message}" should start with "feature.yaml: ${expected}"`,
    );
  } else {
    assert.match(message, expected);
  }
}

Deno.test("the bundled telemetry example is a valid spec with the design's 400Mi / 100m-500m", async () => {
  const spec = await loadFeatureSpec("examples/telemetry/feature.yaml");
  assert.equal(spec.name, "telemetry");
  assert.equal(spec.resources.limits.memory, "400Mi");
  assert.equal(spec.resources.requests.memory, "400Mi");
  assert.equal(spec.resources.requests.cpu, "100m");
  assert.equal(spec.resources.limits.cpu, "500m");
  assert.equal(spec.memoryLimitFrom, "monit.memoryThreshold");
  assert.equal(spec.unit.launcher, "/usr/local/bin/telemetry.sh");
  assert.ok(spec.native.launcher?.startsWith("#!/bin/bash"));
});

Deno.test("defaults: namespace sonic, OnDelete, opt-in label, privileged, host network, tool paths", () => {
  const raw = baseSpec();
  delete raw.hostRuntime;
  const spec = parse(raw);
  assert.deepEqual(spec.hostRuntime, {
    install: true,
    prefix: "/usr/local/lib/kubesonic",
    checkers: false,
  });
  assert.equal(spec.namespace, "sonic");
  assert.equal(spec.updateStrategy, "OnDelete");
  assert.deepEqual(spec.nodeSelector, { "kubesonic.io/telemetry": "enabled" });
  assert.equal(spec.privileged, true);
  assert.equal(spec.hostNetwork, true);
  assert.equal(spec.containerName, "telemetry");
  assert.equal(spec.version, "1.2.3");
  assert.equal(spec.unit.name, "telemetry");
  assert.equal(spec.stub.path, "/usr/local/bin/ks-stub");
  assert.equal(spec.tools.inject, true);
  assert.equal(spec.tools.entrypoint, "/kubesonic/bin/ks-entrypoint");
  assert.equal(spec.tools.watchdog, "/opt/kubesonic/bin/ks-watchdog");
  assert.equal(spec.images.tools, spec.images.sidecar);
  assert.deepEqual(spec.scope, { global: true, perAsic: false, asics: 0 });
});

Deno.test("hostRuntime: off by default with stub.source, refused together, prefix and checkers checked", () => {
  const withSource = baseSpec();
  delete withSource.hostRuntime;
  withSource.stub = { source: "/opt/x/ks-stub" };
  assert.equal(parse(withSource).hostRuntime.install, false);
  expectError((s) => {
    s.hostRuntime = { install: true };
    s.stub = { source: "/opt/x/ks-stub" };
  }, /hostRuntime\.install: is on while stub\.source/);
  expectError(
    (s) => (s.hostRuntime = { prefix: "/usr" }),
    /hostRuntime\.prefix: "\/usr" is too shallow/,
  );
  expectError((s) => (s.hostRuntime = { prefix: "relative/x" }), /hostRuntime\.prefix/);
  expectError(
    (s) => (s.hostRuntime = { install: false, checkers: true }),
    /hostRuntime\.checkers: needs hostRuntime\.install/,
  );
  expectError((s) => (s.hostRuntime = { bogus: 1 }), /hostRuntime\.bogus/);
});

Deno.test("tools.inject: off keeps the image's own entrypoint; on refuses paths outside the copy", () => {
  const own = baseSpec();
  own.tools = { inject: false };
  assert.equal(parse(own).tools.entrypoint, "/usr/local/bin/ks-entrypoint");
  expectError(
    (s) => (s.tools = { entrypoint: "/usr/local/bin/ks-entrypoint" }),
    /^feature\.yaml: tools\.entrypoint: "\/usr\/local\/bin\/ks-entrypoint" is not in the injected tree \/kubesonic\//,
  );
  expectError((s) => (s.tools = { inject: "yes" }), /tools\.inject/);
  expectError(
    (s) => s.mounts.push({ name: "x", hostPath: "/var/x", path: "/kubesonic/bin" }),
    /mounts\.x\.path: "\/kubesonic\/bin" overlaps \/kubesonic/,
  );
  expectError((s) => (s.images.tools = "not an image!"), /images\.tools/);
});

Deno.test("memory limit: derived from the monit threshold, exact bytes when not a whole Mi", () => {
  const odd = baseSpec();
  (odd.monit as Any).memoryThreshold = 419430401;
  const spec = parse(odd);
  assert.equal(spec.resources.limits.memory, "419430401");
  assert.equal(spec.resources.requests.memory, "419430401");

  const gi = baseSpec();
  (gi.monit as Any).memoryThreshold = "4Gi";
  assert.equal(parse(gi).resources.limits.memory, "4Gi");
});

Deno.test("memory limit: an explicit limits.memory wins over the monit threshold", () => {
  const spec = baseSpec();
  (spec.resources as Any).limits.memory = "512Mi";
  const parsed = parse(spec);
  assert.equal(parsed.resources.limits.memory, "512Mi");
  assert.equal(parsed.resources.requests.memory, "512Mi");
  assert.equal(parsed.memoryLimitFrom, "resources.limits.memory");
  assert.equal(parsed.monitMemoryThreshold, 419430400);
});

Deno.test("memory requests stay as written when given", () => {
  const spec = baseSpec();
  (spec.resources as Any).requests.memory = "200Mi";
  assert.equal(parse(spec).resources.requests.memory, "200Mi");
});

// Every bad field: the message is one line naming the file and the field.
const BAD: [string, (s: Any) => void, string | RegExp][] = [
  ["not a mapping", (s) => (s.images = "x"), "images: must be a mapping"],
  [
    "unknown top-level field",
    (s) => (s.resource = {}),
    "resource: unknown field (did you mean resources?)",
  ],
  ["wrong apiVersion", (s) => (s.apiVersion = "v1"), 'apiVersion: "v1" is not supported'],
  ["wrong kind", (s) => (s.kind = "Feature"), 'kind: "Feature" is not FeatureSpec'],
  ["missing name", (s) => delete s.name, "name: required"],
  ["uppercase name", (s) => (s.name = "Telemetry"), 'name: "Telemetry" is not a DNS label'],
  ["name too long", (s) => (s.name = "a".repeat(41)), "name: "],
  ["numeric name", (s) => (s.name = 5), 'name: 5 must be a string (quote it: "5")'],
  ["bad namespace", (s) => (s.namespace = "So_nic"), 'namespace: "So_nic" is not a DNS label'],
  ["missing images", (s) => delete s.images, "images: required"],
  ["missing feature image", (s) => delete s.images.feature, "images.feature: required"],
  [
    "image with space",
    (s) => (s.images.watchdog = "a b"),
    'images.watchdog: "a b" is not an image reference',
  ],
  ["unknown image field", (s) => (s.images.init = "x"), "images.init: unknown field"],
  ["bad pull policy", (s) => (s.images.pullPolicy = "Sometimes"), 'images.pullPolicy: "Sometimes"'],
  ["bad version", (s) => (s.version = "1.0 beta"), 'version: "1.0 beta" is not a label value'],
  ["missing command", (s) => delete s.command, "command: required"],
  ["command not a list", (s) => (s.command = "/usr/bin/supervisord"), "command: must be a list"],
  ["empty command", (s) => (s.command = []), "command: must not be empty"],
  [
    "command item not a string",
    (s) => (s.command = ["a", 3]),
    "command[1]: 3 must be a non-empty string",
  ],
  [
    "port out of range",
    (s) => (s.ports[0].port = 70000),
    "ports[0].port: 70000 is outside 1..65535",
  ],
  ["port missing", (s) => delete s.ports[0].port, "ports[0].port: required"],
  ["port name bad", (s) => (s.ports[0].name = "GNMI"), 'ports[0].name: "GNMI" is not a port name'],
  [
    "port protocol bad",
    (s) => (s.ports[0].protocol = "tcp"),
    'ports[0].protocol: "tcp" is not one of',
  ],
  [
    "duplicate port",
    (s) => s.ports.push({ name: "other", port: 50051 }),
    "ports[1]: duplicates ports[0]",
  ],
  [
    "env value not a string",
    (s) => (s.env.PORT = 50051),
    'env.PORT: 50051 must be a string (quote it: "50051")',
  ],
  [
    "env name bad",
    (s) => (s.env["BAD-NAME"] = "x"),
    'env.BAD-NAME: "BAD-NAME" is not an environment variable name',
  ],
  [
    "mount hostPath relative",
    (s) => (s.mounts[0].hostPath = "var/run"),
    'mounts[0].hostPath: "var/run" is not an absolute path',
  ],
  [
    "mount path with ..",
    (s) => (s.mounts[0].path = "/a/../b"),
    'mounts[0].path: "/a/../b" contains ".."',
  ],
  [
    "mount name reserved",
    (s) => (s.mounts[0].name = "host-root"),
    'mounts[0].name: "host-root" is reserved',
  ],
  ["mount type bad", (s) => (s.mounts[0].type = "Dir"), 'mounts[0].type: "Dir" is not one of'],
  [
    "mount readOnly not bool",
    (s) => (s.mounts[0].readOnly = "yes"),
    'mounts[0].readOnly: "yes" must be true or false',
  ],
  [
    "duplicate mount path",
    (s) => s.mounts.push({ name: "other", hostPath: "/x", path: "/var/run/redis" }),
    "mounts[1]: duplicates mounts[0] (path /var/run/redis)",
  ],
  [
    "memory not a quantity",
    (s) => (s.resources.limits.memory = "400Mx"),
    'resources.limits.memory: "400Mx" is not a quantity',
  ],
  [
    "memory in millibytes",
    (s) => (s.resources.limits.memory = "400m"),
    'resources.limits.memory: "400m" means millibytes; did you mean 400Mi?',
  ],
  [
    "cpu not a quantity",
    (s) => (s.resources.requests.cpu = "fast"),
    'resources.requests.cpu: "fast" is not a quantity',
  ],
  [
    "cpu zero",
    (s) => (s.resources.requests.cpu = "0"),
    'resources.requests.cpu: "0" must be more than zero',
  ],
  [
    "unknown resource",
    (s) => (s.resources.limits.gpu = "1"),
    "resources.limits.gpu: unknown field",
  ],
  [
    "requests above limits",
    (s) => (s.resources.requests.cpu = "2"),
    'resources.requests.cpu: "2" is more than limits.cpu "500m"',
  ],
  [
    "memory request above derived limit",
    (s) => (s.resources.requests.memory = "1Gi"),
    'resources.requests.memory: "1Gi" is more than limits.memory "400Mi"',
  ],
  [
    "no memory limit at all",
    (s) => delete s.monit,
    "resources.limits.memory: required (or set monit.memoryThreshold to derive it)",
  ],
  [
    "bad monit threshold",
    (s) => (s.monit.memoryThreshold = "lots"),
    'monit.memoryThreshold: "lots" is not a positive number of bytes',
  ],
  [
    "negative monit threshold",
    (s) => (s.monit.memoryThreshold = -1),
    "monit.memoryThreshold: -1 is not a positive number of bytes",
  ],
  [
    "scope both false",
    (s) => (s.scope = { global: false, perAsic: false }),
    "scope: global and perAsic are both false",
  ],
  [
    "scope asics too many",
    (s) => (s.scope = { perAsic: true, asics: 40 }),
    "scope.asics: 40 is outside 0..16",
  ],
  [
    "capability unknown",
    (s) => (s.capabilities = ["NET_ADMIN", "FLY"]),
    'capabilities[1]: "FLY" is not a Linux capability',
  ],
  ["watchdog port missing", (s) => delete s.watchdog.port, "watchdog.port: required"],
  [
    "watchdog port clashes",
    (s) => (s.watchdog.port = 50051),
    "watchdog.port: 50051 is also one of the feature's ports",
  ],
  ["no probes", (s) => (s.watchdog.probes = []), "watchdog.probes: required"],
  [
    "probe tcp bad",
    (s) => (s.watchdog.probes = [{ tcp: "localhost" }]),
    'watchdog.probes[0].tcp: "localhost" is not host:port',
  ],
  [
    "probe http bad",
    (s) => (s.watchdog.probes = [{ http: "ftp://x/" }]),
    'watchdog.probes[0].http: "ftp://x/" is not an http(s) URL',
  ],
  [
    "probe two kinds",
    (s) => (s.watchdog.probes = [{ tcp: "127.0.0.1:1", process: "x" }]),
    "watchdog.probes[0]: must have exactly one",
  ],
  [
    "probe unknown kind",
    (s) => (s.watchdog.probes = [{ grpc: "x" }]),
    "watchdog.probes[0].grpc: unknown field",
  ],
  [
    "liveness period zero",
    (s) => (s.watchdog.liveness = { periodSeconds: 0 }),
    "watchdog.liveness.periodSeconds: 0 is outside 1..3600",
  ],
  [
    "watchdog resources bad",
    (s) => (s.watchdog.resources = { limits: { memory: "x" } }),
    'watchdog.resources.limits.memory: "x" is not a quantity',
  ],
  [
    "sidecar interval bad",
    (s) => (s.sidecar = { interval: "often" }),
    'sidecar.interval: "often" is not a duration',
  ],
  [
    "sidecar staleClaim bad",
    (s) => (s.sidecar = { staleClaim: "soon" }),
    'sidecar.staleClaim: "soon" is not a duration',
  ],
  [
    "sidecar staleClaim under 2 x interval",
    (s) => (s.sidecar = { interval: "20s", staleClaim: "30s" }),
    'sidecar.staleClaim: "30s" must be at least 2 x sidecar.interval (20s)',
  ],
  [
    "stub path relative",
    (s) => (s.stub = { path: "ks-stub" }),
    'stub.path: "ks-stub" is not an absolute path',
  ],
  [
    "stub runtimeSocket relative",
    (s) => (s.stub = { runtimeSocket: "containerd.sock" }),
    'stub.runtimeSocket: "containerd.sock" is not an absolute path',
  ],
  [
    "stub apiServer http",
    (s) => (s.stub = { apiServer: "http://10.0.0.1:6443" }),
    'stub.apiServer: "http://10.0.0.1:6443" is not an https URL',
  ],
  [
    "stub admissionPolicy not bool",
    (s) => (s.stub = { admissionPolicy: "no" }),
    'stub.admissionPolicy: "no" must be true or false',
  ],
  [
    "unit name with .service",
    (s) => (s.unit = { name: "telemetry.service" }),
    'unit.name: "telemetry.service": leave out ".service"',
  ],
  [
    "native launcher without #!",
    (s) => (s.native = { launcher: "exec foo" }),
    "native.launcher: must start with #!",
  ],
  [
    "native both",
    (s) => (s.native = { launcher: "#!/bin/sh\n", launcherSource: "/x" }),
    "native: set launcher or launcherSource, not both",
  ],
  [
    "nodeSelector bad key",
    (s) => (s.nodeSelector = { "bad key": "x" }),
    'nodeSelector.bad key: "bad key" is not a label key',
  ],
  [
    "nodeSelector bad value",
    (s) => (s.nodeSelector = { "kubesonic.io/x": "a b" }),
    'nodeSelector.kubesonic.io/x: "a b" is not a label value',
  ],
  ["nodeSelector empty", (s) => (s.nodeSelector = {}), "nodeSelector: must not be empty"],
  [
    "toleration bad operator",
    (s) => (s.tolerations = [{ operator: "In" }]),
    'tolerations[0].operator: "In" is not Exists or Equal',
  ],
  [
    "toleration Exists with value",
    (s) => (s.tolerations = [{ key: "k", operator: "Exists", value: "v" }]),
    "tolerations[0].value: must be empty",
  ],
  [
    "toleration bad effect",
    (s) => (s.tolerations = [{ operator: "Exists", effect: "Never" }]),
    'tolerations[0].effect: "Never"',
  ],
  [
    "update strategy bad",
    (s) => (s.updateStrategy = "Recreate"),
    'updateStrategy: "Recreate" is not OnDelete or RollingUpdate',
  ],
  [
    "tools path relative",
    (s) => (s.tools = { watchdog: "ks-watchdog" }),
    'tools.watchdog: "ks-watchdog" is not an absolute path',
  ],
  [
    "hostNetwork not bool",
    (s) => (s.hostNetwork = "true"),
    'hostNetwork: "true" must be true or false',
  ],
];

for (const [what, mutate, expected] of BAD) {
  Deno.test(`bad spec (${what}) -> one line naming the field`, () => expectError(mutate, expected));
}

Deno.test("YAML syntax errors and duplicate keys are one line naming the file", () => {
  for (const text of ["name: [unclosed", "name: a\nname: b\n", ""]) {
    try {
      parse(text);
      assert.fail(`no error for ${JSON.stringify(text)}`);
    } catch (error) {
      assert.ok(error instanceof SpecError, String(error));
      assert.ok(error.message.startsWith("feature.yaml: "), error.message);
      assert.ok(!error.message.includes("\n"), error.message);
    }
  }
});

Deno.test("a missing spec file is a SpecError naming the path", async () => {
  await assert.rejects(
    () => loadFeatureSpec("/nonexistent/feature.yaml"),
    (e: Error) =>
      e instanceof SpecError &&
      e.message === "/nonexistent/feature.yaml: cannot read feature spec (no such file)",
  );
});
