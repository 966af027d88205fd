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

/** Real timers (`setTimeout`). */
export const realTimers: Timers = {
  sleep(ms, signal) {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const id = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(id);
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  },
};
