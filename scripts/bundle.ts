// Bundles every `bin/ks-*.ts` into one self-contained JavaScript file under `dist/` with
// `deno bundle` (offline, built in), plus a launcher shell script per tool under `dist/bin/`
// (`exec deno run -A --no-config dist/ks-x.js "$@"`). The lab, the images, the benchmarks and the
// end-to-end tests run these artifacts. Skips a tool whose bundle is newer than every source.
//
// Usage: deno run -A scripts/bundle.ts [--force] [ks-tool ...]
import { bundleTools } from "../src/build/bundle.ts";

const force = Deno.args.includes("--force");
const only = Deno.args.filter((a) => !a.startsWith("--"));
const results = await bundleTools({ force, only });
for (const r of results) {
  console.error(`bundle: ${r.tool}: ${r.built ? "built" : "up to date"} -> ${r.output}`);
}
