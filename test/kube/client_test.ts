// The client-node side (src/kube/client.ts) against a real kube-apiserver: watchEvents yields the
// objects as the server sent them, in order, with the admin's mutual TLS and with a service
// account's token; a refused watch is KubeApiError with its status; an abort ends the iterator at
// once; watchUntil waits for a condition and names what it waited for when it times out. The ERROR
// event of an expired version (410), which a real server sends only once its history is compacted,
// comes from a scripted server: the events before it are delivered, then it is KubeApiError 410.
import assert from "node:assert/strict";
import { toClientNodeConfig, watchEvents, watchUntil } from "../../src/kube/client.ts";
import { loadKubeconfig } from "../../src/kube/kubeconfig.ts";
import { KubeApiError, KubeUnreachableError, resourcePath } from "../../src/kube/rest.ts";
import { kubeBinDir, SONIC_NAMESPACE, startKube } from "../../sandbox/harness/kube.ts";
import { freePort } from "../../sandbox/harness/net.ts";

interface ConfigMap {
  metadata: { name: string; uid?: string; resourceVersion?: string };
  data?: Record<string, string>;
}

const cms = resourcePath({ resource: "configmaps", namespace: SONIC_NAMESPACE });

Deno.test({
  name: "client-node watches against a real apiserver: events in order, errors, abort, watchUntil",
  ignore: kubeBinDir() === undefined,
  async fn(t) {
    const cluster = await startKube();
    try {
      const kc = toClientNodeConfig(cluster.adminConfig);

      await t.step("events come as the server sent them, in order (mTLS)", async () => {
        const start = await cluster.rest.list<ConfigMap>(cms);
        const abort = new AbortController();
        const seen: string[] = [];
        const watching = (async () => {
          for await (
            const ev of watchEvents<ConfigMap>(kc, cms, {
              resourceVersion: start.metadata.resourceVersion,
              labelSelector: "t=order",
            }, abort.signal)
          ) {
            seen.push(`${ev.type} ${ev.object.metadata.name} ${ev.object.data?.v ?? ""}`);
            if (ev.type === "DELETED") abort.abort();
          }
        })();
        const body = (v: string) => ({
          metadata: { name: "w", labels: { t: "order" } },
          data: { v },
        });
        await cluster.rest.create(cms, body("1"));
        await cluster.rest.patch(`${cms}/w`, { data: { v: "2" } }, { type: "merge" });
        await cluster.rest.delete(`${cms}/w`);
        await watching;
        assert.deepEqual(seen, ["ADDED w 1", "MODIFIED w 2", "DELETED w 2"]);
      });

      await t.step("a service account's token works the same way", async () => {
        await cluster.kubectl([
          "create",
          "rolebinding",
          "sa-view",
          "-n",
          SONIC_NAMESPACE,
          "--clusterrole=view",
          `--serviceaccount=${SONIC_NAMESPACE}:watcher`,
        ]);
        const path = await cluster.serviceAccountKubeconfig(SONIC_NAMESPACE, "watcher");
        const saKc = toClientNodeConfig(await loadKubeconfig({ path }));
        await cluster.rest.create(cms, { metadata: { name: "sa-seen" }, data: {} });
        const found = await watchUntil<ConfigMap>(saKc, cms, {
          fieldSelector: "metadata.name=sa-seen",
          done: (items) => items.length === 1,
          timeoutMs: 20_000,
          what: "sa-seen",
        });
        assert.equal(found[0].metadata.name, "sa-seen");
      });

      await t.step(
        "a refused watch (a resourceVersion that is not one) is KubeApiError with the server's status",
        async () => {
          let error: unknown;
          try {
            for await (
              const _ of watchEvents(
                kc,
                cms,
                { resourceVersion: "not-a-version" },
                AbortSignal.timeout(20_000),
              )
            ) { /* none expected */ }
          } catch (e) {
            error = e;
          }
          assert.ok(error instanceof KubeApiError, String(error));
          // The status the server gave: the same the REST client reports for the same watch.
          let viaRest: unknown;
          try {
            for await (
              const _ of cluster.rest.watch(cms, { resourceVersion: "not-a-version", retries: 0 })
            ) { /* none expected */ }
          } catch (e) {
            viaRest = e;
          }
          assert.ok(viaRest instanceof KubeApiError, String(viaRest));
          assert.equal(error.status, viaRest.status);
          assert.ok(error.status >= 400, String(error.status));
        },
      );

      await t.step("an abort ends a quiet watch at once", async () => {
        const abort = new AbortController();
        const t0 = performance.now();
        setTimeout(() => abort.abort(), 300);
        for await (
          const _ of watchEvents(kc, cms, { labelSelector: "t=never" }, abort.signal)
        ) { /* nothing matches */ }
        assert.ok(performance.now() - t0 < 5000, "ended by the abort, not the server");
      });

      await t.step(
        "watchUntil returns once the condition holds, or names what timed out",
        async () => {
          const waiting = watchUntil<ConfigMap>(kc, cms, {
            labelSelector: "t=until",
            done: (items) => items.some((c) => c.data?.ready === "yes"),
            timeoutMs: 20_000,
            what: "ready configmap",
          });
          await cluster.rest.create(cms, {
            metadata: { name: "u", labels: { t: "until" } },
            data: { ready: "no" },
          });
          await cluster.rest.patch(`${cms}/u`, { data: { ready: "yes" } }, { type: "merge" });
          const items = await waiting;
          assert.equal(items.find((c) => c.metadata.name === "u")?.data?.ready, "yes");
          await assert.rejects(
            watchUntil<ConfigMap>(kc, cms, {
              labelSelector: "t=until",
              done: () => false,
              timeoutMs: 500,
              what: "never",
            }),
            /never: not within 500 ms \(1 seen/,
          );
        },
      );
    } finally {
      await cluster.stop();
    }
  },
});

Deno.test("a watch of a server that does not listen is KubeUnreachableError", async () => {
  const kc = toClientNodeConfig({ source: "t", server: `http://127.0.0.1:${freePort()}` });
  await assert.rejects(
    (async () => {
      for await (const _ of watchEvents(kc, "/api/v1/nodes", {}, AbortSignal.timeout(10_000))) {
        /* none */
      }
    })(),
    (e) => e instanceof KubeUnreachableError,
  );
});

Deno.test("an ERROR event (410 Expired) ends the watch as KubeApiError after the events before it", async () => {
  const lines = [
    `{"type":"ADDED","object":{"metadata":{"name":"a"}}}\n`,
    `{"type":"MODIFIED","object":{"metadata":{"name":"a","resourceVersion":"2"}}}\n`,
    `{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old resource version"}}\n`,
  ];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    assert.equal(new URL(req.url).searchParams.get("watch"), "true");
    return new Response(lines.join(""), { headers: { "content-type": "application/json" } });
  });
  try {
    const kc = toClientNodeConfig({ source: "t", server: `http://127.0.0.1:${server.addr.port}` });
    const got: string[] = [];
    await assert.rejects(
      async () => {
        for await (
          const ev of watchEvents<ConfigMap>(
            kc,
            "/api/v1/configmaps",
            {},
            AbortSignal.timeout(10_000),
          )
        ) got.push(`${ev.type} ${ev.object.metadata.name}`);
      },
      (e) => e instanceof KubeApiError && e.status === 410 && e.reason === "Expired",
    );
    assert.deepEqual(got, ["ADDED a", "MODIFIED a"]);
  } finally {
    await server.shutdown();
  }
});
