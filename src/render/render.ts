// ks-render's pure core: a validated feature spec + switch facts + profile -> the output files
// (path relative to the output directory -> exact bytes). No I/O, no clock, no randomness: the
// same inputs give byte-identical files.
import { createHash } from "node:crypto";
import { stringify } from "yaml";
import type { FeatureSpec } from "../feature/spec.ts";
import type { TreeIndex } from "../build/tree.ts";
import type { SwitchFacts } from "../feature/switch_facts.ts";
import { VERSION } from "../version.ts";
import { daemonSetObject, type DaemonSetPlan } from "./daemonset.ts";
import { buildHostFiles, manifestDocument } from "./host_files.ts";
import { type InstancePlan, planInstances } from "./instances.ts";
import {
  admissionObjects,
  filesConfigMap,
  type KubeObject,
  namespaceObject,
  rbacObjects,
} from "./objects.ts";
import type { Profile } from "./profile.ts";

/** Options of one render. */
export interface RenderOptions {
  profile: Profile;
  facts?: SwitchFacts;
  /** --asics: overrides the ASIC count from the config_db and the spec. */
  asics?: number;
  /** The ks tree's index (lib/tree.json): what the host runtime installs (hostRuntime). */
  tree?: TreeIndex;
  /** Input names for error messages (default "feature spec"). */
  specFile?: string;
  configDbFile?: string;
}

/** One output file. */
export interface RenderedFile {
  /** Path relative to the output directory (`common/10-rbac.yaml`). */
  path: string;
  content: string;
}

/** Object reference for the summary (what to apply or delete per stage). */
export interface ObjectRef {
  kind: string;
  namespace?: string;
  name: string;
}

/** The machine-readable account of a render (also written as summary.json). */
export interface RenderSummary {
  tool: string;
  feature: string;
  namespace: string;
  profile: Profile;
  scope: { global: boolean; perAsic: boolean; asics: number; from: "config-db" | "spec" };
  instances: { name: string; asic: number | null; unit: string; watchdogPort: number }[];
  memoryLimit: string;
  memoryLimitFrom: "resources.limits.memory" | "monit.memoryThreshold";
  configMap: string;
  /** Objects per apply step: `common` first, then `v1` (rollback state) or `v2`. */
  objects: { common: ObjectRef[]; v1: ObjectRef[]; v2: ObjectRef[] };
  /** Every other output file with its SHA-256. */
  files: { path: string; sha256: string }[];
}

/** Everything one render produces. */
export interface RenderResult {
  files: RenderedFile[];
  summary: RenderSummary;
  plan: InstancePlan;
}

/** Serialises objects as one multi-document YAML file, in the given order. */
export function toYaml(objects: unknown[]): string {
  return objects
    .map((o) =>
      stringify(o, { lineWidth: 0, indentSeq: true, aliasDuplicateObjects: false, version: "1.1" })
    )
    .join("---\n");
}

/** One object as indented JSON, ending in a newline. */
function toJson(o: unknown): string {
  return JSON.stringify(o, null, 2) + "\n";
}

function ref(o: KubeObject): ObjectRef {
  return {
    kind: o.kind,
    ...(o.metadata.namespace ? { namespace: o.metadata.namespace } : {}),
    name: o.metadata.name,
  };
}

/**
 * Renders every output of `spec`. Throws SpecError (one line naming the field) when the spec and
 * the switch facts do not fit together (e.g. watchdog ports past 65535 for many ASICs).
 */
export function renderFeature(spec: FeatureSpec, opts: RenderOptions): RenderResult {
  const plan = planInstances(spec, opts.facts, opts.asics, {
    spec: opts.specFile ?? "feature spec",
    configDb: opts.configDbFile,
  });
  const host = buildHostFiles(spec, plan, opts.tree);
  const data = {
    ...host.data,
    // JSON, which ks-patcher parses without loading a YAML parser into the resident sidecar.
    "manifest-kube.json": toJson(manifestDocument(spec, host.files, "kube")),
    "manifest-native.json": toJson(manifestDocument(spec, host.files, "native")),
  };
  const configMap = filesConfigMap(spec, data);
  const ctx = {
    spec,
    profile: opts.profile,
    configMapName: configMap.metadata.name,
    allowRoots: host.allowRoots,
  };

  const globalInstance = plan.instances.find((i) => i.asic === undefined);
  const v1Plans: DaemonSetPlan[] = [{ stage: "v1", name: spec.name, sidecar: true }];
  const v2Plans: DaemonSetPlan[] = [
    { stage: "v2", name: spec.name, instance: globalInstance, sidecar: true },
    ...plan.instances.filter((i) => i.asic !== undefined).map((instance) => ({
      stage: "v2" as const,
      name: instance.name,
      instance,
      sidecar: false,
    })),
  ];

  const namespace = [namespaceObject(spec)];
  const rbac = rbacObjects(spec);
  const admission = spec.stub.admissionPolicy ? admissionObjects(spec) : [];
  const v1 = v1Plans.map((p) => daemonSetObject(ctx, p));
  const v2 = v2Plans.map((p) => daemonSetObject(ctx, p));

  const files: RenderedFile[] = [
    { path: "common/00-namespace.yaml", content: toYaml(namespace) },
    { path: "common/10-rbac.yaml", content: toYaml(rbac) },
    ...(admission.length > 0
      ? [{ path: "common/15-admission.yaml", content: toYaml(admission) }]
      : []),
    { path: "common/20-configmap.yaml", content: toYaml([configMap]) },
    { path: "v1/30-daemonset.yaml", content: toYaml(v1) },
    { path: "v2/30-daemonset.yaml", content: toYaml(v2) },
  ];
  const summary: RenderSummary = {
    tool: `ks-render ${VERSION}`,
    feature: spec.name,
    namespace: spec.namespace,
    profile: opts.profile,
    scope: { global: plan.global, perAsic: plan.perAsic, asics: plan.asics, from: plan.scopeFrom },
    instances: plan.instances.map((i) => ({
      name: i.name,
      asic: i.asic ?? null,
      unit: i.unit,
      watchdogPort: i.watchdogPort,
    })),
    memoryLimit: spec.resources.limits.memory!,
    memoryLimitFrom: spec.memoryLimitFrom,
    configMap: configMap.metadata.name,
    objects: {
      common: [...namespace, ...rbac, ...admission, configMap].map(ref),
      v1: v1.map(ref),
      v2: v2.map(ref),
    },
    files: files.map((f) => ({
      path: f.path,
      sha256: createHash("sha256").update(f.content).digest("hex"),
    })),
  };
  files.push({ path: "summary.json", content: JSON.stringify(summary, null, 2) + "\n" });
  return { files, summary, plan };
}
