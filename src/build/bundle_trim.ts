// What a bundle carries but never runs, taken out after `deno bundle` (src/build/bundle.ts):
// npm:redis's command table narrowed to the commands the tools send, then every npm CommonJS
// module nothing requires any more.
//
// `@redis/client` builds its client class from one table of ~360 command modules
// (`dist/lib/commands/index.js`): loading the package runs every module and attaches two methods
// per command (`HGET` and `hGet`) to the client and to its MULTI class. The tools send three
// commands (CONFIG_DB_COMMANDS in src/sonic/config_db_commands.ts). In a bundle, esbuild keeps each npm
// CommonJS module in its own lazy wrapper, so dropping a command from the table's literal (and the
// `require_X()` that only that entry used) means its module never runs: the same client, with the
// same code for every command it keeps, ~2.5 MiB less resident memory per process (figures:
// docs/footprint.md). The client's own handshake uses AUTH, CLIENT SETNAME and READONLY through the
// table; they stay too. The package's exported constants (CLIENT_KILL_FILTERS...) are getters
// that keep their modules.
//
// The narrowed client is typed by `RedisClient` in src/sonic/config_db.ts, which offers only the
// kept commands, so a call to a dropped one does not type-check. A bundle whose table is not in
// the shape this expects (another esbuild or @redis/client) fails the build instead of shipping
// the full table silently.
import { CONFIG_DB_COMMANDS } from "../sonic/config_db_commands.ts";

/** Table entries @redis/client's own code reads (`commands_1.default.AUTH`...). */
export const CLIENT_INTERNAL_COMMANDS = ["AUTH", "CLIENT_SETNAME", "READONLY"] as const;

/** What narrowing did to one bundle. */
export interface NarrowResult {
  text: string;
  /** Table entries kept / dropped (each command has two: `HGET` and `hGet`). */
  kept: number;
  dropped: number;
}

const INDEX_START =
  /^var (require_commands\d*) = __commonJS\(\{\n\s+"[^"\n]*@redis\/client\/[^"\n]*\/dist\/lib\/commands\/index\.js"\(exports\) \{\n/m;
const TABLE_START = "\n    exports.default = {\n";
const TABLE_END = "\n    };\n";
const ENTRY = /^\s+("[^"]+"|[A-Za-z_$][\w$]*): ([A-Za-z_$][\w$]*)\.default,?$/;
const MODULE_VAR = /^\s+var ([A-Za-z_$][\w$]*) = __import(?:Default|Star)\(require_[\w$]+\(\)\);$/;

/**
 * Narrows @redis/client's command table in `bundle` (an esbuild bundle's text) to `keep` (table
 * keys, e.g. "HGET") plus the client's internal commands. A bundle without @redis/client comes
 * back unchanged. Throws when the table is there but not in the expected shape, or a command in
 * `keep` is not in it.
 */
export function narrowRedisCommands(
  bundle: string,
  keep: readonly string[] = Object.keys(CONFIG_DB_COMMANDS),
): NarrowResult {
  const start = INDEX_START.exec(bundle);
  if (!start) {
    if (/@redis\/client\/[^"\n]*\/dist\/lib\/commands\/index\.js/.test(bundle)) {
      throw new Error(
        "narrowing npm:redis's commands: the bundle's command table is not in the expected form",
      );
    }
    return { text: bundle, kept: 0, dropped: 0 };
  }
  const bodyStart = start.index + start[0].length;
  const tableAt = bundle.indexOf(TABLE_START, bodyStart);
  const tableEnd = tableAt < 0 ? -1 : bundle.indexOf(TABLE_END, tableAt);
  const moduleEnd = bundle.indexOf("\n});\n", bodyStart);
  if (tableAt < 0 || tableEnd < 0 || moduleEnd < 0 || tableEnd > moduleEnd) {
    throw new Error(
      "narrowing npm:redis's commands: no `exports.default = {...}` table in the index",
    );
  }
  // The entries, one a line (the package's doc comments among them dropped).
  const lines = bundle.slice(tableAt + TABLE_START.length, tableEnd)
    .replace(/\/\*[\s\S]*?\*\//g, "").split("\n").filter((line) => line.trim() !== "");
  const entries = lines.map((line) => {
    const m = ENTRY.exec(line);
    if (!m) {
      throw new Error(`narrowing npm:redis's commands: unexpected table line: ${line.trim()}`);
    }
    return { key: m[1].replace(/^"|"$/g, ""), variable: m[2] };
  });
  const byKey = new Map(entries.map((e) => [e.key, e.variable]));
  const keepVars = new Set<string>();
  for (const key of [...keep, ...CLIENT_INTERNAL_COMMANDS]) {
    const variable = byKey.get(key);
    if (!variable) throw new Error(`narrowing npm:redis's commands: ${key} is not in the table`);
    keepVars.add(variable);
  }
  const kept = entries.filter((e) => keepVars.has(e.variable));
  const table = kept.map((e, i) =>
    `      ${
      /^[A-Za-z_$][\w$]*$/.test(e.key) ? e.key : JSON.stringify(e.key)
    }: ${e.variable}.default${i < kept.length - 1 ? "," : ""}`
  ).join("\n");
  // The rest of the index (the module requires, the exported constants' getters) with the
  // requires only the dropped entries used removed.
  const before = bundle.slice(bodyStart, tableAt);
  const after = bundle.slice(tableEnd, moduleEnd);
  const rest = before + after;
  const used = (variable: string) =>
    new RegExp(`\\b${variable.replace(/\$/g, "\\$")}\\b(?! = __import)`).test(rest);
  const narrowed = before.split("\n").filter((line) => {
    const m = MODULE_VAR.exec(line);
    return !m || keepVars.has(m[1]) || used(m[1]);
  }).join("\n");
  return {
    text: bundle.slice(0, bodyStart) + narrowed + TABLE_START + table + after +
      bundle.slice(moduleEnd),
    kept: kept.length,
    dropped: entries.length - kept.length,
  };
}

const MODULE_BLOCK =
  /^(?:\/\/ [^\n]*\n)?var (require_[\w$]+) = __commonJS\(\{\n[\s\S]*?\n\}\);\n/gm;
const REQUIRE_NAME = /(?<![\w$])require_[\w$]+(?![\w$])/g;

/**
 * Drops from `bundle` every npm CommonJS module wrapper (`var require_x = __commonJS({...});`,
 * esbuild's lazy form: its code runs on the first `require_x()`) that nothing else in the bundle
 * names, repeatedly (a module only dropped modules required goes too). Such a wrapper's code can
 * never run; dropping it only shortens the source V8 keeps in memory and parses at start-up.
 */
export function dropUnusedModules(bundle: string): { text: string; dropped: number } {
  const blocks = [...bundle.matchAll(MODULE_BLOCK)].map((m) => {
    const refs = new Map<string, number>();
    for (const r of m[0].matchAll(REQUIRE_NAME)) refs.set(r[0], (refs.get(r[0]) ?? 0) + 1);
    refs.set(m[1], refs.get(m[1])! - 1); // its own declaration
    return { name: m[1], start: m.index, end: m.index + m[0].length, refs };
  });
  const count = new Map<string, number>();
  for (const r of bundle.matchAll(REQUIRE_NAME)) count.set(r[0], (count.get(r[0]) ?? 0) + 1);
  const byName = new Map(blocks.map((b) => [b.name, b]));
  const dead = new Set<string>();
  // A name seen once is only its declaration.
  const queue = blocks.filter((b) => count.get(b.name) === 1).map((b) => b.name);
  while (queue.length > 0) {
    const name = queue.pop()!;
    if (dead.has(name)) continue;
    dead.add(name);
    for (const [ref, n] of byName.get(name)!.refs) {
      const left = count.get(ref)! - n;
      count.set(ref, left);
      if (left === 1 && byName.has(ref) && !dead.has(ref)) queue.push(ref);
    }
  }
  if (dead.size === 0) return { text: bundle, dropped: 0 };
  let text = "";
  let at = 0;
  for (const b of blocks) {
    if (!dead.has(b.name)) continue;
    text += bundle.slice(at, b.start);
    at = b.end;
  }
  return { text: text + bundle.slice(at), dropped: dead.size };
}

/** What trimming took out of one bundle. */
export interface TrimResult {
  text: string;
  /** npm:redis command-table entries dropped (two per command). */
  commandsDropped: number;
  /** npm CommonJS modules dropped. */
  modulesDropped: number;
}

/** Both steps: npm:redis's command table narrowed, then the modules nothing requires dropped. */
export function trimBundle(bundle: string): TrimResult {
  const narrowed = narrowRedisCommands(bundle);
  const unused = dropUnusedModules(narrowed.text);
  return {
    text: unused.text,
    commandsDropped: narrowed.dropped,
    modulesDropped: unused.dropped,
  };
}
