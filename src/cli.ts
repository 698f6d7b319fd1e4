// Flag parsing shared by every `ks-*` tool: node:util parseArgs' strict semantics and types with a
// typed spec (parsed here, so a tool's start-up does not load the Node compatibility layer),
// `--help` and `--version` handled the same way everywhere, usage errors as one line and exit
// code 2, and the flag > environment > file > default precedence for settings.
import type { parseArgs, ParseArgsConfig } from "node:util";
import { VERSION } from "./version.ts";

/**
 * The exit-code rule every `ks-*` tool follows, unless a SONiC contract fixes the code (LSB status
 * 0/3/4 for `ks-stub status`, monit's 3 for the checkers): 0 done; 1 tried and failed (an API,
 * runtime or database unreachable, a write that failed, not converged); 2 nothing was done because
 * what was given is wrong — a bad flag or argument (usage) or a bad file it names (spec,
 * manifest, config_db, kubeconfig) — with one line naming it. Tool-specific outcomes use 3 and up.
 */
export const EXIT_FAILED = 1;
/** Exit code for a usage error (bad flag, missing argument), as getopt-style tools use. */
export const EXIT_USAGE = 2;
/** Exit code for bad input (a bad spec, manifest or other file named on the command line). */
export const EXIT_BAD_INPUT = 2;

/** Thrown for bad command-line input; `runCli` prints its message on one line and exits 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/**
 * Thrown for a bad input file (spec, manifest, kubeconfig, `--to` target): `runCli` prints its
 * message (which names the file and what is wrong) on one line and exits EXIT_BAD_INPUT.
 */
export class BadInputError extends Error {
  override name = "BadInputError";
}

/** A tool's command-line description: its name, the help text and the parseArgs options. */
export interface CliSpec<O extends NonNullable<ParseArgsConfig["options"]>> {
  tool: string;
  /** Full help text (usage line, options, an example). */
  help: string;
  options: O;
  /** Whether positional arguments are accepted (default true). */
  allowPositionals?: boolean;
}

type ParsedValues<O extends NonNullable<ParseArgsConfig["options"]>> = ReturnType<
  typeof parseArgs<{ options: O; allowPositionals: true; strict: true }>
>["values"];

/** The parsed flags and positionals of one invocation. */
export interface ParsedCli<O extends NonNullable<ParseArgsConfig["options"]>> {
  values: ParsedValues<O>;
  positionals: string[];
}

/**
 * Parses `args` against `spec`. Prints help / version and exits 0 for `--help` / `--version`;
 * throws UsageError (one-line message naming the input) for unknown flags or bad values.
 */
export function parseCli<O extends NonNullable<ParseArgsConfig["options"]>>(
  spec: CliSpec<O>,
  args: string[],
): ParsedCli<O> {
  if (args.includes("--help") || args.includes("-h")) {
    const dashDash = args.indexOf("--");
    const helpAt = Math.max(args.indexOf("--help"), args.indexOf("-h"));
    if (dashDash === -1 || helpAt < dashDash) {
      console.log(spec.help.trimEnd());
      Deno.exit(0);
    }
  }
  if (args.includes("--version")) {
    const dashDash = args.indexOf("--");
    if (dashDash === -1 || args.indexOf("--version") < dashDash) {
      console.log(`${spec.tool} ${VERSION}`);
      Deno.exit(0);
    }
  }
  const parsed = strictParse(args, spec.options, spec.allowPositionals ?? true);
  return { values: parsed.values as ParsedValues<O>, positionals: parsed.positionals };
}

type OptionSpec = NonNullable<ParseArgsConfig["options"]>[string];

/**
 * parseArgs({ strict: true }) for the options the tools use (string and boolean, `short`,
 * `multiple`, `default`, `--name=value`, `--` ending the options), with its error wording.
 * Throws UsageError.
 */
function strictParse(
  args: string[],
  options: Record<string, OptionSpec>,
  allowPositionals: boolean,
): { values: Record<string, unknown>; positionals: string[] } {
  const values: Record<string, unknown> = {};
  const positionals: string[] = [];
  const byShort = new Map<string, string>();
  for (const [name, o] of Object.entries(options)) if (o.short) byShort.set(o.short, name);
  const store = (name: string, value: string | boolean) => {
    if (options[name].multiple) {
      const list = (values[name] as unknown[] | undefined) ?? [];
      list.push(value);
      values[name] = list;
    } else values[name] = value;
  };
  const positional = (arg: string) => {
    if (!allowPositionals) {
      throw new UsageError(
        `Unexpected argument '${arg}'. This command does not take positional arguments`,
      );
    }
    positionals.push(arg);
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      for (const rest of args.slice(i + 1)) positional(rest);
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      positional(arg);
      continue;
    }
    let name: string | undefined;
    let inline: string | undefined;
    let shown: string;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      if (eq !== -1) inline = arg.slice(eq + 1);
      shown = `--${name}`;
      if (!(name in options)) name = undefined;
    } else {
      shown = arg.slice(0, 2);
      name = byShort.get(arg[1]);
      if (arg.length > 2) inline = arg.slice(2);
    }
    if (name === undefined) {
      throw new UsageError(
        `Unknown option '${shown}'. To specify a positional argument starting with a '-', ` +
          `place it at the end of the command after '--', as in '-- "${arg}"`,
      );
    }
    const o = options[name];
    const label = o.short ? `-${o.short}, --${name}` : `--${name}`;
    if (o.type === "boolean") {
      if (inline !== undefined) throw new UsageError(`Option '${label}' does not take an argument`);
      store(name, true);
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = args[i + 1];
      if (next === undefined) throw new UsageError(`Option '${label} <value>' argument missing`);
      if (next.startsWith("-") && next.length > 1) {
        // parseArgs' wording: the option as typed, then how to pass a value that starts with '-'.
        throw new UsageError(`Option '${shown}' argument is ambiguous.`);
      }
      value = next;
      i++;
    }
    store(name, value);
  }
  for (const [name, o] of Object.entries(options)) {
    if (values[name] === undefined && o.default !== undefined) values[name] = o.default;
  }
  return { values, positionals };
}

/**
 * Runs a tool's main function: UsageError -> one line + EXIT_USAGE; BadInputError -> one line +
 * EXIT_BAD_INPUT; any other error -> one line + EXIT_FAILED; otherwise exits with the code main
 * returns. A tool whose contract fixes every code (`ks-stub status`: LSB 4 "unknown") passes
 * `failureCode`, used instead of all three.
 */
export async function runCli(
  tool: string,
  main: () => Promise<number> | number,
  failureCode?: number,
): Promise<never> {
  let code: number;
  try {
    code = await main();
  } catch (error) {
    const message = (error instanceof Error ? error.message : String(error)).split("\n")[0];
    if (error instanceof UsageError) {
      console.error(`${tool}: ${message} (see ${tool} --help)`);
      code = failureCode ?? EXIT_USAGE;
    } else {
      console.error(`${tool}: ${message}`);
      code = failureCode ?? (error instanceof BadInputError ? EXIT_BAD_INPUT : EXIT_FAILED);
    }
  }
  Deno.exit(code);
}

/** Flag > environment variable > default, for a string setting. */
export function setting(
  flag: string | undefined,
  envName: string,
  fallback: string,
): string;
export function setting(
  flag: string | undefined,
  envName: string,
  fallback?: string,
): string | undefined;
export function setting(flag: string | undefined, envName: string, fallback?: string) {
  if (flag !== undefined && flag !== "") return flag;
  const fromEnv = Deno.env.get(envName);
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
  return fallback;
}

/** Parses a duration such as `800ms`, `5s`, `2m`, `1h` or a bare number of milliseconds. */
export function parseDuration(text: string, what: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) throw new UsageError(`${what}: "${text}" is not a duration (use e.g. 800ms, 5s, 2m)`);
  const value = Number(match[1]);
  const unit = match[2] ?? "ms";
  const factor = unit === "ms" ? 1 : unit === "s" ? 1000 : unit === "m" ? 60_000 : 3_600_000;
  return Math.round(value * factor);
}

/** Parses a `host:port` pair (IPv6 as `[::1]:80`); throws UsageError naming `what` when bad. */
export function parseHostPort(text: string, what: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || port < 0 || port > 65535) {
    throw new UsageError(`${what}: "${text}" is not host:port (e.g. 127.0.0.1:50051)`);
  }
  return { host: match[1] ?? match[2], port };
}

/**
 * The feature a pod tool serves: `--feature` > `KS_FEATURE`. Throws UsageError when it is missing
 * or not a FEATURE key (letters, digits, `_`, `.`, `-`).
 */
export function featureSetting(flag: string | undefined): string {
  const feature = setting(flag, "KS_FEATURE");
  if (!feature) throw new UsageError("--feature is required (e.g. --feature telemetry)");
  if (!/^[A-Za-z0-9_.-]+$/.test(feature)) {
    throw new UsageError(`--feature: "${feature}" is not a FEATURE name`);
  }
  return feature;
}

const warnedDeprecated = new Set<string>();

/** Prints `<tool>: warning: OLD is deprecated, use NEW (...)` once per process and name. */
export function warnDeprecated(tool: string, old: string, replacement: string, meaning: string) {
  if (warnedDeprecated.has(old)) return;
  warnedDeprecated.add(old);
  console.error(`${tool}: warning: ${old} is deprecated, use ${replacement} (${meaning})`);
}

/** A setting that was renamed: the new flag and variable, and the old spellings still accepted. */
export interface RenamedSetting {
  tool: string;
  /** The new flag's value, its name (`--asic-namespace`) and variable (`KS_ASIC_NAMESPACE`). */
  flag: string | undefined;
  flagName: string;
  envName: string;
  /** The old flag's value and name, read with one deprecation line. */
  oldFlag?: string | undefined;
  oldFlagName?: string;
  /** The old variable, read with one deprecation line (only where it meant the same thing). */
  oldEnvName?: string;
  /** What the setting means, for the deprecation line. */
  meaning: string;
}

/**
 * Flag > old flag > environment > old environment > fallback, for a renamed setting; the old
 * spellings, when they are what was used, print one deprecation line on stderr.
 */
export function renamedSetting(r: RenamedSetting, fallback: string): string {
  if (r.flag !== undefined && r.flag !== "") return r.flag;
  if (r.oldFlag !== undefined && r.oldFlag !== "" && r.oldFlagName) {
    warnDeprecated(r.tool, r.oldFlagName, r.flagName, r.meaning);
    return r.oldFlag;
  }
  const fromEnv = Deno.env.get(r.envName);
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
  if (r.oldEnvName) {
    const old = Deno.env.get(r.oldEnvName);
    if (old !== undefined && old !== "") {
      warnDeprecated(r.tool, r.oldEnvName, r.envName, r.meaning);
      return old;
    }
  }
  return fallback;
}

/**
 * The multi-ASIC namespace (the ASIC's CONFIG_DB, not a Kubernetes namespace): `--asic-namespace`
 * > `KS_ASIC_NAMESPACE` > "" (the host's database); the old `--namespace` / `KS_NAMESPACE` are
 * accepted with a deprecation line. Throws UsageError unless it is empty or `asic<N>`.
 */
export function asicNamespaceSetting(
  tool: string,
  flag: string | undefined,
  oldFlag?: string | undefined,
): string {
  const namespace = renamedSetting({
    tool,
    flag,
    flagName: "--asic-namespace",
    envName: "KS_ASIC_NAMESPACE",
    oldFlag,
    oldFlagName: "--namespace",
    oldEnvName: "KS_NAMESPACE",
    meaning: "the multi-ASIC namespace",
  }, "");
  if (namespace !== "" && !/^asic\d+$/.test(namespace)) {
    throw new UsageError(
      `--asic-namespace: "${namespace}" is not an ASIC namespace (asic0, asic1, ...)`,
    );
  }
  return namespace;
}

/** The Kubernetes namespace the feature's objects live in when nothing says otherwise. */
export const DEFAULT_KUBE_NAMESPACE = "sonic";

/**
 * The Kubernetes namespace: `--kube-namespace` > `KS_KUBE_NAMESPACE` > "sonic"; the old
 * `--namespace` is accepted with a deprecation line, and `KS_NAMESPACE` too where a tool read it
 * as the Kubernetes namespace (`oldEnv`). Throws UsageError unless it is a DNS-1123 label.
 */
export function kubeNamespaceSetting(
  tool: string,
  flag: string | undefined,
  oldFlag: string | undefined,
  opts: { oldEnv?: boolean } = {},
): string {
  const namespace = renamedSetting({
    tool,
    flag,
    flagName: "--kube-namespace",
    envName: "KS_KUBE_NAMESPACE",
    oldFlag,
    oldFlagName: "--namespace",
    oldEnvName: opts.oldEnv ? "KS_NAMESPACE" : undefined,
    meaning: "the Kubernetes namespace",
  }, DEFAULT_KUBE_NAMESPACE);
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(namespace)) {
    throw new UsageError(`--kube-namespace: "${namespace}" is not a Kubernetes namespace name`);
  }
  return namespace;
}
