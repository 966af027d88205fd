/**
 * The worker registry: one entry per running queue worker,
 * `P, "workers", workerId` → {@linkcode WorkerInfo}, so that an operator sees
 * which workers are alive, what they serve and which runs they hold.
 *
 * - A worker writes its entry when it starts, then every heartbeat interval
 *   (`heartbeatMs`, the interval its claims' heartbeats use: a quarter of
 *   its lease, at most 5 s), and at most every second while its claims
 *   change. Each write is one plain `set` of the worker's own key: no check,
 *   no other key, so it never conflicts with claims or with other workers.
 * - A clean stop deletes the entry (if it is still the one the worker wrote).
 * - A worker whose heartbeat is older than {@linkcode STALE_HEARTBEATS}
 *   heartbeat intervals is `stale` (killed, paused, cut off from the store);
 *   the gc job deletes the entries stale for longer than its
 *   `staleWorkersAfter` (default one hour).
 *
 * Internal to the core; readers use `Records.listWorkers()`,
 * `listWorkers()` of `@flowstate/core`, `GET /api/workers` or
 * `flowstate workers`.
 *
 * @module
 */
import type { Entry } from "../store/types.ts";
import type { RecordsContext } from "./_context.ts";

/**
 * A worker is `stale` once its last heartbeat is older than this many of its
 * heartbeat intervals.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { STALE_HEARTBEATS } from "@flowstate/core/records";
 *
 * assert.equal(STALE_HEARTBEATS, 3); // 15 s for a worker with the default 30 s lease
 * ```
 */
export const STALE_HEARTBEATS = 3;

/**
 * A run a worker holds (its claim), as of the worker's last write.
 *
 * @example
 * ```ts
 * import type { WorkerClaim } from "@flowstate/core/records";
 *
 * const claim: WorkerClaim = { runId: "0mjuw3ms0abcdefghijk", flowId: "mail", attempt: 1, claimedAt: 0 };
 * console.log(claim.runId);
 * ```
 */
export interface WorkerClaim {
  /** The run. */
  runId: string;
  /** Its flow. */
  flowId: string;
  /** Its attempt (1 for the first). */
  attempt: number;
  /** When the worker claimed it (ms since the epoch). */
  claimedAt: number;
}

/**
 * A worker's entry in the registry.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, Records, type WorkerInfo } from "@flowstate/core/records";
 *
 * await using store = await openStore({ plugin: "memory" });
 * const records = new Records(store);
 * const info: WorkerInfo = {
 *   id: "mailer-1", host: "box", pid: 42, version: "0.6.0", startedAt: 0, heartbeatAt: 0,
 *   heartbeatMs: 5_000, concurrency: 4, flows: ["mail"], leaseMs: 30_000, pollMs: 500,
 *   stopping: false, claims: [],
 * };
 * await records.putWorker(info);
 * assert.deepEqual(await records.listWorkers(), [info]);
 * ```
 */
export interface WorkerInfo {
  /** The worker's id (its claims name it). */
  id: string;
  /** The host it runs on (`"host"` when it may not read the host name). */
  host: string;
  /** Its process id. */
  pid: number;
  /** The Flowstate version it runs. */
  version: string;
  /** When it started (ms since the epoch). */
  startedAt: number;
  /** When it last wrote its entry (ms since the epoch). */
  heartbeatAt: number;
  /** How often it writes its entry when nothing changes, in ms. */
  heartbeatMs: number;
  /** Runs it takes at once. */
  concurrency: number;
  /** The flows whose runs it takes, or `null` for any. */
  flows: string[] | null;
  /** Its claims' lease, in ms. */
  leaseMs: number;
  /** How often it looks at the queue, in ms. */
  pollMs: number;
  /** It is stopping: it claims nothing more and waits for its runs. */
  stopping: boolean;
  /** The runs it holds, as of `heartbeatAt`. */
  claims: WorkerClaim[];
}

/**
 * Whether a worker answers: `live`, or `stale` (no heartbeat for
 * {@linkcode STALE_HEARTBEATS} intervals).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type WorkerStatus, workerStatus } from "@flowstate/core/records";
 *
 * const status: WorkerStatus = workerStatus({ heartbeatAt: 0, heartbeatMs: 1_000 }, 60_000);
 * assert.equal(status, "stale"); // a minute without a heartbeat
 * ```
 */
export type WorkerStatus = "live" | "stale";

/**
 * A worker's status at `now`: `stale` once its heartbeat is older than
 * {@linkcode STALE_HEARTBEATS} of its heartbeat intervals.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { workerStatus } from "@flowstate/core/records";
 *
 * const beat = { heartbeatAt: 10_000, heartbeatMs: 5_000 };
 * assert.equal(workerStatus(beat, 25_000), "live");
 * assert.equal(workerStatus(beat, 25_001), "stale");
 * ```
 */
export function workerStatus(
  info: Pick<WorkerInfo, "heartbeatAt" | "heartbeatMs">,
  now: number,
): WorkerStatus {
  return now - info.heartbeatAt > staleAfterMs(info) ? "stale" : "live";
}

/** How long after its last heartbeat a worker is stale, in ms. */
export function staleAfterMs(info: Pick<WorkerInfo, "heartbeatMs">): number {
  return STALE_HEARTBEATS * info.heartbeatMs;
}

/** Whether a stored value is a worker entry (one a newer version wrote may carry more). */
function isWorkerInfo(value: unknown): value is WorkerInfo {
  const v = value as WorkerInfo;
  return typeof v === "object" && v !== null && typeof v.id === "string" &&
    typeof v.heartbeatAt === "number" && typeof v.heartbeatMs === "number" &&
    Array.isArray(v.claims);
}

/** Write `info` as its worker's entry; resolves the entry's version. */
export async function putWorker(ctx: RecordsContext, info: WorkerInfo): Promise<string> {
  const result = await ctx.store.set(ctx.layout.worker(info.id), info);
  if (!result.ok) throw new Error(`Cannot record worker ${info.id}: its write was refused`);
  return result.version;
}

/** Every worker entry, in id order, with its version (values that are not entries are skipped). */
export async function workerEntries(ctx: RecordsContext): Promise<Entry<WorkerInfo>[]> {
  const out: Entry<WorkerInfo>[] = [];
  for await (const entry of ctx.store.list<WorkerInfo>({ prefix: ctx.layout.worker() })) {
    if (isWorkerInfo(entry.value)) out.push(entry);
  }
  return out;
}

/** Delete a worker's entry (only at `ifVersion`, when given); resolves whether it did. */
export async function removeWorker(
  ctx: RecordsContext,
  id: string,
  ifVersion?: string,
): Promise<boolean> {
  const key = ctx.layout.worker(id);
  if (ifVersion === undefined) {
    if ((await ctx.store.get(key)) === null) return false;
    return await ctx.store.delete(key);
  }
  return await ctx.store.delete(key, { ifVersion });
}

/**
 * Delete the entries of workers with no heartbeat for `olderThanMs` (never
 * less than their stale threshold), each only at the version read, so a
 * worker that wrote meanwhile keeps its entry. Resolves the ids deleted (or,
 * with `dryRun`, that would be).
 */
export async function sweepWorkers(
  ctx: RecordsContext,
  options: { olderThanMs: number; now?: number; dryRun?: boolean },
): Promise<string[]> {
  const now = options.now ?? ctx.clock.now();
  const removed: string[] = [];
  for (const entry of await workerEntries(ctx)) {
    const info = entry.value;
    if (now - info.heartbeatAt <= Math.max(options.olderThanMs, staleAfterMs(info))) continue;
    if (options.dryRun || await ctx.store.delete(entry.key, { ifVersion: entry.version })) {
      removed.push(info.id);
    }
  }
  return removed;
}
