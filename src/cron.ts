/**
 * Cron expressions for the scheduler, on top of
 * [croner](https://github.com/hexagon/croner): 5 fields (minute precision) or
 * 6 (a leading seconds field), nicknames (`@hourly`, `@daily`, `@weekly`,
 * `@monthly`, `@yearly`/`@annually`, `@midnight`) and IANA time zones.
 *
 * Every computation is pure: the next tick is found from the time it is given,
 * never from the wall clock, so a fake clock drives the scheduler in tests.
 *
 * Daylight saving time, in the schedule's zone (close to Vixie cron's rule):
 *
 * - A schedule whose seconds, minute and hour fields have no `*` and no step
 *   names times of day (`30 2 * * *`, `0 1,13 * * *`, `0,30 1-3 * * *`): each
 *   of them runs once a day. A time the clocks skip (02:30 on a spring-forward
 *   night) runs at the first time after the gap (03:00), once even if several
 *   of the schedule's times fall into the gap; a time the clocks repeat (01:30
 *   on a fall-back night) runs at its first occurrence only.
 * - Any other schedule (`0 * * * *`, `@hourly`, every 15 minutes, every two
 *   hours with a step) follows elapsed time: it runs on both occurrences of a repeated
 *   time, and not at all at the times the clocks skip.
 *
 * @module
 */
import { Cron } from "croner";
import { suggest } from "./_suggest.ts";
import { DEFAULT_TIMEZONE, describe, offsetAt, parseIsoTime, timezoneProblem } from "./timezone.ts";

export { canonicalTimezone, DEFAULT_TIMEZONE, timezoneProblem } from "./timezone.ts";

/** Nicknames accepted in place of an expression. */
export const CRON_NICKNAMES: readonly string[] = [
  "@yearly",
  "@annually",
  "@monthly",
  "@weekly",
  "@daily",
  "@midnight",
  "@hourly",
];

const FIELD_NAMES = ["second", "minute", "hour", "day of month", "month", "day of week"];

/** Validated patterns per (expression, zone): parsing and checking are the costly part. */
const validated = new Map<string, Cron>();
const MAX_VALIDATED = 1000;

function compile(expression: string, timezone: string): Cron {
  // Without a callback croner starts no timer: the object only computes times. "no-wildcard":
  // a list or range of hours is times of day too (croner's default counts only a single value),
  // so `0 1,13 * * *` runs 01:00 once on a fall-back night and 02:30 of `30 2,14 * * *` runs at
  // 03:00 on a spring-forward one, as `0 1 * * *` and `30 2 * * *` do.
  return new Cron(expression, { timezone, mode: "5-or-6-parts", fixedTimeRule: "no-wildcard" });
}

/** The compiled pattern of a valid expression; throws a RangeError otherwise. */
function checked(expression: string, timezone: string): Cron {
  const cacheKey = `${timezone}\u0000${expression}`;
  let cron = validated.get(cacheKey);
  if (cron === undefined) {
    validateCron(expression, timezone);
    cron = compile(expression.trim(), timezone);
    if (validated.size >= MAX_VALIDATED) validated.delete(validated.keys().next().value!);
    validated.set(cacheKey, cron);
  }
  return cron;
}

/**
 * Why `expression` is not a usable cron expression, as a sentence fragment
 * (`minute 61 is out of range (0-59)`…), or `undefined` when it is one. An
 * expression that can never match (`0 0 30 2 *`) is a problem too.
 *
 * @example
 * ```ts
 * import { cronProblem } from "@flowstate/core/scheduler";
 * import assert from "node:assert/strict";
 *
 * assert.equal(cronProblem("0 3 * * *"), undefined);
 * assert.equal(cronProblem("@daily", "Europe/Paris"), undefined);
 * const problem = cronProblem("0 0 30 2 *"); // February 30th
 * assert.equal(problem, 'cron expression "0 0 30 2 *" never matches a date');
 * ```
 */
export function cronProblem(
  expression: unknown,
  timezone: string = DEFAULT_TIMEZONE,
): string | undefined {
  if (typeof expression !== "string" || expression.trim() === "") {
    return `expected a cron expression like "0 3 * * *" or a nickname like "@daily", got ${
      describe(expression)
    }`;
  }
  const zoneProblem = timezoneProblem(timezone);
  if (zoneProblem !== undefined) return zoneProblem;
  const text = expression.trim();
  const shown = JSON.stringify(expression);
  if (text.startsWith("@")) {
    if (text.toLowerCase() === "@reboot") {
      return `cron nickname ${shown} is not a time: a schedule runs at clock ticks, not when the daemon starts; to run a flow at each start of the service, start it there (ExecStartPost=… flowstate run <flow>), or give a time like "@daily"`;
    }
    if (!CRON_NICKNAMES.includes(text.toLowerCase())) {
      const near = suggest(text.toLowerCase(), CRON_NICKNAMES);
      return `unknown cron nickname ${shown}${
        near === undefined ? "" : ` (did you mean "${near}"?)`
      }; the nicknames are ${CRON_NICKNAMES.join(", ")}`;
    }
  } else {
    const fields = text.split(/\s+/);
    if (fields.length !== 5 && fields.length !== 6) {
      return `invalid cron expression ${shown}: expected 5 fields (minute hour day-of-month month day-of-week) or 6 (with seconds first), got ${fields.length}`;
    }
  }
  let cron: Cron;
  try {
    cron = compile(text, timezone);
  } catch (err) {
    return `invalid cron expression ${shown}: ${explainCronError(err, text)}`;
  }
  // Four years and a day covers every leap-day pattern.
  if (cron.nextRun(new Date(Date.UTC(2000, 0, 1))) === null) {
    return `cron expression ${shown} never matches a date`;
  }
  return undefined;
}

/** Each field's range, in croner's order (seconds first). */
const FIELD_RANGES = ["0-59", "0-59", "0-23", "1-31", "1-12", "0-7, Sunday is 0 or 7"];
/** croner's names of the fields, in its order. */
const CRONER_FIELDS = ["second", "minute", "hour", "day", "month", "dayofweek"];

function explainCronError(err: unknown, text: string): string {
  const raw = (err instanceof Error ? err.message : String(err)).replace(/^CronPattern:\s*/, "");
  // The fields as written, in croner's order (a 5-field expression has no seconds).
  const written = text.split(/\s+/);
  if (written.length === 5) written.unshift("");
  const field = (index: number) =>
    `the ${FIELD_NAMES[index]} field ${JSON.stringify(written[index])}`;
  const invalid = /^Invalid value for (\w+): (.+)$/i.exec(raw);
  const index = invalid ? CRONER_FIELDS.indexOf(invalid[1].toLowerCase()) : -1;
  // croner counts days and months from 0 inside: its value is not the one written.
  if (index >= 0) return `${field(index)} is out of range (${FIELD_RANGES[index]})`;
  if (invalid) return `${invalid[1]} value ${invalid[2]} is out of range`;
  if (/illegal stepping: 0/.test(raw)) {
    const at = written.findIndex((f) => /\/0+(,|$)/.test(f));
    if (at >= 0) return `${field(at)} steps by 0, which never moves on: step by 1 or more`;
  }
  const backwards = /^From value is larger than to value: '(.+)'$/.exec(raw);
  if (backwards) {
    const at = written.findIndex((f) => f.split(",").some((part) => part.startsWith(backwards[1])));
    if (at >= 0) {
      return `${field(at)} has a range from high to low (${
        backwards[1]
      }): write the lower bound first`;
    }
  }
  const entry = /configuration entry (\d+) \((.*)\) contains illegal characters/.exec(raw);
  if (entry) {
    // croner numbers the fields from 0 with seconds first (a 5-field expression gets second 0).
    const name = FIELD_NAMES[Number(entry[1])] ?? `field ${entry[1]}`;
    return `the ${name} field ${JSON.stringify(entry[2])} has characters cron does not use`;
  }
  return raw.replace(/\.$/, "");
}

/**
 * Check a cron expression and time zone.
 *
 * @throws {RangeError} naming what is wrong (`Cannot use cron expression "61 * * * *": …`).
 *
 * @example
 * ```ts
 * import { validateCron } from "@flowstate/core/scheduler";
 * import assert from "node:assert/strict";
 *
 * validateCron("0,30 9-17 * * 1-5", "America/New_York"); // valid: returns nothing
 * assert.throws(() => validateCron("61 * * * *"), RangeError);
 * ```
 */
export function validateCron(expression: string, timezone: string = DEFAULT_TIMEZONE): void {
  const problem = cronProblem(expression, timezone);
  if (problem !== undefined) {
    throw new RangeError(`Cannot use cron expression ${JSON.stringify(expression)}: ${problem}`);
  }
}

/**
 * The first tick of `expression` strictly after `after` (ms since the epoch),
 * in `timezone` (default UTC), or `null` if there is none. Computed from
 * `after` alone, never from the wall clock.
 *
 * @throws {RangeError} when the expression or zone is invalid.
 *
 * @example
 * ```ts
 * import { nextTick } from "@flowstate/core/scheduler";
 * import assert from "node:assert/strict";
 *
 * const newYear = Date.UTC(2026, 0, 1); // 2026-01-01T00:00:00Z
 * assert.equal(nextTick("0 3 * * *", newYear), Date.UTC(2026, 0, 1, 3));
 * // 03:00 in Paris is 02:00 UTC in winter.
 * const paris = nextTick("0 3 * * *", newYear, "Europe/Paris");
 * assert.equal(paris, Date.UTC(2026, 0, 1, 2));
 * ```
 */
export function nextTick(
  expression: string,
  after: number,
  timezone: string = DEFAULT_TIMEZONE,
): number | null {
  assertTime(after, "after");
  const next = checked(expression, timezone).nextRun(new Date(after));
  return next === null ? null : next.getTime();
}

/**
 * The last tick of `expression` strictly before `before`, or `null` if there
 * is none. Computed from `before` alone.
 *
 * @throws {RangeError} when the expression or zone is invalid.
 *
 * @example
 * ```ts
 * import { previousTick } from "@flowstate/core/scheduler";
 * import assert from "node:assert/strict";
 *
 * const newYear = Date.UTC(2026, 0, 1); // 2026-01-01T00:00:00Z
 * const last = previousTick("@daily", newYear);
 * assert.equal(last, Date.UTC(2025, 11, 31));
 * ```
 */
export function previousTick(
  expression: string,
  before: number,
  timezone: string = DEFAULT_TIMEZONE,
): number | null {
  assertTime(before, "before");
  const [previous] = checked(expression, timezone).previousRuns(1, new Date(before));
  return previous === undefined ? null : previous.getTime();
}

function assertTime(ms: unknown, name: string): asserts ms is number {
  if (typeof ms !== "number" || !Number.isFinite(ms)) {
    throw new TypeError(
      `Cannot compute a cron tick: ${name} must be a finite number of ms (got ${String(ms)})`,
    );
  }
}

const DAY_MS = 86_400_000;

/**
 * The first local day within a year from `from` on which `expression` does
 * not run at all in `timezone` because the clocks skip every time it would
 * run that day (`*\/15 2 * * *` in Europe/Paris on a spring-forward night:
 * 02:00 to 03:00 does not exist, and a schedule with `*` or a step in its
 * time fields skips the times that do not exist), as a sentence saying what
 * to write instead; `undefined` when there is none. A schedule of fixed
 * times (`30 2 * * *`) runs after the gap, so it never has such a day.
 *
 * @throws {RangeError} when the expression or zone is invalid.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dstSkipProblem } from "./cron.ts";
 *
 * const from = Date.UTC(2026, 0, 1);
 * assert.match(dstSkipProblem("*\/15 2 * * *", from, "Europe/Paris")!, /2026-03-29/);
 * assert.equal(dstSkipProblem("30 2 * * *", from, "Europe/Paris"), undefined);
 * assert.equal(dstSkipProblem("*\/15 2 * * *", from, "UTC"), undefined);
 * ```
 */
export function dstSkipProblem(
  expression: string,
  from: number,
  timezone: string = DEFAULT_TIMEZONE,
): string | undefined {
  assertTime(from, "from");
  checked(expression, timezone);
  for (let day = from; day < from + 366 * DAY_MS; day += DAY_MS) {
    const before = offsetAt(day, timezone);
    const after = offsetAt(day + DAY_MS, timezone);
    if (after <= before) continue; // No gap: the clocks did not move forward this day.
    // The instant of the change, to the second.
    let low = day;
    let high = day + DAY_MS;
    while (high - low > 1000) {
      const mid = low + Math.floor((high - low) / 2000) * 1000;
      if (offsetAt(mid, timezone) === before) low = mid;
      else high = mid;
    }
    const wallDate = new Date(high + after).toISOString().slice(0, 10);
    const start = parseIsoTime(wallDate, timezone)!;
    const next = new Date(Date.parse(`${wallDate}T00:00:00Z`) + DAY_MS).toISOString().slice(0, 10);
    const end = parseIsoTime(next, timezone)!;
    // Whether the pattern names a time of that calendar day at all (in a zone without changes).
    const wallStart = Date.parse(`${wallDate}T00:00:00Z`);
    const named = nextTick(expression, wallStart - 1, "UTC");
    if (named === null || named >= wallStart + DAY_MS) continue;
    const runs = nextTick(expression, start - 1, timezone);
    if (runs !== null && runs < end) continue;
    const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);
    return `cron expression ${
      JSON.stringify(expression)
    } does not run at all on ${wallDate} in ${timezone}: the clocks skip from ${
      hhmm(high + before)
    } to ${
      hhmm(high + after)
    } that night, and a schedule with * or a step in its second, minute or hour field skips the times that do not exist; list its times without * or a step instead (as "0,30 2 * * *"): a time the clocks skip then runs once just after the gap; or choose times the clocks do not skip`;
  }
  return undefined;
}
