/**
 * Log levels, shared by node contexts, jobs and run events.
 *
 * @module
 */

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
