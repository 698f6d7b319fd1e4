// Kubernetes objects the stub tests and flows create on the real API server: a feature DaemonSet
// shaped like ks-render's v2 (feature + watchdog containers, `raw_container_name` label) pinned to
// one kwok node by a label, and the least RBAC the stub needs (pods list/watch/delete in `sonic`).
import type { KubeCluster } from "../harness/kube.ts";
import { startTcpProxy, type TcpProxy } from "./tcp_proxy.ts";

/** The node label the test DaemonSets select on, so each test owns its nodes. */
export const TEST_NODE_LABEL = "kubesonic.test/stub-node";

/** Options of {@link featureDaemonSet}. */
export interface DaemonSetOptions {
  feature: string;
  /** DaemonSet name (default the feature). */
  name?: string;
  namespace?: string;
  /** Value of TEST_NODE_LABEL the pods are pinned to. */
  nodeLabel: string;
  /** Per-ASIC instance: label `asic` with this value. */
  asic?: string;
  /** Containers (default: the feature and its watchdog). */
  containers?: string[];
  /** A v1 (sidecar-only) DaemonSet: no `raw_container_name` label, only the sidecar container. */
  v1?: boolean;
  /** Pod annotations (kwok stages: `kubesonic.test/ready: "false"`...). */
  annotations?: Record<string, string>;
}

/** A DaemonSet labelled like ks-render's (v2 unless `v1`) for `feature`, as a JSON-able object. */
export function featureDaemonSet(o: DaemonSetOptions): Record<string, unknown> {
  const name = o.name ?? o.feature;
  const labels: Record<string, string> = {
    app: o.feature,
    "app.kubernetes.io/instance": name,
    ...(o.v1 ? {} : { raw_container_name: o.feature }),
    ...(o.asic !== undefined ? { asic: o.asic } : {}),
  };
  const containers = o.containers ??
    (o.v1 ? [`${o.feature}-sidecar`] : [o.feature, `${o.feature}-watchdog`]);
  return {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { name, namespace: o.namespace ?? "sonic", labels },
    spec: {
      selector: { matchLabels: { app: o.feature, "app.kubernetes.io/instance": name } },
      template: {
        metadata: { labels, annotations: o.annotations ?? {} },
        spec: {
          nodeSelector: { [TEST_NODE_LABEL]: o.nodeLabel },
          tolerations: [{ operator: "Exists" }],
          terminationGracePeriodSeconds: 5,
          containers: containers.map((c) => ({ name: c, image: `example.invalid/${c}:v2` })),
        },
      },
    },
  };
}

/** Least RBAC for ks-stub in `namespace`: pods list/watch/delete, nothing else (as ks-render). */
export function stubRbac(
  namespace: string,
  serviceAccount: string,
  verbs: string[] = ["list", "watch", "delete"],
): Record<string, unknown>[] {
  return [
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: serviceAccount, namespace } },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name: serviceAccount, namespace },
      rules: [{ apiGroups: [""], resources: ["pods"], verbs }],
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: serviceAccount, namespace },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: serviceAccount },
      subjects: [{ kind: "ServiceAccount", name: serviceAccount, namespace }],
    },
  ];
}

/** `kubectl apply` of objects (JSON on stdin); throws with kubectl's stderr on failure. */
export async function apply(kube: KubeCluster, objects: unknown[]): Promise<void> {
  const list = { apiVersion: "v1", kind: "List", items: objects };
  const out = await kube.kubectl(["apply", "-f", "-"], { stdin: JSON.stringify(list) });
  if (out.code !== 0) throw new Error(`kubectl apply failed: ${out.stderr.trim()}`);
}

/** Runs kubectl and returns stdout; throws with stderr on failure. */
export async function kubectlOk(kube: KubeCluster, args: string[]): Promise<string> {
  const out = await kube.kubectl(args);
  if (out.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed: ${out.stderr.trim()}`);
  return out.stdout;
}

/** A pod as `kubectl get -o json` returns it (the fields tests read). */
export interface PodInfo {
  name: string;
  uid: string;
  phase: string;
  deleting: boolean;
}

/** The pods in `namespace` matching `selector` on `node`. */
export async function podsOn(
  kube: KubeCluster,
  node: string,
  selector: string,
  namespace = "sonic",
): Promise<PodInfo[]> {
  const text = await kubectlOk(kube, [
    "get",
    "pods",
    "-n",
    namespace,
    "-l",
    selector,
    "--field-selector",
    `spec.nodeName=${node}`,
    "-o",
    "json",
  ]);
  const list = JSON.parse(text) as {
    items: {
      metadata: { name: string; uid: string; deletionTimestamp?: string };
      status?: { phase?: string };
    }[];
  };
  return list.items.map((p) => ({
    name: p.metadata.name,
    uid: p.metadata.uid,
    phase: p.status?.phase ?? "",
    deleting: Boolean(p.metadata.deletionTimestamp),
  }));
}

/** A copy of `kubeconfigPath` whose cluster server is `server` (e.g. a TcpProxy's URL). */
export async function kubeconfigVia(kubeconfigPath: string, server: string): Promise<string> {
  const text = await Deno.readTextFile(kubeconfigPath);
  const replaced = text.replace(/server:\s*\S+/g, `server: ${server}`);
  if (replaced === text) throw new Error(`${kubeconfigPath}: no server line to replace`);
  const out = `${kubeconfigPath}.via-${server.replace(/\W+/g, "_")}`;
  await Deno.writeTextFile(out, replaced);
  return out;
}

/**
 * A TCP proxy to the cluster's API server (so a test can cut it) and a copy of `kubeconfigPath`
 * that goes through it. The caller stops the proxy.
 */
export async function apiProxy(
  kube: KubeCluster,
  kubeconfigPath: string,
): Promise<{ proxy: TcpProxy; via: string }> {
  const proxy = startTcpProxy({ hostname: "127.0.0.1", port: Number(new URL(kube.server).port) });
  try {
    return { proxy, via: await kubeconfigVia(kubeconfigPath, proxy.url) };
  } catch (e) {
    proxy.stop();
    throw e;
  }
}
