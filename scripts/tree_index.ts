// Rewrites a ks tree's lib/tree.json from its files (after a build step changed one), printing
// the new tree hash. Used by scripts/switch/build-switch-image.sh for the lab's "next" ks-tools.
//
// Usage: deno run -A scripts/tree_index.ts DIR
import { join } from "node:path";
import { indexTree, TREE_INDEX } from "../src/build/tree.ts";

if (Deno.args.length !== 1) {
  console.error("tree_index: usage: deno run -A scripts/tree_index.ts DIR");
  Deno.exit(2);
}
const index = await indexTree(Deno.args[0]);
await Deno.writeTextFile(join(Deno.args[0], TREE_INDEX), JSON.stringify(index, null, 2) + "\n");
console.log(index.hash);
