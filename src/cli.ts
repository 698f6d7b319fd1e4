// Flag parsing shared by every `ks-*` tool: node:util parseArgs's typed spec and strict semantics,
// `--help` and `--version` handled the same way everywhere, usage errors as one line and exit
// code 2, and the flag > environment > file > default precedence for settings. The parser is
// parseArgs's strict subset written here (long and short options, `--name=value`, `multiple`,
// `default`, `--`): importing any node: module costs a tool's start-up ~20 ms of CPU (Node
// compatibility set-up), which the monit checkers, spawned every cycle, should not pay.
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
  const { values, positionals } = parseStrict(args, spec.options, spec.allowPositionals ?? true);
  return { values: values as ParsedValues<O>, positionals };
}

type OptionSpec = NonNullable<ParseArgsConfig["options"]>[string];

function unknownOption(shown: string): UsageError {
  return new UsageError(
    `Unknown option '${shown}'. To specify a positional argument starting with a '-', ` +
      `place it at the end of the command after '--', as in '-- "${shown}"`,
  );
}

/** parseArgs({ strict: true }) for string/boolean options; throws UsageError (its wording). */
function parseStrict(
  args: string[],
  options: Record<string, OptionSpec>,
  allowPositionals: boolean,
): { values: Record<string, unknown>; positionals: string[] } {
  const values: Record<string, unknown> = {};
  const positionals: string[] = [];
  const byShort = new Map<string, string>();
  for (const [name, o] of Object.entries(options)) if (o.short) byShort.set(o.short, name);
  const store = (name: string, value: string | boolean) => {
    if (!options[name].multiple) values[name] = value;
    else if (Array.isArray(values[name])) (values[name] as (string | boolean)[]).push(value);
    else values[name] = [value];
  };
  const take = (name: string, shown: string, inline: string | undefined, i: number): number => {
    const o = options[name];
    if (o.type === "boolean") {
      if (inline !== undefined) throw new UsageError(`Option '${shown}' does not take an argument`);
      store(name, true);
      return i;
    }
    if (inline !== undefined) {
      store(name, inline);
      return i;
    }
    const next = args[i + 1];
    if (next === undefined) throw new UsageError(`Option '${shown} <value>' argument missing`);
    if (next.length > 1 && next.startsWith("-")) {
      throw new UsageError(`Option '${shown}' argument is ambiguous.`);
    }
    store(name, next);
    return i + 1;
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      if (!Object.hasOwn(options, name)) throw unknownOption(`--${name}`);
      i = take(name, `--${name}`, eq === -1 ? undefined : arg.slice(eq + 1), i);
    } else if (arg.startsWith("-") && arg.length > 1) {
      const name = byShort.get(arg[1]);
      if (!name) throw unknownOption(`-${arg[1]}`);
      i = take(name, `-${arg[1]}`, arg.length > 2 ? arg.slice(2) : undefined, i);
    } else if (allowPositionals) positionals.push(arg);
    else {
      throw new UsageError(
        `Unexpected argument '${arg}'. This command does not take positional arguments`,
      );
    }
  }
  for (const [name, o] of Object.entries(options)) {
    if (values[name] === undefined && o.default !== undefined) {
      values[name] = Array.isArray(o.default) ? [...o.default] : o.default;
    }
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
