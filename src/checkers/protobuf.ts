// The few protobuf wire-format pieces the CRI calls need (varints, length-delimited fields,
// map<string,string> entries), so the checkers speak the CRI without a code generator or an npm
// dependency. Unknown fields are skipped, as protobuf requires.

/** One decoded field: its number, wire type and value (a number for varints, bytes otherwise). */
export interface ProtoField {
  field: number;
  wire: number;
  value: number | Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes an unsigned varint (up to 2^53). */
export function encodeVarint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

/** A small protobuf message builder. */
export class ProtoWriter {
  #bytes: number[] = [];

  /** Appends a varint field (skipped when 0, like proto3 defaults). */
  varint(field: number, value: number | boolean): this {
    const n = typeof value === "boolean" ? (value ? 1 : 0) : value;
    if (n === 0) return this;
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

/** Decodes one message level into its fields; throws on truncated or malformed input. */
export function decodeFields(buf: Uint8Array): ProtoField[] {
  const fields: ProtoField[] = [];
  let pos = 0;
  const readVarint = (): number => {
    let result = 0;
    let mul = 1;
    while (true) {
      if (pos >= buf.length) throw new Error("protobuf: truncated varint");
      const b = buf[pos++];
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 0x80;
      if (mul > 2 ** 63) throw new Error("protobuf: varint too long");
    }
  };
  while (pos < buf.length) {
    const key = readVarint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) {
      fields.push({ field, wire, value: readVarint() });
    } else if (wire === 2) {
      const len = readVarint();
      if (pos + len > buf.length) throw new Error("protobuf: truncated field");
      fields.push({ field, wire, value: buf.subarray(pos, pos + len) });
      pos += len;
    } else if (wire === 1) {
      pos += 8;
    } else if (wire === 5) {
      pos += 4;
    } else {
      throw new Error(`protobuf: unsupported wire type ${wire}`);
    }
  }
  return fields;
}

/** The string value of a length-delimited field. */
export function asString(value: number | Uint8Array): string {
  return typeof value === "number" ? String(value) : decoder.decode(value);
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
