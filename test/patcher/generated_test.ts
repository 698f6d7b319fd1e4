// Generated hostile input: with a fixed, printed seed, >= 10 000 manifests and host layouts
// (symlinks out of the roots and between them, FIFOs, /dev/zero and /dev/null, directories
// where files belong, untrusted directories, aliases, odd bytes, out-of-range values), run
// in-process through src/ and a smaller sample through the bundled ks-patcher. Asserted for each:
// no crash (only ManifestError at load, and a pass never throws), every refusal one line, the
// text report one line per item, nothing written outside the allowed roots (the host tree outside
// them, and a decoy tree outside the host root with sweep bait, are checksummed before/after),
// and inside them only the managed files and the directories on their way.
// Replay: KS_GEN_SEED=<seed>; size: KS_GEN_CASES (default 10000), KS_GEN_TOOL_CASES (default 40).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join, relative } from "node:path";
import { stringify } from "yaml";
import type { HostCommands } from "../../src/host/commands.ts";
import { HostPaths } from "../../src/host/paths.ts";
import { createLogger } from "../../src/log.ts";
import { ManifestError, parseManifest } from "../../src/patcher/manifest.ts";
import { createPatcherContext, reconcileOnce } from "../../src/patcher/reconcile.ts";
import { formatResult } from "../../src/patcher/run.ts";
import { toolCommand } from "../../sandbox/harness/bin.ts";
import { prng as rng } from "../../sandbox/harness/prng.ts";

const SEED = Number(Deno.env.get("KS_GEN_SEED") ?? 18_2026);
const CASES = Number(Deno.env.get("KS_GEN_CASES") ?? 10_000);
const TOOL_CASES = Number(Deno.env.get("KS_GEN_TOOL_CASES") ?? 40);
const ALLOW = ["/usr/local/bin", "/etc/systemd/system", "/bin"];
/** Allowed roots after resolution (on disk: /bin is usr/bin). */
const ALLOWED_DIRS = ["usr/local/bin", "etc/systemd/system", "usr/bin"];

type Rand = () => number;
const pick = <T>(r: Rand, items: readonly T[]): T => items[Math.floor(r() * items.length)];

/** Every entry under `dir` (file -> sha256, symlink -> target, dir, other types by name). */
function snapshot(dir: string, skip: (rel: string) => boolean = () => false): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of Deno.readDirSync(d)) {
      const p = join(d, e.name);
      const rel = relative(dir, p);
      if (skip(rel)) continue;
      if (e.isSymlink) out.set(rel, `-> ${Deno.readLinkSync(p)}`);
      else if (e.isDirectory) {
        out.set(rel, "dir");
        walk(p);
      } else if (e.isFile) {
        out.set(rel, createHash("sha256").update(Deno.readFileSync(p)).digest("hex"));
      } else out.set(rel, "special");
    }
  };
  walk(dir);
  return out;
}

function diff(before: Map<string, string>, after: Map<string, string>): string[] {
  const changed: string[] = [];
  for (const [k, v] of after) if (before.get(k) !== v) changed.push(k);
  for (const k of before.keys()) if (!after.has(k)) changed.push(k);
  return changed;
}

/** Shared fixtures: decoy tree, sidecar sources, a pool of FIFOs. */
interface World {
  base: string;
  outside: string;
  sidecar: string;
  fifoPool: string[];
  fifoDir: string;
  fifoSerial: number;
}

async function mkfifos(world: World, n: number): Promise<void> {
  const names = Array.from({ length: n }, () => join(world.fifoDir, `f${world.fifoSerial++}`));
  const out = await new Deno.Command("mkfifo", { args: names }).output();
  assert.ok(out.success, "mkfifo");
  world.fifoPool.push(...names);
}

async function createWorld(): Promise<World> {
  // tmpfs when there is one: 10 000 layouts of real directories, symlinks and FIFOs are mostly
  // metadata operations, which a loaded disk makes ~50x slower; the semantics are the same.
  let tmp: string | undefined;
  try {
    if (Deno.statSync("/dev/shm").isDirectory) tmp = "/dev/shm";
  } catch { /* none */ }
  const base = await Deno.makeTempDir({ prefix: "ks-patcher-gen-", dir: tmp });
  const outside = join(base, "outside");
  const sidecar = join(base, "sidecar");
  const fifoDir = join(base, "fifos");
  for (const d of [outside, join(outside, "sub"), sidecar, fifoDir]) await Deno.mkdir(d);
  await Deno.writeTextFile(join(outside, "passwd"), "root:x:0:0\n");
  await Deno.writeTextFile(join(outside, "x"), "decoy\n");
  await Deno.writeTextFile(join(outside, ".x.ks-tmp-gen.1"), "sweep bait\n");
  await Deno.writeTextFile(join(outside, "sub/x"), "decoy\n");
  await Deno.writeTextFile(join(sidecar, "small"), "#!/bin/sh\necho hi\n");
  await Deno.writeFile(join(sidecar, "binary"), new Uint8Array(512).map((_, i) => (i * 37) & 255));
  await Deno.writeFile(join(sidecar, "big"), new Uint8Array(4 * 1024 * 1024 + 1));
  await Deno.mkdir(join(sidecar, "adir"));
  const world = { base, outside, sidecar, fifoPool: [], fifoDir, fifoSerial: 0 };
  await mkfifos(world, 8);
  await Deno.rename(world.fifoPool.pop()!, join(sidecar, "fifo"));
  return world;
}

const NAMES = ["x", "a.sh", "tool", "kubesonic.conf", "container_checker", "telemetry.sh"];
const LINKS = [
  "ln-out-abs",
  "ln-out-rel",
  "ln-secret",
  "ln-usrbin",
  "ln-loop",
  "ln-file-out",
  "ln-dev",
  "ln-bin",
  "ln-dot",
];

/** Runs one layout step; a name already taken by an earlier step is fine (the layout is random). */
function step(fn: () => void): void {
  try {
    fn();
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
  }
}

/** Builds a random host layout under `host`; returns names present in usr/local/bin. */
async function buildLayout(r: Rand, world: World, host: string): Promise<string[]> {
  for (const d of ["usr/local/bin", "usr/bin", "etc/systemd/system", "etc/secret"]) {
    Deno.mkdirSync(join(host, d), { recursive: true });
  }
  Deno.symlinkSync("usr/bin", join(host, "bin"));
  Deno.writeTextFileSync(join(host, "etc/secret/passwd"), "root:x:0:0\n");
  Deno.writeTextFileSync(join(host, "etc/secret/x"), "secret x\n");
  const bin = join(host, "usr/local/bin");
  const present: string[] = [];
  for (const name of NAMES) if (r() < 0.3) Deno.writeTextFileSync(join(bin, name), `old ${name}\n`);
  const targets: Record<string, string> = {
    "ln-out-abs": world.outside,
    "ln-out-rel": relative(bin, world.outside),
    "ln-secret": "/etc/secret",
    "ln-usrbin": "/usr/bin",
    "ln-loop": "ln-loop",
    "ln-file-out": join(world.outside, "x"),
    "ln-dev": "/dev/zero",
    "ln-bin": "../../bin",
    "ln-dot": ".",
  };
  for (const link of LINKS) {
    if (r() < 0.35) {
      Deno.symlinkSync(targets[link], join(bin, link));
      present.push(link);
    }
  }
  if (r() < 0.2) {
    if (world.fifoPool.length === 0) await mkfifos(world, 200);
    const fifo = world.fifoPool.pop()!;
    step(() => Deno.renameSync(fifo, join(bin, pick(r, NAMES)) + (r() < 0.5 ? "" : ".f")));
  }
  if (r() < 0.2) step(() => Deno.mkdirSync(join(bin, pick(r, NAMES) + ".d")));
  if (r() < 0.15) step(() => Deno.mkdirSync(join(bin, pick(r, NAMES)))); // a dir as the file
  if (r() < 0.1) {
    step(() => Deno.mkdirSync(join(bin, "open")));
    Deno.chmodSync(join(bin, "open"), 0o777);
  }
  if (r() < 0.1) {
    step(() => Deno.mkdirSync(join(bin, "theirs")));
    Deno.chownSync(join(bin, "theirs"), 1234, 1234);
  }
  // The system dir tree under /etc/systemd/system with a symlinked drop-in dir now and then.
  if (r() < 0.2) Deno.symlinkSync(world.outside, join(host, "etc/systemd/system/x.service.d"));
  return present;
}

const ODD = [
  "\n",
  "\r",
  "\u0000",
  "\u001b[31m",
  "\u0085",
  "\u2028",
  "\ufffd",
  "é",
  "😀",
  " ",
  "\t",
];

function oddName(r: Rand): string {
  switch (Math.floor(r() * 8)) {
    case 0:
      return pick(r, NAMES) + pick(r, ODD);
    case 1:
      return "..";
    case 2:
      return ".";
    case 3:
      return "a".repeat(200 + Math.floor(r() * 100));
    case 4:
      return "";
    case 5:
      return pick(r, ["x/", "x//y", "./x", "x/.."]);
    case 6:
      return `\\ud8${Math.floor(r() * 10)}0`; // a lone surrogate escape (JSON only)
    default:
      return pick(r, NAMES);
  }
}

function genPath(r: Rand, present: string[], tame: boolean): string {
  const root = tame
    ? pick(r, ALLOW)
    : pick(r, [...ALLOW, "/usr/bin", "/etc/secret", "/etc", "/", "/usr/local"]);
  const parts: string[] = [];
  const depth = Math.floor(r() * 3);
  for (let i = 0; i < depth; i++) {
    parts.push(
      r() < 0.5 && present.length ? pick(r, present) : pick(r, ["sub", "open", "theirs", "x.d"]),
    );
  }
  parts.push(!tame && r() < 0.2 ? oddName(r) : pick(r, [...NAMES, ...LINKS]));
  const path = `${root === "/" ? "" : root}/${parts.join("/")}`;
  if (tame) return path;
  if (r() < 0.03) return path.slice(1); // relative
  if (r() < 0.03) return path + "/";
  return path;
}

/**
 * One manifest entry. A `tame` entry has valid fields only (its path may still meet a hostile
 * layout); the others draw every field from valid and hostile values alike.
 */
function genEntry(
  r: Rand,
  world: World,
  present: string[],
  tame: boolean,
): Record<string, unknown> {
  const entry: Record<string, unknown> = { path: genPath(r, present, tame) };
  if (tame) {
    if (r() < 0.5) entry.content = `generated ${Math.floor(r() * 1e6)}\n`;
    else entry.source = pick(r, ["small", "binary", join(world.sidecar, "small")]);
    if (r() < 0.5) entry.mode = pick(r, ["0644", "0755", "4755", "0600"]);
    if (r() < 0.5) entry.owner = pick(r, ["0:0", "1000:1000", "4294967294:0"]);
    if (r() < 0.3) entry.actions = [pick(r, ["daemon-reload", "restart telemetry"])];
    return entry;
  }
  if (r() < 0.5) {
    entry.content = r() < 0.1 ? pick(r, ODD).repeat(3) : `generated ${Math.floor(r() * 1e6)}\n`;
  } else {
    entry.source = pick(r, [
      "small",
      "binary",
      "big",
      "adir",
      "fifo",
      "missing",
      "/dev/zero",
      "/dev/null",
      "/proc/self/status",
      join(world.sidecar, "small"),
    ]);
  }
  if (r() < 0.05) entry.content = entry.content ?? "both";
  if (r() < 0.4) {
    entry.mode = pick(r, ["0644", "0755", "4755", "07777", "0999", "10000", "rw-r--r--", 493, ""]);
  }
  if (r() < 0.4) {
    entry.owner = pick(r, [
      "0:0",
      "1000:1000",
      "4294967294:0",
      "4294967295:0",
      "9999999999:0",
      "-1:0",
      "0",
      "root:root",
      "0:99999999999",
    ]);
  }
  if (r() < 0.2) entry.maxBytes = pick(r, [0, 10, 4096, 8 << 20, -1, 1.5, "4MiB", 2 ** 60]);
  if (r() < 0.3) {
    entry.actions = [
      pick(r, ["daemon-reload", "restart telemetry", "restart a;b", "reboot", "stop-container x"]),
    ];
  }
  if (r() < 0.05) entry.sha256 = pick(r, ["0".repeat(64), "zz", 42]);
  if (r() < 0.03) entry.surprise = true;
  if (r() < 0.05) entry.nativeSource = pick(r, ["small", "fifo", "/dev/zero"]);
  return entry;
}

/** A manifest's bytes: JSON or YAML, sometimes with bytes spoiled. */
function genManifest(
  r: Rand,
  world: World,
  present: string[],
): { bytes: Uint8Array; json: boolean } {
  const tame = r() < 0.6;
  const files = Array.from(
    { length: 1 + Math.floor(r() * 4) },
    () => genEntry(r, world, present, tame || r() < 0.5),
  );
  if (r() < 0.15 && files.length > 0) {
    // An alias of the first entry through a symlink or a doubled slash.
    const first = String(files[0].path);
    files.push({
      path: pick(r, [
        first.replace("/bin/", "/usr/local/bin/ln-bin/"),
        first.replace("/usr/local/bin/", "/usr/local/bin//"),
        first.replace("/bin/", "/usr/local/bin/ln-usrbin/"),
      ]),
      content: "alias\n",
    });
  }
  const doc: Record<string, unknown> = {
    apiVersion: tame || r() < 0.97 ? "kubesonic.io/v1" : "v2",
    kind: "HostFiles",
    feature: tame || r() < 0.97 ? "gen" : pick(r, ["Gen", "g\nx", ""]),
    mode: r() < 0.9 ? "kube" : pick(r, tame ? ["native"] : ["native", "other"]),
    files,
  };
  const json = r() < 0.5;
  let text = json ? JSON.stringify(doc) : stringify(doc);
  // The JSON form keeps lone-surrogate escapes as escapes (\ud800 stays text in the file).
  text = text.replaceAll("\\\\ud8", "\\ud8");
  const bytes = new TextEncoder().encode(text);
  if (!tame && r() < 0.1) {
    const at = Math.floor(r() * bytes.length);
    bytes[at] = pick(r, [0xff, 0xc0, 0x80, 0x00, 0x0a, 0xed]);
  }
  return {
    bytes: !tame && r() < 0.02 ? bytes.subarray(0, Math.floor(r() * bytes.length)) : bytes,
    json,
  };
}

const quietHost: HostCommands = {
  viaNsenter: false,
  run: () => Promise.resolve({ code: 0, stdout: "", stderr: "" }),
};

/** Changes inside the allowed dirs that are not a managed file or a directory on its way. */
function unexpectedInside(changed: string[], managed: string[]): string[] {
  return changed.filter((rel) =>
    ALLOWED_DIRS.some((d) => rel === d || rel.startsWith(d + "/")) &&
    !managed.some((m) => m === rel || m.startsWith(rel + "/"))
  );
}

interface CaseOutcome {
  kind: "refused-manifest" | "pass";
  converged?: boolean;
}

async function runCase(world: World, seed: number, index: number): Promise<CaseOutcome> {
  const r = rng(seed * 1_000_003 + index);
  const dir = join(world.base, `case-${index}`);
  const host = join(dir, "host");
  const present = await buildLayout(r, world, host);
  const where = `seed=${seed} case=${index}`;
  const { bytes, json } = genManifest(r, world, present);
  const manifestFile = join(world.sidecar, json ? "m.json" : "m.yaml");
  const beforeAll = snapshot(host);
  let manifest;
  try {
    manifest = await parseManifest(bytes, manifestFile);
  } catch (error) {
    assert.ok(error instanceof ManifestError, `${where}: crash at load: ${(error as Error).stack}`);
    assert.ok(!/[\n\r]/.test(error.message), `${where}: refusal not one line: ${error.message}`);
    assert.ok(error.message.startsWith(`manifest ${manifestFile}: `), `${where}: ${error.message}`);
    Deno.removeSync(dir, { recursive: true });
    return { kind: "refused-manifest" };
  }
  const lines: string[] = [];
  const paths = new HostPaths({ hostRoot: host, allowRoots: ALLOW });
  const ctx = createPatcherContext({
    manifest,
    paths,
    host: quietHost,
    stateDir: join(dir, "state"),
    log: createLogger("ks-patcher", "gen", (l) => lines.push(l)),
  });
  let result;
  try {
    result = await reconcileOnce(ctx);
  } catch (error) {
    throw new Error(`${where}: a pass threw: ${(error as Error).stack}`);
  }
  for (const line of lines) assert.ok(!line.includes("\n"), `${where}: log line: ${line}`);
  const text = formatResult(result, "text").split("\n");
  assert.equal(
    text.length,
    result.plan.length + result.errors.length + (result.pending.length ? 1 : 0) + 1,
    `${where}: report lines:\n${text.join("\n")}`,
  );
  const changed = diff(beforeAll, snapshot(host));
  const isInside = (rel: string) => ALLOWED_DIRS.some((d) => rel === d || rel.startsWith(d + "/"));
  assert.deepEqual(
    changed.filter((rel) => !isInside(rel)),
    [],
    `${where}: write outside the roots`,
  );
  const managed: string[] = [];
  for (const file of manifest.files) {
    try {
      managed.push(relative(host, paths.resolve(file.path).real));
    } catch { /* refused now: nothing of it may have changed */ }
  }
  const inside = unexpectedInside(changed, managed);
  assert.deepEqual(inside, [], `${where}: unexpected change inside the roots`);
  Deno.removeSync(dir, { recursive: true });
  return { kind: "pass", converged: result.converged };
}

/** Runs cases [from, to) of the seeded sequence, 6 at a time, checking the decoy as it goes. */
async function runCases(from: number, to: number): Promise<void> {
  const world = await createWorld();
  try {
    const decoy = snapshot(world.outside);
    const tally = { refused: 0, pass: 0, converged: 0 };
    let next = from;
    let failure: unknown = null;
    const worker = async () => {
      while (next < to && failure === null) {
        const index = next++;
        let outcome: CaseOutcome;
        try {
          outcome = await runCase(world, SEED, index);
        } catch (error) {
          failure ??= error;
          return;
        }
        if (outcome.kind === "refused-manifest") tally.refused++;
        else {
          tally.pass++;
          if (outcome.converged) tally.converged++;
        }
        if (index % 1000 === 999) {
          assert.deepEqual(snapshot(world.outside), decoy, `decoy changed by case <= ${index}`);
        }
      }
    };
    await Promise.all(Array.from({ length: 6 }, worker));
    if (failure !== null) throw failure;
    assert.deepEqual(snapshot(world.outside), decoy, "decoy tree outside the host root changed");
    console.log(
      `generated test: cases ${from}..${to - 1}: ${tally.refused} manifests refused at load, ` +
        `${tally.pass} passes (${tally.converged} converged)`,
    );
    const n = to - from;
    assert.equal(tally.refused + tally.pass, n);
    assert.ok(tally.pass > n / 5 && tally.converged > n / 20, JSON.stringify(tally));
  } finally {
    await Deno.remove(world.base, { recursive: true });
  }
}

// The one seeded sequence is cut in eight tests only to keep each one short under load.
const PARTS = 8;
const ranges = Array.from({ length: PARTS }, (_, i) => [
  Math.floor((CASES * i) / PARTS),
  Math.floor((CASES * (i + 1)) / PARTS),
]);
console.log(
  `generated test: seed=${SEED} cases=${CASES} (replay: KS_GEN_SEED=${SEED} KS_GEN_CASES=${CASES})`,
);
for (const [from, to] of ranges) {
  Deno.test(`generated hostile manifests and layouts, in-process, cases ${from}..${to - 1} of ${CASES}: no crash, one-line refusals, no write outside the roots`, async () => {
    console.log(`generated test: seed=${SEED} cases ${from}..${to - 1}`);
    await runCases(from, to);
  });
}

Deno.test(`generated hostile manifests through the bundled ks-patcher (${TOOL_CASES} cases)`, async () => {
  const seed = SEED + 1;
  console.log(`generated tool test: seed=${seed} cases=${TOOL_CASES}`);
  const world = await createWorld();
  try {
    const decoy = snapshot(world.outside);
    const codes: Record<number, number> = {};
    for (let index = 0; index < TOOL_CASES; index++) {
      const r = rng(seed * 1_000_003 + index);
      const dir = join(world.base, `tool-${index}`);
      const host = join(dir, "host");
      const present = await buildLayout(r, world, host);
      const { bytes, json } = genManifest(r, world, present);
      const manifestFile = join(world.sidecar, `t${index}.${json ? "json" : "yaml"}`);
      await Deno.writeFile(manifestFile, bytes);
      const beforeOutside = snapshot(host, (rel) => ALLOWED_DIRS.some((d) => rel.startsWith(d)));
      const cmd = await toolCommand("ks-patcher", [
        "--manifest",
        manifestFile,
        "--host-root",
        host,
        "--state-dir",
        join(dir, "state"),
        "--nsenter",
        "never",
        ...ALLOW.flatMap((a) => ["--allow-root", a]),
        "--once",
      ], { env: { PATH: "/nonexistent" }, stdout: "piped", stderr: "piped" });
      const out = await cmd.output();
      const where = `seed=${seed} case=${index}`;
      const stderr = new TextDecoder().decode(out.stderr);
      assert.ok([0, 1, 2].includes(out.code), `${where}: exit ${out.code}: ${stderr}`);
      codes[out.code] = (codes[out.code] ?? 0) + 1;
      for (const line of stderr.trim().split("\n").filter(Boolean)) {
        assert.match(line, /^ks-patcher\[\d+\]: /, `${where}: stray stderr line: ${line}`);
      }
      if (out.code === 2 && !stderr.includes("started")) {
        assert.equal(stderr.trim().split("\n").length, 1, `${where}: refusal: ${stderr}`);
      }
      const afterOutside = snapshot(host, (rel) => ALLOWED_DIRS.some((d) => rel.startsWith(d)));
      assert.deepEqual(diff(beforeOutside, afterOutside), [], `${where}: write outside the roots`);
      await Deno.remove(dir, { recursive: true });
    }
    assert.deepEqual(snapshot(world.outside), decoy, "decoy tree outside the host root changed");
    console.log(`generated tool test: exit codes ${JSON.stringify(codes)}`);
  } finally {
    await Deno.remove(world.base, { recursive: true });
  }
});
