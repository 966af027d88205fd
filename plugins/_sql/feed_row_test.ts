import assert from "node:assert/strict";
import { changeOf, type FeedRow, rowOf } from "./feed_row.ts";
import { encodeKey } from "../../src/store/keys.ts";

const by = JSON.stringify({ actor: "alice" });

Deno.test("changeOf: a set and a delete row read back as the changes rowOf wrote", () => {
  const set: FeedRow = [1, 10, encodeKey(["a"]), "set", "1", "v1", null, null, by];
  const del: FeedRow = [2, 11, encodeKey(["a"]), "delete", null, null, "v1", null, by];
  assert.deepEqual(rowOf(changeOf(set)), set);
  assert.deepEqual(rowOf(changeOf(del)), del);
  assert.equal(changeOf(del).op, "delete");
});

Deno.test("changeOf: a row whose op is neither set nor delete is refused, not read as a delete", () => {
  const row = [7, 10, encodeKey(["a"]), "upsert", null, null, null, null, by] as unknown as FeedRow;
  assert.throws(
    () => changeOf(row),
    /Cannot read change #7: its op is "upsert", not "set" or "delete"/,
  );
});
