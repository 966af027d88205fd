/**
 * "Did you mean" for paths: the existing file closest to one that does not
 * exist, for the messages that say a flow file or a node module is missing.
 * Only read when such a message is made.
 *
 * @module
 */
import { basename, dirname, join, relative, resolve } from "./_path.ts";
import { suggest } from "./_suggest.ts";

async function statOf(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch {
    return undefined;
  }
}

/**
 * The existing file (or, with `directory`, folder) closest to the absolute
 * `path`: each of its parts that does not exist replaced with the closest
 * name in its folder (`nodez/gret.ts` → `nodes/greet.ts`); `undefined` when a
 * part has no close name or a folder cannot be read.
 *
 * @example
 * ```ts
 * import { closestPath } from "./_nearby.ts";
 * import assert from "node:assert/strict";
 * const dir = await Deno.makeTempDir();
 * await Deno.mkdir(`${dir}/nodes`);
 * await Deno.writeTextFile(`${dir}/nodes/greet.ts`, "");
 * assert.equal(await closestPath(`${dir}/nodez/gret.ts`), `${dir}/nodes/greet.ts`);
 * assert.equal(await closestPath(`${dir}/other/thing.ts`), undefined);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function closestPath(
  path: string,
  directory = false,
): Promise<string | undefined> {
  const info = await statOf(path);
  if (info !== undefined && (directory ? info.isDirectory : info.isFile)) return path;
  const dir = dirname(path);
  if (dir === path) return undefined;
  const parent = await closestPath(dir, true);
  if (parent === undefined) return undefined;
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(parent)) {
      // A link is taken for what it may point at: stat tells once it is suggested.
      if (entry.isSymlink || (directory ? entry.isDirectory : entry.isFile)) names.push(entry.name);
    }
  } catch {
    return undefined;
  }
  const name = closestName(basename(path), names);
  if (name === undefined) return undefined;
  const found = join(parent, name);
  const foundInfo = await statOf(found);
  return foundInfo !== undefined && (directory ? foundInfo.isDirectory : foundInfo.isFile)
    ? found
    : undefined;
}

/**
 * The name among `names` closest to `name`: names with the same extensions
 * (`.flow.yaml`) are compared by what comes before them, so that a shared
 * long extension does not make unrelated names look close.
 */
function closestName(name: string, names: readonly string[]): string | undefined {
  const dot = name.indexOf(".", 1);
  if (dot === -1) return suggest(name, names);
  const extension = name.slice(dot);
  const stems = new Map<string, string>();
  for (const n of names) {
    if (n.endsWith(extension) && n.length > extension.length) {
      stems.set(n.slice(0, -extension.length), n);
    }
  }
  const stem = suggest(name.slice(0, dot), stems.keys());
  if (stem !== undefined) return stems.get(stem);
  // Another extension (`.flow.yml`): the whole names, but not those the stems ruled out.
  return suggest(name, names.filter((n) => !n.endsWith(extension)));
}

/**
 * An existing file that the relative path `written` (which does not exist
 * from `baseDir`) may have meant: the closest one from `baseDir`, else from
 * one of its two parent folders (a path written from the project's folder
 * in a flow of a subfolder). Returned as a path relative to `baseDir`
 * (`../nodes/greet.ts`), or `undefined`.
 *
 * @example
 * ```ts
 * import { nearbyFile } from "./_nearby.ts";
 * import assert from "node:assert/strict";
 * const dir = await Deno.makeTempDir();
 * await Deno.mkdir(`${dir}/nodes`);
 * await Deno.mkdir(`${dir}/flows`);
 * await Deno.writeTextFile(`${dir}/nodes/greet.ts`, "");
 * assert.equal(await nearbyFile("./nodez/greet.ts", `${dir}/flows`), "../nodes/greet.ts");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function nearbyFile(written: string, baseDir: string): Promise<string | undefined> {
  let root = baseDir;
  for (let up = 0; up <= 2; up++) {
    const found = await closestPath(resolve(root, written));
    if (found !== undefined) {
      const rel = relative(baseDir, found);
      return /^\.\.([\\/]|$)/.test(rel) ? rel : `./${rel}`;
    }
    const parent = dirname(root);
    if (parent === root) break;
    root = parent;
  }
  return undefined;
}
