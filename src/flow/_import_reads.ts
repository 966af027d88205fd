/**
 * What a sandboxed node's module may read while it loads: a node's Worker
 * starts with read on these (and its `read:` paths), loads its module graph
 * without running any of it, then gives up what its `read:` does not cover
 * (see `loadChecked` in `sandbox_worker.ts`; `sandbox_loader.ts` for the
 * graphs that import remote modules).
 *
 * A node module legitimately imports files from its own folder, the project
 * (`../lib/x.ts`), the flow's folder and Flowstate itself; npm packages and
 * remote modules come from Deno's cache, which Deno reads without asking.
 * So the set is those folders, minus what no node may read through an
 * import: Flowstate's home, the configured store files (with the files
 * beside them that share their name: `state.db-wal`, `state.json.lock`), the
 * config file, and the dot-entries directly in each folder (`.env`, `.git`,
 * `.flowstate`). A folder holding one of those is given as its other
 * entries, one by one (so a file created there later is not readable).
 * Paths the node may read anyway (its `read:` permission) are added by the
 * caller.
 *
 * @module
 */
import { basename, dirname, join, sep as SEPARATOR } from "../_path.ts";

/** Whether `path` is `p`, or a file beside `p` whose name starts with `p`'s. */
function isProtected(path: string, protect: readonly string[]): boolean {
  return protect.some((p) =>
    path === p || (dirname(path) === dirname(p) && basename(path).startsWith(basename(p)))
  );
}

function holdsProtected(dir: string, protect: readonly string[]): boolean {
  const prefix = dir.endsWith(SEPARATOR) ? dir : dir + SEPARATOR;
  return protect.some((p) => p.startsWith(prefix));
}

/**
 * The paths to grant read on so that `roots` (absolute folders) are readable
 * except `protect` (absolute paths) and each root's dot-entries. Only paths
 * this process may read are returned (a Worker cannot get more).
 */
export function importReadPaths(roots: readonly string[], protect: readonly string[]): string[] {
  const out = new Set<string>();
  const grant = (path: string) => {
    try {
      if (Deno.permissions.querySync({ name: "read", path }).state === "granted") out.add(path);
    } catch {
      // Not a path Deno takes: not granted.
    }
  };
  const walk = (path: string, top: boolean) => {
    if (isProtected(path, protect)) return;
    if (!top && !holdsProtected(path, protect)) return grant(path);
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(path)];
    } catch {
      // Not a folder (or not readable): itself, when it holds nothing protected.
      if (!holdsProtected(path, protect)) grant(path);
      return;
    }
    for (const entry of entries) {
      if (top && entry.name.startsWith(".")) continue;
      walk(join(path, entry.name), false);
    }
  };
  for (const root of new Set(roots)) walk(root, true);
  return [...out];
}

/** The first of `protect` that `path` is, is inside, or is beside with its name (or `undefined`). */
export function protectedBy(path: string, protect: readonly string[]): string | undefined {
  return protect.find((p) =>
    isProtected(path, [p]) || path.startsWith(p.endsWith(SEPARATOR) ? p : p + SEPARATOR)
  );
}
