/**
 * The one module loader: how a plugin, a job, a node type or a migration
 * named in a config or a flow (or found in a migrations folder) becomes an
 * imported module.
 *
 * One rule for what names a module, everywhere:
 * - a **path**: starts with `./`, `../` or `/` (or is absolute on this
 *   system), resolved against the directory of the file that names it;
 * - a **specifier**: starts with a URL scheme (`jsr:`, `npm:`, `https:`,
 *   `file:`), imported as it is;
 * - a **mapped name**: a bare name (`@example/flowstate-redis`) that the
 *   user's project maps in the `imports` of its `deno.json` (or `deno.jsonc`,
 *   its `importMap` file, or a `package.json` dependency), found by walking up
 *   from the directory of the file that names it, then from the working
 *   directory. It is resolved here, to the target the project maps it to,
 *   because a dynamic `import()` inside this package resolves bare names
 *   through this package's own imports, never the user's.
 *
 * Built-in names of each kind (`sqlite`, `retention`, `state.set`) come
 * first; anything else that is neither is reported as an unknown name with the
 * fix (`./lib/a:b.ts`, or the line to add to `deno.json`), by the flow checker
 * and the loader alike.
 *
 * @module
 */
import {
  dirname,
  fromFileUrl as fileURLToPath,
  isAbsolute,
  join,
  relative,
  resolve,
  toFileUrl,
} from "./_path.ts";
import { suggest } from "./_suggest.ts";
import { parseJsonc, readTextIfAllowed } from "./_jsonc.ts";

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

/**
 * Whether `name` names a module (a path, a specifier, or a bare name the
 * project around `baseDir` maps) rather than a built-in.
 */
export function namesModule(name: string, baseDir: string = cwd()): boolean {
  return isModulePath(name) || isModuleSpecifier(name) ||
    resolveMappedName(name, baseDir) !== undefined;
}

/**
 * The importable URL for a module name: a path resolved against `baseDir`,
 * a specifier as it is, a bare name through the import map of the project
 * around `baseDir` (or the working directory); `undefined` when `name` names
 * no module.
 */
export function moduleUrl(name: string, baseDir: string): string | undefined {
  if (isModulePath(name)) return toFileUrl(resolve(baseDir, name)).href;
  if (isModuleSpecifier(name)) return name;
  return resolveMappedName(name, baseDir)?.url;
}

// ---------------------------------------------------------------------------
// The user's project: its deno.json imports (and package.json dependencies).

/** What a project maps names to: one import map, with where it was read from. */
interface ImportMap {
  /** The file the map was read from (a deno.json, an import map file or a package.json). */
  file: string;
  /** Name (or `prefix/`) → target, targets already absolute (paths as `file:` URLs). */
  imports: Map<string, string>;
}

function cwd(): string {
  try {
    return Deno.cwd();
  } catch {
    return ".";
  }
}

const readText = readTextIfAllowed;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** An import map's `imports`, with relative targets made absolute against `dir`. */
function importsOf(value: unknown, dir: string, file: string): ImportMap | undefined {
  if (!isRecord(value)) return undefined;
  const imports = new Map<string, string>();
  for (const [key, target] of Object.entries(value)) {
    if (typeof target !== "string") continue;
    imports.set(
      key,
      isModulePath(target)
        ? toFileUrl(resolve(dir, target)).href + (target.endsWith("/") ? "/" : "")
        : target,
    );
  }
  return { file, imports };
}

/** The maps of the project file (deno.json, deno.jsonc, package.json) in `dir`, nearest first. */
function mapsIn(dir: string): { maps: ImportMap[]; deno?: Record<string, unknown> } {
  const maps: ImportMap[] = [];
  let deno: Record<string, unknown> | undefined;
  for (const name of ["deno.json", "deno.jsonc"]) {
    const file = join(dir, name);
    const text = readText(file);
    if (text === undefined) continue;
    const json = parseJsonc(text);
    if (!isRecord(json)) continue;
    deno = json;
    const own = importsOf(json.imports, dir, file);
    if (own) maps.push(own);
    if (typeof json.importMap === "string") {
      const mapFile = resolve(dir, json.importMap);
      const mapJson = parseJsonc(readText(mapFile) ?? "");
      const external = isRecord(mapJson)
        ? importsOf(mapJson.imports, dirname(mapFile), mapFile)
        : undefined;
      if (external) maps.push(external);
    }
    break;
  }
  const pkgFile = join(dir, "package.json");
  const pkg = parseJsonc(readText(pkgFile) ?? "");
  if (isRecord(pkg)) {
    const imports = new Map<string, string>();
    for (const field of ["dependencies", "devDependencies", "optionalDependencies"]) {
      const deps = pkg[field];
      if (!isRecord(deps)) continue;
      for (const [dep, range] of Object.entries(deps)) {
        if (typeof range === "string" && !imports.has(dep)) imports.set(dep, `npm:${dep}@${range}`);
      }
    }
    if (imports.size > 0) maps.push({ file: pkgFile, imports });
  }
  return { maps, ...(deno ? { deno } : {}) };
}

/**
 * The import maps of the project around `dir`: those of the nearest directory
 * with a deno.json (or package.json), then those of a workspace root above it.
 */
function projectMaps(dir: string): ImportMap[] {
  // Read afresh each time (a few small files): a daemon sees an edited deno.json.
  const start = resolve(dir);
  const maps: ImportMap[] = [];
  let foundProject = false;
  for (let at = start;; at = dirname(at)) {
    const found = mapsIn(at);
    if (!foundProject && (found.deno !== undefined || found.maps.length > 0)) {
      foundProject = true;
      maps.push(...found.maps);
      if (found.deno?.workspace !== undefined) break; // the root of its own workspace
    } else if (foundProject && found.deno?.workspace !== undefined) {
      maps.push(...found.maps); // the workspace root's imports apply to its members
      break;
    }
    if (dirname(at) === at) break;
  }
  return maps;
}

/** `name` through one map: an exact key, or the longest `prefix/` key (and `jsr:`/`npm:` subpaths). */
function lookUp(name: string, map: ImportMap): string | undefined {
  const exact = map.imports.get(name);
  if (exact !== undefined && !name.endsWith("/")) return exact;
  let best: [string, string] | undefined;
  for (const [key, target] of map.imports) {
    const prefix = key.endsWith("/") ? key : `${key}/`;
    if (!name.startsWith(prefix) || (best && best[0].length >= prefix.length)) continue;
    if (key.endsWith("/") || /^(jsr|npm):/.test(target)) best = [prefix, target];
  }
  if (best === undefined) return undefined;
  const [prefix, target] = best;
  const rest = name.slice(prefix.length);
  return target.endsWith("/") ? target + rest : `${target}/${rest}`;
}

/**
 * A bare name resolved through the import map of the project around `baseDir`,
 * or else of the one around the working directory: the target `url` and the
 * `file` that maps it.
 *
 * @example
 * ```ts
 * import { resolveMappedName } from "./loader.ts";
 * import assert from "node:assert/strict";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(
 *   `${dir}/deno.json`,
 *   JSON.stringify({ imports: { "@example/redis": "jsr:@example/redis@^1" } }),
 * );
 * assert.equal(resolveMappedName("@example/redis", dir)?.url, "jsr:@example/redis@^1");
 * assert.equal(resolveMappedName("@example/other", dir), undefined);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function resolveMappedName(
  name: string,
  baseDir: string,
): { url: string; file: string } | undefined {
  if (name === "" || isModulePath(name) || isModuleSpecifier(name)) return undefined;
  const dirs = [resolve(baseDir)];
  const here = resolve(cwd());
  if (here !== dirs[0]) dirs.push(here);
  for (const dir of dirs) {
    for (const map of projectMaps(dir)) {
      const url = lookUp(name, map);
      if (url !== undefined) return { url, file: map.file };
    }
  }
  return undefined;
}

/** The deno.json (or deno.jsonc) of the project around `dir`; `./deno.json` there when none. */
export function projectConfigFile(dir: string): string {
  return existingConfigFile(dir) ?? join(resolve(dir), "deno.json");
}

/** The deno.json (or deno.jsonc) in `dir` or the nearest folder above it, if any. */
function existingConfigFile(dir: string): string | undefined {
  for (let at = resolve(dir);; at = dirname(at)) {
    for (const name of ["deno.json", "deno.jsonc"]) {
      if (readText(join(at, name)) !== undefined) return join(at, name);
    }
    if (dirname(at) === at) return undefined;
  }
}

/** `path` as shown to a user: relative to the working directory when under it. */
function shown(path: string): string {
  const rel = relative(cwd(), path);
  return rel === "" || rel.startsWith("..") || isAbsolute(rel) ? path : `./${rel}`;
}

/** The package a bare name belongs to: `@scope/name` or `name`, without a subpath. */
function packageOf(name: string): string {
  const parts = name.split("/");
  return name.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

/**
 * How to map a bare name: `add "<name>": "<target>" to the imports of
 * <deno.json>`. The target is the one `manifestDir`'s own deno.json or
 * package.json gives it (a plugin's own dependency), or a `jsr:` (scoped) /
 * `npm:` specifier with a version to fill in.
 *
 * @example
 * ```ts
 * import { mappingHint } from "./loader.ts";
 * import assert from "node:assert/strict";
 * const dir = await Deno.makeTempDir();
 * assert.match(mappingHint("ioredis/built", dir), /^add "ioredis": "npm:ioredis@<version>" to the imports of /);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function mappingHint(name: string, projectDir: string, manifestDir?: string): string {
  const pkg = packageOf(name);
  let entry = `"${pkg}": "${pkg.startsWith("@") ? "jsr" : "npm"}:${pkg}@<version>"`;
  if (manifestDir !== undefined) {
    for (const map of projectMaps(manifestDir)) {
      const key = map.imports.has(pkg) ? pkg : map.imports.has(`${pkg}/`) ? `${pkg}/` : undefined;
      if (key === undefined) continue;
      let target = map.imports.get(key)!;
      if (target.startsWith("file:")) target = shown(fileURLToPath(target));
      entry = `"${key}": "${target}"`;
      break;
    }
  }
  // Names resolve from `projectDir` upwards, then from the working directory (as
  // resolveMappedName does): name the deno.json that exists among those first.
  const dirs = [...new Set([resolve(projectDir), resolve(cwd())])];
  const configFile = dirs.map(existingConfigFile).find((f) => f !== undefined) ??
    projectConfigFile(projectDir);
  const add = `add ${entry} to the imports of ${shown(configFile)}`;
  // A near miss of a name the project maps is a typo, not a package to add.
  for (const map of dirs.flatMap(projectMaps)) {
    const names = [...map.imports.keys()].map((k) => k.replace(/\/$/, "")).filter((k) =>
      /^[@a-z0-9]/i.test(k) && k !== pkg
    );
    const near = suggest(pkg, names);
    if (near !== undefined) {
      return `did you mean "${near}" (mapped in ${shown(map.file)})? Or ${add}`;
    }
  }
  return add;
}

// ---------------------------------------------------------------------------
// Importing.

const UNMAPPED = [
  /^Import "([^"]+)" not a dependency and not in import map from "([^"]+)"/,
  /^Relative import path "([^"]+)" not prefixed with \/ or \.\/ or \.\.\/ and not in import map from "([^"]+)"/,
];

/**
 * Whether `err` is Deno's failure to resolve a bare import through any
 * import map (`Import "x" not a dependency and not in import map from …`),
 * which {@linkcode importFailure} turns into the line to add to a deno.json.
 */
export function isUnmappedImport(err: unknown): boolean {
  const first = (err instanceof Error ? err.message : String(err)).split("\n")[0]
    // deno-lint-ignore no-control-regex
    .replace(/\x1b\[[0-9;]*m/g, "");
  return UNMAPPED.some((pattern) => pattern.test(first));
}

/**
 * Why a module could not be imported: its first line, without a trailing
 * period. A bare import that no import map resolves (Deno's `Import "x" not a
 * dependency…`) says what to add to which deno.json: a module of the user's
 * project, or a plugin folder inside it, resolves its imports through the
 * project's deno.json, not a deno.json of its own. An error Deno locates (a
 * syntax error, an import that fails inside the module) keeps where: the path
 * relative to the working directory, line and column, and the source line
 * Deno quotes (`SyntaxError: Expression expected at nodes/syn.ts:2:10: \`x: 1 + ,\``).
 */
export function importFailure(err: unknown, projectDir: string = cwd()): string {
  // deno-lint-ignore no-control-regex
  const lines = (err instanceof Error ? err.message : String(err)).replace(/\x1b\[[0-9;]*m/g, "")
    .split("\n");
  const first = lines[0].replace(/\.+$/, "");
  for (const pattern of UNMAPPED) {
    const m = pattern.exec(first);
    if (!m) continue;
    const [, name, from] = m;
    let fromDir: string | undefined;
    try {
      fromDir = from.startsWith("file:") ? dirname(fileURLToPath(from)) : undefined;
    } catch { /* not a file URL */ }
    const where = fromDir === undefined ? from : shown(fileURLToPath(from));
    return `${where} imports "${name}", which no import map resolves: ${
      mappingHint(name, projectDir, fromDir)
    }`;
  }
  const location = failureLocation(lines);
  if (location === undefined) return first;
  // Deno's snippet: "2 |   x: 1 + ," between "  |" lines, the caret line after it.
  const snippet = lines.map((line) => /^\s*\d+ \| (.*)$/.exec(line)?.[1]?.trim()).find(Boolean);
  return `${first} at ${location}${snippet ? `: \`${snippet}\`` : ""}`;
}

/**
 * Where Deno located an import failure (`    at file:///…/syn.ts:2:10` in its
 * message): `path:line:column`, the path relative to the working directory
 * when under it.
 */
function failureLocation(lines: string[]): string | undefined {
  for (const line of lines.slice(1)) {
    const m = /^\s+at (file:\/\/\S+?):(\d+):(\d+)\s*$/.exec(line);
    if (!m) continue;
    let path: string;
    try {
      path = fileURLToPath(m[1]);
    } catch {
      return `${m[1]}:${m[2]}:${m[3]}`;
    }
    const rel = relative(cwd(), path);
    return `${rel === "" || rel.startsWith("..") || isAbsolute(rel) ? path : rel}:${m[2]}:${m[3]}`;
  }
  return undefined;
}

/**
 * Whether an import failed after Deno found the module: the failure has a
 * location (a syntax error, a failing import inside it) or is not Deno's
 * loading error (a TypeError) but one the module threw. Then "check the path"
 * is no advice.
 */
export function importFoundModule(err: unknown): boolean {
  if (!(err instanceof TypeError)) return err instanceof Error;
  return failureLocation(err.message.split("\n")) !== undefined;
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
