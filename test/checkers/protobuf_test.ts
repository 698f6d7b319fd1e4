// The protobuf pieces the CRI client uses: what is written decodes back, unknown fields are
// skipped, truncated input is an error.
import assert from "node:assert/strict";
import {
  asString,
  decodeFields,
  decodeMapEntry,
  encodeVarint,
  ProtoWriter,
} from "../../src/checkers/protobuf.ts";

Deno.test("varints round-trip, including values above 2^32", () => {
  for (const n of [0, 1, 127, 128, 300, 2 ** 31, 2 ** 40 + 5]) {
    const bytes = Uint8Array.from([8, ...encodeVarint(n)]);
    assert.equal(decodeFields(bytes)[0].value, n);
  }
});

Deno.test("strings, nested messages and map entries decode back", () => {
  const msg = new ProtoWriter()
    .bytes(1, "abc")
    .bytes(3, new ProtoWriter().bytes(1, "telemetry").varint(2, 4))
    .map(8, { "io.kubernetes.pod.namespace": "sonic", k: "v" })
    .varint(6, 1)
    .finish();
  const fields = decodeFields(msg);
  assert.equal(asString(fields[0].value), "abc");
  const meta = decodeFields(fields[1].value as Uint8Array);
  assert.equal(asString(meta[0].value), "telemetry");
  assert.equal(meta[1].value, 4);
  assert.deepEqual(decodeMapEntry(fields[2].value as Uint8Array), [
    "io.kubernetes.pod.namespace",
    "sonic",
  ]);
  assert.equal(fields[4].value, 1);
});

Deno.test("fixed-width fields are skipped; truncated input throws", () => {
  const withFixed = Uint8Array.from([0x09, 1, 2, 3, 4, 5, 6, 7, 8, 0x10, 7]);
  assert.deepEqual(
    decodeFields(withFixed).map((f) => [f.field, f.value]),
    [[2, 7]],
  );
  assert.throws(() => decodeFields(Uint8Array.from([0x0a, 5, 1])), /truncated/);
});
