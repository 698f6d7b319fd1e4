// system-health's view on a real lab switch (ks-container-checker --system-health, SONiC's
// user-defined checker format): telemetry's critical process stopped, then killed, in the native
// v0 container and in the v2 pod, is reported with the service checker's message, and nothing is
// reported once it is back.
//
// Every step waits on an observed state, never on time. The kill is deterministic because the lab
// image runs the critical program as SONiC's images do: supervisord does not restart it
// (autorestart=false; with autorestart, a kill inside startsecs is retried and under load the
// retries race the kills), and the critical-exit listener leaves the container alone while
// CONFIG_DB's FEATURE|telemetry auto_restart is disabled (`config feature autorestart telemetry
// disabled`), so the killed program stays EXITED until it is started again. In v2 the kubelet's
// liveness probe (the watchdog's /livez, three failures 10 s apart) would restart the container
// some 30 s after the daemon goes down, racing the inspection; the pod is replaced by one whose
// feature liveness tolerates the inspection (the kubelet's restarts are the OOM and fault flows').
import assert from "node:assert/strict";
import { join } from "node:path";
import { TREE_DIR } from "../../src/build/tree.ts";
import { copyTree } from "../../src/build/tree_copy.ts";
import { ensureTree } from "../../sandbox/harness/bin.ts";
import type { SwitchNode } from "../../sandbox/harness/switch.ts";
import { FLOW_STEPS, type FlowEnv, podsOnNode } from "../../sandbox/flows/real_switch.ts";
import {
  realSwitchUnavailableReason,
  rollOutToV2,
  withRealSwitch,
} from "../../sandbox/flows/real_switch_fixture.ts";
import { waitUntil } from "../../sandbox/harness/net.ts";

const reason = realSwitchUnavailableReason();

/** What system-health is told while telemetry's critical process is down. */
const DOWN = [
  "telemetry:OK",
  "telemetry/telemetry:Process 'telemetry' in container 'telemetry' is not running",
];
const OK = ["telemetry:OK", "telemetry/telemetry:OK"];

type InContainer = (cmd: string[]) => Promise<{ code: number; stdout: string; stderr: string }>;

/**
 * Where system-health's stand-in runs from on the switch: a copy of the ks tree in the lab's own
 * mount (/etc/kubesonic/switch is the harness's host directory), so v0 and v2 are asked by the same
 * tool while the switch itself stays stock (a real switch's system-health is SONiC's own).
 */
const CHECKER = "/etc/kubesonic/switch/ks-tree/bin/ks-container-checker";

/** ks-container-checker --system-health on the switch: its telemetry lines. */
async function healthLines(sw: SwitchNode): Promise<string[]> {
  const r = await sw.exec([CHECKER, "--system-health"]);
  if (r.code !== 0) throw new Error(`--system-health exit ${r.code}: ${r.stdout}${r.stderr}`);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines[0], "Services", r.stdout);
  return lines.filter((l) => l.startsWith("telemetry"));
}

/**
 * Polls until `probe` answers `want` (compared as JSON); returns it. Throws naming `what` and the
 * last answer after `ms` (a bound for a broken switch, not a timing the test relies on).
 */
async function waitFor<T>(what: string, probe: () => Promise<T>, want: T, ms: number) {
  let last: T | undefined;
  try {
    await waitUntil(
      async () => JSON.stringify(last = await probe()) === JSON.stringify(want),
      ms,
      what,
      500,
    );
  } catch (e) {
    throw new Error(`${(e as Error).message}: last ${JSON.stringify(last)}`);
  }
  return want;
}

/** supervisord's state of the telemetry program in the container (RUNNING, STOPPED, EXITED…). */
async function programState(inContainer: InContainer): Promise<string> {
  // supervisorctl status exits 3 when the program is not RUNNING, and crictl exec then drops
  // its output: only the output counts.
  const r = await inContainer(["sh", "-c", "supervisorctl status telemetry || true"]);
  return r.stdout.trim().split(/\s+/)[1] ?? `none (exit ${r.code}: ${r.stderr.trim()})`;
}

/**
 * system-health's view of telemetry while its critical process is stopped and while it is killed,
 * whichever runtime holds the container: `inContainer` runs a command in it (docker exec for the
 * native one, crictl exec for the pod's); `container` names the running container. Returns the
 * states seen: the program's state and system-health's lines at each stage.
 */
async function healthSequence(
  sw: SwitchNode,
  inContainer: InContainer,
  container: () => Promise<string>,
) {
  const seen: unknown[] = [];
  // A look at system-health is one run of the tool (two execs in the container); under load an
  // exec can time out, which it reports as not running (system-health's 15 s exec timeout does
  // the same): a down report counts once supervisord's own state says down too.
  const health = (want: string[], what: string) =>
    waitFor(what, () => healthLines(sw), want, 180_000);
  const program = (want: string, what: string) =>
    waitFor(what, () => programState(inContainer), want, 60_000);

  seen.push(await program("RUNNING", "telemetry RUNNING"));
  seen.push(await health(OK, "telemetry and its critical process OK"));

  // supervisorctl stop: the program is STOPPED, the container lives on.
  const stop = await inContainer(["supervisorctl", "stop", "telemetry"]);
  assert.equal(stop.code, 0, stop.stdout + stop.stderr);
  seen.push(await program("STOPPED", "telemetry STOPPED"));
  seen.push(await health(DOWN, "the stopped process reported"));
  seen.push(await program("STOPPED", "telemetry still STOPPED after the report"));
  const start = await inContainer(["supervisorctl", "start", "telemetry"]);
  assert.equal(start.code, 0, start.stdout + start.stderr);
  seen.push(await health(OK, "OK once the process runs again"));

  // kill -9 with auto_restart disabled: EXITED, neither supervisord nor the listener restarts it.
  await sw.configDb("HSET", "FEATURE|telemetry", "auto_restart", "disabled");
  try {
    seen.push(await program("RUNNING", "telemetry RUNNING before the kill"));
    const before = await container();
    const kill = await inContainer([
      "sh",
      "-c",
      'p=$(supervisorctl pid telemetry) && [ "$p" -gt 0 ] && kill -9 "$p"',
    ]);
    assert.equal(kill.code, 0, `kill: ${kill.stdout}${kill.stderr}`);
    seen.push(await program("EXITED", "the killed telemetry EXITED"));
    seen.push(await health(DOWN, "the killed process reported"));
    seen.push(await program("EXITED", "telemetry still EXITED after the report"));
    assert.equal(await container(), before, "the container was replaced after the kill");
    const again = await inContainer(["supervisorctl", "start", "telemetry"]);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    seen.push(await health(OK, "nothing reported once it is back"));
  } finally {
    await sw.configDb("HSET", "FEATURE|telemetry", "auto_restart", "enabled");
  }
  return seen;
}

/** What the whole sequence sees on either runtime. */
const EXPECTED = [
  "RUNNING",
  OK,
  "STOPPED",
  DOWN,
  "STOPPED",
  OK,
  "RUNNING",
  "EXITED",
  DOWN,
  "EXITED",
  OK,
];

/**
 * Replaces the node's v2 pod by one whose feature liveness probe tolerates a dead daemon for the
 * length of the inspection (failureThreshold 360: an hour at 10 s), and waits until it is Ready.
 */
async function tolerantLiveness(env: FlowEnv): Promise<string> {
  const patch = {
    spec: {
      template: {
        spec: { containers: [{ name: "telemetry", livenessProbe: { failureThreshold: 360 } }] },
      },
    },
  };
  const p = await env.cluster.kubectl([
    "patch",
    "daemonset",
    "-n",
    "sonic",
    "telemetry",
    "-p",
    JSON.stringify(patch),
  ]);
  assert.equal(p.code, 0, p.stderr);
  const old = (await podsOnNode(env)).filter((x) => !x.deleting);
  for (const pod of old) {
    const d = await env.cluster.kubectl(["delete", "pod", "-n", "sonic", pod.name, "--wait=false"]);
    assert.equal(d.code, 0, d.stderr);
  }
  let last: unknown;
  await waitUntil(
    async () => {
      const pods = (await podsOnNode(env)).filter((x) => !x.deleting);
      last = pods;
      return pods.length === 1 && pods[0].ready && !old.some((o) => o.uid === pods[0].uid);
    },
    300_000,
    "the v2 pod with the tolerant liveness Ready",
    1000,
  ).catch((e) => {
    throw new Error(`${(e as Error).message}: ${JSON.stringify(last)}`);
  });
  return `v2 pod replaced with feature liveness failureThreshold 360`;
}

Deno.test({
  name:
    "system-health on a real switch: a stopped or killed critical process is reported alike in v0 and v2",
  ignore: reason !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await withRealSwitch({ prefix: "ks-health-" }, async (env) => {
      await ensureTree();
      await copyTree(TREE_DIR, join(env.sw.configDir, "ks-tree"));
      const health: Record<string, unknown[]> = {};
      await t.step("v0 native: reported, nothing once back", async () => {
        env.note(await FLOW_STEPS[0].run(env));
        health.v0 = await healthSequence(
          env.sw,
          (cmd) => env.sw.exec(["docker", "exec", "telemetry", ...cmd]),
          async () =>
            (await env.sw.exec(["docker", "inspect", "-f", "{{.Id}}", "telemetry"])).stdout.trim(),
        );
        env.note(JSON.stringify(health.v0));
        assert.deepEqual(health.v0, EXPECTED);
      });
      const rolled = await rollOutToV2(t, env);
      await t.step({
        name: "v2 Kubernetes: the same critical-process reports through the CRI as natively",
        ignore: !health.v0 || !rolled,
        async fn() {
          env.note(await tolerantLiveness(env));
          const container = async () => {
            const ps = await env.sw.crictl(
              "ps",
              "-q",
              "--state",
              "Running",
              "--name",
              "^telemetry$",
            );
            return ps.stdout.trim().split("\n")[0];
          };
          const inPod: InContainer = async (cmd) =>
            await env.sw.crictl("exec", "-s", await container(), ...cmd);
          health.v2 = await healthSequence(env.sw, inPod, container);
          env.note(JSON.stringify(health.v2));
          assert.deepEqual(health.v2, health.v0);
        },
      });
    });
  },
});
