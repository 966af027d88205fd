/**
 * Symbolic links that lead a sandboxed node out of its declared paths.
 *
 * Deno checks the path a node asks for, not where a symbolic link in it
 * leads: with `read: [./data]`, a node reads whatever `data/link` points to.
 * So before a node's Worker is handed out (for each run), every folder and
 * file its `read:`, `write:` and `ffi:` lists name is looked through, and a
 * link whose target (symlinks resolved; for a dangling link, the path it
 * names) is not within one of the same list's paths (as written, or resolved)
 * refuses the node. Only `readDir` is used (its entries say which are links),
 * one `realPath` per link, so the cost is one call per folder.
 *
 * What this does not see: a link made after the look (a node cannot make one:
 * Deno's `symlink` needs unscoped `read` and `write`), and hard links, which
 * are the file itself (a node cannot make one to a file it may not read).
 *
 * @module
 */
import { dirname, isWithin, join, resolve } from "../_path.ts";

/** The entries looked at, at most, under one node's paths before it is refused as too big to check. */
export const MAX_LINK_CHECK_ENTRIES = 100_000;

/** The permission names whose entries are paths. */
const PATH_PERMISSIONS = ["read", "write", "ffi"] as const;

/** A permission whose entries are paths. */
export type PathPermission = typeof PATH_PERMISSIONS[number];

/** What refuses a node's paths: a link out of them, or too much to look through. */
export type LinkProblem =
  | { kind: "link"; name: PathPermission; index: number; link: string; target: string }
  | { kind: "tooMany"; name: PathPermission; index: number };

/**
 * The first symbolic link under the path entries of `permissions` (each list
 * of absolute paths) that leads outside its own list, or the first entry
 * holding more than {@linkcode MAX_LINK_CHECK_ENTRIES} entries; `undefined`
 * when there is none.
 */
export function linkEscape(
  permissions: Partial<Record<PathPermission, boolean | string[]>>,
): LinkProblem | undefined {
  for (const name of PATH_PERMISSIONS) {
    const list = permissions[name];
    if (!Array.isArray(list) || list.length === 0) continue;
    const allowed = [...list];
    for (const path of list) {
      const real = realPath(path);
      if (real !== undefined && real !== path) allowed.push(real);
    }
    const inside = (target: string) => allowed.some((dir) => isWithin(target, dir));
    for (let index = 0; index < list.length; index++) {
      const found = walk(list[index], inside);
      if (found === "tooMany") return { kind: "tooMany", name, index };
      if (found !== undefined) return { kind: "link", name, index, ...found };
    }
  }
  return undefined;
}

/** The real path of `path`, or `undefined` when it does not resolve. */
function realPath(path: string): string | undefined {
  try {
    return Deno.realPathSync(path);
  } catch {
    return undefined;
  }
}

/** Where the link at `link` leads: its real target, or (dangling) the path it names. */
function linkTarget(link: string): string {
  const real = realPath(link);
  if (real !== undefined) return real;
  try {
    return resolve(dirname(link), Deno.readLinkSync(link));
  } catch {
    return link; // Gone meanwhile: nothing to follow.
  }
}

/**
 * The first link under `root` (a folder, or a link to one) whose target is
 * not `inside`; `"tooMany"` past the cap. A link is not followed: its target
 * is inside, where the walk of that path looks through it.
 */
function walk(
  root: string,
  inside: (target: string) => boolean,
): { link: string; target: string } | "tooMany" | undefined {
  let seen = 0;
  const folders = [root];
  while (folders.length > 0) {
    const folder = folders.pop()!;
    try {
      for (const entry of Deno.readDirSync(folder)) {
        if (++seen > MAX_LINK_CHECK_ENTRIES) return "tooMany";
        const path = join(folder, entry.name);
        if (entry.isSymlink) {
          const target = linkTarget(path);
          if (!inside(target)) return { link: path, target };
        } else if (entry.isDirectory) folders.push(path);
      }
    } catch {
      // Not a folder, not there (yet), or not readable (by the node either).
    }
  }
  return undefined;
}
