// `deno task compile`: single-file executables of every bin/ks-*.ts into dist/compiled/.
// Needs a denort base binary (DENORT_BIN, or Deno's download); fails with one line otherwise.
//
// Usage: deno task compile [ks-tool ...]
import { compileTools } from "../src/build/compile.ts";

try {
  for (const r of await compileTools(Deno.args)) console.error(`compile: ${r.tool} -> ${r.output}`);
} catch (error) {
  console.error(`compile: ${(error as Error).message}`);
  Deno.exit(1);
}
