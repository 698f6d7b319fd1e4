// Which pod a `ks-stub` invocation is about: the feature, its ASIC instance, this node's name and
// the namespace, turned into the label and field selectors the API server filters by. The node
// name is Kubernetes' (lowercase), not the raw hostname the design's stub used.
import { UsageError } from "../cli.ts";

/** The pod label naming the feature (FEATURE key, unit name): ks-render's and the design's `app`. */
export const APP_LABEL = "app";
/**
 * The label only feature pods carry (not v1 sidecar-only ones); its value is the feature
 * container's name (SONiC's native container name, usually the feature name).
 */
export const FEATURE_LABEL = "raw_container_name";
/** The pod label naming the ASIC instance of a per-ASIC feature. */
export const ASIC_LABEL = "asic";

/** What one invocation targets. */
export interface StubTarget {
  feature: string;
  /** ASIC index as given on the command line ("0"), undefined for a global-scope feature. */
  asic?: string;
  /** Kubernetes node name of this switch. */
  node: string;
  namespace: string;
}

/** Label and field selectors that list exactly the target's pods on this node. */
export interface PodQuery {
  namespace: string;
  labelSelector: string;
  fieldSelector: string;
}

const FEATURE_RE = /^[a-z0-9]([a-z0-9_.-]{0,61}[a-z0-9])?$/;
const NODE_RE = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

/**
 * This switch's Kubernetes node name: `flag` when given, else the hostname lowercased (node
 * names are DNS-1123 subdomains; SONiC hostnames are often upper case). Throws UsageError when the
 * result is not a valid node name.
 */
export function resolveNodeName(flag?: string, host: string = Deno.hostname()): string {
  const name = (flag !== undefined && flag !== "" ? flag : host).trim().toLowerCase();
  if (!NODE_RE.test(name)) {
    throw new UsageError(
      `node name "${name}" is not a valid Kubernetes node name` +
        (flag ? " (--node)" : " (from the hostname; pass --node)"),
    );
  }
  return name;
}

/**
 * Normalises the ASIC argument systemd passes (`$DEV`: "0", or "asic0"): returns the index
 * ("0"), undefined for "" (global instance). Throws UsageError for anything else.
 */
export function normalizeAsic(arg: string | undefined): string | undefined {
  if (arg === undefined || arg === "") return undefined;
  const match = /^(?:asic)?(\d{1,3})$/.exec(arg);
  if (!match) throw new UsageError(`asic "${arg}" is not an ASIC index (e.g. 0 or asic0)`);
  return String(Number(match[1]));
}

/** Validates a feature name (a FEATURE table key usable as a label value). */
export function validateFeature(feature: string | undefined): string {
  if (!feature) throw new UsageError("missing <feature> (e.g. ks-stub telemetry status)");
  if (!FEATURE_RE.test(feature)) {
    throw new UsageError(`feature "${feature}" is not a valid feature name (lowercase, e.g. gnmi)`);
  }
  return feature;
}

/**
 * The selectors for the target's pods: `app=<feature>` plus the presence of `raw_container_name`
 * (feature pods only, never a v1 sidecar-only pod) and, for an ASIC instance,
 * `asic in (<n>,asic<n>)` (either spelling of the label value), else `!asic` so a global
 * instance never picks a per-ASIC pod; always `spec.nodeName=<node>`.
 */
export function podQuery(target: StubTarget): PodQuery {
  const asicPart = target.asic === undefined
    ? `!${ASIC_LABEL}`
    : `${ASIC_LABEL} in (${target.asic},asic${target.asic})`;
  return {
    namespace: target.namespace,
    labelSelector: `${APP_LABEL}=${target.feature},${FEATURE_LABEL},${asicPart}`,
    fieldSelector: `spec.nodeName=${target.node}`,
  };
}

/** `telemetry` or `telemetry@asic0`: how log lines and messages name the target. */
export function targetName(target: Pick<StubTarget, "feature" | "asic">): string {
  return target.asic === undefined ? target.feature : `${target.feature}@asic${target.asic}`;
}
