import assert from "node:assert/strict";
import { formatRate, MAX_RATE_LIMIT, parseRate, rateProblem } from "./rate.ts";

Deno.test("parseRate: <count>/<duration>, spaces around the parts allowed", () => {
  assert.deepEqual(parseRate("10/1m", "rate"), { limit: 10, perMs: 60_000 });
  assert.deepEqual(parseRate(" 100 / 1s ", "rate"), { limit: 100, perMs: 1_000 });
  assert.deepEqual(parseRate("5/1h30m", "rate"), { limit: 5, perMs: 5_400_000 });
  assert.deepEqual(parseRate(`${MAX_RATE_LIMIT}/1d`, "rate"), {
    limit: MAX_RATE_LIMIT,
    perMs: 86_400_000,
  });
  assert.equal(formatRate({ limit: 5, perMs: 5_400_000 }), "5/1h30m");
});

Deno.test("parseRate: what is wrong and how to write it", () => {
  const cases: [unknown, RegExp][] = [
    ["10 per minute", /expected a rate like "10\/1m".*got "10 per minute"/],
    ["10/60", /"60" is not a duration/],
    ["0/1m", /a whole number from 1 to 1000, got "0\/1m"/],
    ["10/0s", /the window must be at least 1ms/],
    ["5000/1h", /from 1 to 1000 .*got "5000\/1h": use a shorter window, like "1000\/12m"/],
    [10, /got the number 10 \(write "10\/1m"/],
    [null, /got null/],
    ["1.5/1m", /expected a rate like/],
  ];
  for (const [value, message] of cases) {
    assert.match(rateProblem(value) ?? "(no problem)", message, JSON.stringify(value));
    assert.throws(
      () => parseRate(value, "queue.rate"),
      (err: unknown) =>
        err instanceof RangeError && /^Cannot use queue\.rate as a rate: /.test(err.message),
    );
  }
  assert.equal(rateProblem("10/1m"), undefined);
});
