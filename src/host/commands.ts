// Commands on the host: run directly, or through `nsenter --target 1 --mount --uts --ipc --net
// --pid` when this process runs in a container (a sidecar with hostPID), so `systemctl` and
// `docker` act on the switch, not on the sidecar. Every command has a timeout.

/** How a command ended. `code` is 124 when it was killed by the timeout, 127 when not found. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs argv on the host. */
export interface HostCommands {
  /** Whether commands go through nsenter into PID 1's namespaces. */
  readonly viaNsenter: boolean;
  /** Runs `argv` to completion (never throws for a failing or missing command). */
  run(argv: string[], options?: { timeoutMs?: number }): Promise<CommandResult>;
}

/** `auto`: nsenter when our mount namespace differs from PID 1's (or, if that cannot be read, when
 * the host root is not `/`); `always` / `never` force it. */
export type NsenterMode = "auto" | "always" | "never";

/** The nsenter prefix used to reach the host's namespaces. */
export const NSENTER_PREFIX = [
  "nsenter",
  "--target",
  "1",
  "--mount",
  "--uts",
  "--ipc",
  "--net",
  "--pid",
];

/** Decides whether host commands need nsenter (see NsenterMode). */
export function needsNsenter(mode: NsenterMode, hostRoot: string): boolean {
  if (mode !== "auto") return mode === "always";
  try {
    return Deno.readLinkSync("/proc/self/ns/mnt") !== Deno.readLinkSync("/proc/1/ns/mnt");
  } catch {
    return Deno.realPathSync(hostRoot) !== "/";
  }
}

/** Creates the host command runner. `defaultTimeoutMs` applies when a call gives none. */
export function createHostCommands(
  options: {
    nsenter: NsenterMode;
    hostRoot: string;
    defaultTimeoutMs?: number;
    env?: Record<string, string>;
  },
): HostCommands {
  const viaNsenter = needsNsenter(options.nsenter, options.hostRoot);
  const defaultTimeout = options.defaultTimeoutMs ?? 90_000;
  const decoder = new TextDecoder();
  return {
    viaNsenter,
    async run(argv, runOptions = {}) {
      const full = viaNsenter ? [...NSENTER_PREFIX, ...argv] : argv;
      const timeout = AbortSignal.timeout(runOptions.timeoutMs ?? defaultTimeout);
      try {
        const out = await new Deno.Command(full[0], {
          args: full.slice(1),
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
          env: options.env,
          signal: timeout,
        }).output();
        const code = timeout.aborted ? 124 : out.code;
        return { code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) {
          return { code: 127, stdout: "", stderr: `${full[0]}: command not found` };
        }
        return { code: 126, stdout: "", stderr: (error as Error).message };
      }
    },
  };
}
