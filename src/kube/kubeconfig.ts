// Where the Kubernetes API is and who we are to it: reads a kubeconfig (the `--kubeconfig` flag,
// else `KUBECONFIG`, else the kubelet's `/etc/kubernetes/kubelet.conf`, else the in-cluster
// service account) and resolves it to one server URL plus PEM material and/or a bearer token.
// Both API clients (`rest.ts` for short-lived tools, `client.ts` for long-lived ones) start here.

import { parse as parseYaml } from "yaml";
import { BadInputError } from "../cli.ts";
import { pathExists } from "../path_exists.ts";

// POSIX path helpers (kubeconfig paths are POSIX): node:path would load the Node compatibility
// layer into every start-up of the tools that bundle this module.
const isAbsolute = (p: string) => p.startsWith("/");
const join = (...parts: string[]) => parts.join("/").replace(/\/{2,}/g, "/");
function dirname(p: string): string {
  const trimmed = p.replace(/\/+$/, "");
  const i = trimmed.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : trimmed.slice(0, i);
}

/** The kubelet's kubeconfig on a SONiC switch joined to a cluster. */
export const KUBELET_KUBECONFIG = "/etc/kubernetes/kubelet.conf";
/** Where a pod's service-account token, CA and namespace are mounted. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** A resolved API endpoint and credentials; every PEM is inline text (files already read). */
export interface KubeConfig {
  /** Where the configuration came from: a file path or `in-cluster`. */
  source: string;
  /** API server base URL, e.g. `https://127.0.0.1:6443` (no trailing slash). */
  server: string;
  /** CA bundle (PEM) that signs the server's certificate; undefined = system roots. */
  caPem?: string;
  /** Client certificate chain (PEM) for mutual TLS. */
  certPem?: string;
  /** Client private key (PEM) for mutual TLS. */
  keyPem?: string;
  /** Bearer token (read at load time). */
  token?: string;
  /** File the token came from, so long-lived callers can re-read a rotated token. */
  tokenFile?: string;
  /** Basic-auth credentials, if the kubeconfig uses them. */
  username?: string;
  password?: string;
  /** The context's namespace (in-cluster: the pod's namespace), if any. */
  namespace?: string;
  /** The chosen context's name (undefined in-cluster). */
  context?: string;
  /** The chosen user's name (undefined in-cluster). */
  user?: string;
  /** `insecure-skip-tls-verify: true` was set (the REST client refuses it; see rest.ts). */
  insecureSkipTlsVerify?: boolean;
}

/** Options for {@link loadKubeconfig}; everything but `path` exists so tests can redirect it. */
export interface LoadKubeconfigOptions {
  /** The `--kubeconfig` flag (highest precedence). */
  path?: string;
  /** Context to use instead of `current-context`. */
  context?: string;
  /** Environment to read `KUBECONFIG` / `KUBERNETES_SERVICE_HOST|PORT` from (default Deno.env). */
  env?: Record<string, string | undefined>;
  /** The kubelet kubeconfig fallback (default {@link KUBELET_KUBECONFIG}). */
  kubeletPath?: string;
  /** The in-cluster service account directory (default {@link SERVICE_ACCOUNT_DIR}). */
  serviceAccountDir?: string;
}

/** A kubeconfig that cannot be used; the message names the file and what is wrong. */
export class KubeconfigError extends BadInputError {
  override name = "KubeconfigError";
}

interface NamedEntry<T> {
  name: string;
  value: T;
}
interface RawCluster {
  server?: string;
  "certificate-authority"?: string;
  "certificate-authority-data"?: string;
  "insecure-skip-tls-verify"?: boolean;
}
interface RawUser {
  "client-certificate"?: string;
  "client-certificate-data"?: string;
  "client-key"?: string;
  "client-key-data"?: string;
  token?: string;
  tokenFile?: string;
  username?: string;
  password?: string;
  exec?: unknown;
  "auth-provider"?: unknown;
}
interface RawContext {
  cluster?: string;
  user?: string;
  namespace?: string;
}

/** One kubeconfig file's content, with the directory its relative paths are resolved against. */
interface ParsedFile {
  path: string;
  currentContext?: string;
  clusters: NamedEntry<RawCluster & { dir: string }>[];
  users: NamedEntry<RawUser & { dir: string }>[];
  contexts: NamedEntry<RawContext>[];
}

function readEnv(opts: LoadKubeconfigOptions, name: string): string | undefined {
  if (opts.env) return opts.env[name];
  return Deno.env.get(name);
}

/**
 * Loads the kubeconfig by precedence: `opts.path` (the `--kubeconfig` flag) > `KUBECONFIG`
 * (a `:`-separated list, merged as kubectl does: the first definition of a name wins) >
 * `/etc/kubernetes/kubelet.conf` > the in-cluster service account. Throws KubeconfigError naming
 * the file and the problem when nothing is found or the chosen one is unusable.
 */
export async function loadKubeconfig(opts: LoadKubeconfigOptions = {}): Promise<KubeConfig> {
  if (opts.path) return resolveKubeconfig([await parseFile(opts.path)], opts.context);
  const envList = readEnv(opts, "KUBECONFIG");
  if (envList) {
    const paths = envList.split(":").filter((p) => p !== "");
    const files: ParsedFile[] = [];
    for (const p of paths) {
      // kubectl ignores KUBECONFIG entries that do not exist; so do we, unless none exists.
      if (await pathExists(p)) files.push(await parseFile(p));
    }
    if (files.length === 0) {
      throw new KubeconfigError(`KUBECONFIG=${envList}: none of these files exists`);
    }
    return resolveKubeconfig(files, opts.context);
  }
  const kubelet = opts.kubeletPath ?? KUBELET_KUBECONFIG;
  if (await pathExists(kubelet)) return resolveKubeconfig([await parseFile(kubelet)], opts.context);
  const sa = opts.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  const host = readEnv(opts, "KUBERNETES_SERVICE_HOST");
  const port = readEnv(opts, "KUBERNETES_SERVICE_PORT");
  if (host && port && await pathExists(join(sa, "token"))) return await inCluster(sa, host, port);
  throw new KubeconfigError(
    `no kubeconfig: pass --kubeconfig, set KUBECONFIG, or provide ${kubelet}` +
      ` (or run in a pod with a service account token under ${sa})`,
  );
}

async function inCluster(dir: string, host: string, port: string): Promise<KubeConfig> {
  const tokenFile = join(dir, "token");
  const token = (await Deno.readTextFile(tokenFile)).trim();
  const caPath = join(dir, "ca.crt");
  const caPem = await pathExists(caPath) ? await Deno.readTextFile(caPath) : undefined;
  const nsPath = join(dir, "namespace");
  const namespace = await pathExists(nsPath) ? (await Deno.readTextFile(nsPath)).trim() : undefined;
  const hostPart = host.includes(":") ? `[${host}]` : host;
  return {
    source: "in-cluster",
    server: `https://${hostPart}:${port}`,
    caPem,
    token,
    tokenFile,
    namespace,
  };
}

function named<T>(file: string, key: string, list: unknown, inner: string): NamedEntry<T>[] {
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new KubeconfigError(`${file}: "${key}" is not a list`);
  return list.map((item, i) => {
    const entry = item as Record<string, unknown> | null;
    if (!entry || typeof entry.name !== "string") {
      throw new KubeconfigError(`${file}: ${key}[${i}] has no name`);
    }
    const value = entry[inner];
    if (value !== undefined && (typeof value !== "object" || value === null)) {
      throw new KubeconfigError(`${file}: ${key}[${i}].${inner} is not a mapping`);
    }
    return { name: entry.name, value: (value ?? {}) as T };
  });
}

/** Parses one kubeconfig text (YAML or JSON); `path` is used for messages and relative paths. */
export function parseKubeconfigText(text: string, path: string): ParsedKubeconfig {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (error) {
    throw new KubeconfigError(
      `${path}: not valid YAML: ${(error as Error).message.split("\n")[0]}`,
    );
  }
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) {
    throw new KubeconfigError(`${path}: not a kubeconfig (expected a mapping with clusters/users)`);
  }
  const d = doc as Record<string, unknown>;
  const dir = dirname(path);
  return {
    path,
    currentContext: typeof d["current-context"] === "string" && d["current-context"] !== ""
      ? d["current-context"]
      : undefined,
    clusters: named<RawCluster>(path, "clusters", d.clusters, "cluster").map((c) => ({
      name: c.name,
      value: { ...c.value, dir },
    })),
    users: named<RawUser>(path, "users", d.users, "user").map((u) => ({
      name: u.name,
      value: { ...u.value, dir },
    })),
    contexts: named<RawContext>(path, "contexts", d.contexts, "context"),
  };
}

/** The parsed form of one kubeconfig file (opaque to callers; pass to {@link resolveKubeconfig}). */
export type ParsedKubeconfig = ParsedFile;

async function parseFile(path: string): Promise<ParsedFile> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new KubeconfigError(`${path}: cannot read kubeconfig: ${(error as Error).message}`);
  }
  return parseKubeconfigText(text, path);
}

function firstByName<T>(lists: NamedEntry<T>[][], name: string): T | undefined {
  for (const list of lists) {
    const hit = list.find((e) => e.name === name);
    if (hit) return hit.value;
  }
  return undefined;
}

function decodeData(file: string, field: string, b64: string): string {
  try {
    const bin = atob(b64.replace(/\s+/g, ""));
    return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
  } catch {
    throw new KubeconfigError(`${file}: ${field} is not valid base64`);
  }
}

async function readRef(file: string, field: string, dir: string, ref: string): Promise<string> {
  const path = isAbsolute(ref) ? ref : join(dir, ref);
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    throw new KubeconfigError(`${file}: ${field} ${path}: ${(error as Error).message}`);
  }
}

/** PEM blocks of the given kinds (e.g. CERTIFICATE, or the *PRIVATE KEY kinds) from `pem`. */
export function pemBlocks(pem: string, kind: RegExp): string {
  const re = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;
  const out: string[] = [];
  for (const m of pem.matchAll(re)) if (kind.test(m[1])) out.push(m[0]);
  return out.length > 0 ? out.join("\n") + "\n" : "";
}

/**
 * Resolves parsed kubeconfig files (merged in order, first definition wins, as kubectl merges
 * KUBECONFIG) to the chosen context's server and credentials, reading referenced files. A client
 * certificate file holding both certificate and key (the kubelet's
 * `kubelet-client-current.pem`) is split. Throws KubeconfigError naming the file and field.
 */
export async function resolveKubeconfig(
  files: ParsedKubeconfig[],
  contextName?: string,
): Promise<KubeConfig> {
  const where = files.map((f) => f.path).join(":");
  const ctxName = contextName ?? files.find((f) => f.currentContext)?.currentContext;
  let ctx: RawContext | undefined;
  if (ctxName) {
    ctx = firstByName(files.map((f) => f.contexts), ctxName);
    if (!ctx) throw new KubeconfigError(`${where}: context "${ctxName}" is not defined`);
  } else {
    // No current-context: use the only context if there is exactly one (kubelet.conf has one).
    const all = files.flatMap((f) => f.contexts);
    if (all.length !== 1) {
      throw new KubeconfigError(
        `${where}: no current-context set and ${all.length} contexts defined; pass a context`,
      );
    }
    ctx = all[0].value;
  }
  const clusterName = ctx.cluster;
  if (!clusterName) throw new KubeconfigError(`${where}: context "${ctxName}" names no cluster`);
  const cluster = firstByName(files.map((f) => f.clusters), clusterName);
  if (!cluster) throw new KubeconfigError(`${where}: cluster "${clusterName}" is not defined`);
  const clusterFile = files.find((f) => f.clusters.some((c) => c.name === clusterName))!.path;
  if (!cluster.server) {
    throw new KubeconfigError(`${clusterFile}: cluster "${clusterName}" has no server`);
  }
  let server: URL;
  try {
    server = new URL(cluster.server);
  } catch {
    throw new KubeconfigError(
      `${clusterFile}: cluster "${clusterName}" server "${cluster.server}" is not a URL`,
    );
  }
  if (server.protocol !== "https:" && server.protocol !== "http:") {
    throw new KubeconfigError(
      `${clusterFile}: cluster "${clusterName}" server "${cluster.server}" is not http(s)`,
    );
  }
  const out: KubeConfig = {
    source: where,
    server: cluster.server.replace(/\/+$/, ""),
    namespace: ctx.namespace || undefined,
    context: ctxName,
    user: ctx.user,
    insecureSkipTlsVerify: cluster["insecure-skip-tls-verify"] === true || undefined,
  };
  if (cluster["certificate-authority-data"]) {
    out.caPem = decodeData(
      clusterFile,
      "certificate-authority-data",
      cluster["certificate-authority-data"],
    );
  } else if (cluster["certificate-authority"]) {
    out.caPem = await readRef(
      clusterFile,
      "certificate-authority",
      cluster.dir,
      cluster["certificate-authority"],
    );
  }
  if (ctx.user) {
    const user = firstByName(files.map((f) => f.users), ctx.user);
    if (!user) throw new KubeconfigError(`${where}: user "${ctx.user}" is not defined`);
    const userFile = files.find((f) => f.users.some((u) => u.name === ctx.user))!.path;
    if (user.exec || user["auth-provider"]) {
      throw new KubeconfigError(
        `${userFile}: user "${ctx.user}" uses an exec/auth-provider plugin, which is not supported;` +
          " use a client certificate or a token",
      );
    }
    let cert = user["client-certificate-data"]
      ? decodeData(userFile, "client-certificate-data", user["client-certificate-data"])
      : user["client-certificate"]
      ? await readRef(userFile, "client-certificate", user.dir, user["client-certificate"])
      : undefined;
    let key = user["client-key-data"]
      ? decodeData(userFile, "client-key-data", user["client-key-data"])
      : user["client-key"]
      ? await readRef(userFile, "client-key", user.dir, user["client-key"])
      : undefined;
    if (cert !== undefined || key !== undefined) {
      cert = pemBlocks(cert ?? "", /^CERTIFICATE$/);
      key = pemBlocks(key ?? "", /PRIVATE KEY$/);
      if (!cert) {
        throw new KubeconfigError(`${userFile}: user "${ctx.user}" has no client certificate PEM`);
      }
      if (!key) {
        throw new KubeconfigError(`${userFile}: user "${ctx.user}" has no client key PEM`);
      }
      out.certPem = cert;
      out.keyPem = key;
    }
    if (user.token) {
      out.token = user.token.trim();
    } else if (user.tokenFile) {
      const path = isAbsolute(user.tokenFile) ? user.tokenFile : join(user.dir, user.tokenFile);
      out.token = (await readRef(userFile, "tokenFile", user.dir, user.tokenFile)).trim();
      out.tokenFile = path;
    }
    if (user.username !== undefined) {
      out.username = user.username;
      out.password = user.password ?? "";
    }
  }
  return out;
}
