// The YAML parser a manifest in YAML needs, in a module of its own so the patcher imports it only
// for such a manifest (src/patcher/manifest.ts): a bundle's dynamic import of the npm CommonJS
// package itself would give only its default export.
export { parse as parseYaml } from "yaml";
