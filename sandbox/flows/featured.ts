// featured's systemctl sequences (sonic-host-services scripts/featured, FeatureHandler), run on a
// lab switch exactly as featured runs them, so a test can compare what they leave behind on a
// native (v0) and a Kubernetes-backed (v2) unit:
//   disable: skip when UnitFileState is disabled/masked; wait (60 s, poll 1 s) while
//            `systemctl is-active` says activating; stop; disable; mask — any failure: "failed";
//   enable:  skip when UnitFileState is enabled; unmask; enable (errors ignored); start;
//   auto_restart: write /etc/systemd/system/<unit>.d/auto_restart.conf, daemon-reload.
// Each run ends with featured's STATE_DB FEATURE|<feature> state (enabled/disabled/failed).
// On a multi-ASIC switch featured acts on every instance its FeatureHandler names
// (get_multiasic_feature_instances): `<feature>` when the feature has global scope, `<feature>@N`
// for each ASIC when it has per-ASIC scope, each with the sequence above, and writes the state to
// the host's and every namespace's STATE_DB; its scope sync stops, disables and masks the
// instances the scope leaves out.
import type { SwitchNode } from "../harness/switch.ts";

/** The FEATURE row's scope flags featured reads (has_global_scope / has_per_asic_scope). */
export interface FeaturedScope {
  global: boolean;
  perAsic: boolean;
}

/**
 * The unit instances featured acts on for `feature` on `sw` (without `.service`): the feature
 * itself on a single-ASIC switch; on a multi-ASIC one `<feature>` for global scope and
 * `<feature>@0…` for per-ASIC scope (`all`: both, as its scope sync asks).
 */
export function featureInstances(
  sw: SwitchNode,
  feature: string,
  scope: FeaturedScope = { global: true, perAsic: false },
  all = false,
): string[] {
  if (sw.asics <= 1) return [feature];
  const out = scope.global || all ? [feature] : [];
  if (scope.perAsic || all) {
    for (let i = 0; i < sw.asics; i++) out.push(`${feature}@${i}`);
  }
  return out;
}

/** One systemctl call featured made, with its outcome. */
export interface FeaturedCommand {
  argv: string[];
  code: number;
  output: string;
}

/** What one featured action did. */
export interface FeaturedRun {
  /** The STATE_DB state featured writes; "skipped" when the unit was already there. */
  state: "enabled" | "disabled" | "failed" | "skipped";
  commands: FeaturedCommand[];
}

async function run(sw: SwitchNode, argv: string[], out: FeaturedCommand[]) {
  const r = await sw.exec(argv);
  const c = { argv, code: r.code, output: (r.stdout + r.stderr).trim() };
  out.push(c);
  return c;
}

/** `systemctl show <unit> --property UnitFileState` as featured reads it. */
export async function unitFileState(sw: SwitchNode, unit: string): Promise<string> {
  const r = await sw.systemctl("show", unit, "--property", "UnitFileState");
  if (r.code !== 0) return "invalid";
  return r.stdout.trim().replace(/^UnitFileState=/, "");
}

/** featured's set_feature_state: the host's STATE_DB and, multi-ASIC, every namespace's. */
async function writeFeatureState(sw: SwitchNode, feature: string, state: string) {
  const asics = sw.asics > 1 ? [undefined, ...Array.from({ length: sw.asics }, (_, i) => i)] : [
    undefined,
  ];
  for (const asic of asics) {
    await sw.redisCli(asic, 6, "HSET", `FEATURE|${feature}`, "state", state);
  }
}

/** featured's stop, disable, mask of one unit after waiting while it is activating. */
async function disableUnit(sw: SwitchNode, unit: string, commands: FeaturedCommand[]) {
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    const s = await run(sw, ["systemctl", "is-active", unit], commands);
    if (s.output !== "activating") break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  for (const verb of ["stop", "disable", "mask"]) {
    if ((await run(sw, ["systemctl", verb, unit], commands)).code !== 0) return false;
  }
  return true;
}

/**
 * featured's walk over the instances of `feature` towards `target`: an instance whose unit file is
 * already there (`done`) is skipped; `change` runs featured's systemctl sequence on the others. The
 * first failed change writes `failed` to STATE_DB and stops; when at least one changed, STATE_DB
 * gets `target`.
 */
async function changeInstances(
  sw: SwitchNode,
  feature: string,
  scope: FeaturedScope | undefined,
  target: "enabled" | "disabled",
  done: (unitFileState: string) => boolean,
  change: (unit: string, commands: FeaturedCommand[]) => Promise<boolean>,
): Promise<FeaturedRun> {
  const commands: FeaturedCommand[] = [];
  let acted = false;
  for (const name of featureInstances(sw, feature, scope)) {
    const unit = `${name}.service`;
    if (done(await unitFileState(sw, unit))) continue;
    acted = true;
    if (!await change(unit, commands)) {
      await writeFeatureState(sw, feature, "failed");
      return { state: "failed", commands };
    }
  }
  if (!acted) return { state: "skipped", commands };
  await writeFeatureState(sw, feature, target);
  return { state: target, commands };
}

/** featured's disable of `feature` (its unit `<feature>.service`, or each instance's). */
export function featuredDisable(
  sw: SwitchNode,
  feature: string,
  scope?: FeaturedScope,
): Promise<FeaturedRun> {
  return changeInstances(
    sw,
    feature,
    scope,
    "disabled",
    (state) => ["disabled", "masked"].includes(state),
    (unit, commands) => disableUnit(sw, unit, commands),
  );
}

/** featured's enable of `feature` (its unit, or each instance's): unmask, enable, start. */
export function featuredEnable(
  sw: SwitchNode,
  feature: string,
  scope?: FeaturedScope,
): Promise<FeaturedRun> {
  return changeInstances(
    sw,
    feature,
    scope,
    "enabled",
    (state) => state === "enabled",
    async (unit, commands) => {
      for (const verb of ["unmask", "enable", "start"]) {
        const c = await run(sw, ["systemctl", verb, unit], commands);
        // A failed `enable` does not stop the sequence; a failed unmask or start does.
        if (c.code !== 0 && verb !== "enable") return false;
      }
      return true;
    },
  );
}

/** featured's auto_restart handling: the drop-in of each instance, then daemon-reload. */
export async function featuredAutoRestart(
  sw: SwitchNode,
  feature: string,
  autoRestart: "enabled" | "disabled",
  scope?: FeaturedScope,
): Promise<FeaturedRun> {
  const text = `[Service]\nRestart=${autoRestart === "enabled" ? "always" : "no"}\n`;
  const commands: FeaturedCommand[] = [];
  let ok = true;
  for (const name of featureInstances(sw, feature, scope)) {
    const dir = `/etc/systemd/system/${name}.service.d`;
    const argv = ["sh", "-c", `mkdir -p ${dir} && cat > ${dir}/auto_restart.conf`];
    const written = await sw.exec(argv, { stdin: text });
    commands.push({ argv, code: written.code, output: (written.stdout + written.stderr).trim() });
    ok &&= written.code === 0;
  }
  const reload = await run(sw, ["systemctl", "daemon-reload"], commands);
  return { state: ok && reload.code === 0 ? "enabled" : "failed", commands };
}

/**
 * featured's sync_feature_scope on a multi-ASIC switch: every instance the scope leaves out
 * (`<feature>` without global scope, `<feature>@N` without per-ASIC scope) that is not masked yet
 * is stopped, disabled and masked. Nothing on a single-ASIC switch.
 */
export async function featuredSyncScope(
  sw: SwitchNode,
  feature: string,
  scope: FeaturedScope,
): Promise<FeaturedRun> {
  const commands: FeaturedCommand[] = [];
  if (sw.asics <= 1) return { state: "skipped", commands };
  for (const name of featureInstances(sw, feature, scope, true)) {
    const perAsic = name.includes("@");
    if (perAsic ? scope.perAsic : scope.global) continue;
    const unit = `${name}.service`;
    const state = await unitFileState(sw, unit);
    if (state === "masked" || state === "") continue;
    for (const verb of ["stop", "disable", "mask"]) {
      if ((await run(sw, ["systemctl", verb, unit], commands)).code !== 0) {
        await writeFeatureState(sw, feature, "failed");
        return { state: "failed", commands };
      }
    }
  }
  return { state: "enabled", commands };
}

// ---- featured's whole sequence set, as a regression run -----------------------------------------

/** What featured's sequences act on: the feature, its scope, each instance's daemon port. */
export interface FeaturedTarget {
  feature: string;
  scope?: FeaturedScope;
  /** Port each instance's daemon serves (instance name, e.g. `telemetry@0`, -> port). */
  ports: Record<string, number>;
}

/**
 * Sets `FEATURE|<feature> state` in the host's CONFIG_DB and, multi-ASIC, in every namespace's,
 * featured's trigger (each per-ASIC container reads its own namespace's row).
 */
export async function setFeatureState(sw: SwitchNode, feature: string, state: string) {
  const asics = sw.asics > 1 ? Array.from({ length: sw.asics }, (_, i) => i) : [];
  for (const asic of [undefined, ...asics]) {
    await sw.redisCli(asic, 4, "HSET", `FEATURE|${feature}`, "state", state);
  }
}

/** The ASIC id of an instance name (`telemetry@1` -> 1), undefined for the global one. */
function instanceAsic(name: string): number | undefined {
  const at = name.indexOf("@");
  return at < 0 ? undefined : Number(name.slice(at + 1));
}

/**
 * Running instances of `feature` right now, per unit instance: its native Docker container
 * (`<feature>` or `<feature>N`) plus the CRI containers of that instance's pods (per-ASIC: the
 * pods labelled `asic=N`).
 */
export async function runningInstances(
  sw: SwitchNode,
  feature: string,
  names: string[],
): Promise<Record<string, { docker: number; cri: number }>> {
  const script = names.map((name) => {
    const asic = instanceAsic(name);
    const docker = `docker ps -q --filter name=^${feature}${
      asic ?? ""
    }$ --filter status=running | wc -l`;
    const cri = asic === undefined
      ? `crictl ps -q --state Running --name '^${feature}$' | wc -l`
      : `for p in $(crictl pods -q --label asic=${asic}); do ` +
        `crictl ps -q --state Running --pod "$p" --name '^${feature}$'; done | wc -l`;
    return `${docker}; ${cri}`;
  }).join("; ");
  const r = await sw.exec(["sh", "-c", script]);
  const n = r.stdout.trim().split("\n").map(Number);
  return Object.fromEntries(
    names.map((name, i) => [name, { docker: n[2 * i] || 0, cri: n[2 * i + 1] || 0 }]),
  );
}

/** Samples `runningInstances` until ended; remembers the worst moment of any instance. */
export function instanceSampler(sw: SwitchNode, feature: string, names: string[]) {
  let stop = false;
  let samples = 0;
  let worst = { docker: 0, cri: 0, at: "", instance: "" };
  const loop = (async () => {
    while (!stop) {
      const all = await runningInstances(sw, feature, names).catch(() => undefined);
      if (all) {
        samples++;
        for (const [instance, n] of Object.entries(all)) {
          if (n.docker + n.cri > worst.docker + worst.cri) {
            worst = { ...n, at: new Date().toISOString(), instance };
          }
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

/** systemd's and the daemon's view of each instance (the daemon's owner: serving or none). */
async function observedInstances(sw: SwitchNode, target: FeaturedTarget, names: string[]) {
  const out: Record<string, Record<string, string>> = {};
  for (const name of names) {
    const r = await sw.systemctl("show", name, "-p", "ActiveState,SubState");
    const u = Object.fromEntries(
      r.stdout.trim().split("\n").map((
        l,
      ) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
    out[name] = {
      ActiveState: u.ActiveState,
      SubState: u.SubState,
      UnitFileState: await unitFileState(sw, `${name}.service`),
      daemon: (await daemonOwner(sw, target.ports[name])) === "none" ? "none" : "serving",
    };
  }
  return out;
}

/**
 * Who serves 127.0.0.1:`port` on the switch: "kubernetes" (a process in a kubepods cgroup),
 * "docker" (the native container's cgroup), "none", or the cgroup path.
 */
export async function daemonOwner(sw: SwitchNode, port: number): Promise<string> {
  const r = await sw.exec(["ss", "-Hltnp", `sport = :${port}`]);
  const pid = /pid=(\d+)/.exec(r.stdout)?.[1];
  if (!pid) return "none";
  const cg = await sw.exec(["cat", `/proc/${pid}/cgroup`]);
  const mem = cg.stdout.split("\n").find((l) => l.split(":")[1] === "memory") ?? "";
  if (mem.includes("/kubelet/kubepods")) return "kubernetes";
  if (mem.includes(`${sw.cgroup}/docker/`)) return "docker";
  return mem.split(":")[2] ?? "unknown";
}

async function until(what: string, ms: number, probe: () => Promise<boolean>) {
  const end = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

function check(ok: boolean, message: string) {
  if (!ok) throw new Error(message);
}

function checkCommands(run: FeaturedRun, what: string) {
  for (const c of run.commands) {
    if (c.argv[1] === "is-active") continue; // the activating poll answers 3 when inactive
    check(c.code === 0, `${what}: ${c.argv.join(" ")} -> ${c.code}: ${c.output}`);
  }
}

/**
 * featured's whole sequence set on `target` (every instance featured names): the auto_restart
 * drop-in + daemon-reload; disable (then a second disable, which featured skips); enable; five
 * quick disable/enable cycles, CONFIG_DB set before each as featured's trigger. Throws on a failed
 * systemctl call, a mask/unmask that did not succeed, or a daemon that does not come back from
 * `serving` ("docker" natively, "kubernetes" under v2); returns the unit and daemon states seen
 * and the instance samples (never compare those across runs; check them with
 * {@link checkOneInstance}).
 */
export async function featuredSequences(
  sw: SwitchNode,
  target: FeaturedTarget,
  serving: string,
): Promise<Record<string, unknown>> {
  const { feature, scope } = target;
  const names = featureInstances(sw, feature, scope);
  const allServe = async (want: (o: string) => boolean) => {
    for (const n of names) if (!want(await daemonOwner(sw, target.ports[n]))) return false;
    return true;
  };
  const sampler = instanceSampler(sw, feature, names);
  const states: Record<string, unknown> = {};
  try {
    const ar = await featuredAutoRestart(sw, feature, "enabled", scope);
    checkCommands(ar, "auto_restart");
    states.restart = [];
    for (const n of names) {
      (states.restart as string[]).push(
        (await sw.systemctl("show", n, "-p", "Restart")).stdout.trim(),
      );
    }

    await setFeatureState(sw, feature, "disabled");
    const off = await featuredDisable(sw, feature, scope);
    check(off.state === "disabled", `disable: ${off.state}: ${JSON.stringify(off.commands)}`);
    checkCommands(off, "disable");
    const verbs = off.commands.filter((c) => c.argv[1] !== "is-active").map((c) => c.argv[1]);
    check(
      JSON.stringify(verbs) === JSON.stringify(names.flatMap(() => ["stop", "disable", "mask"])),
      `disable ran ${verbs.join(", ")}`,
    );
    await until("no daemon serving", 60_000, () => allServe((o) => o === "none"));
    states.disabled = await observedInstances(sw, target, names);
    states.disabledAgain = (await featuredDisable(sw, feature, scope)).state; // featured skips it

    await setFeatureState(sw, feature, "enabled");
    const on = await featuredEnable(sw, feature, scope);
    check(on.state === "enabled", `enable: ${on.state}: ${JSON.stringify(on.commands)}`);
    checkCommands(on, "enable");
    await until(
      `every daemon served from ${serving}`,
      240_000,
      () => allServe((o) => o === serving),
    );
    states.enabled = await observedInstances(sw, target, names);

    const cycles: string[] = [];
    for (let i = 0; i < 5; i++) {
      await setFeatureState(sw, feature, "disabled");
      const d = await featuredDisable(sw, feature, scope);
      await setFeatureState(sw, feature, "enabled");
      const e = await featuredEnable(sw, feature, scope);
      for (const c of [...d.commands, ...e.commands]) {
        if (["mask", "unmask"].includes(c.argv[1])) {
          check(c.code === 0, `cycle ${i + 1}: ${c.argv.join(" ")}: ${c.output}`);
        }
      }
      cycles.push(`${d.state}/${e.state}`);
    }
    states.cycles = cycles;
    await until(
      `every daemon back from ${serving} after the cycles`,
      240_000,
      () => allServe((o) => o === serving),
    );
    await until("every unit active after the cycles", 120_000, async () => {
      for (const n of names) {
        const r = await sw.systemctl("is-active", n);
        if (r.stdout.trim() !== "active") return false;
      }
      return true;
    });
    states.afterCycles = await observedInstances(sw, target, names);
  } finally {
    states.instances = await sampler.end();
  }
  return states;
}

/** Checks a {@link featuredSequences} run's samples: enough of them, never two at once. */
export function checkOneInstance(what: string, instances: unknown): string {
  const s = instances as {
    samples: number;
    worst: { docker: number; cri: number; instance: string };
  };
  check(s.samples > 10, `${what}: only ${s.samples} samples`);
  check(
    s.worst.docker + s.worst.cri <= 1,
    `${what}: two instances of ${s.worst.instance} at once: ${JSON.stringify(s.worst)}`,
  );
  return `${what}: ${s.samples} samples, at most ${s.worst.docker + s.worst.cri} per instance`;
}
