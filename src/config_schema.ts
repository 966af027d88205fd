/**
 * The config as written (in `flowstate.yaml`, or as an object): its types,
 * the zod schema that checks its shape, and how each zod issue is explained
 * to the user (`expected a store name, got the number 3`, with did-you-mean
 * suggestions for unknown fields). The checks that need more than the shape
 * (store names, time zones, cron expressions) are in `config.ts`.
 *
 * @module
 */
import { z } from "zod";
import { didYouMean } from "./_suggest.ts";
import { EXPECTED } from "./flow/_shapes.ts";
import { builtinPluginNames, type Plugin, type StoreSpec } from "./plugin.ts";
import { SCOPES } from "./state/scopes.ts";

/** Checking a job's schedule (croner): loaded with the schema, for a config that has jobs. */
export { cronProblem } from "./cron.ts";
/** Checking a store's `encrypt` option: loaded with the schema, for a config that has stores. */
export { parseEncryptOptions } from "./wrappers/encrypt.ts";

/**
 * What a schedule does when its previous run (in this runner) is still running at a tick.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadConfig, type OverlapPolicy } from "@flowstate/core";
 *
 * const overlap: OverlapPolicy = "queue"; // a tick that comes while the last run runs waits for it
 * const config = await loadConfig({ config: { jobs: { backup: { schedule: "@hourly", overlap } } } });
 * assert.equal(config.jobs.backup.overlap, "queue");
 * ```
 */
export type OverlapPolicy = "skip" | "queue";

/**
 * What a schedule does on (re)start about ticks missed while no runner ran.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadConfig, type MissedPolicy } from "@flowstate/core";
 *
 * const missed: MissedPolicy = "run-once"; // after downtime, run once for the ticks missed
 * const config = await loadConfig({ config: { jobs: { backup: { schedule: "@daily", missed } } } });
 * assert.equal(config.jobs.backup.missed, "run-once");
 * ```
 */
export type MissedPolicy = "skip" | "run-once";

/**
 * What a runner does with a tick whose runner died while running it (its
 * lease lapsed, its run's heartbeat stopped): the run is recorded abandoned,
 * then the tick is recorded as done (`skip`, the default) or run again
 * (`rerun`; for work that is safe to repeat).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type AbandonedPolicy, loadConfig } from "@flowstate/core";
 *
 * const abandoned: AbandonedPolicy = "rerun"; // the job is safe to repeat
 * const config = await loadConfig({ config: { jobs: { gc: { abandoned } } } });
 * assert.equal(config.jobs.gc.abandoned, "rerun");
 * assert.equal(config.jobs.retention.abandoned, "skip"); // the default
 * ```
 */
export type AbandonedPolicy = "skip" | "rerun";

/**
 * One job's settings under `jobs:`, as written.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type JobConfigObject, loadConfig } from "@flowstate/core";
 *
 * const backup: JobConfigObject = {
 *   schedule: "0 3 * * *",
 *   timezone: "Europe/Paris",
 *   options: { keep: 7 },
 *   jitter: "30s",
 * };
 * const config = await loadConfig({ config: { jobs: { backup } } });
 * assert.equal(config.jobs.backup.jitterMs, 30_000);
 * assert.equal(config.jobs.backup.timezone, "Europe/Paris");
 * ```
 */
export interface JobConfigObject {
  /** The job's module (a `./path.ts` relative to the config, or a specifier); default: the built-in of that name. */
  module?: string;
  /** `false` keeps the job from being scheduled (it can still be run by hand). Default `true`. */
  enabled?: boolean;
  /** A cron expression or nickname (default: the job's `defaultSchedule`; without one it is not scheduled). */
  schedule?: string;
  /** IANA time zone of `schedule` (default: the top-level `timezone`). */
  timezone?: string;
  /** Options for the job, merged over its defaults. */
  options?: Record<string, unknown>;
  /** Default `skip`. */
  overlap?: OverlapPolicy;
  /** Default `skip`. */
  missed?: MissedPolicy;
  /** A tick whose runner died while running it: `skip` (default) or `rerun`. */
  abandoned?: AbandonedPolicy;
  /** Wait a random time up to this long after each tick (`30s`, or ms). Default 0. */
  jitter?: number | string;
}

/**
 * A configuration as written in `flowstate.yaml`, or passed as an object.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ConfigObject, openRuntime } from "@flowstate/core";
 *
 * // What flowstate.yaml holds, as an object.
 * const config: ConfigObject = {
 *   stores: { main: { plugin: "memory" }, cache: { plugin: "memory" } },
 *   scopes: { global: "main", flow: "main", node: "cache" },
 *   timezone: "Europe/Paris",
 *   runs: { abortGrace: "10s" },
 * };
 * await using rt = await openRuntime({ config });
 * assert.equal(rt.config.scopes.node, "cache");
 * assert.equal(rt.config.runs.abortGraceMs, 10_000);
 * ```
 */
export interface ConfigObject {
  /** Named stores: `{ <name>: { plugin, ...pluginOptions } }`. */
  stores?: Record<string, StoreSpec>;
  /** Which store each scope uses (default: the store named `default`, else the first one). */
  scopes?: { global?: string; flow?: string; node?: string };
  /** Flowstate's home directory, where default files go (relative to the config file). */
  home?: string;
  /** The store runs, flow versions and metrics are recorded in (default: the `flow` scope's store). */
  records?: string;
  /** Flow files, or directories whose `*.flow.yaml` files are read; flows with `schedule:` are scheduled. */
  flows?: string | string[];
  /** Default IANA time zone of schedules (default `UTC`). */
  timezone?: string;
  /** Jobs by name: settings and schedules. */
  jobs?: Record<string, JobConfigObject | null>;
  /** Limits of every flow run. */
  runs?: RunsConfigObject;
  /** Custom node settings (`nodes:`). */
  nodes?: NodesConfigObject;
  /** `flowstate serve` (and `flowstate daemon --serve`) settings. */
  serve?: ServeConfigObject;
}

/**
 * The `serve:` settings, as written.
 *
 * @example
 * ```ts
 * import type { ServeConfigObject } from "@flowstate/core";
 * const serve: ServeConfigObject = { port: 8377, host: "0.0.0.0", token: "${env.FLOWSTATE_TOKEN}" };
 * ```
 */
export interface ServeConfigObject {
  /** The port (default 8377; 0 picks a free one). */
  port?: number;
  /** The address to bind (default 127.0.0.1; any other requires a token). */
  host?: string;
  /** The token requests must carry (write `${env.NAME}`, never the token itself). */
  token?: string;
}

/**
 * The `nodes:` settings, as written.
 *
 * @example
 * ```ts
 * import type { NodesConfigObject } from "@flowstate/core";
 * const nodes: NodesConfigObject = { trusted: ["./nodes/fast.ts"] };
 * ```
 */
export interface NodesConfigObject {
  /**
   * Node modules that run in-process with every permission of the runner
   * (paths relative to the config file, or specifiers). Every other custom
   * node runs in a Worker with only the permissions its flow declares.
   */
  trusted?: string[];
  /**
   * How long a custom node module's Worker is kept after a run, to serve the
   * next run of a module with the same permissions (`1m`, or ms). Default 0
   * (stopped when the run ends), and 1 minute in `flowstate daemon`.
   */
  workerIdle?: number | string;
  /**
   * The heap a custom node's Worker may use while a node runs: MiB, or a
   * size such as `256MiB` or `1GiB`. Past it the Worker is stopped and the
   * node fails with that reason. Default 512 MiB.
   */
  memoryLimit?: number | string;
  /**
   * How long a flow's check of one custom node module may take: loading the
   * module in its Worker and checking its nodes' options (`30s`, or ms).
   * Past it the Worker is stopped and the flow fails to load, naming the
   * module. Default 30 seconds.
   */
  checkTimeout?: number | string;
}

/**
 * The `runs:` settings, as written.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadConfig, type RunsConfigObject } from "@flowstate/core";
 *
 * const runs: RunsConfigObject = { abortGrace: "2s", maxSubRuns: 50 };
 * const config = await loadConfig({ config: { runs } });
 * assert.deepEqual(config.runs, { abortGraceMs: 2_000, maxSubRuns: 50, eventFormat: 2 });
 * ```
 */
export interface RunsConfigObject {
  /**
   * How long a cancelled or timed-out run waits for its node attempts to stop
   * and its sub-runs to record their end (`5s`, or ms). Default 5 s.
   */
  abortGrace?: number | string;
  /** The most sub-runs one root run may start, at every level. Default 1000. */
  maxSubRuns?: number;
  /**
   * How long a run of a flow that sets no `timeout:` of its own may take
   * (`1h`, or ms) before it is stopped and recorded `timed-out`, its nodes
   * aborted: so a node that never returns cannot hold a worker's slot
   * forever. Default: no limit.
   */
  timeout?: number | string;
  /**
   * The form run events are stored in: 2 (the default) is compact; 1 is the
   * form Flowstate 0.4 wrote and reads, for a rolling upgrade or a rollback
   * while 0.4 processes share the records store. Both are always read.
   */
  eventFormat?: 1 | 2;
  /**
   * The form finished runs' node outcomes are stored in: 2 is compact (the
   * default, or 1 with `eventFormat: 1`); 1 is the form Flowstate 0.5 and
   * before wrote and read, for a rolling upgrade while such processes share
   * the records store (records already written compact stay unreadable to
   * them). Both are always read.
   */
  nodesFormat?: 1 | 2;
  /**
   * A flow run whenever any run (a flow's, a job's) ends failed, timed out or
   * abandoned: one place to be told. See {@linkcode OnFailureConfigObject}.
   */
  onFailure?: OnFailureConfigObject;
}

/**
 * What ends of a run fire `runs.onFailure`: `failed`, `timed-out`,
 * `abandoned` (its process died: recorded failed by whoever found it), and
 * `cancelled` (a person's act: only when listed).
 *
 * @example
 * ```ts
 * import type { FailureKind } from "@flowstate/core";
 * const on: FailureKind[] = ["failed", "abandoned"];
 * ```
 */
export type FailureKind = "failed" | "timed-out" | "abandoned" | "cancelled";

/** Every {@linkcode FailureKind}, in the order they are listed. */
export const FAILURE_KINDS: readonly FailureKind[] = [
  "failed",
  "timed-out",
  "abandoned",
  "cancelled",
];

/**
 * The `runs.onFailure:` settings, as written: the flow to run when a run
 * ends badly, with one input, `run`, describing it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadConfig, type OnFailureConfigObject } from "@flowstate/core";
 *
 * const onFailure: OnFailureConfigObject = { flow: "./alert.flow.yaml", except: ["noisy"] };
 * const config = await loadConfig({ config: { runs: { onFailure } } });
 * assert.deepEqual(config.runs.onFailure?.on, ["failed", "timed-out", "abandoned"]);
 * ```
 */
export interface OnFailureConfigObject {
  /** A flow id under `flows:`, or a path to a flow file (relative to the config's folder). */
  flow: string;
  /** Which ends fire it (default: `failed`, `timed-out`, `abandoned`). */
  on?: FailureKind[];
  /** Flow ids (`job:<name>` for a job) whose runs never fire it. */
  except?: string[];
}

type Path = readonly (string | number)[];

/** The fields allowed at the top level of a config. */
export const TOP_LEVEL_FIELDS: readonly string[] = [
  "stores",
  "scopes",
  "home",
  "records",
  "flows",
  "timezone",
  "jobs",
  "runs",
  "nodes",
  "serve",
];

/** The fields allowed under `serve:`. */
export const SERVE_FIELDS: readonly string[] = ["port", "host", "token"];

/** The fields allowed under `runs:`. */
export const RUNS_FIELDS: readonly string[] = [
  "abortGrace",
  "maxSubRuns",
  "timeout",
  "eventFormat",
  "nodesFormat",
  "onFailure",
];

/** The fields allowed under `runs.onFailure:`. */
export const ON_FAILURE_FIELDS: readonly string[] = ["flow", "on", "except"];

/** The fields allowed in one job's settings. */
export const JOB_FIELDS: readonly string[] = [
  "module",
  "enabled",
  "schedule",
  "timezone",
  "options",
  "overlap",
  "missed",
  "abandoned",
  "jitter",
];

function isPluginObject(value: unknown): value is Plugin {
  const v = value as Partial<Plugin> | null;
  return typeof v === "object" && v !== null && typeof v.open === "function" &&
    typeof v.name === "string";
}

const keySchema = z.array(z.string());
const pathSchema = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);
const storeSchema = z.looseObject({
  plugin: z.union([z.string().min(1), z.custom<Plugin>(isPluginObject)]),
  // Checked again (array-index segments and the like) when the store opens.
  indexes: z.array(z.strictObject({ prefix: keySchema, path: pathSchema })).optional(),
  search: z.strictObject({
    prefix: keySchema.optional(),
    fields: z.array(pathSchema).min(1).optional(),
  }).optional(),
  // Checked in detail (durations, count) when the store opens.
  changes: z.strictObject({
    keep: z.union([
      z.string(),
      z.number(),
      z.strictObject({
        age: z.union([z.string(), z.number()]).optional(),
        count: z.number().optional(),
      }),
    ]),
  }).optional(),
  // The keys' format is checked in config.ts (parseEncryptOptions), with the reason.
  encrypt: z.strictObject({
    key: z.string().optional(),
    keys: z.array(z.string()).min(1).optional(),
    plaintext: z.array(pathSchema).optional(),
    // Checked by parseEncryptOptions, which says what it takes (a number, a size, 0).
    cache: z.custom<number | string>(() => true).optional(),
  }).optional(),
});

/** The shape of a config; {@linkcode explainIssue} turns its issues into messages. */
export const configSchema: z.ZodType<ConfigObject> = z.strictObject({
  stores: z.record(z.string(), storeSchema).optional(),
  scopes: z.strictObject({
    global: z.string().min(1).optional(),
    flow: z.string().min(1).optional(),
    node: z.string().min(1).optional(),
  }).optional(),
  // A `~` or `$NAME` in it is refused in config.ts, which sees it as written (before ${env.…}).
  home: z.string().min(1).optional(),
  records: z.string().min(1).optional(),
  flows: z.union([z.string().min(1), z.array(z.string().min(1))]).optional(),
  timezone: z.string().min(1).optional(),
  jobs: z.record(
    z.string(),
    z.preprocess(
      (value) => (value === null ? {} : value),
      z.strictObject({
        module: z.string().min(1).optional(),
        enabled: z.boolean().optional(),
        schedule: z.string().min(1).optional(),
        timezone: z.string().min(1).optional(),
        options: z.record(z.string(), z.unknown()).optional(),
        overlap: z.enum(["skip", "queue"]).optional(),
        missed: z.enum(["skip", "run-once"]).optional(),
        abandoned: z.enum(["skip", "rerun"]).optional(),
        jitter: z.union([z.number(), z.string()]).optional(),
      }),
    ),
  ).optional(),
  runs: z.strictObject({
    abortGrace: z.union([z.number(), z.string()]).optional(),
    maxSubRuns: z.number().int().nonnegative().optional(),
    timeout: z.union([z.number(), z.string()]).optional(),
    eventFormat: z.union([z.literal(1), z.literal(2)]).optional(),
    nodesFormat: z.union([z.literal(1), z.literal(2)]).optional(),
    onFailure: z.strictObject({
      flow: z.string().min(1),
      on: z.array(z.enum(["failed", "timed-out", "abandoned", "cancelled"])).min(1).optional(),
      except: z.array(z.string().min(1)).optional(),
    }).optional(),
  }).optional(),
  nodes: z.strictObject({
    trusted: z.array(z.string().min(1)).optional(),
    workerIdle: z.union([z.number(), z.string()]).optional(),
    memoryLimit: z.union([z.number().positive(), z.string()]).optional(),
    checkTimeout: z.union([z.number(), z.string()]).optional(),
  }).optional(),
  serve: z.strictObject({
    port: z.number().int().min(0).max(65535).optional(),
    host: z.string().min(1).optional(),
    token: z.string().min(1).optional(),
  }).optional(),
});

/** The path an issue's location should point at (an unknown key points at that key). */
export function issueLocationPath(issue: z.core.$ZodIssue): Path {
  const path = issue.path as Path;
  if (issue.code === "unrecognized_keys" && issue.keys.length > 0) {
    return [...path, issue.keys[0]];
  }
  return path;
}

/**
 * An issue of {@linkcode configSchema} as the path it is about and a message
 * saying what was expected and what was found.
 */
export function explainIssue(issue: z.core.$ZodIssue): { path: Path; message: string } {
  const path = issue.path.map((p) => (typeof p === "symbol" ? String(p) : p)) as Path;
  const last = path[path.length - 1];
  const input = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case "unrecognized_keys": {
      const key = issue.keys[0];
      if (path.length === 0) {
        return {
          path: [key],
          message: `unknown field${didYouMean(key, TOP_LEVEL_FIELDS)}; the top level allows ${
            TOP_LEVEL_FIELDS.join(", ")
          }`,
        };
      }
      if (path.length === 1 && path[0] === "scopes") {
        return {
          path: [...path, key],
          message: `unknown scope${didYouMean(key, SCOPES)}; the scopes are ${SCOPES.join(", ")}`,
        };
      }
      if (path.length === 2 && path[0] === "jobs") {
        return {
          path: [...path, key],
          message: `unknown field${didYouMean(key, JOB_FIELDS)}; a job allows ${
            JOB_FIELDS.join(", ")
          }`,
        };
      }
      if (path.length === 1 && path[0] === "serve") {
        return {
          path: [...path, key],
          message: `unknown field${didYouMean(key, SERVE_FIELDS)}; serve allows ${
            SERVE_FIELDS.join(", ")
          }`,
        };
      }
      if (path.length === 1 && path[0] === "runs") {
        return {
          path: [...path, key],
          message: `unknown field${didYouMean(key, RUNS_FIELDS)}; runs allows ${
            RUNS_FIELDS.join(", ")
          }`,
        };
      }
      if (path.length === 2 && path[0] === "runs" && path[1] === "onFailure") {
        return {
          path: [...path, key],
          message: `unknown field${didYouMean(key, ON_FAILURE_FIELDS)}; onFailure allows ${
            ON_FAILURE_FIELDS.join(", ")
          }`,
        };
      }
      return { path: [...path, key], message: "unknown field" };
    }
    case "invalid_type":
    case "invalid_union": {
      if (path.length === 3 && path[0] === "stores" && last === "plugin") {
        const builtins = builtinPluginNames().join(", ");
        return input === undefined
          ? {
            path: path.slice(0, 2),
            message: `missing "plugin"; add one, like "plugin: sqlite" (built-ins: ${builtins}; ` +
              `or a ./file.ts path, or an npm:/jsr:/https: specifier)`,
          }
          : {
            path,
            message: `expected a plugin name or module specifier, got ${
              describeValue(input)
            } (built-ins: ${builtins})`,
          };
      }
      const expected = path.length === 0
        ? `a mapping with fields ${TOP_LEVEL_FIELDS.join(", ")}`
        : path.length === 1 && last === "stores"
        ? "a mapping of store names to { plugin, ...options }"
        : path.length === 2 && path[0] === "stores"
        ? `a mapping like "{ plugin: sqlite }"`
        : path.length === 1 && last === "scopes"
        ? `a mapping like "{ global: <store>, flow: <store>, node: <store> }"`
        : path.length === 2 && path[0] === "scopes"
        ? "a store name"
        : last === "home"
        ? "a directory path"
        : path.length === 1 && last === "records"
        ? `the name of the store that keeps the records, like "records: ${
          isPlainStoreRef(input) ?? "default"
        }"`
        : path.length === 1 && last === "flows"
        ? "a list of flow files or directories"
        : path.length === 2 && path[0] === "flows"
        ? "a flow file or directory path"
        : path.length === 1 && last === "timezone"
        ? `an IANA time zone like "Europe/Paris"`
        : path.length === 1 && last === "jobs"
        ? `a mapping of job names to settings, like "retention: { schedule: '0 3 * * *' }"`
        : path.length === 2 && path[0] === "jobs"
        ? `a mapping of job settings (${JOB_FIELDS.join(", ")})`
        : path.length === 3 && path[0] === "jobs" && last === "jitter"
        ? `a duration like "30s" or a number of milliseconds`
        : path.length === 3 && path[0] === "jobs" && last === "options"
        ? "a mapping of job options"
        : path.length === 1 && last === "runs"
        ? `a mapping of run limits (${RUNS_FIELDS.join(", ")})`
        : path.length === 2 && path[0] === "runs" && last === "abortGrace"
        ? `a duration like "5s" or a number of milliseconds`
        : path.length === 2 && path[0] === "runs" && last === "maxSubRuns"
        ? "a whole number"
        : path.length === 2 && path[0] === "runs" && last === "eventFormat"
        ? "1 (the form Flowstate 0.4 reads) or 2 (compact, the default)"
        : path.length === 2 && path[0] === "runs" && last === "nodesFormat"
        ? "1 (the form Flowstate 0.5 reads) or 2 (compact, the default unless eventFormat is 1)"
        : path.length === 2 && path[0] === "runs" && last === "onFailure"
        ? `a mapping like "{ flow: alert }" (fields ${ON_FAILURE_FIELDS.join(", ")})`
        : path.length === 3 && path[1] === "onFailure" && last === "flow"
        ? "a flow id under flows:, or a path to a flow file"
        : path.length === 3 && path[1] === "onFailure" && last === "on"
        ? `a list of ${FAILURE_KINDS.join(", ")}`
        : path.length === 3 && path[1] === "onFailure" && last === "except"
        ? "a list of flow ids"
        : path.length === 4 && path[1] === "onFailure" && path[2] === "except"
        ? "a flow id"
        : path.length === 1 && last === "serve"
        ? `a mapping of server settings (${SERVE_FIELDS.join(", ")})`
        : path.length === 2 && path[0] === "serve" && last === "port"
        ? "a port number from 0 to 65535"
        : path.length === 2 && path[0] === "serve" && last === "host"
        ? `an address to bind, like "127.0.0.1" or "0.0.0.0"`
        : path.length === 2 && path[0] === "serve" && last === "token"
        ? `a token, best written as "\${env.FLOWSTATE_TOKEN}"`
        : path.length === 4 && path[2] === "encrypt" && last === "key" && Array.isArray(input)
        ? `one key as a string (for several keys, the new one first, write "keys: [new, old]")`
        : kindOf((issue as { expected?: string }).expected);
      return { path, message: `expected ${expected}, got ${describeValue(input)}` };
    }
    case "too_big":
      if (path[0] === "serve") {
        return {
          path,
          message: `expected a port number from 0 to 65535, got ${describeValue(input)}`,
        };
      }
      return { path, message: issue.message };
    case "too_small":
      if (path[0] === "serve" && last === "port") {
        return {
          path,
          message: `expected a port number from 0 to 65535, got ${describeValue(input)}`,
        };
      }
      if (path[0] === "runs" && path[1] === "onFailure") {
        return {
          path,
          message: path[2] === "on"
            ? `must name at least one of ${
              FAILURE_KINDS.join(", ")
            } (leave it out for failed, timed-out, abandoned)`
            : "must not be empty",
        };
      }
      if (path[0] === "runs") {
        return { path, message: `must be at least 0, got ${describeValue(input)}` };
      }
      return { path, message: "must not be empty" };
    case "invalid_value": {
      const values = (issue as { values?: unknown[] }).values ?? [];
      return {
        path,
        message: `expected one of ${values.map((v) => JSON.stringify(v)).join(", ")}, got ${
          describeValue(input)
        }`,
      };
    }
    default:
      return { path, message: issue.message };
  }
}

/** The store a mapping written for `records:` names (`{ store: main }`), if it names one. */
function isPlainStoreRef(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const named = Object.values(value).find((v) => typeof v === "string");
  return typeof named === "string" && /^[\w-]+$/.test(named) ? named : undefined;
}

/** A value as the user wrote it, for messages: `the string "x"`, `a list`, `nothing`. */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "an empty value";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "string") {
    // A short excerpt only: a whole file that parses to one string is not echoed back.
    return value.length <= 60
      ? `the string ${JSON.stringify(value)}`
      : `the string ${JSON.stringify(value.slice(0, 40))}… (${value.length} characters)`;
  }
  if (typeof value === "number") return `the number ${value}`;
  if (typeof value === "boolean") return `${value}`;
  if (typeof value === "object") return "a mapping";
  return `a ${typeof value}`;
}

/** zod's expected type (`array`, `object`…) as the flow checks word it (`a list`, `a mapping`). */
function kindOf(expected: string | undefined): string {
  if (expected === undefined) return "a valid value";
  return EXPECTED[expected] ?? `${/^[aeiou]/.test(expected) ? "an" : "a"} ${expected}`;
}
