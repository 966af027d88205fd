import assert from "node:assert/strict";
import {
  canonicalTimezone,
  cronProblem,
  nextTick,
  previousTick,
  timezoneProblem,
  validateCron,
} from "./cron.ts";

const at = (iso: string): number => Date.parse(iso);
const iso = (ms: number | null): string | null => ms === null ? null : new Date(ms).toISOString();

function ticks(expression: string, from: string, n: number, timezone?: string): string[] {
  const out: string[] = [];
  let t = at(from);
  for (let i = 0; i < n; i++) {
    const next = nextTick(expression, t, timezone);
    assert.ok(next !== null);
    out.push(iso(next)!);
    t = next;
  }
  return out;
}

Deno.test("nextTick() of a 5-field expression is the next matching minute, strictly after", () => {
  assert.deepEqual(ticks("*/15 * * * *", "2026-01-01T10:07:30Z", 3), [
    "2026-01-01T10:15:00.000Z",
    "2026-01-01T10:30:00.000Z",
    "2026-01-01T10:45:00.000Z",
  ]);
  // Exactly on a tick: that tick is not "after" it.
  assert.equal(iso(nextTick("0 3 * * *", at("2026-01-01T03:00:00Z"))), "2026-01-02T03:00:00.000Z");
  assert.equal(
    iso(nextTick("0 3 * * *", at("2026-01-01T02:59:59.999Z"))),
    "2026-01-01T03:00:00.000Z",
  );
});

Deno.test("nextTick() of a 6-field expression has second precision", () => {
  assert.deepEqual(ticks("* * * * * *", "2026-01-01T00:00:00.500Z", 3), [
    "2026-01-01T00:00:01.000Z",
    "2026-01-01T00:00:02.000Z",
    "2026-01-01T00:00:03.000Z",
  ]);
  assert.deepEqual(ticks("*/20 * * * * *", "2026-01-01T00:00:00Z", 4), [
    "2026-01-01T00:00:20.000Z",
    "2026-01-01T00:00:40.000Z",
    "2026-01-01T00:01:00.000Z",
    "2026-01-01T00:01:20.000Z",
  ]);
});

Deno.test("nextTick() understands nicknames", () => {
  assert.equal(iso(nextTick("@daily", at("2026-01-01T12:00:00Z"))), "2026-01-02T00:00:00.000Z");
  assert.equal(iso(nextTick("@hourly", at("2026-01-01T12:00:00Z"))), "2026-01-01T13:00:00.000Z");
  assert.equal(iso(nextTick("@weekly", at("2026-01-01T12:00:00Z"))), "2026-01-04T00:00:00.000Z");
  assert.equal(iso(nextTick("@monthly", at("2026-01-15T00:00:00Z"))), "2026-02-01T00:00:00.000Z");
  assert.equal(iso(nextTick("@YEARLY", at("2026-01-15T00:00:00Z"))), "2027-01-01T00:00:00.000Z");
});

Deno.test("nextTick() reads the expression in the given time zone", () => {
  // 03:00 in Paris is 02:00 UTC in winter; in New York it is 08:00 UTC.
  assert.equal(
    iso(nextTick("0 3 * * *", at("2026-01-10T00:00:00Z"), "Europe/Paris")),
    "2026-01-10T02:00:00.000Z",
  );
  assert.equal(
    iso(nextTick("0 3 * * *", at("2026-01-10T00:00:00Z"), "America/New_York")),
    "2026-01-10T08:00:00.000Z",
  );
  assert.equal(
    iso(nextTick("@daily", at("2026-01-10T00:00:00Z"), "Asia/Tokyo")),
    "2026-01-10T15:00:00.000Z",
  );
});

Deno.test("nextTick() follows the DST changes of Europe/Paris", () => {
  // Spring forward on 2026-03-29 (02:00 CET -> 03:00 CEST): 03:00 moves from 02:00Z to 01:00Z.
  assert.deepEqual(ticks("0 3 * * *", "2026-03-27T12:00:00Z", 3, "Europe/Paris"), [
    "2026-03-28T02:00:00.000Z",
    "2026-03-29T01:00:00.000Z",
    "2026-03-30T01:00:00.000Z",
  ]);
  // 02:30 does not exist on that day: the fixed-time job runs at the first time after the gap.
  assert.deepEqual(ticks("30 2 * * *", "2026-03-28T12:00:00Z", 2, "Europe/Paris"), [
    "2026-03-29T01:00:00.000Z",
    "2026-03-30T00:30:00.000Z",
  ]);
  // Fall back on 2026-10-25 (03:00 CEST -> 02:00 CET): 02:30 happens twice, the job runs once.
  assert.deepEqual(ticks("30 2 * * *", "2026-10-24T12:00:00Z", 2, "Europe/Paris"), [
    "2026-10-25T00:30:00.000Z",
    "2026-10-26T01:30:00.000Z",
  ]);
  // An hourly job keeps a tick every real hour across the change.
  assert.deepEqual(ticks("0 * * * *", "2026-10-24T23:30:00Z", 4, "Europe/Paris"), [
    "2026-10-25T00:00:00.000Z",
    "2026-10-25T01:00:00.000Z",
    "2026-10-25T02:00:00.000Z",
    "2026-10-25T03:00:00.000Z",
  ]);
});

Deno.test("nextTick() runs each wall-clock time of a list or range once across DST (Vixie's rule)", () => {
  const NY = "America/New_York";
  // 01:00 happens twice on 2026-11-01 in New York: a list of hours runs it once, as one hour does.
  assert.deepEqual(ticks("0 1,13 * * *", "2026-11-01T04:00:00Z", 2, NY), [
    "2026-11-01T05:00:00.000Z",
    "2026-11-01T18:00:00.000Z",
  ]);
  assert.deepEqual(ticks("0,30 1 * * *", "2026-11-01T04:00:00Z", 3, NY), [
    "2026-11-01T05:00:00.000Z",
    "2026-11-01T05:30:00.000Z",
    "2026-11-02T06:00:00.000Z",
  ]);
  // previousTick() agrees: the second 01:00 is no tick.
  assert.equal(
    iso(previousTick("0 1,13 * * *", at("2026-11-01T06:30:00Z"), NY)),
    "2026-11-01T05:00:00.000Z",
  );
  // 02:30 does not exist on 2026-03-29 in Paris: a list runs it at 03:00, like a single time.
  assert.deepEqual(ticks("30 2,14 * * *", "2026-03-28T14:00:00Z", 2, "Europe/Paris"), [
    "2026-03-29T01:00:00.000Z",
    "2026-03-29T12:30:00.000Z",
  ]);
  // Lord Howe moves by 30 minutes: 02:00-02:30 does not exist on 2026-10-04, 01:30-02:00 repeats
  // on 2026-04-05.
  assert.deepEqual(ticks("0,15 2 * * *", "2026-10-03T12:00:00Z", 1, "Australia/Lord_Howe"), [
    "2026-10-03T15:30:00.000Z", // 02:30 +11, once for both
  ]);
  assert.deepEqual(ticks("45 1,13 * * *", "2026-04-04T12:00:00Z", 2, "Australia/Lord_Howe"), [
    "2026-04-04T14:45:00.000Z", // 01:45 +11, the first of the two
    "2026-04-05T03:15:00.000Z", // 13:45 +10:30
  ]);
  // A schedule with `*` or a step in its time fields follows elapsed time: the repeated hour
  // runs twice, the skipped one not at all.
  assert.deepEqual(ticks("0 * * * *", "2026-11-01T04:30:00Z", 3, NY), [
    "2026-11-01T05:00:00.000Z",
    "2026-11-01T06:00:00.000Z",
    "2026-11-01T07:00:00.000Z",
  ]);
  assert.deepEqual(ticks("*/30 1 * * *", "2026-11-01T04:30:00Z", 4, NY), [
    "2026-11-01T05:00:00.000Z",
    "2026-11-01T05:30:00.000Z",
    "2026-11-01T06:00:00.000Z",
    "2026-11-01T06:30:00.000Z",
  ]);
});

Deno.test("nextTick() depends only on its arguments, not on the wall clock", () => {
  const far = at("2040-06-01T00:00:00Z");
  assert.equal(iso(nextTick("0 0 1 1 *", far)), "2041-01-01T00:00:00.000Z");
  const past = at("1999-12-31T23:59:59Z");
  assert.equal(iso(nextTick("@daily", past)), "2000-01-01T00:00:00.000Z");
});

Deno.test("previousTick() is the last tick strictly before the given time", () => {
  assert.equal(
    iso(previousTick("0 3 * * *", at("2026-01-05T03:00:00Z"))),
    "2026-01-04T03:00:00.000Z",
  );
  assert.equal(
    iso(previousTick("0 3 * * *", at("2026-01-05T03:00:01Z"))),
    "2026-01-05T03:00:00.000Z",
  );
  assert.equal(
    iso(previousTick("0 3 * * *", at("2026-03-30T05:00:00Z"), "Europe/Paris")),
    "2026-03-30T01:00:00.000Z",
  );
});

Deno.test("cronProblem() explains what is wrong with an expression", () => {
  // Crontab's @reboot is no time: said so, with what to do instead.
  assert.match(
    cronProblem("@reboot")!,
    /^cron nickname "@reboot" is not a time: a schedule runs at clock ticks, not when the daemon starts; to run a flow at each start of the service, start it there/,
  );
  assert.equal(cronProblem("0 3 * * *"), undefined);
  assert.equal(cronProblem("0 0 3 * * *"), undefined);
  assert.equal(cronProblem("@daily"), undefined);
  assert.equal(
    cronProblem("* * * *"),
    'invalid cron expression "* * * *": expected 5 fields (minute hour day-of-month month day-of-week) or 6 (with seconds first), got 4',
  );
  assert.equal(
    cronProblem("61 * * * *"),
    'invalid cron expression "61 * * * *": the minute field "61" is out of range (0-59)',
  );
  assert.equal(
    cronProblem("0 x * * *"),
    'invalid cron expression "0 x * * *": the hour field "x" has characters cron does not use',
  );
  assert.equal(
    cronProblem("@dayly"),
    'unknown cron nickname "@dayly" (did you mean "@daily"?); the nicknames are @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly',
  );
  assert.equal(cronProblem("0 0 30 2 *"), 'cron expression "0 0 30 2 *" never matches a date');
  for (
    const [expression, why] of [
      ["0 0 32 * *", 'the day of month field "32" is out of range (1-31)'],
      ["0 0 0 * *", 'the day of month field "0" is out of range (1-31)'],
      ["0 0 * 13 *", 'the month field "13" is out of range (1-12)'],
      ["0 0 * * 8", 'the day of week field "8" is out of range (0-7, Sunday is 0 or 7)'],
      ["60 0 0 * * *", 'the second field "60" is out of range (0-59)'],
      ["0 */0 * * *", 'the hour field "*/0" steps by 0, which never moves on: step by 1 or more'],
      [
        "5-1 * * * *",
        'the minute field "5-1" has a range from high to low (5-1): write the lower bound first',
      ],
    ]
  ) {
    assert.equal(cronProblem(expression), `invalid cron expression "${expression}": ${why}`);
  }
  assert.match(cronProblem("")!, /^expected a cron expression/);
  assert.match(cronProblem(5)!, /^expected a cron expression .* got number 5$/);
});

Deno.test("validateCron() and nextTick() throw a RangeError for a bad expression or zone", () => {
  assert.throws(() => validateCron("61 * * * *"), {
    name: "RangeError",
    message:
      'Cannot use cron expression "61 * * * *": invalid cron expression "61 * * * *": the minute field "61" is out of range (0-59)',
  });
  assert.throws(() => nextTick("* * *", 0), RangeError);
  assert.throws(
    () => nextTick("* * * * *", 0, "Europe/Pariss"),
    /unknown time zone "Europe\/Pariss" \(did you mean "Europe\/Paris"\?\)/,
  );
  assert.throws(() => nextTick("* * * * *", Number.NaN), TypeError);
});

Deno.test("timezoneProblem() accepts IANA zones and suggests a near name", () => {
  assert.equal(timezoneProblem("Europe/Paris"), undefined);
  assert.equal(timezoneProblem("UTC"), undefined);
  assert.match(timezoneProblem("America/New_Yrok")!, /did you mean "America\/New_York"/);
  assert.match(timezoneProblem("")!, /^expected an IANA time zone/);
  assert.equal(canonicalTimezone("utc"), "UTC");
  assert.throws(() => canonicalTimezone("Nowhere/Town"), RangeError);
});
