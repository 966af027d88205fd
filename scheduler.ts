/**
 * The scheduler: cron-scheduled flows and jobs, exactly once per tick across
 * every runner that shares a store, and the cron helpers it uses.
 *
 * @example
 * ```ts
 * import { nextTick } from "@flowstate/core/scheduler";
 * import assert from "node:assert/strict";
 * const next = nextTick("0 3 * * *", Date.UTC(2026, 0, 1, 12), "UTC");
 * assert.equal(next, Date.UTC(2026, 0, 2, 3));
 * ```
 *
 * @module
 */
export {
  type ScheduleInfo,
  Scheduler,
  type SchedulerEvent,
  type SchedulerOptions,
  type SkipReason,
  type StopResult,
} from "./src/scheduler/scheduler.ts";
export type { FlowScheduleTarget, Schedule, TickContext } from "./src/scheduler/schedule.ts";
export {
  type FlowFileProblem,
  type JobProblem,
  loadSchedules,
  type LoadSchedulesOptions,
  type ScheduleLogContext,
} from "./src/scheduler/from_config.ts";
export type { ScheduleListing, ScheduleSource } from "./src/scheduler/listing.ts";
export {
  type ChangeTriggerEvent,
  type ChangeTriggers,
  type ChangeTriggersOptions,
  type ChangeTriggerSpec,
  loadChangeTriggers,
  startChangeTriggers,
  type TriggerPosition,
  triggerPositionKey,
  TRIGGERS_PREFIX,
} from "./src/scheduler/change_triggers.ts";
export {
  canonicalTimezone,
  cronProblem,
  DEFAULT_TIMEZONE,
  nextTick,
  previousTick,
  timezoneProblem,
  validateCron,
} from "./src/cron.ts";
export type { AbandonedPolicy, MissedPolicy, OverlapPolicy } from "./src/config.ts";
