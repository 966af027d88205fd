/**
 * How the CLI reports the error a command ends with: its lines on stderr
 * (`error: …`, a permission `hint:`, the stack under `--debug`) or one JSON
 * log line, and its exit code.
 *
 * @module
 */
import {
  ConfigError,
  FeedDisabledError,
  FlowstateError,
  FlowValidationError,
  messageOf,
  StoreOpenError,
  UnknownStoreError,
} from "../errors.ts";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, permissionHint } from "./common.ts";
import { printable, StdoutClosedError } from "./format.ts";
import { UsageError } from "./input.ts";
import { jsonLogs, logEvent } from "./log_format.ts";

/**
 * The exit code of an error, by its class.
 *
 * @example
 * ```ts
 * import { exitCodeOf } from "./report.ts";
 * import assert from "node:assert/strict";
 * assert.equal(exitCodeOf(new Error("boom")), 1);
 * ```
 */
export function exitCodeOf(err: unknown): number {
  if (err instanceof UsageError || err instanceof ConfigError) return EXIT_USAGE;
  if (err instanceof FlowValidationError || err instanceof UnknownStoreError) return EXIT_USAGE;
  if (err instanceof FeedDisabledError) return EXIT_USAGE;
  return EXIT_FAILURE;
}

/**
 * Print an error and choose its exit code.
 *
 * @example
 * ```ts ignore
 * import { UsageError } from "./input.ts";
 * const code = report(new UsageError("bad --input"), false); // prints "error: bad --input"
 * // code === 2
 * ```
 */
export function report(err: unknown, debug: boolean): number {
  if (isCommanderError(err)) {
    // Commander already printed its message (or the help / version).
    if (err.code === "commander.helpDisplayed" || err.code === "commander.version") return EXIT_OK;
    if (err.code === "commander.help") return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    return EXIT_USAGE;
  }
  if (err instanceof Error && err.name === "SuppressedError" && "suppressed" in err) {
    // The command failed and closing the runtime failed too: the command's error matters.
    err = err.suppressed;
  }
  // Whoever read the output went away (`| head`): it has what it wanted.
  if (err instanceof StdoutClosedError) return EXIT_OK;
  const message = messageOf(err);
  if (jsonLogs()) return reportJson(err, message, debug);
  // Every problem of a flow or a config, one `file:line:column: path: message` per line.
  const listsProblems = err instanceof FlowValidationError || err instanceof ConfigError;
  if (listsProblems || debug) {
    for (const line of message.split("\n")) console.error(`error: ${printable(line)}`);
  } else {
    // One line: a multi-line message (a backend's, say) is cut.
    console.error(`error: ${printable(message.split("\n")[0])}`);
  }
  const grant = permissionHint(err);
  if (grant !== undefined) console.error(`hint: ${grant}`);
  if (debug) {
    for (let e: unknown = err; e !== undefined; e = (e as Error).cause) {
      console.error(e instanceof Error ? (e.stack ?? String(e)) : String(e));
      if (!(e instanceof Error)) break;
    }
  } else if (
    !(err instanceof UsageError) &&
    (!(err instanceof FlowstateError) || err instanceof StoreOpenError) && grant === undefined
  ) {
    // Our own errors say everything a user needs; anything else may be a bug (a plugin's own
    // error from its open(), too).
    console.error("(run again with --debug for the stack trace)");
  }
  return exitCodeOf(err);
}

/**
 * The error a command exits with, as one JSON log line (`--log-format json`): the whole message
 * (every problem of a flow or config, each on its line), `exitCode`, a `hint` where to grant a
 * permission, and with `--debug` the stack traces of it and its causes.
 */
function reportJson(err: unknown, message: string, debug: boolean): number {
  const exitCode = exitCodeOf(err);
  const stack: string[] = [];
  if (debug) {
    for (let e: unknown = err; e !== undefined; e = (e as Error).cause) {
      stack.push(e instanceof Error ? (e.stack ?? String(e)) : String(e));
      if (!(e instanceof Error)) break;
    }
  }
  logEvent("error", message, {
    event: "command.error",
    exitCode,
    hint: permissionHint(err),
    ...(debug ? { stack: stack.join("\ncaused by: ") } : {}),
  });
  return exitCode;
}

/** Whether `err` is commander's (it printed its message already): by its `commander.*` code. */
function isCommanderError(err: unknown): err is Error & { code: string; exitCode: number } {
  if (!(err instanceof Error)) return false;
  const { code, exitCode } = err as Error & { code?: unknown; exitCode?: unknown };
  return typeof code === "string" && code.startsWith("commander.") &&
    typeof exitCode === "number";
}
