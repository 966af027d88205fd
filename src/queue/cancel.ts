/**
 * Cancelling a run of any process sharing the store, as `flowstate runs
 * cancel` and `POST /api/runs/{id}/cancel` do: a queued run is cancelled at
 * once; a running one gets a cancel request its process acts on within a
 * second, unless that process is gone (no heartbeat for a minute), when the
 * run is recorded abandoned at once: nobody else would ever end it. A
 * queued run's attempt whose worker's lease lapsed is taken back at once
 * (as a worker would) and so recorded cancelled.
 *
 * @module
 */
import type { Records } from "../records/records.ts";
import type { RunRecord } from "../records/types.ts";

/** How long a running run may go without a heartbeat before a cancel records it abandoned (ms). */
export const CANCEL_ABANDONED_AFTER = 60_000;

/** What {@linkcode cancelAnyRun} did. */
export type CancelOutcome =
  /** A queued run, now cancelled: it never starts. */
  | { kind: "queued"; run: RunRecord }
  /**
   * A running run, asked to stop: its process acts on it within a second, if it is alive.
   * `lastSeenAt` is its last sign of life (heartbeat, else claim or start).
   */
  | { kind: "requested"; run: RunRecord; lastSeenAt: number }
  /** A running run whose process is gone, now recorded failed ("abandoned: …"). */
  | { kind: "abandoned"; run: RunRecord; lastSeenAt: number }
  /** A queued run's attempt whose worker's lease lapsed (the worker is gone), now recorded cancelled. */
  | { kind: "lost"; run: RunRecord; lastSeenAt: number }
  /** A run that had ended already. */
  | { kind: "ended"; run: RunRecord }
  /** No run with that id. */
  | { kind: "unknown" };

/**
 * Cancel run `id` (see the module documentation). A malformed id is
 * `unknown`.
 *
 * @example
 * ```ts
 * import { openStore } from "@flowstate/core";
 * import { Records, RunRecorder } from "@flowstate/core/records";
 * import { cancelAnyRun } from "./cancel.ts";
 * import assert from "node:assert/strict";
 * await using store = await openStore({ plugin: "memory" });
 * const records = new Records(store);
 * const past = { now: () => Date.now() - 120_000 };
 * const run = await RunRecorder.start(records, past, { flowId: "f", flowVersion: "v", inputs: {} });
 * await run.close(); // its process "died" two minutes ago
 * assert.equal((await cancelAnyRun(records, run.id, Date.now())).kind, "abandoned");
 * ```
 */
export async function cancelAnyRun(
  records: Records,
  id: string,
  now: number,
): Promise<CancelOutcome> {
  const queued = await records.cancelQueuedRun(id);
  if (queued !== null) return { kind: "queued", run: queued };
  const run = await records.requestCancel(id);
  if (run === null) return { kind: "unknown" };
  if (run.status !== "running") return { kind: "ended", run };
  const claim = run.queue?.claim;
  const lastSeenAt = run.heartbeatAt ?? claim?.at ?? run.startedAt;
  if (claim !== undefined && now - lastSeenAt > claim.leaseMs) {
    // Its worker is gone: nobody would act on the request until a worker takes the run back.
    // Take it back now, as any worker would: with the request written, it ends cancelled.
    await records.reclaimLost();
    const after = await records.getRun(id);
    if (after !== null && after.status !== "running" && after.status !== "queued") {
      return { kind: "lost", run: after, lastSeenAt };
    }
    if (after === null || after.status !== "running") return { kind: "ended", run: after ?? run };
  }
  const abandoned = await records.abandonRun(id, { afterMs: CANCEL_ABANDONED_AFTER, now });
  if (abandoned === null) return { kind: "requested", run, lastSeenAt };
  return { kind: "abandoned", run: abandoned, lastSeenAt: run.heartbeatAt ?? run.startedAt };
}
