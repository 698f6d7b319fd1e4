// The set-up every single-switch end-to-end test shares: a real control plane (startKube), one
// real lab switch registered with it (startSwitches), the FlowEnv the flow steps take, and the
// teardown in reverse order (the switch, the control plane, the scratch directory) whether the
// test passed or not.
import { kubeBinDir, startKube } from "../harness/kube.ts";
import { startSwitches, switchUnavailableReason } from "../harness/switch.ts";
import { FLOW_STEPS, type FlowEnv, missingTools } from "./real_switch.ts";

/**
 * Why a real switch with a control plane cannot run here (not root, dockerd or debootstrap
 * missing, the Kubernetes binaries not built), or undefined when it can.
 */
export function realSwitchUnavailableReason(): string | undefined {
  return switchUnavailableReason() ??
    (kubeBinDir() ? undefined : "the Kubernetes binaries are not built (scripts/build-kube.sh)");
}

/** Options for {@link withRealSwitch}. */
export interface RealSwitchOptions {
  /** Prefix of the scratch directory (Deno.makeTempDir). */
  prefix: string;
  /**
   * How long the switch may take to boot and turn Ready (default 600 s: on a loaded machine, with
   * other suites booting their switches, a boot was seen to take more than startSwitches' 180 s).
   */
  readyTimeoutMs?: number;
  /** Runs before the switch stops, after `fn` passed or failed (e.g. a journal for the log). */
  beforeStop?: (env: FlowEnv) => Promise<void>;
}

/**
 * Starts a control plane and one switch (`sw1`), runs `fn` with their FlowEnv (notes go to
 * stderr, indented under the test's steps), then stops the switch and the control plane and
 * removes the scratch directory. Returns what `fn` returns; rethrows what it (or a start) throws.
 */
export async function withRealSwitch<T>(
  opts: RealSwitchOptions,
  fn: (env: FlowEnv) => Promise<T>,
): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: opts.prefix });
  try {
    const cluster = await startKube({ dir: `${dir}/kube` });
    try {
      const lab = await startSwitches({
        cluster,
        count: 1,
        dir: `${dir}/switches`,
        readyTimeoutMs: opts.readyTimeoutMs ?? 600_000,
      });
      const env: FlowEnv = {
        cluster,
        sw: lab.switches[0],
        dir,
        note: (text: string) => console.error(`   ${text}`),
      };
      try {
        return await fn(env);
      } finally {
        try {
          await opts.beforeStop?.(env);
        } finally {
          await lab.stop();
        }
      }
    } finally {
      await cluster.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * A test step that brings the switch from the native v0 to v2 by the design's 5.1 steps
 * (FLOW_STEPS' part "5.1", in order); ignored when one of their tools is not in bin/ yet.
 * Returns whether the step passed.
 */
export function rollOutToV2(
  t: Deno.TestContext,
  env: FlowEnv,
  name = "rolled out to v2 (5.1)",
): Promise<boolean> {
  const rollout = FLOW_STEPS.filter((s) => s.part === "5.1");
  return t.step({
    name,
    ignore: rollout.some((s) => missingTools(s).length > 0),
    async fn() {
      for (const step of rollout) env.note(await step.run(env));
    },
  });
}
