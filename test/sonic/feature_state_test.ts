import assert from "node:assert/strict";
import { interpretFeatureState } from "../../src/sonic/feature_state.ts";

Deno.test("enabled and always_enabled turn the feature on", () => {
  assert.equal(interpretFeatureState("enabled").on, true);
  assert.equal(interpretFeatureState("always_enabled").on, true);
});

Deno.test("disabled, always_disabled and a missing row turn it off without a warning", () => {
  for (const raw of ["disabled", "always_disabled", null, undefined]) {
    const state = interpretFeatureState(raw);
    assert.equal(state.on, false, String(raw));
    assert.equal(state.warning, undefined, String(raw));
  }
});

Deno.test("an unrendered template or typo is off, with a warning naming the value", () => {
  for (const raw of ["{% if x %}enabled{% endif %}", "Enabled", "", "true"]) {
    const state = interpretFeatureState(raw);
    assert.equal(state.on, false, raw);
    assert.ok(state.warning?.includes(JSON.stringify(raw)), raw);
  }
});
