// Reads a feature spec (YAML) into a validated FeatureSpec: every field checked, unknown fields
// refused, defaults filled in. The first problem found is thrown as a SpecError whose message is one
// line naming the file and the field path, e.g.
// `feature.yaml: resources.limits.memory: "400Mx" is not a quantity`.
import { parse as parseYaml } from "yaml";
import { parseDuration } from "../cli.ts";
import { formatBytes, parseQuantity } from "./quantity.ts";
import {
  DEFAULT_LIVENESS,
  DEFAULT_READINESS,
  DEFAULT_SIDECAR_RESOURCES,
  DEFAULT_TOOLS,
  DEFAULT_WATCHDOG_RESOURCES,
  defaultOptInLabel,
  type FeatureSpec,
  HOST_RUNTIME_PREFIX,
  HOST_RUNTIME_SIDECAR_RESOURCES,
  INJECTED_TREE,
  type MountSpec,
  type PortSpec,
  type ProbeTiming,
  type ResourceSpec,
  SPEC_API_VERSION,
  SPEC_KIND,
  SpecError,
  type TolerationSpec,
  type WatchdogProbe,
} from "./spec.ts";

type Obj = Record<string, unknown>;

/** Longest feature name: leaves room for `-watchdog`, `-asicNN` and `-files-<hash>` suffixes. */
export const MAX_NAME_LENGTH = 40;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PORT_NAME = /^(?=.*[a-z])[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DURATION = /^\d+(ms|s|m|h)$/;
const UNIT_NAME = /^[A-Za-z0-9:_.\\-]+$/;
const IMAGE_REF = /^[a-z0-9][a-z0-9._\-/:@]*$/i;

/** Linux capabilities a container may add (CAP_ prefix dropped, as Kubernetes writes them). */
export const KNOWN_CAPABILITIES = [
  "AUDIT_CONTROL",
  "AUDIT_READ",
  "AUDIT_WRITE",
  "BLOCK_SUSPEND",
  "BPF",
  "CHECKPOINT_RESTORE",
  "CHOWN",
  "DAC_OVERRIDE",
  "DAC_READ_SEARCH",
  "FOWNER",
  "FSETID",
  "IPC_LOCK",
  "IPC_OWNER",
  "KILL",
  "LEASE",
  "LINUX_IMMUTABLE",
  "MAC_ADMIN",
  "MAC_OVERRIDE",
  "MKNOD",
  "NET_ADMIN",
  "NET_BIND_SERVICE",
  "NET_BROADCAST",
  "NET_RAW",
  "PERFMON",
  "SETFCAP",
  "SETGID",
  "SETPCAP",
  "SETUID",
  "SYSLOG",
  "SYS_ADMIN",
  "SYS_BOOT",
  "SYS_CHROOT",
  "SYS_MODULE",
  "SYS_NICE",
  "SYS_PACCT",
  "SYS_PTRACE",
  "SYS_RAWIO",
  "SYS_RESOURCE",
  "SYS_TIME",
  "SYS_TTY_CONFIG",
  "WAKE_ALARM",
] as const;

/** Volume names ks-render uses itself; spec mounts may not take them. */
export const RESERVED_VOLUME_NAMES = ["host-root", "ks-files", "stub-credentials"];

function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (value === null || value === undefined) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return String(value);
}

function join(path: string, key: string | number): string {
  if (typeof key === "number") return `${path}[${key}]`;
  return path === "" ? key : `${path}.${key}`;
}

/** Field-path aware readers; every failure throws one SpecError line. */
class Reader {
  constructor(readonly file: string) {}

  fail(path: string, problem: string): never {
    throw new SpecError(`${this.file}: ${path === "" ? "" : path + ": "}${problem}`);
  }

  /** A mapping whose keys must all be in `allowed`. */
  object(value: unknown, path: string, allowed: readonly string[]): Obj {
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      this.fail(path, `must be a mapping, not ${show(value)}`);
    }
    for (const key of Object.keys(value as Obj)) {
      if (!allowed.includes(key)) {
        const near = allowed.find((a) => a.toLowerCase().startsWith(key.toLowerCase().slice(0, 4)));
        this.fail(
          join(path, key),
          `unknown field${near ? ` (did you mean ${near}?)` : ""}; expected one of ${
            allowed.join(", ")
          }`,
        );
      }
    }
    return value as Obj;
  }

  optObject(o: Obj, key: string, path: string, allowed: readonly string[]): Obj {
    const value = o[key];
    if (value === undefined || value === null) return {};
    return this.object(value, join(path, key), allowed);
  }

  list(o: Obj, key: string, path: string): unknown[] {
    const value = o[key];
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) this.fail(join(path, key), `must be a list, not ${show(value)}`);
    return value;
  }

  string(
    o: Obj,
    key: string,
    path: string,
    opts: { required?: boolean; pattern?: RegExp; expect?: string; max?: number } = {},
  ): string | undefined {
    const at = join(path, key);
    const value = o[key];
    if (value === undefined || value === null) {
      if (opts.required) this.fail(at, "required");
      return undefined;
    }
    if (typeof value !== "string") {
      const hint = typeof value === "number" || typeof value === "boolean"
        ? ` (quote it: "${value}")`
        : "";
      this.fail(at, `${show(value)} must be a string${hint}`);
    }
    if (value === "") this.fail(at, "must not be empty");
    if (opts.max !== undefined && value.length > opts.max) {
      this.fail(at, `${show(value)} is longer than ${opts.max} characters`);
    }
    if (opts.pattern && !opts.pattern.test(value)) {
      this.fail(at, `${show(value)} is not ${opts.expect ?? "valid"}`);
    }
    return value;
  }

  int(o: Obj, key: string, path: string, min: number, max: number): number | undefined {
    const at = join(path, key);
    const value = o[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "number" || !Number.isInteger(value)) {
      this.fail(at, `${show(value)} is not an integer`);
    }
    if (value < min || value > max) this.fail(at, `${value} is outside ${min}..${max}`);
    return value;
  }

  bool(o: Obj, key: string, path: string, fallback: boolean): boolean {
    const value = o[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== "boolean") {
      this.fail(join(path, key), `${show(value)} must be true or false`);
    }
    return value;
  }

  absPath(o: Obj, key: string, path: string, required = false): string | undefined {
    const value = this.string(o, key, path, { required });
    if (value === undefined) return undefined;
    const at = join(path, key);
    if (!value.startsWith("/")) this.fail(at, `${show(value)} is not an absolute path`);
    if (/\s/.test(value)) this.fail(at, `${show(value)} contains white space`);
    if (value.split("/").includes("..")) this.fail(at, `${show(value)} contains ".."`);
    return value;
  }
}

function readResources(
  r: Reader,
  value: unknown,
  path: string,
  fallback?: ResourceSpec,
): ResourceSpec {
  if (value === undefined || value === null) {
    return fallback
      ? { requests: { ...fallback.requests }, limits: { ...fallback.limits } }
      : { requests: {}, limits: {} };
  }
  const o = r.object(value, path, ["requests", "limits"]);
  const out: ResourceSpec = { requests: {}, limits: {} };
  for (const side of ["requests", "limits"] as const) {
    const amounts = r.optObject(o, side, path, ["cpu", "memory"]);
    const at = join(path, side);
    for (const kind of ["cpu", "memory"] as const) {
      const raw = amounts[kind];
      if (raw === undefined || raw === null) continue;
      const text = typeof raw === "number" ? String(raw) : raw;
      if (typeof text !== "string") r.fail(join(at, kind), `${show(raw)} is not a quantity`);
      const q = parseQuantity(text);
      if (!q) r.fail(join(at, kind), `${show(text)} is not a quantity (e.g. 100m, 0.5, 400Mi)`);
      if (q.value <= 0) r.fail(join(at, kind), `${show(text)} must be more than zero`);
      if (kind === "memory" && /m$/.test(text)) {
        r.fail(
          join(at, kind),
          `${show(text)} means millibytes; did you mean ${text.slice(0, -1)}Mi?`,
        );
      }
      if (kind === "memory" && !Number.isInteger(q.value)) {
        r.fail(join(at, kind), `${show(text)} is not a whole number of bytes`);
      }
      out[side][kind] = text;
    }
  }
  return out;
}

function checkRequestsWithinLimits(r: Reader, res: ResourceSpec, path: string): void {
  for (const kind of ["cpu", "memory"] as const) {
    const req = res.requests[kind];
    const lim = res.limits[kind];
    if (req === undefined || lim === undefined) continue;
    if (parseQuantity(req)!.value > parseQuantity(lim)!.value) {
      r.fail(
        join(join(path, "requests"), kind),
        `${show(req)} is more than limits.${kind} ${show(lim)}`,
      );
    }
  }
}

function readTiming(
  r: Reader,
  o: Obj,
  key: string,
  path: string,
  fallback: ProbeTiming,
): ProbeTiming {
  const t = r.optObject(o, key, path, [
    "initialDelaySeconds",
    "periodSeconds",
    "timeoutSeconds",
    "failureThreshold",
  ]);
  const at = join(path, key);
  return {
    initialDelaySeconds: r.int(t, "initialDelaySeconds", at, 0, 3600) ??
      fallback.initialDelaySeconds,
    periodSeconds: r.int(t, "periodSeconds", at, 1, 3600) ?? fallback.periodSeconds,
    timeoutSeconds: r.int(t, "timeoutSeconds", at, 1, 3600) ?? fallback.timeoutSeconds,
    failureThreshold: r.int(t, "failureThreshold", at, 1, 100) ?? fallback.failureThreshold,
  };
}

function readProbe(r: Reader, value: unknown, path: string): WatchdogProbe {
  const o = r.object(value, path, ["tcp", "process", "http"]);
  const kinds = Object.keys(o);
  if (kinds.length !== 1) r.fail(path, "must have exactly one of tcp, process, http");
  const kind = kinds[0] as WatchdogProbe["kind"];
  const target = r.string(o, kind, path, { required: true })!;
  const at = join(path, kind);
  // `{asic}` / `{namespace}` expand per instance (render's expandInstance): the shape is checked
  // on what ASIC 0's instance gets, so `127.0.0.1:5006{asic}` is a TCP target.
  const expanded = target.replaceAll("{asic}", "0").replaceAll("{namespace}", "asic0");
  if (kind === "tcp") {
    const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(expanded);
    if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535) {
      r.fail(at, `${show(target)} is not host:port (e.g. 127.0.0.1:50051)`);
    }
  } else if (kind === "http") {
    let url: URL | undefined;
    try {
      url = new URL(expanded);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
      r.fail(at, `${show(target)} is not an http(s) URL`);
    }
  } else if (/[\n\r]/.test(target)) {
    r.fail(at, `${show(target)} contains a line break`);
  }
  return { kind, target };
}

function readMount(r: Reader, value: unknown, path: string): MountSpec {
  const o = r.object(value, path, ["name", "hostPath", "path", "readOnly", "watchdog", "type"]);
  const name = r.string(o, "name", path, {
    required: true,
    pattern: DNS_LABEL,
    expect: "a DNS label (lowercase letters, digits, '-')",
    max: 63,
  })!;
  if (RESERVED_VOLUME_NAMES.includes(name)) {
    r.fail(join(path, "name"), `${show(name)} is reserved for ks-render's own volumes`);
  }
  const types = ["Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"] as const;
  const type = r.string(o, "type", path);
  if (type !== undefined && !(types as readonly string[]).includes(type)) {
    r.fail(join(path, "type"), `${show(type)} is not one of ${types.join(", ")}`);
  }
  return {
    name,
    hostPath: r.absPath(o, "hostPath", path, true)!,
    path: r.absPath(o, "path", path, true)!,
    readOnly: r.bool(o, "readOnly", path, false),
    watchdog: r.bool(o, "watchdog", path, false),
    ...(type ? { type: type as MountSpec["type"] } : {}),
  };
}

function readPort(r: Reader, value: unknown, path: string): PortSpec {
  const o = r.object(value, path, ["name", "port", "protocol"]);
  const name = r.string(o, "name", path, {
    required: true,
    pattern: PORT_NAME,
    expect: "a port name (lowercase letters, digits, '-', at least one letter)",
    max: 15,
  })!;
  const port = r.int(o, "port", path, 1, 65535);
  if (port === undefined) r.fail(join(path, "port"), "required");
  const protocol = r.string(o, "protocol", path) ?? "TCP";
  if (!["TCP", "UDP", "SCTP"].includes(protocol)) {
    r.fail(join(path, "protocol"), `${show(protocol)} is not one of TCP, UDP, SCTP`);
  }
  return { name, port, protocol: protocol as PortSpec["protocol"] };
}

function readStringMap(
  r: Reader,
  o: Obj,
  key: string,
  path: string,
  keyOk: (key: string) => boolean,
  keyExpect: string,
  valuePattern?: RegExp,
): Record<string, string> | undefined {
  const value = o[key];
  if (value === undefined || value === null) return undefined;
  const at = join(path, key);
  if (typeof value !== "object" || Array.isArray(value)) {
    r.fail(at, `must be a mapping, not ${show(value)}`);
  }
  const out: Record<string, string> = {};
  for (const name of Object.keys(value as Obj)) {
    if (!keyOk(name)) r.fail(join(at, name), `${show(name)} is not ${keyExpect}`);
    out[name] = r.string(value as Obj, name, at, {
      pattern: valuePattern,
      expect: "a label value (up to 63 letters, digits, '-', '_', '.')",
      max: valuePattern ? 63 : undefined,
    }) ?? r.fail(join(at, name), "must be a string");
  }
  return out;
}

function isLabelKey(key: string): boolean {
  const slash = key.lastIndexOf("/");
  const prefix = slash === -1 ? undefined : key.slice(0, slash);
  const name = slash === -1 ? key : key.slice(slash + 1);
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) return false;
  return name.length <= 63 && LABEL_NAME.test(name);
}

function readToleration(r: Reader, value: unknown, path: string): TolerationSpec {
  const o = r.object(value, path, ["key", "operator", "value", "effect"]);
  const key = r.string(o, "key", path);
  if (key !== undefined && !isLabelKey(key)) {
    r.fail(join(path, "key"), `${show(key)} is not a label key`);
  }
  const operator = r.string(o, "operator", path) ?? "Equal";
  if (operator !== "Exists" && operator !== "Equal") {
    r.fail(join(path, "operator"), `${show(operator)} is not Exists or Equal`);
  }
  const val = r.string(o, "value", path, {
    pattern: LABEL_VALUE,
    expect: "a label value",
    max: 63,
  });
  if (operator === "Exists" && val !== undefined) {
    r.fail(join(path, "value"), "must be empty when operator is Exists");
  }
  if (operator === "Equal" && key === undefined) {
    r.fail(join(path, "key"), "required when operator is Equal");
  }
  const effect = r.string(o, "effect", path);
  if (effect !== undefined && !["NoSchedule", "PreferNoSchedule", "NoExecute"].includes(effect)) {
    r.fail(
      join(path, "effect"),
      `${show(effect)} is not NoSchedule, PreferNoSchedule or NoExecute`,
    );
  }
  return {
    ...(key !== undefined ? { key } : {}),
    operator,
    ...(val !== undefined ? { value: val } : {}),
    ...(effect !== undefined ? { effect: effect as TolerationSpec["effect"] } : {}),
  };
}

function imageTag(image: string): string {
  const noDigest = image.split("@")[0];
  const lastSlash = noDigest.lastIndexOf("/");
  const colon = noDigest.lastIndexOf(":");
  return colon > lastSlash ? noDigest.slice(colon + 1) : "latest";
}

const TOP_LEVEL = [
  "apiVersion",
  "kind",
  "name",
  "namespace",
  "containerName",
  "version",
  "images",
  "command",
  "ports",
  "env",
  "mounts",
  "resources",
  "monit",
  "scope",
  "hostNetwork",
  "hostIPC",
  "privileged",
  "capabilities",
  "watchdog",
  "sidecar",
  "stub",
  "hostRuntime",
  "unit",
  "native",
  "nodeSelector",
  "tolerations",
  "updateStrategy",
  "tools",
] as const;

/**
 * Validates a parsed YAML document as a feature spec. `file` names the input in messages.
 * Throws SpecError (one line: `<file>: <field>: <problem>`) on the first problem.
 */
export function validateFeatureSpec(doc: unknown, file: string): FeatureSpec {
  const r: Reader = new Reader(file);
  const o = r.object(doc, "", TOP_LEVEL);
  const apiVersion = r.string(o, "apiVersion", "", { required: true });
  if (apiVersion !== SPEC_API_VERSION) {
    r.fail("apiVersion", `${show(apiVersion)} is not supported (use ${SPEC_API_VERSION})`);
  }
  const kind = r.string(o, "kind", "", { required: true });
  if (kind !== SPEC_KIND) r.fail("kind", `${show(kind)} is not ${SPEC_KIND}`);

  const name = r.string(o, "name", "", {
    required: true,
    pattern: DNS_LABEL,
    expect: "a DNS label (lowercase letters, digits, '-')",
    max: MAX_NAME_LENGTH,
  })!;
  const namespace = r.string(o, "namespace", "", {
    pattern: DNS_LABEL,
    expect: "a DNS label",
    max: 63,
  }) ?? "sonic";
  const containerName = r.string(o, "containerName", "", {
    pattern: DNS_LABEL,
    expect: "a DNS label (lowercase letters, digits, '-')",
    max: MAX_NAME_LENGTH,
  }) ?? name;

  const imagesObj = o.images === undefined
    ? r.fail("images", "required")
    : r.object(o.images, "images", ["feature", "watchdog", "sidecar", "tools", "pullPolicy"]);
  const image = (key: string) =>
    r.string(imagesObj, key, "images", {
      required: true,
      pattern: IMAGE_REF,
      expect: "an image reference (e.g. docker-sonic-telemetry:1.2.3)",
    })!;
  const images = {
    feature: image("feature"),
    watchdog: image("watchdog"),
    sidecar: image("sidecar"),
    tools: imagesObj.tools === undefined ? image("sidecar") : image("tools"),
    pullPolicy: r.string(imagesObj, "pullPolicy", "images") ?? "IfNotPresent",
  };
  if (!["Always", "IfNotPresent", "Never"].includes(images.pullPolicy)) {
    r.fail("images.pullPolicy", `${show(images.pullPolicy)} is not Always, IfNotPresent or Never`);
  }
  const version = r.string(o, "version", "", {
    pattern: LABEL_VALUE,
    expect: "a label value (up to 63 letters, digits, '-', '_', '.')",
    max: 63,
  }) ?? imageTag(images.feature);
  if (version.length > 63 || !LABEL_VALUE.test(version)) {
    r.fail("images.feature", `tag ${show(version)} is not a label value; set version explicitly`);
  }

  if (o.command === undefined || o.command === null) r.fail("command", "required");
  if (!Array.isArray(o.command)) {
    r.fail("command", `must be a list of strings, not ${show(o.command)}`);
  }
  if (o.command.length === 0) r.fail("command", "must not be empty");
  const command = o.command.map((c: unknown, i: number) => {
    if (typeof c !== "string" || c === "") {
      r.fail(`command[${i}]`, `${show(c)} must be a non-empty string`);
    }
    return c;
  });

  const ports = r.list(o, "ports", "").map((p, i) => readPort(r, p, `ports[${i}]`));
  const seenPorts = new Map<string, number>();
  ports.forEach((p, i) => {
    for (const key of [`name:${p.name}`, `port:${p.protocol}/${p.port}`]) {
      if (seenPorts.has(key)) {
        r.fail(`ports[${i}]`, `duplicates ports[${seenPorts.get(key)}] (${key.replace(":", " ")})`);
      }
      seenPorts.set(key, i);
    }
  });

  const env =
    readStringMap(r, o, "env", "", (k) => ENV_NAME.test(k), "an environment variable name") ?? {};

  const mounts = r.list(o, "mounts", "").map((m, i) => readMount(r, m, `mounts[${i}]`));
  const seenMount = new Map<string, number>();
  mounts.forEach((m, i) => {
    for (const key of [`name ${m.name}`, `path ${m.path}`]) {
      if (seenMount.has(key)) {
        r.fail(`mounts[${i}]`, `duplicates mounts[${seenMount.get(key)}] (${key})`);
      }
      seenMount.set(key, i);
    }
  });

  const resources = readResources(r, o.resources, "resources");
  const monitObj = r.optObject(o, "monit", "", ["memoryThreshold"]);
  let monitMemoryThreshold: number | undefined;
  if (monitObj.memoryThreshold !== undefined && monitObj.memoryThreshold !== null) {
    const raw = monitObj.memoryThreshold;
    const text = typeof raw === "number" ? String(raw) : raw;
    const q = typeof text === "string" && !/m$/.test(text) ? parseQuantity(text) : undefined;
    if (!q || q.value <= 0 || !Number.isInteger(q.value)) {
      r.fail(
        "monit.memoryThreshold",
        `${
          show(raw)
        } is not a positive number of bytes (memory_checker's argument, e.g. 419430400)`,
      );
    }
    monitMemoryThreshold = q.value;
  }
  const memoryLimitFrom = resources.limits.memory === undefined
    ? "monit.memoryThreshold"
    : "resources.limits.memory";
  if (resources.limits.memory === undefined) {
    if (monitMemoryThreshold === undefined) {
      r.fail("resources.limits.memory", "required (or set monit.memoryThreshold to derive it)");
    }
    resources.limits.memory = formatBytes(monitMemoryThreshold);
  }
  if (resources.requests.memory === undefined) resources.requests.memory = resources.limits.memory;
  checkRequestsWithinLimits(r, resources, "resources");

  const scopeObj = r.optObject(o, "scope", "", ["global", "perAsic", "asics"]);
  const scope = {
    global: r.bool(scopeObj, "global", "scope", true),
    perAsic: r.bool(scopeObj, "perAsic", "scope", false),
    asics: r.int(scopeObj, "asics", "scope", 0, 16) ?? 0,
  };
  if (!scope.global && !scope.perAsic) r.fail("scope", "global and perAsic are both false");

  const capabilities = r.list(o, "capabilities", "").map((c, i) => {
    const at = `capabilities[${i}]`;
    if (typeof c !== "string") r.fail(at, `${show(c)} must be a string`);
    const capName = c.replace(/^CAP_/, "");
    if (!(KNOWN_CAPABILITIES as readonly string[]).includes(capName)) {
      r.fail(at, `${show(c)} is not a Linux capability`);
    }
    return capName;
  });

  const wd = r.optObject(o, "watchdog", "", [
    "port",
    "probes",
    "liveness",
    "readiness",
    "resources",
  ]);
  const wdPort = r.int(wd, "port", "watchdog", 1, 65535);
  if (wdPort === undefined) r.fail("watchdog.port", "required (the port ks-watchdog listens on)");
  if (ports.some((p) => p.port === wdPort)) {
    r.fail("watchdog.port", `${wdPort} is also one of the feature's ports`);
  }
  const probes = r.list(wd, "probes", "watchdog").map((p, i) =>
    readProbe(r, p, `watchdog.probes[${i}]`)
  );
  if (probes.length === 0) {
    r.fail("watchdog.probes", "required: at least one of tcp, process, http");
  }
  const wdResources = readResources(
    r,
    wd.resources,
    "watchdog.resources",
    DEFAULT_WATCHDOG_RESOURCES,
  );
  checkRequestsWithinLimits(r, wdResources, "watchdog.resources");

  const sc = r.optObject(o, "sidecar", "", ["interval", "staleClaim", "resources"]);
  const interval = r.string(sc, "interval", "sidecar", {
    pattern: DURATION,
    expect: "a duration (e.g. 60s, 5m)",
  }) ?? "60s";
  const staleClaim = r.string(sc, "staleClaim", "sidecar", {
    pattern: DURATION,
    expect: "a duration (e.g. 15m, 60s)",
  });
  // ks-patcher refuses a stale-claim time under 2 x its interval (live claims are confirmed
  // each pass): say so here rather than in a crash-looping sidecar.
  if (
    staleClaim !== undefined &&
    parseDuration(staleClaim, "sidecar.staleClaim") <
      2 * parseDuration(interval, "sidecar.interval")
  ) {
    r.fail(
      "sidecar.staleClaim",
      `${show(staleClaim)} must be at least 2 x sidecar.interval (${interval})`,
    );
  }

  const stubObj = r.optObject(o, "stub", "", [
    "path",
    "source",
    "apiServer",
    "admissionPolicy",
    "runtimeSocket",
  ]);
  const apiServer = r.string(stubObj, "apiServer", "stub");
  if (apiServer !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(apiServer);
    } catch {
      url = undefined;
    }
    if (!url || url.protocol !== "https:" || url.pathname !== "/" || url.search !== "") {
      r.fail(
        "stub.apiServer",
        `${show(apiServer)} is not an https URL (e.g. https://10.0.0.1:6443)`,
      );
    }
  }
  const stub = {
    path: r.absPath(stubObj, "path", "stub") ?? "/usr/local/bin/ks-stub",
    ...(stubObj.source !== undefined ? { source: r.absPath(stubObj, "source", "stub")! } : {}),
    ...(apiServer !== undefined ? { apiServer: apiServer.replace(/\/$/, "") } : {}),
    admissionPolicy: r.bool(stubObj, "admissionPolicy", "stub", true),
    ...(stubObj.runtimeSocket !== undefined
      ? { runtimeSocket: r.absPath(stubObj, "runtimeSocket", "stub")! }
      : {}),
  };

  const unitObj = r.optObject(o, "unit", "", ["name", "launcher"]);
  const unitName = r.string(unitObj, "name", "unit", {
    pattern: UNIT_NAME,
    expect: "a systemd unit name without .service",
  }) ?? name;
  if (unitName.endsWith(".service")) r.fail("unit.name", `${show(unitName)}: leave out ".service"`);
  const unit = {
    name: unitName,
    launcher: r.absPath(unitObj, "launcher", "unit") ?? `/usr/local/bin/${name}.sh`,
  };

  const nativeObj = r.optObject(o, "native", "", ["launcher", "launcherSource"]);
  const nativeLauncher = r.string(nativeObj, "launcher", "native");
  const launcherSource = r.absPath(nativeObj, "launcherSource", "native");
  if (nativeLauncher !== undefined && launcherSource !== undefined) {
    r.fail("native", "set launcher or launcherSource, not both");
  }
  if (nativeLauncher !== undefined && !nativeLauncher.startsWith("#!")) {
    r.fail("native.launcher", "must start with #! (it is the original launcher script)");
  }

  const nodeSelector = readStringMap(
    r,
    o,
    "nodeSelector",
    "",
    isLabelKey,
    "a label key",
    LABEL_VALUE,
  ) ?? defaultOptInLabel(name);
  if (Object.keys(nodeSelector).length === 0) {
    r.fail("nodeSelector", "must not be empty (a node label is how nodes opt in)");
  }

  const tolerations = o.tolerations === undefined
    ? [{ operator: "Exists" as const, effect: "NoSchedule" as const }]
    : r.list(o, "tolerations", "").map((t, i) => readToleration(r, t, `tolerations[${i}]`));

  const updateStrategy = r.string(o, "updateStrategy", "") ?? "OnDelete";
  if (updateStrategy !== "OnDelete" && updateStrategy !== "RollingUpdate") {
    r.fail("updateStrategy", `${show(updateStrategy)} is not OnDelete or RollingUpdate`);
  }

  const hrObj = r.optObject(o, "hostRuntime", "", ["install", "prefix", "checkers"]);
  const hostRuntime = {
    install: r.bool(hrObj, "install", "hostRuntime", stub.source === undefined),
    prefix: (r.absPath(hrObj, "prefix", "hostRuntime") ?? HOST_RUNTIME_PREFIX).replace(/\/+$/, ""),
    checkers: r.bool(hrObj, "checkers", "hostRuntime", false),
  };
  if (hostRuntime.install && stub.source !== undefined) {
    r.fail(
      "hostRuntime.install",
      "is on while stub.source names a ks-stub to copy: give one (hostRuntime installs ks-stub)",
    );
  }
  if (hostRuntime.prefix === "" || hostRuntime.prefix.split("/").length < 3) {
    r.fail(
      "hostRuntime.prefix",
      `${show(hostRuntime.prefix)} is too shallow (e.g. ${HOST_RUNTIME_PREFIX})`,
    );
  }
  if (hostRuntime.checkers && !hostRuntime.install) {
    r.fail(
      "hostRuntime.checkers",
      "needs hostRuntime.install (the checkers run from the host runtime)",
    );
  }

  // The sidecar that installs the host runtime holds its files (Deno: ~95 MB) while it works.
  const scResources = readResources(
    r,
    sc.resources,
    "sidecar.resources",
    hostRuntime.install ? HOST_RUNTIME_SIDECAR_RESOURCES : DEFAULT_SIDECAR_RESOURCES,
  );
  checkRequestsWithinLimits(r, scResources, "sidecar.resources");

  const toolsObj = r.optObject(o, "tools", "", ["entrypoint", "watchdog", "patcher", "inject"]);
  const inject = r.bool(toolsObj, "inject", "tools", true);
  const entrypoint = r.absPath(toolsObj, "entrypoint", "tools") ??
    (inject ? DEFAULT_TOOLS.entrypoint : DEFAULT_TOOLS.imageEntrypoint);
  if (inject && !entrypoint.startsWith(`${INJECTED_TREE}/`)) {
    r.fail(
      "tools.entrypoint",
      `${show(entrypoint)} is not in the injected tree ${INJECTED_TREE}/ (tools.inject is on; ` +
        "set tools.inject: false for a feature image that carries its own ks-entrypoint)",
    );
  }
  if (inject) {
    for (const m of mounts) {
      if (
        m.path === INJECTED_TREE || m.path.startsWith(`${INJECTED_TREE}/`) ||
        INJECTED_TREE.startsWith(`${m.path.replace(/\/$/, "")}/`)
      ) {
        r.fail(
          `mounts.${m.name}.path`,
          `${show(m.path)} overlaps ${INJECTED_TREE}, where the injected ks tree is mounted`,
        );
      }
    }
  }
  const tools = {
    inject,
    entrypoint,
    watchdog: r.absPath(toolsObj, "watchdog", "tools") ?? DEFAULT_TOOLS.watchdog,
    patcher: r.absPath(toolsObj, "patcher", "tools") ?? DEFAULT_TOOLS.patcher,
  };

  return {
    name,
    namespace,
    containerName,
    version,
    images,
    command,
    ports,
    env,
    mounts,
    resources,
    ...(monitMemoryThreshold !== undefined ? { monitMemoryThreshold } : {}),
    memoryLimitFrom,
    scope,
    hostNetwork: r.bool(o, "hostNetwork", "", true),
    hostIPC: r.bool(o, "hostIPC", "", false),
    privileged: r.bool(o, "privileged", "", true),
    capabilities,
    watchdog: {
      port: wdPort,
      probes,
      liveness: readTiming(r, wd, "liveness", "watchdog", DEFAULT_LIVENESS),
      readiness: readTiming(r, wd, "readiness", "watchdog", DEFAULT_READINESS),
      resources: wdResources,
    },
    sidecar: {
      interval,
      ...(staleClaim !== undefined ? { staleClaim } : {}),
      resources: scResources,
    },
    stub,
    hostRuntime,
    unit,
    native: {
      ...(nativeLauncher !== undefined ? { launcher: nativeLauncher } : {}),
      ...(launcherSource !== undefined ? { launcherSource } : {}),
    },
    nodeSelector,
    tolerations,
    updateStrategy,
    tools,
  };
}

/** Parses YAML text and validates it; YAML syntax errors become one SpecError line too. */
export function parseFeatureSpec(text: string, file: string): FeatureSpec {
  let doc: unknown;
  try {
    doc = parseYaml(text, { uniqueKeys: true, prettyErrors: false });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new SpecError(`${file}: not valid YAML: ${message.split("\n")[0]}`);
  }
  if (doc === null || doc === undefined) throw new SpecError(`${file}: empty document`);
  return validateFeatureSpec(doc, file);
}

/** Reads and parses a spec file; a missing file is a SpecError naming it. */
export async function loadFeatureSpec(path: string): Promise<FeatureSpec> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound ? "no such file" : String(error);
    throw new SpecError(`${path}: cannot read feature spec (${reason})`);
  }
  return parseFeatureSpec(text, path);
}
