// The design's flows on a real lab switch, as an ordered list of steps shared by the
// end-to-end test and the lab (lab/scenarios/90_real_switch.ts).
// Every step acts the way an operator or a SONiC daemon would (redis-cli, systemctl, kubectl) and
// checks the result through systemd, the API server and the container runtime of the switch.
// A step whose tool has not landed yet says exactly which one it waits for.
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { runTool } from "../harness/bin.ts";
import { waitUntil } from "../harness/net.ts";
import { daemonOwner } from "./featured.ts";
import type { SwitchClusterRef, SwitchNode } from "../harness/switch.ts";

const REPO = new URL("../../", import.meta.url).pathname;
/** The telemetry example's feature spec, the one every real-switch flow renders. */
export const EXAMPLE_SPEC = join(REPO, "examples", "telemetry", "feature.yaml");

/** What the flows run against. */
export interface FlowEnv {
  cluster: SwitchClusterRef;
  sw: SwitchNode;
  /** The lab's other switches (not labelled for the feature): they must stay untouched. */
  others?: SwitchNode[];
  /** Scratch directory for rendered manifests. */
  dir: string;
  /** Narration (the lab's timeline note, or the test's log). */
  note(text: string): void;
}

/** One step of the flows. */
export interface FlowStep {
  /** Which part of the design it proves ("v0", "5.1", …, "oom", "faults"). */
  part: string;
  name: string;
  /** The bundled tools it runs (bin/<tool>.ts must exist). */
  tools: string[];
  run(env: FlowEnv): Promise<string>;
}

/** The tools of `step` that are not in bin/ yet (empty when it can run). */
export function missingTools(step: FlowStep): string[] {
  return step.tools.filter((t) => {
    try {
      return !Deno.statSync(join(REPO, "bin", `${t}.ts`)).isFile;
    } catch {
      return true;
    }
  });
}

// ---- observation helpers ----------------------------------------------------------------------

/** systemd's view of a unit: ActiveState, SubState, MainPID, ExecMainStatus, NRestarts. */
export async function unitState(sw: SwitchNode, unit: string): Promise<Record<string, string>> {
  const r = await sw.systemctl(
    "show",
    unit,
    "-p",
    "ActiveState,SubState,MainPID,ExecMainStatus,NRestarts,Result",
  );
  return Object.fromEntries(
    r.stdout.trim().split("\n").map((
      l,
    ) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
}

/** `systemctl status`'s exit code (0 active, 3 inactive/failed). */
export async function statusCode(sw: SwitchNode, unit: string): Promise<number> {
  return (await sw.systemctl("status", unit, "--no-pager")).code;
}

export interface PodView {
  name: string;
  uid: string;
  stage: string;
  /** The `asic` label of a per-ASIC instance's pod ("0"), undefined for the others. */
  asic?: string;
  ready: boolean;
  deleting: boolean;
  containers: Record<string, {
    ready: boolean;
    restarts: number;
    running: boolean;
    lastExit?: number;
    lastReason?: string;
  }>;
}

/** The feature's pods on the switch's node, as the API server reports them. */
export async function podsOnNode(env: FlowEnv, feature = "telemetry"): Promise<PodView[]> {
  const r = await env.cluster.kubectl([
    "get",
    "pods",
    "-n",
    "sonic",
    "-l",
    `app=${feature}`,
    "--field-selector",
    `spec.nodeName=${env.sw.name}`,
    "-o",
    "json",
  ]);
  if (r.code !== 0) throw new Error(`kubectl get pods: ${r.stderr.trim()}`);
  // deno-lint-ignore no-explicit-any
  return (JSON.parse(r.stdout).items as any[]).map((p) => ({
    name: p.metadata.name,
    uid: p.metadata.uid,
    stage: p.metadata.labels?.["kubesonic.io/stage"] ?? "",
    asic: p.metadata.labels?.asic,
    deleting: Boolean(p.metadata.deletionTimestamp),
    // deno-lint-ignore no-explicit-any
    ready: (p.status?.conditions ?? []).some((c: any) => c.type === "Ready" && c.status === "True"),
    containers: Object.fromEntries(
      // deno-lint-ignore no-explicit-any
      (p.status?.containerStatuses ?? []).map((c: any) => [c.name, {
        ready: c.ready,
        restarts: c.restartCount,
        running: Boolean(c.state?.running),
        lastExit: c.lastState?.terminated?.exitCode,
        lastReason: c.lastState?.terminated?.reason,
      }]),
    ),
  }));
}

/**
 * Waits until exactly one live pod of `stage` runs on the node and is Ready; returns it. `asic`
 * narrows the pods looked at: a number = that ASIC's instance (label `asic`), null = the pods of
 * no ASIC (the `<feature>` DaemonSet's), undefined = all of the feature's pods.
 */
// 240 s by default: at load 40 on two cores the first v2 pod (image unpack, three containers, the
// watchdog's first probes) was seen taking more than 120 s to turn Ready.
export async function waitPodReady(
  env: FlowEnv,
  stage: string,
  ms = 240_000,
  asic?: number | null,
): Promise<PodView> {
  let last: PodView[] = [];
  const mine = (p: PodView) =>
    asic === undefined || (asic === null ? p.asic === undefined : p.asic === String(asic));
  const which = asic === undefined ? "" : asic === null ? " (no ASIC)" : ` (asic${asic})`;
  try {
    await waitUntil(
      async () => {
        last = (await podsOnNode(env)).filter((p) => !p.deleting && mine(p));
        return last.length === 1 && last[0].stage === stage && last[0].ready;
      },
      ms,
      `a Ready ${stage} pod${which} on ${env.sw.name}`,
      500,
    );
  } catch (e) {
    throw new Error(`${(e as Error).message}; pods: ${JSON.stringify(last)}`);
  }
  return last[0];
}

/** Containers the switch's containerd runs for the kubelet (crictl ps), by name -> state. */
export async function criContainers(sw: SwitchNode): Promise<Record<string, string>> {
  const r = await sw.crictl("ps", "-a", "-o", "json");
  if (r.code !== 0) throw new Error(`crictl ps: ${r.stderr.trim()}`);
  const out: Record<string, string> = {};
  // deno-lint-ignore no-explicit-any
  for (const c of JSON.parse(r.stdout).containers as any[]) {
    const name = c.metadata.name as string;
    // The newest attempt wins.
    if (!out[name] || c.state === "CONTAINER_RUNNING") out[name] = c.state;
  }
  return out;
}

/** State of the native Docker container `name` on the switch ("absent" when there is none). */
export async function nativeContainer(sw: SwitchNode, name = "telemetry"): Promise<string> {
  const r = await sw.exec(["docker", "inspect", "-f", "{{.State.Status}}", name]);
  return r.code === 0 ? r.stdout.trim() : "absent";
}

/** Who serves 127.0.0.1:`port` on the switch ("kubernetes", "docker", "none"; see daemonOwner). */
export function portOwner(sw: SwitchNode, port = 50051): Promise<string> {
  return daemonOwner(sw, port);
}

/** Polls `probe` until `ok`; throws naming `what` and the last value seen. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T>,
  ok: (v: T) => boolean,
  ms = 60_000,
): Promise<T> {
  let last: T | undefined;
  try {
    await waitUntil(async () => ok(last = await probe()), ms, what, 300);
  } catch (e) {
    throw new Error(`${(e as Error).message} (last seen: ${JSON.stringify(last)})`);
  }
  return last as T;
}

// ---- acting helpers ---------------------------------------------------------------------------

/** A variant of the example spec: its name (file names), the edit, extra ks-render arguments. */
export interface RenderVariant {
  name: string;
  // deno-lint-ignore no-explicit-any
  edit(spec: any): void;
  args?: string[];
}

/**
 * Renders the telemetry example for version `version` (image `kubesonic/telemetry:<version>` for
 * every container, `--profile lab`) with extra feature env, optionally as `variant`; returns the
 * output dir.
 */
export async function renderVersion(
  env: FlowEnv,
  version: string,
  extraEnv: Record<string, string> = {},
  variant?: RenderVariant,
): Promise<string> {
  // deno-lint-ignore no-explicit-any
  const spec = parse(await Deno.readTextFile(EXAMPLE_SPEC)) as any;
  const image = `kubesonic/telemetry:${version}`;
  spec.images = { feature: image, watchdog: image, sidecar: image };
  variant?.edit(spec);
  spec.env = { ...(spec.env ?? {}), ...extraEnv };
  const tag = variant ? `${variant.name}-${version}` : version;
  const specPath = join(env.dir, `telemetry-${tag}.yaml`);
  await Deno.writeTextFile(specPath, stringify(spec));
  const out = join(env.dir, `render-${tag}`);
  const r = await runTool("ks-render", [
    specPath,
    "--profile",
    "lab",
    ...(variant?.args ?? []),
    "-o",
    out,
  ]);
  if (r.code !== 0) throw new Error(`ks-render ${version}: ${r.stderr.trim()}`);
  return out;
}

/** `kubectl <args>`'s stdout; throws with its stderr when it fails. */
export async function kubectlOk(env: FlowEnv, args: string[]): Promise<string> {
  const r = await env.cluster.kubectl(args);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${r.stderr.trim()}`);
  return r.stdout;
}

/**
 * Rolls the node to the rendered `stage` (v1 or v2) of `out`: applies common/ and the DaemonSet,
 * then (OnDelete strategy) deletes the node's old pod so the new template takes over.
 */
export async function rollTo(env: FlowEnv, out: string, stage: "v1" | "v2"): Promise<void> {
  await kubectlOk(env, ["apply", "-f", join(out, "common"), "-f", join(out, stage)]);
  for (const p of await podsOnNode(env)) {
    if (!p.deleting) {
      await kubectlOk(env, ["delete", "pod", "-n", "sonic", p.name, "--wait=false"]);
    }
  }
}

async function setFeature(env: FlowEnv, state: string): Promise<void> {
  await env.sw.configDb("HSET", "FEATURE|telemetry", "state", state);
}

/** The unit launcher /usr/local/bin/telemetry.sh as it is on the switch now. */
export async function launcher(sw: SwitchNode): Promise<string> {
  return (await sw.exec(["cat", "/usr/local/bin/telemetry.sh"])).stdout;
}

// ---- the flows --------------------------------------------------------------------------------

const rendered = new Map<string, string>();
async function render(env: FlowEnv, v: string, extra: Record<string, string> = {}) {
  const key = `${v}:${JSON.stringify(extra)}`;
  if (!rendered.has(key)) rendered.set(key, await renderVersion(env, v, extra));
  return rendered.get(key)!;
}

/** The flows in order; each step starts from the state the previous one left. */
export const FLOW_STEPS: FlowStep[] = [
  {
    part: "v0",
    name: "native v0: telemetry.service runs the Docker container under systemd",
    tools: [],
    async run(env) {
      const u = await waitFor(
        "telemetry.service active",
        () => unitState(env.sw, "telemetry"),
        (u) => u.ActiveState === "active",
      );
      const native = await nativeContainer(env.sw);
      if (native !== "running") throw new Error(`native container is ${native}`);
      const owner = await waitFor(
        "the daemon on 50051",
        () => portOwner(env.sw),
        (o) => o !== "none",
      );
      if (owner !== "docker") throw new Error(`50051 is served from ${owner}, expected docker`);
      // monit runs SONiC's checks (container_checker, the telemetry memory check).
      const monit = await waitFor(
        "monit running SONiC's checks",
        () => env.sw.exec(["monit", "summary"]),
        (r) => r.code === 0 && r.stdout.includes("container_checker"),
        30_000,
      );
      const checks = monit.stdout.split("\n").filter((l) => /container_/.test(l)).length;
      return `unit ${u.ActiveState}/${u.SubState}, docker container running, 50051 served by it; ` +
        `monit runs ${checks} SONiC checks`;
    },
  },
  {
    part: "5.1",
    name: "5.1 v1 rolled out: the sidecar runs, the native container keeps serving",
    tools: ["ks-render", "ks-patcher"],
    async run(env) {
      await kubectlOk(env, [
        "label",
        "node",
        env.sw.name,
        "kubesonic.io/telemetry=enabled",
        "--overwrite",
      ]);
      await rollTo(env, await render(env, "v1"), "v1");
      const pod = await waitPodReady(env, "v1");
      const native = await nativeContainer(env.sw);
      if (native !== "running") throw new Error(`native container is ${native} under v1`);
      if ((await launcher(env.sw)).includes("ks-stub")) throw new Error("v1 installed the stub");
      return `pod ${pod.name} Ready (sidecar only), native container running`;
    },
  },
  {
    part: "5.1",
    name: "5.1 v2 rolled out: the stub is installed, telemetry.service is backed by the pod",
    tools: ["ks-render", "ks-patcher", "ks-entrypoint", "ks-watchdog", "ks-stub"],
    async run(env) {
      const t0 = performance.now();
      await rollTo(env, await render(env, "v2"), "v2");
      const pod = await waitPodReady(env, "v2");
      const ready = performance.now() - t0;
      await waitFor(
        "the stub as /usr/local/bin/telemetry.sh",
        () => launcher(env.sw),
        (t) => t.includes("ks-stub"),
      );
      await waitFor(
        "native container stopped",
        () => nativeContainer(env.sw),
        (s) => s !== "running",
      );
      // systemd's forked child is "(metry.sh)" until it execs the launcher, which execs ks-stub:
      // under load that takes a moment, so wait for the main process to be the stub.
      await waitFor(
        "telemetry.service active, its main process ks-stub",
        async () => {
          const u = await unitState(env.sw, "telemetry");
          const running = u.ActiveState === "active" && u.SubState === "running";
          const cmd = running
            ? (await env.sw.exec(["cat", `/proc/${u.MainPID}/cmdline`])).stdout
            : "";
          return `${u.ActiveState}/${u.SubState} main process ${cmd.replaceAll("\0", " ")}`;
        },
        (s) => s.startsWith("active/running") && s.includes("ks-stub"),
      );
      const cri = await criContainers(env.sw);
      for (const c of ["telemetry", "telemetry-watchdog", "telemetry-sidecar"]) {
        if (cri[c] !== "CONTAINER_RUNNING") throw new Error(`CRI container ${c} is ${cri[c]}`);
      }
      const owner = await waitFor(
        "the daemon on 50051",
        () => portOwner(env.sw),
        (o) => o !== "none",
      );
      if (owner !== "kubernetes") throw new Error(`50051 is served from ${owner}`);
      if ((await statusCode(env.sw, "telemetry")) !== 0) throw new Error("systemctl status != 0");
      return `pod ${pod.name} Ready ${Math.round(ready)} ms after apply; unit active on ks-stub; ` +
        `CRI: 3 containers running; 50051 served from the pod`;
    },
  },
  {
    part: "5.3",
    name: "5.3 disable after rollout: the stub's stop leaves an idle, Ready container",
    tools: ["ks-stub", "ks-entrypoint", "ks-watchdog"],
    async run(env) {
      const before = (await podsOnNode(env))[0];
      await setFeature(env, "disabled");
      // featured's disable: stop (and mask) the unit; the stub's stop deletes the pod.
      const stop = await env.sw.systemctl("stop", "telemetry");
      if (stop.code !== 0) throw new Error(`systemctl stop: ${stop.stderr.trim()}`);
      const code = await statusCode(env.sw, "telemetry");
      if (code !== 3) throw new Error(`systemctl status after stop = ${code}, expected 3`);
      const pod = await waitPodReady(env, "v2");
      if (pod.uid === before?.uid) throw new Error("the pod was not replaced by the stop");
      const owner = await waitFor(
        "no daemon on 50051",
        () => portOwner(env.sw),
        (o) => o === "none",
        20_000,
      );
      // What the kubelet's readiness probe gets from the watchdog while the feature is off.
      const wd = await env.sw.exec([
        "curl",
        "-s",
        "-w",
        "\\n%{http_code}",
        "http://127.0.0.1:50080/readyz",
      ]);
      const [body, http] = [
        wd.stdout.slice(0, wd.stdout.lastIndexOf("\n")),
        wd.stdout.split("\n").pop(),
      ];
      if (http !== "200" || !/disabled/.test(body)) {
        throw new Error(`watchdog /readyz while disabled: HTTP ${http} ${body}`);
      }
      return `status 3 after stop; new pod ${pod.name} Ready while idle (watchdog /readyz 200, ` +
        `feature disabled); 50051 ${owner}`;
    },
  },
  {
    part: "5.2",
    name: "5.2 disabled feature enabled: HSET enabled + systemctl restart -> the daemon runs",
    tools: ["ks-stub", "ks-entrypoint", "ks-watchdog"],
    async run(env) {
      await setFeature(env, "enabled");
      const t0 = performance.now();
      const r = await env.sw.systemctl("restart", "telemetry");
      if (r.code !== 0) throw new Error(`systemctl restart: ${r.stderr.trim()}`);
      const owner = await waitFor(
        "the daemon on 50051",
        () => portOwner(env.sw),
        (o) => o === "kubernetes",
      );
      const took = performance.now() - t0;
      await waitPodReady(env, "v2");
      const code = await statusCode(env.sw, "telemetry");
      if (code !== 0) throw new Error(`systemctl status = ${code}`);
      return `daemon serving from ${owner} ${Math.round(took)} ms after restart; status 0`;
    },
  },
  {
    part: "oom",
    name: "resource control: past its limit the daemon is OOM-killed (137), restarted with " +
      "back-off; ks-memory-checker and ks-container-checker report it with exit 3",
    tools: ["ks-entrypoint", "ks-watchdog", "ks-memory-checker", "ks-container-checker"],
    async run(env) {
      const memCheck = () => env.sw.exec(["ks-memory-checker", "telemetry", String(100 << 20)]);
      const ctrCheck = () => env.sw.exec(["ks-container-checker"]);
      // A v2 whose daemon leaks: the example daemon grows towards 1000 MiB at 40 MiB/s, past the
      // rendered 400Mi limit; after its first restart it grows again at once.
      await rollTo(
        env,
        await render(env, "v2", { TELEMETRY_GROW_MB: "1000", TELEMETRY_GROW_RATE: "40" }),
        "v2",
      );
      const over = await waitFor("ks-memory-checker exit 3", memCheck, (r) => r.code === 3, 60_000);
      const oom = await waitFor(
        "telemetry OOMKilled (137) and restarted",
        () => podsOnNode(env),
        (ps) => {
          const c = ps.find((p) => !p.deleting)?.containers.telemetry;
          return Boolean(
            c && c.restarts >= 1 && c.lastExit === 137 && c.lastReason === "OOMKilled",
          );
        },
        90_000,
      );
      const c = oom.find((p) => !p.deleting)!.containers.telemetry;
      // It dies again and the kubelet backs off before the next start: the container is missing
      // for a while, container_checker's case.
      const gone = await waitFor(
        "ks-container-checker exit 3 naming telemetry",
        ctrCheck,
        (r) => r.code === 3 && r.stdout.includes("telemetry"),
        90_000,
      );
      const leaky = (await podsOnNode(env)).find((p) => !p.deleting)!;
      // Back to the v2 without the leak.
      await rollTo(env, await render(env, "v2"), "v2");
      const pod = await waitPodReady(env, "v2");
      const back = await waitFor("ks-container-checker exit 0", ctrCheck, (r) => r.code === 0);
      // The leaky pod's container lives on through its termination grace period.
      await waitFor(
        "ks-memory-checker exit 0 once the leaky pod is gone",
        memCheck,
        (r) => r.code === 0,
        60_000,
      );
      return `memory checker: "${over.stdout.trim()}"; lastState exit ${c.lastExit} ` +
        `${c.lastReason}; container checker during back-off: "${gone.stdout.trim()}"; ` +
        `leaky pod restarts ${leaky.containers.telemetry?.restarts}; fixed v2 ${pod.name} Ready, ` +
        `both checkers 0 (${back.stdout.trim() || "ok"})`;
    },
  },
  {
    part: "faults",
    name: "faults: kubelet killed while the feature runs -> back, pod Ready, unit active",
    tools: ["ks-stub", "ks-watchdog"],
    async run(env) {
      return await fault(env, "kubelet");
    },
  },
  {
    part: "faults",
    name: "faults: containerd killed -> back, pod Ready, unit active",
    tools: ["ks-stub", "ks-watchdog"],
    async run(env) {
      return await fault(env, "containerd");
    },
  },
  {
    part: "faults",
    name: "faults: database killed -> CONFIG_DB intact, the feature converges to it",
    tools: ["ks-stub", "ks-watchdog", "ks-entrypoint"],
    async run(env) {
      return await fault(env, "database");
    },
  },
  {
    part: "5.4",
    name: "5.4 ks-rollout of a v3 whose watchdog fails: never Ready, rolled back to v2",
    tools: ["ks-render", "ks-watchdog", "ks-rollout"],
    async run(env) {
      // v3 listens on the wrong port: its watchdog's TCP probe of 50051 fails.
      const out = await render(env, "v3", { TELEMETRY_LISTEN: "127.0.0.1:50052" });
      await kubectlOk(env, ["apply", "-f", join(out, "common")]);
      const r = await runTool("ks-rollout", [
        "telemetry",
        "--to",
        join(out, "v2", "30-daemonset.yaml"),
        "--waves",
        "100%",
        "--failure-budget",
        "0",
        "--bake",
        "0s",
        "--ready-timeout",
        "40s",
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
        "telemetry",
        "-n",
        "sonic",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
      ]);
      if (image !== "kubesonic/telemetry:v2") throw new Error(`template after rollback: ${image}`);
      const pod = await waitPodReady(env, "v2");
      const owner = await waitFor(
        "the daemon on 50051",
        () => portOwner(env.sw),
        (o) => o === "kubernetes",
      );
      return `ks-rollout exit 4 (v3 not Ready in 40 s, rolled back); template ${image}; ` +
        `pod ${pod.name} Ready, 50051 from ${owner}`;
    },
  },
  {
    part: "5.4",
    name: "5.4 v2 -> v0: the original launcher is restored, the native container runs again",
    tools: ["ks-render", "ks-patcher"],
    async run(env) {
      await rollTo(env, await render(env, "v1"), "v1");
      await waitPodReady(env, "v1");
      await waitFor(
        "the original launcher back",
        () => launcher(env.sw),
        (t) => t.includes("/usr/bin/$SERVICE.sh"),
      );
      await waitFor(
        "native container running",
        () => nativeContainer(env.sw),
        (s) => s === "running",
      );
      const u = await waitFor(
        "telemetry.service active on the native launcher",
        () => unitState(env.sw, "telemetry"),
        (u) => u.ActiveState === "active",
      );
      const owner = await waitFor(
        "the daemon on 50051",
        () => portOwner(env.sw),
        (o) => o === "docker",
      );
      return `launcher restored, unit ${u.ActiveState}, 50051 from ${owner}`;
    },
  },
  {
    part: "isolation",
    name: "the other switches were untouched: own CONFIG_DB, own 127.0.0.1:50051, no pod",
    tools: [],
    async run(env) {
      const others = env.others ?? [];
      if (others.length === 0) return "no other switch in this lab";
      for (const o of others) {
        const u = await unitState(o, "telemetry");
        const owner = await portOwner(o);
        const native = await nativeContainer(o);
        const cri = await criContainers(o);
        const state = await o.configDb("HGET", "FEATURE|telemetry", "state");
        if (u.ActiveState !== "active" || native !== "running" || owner !== "docker") {
          throw new Error(`${o.name}: unit ${u.ActiveState}, native ${native}, 50051 ${owner}`);
        }
        if (Object.keys(cri).some((n) => n.startsWith("telemetry"))) {
          throw new Error(`${o.name} runs telemetry pods: ${JSON.stringify(cri)}`);
        }
        if (u.NRestarts !== "0") throw new Error(`${o.name}: telemetry restarted ${u.NRestarts}x`);
        if (state !== "enabled") throw new Error(`${o.name}: FEATURE|telemetry state ${state}`);
      }
      return `${others.map((o) => o.name).join(", ")}: native v0 active since boot (0 restarts), ` +
        `serving their own 127.0.0.1:50051, no pods`;
    },
  },
];

/** Kills `service`'s main process on the switch and checks the feature converges afterwards. */
async function fault(env: FlowEnv, service: string): Promise<string> {
  const before = await unitState(env.sw, service);
  const t0 = performance.now();
  const k = await env.sw.systemctl("kill", "-s", "KILL", service);
  if (k.code !== 0) throw new Error(`systemctl kill ${service}: ${k.stderr.trim()}`);
  // systemctl must answer within its bounds while the service is down.
  const s0 = performance.now();
  const code = await statusCode(env.sw, "telemetry");
  const statusMs = performance.now() - s0;
  await waitFor(
    `${service} back`,
    () => unitState(env.sw, service),
    (u) => u.ActiveState === "active" && u.MainPID !== before.MainPID && u.MainPID !== "0",
  );
  const state = await env.sw.configDb("HGET", "FEATURE|telemetry", "state");
  if (state !== "enabled") throw new Error(`CONFIG_DB lost FEATURE|telemetry: state=${state}`);
  await waitPodReady(env, "v2");
  const owner = await waitFor(
    "the daemon on 50051",
    () => portOwner(env.sw),
    (o) => o === "kubernetes",
  );
  const u = await waitFor(
    "telemetry.service active",
    () => unitState(env.sw, "telemetry"),
    (u) => u.ActiveState === "active",
  );
  return `${service} back, converged in ${Math.round(performance.now() - t0)} ms; ` +
    `status answered ${code} in ${
      Math.round(statusMs)
    } ms while down; unit ${u.ActiveState}; 50051 from ${owner}`;
}
