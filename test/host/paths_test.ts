import assert from "node:assert/strict";
import { join } from "node:path";
import { HostPaths, PathSafetyError } from "../../src/host/paths.ts";

async function hostRoot(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "ks-paths-test-" });
  for (const d of ["usr/local/bin", "usr/bin", "etc/systemd/system", "etc/secret", "tmp"]) {
    await Deno.mkdir(join(root, d), { recursive: true });
  }
  await Deno.symlink("usr/bin", join(root, "bin"));
  return root;
}

Deno.test("paths inside an allowed root resolve, through merged-/usr symlinks, with missing dirs listed", async () => {
  const root = await hostRoot();
  try {
    const paths = new HostPaths({
      hostRoot: root,
      allowRoots: ["/usr/local/bin", "/bin", "/etc/systemd/system"],
    });
    assert.equal(
      paths.resolve("/usr/local/bin/telemetry.sh").real,
      join(root, "usr/local/bin/telemetry.sh"),
    );
    const checker = paths.resolve("/bin/container_checker");
    assert.equal(checker.canonical, "/usr/bin/container_checker");
    const dropin = paths.resolve("/etc/systemd/system/telemetry.service.d/a.conf");
    assert.deepEqual(dropin.missingDirs, ["/etc/systemd/system/telemetry.service.d"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("escapes are refused: outside the roots, .., symlinks out of the roots or the host root, a symlinked file", async () => {
  const root = await hostRoot();
  try {
    // a directory symlink leaving the allowed roots (inside the host root)
    await Deno.symlink("/etc/secret", join(root, "usr/local/bin/sneaky"));
    // a symlink leaving the host root entirely (relative, with ..)
    await Deno.symlink("../../../../../../../../etc", join(root, "usr/local/bin/up"));
    // the managed file itself is a symlink
    await Deno.symlink("/etc/secret/x", join(root, "usr/local/bin/link.sh"));
    const paths = new HostPaths({ hostRoot: root, allowRoots: ["/usr/local/bin"] });
    for (
      const bad of [
        "/etc/secret/x",
        "/usr/local/bin/../../../etc/passwd",
        "/usr/local/bin/./x",
        "relative/x",
        "/usr/local/bin/sneaky/x",
        "/usr/local/bin/up/passwd",
        "/usr/local/bin/link.sh",
        "/usr/local/bin",
      ]
    ) {
      assert.throws(() => paths.resolve(bad), PathSafetyError, bad);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a directory on the way owned by another user or writable by everyone is refused", async () => {
  const root = await hostRoot();
  try {
    const paths = new HostPaths({
      hostRoot: root,
      allowRoots: ["/usr/local/bin", "/tmp"],
      trustedUids: [0],
    });
    await Deno.chown(join(root, "usr/local/bin"), 1234, 1234);
    assert.throws(() => paths.resolve("/usr/local/bin/x"), /owned by uid 1234/);
    await Deno.chmod(join(root, "tmp"), 0o777);
    assert.throws(() => paths.resolve("/tmp/x"), /writable by everyone/);
    await Deno.chmod(join(root, "tmp"), 0o1777);
    assert.equal(paths.resolve("/tmp/x").base, "x");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("an allowed root itself as a path is refused as such, also through a symlink", async () => {
  const root = await hostRoot();
  try {
    const paths = new HostPaths({ hostRoot: root, allowRoots: ["/usr/local/bin", "/bin"] });
    for (const path of ["/usr/local/bin", "/bin"]) {
      assert.throws(
        () => paths.resolve(path),
        (e: Error) => e instanceof PathSafetyError && /is an allowed root itself/.test(e.message),
        path,
      );
    }
    // /usr/local/bin/up -> /usr/bin: the allowed root /bin reached through another name.
    await Deno.symlink("/usr/bin", join(root, "usr/local/bin/up"));
    assert.throws(() => paths.resolve("/usr/local/bin/up"), /symlink/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("paths with control characters, lone surrogates or a trailing slash are refused before any lookup", async () => {
  const root = await hostRoot();
  try {
    const paths = new HostPaths({ hostRoot: root, allowRoots: ["/usr/local/bin"] });
    for (
      const bad of [
        "/usr/local/bin/a\nb",
        "/usr/local/bin/a\u0085",
        "/usr/local/bin/\udc80",
        "/usr/local/bin/a/",
      ]
    ) {
      assert.throws(() => paths.resolve(bad), PathSafetyError, JSON.stringify(bad));
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
