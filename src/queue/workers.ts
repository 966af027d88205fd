/**
 * The queue workers of a runtime's records store, as an operator sees them:
 * `GET /api/workers`, `flowstate workers` and {@linkcode listWorkers}. See
 * `records/workers.ts` for the registry itself.
 *
 * @module
 */
import type { Runtime } from "../runtime.ts";
import {
  staleAfterMs,
  type WorkerInfo,
  type WorkerStatus,
  workerStatus,
} from "../records/workers.ts";

/**
 * A queue worker as {@linkcode listWorkers} tells it: its registry entry,
 * whether it is `live` or `stale`, and after how long without a heartbeat it
 * counts as stale.
 *
 * @example
 * ```ts
 * import type { WorkerListing } from "@flowstate/core";
 *
 * function describe(worker: WorkerListing): string {
 *   return `${worker.id} on ${worker.host}: ${worker.status}, ${worker.claims.length} runs`;
 * }
 * console.log(describe({
 *   id: "w1", host: "box", pid: 7, version: "0.6.0", startedAt: 0, heartbeatAt: 0,
 *   heartbeatMs: 5_000, concurrency: 1, flows: null, leaseMs: 30_000, pollMs: 500,
 *   stopping: false, claims: [], status: "live", staleAfterMs: 15_000,
 * }));
 * ```
 */
export interface WorkerListing extends WorkerInfo {
  /** `live`, or `stale`: no heartbeat for `staleAfterMs` (killed, paused or cut off). */
  status: WorkerStatus;
  /** How long after its last heartbeat it counts as stale: three heartbeat intervals, in ms. */
  staleAfterMs: number;
}

/**
 * The queue workers registered in `runtime`'s records store, in id order,
 * each `live` or `stale` by the runtime's clock. A worker registers as it
 * starts, writes its heartbeat and claims every heartbeat interval (and at
 * most every second while its claims change), and removes itself on a clean
 * stop; a killed worker stays, `stale`, until the gc job deletes it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listWorkers, openRuntime, startWorker } from "@flowstate/core";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const started = Promise.withResolvers<void>();
 * const worker = startWorker(rt, { workerId: "w1", flows: ["mail"], onEvent: (e) => e.type === "start" && started.resolve() });
 * await started.promise;
 * while ((await listWorkers(rt)).length === 0) await new Promise((r) => setTimeout(r, 10));
 * const [listed] = await listWorkers(rt);
 * assert.equal(listed.id, "w1");
 * assert.equal(listed.status, "live");
 * assert.deepEqual(listed.flows, ["mail"]);
 * await worker.stop();
 * assert.deepEqual(await listWorkers(rt), []); // a clean stop removes it
 * ```
 */
export async function listWorkers(runtime: Runtime): Promise<WorkerListing[]> {
  const records = await runtime.records();
  const now = runtime.clock.now();
  return (await records.listWorkers()).map((info) => ({
    ...info,
    status: workerStatus(info, now),
    staleAfterMs: staleAfterMs(info),
  }));
}
