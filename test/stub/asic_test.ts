// ks-stub with ks-render's per-ASIC output on the real API server: a per-ASIC feature rendered for
// two ASICs gives one DaemonSet per ASIC; `ks-stub <f> <verb> <asic>` (what `<f>@<asic>.service`
// runs) finds and acts on that ASIC's pod only, and the global instance finds none.
import assert from "node:assert/strict";
import { join } from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { REPO_ROOT } from "../../src/build/bundle.ts";
import { runTool } from "../../sandbox/harness/bin.ts";
import { kubeBinDir, startKube } from "../../sandbox/harness/kube.ts";
import { waitUntil } from "../../sandbox/harness/net.ts";
import { kubectlOk, podsOn } from "../../sandbox/fixtures/stub_api.ts";

Deno.test({
  name: "per-ASIC: ks-render's instances are each found and restarted by their ASIC index",
  ignore: !kubeBinDir(),
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "ks-stub-asic-" });
  const kube = await startKube();
  try {
    const spec = parseYaml(
      await Deno.readTextFile(join(REPO_ROOT, "examples", "telemetry", "feature.yaml")),
    ) as Record<string, unknown>;
    spec.scope = { global: false, perAsic: true, asics: 2 };
    await Deno.writeTextFile(join(dir, "feature.yaml"), stringifyYaml(spec));
    const out = join(dir, "out");
    const render = await runTool("ks-render", [
      join(dir, "feature.yaml"),
      "--profile",
      "lab",
      "-o",
      out,
    ]);
    assert.equal(render.code, 0, render.stderr);
    await kubectlOk(kube, ["apply", "-f", join(out, "common"), "-f", join(out, "v2")]);
    await kube.addNodes(["masic"], { "kubesonic.io/telemetry": "enabled" });
    await waitUntil(
      async () =>
        (await podsOn(kube, "masic", "app=telemetry,raw_container_name")).filter((p) =>
          p.phase === "Running"
        )
          .length === 2,
      60_000,
      "two per-ASIC pods running",
      100,
    );
    const kubeconfig = await kube.serviceAccountKubeconfig("sonic", "telemetry-stub");
    const stub = (args: string[]) =>
      runTool("ks-stub", ["telemetry", ...args, "--node", "masic", "--kubeconfig", kubeconfig], {
        // kwok runs no containers: status asks the API server.
        env: { KS_RUNTIME_SOCKET: "none" },
      });
    const podOf = async (asic: string) => {
      const r = await stub(["status", asic, "--output", "json"]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      return JSON.parse(r.stdout).pod as { name: string; uid: string };
    };
    const asic0 = await podOf("0");
    const asic1 = await podOf("asic1");
    assert.match(asic0.name, /^telemetry-asic0-/);
    assert.match(asic1.name, /^telemetry-asic1-/);
    assert.equal(
      (await stub(["status"])).code,
      3,
      "no global feature instance (the global pod is the sidecar only)",
    );

    const restart = await stub(["restart", "1"]);
    assert.equal(restart.code, 0, restart.stderr);
    assert.notEqual((await podOf("1")).uid, asic1.uid, "ASIC 1's pod was replaced");
    assert.equal((await podOf("0")).uid, asic0.uid, "ASIC 0's pod was left alone");
  } finally {
    await kube.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
