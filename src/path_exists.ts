// Whether a path exists: the one existence check every module uses (JSR's @std/fs is not
// reachable here).

/** Resolves true when `path` exists (following symlinks), false on any stat error. */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
