// What ks-render takes from one switch's saved configuration (`--config-db config_db.json`): the
// feature's FEATURE-table scope flags (has_global_scope / has_per_asic_scope) and, for the
// multi-ASIC layout (`{"localhost": {...}, "asic0": {...}, ...}`, as golden configs and
// `config save` of multi-ASIC switches write it), the ASIC count.
import { SpecError } from "./spec.ts";

/** Facts about the target switch; each field is undefined when the file does not say. */
export interface SwitchFacts {
  /** FEATURE|<name>.has_global_scope. */
  global?: boolean;
  /** FEATURE|<name>.has_per_asic_scope. */
  perAsic?: boolean;
  /** Number of `asicN` sections (multi-ASIC layout); undefined for a single-ASIC file. */
  asics?: number;
  /** The FEATURE row's state, for the summary (the renderer does not gate on it). */
  state?: string;
}

function parseFlag(raw: unknown, where: string): boolean | undefined {
  if (raw === undefined || raw === null) return undefined;
  const text = String(raw).trim().toLowerCase();
  if (text === "true") return true;
  if (text === "false") return false;
  throw new SpecError(
    `${where}: ${JSON.stringify(raw)} is not True/False (a Jinja template cannot be evaluated ` +
      `here; set scope in the feature spec and leave out --config-db)`,
  );
}

/**
 * Extracts the facts for `feature` from a parsed config_db.json. Throws SpecError naming the file
 * and key when the FEATURE row is missing or a flag is not a boolean.
 */
export function switchFactsFromConfigDb(doc: unknown, feature: string, file: string): SwitchFacts {
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    throw new SpecError(`${file}: not a config_db JSON object`);
  }
  const top = doc as Record<string, unknown>;
  let host = top;
  let asics: number | undefined;
  let prefix = "";
  if (typeof top.localhost === "object" && top.localhost !== null && !("FEATURE" in top)) {
    host = top.localhost as Record<string, unknown>;
    asics = Object.keys(top).filter((k) => /^asic\d+$/.test(k)).length;
    prefix = "localhost.";
  }
  const table = host.FEATURE as Record<string, Record<string, unknown>> | undefined;
  const row = table?.[feature];
  if (row === undefined || typeof row !== "object" || row === null) {
    throw new SpecError(`${file}: ${prefix}FEATURE.${feature}: no such FEATURE entry`);
  }
  const where = (field: string) => `${file}: ${prefix}FEATURE.${feature}.${field}`;
  return {
    global: parseFlag(row.has_global_scope, where("has_global_scope")),
    perAsic: parseFlag(row.has_per_asic_scope, where("has_per_asic_scope")),
    ...(asics !== undefined ? { asics } : {}),
    ...(typeof row.state === "string" ? { state: row.state } : {}),
  };
}

/** Reads `path` and returns the facts for `feature` (SpecError on unreadable or bad JSON). */
export async function loadSwitchFacts(path: string, feature: string): Promise<SwitchFacts> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound ? "no such file" : String(error);
    throw new SpecError(`${path}: cannot read config_db (${reason})`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new SpecError(`${path}: not valid JSON: ${message.split("\n")[0]}`);
  }
  return switchFactsFromConfigDb(doc, feature, path);
}
