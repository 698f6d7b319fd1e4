// A thin fake, named as such: a RECORDING `systemctl` (and `docker`) placed first on
// PATH, because systemd is not PID 1 here. Each call appends one line "<tool> <args...>" to a log
// file and exits 0 — or non-zero while a failure budget set by the test lasts, so retries can be
// proved. It is a shell script, so spawning it costs about a millisecond.
import { join } from "node:path";

/** A directory holding the recording fakes, and their call log. */
export interface RecordingSystemctl {
  /** Directory to put first on PATH. */
  binDir: string;
  /** PATH value with binDir first. */
  path: string;
  logPath: string;
  /** The calls so far, one string per call, e.g. "systemctl restart telemetry". */
  calls(): string[];
  /** Makes the next `n` calls fail with exit 1 (a restart that fails, a reload that times out). */
  failNext(n: number): void;
  /** Removes the directory. */
  remove(): Promise<void>;
}

const SCRIPT = (tool: string, dir: string) =>
  `#!/bin/sh
# RECORDING FAKE ${tool} (sandbox/harness/recording_systemctl.ts): logs the call, exits 0 unless the
# failure budget in ${dir}/fail is above zero.
budget=$(cat "${dir}/fail" 2>/dev/null || echo 0)
if [ "$budget" -gt 0 ] 2>/dev/null; then
  echo $((budget - 1)) > "${dir}/fail"
  echo "${tool} $* FAILED" >> "${dir}/calls.log"
  echo "recording fake ${tool}: failing as asked" >&2
  exit 1
fi
echo "${tool} $*" >> "${dir}/calls.log"
exit 0
`;

/** Creates the recording fakes in a new temp directory (or `dir`). */
export async function createRecordingSystemctl(dir?: string): Promise<RecordingSystemctl> {
  const binDir = dir ?? await Deno.makeTempDir({ prefix: "ks-recording-systemctl-" });
  await Deno.mkdir(binDir, { recursive: true });
  for (const tool of ["systemctl", "docker"]) {
    await Deno.writeTextFile(join(binDir, tool), SCRIPT(tool, binDir), { mode: 0o755 });
    await Deno.chmod(join(binDir, tool), 0o755);
  }
  const logPath = join(binDir, "calls.log");
  await Deno.writeTextFile(logPath, "");
  return {
    binDir,
    path: `${binDir}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
    logPath,
    calls: () => Deno.readTextFileSync(logPath).split("\n").filter((l) => l !== ""),
    failNext: (n) => Deno.writeTextFileSync(join(binDir, "fail"), String(n)),
    remove: () => Deno.remove(binDir, { recursive: true }).catch(() => {}),
  };
}
