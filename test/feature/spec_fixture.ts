// A minimal valid feature spec (as a plain object) for tests to mutate, and a helper that writes a
// spec to a temp file.
import { stringify } from "yaml";

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
