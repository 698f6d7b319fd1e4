// systemctl on a real lab switch (systemd, containerd, a real kubelet) when the switch loses its
// API server, when its kubelet or containerd stop, and when the node leaves and rejoins the
// DaemonSet. The switch is brought to v2 by the design's first flows (sandbox/flows/real_switch.ts:
// v0, 5.1 v1, 5.1 v2), then:
//   - the API server reachable: `systemctl restart telemetry` takes the graceful pod delete;
//   - a partition (the switch's forwarded API-server socket blackholed: connections hang) of
//     PARTITION_MS: `systemctl status` 0, `systemctl restart` restarts the container through the
//     runtime and the daemon comes back, three stop/start cycles of the container (the unit's own
//     ExecStop/ExecStartPre verbs) while the launcher keeps the unit active with one main PID, a
//     `systemctl stop` + `start`; NRestarts and the start limit checked; healed, the state
//     converges to CONFIG_DB's with one pod and one running feature container;
//   - kubelet stopped, containerd stopped: each verb's exit code and time;
//   - the node's opt-in label removed for SHORT_LEAVE_MS and LONG_LEAVE_MS (featured's
//     Restart=always drop-in in place) and put back: the unit stays active (no start-limit hit,
//     no restart) and reports the instance running again within 10 s of the pod turning Ready.
// Throughout, the unit's Status: line (`systemctl show -p StatusText`: what ks-stub wait tells
// systemd with sd_notify STATUS=, through the drop-in's NotifyAccess=all) says what wait sees:
// the pod running, the API server unreachable with the container running, the leave.
// Needs root, dockerd, debootstrap and the Kubernetes binaries (skipped with the reason otherwise).
// The lengths are constants (KS_PARTITION_S / KS_LONG_LEAVE_S shorten them for a local run).
import { waitUntil } from "../../sandbox/harness/net.ts";
import type { SwitchNode } from "../../sandbox/harness/switch.ts";
import {
  criContainers,
  featureContainer,
  type FlowEnv,
  missingTools,
  podsOnNode,
  portOwner,
  stepsThroughV2,
  unitState,
  waitPodReady,
} from "../../sandbox/flows/real_switch.ts";
import {
  realSwitchUnavailableReason,
  withRealSwitch,
} from "../../sandbox/flows/real_switch_fixture.ts";

const seconds = (env: string, fallback: number) => {
  const v = Number(Deno.env.get(env));
  return (Number.isFinite(v) && v > 0 ? v : fallback) * 1000;
};
/** How long the API server stays unreachable (the 5 minutes). */
const PARTITION_MS = seconds("KS_PARTITION_S", 300);
/** Container stop/start cycles inside the partition. */
const PARTITION_CYCLES = 3;
/** A short and a long leave of the DaemonSet (the 15 s and 4 minutes). */
const SHORT_LEAVE_MS = 15_000;
const LONG_LEAVE_MS = seconds("KS_LONG_LEAVE_S", 240);
/** After a join, the unit must report the instance within this of the pod turning Ready. */
const JOIN_BOUND_MS = 10_000;
const OPT_IN = "kubesonic.io/telemetry";
const LAUNCHER = "/usr/local/bin/telemetry.sh";

const reason = realSwitchUnavailableReason();

interface Timed {
  code: number;
  ms: number;
  stdout: string;
  stderr: string;
}

/** Runs the installed launcher in the switch as systemd does (root), timed. */
async function launcher(sw: SwitchNode, ...args: string[]): Promise<Timed> {
  const t0 = performance.now();
  const r = await sw.exec([LAUNCHER, ...args]);
  return { ...r, ms: Math.round(performance.now() - t0) };
}

async function timedSystemctl(sw: SwitchNode, ...args: string[]): Promise<Timed> {
  const t0 = performance.now();
  const r = await sw.systemctl(...args);
  return { ...r, ms: Math.round(performance.now() - t0) };
}

/** Journal lines of telemetry.service since `cursorTime` (a `journalctl --since` value). */
/**
 * The unit's journal since `since` once it shows `re` (journald writes the stub's line a moment
 * after the verb returned; on a loaded machine more than a moment), or as it is after 20 s.
 */
async function journalShowing(sw: SwitchNode, since: string, re: RegExp): Promise<string> {
  let journal = "";
  await waitUntil(async () => re.test(journal = await journalSince(sw, since)), 20_000, "", 500)
    .catch(() => {});
  return journal;
}

async function journalSince(sw: SwitchNode, since: string): Promise<string> {
  const r = await sw.exec([
    "journalctl",
    "-u",
    "telemetry",
    "--since",
    since,
    "--no-pager",
    "-o",
    "cat",
  ]);
  return r.stdout;
}

async function switchNow(sw: SwitchNode): Promise<string> {
  return (await sw.exec(["date", "+%Y-%m-%d %H:%M:%S"])).stdout.trim();
}

/** The unit's Status: line (what `ks-stub wait` told systemd through sd_notify STATUS=). */
async function statusText(sw: SwitchNode): Promise<string> {
  return (await sw.systemctl("show", "telemetry", "-p", "StatusText", "--value")).stdout.trim();
}

/** Waits until the unit's Status: line matches `re`; returns it (the last one in the error). */
async function statusShowing(sw: SwitchNode, re: RegExp, ms: number): Promise<string> {
  let text = "";
  try {
    await waitUntil(async () => re.test(text = await statusText(sw)), ms, String(re), 500);
  } catch (e) {
    throw new Error(`${(e as Error).message}; the unit's Status: "${text}"`);
  }
  return text;
}

const RUNNING_STATUS =
  /^pod sonic\/telemetry-\S+ on node \S+: Running, container running( \(pid \d+\))?$/;

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(what);
}

/**
 * Samples the unit every `everyMs` until `signal` aborts: every state seen, and whether its main
 * PID changed.
 */
function sampleUnit(sw: SwitchNode, signal: AbortSignal, everyMs = 1000) {
  const seen = new Map<string, number>();
  const pids = new Set<string>();
  let restarts = new Set<string>();
  const done = (async () => {
    while (!signal.aborted) {
      const u = await unitState(sw, "telemetry").catch(() => undefined);
      if (u) {
        const key = `${u.ActiveState}/${u.SubState}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
        pids.add(u.MainPID);
        restarts = new Set([...restarts, u.NRestarts]);
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    done,
    seen,
    pids,
    get restarts() {
      return restarts;
    },
    summary: () => [...seen].map(([k, n]) => `${k} x${n}`).join(", "),
  };
}

/** Waits until the switch converged on v2: one Ready pod, one running container, the daemon. */
async function converged(env: FlowEnv): Promise<string> {
  const pod = await waitPodReady(env, "v2", 180_000);
  let ids = "";
  await waitUntil(
    async () => {
      ids = await featureContainer(env.sw);
      return ids !== "" && !ids.includes(",");
    },
    60_000,
    "exactly one running telemetry container",
    500,
  );
  await waitUntil(
    async () => (await portOwner(env.sw)) === "kubernetes",
    60_000,
    "the daemon on 50051 from the pod",
    500,
  );
  const state = await env.sw.configDb("HGET", "FEATURE|telemetry", "state");
  check(state === "enabled", `CONFIG_DB FEATURE|telemetry state=${state}`);
  const pods = (await podsOnNode(env)).filter((p) => !p.deleting);
  check(pods.length === 1, `pods on the node: ${JSON.stringify(pods)}`);
  return `pod ${pod.name} Ready, container ${ids.slice(0, 13)}, 50051 from the pod`;
}

Deno.test({
  name: "real switch: systemctl through an API partition, kubelet/containerd stops, leave and join",
  ignore: reason !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await withRealSwitch({ prefix: "ks-switch-partition-" }, async (env) => {
      const sw = env.sw;
      const cluster = env.cluster;
      let failed = "";
      const step = async (name: string, fn: () => Promise<string>) => {
        await t.step({
          name: failed ? `${name} [skipped: ${failed}]` : name,
          ignore: failed !== "",
          async fn() {
            try {
              env.note(await fn());
            } catch (e) {
              failed = `after "${name}" failed`;
              env.note(`telemetry: ${await sw.journal("telemetry", 30)}`);
              throw e;
            }
          },
        });
      };
      for (const flow of stepsThroughV2()) {
        const missing = missingTools(flow);
        if (missing.length) throw new Error(`blocked on ${missing.join(", ")}`);
        await step(flow.name, () => flow.run(env));
      }

      await step(
        "API server reachable: systemctl restart takes the graceful delete",
        async () => {
          await sw.systemctl("reset-failed", "telemetry");
          const before = (await podsOnNode(env)).find((p) => !p.deleting)!;
          const since = await switchNow(sw);
          const r = await timedSystemctl(sw, "restart", "telemetry");
          check(r.code === 0, `systemctl restart: ${r.stderr}`);
          const graceful = /deleted pod; Kubernetes recreates it .*path=api/;
          const journal = await journalShowing(sw, since, graceful);
          check(graceful.test(journal), journal);
          const after = await waitPodReady(env, "v2");
          check(after.uid !== before.uid, "the pod was not replaced");
          const s = await launcher(sw, "status");
          check(s.code === 0, `telemetry.sh status ${s.code}: ${s.stdout}`);
          const line = await statusShowing(sw, RUNNING_STATUS, 30_000);
          return `restart ${r.ms} ms, path=api, new pod ${after.name}; ` +
            `telemetry.sh status 0 in ${s.ms} ms (runtime); Status: "${line}"`;
        },
      );

      await step(
        `API partition of ${PARTITION_MS / 1000} s: status 0, restart through the runtime, ` +
          `${PARTITION_CYCLES} stop/start cycles, the unit active throughout`,
        async () => {
          await sw.systemctl("reset-failed", "telemetry");
          const u0 = await unitState(sw, "telemetry");
          check(u0.ActiveState === "active", `unit ${u0.ActiveState} before the partition`);
          const pod = (await podsOnNode(env)).find((p) => !p.deleting)!;
          const since = await switchNow(sw);
          await sw.apiLink("blackhole");
          const t0 = performance.now();
          const notes: string[] = [];
          try {
            const sys = await timedSystemctl(sw, "status", "telemetry", "--no-pager");
            check(sys.code === 0, `systemctl status ${sys.code} in the partition`);
            const st = await launcher(sw, "status", "--output", "json");
            check(st.code === 0, `telemetry.sh status ${st.code}: ${st.stdout}`);
            notes.push(`status: systemctl 0, stub 0 in ${st.ms} ms`);

            // systemctl restart: ExecStop (runtime path), ExecStartPre start, ExecStart wait.
            const old = await featureContainer(sw);
            const rs = await timedSystemctl(sw, "restart", "telemetry");
            check(rs.code === 0, `systemctl restart in the partition: ${rs.stderr}`);
            const tBack = performance.now();
            let now = "";
            await waitUntil(
              async () => {
                now = await featureContainer(sw);
                return now !== "" && now !== old && (await portOwner(sw)) === "kubernetes";
              },
              90_000,
              "a new telemetry container serving 50051",
              300,
            );
            const viaRuntime = /stopping the container through the runtime.*path=runtime/;
            const journal = await journalShowing(sw, since, viaRuntime);
            check(
              viaRuntime.test(journal),
              journal,
            );
            notes.push(
              `systemctl restart ${rs.ms} ms (path=runtime); daemon back ` +
                `${Math.round(performance.now() - tBack)} ms after it returned`,
            );
            // The restarted wait's first list fails: the Status: line says what it sees instead.
            const down = await statusShowing(
              sw,
              /^API server unreachable since \S+, container running \(pod sonic\/telemetry-\S+, restarts \d+\)$/,
              60_000,
            );
            notes.push(`Status: "${down}"`);

            // From here the unit must stay active with one main process (wait).
            const u1 = await unitState(sw, "telemetry");
            const sampling = new AbortController();
            const samples = sampleUnit(sw, sampling.signal);
            const cycleAt = PARTITION_MS / (PARTITION_CYCLES + 1);
            for (let i = 1; i <= PARTITION_CYCLES; i++) {
              const wakeAt = t0 + i * cycleAt;
              await new Promise((r) => setTimeout(r, Math.max(0, wakeAt - performance.now())));
              const before = await featureContainer(sw);
              const stop = await launcher(sw, "stop");
              const start = await launcher(sw, "start");
              check(
                stop.code === 0 && start.code === 0,
                `cycle ${i}: ${stop.stderr}${start.stderr}`,
              );
              await waitUntil(
                async () => {
                  const c = await featureContainer(sw);
                  return c !== "" && c !== before;
                },
                90_000,
                `cycle ${i}: the kubelet's new container`,
                300,
              );
              notes.push(`cycle ${i}: stop ${stop.ms} ms, start ${start.ms} ms`);
            }
            await new Promise((r) =>
              setTimeout(r, Math.max(0, t0 + PARTITION_MS - performance.now()))
            );
            sampling.abort();
            await samples.done;
            check(
              [...samples.seen.keys()].every((k) => k === "active/running"),
              `the unit left active/running in the partition: ${samples.summary()}`,
            );
            check(
              samples.pids.size === 1 && samples.pids.has(u1.MainPID),
              `the main process (the launcher) was replaced in the partition: main PIDs ${[
                ...samples.pids,
              ]}`,
            );
            check(
              [...samples.restarts].every((n) => n === u1.NRestarts),
              `NRestarts moved: ${[...samples.restarts]}`,
            );
            // An operator's stop + start inside the partition.
            const stopU = await timedSystemctl(sw, "stop", "telemetry");
            const startU = await timedSystemctl(sw, "start", "telemetry");
            check(
              stopU.code === 0 && startU.code === 0,
              `systemctl stop/start: ${startU.stderr}`,
            );
            const u2 = await unitState(sw, "telemetry");
            check(u2.ActiveState === "active", `unit ${u2.ActiveState} after stop/start`);
            check(u2.Result !== "start-limit-hit", "start limit hit");
            notes.push(
              `unit ${samples.summary()} (1 s samples), one main PID, NRestarts ${u1.NRestarts}; ` +
                `systemctl stop ${stopU.ms} ms + start ${startU.ms} ms; Result ${u2.Result}`,
            );
          } finally {
            await sw.apiLink("up");
          }
          const healed = await converged(env);
          const healedStatus = await statusShowing(sw, RUNNING_STATUS, 60_000);
          const after = (await podsOnNode(env)).find((p) => !p.deleting)!;
          check(after.uid === pod.uid, "the pod was replaced during the partition");
          const restarts = after.containers.telemetry?.restarts ?? 0;
          check(restarts >= PARTITION_CYCLES + 1, `container restarts ${restarts}`);
          const journal = await journalSince(sw, since);
          check(!/Start request repeated too quickly/.test(journal), "start limit hit");
          const u = await unitState(sw, "telemetry");
          check(u.ActiveState === "active", `unit ${u.ActiveState} after the heal`);
          return `${notes.join("; ")}; healed: ${healed}, same pod, restartCount ${restarts}; ` +
            `Status: "${healedStatus}"`;
        },
      );

      for (const service of ["kubelet", "containerd"]) {
        await step(`${service} stopped: each verb's exit code and time`, async () => {
          await sw.systemctl("reset-failed", "telemetry");
          const stopped = await sw.systemctl("stop", service);
          check(stopped.code === 0, `systemctl stop ${service}: ${stopped.stderr}`);
          const rows: string[] = [];
          const bounds: Record<string, number> = {
            status: 8000,
            start: 25_000,
            stop: 15_000,
            restart: 40_000,
          };
          try {
            for (const verb of ["status", "start", "stop", "restart"]) {
              const extra = verb === "stop" || verb === "restart" ? ["--timeout", "10s"] : [];
              const r = await launcher(sw, verb, ...extra);
              rows.push(`${verb} ${r.code} in ${r.ms} ms`);
              const want = verb === "status" && service === "containerd" ? 4 : 0;
              check(
                r.code === want,
                `${verb} exit ${r.code} (want ${want}): ${r.stdout}${r.stderr}`,
              );
              check(r.ms <= bounds[verb], `${verb} took ${r.ms} ms`);
            }
            const sys = await sw.systemctl("status", "telemetry", "--no-pager");
            rows.push(`systemctl status ${sys.code}`);
          } finally {
            await sw.systemctl("start", service);
          }
          const healed = await converged(env);
          const u = await unitState(sw, "telemetry");
          check(u.ActiveState === "active", `unit ${u.ActiveState} after ${service} came back`);
          return `${rows.join(", ")}; back: ${healed}`;
        });
      }

      for (const leaveMs of [SHORT_LEAVE_MS, LONG_LEAVE_MS]) {
        await step(
          `leave for ${leaveMs / 1000} s and join: the unit stays active, no start-limit hit, ` +
            `the instance reported within ${JOIN_BOUND_MS / 1000} s of Ready`,
          async () => {
            await sw.systemctl("reset-failed", "telemetry");
            const dropIn = await sw.exec([
              "cat",
              "/etc/systemd/system/telemetry.service.d/auto_restart.conf",
            ]);
            check(
              /Restart=always/.test(dropIn.stdout),
              "featured's Restart=always drop-in missing",
            );
            const u0 = await unitState(sw, "telemetry");
            const since = await switchNow(sw);
            const sampling = new AbortController();
            const samples = sampleUnit(sw, sampling.signal);
            const label = await cluster.kubectl(["label", "node", sw.name, `${OPT_IN}-`]);
            check(label.code === 0, label.stderr);
            const tLeave = performance.now();
            await waitUntil(
              async () => (await podsOnNode(env)).length === 0,
              60_000,
              "the pod gone after the leave",
              300,
            );
            // The leave lasts leaveMs from the pod's going, not from the label's removal: on a
            // loaded machine the pod's termination alone took most of the 15 s, and the stub then
            // saw its replacement within its grace instead of a leave.
            const tGone = performance.now();
            const goneMs = Math.round(tGone - tLeave);
            const out = await launcher(sw, "status");
            check(out.code === 3, `stub status during the leave: ${out.code}`);
            // The Status: line: the pod's replacement expected, then (after wait's grace) the leave.
            const leaving = await statusShowing(
              sw,
              leaveMs > SHORT_LEAVE_MS
                ? /^no telemetry pod on node \S+ since \S+: node not selected by the DaemonSet/
                : /waiting for its replacement|waiting for this node's instance/,
              Math.max(5_000, tGone + leaveMs - performance.now() - 1_000),
            );
            await new Promise((r) =>
              setTimeout(r, Math.max(0, tGone + leaveMs - performance.now()))
            );
            const back = await cluster.kubectl([
              "label",
              "node",
              sw.name,
              `${OPT_IN}=enabled`,
              "--overwrite",
            ]);
            check(back.code === 0, back.stderr);
            const tJoin = performance.now();
            // Watch the pod turn Ready and the unit report it, on a 250 ms period.
            let readyAt = 0;
            let statusAt = 0;
            let unitStatusAt = 0;
            await waitUntil(
              async () => {
                if (!statusAt && (await launcher(sw, "status")).code === 0) {
                  statusAt = performance.now();
                }
                if (!unitStatusAt && RUNNING_STATUS.test(await statusText(sw))) {
                  unitStatusAt = performance.now();
                }
                if (!readyAt) {
                  const pods = (await podsOnNode(env)).filter((p) => !p.deleting);
                  if (pods.length === 1 && pods[0].ready) readyAt = performance.now();
                }
                return readyAt > 0 && statusAt > 0 && unitStatusAt > 0;
              },
              180_000,
              "the pod Ready and the stub reporting it",
              250,
            );
            await new Promise((r) => setTimeout(r, JOIN_BOUND_MS));
            sampling.abort();
            await samples.done;
            const u = await unitState(sw, "telemetry");
            const journal = await journalSince(sw, since);
            check(u.ActiveState === "active", `unit ${u.ActiveState} 10 s after Ready`);
            check(
              statusAt - readyAt <= JOIN_BOUND_MS,
              `reported ${statusAt - readyAt} ms after Ready`,
            );
            check(
              unitStatusAt - readyAt <= JOIN_BOUND_MS,
              `the unit's Status: line running ${unitStatusAt - readyAt} ms after Ready`,
            );
            check(u.NRestarts === u0.NRestarts, `NRestarts ${u0.NRestarts} -> ${u.NRestarts}`);
            check(u.Result !== "start-limit-hit", "start limit hit");
            check(
              !/Start request repeated too quickly/.test(journal),
              "start limit hit (journal)",
            );
            check(/waiting for this node's instance/.test(journal), journal);
            check(/this node's instance is back; following it/.test(journal), journal);
            check(
              [...samples.seen.keys()].every((k) => k === "active/running"),
              `unit states during leave and join: ${samples.summary()}`,
            );
            const healed = await converged(env);
            const ready = Math.round(readyAt - tJoin);
            const lag = Math.round(statusAt - readyAt);
            return `pod gone ${goneMs} ms after the label was removed; stub status 3 during the ` +
              `leave; pod Ready ${ready} ms after the join, stub status 0 ${lag} ms from Ready ` +
              `(negative: before); unit ${samples.summary()}, NRestarts ${u.NRestarts}, ` +
              `Result ${u.Result}; Status: "${leaving}" during the leave, running ` +
              `${Math.round(unitStatusAt - readyAt)} ms from Ready; ${healed}`;
          },
        );
      }

      await step("after everything: one pod, CRI as the API says, unit active", async () => {
        const cri = await criContainers(sw);
        check(cri.telemetry === "CONTAINER_RUNNING", `CRI telemetry ${cri.telemetry}`);
        return await converged(env);
      });
    });
  },
});
