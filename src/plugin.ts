/**
 * Plugins: `definePlugin()`, the loader (built-in name, file path, or any
 * specifier Deno can import) and `openStore()`.
 *
 * @module
 */
import { realSchema } from "./_lazy_schema.ts";
import { resolve } from "./_path.ts";
import {
  importFailure,
  importFoundModule,
  importModule,
  isUnmappedImport,
  mappingHint,
  moduleUrl,
} from "./loader.ts";
import { ConfigError, FlowstateError, messageOf, type Problem, StoreOpenError } from "./errors.ts";
import { assertKnownFields, didYouMean, fieldNames } from "./_suggest.ts";
import { CAPABILITY_NAMES, prepareCoreIndexes, wrapDriver } from "./store/store.ts";
import { INTERNAL } from "./store/internal_keys.ts";
import { type FeedRetention, normalizeFeedOption } from "./store/feed.ts";
import { loadActorStorage, setProcessActor } from "./store/actor.ts";
import type { Clock, FeedKeep, IndexDeclaration, SearchDeclaration, Store } from "./store/types.ts";
import {
  type IndexSpec,
  normalizeIndexes,
  normalizeSearch,
  type SearchSpec,
} from "./store/indexes.ts";
import type { IndexBuildEvent, PreparedIndexes, StoreDriver } from "./store/driver.ts";
// The encryption wrapper is imported only for a store with `encrypt` (not on a plain run's way).
import type { EncryptOptions, ParsedEncryptOptions } from "./wrappers/encrypt.ts";
import { systemClock } from "./clock.ts";
import { withWritten, writtenOf } from "./_written.ts";
import { warnGuarded, type WarningHandler } from "./log.ts";
import type { MemoryOptions } from "../plugins/memory/mod.ts";
import type { JsonFileOptions } from "../plugins/jsonfile/mod.ts";
import type { SqliteOptions } from "../plugins/sqlite/mod.ts";
import type { PostgresOptions } from "../plugins/postgres/options.ts";

export {
  definePlugin,
  type OptionsSchema,
  type ParsingSchema,
  type Plugin,
  type PluginContext,
  type PluginDefinition,
  redactUrl,
  requireStoreFile,
  type SchemaIssue,
  type SchemaResult,
} from "./plugin_define.ts";
import type { OptionsSchema, Plugin, PluginContext } from "./plugin_define.ts";

/** The built-in plugins, by name, as module specifiers relative to this file. */
const BUILTIN_PLUGINS: Record<string, string> = {
  memory: "../plugins/memory/mod.ts",
  jsonfile: "../plugins/jsonfile/mod.ts",
  sqlite: "../plugins/sqlite/mod.ts",
  postgres: "../plugins/postgres/mod.ts",
};

/** Names of the built-in plugins. */
export function builtinPluginNames(): string[] {
  return Object.keys(BUILTIN_PLUGINS);
}

/**
 * The built-in plugins that are imported by a literal `import()`: part of the
 * module graph, so loading one needs no `--allow-read` of this package's
 * files (nor `--allow-net` when the package comes from `jsr:`). `postgres` is
 * imported by URL, so that its npm driver never enters the graph of a program
 * that does not use it.
 */
const IN_GRAPH: Readonly<Record<string, () => Promise<{ default: unknown }>>> = {
  memory: () => import("../plugins/memory/mod.ts"),
  jsonfile: () => import("../plugins/jsonfile/mod.ts"),
  // The plugin itself, not mod.ts (which exports the zod schema of its options too).
  sqlite: () => import("../plugins/sqlite/plugin.ts"),
};

function isPlugin(value: unknown): value is Plugin {
  const v = value as Partial<Plugin> | null;
  return typeof v === "object" && v !== null && typeof v.name === "string" &&
    typeof v.open === "function" && typeof v.optionsSchema?.["~standard"]?.validate === "function";
}

/** Resolve a plugin specifier to an importable module specifier. */
export function resolvePluginSpecifier(specifier: string, baseDir: string): string {
  if (Object.hasOwn(BUILTIN_PLUGINS, specifier)) {
    return new URL(BUILTIN_PLUGINS[specifier], import.meta.url).href;
  }
  const url = moduleUrl(specifier, baseDir);
  if (url !== undefined) return url;
  const suggestion = didYouMean(specifier, builtinPluginNames());
  // A near miss of a built-in is a typo; anything else may be a package to map.
  const fix = `use a built-in (${
    builtinPluginNames().join(", ")
  }), a file path starting with ./ or /, a specifier like npm:name or jsr:@scope/name${
    suggestion === "" && /^[@a-z0-9]/i.test(specifier)
      ? `, or a package name (${mappingHint(specifier, baseDir)})`
      : ""
  }`;
  const unknown = `unknown plugin "${specifier}"${suggestion}`;
  throw new ConfigError(`U${unknown.slice(1)}: ${fix}`, {
    issues: [{ path: ["plugin"], message: `${unknown}: ${fix}` }],
  });
}

/**
 * Load a plugin by built-in name, file path (relative to `baseDir`) or any
 * specifier Deno can import, and check that its default export is a plugin.
 *
 * @example
 * ```ts
 * import { loadPlugin } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * const memory = await loadPlugin("memory");
 * assert.equal(memory.name, "memory");
 * ```
 */
export async function loadPlugin(
  specifier: string | Plugin,
  options: { baseDir?: string; storeName?: string } = {},
): Promise<Plugin> {
  if (typeof specifier !== "string") {
    if (isPlugin(specifier)) return specifier;
    throw new TypeError(
      "Cannot load plugin: expected a name, a module specifier or a plugin object",
    );
  }
  const forStore = options.storeName ? ` for store "${options.storeName}"` : "";
  const url = resolvePluginSpecifier(specifier, options.baseDir ?? Deno.cwd());
  let namespace: Record<string, unknown>;
  try {
    namespace = Object.hasOwn(IN_GRAPH, specifier)
      ? await IN_GRAPH[specifier]()
      : await importModule(url);
  } catch (err) {
    // A module that was found (a syntax error in it, say) needs no advice about its path.
    const message = `Cannot load plugin "${specifier}"${forStore}: ${importFailure(err)}${
      importFoundModule(err) ? "" : `. Check the path or specifier (resolved to ${url})`
    }`;
    throw new ConfigError(message, { cause: err, issues: [{ path: ["plugin"], message }] });
  }
  const exported = namespace.default;
  if (!isPlugin(exported)) {
    const message = `Cannot load plugin "${specifier}"${forStore}: ${notAPlugin(namespace)}`;
    throw new ConfigError(message, { issues: [{ path: ["plugin"], message }] });
  }
  return exported;
}

/**
 * Why a module's default export is not a plugin, and how to fix it: no
 * default export (naming an export that is a plugin, if one is), a bare
 * function, or an object without a string `name`, an `open` function or a
 * Standard Schema as `optionsSchema`.
 */
function notAPlugin(namespace: Record<string, unknown>): string {
  const shape = "export default definePlugin({ name, optionsSchema, open }) " +
    'from "@flowstate/core/plugin"';
  const exported = namespace.default;
  if (exported === undefined) {
    const named = Object.keys(namespace).find((k) => k !== "default" && isPlugin(namespace[k]));
    return named === undefined
      ? `the module has no default export; ${shape}`
      : `the module has no default export, but its export "${named}" is a plugin: add ` +
        `\`export default ${named};\``;
  }
  if (typeof exported === "function") {
    return `its default export is a function (${
      exported.name || "anonymous"
    }), not a plugin object: ${shape}, with the function as open`;
  }
  if (typeof exported !== "object" || exported === null) {
    return `its default export is ${
      exported === null ? "null" : typeof exported
    }, not a plugin; ${shape}`;
  }
  const v = exported as Record<string, unknown>;
  const wrong = [
    typeof v.name === "string" ? undefined : "name (a string)",
    typeof v.open === "function" ? undefined : "open (a function returning a StoreDriver)",
    typeof (v.optionsSchema as { "~standard"?: { validate?: unknown } } | undefined)
        ?.["~standard"]?.validate === "function"
      ? undefined
      : "optionsSchema (a Standard Schema such as z.strictObject({…}) from zod)",
  ].filter((w) => w !== undefined);
  return `its default export is not a plugin: it lacks ${wrong.join(", ")}; ${shape}`;
}

/**
 * A store's configuration: the plugin plus its options. `plugin` offers the
 * built-in names ({@linkcode BuiltinPluginName}) and takes any other string
 * (a module path or specifier) or a plugin object. {@linkcode openStore} and
 * {@linkcode openRuntime}'s `config` check a built-in plugin's options, and
 * the option names of a plugin object typed `Plugin<Options>`, at compile
 * time (see {@linkcode CheckedStoreSpec}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, type StoreSpec } from "@flowstate/core";
 *
 * const spec: StoreSpec = {
 *   plugin: "memory",
 *   indexes: [{ prefix: ["orders"], path: "status" }],
 *   changes: { keep: "7d" },
 * };
 * await using store = await openStore(spec);
 * assert.equal(store.indexes.length, 1);
 * assert.equal((await store.feedInfo()).enabled, true);
 * ```
 */
export interface StoreSpec {
  /** A built-in name, a module specifier or a plugin object. */
  // deno-lint-ignore ban-types
  plugin: BuiltinPluginName | (string & {}) | Plugin<unknown>;
  /** Indexes on JSON paths under key prefixes (see {@linkcode IndexDeclaration}). */
  indexes?: readonly IndexDeclaration[];
  /** Which values full-text search indexes (see {@linkcode SearchDeclaration}). */
  search?: SearchDeclaration;
  /** Keep a change feed (`{ keep: "30d" }`; off by default). */
  changes?: ChangesConfig;
  /** Encryption at rest of the values (see {@linkcode EncryptOptions}). */
  encrypt?: EncryptOptions;
  /** Plugin options. */
  [option: string]: unknown;
}

/**
 * The options every store takes besides its plugin's: `indexes`, `search`
 * and `encrypt`.
 *
 * @example
 * ```ts
 * import type { CoreStoreOptions } from "@flowstate/core";
 * const options: CoreStoreOptions = {
 *   indexes: [{ prefix: ["orders"], path: "status" }],
 *   search: { prefix: ["notes"], fields: ["title", "body"] },
 *   encrypt: { key: "${env.FLOWSTATE_KEY}", plaintext: ["status", "title", "body"] },
 * };
 * ```
 */
export interface CoreStoreOptions {
  /** Indexes on JSON paths under key prefixes. */
  indexes?: readonly IndexDeclaration[];
  /** Which values full-text search indexes. */
  search?: SearchDeclaration;
  /** Keep a change feed: every commit records each changed key (off by default). */
  changes?: ChangesConfig;
  /**
   * Seal every value with AES-256-GCM (see `encrypted()` in
   * `@flowstate/core/encrypt`): `{ key }` or `{ keys: [current, old] }`, and
   * the `plaintext` paths that queries, indexes and search may use.
   */
  encrypt?: EncryptOptions;
}

/**
 * A store's change feed option: how long the `gc` job keeps its entries, a
 * duration (`"30d"`) or `{ age, count }`.
 *
 * @example
 * ```ts
 * import type { ChangesConfig } from "@flowstate/core";
 * const changes: ChangesConfig = { keep: { age: "30d", count: 1_000_000 } };
 * ```
 */
export interface ChangesConfig {
  /** A duration, or an age and/or a number of entries. */
  keep: FeedKeep;
}

/**
 * The options each built-in plugin takes, by name, as written in a store's
 * spec (so each is optional where the plugin has a default).
 *
 * @example
 * ```ts
 * import type { BuiltinPluginOptions } from "@flowstate/core";
 * const sqlite: BuiltinPluginOptions["sqlite"] = { path: "state.db", durability: "relaxed" };
 * ```
 */
export interface BuiltinPluginOptions {
  /** `memory`: in-process. */
  memory: Partial<MemoryOptions>;
  /** `jsonfile`: one JSON file. */
  jsonfile: Partial<JsonFileOptions>;
  /** `sqlite`: `node:sqlite`, the default store. */
  sqlite: Partial<SqliteOptions>;
  /** `postgres`: a PostgreSQL server (`url` required). */
  postgres: Partial<PostgresOptions> & Pick<PostgresOptions, "url">;
}

/**
 * The name of a built-in plugin.
 *
 * @example
 * ```ts
 * import type { BuiltinPluginName } from "@flowstate/core";
 * const name: BuiltinPluginName = "sqlite";
 * ```
 */
export type BuiltinPluginName = keyof BuiltinPluginOptions;

/**
 * The compile-time check of a store spec `S`: for a built-in plugin name,
 * exactly that plugin's options (a misspelt option, a wrong value or a
 * missing `url` does not compile); for a plugin object typed
 * `Plugin<Options>`, only the options it declares, each of its type (a
 * misspelt option does not compile; a missing one is reported when the store
 * opens, since the plugin's schema may give it a default); anything else
 * (a module specifier, a `Plugin<unknown>`) as it is, checked when the plugin
 * is loaded.
 *
 * @example
 * ```ts
 * import type { CheckedStoreSpec } from "@flowstate/core";
 * // { plugin: "sqlite", pth: "a.db" } would not compile: sqlite has no option "pth"
 * const ok: CheckedStoreSpec<{ plugin: "sqlite"; path: string }> = { plugin: "sqlite", path: "a.db" };
 * ```
 */
export type CheckedStoreSpec<S> = S extends { plugin: infer P }
  // One built-in name (not a union that also holds other strings): check it.
  // Every key of S that the plugin does not take is typed `never`.
  ? [P] extends [BuiltinPluginName] ?
      & {
        [K in keyof S]: K extends keyof ({ plugin: P } & CoreStoreOptions & BuiltinPluginOptions[P])
          ? ({ plugin: P } & CoreStoreOptions & BuiltinPluginOptions[P])[K]
          : never;
      }
      & { plugin: P }
      & CoreStoreOptions
      & BuiltinPluginOptions[P]
    // A plugin object whose options are a known shape (not `unknown`, not a record of any key).
  : [P] extends [Plugin<infer O>] ? unknown extends O ? S : string extends keyof O ? S : {
      [K in keyof S]: K extends "plugin" | keyof CoreStoreOptions ? S[K]
        : K extends keyof O ? O[K]
        : never;
    }
  : S
  : S;

/**
 * Options for {@linkcode openStore}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, type OpenStoreOptions } from "@flowstate/core";
 *
 * const dir = await Deno.makeTempDir();
 * const options: OpenStoreOptions = { name: "main", baseDir: dir, actor: "importer" };
 * const store = await openStore({ plugin: "sqlite", path: "state.db" }, options);
 * assert.equal(store.name, "main");
 * assert.equal(store.location, `${dir}/state.db`); // relative to baseDir
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface OpenStoreOptions {
  /** The store's name, used in messages (default: the plugin's name). */
  name?: string;
  /** Home directory for default files (default: `$FLOWSTATE_HOME` or `./.flowstate`). */
  home?: string;
  /** Directory that relative paths resolve against (default: the working directory). */
  baseDir?: string;
  /** Clock for expiry (default: the system clock). */
  clock?: Clock;
  /**
   * Who this process writes as, in the change feed (`FLOWSTATE_ACTOR` wins;
   * default `<user>@<hostname>`).
   */
  actor?: string;
  /**
   * Only open a store that exists: see {@linkcode PluginContext.mustExist}
   * (default `false`: a missing store is created).
   */
  mustExist?: boolean;
  /**
   * Run the backend's own integrity check while opening: see
   * {@linkcode PluginContext.verify} (default `false`).
   */
  verify?: boolean;
  /**
   * Give up opening when it aborts: see {@linkcode PluginContext.signal}
   * (a runtime aborts it when it closes while its stores open).
   */
  signal?: AbortSignal;
  /**
   * Receives the store's warnings (see {@linkcode Warning}). Default: none,
   * and they are dropped: the library never prints.
   */
  onWarning?: WarningHandler;
  /**
   * Told how far the build of each declared index (or search index) missing
   * from the store has got while the store opens: `start`, `progress` where
   * the backend can tell (PostgreSQL, the core's index entries), `done`. The
   * `build-indexes` job shows it as a progress bar.
   *
   * @example
   * ```ts
   * import { openStore } from "@flowstate/core";
   * import assert from "node:assert/strict";
   * const dir = await Deno.makeTempDir();
   * const spec = { plugin: "sqlite", path: `${dir}/state.db` } as const;
   * const plain = await openStore(spec);
   * await plain.set(["orders", "1"], { status: "open" });
   * await plain.close();
   * const phases: string[] = [];
   * await using store = await openStore(
   *   { ...spec, indexes: [{ prefix: ["orders"], path: "status" }] },
   *   { onIndexBuild: (e) => phases.push(`${e.phase} ${e.total}`) },
   * );
   * assert.deepEqual(phases, ["start 1", "done 1"]);
   * ```
   */
  onIndexBuild?: (event: IndexBuildEvent & { store: string }) => void;
}

/** Flowstate's home: `$FLOWSTATE_HOME`, or `.flowstate` under the working directory. */
export function defaultHome(): string {
  const fromEnv = Deno.env.get("FLOWSTATE_HOME");
  return resolve(fromEnv && fromEnv !== "" ? fromEnv : ".flowstate");
}

/** The options of {@linkcode openStore} (its second argument). */
const OPEN_STORE_OPTIONS: readonly string[] = fieldNames<OpenStoreOptions>()(
  [
    "name",
    "home",
    "baseDir",
    "clock",
    "actor",
    "mustExist",
    "verify",
    "signal",
    "onWarning",
    "onIndexBuild",
  ],
);

/**
 * A plugin's `open()`, its own errors made to say which store failed to open
 * (a {@linkcode StoreOpenError}, the plugin's error as its cause). Our own
 * errors, and those that already begin `Cannot open store "<name>"` (as the
 * built-in plugins' do), pass through unchanged.
 */
async function openDriver(
  plugin: Plugin,
  name: string,
  baseDir: string,
  open: () => StoreDriver | Promise<StoreDriver>,
): Promise<StoreDriver> {
  try {
    return await open();
  } catch (err) {
    const message = messageOf(err);
    if (err instanceof FlowstateError || message.startsWith(`Cannot open store "${name}"`)) {
      throw err;
    }
    // A client the plugin imports in open() (as the docs advise) that no import map resolves:
    // say which deno.json needs which line, as a failing import of the module itself does.
    if (isUnmappedImport(err)) {
      throw new StoreOpenError(
        `Cannot open store "${name}" (plugin "${plugin.name}"): ${importFailure(err, baseDir)}`,
        { store: name, plugin: plugin.name },
        { cause: err },
      );
    }
    throw new StoreOpenError(
      `Cannot open store "${name}" (plugin "${plugin.name}"): ${message}`,
      { store: name, plugin: plugin.name },
      { cause: err },
    );
  }
}

/**
 * Open one store from `{ plugin, ...options }`.
 *
 * @example
 * ```ts
 * import { openStore } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * await using store = await openStore({ plugin: "memory" });
 * await store.set(["greeting"], "hello");
 * assert.equal((await store.get(["greeting"]))?.value, "hello");
 * ```
 */
export async function openStore<const S extends StoreSpec>(
  spec: S & CheckedStoreSpec<S>,
  options: OpenStoreOptions = {},
): Promise<Store> {
  if (typeof spec !== "object" || spec === null || spec.plugin === undefined) {
    throw new ConfigError(
      `Cannot open store${
        options.name ? ` "${options.name}"` : ""
      }: the spec needs a plugin, like { plugin: "sqlite", path: "state.db" }`,
    );
  }
  if (typeof options === "object" && options !== null) {
    const what = `Cannot open store${options.name ? ` "${options.name}"` : ""}`;
    assertKnownFields(options, OPEN_STORE_OPTIONS, what, "option");
    if (options.clock !== undefined && typeof options.clock?.now !== "function") {
      throw new TypeError(`${what}: clock must be an object with a now() method`);
    }
  }
  const baseDir = options.baseDir ?? Deno.cwd();
  const {
    plugin: pluginSpec,
    indexes: rawIndexes,
    search: rawSearch,
    changes: rawChanges,
    encrypt: rawEncrypt,
    ...rawOptions
  } = spec;
  const plugin = await loadPlugin(pluginSpec as string | Plugin, {
    baseDir,
    storeName: options.name,
  });
  const name = options.name ?? plugin.name;
  const { indexes, search } = checkIndexOptions(
    rawIndexes,
    rawSearch,
    `Cannot open store "${name}"`,
  );
  let changes: FeedRetention | undefined;
  try {
    changes = normalizeFeedOption(rawChanges, `Cannot open store "${name}"`);
  } catch (err) {
    if (!(err instanceof TypeError || err instanceof RangeError)) throw err;
    throw new ConfigError(err.message, {
      issues: [{
        message: err.message.replace(`Cannot open store "${name}": `, ""),
        path: ["changes"],
      }],
    });
  }
  setProcessActor(options.actor);
  if (changes !== undefined) await loadActorStorage();
  const encrypt = rawEncrypt === undefined ? undefined : await import("./wrappers/encrypt.ts");
  const encryption = encrypt === undefined ? undefined : checkEncryptOptions(
    encrypt.parseEncryptOptions,
    rawEncrypt as EncryptOptions,
    indexes,
    search,
    name,
  );
  const validated = await validateOptions(
    plugin,
    rawOptions,
    `Cannot open store "${name}" (plugin "${plugin.name}")`,
  );
  // Read when the plugin asks for it (a caller may give it as a getter, itself lazy).
  let home: string | undefined;
  const onWarning = options.onWarning;
  const onIndexBuild = options.onIndexBuild;
  // A config file's options as written go along: requireStoreFile checks those for `$HOME`.
  const driver = await openDriver(
    plugin,
    name,
    baseDir,
    () =>
      plugin.open(
        validated,
        withWritten<PluginContext>({
          storeName: name,
          clock: options.clock ?? systemClock,
          // Read $FLOWSTATE_HOME only when a plugin needs the home (a memory store does not).
          get home() {
            return home ??= options.home ?? defaultHome();
          },
          baseDir,
          mustExist: options.mustExist ?? false,
          ...(options.verify ? { verify: true } : {}),
          ...(options.signal ? { signal: options.signal } : {}),
          // Only with a handler, so that a plugin can tell nobody listens (and skip the work).
          ...(onWarning
            ? {
              warn: ({ code, message }) => warnGuarded(onWarning, { code, message, store: name }),
            }
            : {}),
        }, writtenOf(spec)),
      ),
  );
  await checkDriver(driver, `Cannot open store "${name}": plugin "${plugin.name}"'s open()`);
  let prepared: PreparedIndexes | undefined;
  const native = driver.capabilities ?? {};
  if (
    driver.prepareIndexes &&
    // An `indexes` option, even an empty one, is the whole declaration: the driver drops
    // native indexes (and search) no longer in it. Without one, nothing is touched.
    (((indexes.length > 0 || rawIndexes !== undefined) && native.indexes) ||
      (search !== undefined && native.search))
  ) {
    try {
      prepared = await driver.prepareIndexes({
        indexes,
        search,
        progress: (message) =>
          warnGuarded(onWarning, { code: "INDEX_BUILD", message, store: name }),
        ...(onIndexBuild ? { onBuild: (event) => onIndexBuild({ ...event, store: name }) } : {}),
      });
    } catch (err) {
      await Promise.resolve(driver.close()).catch(() => {});
      throw err;
    }
  }
  const store = wrapDriver(driver, {
    name,
    plugin: plugin.name,
    clock: options.clock,
    indexes,
    search,
    prepared,
    changes,
  });
  try {
    // Index entries the core keeps for a driver without native indexes: built (resuming an
    // interrupted build) before the store is handed out; dropped when no longer declared.
    await prepareCoreIndexes(
      store,
      rawIndexes !== undefined,
      (message) => warnGuarded(onWarning, { code: "INDEX_BUILD", message, store: name }),
      undefined,
      onIndexBuild ? (event) => onIndexBuild({ ...event, store: name }) : undefined,
    );
    if (encryption === undefined || encrypt === undefined) return store;
    return await encrypt.encrypted(store, rawEncrypt as EncryptOptions);
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
}

/** The methods every driver has (the rest are optional: the core supplies them). */
const DRIVER_METHODS = ["get", "list", "commit", "close"] as const;

/**
 * Check what a plugin's `open()` returned before the core uses it: a plugin
 * author's mistake (a forgotten `return`, a method misnamed) is reported at
 * once, naming the plugin and what is missing, instead of as a `TypeError`
 * from deep inside the first call. A driver that fails the check is closed.
 */
async function checkDriver(driver: unknown, what: string): Promise<void> {
  const contract =
    "a StoreDriver (see @flowstate/core/plugin): an object with a location string and get, list, commit and close methods";
  if (typeof driver !== "object" || driver === null) {
    throw new TypeError(
      `${what} returned ${driver === null ? "null" : typeof driver}; it must return ${contract}`,
    );
  }
  const d = driver as Record<string, unknown>;
  const missing: string[] = DRIVER_METHODS.filter((m) => typeof d[m] !== "function")
    .map((m) => `${m}()`);
  if (typeof d.location !== "string") missing.unshift("location");
  // A misspelt capability (`multiProces`) would be ignored, and the claim it meant not made.
  const claims = d.capabilities;
  const unknown = typeof claims === "object" && claims !== null
    ? Object.keys(claims).filter((c) => !CAPABILITY_NAMES.includes(c))
    : [];
  const listing = missing.length === 0 ? listingShape(d) : undefined;
  if (missing.length === 0 && unknown.length === 0 && listing === undefined) return;
  if (typeof d.close === "function") {
    await Promise.resolve((d.close as () => unknown).call(driver)).catch(() => {});
  }
  if (missing.length > 0) {
    throw new TypeError(
      `${what} returned a driver without ${missing.join(", ")}; it must return ${contract}`,
    );
  }
  if (listing !== undefined) {
    throw new TypeError(
      `${what} returned a driver whose list() returns ${listing}; list() must return an ` +
        "iterable or async iterable of RawEntry (make it `async *list` and yield the entries, or " +
        "return the array itself)",
    );
  }
  throw new TypeError(
    `${what} returned a driver with unknown capability ${JSON.stringify(unknown[0])}${
      didYouMean(unknown[0], CAPABILITY_NAMES)
    }; the capabilities are ${CAPABILITY_NAMES.join(", ")}`,
  );
}

/**
 * What `driver.list()` returns when that is not an iterable or async iterable
 * (`"a Promise"` for an `async list()`, the natural slip of a server-backed
 * driver), else `undefined`. The listing (of the internal space, at most one
 * entry) is only looked at, never iterated: a generator has not started.
 */
function listingShape(driver: Record<string, unknown>): string | undefined {
  let listing: unknown;
  try {
    listing = (driver.list as (range: object, now: number) => unknown).call(
      driver,
      { prefix: [INTERNAL], limit: 1, batchSize: 1 },
      0,
    );
  } catch {
    return undefined; // Its first real use reports what is wrong.
  }
  if (typeof listing === "object" && listing !== null) {
    if (Symbol.asyncIterator in listing || Symbol.iterator in listing) return undefined;
    if (typeof (listing as { then?: unknown }).then === "function") {
      (listing as Promise<unknown>).then(undefined, () => {}); // never an unhandled rejection
      return "a Promise";
    }
  }
  return listing === null ? "null" : typeof listing;
}

/**
 * Check a store's `encrypt` option before anything is opened: the keys'
 * format, and that every declared index and search field is on a plaintext
 * path (a sealed field cannot be indexed).
 */
function checkEncryptOptions(
  parseEncryptOptions: (raw: EncryptOptions, what: string) => ParsedEncryptOptions,
  raw: EncryptOptions,
  indexes: IndexSpec[],
  search: SearchSpec | undefined,
  name: string,
): ParsedEncryptOptions {
  const what = `Cannot open store "${name}"`;
  const parsed = parseEncryptOptions(raw, what);
  const plain = (path: readonly string[]) =>
    parsed.plaintext.some((p) => p.length <= path.length && p.every((s, i) => s === path[i]));
  const fail = (path: (string | number)[], message: string): never => {
    throw new ConfigError(`${what}: ${path.join(".")}: ${message}`, {
      issues: [{ path, message }],
    });
  };
  indexes.forEach((index, i) => {
    if (!plain(index.path)) {
      fail(
        ["indexes", i],
        `the index is on "${index.path.join(".")}", which is sealed (the store is encrypted); ` +
          `add it to encrypt.plaintext, or remove the index`,
      );
    }
  });
  if (search !== undefined) {
    if (search.fields === null) {
      fail(
        ["search"],
        "search indexes every field, and the store is encrypted; list fields that are in encrypt.plaintext",
      );
    }
    for (const field of search.fields ?? []) {
      if (!plain(field)) {
        fail(
          ["search", "fields"],
          `search field "${field.join(".")}" is sealed (the store is encrypted); ` +
            `add it to encrypt.plaintext, or remove it`,
        );
      }
    }
  }
  return parsed;
}

/** Validate a store's `indexes` and `search`: a {@linkcode ConfigError} at the option's path. */
function checkIndexOptions(
  indexes: unknown,
  search: unknown,
  what: string,
): { indexes: IndexSpec[]; search: SearchSpec | undefined } {
  let option = "indexes";
  try {
    const specs = normalizeIndexes(indexes, what);
    option = "search";
    return { indexes: specs, search: normalizeSearch(search, what) };
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    throw new ConfigError(err.message, {
      issues: [{ message: err.message.replace(`${what}: `, ""), path: [option] }],
    });
  }
}

/**
 * Check options against a plugin's (or job's) schema: the value, or every
 * problem with its path (`["path"]` for the option `path`; an unknown option
 * is a problem at its own name, with a suggestion).
 */
export async function checkOptions<O>(
  definition: { optionsSchema: OptionsSchema<O> },
  raw: unknown,
): Promise<{ ok: true; value: O } | { ok: false; issues: Problem[] }> {
  const result = await definition.optionsSchema["~standard"].validate(raw);
  if (!result.issues) return { ok: true, value: result.value };
  const known = knownOptions(await realSchema(definition.optionsSchema));
  const issues: Problem[] = [];
  for (const issue of result.issues) {
    const path = (issue.path ?? []).map((p) =>
      String(typeof p === "object" && p !== null ? p.key : p)
    );
    // zod reports unknown keys as one issue with the names in `keys`.
    const keys = (issue as { code?: unknown; keys?: unknown }).code === "unrecognized_keys"
      ? (issue as { keys?: unknown }).keys
      : undefined;
    if (Array.isArray(keys) && keys.every((k) => typeof k === "string")) {
      for (const key of keys) {
        issues.push({
          path: [...path, key],
          message: `unknown option "${key}"${known ? didYouMean(key, known) : ""}`,
        });
      }
    } else if (path.length > 0 && / received undefined$/.test(issue.message)) {
      // zod's words for a required option left out.
      issues.push({ path, message: "missing (it is required)" });
    } else if (/^Too small: expected string to have >=1 characters$/.test(issue.message)) {
      issues.push({ path, message: "must not be empty" });
    } else {
      issues.push({ path, message: issue.message });
    }
  }
  return { ok: false, issues };
}

/**
 * Validate options against a plugin's (or job's) schema; a {@linkcode ConfigError}
 * whose issues name each bad option, and whose message starts with `action`
 * (`Cannot open store "main" (plugin "sqlite")`) and ends with the expected shape.
 */
export async function validateOptions<O>(
  definition: { name: string; optionsSchema: OptionsSchema<O> },
  raw: unknown,
  action: string,
): Promise<O> {
  let checked: Awaited<ReturnType<typeof checkOptions<O>>>;
  try {
    checked = await checkOptions(definition, raw);
  } catch (err) {
    // A schema reports a bad option as an issue; one that throws (a refinement reading a field
    // that is not there) is the module's bug, named as such and placed in the config.
    const message = `${definition.name}'s optionsSchema threw while checking the options: ${
      messageOf(err)
    } (a schema must report a bad option as an issue, not throw)`;
    throw new ConfigError(`${action}: ${message}`, {
      cause: err,
      issues: [{ path: [], message }],
    });
  }
  if (checked.ok) return checked.value;
  const text = checked.issues.map((issue) =>
    issue.message.startsWith("unknown option ") || issue.path.length === 0
      ? issue.message
      : `option "${issue.path.join(".")}": ${issue.message}`
  );
  const shape = await describeShape(await realSchema(definition.optionsSchema));
  throw new ConfigError(
    `${action}: ${text.join("; ")}${shape ? `. Expected options: ${shape}` : ""}`,
    { issues: checked.issues },
  );
}

function knownOptions(schema: unknown): string[] | undefined {
  const shape = (schema as { shape?: Record<string, unknown> }).shape;
  return shape && typeof shape === "object" ? Object.keys(shape) : undefined;
}

interface JsonSchemaNode {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchemaNode[];
  oneOf?: JsonSchemaNode[];
  properties?: Record<string, JsonSchemaNode>;
  required?: string[];
  items?: JsonSchemaNode;
}

function renderSchema(node: JsonSchemaNode | undefined, depth = 0): string {
  if (!node || depth > 3) return "unknown";
  if (node.enum) return node.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (node.const !== undefined) return JSON.stringify(node.const);
  const alts = node.anyOf ?? node.oneOf;
  if (alts) return alts.map((a) => renderSchema(a, depth + 1)).join(" | ");
  if (node.type === "object" && node.properties) {
    const required = new Set(node.required ?? []);
    const props = Object.entries(node.properties).map(([k, v]) =>
      `${k}${required.has(k) ? "" : "?"}: ${renderSchema(v, depth + 1)}`
    );
    return `{ ${props.join(", ")} }`;
  }
  if (node.type === "array") return `${renderSchema(node.items, depth + 1)}[]`;
  if (Array.isArray(node.type)) return node.type.join(" | ");
  return node.type ?? "unknown";
}

/**
 * A one-line description of a zod schema's shape, or `undefined` for other
 * schema kinds. (zod is imported here, to describe a problem: not on the way
 * of valid options.)
 */
export async function describeShape(schema: unknown): Promise<string | undefined> {
  if (typeof schema !== "object" || schema === null || !("_zod" in schema)) return undefined;
  const { z } = await import("zod");
  try {
    return renderSchema(
      z.toJSONSchema(schema as import("zod").ZodType, {
        unrepresentable: "any",
        io: "input",
      }) as JsonSchemaNode,
    );
  } catch {
    return undefined;
  }
}
