/**
 * Manual timers for tests: sleepers wake only when the test moves a
 * {@linkcode FakeClock} through them, so nothing waits on the wall clock.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import type { Timers } from "../clock.ts";
import type { FakeClock } from "./clock.ts";

/** {@linkcode Timers} that a test drives by moving a fake clock. */
export interface ManualTimers extends Timers {
  /** Move the clock to `to`, waking every sleeper that falls due on the way, in order. */
  advanceTo(to: number): Promise<void>;
  /** Move the clock forward by `ms`. */
  advance(ms: number): Promise<void>;
  /** Let pending promise chains run (no time passes). */
  settle(): Promise<void>;
  /** Sleepers waiting. */
  readonly pending: number;
}

/**
 * Make {@linkcode ManualTimers} over `clock`: `sleep(ms)` wakes when the test
 * advances the clock to `now + ms` (`sleep(Infinity)` never does); an aborted
 * signal rejects it at once.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fakeClock, manualTimers } from "@flowstate/core/testing";
 *
 * const clock = fakeClock(0);
 * const timers = manualTimers(clock);
 * let woke = false;
 * const sleeping = timers.sleep(1_000).then(() => (woke = true));
 * await timers.advance(999);
 * assert.equal(woke, false);
 * await timers.advance(1);
 * await sleeping;
 * assert.equal(woke, true);
 * assert.equal(clock.now(), 1_000);
 * ```
 */
export function manualTimers(clock: FakeClock): ManualTimers {
  const sleepers = new Set<{ due: number; resolve: () => void }>();
  const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
  // Enough event-loop turns for store commits and records to finish; no wall-clock waits.
  const settle = async () => {
    for (let i = 0; i < 40; i++) await turn();
  };
  const timers: ManualTimers = {
    sleep(ms, signal) {
      return new Promise<void>((resolve, reject) => {
        if (signal?.aborted) return reject(signal.reason);
        if (Number.isNaN(ms) || ms === -Infinity) {
          throw new RangeError(`Cannot sleep: ms must be a number, or Infinity (got ${ms})`);
        }
        const sleeper = {
          due: clock.now() + Math.max(0, ms),
          resolve: () => {
            signal?.removeEventListener("abort", onAbort);
            resolve();
          },
        };
        const onAbort = () => {
          sleepers.delete(sleeper);
          reject(signal!.reason);
        };
        signal?.addEventListener("abort", onAbort, { once: true });
        sleepers.add(sleeper);
      });
    },
    async advanceTo(to) {
      await settle();
      for (;;) {
        let due = Infinity;
        for (const s of sleepers) due = Math.min(due, s.due);
        if (due > to || due === Infinity) break; // Infinity: only an abort ends it
        if (due > clock.now()) clock.set(due);
        for (const s of [...sleepers]) {
          if (s.due <= clock.now()) {
            sleepers.delete(s);
            s.resolve();
          }
        }
        await settle();
      }
      if (clock.now() < to) clock.set(to);
      await settle();
    },
    advance(ms) {
      return timers.advanceTo(clock.now() + ms);
    },
    settle,
    get pending() {
      return sleepers.size;
    },
  };
  return timers;
}
