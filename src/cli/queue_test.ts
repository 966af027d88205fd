// The worker's lines as `flowstate worker` (and `serve`) prints them.
import assert from "node:assert/strict";
import { workerPrinter } from "./queue.ts";
import type { WorkerEvent } from "../queue/worker.ts";

/** What `workerPrinter` writes for `events`: stdout and stderr lines. */
function printed(events: WorkerEvent[]): { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (line: string) => out.push(line);
  console.error = (line: string) => err.push(line);
  try {
    const print = workerPrinter(false, false);
    for (const event of events) print(event);
  } finally {
    Object.assign(console, { log, error });
  }
  return { out, err };
}

Deno.test("workerPrinter: a run released at stop says it went back to the queue, not that it was cancelled", () => {
  const { out, err } = printed([
    {
      type: "end",
      runId: "0mxaksmevco708jmfw10",
      flowId: "slow",
      attempt: 1,
      status: "cancelled",
      durationMs: 7_480,
      requeued: "released",
      error: "the run was cancelled",
    },
    { type: "stop", released: 1 },
  ]);
  assert.deepEqual(out, [
    "0mxaksmevco708jmfw10 slow stopped after 7.48s (attempt 1): released to the queue (not finished within the grace period)",
    "Worker stopped",
  ]);
  assert.deepEqual(err, [
    "warning: released 1 run still running after the grace period back to the queue",
  ]);
});

Deno.test("workerPrinter: a failed run queued to retry keeps its error on the line", () => {
  const { out } = printed([{
    type: "end",
    runId: "0mxaksmevco708jmfw10",
    flowId: "boom",
    attempt: 2,
    status: "failed",
    durationMs: 10,
    requeued: "retry",
    error: "boom\nmore",
  }]);
  assert.deepEqual(out, [
    "0mxaksmevco708jmfw10 boom failed 10ms (attempt 2): queued again to retry: boom",
  ]);
});

Deno.test("workerPrinter: an attempt whose claim lapsed says it was lost, not that the run failed", () => {
  const { out } = printed([{
    type: "end",
    runId: "0mxduly1yzpofkn2ense",
    flowId: "slow",
    attempt: 1,
    status: "failed",
    durationMs: 19_150,
    requeued: "lost",
    error:
      "Cannot record the end of run 0mxduly1yzpofkn2ense: its claim lapsed (no heartbeat recorded within its lease); a worker takes the run back and runs it again (this attempt is recorded as lost)",
  }]);
  assert.deepEqual(out, [
    "0mxduly1yzpofkn2ense slow lost after 19.15s (attempt 1): Cannot record the end of run 0mxduly1yzpofkn2ense: its claim lapsed (no heartbeat recorded within its lease); a worker takes the run back and runs it again (this attempt is recorded as lost)",
  ]);
});
