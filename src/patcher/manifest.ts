// The patcher's desired-state manifest (`kind: HostFiles`): read as bytes (bounded,
// regular file only, strict UTF-8), parsed from YAML or JSON and validated as a whole — every
// field, every source file read (regular files only, bounded in size and time) and its declared
// SHA-256 checked — before the patcher touches anything. Errors are one line naming the file and
// the field, with every value from the manifest JSON-escaped.
import { dirname, resolve } from "node:path";
import {
  AT_FDCWD,
  closeFd,
  O_NOCTTY,
  O_NOFOLLOW,
  O_NONBLOCK,
  O_RDONLY,
  openAt,
  statFd,
} from "../host/fd.ts";
import { type Body, bytesBody, IN_MEMORY_MAX, readBody } from "../host/files.ts";
import type { HashCache } from "../host/hash_cache.ts";
import { splitHostPath } from "../host/paths.ts";
import { type Action, parseAction } from "./actions.ts";

/** A manifest that failed validation; the message is one line naming the file and the field. */
export class ManifestError extends Error {
  override name = "ManifestError";
}

/** One managed host file, with its desired content already loaded and verified. */
export interface ManagedFile {
  /** Host path (as the switch sees it). */
  path: string;
  /** Desired bytes (from `source` or `content`) when held in memory; null for a large source. */
  content: Uint8Array | null;
  /** Desired bytes: in memory, or streamed from the source and checked against sha256. */
  body: Body;
  sha256: string;
  /** The size bound this entry's source or content was checked against. */
  maxBytes: number;
  mode: number;
  uid: number;
  gid: number;
  /** Bytes to restore in native mode when no backup exists (from `nativeSource`). */
  nativeContent?: Uint8Array | null;
  nativeBody?: Body;
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
  "maxBytes",
]);

/** Default bound on one source's (or inline content's) size: 4 MiB. */
export const DEFAULT_MAX_SOURCE_BYTES = 4 * 1024 * 1024;
/** Largest manifest file read (inline content is bounded separately, per entry). */
export const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;
/** Time bound for reading one source or the manifest (checked between 1 MiB chunks)... */
export const SOURCE_READ_MS = 30_000;
/**
 * ...plus one second per MiB of the file: a read that makes progress is not refused for being
 * starved of CPU: at load 50-60 on two cores a sidecar reading the host runtime's 95 MB exited as
 * if its input were bad, most likely on the flat 30 s bound.
 */
export const SOURCE_READ_MS_PER_MIB = 1_000;

/** The time bound for reading a file of `size` bytes. */
export function sourceReadBudgetMs(size: number): number {
  return SOURCE_READ_MS + Math.ceil(Math.max(size, 0) / (1024 * 1024)) * SOURCE_READ_MS_PER_MIB;
}
/** Largest uid/gid (2^32 - 2; 2^32 - 1 is "no change" to chown). */
export const MAX_ID = 4294967294;

/** How manifests are read. */
export interface ManifestOptions {
  /** Size bound for each source and inline content unless the entry sets `maxBytes`. */
  maxSourceBytes?: number;
  /** Remembered hashes of large sources (the loop's reloads do not read them again). */
  hashes?: HashCache;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Whether `text` is well-formed (no lone surrogates) and free of control characters. */
function plainText(text: string): boolean {
  // deno-lint-ignore no-control-regex
  return text.isWellFormed() && !/[\u0000-\u001f\u007f-\u009f]/.test(text);
}

/**
 * Parses and validates a manifest (its bytes, or text); `file` names it in errors and anchors
 * relative sources. Throws ManifestError (one line) when anything is wrong.
 */
export async function parseManifest(
  input: string | Uint8Array,
  file: string,
  options: ManifestOptions = {},
): Promise<Manifest> {
  const shownFile = plainText(file) ? file : JSON.stringify(file);
  const fail = (field: string, why: string): never => {
    throw new ManifestError(`manifest ${shownFile}: ${field}: ${why}`);
  };
  const defaultMax = options.maxSourceBytes ?? DEFAULT_MAX_SOURCE_BYTES;
  let text: string;
  if (typeof input === "string") text = input;
  else {
    try {
      text = strictUtf8.decode(input);
    } catch {
      return fail("(document)", "not valid UTF-8 (the manifest must be UTF-8 text)");
    }
  }
  // yaml is loaded only for a YAML manifest: the sidecar's (ks-render's manifest-*.json) need
  // none, and the parser is memory the resident loop would keep (docs/footprint.md).
  const json = file.endsWith(".json");
  const parseYaml = json ? undefined : (await import("./manifest_yaml.ts")).parseYaml;
  let doc: unknown;
  try {
    doc = parseYaml ? parseYaml(text) : JSON.parse(text);
  } catch (error) {
    fail(
      "(document)",
      `not valid ${json ? "JSON" : "YAML"}: ${(error as Error).message.split("\n")[0]}`,
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
  const seen = new Map<string, string>();
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
    let parts: string[] = [];
    try {
      parts = splitHostPath(path);
    } catch (error) {
      fail(`${at}.path`, (error as Error).message);
    }
    if (parts.length === 0) fail(`${at}.path`, `${JSON.stringify(path)} is the root directory`);
    const normal = "/" + parts.join("/");
    const earlier = seen.get(normal);
    if (earlier !== undefined) {
      fail(
        `${at}.path`,
        `${JSON.stringify(path)} names the same file as ${earlier} (${JSON.stringify(normal)})`,
      );
    }
    seen.set(normal, `files[${i}].path`);
    let maxBytes = defaultMax;
    if (entry.maxBytes !== undefined) {
      if (!Number.isSafeInteger(entry.maxBytes) || (entry.maxBytes as number) < 0) {
        fail(
          `${at}.maxBytes`,
          `expected a whole number of bytes, got ${JSON.stringify(entry.maxBytes)}`,
        );
      }
      maxBytes = entry.maxBytes as number;
    }
    const hasSource = entry.source !== undefined;
    const hasContent = entry.content !== undefined;
    if (hasSource === hasContent) fail(at, "give exactly one of source or content");
    let body: Body;
    if (hasContent) {
      if (typeof entry.content !== "string") fail(`${at}.content`, "expected a string");
      const text = entry.content as string;
      if (!text.isWellFormed()) {
        fail(`${at}.content`, "is not valid UTF-8 (a lone surrogate escape); use a source file");
      }
      const bytes = new TextEncoder().encode(text);
      if (bytes.length > maxBytes) {
        fail(`${at}.content`, `is ${bytes.length} bytes, more than the bound of ${maxBytes}`);
      }
      body = bytesBody(bytes);
    } else {
      body = await readSource(
        entry.source,
        `${at}.source`,
        baseDir,
        maxBytes,
        fail,
        options.hashes,
      );
    }
    const sha256 = body.sha256;
    if (entry.sha256 !== undefined) {
      if (typeof entry.sha256 !== "string" || !/^[0-9a-fA-F]{64}$/.test(entry.sha256)) {
        fail(`${at}.sha256`, "expected 64 hex digits");
      }
      if ((entry.sha256 as string).toLowerCase() !== sha256) {
        fail(`${at}.sha256`, `declared ${entry.sha256} but the content hashes to ${sha256}`);
      }
    }
    // maxBytes: a per-entry bound of the source's size (big files such as the host runtime's
    // Deno). Validated here; the bound itself is applied where sources are read.
    if (
      entry.maxBytes !== undefined &&
      (typeof entry.maxBytes !== "number" || !Number.isSafeInteger(entry.maxBytes) ||
        entry.maxBytes < 1)
    ) {
      fail(
        `${at}.maxBytes`,
        `expected a positive integer of bytes, got ${JSON.stringify(entry.maxBytes)}`,
      );
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
    for (const id of [ownerMatch![1], ownerMatch![2]]) {
      if (Number(id) > MAX_ID) {
        fail(`${at}.owner`, `${JSON.stringify(owner)}: ${id} is out of range (0..${MAX_ID})`);
      }
    }
    let nativeBody: Body | undefined;
    if (entry.nativeSource !== undefined) {
      nativeBody = await readSource(
        entry.nativeSource,
        `${at}.nativeSource`,
        baseDir,
        maxBytes,
        fail,
        options.hashes,
      );
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
      content: body.bytes,
      body,
      sha256,
      maxBytes,
      mode: fileMode,
      uid: Number(ownerMatch![1]),
      gid: Number(ownerMatch![2]),
      nativeContent: nativeBody ? nativeBody.bytes : undefined,
      nativeBody,
      actions,
    });
  }
  return { file, feature: feature as string, mode: mode as "kube" | "native", files };
}

/**
 * Opens `path` (an operator or sidecar path: symlinks on the way are followed, as a ConfigMap
 * volume needs) for reading without blocking and checks it is a regular file on the descriptor.
 */
function openPlainFile(path: string): number {
  const canonical = Deno.realPathSync(path);
  const fd = openAt(AT_FDCWD, canonical, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  const info = statFd(fd);
  if (info.type !== "file") {
    closeFd(fd);
    throw new Error(`is a ${info.type}, not a regular file`);
  }
  return fd;
}

async function readSource(
  value: unknown,
  field: string,
  baseDir: string,
  maxBytes: number,
  fail: (field: string, why: string) => never,
  hashes: HashCache | undefined,
): Promise<Body> {
  if (typeof value !== "string" || value === "") return fail(field, "expected a file path");
  if (!plainText(value)) {
    return fail(field, `${JSON.stringify(value)}: control character or invalid UTF-8`);
  }
  const path = resolve(baseDir, value);
  let fd: number;
  try {
    fd = openPlainFile(path);
  } catch (error) {
    return fail(field, `cannot read ${path}: ${(error as Error).message.split("\n")[0]}`);
  }
  try {
    const size = statFd(fd).size;
    if (size > maxBytes) {
      return fail(field, `${path} is ${size} bytes, more than the bound of ${maxBytes}`);
    }
    const read = await readBody(fd, {
      keepMax: IN_MEMORY_MAX,
      limit: maxBytes,
      deadline: Date.now() + sourceReadBudgetMs(size),
      what: path,
      hashes,
    });
    // A large source is streamed again at write time and re-hashed there.
    return { ...read, open: read.bytes === null ? () => openPlainFile(path) : undefined };
  } catch (error) {
    return fail(field, `cannot read ${path}: ${(error as Error).message.split("\n")[0]}`);
  } finally {
    closeFd(fd);
  }
}

/**
 * Reads and validates the manifest file at `path` (a regular file of at most
 * MAX_MANIFEST_BYTES); throws ManifestError (one line) when bad.
 */
export async function loadManifest(path: string, options: ManifestOptions = {}): Promise<Manifest> {
  let bytes: Uint8Array;
  try {
    const fd = openPlainFile(path);
    try {
      const read = await readBody(fd, {
        keepMax: MAX_MANIFEST_BYTES,
        limit: MAX_MANIFEST_BYTES,
        deadline: Date.now() + sourceReadBudgetMs(statFd(fd).size),
        what: "the manifest",
      });
      bytes = read.bytes!;
    } finally {
      closeFd(fd);
    }
  } catch (error) {
    throw new ManifestError(
      `manifest ${JSON.stringify(path)}: cannot read: ${(error as Error).message.split("\n")[0]}`,
    );
  }
  return await parseManifest(bytes, path, options);
}
