// A sandbox switch for patcher tests: a temp host root shaped like SONiC's (`/usr/local/bin`,
// `/etc/systemd/system`, `/bin`), the native originals in place, the sidecar's desired files, a
// manifest in contract-3 shape, a state dir, and the recording systemctl on PATH.
import { join } from "node:path";
import { stringify } from "yaml";
import { createHostCommands } from "../../src/host/commands.ts";
import { HostPaths } from "../../src/host/paths.ts";
import { createLogger, type LogSink } from "../../src/log.ts";
import { loadManifest } from "../../src/patcher/manifest.ts";
import { createPatcherContext, type PatcherContext } from "../../src/patcher/reconcile.ts";
import type { FaultHook } from "../../src/host/files.ts";
import {
  createRecordingSystemctl,
  type RecordingSystemctl,
} from "../harness/recording_systemctl.ts";
import { toolCommand } from "../harness/bin.ts";

export const NATIVE_LAUNCHER =
  '#!/bin/bash\n# native telemetry.sh\nexec /usr/bin/telemetry.sh "$@"\n';
export const KUBE_LAUNCHER =
  '#!/bin/bash\n# kubesonic stub launcher\nexec ks-stub telemetry "$@"\n';
export const DROPIN = "[Service]\nExecStartPre=\nExecStartPre=/usr/local/bin/telemetry.sh start\n";
export const NATIVE_CHECKER = "#!/usr/bin/python3\n# native container_checker\nprint('ok')\n";
export const KUBE_CHECKER = "#!/usr/bin/python3\n# kube-aware container_checker\nprint('ok k8s')\n";

/** One sandbox. */
export interface PatcherSandbox {
  dir: string;
  hostRoot: string;
  stateDir: string;
  manifestPath: string;
  sidecarDir: string;
  systemctl: RecordingSystemctl;
  allowRoots: string[];
  /** On-disk path of a host path. */
  host(path: string): string;
  /** Writes a manifest (object form of contract 3) to `name` (default the main manifest path). */
  writeManifest(doc: unknown, name?: string): Promise<string>;
  /** A context for in-process passes over the manifest at `path` (default the main one). */
  context(options?: { path?: string; fault?: FaultHook; sink?: LogSink }): Promise<PatcherContext>;
  /** CLI flags for the bundled tool (without --once etc.). */
  cliArgs(manifest?: string): string[];
  cleanup(): Promise<void>;
}

/** The telemetry manifest in contract-3 shape (kube or native mode). */
export function telemetryManifest(mode: "kube" | "native" = "kube"): Record<string, unknown> {
  return {
    apiVersion: "kubesonic.io/v1",
    kind: "HostFiles",
    feature: "telemetry",
    mode,
    files: [
      {
        path: "/usr/local/bin/telemetry.sh",
        source: "files/telemetry.sh",
        mode: "0755",
        owner: "0:0",
        actions: ["daemon-reload", "restart telemetry"],
      },
      {
        path: "/etc/systemd/system/telemetry.service.d/kubesonic.conf",
        content: DROPIN,
        mode: "0644",
        actions: ["daemon-reload", "restart telemetry"],
      },
      {
        path: "/bin/container_checker",
        source: "files/container_checker",
        mode: "0755",
        actions: ["daemon-reload", "restart monit"],
      },
    ],
  };
}

/** Creates a sandbox with native originals for the launcher and the checker (drop-in absent). */
export async function createPatcherSandbox(): Promise<PatcherSandbox> {
  const dir = await Deno.makeTempDir({ prefix: "ks-patcher-test-" });
  const hostRoot = join(dir, "host");
  const stateDir = join(hostRoot, "var/lib/kubesonic");
  const sidecarDir = join(dir, "sidecar");
  for (const d of ["usr/local/bin", "usr/bin", "etc/systemd/system", "var/lib"]) {
    await Deno.mkdir(join(hostRoot, d), { recursive: true });
  }
  await Deno.symlink("usr/bin", join(hostRoot, "bin")); // merged /usr, as on SONiC
  await Deno.writeTextFile(join(hostRoot, "usr/local/bin/telemetry.sh"), NATIVE_LAUNCHER, {
    mode: 0o755,
  });
  await Deno.chmod(join(hostRoot, "usr/local/bin/telemetry.sh"), 0o755);
  await Deno.writeTextFile(join(hostRoot, "usr/bin/container_checker"), NATIVE_CHECKER);
  await Deno.chmod(join(hostRoot, "usr/bin/container_checker"), 0o755);
  await Deno.mkdir(join(sidecarDir, "files"), { recursive: true });
  await Deno.writeTextFile(join(sidecarDir, "files/telemetry.sh"), KUBE_LAUNCHER);
  await Deno.writeTextFile(join(sidecarDir, "files/container_checker"), KUBE_CHECKER);
  const systemctl = await createRecordingSystemctl(join(dir, "fakebin"));
  const manifestPath = join(sidecarDir, "patcher.yaml");
  const allowRoots = ["/usr/local/bin", "/etc/systemd/system", "/bin"];
  const sandbox: PatcherSandbox = {
    dir,
    hostRoot,
    stateDir,
    manifestPath,
    sidecarDir,
    systemctl,
    allowRoots,
    host: (path) => join(hostRoot, path),
    async writeManifest(doc, name) {
      const path = name ? join(sidecarDir, name) : manifestPath;
      await Deno.writeTextFile(path, path.endsWith(".json") ? JSON.stringify(doc) : stringify(doc));
      return path;
    },
    async context(options = {}) {
      const manifest = await loadManifest(options.path ?? manifestPath);
      return createPatcherContext({
        manifest,
        paths: new HostPaths({ hostRoot, allowRoots }),
        host: createHostCommands({ nsenter: "never", hostRoot, env: { PATH: systemctl.path } }),
        stateDir,
        log: createLogger("ks-patcher", manifest.feature, options.sink ?? (() => {})),
        fault: options.fault,
      });
    },
    cliArgs: (manifest) => [
      "--manifest",
      manifest ?? manifestPath,
      "--host-root",
      hostRoot,
      "--state-dir",
      stateDir,
      "--nsenter",
      "never",
      ...allowRoots.flatMap((r) => ["--allow-root", r]),
    ],
    cleanup: () => Deno.remove(dir, { recursive: true }).catch(() => {}),
  };
  await sandbox.writeManifest(telemetryManifest());
  return sandbox;
}

/**
 * Starts the bundled `ks-patcher` loop on `sb` (`--interval interval`), the recording systemctl
 * first on PATH, stdout discarded and stderr `piped` or discarded (default). The caller stops it.
 */
export async function spawnPatcherLoop(
  sb: PatcherSandbox,
  interval: string,
  stderr: "piped" | "null" = "null",
): Promise<Deno.ChildProcess> {
  const cmd = await toolCommand("ks-patcher", [...sb.cliArgs(), "--interval", interval], {
    env: { PATH: sb.systemctl.path },
    stdout: "null",
    stderr,
  });
  return cmd.spawn();
}

/** Runs `fn` on a fresh sandbox (createPatcherSandbox) and cleans the sandbox up afterwards. */
export async function withPatcherSandbox(fn: (sb: PatcherSandbox) => Promise<void>): Promise<void> {
  const sb = await createPatcherSandbox();
  try {
    await fn(sb);
  } finally {
    await sb.cleanup();
  }
}
