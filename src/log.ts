/**
 * Log levels, shared by node contexts, jobs and run events.
 *
 * @module
 */
import { callGuarded } from "./_callback.ts";

/**
 * How important a log line is.
 *
 * @example
 * ```ts
 * import type { LogLevel } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * const level: LogLevel = "warn";
 * assert.equal(level, "warn");
 * ```
 */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Every {@linkcode LogLevel}, least important first. */
export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

/**
 * A warning from the library: something worth telling a person, that is not
 * an error (the operation went on). The library never prints one: it hands it
 * to the `onWarning` handler its caller gave (`openStore`, `openRuntime`), and
 * drops it when there is none. The CLI prints them on stderr.
 *
 * Codes of the built-in plugins: `STORE_LARGE` (a jsonfile store past 4 MiB,
 * better in sqlite), `DIR_SYNC_FAILED` (a commit stands but flushing its
 * directory failed, so it may not survive a power loss), `STORE_CORRUPT_MOVED`
 * (a corrupt jsonfile store was moved aside and started empty, as its
 * `onCorrupt: "start-empty"` asked). `openRuntime` warns `HOME_MOVED` when a
 * config file read from another folder uses the home beside it while the
 * working directory's `.flowstate` (its home up to 0.5) holds files. A plugin
 * may use codes of its own.
 *
 * @example
 * ```ts
 * import { openStore, type Warning } from "@flowstate/core";
 * const warnings: Warning[] = [];
 * await using store = await openStore({ plugin: "memory" }, {
 *   onWarning: (warning) => warnings.push(warning),
 * });
 * ```
 */
export interface Warning {
  /** A stable code, to filter on without parsing the message. */
  readonly code: WarningCode;
  /** What happened, where, and what to do about it. */
  readonly message: string;
  /** The store it is about, when it is about one. */
  readonly store?: string;
}

/**
 * The code of a {@linkcode Warning}: the built-in ones as literals, and any
 * string a third-party plugin uses.
 *
 * @example
 * ```ts
 * import type { WarningCode } from "@flowstate/core";
 * const code: WarningCode = "STORE_LARGE";
 * ```
 */
export type WarningCode =
  | "STORE_LARGE"
  | "DIR_SYNC_FAILED"
  | "STORE_CORRUPT_MOVED"
  | "INDEX_BUILD"
  | "HOME_MOVED"
  | "ON_FAILURE"
  // deno-lint-ignore ban-types
  | (string & {});

/**
 * Receives the library's warnings (see {@linkcode Warning}).
 *
 * @example
 * ```ts
 * import type { WarningHandler } from "@flowstate/core";
 * const toStderr: WarningHandler = (warning) => console.warn(warning.message);
 * ```
 */
export type WarningHandler = (warning: Warning) => void;

/**
 * Hand `warning` to `handler` (a caller's `onWarning`), if any: what it
 * throws, or an `async` one's rejection, is ignored, so that a bug in it
 * cannot fail (or report as failed) what it warns about. Internal.
 */
export function warnGuarded(handler: WarningHandler | undefined, warning: Warning): void {
  if (handler !== undefined) callGuarded(() => handler(warning), () => {});
}
