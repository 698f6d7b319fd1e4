// featured's exact systemctl sequences as a regression test on a real lab switch (systemd as PID
// 1, the native Docker, containerd and a real kubelet): the auto_restart drop-in + daemon-reload,
// disable (wait while activating, stop, disable, mask), enable (unmask, enable, start), then five
// quick disable/enable cycles, first on the native v0 unit and then on the same unit backed by
// the v2 pod. Both must leave the same unit and daemon states, every mask and unmask must
// succeed (telemetry.service lives in /usr/lib/systemd/system as on SONiC), and no moment may see
// two telemetry instances (sampled through Docker and the CRI all along).
import assert from "node:assert/strict";
import type { SwitchNode } from "../../sandbox/harness/switch.ts";
import { FLOW_STEPS, type FlowEnv, portOwner, unitState } from "../../sandbox/flows/real_switch.ts";
import {
  featuredAutoRestart,
  featuredDisable,
  featuredEnable,
  type FeaturedRun,
  unitFileState,
} from "../../sandbox/flows/featured.ts";
import {
  realSwitchUnavailableReason,
  rollOutToV2,
  withRealSwitch,
} from "../../sandbox/flows/real_switch_fixture.ts";
import { waitUntil } from "../../sandbox/harness/net.ts";

const reason = realSwitchUnavailableReason();

/** Running telemetry instances right now: the native Docker container plus CRI containers. */
async function instances(sw: SwitchNode): Promise<{ docker: number; cri: number }> {
  const r = await sw.exec([
    "sh",
    "-c",
    "docker ps -q --filter name=^telemetry$ --filter status=running | wc -l; " +
    "crictl ps -q --state Running --name '^telemetry$' | wc -l",
  ]);
  const [docker, cri] = r.stdout.trim().split("\n").map(Number);
  return { docker: docker || 0, cri: cri || 0 };
}

/** Samples `instances` until stopped; remembers the worst moment. */
function instanceSampler(sw: SwitchNode) {
  let stop = false;
  let samples = 0;
  let worst = { docker: 0, cri: 0, at: "" };
  const loop = (async () => {
    while (!stop) {
      const n = await instances(sw).catch(() => undefined);
      if (n) {
        samples++;
        if (n.docker + n.cri > worst.docker + worst.cri) {
          worst = { ...n, at: new Date().toISOString() };
        }
      }
      await new Promise((r) => setTimeout(r, 150));
    }
  })();
  return {
    async end() {
      stop = true;
      await loop;
      return { samples, worst };
    },
  };
}

/** Unit and daemon state, the daemon's owner normalised (docker/kubernetes -> serving). */
async function observed(sw: SwitchNode) {
  const u = await unitState(sw, "telemetry");
  const owner = await portOwner(sw);
  return {
    ActiveState: u.ActiveState,
    SubState: u.SubState,
    UnitFileState: await unitFileState(sw, "telemetry.service"),
    daemon: owner === "none" ? "none" : "serving",
  };
}

function assertCommandsOk(run: FeaturedRun, what: string) {
  for (const c of run.commands) {
    if (c.argv[1] === "is-active") continue; // the activating poll answers 3 when inactive
    assert.equal(c.code, 0, `${what}: ${c.argv.join(" ")} -> ${c.code}: ${c.output}`);
  }
}

/** featured's whole sequence set on the switch's telemetry; returns what it observed. */
async function featuredSequences(env: FlowEnv, serving: string) {
  const sw = env.sw;
  const sampler = instanceSampler(sw);
  const states: Record<string, unknown> = {};
  try {
    const ar = await featuredAutoRestart(sw, "telemetry", "enabled");
    assertCommandsOk(ar, "auto_restart");
    states.restart = (await sw.systemctl("show", "telemetry", "-p", "Restart")).stdout.trim();

    await sw.configDb("HSET", "FEATURE|telemetry", "state", "disabled");
    const off = await featuredDisable(sw, "telemetry");
    assert.equal(off.state, "disabled", JSON.stringify(off.commands));
    assertCommandsOk(off, "disable");
    assert.deepEqual(off.commands.filter((c) => c.argv[1] !== "is-active").map((c) => c.argv[1]), [
      "stop",
      "disable",
      "mask",
    ]);
    await waitUntil(
      async () => (await portOwner(sw)) === "none",
      60_000,
      "no daemon on 50051",
      300,
    );
    states.disabled = await observed(sw);
    states.disabledAgain = (await featuredDisable(sw, "telemetry")).state; // featured skips it

    await sw.configDb("HSET", "FEATURE|telemetry", "state", "enabled");
    const on = await featuredEnable(sw, "telemetry");
    assert.equal(on.state, "enabled", JSON.stringify(on.commands));
    assertCommandsOk(on, "enable");
    await waitUntil(
      async () => (await portOwner(sw)) === serving,
      120_000,
      `the daemon on 50051 from ${serving}`,
      300,
    );
    states.enabled = await observed(sw);

    const cycles: string[] = [];
    for (let i = 0; i < 5; i++) {
      await sw.configDb("HSET", "FEATURE|telemetry", "state", "disabled");
      const d = await featuredDisable(sw, "telemetry");
      await sw.configDb("HSET", "FEATURE|telemetry", "state", "enabled");
      const e = await featuredEnable(sw, "telemetry");
      for (const c of [...d.commands, ...e.commands]) {
        if (["mask", "unmask"].includes(c.argv[1])) {
          assert.equal(c.code, 0, `cycle ${i + 1}: ${c.argv.join(" ")}: ${c.output}`);
        }
      }
      cycles.push(`${d.state}/${e.state}`);
    }
    states.cycles = cycles;
    await waitUntil(
      async () => (await portOwner(sw)) === serving,
      120_000,
      `the daemon back on 50051 from ${serving} after the cycles`,
      300,
    );
    await waitUntil(
      async () => (await unitState(sw, "telemetry")).ActiveState === "active",
      60_000,
      "telemetry.service active after the cycles",
      300,
    );
    states.afterCycles = await observed(sw);
  } finally {
    const s = await sampler.end();
    states.instances = s;
  }
  return states;
}

Deno.test({
  name:
    "featured's sequences on a real switch: v0 and v2 leave the same unit and daemon states, mask/unmask work, never two instances",
  ignore: reason !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const journal = async (env: FlowEnv) =>
      env.note(`telemetry journal: ${await env.sw.journal("telemetry", 12)}`);
    await withRealSwitch({ prefix: "ks-featured-", beforeStop: journal }, async (env) => {
      const seen: Record<string, Record<string, unknown>> = {};
      await t.step("v0 native: featured's sequences", async () => {
        env.note(await FLOW_STEPS[0].run(env));
        seen.v0 = await featuredSequences(env, "docker");
        env.note(JSON.stringify(seen.v0));
      });
      await rollOutToV2(t, env, "rolled out to v2 (5.1): the unit is backed by the pod");
      await t.step({
        name: "v2 Kubernetes: featured's sequences leave the same states as on v0",
        ignore: !seen.v0,
        async fn() {
          seen.v2 = await featuredSequences(env, "kubernetes");
          env.note(JSON.stringify(seen.v2));
          const { instances: i0, ...v0 } = seen.v0;
          const { instances: i2, ...v2 } = seen.v2;
          assert.deepEqual(v2, v0);
          for (const [v, i] of [["v0", i0], ["v2", i2]] as const) {
            env.note(`${v} instances: ${JSON.stringify(i)}`);
            const s = i as { samples: number; worst: { docker: number; cri: number } };
            assert.ok(s.samples > 10, `${v}: ${s.samples} samples`);
            assert.ok(
              s.worst.docker + s.worst.cri <= 1,
              `${v}: two telemetry instances at once: ${JSON.stringify(s.worst)}`,
            );
          }
        },
      });
    });
  },
});
