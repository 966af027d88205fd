import assert from "node:assert/strict";
import { FakeClock, T0 } from "./_test_utils.ts";
import { newRunId, runIdTime } from "./run_id.ts";

Deno.test("newRunId() sorts in time order and encodes the start time", () => {
  const clock = new FakeClock();
  const ids: string[] = [];
  for (let i = 0; i < 50; i++) {
    ids.push(newRunId(clock.now()));
    if (i % 10 === 9) clock.t += 1;
  }
  assert.deepEqual([...ids].sort(), ids, "same-millisecond ids still increase");
  assert.equal(new Set(ids).size, ids.length);
  for (const id of ids) assert.match(id, /^[0-9a-z]{20}$/);
  assert.equal(runIdTime(ids[0]), T0);
  assert.equal(runIdTime(ids[49]), T0 + 4);
  clock.t = T0 + 86_400_000;
  assert.ok(newRunId(clock.now()) > ids[49]);
  assert.throws(() => runIdTime("nope"), TypeError);
  assert.throws(() => newRunId(-1), RangeError);
});
