// The lab switch lays its units out as SONiC does: feature units under /usr/lib/systemd/system
// (SONiC's /lib on merged /usr), drop-ins under /etc/systemd/system/<unit>.d/. Checked offline with
// the real systemctl on a copy of the image's rootfs (`systemctl --root`): featured's mask, unmask
// and enable work there and keep the auto_restart drop-in, and the old layout (the unit itself in
// /etc/systemd/system) is what made featured's mask fail.
import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT } from "../../src/build/bundle.ts";

const ROOTFS = join(REPO_ROOT, "scripts/switch/rootfs");
const ignore = (() => {
  try {
    return !Deno.statSync("/usr/bin/systemctl").isFile;
  } catch {
    return true;
  }
})();

async function systemctl(root: string, ...args: string[]) {
  const r = await new Deno.Command("systemctl", { args: [`--root=${root}`, ...args] }).output();
  const text = new TextDecoder();
  return { code: r.code, out: text.decode(r.stdout) + text.decode(r.stderr) };
}

async function lstat(path: string) {
  return await Deno.lstat(path).catch(() => undefined);
}

Deno.test("telemetry.service is installed where SONiC installs it, its drop-in where featured writes it", async () => {
  assert.ok((await lstat(join(ROOTFS, "usr/lib/systemd/system/telemetry.service")))?.isFile);
  assert.equal(await lstat(join(ROOTFS, "etc/systemd/system/telemetry.service")), undefined);
  assert.match(
    await Deno.readTextFile(
      join(ROOTFS, "etc/systemd/system/telemetry.service.d/auto_restart.conf"),
    ),
    /^\[Service\]\nRestart=always$/m,
  );
});

Deno.test({
  name: "featured's mask / unmask / enable succeed on the lab layout and fail on the old one",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "ks-unit-layout-" });
    try {
      const root = join(dir, "switch");
      await Deno.mkdir(root);
      const cp = await new Deno.Command("cp", { args: ["-a", `${ROOTFS}/.`, root] }).output();
      assert.ok(cp.success);
      const link = join(root, "etc/systemd/system/telemetry.service");

      const mask = await systemctl(root, "mask", "telemetry.service");
      assert.equal(mask.code, 0, mask.out);
      assert.equal(await Deno.readLink(link), "/dev/null");
      assert.equal((await systemctl(root, "is-enabled", "telemetry.service")).out.trim(), "masked");
      // The drop-in survives the mask (featured rewrites it on its own schedule).
      assert.ok(
        await lstat(join(root, "etc/systemd/system/telemetry.service.d/auto_restart.conf")),
      );

      const unmask = await systemctl(root, "unmask", "telemetry.service");
      assert.equal(unmask.code, 0, unmask.out);
      assert.equal(await lstat(link), undefined);
      const enable = await systemctl(root, "enable", "telemetry.service");
      assert.equal(enable.code, 0, enable.out);
      assert.equal(
        (await systemctl(root, "is-enabled", "telemetry.service")).out.trim(),
        "enabled",
      );
      assert.equal(
        await Deno.readLink(join(root, "etc/systemd/system/sonic.target.wants/telemetry.service")),
        "/usr/lib/systemd/system/telemetry.service",
      );

      // The old layout: the unit file itself in /etc/systemd/system. mask cannot replace it, so
      // featured's disable ended with STATE_DB "failed".
      const old = join(dir, "old");
      await Deno.mkdir(join(old, "etc/systemd/system"), { recursive: true });
      await Deno.copyFile(
        join(ROOTFS, "usr/lib/systemd/system/telemetry.service"),
        join(old, "etc/systemd/system/telemetry.service"),
      );
      const oldMask = await systemctl(old, "mask", "telemetry.service");
      assert.notEqual(oldMask.code, 0);
      assert.match(oldMask.out, /already exists/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "the per-namespace template telemetry@.service: featured's mask / unmask / enable of telemetry@N",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "ks-unit-layout-" });
    try {
      const root = join(dir, "switch");
      await Deno.mkdir(root);
      const cp = await new Deno.Command("cp", { args: ["-a", `${ROOTFS}/.`, root] }).output();
      assert.ok(cp.success);
      assert.ok((await lstat(join(root, "usr/lib/systemd/system/telemetry@.service")))?.isFile);
      for (const asic of [0, 1]) {
        const unit = `telemetry@${asic}.service`;
        const mask = await systemctl(root, "mask", unit);
        assert.equal(mask.code, 0, mask.out);
        assert.equal(await Deno.readLink(join(root, "etc/systemd/system", unit)), "/dev/null");
        const unmask = await systemctl(root, "unmask", unit);
        assert.equal(unmask.code, 0, unmask.out);
        const enable = await systemctl(root, "enable", unit);
        assert.equal(enable.code, 0, enable.out);
        assert.equal(
          await Deno.readLink(join(root, "etc/systemd/system/sonic.target.wants", unit)),
          "/usr/lib/systemd/system/telemetry@.service",
        );
      }
      // The generator and the database template are in the image, and the generator is executable.
      const gen = await lstat(join(root, "usr/lib/systemd/system-generators/ks-sonic-generator"));
      assert.ok(gen?.isFile && ((gen.mode ?? 0) & 0o111) !== 0);
      assert.ok((await lstat(join(root, "etc/systemd/system/database@.service")))?.isFile);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
