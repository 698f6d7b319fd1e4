// KubeRest's transport rules, proved against a scripted local HTTP server (a named fake: a real
// API server cannot be told to answer 503 or 429 on demand; the real-apiserver behaviour is in
// rest_apiserver_test.ts): retries with back-off on 5xx and connection errors, Retry-After on 429,
// no retry on 4xx, a timeout per attempt, the watch stream decoding, and the request shape.
import assert from "node:assert/strict";
import {
  isNotFound,
  KubeApiError,
  KubeRest,
  KubeUnreachableError,
  parseRetryAfter,
  resourcePath,
} from "../../src/kube/rest.ts";
import { freePort } from "../../sandbox/harness/net.ts";

/** What the scripted server saw of one request (a Request object dies with its response). */
interface Seen {
  method: string;
  url: URL;
  headers: Headers;
  body: string;
}
type Handler = (req: Seen, n: number) => Response | Promise<Response>;

/** A scripted HTTP server on 127.0.0.1: `handler` gets each request and its 1-based number. */
async function withScriptedServer(
  handler: Handler,
  fn: (rest: KubeRest, seen: Seen[]) => Promise<void>,
  restOpts: ConstructorParameters<typeof KubeRest>[1] = {},
): Promise<void> {
  const seen: Seen[] = [];
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    async (req) => {
      const one = {
        method: req.method,
        url: new URL(req.url),
        headers: req.headers,
        body: await req.text(),
      };
      seen.push(one);
      return handler(one, seen.length);
    },
  );
  const rest = new KubeRest(
    { source: "test", server: `http://127.0.0.1:${server.addr.port}`, token: "tok" },
    { backoffMs: 10, ...restOpts },
  );
  try {
    await fn(rest, seen);
  } finally {
    rest.close();
    ac.abort();
    await server.finished;
  }
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });

Deno.test("resourcePath builds core and group paths", () => {
  assert.equal(
    resourcePath({ resource: "pods", namespace: "sonic" }),
    "/api/v1/namespaces/sonic/pods",
  );
  assert.equal(
    resourcePath({
      apiVersion: "apps/v1",
      resource: "daemonsets",
      namespace: "sonic",
      name: "telemetry",
    }),
    "/apis/apps/v1/namespaces/sonic/daemonsets/telemetry",
  );
  assert.equal(
    resourcePath({ resource: "nodes", name: "sonic-1", subresource: "status" }),
    "/api/v1/nodes/sonic-1/status",
  );
});

Deno.test("parseRetryAfter reads seconds and HTTP dates", () => {
  assert.equal(parseRetryAfter("2"), 2000);
  assert.equal(parseRetryAfter(null), undefined);
  assert.equal(parseRetryAfter("soon"), undefined);
  const now = Date.parse("2026-01-01T00:00:00Z");
  assert.equal(parseRetryAfter("Thu, 01 Jan 2026 00:00:03 GMT", now), 3000);
});

Deno.test("list sends selectors and the bearer token, and decodes the items", async () => {
  await withScriptedServer(
    () =>
      json(200, {
        kind: "PodList",
        metadata: { resourceVersion: "7" },
        items: [{ metadata: { name: "a" } }],
      }),
    async (rest, seen) => {
      const list = await rest.list<{ metadata: { name: string } }>(
        "/api/v1/namespaces/sonic/pods",
        {
          labelSelector: "raw_container_name=telemetry",
          fieldSelector: "spec.nodeName=sonic-1",
        },
      );
      assert.deepEqual(list.items.map((p) => p.metadata.name), ["a"]);
      assert.equal(list.metadata.resourceVersion, "7");
      const url = seen[0].url;
      assert.equal(url.searchParams.get("labelSelector"), "raw_container_name=telemetry");
      assert.equal(url.searchParams.get("fieldSelector"), "spec.nodeName=sonic-1");
      assert.equal(seen[0].headers.get("authorization"), "Bearer tok");
    },
  );
});

Deno.test("a 503 is retried with back-off until the server answers", async () => {
  await withScriptedServer(
    (_req, n) => n < 3 ? json(503, { message: "etcd leader changed" }) : json(200, { ok: true }),
    async (rest, seen) => {
      assert.deepEqual(await rest.get("/api/v1/namespaces/sonic"), { ok: true });
      assert.equal(seen.length, 3);
    },
  );
});

Deno.test("a 429 waits for Retry-After before the next attempt", async () => {
  const at: number[] = [];
  await withScriptedServer(
    (_req, n) => {
      at.push(performance.now());
      return n === 1 ? json(429, { message: "slow down" }, { "retry-after": "1" }) : json(200, {});
    },
    async (rest) => {
      await rest.get("/api/v1/nodes");
      assert.ok(at[1] - at[0] >= 950, `second attempt came ${at[1] - at[0]} ms after the first`);
    },
  );
});

Deno.test("a 404 is not retried and surfaces as KubeApiError with the Status message", async () => {
  await withScriptedServer(
    () => json(404, { kind: "Status", reason: "NotFound", message: 'pods "x" not found' }),
    async (rest, seen) => {
      await assert.rejects(rest.get("/api/v1/namespaces/sonic/pods/x"), (e: Error) => {
        assert.ok(e instanceof KubeApiError);
        assert.equal(e.status, 404);
        assert.equal(e.reason, "NotFound");
        assert.ok(isNotFound(e));
        assert.match(e.message, /pods "x" not found/);
        return true;
      });
      assert.equal(seen.length, 1);
    },
  );
});

Deno.test("5xx after the last retry throws KubeApiError with the status", async () => {
  await withScriptedServer(
    () => json(500, { message: "boom" }),
    async (rest, seen) => {
      await assert.rejects(
        rest.get("/x"),
        (e: Error) => e instanceof KubeApiError && e.status === 500,
      );
      assert.equal(seen.length, 3);
    },
    { retries: 2 },
  );
});

Deno.test("a refused connection is retried, then throws KubeUnreachableError", async () => {
  const port = freePort();
  const rest = new KubeRest({ source: "t", server: `http://127.0.0.1:${port}` }, {
    retries: 2,
    backoffMs: 10,
  });
  try {
    const t0 = performance.now();
    await assert.rejects(rest.get("/api/v1/nodes"), (e: Error) => {
      assert.ok(e instanceof KubeUnreachableError, String(e));
      assert.match(e.message, /after 3 attempts/);
      return true;
    });
    assert.ok(performance.now() - t0 < 2000);
  } finally {
    rest.close();
  }
});

Deno.test("an attempt that gets no answer times out and the call fails within the budget", async () => {
  let release!: () => void;
  const hang = new Promise<void>((r) => release = r);
  await withScriptedServer(
    async () => {
      await hang;
      return json(200, {});
    },
    async (rest) => {
      const t0 = performance.now();
      await assert.rejects(rest.get("/api/v1/nodes"), /no answer within 150 ms/);
      const took = performance.now() - t0;
      release();
      assert.ok(took >= 290 && took < 1500, `took ${took} ms for 2 attempts of 150 ms`);
    },
    { timeoutMs: 150, retries: 1 },
  );
});

Deno.test("patch sends the patch content type and field manager; delete sends DeleteOptions", async () => {
  await withScriptedServer(
    () => json(200, {}),
    async (rest, seen) => {
      await rest.patch("/apis/apps/v1/namespaces/sonic/daemonsets/t", { spec: {} }, {
        type: "strategic",
        fieldManager: "ks",
      });
      assert.equal(seen[0].method, "PATCH");
      assert.equal(seen[0].headers.get("content-type"), "application/strategic-merge-patch+json");
      assert.equal(seen[0].url.searchParams.get("fieldManager"), "ks");
      await rest.delete("/api/v1/namespaces/sonic/pods/p", { gracePeriodSeconds: 0 });
      assert.equal(seen[1].method, "DELETE");
      assert.deepEqual(JSON.parse(seen[1].body), {
        apiVersion: "v1",
        kind: "DeleteOptions",
        gracePeriodSeconds: 0,
      });
    },
  );
});

Deno.test("watch decodes events split across chunks and throws the ERROR event's status", async () => {
  const enc = new TextEncoder();
  await withScriptedServer(
    (req) => {
      assert.equal(req.url.searchParams.get("watch"), "1");
      const lines = [
        `{"type":"ADDED","object":{"metadata":{"name":"a"}}}\n{"type":"MODI`,
        `FIED","object":{"metadata":{"name":"a","resourceVersion":"2"}}}\n`,
        `{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old resource version"}}\n`,
      ];
      const body = new ReadableStream<Uint8Array>({
        async start(c) {
          for (const l of lines) {
            c.enqueue(enc.encode(l));
            await new Promise((r) => setTimeout(r, 5));
          }
          c.close();
        },
      });
      return new Response(body, { headers: { "content-type": "application/json" } });
    },
    async (rest) => {
      const got: string[] = [];
      await assert.rejects(async () => {
        for await (const ev of rest.watch<{ metadata: { name: string } }>("/api/v1/pods")) {
          got.push(`${ev.type} ${ev.object.metadata.name}`);
        }
      }, (e: Error) => e instanceof KubeApiError && e.status === 410 && e.reason === "Expired");
      assert.deepEqual(got, ["ADDED a", "MODIFIED a"]);
    },
  );
});

Deno.test("a watch ends quietly when the caller aborts it", async () => {
  await withScriptedServer(
    () => {
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode(`{"type":"ADDED","object":{}}\n`));
        },
      });
      return new Response(body);
    },
    async (rest) => {
      const ac = new AbortController();
      let n = 0;
      for await (const _ of rest.watch("/api/v1/pods", { signal: ac.signal, timeoutMs: 100 })) {
        n++;
        // Past the open timeout: the stream must stay open until we abort.
        await new Promise((r) => setTimeout(r, 200));
        ac.abort();
      }
      assert.equal(n, 1);
    },
  );
});

Deno.test("an empty 204 answer decodes to undefined", async () => {
  await withScriptedServer(
    () => new Response(null, { status: 204 }),
    async (rest) => {
      assert.equal(await rest.delete("/api/v1/namespaces/sonic/pods/p"), undefined);
    },
  );
});

Deno.test("an error answer whose body stalls counts as a timed-out attempt", async () => {
  await withScriptedServer(
    () => {
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode(`{"message":`)); // and never more
        },
      });
      return new Response(body, { status: 500 });
    },
    async (rest, seen) => {
      await assert.rejects(rest.get("/x"), /unreachable after 2 attempts: no answer within 150 ms/);
      assert.equal(seen.length, 2);
    },
    { timeoutMs: 150, retries: 1 },
  );
});
