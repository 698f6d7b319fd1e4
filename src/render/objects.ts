// The feature's shared Kubernetes objects: the namespace, the least RBAC of the host stub and the
// sidecar, and the content-addressed ConfigMap with the host files and manifests. Each builder
// returns plain objects in a fixed key order (so the YAML is byte-identical run to run).
import { createHash } from "node:crypto";
import type { FeatureSpec } from "../feature/spec.ts";
import { VERSION } from "../version.ts";

/** A Kubernetes object as ks-render writes it. */
export type KubeObject = Record<string, unknown> & {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
};

/** Returns a copy of `record` with its keys sorted (labels, env, data: stable output). */
export function sortedRecord<T>(record: Record<string, T>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const key of Object.keys(record).sort()) out[key] = record[key];
  return out;
}

/** The labels every object of the feature carries. */
export function commonLabels(spec: FeatureSpec): Record<string, string> {
  return sortedRecord({
    app: spec.name,
    "app.kubernetes.io/name": spec.name,
    "app.kubernetes.io/part-of": "sonic",
    "app.kubernetes.io/managed-by": "ks-render",
    "app.kubernetes.io/version": spec.version,
  });
}

/** The sidecar's ServiceAccount (no API rights at all). */
export function sidecarAccountName(spec: FeatureSpec): string {
  return `${spec.name}-sidecar`;
}
/** The host stub's ServiceAccount, Role and RoleBinding name. */
export function stubAccountName(spec: FeatureSpec): string {
  return `${spec.name}-stub`;
}
/** The Secret holding the stub's long-lived token (only with stub.apiServer). */
export function stubTokenSecretName(spec: FeatureSpec): string {
  return `${spec.name}-stub-token`;
}

/**
 * The namespace; Pod Security admission set to `privileged` since the pods use host namespaces,
 * hostPath and (in production) privileged containers.
 */
export function namespaceObject(spec: FeatureSpec): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: {
      name: spec.namespace,
      labels: sortedRecord({
        "app.kubernetes.io/part-of": "sonic",
        "pod-security.kubernetes.io/enforce": "privileged",
        "pod-security.kubernetes.io/warn": "privileged",
        "pod-security.kubernetes.io/audit": "privileged",
      }),
    },
  };
}

/**
 * The least RBAC: the sidecar's account has no binding and no mounted token (ks-patcher only
 * works on host files); the stub's account may list, watch and delete pods in the feature's
 * namespace — exactly the calls ks-stub makes (find this node's pod, follow it, delete it for
 * stop/restart) — and nothing else. With stub.apiServer, a token Secret gives the host stub a
 * credential that outlives any one pod (a pod's projected token dies with the pod the stub deletes).
 */
export function rbacObjects(spec: FeatureSpec): KubeObject[] {
  const labels = commonLabels(spec);
  const ns = spec.namespace;
  const stub = stubAccountName(spec);
  const objects: KubeObject[] = [
    {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: sidecarAccountName(spec), namespace: ns, labels },
      automountServiceAccountToken: false,
    },
    {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: stub, namespace: ns, labels },
      automountServiceAccountToken: false,
    },
  ];
  if (spec.stub.apiServer) {
    objects.push({
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name: stubTokenSecretName(spec),
        namespace: ns,
        labels,
        annotations: { "kubernetes.io/service-account.name": stub },
      },
      type: "kubernetes.io/service-account-token",
    });
  }
  objects.push(
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name: stub, namespace: ns, labels },
      rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["delete", "list", "watch"] }],
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: stub, namespace: ns, labels },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: stub },
      subjects: [{ kind: "ServiceAccount", name: stub, namespace: ns }],
    },
  );
  return objects;
}

/**
 * The immutable ConfigMap with the host files and manifests, named after a hash of its content
 * (`telemetry-files-<10 hex>`): each DaemonSet revision points at its own content, so a
 * `rollout undo` brings the matching files back instead of whatever was applied last.
 */
export function filesConfigMap(spec: FeatureSpec, data: Record<string, string>): KubeObject {
  const sorted = sortedRecord(data);
  const hash = createHash("sha256").update(JSON.stringify(sorted)).digest("hex").slice(0, 10);
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: `${spec.name}-files-${hash}`,
      namespace: spec.namespace,
      labels: commonLabels(spec),
      annotations: { "kubesonic.io/rendered-by": `ks-render ${VERSION}` },
    },
    immutable: true,
    data: sorted,
  };
}

/** The cluster-scoped admission policy's name (namespace in it: one policy per feature instance). */
export function stubPolicyName(spec: FeatureSpec): string {
  return `kubesonic-${spec.namespace}-${spec.name}-stub`;
}

/**
 * What RBAC cannot say: the stub may delete pods in the namespace, but only its own feature's
 * (label `app=<feature>`). A ValidatingAdmissionPolicy (GA since Kubernetes 1.30) matched to the
 * stub's username denies its deletes of any other pod, so a telemetry stub cannot restart gnmi.
 */
export function admissionObjects(spec: FeatureSpec): KubeObject[] {
  const name = stubPolicyName(spec);
  const user = `system:serviceaccount:${spec.namespace}:${stubAccountName(spec)}`;
  return [
    {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicy",
      metadata: { name, labels: commonLabels(spec) },
      spec: {
        failurePolicy: "Fail",
        matchConstraints: {
          resourceRules: [{
            apiGroups: [""],
            apiVersions: ["v1"],
            operations: ["DELETE"],
            resources: ["pods"],
          }],
        },
        matchConditions: [{
          name: "is-stub",
          expression: `request.userInfo.username == "${user}"`,
        }],
        validations: [{
          expression: `has(oldObject.metadata.labels) && "app" in oldObject.metadata.labels && ` +
            `oldObject.metadata.labels["app"] == "${spec.name}"`,
          message: `${stubAccountName(spec)} may delete only ${spec.name}'s pods`,
          reason: "Forbidden",
        }],
      },
    },
    {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicyBinding",
      metadata: { name, labels: commonLabels(spec) },
      spec: { policyName: name, validationActions: ["Deny"] },
    },
  ];
}
