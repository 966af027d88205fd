/**
 * Rates in flow files (`queue: { rate: "10/1m" }`): a whole number of starts,
 * `/`, and a duration (see `duration.ts`): at most that many in any window of
 * that length. Ground vocabulary: parsing and wording only; the window's
 * logic is the queue's (`records/_rate.ts`).
 *
 * @module
 */
import { formatDurationExactly, parseDuration } from "./duration.ts";

/** A parsed rate: at most `limit` in any window of `perMs` milliseconds. */
export interface Rate {
  /** Starts allowed per window. */
  limit: number;
  /** The window, in ms (> 0). */
  perMs: number;
}

/**
 * The most starts one window may allow: a partition keeps the time of each
 * start in its window in one entry, so its size is bounded by this.
 */
export const MAX_RATE_LIMIT = 1_000;

/** A regular expression (as source text) for rate strings, for JSON Schema `pattern`s. */
export const RATE_PATTERN =
  "^\\s*\\d+\\s*/\\s*(?:(?:\\d+(?:\\.\\d+)?|\\.\\d+)(?:ms|s|m|h|d))+\\s*$";

/** What a rate looks like, for error messages. */
export const RATE_HINT =
  `a rate like "10/1m" (at most 10 starts in any 1 minute): a whole number from 1 to ${MAX_RATE_LIMIT}, "/", and a duration like "1s", "1m", "1h" or "1d"`;

/**
 * Why `value` is not a rate (a sentence fragment), or `undefined` when it is
 * one.
 */
export function rateProblem(value: unknown): string | undefined {
  try {
    parseRateValue(value);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/**
 * Parse `"<limit>/<duration>"` (`"10/1m"`, `"100/1s"`, `"5/1h30m"`).
 *
 * @throws {RangeError} naming `where` and what a rate looks like.
 */
export function parseRate(value: unknown, where: string): Rate {
  try {
    return parseRateValue(value);
  } catch (error) {
    throw new RangeError(`Cannot use ${where} as a rate: ${(error as Error).message}`);
  }
}

/** A rate as written: `"10/1m"`. */
export function formatRate(rate: Rate): string {
  return `${rate.limit}/${formatDurationExactly(rate.perMs)}`;
}

function parseRateValue(value: unknown): Rate {
  if (typeof value !== "string") {
    throw new RangeError(`expected ${RATE_HINT}, got ${kindOf(value)}`);
  }
  const match = /^\s*(\d+)\s*\/\s*(\S+)\s*$/.exec(value);
  if (match === null) {
    throw new RangeError(`expected ${RATE_HINT}, got ${JSON.stringify(value)}`);
  }
  const limit = Number(match[1]);
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new RangeError(
      `the number of starts must be a whole number from 1 to ${MAX_RATE_LIMIT}, got ${
        JSON.stringify(value)
      }`,
    );
  }
  let perMs: number;
  try {
    perMs = parseDuration(match[2], "the window");
  } catch {
    throw new RangeError(
      `expected ${RATE_HINT}, got ${JSON.stringify(value)} (${
        JSON.stringify(match[2])
      } is not a duration)`,
    );
  }
  if (!(perMs >= 1)) {
    throw new RangeError(`the window must be at least 1ms, got ${JSON.stringify(value)}`);
  }
  perMs = Math.round(perMs);
  if (limit > MAX_RATE_LIMIT) {
    // The same average in shorter windows: each window keeps one time per start.
    const k = Math.ceil(limit / MAX_RATE_LIMIT);
    const shorter = formatRate({ limit: Math.floor(limit / k), perMs: Math.floor(perMs / k) });
    throw new RangeError(
      `the number of starts must be from 1 to ${MAX_RATE_LIMIT} (a window keeps the time of each start), got ${
        JSON.stringify(value)
      }: use a shorter window, like "${shorter}"`,
    );
  }
  return { limit, perMs };
}

function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "number") return `the number ${value} (write "${value}/1m" or similar)`;
  return `a ${typeof value}`;
}
