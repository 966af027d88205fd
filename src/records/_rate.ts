/**
 * The sliding window of a flow partition's `queue: { rate }`: the times of
 * its last claims, kept in one entry (`P, "queue", "rate", flowId,
 * partition` → `{ at: number[] }`) that every claim of the partition checks
 * and rewrites in its commit. A claim at `now` is allowed when fewer than
 * `limit` of the kept times are later than `now - perMs` (so no window of
 * `perMs` ever holds more than `limit` claims); the entry keeps the newest
 * `limit` of those, and expires `perMs` after its newest. Pure functions;
 * internal to `src/records/`.
 *
 * @module
 */

/** A rate: at most `limit` claims in any window of `perMs`. */
export interface RateWindow {
  /** Claims per window. */
  limit: number;
  /** The window, in ms. */
  perMs: number;
}

/** What a partition's rate entry holds. */
export interface RateLog {
  /** Claim times (ms since the epoch), oldest first. */
  at: number[];
}

/** The times of `times` that still count at `now` (later than `now - perMs`), oldest first. */
export function inWindow(times: readonly number[], rate: RateWindow, now: number): number[] {
  return times.filter((t) => typeof t === "number" && t > now - rate.perMs).sort((a, b) => a - b);
}

/** Whether a claim at `now` keeps the window within its limit. */
export function rateAllows(times: readonly number[], rate: RateWindow, now: number): boolean {
  return inWindow(times, rate, now).length < rate.limit;
}

/** The times to keep after a claim at `now`: the newest `limit` still in the window, and `now`. */
export function withClaim(times: readonly number[], rate: RateWindow, now: number): number[] {
  return [...inWindow(times, rate, now), now].sort((a, b) => a - b).slice(-rate.limit);
}

/**
 * The earliest times `count` more claims could be made at, one after the
 * other, from `now`, given the claims `times` holds: the first is when the
 * window first has room, the next when it has room again after that one,
 * and so on (each `>= now`). A run that waits for the window is due no
 * earlier than this: claims only ever add times, so room never comes sooner.
 */
export function nextSlots(
  times: readonly number[],
  rate: RateWindow,
  now: number,
  count: number,
): number[] {
  const claims = inWindow(times, rate, now);
  const out: number[] = [];
  for (let m = 0; m < count; m++) {
    const k = claims.length;
    const at = k < rate.limit ? now : Math.max(now, claims[k - rate.limit] + rate.perMs);
    out.push(at);
    claims.push(at);
    claims.sort((a, b) => a - b);
  }
  return out;
}
