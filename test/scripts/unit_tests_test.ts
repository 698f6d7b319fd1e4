import assert from "node:assert/strict";
import { join } from "node:path";
import {
  localImports,
  SERVICE_MODULES,
  servicesReached,
  unitTests,
} from "../../scripts/unit_tests.ts";
import { REPO_ROOT } from "../../src/build/bundle.ts";

const ROOT = "/repo";

function reader(files: Record<string, string>) {
  return (path: string) => files[path];
}

Deno.test("a test reaching a service harness through a fixture is not a unit test", () => {
  const files = {
    "/repo/test/a/x_test.ts": `import assert from "node:assert/strict";\n` +
      `import { fixture } from "../../sandbox/fixtures/f.ts";`,
    "/repo/sandbox/fixtures/f.ts": `export {\n  startRedis,\n} from "../harness/redis.ts";`,
  };
  assert.deepEqual(servicesReached("/repo/test/a/x_test.ts", ROOT, reader(files)), [
    "sandbox/harness/redis.ts",
  ]);
});

Deno.test("type-only imports are no dependency; value and dynamic imports are", () => {
  const typeOnly = {
    "/repo/test/t_test.ts": `import type { KubeCluster } from "../sandbox/harness/kube.ts";\n` +
      `export type { X } from "../sandbox/harness/docker.ts";`,
  };
  assert.deepEqual(servicesReached("/repo/test/t_test.ts", ROOT, reader(typeOnly)), []);
  const mixed = {
    "/repo/test/t_test.ts":
      `import { type KubeCluster, startKube } from "../sandbox/harness/kube.ts";`,
  };
  assert.deepEqual(servicesReached("/repo/test/t_test.ts", ROOT, reader(mixed)), [
    "sandbox/harness/kube.ts",
  ]);
  const dynamic = { "/repo/test/t_test.ts": `await import("../sandbox/harness/monit.ts");` };
  assert.deepEqual(servicesReached("/repo/test/t_test.ts", ROOT, reader(dynamic)), [
    "sandbox/harness/monit.ts",
  ]);
});

Deno.test("import cycles end; package and URL imports are not followed", () => {
  const files = {
    "/repo/test/c_test.ts": `import "./a.ts";\nimport { x } from "redis";\nimport "node:fs";`,
    "/repo/test/a.ts": `import { c } from "./b.ts";`,
    "/repo/test/b.ts": `import { a } from "./a.ts";`,
  };
  assert.deepEqual(servicesReached("/repo/test/c_test.ts", ROOT, reader(files)), []);
  assert.deepEqual(localImports("/repo/test/c_test.ts", files["/repo/test/c_test.ts"]), [
    "/repo/test/a.ts",
  ]);
});

Deno.test("in this repository: pure tests are unit tests, the flows and kwok tests are not", () => {
  for (const m of SERVICE_MODULES) {
    assert.ok(Deno.statSync(join(REPO_ROOT, m)).isFile, `${m} exists`);
  }
  const unit = unitTests(REPO_ROOT);
  for (const pure of ["test/rollout/gate_test.ts", "test/scripts/unit_tests_test.ts"]) {
    assert.ok(unit.includes(pure), `${pure} is a unit test`);
  }
  for (const service of ["test/flows/flows_test.ts", "test/rollout/rollout_kwok_test.ts"]) {
    assert.ok(!unit.includes(service), `${service} needs services`);
  }
});
