/**
 * Jobs: `defineJob()` and the context a job's `run` receives. Built-in
 * maintenance jobs live in `jobs/`; a config may name any module whose
 * default export is a job.
 *
 * @module
 */
import type { OptionsSchema } from "../plugin.ts";
import type { Records } from "../records/records.ts";
import type { Runtime } from "../runtime.ts";
import type { Clock, JsonValue, Store } from "../store/types.ts";
import type { Progress } from "./progress.ts";
import type { LogLevel } from "../log.ts";

/**
 * What a job's `run` receives.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineJob, type JobContext, openRuntime, runJob } from "@flowstate/core";
 * import { z } from "zod";
 *
 * async function countKeys(ctx: JobContext) {
 *   const store = await ctx.store();
 *   ctx.log(`counting orders in ${store.name}`);
 *   return { keys: ctx.dryRun ? 0 : await store.count(["orders"]) };
 * }
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * await (await rt.store("main")).set(["orders", "1"], { total: 5 });
 * const job = defineJob({
 *   name: "count-orders",
 *   description: "counts the orders",
 *   optionsSchema: z.strictObject({}),
 *   run: countKeys,
 * });
 * assert.equal((await runJob(rt, job)).outputs?.keys, 1);
 * ```
 */
export interface JobContext {
  /** The job's name. */
  jobName: string;
  /** The run's id (recorded like a flow run, as flow `job:<name>`). */
  runId: string;
  /** The runtime: config, stores, records. */
  runtime: Runtime;
  /** A configured store (default: the global scope's), opened on first use. */
  store(name?: string): Promise<Store>;
  /** The run records, flow versions and metrics. */
  records(): Promise<Records>;
  /** Flowstate's home directory: files a job writes go under it. */
  home: string;
  /** Write a log line (kept in the run's events; printed unless quiet). */
  log(message: string, level?: LogLevel): void;
  /** Report progress of long work (a bar on a terminal, plain lines otherwise). */
  progress: Progress;
  /**
   * Aborted on Ctrl-C, daemon shutdown or cancellation: stop at a consistent
   * point. A job that returns (or throws) once it aborted is recorded
   * `cancelled`, unless its result says `cancelled: false`: the signal came
   * after its last step and its work is whole (then it is `succeeded`).
   */
  signal: AbortSignal;
  /** The clock (injected in tests). */
  clock: Clock;
  /** Report what would be done without changing anything. */
  dryRun: boolean;
}

/**
 * What a job reports: counts, bytes freed, files written… (JSON).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineJob, type JobResult, openRuntime, runJob } from "@flowstate/core";
 * import { z } from "zod";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const job = defineJob({
 *   name: "report",
 *   description: "reports counts",
 *   optionsSchema: z.strictObject({}),
 *   run: (): JobResult => ({ deleted: 3, files: ["a.json"] }),
 * });
 * assert.deepEqual((await runJob(rt, job)).outputs, { deleted: 3, files: ["a.json"] });
 * ```
 */
export type JobResult = Record<string, JsonValue>;

/**
 * What `defineJob` takes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineJob, type JobDefinition } from "@flowstate/core";
 * import { z } from "zod";
 *
 * const definition: JobDefinition<{ days: number }> = {
 *   name: "trim",
 *   description: "deletes old entries",
 *   optionsSchema: z.strictObject({ days: z.number().int().positive() }),
 *   defaults: { days: 30 },
 *   defaultSchedule: "0 4 * * *",
 *   run: (_ctx, { days }) => ({ days }),
 * };
 * const report: JobDefinition<{ out: string }> = {
 *   name: "report",
 *   description: "writes a report",
 *   optionsSchema: z.strictObject({ out: z.string() }),
 *   pathOptions: ["out"], // `out: reports/` in flowstate.yaml is beside flowstate.yaml
 *   run: (_ctx, { out }) => ({ out }),
 * };
 * assert.deepEqual(defineJob(report).pathOptions, ["out"]);
 * const job = defineJob(definition); // a job module's default export
 * assert.equal(job.defaultSchedule, "0 4 * * *");
 * ```
 */
export interface JobDefinition<O> {
  /** Short name (`retention`, `gc`…). */
  name: string;
  /** One line for `flowstate jobs ls`. */
  description: string;
  /** Validates options (after `defaults`, config options and command-line options are merged). */
  optionsSchema: OptionsSchema<O>;
  /** Default options, shown by `jobs ls`. */
  defaults?: Partial<O>;
  /** A cron expression used when the config schedules the job without one. */
  defaultSchedule?: string;
  /**
   * The options that name a file or a folder (a string, or an array of
   * strings). A relative one written in the config (`jobs.<name>.options`)
   * resolves against the config file's folder, wherever the job runs (the
   * daemon, `flowstate jobs run`, `runJob`'s `configOptions`); one given on
   * the command line, against the working directory. `run` receives them
   * absolute; listings show them so.
   */
  pathOptions?: readonly string[];
  /** Do the work. Must honour `ctx.signal` and leave every store consistent if aborted. */
  run(ctx: JobContext, options: O): Promise<JobResult> | JobResult;
}

/**
 * A job made by {@linkcode defineJob}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineJob, type Job } from "@flowstate/core";
 * import { z } from "zod";
 *
 * const job: Job<Record<string, never>> = defineJob({
 *   name: "noop",
 *   description: "does nothing",
 *   optionsSchema: z.strictObject({}),
 *   run: () => ({}),
 * });
 * assert.equal(job.kind, "flowstate.job");
 * ```
 */
export interface Job<O = unknown> extends JobDefinition<O> {
  /** Marks the object as a Flowstate job. */
  readonly kind: "flowstate.job";
}

/**
 * Define a job. A job module's default export is the result.
 *
 * @example
 * ```ts
 * import { defineJob } from "@flowstate/core";
 * import { z } from "zod";
 *
 * export default defineJob({
 *   name: "count-keys",
 *   description: "counts the keys of a store",
 *   optionsSchema: z.strictObject({ store: z.string().optional() }),
 *   async run(ctx, { store }) {
 *     return { keys: await (await ctx.store(store)).count() };
 *   },
 * });
 * ```
 */
export function defineJob<O>(definition: JobDefinition<O>): Job<O> {
  if (typeof definition?.name !== "string" || !/^[a-z0-9][a-z0-9_-]*$/.test(definition.name)) {
    throw new TypeError("Cannot define job: name must match [a-z0-9][a-z0-9_-]*");
  }
  if (typeof definition.run !== "function") {
    throw new TypeError(`Cannot define job "${definition.name}": run must be a function`);
  }
  if (typeof definition.optionsSchema?.["~standard"]?.validate !== "function") {
    throw new TypeError(
      `Cannot define job "${definition.name}": optionsSchema must be a Standard Schema (for example a zod schema)`,
    );
  }
  const paths = definition.pathOptions;
  if (
    paths !== undefined && (!Array.isArray(paths) || paths.some((p) => typeof p !== "string"))
  ) {
    throw new TypeError(
      `Cannot define job "${definition.name}": pathOptions must be an array of option names`,
    );
  }
  return Object.freeze({
    ...definition,
    ...(paths === undefined ? {} : { pathOptions: Object.freeze([...paths]) }),
    kind: "flowstate.job" as const,
  });
}

/** Whether a value is a job (duck-typed). */
export function isJob(value: unknown): value is Job {
  const v = value as Partial<Job> | null;
  return typeof v === "object" && v !== null && typeof v.name === "string" &&
    typeof v.run === "function" && typeof v.optionsSchema?.["~standard"]?.validate === "function";
}
