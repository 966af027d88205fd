/**
 * Timers for `runFlow`/`resumeRun` whose sleeps of one duration (a node's
 * `timeout:`) fire only when the test says, while every other sleep is real:
 * a test of a timeout then acts at the moment it means, not before a real
 * short timeout that a loaded machine may reach first.
 *
 * @module
 */
import type { Timers } from "../mod.ts";

/** A node `timeout:` of 7m in ms: no other sleep of the tests' runs asks for it. */
export const FIRED_MS = 420_000;

/**
 * Timers whose sleeps of `ms` (default {@linkcode FIRED_MS}) wait for the
 * test: `nth(i)` resolves with the function that ends the `i`th such sleep
 * asked for (from 0), once it has been asked for.
 */
export function firedTimers(ms = FIRED_MS): {
  timers: Timers;
  nth: (i: number) => Promise<() => void>;
} {
  const asked: PromiseWithResolvers<() => void>[] = [];
  const slot = (i: number) => asked[i] ??= Promise.withResolvers<() => void>();
  let count = 0;
  const timers: Timers = {
    sleep(wanted, signal) {
      return new Promise<void>((resolve, reject) => {
        if (signal?.aborted) return reject(signal.reason);
        let timer: ReturnType<typeof setTimeout> | undefined;
        signal?.addEventListener("abort", () => {
          clearTimeout(timer);
          reject(signal.reason);
        }, { once: true });
        if (wanted === ms) slot(count++).resolve(resolve);
        else timer = setTimeout(resolve, wanted);
      });
    },
  };
  return { timers, nth: (i) => slot(i).promise };
}
