// KubeRest against a real kube-apiserver: mutual TLS with the admin
// client certificate from a kubeconfig file, create/get/list/patch/delete/watch, 404 and 409 as
// KubeApiError, a service-account token kubeconfig that RBAC forbids until a RoleBinding allows
// it, and an unreachable server reported as KubeUnreachableError.
import assert from "node:assert/strict";
import { loadKubeconfig } from "../../src/kube/kubeconfig.ts";
import {
  isConflict,
  isNotFound,
  KubeApiError,
  KubeRest,
  KubeUnreachableError,
  resourcePath,
} from "../../src/kube/rest.ts";
import { SONIC_NAMESPACE, startKube } from "../../sandbox/harness/kube.ts";
import { freePort, waitUntil } from "../../sandbox/harness/net.ts";

interface ConfigMap {
  metadata: { name: string; resourceVersion?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
}

Deno.test("KubeRest works against a real apiserver", async (t) => {
  const cluster = await startKube();
  try {
    const cms = resourcePath({ resource: "configmaps", namespace: SONIC_NAMESPACE });

    await t.step("mTLS from a kubeconfig file: create, get, patch, list, delete", async () => {
      const rest = await KubeRest.connect({ path: cluster.kubeconfigPath });
      try {
        await rest.create(cms, { metadata: { name: "a", labels: { app: "x" } }, data: { k: "1" } });
        await assert.rejects(
          rest.create(cms, { metadata: { name: "a" } }),
          (e: Error) => isConflict(e) && (e as KubeApiError).reason === "AlreadyExists",
        );
        const patched = await rest.patch<ConfigMap>(`${cms}/a`, { data: { k: "2" } });
        assert.equal(patched.data?.k, "2");
        const list = await rest.list<ConfigMap>(cms, { labelSelector: "app=x" });
        assert.deepEqual(list.items.map((c) => c.metadata.name), ["a"]);
        await rest.delete(`${cms}/a`);
        await assert.rejects(rest.get(`${cms}/a`), (e: Error) => isNotFound(e));
      } finally {
        rest.close();
      }
    });

    await t.step(
      "watch sees ADDED, MODIFIED and DELETED from a list's resourceVersion",
      async () => {
        const rest = new KubeRest(cluster.adminConfig);
        const ac = new AbortController();
        try {
          const list = await rest.list<ConfigMap>(cms);
          const seen: string[] = [];
          const watching = (async () => {
            for await (
              const ev of rest.watch<ConfigMap>(cms, {
                resourceVersion: list.metadata.resourceVersion,
                fieldSelector: "metadata.name=w",
                signal: ac.signal,
                timeoutSeconds: 30,
              })
            ) {
              seen.push(`${ev.type} ${ev.object.data?.k ?? ""}`);
              if (ev.type === "DELETED") return;
            }
          })();
          await rest.create(cms, { metadata: { name: "w" }, data: { k: "1" } });
          await rest.patch(`${cms}/w`, { data: { k: "2" } });
          await rest.delete(`${cms}/w`);
          await watching;
          assert.deepEqual(seen, ["ADDED 1", "MODIFIED 2", "DELETED 2"]);
        } finally {
          ac.abort();
          rest.close();
        }
      },
    );

    await t.step("a service-account token is forbidden until a RoleBinding allows it", async () => {
      const path = await cluster.serviceAccountKubeconfig(SONIC_NAMESPACE, "ks-stub");
      const cfg = await loadKubeconfig({ path });
      assert.ok(cfg.token && !cfg.certPem, "token auth, no client certificate");
      const sa = new KubeRest(cfg, { retries: 0 });
      const pods = resourcePath({ resource: "pods", namespace: SONIC_NAMESPACE });
      try {
        await assert.rejects(
          sa.list(pods),
          (e: Error) => e instanceof KubeApiError && e.status === 403 && /ks-stub/.test(e.message),
        );
        const rb = await cluster.kubectl([
          "create",
          "rolebinding",
          "ks-stub-view",
          "-n",
          SONIC_NAMESPACE,
          "--clusterrole=view",
          `--serviceaccount=${SONIC_NAMESPACE}:ks-stub`,
        ]);
        assert.equal(rb.code, 0, rb.stderr);
        // The RBAC authorizer learns of the binding through its informer: allow it a moment.
        await waitUntil(
          () => sa.list(pods).then(() => true, () => false),
          10_000,
          "the RoleBinding to take effect",
          50,
        );
        const list = await sa.list(pods);
        assert.ok(Array.isArray(list.items));
        await assert.rejects(
          sa.delete(`${pods}/nothing`),
          (e: Error) => (e as KubeApiError).status === 403,
        );
      } finally {
        sa.close();
      }
    });
  } finally {
    await cluster.stop();
  }
});

Deno.test("a server that does not listen is reported as KubeUnreachableError", async () => {
  const rest = new KubeRest({ source: "t", server: `https://127.0.0.1:${freePort()}` }, {
    retries: 1,
    backoffMs: 10,
    timeoutMs: 1000,
  });
  try {
    await assert.rejects(rest.get("/version"), (e: Error) => e instanceof KubeUnreachableError);
  } finally {
    rest.close();
  }
});
