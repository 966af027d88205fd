/**
 * A time without an offset on the command line (`enqueue --at`, `runs ls
 * --since/--until`, `state get --at`, `restore --at`) is read in the config's
 * `timezone`, in which every table shows times: the same command means the
 * same instant whatever the process's `TZ`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { withSandbox } from "./_cli_sandbox.ts";
import { parseIsoTime } from "../src/timezone.ts";

Deno.test("parseIsoTime: offsets, wall times in a zone, clock changes, and what is not ISO", () => {
  const utc = Date.UTC;
  assert.equal(parseIsoTime("2026-12-06T12:00", "Europe/Paris"), utc(2026, 11, 6, 11));
  assert.equal(
    parseIsoTime("2026-07-06T12:00:30.25", "Europe/Paris"),
    utc(2026, 6, 6, 10, 0, 30, 250),
  );
  assert.equal(parseIsoTime("2026-12-06", "America/New_York"), utc(2026, 11, 6, 5));
  assert.equal(parseIsoTime("2026-12-06T12:00+05:30", "UTC"), utc(2026, 11, 6, 6, 30));
  assert.equal(parseIsoTime("2026-12-06T12:00-0800", "Europe/Paris"), utc(2026, 11, 6, 20));
  assert.equal(parseIsoTime("2026-12-06 12:00Z", "Europe/Paris"), utc(2026, 11, 6, 12));
  // Skipped by the spring-forward change: read with the offset before it (03:30 CEST).
  assert.equal(parseIsoTime("2026-03-29T02:30", "Europe/Paris"), utc(2026, 2, 29, 1, 30));
  // Repeated by the fall-back change: the earlier (CEST).
  assert.equal(parseIsoTime("2026-10-25T02:30", "Europe/Paris"), utc(2026, 9, 25, 0, 30));
  for (
    const bad of ["2026-02-30", "2026-12-06T24:00", "Dec 6 2026", "5.12.2026", "2026-12-06T12"]
  ) {
    assert.equal(parseIsoTime(bad, "UTC"), undefined, bad);
  }
});

Deno.test("enqueue --at, runs ls --since and state get --at read an offset-less time in the config's timezone, whatever TZ is", async () => {
  await withSandbox(async ({ dir, runWith }) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "timezone: Asia/Tokyo\nstores:\n  default: { plugin: sqlite, path: state.db, changes: { keep: 30d } }\n",
    );
    await Deno.writeTextFile(
      join(dir, "q.flow.yaml"),
      "id: q\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n",
    );
    const runAts: number[] = [];
    for (const TZ of ["UTC", "America/New_York"]) {
      const queued = await runWith({ TZ }, "enqueue", "q.flow.yaml", "--at", "2030-01-06T09:00");
      assert.equal(queued.code, 0, queued.stderr);
      const shown = await runWith({ TZ }, "runs", "show", queued.stdout.trim(), "--json");
      assert.equal(shown.code, 0, shown.stderr);
      runAts.push(JSON.parse(shown.stdout).run.queue.runAt);
    }
    // 09:00 in Tokyo (+09:00) is midnight UTC, from either process.
    assert.deepEqual(runAts, [Date.UTC(2030, 0, 6), Date.UTC(2030, 0, 6)]);

    // A --since after the runs were queued (in Tokyo's wall time, an hour ahead) lists none.
    const later = new Date(Date.now() + 9 * 3600_000 + 3600_000).toISOString().slice(0, 19);
    for (const TZ of ["UTC", "Pacific/Honolulu"]) {
      const listed = await runWith({ TZ }, "runs", "ls", "--since", later, "--json");
      assert.equal(listed.code, 0, listed.stderr);
      assert.deepEqual(JSON.parse(listed.stdout), [], `TZ=${TZ}`);
    }

    // state get --at: a wall time an hour before the write (in Tokyo) finds nothing, an hour
    // after finds the value.
    assert.equal((await runWith({}, "state", "set", "k", "1")).code, 0);
    const tokyo = (offsetMs: number) =>
      new Date(Date.now() + 9 * 3600_000 + offsetMs).toISOString().slice(0, 19);
    const after = await runWith(
      { TZ: "America/New_York" },
      "state",
      "get",
      "k",
      "--at",
      tokyo(3600_000 / 60),
    );
    assert.equal(after.code, 0, after.stderr);
    assert.equal(after.stdout.trim(), "1");
  });
});
