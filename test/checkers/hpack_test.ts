// HPACK as the CRI client's HTTP/2 uses it: RFC 7541's own examples decode (C.4: requests with
// Huffman strings and the dynamic table; C.6: responses at a 256-octet table, with evictions);
// what encodeHeaders writes decodes back and leaves the decoder's table empty; bad blocks
// (truncated, an index past the table, bad Huffman padding, EOS, a size update above the
// setting) are errors, not guesses.
import assert from "node:assert/strict";
import {
  encodeHeaders,
  HpackDecoder,
  HpackError,
  huffmanDecode,
} from "../../src/checkers/hpack.ts";

const dehex = (s: string) =>
  Uint8Array.from(s.replace(/\s+/g, "").match(/../g)!, (b) => parseInt(b, 16));

Deno.test("RFC 7541 C.4: three requests with Huffman strings share the dynamic table", () => {
  const d = new HpackDecoder(4096);
  assert.deepEqual(d.decode(dehex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff")), [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
  ]);
  assert.deepEqual(d.decode(dehex("8286 84be 5886 a8eb 1064 9cbf")), [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
    ["cache-control", "no-cache"],
  ]);
  assert.deepEqual(
    d.decode(dehex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf")),
    [
      [":method", "GET"],
      [":scheme", "https"],
      [":path", "/index.html"],
      [":authority", "www.example.com"],
      ["custom-key", "custom-value"],
    ],
  );
});

Deno.test("RFC 7541 C.6: responses at a 256-octet table evict the oldest entries", () => {
  const d = new HpackDecoder(256);
  const date21 = "Mon, 21 Oct 2013 20:13:21 GMT";
  assert.deepEqual(
    d.decode(dehex(`4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81
      66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`)),
    [
      [":status", "302"],
      ["cache-control", "private"],
      ["date", date21],
      ["location", "https://www.example.com"],
    ],
  );
  // ":status 307" evicts ":status 302"; c1/c0/bf are the three entries left.
  assert.deepEqual(d.decode(dehex("4883 640e ffc1 c0bf")), [
    [":status", "307"],
    ["cache-control", "private"],
    ["date", date21],
    ["location", "https://www.example.com"],
  ]);
  assert.deepEqual(
    d.decode(dehex(`88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a
      839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5
      291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07`)),
    [
      [":status", "200"],
      ["cache-control", "private"],
      ["date", "Mon, 21 Oct 2013 20:13:22 GMT"],
      ["location", "https://www.example.com"],
      ["content-encoding", "gzip"],
      ["set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"],
    ],
  );
  // After the evictions only three entries are left: index 62..64; 65 is past the table.
  assert.throws(() => d.decode(Uint8Array.of(0x80 | 65)), HpackError);
  assert.deepEqual(d.decode(Uint8Array.of(0x80 | 64)), [["date", "Mon, 21 Oct 2013 20:13:22 GMT"]]);
});

Deno.test("encodeHeaders: a gRPC request's headers decode back and add nothing to the table", () => {
  const headers: [string, string][] = [
    [":method", "POST"],
    [":scheme", "http"],
    [":path", "/runtime.v1.RuntimeService/ListContainers"],
    [":authority", "localhost"],
    ["content-type", "application/grpc"],
    ["te", "trailers"],
    ["grpc-timeout", "2000m"],
    ["x-long", "v".repeat(300)],
  ];
  const block = encodeHeaders(headers);
  // :method POST and :scheme http are one byte each (static indices 3 and 6).
  assert.deepEqual([...block.subarray(0, 2)], [0x83, 0x86]);
  const d = new HpackDecoder();
  assert.deepEqual(d.decode(block), headers);
  // Nothing was indexed: index 62 (the first dynamic entry) does not exist.
  assert.throws(() => d.decode(Uint8Array.of(0x80 | 62)), /no table entry 62/);
});

Deno.test("bad header blocks are errors", () => {
  const d = () => new HpackDecoder();
  // A literal whose string runs past the block.
  assert.throws(() => d().decode(Uint8Array.of(0x40, 0x05, 0x61)), /truncated/);
  // An integer continuation that never ends.
  assert.throws(() => d().decode(Uint8Array.of(0xff, 0xff)), /truncated integer/);
  assert.throws(
    () => d().decode(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)),
    /too large/,
  );
  // Index 0 is not an entry.
  assert.throws(() => d().decode(Uint8Array.of(0x80)), /no table entry 0/);
  // A table size update above what this side announced.
  assert.throws(() => new HpackDecoder(256).decode(Uint8Array.of(0x3f, 0xe2, 0x1f)), /table size/);
  // Huffman: "0" is 00000; padding must be ones and shorter than a byte.
  assert.equal(huffmanDecode(Uint8Array.of(0b00000111)), "0");
  assert.throws(() => huffmanDecode(Uint8Array.of(0b00000011)), /padding/);
  assert.throws(() => huffmanDecode(Uint8Array.of(0x07, 0xff)), /padding/);
  // EOS (30 ones) inside a string.
  assert.throws(() => huffmanDecode(Uint8Array.of(0xff, 0xff, 0xff, 0xfc)), /EOS/);
});

Deno.test("a size update to 0 empties the table", () => {
  const d = new HpackDecoder();
  d.decode(encodeHeaders([]));
  // Literal with incremental indexing, new name "a" = "b": index 62.
  assert.deepEqual(d.decode(Uint8Array.of(0x40, 1, 0x61, 1, 0x62, 0x80 | 62)), [["a", "b"], [
    "a",
    "b",
  ]]);
  assert.throws(() => d.decode(Uint8Array.of(0x20, 0x80 | 62)), /no table entry 62/);
});
