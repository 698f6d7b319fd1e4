// The bundle trimming (src/build/bundle_trim.ts): npm:redis's command table narrowed to the
// commands the tools send and the CommonJS modules nothing requires dropped, checked on esbuild's
// real output for the watchdog (a fresh `deno bundle`, run afterwards) and on small hand-written
// bundles for the edge cases.
import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT } from "../../src/build/bundle.ts";
import {
  CLIENT_INTERNAL_COMMANDS,
  dropUnusedModules,
  narrowRedisCommands,
  trimBundle,
} from "../../src/build/bundle_trim.ts";
import { CONFIG_DB_COMMANDS } from "../../src/sonic/config_db_commands.ts";

const INDEX_PATH = "../node_modules/@redis/client/5.9.0/dist/lib/commands/index.js";

/** A module wrapper the way esbuild writes one. */
function wrapper(
  name: string,
  body: string,
  path = `../node_modules/x/${name.slice("require_".length)}.js`,
): string {
  return `// ${path}\nvar ${name} = __commonJS({\n  "${path}"(exports) {\n${body}\n  }\n});\n`;
}

function commandIndex(entries: string[], extra = ""): string {
  const vars = [...new Set(entries.map((e) => e.split(": ")[1].replace(".default", "")))];
  return wrapper(
    "require_commands",
    vars.map((v) => `    var ${v} = __importDefault(require_${v.replace(/_1$/, "")}());`).join(
      "\n",
    ) +
      extra + "\n    exports.default = {\n" +
      entries.map((e, i) => `      ${e}${i < entries.length - 1 ? "," : ""}`).join("\n") +
      "\n    };",
    INDEX_PATH,
  );
}

Deno.test("narrowRedisCommands keeps the listed and internal commands and their modules, drops the rest", () => {
  const entries = [
    "AUTH: AUTH_1.default",
    "auth: AUTH_1.default",
    "CLIENT_SETNAME: CLIENT_SETNAME_1.default",
    "READONLY: READONLY_1.default",
    "HGET: HGET_1.default",
    "hGet: HGET_1.default",
    "SET: SET_1.default",
    "set: SET_1.default",
    '"CLIENT_NO-EVICT": CLIENT_NO_EVICT_1.default',
    "FLUSHALL: FLUSHALL_1.default",
  ];
  // FLUSHALL's module also backs an exported constant: its require stays, its entry goes.
  const getter =
    '\n    Object.defineProperty(exports, "REDIS_FLUSH_MODES", {\n      get: function() {\n' +
    "        return FLUSHALL_1.REDIS_FLUSH_MODES;\n      }\n    });";
  const bundle = "var x = 1;\n" + commandIndex(entries, getter) + "var y = require_commands();\n";
  const r = narrowRedisCommands(bundle, ["HGET"]);
  assert.equal(r.kept, 6);
  assert.equal(r.dropped, 4);
  for (const kept of ["auth: AUTH_1.default", "hGet: HGET_1.default", "require_HGET()"]) {
    assert.ok(r.text.includes(kept), kept);
  }
  for (const dropped of ["SET_1", "CLIENT_NO_EVICT_1", "FLUSHALL: FLUSHALL_1"]) {
    assert.ok(!r.text.includes(dropped), dropped);
  }
  assert.ok(r.text.includes("var FLUSHALL_1 = __importDefault(require_FLUSHALL());"));
  assert.ok(r.text.startsWith("var x = 1;\n") && r.text.endsWith("var y = require_commands();\n"));
  assert.match(r.text, /hGet: HGET_1\.default\n {4}\};/); // no trailing comma left
});

Deno.test("narrowRedisCommands: no redis -> unchanged; a table in another shape or a missing command -> throws", () => {
  const plain = wrapper("require_yaml", "    exports.x = 1;");
  assert.deepEqual(narrowRedisCommands(plain), { text: plain, kept: 0, dropped: 0 });
  const odd = wrapper("require_commands", "    module.exports = makeTable();", INDEX_PATH);
  assert.throws(() => narrowRedisCommands(odd), /not in the expected form|no `exports.default/);
  const weird = commandIndex(["AUTH: AUTH_1.default", "HGET: pick(HGET_1)"]);
  assert.throws(() => narrowRedisCommands(weird), /unexpected table line: HGET: pick/);
  const without = commandIndex(["AUTH: AUTH_1.default", "HGET: HGET_1.default"]);
  assert.throws(() => narrowRedisCommands(without, ["HGET"]), /CLIENT_SETNAME is not in the table/);
});

Deno.test("dropUnusedModules drops wrappers nothing names, through chains, and keeps the rest", () => {
  const bundle = wrapper("require_leaf", "    exports.a = 1;") +
    wrapper("require_mid", "    var leaf = require_leaf();") +
    wrapper("require_shared", "    exports.s = 1;") +
    wrapper("require_top", "    var mid = require_mid(); var s = require_shared();") +
    wrapper("require_used", "    var s = require_shared();") +
    "var main = require_used();\n";
  const r = dropUnusedModules(bundle);
  assert.equal(r.dropped, 3);
  for (const gone of ["require_leaf", "require_mid", "require_top"]) {
    assert.ok(!r.text.includes(gone), gone);
  }
  assert.ok(r.text.includes("var require_shared = __commonJS"));
  assert.ok(r.text.endsWith("var main = require_used();\n"));
  assert.deepEqual(dropUnusedModules(r.text), { text: r.text, dropped: 0 });
});

Deno.test("the watchdog's real bundle: the table keeps exactly the tools' commands and still runs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ks-trim-" });
  try {
    const raw = join(dir, "raw.js");
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--quiet", "--platform", "deno", "-o", raw, "bin/ks-watchdog.ts"],
      cwd: REPO_ROOT,
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const text = await Deno.readTextFile(raw);
    const r = trimBundle(text);
    const kinds = Object.keys(CONFIG_DB_COMMANDS).length + CLIENT_INTERNAL_COMMANDS.length;
    assert.ok(r.commandsDropped > 600, `${r.commandsDropped} entries dropped`);
    assert.ok(r.modulesDropped > 300, `${r.modulesDropped} modules dropped`);
    assert.ok(r.text.length < text.length * 0.6, `${r.text.length} of ${text.length} bytes`);
    const at = r.text.indexOf('/dist/lib/commands/index.js"(exports)');
    assert.ok(at > 0, "the command index is in the bundle");
    const index = r.text.slice(r.text.indexOf("exports.default = {", at));
    const table = index.slice(0, index.indexOf("};"));
    const keys = [...table.matchAll(/^\s+"?([\w-]+)"?: /gm)].map((m) => m[1]).sort();
    assert.deepEqual(
      keys,
      [
        "AUTH",
        "CLIENT_SETNAME",
        "HGET",
        "HGETALL",
        "READONLY",
        "SCAN",
        "auth",
        "clientSetName",
        "hGet",
        "hGetAll",
        "readonly",
        "scan",
      ],
    );
    assert.equal(keys.length, kinds * 2);
    const trimmed = join(dir, "ks-watchdog.js");
    await Deno.writeTextFile(
      trimmed,
      "function require(id) { return process.getBuiltinModule(id); }\n" + r.text,
    );
    const run = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-config", trimmed, "--version"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
    assert.match(new TextDecoder().decode(run.stdout), /^ks-watchdog /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
