/**
 * Defining a plugin: `definePlugin()` and the types a plugin module needs.
 * A leaf below the loader, so the built-in plugins import this and the loader
 * can import them without a cycle.
 *
 * @module
 */
import { dirname } from "./_path.ts";
import { writtenOf } from "./_written.ts";
import { ConfigError, StoreMissingError } from "./errors.ts";
import type { StoreDriver } from "./store/driver.ts";
import type { Clock } from "./store/types.ts";
import type { WarningCode } from "./log.ts";

/**
 * One problem reported by an options schema.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { SchemaIssue } from "@flowstate/core/plugin";
 * import { z } from "zod";
 *
 * const result = z.strictObject({ path: z.string() })["~standard"].validate({ path: 1 });
 * const issues: readonly SchemaIssue[] = "issues" in result ? result.issues ?? [] : [];
 * assert.deepEqual(issues.map((i) => i.path), [["path"]]);
 * ```
 */
export interface SchemaIssue {
  /** What is wrong. */
  readonly message: string;
  /** Where, as path segments. */
  readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }>;
}

/**
 * The result of validating options.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { OptionsSchema, SchemaResult } from "@flowstate/core/plugin";
 *
 * // A hand-written Standard Schema, without zod.
 * const port: OptionsSchema<{ port: number }> = {
 *   "~standard": {
 *     version: 1,
 *     vendor: "example",
 *     validate(value): SchemaResult<{ port: number }> {
 *       const port = (value as { port?: unknown })?.port ?? 6379;
 *       return typeof port === "number"
 *         ? { value: { port } }
 *         : { issues: [{ message: "must be a number", path: ["port"] }] };
 *     },
 *   },
 * };
 * assert.deepEqual(await port["~standard"].validate({}), { value: { port: 6379 } });
 * ```
 */
export type SchemaResult<O> =
  | { readonly value: O; readonly issues?: undefined }
  | { readonly issues: ReadonlyArray<SchemaIssue> };

/**
 * Any schema that implements Standard Schema v1 (zod, valibot, arktype…).
 * Plugins and jobs use it to validate their options.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { OptionsSchema } from "@flowstate/core/plugin";
 * import { z } from "zod";
 *
 * // A zod schema is a Standard Schema: it is an OptionsSchema as it is.
 * const schema: OptionsSchema<{ path: string }> = z.strictObject({ path: z.string() });
 * const result = await schema["~standard"].validate({ path: "state.db" });
 * assert.deepEqual(result, { value: { path: "state.db" } });
 * ```
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
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ParsingSchema } from "@flowstate/core/plugin";
 * import { z } from "zod";
 *
 * const options: ParsingSchema<{ path: string; durable: boolean }> = z.strictObject({
 *   path: z.string(),
 *   durable: z.boolean().default(true),
 * });
 * assert.deepEqual(options.parse({ path: "a.db" }), { path: "a.db", durable: true });
 * assert.equal(options.safeParse({}).success, false);
 * ```
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

/**
 * What `open()` receives besides the options.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { definePlugin, openStore, type PluginContext } from "@flowstate/core";
 * import { MemoryDriver } from "@flowstate/core/plugins/memory";
 * import { z } from "zod";
 *
 * let seen: PluginContext | undefined;
 * const plugin = definePlugin({
 *   name: "spy",
 *   optionsSchema: z.strictObject({}),
 *   open(_options, context) {
 *     seen = context;
 *     return new MemoryDriver();
 *   },
 * });
 * await using _store = await openStore({ plugin }, { name: "main", home: "/tmp/flowstate-home" });
 * assert.equal(seen?.storeName, "main");
 * assert.equal(seen?.home, "/tmp/flowstate-home");
 * ```
 */
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
  /**
   * The caller asks for the backend's own integrity check (`flowstate stores
   * repair`): a plugin that has one runs it while opening (it may be slow,
   * reading the whole store) and throws a {@linkcode StoreCorruptError} when it
   * fails. Others ignore it.
   */
  verify?: boolean;
  /**
   * Aborted when the caller gives up on the open (a runtime closing while the
   * store opens, after Ctrl-C): an open that can wait long (a network
   * connection) stops, releases what it holds and throws. Absent: nobody
   * gives up.
   */
  signal?: AbortSignal;
  /**
   * Report a {@linkcode Warning}: the core adds the store's name and hands it
   * to the caller's `onWarning`. A plugin never prints: it warns here. Absent
   * when the caller gave no handler (nobody listens), so call it as
   * `context.warn?.({ code, message })`.
   */
  warn?: (warning: { code: WarningCode; message: string }) => void;
}

/**
 * What a plugin module declares.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { definePlugin, openStore, type PluginDefinition } from "@flowstate/core";
 * import { MemoryDriver } from "@flowstate/core/plugins/memory";
 * import { z } from "zod";
 *
 * const definition: PluginDefinition<{ label: string }> = {
 *   name: "labelled",
 *   description: "a memory store with a label",
 *   optionsSchema: z.strictObject({ label: z.string().default("none") }),
 *   open: () => new MemoryDriver(),
 * };
 * await using store = await openStore({ plugin: definePlugin(definition), label: "x" });
 * assert.equal(store.plugin, "labelled");
 * ```
 */
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
 * For a plugin that keeps a store in a file: when `path` is a directory, a
 * FIFO, a device, a socket or a loop of symbolic links, or a folder on its way
 * is a file, or it holds a `~` or `$NAME` part (which no shell expands here), throw a
 * {@linkcode ConfigError} about `option`
 * (the option that named it, default `"path"`); when `context.mustExist` is set and `path` does not
 * exist, throw {@linkcode StoreMissingError} (before anything is created).
 * Otherwise do nothing.
 *
 * @example
 * ```ts
 * import { requireStoreFile, StoreMissingError } from "@flowstate/core/plugin";
 * import { ConfigError } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * const context = { storeName: "main", mustExist: true };
 * await assert.rejects(() => requireStoreFile("/nonexistent/main.json", context), StoreMissingError);
 * await requireStoreFile("/nonexistent/main.json", { storeName: "main" }); // may be created
 * await assert.rejects(() => requireStoreFile(Deno.cwd(), { storeName: "main" }), ConfigError);
 * ```
 */
export async function requireStoreFile(
  path: string,
  context: Pick<PluginContext, "storeName" | "mustExist">,
  option = "path",
): Promise<void> {
  // `~/state.db` or `$HOME/state.db` would make a folder named `~` or `$HOME` (one that is
  // there already is a real folder of that name).
  // In a config file, what was written is checked (`${env.DIR}` whose value holds `$x` is no
  // unexpanded `$x`); from a program, the value given.
  const written = writtenOf(context)?.[option];
  const unexpanded = await unexpandedPart(path, typeof written === "string" ? written : path);
  if (unexpanded !== undefined) {
    const name = unexpanded === "~" ? "HOME" : unexpanded.slice(1);
    const message = `Cannot open store "${context.storeName}": ${option} holds ` +
      `"${unexpanded}", which nothing expands here (no shell reads the config): write ` +
      `\${env.${name}} for the value of that environment variable`;
    throw new ConfigError(message, { issues: [{ path: [option], message }] });
  }
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.FilesystemLoop) {
      const message = `Cannot open store "${context.storeName}": ${path} is a loop of symbolic ` +
        `links: point "${option}" at a file`;
      throw new ConfigError(message, { issues: [{ path: [option], message }] });
    }
    if (err instanceof Deno.errors.NotADirectory) {
      // A folder on the way is a file: mkdir would say only "File exists".
      let file = dirname(path);
      while (!(await isFile(file)) && dirname(file) !== file) file = dirname(file);
      const message = `Cannot open store "${context.storeName}": ` + (
        await isFile(file)
          ? `${file} is a file, not a folder, so it cannot hold ${path}`
          : `${path}: ${err.message}`
      ) + `: point "${option}" elsewhere, or move the file away`;
      throw new ConfigError(message, { issues: [{ path: [option], message }] });
    }
    if (!context.mustExist) return; // the plugin's open meets (and words) whatever this is
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    throw new StoreMissingError(
      `Store "${context.storeName}" does not exist yet: there is no file at ${path}`,
      { store: context.storeName, address: path },
    );
  }
  if (info.isDirectory) {
    const message = `Cannot open store "${context.storeName}": ${path} is a directory, not a ` +
      `store file: point "${option}" at a file (one inside it, say)`;
    throw new ConfigError(message, { issues: [{ path: [option], message }] });
  }
  if (!info.isFile) {
    // A FIFO would block the open forever; a device or a socket is no store either.
    const kind = info.isFifo ? "a FIFO (named pipe)" : info.isSocket ? "a socket" : "a device";
    const message = `Cannot open store "${context.storeName}": ${path} is ${kind}, not a store ` +
      `file: point "${option}" at a regular file`;
    throw new ConfigError(message, { issues: [{ path: [option], message }] });
  }
}

/**
 * The first `~` or `$NAME` part of `path` that does not exist (yet), if any, of those
 * `written` (the text the path came from) holds.
 */
async function unexpandedPart(path: string, written: string): Promise<string | undefined> {
  const shellParts = new Set(written.split(/[\\/]/).filter((p) => /^(~|\$[A-Za-z_]\w*)$/.test(p)));
  if (shellParts.size === 0) return undefined;
  const parts = path.split(/[\\/]/);
  for (let i = 0; i < parts.length; i++) {
    if (!shellParts.has(parts[i])) continue;
    try {
      await Deno.stat(parts.slice(0, i + 1).join("/") || "/");
    } catch {
      return parts[i];
    }
  }
  return undefined;
}

/** Whether `path` is a regular file (false when it is anything else, or cannot be read). */
async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
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

/**
 * A plugin made by {@linkcode definePlugin}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, type Plugin } from "@flowstate/core";
 * import memory from "@flowstate/core/plugins/memory";
 *
 * const plugin: Plugin<{ snapshot?: string }> = memory;
 * assert.equal(plugin.kind, "flowstate.plugin");
 * await using store = await openStore({ plugin });
 * assert.equal(store.plugin, "memory");
 * ```
 */
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
