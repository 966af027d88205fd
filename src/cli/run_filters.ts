/**
 * What `runs ls` and `runs ls --archived` share: their options and how a
 * `--since`/`--until` value is read.
 *
 * @module
 */
import { parseDuration } from "../duration.ts";
import type { RunStatus } from "../records/types.ts";
import { UsageError } from "./input.ts";

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
 * (`2026-05-01`, `2026-05-01T12:00:00Z`; a date alone is midnight UTC), or a
 * duration meaning that long before `now` (`90s`, `30m`, `1h`, `7d`, `1h30m`).
 */
export function parseTimeOption(text: string, option: string, now: number): number {
  const trimmed = text.trim();
  if (/^[\d.]+(ms|s|m|h|d)/.test(trimmed)) {
    try {
      return now - parseDuration(trimmed, option);
    } catch {
      // Reported below.
    }
  } else if (/^\d{4}-\d{2}-\d{2}/.test(trimmed)) {
    const ms = Date.parse(trimmed);
    if (Number.isFinite(ms)) return ms;
  }
  throw new UsageError(
    `Invalid ${option} "${text}": expected an ISO date (2026-05-01, 2026-05-01T12:00:00Z) ` +
      `or how long ago (30m, 1h, 7d)`,
  );
}

/**
 * `--since` and `--until` of `options`, read with {@linkcode parseTimeOption};
 * a range that holds no time (`--since` not before `--until`) is a
 * {@linkcode UsageError}, not an empty listing.
 */
export function parseTimeRange(
  options: Pick<ListRunsCommandOptions, "since" | "until">,
  now: number,
): { since: number | undefined; until: number | undefined } {
  const since = options.since === undefined
    ? undefined
    : parseTimeOption(options.since, "--since", now);
  const until = options.until === undefined
    ? undefined
    : parseTimeOption(options.until, "--until", now);
  if (since !== undefined && until !== undefined && since >= until) {
    throw new UsageError(
      `Invalid --since "${options.since}" and --until "${options.until}": --since must come ` +
        `before --until (runs started at or after --since and before --until are listed)`,
    );
  }
  return { since, until };
}
