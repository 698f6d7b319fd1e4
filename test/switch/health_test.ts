// system-health's view on a real lab switch (ks-container-checker --system-health, SONiC's
// user-defined checker format): telemetry's critical process stopped, then killed, in the native
// v0 container and in the v2 pod, is reported with the service checker's message, and nothing is
// reported once it is back. Run with KS_SWITCH_HEALTH=1: under a heavily loaded machine
// (load average > 30) its timing still fails (supervisord's startsecs race), so it is not part of
// the default suite yet; test/checkers/critical_test.ts covers the same code with real engines.
import assert from "node:assert/strict";
import { kubeBinDir, startKube } from "../../sandbox/harness/kube.ts";
import {
  startSwitches,
  type SwitchNode,
  switchUnavailableReason,
} from "../../sandbox/harness/switch.ts";
import { FLOW_STEPS, type FlowEnv, missingTools } from "../../sandbox/flows/real_switch.ts";
import { waitUntil } from "../../sandbox/harness/net.ts";

const reason = Deno.env.get("KS_SWITCH_HEALTH") !== "1"
  ? "set KS_SWITCH_HEALTH=1 (timing-sensitive under heavy load)"
  : switchUnavailableReason() ??
    (kubeBinDir() ? undefined : "the Kubernetes binaries are not built (scripts/build-kube.sh)");

/** What system-health is told while telemetry's critical process is down. */
const DOWN = [
  "telemetry:OK",
  "telemetry/telemetry:Process 'telemetry' in container 'telemetry' is not running",
];

/** ks-container-checker --system-health on the switch: its telemetry lines. */
async function healthLines(sw: SwitchNode): Promise<string[]> {
  const r = await sw.exec(["ks-container-checker", "--system-health"]);
  if (r.code !== 0) throw new Error(`--system-health exit ${r.code}: ${r.stdout}${r.stderr}`);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines[0], "Services", r.stdout);
  return lines.filter((l) => l.startsWith("telemetry"));
}

async function waitHealth(sw: SwitchNode, want: string[], what: string, ms: number) {
  let last: string[] = [];
  try {
    await waitUntil(
      async () => {
        last = await healthLines(sw);
        return JSON.stringify(last) === JSON.stringify(want);
      },
      ms,
      what,
      500,
    );
  } catch (e) {
    throw new Error(`${(e as Error).message}: last ${JSON.stringify(last)}`);
  }
  return last;
}

/**
 * system-health's view of telemetry while a critical process is stopped and while it is killed,
 * whichever runtime holds the container: `inContainer` runs a command in it (docker exec for the
 * native one, crictl exec for the pod's).
 */
async function healthSequence(
  sw: SwitchNode,
  inContainer: (cmd: string[]) => Promise<{ code: number; stdout: string; stderr: string }>,
) {
  const ok = ["telemetry:OK", "telemetry/telemetry:OK"];
  const seen: string[][] = [];
  // Each look is one run of the tool (two execs in the container); under load a look can time
  // out (reported as not running, as system-health's 15 s exec timeout does), so states are
  // waited for rather than sampled once.
  seen.push(await waitHealth(sw, ok, "telemetry and its critical process OK", 120_000));
  // supervisorctl stop: the program is STOPPED, the container lives on.
  const stop = await inContainer(["supervisorctl", "stop", "telemetry"]);
  assert.equal(stop.code, 0, stop.stdout + stop.stderr);
  seen.push(await waitHealth(sw, DOWN, "the stopped process reported", 60_000));
  const start = await inContainer(["supervisorctl", "start", "telemetry"]);
  assert.equal(start.code, 0, start.stdout + start.stderr);
  seen.push(await waitHealth(sw, ok, "OK once the process runs again", 120_000));
  // kill -9, again each time supervisord restarts it: either supervisord gives up (FATAL, the
  // process stays dead; the native container, where supervisord is PID 1 and the lab's
  // critical-exit listener cannot SIGKILL it) or the listener ends the container (137) and its
  // runtime starts a new one (the pod, where it can). Either way system-health must see it down
  // at some point, and nothing once it is back.
  const kill = await inContainer([
    "sh",
    "-c",
    "for i in $(seq 1 80); do " +
    "supervisorctl status telemetry | grep -q FATAL && exit 0; " +
    'p=$(supervisorctl pid telemetry); [ "$p" -gt 0 ] 2>/dev/null && kill -9 "$p"; ' +
    "sleep 0.25; done; exit 1",
  ]);
  const containerEnded = kill.code !== 0 && /137/.test(kill.stdout + kill.stderr + kill.code);
  assert.ok(kill.code === 0 || containerEnded, `kill: ${kill.code} ${kill.stdout}${kill.stderr}`);
  let down: string[] = [];
  await waitUntil(
    async () => {
      down = await healthLines(sw);
      return JSON.stringify(down) !== JSON.stringify(ok);
    },
    containerEnded ? 30_000 : 60_000,
    "the killed process or its container reported",
    200,
  );
  seen.push(down);
  if (!containerEnded) {
    const again = await inContainer(["supervisorctl", "start", "telemetry"]);
    assert.equal(again.code, 0, again.stdout + again.stderr);
  }
  seen.push(await waitHealth(sw, ok, "nothing reported once it is back", 180_000));
  return seen;
}

Deno.test({
  name:
    "system-health on a real switch: a stopped or killed critical process is reported alike in v0 and v2",
  ignore: reason !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "ks-health-" });
    const cluster = await startKube({ dir: `${dir}/kube` });
    try {
      const lab = await startSwitches({ cluster, count: 1, dir: `${dir}/switches` });
      const env: FlowEnv = {
        cluster,
        sw: lab.switches[0],
        dir,
        note: (text: string) => console.error(`   ${text}`),
      };
      try {
        const health: Record<string, string[][]> = {};
        await t.step("v0 native: reported, nothing once back", async () => {
          env.note(await FLOW_STEPS[0].run(env));
          health.v0 = await healthSequence(
            env.sw,
            (cmd) => env.sw.exec(["docker", "exec", "telemetry", ...cmd]),
          );
          env.note(JSON.stringify(health.v0));
          assert.deepEqual(health.v0[1], DOWN, "stopped");
        });
        const rollout = FLOW_STEPS.filter((s) => s.part === "5.1");
        await t.step({
          name: "rolled out to v2 (5.1)",
          ignore: rollout.some((s) => missingTools(s).length > 0),
          async fn() {
            for (const step of rollout) env.note(await step.run(env));
          },
        });
        await t.step({
          name: "v2 Kubernetes: the same critical-process reports through the CRI as natively",
          ignore: !health.v0,
          async fn() {
            const inPod = async (cmd: string[]) => {
              const ps = await env.sw.crictl(
                "ps",
                "-q",
                "--state",
                "Running",
                "--name",
                "^telemetry$",
              );
              return await env.sw.crictl("exec", "-s", ps.stdout.trim().split("\n")[0], ...cmd);
            };
            health.v2 = await healthSequence(env.sw, inPod);
            env.note(JSON.stringify(health.v2));
            // Stopped, back, and back after the kill: the same lines. While killed: reported too,
            // as the process or (the container ended) as the container.
            assert.deepEqual(health.v2.slice(0, 3), health.v0.slice(0, 3));
            assert.deepEqual(health.v2[4], health.v0[4]);
            assert.ok(
              JSON.stringify(health.v2[3]) === JSON.stringify(DOWN) ||
                health.v2[3].some((l) => / is not running$/.test(l)),
              `killed: ${JSON.stringify(health.v2[3])}`,
            );
          },
        });
      } finally {
        await lab.stop();
      }
    } finally {
      await cluster.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
