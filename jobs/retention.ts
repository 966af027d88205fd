/**
 * The `retention` job: deletes old run records and their events, by age and
 * by count per flow, keeping failed runs longer and never touching a run that
 * is still `running`.
 *
 * ```yaml
 * jobs:
 *   retention:
 *     schedule: "0 3 * * *"
 *     options: { maxAge: 30d, failedMaxAge: 90d, maxRuns: 1000 }
 * ```
 *
 * Which runs go (each flow id separately; the runs of a job are the flow
 * `job:<name>`, so they are counted on their own):
 * - A run that is `running` is never deleted, whatever its age or rank.
 * - A run that ended more than `maxAge` ago is deleted; a *failed* run
 *   (status `failed` or `timed-out`) only once it ended more than
 *   `failedMaxAge` ago. A `cancelled` run counts as an ordinary run: it was
 *   stopped on purpose (Ctrl-C, a shutdown), so there is no error to keep for
 *   debugging. A run is aged from its end, not from the time its id encodes
 *   (its enqueue time, for a queued run): a run delayed or queued for longer
 *   than `maxAge` is kept for `maxAge` after it ran. (Runs that ended within a
 *   minute of their id's time may be kept up to a minute longer.)
 * - Only the newest `maxRuns` runs of each flow are kept (every run counts
 *   towards the rank, running ones too); older ones are deleted whatever their
 *   status, `running` aside. The count limit is what bounds storage, so failed
 *   runs are not exempt from it.
 * - `null` switches a limit off; `flows` limits the job to some flow ids.
 *
 * Then flow versions go too (with `maxAge`): a version created more than
 * `maxAge` ago that is not its flow's current version and that no run left
 * refers to (a generated definition, an edited flow file's old content). Its
 * per-version metrics are folded into the flow's `"*pruned"` metrics, so the
 * flow's totals (`"*"`) never change and its per-version rows still add up to
 * them; the flow counts it in `prunedVersions`. A run starting on such a
 * version meanwhile keeps it (or saves it again): no run ever refers to a
 * deleted version (see `src/records/_prune_versions.ts`).
 *
 * How it deletes a million runs in seconds, in bounded memory, is the
 * records' own business: see `src/records/prune.ts`. Metrics are aggregates
 * kept apart from the runs, so deleting runs does not change them. Cancelling stops between
 * commits: every run is either fully deleted or untouched. A dry run reads the
 * same entries and reports what it would delete, without writing.
 *
 * @module
 */
import { z } from "zod";
import { durationProblem, parseDuration } from "../src/duration.ts";
import type { Duration } from "../src/duration.ts";
import { defineJob, type Job, type JobContext } from "../src/jobs/job.ts";
import type { PruneResult } from "../src/records/prune.ts";

/**
 * Options of the retention job.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, runJob } from "@flowstate/core";
 * import type { RetentionOptions } from "@flowstate/core/jobs";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * for (let i = 0; i < 3; i++) {
 *   await rt.runFlow({ id: "hi", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] });
 * }
 * const options: Partial<RetentionOptions> = { maxAge: "30d", maxRuns: 1, flows: ["hi"] };
 * const run = await runJob(rt, "retention", { options });
 * assert.equal(run.status, "succeeded");
 * assert.equal((await (await rt.records()).listRuns({ flowId: "hi" })).runs.length, 1);
 * ```
 */
export interface RetentionOptions {
  /**
   * Delete finished runs that ended longer ago than this, and flow versions
   * created longer ago that no run refers to (never a flow's current one);
   * `null`: no age limit, and no version is deleted.
   */
  maxAge: Duration | null;
  /** The age limit of failed runs (`failed`, `timed-out`); `null`: failed runs never age out. */
  failedMaxAge: Duration | null;
  /** Keep at most this many runs per flow id (the newest); `null`: no count limit. */
  maxRuns: number | null;
  /** Only prune runs of these flow ids (default: every flow, jobs included). */
  flows?: string[];
  /**
   * Runs deleted per atomic commit (1 to 100,000): the size of an age window;
   * runs deleted one by one (by count, or with `flows`) go at most 1,000 per commit.
   */
  batchSize: number;
}

/** Default options of the retention job. */
export const defaults = {
  maxAge: "30d",
  failedMaxAge: "90d",
  maxRuns: 1000,
  batchSize: 5000,
} satisfies Partial<RetentionOptions>;

/** What the retention job reports. In a dry run, the counts are what it would delete. */
export type RetentionResult = PruneResult;

const duration = z.union([z.number(), z.string()]).superRefine((value, ctx) => {
  const problem = durationProblem(value);
  if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem.message });
});

const optionsSchema = z.strictObject({
  maxAge: duration.nullable().default(defaults.maxAge),
  failedMaxAge: duration.nullable().default(defaults.failedMaxAge),
  maxRuns: z.number().int().min(0).nullable().default(defaults.maxRuns),
  flows: z.array(z.string().min(1)).optional(),
  batchSize: z.number().int().min(1).max(100_000).default(defaults.batchSize),
});

async function runRetention(ctx: JobContext, options: RetentionOptions): Promise<RetentionResult> {
  const ms = (limit: Duration | null, name: string) =>
    limit === null ? null : parseDuration(limit, name);
  const records = await ctx.records();
  return await records.prune({
    maxAge: ms(options.maxAge, "maxAge"),
    failedMaxAge: ms(options.failedMaxAge, "failedMaxAge"),
    maxRuns: options.maxRuns,
    flows: options.flows,
    batchSize: options.batchSize,
    now: ctx.clock.now(),
    dryRun: ctx.dryRun,
    signal: ctx.signal,
    progress: ctx.progress,
    label: "retention",
    onWarning: (message) => ctx.log(message, "warn"),
  });
}

/**
 * The retention job. Run it with `flowstate jobs run retention`, or
 * `runJob(runtime, "retention", { options })`.
 */
const retentionJob: Job<RetentionOptions> = defineJob<RetentionOptions>({
  name: "retention",
  description:
    "deletes old runs and their events (by age, by count per flow, failed runs kept longer) and unused old flow versions",
  optionsSchema,
  defaults,
  defaultSchedule: "0 3 * * *",
  run: runRetention,
});

export default retentionJob;
