import assert from "node:assert/strict";
import { isStale, OwnershipRegistry } from "../../src/patcher/ownership.ts";
import { reconcileOnce } from "../../src/patcher/reconcile.ts";
import {
  KUBE_CHECKER,
  type PatcherSandbox,
  withPatcherSandbox,
} from "../../sandbox/fixtures/patcher_host.ts";

function checkerManifest(feature: string, source: string) {
  return {
    apiVersion: "kubesonic.io/v1",
    kind: "HostFiles",
    feature,
    mode: "kube",
    files: [{ path: "/bin/container_checker", source, mode: "0755", actions: ["restart monit"] }],
  };
}

/**
 * telemetry installs (and owns) container_checker; returns the path of a restapi manifest that
 * claims the same file with different content (one more newline).
 */
async function telemetryOwnsRestapiConflicts(sb: PatcherSandbox): Promise<string> {
  await Deno.writeTextFile(`${sb.sidecarDir}/checker_202411`, KUBE_CHECKER + "\n");
  const a = await sb.writeManifest(
    checkerManifest("telemetry", "files/container_checker"),
    "a.yaml",
  );
  const b = await sb.writeManifest(checkerManifest("restapi", "checker_202411"), "b.yaml");
  assert.ok((await reconcileOnce(await sb.context({ path: a }))).converged);
  return b;
}

Deno.test("a second feature claiming container_checker with different content is refused naming both owners, and nothing is written", () =>
  withPatcherSandbox(async (sb) => {
    const b = await telemetryOwnsRestapiConflicts(sb);
    const calls = sb.systemctl.calls().length;
    const refused = await reconcileOnce(await sb.context({ path: b }));
    assert.equal(refused.converged, false);
    assert.equal(refused.errors.length, 1);
    assert.match(
      refused.errors[0],
      /\/bin\/container_checker is owned by feature "telemetry".*feature "restapi"/,
    );
    assert.equal(Deno.readTextFileSync(sb.host("usr/bin/container_checker")), KUBE_CHECKER);
    assert.equal(sb.systemctl.calls().length, calls, "no monit restart ping-pong");
  }));

Deno.test("the same content claimed by two features is shared; native mode of one leaves the file to the other", () =>
  withPatcherSandbox(async (sb) => {
    const a = await sb.writeManifest(
      checkerManifest("telemetry", "files/container_checker"),
      "a.yaml",
    );
    const b = await sb.writeManifest(
      checkerManifest("restapi", "files/container_checker"),
      "b.yaml",
    );
    assert.ok((await reconcileOnce(await sb.context({ path: a }))).converged);
    assert.ok((await reconcileOnce(await sb.context({ path: b }))).converged);
    const native = await sb.writeManifest({
      ...checkerManifest("restapi", "files/container_checker"),
      mode: "native",
    }, "c.yaml");
    const ctx = await sb.context({ path: native });
    const result = await reconcileOnce(ctx);
    assert.ok(result.converged, result.errors.join("; "));
    assert.equal(result.plan[0].op, "skip");
    assert.equal(Deno.readTextFileSync(sb.host("usr/bin/container_checker")), KUBE_CHECKER);
    assert.deepEqual(Object.keys((await ctx.owners.read())["/bin/container_checker"]), [
      "telemetry",
    ]);
  }));

Deno.test("actions owed by an earlier change still run in a pass that an ownership conflict blocks", () =>
  withPatcherSandbox(async (sb) => {
    const b = await telemetryOwnsRestapiConflicts(sb);
    const ctx = await sb.context({ path: b });
    await ctx.journal.set(["restart monit"]); // what a killed restapi patcher left owed
    const result = await reconcileOnce(ctx);
    assert.equal(result.converged, false);
    assert.deepEqual(result.actionsRun, ["restart monit"]);
    assert.deepEqual(await ctx.journal.pending(), []);
  }));

Deno.test("a claim its sidecar stopped confirming (stale) is taken over with a warning, and no longer blocks a rollback", () =>
  withPatcherSandbox(async (sb) => {
    await Deno.writeTextFile(`${sb.sidecarDir}/checker_202411`, KUBE_CHECKER + "\n");
    const b = await sb.writeManifest(checkerManifest("restapi", "checker_202411"), "b.yaml");
    const restapi = await sb.context({ path: b });
    // restapi's sidecar claimed the checker 20 minutes ago and was deleted without a rollback.
    const old = Date.now() - 20 * 60_000;
    const claimed = await restapi.owners.claim("restapi", [{
      path: "/bin/container_checker",
      sha256: restapi.manifest.files[0].sha256,
    }], old);
    assert.deepEqual(claimed.conflicts, []);
    const lines: string[] = [];
    const a = await sb.writeManifest(
      checkerManifest("telemetry", "files/container_checker"),
      "a.yaml",
    );
    const result = await reconcileOnce(await sb.context({ path: a, sink: (l) => lines.push(l) }));
    assert.ok(result.converged, result.errors.join("; "));
    assert.equal(Deno.readTextFileSync(sb.host("usr/bin/container_checker")), KUBE_CHECKER);
    assert.ok(
      lines.some((l) =>
        /WARN: took over a stale claim path=\/bin\/container_checker from=restapi/.test(l)
      ),
      lines.join("\n"),
    );
    const owners = await restapi.owners.read();
    assert.deepEqual(Object.keys(owners["/bin/container_checker"]), ["telemetry"]);
  }));

Deno.test("a claim is stale (releasable, or no longer blocking) only once unconfirmed for the longer stale time, its confirmer's or ours", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ks-owners-" });
  try {
    const t0 = Date.parse("2026-01-01T00:00:00Z");
    const minute = 60_000;
    // A sidecar with a 15-minute stale time confirms a claim; a short-stale one judges it.
    const slow = new OwnershipRegistry(dir, 15 * minute);
    await slow.claim("telemetry", [{ path: "/usr/local/bin/x", sha256: "a".repeat(64) }], t0);
    const claim = (await slow.read())["/usr/local/bin/x"].telemetry;
    assert.equal(claim.staleMs, 15 * minute);
    assert.equal(isStale(claim, t0 + 5 * minute, 1_000), false, "the confirmer's time counts");
    assert.equal(isStale(claim, t0 + 15 * minute, 1_000), false);
    assert.equal(isStale(claim, t0 + 15 * minute + 1, 1_000), true);
    assert.equal(isStale(claim, t0 + 15 * minute + 1, 20 * minute), false, "so does ours");
    // The throttle: within a tenth of the stale time the claim is not rewritten, past it it is;
    // one in the future (the clock stepped back) is confirmed again at once.
    await slow.claim(
      "telemetry",
      [{ path: "/usr/local/bin/x", sha256: "a".repeat(64) }],
      t0 + minute,
    );
    assert.equal((await slow.read())["/usr/local/bin/x"].telemetry.seen, claim.seen);
    await slow.claim(
      "telemetry",
      [{ path: "/usr/local/bin/x", sha256: "a".repeat(64) }],
      t0 + 2 * minute,
    );
    const later = (await slow.read())["/usr/local/bin/x"].telemetry.seen;
    assert.equal(later, new Date(t0 + 2 * minute).toISOString());
    await slow.claim("telemetry", [{ path: "/usr/local/bin/x", sha256: "a".repeat(64) }], t0);
    assert.equal((await slow.read())["/usr/local/bin/x"].telemetry.seen, claim.seen);
    // An unreadable time counts as unconfirmed.
    assert.equal(isStale({ ...claim, seen: "garbage" }, t0, 1_000), true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
