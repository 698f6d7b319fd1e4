// Render profiles: `production` keeps `privileged: true` where SONiC needs it; `lab` replaces it
// with an explicit capability list, because machines whose capability bounding set lacks
// CAP_SYS_RESOURCE cannot start a privileged container at all. Nothing else differs.
import { KNOWN_CAPABILITIES } from "../feature/parse.ts";

/** The profiles ks-render knows. */
export const PROFILES = ["production", "lab"] as const;
/** A render profile. */
export type Profile = typeof PROFILES[number];

/** What the lab gives instead of privileged: every capability but SYS_RESOURCE. */
export const LAB_CAPABILITIES: readonly string[] = KNOWN_CAPABILITIES.filter((c) =>
  c !== "SYS_RESOURCE"
);

/** A container securityContext as ks-render writes it. */
export type SecurityContext = Record<string, unknown>;

/**
 * The securityContext of a container that production runs privileged. The lab form keeps what
 * privileged gives that these containers use (capabilities, no seccomp/AppArmor confinement,
 * privilege escalation) and drops only the device access and CAP_SYS_RESOURCE.
 */
export function privilegedContext(profile: Profile): SecurityContext {
  if (profile === "production") return { privileged: true };
  return {
    privileged: false,
    allowPrivilegeEscalation: true,
    capabilities: { add: [...LAB_CAPABILITIES] },
    seccompProfile: { type: "Unconfined" },
    appArmorProfile: { type: "Unconfined" },
  };
}
