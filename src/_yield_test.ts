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
