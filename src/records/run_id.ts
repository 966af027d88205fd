/**
 * Run ids: the one format every part of Flowstate makes, checks and reads.
 *
 * A run id is 20 characters `[0-9a-z]`: 9 base-36 digits of the run's start
 * time in ms, then 11 base-36 digits that are random for the first id of a
 * millisecond and count up after it within one process. So ids sort in start
 * order, key order on run ids is time order, and a time range is a key range
 * ({@linkcode runIdTimeBound}). The id and the run's `startedAt` come from one
 * clock read ({@linkcode newRunId} takes the time, it does not read a clock),
 * so `runs ls --since <startedAt>` always finds the run.
 *
 * @module
 */
import { uniqueRandomBytes } from "../_random.ts";

/** Base-36 digits of the start time at the front of a run id. */
const TIME_DIGITS = 9;
/** Digits after the time. */
const RANDOM_DIGITS = 11;
/** The first time (ms) that no longer fits in {@linkcode TIME_DIGITS} digits. */
const MAX_ID_TIME = 36 ** TIME_DIGITS;
const RUN_ID = /^[0-9a-z]{20}$/;

/** What a run id looks like, for messages. */
export const RUN_ID_HINT = "20 lowercase letters or digits, as `flowstate runs ls` shows";

let lastIdMs = -1;
let lastIdRandom = "";

function randomDigits(n: number): string {
  const bytes = uniqueRandomBytes(n);
  let out = "";
  for (const b of bytes) out += (b % 36).toString(36);
  return out;
}

/** Add one to a base-36 digit string; `null` on overflow. */
function incrementDigits(digits: string): string | null {
  const chars = digits.split("");
  for (let i = chars.length - 1; i >= 0; i--) {
    const d = parseInt(chars[i], 36);
    if (d < 35) {
      chars[i] = (d + 1).toString(36);
      return chars.join("");
    }
    chars[i] = "0";
  }
  return null;
}

/**
 * A new run id for a run that starts at `startedAt` (ms since the epoch). Ids
 * made in one process increase, within one millisecond too. Throws a
 * `RangeError` for a time outside what 9 base-36 digits hold.
 *
 * @example
 * ```ts
 * import { newRunId, runIdTime } from "@flowstate/core/records";
 * import assert from "node:assert/strict";
 * const startedAt = Date.UTC(2026, 0, 1);
 * const a = newRunId(startedAt);
 * const b = newRunId(startedAt);
 * assert.equal(runIdTime(a), startedAt);
 * assert.ok(a < b);
 * ```
 */
export function newRunId(startedAt: number): string {
  const ms = Math.floor(startedAt);
  if (!(ms >= 0 && ms < MAX_ID_TIME)) {
    throw new RangeError(
      `Cannot make run id: start time ${startedAt} is outside 0..${MAX_ID_TIME - 1}`,
    );
  }
  let random = ms === lastIdMs ? incrementDigits(lastIdRandom) : null;
  random ??= randomDigits(RANDOM_DIGITS);
  lastIdMs = ms;
  lastIdRandom = random;
  return ms.toString(36).padStart(TIME_DIGITS, "0") + random;
}

/**
 * Whether `value` has the shape of a run id.
 *
 * @example
 * ```ts
 * import { isRunId } from "@flowstate/core/records";
 * import assert from "node:assert/strict";
 * assert.equal(isRunId("0mjuw3ms0abcdefghijk"), true);
 * assert.equal(isRunId("not-a-run"), false);
 * ```
 */
export function isRunId(value: unknown): value is string {
  return typeof value === "string" && RUN_ID.test(value);
}

/**
 * Throw a `TypeError` starting with `what` unless `value` is a run id.
 *
 * @example
 * ```ts
 * import { assertRunId } from "@flowstate/core/records";
 * import assert from "node:assert/strict";
 * assert.throws(() => assertRunId("x", "Cannot show run"), TypeError);
 * ```
 */
export function assertRunId(value: unknown, what: string): asserts value is string {
  if (!isRunId(value)) {
    throw new TypeError(
      `${what}: run id must be ${RUN_ID_HINT} (got ${JSON.stringify(value) ?? String(value)})`,
    );
  }
}

/**
 * The start time (ms since the epoch) a run id encodes. Throws a `TypeError`
 * if `runId` is not a run id.
 *
 * @example
 * ```ts
 * import { newRunId, runIdTime } from "@flowstate/core/records";
 * import assert from "node:assert/strict";
 * assert.equal(runIdTime(newRunId(1_000)), 1_000);
 * ```
 */
export function runIdTime(runId: string): number {
  assertRunId(runId, "Cannot read run id");
  return parseInt(runId.slice(0, TIME_DIGITS), 36);
}

/**
 * A bound between run ids by time: ids of runs started at or after `ms` sort
 * at or after it, ids of earlier runs before it. `""` for times at or before
 * the epoch, `"~"` (after every id) for times past the last one.
 *
 * @example
 * ```ts
 * import { newRunId, runIdTimeBound } from "@flowstate/core/records";
 * import assert from "node:assert/strict";
 * const bound = runIdTimeBound(2_000);
 * assert.ok(newRunId(1_999) < bound && bound <= newRunId(2_000));
 * ```
 */
export function runIdTimeBound(ms: number): string {
  const t = Math.ceil(ms);
  if (t <= 0) return "";
  return t >= MAX_ID_TIME ? "~" : t.toString(36).padStart(TIME_DIGITS, "0");
}

/**
 * The start time a run id or a {@linkcode runIdTimeBound} encodes, without
 * checking the shape (for bounds, which are shorter than ids).
 *
 * @example
 * ```ts
 * import { runIdTimeBound, runIdBoundTime } from "@flowstate/core/records";
 * import assert from "node:assert/strict";
 * assert.equal(runIdBoundTime(runIdTimeBound(5_000)), 5_000);
 * ```
 */
export function runIdBoundTime(idOrBound: string): number {
  return parseInt(idOrBound.slice(0, TIME_DIGITS), 36);
}
