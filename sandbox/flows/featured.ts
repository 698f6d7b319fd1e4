// featured's systemctl sequences (sonic-host-services scripts/featured, FeatureHandler), run on a
// lab switch exactly as featured runs them, so a test can compare what they leave behind on a
// native (v0) and a Kubernetes-backed (v2) unit:
//   disable: skip when UnitFileState is disabled/masked; wait (60 s, poll 1 s) while
//            `systemctl is-active` says activating; stop; disable; mask — any failure: "failed";
//   enable:  skip when UnitFileState is enabled; unmask; enable (errors ignored); start;
//   auto_restart: write /etc/systemd/system/<unit>.d/auto_restart.conf, daemon-reload.
// Each run ends with featured's STATE_DB FEATURE|<feature> state (enabled/disabled/failed).
import type { SwitchNode } from "../harness/switch.ts";

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

async function writeFeatureState(sw: SwitchNode, feature: string, state: string) {
  await sw.exec(["redis-cli", "-n", "6", "HSET", `FEATURE|${feature}`, "state", state]);
}

/** featured's disable of `feature` (its unit `<feature>.service`). */
export async function featuredDisable(sw: SwitchNode, feature: string): Promise<FeaturedRun> {
  const unit = `${feature}.service`;
  const commands: FeaturedCommand[] = [];
  if (["disabled", "masked"].includes(await unitFileState(sw, unit))) {
    return { state: "skipped", commands };
  }
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    const s = await run(sw, ["systemctl", "is-active", unit], commands);
    if (s.output !== "activating") break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  for (const verb of ["stop", "disable", "mask"]) {
    const c = await run(sw, ["systemctl", verb, unit], commands);
    if (c.code !== 0) {
      await writeFeatureState(sw, feature, "failed");
      return { state: "failed", commands };
    }
  }
  await writeFeatureState(sw, feature, "disabled");
  return { state: "disabled", commands };
}

/** featured's enable of `feature`. */
export async function featuredEnable(sw: SwitchNode, feature: string): Promise<FeaturedRun> {
  const unit = `${feature}.service`;
  const commands: FeaturedCommand[] = [];
  if ((await unitFileState(sw, unit)) === "enabled") return { state: "skipped", commands };
  for (const verb of ["unmask", "enable", "start"]) {
    const c = await run(sw, ["systemctl", verb, unit], commands);
    if (c.code !== 0 && verb !== "enable") {
      await writeFeatureState(sw, feature, "failed");
      return { state: "failed", commands };
    }
  }
  await writeFeatureState(sw, feature, "enabled");
  return { state: "enabled", commands };
}

/** featured's auto_restart handling: the drop-in, then daemon-reload. */
export async function featuredAutoRestart(
  sw: SwitchNode,
  feature: string,
  autoRestart: "enabled" | "disabled",
): Promise<FeaturedRun> {
  const dir = `/etc/systemd/system/${feature}.service.d`;
  const text = `[Service]\nRestart=${autoRestart === "enabled" ? "always" : "no"}\n`;
  const commands: FeaturedCommand[] = [];
  const argv = ["sh", "-c", `mkdir -p ${dir} && cat > ${dir}/auto_restart.conf`];
  const written = await sw.exec(argv, { stdin: text });
  commands.push({ argv, code: written.code, output: (written.stdout + written.stderr).trim() });
  const reload = await run(sw, ["systemctl", "daemon-reload"], commands);
  return { state: written.code === 0 && reload.code === 0 ? "enabled" : "failed", commands };
}
