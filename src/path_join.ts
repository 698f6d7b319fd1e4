// POSIX path joining without node:path, for the tools monit spawns every cycle (the checkers):
// importing any node: module costs a start-up ~20 ms of CPU. Same result as node:path's join.

/**
 * Joins `parts` with "/" and normalises the result as node:path's `join` does: repeated slashes
 * collapse, "." segments go, ".." removes the segment before it (never above "/" for an absolute
 * path; kept at the front of a relative one), a trailing slash stays, "" becomes ".".
 */
export function joinPath(...parts: string[]): string {
  const joined = parts.filter((p) => p !== "").join("/");
  if (joined === "") return ".";
  const absolute = joined.startsWith("/");
  const out: string[] = [];
  for (const seg of joined.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!absolute) out.push("..");
    } else out.push(seg);
  }
  let path = (absolute ? "/" : "") + out.join("/");
  if (path === "") path = absolute ? "/" : ".";
  if (joined.endsWith("/") && !path.endsWith("/")) path += "/";
  return path;
}
