/**
 * Every error Flowstate throws on purpose: a class with a stable
 * {@linkcode FlowstateError.code} and structured fields, so callers (and the
 * CLI, which maps errors to exit codes by class) never read a fact back out
 * of a message. Everything else is a built-in `TypeError` (bad argument) or
 * `RangeError` (argument out of range).
 *
 * | class | code | what |
 * |---|---|---|
 * | {@linkcode ConfigError} | `CONFIG_INVALID` | a config, plugin or job option is invalid |
 * | {@linkcode FlowValidationError} | `FLOW_INVALID` | a flow (or its inputs) is invalid |
 * | {@linkcode UnknownStoreError} | `STORE_UNKNOWN` | no store has that name |
 * | {@linkcode StoreCorruptError} | `STORE_CORRUPT` | a store's file is damaged or too new |
 * | {@linkcode StoreUnavailableError} | `STORE_UNAVAILABLE` | a backend cannot be reached |
 * | {@linkcode StoreOpenError} | `STORE_OPEN_FAILED` | a plugin's `open()` failed with an error of its own |
 * | {@linkcode StoreMissingError} | `STORE_MISSING` | a store opened only to read does not exist yet |
 * | {@linkcode StoreClosedError} | `STORE_CLOSED` | a store was used after it was closed |
 * | {@linkcode StoreReadOnlyError} | `STORE_READ_ONLY` | a write to a store whose files cannot be written |
 * | {@linkcode ConflictError} | `CONFLICT` | a write lost to concurrent writers |
 * | {@linkcode MigrationError} | `MIGRATION_FAILED` | a data migration failed or its lock is held |
 * | {@linkcode BackupError} | `BACKUP_FAILED` | a backup or restore cannot be done |
 * | {@linkcode DecryptionError} | `DECRYPTION_FAILED` | an encrypted store's value cannot be opened (wrong key, tampered) |
 * | {@linkcode AttemptOverError} | `ATTEMPT_OVER` | a node used its context after its attempt ended |
 * | {@linkcode FeedDisabledError} | `FEED_DISABLED` | a store's change feed was read, but it keeps none |
 * | `RunEndNotRecordedError` (`./records`) | `RUN_END_NOT_RECORDED` | a run's final commit failed on every try |
 *
 * This module is the ground floor: it imports nothing.
 *
 * @module
 */

/**
 * The stable codes of {@linkcode FlowstateError}s.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ErrorCode, FlowstateError, openStore } from "@flowstate/core";
 *
 * await using store = await openStore({ plugin: "memory" });
 * await store.close();
 * const code: ErrorCode | undefined = await store.get(["a"]).then(
 *   () => undefined,
 *   (err) => err instanceof FlowstateError ? err.code : undefined,
 * );
 * assert.equal(code, "STORE_CLOSED");
 * ```
 */
export type ErrorCode =
  | "CONFIG_INVALID"
  | "FLOW_INVALID"
  | "STORE_UNKNOWN"
  | "STORE_CORRUPT"
  | "STORE_UNAVAILABLE"
  | "STORE_OPEN_FAILED"
  | "STORE_MISSING"
  | "STORE_CLOSED"
  | "STORE_READ_ONLY"
  | "CONFLICT"
  | "MIGRATION_FAILED"
  | "BACKUP_FAILED"
  | "DECRYPTION_FAILED"
  | "ATTEMPT_OVER"
  | "RUN_END_NOT_RECORDED"
  | "RUN_NOT_OWNED"
  | "FEED_DISABLED"
  | "NOT_FOUND"
  | "RESUME_REFUSED";

/**
 * The base of every error Flowstate throws on purpose.
 *
 * @example
 * ```ts
 * import { ConfigError, FlowstateError } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * const err: unknown = new ConfigError("bad");
 * assert.ok(err instanceof FlowstateError);
 * assert.equal(err.code, "CONFIG_INVALID");
 * ```
 */
export abstract class FlowstateError extends Error {
  /** A stable code: what went wrong, for programs. */
  abstract readonly code: ErrorCode;
}

/**
 * The message of anything thrown: an `Error`'s message, else its text.
 *
 * @example
 * ```ts
 * import { messageOf } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * assert.equal(messageOf(new Error("boom")), "boom");
 * assert.equal(messageOf("plain"), "plain");
 * ```
 */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * A path into a document: `["nodes", 1, "needs", 0]`, `["stores", "main", "path"]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatPath, type ProblemPath } from "@flowstate/core";
 *
 * const path: ProblemPath = ["nodes", 1, "needs", 0];
 * assert.equal(formatPath(path), "nodes[1].needs[0]");
 * ```
 */
export type ProblemPath = (string | number)[];

/**
 * One thing wrong with a document (a flow, a config, options), and where.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatProblem, type Problem } from "@flowstate/core";
 *
 * const problem: Problem = { message: 'unknown node "bmp"', path: ["nodes", 1, "needs", 0], line: 9, column: 14 };
 * assert.equal(formatProblem(problem, "hello.flow.yaml"), 'hello.flow.yaml:9:14: nodes[1].needs[0]: unknown node "bmp"');
 * ```
 */
export interface Problem {
  /** What is wrong, without the position or path (`unknown node "bmp"`). */
  message: string;
  /** Where in the document; empty for the whole of it. */
  path: ProblemPath;
  /** 1-based line in the YAML source, when there is one. */
  line?: number;
  /** 1-based column in the YAML source, when there is one. */
  column?: number;
}

/**
 * A path as text: `nodes[1].needs[0]`, `inputs["my key"]`.
 *
 * @example
 * ```ts
 * import { formatPath } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * assert.equal(formatPath(["nodes", 1, "needs", 0]), "nodes[1].needs[0]");
 * assert.equal(formatPath(["inputs", "my key"]), 'inputs["my key"]');
 * ```
 */
export function formatPath(path: readonly (string | number)[]): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(segment)) out += out === "" ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/**
 * One problem as a line of text: `file:line:column: path: message`. Parts
 * that are unknown are left out; with a position but no file, the file is
 * `<source>`.
 *
 * @example
 * ```ts
 * import { formatProblem } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * const line = formatProblem({ message: "bad", path: ["home"], line: 1, column: 7 }, "flowstate.yaml");
 * assert.equal(line, "flowstate.yaml:1:7: home: bad");
 * ```
 */
export function formatProblem(problem: Problem, file?: string, source = "<source>"): string {
  const where = problem.line !== undefined
    ? `${file ?? source}:${problem.line}:${problem.column ?? 1}`
    : file;
  return [where, formatPath(problem.path), problem.message].filter((s) => s).join(": ");
}

/**
 * Details of a {@linkcode ConfigError}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ConfigError, type ConfigErrorOptions } from "@flowstate/core";
 *
 * const options: ConfigErrorOptions = {
 *   issues: [{ path: ["stores", "main", "path"], message: "must be a string" }],
 *   file: "flowstate.yaml",
 * };
 * const err = new ConfigError("flowstate.yaml: stores.main.path: must be a string", options);
 * assert.equal(err.issues.length, 1);
 * assert.equal(err.code, "CONFIG_INVALID");
 * ```
 */
export interface ConfigErrorOptions extends ErrorOptions {
  /** Every problem found, with its path (and position, in a file). */
  issues?: Problem[];
  /** The config file (as shown to the user), when there is one. */
  file?: string | null;
}

/**
 * A configuration (file, object, plugin or job options) is invalid.
 * {@linkcode ConfigError.issues} holds every problem with its path; the
 * message says where (file:line:column when there is a file), what, and how
 * to fix it, one problem per line.
 *
 * @example
 * ```ts
 * import { ConfigError } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * const err = ConfigError.fromIssues([
 *   { path: ["stores", "main", "plugin"], message: "expected a string", line: 3, column: 5 },
 * ], { file: "flowstate.yaml" });
 * assert.equal(err.message, "flowstate.yaml:3:5: stores.main.plugin: expected a string");
 * assert.deepEqual(err.path, ["stores", "main", "plugin"]);
 * ```
 */
export class ConfigError extends FlowstateError {
  /** `"CONFIG_INVALID"`. */
  readonly code = "CONFIG_INVALID" as const;
  /** Every problem found (one, for errors made from a message alone). */
  readonly issues: readonly Problem[];
  /** The config file, or `null`. */
  readonly file: string | null;

  /** Create the error. Without `issues`, the message is the only problem, at the root. */
  constructor(message: string, options: ConfigErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ConfigError";
    this.issues = Object.freeze([...(options.issues ?? [{ message, path: [] }])]);
    this.file = options.file ?? null;
  }

  /** The path of the first problem (empty for the whole config). */
  get path(): ProblemPath {
    return this.issues[0]?.path ?? [];
  }

  /**
   * The error for `issues`, its message one {@linkcode formatProblem} line
   * per issue, each after `prefix` (`Invalid config: `, say) when given.
   */
  static fromIssues(
    issues: Problem[],
    options: { file?: string | null; prefix?: string; cause?: unknown } = {},
  ): ConfigError {
    const lines = issues.map((p) =>
      `${options.prefix ?? ""}${formatProblem(p, options.file ?? undefined, "<config>")}`
    );
    return new ConfigError(lines.join("\n"), {
      issues,
      file: options.file ?? null,
      ...(options.cause === undefined ? {} : { cause: options.cause }),
    });
  }
}

/**
 * A flow is invalid (or, from `coerceInputs`, the inputs given to it are).
 * {@linkcode FlowValidationError.problems} holds every problem found; the
 * message lists them one per line as `file:line:column: path: message`.
 * An input's problems have the path `["inputs", name]`.
 *
 * @example
 * ```ts
 * import { FlowValidationError } from "@flowstate/core";
 * import { validateFlow } from "@flowstate/core/flow";
 * import assert from "node:assert/strict";
 * const error = (() => {
 *   try {
 *     validateFlow({ id: "hello", nodes: [{ id: "a", type: "log", needs: ["b"] }] });
 *   } catch (err) {
 *     return err;
 *   }
 * })();
 * assert.ok(error instanceof FlowValidationError);
 * assert.equal(error.code, "FLOW_INVALID");
 * assert.deepEqual(error.problems[0].path, ["nodes", 0, "needs", 0]);
 * ```
 */
export class FlowValidationError extends FlowstateError {
  /** `"FLOW_INVALID"`. */
  readonly code = "FLOW_INVALID" as const;
  /** Every problem found, in source order when positions are known. */
  readonly problems: Problem[];
  /** The flow file, when there is one. */
  readonly file?: string;
  /** Create the error; the message is built from `problems`. */
  constructor(problems: Problem[], file?: string, options?: ErrorOptions) {
    super(problems.map((p) => formatProblem(p, file, "<flow>")).join("\n"), options);
    this.name = "FlowValidationError";
    this.problems = problems;
    if (file !== undefined) this.file = file;
  }
}

/**
 * No store has this name.
 *
 * @example
 * ```ts
 * import { openRuntime, UnknownStoreError } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const err = await rt.store("mian").catch((e) => e);
 * assert.ok(err instanceof UnknownStoreError);
 * assert.equal(err.store, "mian");
 * assert.deepEqual(err.known, ["main"]);
 * ```
 */
export class UnknownStoreError extends FlowstateError {
  /** `"STORE_UNKNOWN"`. */
  readonly code = "STORE_UNKNOWN" as const;
  /** The name asked for. */
  readonly store: string;
  /** The configured stores. */
  readonly known: readonly string[];
  /** Create the error. */
  constructor(
    message: string,
    details: { store: string; known: readonly string[] },
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "UnknownStoreError";
    this.store = details.store;
    this.known = Object.freeze([...details.known]);
  }
}

/**
 * A write could not be applied because a version check failed and retrying
 * gave up. Store methods themselves report conflicts as a result
 * (`{ ok: false }`); this error is for helpers that promise a write.
 *
 * @example
 * ```ts
 * import { ConflictError } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * const err = new ConflictError("Cannot increment counter: 10 concurrent writers won");
 * assert.equal(err.code, "CONFLICT");
 * ```
 */
export class ConflictError extends FlowstateError {
  /** `"CONFLICT"`. */
  readonly code = "CONFLICT" as const;
  /** Create the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConflictError";
  }
}

/**
 * Why a store refused its file or table (see {@linkcode StoreCorruptError.reason}):
 * - `"damaged"`: it is Flowstate's, but cannot be read (cut short, garbled, a
 *   broken header); `flowstate stores repair` sets such a file aside;
 * - `"newer"`: a newer Flowstate (or plugin) wrote it; upgrade to open it;
 * - `"foreign"`: it is not a Flowstate store at all (another application's
 *   database or document); point the store elsewhere.
 *
 * @example
 * ```ts
 * import type { StoreCorruptReason } from "@flowstate/core";
 * const reason: StoreCorruptReason = "newer";
 * console.log(reason);
 * ```
 */
export type StoreCorruptReason = "damaged" | "newer" | "foreign";

/**
 * A store's file is damaged, was written by a newer Flowstate, or is not a
 * Flowstate store ({@linkcode StoreCorruptError.reason} says which). The file
 * is never overwritten; {@linkcode StoreCorruptError.movedTo} says where it
 * was set aside, if it was. Only a damaged file is ever set aside.
 *
 * @example
 * ```ts
 * import { StoreCorruptError } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * const err = new StoreCorruptError("Cannot open store \"main\": bad JSON", {
 *   path: "state.json",
 *   movedTo: "state.json.corrupt-20260101T000000Z",
 * });
 * assert.equal(err.code, "STORE_CORRUPT");
 * assert.equal(err.reason, "damaged");
 * assert.ok(err.movedTo?.endsWith("Z"));
 * ```
 */
export class StoreCorruptError extends FlowstateError {
  /** `"STORE_CORRUPT"`. */
  readonly code = "STORE_CORRUPT" as const;
  /** The damaged file (or, for a server's store, its location). */
  readonly path: string;
  /** Where the damaged file was moved, or `null` if it was left in place. */
  readonly movedTo: string | null;
  /** Damaged, newer or foreign (`"damaged"` unless the plugin says otherwise). */
  readonly reason: StoreCorruptReason;
  /** Create the error. */
  constructor(
    message: string,
    details: { path: string; movedTo?: string | null; reason?: StoreCorruptReason },
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "StoreCorruptError";
    this.path = details.path;
    this.movedTo = details.movedTo ?? null;
    this.reason = details.reason ?? "damaged";
  }
}

/**
 * A store's backend cannot be reached (a server that is down, refuses the
 * connection, or does not answer in time). Plugins throw it when opening or
 * using a store; the cause holds the backend's own error.
 *
 * {@linkcode StoreUnavailableError.transient} tells an outage that may end by
 * itself (the server is down, starting, restarting, out of connections: try
 * again later) from a refusal that will not (a wrong password, a database
 * that does not exist: fix the config). Long-running processes (`flowstate
 * worker`, `serve`, `daemon`) wait for a store that is transiently
 * unavailable and fail at once for any other.
 *
 * @example
 * ```ts
 * import { StoreUnavailableError } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * const err = new StoreUnavailableError(
 *   'Cannot open store "main": postgres at 127.0.0.1:1 refused the connection',
 *   { store: "main", address: "127.0.0.1:1" },
 * );
 * assert.equal(err.code, "STORE_UNAVAILABLE");
 * assert.equal(err.address, "127.0.0.1:1");
 * assert.equal(err.transient, true); // the default: an outage, worth trying again
 *
 * const refused = new StoreUnavailableError(
 *   'Cannot open store "main": PostgreSQL at db:5432 refused: password authentication failed',
 *   { store: "main", address: "db:5432", transient: false },
 * );
 * assert.equal(refused.transient, false); // trying again changes nothing: fix the config
 * ```
 */
export class StoreUnavailableError extends FlowstateError {
  /** `"STORE_UNAVAILABLE"`. */
  readonly code = "STORE_UNAVAILABLE" as const;
  /** The store's name. */
  readonly store: string;
  /** Where the backend was looked for (`host:port`, a socket), when known. */
  readonly address: string | null;
  /**
   * Whether trying again later may succeed (default `true`): the backend is
   * down, starting, restarting, out of connections or not answering in
   * time. `false` for a refusal that only a change of the config or the
   * server ends (a wrong password, a database that does not exist).
   */
  readonly transient: boolean;
  /** Create the error. */
  constructor(
    message: string,
    details: { store: string; address?: string | null; transient?: boolean },
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "StoreUnavailableError";
    this.store = details.store;
    this.address = details.address ?? null;
    this.transient = details.transient ?? true;
  }
}

/**
 * The {@linkcode StoreUnavailableError} that `err` is or was caused by
 * (through its `cause` chain), if it says the store may be reached by trying
 * again later ({@linkcode StoreUnavailableError.transient}); `undefined` for
 * any other error.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { StoreUnavailableError, transientUnavailable } from "@flowstate/core";
 *
 * const down = new StoreUnavailableError("cannot reach PostgreSQL", { store: "main" });
 * const wrapped = new Error("Cannot claim runs", { cause: down });
 * assert.equal(transientUnavailable(wrapped), down);
 * assert.equal(
 *   transientUnavailable(new StoreUnavailableError("bad password", { store: "main", transient: false })),
 *   undefined,
 * );
 * assert.equal(transientUnavailable(new Error("a bug")), undefined);
 * ```
 */
export function transientUnavailable(err: unknown): StoreUnavailableError | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 10; e = e.cause, depth++) {
    if (e instanceof StoreUnavailableError) return e.transient ? e : undefined;
  }
  return undefined;
}

/**
 * A storage plugin's `open()` failed with an error of its own (anything but
 * a {@linkcode FlowstateError}, or an error whose message already starts
 * with `Cannot open store "<name>"`, which pass through as they are). The
 * message names the store and its plugin, then the plugin's message (after
 * `file:line:column: stores.<name>:` where the store is declared, when it
 * comes from a config file); the cause is the plugin's error.
 *
 * @example
 * ```ts
 * import { definePlugin, openStore, StoreOpenError } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * const flaky = definePlugin({
 *   name: "flaky",
 *   optionsSchema: { "~standard": { version: 1, vendor: "x", validate: (value) => ({ value }) } },
 *   open() {
 *     throw new Error("the disk is on fire");
 *   },
 * });
 * const err = await openStore({ plugin: flaky }, { name: "main" }).catch((e) => e);
 * assert.ok(err instanceof StoreOpenError);
 * assert.equal(err.message, 'Cannot open store "main" (plugin "flaky"): the disk is on fire');
 * assert.equal(err.store, "main");
 * assert.equal((err.cause as Error).message, "the disk is on fire");
 * ```
 */
export class StoreOpenError extends FlowstateError {
  /** `"STORE_OPEN_FAILED"`. */
  readonly code = "STORE_OPEN_FAILED" as const;
  /** The store's name. */
  readonly store: string;
  /** The plugin's name. */
  readonly plugin: string;
  /** The config file that declares the store, or `null`. */
  readonly file: string | null;
  /** Create the error; `options.cause` is the plugin's error. */
  constructor(
    message: string,
    details: { store: string; plugin: string; file?: string | null },
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "StoreOpenError";
    this.store = details.store;
    this.plugin = details.plugin;
    this.file = details.file ?? null;
  }
}

/**
 * A store opened only to read (`mustExist`, as the read-only CLI commands
 * open theirs) does not exist yet: nothing was created to find that out.
 *
 * @example
 * ```ts
 * import { openStore, StoreMissingError } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * const dir = await Deno.makeTempDir();
 * await assert.rejects(
 *   () => openStore({ plugin: "sqlite", path: `${dir}/none/state.db` }, { mustExist: true }),
 *   (err) => err instanceof StoreMissingError && err.address === `${dir}/none/state.db`,
 * );
 * assert.deepEqual([...Deno.readDirSync(dir)], []); // nothing was created
 * await Deno.remove(dir);
 * ```
 */
export class StoreMissingError extends FlowstateError {
  /** `"STORE_MISSING"`. */
  readonly code = "STORE_MISSING" as const;
  /** The store's name. */
  readonly store: string;
  /** Where the store would be (a file path, a table). */
  readonly address: string;
  /** Create the error. */
  constructor(message: string, details: { store: string; address: string }) {
    super(message);
    this.name = "StoreMissingError";
    this.store = details.store;
    this.address = details.address;
  }
}

/**
 * A store was used after it was closed.
 *
 * @example
 * ```ts
 * import { openStore, StoreClosedError } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * const store = await openStore({ plugin: "memory" });
 * await store.close();
 * await assert.rejects(() => store.get(["a"]), StoreClosedError);
 * ```
 */
export class StoreClosedError extends FlowstateError {
  /** `"STORE_CLOSED"`. */
  readonly code = "STORE_CLOSED" as const;
  /** Create the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StoreClosedError";
  }
}

/**
 * A write to a store opened read-only, because its file (or directory) is on
 * a read-only file system or cannot be written by this process. Reads work;
 * every write throws this, naming the store and the place. Nothing was
 * written when it is thrown.
 *
 * @example
 * ```ts
 * import { StoreReadOnlyError } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * const err = new StoreReadOnlyError(
 *   'Cannot commit to store "main": /mnt/ro/state.json is on a read-only file system',
 *   { store: "main", path: "/mnt/ro/state.json" },
 * );
 * assert.equal(err.code, "STORE_READ_ONLY");
 * assert.equal(err.path, "/mnt/ro/state.json");
 * ```
 */
export class StoreReadOnlyError extends FlowstateError {
  /** `"STORE_READ_ONLY"`. */
  readonly code = "STORE_READ_ONLY" as const;
  /** The store's name. */
  readonly store: string;
  /** The file (or directory) that cannot be written. */
  readonly path: string;
  /** Create the error. */
  constructor(message: string, details: { store: string; path: string }, options?: ErrorOptions) {
    super(message, options);
    this.name = "StoreReadOnlyError";
    this.store = details.store;
    this.path = details.path;
  }
}

/**
 * A failure of a data migration run: a migration threw, the lock is held or
 * was lost, the folder is missing, or a module is not a migration.
 *
 * @example
 * ```ts
 * import { MigrationError, openStore } from "@flowstate/core";
 * import { migrateUp } from "@flowstate/core/jobs";
 * import assert from "node:assert/strict";
 * await using store = await openStore({ plugin: "memory" });
 * const err = await migrateUp(store, "./no-such-folder").catch((e) => e);
 * assert.ok(err instanceof MigrationError);
 * assert.equal(err.code, "MIGRATION_FAILED");
 * ```
 */
export class MigrationError extends FlowstateError {
  /** `"MIGRATION_FAILED"`. */
  readonly code = "MIGRATION_FAILED" as const;
  /** Create the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "MigrationError";
  }
}

/**
 * A backup or restore cannot be done: the file is missing or damaged, the
 * target is not empty, another restore runs, a store changed throughout.
 * Nothing already stored was changed when it is thrown.
 *
 * @example
 * ```ts
 * import { BackupError } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * const err = new BackupError('Cannot restore old.fsbackup into store "main": it is not empty');
 * assert.equal(err.code, "BACKUP_FAILED");
 * ```
 */
export class BackupError extends FlowstateError {
  /** `"BACKUP_FAILED"`. */
  readonly code = "BACKUP_FAILED" as const;
  /** Create the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BackupError";
  }
}

/**
 * A value of an encrypted store cannot be opened: it was sealed with a key
 * that is not configured (a wrong key), it was tampered with or copied from
 * another key (authentication failed), or it is not sealed at all. Nothing
 * is written when this is thrown.
 *
 * @example
 * ```ts
 * import { DecryptionError } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * const err = new DecryptionError('Cannot read ["a"] in store "main": tampered', {
 *   store: "main",
 *   key: ["a"],
 *   keyId: "0123456789abcdef",
 * });
 * assert.equal(err.code, "DECRYPTION_FAILED");
 * assert.deepEqual(err.key, ["a"]);
 * ```
 */
export class DecryptionError extends FlowstateError {
  /** `"DECRYPTION_FAILED"`. */
  readonly code = "DECRYPTION_FAILED" as const;
  /** The store. */
  readonly store: string;
  /** The entry's key, or `null` when the error is about the store as a whole. */
  readonly key: readonly string[] | null;
  /** The key id the value was sealed with, or `null` (not sealed, or unknown). */
  readonly keyId: string | null;
  /** Create the error. */
  constructor(
    message: string,
    details: { store: string; key?: readonly string[] | null; keyId?: string | null },
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "DecryptionError";
    this.store = details.store;
    this.key = details.key ?? null;
    this.keyId = details.keyId ?? null;
  }
}

/**
 * A node used its context (state, sub-flows, logs) after its attempt was
 * over: it timed out, its run was cancelled, or it had already returned. The
 * write is refused, so nothing lands after the run's end is recorded. A node
 * avoids it by stopping when `ctx.signal` aborts.
 *
 * @example
 * ```ts
 * import { AttemptOverError } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * const err = new AttemptOverError({ runId: "r1", nodeId: "fetch", attempt: 2, reason: "timed out after 1000 ms" });
 * assert.equal(err.code, "ATTEMPT_OVER");
 * assert.match(err.message, /attempt 2 of node fetch in run r1 is over/);
 * ```
 */
export class AttemptOverError extends FlowstateError {
  /** `"ATTEMPT_OVER"`. */
  readonly code = "ATTEMPT_OVER" as const;
  /** The run. */
  readonly runId: string;
  /** The node. */
  readonly nodeId: string;
  /** The attempt (1 for the first). */
  readonly attempt: number;
  /** Why it ended: `"timed out after 1000 ms"`, `"the run was cancelled"`, `"it returned"`… */
  readonly reason: string;
  /** Create the error. */
  constructor(
    details: { runId: string; nodeId: string; attempt: number; reason: string },
    options?: ErrorOptions,
  ) {
    super(
      `attempt ${details.attempt} of node ${details.nodeId} in run ${details.runId} is over (${details.reason}); writes after its end are refused: stop the node when ctx.signal aborts`,
      options,
    );
    this.name = "AttemptOverError";
    this.runId = details.runId;
    this.nodeId = details.nodeId;
    this.attempt = details.attempt;
    this.reason = details.reason;
  }
}

/**
 * The change feed of a store was read (`changes`, `watch`, `getAt`, `state
 * history`), but the store keeps none. The message names the config to add:
 * `changes: { keep: 30d }` on the store.
 *
 * @example
 * ```ts
 * import { FeedDisabledError, openStore } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * await using store = await openStore({ plugin: "memory" });
 * await assert.rejects(() => store.feedInfo().then(() => store.getAt(["a"], { seq: 1 })), FeedDisabledError);
 * ```
 */
export class FeedDisabledError extends FlowstateError {
  /** `"FEED_DISABLED"`. */
  readonly code = "FEED_DISABLED" as const;
  /** The store's name. */
  readonly store: string;
  /** Create the error for store `store`. */
  constructor(store: string, what: string) {
    super(
      `${what}: store "${store}" keeps no change feed; add \`changes: { keep: 30d }\` to ` +
        `stores.${store} in flowstate.yaml (or pass changes: { keep: "30d" } to openStore)`,
    );
    this.name = "FeedDisabledError";
    this.store = store;
  }
}

/**
 * What a call names does not exist: a flow id that no flow file under the
 * config's `flows:` has (`Runtime.enqueue`), a run id with no run
 * (`Records.requeueRun`). Tell it from invalid input (`TypeError`,
 * `RangeError`, {@linkcode FlowValidationError}) and from a conflict
 * ({@linkcode ConflictError}) by class or by `code`, never by message.
 *
 * @example
 * ```ts
 * import { NotFoundError, openRuntime } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const err = await rt.enqueue("report").catch((e) => e);
 * assert.ok(err instanceof NotFoundError);
 * assert.equal(err.code, "NOT_FOUND");
 * assert.deepEqual([err.kind, err.id], ["flow", "report"]);
 * ```
 */
export class NotFoundError extends FlowstateError {
  /** `"NOT_FOUND"`. */
  readonly code = "NOT_FOUND" as const;
  /** What was looked for: a flow (by id), a run (by id). */
  readonly kind: "flow" | "run";
  /** The id asked for. */
  readonly id: string;
  /** Create the error; `message` says what could not be done and what exists. */
  constructor(
    message: string,
    details: { kind: "flow" | "run"; id: string },
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "NotFoundError";
    this.kind = details.kind;
    this.id = details.id;
  }
}

/**
 * Why `Runtime.resumeRun` refused to resume a run (see
 * {@linkcode ResumeRefusedError.reason}):
 * - `"running"`: the run is still queued or running;
 * - `"succeeded"`: it succeeded and no `from` node was given (nothing to resume);
 * - `"job"`: it is a job's run (a job has no nodes to reuse);
 * - `"sub-run"`: it is a sub-run of another run (resume that run instead);
 * - `"mocked"`: a test's mocks stood in for some of its nodes;
 * - `"masked"`: a secret's value in its inputs was recorded masked (`***`),
 *   so the inputs it ran with are not recorded;
 * - `"from"`: the `from` node is no node of the flow;
 * - `"flow"`: the flow given is not the run's (another id);
 * - `"resumed"`: another resume of the run started (or starts) a run that
 *   resumes it ({@linkcode ResumeRefusedError.resumedBy}); resume that run,
 *   or give `again` once it ended.
 *
 * @example
 * ```ts
 * import type { ResumeRefusal } from "@flowstate/core";
 * const reason: ResumeRefusal = "running";
 * console.log(reason);
 * ```
 */
export type ResumeRefusal =
  | "running"
  | "succeeded"
  | "job"
  | "sub-run"
  | "mocked"
  | "masked"
  | "from"
  | "flow"
  | "resumed";

/**
 * A run cannot be resumed (`Runtime.resumeRun`, `flowstate runs resume`):
 * {@linkcode ResumeRefusedError.reason} says why; nothing was written.
 * An unknown run is a {@linkcode NotFoundError} instead.
 *
 * @example
 * ```ts
 * import { openRuntime, ResumeRefusedError } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const flow = { id: "f", nodes: [{ id: "a", type: "transform", with: { value: 1 } }] };
 * const run = await rt.runFlow(flow);
 * const err = await rt.resumeRun(run.id, { flow }).catch((e) => e);
 * assert.ok(err instanceof ResumeRefusedError);
 * assert.equal(err.code, "RESUME_REFUSED");
 * assert.equal(err.reason, "succeeded");
 * ```
 */
export class ResumeRefusedError extends FlowstateError {
  /** `"RESUME_REFUSED"`. */
  readonly code = "RESUME_REFUSED" as const;
  /** Why (see {@linkcode ResumeRefusal}). */
  readonly reason: ResumeRefusal;
  /** The run asked for. */
  readonly runId: string;
  /** With reason `"resumed"`: the run that resumes it (absent while that run is starting). */
  readonly resumedBy?: string;
  /** Create the error; `message` says what and how to go on. */
  constructor(
    message: string,
    details: { reason: ResumeRefusal; runId: string; resumedBy?: string },
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "ResumeRefusedError";
    this.reason = details.reason;
    this.runId = details.runId;
    if (details.resumedBy !== undefined) this.resumedBy = details.resumedBy;
  }
}
