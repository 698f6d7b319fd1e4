import assert from "node:assert/strict";
import { UsageError } from "../../src/cli.ts";
import {
  normalizeAsic,
  podQuery,
  resolveNodeName,
  targetName,
  validateFeature,
} from "../../src/stub/target.ts";

Deno.test("the node name is the lowercased hostname unless --node is given", () => {
  assert.equal(resolveNodeName(undefined, "STR-SONIC-LC01"), "str-sonic-lc01");
  assert.equal(resolveNodeName("", "Switch1"), "switch1");
  assert.equal(resolveNodeName("Node-A", "ignored"), "node-a");
});

Deno.test("a hostname that is no valid node name is a usage error naming it", () => {
  assert.throws(() => resolveNodeName(undefined, "bad_host!"), (e: Error) => {
    assert.ok(e instanceof UsageError);
    assert.match(e.message, /bad_host!.*--node/);
    return true;
  });
});

Deno.test("the ASIC argument accepts 0 and asic0 and rejects anything else", () => {
  assert.equal(normalizeAsic(undefined), undefined);
  assert.equal(normalizeAsic(""), undefined);
  assert.equal(normalizeAsic("0"), "0");
  assert.equal(normalizeAsic("asic3"), "3");
  assert.equal(normalizeAsic("03"), "3");
  assert.throws(() => normalizeAsic("asicX"), UsageError);
  assert.throws(() => normalizeAsic("-1"), UsageError);
});

Deno.test("feature names must be label values (FEATURE keys such as dhcp_relay pass)", () => {
  assert.equal(validateFeature("dhcp_relay"), "dhcp_relay");
  assert.throws(() => validateFeature(undefined), /missing <feature>/);
  assert.throws(() => validateFeature("Telemetry"), /not a valid feature name/);
  assert.throws(() => validateFeature("a,b=c"), UsageError);
});

Deno.test("only feature pods are selected; a global instance excludes per-ASIC pods; an ASIC instance takes either label spelling", () => {
  const global = podQuery({ feature: "telemetry", node: "sw1", namespace: "sonic" });
  assert.deepEqual(global, {
    namespace: "sonic",
    labelSelector: "app=telemetry,raw_container_name,!asic",
    fieldSelector: "spec.nodeName=sw1",
  });
  const asic = podQuery({ feature: "bgp", asic: "1", node: "sw1", namespace: "sonic" });
  assert.equal(asic.labelSelector, "app=bgp,raw_container_name,asic in (1,asic1)");
  assert.equal(targetName({ feature: "bgp", asic: "1" }), "bgp@asic1");
  assert.equal(targetName({ feature: "telemetry" }), "telemetry");
});
