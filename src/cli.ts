// Flag parsing shared by every `ks-*` tool: node:util parseArgs' strict semantics and types with a
// typed spec (parsed here, so a tool's start-up does not load the Node compatibility layer),
// `--help` and `--version` handled the same way everywhere, usage errors as one line and exit
// code 2, and the flag > environment > file > default precedence for settings.
import type { parseArgs, ParseArgsConfig } from "node:util";
import { VERSION } from "./version.ts";

/** Exit code for a usage error (bad flag, missing argument), as getopt-style tools use. */
export const EXIT_USAGE = 2;

/** Thrown for bad command-line input; `runCli` prints its message on one line and exits 2. */
export class UsageError extends Error {
  override name = "UsageError";
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
          `place it at the end of the command after '--', as in '-- "${arg}"'`,
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
      if (next === undefined || (next.startsWith("-") && next !== "-" && next.length > 1)) {
        throw new UsageError(`Option '${label} <value>' argument missing`);
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
 * Runs a tool's main function: UsageError -> one line + exit 2; any other error -> one line +
 * `internalErrorCode` (default 1); otherwise exits with the code main returns.
 */
export async function runCli(
  tool: string,
  main: () => Promise<number> | number,
  internalErrorCode = 1,
): Promise<never> {
  let code: number;
  try {
    code = await main();
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`${tool}: ${error.message} (see ${tool} --help)`);
      Deno.exit(EXIT_USAGE);
    }
    const message = error instanceof Error ? error.message : String(error);
    console.error(`${tool}: ${message.split("\n")[0]}`);
    code = internalErrorCode;
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

/**
 * The multi-ASIC namespace: `--namespace` > `KS_NAMESPACE` > "" (the host's database). Throws
 * UsageError unless it is empty or `asic<N>`.
 */
export function asicNamespaceSetting(flag: string | undefined): string {
  const namespace = setting(flag, "KS_NAMESPACE", "");
  if (namespace !== "" && !/^asic\d+$/.test(namespace)) {
    throw new UsageError(`--namespace: "${namespace}" is not a namespace (asic0, asic1, ...)`);
  }
  return namespace;
}
