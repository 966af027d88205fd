/**
 * Runs, for `Records`: starting a run, appending its events chunk by chunk,
 * finishing it (record, status indexes, inline events and metrics in one
 * commit), reading it back, and deleting runs (keys `runs`, `runs-by-*` and
 * `events` of the layout table in `records.ts`). Internal to `src/records/`.
 *
 * @module
 */
import { ConflictError } from "../errors.ts";
import type { AtomicOperation, Entry, JsonValue, Key } from "../store/types.ts";
import { compareKeys } from "../store/keys.ts";
import { checkEvents, checkRun, checkTime } from "./_checks.ts";
import {
  type RecordsContext,
  RETRY,
  setStoredRun,
  type StoredRun,
  withoutEvents,
  withRetry,
} from "./_context.ts";
import { type EndedLate, EVENTS_FIELD, LATE_END_MS } from "./layout.ts";
import {
  chunkSize,
  chunkWhere,
  decodeChunk,
  type KeptFields,
  writeChunk,
} from "./_event_chunks.ts";
import { addRunToMetrics, emptyMetrics, type FlowMetrics } from "./metrics.ts";
import { metricShards, shardKey } from "./_metric_shards.ts";
import type { NodeEndWithOutput } from "./_node_outcomes.ts";
import { knownEntries } from "./_known.ts";
import { type DedupeEntry, dedupeKey, releaseDedupeKey } from "./_dedupe.ts";
import { FlowVersionGoneError, guardVersion, versionGone } from "./_versions.ts";
import { assertRunId, runIdTime } from "./run_id.ts";
import { type KeptOutputsMasker, type RunEvent, type RunRecord, summarizeRun } from "./types.ts";

/** Runs with at most this many events get them inline in their record when they finish. */
const INLINE_EVENTS_MAX = 1000;
/** At most this many runs have a remembered tail; then the cache starts over. */
const MAX_CACHED_TAILS = 10_000;

/** Where a run's next event chunk goes: its number, and the index of its first event. */
interface EventTail {
  chunk: number;
  next: number;
}

/**
 * The next chunk number and event index per run, remembered so appends need
 * not list the run's chunks first. One per `Records`; a lost commit forgets
 * the run's tail, so the next try lists again.
 */
export class EventTails {
  #tails = new Map<string, EventTail>();

  /** Remember a run's tail. */
  remember(runId: string, tail: EventTail): void {
    // Runs that never finish in this process must not grow the cache forever.
    if (this.#tails.size >= MAX_CACHED_TAILS && !this.#tails.has(runId)) this.#tails.clear();
    this.#tails.set(runId, tail);
  }

  /**
   * Take it that the run has no event chunks yet unless its tail is known
   * (the first attempt of a claimed run: no one appended before it). Cheap to
   * be wrong: the commits that use the tail check that its chunk is absent,
   * and a failed check forgets the tail, so the next try reads it.
   */
  assumeEmpty(runId: string): void {
    if (!this.#tails.has(runId)) this.remember(runId, { chunk: 0, next: 0 });
  }

  /** Forget a run's tail (it finished, was deleted, or a commit lost a race). */
  forget(runId: string): void {
    this.#tails.delete(runId);
  }

  /** The run's tail: remembered, or read from its last stored chunk. */
  async read(ctx: RecordsContext, runId: string): Promise<EventTail> {
    const cached = this.#tails.get(runId);
    if (cached) return cached;
    for await (
      const e of ctx.store.list<{ first: number }>({
        prefix: ctx.layout.events(runId),
        reverse: true,
        limit: 1,
      })
    ) {
      return {
        chunk: parseInt(e.key[e.key.length - 1], 10) + 1,
        next: e.value.first + chunkSize(e.value, chunkWhere(runId, e.key)),
      };
    }
    return { chunk: 0, next: 0 };
  }
}

/**
 * `Records.startRun()`: record and index a `running` run; a `ConflictError` if its id exists,
 * a `FlowVersionGoneError` if its flow version was pruned since it was saved.
 */
export async function startRun(
  ctx: RecordsContext,
  tails: EventTails,
  run: RunRecord,
): Promise<void> {
  const what = `Cannot start run ${JSON.stringify(run?.id)}`;
  checkRun(run, what);
  if (run.status !== "running") {
    throw new TypeError(
      `${what}: status must be "running" (got "${run.status}"); record a final status with finishRun()`,
    );
  }
  const runKey = ctx.layout.run(run.id);
  const summary = summarizeRun(run);
  const op = ctx.store.atomic().check(runKey, null).set(runKey, run);
  for (const key of ctx.layout.indexKeys(summary)) op.set(key, summary);
  // Never a run of a version retention deleted meanwhile (see _prune_versions.ts).
  const guarded = await guardVersion(ctx, op, run.flowId, run.flowVersion, what);
  const result = await op.commit();
  if (!result.ok) {
    if (versionGone(ctx, guarded, result.conflicts)) {
      throw new FlowVersionGoneError(what, run.flowId, run.flowVersion);
    }
    throw new ConflictError(`${what}: a run with this id exists already`);
  }
  tails.remember(run.id, { chunk: 0, next: 0 });
  knownEntries(ctx).set(runKey, run, result.version);
}

/** `Records.appendEvents()`: one new event chunk per call, in one commit. */
export async function appendEvents(
  ctx: RecordsContext,
  tails: EventTails,
  runId: string,
  events: RunEvent[],
  kept?: KeptOutputs,
): Promise<void> {
  const what = `Cannot append events to run ${JSON.stringify(runId)}`;
  assertRunId(runId, what);
  checkEvents(events, what);
  if (events.length === 0) return;
  if (kept !== undefined) checkKeptOutputs(kept, what);
  await withRetry(ctx.retry, what, async () => {
    const tail = await tails.read(ctx, runId);
    const key = ctx.layout.chunk(runId, tail.chunk);
    const chunk = writeChunk(ctx.eventFormat, tail.next, events, what, kept);
    let result;
    try {
      result = await ctx.store.atomic().check(key, null).set(key, chunk).commit();
    } catch (err) {
      // The outputs kept beside the events make the chunk too large (a RangeError) or too deep
      // (a TypeError: the events themselves were checked) for the store: the events are what
      // must be stored, without them.
      if (kept === undefined || !(err instanceof RangeError || err instanceof TypeError)) {
        throw err;
      }
      const bare = writeChunk(ctx.eventFormat, tail.next, events, what);
      result = await ctx.store.atomic().check(key, null).set(key, bare).commit();
    }
    if (!result.ok) {
      tails.forget(runId);
      return RETRY;
    }
    tails.remember(runId, { chunk: tail.chunk + 1, next: tail.next + events.length });
    return undefined;
  });
}

/**
 * `Records.finishRun()`: write the final record, move its status indexes,
 * inline its events (at most 1,000 in all) or append the last chunk, and
 * count it in the per-version and `"*"` metrics (or shards of them, in a
 * process where they were contended: see `_metric_shards.ts`), in one commit.
 */
export async function finishRun(
  ctx: RecordsContext,
  tails: EventTails,
  run: RunRecord,
  events: RunEvent[],
  onlyIf?: (stored: RunRecord) => boolean,
  /** More writes (and checks) for the same commit: the queue's bookkeeping of a claimed run. */
  extra?: (op: AtomicOperation, stored: RunRecord | null) => Promise<void> | void,
): Promise<boolean> {
  const what = `Cannot finish run ${JSON.stringify(run?.id)}`;
  checkRun(run, what);
  if (run.status === "running" || run.status === "queued") {
    throw new TypeError(`${what}: status must be final (got "${run.status}")`);
  }
  checkEvents(events, what);
  const { store, clock, layout } = ctx;
  const endedAt = run.endedAt ?? clock.now();
  checkTime(endedAt, "endedAt", what);
  const durationMs = run.durationMs ?? Math.max(0, endedAt - run.startedAt);
  if (typeof durationMs !== "number" || !Number.isFinite(durationMs) || durationMs < 0) {
    throw new TypeError(`${what}: durationMs must be a number >= 0 (got ${durationMs})`);
  }
  const record: RunRecord = { ...run, endedAt, durationMs };
  const summary = summarizeRun(record);
  const runKey = layout.run(run.id);
  // The counts go to the flow's metrics entries, or, once this process has
  // seen runs of its own conflict on them (several at once: a worker), to a
  // shard only it writes to at the moment (see _metric_shards.ts): runs
  // ending at once then never conflict.
  const shards = metricShards(ctx);
  const shard = shards.take();
  let versionKey: Key = [];
  let allKey: Key = [];
  let inShard = false;
  const target = () => {
    inShard = shards.sharded;
    versionKey = inShard
      ? shardKey(ctx, run.flowId, run.flowVersion, shard)
      : layout.key("metrics", run.flowId, run.flowVersion);
    allKey = inShard
      ? shardKey(ctx, run.flowId, "*", shard)
      : layout.key("metrics", run.flowId, "*");
  };
  target();
  let metricsConflict = false;
  // Whether this try folds the events into the record, and whether that may be tried.
  let inlined = false;
  let mayInline = true;
  const known = knownEntries(ctx);
  const written = await withRetry(ctx.retry, what, async () => {
    const result = await attempt();
    if (result !== RETRY || inShard || !metricsConflict) return result;
    // Metrics were contended: from now on this process counts in shards.
    shards.sharded = true;
    target();
    return await attempt();
  }).finally(() => shards.give(shard));
  tails.forget(run.id);
  return written;

  /**
   * One try; again at once without inlining when the record with its events
   * inline is too large for the store (a `RangeError` from its value check,
   * before anything is written: events each accepted in their chunk can add
   * up past the limit). The chunks are kept then, as for a long run.
   */
  async function attempt(): Promise<boolean | typeof RETRY> {
    try {
      return await attemptOnce();
    } catch (err) {
      if (!inlined || !(err instanceof RangeError)) throw err;
      mayInline = false;
      return await attemptOnce();
    }
  }

  async function attemptOnce(): Promise<boolean | typeof RETRY> {
    metricsConflict = false;
    inlined = false;
    // As this process wrote them last (the run at its start or claim, the metrics at the
    // last end), when it did: the commit checks their versions all the same.
    const keys = [runKey, versionKey, allKey];
    type Read = [Entry<StoredRun> | null, Entry<FlowMetrics> | null, Entry<FlowMetrics> | null];
    const read = () => store.getMany<StoredRun | FlowMetrics>(keys) as Promise<Read>;
    const remembered = known.getAll<StoredRun | FlowMetrics>(keys) as Read | undefined;
    let [stored, perVersion, all] = remembered ?? await read();
    // A guarded finish (abandonRun, a claimed run's end) writes only over a run that still
    // matches. A queued run is finished only by the queue (cancelled before it started).
    const matches = (s: Entry<StoredRun> | null) =>
      onlyIf === undefined || (s !== null && onlyIf(s.value));
    const isOpen = (s: Entry<StoredRun> | null) =>
      s !== null &&
      (s.value.status === "running" || (onlyIf !== undefined && s.value.status === "queued"));
    // Refused only as the store has the record: one this process remembers may be older
    // (another handle changed it since: the claim of the next attempt after a retry that this
    // handle queued, say), so it is read afresh first.
    if (remembered !== undefined && (!matches(stored) || (stored !== null && !isOpen(stored)))) {
      known.forget(runKey);
      [stored, perVersion, all] = await read();
    }
    if (!matches(stored)) return false;
    const open = isOpen(stored);
    if (stored !== null && !open) {
      if (stored.value.status === record.status && stored.value.endedAt === record.endedAt) {
        return true;
      }
      // Recorded abandoned by gc while this process still ran it (stopped, suspended, starved
      // past gc's abandonedAfter): said, so the refusal is not a riddle.
      const error = stored.value.error?.message;
      const why = error?.startsWith("abandoned:")
        ? `: gc recorded it ${error.replace(/ \(its process was killed.*\)$/, "")}; a process ` +
          `stopped or stalled that long is taken for dead`
        : "";
      throw new ConflictError(
        `${what} as "${record.status}": it already finished as "${stored.value.status}" at ${
          new Date(stored.value.endedAt ?? 0).toISOString()
        }${why}`,
      );
    }
    const tail = await tails.read(ctx, run.id);
    const now = clock.now();
    const op = store.atomic()
      .check(runKey, stored?.version ?? null)
      .check(versionKey, perVersion?.version ?? null)
      .check(allKey, all?.version ?? null)
      // No chunk may appear after the ones read here.
      .check(layout.chunk(run.id, tail.chunk), null);
    // A claimed run whose flow changed while it was queued ran another version than its record
    // says: that version must still be there when the record comes to refer to it.
    const guarded = stored !== null && stored.value.flowVersion !== record.flowVersion
      ? await guardVersion(ctx, op, record.flowId, record.flowVersion, what)
      : null;
    if (stored !== null) {
      for (const key of layout.allIndexKeys(stored.value)) op.delete(key);
    }
    // A cancel request ends with the run it asked to cancel, and its dedupe key with it.
    op.delete(layout.cancel(run.id));
    // So do the signals it did not take (a signal is never written beside an ended run).
    op.clear(layout.signal(run.id));
    await releaseDedupeKey(ctx, op, stored?.value ?? run);
    if (extra !== undefined) await extra(op, stored === null ? null : stored.value);
    if (mayInline && tail.next + events.length <= INLINE_EVENTS_MAX) {
      inlined = true;
      await inlineEvents(ctx, op, record, events, tail.chunk);
    } else {
      setStoredRun(ctx, op, runKey, record);
      if (events.length > 0) {
        op.set(
          layout.chunk(run.id, tail.chunk),
          writeChunk(ctx.eventFormat, tail.next, events, what),
        );
      }
    }
    for (const key of layout.indexKeys(summary)) op.set(key, summary);
    // Retention ages a run from its end: one that ended long after its id's time says so (an
    // earlier end of the same run, before a retry, was earlier: its entry, if any, is replaced).
    if (endedAt - runIdTime(run.id) > LATE_END_MS) {
      const late: EndedLate = { flowId: run.flowId, status: run.status, endedAt };
      op.set(layout.endedLate(run.id), late);
    }
    const versionMetrics = addRunToMetrics(
      perVersion?.value ?? emptyMetrics(run.flowId, run.flowVersion, now),
      record,
      now,
    );
    const allMetrics = addRunToMetrics(
      all?.value ?? emptyMetrics(run.flowId, "*", now),
      record,
      now,
    );
    op.set(versionKey, versionMetrics).set(allKey, allMetrics);
    const result = await op.commit();
    known.forget(runKey);
    if (result.ok) {
      known.set(versionKey, versionMetrics, result.version);
      known.set(allKey, allMetrics, result.version);
    } else {
      if (versionGone(ctx, guarded, result.conflicts)) {
        throw new FlowVersionGoneError(what, record.flowId, record.flowVersion);
      }
      known.forget(versionKey, allKey);
      tails.forget(run.id);
      metricsConflict = result.conflicts.some((k) =>
        compareKeys(k, versionKey) === 0 || compareKeys(k, allKey) === 0
      );
    }
    return result.ok ? true : RETRY;
  }
}

/**
 * Write `record` with all the run's events inline (the chunks' and `events`)
 * into `op`, clearing the chunks. Events nest no deeper inline than in a chunk
 * (`record["@events"][i]` as `chunk.events[i]` or a compact chunk's raw row),
 * so only the size limit can be crossed here (see `finishRun`).
 */
async function inlineEvents(
  ctx: RecordsContext,
  op: AtomicOperation,
  record: RunRecord,
  events: readonly RunEvent[],
  chunks: number,
): Promise<void> {
  const { store, layout } = ctx;
  const inline: RunEvent[] = [];
  if (chunks > 0) {
    for await (const e of store.list({ prefix: layout.events(record.id) })) {
      const chunk = decodeChunk(e.value, chunkWhere(record.id, e.key));
      for (const event of chunk.events) inline.push(event);
    }
    op.clear(layout.events(record.id));
  }
  for (const event of events) inline.push(event);
  setStoredRun(ctx, op, layout.run(record.id), record, inline);
}

/**
 * `Records.heartbeat()`: write `heartbeatAt` into a `running` run's record,
 * one compare-and-set. Resolves `false`, writing nothing, when the run is
 * gone, no longer running, changed meanwhile (the next beat tries again), or
 * claimed from the queue: a claimed run's heartbeat is its claim's lease, and
 * only `heartbeatClaim` writes it, after checking that the claim is the
 * writer's (a stale process must never extend another worker's claim).
 */
export async function heartbeat(ctx: RecordsContext, runId: string, at: number): Promise<boolean> {
  const what = `Cannot record a heartbeat of run ${JSON.stringify(runId)}`;
  assertRunId(runId, what);
  checkTime(at, "at", what);
  const key = ctx.layout.run(runId);
  const stored = await ctx.store.get<StoredRun>(key);
  if (
    stored === null || stored.value.status !== "running" ||
    stored.value.queue?.claim !== undefined
  ) return false;
  const value: StoredRun = { ...stored.value, heartbeatAt: at };
  const result = await ctx.store.atomic().check(key, stored.version).set(key, value).commit();
  const known = knownEntries(ctx);
  if (result.ok) known.set(key, value, result.version);
  else known.forget(key);
  return result.ok;
}

/** `Records.getRun()`: one run's record (without inline events), or `null`. */
export async function getRun(ctx: RecordsContext, runId: string): Promise<RunRecord | null> {
  assertRunId(runId, "Cannot get run");
  const stored = await ctx.store.get<StoredRun>(ctx.layout.run(runId));
  return stored === null ? null : withoutEvents(stored.value);
}

/**
 * `Records.getEvents()`: a run's events, inline in its record or from its
 * chunks. The chunks are read first, then the record: a run that finishes in
 * between (its events moved inline and its chunks deleted in one commit) is
 * read whole either way, where the other order would find neither.
 */
export async function getEvents(ctx: RecordsContext, runId: string): Promise<RunEvent[]> {
  assertRunId(runId, "Cannot get run events");
  const chunked = await chunkEvents(ctx, runId);
  return (await inlineEventsOf(ctx, runId)) ?? chunked;
}

/** The outputs `Records.appendEvents` keeps beside a chunk's events (see `KeptFields`). */
export type KeptOutputs = { nodes: string[]; outputs: JsonValue[]; masked?: string[] };

function checkKeptOutputs(kept: KeptOutputs, what: string): void {
  const { nodes, outputs, masked } = kept as Partial<KeptOutputs>;
  const ids = (list: unknown) => Array.isArray(list) && list.every((id) => typeof id === "string");
  if (!ids(nodes) || !Array.isArray(outputs) || outputs.length !== nodes!.length) {
    throw new TypeError(
      `${what}: kept must be { nodes, outputs }: a list of node ids and a list of as many outputs`,
    );
  }
  if (masked !== undefined && !ids(masked)) {
    throw new TypeError(`${what}: kept.masked must be a list of node ids`);
  }
}

/**
 * A run's events as `getEvents` reads them, except that each `node.end` of
 * a node that succeeded and whose output was kept beside it in the same
 * chunk (`Records.appendEvents`) is a copy holding that output (see
 * {@linkcode NodeEndWithOutput}): what `abandonRun` and a lost queued
 * attempt record of a run whose process died before its end.
 */
export async function getEventsWithOutputs(
  ctx: RecordsContext,
  runId: string,
): Promise<RunEvent[]> {
  assertRunId(runId, "Cannot get run events");
  const events: RunEvent[] = [];
  for await (const e of ctx.store.list({ prefix: ctx.layout.events(runId) })) {
    const chunk = decodeChunk(e.value, chunkWhere(runId, e.key));
    const kept = keptOutputsOf(e.value);
    for (const event of chunk.events) {
      const output = kept === undefined || event.type !== "node.end" ||
          event.status !== "succeeded"
        ? undefined
        : kept.get(event.node);
      if (output === undefined) {
        events.push(event);
        continue;
      }
      const withOutput = { ...event, output: output.output } as NodeEndWithOutput;
      if (output.masked) withOutput.outputMasked = true;
      events.push(withOutput);
    }
  }
  return (await inlineEventsOf(ctx, runId)) ?? events;
}

/**
 * Mask, where they are stored, the outputs kept beside a run's events that
 * hold a secret `masker` knows (see `Records.maskKeptOutputs`); the number
 * masked.
 */
export async function maskKeptOutputs(
  ctx: RecordsContext,
  runId: string,
  masker: KeptOutputsMasker,
): Promise<number> {
  const what = `Cannot mask the outputs kept beside the events of run ${JSON.stringify(runId)}`;
  assertRunId(runId, what);
  let count = 0;
  for await (const listed of ctx.store.list({ prefix: ctx.layout.events(runId) })) {
    let entry: Entry<unknown> | null = listed;
    await withRetry(ctx.retry, what, async () => {
      if (entry === null) return;
      const { outputNodes: nodes, outputs, maskedOutputs } = entry.value as KeptFields;
      if (!Array.isArray(nodes) || !Array.isArray(outputs) || nodes.length !== outputs.length) {
        return;
      }
      const masked = Array.isArray(maskedOutputs) ? [...maskedOutputs] : [];
      const next = [...outputs];
      let found = 0;
      for (let i = 0; i < next.length; i++) {
        if (next[i] === undefined || !masker.contains(next[i])) continue;
        next[i] = masker.mask(next[i]);
        if (!masked.includes(nodes[i])) masked.push(nodes[i]);
        found++;
      }
      if (found === 0) return;
      const chunk = { ...(entry.value as object), outputs: next, maskedOutputs: masked };
      const result = await ctx.store.atomic()
        .check(entry.key, entry.version)
        .set(entry.key, chunk)
        .commit();
      if (!result.ok) {
        // Rewritten meanwhile, or dropped by the run's end: read again.
        entry = await ctx.store.get(listed.key);
        return RETRY;
      }
      count += found;
    });
  }
  return count;
}

/**
 * The outputs a stored chunk keeps beside its events, by node id, or
 * `undefined` when it keeps none (or they are damaged: they are only a help
 * for a run whose process died, never a reason to refuse its events).
 */
function keptOutputsOf(
  chunk: unknown,
): Map<string, { output: JsonValue; masked: boolean }> | undefined {
  const { outputNodes: nodes, outputs, maskedOutputs } = chunk as KeptFields;
  if (!Array.isArray(nodes) || !Array.isArray(outputs) || nodes.length !== outputs.length) {
    return undefined;
  }
  const masked = new Set(Array.isArray(maskedOutputs) ? maskedOutputs : []);
  const kept = new Map<string, { output: JsonValue; masked: boolean }>();
  for (let i = 0; i < nodes.length; i++) {
    const node = nodes[i];
    if (typeof node === "string" && outputs[i] !== undefined) {
      kept.set(node, { output: outputs[i], masked: masked.has(node) });
    }
  }
  return kept;
}

/** Every event of a run's chunks, one chunk after the other. */
async function chunkEvents(ctx: RecordsContext, runId: string): Promise<RunEvent[]> {
  const events: RunEvent[] = [];
  for await (const e of ctx.store.list({ prefix: ctx.layout.events(runId) })) {
    const chunk = decodeChunk(e.value, chunkWhere(runId, e.key));
    for (const event of chunk.events) events.push(event);
  }
  return events;
}

/** The events a finished run's record holds inline, or `undefined`. */
async function inlineEventsOf(
  ctx: RecordsContext,
  runId: string,
): Promise<RunEvent[] | undefined> {
  const stored = await ctx.store.get<StoredRun>(ctx.layout.run(runId));
  const inline = stored?.value[EVENTS_FIELD];
  return Array.isArray(inline) ? inline : undefined;
}

/**
 * `Records.getEventsFrom()`: a run's events from index `from` on (an event's
 * index is its place in `getEvents()`), and how many it has in all. The
 * chunks are listed newest first, down to the one holding event `from`, and
 * only those are decoded; then the record is read, and events it holds inline
 * win. In that order, a run that finishes in between (its events moved
 * inline and its chunks deleted in one commit) is read whole either way. A
 * chunk without its index, or chunks that do not follow each other, are read
 * as `getEvents()` reads them: all, one after the other.
 */
export async function getEventsFrom(
  ctx: RecordsContext,
  runId: string,
  from: number,
): Promise<{ events: RunEvent[]; count: number }> {
  const what = "Cannot get run events";
  assertRunId(runId, what);
  if (!Number.isSafeInteger(from) || from < 0) {
    throw new RangeError(`${what}: from must be a whole number >= 0, got ${String(from)}`);
  }
  const newestFirst: { key: Key; value: unknown; first: number; size: number }[] = [];
  let contiguous = true;
  for await (const e of ctx.store.list({ prefix: ctx.layout.events(runId), reverse: true })) {
    const first = (e.value as { first?: unknown } | null)?.first;
    const size = chunkSize(e.value, chunkWhere(runId, e.key));
    const later = newestFirst.at(-1);
    if (typeof first !== "number" || (later !== undefined && first + size !== later.first)) {
      contiguous = false;
      break;
    }
    newestFirst.push({ key: e.key, value: e.value, first, size });
    if (first <= from) break;
  }
  const oldest = newestFirst.at(-1);
  // The chunks before the oldest are gone (or its index is off): read them as getEvents does.
  if (oldest !== undefined && oldest.first > from) contiguous = false;
  let chunked: RunEvent[];
  let count: number;
  if (contiguous) {
    chunked = [];
    count = newestFirst.length === 0 ? 0 : newestFirst[0].first + newestFirst[0].size;
    for (const c of newestFirst.reverse()) {
      const { events } = decodeChunk(c.value, chunkWhere(runId, c.key));
      for (let i = Math.max(0, from - c.first); i < events.length; i++) chunked.push(events[i]);
    }
  } else {
    const all = await chunkEvents(ctx, runId);
    chunked = all.slice(from);
    count = all.length;
  }
  const inline = await inlineEventsOf(ctx, runId);
  if (inline !== undefined) return { events: inline.slice(from), count: inline.length };
  return { events: chunked, count };
}

/** `Records.deleteRuns()`: delete runs with their events and index entries in one commit. */
export async function deleteRuns(
  ctx: RecordsContext,
  tails: EventTails,
  runIds: readonly string[],
): Promise<number> {
  const what = "Cannot delete runs";
  if (!Array.isArray(runIds)) throw new TypeError(`${what}: runIds must be an array of run ids`);
  for (const id of runIds) assertRunId(id, what);
  const ids = [...new Set(runIds)];
  if (ids.length === 0) return 0;
  const { store, layout } = ctx;
  const keys = ids.map((id) => layout.run(id));
  const existed = await withRetry(ctx.retry, what, async () => {
    const stored = await store.getMany<StoredRun>(keys);
    // The dedupe keys that still name a run deleted here go with it.
    const keyed = stored.filter((e) => e !== null && e.value.queue?.key !== undefined);
    const dedupeKeys = keyed.map((e) => dedupeKey(ctx, e!.value.queue!.key!));
    const held = await store.getMany<DedupeEntry>(dedupeKeys);
    const op = store.atomic();
    keyed.forEach((e, i) => {
      if (held[i]?.value?.runId !== e!.value.id) return;
      op.check(dedupeKeys[i], held[i]!.version).delete(dedupeKeys[i]);
    });
    let found = 0;
    ids.forEach((id, i) => {
      const entry = stored[i];
      op.check(keys[i], entry?.version ?? null);
      if (entry !== null) {
        found++;
        op.delete(keys[i]);
        for (const key of layout.allIndexKeys(entry.value)) op.delete(key);
      }
      op.delete(layout.endedLate(id));
      op.delete(layout.cancel(id));
      op.delete(layout.onFailure(id));
      op.delete(layout.resumed(id));
      op.clear(layout.signal(id));
      op.clear(layout.events(id));
    });
    const result = await op.commit();
    return result.ok ? found : RETRY;
  });
  for (const id of ids) tails.forget(id);
  return existed;
}
