/**
 * Time zones of schedules: the default, and checking a zone's name. Apart
 * from `cron.ts` (which re-exports these), so that reading a config does not
 * load croner.
 *
 * @module
 */
import { suggest } from "./_suggest.ts";

/**
 * The zone schedules use unless one is given.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_TIMEZONE, nextTick } from "@flowstate/core/scheduler";
 *
 * assert.equal(DEFAULT_TIMEZONE, "UTC");
 * const next = nextTick("0 3 * * *", Date.UTC(2026, 0, 1, 12), DEFAULT_TIMEZONE);
 * assert.equal(next, Date.UTC(2026, 0, 2, 3));
 * ```
 */
export const DEFAULT_TIMEZONE = "UTC";

/**
 * Why `timezone` is not an IANA time zone Intl knows (`unknown time zone
 * "Europe/Pari" (did you mean "Europe/Paris"?)`), or `undefined` when it is one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { timezoneProblem } from "@flowstate/core/scheduler";
 *
 * assert.equal(timezoneProblem("Europe/Paris"), undefined);
 * assert.match(timezoneProblem("Europe/Pari")!, /did you mean "Europe\/Paris"/);
 * ```
 */
export function timezoneProblem(timezone: unknown): string | undefined {
  if (typeof timezone !== "string" || timezone.trim() === "") {
    return `expected an IANA time zone like "Europe/Paris" or "UTC", got ${describe(timezone)}`;
  }
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: timezone });
    return undefined;
  } catch {
    const known = [...Intl.supportedValuesOf("timeZone"), "UTC"];
    const near = suggest(timezone, known);
    return `unknown time zone ${JSON.stringify(timezone)}${
      near === undefined ? "" : ` (did you mean "${near}"?)`
    }; use an IANA name like "Europe/Paris", "America/New_York" or "UTC"`;
  }
}

/**
 * The canonical spelling of a valid time zone (`"utc"` → `"UTC"`); a
 * `RangeError` saying why for an invalid one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { canonicalTimezone } from "@flowstate/core/scheduler";
 *
 * assert.equal(canonicalTimezone("utc"), "UTC");
 * assert.equal(canonicalTimezone("europe/paris"), "Europe/Paris");
 * assert.throws(() => canonicalTimezone("Mars/Base"), RangeError);
 * ```
 */
export function canonicalTimezone(timezone: string): string {
  const problem = timezoneProblem(timezone);
  if (problem !== undefined) throw new RangeError(`Cannot use time zone: ${problem}`);
  return new Intl.DateTimeFormat("en-US", { timeZone: timezone }).resolvedOptions().timeZone;
}

/** A value as a config message names it (`the string "x"`, `a list`…). */
export function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "an empty value";
  if (typeof value === "string") return `the string ${JSON.stringify(value)}`;
  if (Array.isArray(value)) return "a list";
  return typeof value === "object" ? "a mapping" : `${typeof value} ${String(value)}`;
}

const ISO_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/**
 * An ISO 8601 date or date-time as epoch ms, or `undefined` when `text` is
 * not one. With an offset (`Z`, `+01:00`) it is that instant; without one it
 * is a wall-clock time in `timezone` (a date alone is its midnight there), as
 * the CLI shows times: the same text means the same instant whatever the
 * process's `TZ`. A wall time a clock change skips is read with the offset
 * before the change (02:30 on a spring-forward night is 03:30); one it
 * repeats is the earlier of the two.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseIsoTime } from "./timezone.ts";
 *
 * assert.equal(parseIsoTime("2026-12-06T12:00", "Europe/Paris"), Date.UTC(2026, 11, 6, 11));
 * assert.equal(parseIsoTime("2026-12-06T12:00Z", "Europe/Paris"), Date.UTC(2026, 11, 6, 12));
 * assert.equal(parseIsoTime("2026-12-06", "UTC"), Date.UTC(2026, 11, 6));
 * assert.equal(parseIsoTime("Dec 6", "UTC"), undefined);
 * assert.equal(parseIsoTime("0050-06-01", "UTC"), Date.parse("0050-06-01T00:00:00Z"));
 * ```
 */
export function parseIsoTime(text: string, timezone: string): number | undefined {
  const m = ISO_TIME.exec(text.trim());
  if (m === null) return undefined;
  const [, y, mo, d, h = "0", mi = "0", s = "0", frac = "", zone] = m;
  const fields = [Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)] as const;
  // (Not Date.UTC: it reads the years 0 to 99 as 1900 to 1999.)
  const date = new Date(0);
  date.setUTCFullYear(fields[0], fields[1], fields[2]);
  date.setUTCHours(fields[3], fields[4], fields[5]);
  const wall = date.getTime() + Number(frac.slice(0, 3).padEnd(3, "0"));
  // Date.UTC rolls 2026-02-30 over to March: such a date is not one.
  const check = new Date(wall);
  if (
    check.getUTCFullYear() !== fields[0] || check.getUTCMonth() !== fields[1] ||
    check.getUTCDate() !== fields[2] || check.getUTCHours() !== fields[3] ||
    check.getUTCMinutes() !== fields[4] || check.getUTCSeconds() !== fields[5]
  ) return undefined;
  if (zone !== undefined) {
    if (zone.toUpperCase() === "Z") return wall;
    const sign = zone[0] === "-" ? -1 : 1;
    const digits = zone.slice(1).replace(":", "");
    const offset = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || "0");
    return wall - sign * offset * 60_000;
  }
  // The zone's offset a day either side of the wall time; the instant whose wall time in the
  // zone is `wall` uses one of them (both, when a clock change repeats it: the earlier).
  const DAY = 86_400_000;
  const candidates = [...new Set([offsetAt(wall - DAY, timezone), offsetAt(wall + DAY, timezone)])]
    .map((offset) => wall - offset);
  const exact = candidates.filter((t) => t + offsetAt(t, timezone) === wall);
  return exact.length > 0 ? Math.min(...exact) : candidates[0];
}

const offsetFormats = new Map<string, Intl.DateTimeFormat>();

/**
 * How far `timezone`'s wall clock is ahead of UTC at `time` (ms); `timezone`
 * must be valid (see {@linkcode timezoneProblem}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { offsetAt } from "./timezone.ts";
 *
 * assert.equal(offsetAt(Date.UTC(2026, 0, 1), "Europe/Paris"), 3_600_000);
 * assert.equal(offsetAt(Date.UTC(2026, 6, 1), "Europe/Paris"), 7_200_000);
 * assert.equal(offsetAt(Date.UTC(2026, 0, 1), "UTC"), 0);
 * // New York's local mean time, in the first century too.
 * assert.equal(offsetAt(Date.parse("0001-01-01T00:00:00Z"), "America/New_York"), -17_762_000);
 * ```
 */
export function offsetAt(time: number, timezone: string): number {
  let format = offsetFormats.get(timezone);
  if (format === undefined) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone: timezone,
      hourCycle: "h23",
      era: "short",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    offsetFormats.set(timezone, format);
  }
  const parts: Record<string, number> = {};
  let bc = false;
  for (const p of format.formatToParts(time)) {
    if (p.type === "era") bc = p.value === "BC";
    else if (p.type !== "literal") parts[p.type] = Number(p.value);
  }
  // The wall time as a UTC instant: setUTCFullYear, as Date.UTC reads years 0 to 99 as 1900 to
  // 1999; a year BC (the year 0 is 1 BC) counted back from it.
  const wall = new Date(0);
  wall.setUTCFullYear(bc ? 1 - parts.year : parts.year, parts.month - 1, parts.day);
  wall.setUTCHours(parts.hour, parts.minute, parts.second);
  const whole = time - (((time % 1000) + 1000) % 1000);
  return wall.getTime() - whole;
}
