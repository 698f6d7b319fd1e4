// The lab's contract with its user: every scenario that did not run is named in the last line,
// and only skips the user asked for (--no-kube, --only) leave the exit code 0. Runs lab/main.ts
// as `deno task lab` does, on the patcher scenario (a few seconds, real redis).
import assert from "node:assert/strict";
import { delimiter, join } from "node:path";
import { REPO_ROOT } from "../../src/build/bundle.ts";
import { skipLine } from "../../lab/main.ts";

async function lab(args: string[], env: Record<string, string> = {}) {
  const base = Deno.env.toObject();
  delete base.KS_KUBE_BIN; // the test runner's: the lab must find (or build) the binaries itself
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(REPO_ROOT, "lab", "main.ts"), ...args],
    env: { ...base, NO_COLOR: "1", ...env },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const lines = stdout.trimEnd().split("\n");
  return {
    code: out.code,
    stdout,
    stderr: new TextDecoder().decode(out.stderr),
    last: lines.at(-1)!,
  };
}

/** PATH without any directory that holds a `go` binary (so a Kubernetes build fails at once). */
function pathWithoutGo(): string {
  return (Deno.env.get("PATH") ?? "").split(delimiter).filter((d) => {
    try {
      return !Deno.statSync(join(d, "go")).isFile;
    } catch {
      return true;
    }
  }).join(delimiter);
}

Deno.test("lab: skips asked for (--no-kube, --only) are named in the last line, exit 0", async () => {
  const r = await lab(["--no-kube", "--only", "patcher", "--only", "control_plane"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /lab: \d+ of \d+ steps converged/);
  assert.match(r.last, /^lab: skipped 7 of 8 scenarios; as asked: /, r.stdout);
  assert.match(r.last, /05_control_plane \(--no-kube\)/);
  assert.match(
    r.last,
    /10_entrypoint_watchdog, .*80_rollout, 90_real_switch \(--only patcher --only control_plane\)/,
  );
  assert.doesNotMatch(r.last, /NOT asked/);
});

Deno.test("lab: a scenario skipped without being asked (the Kubernetes build failed) exits 1", async () => {
  const cache = await Deno.makeTempDir({ prefix: "ks-lab-cache-" });
  try {
    const r = await lab(["--only", "patcher", "--only", "control_plane"], {
      KS_CACHE: cache,
      PATH: pathWithoutGo(),
    });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /building them once into .*about 13 min/);
    assert.match(r.stderr, /go is not on PATH/);
    assert.match(r.stdout, /lab: 5 of 5 steps converged/, "the other scenarios still ran");
    assert.match(
      r.last,
      /^lab: skipped 7 of 8 scenarios; NOT asked for: 05_control_plane \(the Kubernetes build failed/,
    );
  } finally {
    await Deno.remove(cache, { recursive: true });
  }
});

Deno.test("lab: --only matching no scenario and a bad --fleet are usage errors (exit 2)", async () => {
  const none = await lab(["--only", "no-such-scenario"]);
  assert.equal(none.code, 2, none.stdout + none.stderr);
  assert.match(none.stderr, /--only no-such-scenario: no scenario/);
  const fleet = await lab(["--fleet", "0"]);
  assert.equal(fleet.code, 2);
  assert.match(fleet.stderr, /--fleet: "0"/);
});

Deno.test("lab's last line groups skipped scenarios by reason, the ones not asked for first", () => {
  assert.equal(
    skipLine([
      { name: "05_a", reason: "--no-kube", asked: true },
      { name: "60_b", reason: "dockerd not installed", asked: false },
      { name: "40_c", reason: "--no-kube", asked: true },
    ], 8),
    "lab: skipped 3 of 8 scenarios; NOT asked for: 60_b (dockerd not installed); " +
      "as asked: 05_a, 40_c (--no-kube)",
  );
});
