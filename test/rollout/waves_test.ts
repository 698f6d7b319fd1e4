import assert from "node:assert/strict";
import { UsageError } from "../../src/cli.ts";
import { orderNodes, parseWaves, waveCounts, waveNodes } from "../../src/rollout/waves.ts";

Deno.test("waves: the default plan on 1000 nodes is 1, 10, 100, 500, 1000 cumulative", () => {
  assert.deepEqual(waveCounts(parseWaves("1,1%,10%,50%,100%"), 1000), [1, 10, 100, 500, 1000]);
});

Deno.test("waves: percentages round up, empty waves are dropped, the last wave is the fleet", () => {
  // 1% of 50 is 0.5 -> 1 node, the same as the canary wave, so it disappears.
  assert.deepEqual(waveCounts(parseWaves("1,1%,10%,50%,100%"), 50), [1, 5, 25, 50]);
  assert.deepEqual(waveCounts(parseWaves("2,10%"), 7), [2, 7]);
  assert.deepEqual(waveCounts(parseWaves("500"), 20), [20]);
  assert.deepEqual(waveCounts(parseWaves("1"), 0), []);
});

Deno.test("waves: a bad --waves entry is a usage error naming it", () => {
  assert.throws(() => parseWaves("1,x%"), (e) => e instanceof UsageError && /"x%"/.test(e.message));
  assert.throws(() => parseWaves("0"), UsageError);
  assert.throws(() => parseWaves("150%"), UsageError);
  assert.throws(() => parseWaves(""), UsageError);
});

Deno.test("waves: pinned canaries go first, the rest alternates across zones then racks", () => {
  const nodes = [];
  for (const zone of ["z1", "z2"]) {
    for (const rack of ["r1", "r2"]) {
      for (let i = 0; i < 2; i++) {
        nodes.push({
          name: `${zone}-${rack}-${i}`,
          labels: { "topology.kubernetes.io/zone": zone, "kubesonic.io/rack": rack },
        });
      }
    }
  }
  const order = orderNodes(nodes, ["z2-r2-1", "not-in-fleet"]);
  assert.equal(order[0], "z2-r2-1");
  assert.equal(order.length, nodes.length);
  assert.equal(new Set(order).size, nodes.length);
  // After the canary: zone alternates on every pick; inside a zone, racks alternate.
  assert.deepEqual(order.slice(1, 5), ["z1-r1-0", "z2-r1-0", "z1-r2-0", "z2-r2-0"]);
  // Every prefix of 4 non-canary nodes touches both zones.
  const zoneOf = (n: string) => n.slice(0, 2);
  assert.deepEqual(new Set(order.slice(1, 3).map(zoneOf)), new Set(["z1", "z2"]));
});

Deno.test("waves: without zone or rack labels the order is by name and deterministic", () => {
  const nodes = ["c", "a", "b"].map((name) => ({ name }));
  assert.deepEqual(orderNodes(nodes), ["a", "b", "c"]);
  assert.deepEqual(orderNodes([...nodes].reverse()), ["a", "b", "c"]);
  assert.deepEqual(waveNodes(["a", "b", "c"], [1, 3]), [["a"], ["b", "c"]]);
});
