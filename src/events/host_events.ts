// The sonic-events-host events the monit checkers publish, with the leaves SONiC's checkers fill:
// container_checker's `event-down-ctr` (one per expected container not running: ctr_name) and
// memory_checker's `mem-threshold-exceeded` (ctr_name, mem_usage with two decimals as the YANG
// decimal64 and SONiC's "{:.2f}", threshold in bytes). The framework adds `timestamp`.
import type { SonicEvent } from "./publisher.ts";

/** container_checker's tag. */
export const EVENT_DOWN_CTR = "event-down-ctr";
/** memory_checker's tag. */
export const EVENT_MEM_THRESHOLD = "mem-threshold-exceeded";

/** One `event-down-ctr` per container, in the order given. */
export function downContainerEvents(names: string[]): SonicEvent[] {
  return names.map((ctr_name) => ({ tag: EVENT_DOWN_CTR, params: { ctr_name } }));
}

/** The `mem-threshold-exceeded` event of container `name` using `usage` of `threshold` bytes. */
export function memoryThresholdEvent(name: string, usage: number, threshold: number): SonicEvent {
  return {
    tag: EVENT_MEM_THRESHOLD,
    params: { ctr_name: name, mem_usage: usage.toFixed(2), threshold: String(threshold) },
  };
}
