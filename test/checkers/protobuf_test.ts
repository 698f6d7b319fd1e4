// The protobuf pieces the CRI client uses: varints as protobuf defines them (unsigned 64-bit on
// the wire, int32 sign-extended, int64 as a bigint), what is written decodes back, unknown fields
// are skipped, truncated or over-long input is an error; and real containerd ContainerStatus
// answers (captured in sandbox/fixtures/cri_status.ts, and live when containerd and crictl are
// here) decode to the exit codes and the nanosecond timestamps containerd reports.
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
import { decodeContainerStatus } from "../../src/checkers/cri.ts";
import { CAPTURED, captureExitStatuses, fromHex } from "../../sandbox/fixtures/cri_status.ts";
import {
  containerdUnavailableReason,
  crictlPath,
  startContainerd,
} from "../../sandbox/harness/containerd.ts";

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

/** RFC 3339 with up to 9 fractional digits -> nanoseconds since the epoch, exactly. */
function rfc3339Ns(text: string): bigint {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(text);
  if (!m) throw new Error(`not RFC 3339: ${text}`);
  const seconds = BigInt(Date.parse(`${m[1]}${m[3]}`) / 1000);
  return seconds * 1_000_000_000n + BigInt((m[2] ?? "").padEnd(9, "0"));
}

/** The answer with the status's exit_code (field 7) replaced by `code`, re-encoded. */
function withExitCode(answer: Uint8Array, code: number): Uint8Array {
  const copy = (fields: ReturnType<typeof decodeFields>, edit?: (w: ProtoWriter) => void) => {
    const w = new ProtoWriter();
    for (const f of fields) {
      if (edit && f.field === 7) continue;
      if (typeof f.value === "bigint") w.varint(f.field, f.value);
      else w.bytes(f.field, f.value);
    }
    edit?.(w);
    return w;
  };
  const top = decodeFields(answer);
  const w = new ProtoWriter();
  for (const f of top) {
    if (f.field === 1 && f.value instanceof Uint8Array) {
      w.bytes(1, copy(decodeFields(f.value), (s) => s.varint(7, code)));
    } else if (f.value instanceof Uint8Array) w.bytes(f.field, f.value);
  }
  return w.finish();
}

Deno.test("containerd's own ContainerStatus answers decode: exit 0, 1, 255, 137 and ns timestamps", () => {
  assert.ok(CAPTURED.length >= 4, "the fixture holds the captured answers");
  for (const c of CAPTURED) {
    const s = decodeContainerStatus("id", fromHex(c.hex));
    assert.equal(s.state, "exited", c.name);
    assert.equal(s.exitCode, c.exitCode, c.name);
    // Nanoseconds since the epoch beyond 2^53 (a float would round them); containerd records the
    // start after the process may already have exited, so only both being near is checked.
    assert.ok(s.startedAtNs > 2n ** 53n && s.finishedAtNs > 2n ** 53n, c.name);
    const apart = s.finishedAtNs - s.startedAtNs;
    assert.ok(apart > -1_000_000_000n && apart < 60_000_000_000n, `${c.name}: ${apart} ns`);
    // The timestamp's varint re-encodes to the very bytes containerd sent: nothing was rounded.
    assert.ok(c.hex.includes(hex(encodeVarint(s.finishedAtNs)).replaceAll(" ", "")), c.name);
  }
  // A runtime may report -1 (no process could give it): in a real answer, as protobuf writes an
  // int32 -1 (10 bytes), it decodes as -1 and leaves the other fields alone.
  const real = fromHex(CAPTURED[0].hex);
  const minusOne = decodeContainerStatus("id", withExitCode(real, -1));
  assert.equal(minusOne.exitCode, -1);
  const orig = decodeContainerStatus("id", real);
  assert.deepEqual(
    { ...minusOne, exitCode: orig.exitCode },
    orig,
    "only the exit code changed",
  );
});

const criSkip = containerdUnavailableReason() ??
  (crictlPath() ? undefined : "crictl not built (scripts/build-kube.sh)");

Deno.test({
  name: "live containerd: exit codes and the exact finishedAt crictl reports",
  ignore: criSkip !== undefined,
  async fn() {
    const containerd = await startContainerd();
    try {
      const captured = await captureExitStatuses(containerd);
      for (const c of captured) {
        const s = decodeContainerStatus("id", fromHex(c.hex));
        assert.equal(s.exitCode, c.exitCode, c.name);
        const id = decodeFields(decodeFields(fromHex(c.hex))[0].value as Uint8Array)
          .find((f) => f.field === 1)!;
        const inspect = await containerd.crictl(["inspect", asString(id.value)]);
        assert.equal(inspect.code, 0, inspect.stderr);
        const status = JSON.parse(inspect.stdout).status;
        assert.equal(status.exitCode, c.exitCode, c.name);
        assert.equal(s.finishedAtNs, rfc3339Ns(status.finishedAt), `${c.name}: exact to the ns`);
        assert.equal(s.startedAtNs, rfc3339Ns(status.startedAt), c.name);
      }
    } finally {
      await containerd.stop();
    }
  },
});
