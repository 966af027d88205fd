import assert from "node:assert/strict";
import { inWindow, nextSlots, rateAllows, withClaim } from "./_rate.ts";

const rate = { limit: 3, perMs: 1_000 };

Deno.test("rate window: a claim counts while it is later than now - perMs", () => {
  assert.deepEqual(inWindow([5_000, 4_000, 4_500], rate, 5_000), [4_500, 5_000]);
  assert.deepEqual(inWindow([4_001], rate, 5_000), [4_001]);
  assert.deepEqual(inWindow([4_000], rate, 5_000), [], "exactly perMs ago: out");
  // A time ahead of this clock (another worker's clock runs fast) counts.
  assert.deepEqual(inWindow([5_200], rate, 5_000), [5_200]);
});

Deno.test("rate window: allowed while fewer than limit count; the entry keeps the newest limit", () => {
  assert.ok(rateAllows([], rate, 0));
  assert.ok(rateAllows([1, 2], rate, 3));
  assert.equal(rateAllows([1, 2, 3], rate, 3), false);
  assert.ok(rateAllows([1, 2, 3], rate, 1_001), "the first aged out");
  assert.deepEqual(withClaim([], rate, 7), [7]);
  assert.deepEqual(withClaim([2, 1], rate, 3), [1, 2, 3]);
  assert.deepEqual(withClaim([1, 2, 3], rate, 1_001), [2, 3, 1_001]);
  assert.deepEqual(withClaim([10, 900, 950], { limit: 2, perMs: 1_000 }, 1_000), [950, 1_000]);
});

Deno.test("rate window: claims made as soon as allowed never put more than limit in any window", () => {
  // Simulate claimers arriving at random times, each claiming if allowed.
  for (let seed = 1; seed < 50; seed++) {
    let x = seed;
    const random = () => (x = (x * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const r = { limit: 1 + Math.floor(random() * 5), perMs: 1 + Math.floor(random() * 500) };
    let log: number[] = [];
    const claims: number[] = [];
    let now = 0;
    for (let i = 0; i < 300; i++) {
      now += Math.floor(random() * 50);
      if (!rateAllows(log, r, now)) continue;
      log = withClaim(log, r, now);
      claims.push(now);
    }
    for (let i = 0; i + r.limit < claims.length; i++) {
      assert.ok(claims[i + r.limit] - claims[i] >= r.perMs, `seed ${seed}`);
    }
  }
});

Deno.test("rate window: nextSlots is when the window has room, one claim after the other", () => {
  // Full at 5000 with claims at 4100, 4500, 5000: room when 4100 ages out (5100), then
  // 4500's (5500), then 5000's (6000), then the first of those (6100).
  assert.deepEqual(nextSlots([4_100, 4_500, 5_000], rate, 5_000, 4), [5_100, 5_500, 6_000, 6_100]);
  // Room now: the first is now.
  assert.deepEqual(nextSlots([4_500], rate, 5_000, 3), [5_000, 5_000, 5_500]);
  assert.deepEqual(nextSlots([], rate, 5_000, 0), []);
  // Each slot is one a claim could take: claiming at each keeps every window within limit.
  let log = [4_100, 4_500, 5_000];
  for (const at of nextSlots(log, rate, 5_000, 6)) {
    assert.ok(rateAllows(log, rate, at), `room at ${at}`);
    assert.equal(rateAllows(log, rate, at - 1), false, `no room just before ${at}`);
    log = withClaim(log, rate, at);
  }
});
