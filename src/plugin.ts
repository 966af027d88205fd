/**
 * Plugins: `definePlugin()`, the loader (built-in name, file path, or any
 * specifier Deno can import) and `openStore()`.
 *
 * @module
 */
import { resolve } from "node:path";
import { importDefault, importFailure, moduleUrl } from "./loader.ts";
import { z } from "zod";
import { ConfigError, type Problem, StoreMissingError } from "./errors.ts";
import { didYouMean } from "./_suggest.ts";
import type { StoreDriver } from "./store/driver.ts";
import { wrapDriver } from "./store/store.ts";
import type { Clock, Store } from "./store/types.ts";
import { systemClock } from "./clock.ts";

/** One problem reported by an options schema. */
export interface SchemaIssue {
  /** What is wrong. */
  readonly message: string;
  /** Where, as path segments. */
  readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }>;
}

/** The result of validating options. */
export type SchemaResult<O> =
  | { readonly value: O; readonly issues?: undefined }
  | { readonly issues: ReadonlyArray<SchemaIssue> };

/**
 * Any schema that implements Standard Schema v1 (zod, valibot, arktype…).
 * Plugins and jobs use it to validate their options.
 */
export interface OptionsSchema<O> {
  /** The Standard Schema interface. */
  readonly "~standard": {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => SchemaResult<O> | Promise<SchemaResult<O>>;
    readonly types?: { readonly input: unknown; readonly output: O } | undefined;
  };
}

/**
 * An options schema that also validates synchronously, as zod schemas do:
 * the type the built-in plugins export their option schemas as.
 */
export interface ParsingSchema<O> extends OptionsSchema<O> {
  /** Validate `value` and return the options (defaults filled in); throws if invalid. */
  parse(value: unknown): O;
  /** Validate `value` without throwing. */
  safeParse(
    value: unknown,
  ):
    | { readonly success: true; readonly data: O }
    | { readonly success: false; readonly error: { readonly issues: ReadonlyArray<SchemaIssue> } };
}

/** What `open()` receives besides the options. */
export interface PluginContext {
  /** The name of the store being opened. */
  storeName: string;
  /** The clock the store uses for expiry. */
  clock: Clock;
  /** Flowstate's home directory: where default files go. */
  home: string;
  /** The directory relative paths in options are resolved against. */
  baseDir: string;
  /**
   * The caller only reads (the read-only CLI commands): when the store does
   * not exist yet, `open` creates nothing (no file, directory or table) and
   * throws {@linkcode StoreMissingError}. A store that exists opens as usual.
   */
  mustExist?: boolean;
}

/** What a plugin module declares. */
export interface PluginDefinition<O> {
  /** Short name (`sqlite`, `redis`…). */
  name: string;
  /** One line for `flowstate stores` and docs. */
  description?: string;
  /** Validates the store's options before `open` sees them. */
  optionsSchema: OptionsSchema<O>;
  /** Open a backend with validated options. */
  open(options: O, context: PluginContext): Promise<StoreDriver> | StoreDriver;
}

/**
 * For a plugin that keeps a store in a file: when `context.mustExist` is set
 * and `path` does not exist, throw {@linkcode StoreMissingError} (before
 * anything is created). Otherwise do nothing.
 *
 * @example
 * ```ts
 * import { requireStoreFile, StoreMissingError } from "@flowstate/core/plugin";
 * import assert from "node:assert/strict";
 * const context = { storeName: "main", mustExist: true };
 * await assert.rejects(() => requireStoreFile("/nonexistent/main.json", context), StoreMissingError);
 * await requireStoreFile("/nonexistent/main.json", { storeName: "main" }); // may be created
 * ```
 */
export async function requireStoreFile(
  path: string,
  context: Pick<PluginContext, "storeName" | "mustExist">,
): Promise<void> {
  if (!context.mustExist) return;
  try {
    await Deno.stat(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    throw new StoreMissingError(
      `Store "${context.storeName}" does not exist yet: there is no file at ${path}`,
      { store: context.storeName, address: path },
    );
  }
}

/** Query parameters {@linkcode redactUrl} drops: their names mention a secret. */
const SECRET_PARAM = /pass|secret|key|token|auth|credential/i;

/**
 * A connection URL fit to show as a store's `location`, in messages and in
 * logs: without the password, and without any query parameter whose name
 * mentions a secret (`password`, `sslkey`, `token`, `auth`…). The user name,
 * host, port, path and other parameters stay, so a person can still tell
 * which server and database it is. With `defaultPort`, a URL without a port
 * shows that one (`db.internal:5432`). A string that is not a URL with a host
 * (`user:pw@host` without a scheme parses as an opaque URL) becomes
 * `"(unparsable URL)"`: it may hold a password in a shape we cannot find.
 *
 * Use it for {@linkcode StoreDriver.location} and for every message that
 * names the server; a driver's own errors may quote the URL too, so replace
 * it there as well (`message.replaceAll(url, redactUrl(url))`).
 *
 * @example
 * ```ts
 * import { redactUrl } from "@flowstate/core/plugin";
 * import assert from "node:assert/strict";
 * assert.equal(
 *   redactUrl("redis://app:s3cret@cache.internal/0?tls=true&authToken=x"),
 *   "redis://app@cache.internal/0?tls=true",
 * );
 * assert.equal(
 *   redactUrl("postgres://app:pw@db.internal/app", { defaultPort: 5432 }),
 *   "postgres://app@db.internal:5432/app",
 * );
 * assert.equal(redactUrl("app:pw@db.internal"), "(unparsable URL)");
 * assert.equal(redactUrl("not a url"), "(unparsable URL)");
 * ```
 */
export function redactUrl(url: string, options: { defaultPort?: number | string } = {}): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "(unparsable URL)";
  }
  if (parsed.hostname === "") return "(unparsable URL)";
  const user = parsed.username === "" ? "" : `${parsed.username}@`;
  const port = parsed.port ||
    (options.defaultPort === undefined ? "" : String(options.defaultPort));
  const host = port === "" ? parsed.hostname : `${parsed.hostname}:${port}`;
  const params = [...parsed.searchParams].filter(([name]) => !SECRET_PARAM.test(name));
  const query = params.length === 0 ? "" : `?${new URLSearchParams(params)}`;
  return `${parsed.protocol}//${user}${host}${parsed.pathname}${query}`;
}

/** A plugin made by {@linkcode definePlugin}. */
export interface Plugin<O = unknown> extends PluginDefinition<O> {
  /** Marks the object as a Flowstate plugin. */
  readonly kind: "flowstate.plugin";
}

/**
 * Define a storage plugin. A plugin module's default export is the result.
 *
 * @example
 * ```ts
 * import { definePlugin, openStore } from "@flowstate/core";
 * import { z } from "zod";
 * import assert from "node:assert/strict";
 *
 * const nothing = definePlugin({
 *   name: "nothing",
 *   optionsSchema: z.strictObject({}),
 *   open: () => ({
 *     location: "nowhere",
 *     get: () => null,
 *     list: () => [],
 *     commit: () => ({ ok: true }),
 *     close: () => {},
 *   }),
 * });
 * const store = await openStore({ plugin: nothing });
 * assert.equal((await store.get(["a"])), null);
 * await store.close();
 * ```
 */
export function definePlugin<O>(definition: PluginDefinition<O>): Plugin<O> {
  if (typeof definition?.name !== "string" || definition.name === "") {
    throw new TypeError("Cannot define plugin: name must be a non-empty string");
  }
  if (typeof definition.open !== "function") {
    throw new TypeError(`Cannot define plugin "${definition.name}": open must be a function`);
  }
  if (typeof definition.optionsSchema?.["~standard"]?.validate !== "function") {
    throw new TypeError(
      `Cannot define plugin "${definition.name}": optionsSchema must be a Standard Schema (for example a zod schema)`,
    );
  }
  return Object.freeze({ ...definition, kind: "flowstate.plugin" as const });
}

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
  const fix = `use a built-in (${
    builtinPluginNames().join(", ")
  }), a file path starting with ./ or /, or a specifier like npm:name or jsr:@scope/name`;
  const unknown = `unknown plugin "${specifier}"${didYouMean(specifier, builtinPluginNames())}`;
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
  let exported: unknown;
  try {
    exported = await importDefault(url);
  } catch (err) {
    const message = `Cannot load plugin "${specifier}"${forStore}: ${
      importFailure(err)
    }. Check the path or specifier (resolved to ${url})`;
    throw new ConfigError(message, { cause: err, issues: [{ path: ["plugin"], message }] });
  }
  if (!isPlugin(exported)) {
    const message =
      `Cannot load plugin "${specifier}"${forStore}: its default export is not a plugin; export default definePlugin({ name, optionsSchema, open })`;
    throw new ConfigError(message, { issues: [{ path: ["plugin"], message }] });
  }
  return exported;
}

/** A store's configuration: the plugin plus its options. */
export interface StoreSpec {
  /** A built-in name, a module specifier or a plugin object. */
  plugin: string | Plugin<unknown>;
  /** Plugin options. */
  [option: string]: unknown;
}

/** Options for {@linkcode openStore}. */
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
   * Only open a store that exists: see {@linkcode PluginContext.mustExist}
   * (default `false`: a missing store is created).
   */
  mustExist?: boolean;
}

/** Flowstate's home: `$FLOWSTATE_HOME`, or `.flowstate` under the working directory. */
export function defaultHome(): string {
  const fromEnv = Deno.env.get("FLOWSTATE_HOME");
  return resolve(fromEnv && fromEnv !== "" ? fromEnv : ".flowstate");
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
export async function openStore(spec: StoreSpec, options: OpenStoreOptions = {}): Promise<Store> {
  if (typeof spec !== "object" || spec === null || spec.plugin === undefined) {
    throw new ConfigError(
      `Cannot open store${
        options.name ? ` "${options.name}"` : ""
      }: the spec needs a plugin, like { plugin: "sqlite", path: "state.db" }`,
    );
  }
  const baseDir = options.baseDir ?? Deno.cwd();
  const { plugin: pluginSpec, ...rawOptions } = spec;
  const plugin = await loadPlugin(pluginSpec as string | Plugin, {
    baseDir,
    storeName: options.name,
  });
  const name = options.name ?? plugin.name;
  const validated = await validateOptions(
    plugin,
    rawOptions,
    `Cannot open store "${name}" (plugin "${plugin.name}")`,
  );
  let home = options.home;
  const driver = await plugin.open(validated, {
    storeName: name,
    clock: options.clock ?? systemClock,
    // Read $FLOWSTATE_HOME only when a plugin needs the home (a memory store does not).
    get home() {
      return home ??= defaultHome();
    },
    baseDir,
    mustExist: options.mustExist ?? false,
  });
  return wrapDriver(driver, { name, plugin: plugin.name, clock: options.clock });
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
  const known = knownOptions(definition.optionsSchema);
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
  const checked = await checkOptions(definition, raw);
  if (checked.ok) return checked.value;
  const text = checked.issues.map((issue) =>
    issue.message.startsWith("unknown option ") || issue.path.length === 0
      ? issue.message
      : `option "${issue.path.join(".")}": ${issue.message}`
  );
  const shape = describeShape(definition.optionsSchema);
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

/** A one-line description of a zod schema's shape, or `undefined` for other schema kinds. */
export function describeShape(schema: unknown): string | undefined {
  if (typeof schema !== "object" || schema === null || !("_zod" in schema)) return undefined;
  try {
    return renderSchema(
      z.toJSONSchema(schema as z.ZodType, {
        unrepresentable: "any",
        io: "input",
      }) as JsonSchemaNode,
    );
  } catch {
    return undefined;
  }
}
