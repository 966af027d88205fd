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
 * | `P, "versions", flowId, hash` | {@linkcode FlowVersion} (immutable once written) |
 * | `P, "heads", flowId` | `{ hash, versions, description, updatedAt }`: the current version |
 * | `P, "runs", runId` | the full {@linkcode RunRecord}; once finished, with its events inline |
 * | `P, "runs-by-flow", flowId, runId` | {@linkcode RunSummary} |
 * | `P, "runs-by-status", status, runId` | {@linkcode RunSummary}, for every status but `succeeded` |
 * | `P, "runs-by-flow-status", flowId, status, runId` | the same, per flow |
 * | `P, "events", runId, chunk` | `{ first, events }`: one `appendEvents()` call |
 * | `P, "metrics", flowId, version` | {@linkcode FlowMetrics}; `version` is a hash or `"*"` |
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
 * Stores written before this layout (0.1, which indexed `succeeded` runs too
 * and never inlined events) are read as they are: deleting a run removes the
 * status entries either layout may have written.
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
 * ## Concurrency
 *
 * Every read-modify-write (versions, finishing a run, metrics, deletion,
 * event chunks) is one atomic commit guarded by version checks, retried with
 * a small jittered exponential backoff, and abandoned with a
 * {@linkcode ConflictError} after `retry.attempts` tries. Finishing a run
 * writes the record, moves its status indexes and updates both the
 * per-version and the `"*"` metrics in one commit, so several processes can
 * finish runs of one flow at once without losing a count.
 *
 * @module
 */
import { ConflictError } from "../errors.ts";
import type { FlowDefinition } from "../flow/types.ts";
import { type PruneOptions, type PruneResult, pruneRuns } from "./prune.ts";
import { assertRunId, runIdTimeBound } from "./run_id.ts";
import {
  type RunEvent,
  type RunRecord,
  type RunStatus,
  type RunSummary,
  summarizeRun,
} from "./types.ts";
import { assertKey, compareKeys } from "../store/keys.ts";
import type { Clock, Entry, Key, Store } from "../store/types.ts";
import { EVENTS_FIELD, RecordsLayout, RUN_STATUSES } from "./layout.ts";
import { addRunToMetrics, emptyMetrics, type FlowMetrics } from "./metrics.ts";
import { systemClock } from "../clock.ts";

export type { DurationHistogram, FlowMetrics } from "./metrics.ts";

/** One stored version of a flow. */
export interface FlowVersion {
  /** The flow's id. */
  flowId: string;
  /** SHA-256 (hex) of the definition's canonical JSON. */
  hash: string;
  /** The head when this version was created, or `null` for the first version. */
  parent: string | null;
  /** Creation order within the flow, from 1. */
  seq: number;
  /** When it was first saved (ms since the epoch). */
  createdAt: number;
  /** The definition. */
  definition: FlowDefinition;
  /** The text it was parsed from, if given when first saved. */
  source?: string;
}

/** One flow, as {@linkcode Records.listFlows} reports it. */
export interface FlowSummary {
  /** The flow's id. */
  id: string;
  /** Hash of the current version. */
  head: string;
  /** How many distinct versions exist. */
  versions: number;
  /** Start time of the newest run (any status), or `null`. */
  lastRunAt: number | null;
  /** Status of the newest run (`running` while it runs), or `null`. */
  lastStatus: RunStatus | null;
  /** The current version's description, or `null`. */
  description: string | null;
}

/** Which runs {@linkcode Records.listRuns} returns. Filters combine. */
export interface ListRunsOptions {
  /** Only runs of this flow. */
  flowId?: string;
  /** Only runs with this status. */
  status?: RunStatus;
  /** Only runs started at or after this time (ms since the epoch). */
  since?: number;
  /** Only runs started before this time (ms since the epoch, exclusive). */
  until?: number;
  /** At most this many runs per page (1 to 1000, default 100). */
  limit?: number;
  /** The `cursor` of the previous page, to continue after it. */
  cursor?: string;
}

/** A page of runs, newest first. */
export interface RunPage<T> {
  /** The runs of this page. */
  runs: T[];
  /**
   * Pass as `cursor` for the next page; absent on the last page. A page with
   * a cursor may hold fewer runs than asked for (see `listRunSummaries`).
   */
  cursor?: string;
}

/** How {@linkcode Records} is set up. */
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
}

interface HeadRecord {
  hash: string;
  versions: number;
  description: string | null;
  updatedAt: number;
}

interface EventChunk {
  first: number;
  events: RunEvent[];
}

/** A page that filters (succeeded runs) reads at least this many entries before ending early. */
const MIN_FILTER_SCAN = 2000;
/** Runs with at most this many events get them inline in their record when they finish. */
const INLINE_EVENTS_MAX = 1000;
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;
const MAX_CACHED_TAILS = 10_000;

function checkFlowId(flowId: unknown, what: string): asserts flowId is string {
  if (typeof flowId !== "string" || flowId === "") {
    throw new TypeError(
      `${what}: flow id must be a non-empty string (got ${JSON.stringify(flowId) ?? flowId})`,
    );
  }
}

function checkStatus(status: unknown, what: string): asserts status is RunStatus {
  if (!RUN_STATUSES.includes(status as RunStatus)) {
    throw new TypeError(
      `${what}: status must be one of ${RUN_STATUSES.join(", ")} (got ${JSON.stringify(status)})`,
    );
  }
}

function checkRun(run: unknown, what: string): asserts run is RunRecord {
  if (typeof run !== "object" || run === null || Array.isArray(run)) {
    throw new TypeError(`${what}: the run must be a RunRecord object`);
  }
  const r = run as Partial<RunRecord>;
  assertRunId(r.id, what);
  checkFlowId(r.flowId, what);
  if (typeof r.flowVersion !== "string" || r.flowVersion === "" || r.flowVersion === "*") {
    throw new TypeError(
      `${what}: flowVersion must be a version hash (got ${JSON.stringify(r.flowVersion)})`,
    );
  }
  checkStatus(r.status, what);
  if (typeof r.startedAt !== "number" || !Number.isFinite(r.startedAt)) {
    throw new TypeError(`${what}: startedAt must be a number of ms (got ${r.startedAt})`);
  }
}

function checkTime(value: unknown, name: string, what: string): asserts value is number {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new TypeError(`${what}: ${name} must be a number of ms since the epoch (got ${value})`);
  }
}

function checkEvents(events: unknown, what: string): asserts events is RunEvent[] {
  if (!Array.isArray(events)) throw new TypeError(`${what}: events must be an array`);
  for (let i = 0; i < events.length; i++) {
    const e = events[i];
    if (typeof e !== "object" || e === null || typeof e.type !== "string") {
      throw new TypeError(`${what}: events[${i}] must be an object with a string type`);
    }
    checkTime(e.at, `events[${i}].at`, what);
  }
}

/** A run record as stored: finished runs may carry their events inline. */
type StoredRun = RunRecord & { [EVENTS_FIELD]?: RunEvent[] };

/** The record without its inline events. */
function withoutEvents(stored: StoredRun): RunRecord {
  if (!(EVENTS_FIELD in stored)) return stored;
  const { [EVENTS_FIELD]: _events, ...record } = stored;
  return record;
}

/**
 * The canonical JSON of a JSON-compatible value: object keys sorted,
 * `undefined` properties dropped, no whitespace. Throws a `TypeError` for
 * anything JSON cannot hold (functions, `BigInt`, non-finite numbers,
 * `undefined` in arrays, cycles, class instances).
 *
 * @example
 * ```ts
 * import { canonicalJson } from "@flowstate/core/records";
 * const text = canonicalJson({ b: 1, a: [true, null], c: undefined });
 * if (text !== '{"a":[true,null],"b":1}') throw new Error(`unexpected ${text}`);
 * try {
 *   canonicalJson({ when: new Date(0) });
 *   throw new Error("expected a TypeError");
 * } catch (error) {
 *   if (!(error instanceof TypeError)) throw error; // a Date is not plain JSON
 * }
 * ```
 */
export function canonicalJson(value: unknown): string {
  return canonical(value, "value", []);
}

function canonical(value: unknown, path: string, ancestors: object[]): string {
  switch (typeof value) {
    case "string":
    case "boolean":
      return JSON.stringify(value);
    case "number":
      if (!Number.isFinite(value)) {
        throw new TypeError(`Cannot hash flow: ${path} is ${value}, which JSON cannot hold`);
      }
      return JSON.stringify(value);
    case "object": {
      if (value === null) return "null";
      if (ancestors.includes(value)) {
        throw new TypeError(`Cannot hash flow: ${path} refers back to itself (a cycle)`);
      }
      ancestors.push(value);
      let out: string;
      if (Array.isArray(value)) {
        out = `[${value.map((v, i) => canonical(v, `${path}[${i}]`, ancestors)).join(",")}]`;
      } else {
        const proto = Object.getPrototypeOf(value);
        if (proto !== Object.prototype && proto !== null) {
          throw new TypeError(
            `Cannot hash flow: ${path} is a ${
              value.constructor?.name ?? "non-plain object"
            }; use plain objects, arrays, strings, numbers, booleans and null`,
          );
        }
        const record = value as Record<string, unknown>;
        const parts: string[] = [];
        for (const k of Object.keys(record).sort()) {
          if (record[k] === undefined) continue;
          parts.push(`${JSON.stringify(k)}:${canonical(record[k], `${path}.${k}`, ancestors)}`);
        }
        out = `{${parts.join(",")}}`;
      }
      ancestors.pop();
      return out;
    }
    default:
      throw new TypeError(`Cannot hash flow: ${path} is ${typeof value}, which JSON cannot hold`);
  }
}

/**
 * The content hash of a flow definition: SHA-256 (lowercase hex) of its canonical JSON.
 *
 * @example
 * ```ts
 * import { hashFlowDefinition } from "@flowstate/core/records";
 * const a = await hashFlowDefinition({ id: "hello", nodes: [{ id: "say", type: "log" }] });
 * const b = await hashFlowDefinition({ nodes: [{ type: "log", id: "say" }], id: "hello" });
 * if (a !== b) throw new Error("key order must not change the hash");
 * if (!/^[0-9a-f]{64}$/.test(a)) throw new Error(`expected 64 hex digits, got ${a}`);
 * ```
 */
export async function hashFlowDefinition(definition: FlowDefinition): Promise<string> {
  const bytes = new TextEncoder().encode(canonicalJson(definition));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** What an attempt of a read-modify-write returns when its commit lost a race. */
const RETRY: unique symbol = Symbol("retry");

/**
 * Flow versions, run records, events and metrics in one {@linkcode Store}.
 * See the module documentation for the key layout.
 *
 * @example
 * ```ts
 * import { openStore } from "@flowstate/core";
 * import { Records } from "@flowstate/core/records";
 * await using store = await openStore({ plugin: "memory" });
 * const records = new Records(store);
 * const flow = { id: "hello", nodes: [{ id: "say", type: "log" }] };
 * const { hash, created } = await records.saveVersion(flow);
 * const head = await records.getHead("hello");
 * if (!created || head?.hash !== hash || head.seq !== 1) throw new Error("expected version 1");
 * if ((await records.saveVersion(flow)).created) throw new Error("same content, same version");
 * ```
 */
export class Records {
  #store: Store;
  #clock: Clock;
  #prefix: Key;
  #layout: RecordsLayout;
  #attempts: number;
  #maxDelayMs: number;
  /** Next chunk number and event index per run, so appends need not list first. */
  #eventTails = new Map<string, { chunk: number; next: number }>();

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
    this.#store = store;
    this.#clock = options.clock ?? systemClock;
    this.#prefix = [...prefix];
    this.#layout = new RecordsLayout(prefix);
    this.#attempts = attempts;
    this.#maxDelayMs = maxDelayMs;
  }

  #key(...parts: string[]): Key {
    return [...this.#prefix, ...parts];
  }

  #chunkKey(runId: string, chunk: number): Key {
    return this.#layout.chunk(runId, chunk);
  }

  async #retry<T>(what: string, attempt: () => Promise<T | typeof RETRY>): Promise<T> {
    for (let n = 0; n < this.#attempts; n++) {
      const result = await attempt();
      if (result !== RETRY) return result;
      if (n + 1 < this.#attempts) {
        const cap = Math.min(this.#maxDelayMs, 2 ** Math.min(n, 16));
        await new Promise((resolve) => setTimeout(resolve, Math.random() * cap));
      }
    }
    throw new ConflictError(
      `${what}: other writers changed the same records ${this.#attempts} times in a row; try again`,
    );
  }

  /**
   * Store a flow's definition once, addressed by its content hash, and make
   * it the flow's head. Returns the hash, the version's parent and whether
   * this call created it. Saving content that exists already creates
   * nothing (`created: false`) and moves the head back to it.
   */
  async saveVersion(
    definition: FlowDefinition,
    source?: string,
  ): Promise<{ hash: string; parent: string | null; created: boolean }> {
    const what = `Cannot save flow version of ${JSON.stringify(definition?.id)}`;
    if (typeof definition !== "object" || definition === null || Array.isArray(definition)) {
      throw new TypeError(`${what}: the definition must be an object`);
    }
    checkFlowId(definition.id, what);
    if (source !== undefined && typeof source !== "string") {
      throw new TypeError(`${what}: source must be a string when given`);
    }
    const flowId = definition.id;
    const hash = await hashFlowDefinition(definition);
    const headKey = this.#key("heads", flowId);
    const versionKey = this.#key("versions", flowId, hash);
    const description = typeof definition.description === "string" ? definition.description : null;
    return await this.#retry(what, async () => {
      const [head, existing] = await this.#store.getMany<HeadRecord | FlowVersion>([
        headKey,
        versionKey,
      ]) as [Entry<HeadRecord> | null, Entry<FlowVersion> | null];
      const now = this.#clock.now();
      if (existing !== null) {
        const value = { hash, parent: existing.value.parent, created: false };
        if (head?.value.hash === hash) return value;
        const moved: HeadRecord = {
          hash,
          versions: head?.value.versions ?? existing.value.seq,
          description,
          updatedAt: now,
        };
        const result = await this.#store.atomic()
          .check(headKey, head?.version ?? null)
          .check(versionKey, existing.version)
          .set(headKey, moved)
          .commit();
        return result.ok ? value : RETRY;
      }
      const parent = head?.value.hash ?? null;
      const seq = (head?.value.versions ?? 0) + 1;
      const version: FlowVersion = { flowId, hash, parent, seq, createdAt: now, definition };
      if (source !== undefined) version.source = source;
      const newHead: HeadRecord = { hash, versions: seq, description, updatedAt: now };
      const result = await this.#store.atomic()
        .check(headKey, head?.version ?? null)
        .check(versionKey, null)
        .set(versionKey, version)
        .set(headKey, newHead)
        .commit();
      return result.ok ? { hash, parent, created: true } : RETRY;
    });
  }

  /** One version of a flow, or `null`. */
  async getVersion(flowId: string, hash: string): Promise<FlowVersion | null> {
    checkFlowId(flowId, "Cannot get flow version");
    if (typeof hash !== "string" || hash === "") {
      throw new TypeError(
        `Cannot get flow version of "${flowId}": hash must be a non-empty string`,
      );
    }
    return (await this.#store.get<FlowVersion>(this.#key("versions", flowId, hash)))?.value ?? null;
  }

  /** The flow's current version, or `null` if it has none. */
  async getHead(flowId: string): Promise<FlowVersion | null> {
    checkFlowId(flowId, "Cannot get flow head");
    const head = await this.#store.get<HeadRecord>(this.#key("heads", flowId));
    return head === null ? null : await this.getVersion(flowId, head.value.hash);
  }

  /** Every version of a flow, newest created first. */
  async listVersions(flowId: string): Promise<FlowVersion[]> {
    checkFlowId(flowId, "Cannot list flow versions");
    const versions: FlowVersion[] = [];
    for await (
      const e of this.#store.list<FlowVersion>({ prefix: this.#key("versions", flowId) })
    ) {
      versions.push(e.value);
    }
    return versions.sort((a, b) => b.seq - a.seq);
  }

  /** Every flow with a saved version, in id order, with its newest run. */
  async listFlows(): Promise<FlowSummary[]> {
    const heads: Entry<HeadRecord>[] = [];
    for await (const e of this.#store.list<HeadRecord>({ prefix: this.#key("heads") })) {
      heads.push(e);
    }
    return await Promise.all(heads.map(async ({ key, value }) => {
      const id = key[key.length - 1];
      let latest: RunSummary | null = null;
      for await (
        const e of this.#store.list<RunSummary>({
          prefix: this.#key("runs-by-flow", id),
          reverse: true,
          limit: 1,
        })
      ) latest = e.value;
      return {
        id,
        head: value.hash,
        versions: value.versions,
        lastRunAt: latest?.startedAt ?? null,
        lastStatus: latest?.status ?? null,
        description: value.description,
      };
    }));
  }

  /**
   * Record a run that started (its status must be `running`) and index it.
   * Throws a `ConflictError` if a run with this id exists.
   */
  async startRun(run: RunRecord): Promise<void> {
    const what = `Cannot start run ${JSON.stringify(run?.id)}`;
    checkRun(run, what);
    if (run.status !== "running") {
      throw new TypeError(
        `${what}: status must be "running" (got "${run.status}"); record a final status with finishRun()`,
      );
    }
    const runKey = this.#key("runs", run.id);
    const summary = summarizeRun(run);
    const op = this.#store.atomic().check(runKey, null).set(runKey, run);
    for (const key of this.#layout.indexKeys(summary)) op.set(key, summary);
    const result = await op.commit();
    if (!result.ok) throw new ConflictError(`${what}: a run with this id exists already`);
    this.#rememberTail(run.id, { chunk: 0, next: 0 });
  }

  #rememberTail(runId: string, tail: { chunk: number; next: number }): void {
    // Runs that never finish in this process must not grow the cache forever.
    if (this.#eventTails.size >= MAX_CACHED_TAILS && !this.#eventTails.has(runId)) {
      this.#eventTails.clear();
    }
    this.#eventTails.set(runId, tail);
  }

  async #eventTail(runId: string): Promise<{ chunk: number; next: number }> {
    const cached = this.#eventTails.get(runId);
    if (cached) return cached;
    for await (
      const e of this.#store.list<EventChunk>({
        prefix: this.#key("events", runId),
        reverse: true,
        limit: 1,
      })
    ) {
      return {
        chunk: parseInt(e.key[e.key.length - 1], 10) + 1,
        next: e.value.first + e.value.events.length,
      };
    }
    return { chunk: 0, next: 0 };
  }

  /**
   * Append events to a run, in one atomic commit per call. Calls for one run
   * should not overlap if their relative order matters. The run's existence
   * is not checked (events of a run that was never started are removed by
   * `deleteRun`).
   */
  async appendEvents(runId: string, events: RunEvent[]): Promise<void> {
    const what = `Cannot append events to run ${JSON.stringify(runId)}`;
    assertRunId(runId, what);
    checkEvents(events, what);
    if (events.length === 0) return;
    await this.#retry(what, async () => {
      const tail = await this.#eventTail(runId);
      const key = this.#chunkKey(runId, tail.chunk);
      const chunk: EventChunk = { first: tail.next, events };
      const result = await this.#store.atomic().check(key, null).set(key, chunk).commit();
      if (!result.ok) {
        this.#eventTails.delete(runId);
        return RETRY;
      }
      this.#rememberTail(runId, { chunk: tail.chunk + 1, next: tail.next + events.length });
      return undefined;
    });
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
    const what = `Cannot finish run ${JSON.stringify(run?.id)}`;
    checkRun(run, what);
    if (run.status === "running") {
      throw new TypeError(`${what}: status must be final (got "running")`);
    }
    checkEvents(events, what);
    const endedAt = run.endedAt ?? this.#clock.now();
    checkTime(endedAt, "endedAt", what);
    const durationMs = run.durationMs ?? Math.max(0, endedAt - run.startedAt);
    if (typeof durationMs !== "number" || !Number.isFinite(durationMs) || durationMs < 0) {
      throw new TypeError(`${what}: durationMs must be a number >= 0 (got ${durationMs})`);
    }
    const record: RunRecord = { ...run, endedAt, durationMs };
    const summary = summarizeRun(record);
    const runKey = this.#key("runs", run.id);
    const versionKey = this.#key("metrics", run.flowId, run.flowVersion);
    const allKey = this.#key("metrics", run.flowId, "*");
    await this.#retry(what, async () => {
      const [stored, perVersion, all] = await this.#store.getMany<StoredRun | FlowMetrics>([
        runKey,
        versionKey,
        allKey,
      ]) as [Entry<StoredRun> | null, Entry<FlowMetrics> | null, Entry<FlowMetrics> | null];
      if (stored !== null && stored.value.status !== "running") {
        if (stored.value.status === record.status && stored.value.endedAt === record.endedAt) {
          return undefined;
        }
        throw new ConflictError(
          `${what} as "${record.status}": it already finished as "${stored.value.status}" at ${
            new Date(stored.value.endedAt ?? 0).toISOString()
          }`,
        );
      }
      const tail = await this.#eventTail(run.id);
      const now = this.#clock.now();
      const op = this.#store.atomic()
        .check(runKey, stored?.version ?? null)
        .check(versionKey, perVersion?.version ?? null)
        .check(allKey, all?.version ?? null)
        // No chunk may appear after the ones read here.
        .check(this.#chunkKey(run.id, tail.chunk), null);
      if (stored !== null) {
        for (const key of this.#layout.allIndexKeys(stored.value)) op.delete(key);
      }
      if (tail.next + events.length <= INLINE_EVENTS_MAX) {
        const inline: RunEvent[] = [];
        if (tail.chunk > 0) {
          for await (
            const e of this.#store.list<EventChunk>({ prefix: this.#layout.events(run.id) })
          ) {
            for (const event of e.value.events) inline.push(event);
          }
          op.clear(this.#layout.events(run.id));
        }
        for (const event of events) inline.push(event);
        op.set(runKey, { ...record, [EVENTS_FIELD]: inline } satisfies StoredRun);
      } else {
        op.set(runKey, record);
        if (events.length > 0) {
          op.set(
            this.#chunkKey(run.id, tail.chunk),
            { first: tail.next, events } satisfies EventChunk,
          );
        }
      }
      for (const key of this.#layout.indexKeys(summary)) op.set(key, summary);
      op.set(
        versionKey,
        addRunToMetrics(
          perVersion?.value ?? emptyMetrics(run.flowId, run.flowVersion, now),
          record,
          now,
        ),
      );
      op.set(
        allKey,
        addRunToMetrics(all?.value ?? emptyMetrics(run.flowId, "*", now), record, now),
      );
      const result = await op.commit();
      if (!result.ok) this.#eventTails.delete(run.id);
      return result.ok ? undefined : RETRY;
    });
    this.#eventTails.delete(run.id);
  }

  /** One run's record, or `null`. */
  async getRun(runId: string): Promise<RunRecord | null> {
    assertRunId(runId, "Cannot get run");
    const stored = await this.#store.get<StoredRun>(this.#key("runs", runId));
    return stored === null ? null : withoutEvents(stored.value);
  }

  /** Every event of a run, in the order they were appended. */
  async getEvents(runId: string): Promise<RunEvent[]> {
    assertRunId(runId, "Cannot get run events");
    const stored = await this.#store.get<StoredRun>(this.#key("runs", runId));
    const inline = stored?.value[EVENTS_FIELD];
    if (Array.isArray(inline)) return inline;
    const events: RunEvent[] = [];
    for await (const e of this.#store.list<EventChunk>({ prefix: this.#key("events", runId) })) {
      for (const event of e.value.events) events.push(event);
    }
    return events;
  }

  async #listIndex(
    options: ListRunsOptions,
  ): Promise<{ entries: Entry<RunSummary | StoredRun>[]; cursor?: string; full: boolean }> {
    const what = "Cannot list runs";
    if (typeof options !== "object" || options === null) {
      throw new TypeError(`${what}: options must be an object`);
    }
    const { flowId, status, since, until, cursor } = options;
    const limit = options.limit ?? DEFAULT_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
      throw new RangeError(
        `${what}: limit must be an integer from 1 to ${MAX_LIMIT} (got ${limit})`,
      );
    }
    if (flowId !== undefined) checkFlowId(flowId, what);
    if (status !== undefined) checkStatus(status, what);
    if (since !== undefined) checkTime(since, "since", what);
    if (until !== undefined) checkTime(until, "until", what);
    if (cursor !== undefined) assertRunId(cursor, `${what}: cursor`);
    // Succeeded runs have no status index: filter the flow's index or the list of all runs.
    const layout = this.#layout;
    const filtered = status === "succeeded";
    const base = status !== undefined && !filtered
      ? (flowId !== undefined ? layout.byFlowStatus(flowId, status) : layout.byStatus(status))
      : flowId !== undefined
      ? layout.byFlow(flowId)
      : layout.run();
    let start: Key | undefined;
    let end: Key | undefined;
    if (since !== undefined) {
      const bound = runIdTimeBound(since);
      if (bound === "~") return { entries: [], full: false };
      if (bound !== "") start = [...base, bound];
    }
    if (until !== undefined) {
      const bound = runIdTimeBound(until);
      if (bound === "") return { entries: [], full: false };
      if (bound !== "~") end = [...base, bound];
    }
    if (cursor !== undefined) {
      const after: Key = [...base, cursor];
      if (end === undefined || compareKeys(after, end) < 0) end = after;
    }
    const entries: Entry<RunSummary | StoredRun>[] = [];
    // A filtering page reads at most this many entries, then ends early with a cursor.
    const maxScan = filtered ? Math.max(MIN_FILTER_SCAN, 20 * limit) : Infinity;
    let scanned = 0;
    let lastScanned: string | undefined;
    for await (
      const e of this.#store.list<RunSummary | StoredRun>({
        prefix: base,
        start,
        end,
        reverse: true,
        ...(filtered ? { batchSize: Math.max(limit + 1, 256) } : {
          limit: limit + 1,
          batchSize: limit + 1,
        }),
      })
    ) {
      scanned++;
      lastScanned = e.value.id;
      if (!filtered || e.value.status === status) {
        entries.push(e);
        if (entries.length > limit) break;
      }
      if (scanned >= maxScan) break;
    }
    const more = entries.length > limit;
    if (more) entries.pop();
    const next = more ? entries[entries.length - 1].value.id : scanned >= maxScan
      ? lastScanned // a short page: the next one continues after the last entry read
      : undefined;
    return { entries, cursor: next, full: base.length === this.#prefix.length + 1 };
  }

  /**
   * A page of run summaries, newest first, read from the index alone. Runs
   * can be filtered by flow, status and start time; each filter is a key
   * range, so only the returned runs (plus one) are read — except `status:
   * "succeeded"`, which has no index and filters the list of all runs (or of
   * the flow's): such a page reads at most 20 × `limit` entries (at least
   * 2,000) and may end early, with fewer runs and a `cursor` to go on.
   */
  async listRunSummaries(options: ListRunsOptions = {}): Promise<RunPage<RunSummary>> {
    const { entries, cursor, full } = await this.#listIndex(options);
    const runs = entries.map((e) =>
      full ? summarizeRun(e.value as StoredRun) : e.value as RunSummary
    );
    return cursor === undefined ? { runs } : { runs, cursor };
  }

  /**
   * A page of full run records, newest first (see
   * {@linkcode Records.listRunSummaries} for the filters). Pass the page's
   * `cursor` back to get the next page.
   */
  async listRuns(options: ListRunsOptions = {}): Promise<RunPage<RunRecord>> {
    const { entries, cursor, full } = await this.#listIndex(options);
    let runs: RunRecord[];
    if (full) {
      runs = entries.map((e) => withoutEvents(e.value as StoredRun));
    } else {
      const records = await this.#store.getMany<StoredRun>(
        entries.map((e) => this.#layout.run((e.value as RunSummary).id)),
      );
      runs = records.filter((r) => r !== null).map((r) => withoutEvents(r.value));
    }
    return cursor === undefined ? { runs } : { runs, cursor };
  }

  /** A flow's metrics for one version, or for all of them (`"*"`, the default); `null` before any run finished. */
  async getMetrics(flowId: string, version = "*"): Promise<FlowMetrics | null> {
    checkFlowId(flowId, "Cannot get metrics");
    if (typeof version !== "string" || version === "") {
      throw new TypeError(`Cannot get metrics of "${flowId}": version must be a hash or "*"`);
    }
    return (await this.#store.get<FlowMetrics>(this.#key("metrics", flowId, version)))?.value ??
      null;
  }

  /** Every metrics record (each flow's `"*"` and per-version ones), or only one flow's. */
  async listMetrics(flowId?: string): Promise<FlowMetrics[]> {
    if (flowId !== undefined) checkFlowId(flowId, "Cannot list metrics");
    const prefix = flowId === undefined ? this.#key("metrics") : this.#key("metrics", flowId);
    const out: FlowMetrics[] = [];
    for await (const e of this.#store.list<FlowMetrics>({ prefix })) out.push(e.value);
    return out;
  }

  /**
   * Delete old runs by age and by count per flow, keeping failed runs longer
   * and never touching a running one: what the `retention` job does, with
   * range deletes in time windows (see `prune.ts`). Ages are in ms.
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
  prune(options: PruneOptions): Promise<PruneResult> {
    return pruneRuns(this.#store, this.#layout, options);
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
  async deleteRuns(runIds: readonly string[]): Promise<number> {
    const what = "Cannot delete runs";
    if (!Array.isArray(runIds)) throw new TypeError(`${what}: runIds must be an array of run ids`);
    for (const id of runIds) assertRunId(id, what);
    const ids = [...new Set(runIds)];
    if (ids.length === 0) return 0;
    const keys = ids.map((id) => this.#layout.run(id));
    const existed = await this.#retry(what, async () => {
      const stored = await this.#store.getMany<StoredRun>(keys);
      const op = this.#store.atomic();
      let found = 0;
      ids.forEach((id, i) => {
        const entry = stored[i];
        op.check(keys[i], entry?.version ?? null);
        if (entry !== null) {
          found++;
          op.delete(keys[i]);
          for (const key of this.#layout.allIndexKeys(entry.value)) op.delete(key);
        }
        op.clear(this.#layout.events(id));
      });
      const result = await op.commit();
      return result.ok ? found : RETRY;
    });
    for (const id of ids) this.#eventTails.delete(id);
    return existed;
  }
}
