/**
 * Time zones of schedules: the default, and checking a zone's name. Apart
 * from `cron.ts` (which re-exports these), so that reading a config does not
 * load croner.
 *
 * @module
 */
import { suggest } from "./_suggest.ts";

/** The zone schedules use unless one is given. */
export const DEFAULT_TIMEZONE = "UTC";

/**
 * Why `timezone` is not an IANA time zone Intl knows (`unknown time zone
 * "Europe/Pari" (did you mean "Europe/Paris"?)`), or `undefined` when it is one.
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

/** The canonical spelling of a valid time zone (`"utc"` → `"UTC"`). */
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
