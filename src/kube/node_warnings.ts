// Imported before `@kubernetes/client-node`: its HTTP stack (node-fetch -> whatwg-url -> tr46)
// loads Node's deprecated `punycode` module, and Deno's Node layer then prints a
// "[DEP0040] DeprecationWarning" line on stderr, which is the tools' one-line-per-event log
// stream. Node's own switch for those notices (`process.noDeprecation`, as `--no-deprecation`)
// turns them off; nothing of ours relies on them.
import process from "node:process";

process.noDeprecation = true;
