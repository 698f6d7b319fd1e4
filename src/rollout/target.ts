// What `--to` names: a manifest file (YAML or JSON, one or many documents, as ks-render writes
// them; the DaemonSet of the feature is taken from it) or a revision of the DaemonSet (its number,
// ControllerRevision name or hash). Resolves it to the pod template to set, and a digest of that
// template that identifies the rollout's target across runs.
import { createHash } from "node:crypto";
import { parseAllDocuments } from "yaml";
import { BadInputError } from "../cli.ts";
import type { ControllerRevision, DaemonSet, PodTemplate } from "./cluster.ts";

/** The template a rollout moves to. */
export interface Target {
  template: PodTemplate;
  /** sha256 of the template's canonical JSON (first 16 hex digits). */
  digest: string;
  /** What the user named, for messages: the manifest path or `revision N (name)`. */
  source: string;
}

/** A `--to` that names neither a usable manifest nor a revision; the message says which input. */
export class TargetError extends BadInputError {
  override name = "TargetError";
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      out[key] = canonical((value as Record<string, unknown>)[key]);
    }
    return out;
  }
  return value;
}

/** The digest of a pod template (stable across key order). */
export function templateDigest(template: PodTemplate): string {
  return createHash("sha256").update(JSON.stringify(canonical(template))).digest("hex").slice(
    0,
    16,
  );
}

/** The template stored in a ControllerRevision (its `$patch: replace` marker dropped). */
export function revisionTemplate(cr: ControllerRevision): PodTemplate {
  const template = cr.data?.spec?.template;
  if (!template) throw new TargetError(`controllerrevision ${cr.metadata.name} holds no template`);
  const copy = structuredClone(template) as Record<string, unknown>;
  delete copy["$patch"];
  return copy as PodTemplate;
}

/** The DaemonSet's current revision: the ControllerRevision with the highest revision number. */
export function currentRevision(revisions: ControllerRevision[]): ControllerRevision | undefined {
  return revisions.reduce<ControllerRevision | undefined>(
    (best, cr) => (!best || cr.revision > best.revision ? cr : best),
    undefined,
  );
}

/** The hash pods of a revision carry (`controller-revision-hash`). */
export function revisionHash(cr: ControllerRevision): string {
  return cr.metadata.labels?.["controller-revision-hash"] ??
    cr.metadata.name.slice(cr.metadata.name.lastIndexOf("-") + 1);
}

/**
 * Parses manifest text and returns the DaemonSet named `name` (or the only DaemonSet) in it.
 * Throws TargetError naming `path` when there is none or it has no pod template.
 */
export function daemonSetFromManifest(text: string, path: string, name: string): DaemonSet {
  const docs = parseAllDocuments(text);
  const objects: unknown[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) {
      throw new TargetError(`--to ${path}: not YAML/JSON: ${doc.errors[0].message.split("\n")[0]}`);
    }
    const value = doc.toJS();
    if (value && typeof value === "object" && (value as { kind?: string }).kind === "List") {
      objects.push(...((value as { items?: unknown[] }).items ?? []));
    } else if (value) objects.push(value);
  }
  const sets = objects.filter((o) => (o as { kind?: string }).kind === "DaemonSet") as DaemonSet[];
  const ds = sets.find((d) => d.metadata?.name === name) ??
    (sets.length === 1 ? sets[0] : undefined);
  if (!ds) {
    throw new TargetError(
      `--to ${path}: no DaemonSet named ${name} in it (found ${sets.length} DaemonSet(s))`,
    );
  }
  if (!ds.spec?.template || typeof ds.spec.template !== "object") {
    throw new TargetError(`--to ${path}: DaemonSet ${name} has no spec.template`);
  }
  return ds;
}

/**
 * Resolves `--to`: an existing file is read as a manifest; otherwise the value must name one of
 * `revisions` by number, ControllerRevision name or hash. Throws TargetError otherwise.
 */
export async function resolveTarget(
  to: string,
  dsName: string,
  revisions: () => Promise<ControllerRevision[]>,
): Promise<Target> {
  let text: string | undefined;
  try {
    text = await Deno.readTextFile(to);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      throw new TargetError(`--to ${to}: cannot read it: ${(error as Error).message}`);
    }
  }
  if (text !== undefined) {
    const template = daemonSetFromManifest(text, to, dsName).spec.template;
    return { template, digest: templateDigest(template), source: to };
  }
  const all = await revisions();
  const cr = all.find((r) =>
    String(r.revision) === to || r.metadata.name === to || revisionHash(r) === to
  );
  if (!cr) {
    const known = all.map((r) => `${r.revision} (${r.metadata.name})`).join(", ") || "none";
    throw new TargetError(
      `--to ${to}: neither a manifest file nor a revision of daemonset ${dsName} (revisions: ${known})`,
    );
  }
  const template = revisionTemplate(cr);
  return {
    template,
    digest: templateDigest(template),
    source: `revision ${cr.revision} (${cr.metadata.name})`,
  };
}
