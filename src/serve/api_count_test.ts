import assert from "node:assert/strict";
import { countOf, type ServerState } from "./api.ts";
import type { Store } from "../store/types.ts";

/** A store whose count advances the fake clock by `ms` and returns how many counts it made. */
function fakeStore(clock: { now: number }, ms: number): { store: Store; calls: () => number } {
  let calls = 0;
  const store = {
    count: () => {
      calls++;
      clock.now += ms;
      return Promise.resolve(calls);
    },
  } as unknown as Store;
  return { store, calls: () => calls };
}

Deno.test("GET /api/stores counts: a slow count is shared and reused for a while, a fast one is always fresh", async () => {
  const server = {} as ServerState;
  const clock = { now: 0 };
  const now = () => clock.now;
  const slow = fakeStore(clock, 200);
  const [a, b] = await Promise.all([
    countOf(server, "big", slow.store, now),
    countOf(server, "big", slow.store, now),
  ]);
  assert.deepEqual([a, b, slow.calls()], [1, 1, 1], "concurrent requests share one count");
  assert.equal(await countOf(server, "big", slow.store, now), 1, "reused after a slow count");
  clock.now += 200 * 20; // 20 times what it took: counted again
  assert.equal(await countOf(server, "big", slow.store, now), 2);

  const fast = fakeStore(clock, 1);
  assert.equal(await countOf(server, "small", fast.store, now), 1);
  assert.equal(await countOf(server, "small", fast.store, now), 2, "a fast count is never reused");
});
