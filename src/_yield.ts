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
 * starts counting anew, so no setting of the clock can stop the yields.
 */
export function periodicYield(everyMs = 50): (now?: number) => Promise<void> | undefined {
  let yieldedAt = Date.now();
  return (now = Date.now()) => {
    const since = now - yieldedAt;
    if (since >= 0 && since <= everyMs) return undefined;
    return yieldToEventLoop().then(() => {
      yieldedAt = Date.now();
    });
  };
}
