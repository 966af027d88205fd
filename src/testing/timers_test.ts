import assert from "node:assert/strict";
import { fakeClock } from "./clock.ts";
import { manualTimers } from "./timers.ts";

Deno.test("manualTimers: sleep(Infinity) wakes on no advance, only when its signal aborts; NaN is refused", async () => {
  const timers = manualTimers(fakeClock(0));
  const controller = new AbortController();
  let woke = false;
  const sleeping = timers.sleep(Infinity, controller.signal).then(() => (woke = true));
  await timers.advance(1e12);
  assert.equal(woke, false);
  assert.equal(timers.pending, 1);
  controller.abort(new Error("stop"));
  await assert.rejects(sleeping, /stop/);
  assert.equal(timers.pending, 0);
  await assert.rejects(timers.sleep(NaN), RangeError);
});
