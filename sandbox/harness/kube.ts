// A real Kubernetes control plane per suite, for tests, benchmarks and the lab: etcd,
// kube-apiserver (loopback, generated v3 certificates, a service-account key pair, Node+RBAC
// authorization), kube-controller-manager and kube-scheduler (no leader election), and kwok, which
// turns `v1.Node` objects into simulated nodes and drives pod status through the stage files in
// sandbox/harness/kwok/. Every port comes from freePort and every file lives in the cluster's own
// directory, so several clusters run side by side. `stop()` kills every process it started.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { KubeConfig as ClientNodeConfig } from "@kubernetes/client-node";
import { toClientNodeConfig, watchUntil, type WatchUntilOptions } from "../../src/kube/client.ts";
import { KubeApiError, KubeRest, resourcePath } from "../../src/kube/rest.ts";
import type { KubeConfig } from "../../src/kube/kubeconfig.ts";
import { blackholeRoute, freePort } from "./net.ts";
import { makeCert } from "./pki.ts";
import { logTail, runChecked, runCommand, spawnLogged } from "./process.ts";

const HARNESS_DIR = dirname(fileURLToPath(import.meta.url));
const REPO = join(HARNESS_DIR, "..", "..");
/** Directory of the kwok stage files loaded by every cluster (`*.yaml`). */
export const KWOK_STAGE_DIR = join(HARNESS_DIR, "kwok");
/** The binaries a cluster needs. */
export const KUBE_BINARIES = [
  "etcd",
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
  "kubectl",
  "kwok",
] as const;
/** Namespace every cluster creates at start-up (the one SONiC's DaemonSets live in). */
export const SONIC_NAMESPACE = "sonic";
/** Pod IPs kwok writes into pod status (never routed: see blackholeRoute). */
export const KWOK_POD_CIDR = "10.244.0.0/16";
/** The node IP kwok writes into node status (never routed: see blackholeRoute). */
export const KWOK_NODE_IP = "10.255.0.1";

/** The annotation kwok is told to manage nodes by. */
export const KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node";

/**
 * Labels every simulated switch node carries unless overridden: the well-known node labels a
 * kubelet sets, plus the ones SONiC's ctrmgrd pushes (`sonic_version`, `hwsku`). Feature labels
 * (`<feature>_enabled=true`) are the test's to add through `nodeLabels`.
 */
export const SONIC_NODE_LABELS: Readonly<Record<string, string>> = {
  "kubernetes.io/os": "linux",
  "kubernetes.io/arch": "amd64",
  "node.kubernetes.io/instance-type": "sonic",
  sonic_version: "SONiC.master.0-kubesonic",
  hwsku: "Force10-S6000",
  type: "kwok",
};

/** Options for {@link startKube}. */
export interface StartKubeOptions {
  /** kwok nodes to create and wait Ready for (lowercase DNS names), default none. */
  nodes?: string[];
  /** Extra labels for those nodes (merged over SONIC_NODE_LABELS). */
  nodeLabels?: Record<string, string>;
  /** Directory for certificates, data and logs (default a new temp dir, removed by stop()). */
  dir?: string;
  /** Extra kube-apiserver flags (e.g. `--feature-gates=...`), appended to the harness's own. */
  apiserverArgs?: string[];
}

/** The result of a kubectl run. */
export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A running control plane. */
export interface KubeCluster {
  dir: string;
  /** `https://127.0.0.1:PORT` */
  server: string;
  /** Kubeconfig of a cluster admin (client certificate, group system:masters). */
  kubeconfigPath: string;
  binDir: string;
  /** The admin credentials, resolved (for building clients in-process). */
  adminConfig: KubeConfig;
  /** A REST client as admin (closed by stop()), for one-off reads and writes. */
  rest: KubeRest;
  /** The admin credentials as a client-node KubeConfig (its Watch, informers, API classes). */
  clientNodeConfig: ClientNodeConfig;
  /**
   * Waits by watch (client-node), not by polling: until `opts.done` holds for the objects under
   * `path` (a collection, e.g. `/api/v1/nodes`); see src/kube/client.ts watchUntil.
   */
  watchUntil<T extends { metadata?: { uid?: string; name?: string } }>(
    path: string,
    opts: WatchUntilOptions<T>,
  ): Promise<T[]>;
  /** Milliseconds startKube() took (nodes included). */
  startMs: number;
  /** Creates kwok nodes with SONiC labels (plus `labels`) and waits until all are Ready. */
  addNodes(names: string[], labels?: Record<string, string>): Promise<void>;
  /** Runs kubectl as admin against this cluster. */
  kubectl(args: string[], opts?: { stdin?: string }): Promise<KubectlResult>;
  /**
   * Creates (if needed) the service account `namespace/name` and writes a kubeconfig that
   * authenticates as it with a bound token; returns its path. For RBAC tests.
   */
  serviceAccountKubeconfig(namespace: string, name: string): Promise<string>;
  /** Stops every process (SIGKILL, awaited) and removes the directory if startKube made it. */
  stop(): Promise<void>;
}

/**
 * Where the Kubernetes binaries are: KS_KUBE_BIN, else `scripts/build-kube.sh --print-dir`;
 * undefined unless every binary in KUBE_BINARIES exists there.
 */
export function kubeBinDir(): string | undefined {
  let dir = Deno.env.get("KS_KUBE_BIN");
  if (!dir) {
    try {
      const out = new Deno.Command("bash", {
        args: [join(REPO, "scripts", "build-kube.sh"), "--print-dir"],
        stdout: "piped",
        stderr: "null",
      }).outputSync();
      dir = new TextDecoder().decode(out.stdout).trim();
    } catch {
      return undefined;
    }
  }
  if (!dir) return undefined;
  for (const bin of KUBE_BINARIES) {
    try {
      if (!Deno.statSync(join(dir, bin)).isFile) return undefined;
    } catch {
      return undefined;
    }
  }
  return dir;
}

const NODE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

const b64 = (text: string) => btoa(String.fromCharCode(...new TextEncoder().encode(text)));

/** Generates the cluster PKI with openssl: EC P-256 keys, X.509 v3 certificates. */
async function makePki(pki: string): Promise<void> {
  await Deno.mkdir(pki, { recursive: true });
  const p = (f: string) => join(pki, f);
  const ca = { certPath: p("ca.crt"), keyPath: p("ca.key") };
  await makeCert({
    ...ca,
    subject: "/CN=kubesonic-test-ca",
    days: 3650,
    extensions: [
      "basicConstraints=critical,CA:TRUE",
      "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    ],
  });
  const leaf = (name: string, subject: string, ext: string[]) =>
    makeCert({
      keyPath: p(`${name}.key`),
      certPath: p(`${name}.crt`),
      subject,
      days: 3650,
      ca,
      extensions: [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        ...ext,
      ],
    });
  const client = ["extendedKeyUsage=clientAuth"];
  await Promise.all([
    leaf("apiserver", "/CN=kube-apiserver", [
      "extendedKeyUsage=serverAuth",
      "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes," +
      "DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local",
    ]),
    leaf("admin", "/O=system:masters/CN=kubernetes-admin", client),
    // With --use-service-account-credentials=false every controller acts as the manager
    // itself, which the bootstrap role system:kube-controller-manager does not cover; per-
    // controller service-account tokens would cost seconds of start-up, so: system:masters.
    leaf("controller-manager", "/O=system:masters/CN=system:kube-controller-manager", client),
    leaf("scheduler", "/CN=system:kube-scheduler", client),
    runChecked("openssl", [
      "genpkey",
      "-algorithm",
      "EC",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-out",
      p("sa.key"),
    ]).then(() =>
      runChecked("openssl", ["pkey", "-in", p("sa.key"), "-pubout", "-out", p("sa.pub")])
    ),
  ]);
}

function kubeconfigYaml(
  server: string,
  ca: string,
  user: { cert?: string; key?: string; token?: string },
): string {
  const auth = user.token
    ? `    token: ${user.token}\n`
    : `    client-certificate-data: ${b64(user.cert!)}\n    client-key-data: ${b64(user.key!)}\n`;
  return `apiVersion: v1
kind: Config
clusters:
- name: kubesonic-test
  cluster:
    server: ${server}
    certificate-authority-data: ${b64(ca)}
users:
- name: user
  user:
${auth}contexts:
- name: kubesonic-test
  context:
    cluster: kubesonic-test
    user: user
current-context: kubesonic-test
`;
}

interface Proc {
  name: string;
  child: Deno.ChildProcess;
  log: string;
  done: Promise<void>;
}

async function tail(path: string, lines = 15): Promise<string> {
  return await logTail(path, lines) ?? "(no log)";
}

/**
 * Starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on loopback,
 * creates the `sonic` namespace (with its default service account) and the requested kwok nodes,
 * and returns once the nodes are Ready. Throws (after stopping whatever it started) with the log
 * tail of the component that failed, or with how to build the binaries when they are missing.
 */
export async function startKube(opts: StartKubeOptions = {}): Promise<KubeCluster> {
  const t0 = performance.now();
  for (let attempt = 1;; attempt++) {
    try {
      return await startOnce(opts, t0);
    } catch (error) {
      // freePort() releases a port before the component binds it: under parallel suites another
      // process can take it in between. That is worth a fresh set of ports, nothing else is.
      if (attempt >= 3 || !/address already in use/i.test((error as Error).message)) throw error;
      if (opts.dir) await Deno.remove(join(opts.dir, "etcd"), { recursive: true }).catch(() => {});
    }
  }
}

async function startOnce(opts: StartKubeOptions, t0: number): Promise<KubeCluster> {
  const binDir = kubeBinDir();
  if (!binDir) {
    throw new Error(
      "Kubernetes binaries not found: run `bash scripts/build-kube.sh` once (about 15 min cold," +
        " cached afterwards) or set KS_KUBE_BIN to a directory with " + KUBE_BINARIES.join(", "),
    );
  }
  for (const n of opts.nodes ?? []) checkNodeName(n);
  const ownDir = !opts.dir;
  const dir = opts.dir ?? await Deno.makeTempDir({ prefix: "ks-kube-" });
  const pki = join(dir, "pki");
  const logs = join(dir, "logs");
  await Deno.mkdir(logs, { recursive: true });

  const procs: Proc[] = [];
  let rest: KubeRest | undefined;
  let stopped = false;
  let stopping: Promise<void> | undefined;
  const stopAll = () => stopping ??= stopOnce();
  const stopOnce = async () => {
    stopped = true;
    globalThis.removeEventListener("unload", onUnload);
    rest?.close();
    for (const p of procs) {
      try {
        p.child.kill("SIGKILL");
      } catch { /* already gone */ }
    }
    await Promise.all(procs.map((p) => p.done));
    if (ownDir) await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  // Last resort if the test process exits without calling stop(): no orphaned apiservers.
  const onUnload = () => {
    for (const p of procs) {
      try {
        p.child.kill("SIGKILL");
      } catch { /* gone */ }
    }
  };
  globalThis.addEventListener("unload", onUnload);

  const spawn = async (name: string, args: string[]): Promise<Proc> => {
    const log = join(logs, `${name}.log`);
    // Both streams into one log file; the file closes when both end.
    const { child, status, logged } = await spawnLogged(join(binDir, name), args, log, {
      cwd: dir,
    });
    const proc: Proc = {
      name,
      child,
      log,
      done: Promise.all([status, logged]).then(() => {}),
    };
    procs.push(proc);
    return proc;
  };

  /** Fails fast with the log tail if a component exits while we wait for the cluster. */
  const watchExit = (p: Proc) => {
    const exited = p.child.status.then(async (s) => {
      await p.done; // the log is complete once both streams are drained
      if (!stopped) {
        throw new Error(
          `${p.name} exited during start-up (code ${s.code}); log ${p.log}:\n${await tail(p.log)}`,
        );
      }
    });
    exited.catch(() => {}); // handled where it is raced; never an unhandled rejection
    return exited;
  };

  try {
    const [etcdPort, etcdPeerPort, apiPort] = [freePort(), freePort(), freePort()];
    const server = `https://127.0.0.1:${apiPort}`;
    // etcd needs no certificates: start it while openssl runs.
    const etcd = await spawn("etcd", [
      "--name=default",
      `--data-dir=${join(dir, "etcd")}`,
      `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeerPort}`,
      "--unsafe-no-fsync",
      "--log-level=warn",
    ]);
    const earlyExit: Promise<void>[] = [watchExit(etcd)];
    await makePki(pki);
    const ca = await Deno.readTextFile(join(pki, "ca.crt"));
    const read = (f: string) => Deno.readTextFile(join(pki, f));
    const kubeconfigPath = join(dir, "admin.kubeconfig");
    const adminCert = await read("admin.crt");
    const adminKey = await read("admin.key");
    await Deno.writeTextFile(
      kubeconfigPath,
      kubeconfigYaml(server, ca, { cert: adminCert, key: adminKey }),
    );
    for (const c of ["controller-manager", "scheduler"]) {
      await Deno.writeTextFile(
        join(dir, `${c}.kubeconfig`),
        kubeconfigYaml(server, ca, { cert: await read(`${c}.crt`), key: await read(`${c}.key`) }),
      );
    }

    const apiserver = await spawn("kube-apiserver", [
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--secure-port=${apiPort}`,
      `--tls-cert-file=${join(pki, "apiserver.crt")}`,
      `--tls-private-key-file=${join(pki, "apiserver.key")}`,
      `--client-ca-file=${join(pki, "ca.crt")}`,
      `--service-account-key-file=${join(pki, "sa.pub")}`,
      `--service-account-signing-key-file=${join(pki, "sa.key")}`,
      "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
      "--service-cluster-ip-range=10.96.0.0/12",
      "--authorization-mode=Node,RBAC",
      "--allow-privileged=true",
      "--endpoint-reconciler-type=none",
      `--cert-dir=${pki}`,
      "--profiling=false",
      "--v=0",
      ...opts.apiserverArgs ?? [],
    ]);
    earlyExit.push(watchExit(apiserver));
    const adminConfig: KubeConfig = {
      source: kubeconfigPath,
      server,
      caPem: ca,
      certPem: adminCert,
      keyPem: adminKey,
      context: "kubesonic-test",
      user: "user",
    };
    rest = new KubeRest(adminConfig, { timeoutMs: 10_000, retries: 3 });
    const admin = rest;
    const clientNodeConfig = toClientNodeConfig(adminConfig);

    const coreFailed = Promise.race(earlyExit);
    coreFailed.catch(() => {});
    // The controller-manager gives the apiserver only 10 s to turn healthy, then exits; on a
    // loaded machine a cold apiserver takes longer, even after it first answers HTTP (its RBAC
    // bootstrap hook was seen taking more than 10 s at load 45-60). So: start both controllers
    // once /readyz is 200, not at spawn time nor at the first answer.
    await Promise.race([waitApiserver(server, ca, 60_000, true), coreFailed]);
    const kcm = await spawn("kube-controller-manager", [
      `--kubeconfig=${join(dir, "controller-manager.kubeconfig")}`,
      "--leader-elect=false",
      "--secure-port=0",
      `--service-account-private-key-file=${join(pki, "sa.key")}`,
      `--root-ca-file=${join(pki, "ca.crt")}`,
      "--use-service-account-credentials=false",
      "--kube-api-qps=100",
      "--kube-api-burst=200",
      "--concurrent-daemonset-syncs=4",
      "--v=0",
    ]);
    const scheduler = await spawn("kube-scheduler", [
      `--kubeconfig=${join(dir, "scheduler.kubeconfig")}`,
      "--leader-elect=false",
      "--secure-port=0",
      "--kube-api-qps=100",
      "--kube-api-burst=200",
      "--v=0",
    ]);
    earlyExit.push(watchExit(kcm), watchExit(scheduler));
    const failed = Promise.race(earlyExit);
    failed.catch(() => {});

    await Promise.race([waitApiserver(server, ca, 60_000, true), failed]);

    const stageFiles = [...Deno.readDirSync(KWOK_STAGE_DIR)]
      .filter((e) => e.isFile && e.name.endsWith(".yaml"))
      .map((e) => join(KWOK_STAGE_DIR, e.name))
      .sort();
    // kwok writes these addresses into node and pod status only; nothing here may ever reach
    // them through the default route (e.g. an apiserver dial for logs/exec).
    for (const cidr of [KWOK_POD_CIDR, `${KWOK_NODE_IP}/32`]) await blackholeRoute(cidr);
    const kwok = await spawn("kwok", [
      `--kubeconfig=${kubeconfigPath}`,
      "--manage-all-nodes=false",
      `--manage-nodes-with-annotation-selector=${KWOK_NODE_ANNOTATION}=fake`,
      "--node-lease-duration-seconds=40",
      `--cidr=${KWOK_POD_CIDR}`,
      `--node-ip=${KWOK_NODE_IP}`,
      ...stageFiles.flatMap((f) => ["-c", f]),
    ]);
    const kwokFailed = watchExit(kwok);

    await Promise.race([
      (async () => {
        await ensure(admin, resourcePath({ resource: "namespaces" }), {
          apiVersion: "v1",
          kind: "Namespace",
          metadata: { name: SONIC_NAMESPACE },
        });
        // The service-account admission plugin rejects pods until `default` exists; the
        // controller-manager would create it too, but not before its caches sync.
        await ensure(
          admin,
          resourcePath({ resource: "serviceaccounts", namespace: SONIC_NAMESPACE }),
          { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "default" } },
        );
      })(),
      failed,
      kwokFailed,
    ]);

    const addNodes = async (names: string[], labels: Record<string, string> = {}) => {
      for (const n of names) checkNodeName(n);
      // At most 32 creations in flight: a 1000-switch fleet should not trip the API's flow control.
      await inBatches(names, 32, (name) =>
        ensure(admin, resourcePath({ resource: "nodes" }), {
          apiVersion: "v1",
          kind: "Node",
          metadata: {
            name,
            annotations: { [KWOK_NODE_ANNOTATION]: "fake", "node.alpha.kubernetes.io/ttl": "0" },
            labels: {
              ...SONIC_NODE_LABELS,
              "kubernetes.io/hostname": name,
              ...opts.nodeLabels,
              ...labels,
            },
          },
          spec: {},
        }));
      const ms = 60_000 + 100 * names.length;
      await Promise.race([waitNodesReady(clientNodeConfig, names, ms), kwokFailed, failed]);
    };

    if (opts.nodes?.length) await addNodes(opts.nodes);

    const cluster: KubeCluster = {
      dir,
      server,
      kubeconfigPath,
      binDir,
      adminConfig,
      rest: admin,
      clientNodeConfig,
      watchUntil: (path, wopts) => watchUntil(clientNodeConfig, path, wopts),
      startMs: performance.now() - t0,
      addNodes,
      kubectl(args, kopts = {}) {
        return runCommand(join(binDir, "kubectl"), [`--kubeconfig=${kubeconfigPath}`, ...args], {
          env: { KUBECONFIG: kubeconfigPath },
          stdin: kopts.stdin,
        });
      },
      async serviceAccountKubeconfig(namespace, name) {
        await ensure(admin, resourcePath({ resource: "namespaces" }), {
          apiVersion: "v1",
          kind: "Namespace",
          metadata: { name: namespace },
        });
        await ensure(admin, resourcePath({ resource: "serviceaccounts", namespace }), {
          apiVersion: "v1",
          kind: "ServiceAccount",
          metadata: { name },
        });
        const review = await admin.create<{ status: { token: string } }>(
          resourcePath({ resource: "serviceaccounts", namespace, name, subresource: "token" }),
          {
            apiVersion: "authentication.k8s.io/v1",
            kind: "TokenRequest",
            spec: { expirationSeconds: 86400 },
          },
        );
        const path = join(dir, `sa-${namespace}-${name}.kubeconfig`);
        await Deno.writeTextFile(path, kubeconfigYaml(server, ca, { token: review.status.token }));
        return path;
      },
      stop: stopAll,
    };
    return cluster;
  } catch (error) {
    const logsNote = ownDir ? "" : ` (logs in ${logs})`;
    await stopAll();
    if (error instanceof Error) error.message = `startKube: ${error.message}${logsNote}`;
    throw error;
  }
}

function checkNodeName(name: string): void {
  if (name.length > 253 || !NODE_NAME.test(name)) {
    throw new Error(
      `node name "${name}" is not a lowercase DNS name (a-z, 0-9, "-", "."), as node names must be`,
    );
  }
}

/** Creates `body` under `collection`; an existing object of that name is fine. */
async function ensure(rest: KubeRest, collection: string, body: unknown): Promise<void> {
  try {
    await rest.create(collection, body);
  } catch (error) {
    if (!(error instanceof KubeApiError && error.status === 409)) throw error;
  }
}

/**
 * Polls /readyz (anonymous, CA-verified) every 50 ms until it answers 200 (`ready`), or until it
 * answers anything at all (not `ready`).
 */
async function waitApiserver(
  server: string,
  ca: string,
  ms: number,
  ready: boolean,
): Promise<void> {
  const client = Deno.createHttpClient({ caCerts: [ca] });
  const deadline = Date.now() + ms;
  let last = "no answer yet";
  try {
    while (Date.now() < deadline) {
      try {
        const res = await fetch(`${server}/readyz`, {
          client,
          // A starting apiserver may accept and then sit on a request: do not wait long for one.
          signal: AbortSignal.timeout(500),
        });
        last = `${res.status} ${(await res.text()).slice(0, 200)}`;
        if (res.ok || !ready) return;
      } catch (error) {
        last = (error as Error).message;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    client.close();
  }
  throw new Error(
    `kube-apiserver not ${
      ready ? "ready" : "answering"
    } at ${server}/readyz within ${ms} ms: ${last}`,
  );
}

interface NodeStatus {
  metadata: { name: string };
  status?: { conditions?: { type: string; status: string }[] };
}

/** Runs `fn` over `items` with at most `limit` calls in flight; rejects on the first failure. */
async function inBatches<T>(items: T[], limit: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Waits by watch until every node in `names` reports Ready. */
async function waitNodesReady(kc: ClientNodeConfig, names: string[], ms: number): Promise<void> {
  const want = new Set(names);
  const isReady = (n: NodeStatus) =>
    n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
  await watchUntil<NodeStatus>(kc, "/api/v1/nodes", {
    done: (nodes) =>
      nodes.filter((n) => want.has(n.metadata.name) && isReady(n)).length === want.size,
    timeoutMs: ms,
    what: `${names.length} kwok nodes Ready`,
  });
}
