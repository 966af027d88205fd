/**
 * A flow's `schedule:` as a list of entries: a cron string, a mapping
 * (`{ cron, timezone, overlap, missed, abandoned, jitter, inputs, id }`), or
 * a list of those. What the checker, the scheduler and the listings read.
 *
 * ## Schedule ids
 *
 * An entry without `id` is the flow's own schedule, `flow:<flow>` (the id a
 * single `schedule:` always had: its leases and done markers stay the same);
 * an entry with `id: nightly` is `flow:<flow>#nightly`. At most one entry of
 * a list goes without an `id` (the checker says so).
 *
 * @module
 */
import type { ProblemPath as FlowPath } from "../errors.ts";
import { isRecord } from "./_values.ts";

/** One entry of a flow's `schedule:`, as written. */
export interface ScheduleEntry {
  /** Its `id:`, or `null` (the flow's own schedule). */
  id: string | null;
  /** Its cron expression. */
  cron: string;
  /** The entry as written: the cron string, or the mapping. */
  raw: string | Record<string, unknown>;
  /** Where it is in the flow: `["schedule"]`, or `["schedule", i]` in a list. */
  path: FlowPath;
}

/**
 * The entries of a `schedule:` value (the flow's data, checked or not): the
 * ones that have a cron string; `[]` without a schedule.
 */
export function scheduleEntries(schedule: unknown): ScheduleEntry[] {
  if (schedule === undefined || schedule === null) return [];
  const list = Array.isArray(schedule) ? schedule : [schedule];
  const out: ScheduleEntry[] = [];
  list.forEach((raw, i) => {
    const path: FlowPath = Array.isArray(schedule) ? ["schedule", i] : ["schedule"];
    if (typeof raw === "string") out.push({ id: null, cron: raw, raw, path });
    else if (isRecord(raw) && typeof raw.cron === "string") {
      const id = typeof raw.id === "string" ? raw.id : null;
      out.push({ id, cron: raw.cron, raw, path });
    }
  });
  return out;
}

/** The schedule id of entry `entry` (its `id:`, or `null`) of flow `flowId`. */
export function flowScheduleId(flowId: string, entry: string | null): string {
  return entry === null ? `flow:${flowId}` : `flow:${flowId}#${entry}`;
}

/** The input an entry's runs get the tick's time in, when the flow declares it. */
export const SCHEDULED_AT_INPUT = "scheduledAt";
