// A minimal valid feature spec (as a plain object) for tests to mutate, and a helper that writes a
// spec to a temp file.
import { stringify } from "yaml";
import type { TreeIndex } from "../../src/build/tree.ts";

/** A fresh copy of a small valid spec. */
export function baseSpec(): Record<string, unknown> {
  return {
    apiVersion: "kubesonic.io/v1",
    kind: "FeatureSpec",
    name: "telemetry",
    images: {
      feature: "docker-sonic-telemetry:1.2.3",
      watchdog: "kubesonic/ks-tools:0.1.0",
      sidecar: "kubesonic/ks-tools:0.1.0",
    },
    command: ["/usr/bin/supervisord", "-n"],
    ports: [{ name: "gnmi", port: 50051 }],
    env: { RUNTIME_OWNER: "kube" },
    mounts: [
      { name: "redis", hostPath: "/var/run/redis{asic}", path: "/var/run/redis", watchdog: true },
    ],
    resources: { requests: { cpu: "100m" }, limits: { cpu: "500m" } },
    monit: { memoryThreshold: 419430400 },
    watchdog: { port: 50080, probes: [{ tcp: "127.0.0.1:50051" }] },
    // The host files without the host runtime (its own tests set it): the stub, drop-in, launcher.
    hostRuntime: { install: false },
  };
}

/** The spec as YAML text. */
export function specYaml(spec: Record<string, unknown>): string {
  return stringify(spec);
}

/** Writes `spec` (object or text) to `dir/feature.yaml` and returns the path. */
export async function writeSpec(
  dir: string,
  spec: Record<string, unknown> | string,
): Promise<string> {
  const path = `${dir}/feature.yaml`;
  await Deno.writeTextFile(path, typeof spec === "string" ? spec : specYaml(spec));
  return path;
}

const fixtureSha = (c: string) => c.repeat(64);

/**
 * A ks tree index (lib/tree.json) for renders that do not read a real tree: the host runtime's
 * files with made-up hashes. test/render/host_runtime_test.ts installs a real tree.
 */
export const FIXTURE_TREE: TreeIndex = {
  version: "0.1.0",
  arch: "x86_64",
  minGlibc: "2.27",
  loader: "/lib64/ld-linux-x86-64.so.2",
  hash: "0123456789abcdef",
  files: [
    { path: "bin/deno", sha256: fixtureSha("a"), size: 95_600_728, mode: "0755" },
    { path: "bin/ks", sha256: fixtureSha("b"), size: 700, mode: "0755" },
    { path: "bin/ks-container-checker", sha256: fixtureSha("c"), size: 700, mode: "0755" },
    { path: "bin/ks-memory-checker", sha256: fixtureSha("d"), size: 700, mode: "0755" },
    { path: "bin/ks-stub", sha256: fixtureSha("e"), size: 700, mode: "0755" },
    { path: "lib/ks/chunk-A.js", sha256: fixtureSha("9"), size: 784_250, mode: "0644" },
    { path: "lib/ks/ks-stub-B.js", sha256: fixtureSha("8"), size: 40_513, mode: "0644" },
    { path: "lib/ks/ks.js", sha256: fixtureSha("f"), size: 2_414, mode: "0644" },
  ],
};
