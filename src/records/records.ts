/**
 * The records of Flowstate: hash-addressed flow versions, run records with
 * their per-node events, and per-flow metrics, kept in any {@linkcode Store}.
 *
 * ## Key layout
 *
 * Every key starts with the prefix (default `["flowstate"]`), written `P` here:
 *
 * | key | value |
 * |---|---|
 * | `P, "versions", flowId, hash` | {@linkcode FlowVersion} (immutable once written; marked `"@pruning"` while retention deletes it, see `_prune_versions.ts`) |
 * | `P, "heads", flowId` | `{ hash, versions, pruned?, description, updatedAt }`: the current version, versions created, versions retention deleted |
 * | `P, "runs", runId` | the full {@linkcode RunRecord}; once finished, its node outcomes compact and maybe its events inline (see below) |
 * | `P, "runs-by-flow", flowId, runId` | {@linkcode RunSummary} |
 * | `P, "runs-by-status", status, runId` | {@linkcode RunSummary}, for every status but `succeeded` |
 * | `P, "runs-by-flow-status", flowId, status, runId` | the same, per flow |
 * | `P, "runs-ended-late", runId` | `{ flowId, status, endedAt }`: a run that ended over a minute after its id's time (a queued run, a long one): what retention ages it by |
 * | `P, "events", runId, chunk` | `{ first, format: 2, … }`: one `appendEvents()` call, compact (see below); with `outputNodes`, `outputs` and `maskedOutputs` beside its events when outputs were kept with them (Flowstate 0.7 and before write none and pass them by: a chunk read or rewritten by 0.7 keeps its events) |
 * | `P, "metrics", flowId, version` | {@linkcode FlowMetrics}; `version` is a hash, `"*"` (all runs) or `"*pruned"` (the runs of the versions retention deleted) |
 * | `P, "metrics-shards", flowId, version, shard` | {@linkcode FlowMetrics} of runs not folded into the above yet |
 * | `P, "cancel", runId` | `{ requestedAt }`: a request to cancel a running run (see below) |
 * | `P, "signals", runId, name, seq` | {@linkcode StoredSignal}: a signal sent to a queued or running run, not taken yet by its `wait` node (cleared with the run's end and with the run; see below) |
 * | `P, "signals", runId, "@received", receiver, name` | {@linkcode StoredSignal} and its `seq`: the signal `name` node `receiver` (its place in root run `runId`, `+n` for an attempt's (n+1)th take of `name`) took, given again to its later attempts (cleared with the run's other signals) |
 * | `P, "resumed", runId` | {@linkcode ResumeMarker}: a resume claimed this run (written if absent, once, before the resuming run starts; deleted with the run, except by Flowstate 0.7 and before, which do not know it: their retention and archive leave it, and nothing reads it then) |
 * | `P, "on-failure", runId` | {@linkcode OnFailureMarker}: the config's `runs.onFailure` flow was started about this run (written if absent, once, before it starts; deleted with the run) |
 * | `P, "queue", "ready", priority, runAt, runId` | `{ id, flowId }`: a queued run that is due |
 * | `P, "queue", "delayed", runAt, priority, runId` | the same, for a run not due yet |
 * | `P, "queue", "claimed", runId` | `{ worker, at, leaseMs }`: a run a worker holds |
 * | `P, "queue", "key", key` | `{ runId }`: the queued or running run a dedupe key was given to (deleted with the run's end) |
 * | `P, "queue", "active", flowId, partition` | `{ runs }`: running runs of a flow with `queue: { concurrency }` |
 * | `P, "queue", "parked", flowId, partition, priority, runAt, runId` | `{ id, flowId }`: a due run of a partition that was at its `concurrency` limit, out of the ready index until the commit freeing a slot moves the oldest back |
 * | `P, "queue", "rate", flowId, partition` | `{ at }`: the times of the last claims of a flow with `queue: { rate }` (expires once none counts) |
 * | `P, "workers", workerId` | {@linkcode WorkerInfo}: a running queue worker, its heartbeat and claims (see `workers.ts`) |
 *
 * Run ids start with their creation time (9 base-36 digits of ms), so key
 * order is time order: "newest first" is a reverse listing, and a time range
 * is a key range on the run id (which is how retention deletes a day of runs
 * with a few range deletes instead of one delete per row).
 *
 * A finished, succeeded run is two entries: its record and its flow index
 * entry. That is what makes a store of a million runs cheap to write and to
 * prune. The status indexes hold only the runs that are not `succeeded`
 * (running, failed, cancelled, timed out): the ones worth finding among many,
 * and the ones retention must keep. Listing by flow, by a status other than
 * `succeeded`, or both, is a prefix of one index and reads at most
 * `limit + 1` entries per page. Listing `succeeded` runs filters the
 * time-ordered list of all runs (or of the flow's) instead; as most runs
 * succeed, that too reads little more than it returns, except in a store
 * where succeeded runs are rare.
 *
 * Index entries carry a small {@linkcode RunSummary} (ids, status, times,
 * error) rather than nothing or the whole record: `listRunSummaries()` (what
 * `runs ls` needs) reads only the index, and `listRuns()` then reads the
 * page's full records with one `getMany`.
 *
 * While a run runs, its events are stored one chunk per `appendEvents()` call
 * (`chunk` is a zero-padded counter, `first` the index of the chunk's first
 * event): the executor batches up to 200 events per call, so a crash loses
 * at most the last batch. `finishRun()` then moves the events of a run with
 * at most 1,000 events into its record (property `"@events"`, hidden from
 * readers) and deletes the chunks, in the same commit as the final status;
 * longer runs keep their chunks.
 *
 * A chunk is stored compact (format 2): node ids and `reads`/`writes`
 * lists once each in tables of the chunk, and its events as one flat array of
 * type codes, time differences and indexes (a 10k-node flow's events take ~39
 * bytes a node instead of ~330). Readers get the very events written: an
 * event the compact rows cannot give back exactly (a field of the caller's
 * own, an unknown type) is kept as it is. Chunks of the first form
 * (`{ first, events }`) are read as before; inline events keep the first form.
 * Flowstate before format 2 cannot read a compact chunk and fails on it
 * (`events is not iterable`) rather than show a run without events.
 *
 * A finished run's node outcomes are stored compact too (`nodes: null` and a
 * property `"@nodes"`: the node ids once, a status character a node, the
 * attempts, outputs and errors as columns; see `_node_outcomes.ts`), unless
 * the records were opened with `nodesFormat: 1` or an outcome does not fit
 * that form exactly. Readers get `nodes` back as written. A running or
 * queued run's record, and a requeued run's (whose outcomes keep the ended
 * attempt's statuses, attempts and errors but not its outputs), are in the
 * first form. Flowstate 0.5 reads a compact run as malformed (see the CHANGELOG).
 *
 * Stores written before this layout (0.1, which indexed `succeeded` runs too
 * and never inlined events) are read as they are: deleting a run removes the
 * status entries either layout may have written.
 *
 * ## Cancelling a run of another process
 *
 * `requestCancel()` writes `P, "cancel", runId` beside a `running` run. The
 * process running it (its `RunRecorder`) reads that key every second while
 * the run runs and, when it appears, aborts the run, which then ends
 * `cancelled` and is recorded as usual. The key is deleted in the same
 * commit as the run's end (`finishRun`, including a run found abandoned)
 * and with the run (`deleteRuns`), so it never outlives its run.
 *
 * ## Signals
 *
 * `sendSignal()` writes `P, "signals", runId, name, seq` beside a `queued` or
 * `running` run (checking its record in the same commit); the run's `wait`
 * node for that name takes the oldest one (`takeSignal()`, deleting it), now
 * or when it comes to wait, looking every second while it waits. In the same
 * commit the signal is recorded as that node's (`"@received"`): a later
 * attempt of the node in the same run gets it again instead of waiting. The
 * run's end and its deletion clear its signals, taken or not (see `_signals.ts`).
 *
 * ## The queue
 *
 * An enqueued run is a run record with status `queued` and a `queue` field
 * ({@linkcode QueueInfo}: `runAt`, `priority`, `key`, attempts). `runAt` is
 * 15 zero-padded digits of ms and `priority` is `1000000 - priority` in 7
 * digits, so that key order is the order runs are taken in. A due run's
 * entry is under `ready`, ordered by priority first, then time, then id:
 * the next run to take is the first key of that prefix, one `list` with
 * `limit`, however many runs wait. A run not due yet waits under `delayed`,
 * ordered by time, and is moved to `ready` (one compare-and-set) by the
 * first worker that sees it due: a range read ending at now. Priorities
 * thus order due runs, and never let a later run start before its time.
 *
 * A claim is one commit that checks the ready entry and the run record (and
 * a limited flow's `active` and `rate` entries) at the versions read, and moves the run
 * to `running` with `queue.claim` (worker, time, lease). A due run whose
 * `rate` window is full is moved back to `delayed`, due when the window has
 * room (`queue.waiting: "rate"`), so it holds up no run behind it. The lease is the
 * run's heartbeat: a claim whose `heartbeatAt` is older than its `leaseMs` is
 * taken back by any worker (`reclaimLost`), the attempt recorded `lost`. An
 * attempt's end is written only if the claim is still the worker's.
 *
 * ## Versions
 *
 * A version's hash is the SHA-256 of the definition's canonical JSON (object
 * keys sorted, `undefined` properties dropped), so key order and formatting
 * never make a new version. The `source` text (YAML) is kept as first saved
 * and is not hashed. Saving content that already exists never creates a
 * version: if it is not the head, the head moves back to it, and the next
 * new content gets it as parent. So `parent` is always "the head when this
 * version was created", and `listVersions()` returns creation order, newest
 * first.
 *
 * The retention job (`prune()`) deletes the versions created more than its
 * `maxAge` ago that are not their flow's head and that no run left refers to,
 * folding their metrics into the flow's `"*pruned"` metrics (so the
 * per-version metrics and `"*pruned"` add up to `"*"`, which never changes).
 * A run's start and enqueue check their version's entry in their commit, so
 * that no run ever refers to a deleted version: see `_prune_versions.ts` for
 * the protocol. A deleted version saved again is created anew, with the next
 * `seq` and the head as its parent.
 *
 * ## Concurrency
 *
 * Every read-modify-write (versions, finishing a run, metrics, deletion,
 * event chunks) is one atomic commit guarded by version checks, retried with
 * a small jittered exponential backoff, and abandoned with a
 * {@linkcode ConflictError} after `retry.attempts` tries. Finishing a run
 * writes the record, moves its status indexes and counts it in the
 * per-version and the `"*"` metrics in one commit. Once a process has seen
 * such a commit conflict on the metrics (runs of one flow ending at once),
 * its counts go to a *shard* of those metrics that only it writes to at that
 * moment (an id per store object, a slot per run ending at once through it),
 * so several workers finishing runs of one flow never retry against each
 * other on metrics; `getMetrics()` and `listMetrics()` merge the entry with
 * its shards (exact totals, re-read if a compaction moved shards meanwhile),
 * and `compactMetrics()` (run by queue workers as they start and stop) folds
 * the shards into the entry.
 *
 * @module
 */
import { assertKey } from "../store/keys.ts";
import type { Clock, JsonValue, Key, Store } from "../store/types.ts";
import { systemClock } from "../clock.ts";
import {
  type RecordsContext,
  RETRY,
  type StoredRun,
  withoutEvents,
  withRetry,
} from "./_context.ts";
import { listRuns, listRunSummaries } from "./_listing.ts";
import {
  appendEvents,
  deleteRuns,
  EventTails,
  finishRun,
  getEvents,
  getEventsFrom,
  getEventsWithOutputs,
  getRun,
  heartbeat,
  maskKeptOutputs,
  startRun,
} from "./_runs.ts";
import { abandonedMessage, abandonedRun } from "./heartbeat.ts";
import { outcomesOfEvents } from "./_node_outcomes.ts";
import { sweepDedupeKeys } from "./_dedupe.ts";
// The worker registry's code is imported on first use, like the queue's: a plain run has no worker.
import type { WorkerInfo } from "./workers.ts";
let workersImport: Promise<typeof import("./workers.ts")> | undefined;
const workersModule = () => workersImport ??= import("./workers.ts");
import { getHead, getVersion, listFlows, listVersions, saveVersion } from "./_versions.ts";
import { checkFlowId } from "./_checks.ts";
import { type RecordsArchive, withArchivedFlows, withArchivedVersions } from "./_archived.ts";
import type { ClaimOptions, EnqueueInit, QueueCounts } from "./_queue.ts";
import type { FlowDefinition } from "../flow/types.ts";
import type { FlowSummary, FlowVersion } from "./flow_version.ts";
import { RecordsLayout } from "./layout.ts";
import type { FlowMetrics } from "./metrics.ts";
import { compactMetrics, listMetrics, readMetrics } from "./_metric_shards.ts";
import type { PruneOptions, PruneResult } from "./prune.ts";

// The queue's and pruning's code is imported on first use: a plain run uses neither. The
// module's promise is kept: an `import()` per call costs a resolution each (a worker makes
// several calls per run).
let queueImport: Promise<typeof import("./_queue.ts")> | undefined;
const queueModule = () => queueImport ??= import("./_queue.ts");
import { assertRunId } from "./run_id.ts";
// Signals' code (sending, taking, what a `wait` node expects) is imported on first use, like the
// queue's: a run without a `wait` node sends and takes none.
import type { SignalOutcome, StoredSignal } from "./_signals.ts";
let signalsImport: Promise<typeof import("./_signals.ts")> | undefined;
const signalsModule = () => signalsImport ??= import("./_signals.ts");
import type {
  KeptOutputsMasker,
  ListRunsOptions,
  OnFailureMarker,
  QueueInfo,
  ResumeMarker,
  RunEvent,
  RunPage,
  RunRecord,
  RunSummary,
} from "./types.ts";

export type { ClaimOptions, EnqueueInit, QueueCounts } from "./_queue.ts";

/** The archive each runtime's records read (see {@linkcode recordsWithArchive}). */
const archives = new WeakMap<Records, RecordsArchive>();

/**
 * Internal (the runtime's `records()`): make `records`' listings of flows and
 * versions read the archive too, through `archive.reader`. Returns `records`.
 */
export function recordsWithArchive(records: Records, archive: RecordsArchive): Records {
  archives.set(records, archive);
  return records;
}

export type { DurationHistogram, FlowMetrics } from "./metrics.ts";

export type { OnFailureMarker, ResumeMarker } from "./types.ts";
export type { SignalExpectation, SignalOutcome, StoredSignal } from "./_signals.ts";

/** What is told of runs these records end for a process found gone (see {@linkcode tellEndsFound}). */
const endsFound = new WeakMap<Records, (record: RunRecord) => Promise<void>>();

/**
 * Have `records` tell `tell` (and wait for it) of every run it records ended
 * on behalf of a process that is gone: `abandonRun` (and `abandonSubRuns`),
 * and `reclaimLost`'s runs lost too often or cancelled meanwhile. Internal:
 * the runtime's `runs.onFailure` hears of those ends here. `tell` must not throw.
 */
export function tellEndsFound(
  records: Records,
  tell: (record: RunRecord) => Promise<void>,
): Records {
  endsFound.set(records, tell);
  return records;
}

/**
 * How {@linkcode Records} is set up.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, Records, type RecordsOptions } from "@flowstate/core/records";
 *
 * await using store = await openStore({ plugin: "memory" });
 * const options: RecordsOptions = { prefix: ["app", "records"], retry: { attempts: 10 } };
 * const records = new Records(store, options);
 * await records.enqueueRun({ flowId: "f", flowVersion: "v", inputs: {}, flowPath: "/f.flow.yaml" });
 * assert.ok(await store.count(["app", "records"]) > 0); // everything under the prefix
 * assert.equal(await store.count(["flowstate"]), 0);
 * ```
 */
export interface RecordsOptions {
  /** Time source for run ids, `createdAt` and `updatedAt` (default: the system clock). */
  clock?: Clock;
  /** Key prefix of every record (default `["flowstate"]`). */
  prefix?: Key;
  /** Compare-and-set retries on conflict. */
  retry?: {
    /** Tries before giving up with a `ConflictError` (default 100). */
    attempts?: number;
    /** Upper bound of one jittered wait, in ms (default 50). */
    maxDelayMs?: number;
  };
  /**
   * The form run events are written in (default 2). 2 is the compact form of
   * this version; 1 is the form Flowstate 0.4 wrote, for a rolling upgrade or
   * a rollback: processes of 0.4 cannot read compact event chunks, so while
   * any of them shares the records store, write 1 everywhere. Both forms are
   * always read.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { newRunId, openStore, Records } from "@flowstate/core/records";
   *
   * await using store = await openStore({ plugin: "memory" });
   * const records = new Records(store, { eventFormat: 1 });
   * const run = {
   *   id: newRunId(1),
   *   flowId: "f",
   *   flowVersion: "v1",
   *   status: "running" as const,
   *   inputs: {},
   *   outputs: null,
   *   error: null,
   *   startedAt: 1,
   *   endedAt: null,
   *   durationMs: null,
   *   nodes: {},
   * };
   * await records.startRun(run);
   * await records.appendEvents(run.id, [{ at: 1, type: "run.start" }]);
   * const [chunk] = await Array.fromAsync(store.list({ prefix: ["flowstate", "events", run.id] }));
   * assert.deepEqual(chunk.value, { first: 0, events: [{ at: 1, type: "run.start" }] });
   * ```
   */
  eventFormat?: 1 | 2;
  /**
   * The form a finished run record's node outcomes are written in (default
   * 2, or 1 with `eventFormat: 1`). 2 is the compact form of this version
   * (the ids once, the statuses and attempts as columns: a 10,000-node run's
   * outcomes take 4× fewer bytes); 1 is the form Flowstate 0.5 and before wrote, for
   * a rolling upgrade: processes of 0.5 list a compact record among the
   * malformed runs (their archive job skips it) and read it with `nodes: null`,
   * so while any of them shares the records store, write 1 everywhere. Records
   * already written compact stay so: going back to 0.5 afterwards leaves them
   * unreadable there. Both forms are always read, and read the same.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { newRunId, openStore, Records } from "@flowstate/core/records";
   *
   * await using store = await openStore({ plugin: "memory" });
   * const nodes = { a: { status: "succeeded" as const, attempts: 1, output: 42 } };
   * for (const nodesFormat of [1, 2] as const) {
   *   const records = new Records(store, { nodesFormat });
   *   const run = {
   *     id: newRunId(nodesFormat),
   *     flowId: "f",
   *     flowVersion: "v1",
   *     status: "running" as const,
   *     inputs: {},
   *     outputs: null,
   *     error: null,
   *     startedAt: 1,
   *     endedAt: null,
   *     durationMs: null,
   *     nodes: {},
   *   };
   *   await records.startRun(run);
   *   await records.finishRun({ ...run, status: "succeeded", endedAt: 2, nodes });
   *   const stored = await store.get<{ nodes: unknown }>(["flowstate", "runs", run.id]);
   *   assert.deepEqual(stored?.value.nodes, nodesFormat === 1 ? nodes : null);
   *   assert.deepEqual((await records.getRun(run.id))?.nodes, nodes); // read the same
   * }
   * ```
   */
  nodesFormat?: 1 | 2;
}

/**
 * Flow versions, run records, events and metrics in one {@linkcode Store}.
 * See the module documentation for the key layout. The work is done by the
 * private modules beside this one: `_versions.ts` (versions and heads),
 * `_runs.ts` (starting, appending to, finishing, reading and deleting runs),
 * `_listing.ts` (pages of runs) and `prune.ts`.
 *
 * @example
 * ```ts
 * import { openStore } from "@flowstate/core";
 * import { Records } from "@flowstate/core/records";
 * import assert from "node:assert/strict";
 * await using store = await openStore({ plugin: "memory" });
 * const records = new Records(store);
 * const flow = { id: "hello", nodes: [{ id: "say", type: "log" }] };
 * const { hash, created } = await records.saveVersion(flow);
 * assert.equal(created, true);
 * const head = await records.getHead("hello");
 * assert.equal(head?.hash, hash);
 * assert.equal(head?.seq, 1);
 * assert.equal((await records.saveVersion(flow)).created, false); // same content, same version
 * ```
 */
export class Records {
  #ctx: RecordsContext;
  /** Next chunk number and event index per run, so appends need not list first. */
  #eventTails = new EventTails();

  /** Keep records in `store`, under `options.prefix` (default `["flowstate"]`). */
  constructor(store: Store, options: RecordsOptions = {}) {
    if (typeof store?.atomic !== "function" || typeof store.list !== "function") {
      throw new TypeError("Cannot create Records: store must be a Store (from openStore())");
    }
    const prefix = options.prefix ?? ["flowstate"];
    assertKey(prefix, "Cannot create Records: prefix", true);
    const attempts = options.retry?.attempts ?? 100;
    if (!Number.isInteger(attempts) || attempts < 1) {
      throw new RangeError(
        `Cannot create Records: retry.attempts must be a positive integer (got ${attempts})`,
      );
    }
    const maxDelayMs = options.retry?.maxDelayMs ?? 50;
    if (typeof maxDelayMs !== "number" || !(maxDelayMs >= 0)) {
      throw new RangeError(
        `Cannot create Records: retry.maxDelayMs must be a number >= 0 (got ${maxDelayMs})`,
      );
    }
    const eventFormat = options.eventFormat ?? 2;
    if (eventFormat !== 1 && eventFormat !== 2) {
      throw new RangeError(
        `Cannot create Records: eventFormat must be 1 or 2 (got ${JSON.stringify(eventFormat)})`,
      );
    }
    const nodesFormat = options.nodesFormat ?? (eventFormat === 1 ? 1 : 2);
    if (nodesFormat !== 1 && nodesFormat !== 2) {
      throw new RangeError(
        `Cannot create Records: nodesFormat must be 1 or 2 (got ${JSON.stringify(nodesFormat)})`,
      );
    }
    this.#ctx = {
      store,
      clock: options.clock ?? systemClock,
      layout: new RecordsLayout(prefix),
      retry: { attempts, maxDelayMs },
      eventFormat,
      nodesFormat,
    };
  }

  /**
   * Store a flow's definition once, addressed by its content hash, and make
   * it the flow's head. Returns the hash, the version's parent and whether
   * this call created it. Saving content that exists already creates
   * nothing (`created: false`) and moves the head back to it.
   */
  saveVersion(
    definition: FlowDefinition,
    source?: string,
  ): Promise<{ hash: string; parent: string | null; created: boolean }> {
    return saveVersion(this.#ctx, definition, source);
  }

  /** One version of a flow, or `null`. */
  getVersion(flowId: string, hash: string): Promise<FlowVersion | null> {
    return getVersion(this.#ctx, flowId, hash);
  }

  /** The flow's current version, or `null` if it has none. */
  getHead(flowId: string): Promise<FlowVersion | null> {
    return getHead(this.#ctx, flowId);
  }

  /**
   * Every version of a flow, newest created first. The records of a runtime
   * (`rt.records()`) list too the versions the archive keeps (beside the runs
   * the `archive` job moved to `<home>/archive/`) that the records store no
   * longer holds (the retention job deleted them), marked `archived: true`
   * with their `archive` file.
   */
  async listVersions(
    flowId: string,
  ): Promise<(FlowVersion & { archived?: true; archive?: string })[]> {
    const recorded = await listVersions(this.#ctx, flowId);
    const archive = archives.get(this);
    return archive === undefined ? recorded : await withArchivedVersions(flowId, recorded, archive);
  }

  /**
   * Every flow with a saved version, in id order, with its newest run. The
   * records of a runtime (`rt.records()`) read the archive too (`<home>/archive/`,
   * from its indexes): a flow's last run is its archived one when that is
   * newer (`lastRunArchive`), and a flow known only from the archive is listed
   * (`archived: true`). A damaged archive file fails no listing: its runs are
   * left out, with a warning to the runtime's `onWarning`.
   */
  async listFlows(): Promise<FlowSummary[]> {
    const recorded = await listFlows(this.#ctx);
    const archive = archives.get(this);
    return archive === undefined ? recorded : await withArchivedFlows(recorded, archive);
  }

  /**
   * Record a run that started (its status must be `running`) and index it.
   * Throws a `ConflictError` if a run with this id exists.
   */
  startRun(run: RunRecord): Promise<void> {
    return startRun(this.#ctx, this.#eventTails, run);
  }

  /**
   * Append events to a run, in one atomic commit per call. Calls for one run
   * should not overlap if their relative order matters. The run's existence
   * is not checked (events of a run that was never started are removed by
   * `deleteRun`). `kept` holds the outputs of nodes whose `node.end` is
   * among `events` (`kept.outputs[i]` is node `kept.nodes[i]`'s; `kept.masked`
   * lists those recorded masked), stored beside them: a run whose process
   * dies before it records its end keeps them (`abandonRun` records them in
   * its nodes' outcomes, and a resume reuses them). `getEvents` does not
   * return them. A chunk with them that is too large (or too deep) for the
   * store is stored without them.
   */
  appendEvents(
    runId: string,
    events: RunEvent[],
    kept?: { nodes: string[]; outputs: JsonValue[]; masked?: string[] },
  ): Promise<void> {
    return appendEvents(this.#ctx, this.#eventTails, runId, events, kept);
  }

  /**
   * Mask, where they are stored, the outputs kept beside run `runId`'s
   * events (`appendEvents`) that hold a secret `masker` knows, and flag them
   * masked (a resume runs their nodes again, as for a run's end): for secrets
   * a run made known after those outputs were kept (a later node's `mask:`,
   * `ctx.mask`), so that a run whose process dies, or a long run's kept
   * chunks, hold them no more in the clear than its end does. Returns how
   * many it masked. `RunRecorder.secretsAdded` calls it.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { newRunId, openStore, Records } from "@flowstate/core/records";
   *
   * await using store = await openStore({ plugin: "memory" });
   * const records = new Records(store);
   * const at = Date.now();
   * const run = {
   *   id: newRunId(at), flowId: "f", flowVersion: "job", status: "running" as const,
   *   inputs: {}, outputs: null, error: null, startedAt: at, endedAt: null,
   *   durationMs: null, nodes: {}, heartbeatAt: at,
   * };
   * await records.startRun(run);
   * const end = { at, type: "node.end" as const, status: "succeeded" as const, attempt: 1, durationMs: 0 };
   * await records.appendEvents(run.id, [{ ...end, node: "login" }], {
   *   nodes: ["login"],
   *   outputs: [{ token: "tok-12345678" }],
   * });
   * const masker = {
   *   contains: (value: unknown) => JSON.stringify(value).includes("tok-12345678"),
   *   mask: <T>(value: T): T => JSON.parse(JSON.stringify(value).replaceAll("tok-12345678", "***")),
   * };
   * assert.equal(await records.maskKeptOutputs(run.id, masker), 1);
   * const marked = await records.abandonRun(run.id, { afterMs: 1, now: at + 60_000 });
   * assert.deepEqual(marked?.nodes.login, {
   *   status: "succeeded", attempts: 1, output: { token: "***" }, masked: true,
   * });
   * ```
   */
  maskKeptOutputs(runId: string, masker: KeptOutputsMasker): Promise<number> {
    return maskKeptOutputs(this.#ctx, runId, masker);
  }

  /**
   * Record a run's final status (`endedAt` defaults to now, `durationMs` to
   * `endedAt - startedAt`), move its status indexes, append its last
   * `events`, and count it in the flow's metrics for its version and for
   * `"*"`: all in one atomic commit, retried on conflict. A run with at most
   * 1,000 events in all gets them inline in its record (its event chunks are
   * deleted in the same commit). Finishing a run again with the same status
   * and end time does nothing; with another, it throws a `ConflictError`
   * (the run was already finished, for example cancelled by another process).
   */
  async finishRun(run: RunRecord, events: RunEvent[] = []): Promise<void> {
    await finishRun(this.#ctx, this.#eventTails, run, events);
  }

  /**
   * Record that a `running` run is still alive: write `heartbeatAt: at` into
   * its record. Resolves `false` (nothing written) when the run is gone, has
   * finished, or changed meanwhile, and for a run claimed from the queue,
   * whose heartbeat only {@linkcode Records.heartbeatClaim} writes (it checks
   * whose claim it is). `RunRecorder` calls this every few seconds; see
   * `heartbeat.ts`.
   */
  heartbeat(runId: string, at: number): Promise<boolean> {
    return heartbeat(this.#ctx, runId, at);
  }

  /**
   * Record a run as `failed` ("abandoned: …") if, at `now` (default: the
   * clock's), it is still `running` with a heartbeat older than `afterMs`
   * (see `abandonedRun()` in `heartbeat.ts`: at least four missed beats; a
   * run without heartbeat by its age, at least a day), or, whatever its
   * heartbeat, when its process is verifiably gone from this machine (never
   * while it is verifiably alive: see `judgeRun()`). Checked again in the
   * commit, so a run that beats or finishes meanwhile is left alone.
   * Resolves the record as written, or `null` when the run was not abandoned.
   *
   * @example
   * ```ts
   * import { openStore } from "@flowstate/core";
   * import { Records, RunRecorder } from "@flowstate/core/records";
   * import assert from "node:assert/strict";
   * await using store = await openStore({ plugin: "memory" });
   * let now = Date.UTC(2026, 0, 1);
   * const clock = { now: () => now };
   * const records = new Records(store, { clock });
   * const run = await RunRecorder.start(records, clock, { flowId: "f", flowVersion: "job", inputs: {} });
   * await run.close(); // the process "dies": no more heartbeats
   * assert.equal(await records.abandonRun(run.id, { afterMs: 60_000 }), null, "still fresh");
   * now += 61_000;
   * const marked = await records.abandonRun(run.id, { afterMs: 60_000 });
   * assert.equal(marked?.status, "failed");
   * assert.match(marked?.error?.message ?? "", /^abandoned: no heartbeat/);
   * ```
   */
  async abandonRun(
    runId: string,
    options: { afterMs: number; now?: number },
  ): Promise<RunRecord | null> {
    const now = options.now ?? this.#ctx.clock.now();
    const run = await getRun(this.#ctx, runId);
    const why = run === null ? null : abandonedRun(run, now, options.afterMs);
    if (run === null || why === null) return null;
    // It ended when its process was last heard from, not when someone noticed: its last heartbeat
    // or its last recorded event, whichever is later (a process killed before its first beat
    // still recorded its nodes' events). A record of an older version, without heartbeats: now.
    const events = await getEventsWithOutputs(this.#ctx, runId);
    const lastEventAt = why.by === "age"
      ? 0
      : events.reduce((latest, e) => Math.max(latest, e.at), 0);
    const endedAt = why.by !== "age"
      ? Math.min(now, Math.max(run.startedAt, why.lastSeenAt, lastEventAt))
      : now;
    const record: RunRecord = {
      ...run,
      // Its record holds its nodes' outcomes only from its end: what their events said is kept
      // (a node that succeeded did, its side effects happened), with the outputs kept beside
      // them (a resume reuses those; a node whose output was not kept runs again, and it says
      // why).
      nodes: { ...run.nodes, ...outcomesOfEvents(events) },
      status: "failed",
      endedAt,
      durationMs: Math.max(0, endedAt - run.startedAt),
      error: { message: abandonedMessage(why) },
    };
    const written = await finishRun(
      this.#ctx,
      this.#eventTails,
      record,
      [],
      (stored) => abandonedRun(stored, now, options.afterMs) !== null,
    );
    if (!written) return null;
    await endsFound.get(this)?.(record);
    return record;
  }

  /**
   * Record abandoned (as {@linkcode Records.abandonRun} does, by the same
   * check) the running sub-runs of the given parents, at any depth, whose
   * heartbeat is older than `afterMs`: what a run's lost attempt (its
   * process killed or gone) left running. `parents` maps each parent's id to
   * the latest start of a direct sub-run to look at (a later attempt of the
   * same run starts sub-runs of its own, left alone). One read of the
   * running runs' index. Resolves the runs recorded abandoned, and the
   * parents that still have such sub-runs running with a fresh heartbeat
   * (look again later).
   *
   * @example
   * ```ts
   * import { openStore } from "@flowstate/core";
   * import { Records, RunRecorder } from "@flowstate/core/records";
   * import assert from "node:assert/strict";
   * await using store = await openStore({ plugin: "memory" });
   * let now = Date.UTC(2026, 0, 1);
   * const clock = { now: () => now };
   * const records = new Records(store, { clock });
   * const start = { flowVersion: "job", inputs: {} };
   * const parent = await RunRecorder.start(records, clock, { ...start, flowId: "p" });
   * const child = await RunRecorder.start(records, clock, { ...start, flowId: "c", parentRunId: parent.id });
   * await child.close(); // its process "dies": no more heartbeats
   * const parents = new Map([[parent.id, now]]);
   * assert.deepEqual(await records.abandonSubRuns(parents, { afterMs: 60_000 }), {
   *   abandoned: [],
   *   waiting: [parent.id],
   * });
   * now += 61_000;
   * const { abandoned } = await records.abandonSubRuns(parents, { afterMs: 60_000 });
   * assert.deepEqual(abandoned.map((r) => r.id), [child.id]);
   * await parent.finish({ status: "succeeded", outputs: {}, nodes: {}, error: null });
   * ```
   */
  async abandonSubRuns(
    parents: ReadonlyMap<string, number>,
    options: { afterMs: number; now?: number },
  ): Promise<{ abandoned: RunRecord[]; waiting: string[] }> {
    const now = options.now ?? this.#ctx.clock.now();
    const children = new Map<string, { id: string; startedAt: number }[]>();
    let cursor: string | undefined;
    do {
      const page = await this.listRunSummaries({ status: "running", limit: 1000, cursor });
      for (const run of page.runs) {
        if (run.parentRunId === undefined) continue;
        let list = children.get(run.parentRunId);
        if (list === undefined) children.set(run.parentRunId, list = []);
        list.push({ id: run.id, startedAt: run.startedAt });
      }
      cursor = page.cursor;
    } while (cursor !== undefined);
    const abandoned: RunRecord[] = [];
    const waiting: string[] = [];
    for (const [parent, startedBefore] of parents) {
      let alive = false;
      const found = (children.get(parent) ?? []).filter((c) => c.startedAt <= startedBefore);
      // Deepest first: a sub-run is recorded ended before its parent.
      const tree: string[] = [];
      for (let i = 0; i < found.length; i++) {
        tree.push(found[i].id);
        found.push(...(children.get(found[i].id) ?? []));
      }
      for (const id of tree.reverse()) {
        const run = await this.abandonRun(id, { afterMs: options.afterMs, now });
        if (run !== null) abandoned.push(run);
        else if ((await this.getRun(id))?.status === "running") alive = true;
      }
      if (alive) waiting.push(parent);
    }
    return { abandoned, waiting };
  }

  /**
   * Ask the process running `runId` to cancel it: write the cancel marker
   * (see the module documentation) if the run is `running`. Resolves the
   * run's record as read (`status: "running"` when the request was
   * written), or `null` when there is no such run. A run that already ended
   * is returned as it is, and nothing is written.
   *
   * @example
   * ```ts
   * import { openStore } from "@flowstate/core";
   * import { Records, RunRecorder } from "@flowstate/core/records";
   * import assert from "node:assert/strict";
   * await using store = await openStore({ plugin: "memory" });
   * const records = new Records(store);
   * const clock = { now: () => Date.now() };
   * const run = await RunRecorder.start(records, clock, { flowId: "f", flowVersion: "job", inputs: {} });
   * assert.equal((await records.requestCancel(run.id))?.status, "running");
   * assert.equal(await records.cancelRequested(run.id), true);
   * await run.finish({ status: "cancelled", outputs: null, nodes: {}, error: null });
   * assert.equal(await records.cancelRequested(run.id), false); // ended with the run
   * ```
   */
  async requestCancel(runId: string): Promise<RunRecord | null> {
    assertRunId(runId, `Cannot cancel run ${JSON.stringify(runId)}`);
    const { store, layout, clock } = this.#ctx;
    for (;;) {
      const entry = await store.get<StoredRun>(layout.run(runId));
      if (entry === null || entry.value.status !== "running") return getRun(this.#ctx, runId);
      // Written only if the run is still running as read: never a marker beside an ended run.
      const result = await store.atomic()
        .check(layout.run(runId), entry.version)
        .set(layout.cancel(runId), { requestedAt: clock.now() })
        .commit();
      if (result.ok) return withoutEvents(entry.value);
    }
  }

  /**
   * Record a run as `queued` (see "The queue" in the module documentation):
   * it starts when a worker claims it, not before `init.runAt`. With a
   * `key` held by a run that is still queued or running, nothing is written
   * and that run is returned (`existing: true`).
   *
   * @example
   * ```ts
   * import { openStore } from "@flowstate/core";
   * import { Records } from "@flowstate/core/records";
   * import assert from "node:assert/strict";
   * await using store = await openStore({ plugin: "memory" });
   * const records = new Records(store);
   * const init = { flowId: "f", flowVersion: "v1", inputs: {}, flowPath: "/f.flow.yaml", key: "k" };
   * const first = await records.enqueueRun(init);
   * assert.equal(first.existing, false);
   * assert.equal((await records.getRun(first.runId))?.status, "queued");
   * const again = await records.enqueueRun(init);
   * assert.deepEqual([again.runId, again.existing], [first.runId, true]);
   * const claimed = await records.claimRun({ worker: "w1", leaseMs: 30_000 });
   * assert.equal(claimed?.id, first.runId);
   * assert.equal(claimed?.status, "running");
   * assert.equal(await records.claimRun({ worker: "w2", leaseMs: 30_000 }), null);
   * ```
   */
  async enqueueRun(
    init: EnqueueInit,
  ): Promise<{ runId: string; existing: boolean; run: RunRecord }> {
    return await (await queueModule()).enqueueRun(this.#ctx, init);
  }

  /**
   * Claim the next due queued run (highest priority, then earliest, then
   * oldest) for `options.worker`: it is recorded `running` with the claim in
   * `queue.claim`. Resolves `null` when no run is due for this worker.
   */
  async claimRun(options: ClaimOptions): Promise<RunRecord | null> {
    return await (await queueModule()).claimRun(this.#ctx, options);
  }

  /**
   * Claim up to `max` due queued runs at once, in the order `claimRun` takes
   * them (a worker with that many free slots), on a store that claims
   * natively (PostgreSQL: in one transaction); on any other store at most one
   * (a worker starts it before it claims the next). Resolves fewer, or none,
   * when fewer are due for this worker.
   *
   * @example
   * ```ts
   * import { openStore } from "@flowstate/core";
   * import { Records } from "@flowstate/core/records";
   * import assert from "node:assert/strict";
   * await using store = await openStore({ plugin: "memory" });
   * const records = new Records(store);
   * const init = { flowId: "f", flowVersion: "v1", inputs: {}, flowPath: "/f.flow.yaml" };
   * const a = await records.enqueueRun(init);
   * const b = await records.enqueueRun(init);
   * // The memory store claims by compare-and-set: one run per call.
   * const first = await records.claimRuns({ worker: "w1", leaseMs: 30_000 }, 4);
   * const second = await records.claimRuns({ worker: "w1", leaseMs: 30_000 }, 4);
   * assert.deepEqual([...first, ...second].map((r) => r.id), [a.runId, b.runId]);
   * assert.deepEqual(await records.claimRuns({ worker: "w2", leaseMs: 30_000 }, 4), []);
   * ```
   */
  async claimRuns(options: ClaimOptions, max: number): Promise<RunRecord[]> {
    return await (await queueModule()).claimRuns(this.#ctx, options, max);
  }

  /**
   * Record how an attempt of a claimed run ended (`record` is the claimed
   * run with its final status, outputs and nodes): a failure with attempts
   * left requeues it after its backoff; anything else is its end. Resolves
   * `false`, writing nothing, when the claim is no longer the worker's (its
   * lease lapsed and the run was taken back). With `release`, the attempt is
   * given up without counting (a worker stopping): the run is queued again,
   * due now (or `releaseAfterMs` from now, without waking the workers: a
   * process exiting at once, that still runs it until it exits), and the
   * attempt recorded `lost`, `released: <releaseReason>` (default: the
   * worker stopped).
   */
  async finishClaimedRun(
    record: RunRecord,
    events: RunEvent[] = [],
    options: { release?: boolean; releaseAfterMs?: number; releaseReason?: string } = {},
  ): Promise<boolean> {
    return await (await queueModule()).finishClaimedRun(
      this.#ctx,
      this.#eventTails,
      record,
      events,
      options,
    );
  }

  /**
   * Extend the lease of a claim (`claimed` as `claimRun` returned it): its
   * `heartbeatAt` is written if the run is still this worker's, this
   * attempt's. Resolves whether it was: `false` means the claim is gone (the
   * run ended, or its lease lapsed and the queue took it back), and the
   * attempt should stop.
   */
  async heartbeatClaim(claimed: RunRecord, at: number = this.#ctx.clock.now()): Promise<boolean> {
    return await (await queueModule()).heartbeatClaim(this.#ctx, claimed, at);
  }

  /**
   * Requeue every claimed run whose lease lapsed (no heartbeat within its
   * claim's `leaseMs`), recording the attempt as `lost`. Resolves their ids.
   */
  async reclaimLost(): Promise<string[]> {
    const tell = endsFound.get(this);
    const ended: RunRecord[] = [];
    const taken = await (await queueModule()).reclaimLost(this.#ctx, this.#eventTails, ended);
    for (const record of ended) await tell?.(record);
    return taken;
  }

  /**
   * Cancel a `queued` run: it is recorded `cancelled` and never starts.
   * Resolves `null` when the run is not queued (a running run is cancelled
   * with {@linkcode Records.requestCancel}).
   */
  async cancelQueuedRun(runId: string): Promise<RunRecord | null> {
    return await (await queueModule()).cancelQueuedRun(this.#ctx, this.#eventTails, runId);
  }

  /**
   * Put a failed, cancelled or timed-out run back in the queue, due now, for
   * one more attempt on the same id (its earlier attempts and events stay).
   * A run that was not enqueued needs `options.flowPath`, its flow file.
   * Rejects with a `NotFoundError` when there is no such run, and with a
   * `ConflictError` when it is queued, running or succeeded, or when its
   * inputs held a secret's value (`inputsMasked`: they are recorded `***`,
   * which the retry would run with).
   */
  async requeueRun(runId: string, options: { flowPath?: string } = {}): Promise<RunRecord> {
    return await (await queueModule()).requeueRun(this.#ctx, this.#eventTails, runId, options);
  }

  /**
   * Delete the queue's dedupe keys whose run is gone or no longer queued or
   * running: what a run's end left when it was recorded by an older version
   * of Flowstate, which did not delete its key (a run's end deletes it now,
   * in the same commit). A key given to another run meanwhile is kept. With `dryRun`,
   * only count them. Resolves how many were (or would be) deleted. The gc
   * job calls this.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openStore, Records } from "@flowstate/core/records";
   *
   * await using store = await openStore({ plugin: "memory" });
   * const records = new Records(store);
   * // A key an older version left behind: its run is gone.
   * await store.set(["flowstate", "queue", "key", "invoice-42"], { runId: "0mjuw3ms0abcdefghijk" });
   * assert.equal(await records.sweepDedupeKeys({ dryRun: true }), 1);
   * assert.equal(await records.sweepDedupeKeys(), 1);
   * assert.equal(await store.count(["flowstate", "queue", "key"]), 0);
   * ```
   */
  async sweepDedupeKeys(options: { dryRun?: boolean; signal?: AbortSignal } = {}): Promise<number> {
    return await sweepDedupeKeys(this.#ctx, options);
  }

  /**
   * Write a queue worker's entry in the worker registry (`P, "workers", id`): one plain
   * `set` of that key, which never conflicts with claims. Queue workers call it as they
   * start and on every heartbeat. Resolves the entry's version.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openStore, Records } from "@flowstate/core/records";
   *
   * await using store = await openStore({ plugin: "memory" });
   * const records = new Records(store);
   * const version = await records.putWorker({
   *   id: "w1", host: "box", pid: 7, version: "0.6.0", startedAt: 0, heartbeatAt: 0,
   *   heartbeatMs: 5_000, concurrency: 1, flows: null, leaseMs: 30_000, pollMs: 500,
   *   stopping: false, claims: [],
   * });
   * assert.equal(typeof version, "string");
   * assert.equal(await store.count(["flowstate", "workers"]), 1);
   * ```
   */
  putWorker(info: WorkerInfo): Promise<string> {
    return workersModule().then((m) => m.putWorker(this.#ctx, info));
  }

  /**
   * The worker registry's entries, in id order (see {@linkcode WorkerInfo}); judge each
   * with `workerStatus()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openStore, Records } from "@flowstate/core/records";
   *
   * await using store = await openStore({ plugin: "memory" });
   * const records = new Records(store);
   * assert.deepEqual(await records.listWorkers(), []);
   * ```
   */
  async listWorkers(): Promise<WorkerInfo[]> {
    const { workerEntries } = await workersModule();
    return (await workerEntries(this.#ctx)).map((entry) => entry.value);
  }

  /**
   * Delete a worker's registry entry (only if it is still at `ifVersion`, when given):
   * a worker's clean stop. Resolves whether it did.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openStore, Records } from "@flowstate/core/records";
   *
   * await using store = await openStore({ plugin: "memory" });
   * const records = new Records(store);
   * const version = await records.putWorker({
   *   id: "w1", host: "box", pid: 7, version: "0.6.0", startedAt: 0, heartbeatAt: 0,
   *   heartbeatMs: 5_000, concurrency: 1, flows: null, leaseMs: 30_000, pollMs: 500,
   *   stopping: false, claims: [],
   * });
   * assert.equal(await records.removeWorker("w1", { ifVersion: "not-its-version" }), false);
   * assert.equal(await records.removeWorker("w1", { ifVersion: version }), true);
   * assert.deepEqual(await records.listWorkers(), []);
   * ```
   */
  removeWorker(id: string, options: { ifVersion?: string } = {}): Promise<boolean> {
    return workersModule().then((m) => m.removeWorker(this.#ctx, id, options.ifVersion));
  }

  /**
   * Delete the registry entries of workers with no heartbeat for `olderThanMs` (never less
   * than their stale threshold, so a live worker's entry is never deleted), each only at the
   * version read. With `dryRun`, only find them. Resolves their ids. The gc job calls this.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openStore, Records } from "@flowstate/core/records";
   *
   * await using store = await openStore({ plugin: "memory" });
   * const records = new Records(store);
   * const worker = {
   *   host: "box", pid: 7, version: "0.6.0", startedAt: 0, heartbeatMs: 5_000,
   *   concurrency: 1, flows: null, leaseMs: 30_000, pollMs: 500, stopping: false, claims: [],
   * };
   * await records.putWorker({ ...worker, id: "killed", heartbeatAt: 0 });
   * await records.putWorker({ ...worker, id: "live", heartbeatAt: 3_600_000 });
   * const now = 3_600_000 + 1_000;
   * assert.deepEqual(await records.sweepWorkers({ olderThanMs: 60_000, now }), ["killed"]);
   * assert.deepEqual((await records.listWorkers()).map((w) => w.id), ["live"]);
   * ```
   */
  sweepWorkers(
    options: { olderThanMs: number; now?: number; dryRun?: boolean },
  ): Promise<string[]> {
    return workersModule().then((m) => m.sweepWorkers(this.#ctx, options));
  }

  /**
   * How many queued runs are due now, due later and claimed by a worker,
   * counted from the queue's indexes (no run is read): what to watch with
   * several workers (`flowstate_queue_runs` in `GET /metrics`).
   *
   * @example
   * ```ts
   * import { openStore } from "@flowstate/core";
   * import { Records } from "@flowstate/core/records";
   * import assert from "node:assert/strict";
   * await using store = await openStore({ plugin: "memory" });
   * const records = new Records(store);
   * const init = { flowId: "f", flowVersion: "v1", inputs: {}, flowPath: "/f.flow.yaml" };
   * await records.enqueueRun(init);
   * await records.enqueueRun(init);
   * await records.enqueueRun({ ...init, runAt: Date.now() + 3_600_000 });
   * await records.claimRuns({ worker: "w1", leaseMs: 30_000 }, 1);
   * assert.deepEqual(await records.queueCounts(), { due: 1, scheduled: 1, claimed: 1 });
   * ```
   */
  async queueCounts(): Promise<QueueCounts> {
    return await (await queueModule()).queueCounts(this.#ctx, this.#ctx.clock.now());
  }

  /** The queue fields of a run, or `null` for a run that was never enqueued (or is missing). */
  async queueInfo(runId: string): Promise<QueueInfo | null> {
    return (await getRun(this.#ctx, runId))?.queue ?? null;
  }

  /**
   * Claim the right to run the `runs.onFailure` flow about `runId`: write
   * `marker` if no marker of that run exists (compare-and-set on absence).
   * Resolves `true` for the one caller that wrote it, `false` for every
   * other, in any process sharing the store.
   *
   * @example
   * ```ts
   * import { openStore, Records } from "@flowstate/core/records";
   * import assert from "node:assert/strict";
   * await using store = await openStore({ plugin: "memory" });
   * const records = new Records(store);
   * const marker = { at: Date.now(), host: "h", pid: 1, flow: "alert" };
   * assert.equal(await records.claimOnFailure("0mjuw3ms0abcdefghijk", marker), true);
   * assert.equal(await records.claimOnFailure("0mjuw3ms0abcdefghijk", marker), false);
   * ```
   */
  async claimOnFailure(runId: string, marker: OnFailureMarker): Promise<boolean> {
    const key = this.#ctx.layout.onFailure(runId);
    return (await this.#ctx.store.set(key, marker as unknown as JsonValue, { ifVersion: null }))
      .ok;
  }

  /**
   * Add the `runs.onFailure` run's id to the marker of `runId` (written by
   * {@linkcode Records.claimOnFailure}); nothing when there is none.
   */
  async markOnFailureRun(runId: string, handlerRunId: string): Promise<void> {
    const key = this.#ctx.layout.onFailure(runId);
    await withRetry(this.#ctx.retry, "Cannot record the onFailure run", async () => {
      const entry = await this.#ctx.store.get<OnFailureMarker>(key);
      if (entry === null) return undefined;
      const next = { ...entry.value, runId: handlerRunId };
      const result = await this.#ctx.store.set(key, next as unknown as JsonValue, {
        ifVersion: entry.version,
      });
      return result.ok ? undefined : RETRY;
    });
  }

  /** The `runs.onFailure` marker of `runId` (see {@linkcode Records.claimOnFailure}), or `null`. */
  async onFailureMarker(runId: string): Promise<OnFailureMarker | null> {
    return (await this.#ctx.store.get<OnFailureMarker>(this.#ctx.layout.onFailure(runId)))
      ?.value ?? null;
  }

  /**
   * Claim run `runId` for one resume: write `marker` if the run has no
   * resume mark (`replace` absent), or if its mark is still the one read
   * with version `replace` (a resume `again`): the store's compare-and-set.
   * The version of the mark written, or `null` when another resume's write
   * landed first.
   *
   * @example
   * ```ts
   * import { openStore } from "@flowstate/core";
   * import { Records } from "@flowstate/core/records";
   * import assert from "node:assert/strict";
   * await using store = await openStore({ plugin: "memory" });
   * const records = new Records(store);
   * const id = "0mjuw3ms0abcdefghijk";
   * assert.notEqual(await records.claimResume(id, { at: Date.now() }), null);
   * assert.equal(await records.claimResume(id, { at: Date.now() }), null);
   * ```
   */
  async claimResume(
    runId: string,
    marker: ResumeMarker,
    replace?: string,
  ): Promise<string | null> {
    const key = this.#ctx.layout.resumed(runId);
    const result = await this.#ctx.store.set(key, marker as unknown as JsonValue, {
      ifVersion: replace ?? null,
    });
    return result.ok ? result.version : null;
  }

  /**
   * Renew the claim of `runId` held with version `version` until `until`
   * (see {@linkcode ResumeMarker.until}): the new version, or `null` when the
   * mark is no longer that one (another resume took it over, or it is gone).
   */
  async renewResume(runId: string, version: string, until: number): Promise<string | null> {
    const key = this.#ctx.layout.resumed(runId);
    const entry = await this.#ctx.store.get<ResumeMarker>(key);
    if (entry === null || entry.version !== version) return null;
    const result = await this.#ctx.store.set(
      key,
      { ...entry.value, until } as unknown as JsonValue,
      { ifVersion: version },
    );
    return result.ok ? result.version : null;
  }

  /**
   * Add the resuming run's id to the resume mark of `runId` claimed with
   * version `version` (see {@linkcode Records.claimResume}).
   */
  async markResumeRun(runId: string, version: string, resumingRunId: string): Promise<void> {
    const key = this.#ctx.layout.resumed(runId);
    await withRetry(this.#ctx.retry, "Cannot record the resuming run", async () => {
      const entry = await this.#ctx.store.get<ResumeMarker>(key);
      if (entry === null || entry.version !== version) return undefined;
      // The run holds it now: whether it is live is the run's status, not a lapse.
      const { until: _until, ...claimed } = entry.value;
      const next = { ...claimed, runId: resumingRunId };
      const result = await this.#ctx.store.set(key, next as unknown as JsonValue, {
        ifVersion: entry.version,
      });
      return result.ok ? undefined : RETRY;
    });
  }

  /**
   * Remove the resume mark of `runId` written with version `version`, when
   * the resume that wrote it started no run (refused once the flow was
   * loaded); a mark written since is kept.
   */
  async releaseResume(runId: string, version: string): Promise<void> {
    await this.#ctx.store.delete(this.#ctx.layout.resumed(runId), { ifVersion: version });
  }

  /** The resume mark of `runId` and its version (see {@linkcode Records.claimResume}), or `null`. */
  async resumeMarker(runId: string): Promise<{ marker: ResumeMarker; version: string } | null> {
    const entry = await this.#ctx.store.get<ResumeMarker>(this.#ctx.layout.resumed(runId));
    return entry === null ? null : { marker: entry.value, version: entry.version };
  }

  /** Whether a cancel request for `runId` is recorded (see {@linkcode Records.requestCancel}). */
  async cancelRequested(runId: string): Promise<boolean> {
    return (await this.#ctx.store.get(this.#ctx.layout.cancel(runId))) !== null;
  }

  /**
   * Send signal `name` with `data` (JSON, at most 64 KiB; `undefined` is
   * `null`) to run `runId`, for its `wait` node: stored beside a `queued` or
   * `running` run (`kind: "stored"`), refused for a run that ended
   * (`"ended"`) or does not exist (`"unknown"`). A bad name or data is a
   * `TypeError` saying what is wrong.
   *
   * @example
   * ```ts
   * import { openStore } from "@flowstate/core";
   * import { Records, RunRecorder } from "@flowstate/core/records";
   * import assert from "node:assert/strict";
   * await using store = await openStore({ plugin: "memory" });
   * const records = new Records(store);
   * const clock = { now: () => Date.now() };
   * const run = await RunRecorder.start(records, clock, { flowId: "f", flowVersion: "job", inputs: {} });
   * assert.equal((await records.sendSignal(run.id, "approve", { ok: true })).kind, "stored");
   * assert.deepEqual((await records.takeSignal(run.id, "approve"))?.data, { ok: true });
   * assert.equal(await records.takeSignal(run.id, "approve"), null); // taken once
   * await run.finish({ status: "succeeded", outputs: null, nodes: {}, error: null });
   * assert.equal((await records.sendSignal(run.id, "approve")).kind, "ended");
   * ```
   */
  sendSignal(runId: string, name: string, data?: unknown): Promise<SignalOutcome> {
    return signalsModule().then((m) => m.sendSignal(this.#ctx, runId, name, data));
  }

  /**
   * Take the oldest signal `name` sent to run `runId` and not taken yet
   * (it is deleted: each signal is taken once), or `null` when there is none.
   * Given a list of runs (what a sub-run's `wait` node takes: its own id, its
   * parent's, up to the root run's), the oldest signal `name` sent to any of
   * them. See {@linkcode Records.sendSignal}.
   *
   * With `options.receiver` (the taking node's place in the root run, the
   * last run of the list: its id, or `flowNode/node` in a sub-run), the
   * signal taken is that node's for the rest of the run, recorded in the
   * commit that takes it: a later call for the same receiver and name
   * resolves that same signal again at once (a retry of an attempt that took
   * it and did not succeed), and takes no other.
   *
   * @example
   * ```ts
   * import { openStore } from "@flowstate/core";
   * import { Records, RunRecorder } from "@flowstate/core/records";
   * import assert from "node:assert/strict";
   * await using store = await openStore({ plugin: "memory" });
   * const records = new Records(store);
   * const clock = { now: () => Date.now() };
   * const run = await RunRecorder.start(records, clock, { flowId: "f", flowVersion: "job", inputs: {} });
   * await records.sendSignal(run.id, "approve", { by: "ada" });
   * await records.sendSignal(run.id, "approve", { by: "bob" });
   * const mine = { receiver: "approve-node" };
   * assert.deepEqual((await records.takeSignal(run.id, "approve", mine))?.data, { by: "ada" });
   * // Its next attempt gets the same signal; the second one stays for another node.
   * assert.deepEqual((await records.takeSignal(run.id, "approve", mine))?.data, { by: "ada" });
   * assert.deepEqual((await records.takeSignal(run.id, "approve"))?.data, { by: "bob" });
   * await run.finish({ status: "succeeded", outputs: null, nodes: {}, error: null });
   * ```
   */
  takeSignal(
    runId: string | readonly string[],
    name: string,
    options: { receiver?: string } = {},
  ): Promise<StoredSignal | null> {
    return signalsModule().then((m) => m.takeSignal(this.#ctx, runId, name, options.receiver));
  }

  /**
   * The `wait` nodes waiting for a signal now in run `runId` and in its
   * running sub-runs (a sub-run's wait also takes the signals sent to its
   * ancestors), as their events recorded so far say: each with the run it is
   * in, the run's own first.
   *
   * @example
   * ```ts
   * import { openStore } from "@flowstate/core";
   * import { Records, RunRecorder } from "@flowstate/core/records";
   * import assert from "node:assert/strict";
   * await using store = await openStore({ plugin: "memory" });
   * const records = new Records(store);
   * const clock = { now: () => Date.now() };
   * const run = await RunRecorder.start(records, clock, { flowId: "f", flowVersion: "job", inputs: {} });
   * assert.deepEqual(await records.waitingNodes(run.id), []);
   * await run.finish({ status: "succeeded", outputs: null, nodes: {}, error: null });
   * ```
   */
  waitingNodes(
    runId: string,
  ): Promise<{ runId: string; node: string; signal: string; message?: string; since: number }[]> {
    return signalsModule().then((m) => m.waitingInTree(this.#ctx, runId));
  }

  /** One run's record, or `null`. */
  getRun(runId: string): Promise<RunRecord | null> {
    return getRun(this.#ctx, runId);
  }

  /** Every event of a run, in the order they were appended. */
  getEvents(runId: string): Promise<RunEvent[]> {
    return getEvents(this.#ctx, runId);
  }

  /**
   * A run's events from index `from` on, and `count`, how many it has in all
   * (an event's index is its place in {@linkcode Records.getEvents}): pass
   * `count` as `from` next time to get only the events appended since. Of a
   * running run, only the event chunks holding the events asked for are read.
   * `from` past the end gives no events (and the `count`).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { newRunId, openStore, Records } from "@flowstate/core/records";
   *
   * await using store = await openStore({ plugin: "memory" });
   * const records = new Records(store);
   * const run = {
   *   id: newRunId(1),
   *   flowId: "f",
   *   flowVersion: "v1",
   *   status: "running" as const,
   *   inputs: {},
   *   outputs: null,
   *   error: null,
   *   startedAt: 1,
   *   endedAt: null,
   *   durationMs: null,
   *   nodes: {},
   * };
   * await records.startRun(run);
   * await records.appendEvents(run.id, [{ at: 1, type: "run.start" }]);
   * const { count } = await records.getEventsFrom(run.id, 0);
   * await records.appendEvents(run.id, [{ at: 2, type: "node.start", node: "a" }]);
   * const later = await records.getEventsFrom(run.id, count);
   * assert.deepEqual(later, { events: [{ at: 2, type: "node.start", node: "a" }], count: 2 });
   * ```
   */
  getEventsFrom(runId: string, from: number): Promise<{ events: RunEvent[]; count: number }> {
    return getEventsFrom(this.#ctx, runId, from);
  }

  /**
   * A page of run summaries, newest first, read from the index alone. Runs
   * can be filtered by flow, status and start time; each filter is a key
   * range, so only the returned runs (plus one) are read — except `status:
   * "succeeded"`, which has no index and filters the list of all runs (or of
   * the flow's): such a page reads at most 20 × `limit` entries (at least
   * 2,000) and may end early, with fewer runs and a `cursor` to go on.
   */
  listRunSummaries(options: ListRunsOptions = {}): Promise<RunPage<RunSummary>> {
    return listRunSummaries(this.#ctx, options);
  }

  /**
   * A page of full run records, newest first (see
   * {@linkcode Records.listRunSummaries} for the filters). Pass the page's
   * `cursor` back to get the next page.
   */
  listRuns(options: ListRunsOptions = {}): Promise<RunPage<RunRecord>> {
    return listRuns(this.#ctx, options);
  }

  /** A flow's metrics for one version, or for all of them (`"*"`, the default); `null` before any run finished. */
  async getMetrics(flowId: string, version = "*"): Promise<FlowMetrics | null> {
    checkFlowId(flowId, "Cannot get metrics");
    if (typeof version !== "string" || version === "") {
      throw new TypeError(`Cannot get metrics of "${flowId}": version must be a hash or "*"`);
    }
    return await readMetrics(this.#ctx, flowId, version);
  }

  /** Every metrics record (each flow's `"*"` and per-version ones), or only one flow's. */
  async listMetrics(flowId?: string): Promise<FlowMetrics[]> {
    if (flowId !== undefined) checkFlowId(flowId, "Cannot list metrics");
    return await listMetrics(this.#ctx, flowId);
  }

  /**
   * Fold the metrics shards into the metrics entries. In a process whose
   * run ends conflicted on their flow's metrics (several runs ending at
   * once: a queue worker), runs add their counts to shards of the metrics
   * (one per process and run ending at that moment), so that they never
   * retry against each other; readers merge them, and this (which queue
   * workers run when they start and stop) keeps them few. Resolves how many
   * shards were folded.
   *
   * @example
   * ```ts
   * import { newRunId, openStore, Records } from "@flowstate/core/records";
   * import assert from "node:assert/strict";
   * await using store = await openStore({ plugin: "memory" });
   * const records = new Records(store);
   * const run = {
   *   id: newRunId(1),
   *   flowId: "hello",
   *   flowVersion: "v1",
   *   status: "running" as const,
   *   inputs: {},
   *   outputs: null,
   *   error: null,
   *   startedAt: 1,
   *   endedAt: null,
   *   durationMs: null,
   *   nodes: {},
   * };
   * await records.startRun(run);
   * await records.finishRun({ ...run, status: "succeeded", endedAt: 5 }, []);
   * // One run at a time never conflicts: its counts went to the entries, no shard.
   * assert.equal(await records.compactMetrics(), 0);
   * assert.equal((await records.getMetrics("hello"))?.succeeded, 1);
   * ```
   */
  compactMetrics(): Promise<number> {
    return compactMetrics(this.#ctx);
  }

  /**
   * Delete old runs by age and by count per flow, keeping failed runs longer
   * and never touching a running one, then (with `maxAge`) the flow versions
   * older than `maxAge` that no run left refers to, never a flow's current
   * one: what the `retention` job does, with range deletes in time windows
   * (see `prune.ts`). Ages are in ms.
   *
   * @example
   * ```ts
   * import { openStore, Records } from "@flowstate/core/records";
   * import assert from "node:assert/strict";
   * await using store = await openStore({ plugin: "memory" });
   * const records = new Records(store, { prefix: ["app", "records"] });
   * const result = await records.prune({
   *   maxAge: 86_400_000,
   *   failedMaxAge: null,
   *   maxRuns: 100,
   *   batchSize: 1000,
   *   now: Date.now(),
   * });
   * assert.equal(result.deleted, 0);
   * ```
   */
  async prune(options: PruneOptions): Promise<PruneResult> {
    const { pruneRuns } = await import("./prune.ts");
    return await pruneRuns(this.#ctx.store, this.#ctx.layout, options);
  }

  /**
   * Delete a run: its record, its events and every index entry, in one
   * atomic commit. Metrics are not changed. Resolves `false` if there was no
   * such run (its stray events, if any, are still removed).
   */
  async deleteRun(runId: string): Promise<boolean> {
    assertRunId(runId, `Cannot delete run ${JSON.stringify(runId)}`);
    return (await this.deleteRuns([runId])) === 1;
  }

  /**
   * Delete several runs as {@linkcode Records.deleteRun} does, all in one
   * atomic commit (retried if one of them changes meanwhile); resolves how
   * many of them existed. Pass batches of a few hundred or thousand ids.
   */
  deleteRuns(runIds: readonly string[]): Promise<number> {
    return deleteRuns(this.#ctx, this.#eventTails, runIds);
  }
}
