import assert from "node:assert/strict";
import { loadSwitchFacts, switchFactsFromConfigDb } from "../../src/feature/switch_facts.ts";
import { SpecError } from "../../src/feature/spec.ts";

Deno.test("single-ASIC config_db: the FEATURE flags, no ASIC count", () => {
  const facts = switchFactsFromConfigDb(
    {
      FEATURE: {
        telemetry: { state: "enabled", has_global_scope: "True", has_per_asic_scope: "False" },
      },
    },
    "telemetry",
    "config_db.json",
  );
  assert.deepEqual(facts, { global: true, perAsic: false, state: "enabled" });
});

Deno.test("multi-ASIC config_db: flags from localhost, ASIC count from the asicN sections", () => {
  const facts = switchFactsFromConfigDb(
    {
      localhost: { FEATURE: { bgp: { has_global_scope: "false", has_per_asic_scope: "true" } } },
      asic0: {},
      asic1: {},
      asic2: {},
    },
    "bgp",
    "config_db.json",
  );
  assert.deepEqual(facts, { global: false, perAsic: true, asics: 3 });
});

Deno.test("a missing FEATURE row or a template flag is one line naming the key", () => {
  assert.throws(
    () => switchFactsFromConfigDb({ FEATURE: {} }, "telemetry", "c.json"),
    (e: Error) =>
      e instanceof SpecError && e.message === "c.json: FEATURE.telemetry: no such FEATURE entry",
  );
  assert.throws(
    () =>
      switchFactsFromConfigDb(
        { FEATURE: { telemetry: { has_per_asic_scope: "{% if x %}True{% endif %}" } } },
        "telemetry",
        "c.json",
      ),
    (e: Error) =>
      e instanceof SpecError &&
      e.message.startsWith("c.json: FEATURE.telemetry.has_per_asic_scope: ") &&
      !e.message.includes("\n"),
  );
});

Deno.test("an unreadable or non-JSON config_db is a SpecError naming the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/config_db.json`, "{not json");
    await assert.rejects(
      () => loadSwitchFacts(`${dir}/config_db.json`, "telemetry"),
      (e: Error) =>
        e instanceof SpecError && e.message.startsWith(`${dir}/config_db.json: not valid JSON`),
    );
    await assert.rejects(
      () => loadSwitchFacts(`${dir}/none.json`, "telemetry"),
      (e: Error) => e instanceof SpecError && e.message.includes("no such file"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
