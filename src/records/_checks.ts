/**
 * Argument checks shared by the parts of `Records`: each throws a
 * `TypeError` whose message starts with `what` (what could not be done).
 * Internal to `src/records/`.
 *
 * @module
 */
import { PRUNED_METRICS, RUN_STATUSES } from "./layout.ts";
import { assertRunId } from "./run_id.ts";
import type { RunEvent, RunRecord, RunStatus } from "./types.ts";

/** Throw unless `flowId` is a non-empty string. */
export function checkFlowId(flowId: unknown, what: string): asserts flowId is string {
  if (typeof flowId !== "string" || flowId === "") {
    throw new TypeError(
      `${what}: flow id must be a non-empty string (got ${JSON.stringify(flowId) ?? flowId})`,
    );
  }
}

/** Throw unless `status` is a run status. */
export function checkStatus(status: unknown, what: string): asserts status is RunStatus {
  if (!RUN_STATUSES.includes(status as RunStatus)) {
    throw new TypeError(
      `${what}: status must be one of ${RUN_STATUSES.join(", ")} (got ${JSON.stringify(status)})`,
    );
  }
}

/** Throw unless `run` looks like a {@linkcode RunRecord}: ids, version hash, status, start time. */
export function checkRun(run: unknown, what: string): asserts run is RunRecord {
  if (typeof run !== "object" || run === null || Array.isArray(run)) {
    throw new TypeError(`${what}: the run must be a RunRecord object`);
  }
  const r = run as Partial<RunRecord>;
  assertRunId(r.id, what);
  checkFlowId(r.flowId, what);
  if (
    typeof r.flowVersion !== "string" || r.flowVersion === "" || r.flowVersion === "*" ||
    r.flowVersion === PRUNED_METRICS
  ) {
    throw new TypeError(
      `${what}: flowVersion must be a version hash (got ${JSON.stringify(r.flowVersion)})`,
    );
  }
  checkStatus(r.status, what);
  if (typeof r.startedAt !== "number" || !Number.isFinite(r.startedAt)) {
    throw new TypeError(`${what}: startedAt must be a number of ms (got ${r.startedAt})`);
  }
}

/** Throw unless `value` (named `name` in the message) is a finite number of ms. */
export function checkTime(value: unknown, name: string, what: string): asserts value is number {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new TypeError(`${what}: ${name} must be a number of ms since the epoch (got ${value})`);
  }
}

/** Throw unless `events` is an array of objects with a string `type` and a time `at`. */
export function checkEvents(events: unknown, what: string): asserts events is RunEvent[] {
  if (!Array.isArray(events)) throw new TypeError(`${what}: events must be an array`);
  for (let i = 0; i < events.length; i++) {
    const e = events[i];
    if (typeof e !== "object" || e === null || typeof e.type !== "string") {
      throw new TypeError(`${what}: events[${i}] must be an object with a string type`);
    }
    checkTime(e.at, `events[${i}].at`, what);
  }
}
