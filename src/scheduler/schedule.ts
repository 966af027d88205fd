/**
 * What a schedule is: a cron expression, its policies, and the work to run
 * at each tick. The scheduler runs schedules; `from_config.ts` makes them.
 *
 * @module
 */
import type { AbandonedPolicy, MissedPolicy, OverlapPolicy } from "../config.ts";
import type { RunRecord } from "../records/types.ts";

/**
 * What a schedule's work receives at a tick.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import { Scheduler, type TickContext } from "@flowstate/core/scheduler";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const seen: TickContext[] = [];
 * const scheduler = new Scheduler(rt, {
 *   clock: { now: () => Date.UTC(2026, 0, 1, 3) },
 *   runnerId: "runner-1",
 *   schedules: [{ id: "report", cron: "0 3 * * *", run: (ctx) => void seen.push(ctx) }],
 * });
 * await scheduler.start();
 * await scheduler.stop();
 * assert.equal(seen[0].scheduleId, "report");
 * assert.equal(seen[0].runnerId, "runner-1");
 * assert.equal(seen[0].tick, Date.UTC(2026, 0, 1, 3));
 * ```
 */
export interface TickContext {
  /** The schedule's id. */
  scheduleId: string;
  /** The tick's nominal time (ms since the epoch). */
  tick: number;
  /** Aborted when the scheduler stops (after its grace period) or the lease is lost. */
  signal: AbortSignal;
  /** This runner's id. */
  runnerId: string;
  /**
   * Call with the id of the work's run once it is recorded: it is written
   * into the tick's lease, so that if this runner dies, the runner that takes
   * the lapsed tick over can record that run abandoned. Optional to call.
   */
  started?: (runId: string) => void;
}

/**
 * A schedule: a cron expression and the work to run at each tick.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import { type Schedule, Scheduler } from "@flowstate/core/scheduler";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const nightly: Schedule = {
 *   id: "nightly-report",
 *   cron: "0 3 * * *",
 *   timezone: "Europe/Paris",
 *   overlap: "skip",
 *   missed: "run-once",
 *   run: () => {},
 * };
 * const scheduler = new Scheduler(rt, { schedules: [nightly] });
 * await scheduler.start();
 * assert.deepEqual(scheduler.schedules.map((s) => [s.id, s.timezone]), [["nightly-report", "Europe/Paris"]]);
 * await scheduler.stop();
 * ```
 */
export interface Schedule {
  /** Unique id, used in lease keys (`job:retention`, `flow:counter`). */
  id: string;
  /** A cron expression (5 or 6 fields) or nickname. */
  cron: string;
  /** IANA time zone (default UTC). */
  timezone?: string;
  /** Default `skip`. */
  overlap?: OverlapPolicy;
  /** Default `skip`. */
  missed?: MissedPolicy;
  /** A tick whose runner died while running it: `skip` (default) or `rerun`. */
  abandoned?: AbandonedPolicy;
  /** Upper bound of a random delay after each tick, in ms (default 0). */
  jitterMs?: number;
  /** The work. A returned run record gives the tick's status; nothing means `succeeded`. */
  run(ctx: TickContext): Promise<RunRecord | void> | RunRecord | void;
}
