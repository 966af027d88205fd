/**
 * What a schedule is: a cron expression, its policies, and the work to run
 * at each tick. The scheduler runs schedules; `from_config.ts` makes them.
 *
 * @module
 */
import type { AbandonedPolicy, MissedPolicy, OverlapPolicy } from "../config.ts";
import type { RunRecord } from "../records/types.ts";

/** What a schedule's work receives at a tick. */
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

/** A schedule: a cron expression and the work to run at each tick. */
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
