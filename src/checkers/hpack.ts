// HPACK (RFC 7541), the header compression of HTTP/2, as much as a unary gRPC client needs: encode
// a request's headers as literals (no Huffman, no dynamic-table insertions: always valid, a few
// bytes longer) and decode whatever a server sends (indexed fields, literals with or without
// indexing, Huffman strings, dynamic-table size updates). Header bytes are kept as latin1
// strings, so a name or value is exactly its octets (the table's size accounting counts octets).

/** RFC 7541 Appendix A: the static table, index 1..61. */
const STATIC: readonly (readonly [string, string])[] = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];

/**
 * RFC 7541 Appendix B: the Huffman code's length of each symbol 0..256 (256 = EOS), one character
 * each (0-9, then A = 10 … U = 30). The code is canonical (codes assigned in order of length,
 * then symbol), so the lengths alone define it.
 */
const HUFFMAN_LENGTHS =
  "DNSSSSSSSOUSSUSSSSSSSSUSSSSSSSSS6AACD68BAA8B8666555666666678F6CAD67777777777777777777777" +
  "878DJDE6F56565666577666567655677777FBEDSKMKKMMMNMNNNNNONOOMNONNNNLMNMNNOMLKMMNNLNMMOLMNN" +
  "LLMLNMNNKMMMNMMNQQKJMNMPQQQRRQOPJLQRRQROLLQQSRRRKOKLMLLNMMPPOOQNQRQQRRRRRSRRRRRQU";

const EOS = 256;

/** HPACK cannot be decoded (a protocol error: the connection is unusable). */
export class HpackError extends Error {
  override name = "HpackError";
}

interface HuffmanTable {
  /** Per code length: the first canonical code, how many symbols, where they start in `symbols`. */
  first: Int32Array;
  count: Int32Array;
  offset: Int32Array;
  symbols: Uint16Array;
}

let huffman: HuffmanTable | undefined;

function huffmanTable(): HuffmanTable {
  if (huffman) return huffman;
  const lengths = [...HUFFMAN_LENGTHS].map((c) => parseInt(c, 36));
  const symbols = Uint16Array.from(lengths.keys()).sort((a, b) => lengths[a] - lengths[b] || a - b);
  const count = new Int32Array(31);
  for (const l of lengths) count[l]++;
  const first = new Int32Array(31);
  const offset = new Int32Array(31);
  let code = 0;
  let at = 0;
  for (let l = 1; l <= 30; l++) {
    first[l] = code;
    offset[l] = at;
    code = (code + count[l]) << 1;
    at += count[l];
  }
  huffman = { first, count, offset, symbols };
  return huffman;
}

/** Decodes a Huffman-coded string (RFC 7541 5.2) into latin1. */
export function huffmanDecode(bytes: Uint8Array): string {
  const { first, count, offset, symbols } = huffmanTable();
  let out = "";
  let code = 0;
  let len = 0;
  let ones = true;
  for (const byte of bytes) {
    for (let bit = 7; bit >= 0; bit--) {
      const b = (byte >> bit) & 1;
      code = (code << 1) | b;
      ones &&= b === 1;
      len++;
      if (len > 30) throw new HpackError("hpack: Huffman code longer than 30 bits");
      const index = code - first[len];
      if (count[len] > 0 && index >= 0 && index < count[len]) {
        const symbol = symbols[offset[len] + index];
        if (symbol === EOS) throw new HpackError("hpack: EOS inside a Huffman string");
        out += String.fromCharCode(symbol);
        code = 0;
        len = 0;
        ones = true;
      }
    }
  }
  // What is left must be padding: fewer than 8 bits, all ones (a prefix of EOS).
  if (len > 7 || !ones) throw new HpackError("hpack: bad Huffman padding");
  return out;
}

function latin1(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

/** Appends `value` as an HPACK integer with an `n`-bit prefix whose high bits are `flags`. */
function pushInt(out: number[], value: number, n: number, flags: number): void {
  const max = (1 << n) - 1;
  if (value < max) {
    out.push(flags | value);
    return;
  }
  out.push(flags | max);
  value -= max;
  while (value >= 128) {
    out.push((value & 0x7f) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
}

function pushString(out: number[], s: string): void {
  pushInt(out, s.length, 7, 0);
  for (let i = 0; i < s.length; i++) out.push(s.charCodeAt(i) & 0xff);
}

/**
 * Encodes headers (names lowercase, ASCII) as one header block: each a literal without indexing,
 * naming a static-table entry where one has the name. Leaves no state in the peer's decoder.
 */
export function encodeHeaders(headers: readonly (readonly [string, string])[]): Uint8Array {
  const out: number[] = [];
  for (const [name, value] of headers) {
    const exact = STATIC.findIndex(([n, v]) => n === name && v === value);
    if (exact >= 0) {
      pushInt(out, exact + 1, 7, 0x80);
      continue;
    }
    const byName = STATIC.findIndex(([n]) => n === name);
    if (byName >= 0) pushInt(out, byName + 1, 4, 0);
    else {
      out.push(0);
      pushString(out, name);
    }
    pushString(out, value);
  }
  return Uint8Array.from(out);
}

/** One connection's HPACK decoder: its dynamic table lives as long as the connection. */
export class HpackDecoder {
  /** Newest first. */
  #table: [string, string][] = [];
  #size = 0;
  #max: number;

  /** `maxTableSize`: what this side announced (SETTINGS_HEADER_TABLE_SIZE; default 4096). */
  constructor(readonly maxTableSize = 4096) {
    this.#max = maxTableSize;
  }

  #evict(): void {
    while (this.#size > this.#max && this.#table.length > 0) {
      const [n, v] = this.#table.pop()!;
      this.#size -= n.length + v.length + 32;
    }
  }

  #entry(index: number): readonly [string, string] {
    if (index >= 1 && index <= STATIC.length) return STATIC[index - 1];
    const entry = this.#table[index - STATIC.length - 1];
    if (index < 1 || !entry) throw new HpackError(`hpack: no table entry ${index}`);
    return entry;
  }

  /** Decodes one complete header block into [name, value] pairs, updating the table. */
  decode(block: Uint8Array): [string, string][] {
    let pos = 0;
    const int = (n: number): number => {
      if (pos >= block.length) throw new HpackError("hpack: truncated header block");
      const max = (1 << n) - 1;
      let value = block[pos++] & max;
      if (value < max) return value;
      let shift = 0;
      for (;;) {
        if (pos >= block.length) throw new HpackError("hpack: truncated integer");
        const b = block[pos++];
        value += (b & 0x7f) * 2 ** shift;
        shift += 7;
        if ((b & 0x80) === 0) return value;
        if (shift > 28) throw new HpackError("hpack: integer too large");
      }
    };
    const str = (): string => {
      if (pos >= block.length) throw new HpackError("hpack: truncated header block");
      const coded = (block[pos] & 0x80) !== 0;
      const len = int(7);
      if (pos + len > block.length) throw new HpackError("hpack: truncated string");
      const bytes = block.subarray(pos, pos + len);
      pos += len;
      return coded ? huffmanDecode(bytes) : latin1(bytes);
    };
    const out: [string, string][] = [];
    while (pos < block.length) {
      const b = block[pos];
      if (b & 0x80) {
        const [n, v] = this.#entry(int(7));
        out.push([n, v]);
      } else if (b & 0x40) {
        const index = int(6);
        const name = index === 0 ? str() : this.#entry(index)[0];
        const value = str();
        out.push([name, value]);
        this.#table.unshift([name, value]);
        this.#size += name.length + value.length + 32;
        this.#evict();
      } else if (b & 0x20) {
        const size = int(5);
        if (size > this.maxTableSize) {
          throw new HpackError(`hpack: table size ${size} above ${this.maxTableSize}`);
        }
        this.#max = size;
        this.#evict();
      } else {
        const index = int(4);
        const name = index === 0 ? str() : this.#entry(index)[0];
        out.push([name, str()]);
      }
    }
    return out;
  }
}
