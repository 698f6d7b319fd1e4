// Lab: the sidecar's ks-patcher on a simulated switch's host root (the design's desired-state sidecar, docs/design.md). The
// bundled patcher installs the stub launcher, a postupgrade-style `sed -i` is undone on screen
// with its measured repair latency, a second feature's different container_checker is refused
// (no ping-pong), and native mode puts the exact original bytes back.
import { join } from "node:path";
import type { LabScenario } from "../context.ts";
import { runTool } from "../../sandbox/harness/bin.ts";
import { waitUntil } from "../../sandbox/harness/net.ts";
import { formatMs } from "../timeline.ts";
import {
  createPatcherSandbox,
  KUBE_CHECKER,
  KUBE_LAUNCHER,
  NATIVE_CHECKER,
  NATIVE_LAUNCHER,
  spawnPatcherLoop,
  telemetryManifest,
} from "../../sandbox/fixtures/patcher_host.ts";

const LAUNCHER = "usr/local/bin/telemetry.sh";

export const scenario: LabScenario = {
  title: "4.5/4.6 ks-patcher: desired host files, drift repaired in ms, originals restored",
  async run(ctx) {
    const { timeline } = ctx;
    const sb = await createPatcherSandbox();
    ctx.defer(() => sb.cleanup());
    const env = { PATH: sb.systemctl.path };
    timeline.note(
      `host root ${sb.hostRoot} (systemctl is the recording fake: ${sb.systemctl.logPath})`,
    );

    const child = await spawnPatcherLoop(sb, "60s", "piped");
    const stderr: string[] = [];
    (async () => {
      const dec = new TextDecoder();
      for await (const chunk of child.stderr) {
        stderr.push(...dec.decode(chunk).split("\n").filter(Boolean));
      }
    })();
    let stopped = false;
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await child.status;
    };
    ctx.defer(stop);
    const read = (rel: string) => {
      try {
        return Deno.readTextFileSync(sb.host(rel));
      } catch {
        return null;
      }
    };

    await timeline.step(
      "sidecar starts: stub launcher, drop-in and checker installed",
      async () => {
        await waitUntil(
          () => read(LAUNCHER) === KUBE_LAUNCHER && sb.systemctl.calls().length >= 3,
          30_000,
          "first pass",
        );
        return `originals backed up; actions: ${sb.systemctl.calls().join(", ")}`;
      },
    );

    for (
      const [i, what] of ["sed -i on /usr/local/bin/telemetry.sh", "cp over /bin/container_checker"]
        .entries()
    ) {
      await timeline.step(`postupgrade ${what} is undone`, async () => {
        await new Promise((r) => setTimeout(r, 100));
        const callsBefore = sb.systemctl.calls().length;
        const rel = i === 0 ? LAUNCHER : "usr/bin/container_checker";
        const want = i === 0 ? KUBE_LAUNCHER : KUBE_CHECKER;
        const t0 = performance.now();
        if (i === 0) {
          const sed = await new Deno.Command("sed", {
            args: ["-i", "s/ks-stub/docker start/", sb.host(rel)],
          }).output();
          if (!sed.success) throw new Error("sed failed");
        } else {
          await Deno.writeTextFile(join(sb.dir, "upgrade_checker"), NATIVE_CHECKER);
          const cp = await new Deno.Command("cp", {
            args: [join(sb.dir, "upgrade_checker"), sb.host(rel)],
          }).output();
          if (!cp.success) throw new Error("cp failed");
        }
        const edited = performance.now();
        await waitUntil(() => read(rel) === want, 5_000, "repair", 1);
        const repaired = performance.now() - edited;
        await waitUntil(() => sb.systemctl.calls().length > callsBefore + 1, 5_000, "actions");
        return `repaired ${formatMs(repaired)} after the edit (edit took ${
          formatMs(edited - t0)
        }); ` +
          `then ${sb.systemctl.calls().slice(callsBefore).join(", ")}`;
      });
    }

    await timeline.step(
      "a second feature's different container_checker is refused (no ping-pong)",
      async () => {
        await Deno.writeTextFile(join(sb.sidecarDir, "checker_202411"), KUBE_CHECKER + "\n");
        const path = await sb.writeManifest({
          apiVersion: "kubesonic.io/v1",
          kind: "HostFiles",
          feature: "restapi",
          mode: "kube",
          files: [{
            path: "/bin/container_checker",
            source: "checker_202411",
            mode: "0755",
            actions: ["restart monit"],
          }],
        }, "restapi.yaml");
        const out = await runTool("ks-patcher", [...sb.cliArgs(path), "--once"], { env });
        if (out.code !== 1) throw new Error(`expected exit 1, got ${out.code}`);
        if (read("usr/bin/container_checker") !== KUBE_CHECKER) {
          throw new Error(
            "checker was overwritten",
          );
        }
        const line = out.stderr.split("\n").find((l) => l.includes("is owned by")) ?? "";
        return line.replace(/^.*ERROR: /, "");
      },
    );

    await timeline.step("rollback: native mode restores the exact original bytes", async () => {
      await stop();
      const path = await sb.writeManifest(telemetryManifest("native"), "native.yaml");
      const out = await runTool("ks-patcher", [...sb.cliArgs(path), "--once"], { env });
      if (out.code !== 0) {
        throw new Error(`native pass exit ${out.code}: ${out.stderr.trim().split("\n").at(-1)}`);
      }
      if (read(LAUNCHER) !== NATIVE_LAUNCHER) throw new Error("launcher is not the original");
      if (read("usr/bin/container_checker") !== NATIVE_CHECKER) {
        throw new Error("checker is not the original");
      }
      if (read("etc/systemd/system/telemetry.service.d/kubesonic.conf") !== null) {
        throw new Error("the drop-in (absent originally) is still there");
      }
      return "launcher and checker byte-identical to the originals, drop-in removed, ownership released";
    });
    const repairs = stderr.filter((l) => l.includes("file reconciled")).length;
    timeline.note(
      `ks-patcher logged ${repairs} repairs, e.g.: ${
        stderr.find((l) => l.includes("file reconciled")) ?? ""
      }`,
    );
  },
};
