// `deno task lab`, the main job: a simulated switch on a real redis (CONFIG_DB), the bundled
// telemetry example, and each scenario under lab/scenarios/ (run in file-name order), printed as a
// timeline with measured latencies. The Kubernetes binaries are built first when they are missing
// (once; cached) unless --no-kube. Every scenario that did not run is named in the last line; the
// lab exits 0 only when every step converged and nothing was skipped that the user did not ask to
// skip (--no-kube, --only, and the real switch without --real).
//
// Usage: deno task lab [--no-kube] [--real] [--fleet N] [--only WORD] [--keep]
import { parseCli, runCli, UsageError } from "../src/cli.ts";
import { startRedis } from "../sandbox/harness/redis.ts";
import { kubeBinDir } from "../sandbox/harness/kube.ts";
import { Timeline } from "./timeline.ts";
import type { LabContext, LabScenario } from "./context.ts";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const HELP = `deno task lab — run kubesonic-migrate's flows on a simulated switch

Usage: deno task lab [options]
  --no-kube        do not build or start the control plane; skip the Kubernetes scenarios
  --real           also run the real-switch flows (systemd + containerd + kubelet)
  --fleet N        simulated switches for the fleet scenarios (default 20)
  --only WORD      run only scenarios whose file name contains WORD (repeatable)
  --keep           keep the sandbox directory afterwards
  --with-kube      accepted for old scripts; starting the control plane is the default
  --help, --version

The Kubernetes binaries are built when they are missing (once, about 13 minutes on 2 cores;
cached in /var/cache/kubesonic, or KS_CACHE). The last line names every scenario that did not
run and why.

Exit codes: 0 every step converged and every scenario ran that was not skipped on request
(--no-kube, --only; the real switch without --real); 1 a step failed or a scenario was skipped
for another reason (the Kubernetes build failed, Docker is missing, ...); 2 usage.

Example: deno task lab --no-kube --only entrypoint`;

const LAB_DIR = dirname(fileURLToPath(import.meta.url));
/** A cold build of the Kubernetes binaries on a 2-core machine (README, Measured). */
const BUILD_MINUTES = 13;

/** A scenario that did not run (or not in full), why, and whether the user asked for that. */
interface Skip {
  name: string;
  reason: string;
  asked: boolean;
}

/** The lab's last line: the skipped scenarios grouped by reason, those not asked for first. */
export function skipLine(skips: Skip[], total: number): string {
  const group = (list: Skip[]) => {
    const byReason = new Map<string, string[]>();
    for (const s of list) byReason.set(s.reason, [...(byReason.get(s.reason) ?? []), s.name]);
    return [...byReason].map(([reason, names]) => `${names.join(", ")} (${reason})`).join("; ");
  };
  const unasked = skips.filter((s) => !s.asked);
  const asked = skips.filter((s) => s.asked);
  const parts = [];
  if (unasked.length > 0) parts.push(`NOT asked for: ${group(unasked)}`);
  if (asked.length > 0) parts.push(`as asked: ${group(asked)}`);
  const count = new Set(skips.map((s) => s.name)).size;
  return `lab: skipped ${count} of ${total} scenarios; ${parts.join("; ")}`;
}

/** Builds the Kubernetes binaries with scripts/build-kube.sh; a progress line every minute. */
async function buildKube(): Promise<string | undefined> {
  const cache = Deno.env.get("KS_CACHE") ?? "/var/cache/kubesonic";
  console.log(
    `lab: the Kubernetes binaries are missing: building them once into ${cache} ` +
      `(about ${BUILD_MINUTES} min on 2 cores; later runs reuse them; --no-kube skips this)`,
  );
  const t0 = Date.now();
  const minutes = () => Math.floor((Date.now() - t0) / 60_000);
  const ticker = setInterval(() => {
    console.log(
      `lab: still building the Kubernetes binaries: ${minutes()} of ~${BUILD_MINUTES} min`,
    );
  }, 60_000);
  try {
    const built = await new Deno.Command("bash", {
      args: [join(LAB_DIR, "..", "scripts", "build-kube.sh")],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (!built.success) {
      console.log(`lab: building the Kubernetes binaries failed (exit ${built.code}, see above)`);
      return undefined;
    }
  } finally {
    clearInterval(ticker);
  }
  const dir = kubeBinDir();
  console.log(
    `lab: Kubernetes binaries built in ${Math.round((Date.now() - t0) / 1000)} s: ${dir}`,
  );
  return dir;
}

async function main(): Promise<number> {
  const { values } = parseCli({
    tool: "lab",
    help: HELP,
    allowPositionals: false,
    options: {
      "with-kube": { type: "boolean" },
      "no-kube": { type: "boolean" },
      real: { type: "boolean", default: false },
      fleet: { type: "string", default: "20" },
      only: { type: "string", multiple: true, default: [] },
      keep: { type: "boolean", default: false },
    },
  }, Deno.args);
  const fleet = Number(values.fleet);
  if (!Number.isInteger(fleet) || fleet < 1) {
    throw new UsageError(`--fleet: "${values.fleet}" is not a positive integer`);
  }
  if (values["no-kube"] && values["with-kube"]) {
    throw new UsageError("--no-kube and --with-kube contradict each other");
  }
  const only = values.only ?? [];
  const real = values.real ?? false;
  const noKube = values["no-kube"] ?? false;

  const skips: Skip[] = [];
  const files = [...Deno.readDirSync(join(LAB_DIR, "scenarios"))]
    .filter((e) => e.isFile && /^\d+_.*\.ts$/.test(e.name))
    .map((e) => e.name)
    .sort();
  const selected: { name: string; scenario: LabScenario }[] = [];
  for (const file of files) {
    const name = basename(file, ".ts");
    if (only.length > 0 && !only.some((w) => file.includes(w))) {
      skips.push({ name, reason: `--only ${only.join(" --only ")}`, asked: true });
      continue;
    }
    const mod = await import(join(LAB_DIR, "scenarios", file)) as { scenario: LabScenario };
    selected.push({ name, scenario: mod.scenario });
  }
  if (only.length > 0 && selected.length === 0) {
    throw new UsageError(`--only ${only.join(", ")}: no scenario file name contains that`);
  }

  // Build the Kubernetes binaries only when a scenario to run needs them.
  const wantKube = !noKube && selected.some((s) => s.scenario.needs?.includes("kube"));
  let kubeBin = noKube ? undefined : kubeBinDir();
  let kubeMissing = "--no-kube";
  if (wantKube && !kubeBin) {
    kubeBin = await buildKube();
    kubeMissing = "the Kubernetes build failed: see its output above";
  }
  if (kubeBin) Deno.env.set("KS_KUBE_BIN", kubeBin);

  const dir = await Deno.makeTempDir({ prefix: "ks-lab-" });
  const cleanups: (() => Promise<void> | void)[] = [];
  const timeline = new Timeline();
  console.log(`lab: sandbox ${dir}`);
  const redis = await startRedis({ dir: join(dir, "db") });
  cleanups.push(() => redis.stop());
  console.log(`lab: CONFIG_DB is a real redis-server at ${redis.main.socketPath} (db 4)`);
  let current = "";
  const ctx: LabContext = {
    dir,
    redis,
    timeline,
    kubeBin,
    options: { withKube: Boolean(kubeBin), real, fleet, only, keep: values.keep ?? false },
    defer: (fn) => cleanups.push(fn),
    skip: (reason) => {
      timeline.note(`skipped: ${reason}`);
      skips.push({ name: current, reason, asked: false });
    },
  };
  let ok: boolean;
  try {
    for (const { name, scenario: sc } of selected) {
      const missing: Skip[] = [];
      if (sc.needs?.includes("kube") && !ctx.options.withKube) {
        missing.push({ name, reason: kubeMissing, asked: noKube });
      }
      if (sc.needs?.includes("real") && !real) {
        missing.push({ name, reason: "the real switch is opt-in: --real", asked: true });
      }
      if (missing.length > 0) {
        console.log(`\n== ${sc.title}\n   skipped: ${missing.map((m) => m.reason).join("; ")}`);
        skips.push(...missing);
        continue;
      }
      current = name;
      timeline.scenario(sc.title);
      try {
        await sc.run(ctx);
      } catch (error) {
        await timeline.step("scenario finished", () => {
          throw error;
        });
      }
    }
  } finally {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (error) {
        console.error(`lab: cleanup failed: ${(error as Error).message}`);
      }
    }
    if (!ctx.options.keep) await Deno.remove(dir, { recursive: true }).catch(() => {});
    else console.log(`lab: kept ${dir}`);
    ok = timeline.summary();
    if (skips.length > 0) console.log(skipLine(skips, files.length));
  }
  return ok && skips.every((s) => s.asked) ? 0 : 1;
}

if (import.meta.main) await runCli("lab", main);
