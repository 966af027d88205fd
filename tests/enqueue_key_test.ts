// enqueue's dedupe `key` has a limit of its own (it is the last element of a store key): past it,
// the error speaks of the option and its limit, not of an internal store key.
import assert from "node:assert/strict";
import { withQueueFlow } from "./_queue_flow.ts";

Deno.test("enqueue: a dedupe key over its limit is refused in the option's terms", async () => {
  await withQueueFlow(async (rt, flow) => {
    const error = await rt.enqueue(flow, { key: "é".repeat(3000) }).then(() => null, (e) => e);
    assert.ok(error instanceof RangeError, String(error));
    const match =
      /^Cannot enqueue a run of "q": key is 6,000 bytes \(UTF-8\); a dedupe key is at most ([\d,]+) bytes: use a hash of a longer one$/
        .exec(error.message);
    assert.ok(match, error.message);
    const max = Number(match[1].replaceAll(",", ""));
    assert.ok(max > 1900 && max < 2048, String(max));
    // The longest key works, and dedupes.
    const first = await rt.enqueue(flow, { key: "k".repeat(max) });
    const again = await rt.enqueue(flow, { key: "k".repeat(max) });
    assert.deepEqual(again, { runId: first.runId, existing: true });
    await assert.rejects(() => rt.enqueue(flow, { key: "k".repeat(max + 1) }), RangeError);
  });
});
