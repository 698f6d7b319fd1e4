// Which feature instances one switch runs: the global one and/or one per ASIC, from the spec's
// scope, the switch's FEATURE flags and its ASIC count (SONiC's rules: a single-ASIC switch runs
// every feature as one plain instance; a multi-ASIC switch runs `<feature>` when the feature has
// global scope and `<feature>N` per ASIC when it has per-ASIC scope).
import type { FeatureSpec } from "../feature/spec.ts";
import type { SwitchFacts } from "../feature/switch_facts.ts";
import { SpecError } from "../feature/spec.ts";

/** One instance of the feature: one DaemonSet. */
export interface Instance {
  /** DaemonSet name and `app.kubernetes.io/instance`: `telemetry` or `telemetry-asic0`. */
  name: string;
  /** ASIC index for a per-ASIC instance. */
  asic?: number;
  /** Multi-ASIC namespace passed to ks-entrypoint / ks-watchdog (`asic0`). */
  namespace?: string;
  /** The systemd unit this instance answers for (`telemetry` or `telemetry@0`). */
  unit: string;
  /** The native docker container it replaces (`telemetry` or `telemetry0`). */
  nativeContainer: string;
  /** Port ks-watchdog listens on (the spec's port, +1+N for ASIC N). */
  watchdogPort: number;
}

/** How the instances were decided, for the summary and the log. */
export interface InstancePlan {
  global: boolean;
  perAsic: boolean;
  asics: number;
  /** Where the scope flags came from. */
  scopeFrom: "config-db" | "spec";
  instances: Instance[];
}

/**
 * Decides the instances. `asicsOverride` (--asics) beats the config_db's ASIC count, which beats
 * the spec's scope.asics. Throws SpecError naming the field when the watchdog ports do not fit.
 */
export function planInstances(
  spec: FeatureSpec,
  facts: SwitchFacts = {},
  asicsOverride?: number,
  files: { spec: string; configDb?: string } = { spec: "feature spec" },
): InstancePlan {
  const fromDb = facts.global !== undefined || facts.perAsic !== undefined;
  const global = facts.global ?? spec.scope.global;
  const perAsic = facts.perAsic ?? spec.scope.perAsic;
  const asics = asicsOverride ?? facts.asics ?? spec.scope.asics;
  if (!global && !perAsic) {
    throw new SpecError(
      `${files.configDb ?? files.spec}: FEATURE.${spec.name}: neither global nor per-ASIC scope ` +
        `(has_global_scope / has_per_asic_scope): nothing to render`,
    );
  }
  const instances: Instance[] = [];
  const multi = asics > 1;
  if (!multi || global) {
    instances.push({
      name: spec.name,
      unit: spec.unit.name,
      nativeContainer: spec.containerName,
      watchdogPort: spec.watchdog.port,
    });
  }
  if (multi && perAsic) {
    for (let asic = 0; asic < asics; asic++) {
      const port = spec.watchdog.port + 1 + asic;
      if (port > 65535) {
        throw new SpecError(
          `${files.spec}: watchdog.port: ${spec.watchdog.port} leaves no room for ASIC ${asic}'s watchdog (port ${port})`,
        );
      }
      if (spec.ports.some((p) => p.port === port)) {
        throw new SpecError(
          `${files.spec}: watchdog.port: ASIC ${asic}'s watchdog port ${port} is also one of the feature's ports`,
        );
      }
      instances.push({
        name: `${spec.name}-asic${asic}`,
        asic,
        namespace: `asic${asic}`,
        unit: `${spec.unit.name}@${asic}`,
        nativeContainer: `${spec.containerName}${asic}`,
        watchdogPort: port,
      });
    }
  }
  return { global, perAsic, asics, scopeFrom: fromDb ? "config-db" : "spec", instances };
}

/** Expands `{asic}` (index or "") and `{namespace}` (`asicN` or "") in a spec string. */
export function expandInstance(text: string, instance: Instance): string {
  return text
    .replaceAll("{asic}", instance.asic === undefined ? "" : String(instance.asic))
    .replaceAll("{namespace}", instance.namespace ?? "");
}
