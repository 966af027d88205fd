/**
 * A fake clock for tests: time moves only when the test moves it.
 *
 * @module
 */
import type { Clock } from "../store/types.ts";

/**
 * A {@linkcode Clock} whose time a test sets and advances by hand.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { type FakeClock, fakeClock } from "@flowstate/core/testing";
 *
 * const clock: FakeClock = fakeClock(Date.UTC(2026, 0, 1));
 * await using store = await openStore({ plugin: "memory" }, { clock });
 * await store.set(["session"], "abc", { expireIn: 60_000 });
 * clock.advance(59_999);
 * assert.equal((await store.get(["session"]))?.value, "abc");
 * clock.advance(1);
 * assert.equal(await store.get(["session"]), null); // expired, without waiting a minute
 * ```
 */
export interface FakeClock extends Clock {
  /** The current fake time, in milliseconds since the epoch. */
  now(): number;
  /** Move time forward by `ms` milliseconds (a finite number `>= 0`). */
  advance(ms: number): void;
  /** Jump to `ms` milliseconds since the epoch (backwards too). */
  set(ms: number): void;
}

/**
 * Where a fake clock starts unless told otherwise: 2026-01-01T00:00:00Z. It is
 * fixed, so tests are repeatable, and in the past, so a backend that mixes the
 * injected clock with the system clock fails at once instead of some day.
 */
const DEFAULT_START = Date.UTC(2026, 0, 1);

function assertTime(ms: unknown, what: string): asserts ms is number {
  if (typeof ms !== "number" || !Number.isFinite(ms)) {
    throw new TypeError(`${what}: expected a finite number of milliseconds (got ${String(ms)})`);
  }
}

/**
 * Make a {@linkcode FakeClock} starting at `start` (default
 * 2026-01-01T00:00:00Z). Pass it as `clock` to `openStore` and move time with
 * `advance` instead of sleeping.
 *
 * @example
 * ```ts
 * import { fakeClock } from "@flowstate/core/testing";
 * import assert from "node:assert/strict";
 *
 * const clock = fakeClock(1_000);
 * clock.advance(500);
 * assert.equal(clock.now(), 1_500);
 * clock.set(0);
 * assert.equal(clock.now(), 0);
 * ```
 */
export function fakeClock(start: number = DEFAULT_START): FakeClock {
  assertTime(start, "Cannot create fake clock");
  let time = start;
  return {
    now: () => time,
    advance(ms: number): void {
      assertTime(ms, "Cannot advance fake clock");
      if (ms < 0) {
        throw new RangeError(
          `Cannot advance fake clock by ${ms} ms: time only moves forward; use set() to go back (now ${time})`,
        );
      }
      time += ms;
    },
    set(ms: number): void {
      assertTime(ms, "Cannot set fake clock");
      time = ms;
    },
  };
}
