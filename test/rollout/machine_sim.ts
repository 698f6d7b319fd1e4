// A model of a DaemonSet with `OnDelete` for the pure state-machine tests: one pod per node, a
// deleted pod comes back from the current template's hash, a new pod turns Ready (or not) after a
// few steps. It stands in for the controller only in these unit tests; the kwok tests use the real
// controller-manager.
import type { PodView } from "../../src/rollout/gate.ts";
import type { Deletion } from "../../src/rollout/machine.ts";
import type { RolloutState } from "../../src/rollout/state.ts";

export interface SimOptions {
  nodes: number;
  /** Whether a pod of `hash` on `node` ever becomes Ready. */
  healthy?: (node: string, hash: string) => boolean;
  /** Steps until a new pod is Ready. */
  readyAfter?: number;
  /** Steps until a new pod of the previous revision ("old") is Ready (default readyAfter). */
  oldReadyAfter?: number;
}

export class FleetSim {
  pods = new Map<string, PodView>();
  template = "old";
  deletedUids: string[] = [];
  /** Nodes that ever ran a pod of each hash. */
  everOn = new Map<string, Set<string>>();
  #seq = 0;
  #born = new Map<string, number>();
  #tick = 0;
  readonly healthy: (node: string, hash: string) => boolean;
  readonly readyAfter: number;
  readonly oldReadyAfter: number;

  constructor(readonly opts: SimOptions) {
    this.healthy = opts.healthy ?? (() => true);
    this.readyAfter = opts.readyAfter ?? 1;
    this.oldReadyAfter = opts.oldReadyAfter ?? this.readyAfter;
    for (let i = 0; i < opts.nodes; i++) {
      const node = `sw${String(i).padStart(3, "0")}`;
      this.#create(node);
      this.pods.get(node)!.ready = true;
    }
  }

  get nodes(): string[] {
    return [...this.pods.keys()].sort();
  }

  #create(node: string) {
    const uid = `uid-${++this.#seq}`;
    this.pods.set(node, {
      name: `ds-${this.#seq}`,
      uid,
      node,
      hash: this.template,
      ready: false,
      deleting: false,
      restarts: 0,
      oomKilled: false,
      crashLoop: false,
      createdAt: this.#seq,
    });
    this.#born.set(uid, this.#tick);
    if (!this.everOn.has(this.template)) this.everOn.set(this.template, new Set());
    this.everOn.get(this.template)!.add(node);
  }

  /** Applies deletions (uid preconditions respected) and recreates pods from the template. */
  apply(deletes: Deletion[]) {
    for (const d of deletes) {
      const pod = this.pods.get(d.node);
      if (!pod || pod.uid !== d.uid) continue;
      this.deletedUids.push(d.uid);
      this.#create(d.node);
    }
  }

  /** Advances time: pods old enough turn Ready when healthy. */
  tick() {
    this.#tick++;
    for (const pod of this.pods.values()) {
      const age = this.#tick - (this.#born.get(pod.uid) ?? 0);
      const after = pod.hash === "old" ? this.oldReadyAfter : this.readyAfter;
      if (!pod.ready && age >= after && this.healthy(pod.node, pod.hash)) {
        pod.ready = true;
      }
    }
  }

  observe(): PodView[] {
    return [...this.pods.values()].map((p) => ({ ...p }));
  }
}

/** A fresh state for a rollout from "old" to "new" over `order`. */
export function freshState(
  order: string[],
  waves: number[],
  over: Partial<RolloutState["settings"]> = {},
): RolloutState {
  return {
    v: 1,
    id: "r1",
    phase: "rolling",
    holder: "host/1",
    heartbeat: 0,
    startedAt: 0,
    target: { digest: "d-new", hash: "new", to: "manifest.yaml", source: "manifest.yaml" },
    previous: { revision: "ds-old", hash: "old" },
    settings: { budget: "2%", bakeMs: 0, readyTimeoutMs: 5000, maxInFlight: 3, ...over },
    waves,
    wave: 0,
    order,
    marks: ".".repeat(order.length),
    inflight: {},
    reasons: {},
    undo: "",
  };
}
