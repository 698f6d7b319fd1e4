import assert from "node:assert/strict";
import { formatBytes, parseQuantity } from "../../src/feature/quantity.ts";

Deno.test("parses binary, decimal, milli and exponent quantities to base units", () => {
  assert.equal(parseQuantity("400Mi")?.value, 419430400);
  assert.equal(parseQuantity("1G")?.value, 1e9);
  assert.equal(parseQuantity("100m")?.value, 0.1);
  assert.equal(parseQuantity("0.5")?.value, 0.5);
  assert.equal(parseQuantity("1e3")?.value, 1000);
  assert.equal(parseQuantity("419430400")?.value, 419430400);
});

Deno.test("rejects what the API server rejects", () => {
  for (const bad of ["400Mx", "", "Mi", "-1", "1.2.3", "4 Gi", "1MiB", "0x10"]) {
    assert.equal(parseQuantity(bad), undefined, bad);
  }
});

Deno.test("formats bytes with the largest exact binary suffix, else as plain bytes", () => {
  assert.equal(formatBytes(419430400), "400Mi");
  assert.equal(formatBytes(838860800), "800Mi");
  assert.equal(formatBytes(4294967296), "4Gi");
  assert.equal(formatBytes(1536), "1536", "1.5Ki is not a whole Ki");
  assert.equal(formatBytes(2048), "2Ki");
  assert.equal(formatBytes(419430401), "419430401");
});
