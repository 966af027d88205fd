import assert from "node:assert/strict";
import { DURATION_PATTERN, durationProblem, parseDuration } from "./duration.ts";

Deno.test("parseDuration() reads every unit", () => {
  assert.equal(parseDuration("500ms", "t"), 500);
  assert.equal(parseDuration("2s", "t"), 2_000);
  assert.equal(parseDuration("1.5m", "t"), 90_000);
  assert.equal(parseDuration("1h", "t"), 3_600_000);
  assert.equal(parseDuration("1d", "t"), 86_400_000);
  assert.equal(parseDuration(".5s", "t"), 500);
  assert.equal(parseDuration("0.5ms", "t"), 0.5);
  assert.equal(parseDuration(" 10m ", "t"), 600_000);
});

Deno.test("parseDuration() adds up compound strings", () => {
  assert.equal(parseDuration("1h30m", "t"), 5_400_000);
  assert.equal(parseDuration("1m30s500ms", "t"), 90_500);
});

Deno.test("parseDuration() takes a number as milliseconds", () => {
  assert.equal(parseDuration(250, "t"), 250);
  assert.equal(parseDuration(0, "t"), 0);
});

Deno.test("parseDuration() rejects a string without a unit, suggesting one", () => {
  assert.throws(() => parseDuration("10", "timeout"), {
    name: "RangeError",
    message:
      'Cannot use timeout as a duration: expected a duration like "500ms", "2s", "1.5m", "1h", "1d" or a number of milliseconds, got "10" (add a unit, e.g. "10ms", or write a number of milliseconds without quotes)',
  });
});

Deno.test("parseDuration() rejects unknown units, empty strings and junk", () => {
  for (const bad of ["10x", "", "s", "1 s", "1.s", "2w", "1h-5m", "-1s", "ms"]) {
    assert.throws(() => parseDuration(bad, "retry.delay"), RangeError, bad);
  }
  assert.throws(() => parseDuration("10x", "retry.delay"), {
    message:
      'Cannot use retry.delay as a duration: expected a duration like "500ms", "2s", "1.5m", "1h", "1d" or a number of milliseconds, got "10x"',
  });
});

Deno.test("parseDuration() rejects negative and non-finite numbers with a RangeError", () => {
  assert.throws(() => parseDuration(-1, "delay"), {
    name: "RangeError",
    message:
      'Cannot use delay as a duration: expected a duration like "500ms", "2s", "1.5m", "1h", "1d" or a number of milliseconds, got -1',
  });
  assert.throws(() => parseDuration(Infinity, "delay"), RangeError);
  assert.throws(() => parseDuration(NaN, "delay"), RangeError);
});

Deno.test("parseDuration() rejects other types with a TypeError", () => {
  assert.throws(() => parseDuration(true as unknown as string, "timeout"), {
    name: "TypeError",
    message:
      'Cannot use timeout as a duration: expected a duration like "500ms", "2s", "1.5m", "1h", "1d" or a number of milliseconds, got true',
  });
  assert.throws(() => parseDuration(null as unknown as string, "timeout"), TypeError);
  assert.throws(() => parseDuration({} as unknown as string, "timeout"), /got a mapping/);
});

Deno.test("durationProblem() says what is wrong without throwing", () => {
  assert.equal(durationProblem("2s"), undefined);
  assert.equal(durationProblem(false)?.kind, "type");
  assert.equal(durationProblem("2x")?.kind, "range");
});

Deno.test("DURATION_PATTERN accepts what parseDuration accepts", () => {
  const pattern = new RegExp(DURATION_PATTERN);
  for (const good of ["500ms", "2s", "1.5m", "1h", "1d", "1h30m", ".5s"]) {
    assert.ok(pattern.test(good), good);
    parseDuration(good, "t");
  }
  for (const bad of ["10", "10x", "", "1 s", "-1s"]) {
    assert.ok(!pattern.test(bad), bad);
    assert.throws(() => parseDuration(bad, "t"), RangeError);
  }
});

Deno.test("parseDuration: a command-line flag's duration needs a unit, and its message offers no bare number", () => {
  assert.throws(
    () => parseDuration("500", "--lease"),
    {
      name: "RangeError",
      message:
        'Cannot use --lease as a duration: expected a duration like "500ms", "2s", "1.5m", "1h", "1d", got "500" (add a unit, e.g. "500ms")',
    },
  );
  assert.equal(parseDuration("500ms", "--lease"), 500);
});
