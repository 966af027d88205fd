/**
 * The local files of a node module's graph, and their status when a Worker
 * loaded them: what tells the sandbox pool that a kept Worker runs code that
 * changed on disk since (an edit of a file the module imports, not only of
 * the module itself).
 *
 * The graph is found without Deno's help (no `deno info` subprocess): the
 * module file and, from each JavaScript or TypeScript file, every specifier
 * after `from`, of a bare `import "…"` or of a literal `import("…")` that is
 * relative (`./`, `../`), absolute or a `file:` URL, or a name the import
 * map (or a `links` entry) resolves to a local file, followed recursively.
 * A match inside a comment or a string only adds a file to look at. npm, jsr
 * and remote modules (Deno's cache, which does not change under a running
 * process) and Flowstate's own files are not followed.
 *
 * @module
 */
import { dirname, fromFileUrl, isWithin, join, toFileUrl } from "../_path.ts";

/** Flowstate's own folder, when it runs from files: node modules import its mod.ts. */
export const FLOWSTATE_ROOT: string | undefined = import.meta.url.startsWith("file:")
  ? fromFileUrl(new URL("../../", import.meta.url).href).replace(/[\\/]$/, "")
  : undefined;

/** The most files of one graph looked at: a bound on the cost of each reuse of a Worker. */
export const MAX_MODULE_FILES = 256;

/** Extensions of files whose imports are followed. */
const CODE = /\.(?:[cm]?[jt]s|[jt]sx)$/;

/** A specifier after `from`, of `import "…"`, or of a literal `import("…")`. */
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(?\s*)(["'])([^"'\n]+)\1/g;

/** One file of a graph and its status then (`""`: it could not be had). */
export type FileStamp = readonly [path: string, stamp: string];

/**
 * The status of `path` that an edit changes (modification and status-change
 * times, size, inode), or `""` when it cannot be had: one `stat`.
 */
export function stampOf(path: string): string {
  try {
    const info = Deno.statSync(path);
    return `${info.mtime?.getTime() ?? ""}:${info.ctime?.getTime() ?? ""}:${info.size}:${
      info.ino ?? ""
    }`;
  } catch {
    return "";
  }
}

/**
 * The local files of the graph of the module at `modulePath` (itself first),
 * each with its status now; files for which `skip` is true (Flowstate's own)
 * are left out.
 */
export function moduleFiles(
  modulePath: string,
  skip: (path: string) => boolean = () => false,
): FileStamp[] {
  const seen = new Set<string>([modulePath]);
  const out: FileStamp[] = [];
  const queue = [modulePath];
  while (queue.length > 0 && out.length < MAX_MODULE_FILES) {
    const path = queue.shift()!;
    // The status before the read: an edit after it is a change at the next look.
    out.push([path, stampOf(path)]);
    if (!CODE.test(path)) continue;
    let text: string;
    try {
      text = Deno.readTextFileSync(path);
    } catch {
      continue;
    }
    const base = toFileUrl(path);
    for (const [, , specifier] of text.matchAll(SPECIFIER)) {
      const local = localPath(specifier, base);
      if (local === undefined || seen.has(local)) continue;
      seen.add(local);
      if (skip(local)) continue;
      queue.push(local);
    }
  }
  return out;
}

/** Whether every file of `files` has the status it had (one `stat` each). */
export function unchanged(files: readonly FileStamp[]): boolean {
  return files.every(([path, stamp]) => stampOf(path) === stamp);
}

/** Specifiers that never name a local file: Deno's cache, built-ins, inline code. */
const NOT_LOCAL = /^(?:npm|node|https?|data|blob):/;

/**
 * The file a specifier names from the module at `base`: a relative,
 * absolute or `file:` one, or a name the import map resolves to a local file
 * (`"lib/": "./lib/"`, a `jsr:` package that `links` points at a folder);
 * else `undefined`.
 */
function localPath(specifier: string, base: URL): string | undefined {
  try {
    if (/^(?:\.{1,2}\/|\/|file:)/.test(specifier)) {
      const url = new URL(specifier, base);
      return url.protocol === "file:" ? fromFileUrl(url) : undefined;
    }
    if (NOT_LOCAL.test(specifier)) return undefined;
    // This process's import map is the one the node's Worker imports with.
    const resolved = import.meta.resolve(specifier);
    return resolved.startsWith("file:") ? fromFileUrl(resolved) : undefined;
  } catch {
    return undefined; // Not a URL, or a name nothing maps: the Worker's import says why.
  }
}

/**
 * Whether `path` is Flowstate's own code (under `root`, its folder), which a
 * node module may import by path (its mod.ts) and which does not change under
 * a running process: the files directly in its folder and under its `src/`,
 * `plugins/`, `jobs/` and `packages/` folders.
 */
export function isFlowstateCode(path: string, root: string | undefined): boolean {
  if (root === undefined) return false;
  return dirname(path) === root ||
    ["src", "plugins", "jobs", "packages"].some((dir) => isWithin(path, join(root, dir)));
}

/**
 * The local files of the graph of the node module at `modulePath` (itself
 * first) with their status now, Flowstate's own files left out: what a kept
 * check or Worker of the module compares with {@linkcode unchanged}.
 */
export function nodeModuleFiles(modulePath: string): FileStamp[] {
  return moduleFiles(modulePath, (path) => isFlowstateCode(path, FLOWSTATE_ROOT));
}
