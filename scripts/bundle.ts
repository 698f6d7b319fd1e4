// Bundles every `bin/ks-*.ts` into one self-contained JavaScript file under `dist/` with
// `deno bundle` (offline, built in), plus a launcher shell script per tool under `dist/bin/`
// (`exec deno run -A --no-config dist/ks-x.js "$@"`), and the relocatable ks tree
// `dist/ks-tree/` (the pinned Deno, the one bundle of bin/ks.ts, a launcher per tool; see
// src/build/tree.ts). Skips what is newer than every source.
//
// Usage: deno run -A scripts/bundle.ts [--force] [ks-tool ...]
import { bundleTools } from "../src/build/bundle.ts";
import { buildTree } from "../src/build/tree.ts";

const force = Deno.args.includes("--force");
const only = Deno.args.filter((a) => !a.startsWith("--"));
const results = await bundleTools({ force, only });
for (const r of results) {
  console.error(`bundle: ${r.tool}: ${r.built ? "built" : "up to date"} -> ${r.output}`);
}
const tree = await buildTree({ force });
const bytes = tree.index.files.reduce((n, f) => n + f.size, 0);
console.error(
  `bundle: ks tree ${tree.index.hash}: ${tree.built ? "built" : "up to date"} -> ${tree.dir} ` +
    `(${tree.index.files.length} files, ${(bytes / 1048576).toFixed(1)} MiB)`,
);
