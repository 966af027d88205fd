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
