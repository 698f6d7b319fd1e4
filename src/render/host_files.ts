// The host side of a feature under Kubernetes: the files the sidecar's ks-patcher keeps on the
// switch (the stub launcher the unit calls, a unit drop-in, optionally ks-stub itself and the
// stub's kubeconfig) and the two desired-state manifests (ks-patcher's HostFiles): `kube` installs them, `native`
// restores the originals (the v1 rollback state). Everything here is text; the ConfigMap that
// carries it is built in configmap.ts.
import { createHash } from "node:crypto";
import { posix } from "node:path";
import { type FeatureSpec, SpecError, TOOLS_IMAGE_TREE } from "../feature/spec.ts";
import { TREE_BUNDLE_DIR, type TreeIndex } from "../build/tree.ts";
import type { InstancePlan } from "./instances.ts";

/** Where the ConfigMap with the host files and manifests is mounted in the sidecar. */
export const FILES_DIR = "/etc/kubesonic/files";
/** Where the stub's ServiceAccount token Secret is mounted in the sidecar (stub.apiServer only). */
export const STUB_CREDENTIALS_DIR = "/var/run/kubesonic/stub-credentials";
/** The drop-in file name under `/etc/systemd/system/<unit>.service.d/`. */
export const DROPIN_NAME = "50-kubesonic.conf";

/** One entry of a HostFiles manifest (what ks-patcher reads). */
export interface ManifestFile {
  path: string;
  source: string;
  sha256?: string;
  mode: string;
  owner: string;
  nativeSource?: string;
  actions: string[];
  /** Bound of the source's size for the patcher (the host runtime's big files). */
  maxBytes?: number;
  /** Part of the host runtime (not written to the manifest): restored last on rollback. */
  runtime?: boolean;
}

/** Where the host runtime keeps Deno's caches: tmpfs, so nothing of it outlives a reboot. */
export const HOST_DENO_DIR = "/run/kubesonic/deno";

/**
 * The tree files the host runtime needs: Deno, the bundle (its entry and every chunk), each
 * tool's launcher.
 */
function runtimeTreeFiles(spec: FeatureSpec, tree: TreeIndex): string[] {
  const tools = ["ks-stub", ...(spec.hostRuntime.checkers ? Object.keys(CHECKERS) : [])];
  const bundle = tree.files.map((f) => f.path).filter((p) => p.startsWith(`${TREE_BUNDLE_DIR}/`));
  return ["bin/deno", ...bundle, ...tools.map((t) => `bin/${t}`)];
}

/**
 * The monit checkers the host runtime can carry, at SONiC's own paths (monit's `sonic-host` and
 * `monit_<feature>` call these): the originals are backed up and come back with the rollback.
 */
export const CHECKERS: Readonly<Record<string, string>> = {
  "ks-container-checker": "/usr/bin/container_checker",
  "ks-memory-checker": "/usr/bin/memory_checker",
};

/** The host runtime's versioned directory for `tree`. */
export function hostRuntimeDir(spec: FeatureSpec, tree: TreeIndex): string {
  return `${spec.hostRuntime.prefix}/${tree.hash}`;
}

/**
 * A host launcher: names the versioned tree, so switching versions is one atomic write of this
 * file after the new tree is complete. Deno's caches go to tmpfs, not into the managed tree.
 */
export function hostToolLauncher(spec: FeatureSpec, tree: TreeIndex, tool: string): string {
  const dir = hostRuntimeDir(spec, tree);
  return [
    "#!/bin/sh",
    // The same bytes for every feature: features share the host runtime (ownership registry).
    `# ${tool}: installed by kubesonic (ks-patcher; rendered by ks-render): the host runtime`,
    `# ${tree.version} (tree ${tree.hash}) under ${dir}/. The last feature's rollback removes it.`,
    `KS_DENO_DIR=${HOST_DENO_DIR} exec ${dir}/bin/${tool} "$@"`,
    "",
  ].join("\n");
}

/** Size bound for a source of `size` bytes: the next MiB up. */
export function maxBytesFor(size: number): number {
  return Math.ceil((size + 1) / 1048576) * 1048576;
}

/** The host files of a feature: ConfigMap data, the two manifests, the allowed roots. */
export interface HostFiles {
  /** ConfigMap key -> text (the sidecar sees each at FILES_DIR/<key>). */
  data: Record<string, string>;
  /** Manifest file entries, in the order the patcher should apply them. */
  files: ManifestFile[];
  /** Host directories the patcher may write (one per file's directory, narrowest possible). */
  allowRoots: string[];
  /** Host path of the stub's kubeconfig when stub.apiServer is set. */
  stubKubeconfig?: string;
}

function sha256(text: string): string {
  return createHash("sha256").update(new TextEncoder().encode(text)).digest("hex");
}

/** The stub launcher that replaces `/usr/local/bin/<feature>.sh`. */
export function stubLauncher(spec: FeatureSpec, kubeconfig?: string): string {
  // ks-stub selects pods by raw_container_name=<arg> and a container named <arg>: the container
  // name, which is the feature's name unless the spec says otherwise.
  const args = [`${spec.containerName}`, `--kube-namespace ${spec.namespace}`];
  if (kubeconfig) args.push(`--kubeconfig ${kubeconfig}`);
  // status (and stop/restart without the API server) ask this node's container runtime.
  if (spec.stub.runtimeSocket) args.push(`--runtime-socket ${spec.stub.runtimeSocket}`);
  return [
    "#!/bin/sh",
    `# ${spec.name} launcher installed by kubesonic (ks-patcher; rendered by ks-render).`,
    `# Kubernetes runs the ${spec.name} container now: ${spec.unit.name}.service's start / wait /`,
    "# stop reach it through ks-stub. Rolling back to v1 restores the original launcher.",
    "#",
    "# systemd also runs ExecStop after the main process ended on its own, and then sets",
    "# EXIT_CODE. That process was `wait`, which returns only once the pod is gone, or, right after",
    "# this file replaced the native launcher, the native container's `docker wait`: either way",
    "# there is no pod of ours to stop, and deleting the new one would only restart it.",
    'if [ "${1:-}" = stop ] && [ -n "${EXIT_CODE:-}" ]; then exit 0; fi',
    "#",
    "# wait: while the pod's container runs on this node, ks-stub hands the wait to this shell",
    "# (it prints the container's process and the pod's uid, and exits): tail watches that",
    "# process, and wait runs again when it ends (pod replaced, node left, v1 back, container",
    "# restarted). No Deno stays resident meanwhile. systemd's SIGTERM (the main process first)",
    "# ends it with 0, and so does a tail killed by a signal; without tail, wait stays resident.",
    'if [ "${1:-}" = wait ] && command -v tail >/dev/null; then',
    "  shift",
    "  following=",
    "  watcher=",
    `  trap 'kill $watcher 2>/dev/null; exit 0' TERM INT`,
    "  while :; do",
    `    out=$(${spec.stub.path} ${
      args.join(" ")
    } wait --hand-off \${following:+--following "$following"} "$@") || exit $?`,
    '    [ -n "$out" ] || exit 0',
    "    following=${out#* }",
    '    tail --pid="${out%% *}" -f /dev/null &',
    "    watcher=$!",
    '    wait "$watcher" 2>/dev/null || exit 0',
    "    watcher=",
    "  done",
    "fi",
    `exec ${spec.stub.path} ${args.join(" ")} "$@"`,
    "",
  ].join("\n");
}

/**
 * The unit drop-in: ks-stub reads credentials only root may read (kubelet.conf or its token) and
 * talks to the container runtime's socket (root only); `wait` tells systemd what it waits for
 * (sd_notify STATUS=, shown by `systemctl status`), which systemd accepts only with
 * NotifyAccess=: `all`, because the stub runs under the feature's launcher script rather than as
 * the unit's main process on every image. The unit's Type= stays as it is.
 */
export function unitDropIn(spec: FeatureSpec): string {
  return [
    `# Installed by kubesonic for ${spec.name} (ks-render): the launcher runs ks-stub, whose`,
    "# Kubernetes credentials (kubelet.conf, or the stub's token) and container runtime socket",
    "# only root may use. NotifyAccess: ks-stub wait sets the unit's Status: line (what it waits",
    "# for during an API outage or a node leave); Type= is unchanged.",
    "[Service]",
    "User=root",
    "NotifyAccess=all",
    "",
  ].join("\n");
}

/** The stub's kubeconfig: its own ServiceAccount token and the cluster CA, both synced files. */
export function stubKubeconfig(spec: FeatureSpec, dir: string): string {
  const user = `${spec.name}-stub`;
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "  - name: kubesonic",
    "    cluster:",
    `      server: ${spec.stub.apiServer}`,
    `      certificate-authority: ${dir}/ca.crt`,
    "users:",
    `  - name: ${user}`,
    "    user:",
    `      tokenFile: ${dir}/token`,
    "contexts:",
    `  - name: ${user}`,
    "    context:",
    "      cluster: kubesonic",
    `      user: ${user}`,
    `      namespace: ${spec.namespace}`,
    `current-context: ${user}`,
    "",
  ].join("\n");
}

function dropInDirs(spec: FeatureSpec, plan: InstancePlan): string[] {
  const dirs = new Set<string>();
  for (const instance of plan.instances) {
    const unitFile = instance.asic === undefined
      ? `${spec.unit.name}.service`
      : `${spec.unit.name}@.service`;
    dirs.add(`/etc/systemd/system/${unitFile}.d`);
  }
  return [...dirs];
}

/**
 * Builds the host files for `spec` on a switch with `plan`'s instances. Order in `files`: what the
 * launcher needs first (ks-stub, credentials, the drop-in with its daemon-reload), the launcher
 * last, so its restart finds everything in place (SONiC's sidecar got this order wrong once).
 */
export function buildHostFiles(
  spec: FeatureSpec,
  plan: InstancePlan,
  tree?: TreeIndex,
): HostFiles {
  const data: Record<string, string> = {};
  const files: ManifestFile[] = [];
  const addData = (key: string, text: string) => {
    data[key] = text;
    return { source: `${FILES_DIR}/${key}`, sha256: sha256(text) };
  };

  // The host runtime first, the launchers naming it after it: a launcher never points at a tree
  // that is not complete (the patcher writes in this order, each file atomically).
  const roots = new Set<string>();
  if (spec.hostRuntime.install) {
    if (!tree) {
      throw new SpecError(
        "hostRuntime.install: the ks tree's lib/tree.json is needed to render the host runtime " +
          "(ks-render --tools-tree DIR; default: the tree ks-render runs from)",
      );
    }
    const dir = hostRuntimeDir(spec, tree);
    roots.add(spec.hostRuntime.prefix);
    for (const rel of runtimeTreeFiles(spec, tree)) {
      const f = tree.files.find((x) => x.path === rel);
      if (!f) throw new SpecError(`hostRuntime: the ks tree ${tree.hash} has no ${rel}`);
      files.push({
        path: `${dir}/${rel}`,
        source: `${TOOLS_IMAGE_TREE}/${rel}`,
        sha256: f.sha256,
        mode: f.mode,
        owner: "0:0",
        actions: [],
        ...(f.size > 1048576 ? { maxBytes: maxBytesFor(f.size) } : {}),
        runtime: true,
      });
    }
    const checkers = spec.hostRuntime.checkers ? Object.entries(CHECKERS) : [];
    for (const [tool, path] of checkers) {
      files.push({
        path,
        ...addData(tool, hostToolLauncher(spec, tree, tool)),
        mode: "0755",
        owner: "0:0",
        actions: [],
        runtime: true,
      });
    }
    files.push({
      path: spec.stub.path,
      ...addData("ks-stub", hostToolLauncher(spec, tree, "ks-stub")),
      mode: "0755",
      owner: "0:0",
      actions: [],
      runtime: true,
    });
  }

  if (spec.stub.source) {
    files.push({
      path: spec.stub.path,
      source: spec.stub.source,
      mode: "0755",
      owner: "0:0",
      actions: [],
    });
  }

  let kubeconfigPath: string | undefined;
  if (spec.stub.apiServer) {
    const dir = `/etc/kubesonic/${spec.name}`;
    kubeconfigPath = `${dir}/kubeconfig`;
    files.push(
      {
        path: `${dir}/ca.crt`,
        source: `${STUB_CREDENTIALS_DIR}/ca.crt`,
        mode: "0644",
        owner: "0:0",
        actions: [],
      },
      {
        path: `${dir}/token`,
        source: `${STUB_CREDENTIALS_DIR}/token`,
        mode: "0600",
        owner: "0:0",
        actions: [],
      },
      {
        path: kubeconfigPath,
        ...addData("kubeconfig", stubKubeconfig(spec, dir)),
        mode: "0600",
        owner: "0:0",
        actions: [],
      },
    );
  }

  const dropIn = addData(DROPIN_NAME, unitDropIn(spec));
  for (const dir of dropInDirs(spec, plan)) {
    files.push({
      path: `${dir}/${DROPIN_NAME}`,
      ...dropIn,
      mode: "0644",
      owner: "0:0",
      actions: ["daemon-reload"],
    });
  }

  const launcherKey = posix.basename(spec.unit.launcher);
  const launcher = addData(launcherKey, stubLauncher(spec, kubeconfigPath));
  let nativeSource: string | undefined;
  if (spec.native.launcher !== undefined) {
    nativeSource = addData(`${launcherKey}.native`, spec.native.launcher).source;
  } else if (spec.native.launcherSource !== undefined) {
    nativeSource = spec.native.launcherSource;
  }
  const actions: string[] = [];
  for (const instance of plan.instances) actions.push(`stop-container ${instance.nativeContainer}`);
  for (const instance of plan.instances) {
    actions.push(`reset-failed ${instance.unit}`, `restart ${instance.unit}`);
  }
  files.push({
    path: spec.unit.launcher,
    ...launcher,
    mode: "0755",
    owner: "0:0",
    ...(nativeSource !== undefined ? { nativeSource } : {}),
    actions,
  });

  for (const f of files) {
    if (!f.path.startsWith(`${spec.hostRuntime.prefix}/`)) roots.add(posix.dirname(f.path));
  }
  return {
    data,
    files,
    allowRoots: [...roots].sort(),
    ...(kubeconfigPath !== undefined ? { stubKubeconfig: kubeconfigPath } : {}),
  };
}

/**
 * The HostFiles manifest for `mode`; native mode drops the stop-container actions and restores
 * the host runtime last.
 */
export function manifestDocument(
  spec: FeatureSpec,
  files: ManifestFile[],
  mode: "kube" | "native",
): Record<string, unknown> {
  return {
    apiVersion: "kubesonic.io/v1",
    kind: "HostFiles",
    feature: spec.name,
    mode,
    // Rollback restores the launcher (and the unit files) before it takes the host runtime away,
    // so the launcher never names a tree that is being removed.
    files:
      (mode === "native"
        ? [...files.filter((f) => !f.runtime), ...files.filter((f) => f.runtime)]
        : files).map((f) => ({
          path: f.path,
          source: f.source,
          ...(f.sha256 !== undefined ? { sha256: f.sha256 } : {}),
          mode: f.mode,
          owner: f.owner,
          ...(f.nativeSource !== undefined ? { nativeSource: f.nativeSource } : {}),
          ...(f.maxBytes !== undefined ? { maxBytes: f.maxBytes } : {}),
          actions: mode === "native"
            ? f.actions.filter((a) => !a.startsWith("stop-container "))
            : f.actions,
        })),
  };
}
