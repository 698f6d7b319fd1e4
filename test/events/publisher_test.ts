// SONiC's event publisher, reimplemented: the Boost archives byte for byte, the event JSON, and
// the whole path against a real subscriber (libzmq's XSUB/XPUB proxy, as eventd runs it, and a SUB
// that decodes with Boost.Serialization and nlohmann/json as SONiC's subscribers do).
import assert from "node:assert/strict";
import { join } from "node:path";
import { boostString, boostStringMap } from "../../src/events/boost_text.ts";
import {
  DEFAULT_XSUB_ENDPOINT,
  eventJson,
  eventTimestamp,
  publishEvents,
  resolveXsubEndpoint,
} from "../../src/events/publisher.ts";
import { parseEndpoint } from "../../src/events/zmtp.ts";
import { eventdUnavailableReason, startEventd } from "../../sandbox/harness/eventd.ts";

Deno.test("Boost text archives: the bytes Boost 1.74's text_oarchive writes", () => {
  // Both captured from boost::archive::text_oarchive (libboost-serialization 1.74) on this machine.
  assert.equal(
    boostString("sonic-events-host"),
    "22 serialization::archive 18 17 sonic-events-host",
  );
  assert.equal(
    boostStringMap({ t: "123", d: '{"x":1}', s: "1", r: "abc" }),
    '22 serialization::archive 18 0 0 4 0 0 0 1 d 7 {"x":1} 1 r 3 abc 1 s 1 1 1 t 3 123',
  );
  assert.equal(boostStringMap({}), "22 serialization::archive 18 0 0 0 0");
  // Lengths are bytes, not characters; spaces and newlines inside a string are kept as they are.
  assert.equal(boostString("a b\nc"), "22 serialization::archive 18 5 a b\nc");
  assert.equal(boostString("é"), "22 serialization::archive 18 2 é");
});

Deno.test("the event's JSON: source:tag key, params sorted, timestamp added in SONiC's form", () => {
  const t = Date.UTC(2026, 0, 2, 3, 4, 5) + 6.007; // 6 ms 7 µs
  assert.equal(eventTimestamp(t), "2026-01-02T03:04:05.006007Z");
  assert.equal(
    eventJson("sonic-events-host", { tag: "event-down-ctr", params: { ctr_name: "gnmi" } }, t),
    '{"sonic-events-host:event-down-ctr":{"ctr_name":"gnmi","timestamp":"2026-01-02T03:04:05.006007Z"}}',
  );
  // A caller's own timestamp is kept; quotes are escaped as JSON.
  assert.equal(
    eventJson("s", { tag: "x", params: { timestamp: "T", a: 'q"' } }, t),
    '{"s:x":{"a":"q\\"","timestamp":"T"}}',
  );
});

Deno.test("endpoints: init_cfg.json's events.xsub_path, else SONiC's default; bad ones refused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cfg = join(dir, "init_cfg.json");
    assert.equal(await resolveXsubEndpoint(join(dir, "none.json")), DEFAULT_XSUB_ENDPOINT);
    await Deno.writeTextFile(cfg, JSON.stringify({ events: { xsub_path: "ipc:///run/x.sock" } }));
    assert.equal(await resolveXsubEndpoint(cfg), "ipc:///run/x.sock");
    await Deno.writeTextFile(cfg, '{"events": {"xsub_path": 5}}');
    assert.equal(await resolveXsubEndpoint(cfg), DEFAULT_XSUB_ENDPOINT);
    await Deno.writeTextFile(cfg, "not json");
    assert.equal(await resolveXsubEndpoint(cfg), DEFAULT_XSUB_ENDPOINT);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.deepEqual(parseEndpoint("tcp://127.0.0.1:5570"), {
    transport: "tcp",
    hostname: "127.0.0.1",
    port: 5570,
  });
  assert.deepEqual(parseEndpoint("ipc:///run/e.sock"), { transport: "unix", path: "/run/e.sock" });
  assert.throws(() => parseEndpoint("udp://1:2"), /not a tcp:\/\/ or ipc:\/\//);
  assert.throws(() => parseEndpoint("tcp://h:99999"), /port out of range/);
});

Deno.test("no eventd: nothing listens, publish returns at once with the reason, never throws", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const t0 = Date.now();
  const r = await publishEvents("sonic-events-host", [{ tag: "x", params: {} }], {
    endpoint: `tcp://127.0.0.1:${port}`,
  });
  assert.equal(r.published, 0);
  assert.match(r.skipped ?? "", /refused/i);
  assert.ok(Date.now() - t0 < 1000);
  // A peer that accepts and says nothing: bounded by the timeout.
  const hung = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const c of hung) conns.push(c);
  })();
  try {
    const t1 = Date.now();
    const h = await publishEvents("s", [{ tag: "x", params: {} }], {
      endpoint: `tcp://127.0.0.1:${(hung.addr as Deno.NetAddr).port}`,
      timeoutMs: 300,
    });
    assert.equal(h.published, 0);
    assert.ok(Date.now() - t1 < 3000, "bounded");
  } finally {
    hung.close();
    for (const c of conns) c.close();
    await accepting.catch(() => {});
  }
});

const skip = eventdUnavailableReason();

Deno.test({
  name: "a real ZMQ subscriber behind eventd's XSUB/XPUB proxy decodes every event exactly",
  ignore: skip !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const eventd = await startEventd();
    try {
      const r = await publishEvents("sonic-events-host", [
        { tag: "event-down-ctr", params: { ctr_name: "gnmi" } },
        { tag: "event-down-ctr", params: { ctr_name: "lldp" } },
      ], { initCfgPath: eventd.initCfgPath, timeoutMs: 10_000 });
      assert.equal(r.published, 2, r.skipped);
      const got = await eventd.waitFor(3);
      for (const m of got) assert.equal(m.error, undefined, JSON.stringify(m));
      assert.deepEqual(got.map((m) => m.source), Array(3).fill("sonic-events-host"));
      assert.deepEqual(got.map((m) => m.s), ["1", "2", "3"]);
      assert.equal(new Set(got.map((m) => m.r)).size, 1, "one runtime ID per publisher");
      assert.match(got[0].r!, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      const ns = BigInt(got[0].t!);
      assert.ok(ns > BigInt(Date.now() - 60_000) * 1_000_000n, `t=${got[0].t} in nanoseconds`);
      const [a, b] = got.map((m) => m.event?.["sonic-events-host:event-down-ctr"]);
      assert.equal(a?.ctr_name, "gnmi");
      assert.equal(b?.ctr_name, "lldp");
      assert.match(a!.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      assert.deepEqual(Object.keys(a!).sort(), ["ctr_name", "timestamp"]);
      // The publisher retires its runtime ID, as events_deinit_publisher does.
      assert.equal(got[2].d, "CONTROL_DEINIT");
      assert.equal(got[2].event, null);
    } finally {
      await eventd.stop();
    }
  },
});
