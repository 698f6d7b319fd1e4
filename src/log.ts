// The one log line format every tool uses: one line per event on stderr, syslog-friendly
// (`<tool>[<pid>]: <feature>: <message> key=value ...`), so journald/rsyslog tag it by tool and
// operators can grep by feature.

/** Severity of a log line; `debug` lines are printed only when KS_DEBUG is set. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Extra key=value fields appended to a log line. */
export type LogFields = Record<string, string | number | boolean | undefined | null>;

/** A logger bound to one tool and, optionally, one feature. */
export interface Logger {
  readonly tool: string;
  readonly feature?: string;
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger for the same tool bound to another feature (or scope such as `telemetry@asic0`). */
  withFeature(feature: string): Logger;
}

/** Where log lines go; tests can pass a collecting sink. Defaults to stderr. */
export type LogSink = (line: string) => void;

const encoder = new TextEncoder();

/** Writes one line to stderr synchronously (so it survives an immediate exit or exec). */
export const stderrSink: LogSink = (line) => {
  Deno.stderr.writeSync(encoder.encode(line + "\n"));
};

/**
 * Escapes what must not reach a log line or a report raw: control characters (newline, ESC,
 * NUL, C1) and lone surrogates (bytes that were not UTF-8) become JSON-style escapes (`\n`,
 * `\u001b`, `\udc80`), and a backslash before them stays unambiguous. Other text is unchanged.
 */
export function escapeText(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]|[\ud800-\udfff]/gu, (ch) => {
    if (ch.length === 2) return ch; // a well-formed surrogate pair
    return JSON.stringify(ch).slice(1, -1).replace(
      /^[\u007f-\u009f]$/,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
    );
  });
}

function formatValue(value: string | number | boolean): string {
  const text = String(value);
  // deno-lint-ignore no-control-regex
  return /^[^\s"=\\\u0000-\u001f\u007f-\u009f\ud800-\udfff]+$/.test(text)
    ? text
    : JSON.stringify(text);
}

/** Formats one log line; exported for tests and for tools that print the same shape elsewhere. */
export function formatLogLine(
  tool: string,
  feature: string | undefined,
  level: LogLevel,
  message: string,
  fields?: LogFields,
): string {
  let line = `${tool}[${Deno.pid}]: `;
  if (feature) line += `${feature}: `;
  if (level === "warn" || level === "error") line += `${level.toUpperCase()}: `;
  line += escapeText(message);
  for (const [key, value] of Object.entries(fields ?? {})) {
    if (value === undefined || value === null) continue;
    line += ` ${key}=${formatValue(value)}`;
  }
  return line;
}

/** Creates a logger for `tool` (and `feature` when the tool works on one). */
export function createLogger(tool: string, feature?: string, sink: LogSink = stderrSink): Logger {
  const debugOn = Boolean(Deno.env.get("KS_DEBUG"));
  const emit = (level: LogLevel, message: string, fields?: LogFields) => {
    if (level === "debug" && !debugOn) return;
    sink(formatLogLine(tool, feature, level, message, fields));
  };
  return {
    tool,
    feature,
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    withFeature: (other) => createLogger(tool, other, sink),
  };
}
