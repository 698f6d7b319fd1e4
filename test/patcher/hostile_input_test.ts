// Hostile manifests against the bundled ks-patcher and the manifest parser: sources that never
// end (a FIFO, /dev/zero), sizes over the bound, bytes a path or inline content must not have,
// out-of-range owners, two entries naming one file. Each refusal is one line naming the field,
// exit 2, and nothing written (host files, state directory, actions).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { stringify } from "yaml";
import { formatLogLine } from "../../src/log.ts";
import { loadManifest, ManifestError, parseManifest } from "../../src/patcher/manifest.ts";
import type { PassResult } from "../../src/patcher/reconcile.ts";
import { formatResult } from "../../src/patcher/run.ts";
import {
  createPatcherSandbox,
  NATIVE_LAUNCHER,
  type PatcherSandbox,
  runPatcherBounded,
  spawnPatcherLoop,
  telemetryManifest,
} from "../../sandbox/fixtures/patcher_host.ts";
import { waitUntil } from "../../sandbox/harness/net.ts";
import { toolArgv } from "../../sandbox/harness/bin.ts";

/** The telemetry manifest with `patch` applied to its first entry (the launcher). */
function launcherWith(patch: Record<string, unknown>, mode: "kube" | "native" = "kube") {
  const doc = telemetryManifest(mode) as { files: Record<string, unknown>[] };
  doc.files[0] = { ...doc.files[0], ...patch };
  return doc;
}

/** Asserts the run refused its input: exit 2, one stderr line matching `line`, nothing written. */
function assertRefused(
  sb: PatcherSandbox,
  run: { code: number | null; stderr: string },
  line: RegExp,
) {
  assert.equal(run.code, 2, `exit code (null = hung until killed); stderr: ${run.stderr}`);
  const lines = run.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line: ${run.stderr}`);
  assert.match(lines[0], line);
  assert.equal(Deno.readTextFileSync(sb.host("usr/local/bin/telemetry.sh")), NATIVE_LAUNCHER);
  assert.throws(() => Deno.statSync(sb.stateDir), "no state directory written");
  assert.equal(sb.systemctl.calls().length, 0, "no action");
}

async function mkfifo(path: string): Promise<void> {
  const out = await new Deno.Command("mkfifo", { args: [path] }).output();
  assert.ok(out.success, "mkfifo");
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

Deno.test("a FIFO source is refused at once (it is not a regular file), not read forever", async () => {
  const sb = await createPatcherSandbox();
  try {
    await mkfifo(join(sb.sidecarDir, "files/fifo"));
    await sb.writeManifest(launcherWith({ source: "files/fifo" }));
    const run = await runPatcherBounded(sb, [...sb.cliArgs(), "--once"], 20_000);
    assertRefused(sb, run, /files\[0\]\.source: cannot read .*fifo: is a fifo, not a regular file/);
  } finally {
    await sb.cleanup();
  }
});

Deno.test("a /dev/zero source is refused at once instead of being read until memory runs out", async () => {
  const sb = await createPatcherSandbox();
  try {
    await sb.writeManifest(launcherWith({ source: "/dev/zero" }));
    // Short deadline: the unbounded reader this replaces grew by ~1 GB per second.
    const run = await runPatcherBounded(sb, [...sb.cliArgs(), "--once"], 4_000);
    assertRefused(
      sb,
      run,
      /files\[0\]\.source: cannot read \/dev\/zero: is a char, not a regular file/,
    );
  } finally {
    await sb.cleanup();
  }
});

Deno.test("a source over the size bound is refused; --max-source-bytes raises the bound", async () => {
  const sb = await createPatcherSandbox();
  try {
    const big = new Uint8Array(5 * 1024 * 1024).fill(0x41);
    await Deno.writeFile(join(sb.sidecarDir, "files/big"), big);
    await sb.writeManifest(launcherWith({ source: "files/big" }));
    const refused = await runPatcherBounded(sb, [...sb.cliArgs(), "--once"], 30_000);
    assertRefused(
      sb,
      refused,
      /files\[0\]\.source: .* is 5242880 bytes, more than the bound of 4194304/,
    );
    const raised = await runPatcherBounded(
      sb,
      [...sb.cliArgs(), "--once", "--max-source-bytes", "8MiB"],
      30_000,
    );
    assert.equal(raised.code, 0, raised.stderr);
    assert.equal(sha256(Deno.readFileSync(sb.host("usr/local/bin/telemetry.sh"))), sha256(big));
  } finally {
    await sb.cleanup();
  }
});

Deno.test("an entry's maxBytes admits a large binary (streamed), installed byte for byte", async () => {
  const sb = await createPatcherSandbox();
  try {
    // 40 MiB of every byte value: larger than what is held in memory, so it is streamed.
    const big = new Uint8Array(40 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 65536) {
      crypto.getRandomValues(big.subarray(i, i + 65536));
    }
    await Deno.writeFile(join(sb.sidecarDir, "files/runtime"), big);
    await sb.writeManifest(launcherWith({ source: "files/runtime", maxBytes: 64 * 1024 * 1024 }));
    const run = await runPatcherBounded(sb, [...sb.cliArgs(), "--once"], 50_000);
    assert.equal(run.code, 0, run.stderr);
    const installed = Deno.readFileSync(sb.host("usr/local/bin/telemetry.sh"));
    assert.equal(installed.length, big.length);
    assert.equal(sha256(installed), sha256(big));
    assert.equal((Deno.statSync(sb.host("usr/local/bin/telemetry.sh")).mode ?? 0) & 0o7777, 0o755);
    // A second run finds it converged (compared by size and hash) and writes nothing.
    const again = await runPatcherBounded(sb, [...sb.cliArgs(), "--once"], 50_000);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^none +\/usr\/local\/bin\/telemetry.sh/m);
  } finally {
    await sb.cleanup();
  }
});

Deno.test("inline content over the bound is refused naming the field", async () => {
  const sb = await createPatcherSandbox();
  try {
    await sb.writeManifest(launcherWith({ source: undefined, content: "x".repeat(5 << 20) }));
    const run = await runPatcherBounded(sb, [...sb.cliArgs(), "--once"], 30_000);
    assertRefused(sb, run, /files\[0\]\.content: is 5242880 bytes, more than the bound of 4194304/);
  } finally {
    await sb.cleanup();
  }
});

for (const special of ["fifo", "/dev/zero"]) {
  Deno.test(`SIGTERM ends the loop within the stated time after a reload meets a ${special} source`, async () => {
    const sb = await createPatcherSandbox();
    try {
      const source = special === "fifo" ? join(sb.sidecarDir, "files/fifo") : special;
      if (special === "fifo") await mkfifo(source);
      const run = runPatcherBounded(
        sb,
        [...sb.cliArgs(), "--interval", "200ms"],
        // The stated bound is 5 s after the signal; the unbounded /dev/zero reader this replaces
        // must not be left to grow for long.
        special === "fifo" ? 20_000 : 8_000,
        (child) => {
          (async () => {
            await waitUntil(() => sb.systemctl.calls().length >= 3, 10_000, "first pass");
            await sb.writeManifest(launcherWith({ source }));
            await new Promise((r) => setTimeout(r, 1_000)); // a few periodic reloads
            child.kill("SIGTERM");
          })().catch(() => child.kill("SIGKILL"));
        },
      );
      const out = await run;
      assert.equal(
        out.code,
        0,
        `exit after SIGTERM (null = killed at the deadline): ${out.stderr}`,
      );
      assert.match(out.stderr, /files\[0\]\.source: cannot read .*keeping the previous manifest/);
    } finally {
      await sb.cleanup();
    }
  });
}

async function refusal(doc: unknown, file = "/sidecar/m.json"): Promise<string> {
  const text = file.endsWith(".json") ? JSON.stringify(doc) : stringify(doc);
  try {
    await parseManifest(new TextEncoder().encode(text), file);
  } catch (error) {
    assert.ok(error instanceof ManifestError, String(error));
    // deno-lint-ignore no-control-regex
    assert.doesNotMatch(error.message, /[\u0000-\u001f\u007f-\u009f]/, "escaped, one line");
    return error.message;
  }
  throw new Error(`accepted: ${text.slice(0, 200)}`);
}

const inline = (patch: Record<string, unknown>, more: Record<string, unknown>[] = []) => ({
  apiVersion: "kubesonic.io/v1",
  kind: "HostFiles",
  feature: "telemetry",
  files: [{ path: "/usr/local/bin/x", content: "x\n", ...patch }, ...more],
});

Deno.test("owners out of range (uid/gid above 2^32-2) are refused; the largest valid one is not", async () => {
  for (const owner of ["9999999999:0", "4294967295:0", "0:4294967296"]) {
    assert.match(
      await refusal(inline({ owner })),
      /: files\[0\]\.owner: ".*": \d+ is out of range \(0\.\.4294967294\)$/,
      owner,
    );
  }
  const ok = await parseManifest(JSON.stringify(inline({ owner: "4294967294:65534" })), "/m.json");
  assert.equal(ok.files[0].uid, 4294967294);
});

Deno.test("paths with control characters, non-UTF-8 bytes or a trailing slash are refused naming the field", async () => {
  const cases: [string, RegExp][] = [
    ["/usr/local/bin/x\nconverged", /files\[0\]\.path: .*contains a control character/],
    ["/usr/local/bin/\u001b[31mx", /files\[0\]\.path: .*contains a control character/],
    ["/usr/local/bin/x\u0000y", /files\[0\]\.path: .*contains a control character/],
    ["/usr/local/bin/\ud800x", /files\[0\]\.path: .*is not valid UTF-8/],
    ["/usr/local/bin/x/", /files\[0\]\.path: .*ends in "\/"/],
    ["/usr/local/bin/a/../b", /files\[0\]\.path: .*contains "\.\."/],
  ];
  for (const [path, want] of cases) {
    assert.match(await refusal(inline({ path })), want, JSON.stringify(path));
  }
  // The same file twice (doubled slash): refused naming both entries.
  assert.match(
    await refusal(inline({}, [{ path: "/usr/local/bin//x", content: "y\n" }])),
    /files\[1\]\.path: "\/usr\/local\/bin\/\/x" names the same file as files\[0\]\.path/,
  );
});

Deno.test("a manifest with bytes that are not UTF-8 is refused, not decoded with U+FFFD", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ks-patcher-bytes-" });
  try {
    const text = new TextEncoder().encode(stringify(inline({ path: "/usr/local/bin/XX" })));
    const at = text.indexOf(0x58); // "X"
    text[at] = 0xff;
    text[at + 1] = 0xfe;
    await Deno.writeFile(join(dir, "m.yaml"), text);
    await assert.rejects(
      loadManifest(join(dir, "m.yaml")),
      (e: Error) => e instanceof ManifestError && /\(document\): not valid UTF-8/.test(e.message),
    );
    // Inline content with a lone surrogate escape (JSON "\ud800") is not text: refused.
    const json = JSON.stringify(inline({})).replace('"x\\n"', '"a\\ud800b"');
    await Deno.writeTextFile(join(dir, "m.json"), json);
    await assert.rejects(
      loadManifest(join(dir, "m.json")),
      (e: Error) => /files\[0\]\.content: is not valid UTF-8/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a binary source is installed byte for byte (every byte value, invalid UTF-8 included)", async () => {
  const sb = await createPatcherSandbox();
  try {
    const bytes = new Uint8Array(4096).map((_, i) => (i * 151) & 0xff);
    await Deno.writeFile(join(sb.sidecarDir, "files/telemetry.sh"), bytes);
    const run = await runPatcherBounded(sb, [...sb.cliArgs(), "--once"], 30_000);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(Deno.readFileSync(sb.host("usr/local/bin/telemetry.sh")), bytes);
  } finally {
    await sb.cleanup();
  }
});

Deno.test("two entries reaching one file through a symlinked directory are refused naming both, nothing written", async () => {
  const sb = await createPatcherSandbox();
  try {
    // /usr/local/bin/alias -> /usr/bin, the directory /bin also leads to (merged /usr).
    await Deno.symlink("/usr/bin", sb.host("usr/local/bin/alias"));
    const doc = telemetryManifest() as { files: Record<string, unknown>[] };
    doc.files.push({ path: "/usr/local/bin/alias/container_checker", content: "other\n" });
    await sb.writeManifest(doc);
    const run = await runPatcherBounded(sb, [...sb.cliArgs(), "--once"], 30_000);
    assert.equal(run.code, 2, run.stderr);
    const errors = run.stderr.trim().split("\n").filter((l) => l.includes("ERROR"));
    assert.equal(errors.length, 1, run.stderr);
    assert.match(
      errors[0],
      /files\[2\]\.path "\/bin\/container_checker" and files\[3\]\.path "\/usr\/local\/bin\/alias\/container_checker" name the same file \(\/usr\/bin\/container_checker\)/,
    );
    assert.equal(Deno.readTextFileSync(sb.host("usr/local/bin/telemetry.sh")), NATIVE_LAUNCHER);
    assert.equal(sb.systemctl.calls().length, 0);
  } finally {
    await sb.cleanup();
  }
});

Deno.test("text output and log lines escape control characters, so a field cannot forge a line", () => {
  const result: PassResult = {
    feature: "telemetry",
    mode: "kube",
    dryRun: false,
    plan: [{ path: "/x\nconverged", op: "none", reason: "as desired\u001b[2K", actions: [] }],
    changed: [],
    actionsRun: [],
    pending: [],
    held: [],
    errors: ["bad\r\nconverged \udc80"],
    converged: false,
  };
  const text = formatResult(result, "text");
  assert.deepEqual(text.split("\n"), [
    "none   /x\\nconverged  as desired\\u001b[2K",
    "error: bad\\r\\nconverged \\udc80",
    "not converged",
  ]);
  const line = formatLogLine("ks-patcher", "telemetry", "error", "m\nforged", { path: "/a\u0007" });
  assert.equal(line.split("\n").length, 1);
  assert.match(line, /m\\nforged path="\/a\\u0007"$/);
});

Deno.test("the loop keeps running a good manifest when a reload is refused, and its text stays one line", async () => {
  const sb = await createPatcherSandbox();
  const child = await spawnPatcherLoop(sb, "200ms", "piped");
  try {
    await waitUntil(() => sb.systemctl.calls().length >= 3, 20_000, "first pass");
    await sb.writeManifest(launcherWith({ path: "/usr/local/bin/x\nforged" }));
    await new Promise((r) => setTimeout(r, 800));
    child.kill("SIGTERM");
    const out = new TextDecoder().decode((await child.output()).stderr);
    const refusals = out.split("\n").filter((l) => l.includes("files[0].path"));
    assert.ok(refusals.length >= 1, out);
    assert.ok(!out.includes("\nforged"), "no forged line");
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await sb.cleanup();
  }
});

Deno.test("without FFI the patcher refuses with one line instead of falling back to path strings", async () => {
  const sb = await createPatcherSandbox();
  try {
    const argv = await toolArgv("ks-patcher", { runtimeFlags: false });
    // `deno run <flags> <the tool's entry>`: the entry is the last.
    const [exe, entry] = [argv[0], argv[argv.length - 1]];
    const out = await new Deno.Command(exe, {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        "--allow-run",
        "--no-config",
        "--quiet",
        entry,
        ...sb.cliArgs(),
        "--once",
      ],
      env: { PATH: sb.systemctl.path },
    }).output();
    const run = { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
    assertRefused(
      sb,
      run,
      /cannot touch host files safely: libc FFI unavailable: .*refusing to run/,
    );
  } finally {
    await sb.cleanup();
  }
});
