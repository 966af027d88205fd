/**
 * The arguments a node passes to `ctx.log()` and `ctx.sleep()`, checked the
 * same way in-process (executor.ts) and in a sandboxed node's Worker
 * (sandbox_worker.ts), which imports this module: it stays small.
 *
 * @module
 */
import { LOG_LEVELS, type LogLevel } from "../log.ts";
import { didYouMean } from "../_suggest.ts";
import { utf8Length } from "../store/values.ts";

/** The most bytes (UTF-8) one `ctx.log` line keeps; a longer one is cut, with a note. */
export const LOG_LINE_BYTES = 16 * 1024;

/**
 * The most bytes (UTF-8) of a node's error message that its run keeps; a
 * longer one is cut, with a note. A run's record must fit in one store value,
 * and a node (one without any permission too) chooses what it throws.
 */
export const ERROR_MESSAGE_BYTES = 16 * 1024;

/**
 * `message` as the line `ctx.log()` keeps: text, cut to at most
 * {@linkcode LOG_LINE_BYTES} of UTF-8 with a note of how much was cut. A
 * sandboxed node's Worker cuts it before it sends it, so a huge line never
 * crosses to the runner.
 */
export function logLine(message: unknown): string {
  return cutText(String(message), LOG_LINE_BYTES, "a log line");
}

/** A node's error `message` as its run keeps it: cut to {@linkcode ERROR_MESSAGE_BYTES}. */
export function errorMessage(message: string): string {
  return cutText(message, ERROR_MESSAGE_BYTES, "an error message");
}

/** `text` cut to at most `max` bytes of UTF-8, with a note saying `what` holds at most that. */
function cutText(text: string, max: number, what: string): string {
  if (text.length * 3 <= max) return text;
  const size = utf8Length(text);
  if (size <= max) return text;
  const note = ` … (cut: ${size.toLocaleString("en-US")} bytes, over the ${
    (max / 1024).toLocaleString("en-US")
  } KiB ${what} may hold)`;
  let end = Math.max(0, Math.floor((max - note.length) / 3));
  // Grow while it fits: at least max/3 characters always do.
  while (end < text.length && utf8Length(text.slice(0, end + 256)) + note.length <= max) end += 256;
  // No lone half of a surrogate pair at the cut.
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end--;
  return text.slice(0, end) + note;
}

/**
 * `level` as a log level (`undefined`: `"info"`), or a `TypeError` naming the
 * levels (and the closest one).
 */
export function logLevel(level: unknown): LogLevel {
  if (level === undefined) return "info";
  if (LOG_LEVELS.includes(level as LogLevel)) return level as LogLevel;
  let hint = "";
  if (typeof level === "string") {
    // "warning", "err", "information": one level starts the other.
    const lower = level.toLowerCase();
    const near = LOG_LEVELS.find((l) =>
      lower !== "" && (lower.startsWith(l) || l.startsWith(lower))
    );
    hint = near === undefined ? didYouMean(level, LOG_LEVELS) : ` (did you mean "${near}"?)`;
  }
  const shown = typeof level === "string" ? JSON.stringify(level) : String(level);
  throw new TypeError(
    `ctx.log(): unknown level ${shown}${hint}; the levels are ${
      LOG_LEVELS.map((l) => JSON.stringify(l)).join(", ")
    }`,
  );
}

/**
 * Why `ms` is no wait for `ctx.sleep()`, or `undefined` for a number >= 0
 * (`Infinity`: until the node is stopped, by its timeout, the run's or a
 * cancel).
 */
export function sleepProblem(ms: unknown): RangeError | TypeError | undefined {
  const hint = "give milliseconds >= 0, or Infinity to wait until the node is stopped " +
    "(its timeout, the run's, or a cancel)";
  if (typeof ms !== "number") {
    return new TypeError(
      `ctx.sleep(): expected a number of milliseconds, got ${typeof ms}; ${hint}`,
    );
  }
  if (Number.isNaN(ms) || ms < 0) return new RangeError(`ctx.sleep(${ms}): ${hint}`);
  return undefined;
}

/** The longest value `ctx.mask()` takes (characters): as long as a secret file may be. */
export const MASK_MAX_LENGTH = 64 * 1024;

/**
 * Why `value` is no value for `ctx.mask()`, or `undefined` for a string it
 * masks (or `""`: nothing to hide). Under 4 characters (the flow's
 * `SECRET_MIN_LENGTH`, not imported here: the Worker loads this module) is
 * too short: masking it would hide those characters wherever they appear in
 * the records, and give the value away.
 */
export function maskProblem(value: unknown): RangeError | TypeError | undefined {
  if (typeof value !== "string") {
    return new TypeError(
      `ctx.mask(): expected the secret as a string, got ${
        value === null ? "null" : typeof value
      }; pass String(value) for a number`,
    );
  }
  if (value !== "" && value.length < 4) {
    return new RangeError(
      `ctx.mask(): the value is ${value.length} character(s) long, under 4: too short to be masked in the records (masking it would hide those characters wherever they appear, and give it away)`,
    );
  }
  if (value.length > MASK_MAX_LENGTH) {
    return new RangeError(
      `ctx.mask(): the value is ${value.length.toLocaleString("en-US")} characters long, over ${
        MASK_MAX_LENGTH.toLocaleString("en-US")
      }: mask the secret itself, not a text holding it`,
    );
  }
  return undefined;
}
