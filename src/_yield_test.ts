import assert from "node:assert/strict";
import { periodicYield } from "./_yield.ts";

Deno.test("periodicYield() yields once its time passed, and when the clock was set back", async () => {
  const breathe = periodicYield(50);
  const now = Date.now();
  assert.equal(breathe(now), undefined); // just made: no yield
  const later = breathe(now + 51);
  assert.ok(later instanceof Promise);
  await later;
  assert.equal(breathe(), undefined); // it counts anew from its yield
  // A clock set back an hour would otherwise stop the yields for an hour.
  const back = breathe(Date.now() - 3_600_000);
  assert.ok(back instanceof Promise);
  await back;
});

Deno.test("periodicYield() still yields when Date.now() stands still (a test faking Date)", async () => {
  const breathe = periodicYield(1);
  const realNow = Date.now;
  const frozen = realNow();
  Date.now = () => frozen;
  try {
    const until = performance.now() + 5;
    while (performance.now() < until) { /* the monotonic clock moves on, Date does not */ }
    let yielded: Promise<void> | undefined;
    for (let i = 0; i < 1_000 && yielded === undefined; i++) yielded = breathe(frozen);
    assert.ok(yielded instanceof Promise, "no yield in 1,000 calls with Date.now() frozen");
    await yielded;
  } finally {
    Date.now = realNow;
  }
});
