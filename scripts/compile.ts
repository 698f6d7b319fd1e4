// `deno task compile`: single-file executables of every bin/ks-*.ts into dist/compiled/.
// Needs a denort base binary (DENORT_BIN, or Deno's download); fails with one line otherwise.
//
// Usage: deno task compile [ks-tool ...]     (or `ks`: the multi-call program and its links)
import { compileKs, compileTools } from "../src/build/compile.ts";

try {
  const results = Deno.args.length === 1 && Deno.args[0] === "ks"
    ? await compileKs()
    : await compileTools(Deno.args);
  for (const r of results) console.error(`compile: ${r.tool} -> ${r.output}`);
} catch (error) {
  console.error(`compile: ${(error as Error).message}`);
  Deno.exit(1);
}
