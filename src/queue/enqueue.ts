/**
 * Enqueueing a run of a flow: find the flow (an id among the config's
 * `flows:`, or a path), validate it and its inputs (nothing is written for
 * an invalid one), store its version, work out its `queue:` limit partition,
 * and record the run as `queued` (see "The queue" in `records/records.ts`).
 *
 * @module
 */
import { dirname, resolve } from "../_path.ts";
import { parseDuration } from "../duration.ts";
import { parseRate } from "../rate.ts";
import { coerceInputs } from "../flow/inputs.ts";
import { loadFlowIn } from "../flow/load.ts";
import type { ProgramNodeTypes } from "../flow/program_nodes.ts";
import type { SandboxPool } from "../flow/sandbox.ts";
import type { FlowCache } from "../flow_cache.ts";
import { compileTemplate, TemplateError } from "../flow/template/mod.ts";
import { placedError } from "../flow/_eval_place.ts";
import type { Records } from "../records/records.ts";
import type { QueueBackoff, QueueInfo } from "../records/types.ts";
import type { JsonValue } from "../store/types.ts";
import { FlowVersionGoneError } from "../records/_versions.ts";
import { assertRunId } from "../records/run_id.ts";

/** Tries of an enqueue whose flow version retention keeps deleting before it gives up. */
const VERSION_GONE_TRIES = 5;

/**
 * Options of `Runtime.enqueue()`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type EnqueueOptions, openRuntime } from "@flowstate/core";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(
 *   `${dir}/mail.flow.yaml`,
 *   "id: mail\ninputs:\n  to: { type: string }\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n",
 * );
 * {
 *   await using rt = await openRuntime({ cwd: dir, config: { stores: { main: { plugin: "memory" } } } });
 *   const options: EnqueueOptions = {
 *     input: { to: "ada@example.com" },
 *     delay: "5m",
 *     key: "welcome:ada",
 *     maxAttempts: 3,
 *     backoff: { delay: "30s", factor: 2 },
 *   };
 *   const { runId } = await rt.enqueue("./mail.flow.yaml", options);
 *   const run = await (await rt.records()).getRun(runId);
 *   assert.equal(run?.status, "queued");
 *   assert.deepEqual(run?.inputs, { to: "ada@example.com" });
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface EnqueueOptions {
  /** Input values (checked against the flow's `inputs` now, before anything is written). */
  input?: Record<string, unknown>;
  /**
   * Inputs are strings from a command line: convert them per declared type
   * (a list of names: only those inputs).
   */
  inputFromStrings?: boolean | readonly string[];
  /** Do not start before this time (a `Date` or ms since the epoch). */
  runAt?: Date | number;
  /** Do not start before this long from now (ms, or a duration like `"10m"`). */
  delay?: number | string;
  /** Higher starts first among due runs (a whole number, default 0). */
  priority?: number;
  /** Dedupe key: while a run enqueued with it is queued or running, that run is returned. */
  key?: string;
  /** Attempts in all when attempts fail (default 1: no retry). */
  maxAttempts?: number;
  /** Waits between attempts: `delay` (ms or duration), `factor` (default 2), `max`. */
  backoff?: { delay: number | string; factor?: number; max?: number | string };
  /** The run that enqueued it (a `queue` node's run). */
  parentRunId?: string;
}

/**
 * What `Runtime.enqueue()` resolves: the run's id, and whether it existed (dedupe key).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type EnqueueResult, openRuntime } from "@flowstate/core";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/hi.flow.yaml`, "id: hi\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n");
 * {
 *   await using rt = await openRuntime({ cwd: dir, config: { stores: { main: { plugin: "memory" } } } });
 *   const first: EnqueueResult = await rt.enqueue("./hi.flow.yaml", { key: "once", delay: "1h" });
 *   const again: EnqueueResult = await rt.enqueue("./hi.flow.yaml", { key: "once" });
 *   assert.equal(first.existing, false);
 *   assert.deepEqual(again, { runId: first.runId, existing: true }); // deduplicated by key
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface EnqueueResult {
  /** The queued (or, with `existing`, the earlier) run's id. */
  runId: string;
  /** `true` when a run with the same key was queued or running: that run's id is returned. */
  existing: boolean;
}

/** What enqueueing needs from the runtime (internal). */
export interface EnqueueHost {
  /** The records. */
  records(): Promise<Records>;
  /** The flow file of an id or path. */
  findFlow(flow: string): Promise<string>;
  /** Now. */
  now(): number;
  /** For checking custom node modules. */
  pool?: SandboxPool;
  /** The config's trusted node modules. */
  trusted?: readonly string[];
  /** Where they resolve from. */
  trustedBaseDir?: string;
  /** The program's node types (`nodeTypes` of `openRuntime`). */
  nodeTypes?: ProgramNodeTypes;
  /** Store names, for `state.*` nodes' `store`. */
  stores?: readonly string[];
  /** The runtime's prepared flows (see `flow_cache.ts`). */
  flows?: FlowCache;
}

/** Enqueue a run of `flow` (internal: `Runtime.enqueue()`). */
export async function enqueueFlow(
  host: EnqueueHost,
  flow: string,
  options: EnqueueOptions = {},
): Promise<EnqueueResult> {
  const what = `Cannot enqueue ${JSON.stringify(flow)}`;
  if (options.runAt !== undefined && options.delay !== undefined) {
    throw new TypeError(`${what}: give runAt or delay, not both`);
  }
  if (options.parentRunId !== undefined) assertRunId(options.parentRunId, `${what}: parentRunId`);
  const path = await host.findFlow(flow);
  const loadOptions = {
    ...(host.pool === undefined ? {} : { pool: host.pool }),
    ...(host.stores === undefined ? {} : { stores: host.stores }),
    ...(host.trusted === undefined ? {} : { trusted: host.trusted }),
    ...(host.trustedBaseDir === undefined ? {} : { trustedBaseDir: host.trustedBaseDir }),
    ...(host.nodeTypes === undefined ? {} : { nodeTypes: host.nodeTypes }),
  };
  // Through the runtime's cache: an unchanged flow is not checked again (its custom nodes'
  // modules in a Worker) on every enqueue.
  const { parsed, prepared } = host.flows === undefined
    ? await loadFlowIn(resolve(path), loadOptions)
    : await host.flows.loadChecked(resolve(path), { ...loadOptions, cwd: dirname(resolve(path)) });
  const def = prepared.definition;
  const inputs = coerceInputs(def, options.input ?? {}, {
    fromStrings: options.inputFromStrings,
    locate: parsed.locate,
    file: parsed.file,
  }) as Record<string, JsonValue>;
  const now = host.now();
  let runAt: number | undefined;
  if (options.runAt !== undefined) {
    runAt = options.runAt instanceof Date ? options.runAt.getTime() : options.runAt;
    if (typeof runAt !== "number" || !Number.isFinite(runAt) || runAt < 0) {
      throw new TypeError(
        `${what}: runAt must be a Date or ms since the epoch, not before 1970-01-01T00:00:00Z ` +
          `(got ${options.runAt instanceof Date ? "an invalid or earlier Date" : String(runAt)})`,
      );
    }
  } else if (options.delay !== undefined) {
    runAt = now + parseDuration(options.delay, "delay");
  }
  let backoff: QueueBackoff | undefined;
  if (options.backoff !== undefined) {
    const factor = options.backoff.factor ?? 2;
    if (typeof factor !== "number" || !(factor >= 1)) {
      throw new RangeError(`${what}: backoff.factor must be a number >= 1 (got ${factor})`);
    }
    backoff = { delay: parseDuration(options.backoff.delay, "backoff.delay"), factor };
    if (options.backoff.max !== undefined) {
      backoff.max = parseDuration(options.backoff.max, "backoff.max");
    }
  }
  let limit: QueueInfo["limit"];
  if (def.queue !== undefined) {
    let partition = "*";
    if (def.queue.by !== undefined) {
      let value: unknown;
      try {
        value = compileTemplate(def.queue.by).evaluate({ inputs, nodes: {}, env: {} });
      } catch (err) {
        if (!(err instanceof TemplateError)) throw err;
        // Said where the template is, as a node's failing template says it.
        throw new TemplateError(placedError(prepared, ["queue", "by"], err), err, { cause: err });
      }
      partition = typeof value === "string" ? value : JSON.stringify(value) ?? "null";
      if (partition === "") partition = '""';
    }
    limit = { partition };
    if (def.queue.concurrency !== undefined) limit.concurrency = def.queue.concurrency;
    if (def.queue.rate !== undefined) limit.rate = parseRate(def.queue.rate, "queue.rate");
  }
  const records = await host.records();
  const { hash } = await records.saveVersion(def, parsed.source);
  const init = {
    flowId: def.id,
    flowVersion: hash,
    inputs,
    flowPath: resolve(path),
    ...(runAt === undefined ? {} : { runAt }),
    ...(options.priority === undefined ? {} : { priority: options.priority }),
    ...(options.key === undefined ? {} : { key: options.key }),
    ...(options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts }),
    ...(backoff === undefined ? {} : { backoff }),
    ...(limit === undefined ? {} : { limit }),
    ...(options.parentRunId === undefined ? {} : { parentRunId: options.parentRunId }),
  };
  // A version retention deleted since it was saved is saved again (see _prune_versions.ts).
  for (let n = 1;; n++) {
    try {
      const { runId, existing } = await records.enqueueRun(init);
      return { runId, existing };
    } catch (err) {
      if (!(err instanceof FlowVersionGoneError) || n >= VERSION_GONE_TRIES) throw err;
      await records.saveVersion(def, parsed.source);
    }
  }
}
