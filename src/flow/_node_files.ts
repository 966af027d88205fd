/**
 * The local files a flow's nodes run, beyond the flow file itself: a `type:
 * flow` node's sub-flow file (a literal local path in `with.flow`, followed
 * into the sub-flow's own nodes), and a custom node's module with the local
 * files it imports. What `run --watch` watches, and what a resumed run looks
 * at to tell whether a node's code changed since the run it resumes.
 *
 * @module
 */
import { parse as parseYaml } from "yaml";
import { builtinNodes } from "./nodes.ts";
import { nodeModuleFiles } from "./_module_files.ts";
import { isFlowPath } from "./load.ts";
import { moduleUrl } from "../loader.ts";
import { dirname, fromFileUrl, isWithin, join, resolve } from "../_path.ts";

/** The most sub-flow files followed from one flow (a bound on a cycle or a huge tree). */
export const MAX_FLOW_FILES = 256;

/**
 * The local files node `node` (a node of a flow whose file is in `baseDir`,
 * as written: only its `type` and `with.flow` are read) runs, sub-flows
 * followed. `seen` holds the flow files already followed (the flow's own
 * first), shared between calls to follow each sub-flow once.
 */
export function nodeFiles(node: unknown, baseDir: string, seen: Set<string>): string[] {
  const files: string[] = [];
  const pending: [node: unknown, baseDir: string][] = [[node, baseDir]];
  while (pending.length > 0) {
    const [next, dir] = pending.shift()!;
    if (typeof next !== "object" || next === null) continue;
    const { type, with: options } = next as { type?: unknown; with?: unknown };
    if (typeof type !== "string") continue;
    if (type === "flow") {
      const sub = (options as { flow?: unknown } | null | undefined)?.flow;
      if (typeof sub !== "string" || sub.includes("${{") || !isFlowPath(sub)) continue;
      const subPath = resolve(dir, sub);
      if (seen.has(subPath) || seen.size >= MAX_FLOW_FILES) continue;
      seen.add(subPath);
      files.push(subPath);
      const nodes = (readDefinition(subPath) as { nodes?: unknown } | null)?.nodes;
      if (Array.isArray(nodes)) { for (const n of nodes) pending.push([n, dirname(subPath)]); }
    } else if (!builtinNodes.has(type)) {
      const url = moduleUrl(type, dir);
      if (url === undefined || !url.startsWith("file:")) continue;
      for (const [module] of nodeModuleFiles(fromFileUrl(url))) {
        // An npm package the import map names resolves into Deno's cache: it does not change.
        if (!inDenoCache(module)) files.push(module);
      }
    }
  }
  return files;
}

/**
 * Whether a file node `node` runs (see {@linkcode nodeFiles}) was modified,
 * or is gone, since `since` (ms since the epoch): its modification or status
 * change time is not before it. A copy that keeps an older time (`cp -p`) is
 * not seen; a touch without a change is (the node runs again: the safe side).
 */
export function nodeFilesChangedSince(node: unknown, baseDir: string, since: number): boolean {
  for (const file of nodeFiles(node, baseDir, new Set())) {
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(file);
    } catch {
      return true;
    }
    const times = [info.mtime, info.ctime].map((t) => t?.getTime() ?? Infinity);
    if (Math.max(...times) >= since) return true;
  }
  return false;
}

/**
 * Where Deno keeps what it downloads: `$DENO_DIR`, else the system's cache
 * folder's `deno` (as Deno chooses it); `undefined` when it cannot be told.
 */
const DENO_CACHE: string | undefined = (() => {
  const env = (name: string) => {
    try {
      return Deno.env.get(name) || undefined;
    } catch {
      return undefined;
    }
  };
  const dir = env("DENO_DIR");
  if (dir !== undefined) return resolve(dir);
  const home = env("HOME") ?? env("USERPROFILE");
  if (Deno.build.os === "windows") {
    const local = env("LOCALAPPDATA");
    return local === undefined ? undefined : join(local, "deno");
  }
  if (Deno.build.os === "darwin") {
    return home === undefined ? undefined : join(home, "Library", "Caches", "deno");
  }
  const cache = env("XDG_CACHE_HOME") ?? (home === undefined ? undefined : join(home, ".cache"));
  return cache === undefined ? undefined : join(cache, "deno");
})();

/** Whether `path` is in Deno's cache or a `node_modules` folder (packages, not the project's code). */
function inDenoCache(path: string): boolean {
  return (DENO_CACHE !== undefined && isWithin(path, DENO_CACHE)) ||
    /[\\/]node_modules[\\/]/.test(path);
}

/** A sub-flow file's YAML, as far as it reads (its nodes are looked at); `null` if it does not. */
function readDefinition(path: string): unknown {
  try {
    return parseYaml(Deno.readTextFileSync(path));
  } catch {
    return null; // watched all the same: its run says what is wrong
  }
}
