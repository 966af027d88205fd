/**
 * Time, injected: a {@linkcode Clock} to read it and {@linkcode Timers} to wait
 * on it. Everything that reads the time or sleeps takes one of these, so tests
 * move time with a fake clock instead of sleeping. This module is the ground
 * floor: it imports nothing.
 *
 * @module
 */

/**
 * A clock, injected so tests can move time instead of sleeping.
 *
 * @example
 * ```ts
 * import type { Clock } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * const frozen: Clock = { now: () => 0 };
 * assert.equal(frozen.now(), 0);
 * ```
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

/** The system clock (`Date.now()`). The one default every module shares. */
export const systemClock: Clock = { now: () => Date.now() };

/** Timers, injected so tests can move time instead of waiting. */
export interface Timers {
  /** Resolve after `ms`; reject with the signal's reason if it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The longest delay of one timer (a signed 32-bit number of milliseconds). */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * Real timers. The delay is an `AbortSignal.timeout`, not `setTimeout`: in
 * Deno 2.9 the first `setTimeout` of a process loads Node's timers (and their
 * async hooks), 20–80 ms on a cold start, while a timeout signal is Deno's
 * own timer. The wait keeps the process alive while someone awaits it, and
 * stops doing so when `signal` cancels it (its listener is removed). A wait
 * longer than one timer can hold (about 24.8 days) is a chain of timers, and
 * `Infinity` waits until `signal` aborts (a timer's own reading of either is
 * about 1 ms); a negative or NaN wait is none.
 */
export const realTimers: Timers = {
  sleep(ms, signal) {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      let left = ms === Infinity ? Infinity : Number.isFinite(ms) && ms > 0 ? Math.floor(ms) : 0;
      let timeout: AbortSignal;
      const onAbort = () => {
        timeout.removeEventListener("abort", onTimeout);
        reject(signal!.reason);
      };
      const onTimeout = () => {
        if (left > 0) return wait();
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      const wait = () => {
        const step = Math.min(left, MAX_TIMER_MS);
        left -= step; // Infinity stays Infinity
        timeout = AbortSignal.timeout(step);
        timeout.addEventListener("abort", onTimeout, { once: true });
      };
      wait();
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  },
};
