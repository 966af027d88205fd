/**
 * Giving the event loop a turn during long synchronous store work. Calls to
 * a synchronous backend (memory, sqlite) never yield on their own, so a loop
 * over them would starve timers and signal handlers (Ctrl-C would not reach
 * an AbortSignal). Every such loop uses one of these two.
 *
 * @module
 */

// `node:timers` is imported on the first yield, not with this module: the first `node:` built-in
// a process imports initialises Node compatibility (13–29 ms), which a short `flowstate run`
// (that never yields) does not need.
let immediate: ((callback: () => void) => unknown) | undefined;

/** Let timers, I/O callbacks and signal handlers run once. */
export async function yieldToEventLoop(): Promise<void> {
  immediate ??= (await import("node:timers")).setImmediate;
  return await new Promise((resolve) => immediate!(resolve));
}

/**
 * A function that yields to the event loop when at least `everyMs` of real
 * time passed since it last did, and otherwise resolves at once (cheaply:
 * `undefined`, so a caller may skip the `await`).
 *
 * Time is `Date.now()`: a caller that has just read it passes its reading
 * (`now`) and the check reads no clock (a clock reading costs ~0.1 µs here,
 * `performance.now()` twice that, and a flow's executor calls this per
 * node). A clock set back counts as time passed: the next call yields and
 * starts counting anew. A `Date.now()` that stands still (a test faking
 * `Date`) cannot stop the yields either: every {@linkcode MONOTONIC_CHECK_CALLS}th
 * call also reads the monotonic clock.
 */
export function periodicYield(everyMs = 50): (now?: number) => Promise<void> | undefined {
  let yieldedAt = Date.now();
  let yieldedAtMonotonic = performance.now();
  let calls = 0;
  return (now = Date.now()) => {
    const since = now - yieldedAt;
    if (since >= 0 && since <= everyMs) {
      if (++calls < MONOTONIC_CHECK_CALLS) return undefined;
      calls = 0;
      if (performance.now() - yieldedAtMonotonic <= everyMs) return undefined;
    }
    return yieldToEventLoop().then(() => {
      yieldedAt = Date.now();
      yieldedAtMonotonic = performance.now();
      calls = 0;
    });
  };
}

/** How often (in calls) {@linkcode periodicYield} checks the monotonic clock as well. */
const MONOTONIC_CHECK_CALLS = 64;
