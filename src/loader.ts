/**
 * The one module loader: how a plugin, a job, a node type or a migration
 * named in a config or a flow (or found in a migrations folder) becomes an
 * imported module.
 *
 * One rule for what names a module, everywhere:
 * - a **path**: starts with `./`, `../` or `/` (or is absolute on this
 *   system), resolved against the directory of the file that names it;
 * - a **specifier**: starts with a URL scheme (`jsr:`, `npm:`, `https:`,
 *   `file:`), imported as it is.
 *
 * Anything else is a built-in name of its kind (`sqlite`, `retention`,
 * `state.set`), looked up in the kind's own table. So `lib/a:b.ts` is neither
 * a path nor a specifier: it is reported as an unknown name, with the fix
 * (`./lib/a:b.ts`), by the flow checker and the loader alike.
 *
 * @module
 */
import { isAbsolute, resolve } from "node:path";
import { toFileUrl } from "./_path.ts";

const SCHEME = /^[a-z][a-z0-9+.-]*:/i;

/** Whether `name` is a module path (relative or absolute). */
export function isModulePath(name: string): boolean {
  return name.startsWith("./") || name.startsWith("../") || name.startsWith("/") ||
    isAbsolute(name);
}

/** Whether `name` is a module specifier with a URL scheme (`npm:x`, `jsr:@a/b`, `file:…`). */
export function isModuleSpecifier(name: string): boolean {
  return SCHEME.test(name) && !isAbsolute(name);
}

/** Whether `name` names a module (a path or a specifier) rather than a built-in. */
export function namesModule(name: string): boolean {
  return isModulePath(name) || isModuleSpecifier(name);
}

/**
 * The importable URL for a module name: a path resolved against `baseDir`,
 * a specifier as it is; `undefined` when `name` names no module.
 */
export function moduleUrl(name: string, baseDir: string): string | undefined {
  if (isModulePath(name)) return toFileUrl(resolve(baseDir, name)).href;
  if (isModuleSpecifier(name)) return name;
  return undefined;
}

/** Why a module could not be imported: its first line, without a trailing period. */
export function importFailure(err: unknown): string {
  return (err instanceof Error ? err.message.split("\n")[0] : String(err)).replace(/\.+$/, "");
}

const cache = new Map<string, Promise<Record<string, unknown>>>();

/**
 * Import `url` once per process and resolve the module's namespace. A failed
 * import is not cached, so a fixed file loads on the next try.
 */
export function importModule(url: string): Promise<Record<string, unknown>> {
  let p = cache.get(url);
  if (!p) {
    p = import(url) as Promise<Record<string, unknown>>;
    cache.set(url, p);
    p.catch(() => cache.delete(url));
  }
  return p;
}

/** {@linkcode importModule}, resolving the module's default export. */
export async function importDefault(url: string): Promise<unknown> {
  return (await importModule(url)).default;
}
