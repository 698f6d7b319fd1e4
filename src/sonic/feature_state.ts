// The meaning of CONFIG_DB `FEATURE|<name>` `state`, as featured and this project read it:
// `enabled` / `always_enabled` -> on; `disabled` / `always_disabled` / missing row -> off;
// anything else (an unrendered Jinja template, a typo) -> off, with a warning naming the value.

/** The four values featured accepts after rendering. */
export const KNOWN_FEATURE_STATES = [
  "enabled",
  "always_enabled",
  "disabled",
  "always_disabled",
] as const;

/** One of the four values featured accepts. */
export type KnownFeatureState = typeof KNOWN_FEATURE_STATES[number];

/** What a FEATURE row's `state` means for the container. */
export interface FeatureState {
  /** true when the feature's daemon should run. */
  on: boolean;
  /** The raw `state` field, or null when the row or the field is missing. */
  raw: string | null;
  /** A human-readable reason when the value is not one of the known states. */
  warning?: string;
}

/** Interprets a raw `state` value (null/undefined = missing row or field). Never throws. */
export function interpretFeatureState(raw: string | null | undefined): FeatureState {
  if (raw === null || raw === undefined) return { on: false, raw: null };
  switch (raw) {
    case "enabled":
    case "always_enabled":
      return { on: true, raw };
    case "disabled":
    case "always_disabled":
      return { on: false, raw };
    default:
      return {
        on: false,
        raw,
        warning: `FEATURE state ${JSON.stringify(raw)} is not one of ${
          KNOWN_FEATURE_STATES.join(", ")
        }; treating it as disabled`,
      };
  }
}

/** Short label for logs: `enabled`, `disabled`, `missing`, or the raw unknown value quoted. */
export function describeFeatureState(state: FeatureState): string {
  if (state.raw === null) return "missing";
  return state.warning ? JSON.stringify(state.raw) : state.raw;
}
