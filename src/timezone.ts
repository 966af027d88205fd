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
