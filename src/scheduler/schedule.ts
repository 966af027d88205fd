/**
 * What a schedule is: a cron expression, its policies, and the work to run
 * at each tick. The scheduler runs schedules; `from_config.ts` makes them.
 *
 * @module
 */
import type { AbandonedPolicy, MissedPolicy, OverlapPolicy } from "../config.ts";
import type { RunRecord } from "../records/types.ts";
import type { JsonValue } from "../store/types.ts";

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
  /**
   * For a flow's schedule (from its `schedule:`): which flow, which entry
   * and the inputs its runs get; what the listings show. Absent for a job's
   * and a program's own schedules.
   */
  flow?: FlowScheduleTarget;
  /** The work. A returned run record gives the tick's status; nothing means `succeeded`. */
  run(ctx: TickContext): Promise<RunRecord | void> | RunRecord | void;
}

/**
 * What a flow's schedule runs: one entry of the flow's `schedule:`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import { type FlowScheduleTarget, loadSchedules } from "@flowstate/core/scheduler";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(
 *   `${dir}/backup.flow.yaml`,
 *   [
 *     "id: backup",
 *     "inputs: { db: { type: string } }",
 *     "schedule:",
 *     '  - { id: a, cron: "0 2 * * *", inputs: { db: a } }',
 *     '  - { id: b, cron: "0 3 * * *", inputs: { db: b } }',
 *     "nodes: [{ id: say, type: log, with: { message: '${{ inputs.db }}' } }]",
 *   ].join("\n"),
 * );
 * await using rt = await openRuntime({ cwd: dir, config: { stores: { main: { plugin: "memory" } }, flows: ["."] } });
 * const targets: FlowScheduleTarget[] = (await loadSchedules(rt)).flatMap((s) => s.flow ?? []);
 * assert.deepEqual(targets, [
 *   { id: "backup", entry: "a", inputs: { db: "a" } },
 *   { id: "backup", entry: "b", inputs: { db: "b" } },
 * ]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface FlowScheduleTarget {
  /** The flow's id. */
  id: string;
  /** The entry's `id:`, or `null` for the flow's own schedule (a single `schedule:`, or the entry without `id`). */
  entry: string | null;
  /** The inputs each run of it gets (besides `scheduledAt`, when the flow declares it). */
  inputs: Record<string, JsonValue>;
}
