/**
 * What `runs ls` and `runs ls --archived` share: their options and how a
 * `--since`/`--until` value is read.
 *
 * @module
 */
import { parseDuration } from "../duration.ts";
import type { RunStatus } from "../records/types.ts";
import { UsageError } from "./input.ts";
import { DEFAULT_TIMEZONE, parseIsoTime } from "../timezone.ts";

/** Options of `runs ls`. */
export interface ListRunsCommandOptions {
  /** `--flow ID`. */
  flow?: string;
  /** `--status S`. */
  status?: RunStatus;
  /** `--since T`: an ISO date or a duration ago (`1h`, `7d`). */
  since?: string;
  /** `--until T`: an ISO date or a duration ago. */
  until?: string;
  /** `--limit N` (default {@linkcode DEFAULT_RUNS_LIMIT}). */
  limit?: number;
  /** `--json`. */
  json?: boolean;
}

/** How many runs `runs ls` shows without `--limit`. */
export const DEFAULT_RUNS_LIMIT = 20;

/**
 * Parse a `--since`/`--until` value: an ISO 8601 date or date-time
 * (`2026-05-01`, `2026-05-01T12:00:00Z`; without an offset, a time in
 * `timezone`, the config's, in which tables show times: a date alone is its
 * midnight there), or a duration meaning that long before `now` (`90s`, `30m`,
 * `1h`, `7d`, `1h30m`).
 */
export function parseTimeOption(
  text: string,
  option: string,
  now: number,
  timezone: string = DEFAULT_TIMEZONE,
): number {
  const trimmed = text.trim();
  if (/^[\d.]+(ms|s|m|h|d)/.test(trimmed)) {
    try {
      return now - parseDuration(trimmed, option);
    } catch {
      // Reported below.
    }
  } else {
    const ms = parseIsoTime(trimmed, timezone);
    if (ms !== undefined) return ms;
  }
  throw new UsageError(
    `Invalid ${option} "${text}": expected an ISO date (2026-05-01, 2026-05-01T12:00:00Z) ` +
      `or how long ago (30m, 1h, 7d)`,
  );
}

/**
 * A point in a store's history, as `--at` of `state get` and `restore` take it:
 * `#<seq>` (a change's sequence number), a time (ISO 8601,
 * `2026-12-04T21:15:00Z`; without an offset, in `timezone`, the config's), how
 * long ago (`30m`, `1h`, `7d`), or ms since the epoch. Anything else is a
 * {@linkcode UsageError} naming `option`.
 */
export function parsePointInTime(
  text: string,
  option: string,
  now: number,
  timezone: string = DEFAULT_TIMEZONE,
): { seq: number } | { time: number } {
  const t = text.trim();
  const expected = `expected #<sequence number>, a time like 2026-12-04T21:15:00Z, how long ago ` +
    `(30m, 1h, 7d), or ms since the epoch`;
  if (t.startsWith("#")) {
    if (!/^#\d+$/.test(t)) {
      throw new UsageError(`${option} ${text}: after "#" comes a sequence number, like #42`);
    }
    return { seq: Number(t.slice(1)) };
  }
  if (/^\d+$/.test(t)) {
    // Fewer digits than any time since 1973 in ms: seconds, or a sequence number without "#".
    if (t.length < 12) {
      throw new UsageError(
        `${option} ${text}: a number is ms since the epoch (13 digits today, ${now}); ` +
          `for change ${t} write '#${t}', for seconds add 000`,
      );
    }
    return { time: Number(t) };
  }
  if (/^[\d.]+(ms|s|m|h|d)$/.test(t)) {
    try {
      return { time: now - parseDuration(t, option) };
    } catch {
      // Reported below.
    }
  } else {
    // ISO 8601 only: Date.parse also takes "Dec 5" (of 2001) or "5.12.2026" (12 May).
    const time = parseIsoTime(t, timezone);
    if (time !== undefined) return { time };
  }
  throw new UsageError(`${option} ${JSON.stringify(text)}: ${expected}`);
}

/**
 * `--since` and `--until` of `options`, read with {@linkcode parseTimeOption};
 * a range that holds no time (`--since` not before `--until`) is a
 * {@linkcode UsageError}, not an empty listing.
 */
export function parseTimeRange(
  options: Pick<ListRunsCommandOptions, "since" | "until">,
  now: number,
  timezone: string = DEFAULT_TIMEZONE,
): { since: number | undefined; until: number | undefined } {
  const since = options.since === undefined
    ? undefined
    : parseTimeOption(options.since, "--since", now, timezone);
  const until = options.until === undefined
    ? undefined
    : parseTimeOption(options.until, "--until", now, timezone);
  if (since !== undefined && until !== undefined && since >= until) {
    throw new UsageError(
      `Invalid --since "${options.since}" and --until "${options.until}": --since must come ` +
        `before --until (runs started at or after --since and before --until are listed)`,
    );
  }
  return { since, until };
}
