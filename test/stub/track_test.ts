// The list + watch loop behind `wait` and `start`, in-process against the real API server: with a
// 1 s server-side watch timeout and a 3 s re-list interval it keeps seeing every pod change across
// many re-established watches and re-lists, and it ends when told to.
import assert from "node:assert/strict";
import { createLogger } from "../../src/log.ts";
import type { PodApi } from "../../src/stub/api.ts";
import { kubePodApi } from "../../src/stub/kube_pods.ts";
import type { Pod } from "../../src/stub/pod.ts";
import { trackPods } from "../../src/stub/track.ts";
import { kubeBinDir, startKube } from "../../sandbox/harness/kube.ts";
import { waitUntil } from "../../sandbox/harness/net.ts";
import { kubectlOk } from "../../sandbox/fixtures/stub_api.ts";

Deno.test({
  name: "tracking sees every change across re-established watches and periodic re-lists",
  ignore: !kubeBinDir(),
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const kube = await startKube({ nodes: ["trk-node"] });
  const lines: string[] = [];
  const log = createLogger("track-test", "trk", (l) => lines.push(l));
  const stop = new AbortController();
  try {
    const real = kubePodApi(kube.rest, { requestTimeoutMs: 5000 });
    let lists = 0;
    let watches = 0;
    // Counts the calls and passes them on to the real API server unchanged.
    const counted: PodApi = {
      server: real.server,
      listPods: (q, s) => {
        lists++;
        return real.listPods(q, s);
      },
      deletePod: real.deletePod,
      watchPods: (q, rv, t, s) => {
        watches++;
        return real.watchPods(q, rv, t, s);
      },
    };
    let current = new Set<string>();
    const tracking = trackPods(
      counted,
      {
        namespace: "sonic",
        labelSelector: "app=trk",
        fieldSelector: "spec.nodeName=trk-node",
      },
      log,
      {
        signal: stop.signal,
        watchTimeoutSeconds: 1,
        relistEveryMs: 3000,
        decide: (pods: ReadonlyMap<string, Pod>) => {
          current = new Set([...pods.values()].map((p) => p.metadata.name));
          return false;
        },
      },
    );
    const pod = (name: string) =>
      JSON.stringify({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name, namespace: "sonic", labels: { app: "trk" } },
        spec: {
          nodeName: "trk-node",
          tolerations: [{ operator: "Exists" }],
          containers: [{ name: "trk", image: "example.invalid/trk:1" }],
        },
      });
    for (let i = 0; i < 4; i++) {
      const name = `trk-${i}`;
      const created = await kube.kubectl(["apply", "-f", "-"], { stdin: pod(name) });
      assert.equal(created.code, 0, created.stderr);
      await waitUntil(() => current.has(name), 5000, `${name} seen`, 20);
      // Let at least one server-side watch timeout pass between changes.
      await new Promise((r) => setTimeout(r, 1500));
      await kubectlOk(kube, ["delete", "pod", "-n", "sonic", name, "--wait=false"]);
      await waitUntil(() => !current.has(name), 10_000, `${name} gone`, 20);
    }
    assert.ok(watches >= 4, `watches re-established: ${watches}`);
    assert.ok(lists >= 2, `re-lists: ${lists}`);
    assert.ok(!lines.some((l) => /WARN|ERROR/.test(l)), lines.join("\n"));
    stop.abort();
    assert.equal(await tracking, "aborted");
  } finally {
    stop.abort();
    await kube.stop();
  }
});
