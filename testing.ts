/**
 * Test helpers for Flowstate storage plugins: the Store conformance suite
 * that every plugin, built in or third party, runs, and a fake clock; and
 * for tests of flows, {@linkcode recordCalls}: a node mock (see
 * `RunFlowOptions.mocks`) that keeps what the node would have been run with.
 *
 * A plugin's test file registers the suite with a function that opens a
 * store for a case id. The same id must reopen the same data (a file named
 * after the id, a table, a key prefix…); a new id must give an empty store.
 * Pass the case's clock to `openStore` so expiry follows the fake clock:
 *
 * ```ts
 * // memory_test.ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { fakeClock, testStore } from "@flowstate/core/testing";
 * import memory from "@flowstate/core/plugins/memory";
 *
 * testStore("memory", ({ clock, indexes, search, changes }) =>
 *   openStore({ plugin: memory, indexes, search, changes }, { clock })
 * );
 *
 * // What only this backend does gets its own tests beside the suite; move
 * // the fake clock instead of sleeping.
 * Deno.test("memory plugin forgets an entry when it expires", async () => {
 *   const clock = fakeClock();
 *   await using store = await openStore({ plugin: memory }, { clock });
 *   await store.set(["session"], "token", { expireIn: 60_000 });
 *   clock.advance(60_000);
 *   assert.equal(await store.get(["session"]), null);
 * });
 * ```
 *
 * Each case is a step of one `Deno.test`, so the report lists them all. A
 * backend that truly cannot do something skips that case with a reason,
 * in code, where reviewers see it:
 *
 * ```ts
 * import type { ConformanceOptions } from "@flowstate/core/testing";
 *
 * // Pass as the third argument: testStore("my-backend", open, options).
 * const options: ConformanceOptions = {
 *   skip: { "a 1 MB string value round-trips": "the service caps values at 512 KB" },
 * };
 * ```
 *
 * @module
 */
export { type FakeClock, fakeClock } from "./src/testing/clock.ts";
export {
  type ConformanceContext,
  type ConformanceOptions,
  DEFAULT_CHILD_FLAGS,
  type MultiProcessOptions,
  type OpenStoreForTest,
  type SecondProcessSpec,
  testStore,
} from "./src/testing/conformance/mod.ts";
export { type ManualTimers, manualTimers } from "./src/testing/timers.ts";
export { recordCalls, type RecordedCalls } from "./src/flow/mocks.ts";
export type { Clock, Timers } from "./src/clock.ts";
export type { Store } from "./src/store/types.ts";
