/**
 * Error classes callers are expected to catch. Everything else is a built-in
 * `TypeError` (bad argument) or `RangeError` (argument out of range).
 *
 * @module
 */

/**
 * A write could not be applied because a version check failed and retrying
 * gave up. Store methods themselves report conflicts as a result
 * (`{ ok: false }`); this error is for helpers that promise a write.
 *
 * @example
 * ```ts
 * import { ConflictError } from "@flowstate/core";
 * const err = new ConflictError("Cannot increment counter: 10 concurrent writers won");
 * if (!(err.name === "ConflictError")) throw new Error("unexpected result");
 * ```
 */
export class ConflictError extends Error {
  /** Create the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConflictError";
  }
}

/**
 * A store's file is damaged or has a format this version cannot read. The
 * damaged file has been moved aside (see {@linkcode StoreCorruptError.movedTo})
 * and never overwritten.
 *
 * @example
 * ```ts
 * import { StoreCorruptError } from "@flowstate/core";
 * const err = new StoreCorruptError("Cannot open store \"main\": bad JSON", {
 *   path: "state.json",
 *   movedTo: "state.json.corrupt-20260101T000000Z",
 * });
 * if (!(err.movedTo?.endsWith("Z"))) throw new Error("unexpected result");
 * ```
 */
export class StoreCorruptError extends Error {
  /** The damaged file. */
  readonly path: string;
  /** Where the damaged file was moved, or `null` if it was left in place. */
  readonly movedTo: string | null;
  /** Create the error. */
  constructor(
    message: string,
    details: { path: string; movedTo?: string | null },
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "StoreCorruptError";
    this.path = details.path;
    this.movedTo = details.movedTo ?? null;
  }
}

/**
 * A configuration (file, object or plugin options) is invalid. The message says
 * where (file:line:column when there is a file), what, and how to fix it.
 *
 * @example
 * ```ts
 * import { ConfigError } from "@flowstate/core";
 * const err = new ConfigError("flowstate.yaml:3:5: stores.main.plugin: expected a string");
 * if (!(err.name === "ConfigError")) throw new Error("unexpected result");
 * ```
 */
export class ConfigError extends Error {
  /** Create the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConfigError";
  }
}

/**
 * A store was used after it was closed.
 *
 * @example
 * ```ts
 * import { openStore, StoreClosedError } from "@flowstate/core";
 * const store = await openStore({ plugin: "memory" });
 * await store.close();
 * try {
 *   await store.get(["a"]);
 * } catch (err) {
 *   if (!(err instanceof StoreClosedError)) throw new Error("unexpected result");
 * }
 * ```
 */
export class StoreClosedError extends Error {
  /** Create the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StoreClosedError";
  }
}
