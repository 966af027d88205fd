/**
 * `flowstate workers [ls] [--json]`: the queue workers registered in the
 * records store (every `flowstate worker`, and the worker of `serve` and
 * `daemon`), live or stale, with what they serve and the runs they hold.
 *
 * The table: `ID STATUS HOST PID VERSION STARTED HEARTBEAT SERVES RUNS`;
 * `HEARTBEAT` is how long ago the last one was, `SERVES` the flows (or
 * "any") and runs at once, `RUNS` the ids of the runs held. A stale worker
 * (no heartbeat for three heartbeat intervals: killed, paused or cut off
 * from the store) is listed until the gc job deletes it.
 *
 * `--json` prints one array (stable), as `GET /api/workers`: the registry
 * entries with `status` (`live` | `stale`) and `staleAfterMs`, times in ms
 * since the epoch.
 *
 * @module
 */
import { listWorkers } from "../queue/workers.ts";
import { formatDuration, formatTime, printable, printTable } from "./format.ts";
import { type GlobalOptions, openForReading, unlessMissing } from "./common.ts";

/** `workers [ls] [--json]`: exit 0. */
export async function workersCommand(
  options: { json?: boolean },
  global: GlobalOptions,
): Promise<number> {
  await using runtime = await openForReading(global);
  // No records store yet: no worker ever started on it.
  const workers = (await unlessMissing(() => listWorkers(runtime))) ?? [];
  if (options.json) {
    console.log(JSON.stringify(workers));
    return 0;
  }
  if (workers.length === 0) {
    console.error("No workers (start one with flowstate worker)");
    return 0;
  }
  const tz = runtime.config.timezone;
  const now = runtime.clock.now();
  printTable(
    ["ID", "STATUS", "HOST", "PID", "VERSION", "STARTED", "HEARTBEAT", "SERVES", "RUNS"],
    workers.map((w) => [
      printable(w.id),
      w.stopping && w.status === "live" ? "live (stopping)" : w.status,
      printable(w.host),
      String(w.pid),
      printable(w.version),
      formatTime(w.startedAt, tz),
      `${formatDuration(Math.max(0, now - w.heartbeatAt))} ago`,
      `${w.flows === null ? "any flow" : printable(w.flows.join(","))} x${w.concurrency}`,
      w.claims.length === 0 ? "-" : w.claims.map((c) => `${c.runId} (${c.flowId})`).join(", "),
    ]),
  );
  return 0;
}
