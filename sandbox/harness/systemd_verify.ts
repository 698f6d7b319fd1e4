// Checks unit files with the REAL `systemd-analyze verify` (systemd is not PID 1 here, but the
// verifier runs offline): the units are laid out in a private root (`--root`) beside a copy of
// this machine's /usr/lib/systemd/system, so `After=`/`WantedBy=` targets resolve, and every
// absolute `Exec*=` program must exist there as an executable. Programs listed in `executables`
// (e.g. the launcher the patcher installs) and programs that exist on this machine get an
// executable stub; anything else is reported "not executable", which catches a typo'd path.
// Strict: a non-zero exit OR any line printed (unknown keys are only warnings) is a failure.
// For every team: `await assertUnitsVerify([{ path: "/etc/systemd/system/x.service", content }])`.
import { dirname, join } from "node:path";

/** A unit file or drop-in at its host path (e.g. `/etc/systemd/system/x.service.d/50-y.conf`). */
export interface UnitFile {
  path: string;
  content: string;
}

/** What `systemd-analyze verify` said. */
export interface VerifyResult {
  ok: boolean;
  code: number;
  /** Its output, with the private root's prefix removed from paths. */
  output: string;
  /** The units that were verified (host paths). */
  verified: string[];
}

/** Whether `systemd-analyze` is installed (package `systemd`). */
export function systemdAnalyzeAvailable(): boolean {
  try {
    return Deno.statSync("/usr/bin/systemd-analyze").isFile;
  } catch {
    return false;
  }
}

const EXEC_KEYS =
  /^\s*(ExecStartPre|ExecStart|ExecStartPost|ExecStop|ExecStopPost|ExecReload|ExecCondition)\s*=\s*(.*)$/;

/** Absolute programs the `Exec*=` lines of `content` run (prefixes `-@:+!` stripped). */
export function execPrograms(content: string): string[] {
  const out: string[] = [];
  for (const line of content.split("\n")) {
    const m = EXEC_KEYS.exec(line);
    if (!m || m[2].trim() === "") continue;
    const program = m[2].trim().replace(/^[-@:+!]+/, "").split(/\s+/)[0];
    if (program.startsWith("/")) out.push(program);
  }
  return out;
}

function existsOnThisMachine(path: string): boolean {
  try {
    const info = Deno.statSync(path);
    return info.isFile && ((info.mode ?? 0) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/**
 * Verifies `units` with the real systemd-analyze. `verify` names the units to verify (default:
 * every file that is not a drop-in); drop-ins are picked up by the unit they extend.
 */
export async function verifyUnits(
  units: UnitFile[],
  options: { executables?: string[]; verify?: string[] } = {},
): Promise<VerifyResult> {
  const root = await Deno.makeTempDir({ prefix: "ks-systemd-verify-" });
  try {
    await Deno.mkdir(join(root, "usr/lib/systemd"), { recursive: true });
    const copy = await new Deno.Command("cp", {
      args: ["-a", "/usr/lib/systemd/system", join(root, "usr/lib/systemd/")],
    }).output();
    if (!copy.success) throw new Error("copying /usr/lib/systemd/system failed");
    for (const link of ["lib", "bin", "sbin"]) await Deno.symlink(`usr/${link}`, join(root, link));
    await Deno.mkdir(join(root, "usr/bin"), { recursive: true });
    await Deno.mkdir(join(root, "usr/sbin"), { recursive: true });
    await Deno.mkdir(join(root, "etc/systemd/system"), { recursive: true });
    const wanted = new Set(options.executables ?? []);
    for (const unit of units) {
      for (const program of execPrograms(unit.content)) {
        if (existsOnThisMachine(program)) wanted.add(program);
      }
    }
    for (const program of wanted) {
      const at = join(root, program);
      await Deno.mkdir(dirname(at), { recursive: true });
      await Deno.writeTextFile(at, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
      await Deno.chmod(at, 0o755);
    }
    for (const unit of units) {
      const at = join(root, unit.path);
      await Deno.mkdir(dirname(at), { recursive: true });
      await Deno.writeTextFile(at, unit.content);
    }
    const verified = options.verify ??
      units.map((u) => u.path).filter((p) => !dirname(p).endsWith(".d"));
    const out = await new Deno.Command("systemd-analyze", {
      args: [
        "verify",
        `--root=${root}`,
        "--man=no",
        "--generators=no",
        "--recursive-errors=no",
        ...verified,
      ],
      stdout: "piped",
      stderr: "piped",
      env: { SYSTEMD_LOG_COLOR: "0", SYSTEMD_PAGER: "" },
    }).output();
    const dec = new TextDecoder();
    const output = (dec.decode(out.stdout) + dec.decode(out.stderr)).replaceAll(root, "").trim();
    return { ok: out.code === 0 && output === "", code: out.code, output, verified };
  } finally {
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}

/** Throws (with systemd-analyze's own words) unless `units` verify cleanly. */
export async function assertUnitsVerify(
  units: UnitFile[],
  options: { executables?: string[]; verify?: string[] } = {},
): Promise<void> {
  const result = await verifyUnits(units, options);
  if (!result.ok) {
    throw new Error(
      `systemd-analyze verify ${
        result.verified.join(" ")
      } failed (exit ${result.code}):\n${result.output}`,
    );
  }
}
