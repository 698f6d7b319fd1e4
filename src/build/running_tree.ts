// Where the ks tree this bundle runs from is: the tools that act on their own tree (copy-tree,
// prime-cache, ks-render's default host runtime) start from here.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The root of the tree this bundle runs from (a chunk in lib/ks/ -> ../..), when it has a
 * lib/tree.json.
 */
export function runningTreeRoot(): string | undefined {
  if (!import.meta.url.startsWith("file:")) return undefined;
  const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
  try {
    return Deno.statSync(join(root, "lib", "tree.json")).isFile ? root : undefined;
  } catch {
    return undefined;
  }
}
