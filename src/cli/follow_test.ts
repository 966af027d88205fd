import assert from "node:assert/strict";
import { lastProgress } from "./follow.ts";
import { progressText } from "./format.ts";
import type { RunEvent } from "../records/types.ts";

const progress = (at: number, node: string, succeeded: number): RunEvent => ({
  at,
  type: "node.progress",
  node,
  count: 10,
  succeeded,
  failed: 0,
  running: 1,
});

Deno.test("follow: of the progress events one poll read, a line for each node's last, none for a node that ended", () => {
  const a1 = progress(1, "a", 1), a2 = progress(2, "a", 2), b1 = progress(2, "b", 5);
  const c1 = progress(3, "c", 9);
  const cEnd: RunEvent = {
    at: 4,
    type: "node.end",
    node: "c",
    status: "succeeded",
    attempt: 10,
    durationMs: 4,
  };
  assert.deepEqual([...lastProgress([a1, b1, a2, c1, cEnd])], [a2, b1]);
  assert.deepEqual([...lastProgress([])], []);
});

Deno.test("progressText: done of the count with its percentage, the failed items named, those running", () => {
  assert.equal(
    progressText({ count: 1000, succeeded: 310, failed: 2, running: 4, failedItems: [4, 17] }),
    "312 of 1,000 items done (31%), 2 failed (items 4, 17), 4 running",
  );
  assert.equal(
    progressText({ count: 1, succeeded: 0, failed: 0, running: 1 }),
    "0 of 1 item done (0%), 1 running",
  );
  // More failed than named; the list says so.
  assert.equal(
    progressText({ count: 100, succeeded: 0, failed: 30, running: 0, failedItems: [1, 2] }),
    "30 of 100 items done (30%), 30 failed (items 1, 2, …)",
  );
  // Not the shape this version writes: nothing said.
  assert.equal(
    progressText({ count: -1, succeeded: 0, failed: 0, running: 0 }),
    undefined,
  );
});
