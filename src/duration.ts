/**
 * Durations in flow files: a number of milliseconds, or a string such as
 * `"500ms"`, `"2s"`, `"1.5m"`, `"1h"`, `"1d"` or `"1h30m"`.
 *
 * @module
 */
/**
 * A duration: a number of milliseconds, or a string such as `"2s"` or `"1h30m"`.
 *
 * @example
 * ```ts
 * import type { Duration } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * const d: Duration = "1h30m";
 * assert.equal(typeof d, "string");
 * ```
 */
export type Duration = number | string;

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const PART = /(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h|d)/y;

/**
 * A regular expression (as source text) for duration strings, for JSON Schema
 * `pattern`s.
 */
export const DURATION_PATTERN = "^\\s*(?:(?:\\d+(?:\\.\\d+)?|\\.\\d+)(?:ms|s|m|h|d))+\\s*$";

/** What a duration looks like, for error messages. */
export const DURATION_HINT =
  'a duration like "500ms", "2s", "1.5m", "1h", "1d" or a number of milliseconds';

/** What a duration given on the command line looks like (always text: it needs a unit). */
const FLAG_HINT = 'a duration like "500ms", "2s", "1.5m", "1h", "1d"';

/**
 * Why `value` is not a duration (a sentence fragment such as
 * `expected a duration like …, got "5x"`), or `undefined` when it is one.
 * `kind` is `"type"` for values that are neither a number nor a string.
 */
export function durationProblem(
  value: unknown,
): { kind: "type" | "range"; message: string } | undefined {
  try {
    parseDurationValue(value);
    return undefined;
  } catch (error) {
    return {
      kind: error instanceof TypeError ? "type" : "range",
      message: (error as Error).message,
    };
  }
}

/**
 * Convert a duration to milliseconds. Accepts a non-negative finite number of
 * milliseconds, or a string of one or more `<number><unit>` parts where the
 * unit is `ms`, `s`, `m`, `h` or `d`: `parseDuration("1.5m", "timeout")` is 90,000 and
 * `"1h30m"` is 5,400,000. A string
 * without a unit is refused, since `"10"` could mean seconds to a reader.
 *
 * @param value The duration.
 * @param where What the duration is for, used to start error messages
 *   (`nodes[0].timeout`, `retry.delay`…).
 * @returns The duration in milliseconds (may be fractional, e.g. `"0.5ms"`).
 * @throws {TypeError} if `value` is neither a number nor a string.
 * @throws {RangeError} if `value` is a negative or non-finite number, or a
 *   string that is not a duration.
 *
 * @example
 * ```ts
 * import { parseDuration } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * assert.equal(parseDuration("1h30m", "timeout"), 5_400_000);
 * assert.equal(parseDuration(250, "retry.delay"), 250);
 * assert.throws(() => parseDuration("10", "timeout"), RangeError); // "10" has no unit
 * ```
 */
export function parseDuration(value: Duration, where: string): number {
  try {
    // A command-line flag (`--lease`) is always text: a number of milliseconds is no option there.
    return parseDurationValue(value, where.startsWith("-"));
  } catch (error) {
    const message = `Cannot use ${where} as a duration: ${(error as Error).message}`;
    throw error instanceof TypeError ? new TypeError(message) : new RangeError(message);
  }
}

function parseDurationValue(value: unknown, flag = false): number {
  const hint = flag ? FLAG_HINT : DURATION_HINT;
  if (typeof value === "number") {
    if (!Number.isFinite(value) || value < 0) {
      throw new RangeError(`expected ${DURATION_HINT}, got ${value}`);
    }
    return value;
  }
  if (typeof value !== "string") {
    throw new TypeError(`expected ${hint}, got ${describeKind(value)}`);
  }
  const text = value.trim();
  if (/^-?\d+(?:\.\d+)?$/.test(text)) {
    throw new RangeError(
      `expected ${hint}, got ${JSON.stringify(value)} (add a unit, e.g. "${text}ms"${
        flag ? "" : ", or write a number of milliseconds without quotes"
      })`,
    );
  }
  let total = 0;
  let at = 0;
  PART.lastIndex = 0;
  while (at < text.length) {
    PART.lastIndex = at;
    const match = PART.exec(text);
    if (match === null) {
      throw new RangeError(`expected ${hint}, got ${JSON.stringify(value)}`);
    }
    total += Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
    at = PART.lastIndex;
  }
  if (text.length === 0 || !Number.isFinite(total)) {
    throw new RangeError(`expected ${hint}, got ${JSON.stringify(value)}`);
  }
  return total;
}

function describeKind(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "boolean") return String(value);
  return `a ${typeof value}`;
}

/**
 * `ms` written as a duration with units, exactly (`2592000000` → `"30d"`,
 * `5400000` → `"1h30m"`, `1500` → `"1s500ms"`, `30` → `"30ms"`); a fraction
 * of a millisecond stays a decimal of `ms`.
 */
export function formatDurationExactly(ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) return `${ms}ms`;
  const units: [string, number][] = [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], [
    "s",
    1000,
  ]];
  let left = ms;
  let out = "";
  for (const [unit, size] of units) {
    const n = Math.floor(left / size);
    if (n > 0) out += `${n}${unit}`, left -= n * size;
  }
  if (left > 0 || out === "") out += `${Number(left.toFixed(3))}ms`;
  return out;
}
