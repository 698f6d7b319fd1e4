// The protobuf pieces the CRI client uses: varints as protobuf defines them (unsigned 64-bit on
// the wire, int32 sign-extended, int64 as a bigint), what is written decodes back, unknown fields
// are skipped, truncated or over-long input is an error.
import assert from "node:assert/strict";
import {
  asString,
  bool,
  decodeFields,
  decodeMapEntry,
  encodeVarint,
  int32,
  int64,
  ProtoWriter,
  readVarint,
} from "../../src/checkers/protobuf.ts";

const hex = (bytes: number[] | Uint8Array) =>
  [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(" ");

Deno.test("varints of the protobuf spec: 1, 150, 300, int32 -1 and -2 as 10 bytes", () => {
  // The encoding guide's examples, and negative int32s as the spec writes them (sign-extended to
  // 64 bits, so always 10 bytes).
  const vectors: [number | bigint, string][] = [
    [0, "00"],
    [1, "01"],
    [150, "96 01"],
    [300, "ac 02"],
    [137, "89 01"],
    [255, "ff 01"],
    [2 ** 31 - 1, "ff ff ff ff 07"],
    [-1, "ff ff ff ff ff ff ff ff ff 01"],
    [-2, "fe ff ff ff ff ff ff ff ff 01"],
    [-(2 ** 31), "80 80 80 80 f8 ff ff ff ff 01"],
    [2n ** 64n - 1n, "ff ff ff ff ff ff ff ff ff 01"],
  ];
  for (const [n, bytes] of vectors) {
    assert.equal(hex(encodeVarint(n)), bytes, `encode ${n}`);
    const [raw, end] = readVarint(Uint8Array.from(encodeVarint(n)), 0);
    assert.equal(end, bytes.split(" ").length);
    assert.equal(raw, BigInt.asUintN(64, BigInt(n)), `decode ${n}`);
  }
  const minusOne = Uint8Array.from([0x38, ...encodeVarint(-1)]); // field 7 (exit_code), varint
  const [f] = decodeFields(minusOne);
  assert.equal(f.field, 7);
  assert.equal(int32(f.value), -1, "an int32 -1 is -1, not 0 or 2^64-1");
  assert.equal(int64(f.value), -1n);
});

Deno.test("int32 keeps the low 32 bits sign-extended; int64 keeps nanosecond timestamps exact", () => {
  assert.equal(int32(0xffffffffn), -1, "a 5-byte int32 -1 from a writer that does not extend");
  assert.equal(int32(2n ** 31n), -(2 ** 31));
  assert.equal(int32(137n), 137);
  // 2026-12-01T11:00:00.123456789Z in ns: above 2^53, so a float would lose the last digits.
  const ns = 1_796_122_800_123_456_789n;
  const [raw] = readVarint(Uint8Array.from(encodeVarint(ns)), 0);
  assert.equal(int64(raw), ns);
  assert.equal(int64(2n ** 64n - 5n), -5n);
  assert.equal(bool(1n), true);
  assert.equal(bool(0n), false);
});

Deno.test("over-long, over-wide and truncated varints are errors", () => {
  assert.throws(() => readVarint(Uint8Array.from([0xff, 0xff]), 0), /truncated varint/);
  const eleven = Array(10).fill(0xff).concat([0x01]);
  assert.throws(() => readVarint(Uint8Array.from(eleven), 0), /exceeds 64 bits|longer than 10/);
  const wide = Array(9).fill(0xff).concat([0x02]); // bit 64 set
  assert.throws(() => readVarint(Uint8Array.from(wide), 0), /exceeds 64 bits/);
  assert.throws(() => encodeVarint(2 ** 60), /not a safe integer/);
  assert.throws(() => encodeVarint(2n ** 64n), /outside int64\/uint64/);
});

Deno.test("strings, nested messages, map entries and negative varints decode back", () => {
  const msg = new ProtoWriter()
    .bytes(1, "abc")
    .bytes(3, new ProtoWriter().bytes(1, "telemetry").varint(2, 4))
    .map(8, { "io.kubernetes.pod.namespace": "sonic", k: "v" })
    .varint(6, 1)
    .varint(7, -1)
    .varint(9, 1_796_122_800_123_456_789n)
    .finish();
  const fields = decodeFields(msg);
  assert.equal(asString(fields[0].value), "abc");
  const meta = decodeFields(fields[1].value as Uint8Array);
  assert.equal(asString(meta[0].value), "telemetry");
  assert.equal(int32(meta[1].value), 4);
  assert.deepEqual(decodeMapEntry(fields[2].value as Uint8Array), [
    "io.kubernetes.pod.namespace",
    "sonic",
  ]);
  assert.equal(int32(fields[4].value), 1);
  assert.equal(int32(fields[5].value), -1);
  assert.equal(int64(fields[6].value), 1_796_122_800_123_456_789n);
});

Deno.test("fixed-width fields are skipped; truncated input throws", () => {
  const withFixed = Uint8Array.from([0x09, 1, 2, 3, 4, 5, 6, 7, 8, 0x10, 7]);
  assert.deepEqual(
    decodeFields(withFixed).map((f) => [f.field, f.value]),
    [[2, 7n]],
  );
  assert.throws(() => decodeFields(Uint8Array.from([0x0a, 5, 1])), /truncated/);
  assert.throws(() => decodeFields(Uint8Array.from([0x09, 1, 2])), /truncated field/);
  assert.throws(() => decodeFields(Uint8Array.from([0x0d, 1])), /truncated field/);
});
