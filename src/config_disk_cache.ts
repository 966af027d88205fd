/**
 * A persistent cache of validated config files, under the home
 * (`<home>/cache/config/<key>.json`), so that a cold `flowstate run` of a
 * project whose `flowstate.yaml` has not changed loads neither the YAML parser
 * nor zod, and resolves exactly the config the full path would.
 *
 * - The key is the SHA-256 of a fingerprint of Flowstate's config code (see
 *   `_disk_cache.ts`: `deno.json`, the Deno version, the config modules), the
 *   file's absolute path and its text. An edited file, a moved one, an upgrade
 *   or an edit of the config code is a miss. The entry lives under the home the
 *   config would have without its `home:` field (`--home`, `FLOWSTATE_HOME`,
 *   `.flowstate` beside the file), and is written only when the config's home is that
 *   one: a config that moves its home is never cached (nothing is written
 *   outside the home).
 * - Secrets never reach the disk: an entry holds the schema's output with
 *   every string written with `${…}` kept as written (the file's own text),
 *   never substituted, and nothing derived from the environment (no hash
 *   either). On a hit those strings are substituted again from the current
 *   environment.
 * - A hit is exactly as strict as a miss. What validation decides from the
 *   file's own text (the schema, the schedules) was checked when the entry was
 *   written, with the same code; every other check of `config.ts` (store and
 *   scope names, time zones, durations, plugin names, `encrypt` keys) runs
 *   again on the hit. A config is cached only when every `${…}` string is where
 *   the schema's check of it is reproduced here: a store's plugin options and
 *   `encrypt.key`/`encrypt.keys` (any string; the keys are checked again),
 *   job `options` (anything), and `serve.token`, `serve.host`, `flows` and
 *   `nodes.trusted` (not empty). Elsewhere (`home`, `plugin`, `timezone`,
 *   `schedule`, …) the file is parsed every time.
 * - Errors always come from the full path, with `file:line:column`: an unset
 *   variable, an empty value where one is needed or any failed check on a hit
 *   parses the file again, which reports it. Only valid configs are written.
 * - The storage (checksums, atomic writes, at most 256 entries, a corrupt entry
 *   is a miss, a read-only home caches nothing) is the flow disk cache's
 *   (`_disk_cache.ts`).
 *
 * Internal: used by `flowstate run`.
 *
 * @module
 */
import {
  type ConfigCapture,
  type ConfigFileContext,
  type ConfigObject,
  defaultHome,
  type LoadConfigOptions,
  loadConfigWith,
  resolveCheckedConfig,
  type ResolvedConfig,
  substituteEnvString,
} from "./config.ts";
import {
  type CachedLoad,
  DiskCache,
  type DiskCacheStats,
  locatorOf,
  type Positions,
  SAVE_NOTHING,
  saveOnce,
} from "./_disk_cache.ts";
import { dirname, join, resolve } from "./_path.ts";

/** Modules whose code decides what a config file's text validates to (relative to this one). */
const FINGERPRINTED = [
  "./config.ts",
  "./config_schema.ts",
  "./config_disk_cache.ts",
  "./_disk_cache.ts",
  "./cron.ts",
  "./timezone.ts",
  "./yaml_source.ts",
  "./_yaml_file.ts",
];

type Path = (string | number)[];

/** One entry as stored (after the header: format, key, path). */
interface Entry {
  /** The schema's output, with the strings at `templated` as written (not substituted). */
  config: ConfigObject;
  /** The paths of the strings written with `${…}`. */
  templated: Path[];
  /** `[path, line, column]` of every path of the file's data (its key, as `where` says). */
  positions: Positions;
}

const cache = new DiskCache<Entry>(import.meta.url, {
  format: 1,
  modules: FINGERPRINTED,
  valid: (entry) =>
    typeof entry.config === "object" && entry.config !== null &&
    !Array.isArray(entry.config) && Array.isArray(entry.templated) &&
    Array.isArray(entry.positions),
});

/** What lookups did (for tests and benchmarks). */
export const configDiskCacheStats: DiskCacheStats = cache.stats;

/** What {@linkcode loadConfigCached} returns. */
export interface CachedConfig extends CachedLoad {
  /** The config, as `loadConfig` returns it. */
  config: ResolvedConfig;
}

/**
 * Load a configuration as {@linkcode loadConfig} does (same result, same
 * errors), through the cache under the home when the config is a file.
 *
 * @example
 * ```ts
 * import { loadConfigCached } from "./config_disk_cache.ts";
 * import { loadConfig } from "./config.ts";
 * import assert from "node:assert/strict";
 * const cwd = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${cwd}/flowstate.yaml`, "stores:\n  main: { plugin: memory }\n");
 * const first = await loadConfigCached({ cwd }); // a miss: parsed
 * await first.save(); // written
 * const again = await loadConfigCached({ cwd }); // a hit
 * assert.equal(again.hit, true);
 * const { where: _a, ...hit } = again.config;
 * const { where: _b, ...full } = await loadConfig({ cwd });
 * assert.deepEqual(hit, full);
 * await Deno.remove(cwd, { recursive: true });
 * ```
 */
export async function loadConfigCached(options: LoadConfigOptions = {}): Promise<CachedConfig> {
  let hit = false;
  let save = SAVE_NOTHING;
  const config = await loadConfigWith(options, async (text, context, parse) => {
    const cacheDir = cacheDirOf(context);
    // The key covers the code, the path and the text (never the environment).
    const key = cacheDir && await cache.keyOf(context.file, text);
    if (cacheDir === undefined || key === undefined) return await parse();

    const entry = await cache.read(cacheDir, key, context.file);
    const found = entry && await fromEntry(entry, context);
    if (found !== undefined) {
      cache.stats.hits++;
      hit = true;
      return found;
    }
    cache.stats.misses++;
    let captured: ConfigCapture | undefined;
    const config = await parse((c) => captured = c);
    const body = captured && config.home === homeOf(context) ? entryOf(captured) : undefined;
    if (body !== undefined) save = saveOnce(() => cache.write(cacheDir, key, context.file, body));
    return config;
  });
  return { config, hit, save };
}

/**
 * The home the config has when it does not set `home:` (`--home`,
 * `FLOWSTATE_HOME`, `.flowstate` beside the file), as `config.ts` resolves it;
 * `undefined` when the environment cannot be read.
 */
function homeOf({ file, cwd, home, env }: ConfigFileContext): string | undefined {
  if (home !== undefined) return resolve(cwd, home);
  try {
    const fromEnv = env("FLOWSTATE_HOME");
    return fromEnv ? resolve(cwd, fromEnv) : defaultHome(dirname(file));
  } catch {
    return undefined; // no permission: the full path reports it, if it matters
  }
}

function cacheDirOf(context: ConfigFileContext): string | undefined {
  const home = homeOf(context);
  return home === undefined ? undefined : join(home, "cache", "config");
}

/**
 * How the schema checks a string at `path` written with `${…}`, when this
 * module can check it again after substitution: `any` (every string passes),
 * `nonEmpty` (`z.string().min(1)`); `undefined` elsewhere (not cached).
 */
function templateRule(path: readonly (string | number)[]): "any" | "nonEmpty" | undefined {
  const [top, second, third, fourth] = path;
  if (top === "stores" && path.length >= 3) {
    // A store's plugin options pass the schema as they are (the plugin checks them on open).
    if (!["plugin", "indexes", "search", "changes", "encrypt"].includes(String(third))) {
      return "any";
    }
    // The keys are strings to the schema; config.ts checks them again (parseEncryptOptions).
    if (third === "encrypt" && fourth === "key" && path.length === 4) return "any";
    if (third === "encrypt" && fourth === "keys" && path.length === 5) return "any";
    return undefined;
  }
  if (top === "jobs" && third === "options" && path.length >= 4) return "any";
  if (top === "serve" && (second === "token" || second === "host") && path.length === 2) {
    return "nonEmpty";
  }
  if (top === "flows" && path.length <= 2) return "nonEmpty";
  if (top === "nodes" && second === "trusted" && path.length === 3) return "nonEmpty";
  return undefined;
}

/** The entry for a config that validated, or `undefined` when it cannot be cached. */
function entryOf({ raw, checked, source }: ConfigCapture): Entry | undefined {
  const templated: Path[] = [];
  const positions: Positions = [];
  // Every path of the data as written: where it is, and which strings are templates.
  const walk = (value: unknown, path: Path): boolean => {
    // As YamlSource.where: the start of the text when nothing is written there.
    const at = source.locate(path, "key") ?? { line: 1, column: 1 };
    positions.push([path, at.line, at.column]);
    if (typeof value === "string" && value.includes("${")) {
      if (templateRule(path) === undefined) return false;
      templated.push(path);
    }
    if (Array.isArray(value)) return value.every((v, i) => walk(v, [...path, i]));
    if (typeof value === "object" && value !== null) {
      return Object.entries(value).every(([k, v]) => walk(v, [...path, k]));
    }
    return true;
  };
  if (!walk(raw, []) || !jsonSafe(checked)) return undefined;
  // The schema's output, with each template as written: no substituted value is stored.
  const config = structuredClone(checked);
  for (const path of templated) {
    if (!setAt(config, path, getAt(raw, path))) return undefined;
  }
  return { config, templated, positions };
}

/**
 * The config of a valid entry, resolved with the current environment; or
 * `undefined` when the full path must run (a substitution or a check fails:
 * the full path reports it, with its position).
 */
async function fromEntry(
  entry: Entry,
  context: ConfigFileContext,
): Promise<ResolvedConfig | undefined> {
  const config = entry.config;
  // As written (templates unsubstituted): the checks of what the user wrote read it.
  const written = structuredClone(config);
  for (const path of entry.templated) {
    const rule = templateRule(path);
    const written = getAt(config, path);
    if (rule === undefined || typeof written !== "string") return undefined;
    let failed = false;
    let value: string;
    try {
      value = substituteEnvString(written, context.env, () => failed = true);
    } catch {
      return undefined; // the environment cannot be read: the full path says so
    }
    if (failed || (rule === "nonEmpty" && value === "")) return undefined;
    setAt(config, path, value);
  }
  const encrypted = Object.values(config.stores ?? {}).some((s) => s.encrypt !== undefined);
  const parseEncrypt = encrypted
    ? (await import("./wrappers/encrypt.ts")).parseEncryptOptions
    : undefined;
  try {
    return resolveCheckedConfig(
      config,
      { ...context, locate: locatorOf(entry.positions), written },
      parseEncrypt,
    );
  } catch {
    return undefined;
  }
}

/** Whether JSON keeps `value` as it is (plain data: no `Infinity`, `-0`, bytes, functions). */
function jsonSafe(value: unknown): boolean {
  if (value === null || typeof value === "string" || typeof value === "boolean") return true;
  if (typeof value === "number") return Number.isFinite(value) && !Object.is(value, -0);
  if (Array.isArray(value)) return value.every(jsonSafe);
  if (typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.values(value).every(jsonSafe);
  }
  return false;
}

function getAt(value: unknown, path: Path): unknown {
  let at = value;
  for (const step of path) {
    if (typeof at !== "object" || at === null || !Object.hasOwn(at, step)) return undefined;
    at = (at as Record<string | number, unknown>)[step];
  }
  return at;
}

/** Set the existing value at `path`; whether it was there. */
function setAt(value: unknown, path: Path, to: unknown): boolean {
  const parent = getAt(value, path.slice(0, -1));
  const last = path[path.length - 1];
  if (typeof parent !== "object" || parent === null || !Object.hasOwn(parent, last)) return false;
  (parent as Record<string | number, unknown>)[last] = to;
  return true;
}
