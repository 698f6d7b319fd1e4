// The set of containers that should be running, computed as SONiC's container_checker does:
// FEATURE rows whose state is not disabled/always_disabled; on a multi-ASIC platform
// `has_global_scope` -> `<name>` and `has_per_asic_scope` -> `<name><asic>` for each ASIC; the
// always-running containers (always_enabled features, plus any the platform names) added. The
// ASIC count comes from the platform's `asic.conf` (NUM_ASIC), whose path is configurable.
import { joinPath as join } from "../path_join.ts";
import type { FeatureTable } from "../sonic/config_db.ts";

/** FEATURE rows that are options of other containers, not containers (skipped like SONiC). */
export const NOT_CONTAINERS = new Set(["frr_bmp"]);

/** The expected and always-running sets. */
export interface ExpectedContainers {
  /** Everything that must run (includes alwaysRunning). */
  expected: Set<string>;
  /** Containers that must run whatever FEATURE says (always_enabled + platform extras). */
  alwaysRunning: Set<string>;
}

function scopes(
  name: string,
  row: Record<string, string>,
  numAsics: number,
): string[] {
  if (numAsics <= 1) return [name];
  const out: string[] = [];
  if ((row.has_global_scope ?? "True") === "True") out.push(name);
  if ((row.has_per_asic_scope ?? "False") === "True") {
    for (let asic = 0; asic < numAsics; asic++) out.push(`${name}${asic}`);
  }
  return out;
}

/**
 * Computes the expected containers from the FEATURE table. `numAsics` > 1 means multi-ASIC;
 * `extraAlwaysRunning` are added as is (e.g. `database-chassis` on a chassis supervisor).
 */
export function expectedContainers(
  table: FeatureTable,
  numAsics: number,
  extraAlwaysRunning: Iterable<string> = [],
): ExpectedContainers {
  const expected = new Set<string>();
  const alwaysRunning = new Set<string>(extraAlwaysRunning);
  for (const [name, row] of table) {
    if (NOT_CONTAINERS.has(name)) continue;
    const state = row.state ?? "";
    if (state !== "disabled" && state !== "always_disabled") {
      for (const n of scopes(name, row, numAsics)) expected.add(n);
    }
    if (state === "always_enabled") {
      for (const n of scopes(name, row, numAsics)) alwaysRunning.add(n);
    }
  }
  for (const n of alwaysRunning) expected.add(n);
  return { expected, alwaysRunning };
}

/** SONiC's machine.conf, which names the platform. */
export const DEFAULT_MACHINE_CONF = "/host/machine.conf";

/**
 * Where asic.conf is: `--asic-conf` > KS_ASIC_CONF > `/usr/share/sonic/device/<platform>/asic.conf`
 * with the platform from PLATFORM or machine.conf (`onie_platform` / `aboot_platform`);
 * undefined when the platform is unknown (single ASIC).
 */
export async function resolveAsicConfPath(flag?: string): Promise<string | undefined> {
  if (flag) return flag;
  const env = Deno.env.get("KS_ASIC_CONF");
  if (env) return env;
  let platform = Deno.env.get("PLATFORM");
  if (!platform) {
    try {
      const text = await Deno.readTextFile(
        Deno.env.get("KS_MACHINE_CONF") ?? DEFAULT_MACHINE_CONF,
      );
      platform = /^(?:onie|aboot)_platform=(.+)$/m.exec(text)?.[1]?.trim();
    } catch { /* no machine.conf: not a SONiC host */ }
  }
  return platform ? join("/usr/share/sonic/device", platform, "asic.conf") : undefined;
}

/**
 * Reads NUM_ASIC from asic.conf; 1 when the file does not exist (single-ASIC platforms ship
 * none). Throws naming the file when NUM_ASIC is present but not a positive integer.
 */
export async function readAsicCount(path: string | undefined): Promise<number> {
  if (!path) return 1;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 1;
    throw new Error(`cannot read ${path}: ${e instanceof Error ? e.message : e}`);
  }
  const m = /^\s*NUM_ASIC\s*=\s*"?([^"\s]*)"?\s*$/m.exec(text);
  if (!m) return 1;
  const n = Number(m[1]);
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`${path}: NUM_ASIC="${m[1]}" is not a positive integer`);
  }
  return n;
}

/** The image SONiC's telemetry feature runs (absent on images that ship gnmi instead). */
export const TELEMETRY_IMAGE = "docker-sonic-telemetry";
/** The image of the gnmi container that replaces telemetry on newer images. */
export const GNMI_IMAGE = "docker-sonic-gnmi";
/** SONiC container_checker's line when neither image is on the node (the check is skipped). */
export const TELEMETRY_SKIPPED_MESSAGE =
  "Ignoring telemetry container check on image which has no corresponding telemetry or gnmi docker image";

/**
 * The repository's last path component of an image reference, without tag or digest:
 * `registry:5000/sonic/docker-sonic-gnmi:v2` and `docker-sonic-gnmi@sha256:…` both give
 * `docker-sonic-gnmi`. A kubelet-pulled image carries its registry's name, a native one none.
 */
export function imageRepositoryName(ref: string): string {
  const noDigest = ref.split("@")[0];
  const last = noDigest.slice(noDigest.lastIndexOf("/") + 1);
  const colon = last.indexOf(":");
  return colon === -1 ? last : last.slice(0, colon);
}

/**
 * Which container the FEATURE row `telemetry` stands for on this node, as SONiC's
 * container_checker decides it: `telemetry` when a docker-sonic-telemetry image is present;
 * else `gnmi` when a docker-sonic-gnmi image is; else `skip`. `unknown` when neither was seen
 * but a runtime could not be asked (`complete` false): the row is then kept as `telemetry`.
 */
export function telemetryContainer(
  imageRefs: Iterable<string>,
  complete: boolean,
): "telemetry" | "gnmi" | "skip" | "unknown" {
  const names = new Set<string>();
  for (const ref of imageRefs) names.add(imageRepositoryName(ref));
  if (names.has(TELEMETRY_IMAGE)) return "telemetry";
  if (!complete) return "unknown";
  return names.has(GNMI_IMAGE) ? "gnmi" : "skip";
}

/**
 * The FEATURE table with the `telemetry` row replaced as `choice` says: `gnmi` -> the row is
 * checked as `gnmi` (FEATURE|gnmi when it exists, else the telemetry row's own state and scopes);
 * `skip` -> the row is dropped; otherwise the table is returned unchanged.
 */
export function applyTelemetryChoice(
  table: FeatureTable,
  choice: "telemetry" | "gnmi" | "skip" | "unknown",
): FeatureTable {
  const row = table.get("telemetry");
  if (row === undefined || choice === "telemetry" || choice === "unknown") return table;
  const out = new Map(table);
  out.delete("telemetry");
  if (choice === "gnmi" && !out.has("gnmi")) out.set("gnmi", row);
  return out;
}
