// `deno task lab`, the main job: a simulated switch on a real redis (CONFIG_DB), the bundled
// telemetry example, and each scenario under lab/scenarios/ (run in file-name order), printed as a
// timeline with measured latencies. Exits 0 only when every step converged.
//
// Usage: deno task lab [--with-kube|--no-kube] [--real] [--fleet N] [--only WORD] [--keep]
import { parseCli, runCli, UsageError } from "../src/cli.ts";
import { startRedis } from "../sandbox/harness/redis.ts";
import { kubeBinDir } from "../sandbox/harness/kube.ts";
import { Timeline } from "./timeline.ts";
import type { LabContext, LabScenario } from "./context.ts";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const HELP = `deno task lab — run kubesonic-migrate's flows on a simulated switch

Usage: deno task lab [options]
  --with-kube      start the real control plane (default when the binaries are cached)
  --no-kube        do not start the control plane; skip the Kubernetes scenarios
  --real           also run the real-switch flows (systemd + containerd + kubelet)
  --fleet N        simulated switches for the fleet scenarios (default 20)
  --only WORD      run only scenarios whose file name contains WORD (repeatable)
  --keep           keep the sandbox directory afterwards
  --help, --version

Example: deno task lab --only entrypoint`;

const LAB_DIR = dirname(fileURLToPath(import.meta.url));

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

  let kubeBin = values["no-kube"] ? undefined : kubeBinDir();
  if (values["with-kube"] && !kubeBin) {
    console.log("lab: building the Kubernetes binaries (cached after the first time)...");
    const built = await new Deno.Command("bash", {
      args: [join(LAB_DIR, "..", "scripts", "build-kube.sh")],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (!built.success) throw new Error("building the Kubernetes binaries failed (see above)");
    kubeBin = kubeBinDir();
  }
  if (kubeBin) Deno.env.set("KS_KUBE_BIN", kubeBin);

  const dir = await Deno.makeTempDir({ prefix: "ks-lab-" });
  const cleanups: (() => Promise<void> | void)[] = [];
  const timeline = new Timeline();
  console.log(`lab: sandbox ${dir}`);
  const redis = await startRedis({ dir: join(dir, "db") });
  cleanups.push(() => redis.stop());
  console.log(`lab: CONFIG_DB is a real redis-server at ${redis.main.socketPath} (db 4)`);
  const ctx: LabContext = {
    dir,
    redis,
    timeline,
    kubeBin,
    options: {
      withKube: Boolean(kubeBin),
      real: values.real ?? false,
      fleet,
      only: values.only ?? [],
      keep: values.keep ?? false,
    },
    defer: (fn) => cleanups.push(fn),
  };
  try {
    const files = [...Deno.readDirSync(join(LAB_DIR, "scenarios"))]
      .filter((e) => e.isFile && /^\d+_.*\.ts$/.test(e.name))
      .map((e) => e.name)
      .sort();
    for (const file of files) {
      if (ctx.options.only.length > 0 && !ctx.options.only.some((w) => file.includes(w))) continue;
      const mod = await import(join(LAB_DIR, "scenarios", file)) as { scenario: LabScenario };
      const sc = mod.scenario;
      const missing = (sc.needs ?? []).filter((n) =>
        (n === "kube" && !ctx.options.withKube) || (n === "real" && !ctx.options.real)
      );
      if (missing.length > 0) {
        console.log(
          `\n== ${sc.title}\n   skipped: needs ${missing.join(", ")}` +
            (missing.includes("kube")
              ? " (run scripts/build-kube.sh once, or deno task lab --with-kube)"
              : "") +
            (missing.includes("real") ? " (deno task lab --real)" : ""),
        );
        continue;
      }
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
  }
  return timeline.summary() ? 0 : 1;
}

if (import.meta.main) await runCli("lab", main);
