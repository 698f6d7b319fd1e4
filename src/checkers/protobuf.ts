// The few protobuf wire-format pieces the CRI calls need (varints, length-delimited fields,
// map<string,string> entries), so the checkers speak the CRI without a code generator or an npm
// dependency. Unknown fields are skipped, as protobuf requires.

/**
 * One decoded field: its number, wire type and value. A varint's value is the raw unsigned 64-bit
 * number as a bigint (read it with int32(), int64() or bool(), as the field's type says); a
 * length-delimited field's value is its bytes.
 */
export interface ProtoField {
  field: number;
  wire: number;
  value: bigint | Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Encodes a varint the way protobuf does: non-negative values as they are (up to 2^64 - 1), a
 * negative int32/int64 as its 64-bit two's complement (always 10 bytes). Throws on a non-integer
 * or a value outside the int64/uint64 range.
 */
export function encodeVarint(n: number | bigint): number[] {
  if (typeof n === "number" && !Number.isSafeInteger(n)) {
    throw new RangeError(`protobuf: varint ${n} is not a safe integer`);
  }
  const big = BigInt(n);
  if (big < -(2n ** 63n) || big >= 2n ** 64n) {
    throw new RangeError(`protobuf: varint ${n} is outside int64/uint64`);
  }
  let v = BigInt.asUintN(64, big);
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

/** A varint's value as protobuf's int32: the low 32 bits, sign-extended (-1 from 10 bytes is -1). */
export function int32(value: bigint | Uint8Array): number {
  return typeof value === "bigint" ? Number(BigInt.asIntN(32, value)) : 0;
}

/** A varint's value as protobuf's int64 (a bigint: nanosecond timestamps exceed 2^53). */
export function int64(value: bigint | Uint8Array): bigint {
  return typeof value === "bigint" ? BigInt.asIntN(64, value) : 0n;
}

/** A varint's value as protobuf's bool. */
export function bool(value: bigint | Uint8Array): boolean {
  return typeof value === "bigint" && value !== 0n;
}

/** A small protobuf message builder. */
export class ProtoWriter {
  #bytes: number[] = [];

  /**
   * Appends a varint field (skipped when 0, like proto3 defaults); a negative int32/int64 is
   * written as 10 bytes, as protobuf does.
   */
  varint(field: number, value: number | bigint | boolean): this {
    const n = typeof value === "boolean" ? (value ? 1 : 0) : value;
    if (n === 0 || n === 0n) return this;
    this.#bytes.push(...encodeVarint(field << 3), ...encodeVarint(n));
    return this;
  }

  /** Appends a length-delimited field (string, bytes or an embedded message). */
  bytes(field: number, value: string | Uint8Array | ProtoWriter): this {
    const data = typeof value === "string"
      ? encoder.encode(value)
      : value instanceof ProtoWriter
      ? value.finish()
      : value;
    this.#bytes.push(...encodeVarint((field << 3) | 2), ...encodeVarint(data.length), ...data);
    return this;
  }

  /** Appends a map<string,string> field (one entry message per pair). */
  map(field: number, entries: Record<string, string>): this {
    for (const [k, v] of Object.entries(entries)) {
      this.bytes(field, new ProtoWriter().bytes(1, k).bytes(2, v));
    }
    return this;
  }

  /** The encoded message. */
  finish(): Uint8Array {
    return Uint8Array.from(this.#bytes);
  }
}

/**
 * Reads the varint at `pos` of `buf`: its raw unsigned 64-bit value and the position after it.
 * Throws on a truncated varint or one longer than 10 bytes / 64 bits.
 */
export function readVarint(buf: Uint8Array, pos: number): [bigint, number] {
  // Up to 4 bytes (28 bits) in a number, the fast path for tags, lengths and small values.
  let small = 0;
  for (let i = 0; i < 4; i++) {
    if (pos >= buf.length) throw new Error("protobuf: truncated varint");
    const b = buf[pos++];
    small |= (b & 0x7f) << (7 * i);
    if ((b & 0x80) === 0) return [BigInt(small), pos];
  }
  let result = BigInt(small);
  for (let shift = 28n; shift < 70n; shift += 7n) {
    if (pos >= buf.length) throw new Error("protobuf: truncated varint");
    const b = buf[pos++];
    if (shift === 63n && b > 1) throw new Error("protobuf: varint exceeds 64 bits");
    result |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [result, pos];
  }
  throw new Error("protobuf: varint longer than 10 bytes");
}

/** Decodes one message level into its fields; throws on truncated or malformed input. */
export function decodeFields(buf: Uint8Array): ProtoField[] {
  const fields: ProtoField[] = [];
  let pos = 0;
  const skip = (n: number) => {
    if (pos + n > buf.length) throw new Error("protobuf: truncated field");
    pos += n;
  };
  while (pos < buf.length) {
    const [key, afterKey] = readVarint(buf, pos);
    pos = afterKey;
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (field === 0) throw new Error("protobuf: field number 0");
    if (wire === 0) {
      const [value, after] = readVarint(buf, pos);
      pos = after;
      fields.push({ field, wire, value });
    } else if (wire === 2) {
      const [len, after] = readVarint(buf, pos);
      pos = after;
      if (len > BigInt(buf.length - pos)) throw new Error("protobuf: truncated field");
      const end = pos + Number(len);
      fields.push({ field, wire, value: buf.subarray(pos, end) });
      pos = end;
    } else if (wire === 1) {
      skip(8);
    } else if (wire === 5) {
      skip(4);
    } else {
      throw new Error(`protobuf: unsupported wire type ${wire}`);
    }
  }
  return fields;
}

/** The string value of a length-delimited field. */
export function asString(value: bigint | Uint8Array): string {
  return typeof value === "bigint" ? String(value) : decoder.decode(value);
}

/** Decodes a map<string,string> entry message into [key, value]. */
export function decodeMapEntry(entry: Uint8Array): [string, string] {
  let key = "";
  let value = "";
  for (const f of decodeFields(entry)) {
    if (f.field === 1) key = asString(f.value);
    else if (f.field === 2) value = asString(f.value);
  }
  return [key, value];
}
