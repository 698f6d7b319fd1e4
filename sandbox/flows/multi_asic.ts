// The design's flows on a 2-ASIC lab switch (startSwitches({ asics: 2 })) for a per-ASIC feature:
// the telemetry example rendered with per-ASIC scope only, so the switch runs `telemetry@0` and
// `telemetry@1` (SONiC's per-namespace unit template, the ASIC id as the launcher's and the
// stub's argument) and, under v2, the DaemonSets `telemetry-asic0` / `telemetry-asic1` beside the
// sidecar-only `telemetry`. Each step acts on one ASIC the way an operator or featured would
// (redis-cli on that namespace's CONFIG_DB, systemctl on that instance, kubectl) and checks that
// ASIC through systemd, the API server and the CRI, and that the other ASIC was left exactly as
// it was (unit MainPID/NRestarts, pod UID, CRI container id, who serves its port).
import { join } from "node:path";
import { runTool } from "../harness/bin.ts";
import type { SwitchNode } from "../harness/switch.ts";
import { waitUntil } from "../harness/net.ts";
import {
  daemonOwner,
  featuredAutoRestart,
  type FeaturedScope,
  featuredSyncScope,
  type FeaturedTarget,
  unitFileState,
} from "./featured.ts";
import {
  type FlowEnv,
  type FlowStep,
  HOST_RUNTIME_INSTALL_MS,
  kubectlOk,
  launcher,
  nativeContainer,
  onStub,
  podsOnNode,
  type RenderVariant,
  renderVersion,
  statusCode,
  unitProcesses,
  unitState,
  waitFor,
  waitPodReady,
} from "./real_switch.ts";

/** ASICs of the lab's multi-ASIC switch. */
export const ASICS = 2;
/** The feature's scope on it: per-ASIC only (FEATURE has_global_scope False, has_per_asic_scope True). */
export const PER_ASIC_SCOPE: FeaturedScope = { global: false, perAsic: true };
/**
 * The daemon port of ASIC N: the lab's ASICs share the switch's network namespace (SONiC runs each
 * in its own, all on 50051), so the native launcher and the rendered pods both use 5006N.
 */
export const asicPort = (asic: number) => 50060 + asic;
/** ks-watchdog's port of ASIC N (ks-render: watchdog.port + 1 + N). */
export const asicWatchdogPort = (asic: number) => 50081 + asic;
/** What featured's sequences act on here. */
export const PER_ASIC_TARGET: FeaturedTarget = {
  feature: "telemetry",
  scope: PER_ASIC_SCOPE,
  ports: Object.fromEntries(
    Array.from({ length: ASICS }, (_, i) => [`telemetry@${i}`, asicPort(i)]),
  ),
};

/**
 * CONFIG_DB seed of the 2-ASIC switch (for startSwitches' initConfig: loaded into the host's and
 * every namespace's CONFIG_DB, where featured keeps the scope flags alike).
 */
export const MULTI_ASIC_INIT_CONFIG =
  'HSET "FEATURE|telemetry" has_global_scope False has_per_asic_scope True\n';

/**
 * The example as a per-ASIC feature: per-ASIC scope, ASIC N's daemon and probe on 5006N, and the
 * pod laid out as SONiC's per-ASIC containers are (docker_image_ctl): `/var/run/redisN` as
 * `/var/run/redis` (the example's mount) and at its own path, so the namespace's
 * database_config.json and its socket `/var/run/redisN/redis.sock` are both there.
 */
export const PER_ASIC_VARIANT: RenderVariant = {
  name: "per-asic",
  edit(spec) {
    spec.scope = { global: false, perAsic: true };
    spec.env = { ...(spec.env ?? {}), TELEMETRY_LISTEN: "127.0.0.1:5006{asic}" };
    spec.watchdog.probes = [{ tcp: "127.0.0.1:5006{asic}" }];
    spec.mounts.push({
      name: "redis-asic",
      hostPath: "/var/run/redis{asic}",
      path: "/var/run/redis{asic}",
      type: "Directory",
      watchdog: true,
    });
  },
  args: ["--asics", String(ASICS)],
};

const rendered = new Map<string, string>();
/** The per-ASIC render of `version` (cached per version and env). */
export async function renderPerAsic(
  env: FlowEnv,
  version: string,
  extra: Record<string, string> = {},
): Promise<string> {
  const key = `${env.dir}:${version}:${JSON.stringify(extra)}`;
  if (!rendered.has(key)) {
    rendered.set(key, await renderVersion(env, version, extra, undefined, PER_ASIC_VARIANT));
  }
  return rendered.get(key)!;
}

/**
 * featured's part at boot on the 2-ASIC switch: its scope sync masks the global
 * `telemetry.service` (no global scope), its auto_restart drop-ins for `telemetry@0/1`.
 */
export async function featuredBoot(sw: SwitchNode): Promise<string> {
  const sync = await featuredSyncScope(sw, "telemetry", PER_ASIC_SCOPE);
  const ar = await featuredAutoRestart(sw, "telemetry", "enabled", PER_ASIC_SCOPE);
  for (const c of [...sync.commands, ...ar.commands]) {
    if (c.code !== 0) throw new Error(`featured at boot: ${c.argv.join(" ")}: ${c.output}`);
  }
  return `featured's scope sync: ${
    sync.commands.map((c) => c.argv.slice(1).join(" ")).join(", ") || "nothing"
  }; auto_restart drop-ins for telemetry@0..${ASICS - 1}`;
}

/** The running CRI container id of ASIC N's feature container (its pod labelled asic=N). */
export async function asicContainerId(sw: SwitchNode, asic: number): Promise<string> {
  const r = await sw.exec([
    "sh",
    "-c",
    `for p in $(crictl pods -q --state ready --label asic=${asic}); do ` +
    `crictl ps -q --state Running --pod "$p" --name '^telemetry$'; done`,
  ]);
  return r.stdout.trim().split("\n").filter(Boolean).join(",");
}

/** Everything that says what ASIC N's instance is right now. */
export interface AsicSnapshot {
  ActiveState: string;
  MainPID: string;
  NRestarts: string;
  /** UID of the ASIC's live pod ("" when none). */
  podUid: string;
  /** Its running CRI feature container id ("" when none). */
  containerId: string;
  /** Who serves the ASIC's daemon port. */
  owner: string;
}

export async function asicSnapshot(env: FlowEnv, asic: number): Promise<AsicSnapshot> {
  const u = await unitState(env.sw, `telemetry@${asic}`);
  const pods = (await podsOnNode(env)).filter((p) => !p.deleting && p.asic === String(asic));
  return {
    ActiveState: u.ActiveState,
    MainPID: u.MainPID,
    NRestarts: u.NRestarts,
    podUid: pods.map((p) => p.uid).join(","),
    containerId: await asicContainerId(env.sw, asic),
    owner: await daemonOwner(env.sw, asicPort(asic)),
  };
}

/** Throws naming every field of ASIC N that changed since `before`. */
export async function assertUntouched(
  env: FlowEnv,
  asic: number,
  before: AsicSnapshot,
): Promise<string> {
  const now = await asicSnapshot(env, asic);
  const changed = (Object.keys(before) as (keyof AsicSnapshot)[])
    .filter((k) => before[k] !== now[k])
    .map((k) => `${k} ${before[k]} -> ${now[k]}`);
  if (changed.length) throw new Error(`asic${asic} was touched: ${changed.join("; ")}`);
  return `asic${asic} untouched (unit MainPID ${now.MainPID}, NRestarts ${now.NRestarts}, ` +
    `pod ${now.podUid.slice(0, 8) || "none"}, container ${
      now.containerId.slice(0, 12) || "none"
    }, ${asicPort(asic)} from ${now.owner})`;
}

/**
 * Waits until ASIC N runs a new instance since `before`: a new pod (the stub deleted the old one
 * through the API server) or, when the stub found the API server unresponsive (its 3 s probe; seen
 * at load 30), the same pod with its feature container restarted in place (the runtime path).
 * Returns how it was replaced.
 */
async function waitReplaced(env: FlowEnv, asic: number, before: AsicSnapshot): Promise<string> {
  const pod = await waitPodReady(env, "v2", 240_000, asic);
  const id = await waitFor(
    `a new running feature container of asic${asic}`,
    () => asicContainerId(env.sw, asic),
    (id) => id !== "" && !id.includes(",") && id !== before.containerId,
    120_000,
  );
  return pod.uid !== before.podUid
    ? `new pod ${pod.name}`
    : `pod ${pod.name} kept, its container restarted (${id.slice(0, 12)}; the stub's runtime path)`;
}

/** `/proc/<MainPID>/cmdline` of a unit, words space-joined. */
async function mainCommand(sw: SwitchNode, unit: string): Promise<string> {
  const u = await unitState(sw, unit);
  if (u.MainPID === "0") return "";
  const r = await sw.exec(["cat", `/proc/${u.MainPID}/cmdline`]);
  return r.stdout.split("\0").filter(Boolean).join(" ");
}

const other = (asic: number) => (asic + 1) % ASICS;
const asics = () => Array.from({ length: ASICS }, (_, i) => i);

/** HSET FEATURE|telemetry state in namespace asicN's CONFIG_DB (undefined: the host's). */
async function setAsicFeature(env: FlowEnv, asic: number | undefined, state: string) {
  await env.sw.redisCli(asic, 4, "HSET", "FEATURE|telemetry", "state", state);
}

/** What the kubelet's readiness probe gets from ASIC N's watchdog. */
async function watchdogReady(
  sw: SwitchNode,
  asic: number,
): Promise<{ http: string; body: string }> {
  const wd = await sw.exec([
    "curl",
    "-s",
    "-w",
    "\\n%{http_code}",
    `http://127.0.0.1:${asicWatchdogPort(asic)}/readyz`,
  ]);
  const cut = wd.stdout.lastIndexOf("\n");
  return { http: wd.stdout.slice(cut + 1), body: wd.stdout.slice(0, cut) };
}

/** Rolls the node to `stage` of `out` (apply, then delete the node's pods: OnDelete). */
async function rollTo(env: FlowEnv, out: string, stage: "v1" | "v2"): Promise<void> {
  await kubectlOk(env, ["apply", "-f", join(out, "common"), "-f", join(out, stage)]);
  for (const p of await podsOnNode(env)) {
    if (!p.deleting) {
      await kubectlOk(env, ["delete", "pod", "-n", "sonic", p.name, "--wait=false"]);
    }
  }
}

/** The per-ASIC flows in order; each starts from the state the previous one left. */
export const MULTI_ASIC_STEPS: FlowStep[] = [
  {
    part: "layout",
    name: "2-ASIC layout: database_global.json + a database per namespace, asic.conf NUM_ASIC=2, " +
      "telemetry@0/1 running the native telemetry0/1",
    tools: [],
    async run(env) {
      const sw = env.sw;
      const global = JSON.parse(
        (await sw.exec(["cat", "/var/run/redis/sonic-db/database_global.json"])).stdout,
      ) as { INCLUDES: { namespace?: string; include: string }[] };
      const want = [
        { include: "../../redis/sonic-db/database_config.json" },
        ...asics().map((i) => ({
          namespace: `asic${i}`,
          include: `../../redis${i}/sonic-db/database_config.json`,
        })),
      ];
      if (JSON.stringify(global.INCLUDES) !== JSON.stringify(want)) {
        throw new Error(`database_global.json INCLUDES: ${JSON.stringify(global.INCLUDES)}`);
      }
      const numAsic = (await sw.exec(["/usr/local/sbin/ks-num-asic"])).stdout.trim();
      if (numAsic !== String(ASICS)) throw new Error(`NUM_ASIC read as ${numAsic}`);
      // One redis-server per namespace, each with its own CONFIG_DB.
      const ports = new Set<string>();
      for (const asic of [undefined, ...asics()]) {
        ports.add((await sw.redisCli(asic, 4, "CONFIG", "GET", "port")).split("\n")[1]);
        const scope = await sw.redisCli(asic, 4, "HGET", "FEATURE|telemetry", "has_per_asic_scope");
        if (scope !== "True") {
          throw new Error(`asic${asic ?? " host"}: has_per_asic_scope ${scope}`);
        }
      }
      if (ports.size !== ASICS + 1) throw new Error(`databases share ports: ${[...ports]}`);
      const g = await unitFileState(sw, "telemetry.service");
      if (g !== "masked") throw new Error(`the global telemetry.service is ${g}, expected masked`);
      const seen: string[] = [];
      for (const asic of asics()) {
        const unit = `telemetry@${asic}`;
        await waitFor(
          `${unit} active`,
          () => unitState(sw, unit),
          (u) => u.ActiveState === "active",
        );
        await waitFor(
          `native telemetry${asic} running`,
          () => nativeContainer(sw, `telemetry${asic}`),
          (s) => s === "running",
        );
        const owner = await waitFor(
          `ASIC ${asic}'s daemon on ${asicPort(asic)}`,
          () => daemonOwner(sw, asicPort(asic)),
          (o) => o !== "none",
        );
        if (owner !== "docker") throw new Error(`${asicPort(asic)} is served from ${owner}`);
        // systemd's forked child is "(metry.sh)" until it execs the launcher: wait for the exec.
        const cmd = await waitFor(
          `${unit}'s main process docker wait telemetry${asic}`,
          () => mainCommand(sw, unit),
          (c) => c.includes(`docker wait telemetry${asic}`),
        );
        seen.push(`${unit}: "${cmd}"`);
      }
      return `INCLUDES asic0..asic${ASICS - 1}, ${ports.size} databases (ports ${[...ports]}), ` +
        `NUM_ASIC ${numAsic}, telemetry.service masked; ${seen.join("; ")}`;
    },
  },
  {
    part: "5.1",
    name: "5.1 v1 (per-ASIC render) rolled out: the sidecar runs, telemetry0/1 keep serving",
    tools: ["ks-render", "ks-patcher"],
    async run(env) {
      await kubectlOk(env, [
        "label",
        "node",
        env.sw.name,
        "kubesonic.io/telemetry=enabled",
        "--overwrite",
      ]);
      await rollTo(env, await renderPerAsic(env, "v1"), "v1");
      const pod = await waitPodReady(env, "v1", 240_000, null);
      for (const asic of asics()) {
        const native = await nativeContainer(env.sw, `telemetry${asic}`);
        if (native !== "running") throw new Error(`telemetry${asic} is ${native} under v1`);
      }
      if ((await launcher(env.sw)).includes("ks-stub")) throw new Error("v1 installed the stub");
      return `pod ${pod.name} Ready (sidecar only); telemetry0/1 running natively`;
    },
  },
  {
    part: "5.1",
    name:
      "5.1 v2 rolled out: telemetry-asic0/1 pods Ready, telemetry@0/1 run ks-stub with their ASIC id",
    tools: ["ks-render", "ks-patcher", "ks-entrypoint", "ks-watchdog", "ks-stub"],
    async run(env) {
      const t0 = performance.now();
      await rollTo(env, await renderPerAsic(env, "v2"), "v2");
      await waitPodReady(env, "v2", 240_000, null);
      const pods = [];
      for (const asic of asics()) pods.push(await waitPodReady(env, "v2", 240_000, asic));
      const ready = performance.now() - t0;
      await waitFor(
        "the stub as /usr/local/bin/telemetry.sh",
        () => launcher(env.sw),
        (t) => t.includes("ks-stub"),
        HOST_RUNTIME_INSTALL_MS,
      );
      const notes: string[] = [];
      for (const asic of asics()) {
        const unit = `telemetry@${asic}`;
        await waitFor(
          `native telemetry${asic} stopped`,
          () => nativeContainer(env.sw, `telemetry${asic}`),
          (s) => s !== "running",
        );
        await waitFor(
          `${unit} active on the stub`,
          async () => {
            const procs = await unitProcesses(env.sw, unit);
            return `${onStub(procs) ? "on the stub" : "not"}: ${procs.join(" | ")}`;
          },
          (c) => c.startsWith("on the stub") && c.includes(`wait ${asic}`),
        );
        const owner = await waitFor(
          `ASIC ${asic}'s daemon on ${asicPort(asic)} from the pod`,
          () => daemonOwner(env.sw, asicPort(asic)),
          (o) => o === "kubernetes",
        );
        const id = await asicContainerId(env.sw, asic);
        if (!id) throw new Error(`no running CRI feature container for asic${asic}`);
        // The entrypoint names the namespace it follows in every line: telemetry@asicN.
        const logs = await env.sw.crictl("logs", id.split(",")[0]);
        if (!(logs.stdout + logs.stderr).includes(`telemetry@asic${asic}:`)) {
          throw new Error(`asic${asic}'s entrypoint log does not name its namespace`);
        }
        if ((await statusCode(env.sw, unit)) !== 0) throw new Error(`status ${unit} != 0`);
        notes.push(
          `${unit}: ks-stub … wait ${asic}, CRI ${id.slice(0, 12)}, ${asicPort(asic)} ${owner}`,
        );
      }
      return `pods ${pods.map((p) => p.name).join(", ")} Ready ${
        Math.round(ready)
      } ms after apply; ` +
        notes.join("; ");
    },
  },
  {
    part: "5.3",
    name:
      "5.3 on asic0: disabled in asic0's CONFIG_DB + systemctl stop telemetry@0 -> asic0's instance " +
      "replaced and idle; asic1 untouched",
    tools: ["ks-stub", "ks-entrypoint", "ks-watchdog"],
    async run(env) {
      const [a, b] = [0, other(0)];
      const keep = await asicSnapshot(env, b);
      const before = await asicSnapshot(env, a);
      await setAsicFeature(env, a, "disabled");
      const stop = await env.sw.systemctl("stop", `telemetry@${a}`);
      if (stop.code !== 0) throw new Error(`systemctl stop telemetry@${a}: ${stop.stderr.trim()}`);
      const code = await statusCode(env.sw, `telemetry@${a}`);
      if (code !== 3) throw new Error(`status telemetry@${a} after stop = ${code}, expected 3`);
      const how = await waitReplaced(env, a, before);
      await waitFor(
        `no daemon on ${asicPort(a)}`,
        () => daemonOwner(env.sw, asicPort(a)),
        (o) => o === "none",
        30_000,
      );
      const wd = await watchdogReady(env.sw, a);
      if (wd.http !== "200" || !/disabled/.test(wd.body)) {
        throw new Error(`asic${a}'s watchdog /readyz while disabled: HTTP ${wd.http} ${wd.body}`);
      }
      return `telemetry@${a} status 3 after stop; ${how}, Ready while idle ` +
        `(watchdog /readyz 200, disabled); ${await assertUntouched(env, b, keep)}`;
    },
  },
  {
    part: "5.2",
    name:
      "5.2 on asic0: enabled in asic0's CONFIG_DB + systemctl restart telemetry@0 -> the daemon " +
      "runs; asic1 untouched",
    tools: ["ks-stub", "ks-entrypoint", "ks-watchdog"],
    async run(env) {
      const [a, b] = [0, other(0)];
      const keep = await asicSnapshot(env, b);
      await setAsicFeature(env, a, "enabled");
      const t0 = performance.now();
      const r = await env.sw.systemctl("restart", `telemetry@${a}`);
      if (r.code !== 0) throw new Error(`systemctl restart telemetry@${a}: ${r.stderr.trim()}`);
      await waitFor(
        `ASIC ${a}'s daemon on ${asicPort(a)} from the pod`,
        () => daemonOwner(env.sw, asicPort(a)),
        (o) => o === "kubernetes",
        120_000,
      );
      const took = performance.now() - t0;
      await waitPodReady(env, "v2", 240_000, a);
      if ((await statusCode(env.sw, `telemetry@${a}`)) !== 0) {
        throw new Error(`status telemetry@${a} != 0`);
      }
      return `asic${a}'s daemon serving ${Math.round(took)} ms after restart; ` +
        await assertUntouched(env, b, keep);
    },
  },
  {
    part: "namespace",
    name: "each instance follows its own namespace's CONFIG_DB: host's FEATURE disabled, asic1's " +
      "enabled, restart telemetry@1 -> asic1 serves; asic0 untouched",
    tools: ["ks-stub", "ks-entrypoint", "ks-watchdog"],
    async run(env) {
      const [a, b] = [1, other(1)];
      const keep = await asicSnapshot(env, b);
      const before = await asicSnapshot(env, a);
      await setAsicFeature(env, undefined, "disabled");
      try {
        const r = await env.sw.systemctl("restart", `telemetry@${a}`);
        if (r.code !== 0) throw new Error(`systemctl restart telemetry@${a}: ${r.stderr.trim()}`);
        const how = await waitReplaced(env, a, before);
        await waitFor(
          `ASIC ${a}'s daemon on ${asicPort(a)} from the new pod`,
          () => daemonOwner(env.sw, asicPort(a)),
          (o) => o === "kubernetes",
          120_000,
        );
        const wd = await watchdogReady(env.sw, a);
        if (wd.http !== "200" || /disabled/.test(wd.body)) {
          throw new Error(`asic${a}'s watchdog answers as if disabled: HTTP ${wd.http} ${wd.body}`);
        }
        return `host CONFIG_DB disabled, asic${a}'s enabled: ${how}, serving ` +
          `${asicPort(a)}; ${await assertUntouched(env, b, keep)}`;
      } finally {
        await setAsicFeature(env, undefined, "enabled");
      }
    },
  },
  {
    part: "5.4",
    name: "5.4 ks-rollout of a v3 on telemetry-asic0 whose watchdog fails: rolled back to v2; " +
      "asic1 untouched",
    tools: ["ks-render", "ks-watchdog", "ks-rollout"],
    async run(env) {
      const [a, b] = [0, other(0)];
      const keep = await asicSnapshot(env, b);
      // v3's daemon listens on 5007N: its watchdog's TCP probe of 5006N fails.
      const out = await renderPerAsic(env, "v3", { TELEMETRY_LISTEN: "127.0.0.1:5007{asic}" });
      await kubectlOk(env, ["apply", "-f", join(out, "common")]);
      const r = await runTool("ks-rollout", [
        `telemetry-asic${a}`,
        "--to",
        join(out, "v2", "30-daemonset.yaml"),
        "--waves",
        "100%",
        "--failure-budget",
        "0",
        "--bake",
        "0s",
        "--ready-timeout",
        "60s",
        "--kubeconfig",
        env.cluster.kubeconfigPath,
      ]);
      if (r.code !== 4) {
        const tail = r.stderr.trim().split("\n").slice(-4).join(" | ");
        throw new Error(`ks-rollout exit ${r.code}, expected 4 (rolled back): ${tail}`);
      }
      const image = await kubectlOk(env, [
        "get",
        "daemonset",
        `telemetry-asic${a}`,
        "-n",
        "sonic",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
      ]);
      if (image !== "kubesonic/telemetry:v2") throw new Error(`template after rollback: ${image}`);
      const pod = await waitPodReady(env, "v2", 240_000, a);
      await waitFor(
        `ASIC ${a}'s daemon on ${asicPort(a)}`,
        () => daemonOwner(env.sw, asicPort(a)),
        (o) => o === "kubernetes",
        120_000,
      );
      return `ks-rollout exit 4 (v3 not Ready, rolled back); template ${image}; pod ${pod.name} ` +
        `Ready; ${await assertUntouched(env, b, keep)}`;
    },
  },
  {
    part: "5.4",
    name: "5.4 v2 -> v0: the per-ASIC DaemonSets removed, v1 restores the launcher, telemetry0/1 " +
      "run natively again",
    tools: ["ks-render", "ks-patcher"],
    async run(env) {
      // The per-ASIC instances go first: the v1 sidecar's restart of telemetry@N must not start
      // the native container while the pod still holds the ASIC's port.
      await kubectlOk(env, [
        "delete",
        "daemonset",
        "-n",
        "sonic",
        ...asics().map((i) => `telemetry-asic${i}`),
        "--wait=false",
      ]);
      await waitUntil(
        async () => (await podsOnNode(env)).every((p) => p.asic === undefined),
        240_000,
        "the per-ASIC pods gone",
        500,
      );
      await rollTo(env, await renderPerAsic(env, "v1"), "v1");
      await waitPodReady(env, "v1", 240_000, null);
      await waitFor(
        "the original launcher back",
        () => launcher(env.sw),
        (t) => t.includes("/usr/bin/$SERVICE.sh"),
      );
      const notes: string[] = [];
      for (const asic of asics()) {
        const unit = `telemetry@${asic}`;
        await waitFor(
          `native telemetry${asic} running`,
          () => nativeContainer(env.sw, `telemetry${asic}`),
          (s) => s === "running",
          120_000,
        );
        const cmd = await waitFor(
          `${unit} on the native launcher`,
          () => mainCommand(env.sw, unit),
          (c) => c.includes(`docker wait telemetry${asic}`),
          120_000,
        );
        const owner = await waitFor(
          `ASIC ${asic}'s daemon on ${asicPort(asic)} from docker`,
          () => daemonOwner(env.sw, asicPort(asic)),
          (o) => o === "docker",
          120_000,
        );
        notes.push(`${unit}: "${cmd}", ${asicPort(asic)} from ${owner}`);
      }
      return `launcher restored; ${notes.join("; ")}`;
    },
  },
];
