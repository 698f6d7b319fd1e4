// The tests `deno task test:unit` runs: every `test/**/*_test.ts` whose code never starts a
// service. A test needs services when it imports (directly or through other local modules) one of
// the harness modules that start one: redis, the Kubernetes control plane, dockerd, containerd,
// monit or the switch node container. Everything else (pure functions, the bundled tools run as
// processes, files in temp directories, offline `systemd-analyze verify`) is a unit test. The
// import graph decides, so a new pure test is picked up without editing a list; only a new
// service harness is added to SERVICE_MODULES. `import type` lines are not dependencies. A test
// that runs a service-starting program as a child (e.g. lab/main.ts) imports something from it,
// so that the graph shows the dependency.
//
// Usage: deno run --allow-read scripts/unit_tests.ts [--services]   (one path a line, sorted;
//        --services: the other tests instead)
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** The harness modules that start a service (paths relative to the repository). */
export const SERVICE_MODULES: readonly string[] = [
  "sandbox/harness/redis.ts",
  "sandbox/harness/kube.ts",
  "sandbox/harness/docker.ts",
  "sandbox/harness/containerd.ts",
  "sandbox/harness/monit.ts",
  "sandbox/harness/switch.ts",
];

// Static `import ... from "x"`, `export ... from "x"`, `import "x"` and `import("x")`, except
// `import type` / `export type`.
const IMPORT = /(?:^|[;\s])(?:import|export)\s+(?!type\s)(?:[^'";]*?\sfrom\s*)?["']([^"']+)["']/g;
const DYNAMIC = /\bimport\(\s*["']([^"']+)["']\s*\)/g;

/** The local modules `source` (the text of the file at `file`) imports, as absolute paths. */
export function localImports(file: string, source: string): string[] {
  const out: string[] = [];
  for (const re of [IMPORT, DYNAMIC]) {
    for (const m of source.matchAll(re)) {
      if (m[1].startsWith("./") || m[1].startsWith("../")) out.push(resolve(dirname(file), m[1]));
    }
  }
  return out;
}

/**
 * The service modules (repository-relative) `file` reaches through its local imports; empty for
 * a unit test. `read` returns a module's text (undefined when it cannot be read: not followed).
 */
export function servicesReached(
  file: string,
  root: string = ROOT,
  read: (path: string) => string | undefined = readOrUndefined,
): string[] {
  const services = new Set(SERVICE_MODULES.map((m) => join(root, m)));
  const seen = new Set<string>();
  const found = new Set<string>();
  const stack = [resolve(file)];
  while (stack.length > 0) {
    const path = stack.pop()!;
    if (seen.has(path)) continue;
    seen.add(path);
    if (services.has(path)) {
      found.add(relative(root, path));
      continue;
    }
    const source = read(path);
    if (source !== undefined) stack.push(...localImports(path, source));
  }
  return [...found].sort();
}

function readOrUndefined(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

/** Every `*_test.ts` below `dir`, repository-relative and sorted. */
export function testFiles(dir: string = join(ROOT, "test"), root: string = ROOT): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of Deno.readDirSync(d)) {
      const p = join(d, e.name);
      if (e.isDirectory) walk(p);
      else if (e.isFile && e.name.endsWith("_test.ts")) out.push(relative(root, p));
    }
  };
  walk(dir);
  return out.sort();
}

/** The unit tests (repository-relative, sorted): tests that reach no service module. */
export function unitTests(root: string = ROOT): string[] {
  return testFiles(join(root, "test"), root).filter((f) =>
    servicesReached(join(root, f), root).length === 0
  );
}

if (import.meta.main) {
  const services = Deno.args.includes("--services");
  const unknown = Deno.args.filter((a) => a !== "--services");
  if (unknown.length > 0) {
    console.error(
      `unit_tests: unknown argument "${unknown[0]}" (usage: unit_tests.ts [--services])`,
    );
    Deno.exit(2);
  }
  const unit = new Set(unitTests());
  for (const f of testFiles()) if (unit.has(f) !== services) console.log(f);
}
