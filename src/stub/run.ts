// One `ks-stub` invocation from parsed options to an exit code: resolve the target, open this
// node's container runtime, load the kubeconfig and build the lean REST client when the verb needs
// the API server (status does not: it is answered by the runtime), run the verb, print status.
// `bin/ks-stub.ts` only parses flags and calls run().
import { createLogger, type Logger } from "../log.ts";
import { EXIT_BAD_INPUT, UsageError } from "../cli.ts";
import type { KubeRest } from "../kube/rest.ts";
import type { PodApi } from "./api.ts";
import type { Notify } from "./notify.ts";
import {
  EXIT_FAILED,
  restart,
  start,
  status,
  STATUS_UNKNOWN,
  stop,
  type StubContext,
  wait,
} from "./control.ts";
import { formatStatusJson, formatStatusText } from "./report.ts";
import { type NodeRuntime, nodeRuntime, resolveRuntime, type RuntimeSetting } from "./runtime.ts";
import {
  normalizeAsic,
  resolveNodeName,
  type StubTarget,
  targetName,
  validateFeature,
} from "./target.ts";

/** The verbs systemd's unit and featured use. */
export const VERBS = ["start", "stop", "restart", "status", "wait"] as const;
/** One of {@link VERBS}. */
export type Verb = typeof VERBS[number];

/** Default bound of each verb (ms): start fits a 30 s TimeoutStartSec, stop a pod's grace. */
export const DEFAULT_TIMEOUT_MS: Record<Verb, number> = {
  start: 20_000,
  stop: 30_000,
  restart: 30_000,
  status: 5_000,
  wait: 0,
};
/** Default time `wait` lets this node run only the feature's v1 pod before returning (ms). */
export const DEFAULT_GRACE_MS = 10_000;
/** Bound of one runtime call (ms); a runtime that does not answer makes status 4 within it. */
export const RUNTIME_CALL_MS = 2000;

/** Everything one invocation needs, already parsed. */
export interface StubOptions {
  feature: string;
  verb: string;
  asic?: string;
  kubeconfig?: string;
  node?: string;
  namespace: string;
  /** Bound of the verb (ms); default per verb. */
  timeoutMs?: number;
  /** `wait` only: see DEFAULT_GRACE_MS. */
  graceMs?: number;
  /**
   * `wait` only: hand the wait to the launcher while the container runs (prints
   * `<pid> <pod name>/<pod uid>` on stdout and returns 0; see WaitOptions.handOff).
   */
  handOff?: boolean;
  /** `wait` only: the pod a previous wait handed off on. */
  following?: { name: string; uid: string };
  output: "text" | "json";
  /** Ends `wait` (systemd's SIGTERM); the bin wires signals to it. */
  signal?: AbortSignal;
  /** This node's runtime (resolveRuntime()); default: resolved from the environment. */
  runtime?: RuntimeSetting;
  /** Tests inject a PodApi; otherwise one is built from the kubeconfig. */
  api?: PodApi;
  /** Tests inject a Notify; otherwise wait uses $NOTIFY_SOCKET when systemd set it. */
  notify?: Notify;
  /** Tests inject a NodeRuntime; otherwise one is built from `runtime`. */
  nodeRuntime?: NodeRuntime;
  log?: Logger;
}

/** Validates the positionals and options into a target and verb; throws UsageError. */
export function resolveInvocation(opts: StubOptions): { target: StubTarget; verb: Verb } {
  const feature = validateFeature(opts.feature);
  if (!(VERBS as readonly string[]).includes(opts.verb)) {
    throw new UsageError(
      opts.verb
        ? `unknown verb "${opts.verb}" (use ${VERBS.join("|")})`
        : `missing verb (use ${VERBS.join("|")})`,
    );
  }
  return {
    verb: opts.verb as Verb,
    target: {
      feature,
      asic: normalizeAsic(opts.asic),
      node: resolveNodeName(opts.node),
      namespace: opts.namespace,
    },
  };
}

/**
 * Runs one invocation and returns its exit code: status LSB 0/3/4; the other verbs 0 done, 1
 * failed, 2 a kubeconfig that cannot be used (bad input).
 */
export async function run(opts: StubOptions): Promise<number> {
  const { target, verb } = resolveInvocation(opts);
  const log = opts.log ?? createLogger("ks-stub", targetName(target));
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS[verb];
  const runtime = opts.nodeRuntime ??
    nodeRuntime(opts.runtime ?? resolveRuntime(), Math.min(RUNTIME_CALL_MS, timeoutMs || 5000));
  let api = opts.api;
  let rest: KubeRest | undefined;
  // status with a runtime makes no API call: no kubeconfig, no TLS, not even the client's code.
  if (!api && !(verb === "status" && runtime)) {
    try {
      const { KubeRest } = await import("../kube/rest.ts");
      const { kubePodApi } = await import("./kube_pods.ts");
      rest = await KubeRest.connect({ path: opts.kubeconfig }, {
        timeoutMs: Math.min(5000, timeoutMs || 5000),
        retries: 0,
      });
      api = kubePodApi(rest, { retries: 0 });
    } catch (error) {
      const message = (error as Error).message.split("\n")[0];
      runtime?.close();
      if (verb === "status") {
        printStatus(opts.output, {
          ...target,
          state: "unknown",
          code: STATUS_UNKNOWN,
          detail: message,
          source: "api",
        });
        return STATUS_UNKNOWN;
      }
      log.error("cannot use the kubeconfig", { error: message });
      const { KubeconfigError } = await import("../kube/kubeconfig.ts");
      return error instanceof KubeconfigError ? EXIT_BAD_INPUT : EXIT_FAILED;
    }
  }
  // Under systemd (NotifyAccess= in the unit), wait keeps the unit's Status: line current.
  const notify = opts.notify ??
    (verb === "wait" && Deno.env.get("NOTIFY_SOCKET")
      ? (await import("./notify.ts")).systemdNotifier(log)
      : undefined);
  const ctx: StubContext = { api, runtime, target, log, timeoutMs, notify };
  try {
    switch (verb) {
      case "status": {
        const report = await status(ctx);
        printStatus(opts.output, report);
        return report.code;
      }
      case "start":
        return await start(ctx);
      case "stop":
        return await stop(ctx);
      case "restart":
        return await restart(ctx);
      case "wait":
        return await wait(ctx, {
          signal: opts.signal ?? new AbortController().signal,
          graceMs: opts.graceMs ?? DEFAULT_GRACE_MS,
          following: opts.following,
          handOff: opts.handOff
            ? (h) => console.log(`${h.pid} ${h.podName}/${h.podUid}`)
            : undefined,
        });
      default:
        throw new UsageError(`unknown verb "${verb}"`);
    }
  } finally {
    rest?.close();
    runtime?.close();
  }
}

function printStatus(output: "text" | "json", report: Parameters<typeof formatStatusJson>[0]) {
  console.log(output === "json" ? formatStatusJson(report) : formatStatusText(report));
}
