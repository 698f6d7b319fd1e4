// A tiny container image made without any registry: a rootfs of Debian's `busybox-static`
// (`/bin/busybox` plus one symlink per applet), as a plain tar for `docker import`, and as an
// OCI image-layout archive for `ctr images import` (containerd / the CRI). Both are built once per
// machine into a cache directory, atomically (temp file + rename), so parallel suites share them.
import { createHash } from "node:crypto";
import { join } from "node:path";
import { runChecked } from "./process.ts";
import { pathExists } from "../../src/path_exists.ts";

/** The reference tests use for the busybox image in Docker and in containerd. */
export const BUSYBOX_REF = "ks-busybox:latest";
/** The fully qualified name containerd / the CRI know the image by. */
export const BUSYBOX_CRI_REF = "docker.io/library/ks-busybox:latest";
/** A pod sandbox ("pause") image from the same rootfs: its entrypoint sleeps forever. */
export const PAUSE_CRI_REF = "docker.io/library/ks-pause:latest";

const BUSYBOX = "/bin/busybox";

function cacheDir(): string {
  return Deno.env.get("KS_IMAGE_CACHE") ?? join(Deno.env.get("TMPDIR") ?? "/tmp", "ks-images");
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  const file = await Deno.open(path);
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

/** Tars `dir` reproducibly (sorted, root-owned, fixed mtime) into `out`. */
async function tarDir(dir: string, out: string): Promise<void> {
  await runChecked("tar", [
    "--sort=name",
    "--owner=0",
    "--group=0",
    "--numeric-owner",
    "--mtime=@0",
    "-cf",
    out,
    "-C",
    dir,
    ".",
  ]);
}

async function buildRootfs(root: string): Promise<void> {
  for (const d of ["bin", "etc", "tmp", "proc", "sys", "dev", "run", "var/run"]) {
    await Deno.mkdir(join(root, d), { recursive: true });
  }
  await Deno.chmod(join(root, "tmp"), 0o1777);
  await Deno.copyFile(BUSYBOX, join(root, "bin/busybox"));
  await Deno.chmod(join(root, "bin/busybox"), 0o755);
  const applets = (await runChecked(BUSYBOX, ["--list"])).split("\n").map((s) => s.trim()).filter((
    s,
  ) => s !== "" && s !== "busybox");
  for (const applet of applets) await Deno.symlink("busybox", join(root, "bin", applet));
  await Deno.writeTextFile(join(root, "etc/passwd"), "root:x:0:0:root:/:/bin/sh\n");
  await Deno.writeTextFile(join(root, "etc/group"), "root:x:0:\n");
}

/** Builds `target` with `make(tmpPath)` unless it exists; atomic across concurrent callers. */
async function buildOnce(target: string, make: (tmp: string) => Promise<void>): Promise<string> {
  if (await pathExists(target)) return target;
  await Deno.mkdir(cacheDir(), { recursive: true });
  const tmp = `${target}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    await make(tmp);
    await Deno.rename(tmp, target);
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  return target;
}

let rootfsTar: Promise<string> | undefined;

/**
 * Returns the path of a rootfs tar (busybox-static: `/bin/busybox`, one symlink per applet,
 * `/etc/passwd`, `/tmp`), built once per machine. Throws if `/bin/busybox` is missing
 * (install Debian's `busybox-static`).
 */
export function busyboxImageTar(): Promise<string> {
  rootfsTar ??= (async () => {
    if (!await pathExists(BUSYBOX)) {
      throw new Error(`${BUSYBOX} not found: install Debian's busybox-static`);
    }
    const digest = (await sha256File(BUSYBOX)).slice(0, 16);
    const target = join(cacheDir(), `busybox-rootfs-${digest}.tar`);
    return await buildOnce(target, async (tmp) => {
      const root = await Deno.makeTempDir({ prefix: "ks-rootfs-" });
      try {
        await buildRootfs(root);
        await tarDir(root, tmp);
      } finally {
        await Deno.remove(root, { recursive: true }).catch(() => {});
      }
    });
  })();
  rootfsTar.catch(() => rootfsTar = undefined);
  return rootfsTar;
}

let ociTar: Promise<string> | undefined;

/**
 * Returns the path of an OCI image-layout archive of the busybox rootfs (uncompressed layer,
 * linux/amd64) holding two images, BUSYBOX_CRI_REF (CMD /bin/sh) and PAUSE_CRI_REF (sleeps
 * forever, the CRI sandbox image), for `ctr images import`. Built once per machine.
 */
export function busyboxOciArchive(): Promise<string> {
  ociTar ??= (async () => {
    const layerPath = await busyboxImageTar();
    const layerDigest = await sha256File(layerPath);
    const target = join(cacheDir(), `busybox-oci2-${layerDigest.slice(0, 16)}.tar`);
    return await buildOnce(target, async (tmp) => {
      const dir = await Deno.makeTempDir({ prefix: "ks-oci-" });
      try {
        const blobs = join(dir, "blobs", "sha256");
        await Deno.mkdir(blobs, { recursive: true });
        await Deno.copyFile(layerPath, join(blobs, layerDigest));
        const layerSize = (await Deno.stat(layerPath)).size;
        const writeBlob = async (text: string) => {
          const bytes = new TextEncoder().encode(text);
          const digest = createHash("sha256").update(bytes).digest("hex");
          await Deno.writeFile(join(blobs, digest), bytes);
          return { digest: `sha256:${digest}`, size: bytes.length };
        };
        const images = [
          { ref: BUSYBOX_CRI_REF, config: { Cmd: ["/bin/sh"], Env: ["PATH=/bin"] } },
          {
            ref: PAUSE_CRI_REF,
            config: { Entrypoint: ["/bin/sleep", "2147483647"], Env: ["PATH=/bin"] },
          },
        ];
        const manifests = [];
        for (const image of images) {
          const config = await writeBlob(JSON.stringify({
            architecture: "amd64",
            os: "linux",
            config: image.config,
            rootfs: { type: "layers", diff_ids: [`sha256:${layerDigest}`] },
          }));
          const manifest = await writeBlob(JSON.stringify({
            schemaVersion: 2,
            mediaType: "application/vnd.oci.image.manifest.v1+json",
            config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
            layers: [{
              mediaType: "application/vnd.oci.image.layer.v1.tar",
              digest: `sha256:${layerDigest}`,
              size: layerSize,
            }],
          }));
          manifests.push({
            mediaType: "application/vnd.oci.image.manifest.v1+json",
            ...manifest,
            platform: { architecture: "amd64", os: "linux" },
            annotations: {
              "io.containerd.image.name": image.ref,
              "org.opencontainers.image.ref.name": "latest",
            },
          });
        }
        await Deno.writeTextFile(
          join(dir, "oci-layout"),
          JSON.stringify({ imageLayoutVersion: "1.0.0" }),
        );
        await Deno.writeTextFile(
          join(dir, "index.json"),
          JSON.stringify({ schemaVersion: 2, manifests }),
        );
        await tarDir(dir, tmp);
      } finally {
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    });
  })();
  ociTar.catch(() => ociTar = undefined);
  return ociTar;
}

/** Something that can run the docker CLI against one engine (see docker.ts). */
export interface DockerCli {
  docker(
    args: string[],
    opts?: { stdin?: string },
  ): Promise<{ code: number; stdout: string; stderr: string }>;
}

/** `docker import`s the busybox rootfs as `ref` (default BUSYBOX_REF, CMD /bin/sh); returns ref. */
export async function importBusyboxDocker(engine: DockerCli, ref = BUSYBOX_REF): Promise<string> {
  const tar = await busyboxImageTar();
  const res = await engine.docker(["import", "--change", 'CMD ["/bin/sh"]', tar, ref]);
  if (res.code !== 0) throw new Error(`docker import ${tar} failed: ${res.stderr.trim()}`);
  return ref;
}

/** Something that can run `ctr` against one containerd (see containerd.ts). */
export interface CtrCli {
  ctr(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
}

/**
 * `ctr -n <namespace> images import`s the busybox OCI archive (default namespace `k8s.io`, the
 * one the CRI uses; both BUSYBOX_CRI_REF and PAUSE_CRI_REF); returns BUSYBOX_CRI_REF.
 */
export async function importBusyboxContainerd(
  containerd: CtrCli,
  namespace = "k8s.io",
): Promise<string> {
  const archive = await busyboxOciArchive();
  const res = await containerd.ctr(["-n", namespace, "images", "import", archive]);
  if (res.code !== 0) throw new Error(`ctr images import ${archive} failed: ${res.stderr.trim()}`);
  return BUSYBOX_CRI_REF;
}
