// The patcher's desired-state manifest (`kind: HostFiles`): parsed from YAML or JSON
// and validated as a whole — every field, every source file read and its declared SHA-256 checked
// — before the patcher touches anything. Errors are one line naming the file and the field.
import { parse as parseYaml } from "yaml";
import { dirname, resolve } from "node:path";
import { splitHostPath } from "../host/paths.ts";
import { type Action, parseAction } from "./actions.ts";
import { sha256Hex } from "./hash.ts";

/** A manifest that failed validation; the message is one line naming the file and the field. */
export class ManifestError extends Error {
  override name = "ManifestError";
}

/** One managed host file, with its desired content already loaded and verified. */
export interface ManagedFile {
  /** Host path (as the switch sees it). */
  path: string;
  /** Desired bytes (from `source` or `content`). */
  content: Uint8Array;
  sha256: string;
  mode: number;
  uid: number;
  gid: number;
  /** Bytes to restore in native mode when no backup exists (from `nativeSource`). */
  nativeContent?: Uint8Array;
  /** Follow-up actions when this file changes, in declared order. */
  actions: Action[];
}

/** A validated manifest. */
export interface Manifest {
  /** The manifest file it came from. */
  file: string;
  feature: string;
  mode: "kube" | "native";
  files: ManagedFile[];
}

const TOP_KEYS = new Set(["apiVersion", "kind", "feature", "mode", "files", "metadata"]);
const FILE_KEYS = new Set([
  "path",
  "source",
  "content",
  "sha256",
  "mode",
  "owner",
  "nativeSource",
  "actions",
]);

/** Parses and validates manifest text; `file` names it in errors and anchors relative sources. */
export async function parseManifest(text: string, file: string): Promise<Manifest> {
  const fail = (field: string, why: string): never => {
    throw new ManifestError(`manifest ${file}: ${field}: ${why}`);
  };
  let doc: unknown;
  try {
    doc = file.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    fail(
      "(document)",
      `not valid ${file.endsWith(".json") ? "JSON" : "YAML"}: ${
        (error as Error).message.split("\n")[0]
      }`,
    );
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    return fail("(document)", "expected a mapping with apiVersion, kind, feature, mode, files");
  }
  const top = doc as Record<string, unknown>;
  for (const key of Object.keys(top)) if (!TOP_KEYS.has(key)) fail(key, "unknown field");
  if (top.apiVersion !== "kubesonic.io/v1") {
    fail("apiVersion", `expected "kubesonic.io/v1", got ${JSON.stringify(top.apiVersion)}`);
  }
  if (top.kind !== "HostFiles") {
    fail("kind", `expected "HostFiles", got ${JSON.stringify(top.kind)}`);
  }
  const feature = top.feature;
  if (typeof feature !== "string" || !/^[a-z0-9][a-z0-9_.@-]{0,62}$/.test(feature)) {
    fail("feature", `expected a feature name like "telemetry", got ${JSON.stringify(feature)}`);
  }
  const mode = top.mode ?? "kube";
  if (mode !== "kube" && mode !== "native") {
    fail("mode", `expected "kube" or "native", got ${JSON.stringify(mode)}`);
  }
  if (!Array.isArray(top.files) || top.files.length === 0) {
    fail("files", "expected a non-empty list");
  }
  const baseDir = dirname(resolve(file));
  const files: ManagedFile[] = [];
  const seen = new Set<string>();
  for (const [i, raw] of (top.files as unknown[]).entries()) {
    const at = `files[${i}]`;
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      fail(at, "expected a mapping");
    }
    const entry = raw as Record<string, unknown>;
    for (const key of Object.keys(entry)) {
      if (!FILE_KEYS.has(key)) fail(`${at}.${key}`, "unknown field");
    }
    const path = entry.path;
    if (typeof path !== "string") return fail(`${at}.path`, "expected an absolute host path");
    try {
      splitHostPath(path);
    } catch (error) {
      fail(`${at}.path`, (error as Error).message);
    }
    const normal = "/" + splitHostPath(path).join("/");
    if (seen.has(normal)) fail(`${at}.path`, `${path} is listed twice`);
    seen.add(normal);
    const hasSource = entry.source !== undefined;
    const hasContent = entry.content !== undefined;
    if (hasSource === hasContent) fail(at, "give exactly one of source or content");
    let content: Uint8Array;
    if (hasContent) {
      if (typeof entry.content !== "string") fail(`${at}.content`, "expected a string");
      content = new TextEncoder().encode(entry.content as string);
    } else {
      content = await readSource(entry.source, `${at}.source`, baseDir, fail);
    }
    const sha256 = await sha256Hex(content);
    if (entry.sha256 !== undefined) {
      if (typeof entry.sha256 !== "string" || !/^[0-9a-fA-F]{64}$/.test(entry.sha256)) {
        fail(`${at}.sha256`, "expected 64 hex digits");
      }
      if ((entry.sha256 as string).toLowerCase() !== sha256) {
        fail(`${at}.sha256`, `declared ${entry.sha256} but the content hashes to ${sha256}`);
      }
    }
    const modeText = entry.mode ?? "0644";
    if (typeof modeText !== "string" || !/^0?[0-7]{3,4}$/.test(modeText)) {
      fail(
        `${at}.mode`,
        `expected an octal mode string like "0755", got ${JSON.stringify(modeText)}`,
      );
    }
    const fileMode = parseInt(modeText as string, 8);
    if (fileMode > 0o7777) fail(`${at}.mode`, `${modeText} is out of range`);
    const owner = entry.owner ?? "0:0";
    const ownerMatch = typeof owner === "string" ? /^(\d{1,10}):(\d{1,10})$/.exec(owner) : null;
    if (!ownerMatch) {
      fail(`${at}.owner`, `expected "uid:gid" (numbers), got ${JSON.stringify(owner)}`);
    }
    let nativeContent: Uint8Array | undefined;
    if (entry.nativeSource !== undefined) {
      nativeContent = await readSource(entry.nativeSource, `${at}.nativeSource`, baseDir, fail);
    }
    const actionsRaw = entry.actions ?? [];
    if (!Array.isArray(actionsRaw)) fail(`${at}.actions`, "expected a list of strings");
    const actions: Action[] = [];
    for (const [j, text] of (actionsRaw as unknown[]).entries()) {
      try {
        actions.push(parseAction(text));
      } catch (error) {
        fail(`${at}.actions[${j}]`, (error as Error).message);
      }
    }
    files.push({
      path: normal,
      content,
      sha256,
      mode: fileMode,
      uid: Number(ownerMatch![1]),
      gid: Number(ownerMatch![2]),
      nativeContent,
      actions,
    });
  }
  return { file, feature: feature as string, mode: mode as "kube" | "native", files };
}

async function readSource(
  value: unknown,
  field: string,
  baseDir: string,
  fail: (field: string, why: string) => never,
): Promise<Uint8Array> {
  if (typeof value !== "string" || value === "") return fail(field, "expected a file path");
  const path = resolve(baseDir, value);
  try {
    return await Deno.readFile(path);
  } catch (error) {
    return fail(field, `cannot read ${path}: ${(error as Error).message.split("\n")[0]}`);
  }
}

/** Reads and validates the manifest file at `path`; throws ManifestError (one line) when bad. */
export async function loadManifest(path: string): Promise<Manifest> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new ManifestError(
      `manifest ${path}: cannot read: ${(error as Error).message.split("\n")[0]}`,
    );
  }
  return await parseManifest(text, path);
}
