// The product version every tool prints for --version. Bumped by hand on release.

/** kubesonic-migrate's version string, shared by every `ks-*` tool. */
export const VERSION = "0.1.0";
