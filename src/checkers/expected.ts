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
