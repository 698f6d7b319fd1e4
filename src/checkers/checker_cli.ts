// The command line the two checkers (ks-container-checker, ks-memory-checker) share: the runtime
// socket options, --kube-namespace, --timeout and --output, and the events publisher's timeout,
// each resolved the same way (flag > environment > default) with the same usage errors.
import { kubeNamespaceSetting, parseDuration, setting, UsageError } from "../cli.ts";
import { resolveEndpoints, type RuntimeEndpoints } from "./runtimes.ts";

/** The parseCli options both checkers accept. */
export const CHECKER_OPTIONS = {
  "docker-socket": { type: "string" },
  "cri-socket": { type: "string" },
  "kube-namespace": { type: "string" },
  timeout: { type: "string" },
  output: { type: "string", default: "text" },
} as const;

/** What the shared options resolve to. */
export interface CheckerSettings {
  endpoints: RuntimeEndpoints;
  /** The per-call timeout (ms) of runtime and CONFIG_DB calls. */
  timeoutMs: number;
  output: "text" | "json";
  /** The events publisher's timeout (KS_EVENTS_TIMEOUT, default 1 s). */
  events: { timeoutMs: number };
}

/** Resolves the shared options of `tool`. Throws UsageError on a bad value. */
export function checkerSettings(
  tool: string,
  values: {
    "docker-socket"?: string;
    "cri-socket"?: string;
    "kube-namespace"?: string;
    timeout?: string;
    output?: string;
  },
): CheckerSettings {
  const output = values.output ?? "text";
  if (output !== "text" && output !== "json") {
    throw new UsageError(`--output: "${output}" is not text or json`);
  }
  const timeoutMs = parseDuration(setting(values.timeout, "KS_CHECK_TIMEOUT", "2s"), "--timeout");
  return {
    endpoints: resolveEndpoints({
      dockerSocket: values["docker-socket"],
      criSocket: values["cri-socket"],
      kubeNamespace: kubeNamespaceSetting(tool, values["kube-namespace"], undefined),
      timeoutMs,
    }),
    timeoutMs,
    output,
    events: {
      timeoutMs: parseDuration(setting(undefined, "KS_EVENTS_TIMEOUT", "1s"), "KS_EVENTS_TIMEOUT"),
    },
  };
}
