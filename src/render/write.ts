// Writes ks-render's output directory all at once: every file goes into a fresh sibling temp
// directory, which is then renamed into place (an earlier render is swapped out and removed). A
// failure leaves the previous output as it was and no temp directory behind. A directory that
// ks-render did not write (no summary.json) is never replaced.
import { basename, dirname, join, resolve } from "node:path";
import type { RenderedFile } from "./render.ts";

/** The output directory cannot be written; the message names it. */
export class OutputError extends Error {
  override name = "OutputError";
}

async function isReplaceable(dir: string): Promise<boolean> {
  let empty = true;
  for await (const _ of Deno.readDir(dir)) {
    empty = false;
    break;
  }
  if (empty) return true;
  try {
    return (await Deno.stat(join(dir, "summary.json"))).isFile;
  } catch {
    return false;
  }
}

/** Replaces `dir` with exactly `files`; throws OutputError (one line) when it cannot. */
export async function writeOutputDir(dir: string, files: RenderedFile[]): Promise<void> {
  const target = resolve(dir);
  let exists = false;
  try {
    const info = await Deno.stat(target);
    if (!info.isDirectory) throw new OutputError(`${dir}: exists and is not a directory`);
    exists = true;
  } catch (error) {
    if (error instanceof OutputError) throw error;
    if (!(error instanceof Deno.errors.NotFound)) {
      throw new OutputError(`${dir}: ${(error as Error).message.split("\n")[0]}`);
    }
  }
  if (exists && !(await isReplaceable(target))) {
    throw new OutputError(
      `${dir}: not empty and not an earlier ks-render output (no summary.json); choose a new directory`,
    );
  }
  const parent = dirname(target);
  const suffix = `${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const tmp = join(parent, `.${basename(target)}.ks-render-${suffix}`);
  const old = `${tmp}.old`;
  try {
    await Deno.mkdir(parent, { recursive: true });
    await Deno.mkdir(tmp);
    for (const file of files) {
      const path = join(tmp, file.path);
      await Deno.mkdir(dirname(path), { recursive: true });
      await Deno.writeTextFile(path, file.content);
    }
    if (exists) await Deno.rename(target, old);
    try {
      await Deno.rename(tmp, target);
    } catch (error) {
      if (exists) await Deno.rename(old, target);
      throw error;
    }
  } catch (error) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw new OutputError(`${dir}: cannot write: ${(error as Error).message.split("\n")[0]}`);
  }
  if (exists) await Deno.remove(old, { recursive: true }).catch(() => {});
}
