// The design's flows on a real lab switch, as an ordered list of steps shared by the
// end-to-end test and the lab (lab/scenarios/90_real_switch.ts).
// Every step acts the way an operator or a SONiC daemon would (redis-cli, systemctl, kubectl) and
// checks the result through systemd, the API server and the container runtime of the switch.
// A step whose tool has not landed yet says exactly which one it waits for.
import { createHash } from "node:crypto";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { runTool } from "../harness/bin.ts";
import { VERSION } from "../../src/version.ts";
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
  /** The image build's output (ks-tree-next/ holds the next ks-tools' tree index). */
  imagesDir?: string;
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
 * The command lines of a unit's processes (its cgroup's, cgroup v1 or v2), words space-joined,
 * the main process first.
 */
export async function unitProcesses(sw: SwitchNode, unit: string): Promise<string[]> {
  const r = await sw.exec([
    "sh",
    "-c",
    'cg=$(systemctl show -p ControlGroup --value "$1"); main=$(systemctl show -p MainPID --value "$1")\n' +
    'for f in "/sys/fs/cgroup/systemd$cg/cgroup.procs" "/sys/fs/cgroup$cg/cgroup.procs"; do\n' +
    '  [ -n "$cg" ] && [ -f "$f" ] || continue\n' +
    '  for p in $main $(grep -vx "$main" "$f"); do\n' +
    "    [ -r /proc/$p/cmdline ] && tr '\\0' ' ' < /proc/$p/cmdline && echo\n" +
    "  done\n" +
    "  break\n" +
    "done",
    "sh",
    `${unit}.service`,
  ]);
  return r.stdout.split("\n").map((l) => l.trim()).filter(Boolean);
}

/**
 * Whether a unit's processes are the stub's: its launcher with a resident `ks-stub … wait`, or,
 * once wait handed off, the launcher with the `tail --pid=` that watches the container's process.
 */
export function onStub(procs: string[]): boolean {
  return procs.some((c) => c.includes("ks-stub") && /\bwait\b/.test(c)) ||
    procs.some((c) => /^(\S*\/)?tail --pid=\d+ /.test(c));
}

/**
 * Waits until telemetry.service is active on the stub (onStub): systemd's forked child is
 * "(metry.sh)" until it execs the launcher, and right after a v2 install the unit may still be
 * active on the native launcher (`docker wait`) the patcher is about to restart.
 */
export async function waitUnitOnStub(env: FlowEnv, unit = "telemetry"): Promise<string> {
  return await waitFor(
    `${unit}.service active on the stub (ks-stub wait, or the launcher's tail after the hand-off)`,
    async () => {
      const u = await unitState(env.sw, unit);
      const running = u.ActiveState === "active" && u.SubState === "running";
      const procs = running ? await unitProcesses(env.sw, unit) : [];
      return `${u.ActiveState}/${u.SubState}${onStub(procs) ? " on the stub" : ""}: ${
        procs.join(" | ")
      }`;
    },
    (s) => s.startsWith("active/running on the stub"),
  );
}

/**
 * How long a step waits for a pod to start: at load 40 on two cores the first v2 pod (image
 * unpack, three containers, the watchdog's first probes) was seen taking more than 120 s to turn
 * Ready, and a step that waits for what a pod does once started waits as long.
 */
export const POD_START_MS = 240_000;

/**
 * Waits until exactly one live pod of `stage` runs on the node and is Ready; returns it. `asic`
 * narrows the pods looked at: a number = that ASIC's instance (label `asic`), null = the pods of
 * no ASIC (the `<feature>` DaemonSet's), undefined = all of the feature's pods.
 */
export async function waitPodReady(
  env: FlowEnv,
  stage: string,
  ms = POD_START_MS,
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
    const why = await containerStates(env).catch((err) => `(${(err as Error).message})`);
    throw new Error(`${(e as Error).message}; pods: ${JSON.stringify(last)}; containers: ${why}`);
  }
  return last[0];
}

/**
 * Why a pod is not Ready, from the API server: each (init) container's state and last state
 * (reason, exit code, message) for the node's pods in the sonic namespace.
 */
export async function containerStates(env: FlowEnv): Promise<string> {
  const r = await env.cluster.kubectl([
    "get",
    "pods",
    "-n",
    "sonic",
    "--field-selector",
    `spec.nodeName=${env.sw.name}`,
    "-o",
    "json",
  ]);
  if (r.code !== 0) return `(kubectl get pods: ${r.stderr.trim()})`;
  type State = Record<string, { reason?: string; exitCode?: number; message?: string }>;
  type Status = { name: string; state?: State; lastState?: State; restartCount?: number };
  type Pod = {
    metadata: { name: string };
    status?: { initContainerStatuses?: Status[]; containerStatuses?: Status[] };
  };
  const describe = (s?: State) => {
    const [kind, v] = Object.entries(s ?? {})[0] ?? ["-", {}];
    return [kind, v.reason, v.exitCode, v.message].filter((x) => x !== undefined).join(" ");
  };
  return (JSON.parse(r.stdout).items as Pod[]).map((pod) =>
    [...pod.status?.initContainerStatuses ?? [], ...pod.status?.containerStatuses ?? []].map((c) =>
      `${pod.metadata.name}/${c.name}: ${describe(c.state)} (last: ${describe(c.lastState)}, ` +
      `restarts ${c.restartCount})`
    ).join("; ")
  ).join(" | ");
}

/** The running telemetry feature container's CRI id ("" none; comma-joined if several). */
export async function featureContainer(sw: SwitchNode): Promise<string> {
  const r = await sw.crictl("ps", "-q", "--name", "^telemetry$", "--state", "running");
  return r.stdout.trim().split("\n").filter((l) => l).join(",");
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

/**
 * How long a step waits for a sidecar to install the host runtime (~95 MB, streamed under its
 * memory limit) and write the launchers after its pod is created: at load 40-90 on two cores it
 * took more than 90 s.
 */
export const HOST_RUNTIME_INSTALL_MS = 240_000;

/** The last `lines` log lines of the newest container named `name` on the switch (CRI). */
export async function criLogs(sw: SwitchNode, name: string, lines = 15): Promise<string> {
  const ps = await sw.crictl("ps", "-a", "-q", "--latest", "--name", `^${name}$`);
  const id = ps.stdout.trim();
  if (ps.code !== 0 || !id) return `(no container ${name}: ${ps.stderr.trim()})`;
  const r = await sw.crictl("logs", "--tail", String(lines), id);
  return (r.stdout + r.stderr).trim();
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

/** The ks-tools image the lab builds (scripts/switch/build-switch-image.sh) from dist/ks-tree. */
export const TOOLS_IMAGE = `kubesonic/ks-tools:${VERSION}`;

/** A variant of the example spec: its name (file names), the edit, extra ks-render arguments. */
export interface RenderVariant {
  name: string;
  // deno-lint-ignore no-explicit-any
  edit(spec: any): void;
  args?: string[];
}

/**
 * Renders the telemetry example for version `version` (the stock feature image
 * `kubesonic/telemetry:<version>`, the ks-tools image for the watchdog, the sidecar and the
 * entrypoint's init container, the host runtime with the checkers, `--profile lab`) with extra
 * feature env, optionally as `variant`; returns the output dir.
 */
export async function renderVersion(
  env: FlowEnv,
  version: string,
  extraEnv: Record<string, string> = {},
  tools: { image: string; tree?: string } = { image: TOOLS_IMAGE },
  variant?: RenderVariant,
): Promise<string> {
  // deno-lint-ignore no-explicit-any
  const spec = parse(await Deno.readTextFile(EXAMPLE_SPEC)) as any;
  const image = `kubesonic/telemetry:${version}`;
  spec.images = { feature: image, watchdog: tools.image, sidecar: tools.image };
  // monit's container_checker / memory_checker checks run ours once v2 installs them.
  spec.hostRuntime = { checkers: true };
  // After a tools upgrade the new sidecar releases the old tree once no sidecar of the feature
  // confirmed it for the stale-claim time (15 min by default): the lab's is 1 min.
  spec.sidecar = { ...(spec.sidecar ?? {}), interval: "20s", staleClaim: "1m" };
  variant?.edit(spec);
  spec.env = { ...(spec.env ?? {}), ...extraEnv };
  const tag = variant ? `${variant.name}-${version}` : version;
  const specPath = join(env.dir, `telemetry-${tag}.yaml`);
  await Deno.writeTextFile(specPath, stringify(spec));
  // One directory per distinct render: the leaking v2 must not overwrite the plain v2's output.
  const distinct = Object.keys(extraEnv).length > 0 || tools.tree
    ? `-${createHash("sha256").update(JSON.stringify([extraEnv, tools])).digest("hex").slice(0, 8)}`
    : "";
  const out = join(env.dir, `render-${tag}${distinct}`);
  const r = await runTool("ks-render", [
    specPath,
    "--profile",
    "lab",
    ...(variant?.args ?? []),
    "-o",
    out,
    ...(tools.tree ? ["--tools-tree", tools.tree] : []),
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

/**
 * What a listing of the switch's tree leaves out: the kernel's and the runtimes' state, logs and
 * the journal, tmpfs, and the state of services that write as they run (redis' dump, monit's
 * state, docker's container records, systemd's timestamps), plus ks-patcher's own state directory
 * (backups, journal, ownership registry), which outlives a rollback.
 */
export const LISTING_EXCLUDES = [
  "/proc",
  "/sys",
  "/dev",
  "/run",
  "/tmp",
  "/var/tmp",
  "/var/log",
  "/var/lib/containerd",
  "/var/lib/kubelet",
  "/var/lib/cni",
  "/var/lib/docker",
  "/var/lib/redis",
  "/var/lib/monit",
  "/var/lib/systemd",
  "/var/cache",
  "/var/lib/kubesonic/backups",
  "/var/lib/kubesonic/owners.json",
  "/var/lib/kubesonic/owners.lock",
  "/var/lib/kubesonic/journal.json",
  "/var/lib/kubesonic/journal",
  "/etc/kubernetes/pki",
];

/** path, type, mode, owner and SHA-256 (regular files) of every entry on the switch's root fs. */
export async function treeListing(sw: SwitchNode): Promise<string[]> {
  const prune = LISTING_EXCLUDES.map((p) => `-path '${p}'`).join(" -o ");
  const script =
    `find / -xdev \\( ${prune} \\) -prune -o -printf '%p %y %m %U:%G\\n' | LC_ALL=C sort; ` +
    `find / -xdev \\( ${prune} \\) -prune -o -type f -print0 | xargs -0 -r sha256sum | LC_ALL=C sort -k2`;
  const r = await sw.exec(["sh", "-c", script], { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`listing the switch's tree: ${r.stderr.trim().slice(0, 300)}`);
  return r.stdout.trim().split("\n");
}

/** The first differences between two listings, for an error message. */
export function listingDiff(before: string[], after: string[]): string {
  const a = new Set(before);
  const b = new Set(after);
  const gone = before.filter((l) => !b.has(l)).slice(0, 5);
  const added = after.filter((l) => !a.has(l)).slice(0, 5);
  return `only before: ${JSON.stringify(gone)}; only after: ${JSON.stringify(added)}`;
}

/** Names of ks tree files: none of them may exist on a stock switch. */
const OUR_FILES = [
  "deno",
  "ks",
  "ks.js",
  "ks-stub",
  "ks-entrypoint",
  "ks-watchdog",
  "ks-patcher",
  "ks-render",
  "ks-rollout",
  "ks-container-checker",
  "ks-memory-checker",
  "tree.json",
];

/** Our files on the switch's root fs (paths), outside what the listing leaves out. */
async function ourFiles(sw: SwitchNode): Promise<string[]> {
  const names = OUR_FILES.map((n) => `-name '${n}'`).join(" -o ");
  const prune = LISTING_EXCLUDES.map((p) => `-path '${p}'`).join(" -o ");
  const r = await sw.exec([
    "sh",
    "-c",
    `find / -xdev \\( ${prune} \\) -prune -o \\( ${names} -o -path /usr/local/lib/kubesonic \\) -print`,
  ]);
  return r.stdout.trim().split("\n").filter(Boolean);
}

/** The listing taken before v1 (the stock switch), compared after the rollback to v0. */
let stockListing: string[] | undefined;

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
    part: "stock",
    name: "stock switch before v1: no deno, no ks-stub, no file of ours; its tree listed",
    tools: [],
    async run(env) {
      const which = await env.sw.exec(["sh", "-c", "command -v deno ks-stub"]);
      if (which.code === 0 || which.stdout.trim() !== "") {
        throw new Error(`command -v deno ks-stub found ${JSON.stringify(which.stdout.trim())}`);
      }
      const ours = await ourFiles(env.sw);
      if (ours.length > 0) throw new Error(`files of ours on the stock switch: ${ours.join(", ")}`);
      stockListing = await treeListing(env.sw);
      return `command -v deno ks-stub: exit ${which.code}, nothing; no ks tree file anywhere; ` +
        `${stockListing.length} listing lines taken`;
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
      // The sidecar installs the host runtime first; its log names what it does.
      await waitFor(
        "the stub as /usr/local/bin/telemetry.sh",
        () => launcher(env.sw),
        (t) => t.includes("ks-stub"),
        HOST_RUNTIME_INSTALL_MS,
      ).catch(async (e) => {
        const log = await criLogs(env.sw, "telemetry-sidecar").catch((err) => `${err}`);
        throw new Error(`${(e as Error).message}; the sidecar's last lines:\n${log}`);
      });
      await waitFor(
        "native container stopped",
        () => nativeContainer(env.sw),
        (s) => s !== "running",
      );
      await waitUnitOnStub(env);
      // The pod's daemon may start while the native container still holds 50051 (the patcher
      // stops it only after the launcher is in place): the critical process exits, the container
      // ends as in SONiC (no supervisord restart of a critical program) and the kubelet restarts
      // it once the port is free. What must hold is that all three end up running.
      await waitFor(
        "the pod's three containers running (CRI)",
        () => criContainers(env.sw),
        (cri) =>
          ["telemetry", "telemetry-watchdog", "telemetry-sidecar"].every((c) =>
            cri[c] === "CONTAINER_RUNNING"
          ),
        120_000,
      );
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
    part: "runtime",
    name:
      "v2: the host runtime came with the sidecar; systemctl start|stop|restart|status through it",
    tools: ["ks-stub", "ks-patcher"],
    async run(env) {
      const stub = (await env.sw.exec(["cat", "/usr/local/bin/ks-stub"])).stdout;
      const tree = /exec (\/usr\/local\/lib\/kubesonic\/[0-9a-f]{16})\/bin\/ks-stub "\$@"/.exec(
        stub,
      )?.[1];
      if (!tree) throw new Error(`/usr/local/bin/ks-stub does not name a versioned tree: ${stub}`);
      const which = await env.sw.exec(["sh", "-c", "command -v ks-stub"]);
      if (which.stdout.trim() !== "/usr/local/bin/ks-stub") {
        throw new Error(`command -v ks-stub: ${which.stdout.trim()}`);
      }
      const v = await env.sw.exec(["ks-stub", "--version"]);
      if (v.code !== 0 || v.stdout.trim() !== `ks-stub ${VERSION}`) {
        throw new Error(`ks-stub --version: ${v.code} ${v.stdout.trim()} ${v.stderr.trim()}`);
      }
      const codes: string[] = [];
      for (
        const [verb, want] of [["stop", 0], ["status", 3], ["start", 0], ["status", 0], [
          "restart",
          0,
        ], ["status", 0]] as const
      ) {
        if (verb === "status" && want === 0) await waitPodReady(env, "v2");
        const r = await env.sw.systemctl(
          verb,
          "telemetry",
          ...(verb === "status" ? ["--no-pager"] : []),
        );
        codes.push(`${verb} ${r.code}`);
        if (r.code !== want) {
          throw new Error(`systemctl ${verb} telemetry: exit ${r.code}, expected ${want}`);
        }
      }
      // Five starts in a minute count against the unit's StartLimitBurst=3; the next steps start
      // it again, so clear the counter as an operator would after such an exercise.
      await env.sw.systemctl("reset-failed", "telemetry");
      const du = await env.sw.exec(["du", "-sb", tree]);
      return `/usr/local/bin/ks-stub -> ${tree} (${du.stdout.split("\t")[0]} bytes); systemctl ${
        codes.join(", ")
      }`;
    },
  },
  {
    part: "inject",
    name: "v2: the unmodified feature image runs the injected entrypoint from the emptyDir (CRI)",
    tools: ["ks-entrypoint"],
    async run(env) {
      await waitPodReady(env, "v2");
      const ps = await env.sw.crictl("ps", "--name", "^telemetry$", "--state", "Running", "-q");
      const id = ps.stdout.trim().split("\n")[0];
      if (!id) throw new Error("no running telemetry container in the CRI");
      const r = await env.sw.crictl("inspect", id);
      if (r.code !== 0) throw new Error(`crictl inspect: ${r.stderr.trim()}`);
      const info = JSON.parse(r.stdout);
      const args: string[] = info.info?.runtimeSpec?.process?.args ?? [];
      const want = [
        "/kubesonic/bin/ks-entrypoint",
        "--feature",
        "telemetry",
        "--",
        "/usr/bin/supervisord",
      ];
      if (JSON.stringify(args.slice(0, 5)) !== JSON.stringify(want)) {
        throw new Error(`the feature container's argv is ${JSON.stringify(args)}`);
      }
      // deno-lint-ignore no-explicit-any
      const mount = (info.status?.mounts ?? []).find((m: any) => m.containerPath === "/kubesonic");
      if (
        !mount || !/kubernetes\.io~empty-dir\/ks-tools$/.test(mount.hostPath) || !mount.readonly
      ) {
        throw new Error(`/kubesonic mount: ${JSON.stringify(mount)}`);
      }
      const image = info.status?.image?.image ?? "";
      // The entrypoint exec'd supervisord: nothing of ours stays resident (PID 1 is supervisord).
      const pid = info.info?.pid;
      const comm = (await env.sw.exec(["cat", `/proc/${pid}/comm`])).stdout.trim();
      if (!/supervisord|python/.test(comm)) throw new Error(`the container's PID 1 is ${comm}`);
      return `argv ${args.join(" ")}; /kubesonic from the ks-tools emptyDir (read-only); image ` +
        `${image}; PID 1 now ${comm}`;
    },
  },
  {
    part: "5.3",
    name: "5.3 disable after rollout: the stub's stop leaves an idle, Ready container",
    tools: ["ks-stub", "ks-entrypoint", "ks-watchdog"],
    async run(env) {
      const before = (await podsOnNode(env))[0];
      const beforeContainer = await featureContainer(env.sw);
      await setFeature(env, "disabled");
      // featured's disable: stop (and mask) the unit; the stub's stop deletes the pod, or, when
      // the API server does not answer its 3 s probe (seen at load ~55), stops the container
      // through the runtime and the kubelet starts it again in the same pod.
      const stop = await env.sw.systemctl("stop", "telemetry");
      if (stop.code !== 0) throw new Error(`systemctl stop: ${stop.stderr.trim()}`);
      const code = await statusCode(env.sw, "telemetry");
      if (code !== 3) throw new Error(`systemctl status after stop = ${code}, expected 3`);
      const pod = await waitPodReady(env, "v2");
      const container = await waitFor(
        "a new running feature container",
        () => featureContainer(env.sw),
        (id) => id !== "" && !id.includes(",") && id !== beforeContainer,
        120_000,
      );
      const how = pod.uid !== before?.uid
        ? `new pod ${pod.name}`
        : `pod ${pod.name} kept, its container restarted (${
          container.slice(0, 12)
        }; the stub's runtime path)`;
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
      return `status 3 after stop; ${how}, Ready while idle (watchdog /readyz 200, ` +
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
      // SONiC's paths, monit's: the host runtime replaced them with ks-memory-checker's and
      // ks-container-checker's launchers (hostRuntime.checkers).
      const memCheck = () =>
        env.sw.exec(["/usr/bin/memory_checker", "telemetry", String(100 << 20)]);
      const ctrCheck = () => env.sw.exec(["/usr/bin/container_checker"]);
      // A v2 whose daemon leaks: the example daemon grows towards 1000 MiB at 40 MiB/s, past the
      // rendered 400Mi limit; after its first restart it grows again at once.
      await rollTo(
        env,
        await render(env, "v2", { TELEMETRY_GROW_MB: "1000", TELEMETRY_GROW_RATE: "40" }),
        "v2",
      );
      // Each wait includes a pod start (the leaky pod, its restart after back-off, the fixed
      // pod's replacement): as long as waitPodReady allows one on a loaded machine.
      const over = await waitFor(
        "ks-memory-checker exit 3",
        memCheck,
        (r) => r.code === 3,
        POD_START_MS,
      );
      const oom = await waitFor(
        "telemetry OOMKilled (137) and restarted",
        () => podsOnNode(env),
        (ps) => {
          const c = ps.find((p) => !p.deleting)?.containers.telemetry;
          return Boolean(
            c && c.restarts >= 1 && c.lastExit === 137 && c.lastReason === "OOMKilled",
          );
        },
        POD_START_MS,
      );
      const c = oom.find((p) => !p.deleting)!.containers.telemetry;
      // It dies again and the kubelet backs off before the next start: the container is missing
      // for a while, container_checker's case.
      const gone = await waitFor(
        "ks-container-checker exit 3 naming telemetry",
        ctrCheck,
        (r) => r.code === 3 && r.stdout.includes("telemetry"),
        POD_START_MS,
      );
      const leaky = (await podsOnNode(env)).find((p) => !p.deleting)!;
      // Back to the v2 without the leak.
      await rollTo(env, await render(env, "v2"), "v2");
      const pod = await waitPodReady(env, "v2");
      const back = await waitFor(
        "ks-container-checker exit 0",
        ctrCheck,
        (r) => r.code === 0,
        POD_START_MS,
      );
      // The leaky pod's container lives on through its termination grace period.
      await waitFor(
        "ks-memory-checker exit 0 once the leaky pod is gone",
        memCheck,
        (r) => r.code === 0,
        POD_START_MS,
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
    part: "v0",
    name: "v1 -> v0: the DaemonSet deleted; the switch's tree is exactly as before v1",
    tools: ["ks-patcher"],
    async run(env) {
      if (!stockListing) throw new Error("no listing from before v1 (the stock step did not run)");
      await kubectlOk(env, ["delete", "daemonset", "telemetry", "-n", "sonic", "--wait=true"]);
      await waitFor("no telemetry pod", () => podsOnNode(env), (ps) => ps.length === 0, 90_000);
      const ours = await ourFiles(env.sw);
      if (ours.length > 0) throw new Error(`files of ours left after v0: ${ours.join(", ")}`);
      const which = await env.sw.exec(["sh", "-c", "command -v deno ks-stub"]);
      if (which.code === 0) throw new Error(`after v0 command -v finds ${which.stdout.trim()}`);
      const after = await treeListing(env.sw);
      if (JSON.stringify(after) !== JSON.stringify(stockListing)) {
        throw new Error(`the tree differs from before v1: ${listingDiff(stockListing, after)}`);
      }
      const u = await unitState(env.sw, "telemetry");
      if (u.ActiveState !== "active") throw new Error(`telemetry.service is ${u.ActiveState}`);
      return `${after.length} listing lines identical to before v1; no ks file; native unit ` +
        `${u.ActiveState}`;
    },
  },
  {
    part: "upgrade",
    name: "v0 -> v2 -> v2' tools upgrade while systemctl status runs every 100 ms: no wrong answer",
    tools: ["ks-render", "ks-patcher", "ks-stub"],
    async run(env) {
      if (!env.imagesDir) throw new Error("no imagesDir: the next ks-tools' tree index is there");
      // The next ks-tools is not loaded at boot: import it as a registry pull would.
      const imp = await env.sw.exec([
        "ctr",
        "-n",
        "k8s.io",
        "images",
        "import",
        "/var/lib/kubesonic/images/later/ks-tools-next.tar",
      ], { timeoutMs: 180_000 });
      if (imp.code !== 0) throw new Error(`importing ks-tools:next: ${imp.stderr.trim()}`);
      await rollTo(env, await render(env, "v2"), "v2");
      await waitPodReady(env, "v2");
      const old = await waitFor(
        "the stub launcher",
        async () => (await env.sw.exec(["cat", "/usr/local/bin/ks-stub"])).stdout,
        (t) => /kubesonic\/[0-9a-f]{16}\/bin/.test(t),
      );
      // Active on the stub, not still on the native launcher the patcher is about to replace.
      await waitUnitOnStub(env);
      // Every 100 ms: systemd's status (must stay 0) and the installed stub's own (0 running or
      // 3 not running while the pod is replaced; never 4, never a launcher that cannot start).
      const loop = env.sw.exec([
        "sh",
        "-c",
        "end=$(($(date +%s) + 330)); while [ $(date +%s) -lt $end ] && [ ! -e /tmp/ks-loop-stop ]; do " +
        "systemctl status telemetry >/dev/null 2>&1; a=$?; " +
        "ks-stub telemetry status --kube-namespace sonic >/dev/null 2>/tmp/ks-loop-err; b=$?; " +
        'echo "$a $b $(head -c 200 /tmp/ks-loop-err | tr "\n" " ")"; sleep 0.1; done',
      ], { timeoutMs: 360_000 });
      const next = await renderVersion(env, "v2", {}, {
        image: "kubesonic/ks-tools:next",
        tree: join(env.imagesDir, "ks-tree-next"),
      });
      await new Promise((r) => setTimeout(r, 2000));
      await rollTo(env, next, "v2");
      // The new pod's init container copies the tree and its sidecar installs the next host
      // runtime before the launcher changes.
      const fresh = await waitFor(
        "the stub launcher naming the next tree",
        async () => (await env.sw.exec(["cat", "/usr/local/bin/ks-stub"])).stdout,
        (t) => t !== old && /kubesonic\/[0-9a-f]{16}\/bin/.test(t),
        HOST_RUNTIME_INSTALL_MS,
      ).catch(async (e) => {
        const log = await criLogs(env.sw, "telemetry-sidecar").catch((err) => `${err}`);
        throw new Error(`${(e as Error).message}; the sidecar's last lines:\n${log}`);
      });
      await waitPodReady(env, "v2");
      await new Promise((r) => setTimeout(r, 3000));
      await env.sw.exec(["touch", "/tmp/ks-loop-stop"]);
      const lines = (await loop).stdout.trim().split("\n").filter(Boolean);
      await env.sw.exec(["rm", "-f", "/tmp/ks-loop-stop", "/tmp/ks-loop-err"]);
      const wrong = lines.filter((l) => !/^0 [03]( |$)/.test(l));
      if (lines.length < 20 || wrong.length > 0) {
        throw new Error(`${lines.length} answers, wrong: ${JSON.stringify(wrong.slice(0, 5))}`);
      }
      const stubCodes = lines.map((l) => l.split(" ")[1]);
      const tree = /kubesonic\/([0-9a-f]{16})/.exec(fresh)![1];
      // The new sidecar releases the old tree once no sidecar confirmed it for the stale-claim
      // time (1 min in the lab): the old pod's last confirmation plus a minute, seen by the
      // new one's next pass (every 20 s).
      await waitFor(
        "only the new tree under /usr/local/lib/kubesonic (the old one released)",
        async () => (await env.sw.exec(["ls", "/usr/local/lib/kubesonic"])).stdout.trim(),
        (t) => t === tree,
        150_000,
      );
      return `${lines.length} answers during the upgrade: systemctl status always 0; ks-stub ` +
        `status ${stubCodes.filter((c) => c === "0").length}x 0, ` +
        `${stubCodes.filter((c) => c === "3").length}x 3 (pod being replaced); now tree ${tree} ` +
        "alone (the old one released)";
    },
  },
  {
    part: "glibc",
    name:
      "a feature image without glibc (busybox-static): one line naming what is missing, exit 127",
    tools: ["ks-render", "ks-entrypoint"],
    async run(env) {
      // The rendered v2 pod (init container, emptyDir, feature container) as a bare Pod on this
      // node, with a busybox-static feature image: nothing on the host changes.
      const out = await render(env, "v2");
      const ds = parse(await Deno.readTextFile(join(out, "v2", "30-daemonset.yaml")));
      // deno-lint-ignore no-explicit-any
      const podSpec = ds.spec.template.spec as any;
      // deno-lint-ignore no-explicit-any
      const feature = podSpec.containers.find((c: any) => c.name === "telemetry");
      feature.image = "kubesonic/busybox-static:1";
      delete feature.livenessProbe;
      delete feature.readinessProbe;
      // The DaemonSet's pod may run beside it (after the upgrade step): under host networking its
      // ports would be host ports the kubelet refuses to give twice.
      delete feature.ports;
      const pod = {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "glibc-check", namespace: "sonic", labels: { app: "glibc-check" } },
        spec: {
          nodeName: env.sw.name,
          hostNetwork: true,
          restartPolicy: "Always",
          automountServiceAccountToken: false,
          tolerations: podSpec.tolerations,
          initContainers: podSpec.initContainers,
          containers: [feature],
          // The volumes the feature and init containers mount (ks-tools, redis, sonic-config).
          volumes: podSpec.volumes.filter((v: { name: string }) =>
            [...feature.volumeMounts, ...podSpec.initContainers[0].volumeMounts]
              .some((m: { name: string }) => m.name === v.name)
          ),
        },
      };
      const path = join(env.dir, "glibc-check.json");
      await Deno.writeTextFile(path, JSON.stringify(pod));
      await kubectlOk(env, ["apply", "-f", path]);
      try {
        const status = await waitFor(
          "the feature container terminated with the launcher's line",
          async () => {
            const j = JSON.parse(
              await kubectlOk(env, ["get", "pod", "-n", "sonic", "glibc-check", "-o", "json"]),
            );
            const c = (j.status?.containerStatuses ?? [])[0] ?? {};
            return {
              t: c.lastState?.terminated ?? c.state?.terminated,
              restarts: c.restartCount,
              waiting: c.state?.waiting?.reason,
            };
          },
          (s) => s.t?.exitCode === 127 && typeof s.t?.message === "string",
          240_000,
        ).catch(async (e) => {
          throw new Error(`${(e as Error).message}; containers: ${await containerStates(env)}`);
        });
        const message = status.t.message.trim();
        if (message.split("\n").length !== 1 || !/has no glibc/.test(message)) {
          throw new Error(`termination message: ${JSON.stringify(message)}`);
        }
        return `exit ${status.t.exitCode}, pod status says "${message}"; restarts ${status.restarts}` +
          `${status.waiting ? `, ${status.waiting}` : ""} (the kubelet's back-off)`;
      } finally {
        await env.cluster.kubectl(["delete", "pod", "-n", "sonic", "glibc-check", "--wait=false"]);
      }
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

/**
 * The steps from the native v0 to telemetry.service backed by the v2 pod (the native check, the
 * stock-switch check, 5.1's v1 and v2): what tests and benchmarks that start from v2 run first.
 */
export function stepsThroughV2(): FlowStep[] {
  return FLOW_STEPS.slice(0, FLOW_STEPS.findLastIndex((s) => s.part === "5.1") + 1);
}
