// What every lab scenario gets: the sandbox directory, the real redis acting as the switch's
// CONFIG_DB, the timeline, the lab's options, and a place to register cleanups.
import type { RedisSandbox } from "../sandbox/harness/redis.ts";
import type { KubeCluster } from "../sandbox/harness/kube.ts";
import type { Timeline } from "./timeline.ts";

/** The lab's command-line options. */
export interface LabOptions {
  /** The control plane can be started (the Kubernetes binaries are there, no --no-kube). */
  withKube: boolean;
  /** Run the real-switch flows (systemd + containerd + kubelet in a node container). */
  real: boolean;
  /** Number of simulated switches for fleet scenarios. */
  fleet: number;
  /** Only run scenarios whose file name contains one of these words (empty = all). */
  only: string[];
  /** Keep the sandbox directory after the run. */
  keep: boolean;
}

/** Shared state handed to each scenario. */
export interface LabContext {
  /** Sandbox root for this run (host root, state dirs, logs live below it). */
  dir: string;
  redis: RedisSandbox;
  timeline: Timeline;
  options: LabOptions;
  /** The Kubernetes binaries directory when available (KS_KUBE_BIN), else undefined. */
  kubeBin?: string;
  /** The control plane, once lab/scenarios/05_control_plane.ts has started it. */
  kube?: KubeCluster;
  /** Registers a cleanup, run in reverse order when the lab ends (also on failure). */
  defer(cleanup: () => Promise<void> | void): void;
  /**
   * Says that this scenario (or part of it) did not run, and why (e.g. Docker missing): the lab
   * names it in its last line and exits non-zero, since the user did not ask for that.
   */
  skip(reason: string): void;
}

/** A lab scenario module's export (`lab/scenarios/NN_name.ts` exports `scenario`). */
export interface LabScenario {
  /** Title printed as the heading, e.g. "5.1 enabled feature: the daemon runs". */
  title: string;
  /** What the scenario needs; it is skipped (and says so) when that is not available. */
  needs?: ("kube" | "real" | "docker")[];
  run(ctx: LabContext): Promise<void>;
}
