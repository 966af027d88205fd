/**
 * The run queue on the Store contract, for `Records`: enqueueing a run
 * (status `queued`), claiming the next due one under a lease, finishing or
 * retrying a claimed run, taking back runs whose worker's lease lapsed,
 * cancelling a queued run and requeueing an ended one. Every transition is
 * one atomic commit guarded by version checks (the store's compare-and-set),
 * so any number of processes may share the queue. Internal to
 * `src/records/`; see "The queue" in `records.ts` for the key layout.
 *
 * @module
 */
import { ConflictError, NotFoundError } from "../errors.ts";
import { setOwn } from "../_json.ts";
import { MAX_KEY_BYTES } from "../store/keys.ts";
import { utf8Length } from "../store/values.ts";
import type { AtomicOperation, Entry, Key } from "../store/types.ts";
import { checkRun } from "./_checks.ts";
import {
  type RecordsContext,
  RETRY,
  type StoredRun,
  withoutEvents,
  withRetry,
} from "./_context.ts";
import { type EventTails, finishRun, getEventsWithOutputs } from "./_runs.ts";
import { outcomesOfEvents } from "./_node_outcomes.ts";
import { EVENTS_FIELD } from "./layout.ts";
import { writeChunk } from "./_event_chunks.ts";
import { knownEntries } from "./_known.ts";
import { holdsKey } from "./_dedupe.ts";
import { FlowVersionGoneError, guardVersion, versionGone } from "./_versions.ts";
import { assertRunId, newRunId } from "./run_id.ts";
import { nextSlots, rateAllows, type RateLog, withClaim } from "./_rate.ts";
import { MAX_RATE_LIMIT } from "../rate.ts";
import {
  type QueueAttempt,
  type QueueBackoff,
  type QueueInfo,
  type RunEvent,
  type RunRecord,
  summarizeRun,
} from "./types.ts";

/** Priorities are whole numbers in `-PRIORITY_MAX..PRIORITY_MAX`. */
export const PRIORITY_MAX = 1_000_000;
/** Digits of an encoded priority and of a zero-padded time in queue keys. */
const PRIORITY_DIGITS = 7;
const TIME_DIGITS = 15;
/**
 * A run whose worker stopped answering (its lease lapsed) this many times is
 * recorded failed instead of claimed again: a run that ends the process it
 * runs in (a trusted node's `Deno.exit`, running out of memory) would
 * otherwise take down every worker in turn. A machine lost under a run now
 * and then is far from it; attempts released by a worker that stops
 * (`released: …`) do not count.
 */
export const MAX_LOST_ATTEMPTS = 3;

/** The message of an attempt a stopping worker released (see `finishClaimedRun`). */
const RELEASED_PREFIX = "released: ";

/** Attempts whose worker stopped answering: those {@linkcode MAX_LOST_ATTEMPTS} counts. */
function crashLosses(attempts: readonly QueueAttempt[]): number {
  return attempts.filter((a) => a.outcome === "lost" && !a.error?.startsWith(RELEASED_PREFIX))
    .length;
}
/** Ready entries looked at per claim (runs of other flows or at their limit are passed over). */
const CLAIM_SCAN = 100;
/** Delayed entries made ready per claim at most. */
const PROMOTE_BATCH = 100;

/** What a queue index entry holds. */
export interface QueueEntry {
  /** The run. */
  id: string;
  /** Its flow. */
  flowId: string;
}

/**
 * What `Records.enqueueRun()` is given: the run to queue.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type EnqueueInit, openStore, Records } from "@flowstate/core/records";
 *
 * await using store = await openStore({ plugin: "memory" });
 * const records = new Records(store);
 * const init: EnqueueInit = {
 *   flowId: "mail",
 *   flowVersion: "v1",
 *   inputs: { to: "ada@example.com" },
 *   flowPath: "/app/flows/mail.flow.yaml",
 *   priority: 10,
 *   key: "welcome:ada",
 * };
 * const { runId } = await records.enqueueRun(init);
 * assert.equal((await records.getRun(runId))?.queue?.priority, 10);
 * ```
 */
export interface EnqueueInit {
  /** The flow's id. */
  flowId: string;
  /** The flow version's hash at enqueue time. */
  flowVersion: string;
  /** Inputs after defaults and type checks. */
  inputs: RunRecord["inputs"];
  /** The flow file to run (absolute path). */
  flowPath: string;
  /** It does not start before this time (ms; default: now). */
  runAt?: number;
  /** Higher first among due runs (default 0). */
  priority?: number;
  /** Dedupe key. */
  key?: string;
  /** Attempts allowed (default 1). */
  maxAttempts?: number;
  /** Waits between attempts after a failure. */
  backoff?: QueueBackoff;
  /** The flow's limit for this run. */
  limit?: QueueInfo["limit"];
  /** The run that enqueued it, if any (a `queue` node's). */
  parentRunId?: string;
}

/** What a claim entry (`P, "queue", "claimed", runId`) holds. */
interface ClaimEntry {
  /** The worker that claimed the run. */
  worker: string;
  /** When. */
  at: number;
  /** The claim's lease (absent in claims written before it was kept here). */
  leaseMs?: number;
}

/** The state of one flow partition's running runs, for `queue: { concurrency }`. */
interface ActiveRuns {
  runs: string[];
}

/** The topic of the store's wake-ups (`Store.signal`) that tell workers a run may be due. */
export const QUEUE_TOPIC = "queue";

/** Tell listening workers that a run may have become claimable (when the store can). */
async function wake(ctx: RecordsContext): Promise<void> {
  if (typeof ctx.store.signal !== "function") return;
  try {
    await ctx.store.signal(QUEUE_TOPIC);
  } catch {
    // A lost wake-up costs one poll interval, nothing more.
  }
}

/** The key part a time takes in queue keys (zero-padded ms, so key order is time order). */
export function timePart(ms: number): string {
  return String(Math.max(0, Math.floor(ms))).padStart(TIME_DIGITS, "0");
}

/** The key part a priority takes: higher priorities sort first. */
export function priorityPart(priority: number): string {
  return String(PRIORITY_MAX - priority).padStart(PRIORITY_DIGITS, "0");
}

/** The queue's keys under the records prefix. */
export class QueueKeys {
  readonly #ctx: RecordsContext;
  constructor(ctx: RecordsContext) {
    this.#ctx = ctx;
  }
  /** `P, "queue", "ready"`, or a run's entry there. */
  ready(q?: Pick<QueueInfo, "priority" | "runAt">, id?: string): Key {
    const base = this.#ctx.layout.key("queue", "ready");
    return q === undefined ? base : [...base, priorityPart(q.priority), timePart(q.runAt), id!];
  }
  /** `P, "queue", "delayed"`, or a run's entry there. */
  delayed(q?: Pick<QueueInfo, "priority" | "runAt">, id?: string): Key {
    const base = this.#ctx.layout.key("queue", "delayed");
    return q === undefined ? base : [...base, timePart(q.runAt), priorityPart(q.priority), id!];
  }
  /** `P, "queue", "claimed"`, or a run's claim entry. */
  claimed(id?: string): Key {
    const base = this.#ctx.layout.key("queue", "claimed");
    return id === undefined ? base : [...base, id];
  }
  /** `P, "queue", "key", key`: the run holding a dedupe key. */
  dedupe(key: string): Key {
    return this.#ctx.layout.key("queue", "key", key);
  }
  /** `P, "queue", "active", flowId, partition`: the running runs of a limited partition. */
  active(limit: NonNullable<QueueInfo["limit"]>, flowId: string): Key {
    return this.#ctx.layout.key("queue", "active", flowId, limit.partition);
  }
  /**
   * `P, "queue", "parked", flowId, partition`, or a run's entry there (`priority, runAt,
   * runId` after it, as in the ready index): due runs of a partition that was at its
   * concurrency limit when a claim met them, out of the ready index until a slot frees.
   */
  parked(
    limit: NonNullable<QueueInfo["limit"]>,
    flowId: string,
    q?: Pick<QueueInfo, "priority" | "runAt">,
    id?: string,
  ): Key {
    const base = this.#ctx.layout.key("queue", "parked", flowId, limit.partition);
    return q === undefined ? base : [...base, priorityPart(q.priority), timePart(q.runAt), id!];
  }
  /** `P, "queue", "parked"`: the parked runs of every partition. */
  allParked(): Key {
    return this.#ctx.layout.key("queue", "parked");
  }
  /** `P, "queue", "rate", flowId, partition`: the claim times of a rate-limited partition. */
  rate(limit: NonNullable<QueueInfo["limit"]>, flowId: string): Key {
    return this.#ctx.layout.key("queue", "rate", flowId, limit.partition);
  }
}

/**
 * A rate entry outlives its newest claim time by its window and this much
 * (ms): room for clocks of different workers that disagree a little.
 */
const RATE_KEEP_MS = 60_000;

/** A promoting list looks at most this far ahead for the next delayed run (ms): a day. */
const MAX_LOOK_AHEAD_MS = 86_400_000;

/** Add the writes that put a queued run's entry in the ready or delayed index. */
function addDueEntry(keys: QueueKeys, op: AtomicOperation, run: RunRecord, now: number): void {
  const q = run.queue!;
  const entry: QueueEntry = { id: run.id, flowId: run.flowId };
  op.set(q.runAt <= now ? keys.ready(q, run.id) : keys.delayed(q, run.id), entry);
}

/** Delete every possible due entry of a run (ready, delayed or parked: only one exists). */
function deleteDueEntries(keys: QueueKeys, op: AtomicOperation, run: RunRecord): void {
  const q = run.queue!;
  op.delete(keys.ready(q, run.id)).delete(keys.delayed(q, run.id));
  if (q.limit?.concurrency !== undefined) op.delete(keys.parked(q.limit, run.flowId, q, run.id));
}

/** Move a run's status index entries from `from` to `to` (its record's new status). */
function moveIndexes(
  ctx: RecordsContext,
  op: AtomicOperation,
  from: RunRecord,
  to: RunRecord,
): void {
  for (const key of ctx.layout.allIndexKeys(from)) op.delete(key);
  for (const key of ctx.layout.indexKeys(summarizeRun(to))) op.set(key, summarizeRun(to));
}

/** `Records.enqueueRun()`. */
export async function enqueueRun(
  ctx: RecordsContext,
  init: EnqueueInit,
): Promise<{ runId: string; existing: boolean; run: RunRecord }> {
  const what = `Cannot enqueue a run of ${JSON.stringify(init?.flowId)}`;
  const now = ctx.clock.now();
  const priority = init.priority ?? 0;
  if (!Number.isInteger(priority) || Math.abs(priority) > PRIORITY_MAX) {
    throw new RangeError(
      `${what}: priority must be a whole number from -${PRIORITY_MAX} to ${PRIORITY_MAX} (got ${priority})`,
    );
  }
  const maxAttempts = init.maxAttempts ?? 1;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw new RangeError(`${what}: maxAttempts must be a whole number >= 1 (got ${maxAttempts})`);
  }
  const runAt = init.runAt ?? now;
  if (!Number.isFinite(runAt) || runAt < 0) {
    throw new RangeError(`${what}: runAt must be a time in ms since the epoch (got ${runAt})`);
  }
  if (init.key !== undefined && (typeof init.key !== "string" || init.key === "")) {
    throw new TypeError(`${what}: key must be a non-empty string`);
  }
  if (init.key !== undefined) {
    // The dedupe key is the last element of a store key, so the store's key limit bounds it:
    // said here in the option's terms, rather than as a store key the caller never wrote.
    const overhead = ctx.layout.key("queue", "key", "").reduce((n, p) => n + utf8Length(p) + 1, 0);
    const max = MAX_KEY_BYTES - overhead;
    const size = utf8Length(init.key);
    if (size > max) {
      throw new RangeError(
        `${what}: key is ${size.toLocaleString("en-US")} bytes (UTF-8); a dedupe key is at most ${
          max.toLocaleString("en-US")
        } bytes: use a hash of a longer one`,
      );
    }
  }
  if (init.limit !== undefined) checkLimit(init.limit, what);
  const queue: QueueInfo = {
    flowPath: init.flowPath,
    enqueuedAt: now,
    runAt: Math.floor(runAt),
    priority,
    attempt: 0,
    maxAttempts,
    attempts: [],
  };
  if (init.key !== undefined) queue.key = init.key;
  if (init.backoff !== undefined) queue.backoff = init.backoff;
  if (init.limit !== undefined) queue.limit = init.limit;
  const run: RunRecord = {
    id: newRunId(now),
    flowId: init.flowId,
    flowVersion: init.flowVersion,
    status: "queued",
    inputs: init.inputs,
    outputs: null,
    startedAt: now,
    endedAt: null,
    durationMs: null,
    nodes: {},
    error: null,
    queue,
  };
  if (init.parentRunId !== undefined) run.parentRunId = init.parentRunId;
  checkRun(run, what);
  const keys = new QueueKeys(ctx);
  const runKey = ctx.layout.run(run.id);
  return await withRetry(ctx.retry, what, async () => {
    const op = ctx.store.atomic();
    if (init.key !== undefined) {
      const dedupeKey = keys.dedupe(init.key);
      const held = await ctx.store.get<{ runId: string }>(dedupeKey);
      if (held !== null) {
        const other = await ctx.store.get<StoredRun>(ctx.layout.run(held.value.runId));
        if (other !== null && holdsKey(other.value.status)) {
          return { runId: other.value.id, existing: true, run: withoutEvents(other.value) };
        }
      }
      op.check(dedupeKey, held?.version ?? null).set(dedupeKey, { runId: run.id });
    }
    op.check(runKey, null).set(runKey, run);
    for (const key of ctx.layout.indexKeys(summarizeRun(run))) op.set(key, summarizeRun(run));
    addDueEntry(keys, op, run, now);
    // Never a run of a version retention deleted meanwhile (see _prune_versions.ts).
    const guarded = await guardVersion(ctx, op, run.flowId, run.flowVersion, what);
    const result = await op.commit();
    if (!result.ok && versionGone(ctx, guarded, result.conflicts)) {
      throw new FlowVersionGoneError(what, run.flowId, run.flowVersion);
    }
    return result.ok ? { runId: run.id, existing: false, run } : RETRY;
  }).then(async (result) => {
    if (!result.existing && queue.runAt <= now) await wake(ctx);
    return result;
  });
}

/** Throw when `limit` is not a flow's `queue:` limit as the queue keeps it. */
function checkLimit(limit: NonNullable<QueueInfo["limit"]>, what: string): void {
  if (typeof limit !== "object" || limit === null || typeof limit.partition !== "string") {
    throw new TypeError(`${what}: limit must be { partition: string, concurrency?, rate? }`);
  }
  const { concurrency, rate } = limit;
  if (concurrency === undefined && rate === undefined) {
    throw new TypeError(`${what}: limit needs concurrency, rate or both`);
  }
  if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1)) {
    throw new RangeError(
      `${what}: limit.concurrency must be a whole number >= 1 (got ${concurrency})`,
    );
  }
  if (rate === undefined) return;
  if (
    typeof rate !== "object" || rate === null || !Number.isInteger(rate.limit) ||
    rate.limit < 1 || rate.limit > MAX_RATE_LIMIT || !Number.isFinite(rate.perMs) ||
    rate.perMs < 1
  ) {
    throw new RangeError(
      `${what}: limit.rate must be { limit: a whole number from 1 to ${MAX_RATE_LIMIT}, perMs: ms >= 1 } (got ${
        JSON.stringify(rate)
      })`,
    );
  }
}

/**
 * What a claim is made with.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ClaimOptions, openStore, Records } from "@flowstate/core/records";
 *
 * await using store = await openStore({ plugin: "memory" });
 * const records = new Records(store);
 * await records.enqueueRun({ flowId: "mail", flowVersion: "v1", inputs: {}, flowPath: "/app/mail.flow.yaml" });
 * const onlyReports: ClaimOptions = { worker: "w1", leaseMs: 30_000, flows: new Set(["report"]) };
 * assert.equal(await records.claimRun(onlyReports), null); // a mail run is not for this worker
 * const claimed = await records.claimRun({ worker: "w2", leaseMs: 30_000 });
 * assert.equal(claimed?.queue?.claim?.worker, "w2");
 * ```
 */
export interface ClaimOptions {
  /** The worker's id, written into the claim. */
  worker: string;
  /** How long the claim lives without a heartbeat, in ms. */
  leaseMs: number;
  /** Only runs of these flows (default: any). */
  flows?: ReadonlySet<string>;
  /**
   * Start from a random one of the oldest due runs of the highest priority
   * instead of the oldest (default `false`): for a worker running several
   * runs at once, among others, so that claimers do not all race for one run.
   */
  spread?: boolean;
  /**
   * First make the delayed runs that are due ready (default `true`): one
   * list of the delayed index. A worker claiming several runs in a row
   * passes `false` for all but one claim in a while (delayed runs then
   * start by its next promoting claim).
   */
  promote?: boolean;
  /**
   * Told when the next delayed run this claim met comes due (ms since the
   * epoch, the records' clock), so that a worker can sleep until then rather
   * than a whole poll interval: the first not yet due in the delayed index,
   * if it is due within `withinMs` (the promoting list reads that far ahead:
   * no read of its own), and the earliest of the runs this claim put off for
   * their rate limit. Not told when it met none.
   */
  nextDue?: { withinMs: number; onDue(at: number): void };
}

/**
 * Make the delayed runs that are due ready (a few at a time; losing a race is
 * fine), and tell `nextDue` when the first one after them comes due, if it
 * is within its `withinMs`.
 */
async function promoteDue(
  ctx: RecordsContext,
  keys: QueueKeys,
  now: number,
  nextDue: ClaimOptions["nextDue"],
): Promise<void> {
  const prefix = keys.delayed();
  const ahead = nextDue === undefined || !(nextDue.withinMs > 0)
    ? 0
    : Math.min(nextDue.withinMs, MAX_LOOK_AHEAD_MS);
  const due = ctx.store.list<QueueEntry>({
    prefix,
    end: [...prefix, timePart(now + ahead + 1)],
    limit: PROMOTE_BATCH,
  });
  for await (const e of due) {
    const [runAt, priority] = e.key.slice(prefix.length);
    if (Number(runAt) > now) {
      nextDue?.onDue(Number(runAt));
      break;
    }
    const ready = [...keys.ready(), priority, runAt, e.value.id];
    await ctx.store.atomic().check(e.key, e.version).delete(e.key).set(ready, e.value).commit();
  }
}

/**
 * `Records.claimRun()`: take the next due run (highest priority first, then
 * earliest `runAt`, then oldest) and mark it `running` under this worker's
 * claim; `null` when none is due (or all due ones are of other flows or at
 * their flow's limit). On a store that claims natively (`Store.claimFirst`:
 * PostgreSQL's `FOR UPDATE SKIP LOCKED`), concurrent claimers are handed
 * distinct ready entries; on any other, they compare-and-set.
 */
export async function claimRun(
  ctx: RecordsContext,
  options: ClaimOptions,
): Promise<RunRecord | null> {
  return (await claimRuns(ctx, options, 1))[0] ?? null;
}

/**
 * `Records.claimRuns()`: up to `max` runs, as `claimRun` takes them, on a
 * store that claims natively, in one transaction (one statement to find and
 * read them, one commit); elsewhere at most one (claims there are a
 * compare-and-set each: the caller starts a run before it claims the next).
 * Fewer (or none) when fewer are due.
 */
export async function claimRuns(
  ctx: RecordsContext,
  options: ClaimOptions,
  max: number,
): Promise<RunRecord[]> {
  if (!Number.isInteger(max) || max < 1) {
    throw new RangeError(`Cannot claim runs: max must be a whole number >= 1 (got ${max})`);
  }
  const { store, clock } = ctx;
  const keys = new QueueKeys(ctx);
  const now = clock.now();
  if (options.promote !== false) await promoteDue(ctx, keys, now, options.nextDue);
  if (typeof store.claimFirst === "function") {
    return await claimNatively(ctx, keys, options, now, max);
  }
  // One at a time: each claim is a compare-and-set of its own, and a worker starts (and
  // heartbeats) a run before it claims the next, so its lease never waits on other claims.
  const run = await claimByCompareAndSet(ctx, keys, options, now);
  return run === null ? [] : [run];
}

/**
 * Passes over the ready index a claim makes at most while each pass only
 * moved runs waiting for their rate limit out of it (see `deferWaiting`).
 */
const MAX_CLAIM_PASSES = 10;

/** One claim on a store without `claimFirst`: candidates listed, then compare-and-set. */
async function claimByCompareAndSet(
  ctx: RecordsContext,
  keys: QueueKeys,
  options: ClaimOptions,
  now: number,
): Promise<RunRecord | null> {
  const { store } = ctx;
  for (let pass = 0; pass < MAX_CLAIM_PASSES; pass++) {
    const candidates: Entry<QueueEntry>[] = [];
    for await (const e of store.list<QueueEntry>({ prefix: keys.ready(), limit: CLAIM_SCAN })) {
      if (options.flows === undefined || options.flows.has(e.value.flowId)) candidates.push(e);
    }
    // In order; after a lost race (another worker took that run), skip a few
    // candidates at random, so that many workers claiming at once spread over
    // the head of the queue instead of all racing for the same next run.
    const order = claimOrder(candidates, options.spread === true);
    const waits: RateWait[] = [];
    const blocked: Blocked[] = [];
    for (let n = 0; n < order.length; n++) {
      const candidate = candidates[order[n]];
      const op = store.atomic();
      const get = <T>(k: Key) => store.get<T>(k);
      const claimed = await prepareClaim(ctx, keys, candidate, op, options, now, get);
      if (claimed === null) continue;
      if (isRateWait(claimed)) {
        waits.push(claimed);
        continue;
      }
      if (isBlocked(claimed)) {
        blocked.push(claimed);
        continue;
      }
      const result = await op.commit();
      if (claimed === STRAY) continue;
      if (result.ok) {
        knownEntries(ctx).set(ctx.layout.run(claimed.id), claimed, result.version);
        await deferWaiting(ctx, keys, waits, now, options.nextDue);
        await parkBlocked(ctx, keys, blocked);
        return claimed;
      }
      if (options.spread === true) n += Math.floor(Math.random() * 4);
    }
    // Runs waiting for their rate limit or for a slot of their partition leave the ready
    // index: the runs behind them are looked at on the next pass, not held up behind them.
    const moved = await deferWaiting(ctx, keys, waits, now, options.nextDue) +
      await parkBlocked(ctx, keys, blocked);
    if (moved === 0) return null;
  }
  return null;
}

/** Lost claims (a run changed between its read and the claim's commit) retried natively. */
const NATIVE_TRIES = 20;

/** `claimRun` on a store with `claimFirst`: each claimer is offered ready entries no other holds. */
async function claimNatively(
  ctx: RecordsContext,
  keys: QueueKeys,
  options: ClaimOptions,
  now: number,
  max: number,
): Promise<RunRecord[]> {
  let passes = 0;
  for (let n = 0; n < NATIVE_TRIES; n++) {
    // By entry key: a driver that tries its transaction again offers the entries again.
    const prepared = new Map<string, RunRecord | typeof STRAY>();
    const waits = new Map<string, RateWait>();
    const blocked = new Map<string, Blocked>();
    // The limited partitions' slots and rate windows as the claims of this transaction leave
    // them (after a driver's retry, possibly as a failed try left them: its check then
    // fails, and the next try here starts afresh).
    const batch: Batch = { slots: new Map(), windows: new Map() };
    const taken = await ctx.store.claimFirst!<QueueEntry>(
      keys.ready(),
      async (candidate, op, get) => {
        if (options.flows !== undefined && !options.flows.has(candidate.value.flowId)) return false;
        const run = await prepareClaim(ctx, keys, candidate, op, options, now, get, batch);
        const id = candidate.key.join("\u0000");
        if (run !== null && isRateWait(run)) {
          // Passed over (it stays held until the claim's end), and moved out of the ready
          // index after it.
          waits.set(id, run);
          return false;
        }
        waits.delete(id);
        if (run !== null && isBlocked(run)) {
          // Likewise: parked after the claim's end.
          blocked.set(id, run);
          return false;
        }
        blocked.delete(id);
        if (run !== null) prepared.set(id, run);
        return run !== null;
      },
      // The run's record comes with its entry (one statement, not a read of its own).
      { limit: CLAIM_SCAN, companion: { prefix: ctx.layout.run(), field: "id" }, max },
    );
    // The waits were read with this claim's own claims counted: moved out only if it
    // committed (else the next try reads again).
    const deferred = taken === null || taken.result.ok
      ? await deferWaiting(ctx, keys, [...waits.values()], now, options.nextDue)
      : 0;
    // Parking reads the partition's slots afresh (whether or not this claim committed).
    const parked = await parkBlocked(ctx, keys, [...blocked.values()]);
    if (taken === null) {
      if (deferred + parked > 0 && ++passes < MAX_CLAIM_PASSES) continue;
      return [];
    }
    const claimed: RunRecord[] = [];
    for (const key of taken.keys) {
      const run = prepared.get(key.join("\u0000"));
      if (run !== undefined && run !== STRAY) claimed.push(run);
    }
    // Only stray entries dropped, or a check lost to a writer of a run: again.
    if (taken.result.ok && claimed.length > 0) {
      const known = knownEntries(ctx);
      for (const run of claimed) known.set(ctx.layout.run(run.id), run, taken.result.version);
      return claimed;
    }
  }
  return [];
}

/** Entries of a claim by joined key: the version read, and the value its claims leave. */
type Pending<V> = Map<string, { version: string | null; value: V }>;

/**
 * What earlier claims of the same commit took (several runs claimed at once):
 * the limited partitions' running runs, and the rate-limited ones' claim times.
 */
interface Batch {
  slots: Pending<string[]>;
  windows: Pending<number[]>;
}

/** The entry at `key` as earlier claims of the same commit left it, else as stored. */
async function readInBatch<V>(
  pending: Pending<V> | undefined,
  key: Key,
  get: <T>(key: Key) => Promise<Entry<T> | null>,
  valueOf: (stored: unknown) => V,
): Promise<{ version: string | null; value: V }> {
  const known = pending?.get(key.join("\u0000"));
  if (known !== undefined) return known;
  const entry = await get<unknown>(key);
  return { version: entry?.version ?? null, value: valueOf(entry?.value) };
}

/** What `prepareClaim` resolves for a stray entry it dropped (its run is not queued). */
const STRAY: unique symbol = Symbol("stray");

/**
 * A due run that may not start now because its partition's rate window is
 * full: its ready entry, its record, and the window as read.
 */
interface RateWait {
  readonly rateWait: true;
  candidate: Entry<QueueEntry>;
  stored: Entry<StoredRun>;
  /** The window's key, joined: waits of one partition share it. */
  window: string;
  rate: NonNullable<NonNullable<QueueInfo["limit"]>["rate"]>;
  times: number[];
}

function isRateWait(value: RunRecord | typeof STRAY | RateWait | Blocked): value is RateWait {
  return typeof value === "object" && "rateWait" in value;
}

/**
 * A due run that may not start now because its partition is at its
 * concurrency limit: its ready entry and its record (see `parkBlocked`).
 */
interface Blocked {
  readonly blocked: true;
  candidate: Entry<QueueEntry>;
  stored: Entry<StoredRun>;
}

function isBlocked(value: RunRecord | typeof STRAY | RateWait | Blocked): value is Blocked {
  return typeof value === "object" && "blocked" in value;
}

/**
 * Add to `op` the claim of `candidate`'s run by this worker, and resolve
 * the record the claim writes; `STRAY` when the entry's run is gone or not
 * queued (`op` drops the entry); `null` (nothing added) when the run may not
 * start yet (not due); a {@linkcode Blocked} (nothing added) when its
 * partition is at its concurrency limit; a {@linkcode RateWait} (nothing
 * added) when its rate window is full.
 */
async function prepareClaim(
  ctx: RecordsContext,
  keys: QueueKeys,
  candidate: Entry<QueueEntry>,
  op: AtomicOperation,
  options: ClaimOptions,
  now: number,
  /** Reads (a native claim's: inside its transaction). */
  get: <T>(key: Key) => Promise<Entry<T> | null>,
  /** Slots and windows taken by earlier claims of the same commit (several runs claimed at once). */
  batch?: Batch,
): Promise<RunRecord | typeof STRAY | RateWait | Blocked | null> {
  const runKey = ctx.layout.run(candidate.value.id);
  const stored = await get<StoredRun>(runKey);
  if (stored === null || stored.value.status !== "queued" || stored.value.queue === undefined) {
    // A stray entry (its run was cancelled or deleted meanwhile): drop it.
    op.check(candidate.key, candidate.version).delete(candidate.key);
    return STRAY;
  }
  const run = withoutEvents(stored.value);
  const q = run.queue!;
  if (q.runAt > now) return null; // never early (a clock behind the one that made it ready)
  let slot: { key: Key; version: string | null; runs: string[] } | undefined;
  if (q.limit?.concurrency !== undefined) {
    const key = keys.active(q.limit, run.flowId);
    const { version, value: runs } = await readInBatch(
      batch?.slots,
      key,
      get,
      (v) => (v as ActiveRuns | undefined)?.runs ?? [],
    );
    if (runs.length >= q.limit.concurrency) return { blocked: true, candidate, stored };
    slot = { key, version, runs };
  }
  let window: { key: Key; version: string | null; times: number[] } | undefined;
  if (q.limit?.rate !== undefined) {
    const rate = q.limit.rate;
    const key = keys.rate(q.limit, run.flowId);
    const { version, value: times } = await readInBatch(batch?.windows, key, get, (v) => {
      const at = (v as RateLog | undefined)?.at;
      return Array.isArray(at) ? at : [];
    });
    const id = key.join("\u0000");
    if (!rateAllows(times, rate, now)) {
      return { rateWait: true, candidate, stored, window: id, rate, times };
    }
    window = { key, version, times: withClaim(times, rate, now) };
    batch?.windows.set(id, { version, value: window.times });
  }
  op.check(candidate.key, candidate.version)
    .check(runKey, stored.version)
    .delete(candidate.key);
  if (slot !== undefined) {
    // The same version checked by every claim of the commit, the last one's runs written.
    const runs = [...slot.runs, run.id];
    op.check(slot.key, slot.version).set(slot.key, { runs });
    batch?.slots.set(slot.key.join("\u0000"), { version: slot.version, value: runs });
  }
  if (window !== undefined) {
    // Likewise: the window as read checked, the last claim's times written. It lives as long
    // as its newest time counts (and a little more), then goes by itself.
    const log: RateLog = { at: window.times };
    op.check(window.key, window.version).set(window.key, log, {
      expireIn: q.limit!.rate!.perMs + RATE_KEEP_MS,
    });
  }
  const claimed: RunRecord = {
    ...run,
    status: "running",
    heartbeatAt: now,
    error: null,
    queue: {
      ...withoutWaiting(q),
      attempt: q.attempt + 1,
      claim: { worker: options.worker, at: now, leaseMs: options.leaseMs },
    },
  };
  op.set(runKey, claimed);
  moveIndexes(ctx, op, run, claimed);
  op.set(keys.claimed(run.id), { worker: options.worker, at: now, leaseMs: options.leaseMs });
  return claimed;
}

/**
 * Move due runs whose rate window is full out of the ready index, to the
 * delayed one at the earliest time each could start (`queue.runAt`, with
 * `queue.waiting: "rate"`): the waits of one partition, in the order they
 * were met, at the window's next free times one after the other, so that
 * about as many come due as the window has room for. They no longer hold up
 * the runs behind them, and no worker looks at them again before then. One
 * commit for all (each checked at the versions read); if another writer
 * changed one meanwhile, one commit each (those changed are left as they
 * are). Resolves how many moved; never throws.
 */
async function deferWaiting(
  ctx: RecordsContext,
  keys: QueueKeys,
  waits: readonly RateWait[],
  now: number,
  nextDue?: ClaimOptions["nextDue"],
): Promise<number> {
  if (waits.length === 0) return 0;
  const byWindow = new Map<string, RateWait[]>();
  for (const w of waits) {
    const list = byWindow.get(w.window);
    if (list === undefined) byWindow.set(w.window, [w]);
    else list.push(w);
  }
  const moves: { wait: RateWait; at: number }[] = [];
  for (const list of byWindow.values()) {
    // The window as the last of them read it (within one claim, the latest).
    const last = list[list.length - 1];
    const slots = nextSlots(last.times, last.rate, now, list.length);
    list.forEach((wait, i) => moves.push({ wait, at: slots[i] }));
  }
  // Due then (those a conflict leaves in the ready index are met again, sooner).
  nextDue?.onDue(
    Math.min(...moves.map(({ wait, at }) => Math.max(wait.stored.value.queue!.runAt, at))),
  );
  const add = (op: AtomicOperation, { wait, at }: { wait: RateWait; at: number }) => {
    const q = wait.stored.value.queue!;
    const runKey = ctx.layout.run(wait.stored.value.id);
    const record: StoredRun = {
      ...wait.stored.value,
      queue: { ...q, runAt: Math.max(q.runAt, at), waiting: "rate" },
    };
    op.check(wait.candidate.key, wait.candidate.version)
      .check(runKey, wait.stored.version)
      .delete(wait.candidate.key)
      .set(keys.delayed(record.queue!, record.id), wait.candidate.value)
      .set(runKey, record);
    knownEntries(ctx).forget(runKey);
  };
  // Best effort: a run left in the ready index is met again by the next claim. A store error
  // here must not lose what the claim took (its runs would stay claimed and never start).
  return await moveAllOrEach(ctx, moves, (op, list) => {
    for (const move of list) add(op, move);
    return list.length;
  });
}

/**
 * Best-effort moves of queue entries: `add` puts the moves of `items` into an
 * operation and says how many it put; they are committed at once, and after
 * a conflict one by one (those changed meanwhile stay as they are, for the
 * next claim). Resolves how many moved; never throws.
 */
async function moveAllOrEach<T>(
  ctx: RecordsContext,
  items: readonly T[],
  add: (op: AtomicOperation, items: readonly T[]) => number | Promise<number>,
): Promise<number> {
  const commit = (op: AtomicOperation) =>
    op.commit().then((r) => r.ok ? "ok" : "conflict", () => "failed" as const);
  try {
    const op = ctx.store.atomic();
    const all = await add(op, items);
    if (all === 0) return 0;
    const result = await commit(op);
    if (result !== "conflict") return result === "ok" ? all : 0;
    let moved = 0;
    for (const item of items) {
      const one = ctx.store.atomic();
      if (await add(one, [item]) === 0) continue;
      const r = await commit(one);
      if (r === "failed") break;
      if (r === "ok") moved++;
    }
    return moved;
  } catch {
    return 0;
  }
}

/**
 * Move due runs whose partition is at its concurrency limit out of the ready
 * index, to their partition's parked list (the same key order), so that they
 * no longer hold up the runs of other partitions behind them; the commit that
 * frees one of the partition's slots moves the oldest back (`releaseSlot`).
 * The partition's running runs are read afresh: a run is parked only while
 * they still fill it, and the commit rewrites that entry (a new version), so a
 * commit freeing a slot meanwhile, which read the parked list before, cannot
 * also commit: one of the two goes first, the other tries again on what it
 * left. Its record gets `queue.waiting: "slot"` in the same commit (until its
 * claim). One commit for all; after a conflict, one commit each (those changed
 * meanwhile stay as they are, for the next claim). Resolves how many moved;
 * never throws (a run left in the ready index is met again by the next claim).
 */
async function parkBlocked(
  ctx: RecordsContext,
  keys: QueueKeys,
  blocked: readonly Blocked[],
): Promise<number> {
  if (blocked.length === 0) return 0;
  const add = async (op: AtomicOperation, list: readonly Blocked[]): Promise<number> => {
    const read = new Map<string, Entry<ActiveRuns> | null>();
    const rewritten = new Set<string>();
    let n = 0;
    for (const b of list) {
      const run = b.stored.value;
      const limit = run.queue!.limit!;
      const activeKey = keys.active(limit, run.flowId);
      const id = activeKey.join("\u0000");
      if (!read.has(id)) read.set(id, await ctx.store.get<ActiveRuns>(activeKey));
      const active = read.get(id)!;
      if (active === null || active.value.runs.length < limit.concurrency!) continue;
      const parked = [...keys.parked(limit, run.flowId), ...b.candidate.key.slice(-3)];
      const runKey = ctx.layout.run(run.id);
      op.check(b.candidate.key, b.candidate.version)
        .check(runKey, b.stored.version)
        .delete(b.candidate.key)
        .set(parked, b.candidate.value);
      if (run.queue!.waiting !== "slot") {
        // Its record says why it does not start (`runs show`, the API, the inspector) until
        // its claim: one more write in this commit, none in the one that frees the slot.
        op.set(runKey, { ...run, queue: { ...run.queue!, waiting: "slot" } });
        knownEntries(ctx).forget(runKey);
      }
      if (!rewritten.has(id)) op.check(activeKey, active.version).set(activeKey, active.value);
      rewritten.add(id);
      n++;
    }
    return n;
  };
  return await moveAllOrEach(ctx, blocked, add);
}

/**
 * Add to `op` the move of the oldest parked run of a partition (but
 * `except`) back to the ready index: a slot of that partition frees (or a
 * ready run of it that would have taken one leaves) in the same commit.
 */
async function unparkOldest(
  ctx: RecordsContext,
  keys: QueueKeys,
  op: AtomicOperation,
  limit: NonNullable<QueueInfo["limit"]>,
  flowId: string,
  except?: string,
): Promise<void> {
  for await (
    const e of ctx.store.list<QueueEntry>({ prefix: keys.parked(limit, flowId), limit: 2 })
  ) {
    if (e.value.id === except) continue;
    op.check(e.key, e.version).delete(e.key).set([...keys.ready(), ...e.key.slice(-3)], e.value);
    return;
  }
}

/** Candidates of the same priority a spread claim picks its first try among. */
const SPREAD = 16;

/**
 * The order to try claim candidates in: as listed, or, with `spread`, from a
 * random one of the oldest {@linkcode SPREAD} of the highest priority (then
 * the rest of that priority, then the others, in order), so that many
 * claimers at once do not all race for the same run.
 */
function claimOrder(candidates: readonly Entry<QueueEntry>[], spread: boolean): number[] {
  const all = candidates.map((_, i) => i);
  if (!spread || candidates.length < 2) return all;
  const priorityOf = (e: Entry<QueueEntry>) => e.key[e.key.length - 3];
  const top = priorityOf(candidates[0]);
  let same = candidates.findIndex((c) => priorityOf(c) !== top);
  if (same === -1) same = candidates.length;
  const start = Math.floor(Math.random() * Math.min(same, SPREAD));
  return [...all.slice(start, same), ...all.slice(0, start), ...all.slice(same)];
}

/**
 * Release a limited partition's slot held by `runId`, in `op`, and move the
 * partition's oldest parked run back to the ready index in the same commit.
 */
async function releaseSlot(
  ctx: RecordsContext,
  op: AtomicOperation,
  run: RunRecord,
): Promise<void> {
  const limit = run.queue?.limit;
  // Only a concurrency limit holds a slot (a rate's claim times stay until they age out).
  if (limit === undefined || limit.concurrency === undefined) return;
  const keys = new QueueKeys(ctx);
  const activeKey = keys.active(limit, run.flowId);
  // Read before the parked list: a run parked after this read changes this entry, so the
  // commit then fails its check (and is tried again) rather than leave that run parked.
  const active = await ctx.store.get<ActiveRuns>(activeKey);
  if (active === null) {
    op.check(activeKey, null);
  } else {
    const runs = active.value.runs.filter((id) => id !== run.id);
    op.check(activeKey, active.version);
    if (runs.length === 0) op.delete(activeKey);
    else op.set(activeKey, { runs });
  }
  await unparkOldest(ctx, keys, op, limit, run.flowId);
}

/**
 * Why a run of `status` (queued, running or succeeded) cannot be retried.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { retryRefusal } from "./_queue.ts";
 * assert.match(retryRefusal("r1", "succeeded"), /: it succeeded; only a failed/);
 * ```
 */
export function retryRefusal(runId: string, status: RunRecord["status"]): string {
  return `Cannot retry run ${JSON.stringify(runId)}: ${
    status === "succeeded" ? "it succeeded" : `it is ${status}`
  }; only a failed, cancelled or timed-out run can be retried`;
}

/**
 * Why run `runId`, whose inputs held a secret's value, cannot be retried: its
 * record keeps them masked (`***`, `RunRecord.inputsMasked`), and a retry runs
 * with its record's inputs. `runs resume` refuses it the same way.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { maskedInputsRefusal } from "./_queue.ts";
 * assert.match(maskedInputsRefusal("r1"), /recorded masked/);
 * ```
 */
export function maskedInputsRefusal(runId: string): string {
  return `Cannot retry run ${JSON.stringify(runId)}: its inputs held a secret's value and were ` +
    `recorded masked (***), so a retry would run with *** in their place; run the flow again ` +
    `with its inputs (flowstate run <flow> --input …, or flowstate enqueue)`;
}

/** The wait before the next attempt after `failures` failed ones. */
export function backoffMs(backoff: QueueBackoff | undefined, failures: number): number {
  if (backoff === undefined) return 0;
  const wait = backoff.delay * backoff.factor ** Math.max(0, failures - 1);
  return Math.round(backoff.max === undefined ? wait : Math.min(wait, backoff.max));
}

/**
 * A requeued run's node outcomes: the ended attempt's statuses, attempts and
 * errors, without its outputs (cleared as the run's own `outputs` are). The
 * record stays within the store's value limit when the ended attempt's did
 * only in its compact form (see `_node_outcomes.ts`): a requeued run is
 * stored in the first form, as a running one is.
 */
function queuedNodes(nodes: RunRecord["nodes"]): RunRecord["nodes"] {
  // A damaged record's outcomes are left as they are (the store's check names them).
  if (typeof nodes !== "object" || nodes === null || Array.isArray(nodes)) return nodes;
  const out: RunRecord["nodes"] = {};
  for (const id of Object.keys(nodes)) {
    const outcome = nodes[id];
    if (typeof outcome !== "object" || outcome === null || !("output" in outcome)) {
      setOwn(out, id, outcome);
      continue;
    }
    const { output: _ended, ...rest } = outcome;
    setOwn(out, id, rest);
  }
  return out;
}

/** Attempts that count against `maxAttempts`: the ones that ran to an end (not lost). */
function failures(attempts: readonly QueueAttempt[]): number {
  return attempts.filter((a) => a.outcome !== "lost" && a.outcome !== "succeeded").length;
}

/** Whether `stored` is still the claim `claimed` made (same attempt, same worker). */
function stillClaimed(stored: RunRecord, claimed: RunRecord): boolean {
  return stored.status === "running" &&
    stored.queue?.attempt === claimed.queue?.attempt &&
    stored.queue?.claim?.worker === claimed.queue?.claim?.worker;
}

/**
 * `Records.finishClaimedRun()`: record how an attempt of a claimed run ended,
 * if the claim is still this worker's (else resolve `false`: the lease lapsed
 * and the run was taken back). A failed (or timed-out) attempt with attempts
 * left puts the run back in the queue after its backoff; anything else is
 * the run's end, recorded as `finishRun` does, with the claim released in the
 * same commit.
 */
export async function finishClaimedRun(
  ctx: RecordsContext,
  tails: EventTails,
  record: RunRecord,
  events: RunEvent[],
  options: { release?: boolean; releaseAfterMs?: number; releaseReason?: string } = {},
): Promise<boolean> {
  const what = `Cannot finish claimed run ${JSON.stringify(record?.id)}`;
  checkRun(record, what);
  const q = record.queue;
  if (q === undefined || q.claim === undefined) {
    throw new TypeError(`${what}: it has no claim (it was not taken from the queue)`);
  }
  const releaseAfterMs = options.releaseAfterMs ?? 0;
  if (!Number.isFinite(releaseAfterMs) || releaseAfterMs < 0) {
    throw new RangeError(
      `${what}: releaseAfterMs must be a number of ms >= 0 (got ${options.releaseAfterMs})`,
    );
  }
  const now = ctx.clock.now();
  const endedAt = record.endedAt ?? now;
  const attempt: QueueAttempt = {
    attempt: q.attempt,
    worker: q.claim.worker,
    startedAt: q.claim.at,
    endedAt,
    outcome: options.release ? "lost" : record.status as QueueAttempt["outcome"],
  };
  if (options.release) {
    attempt.error = RELEASED_PREFIX + (options.releaseReason ?? `worker ${q.claim.worker} stopped`);
  } else if (record.error) {
    // The node too: a requeued run's own error is cleared, this is where it stays.
    attempt.error = record.error.node === undefined
      ? record.error.message
      : `node "${record.error.node}": ${record.error.message}`;
  }
  const attempts = [...q.attempts, attempt];
  const { claim: _claim, ...rest } = q;
  const claimedAt = q.claim.at;
  const retry = options.release === true ||
    ((record.status === "failed" || record.status === "timed-out") &&
      failures(attempts) < q.maxAttempts);
  const keys = new QueueKeys(ctx);
  if (!retry) {
    if (q.limit?.concurrency !== undefined) {
      // A slot of a limited flow frees up: a run waiting for it may go.
      const ok = await finishClaimedEnd();
      if (ok) await wake(ctx);
      return ok;
    }
    return await finishClaimedEnd();
  }
  async function finishClaimedEnd(end: Partial<RunRecord> = {}): Promise<boolean> {
    // A first attempt has no events stored before its own appends (which this `tails` knows):
    // no list of its chunks before the commit.
    if (q!.attempt === 1 && q!.attempts.length === 0) tails.assumeEmpty(record.id);
    // Its duration is its last attempt's: the time it waited in the queue is not the run's.
    const final: RunRecord = {
      ...record,
      ...end,
      endedAt,
      durationMs: Math.max(0, endedAt - claimedAt),
      queue: { ...rest, attempts },
    };
    delete final.heartbeatAt;
    return await finishRun(
      ctx,
      tails,
      final,
      events,
      (stored) => stillClaimed(stored, record),
      async (op, stored) => {
        op.delete(keys.claimed(record.id));
        if (stored !== null) await releaseSlot(ctx, op, stored);
      },
    );
  }
  // A run released by a process exiting at once is due only once that process is gone.
  const runAt = options.release
    ? now + Math.floor(releaseAfterMs)
    : endedAt + backoffMs(q.backoff, failures(attempts));
  const runKey = ctx.layout.run(record.id);
  const cancelKey = ctx.layout.cancel(record.id);
  const written = await withRetry(ctx.retry, what, async () => {
    const stored = await ctx.store.get<StoredRun>(runKey);
    if (stored === null || !stillClaimed(stored.value, record)) return false;
    // Cancelled meanwhile (its worker had not acted on the request yet): it is not run again.
    if (await ctx.store.get(cancelKey) !== null) return "cancelled" as const;
    const requeued: RunRecord = {
      ...record,
      status: "queued",
      endedAt: null,
      durationMs: null,
      outputs: null,
      nodes: queuedNodes(record.nodes),
      // A queued run has no error: the failed attempt's is in its `attempts` entry.
      error: null,
      queue: { ...rest, runAt, attempts },
    };
    delete requeued.heartbeatAt;
    const op = ctx.store.atomic().check(runKey, stored.version).set(runKey, requeued);
    moveIndexes(ctx, op, stored.value, requeued);
    op.delete(keys.claimed(record.id)).check(cancelKey, null);
    await releaseSlot(ctx, op, stored.value);
    addDueEntry(keys, op, requeued, ctx.clock.now());
    if (events.length > 0) {
      const tail = await tails.read(ctx, record.id);
      const chunk = ctx.layout.chunk(record.id, tail.chunk);
      op.check(chunk, null).set(chunk, writeChunk(ctx.eventFormat, tail.next, events, what));
    }
    // The version it ran, if its flow changed while it was queued, must still be there.
    const guarded = stored.value.flowVersion !== record.flowVersion
      ? await guardVersion(ctx, op, record.flowId, record.flowVersion, what)
      : null;
    const result = await op.commit();
    tails.forget(record.id);
    if (!result.ok && versionGone(ctx, guarded, result.conflicts)) {
      throw new FlowVersionGoneError(what, record.flowId, record.flowVersion);
    }
    return result.ok ? true : RETRY;
  });
  if (written === "cancelled") {
    const why = attempt.error === undefined ? "" : `; its attempt: ${attempt.error}`;
    const ok = await finishClaimedEnd({
      status: "cancelled",
      outputs: null,
      error: { message: `cancelled before it was queued again${why}` },
    });
    if (ok && q.limit?.concurrency !== undefined) await wake(ctx);
    return ok;
  }
  if (written && runAt <= ctx.clock.now()) await wake(ctx);
  return written;
}

/**
 * `Records.reclaimLost()`: put back in the queue every claimed run whose
 * lease lapsed (no heartbeat for longer than its claim's `leaseMs`), with the
 * attempt recorded as `lost`; a run whose worker stopped answering {@linkcode MAX_LOST_ATTEMPTS} times
 * is recorded `failed` instead, and one with a cancel request (made while its
 * worker was still heard from, or since) `cancelled`: it never runs again.
 * Resolves the ids taken back.
 */
export async function reclaimLost(
  ctx: RecordsContext,
  tails: EventTails,
  ended?: RunRecord[],
): Promise<string[]> {
  const keys = new QueueKeys(ctx);
  const claims: Entry<ClaimEntry>[] = [];
  const listedAt = ctx.clock.now();
  for await (const e of ctx.store.list<ClaimEntry>({ prefix: keys.claimed() })) {
    // A claim younger than its lease cannot have lapsed (its heartbeats only make it
    // later): its run is not read. (A claim entry without its lease, from an older
    // version, is read.)
    if (e.value.leaseMs !== undefined && listedAt - e.value.at <= e.value.leaseMs) continue;
    claims.push(e);
  }
  if (claims.length === 0) return [];
  const ids = claims.map((e) => e.key[e.key.length - 1]);
  const runs = await ctx.store.getMany<StoredRun>(ids.map((id) => ctx.layout.run(id)));
  const cancels = await ctx.store.getMany(ids.map((id) => ctx.layout.cancel(id)));
  const now = ctx.clock.now();
  const taken: string[] = [];
  for (let i = 0; i < ids.length; i++) {
    const entry = runs[i];
    const claimKey = claims[i].key;
    if (
      entry === null || entry.value.status !== "running" || entry.value.queue?.claim === undefined
    ) {
      await ctx.store.atomic().check(claimKey, claims[i].version).delete(claimKey).commit();
      continue;
    }
    const run = withoutEvents(entry.value);
    const q = run.queue!;
    const claim = q.claim!;
    const lastSeen = run.heartbeatAt ?? claim.at;
    if (now - lastSeen <= claim.leaseMs) continue;
    // The attempt ended when its worker was last heard from, not when its lease was seen lapsed.
    const lostAt = Math.max(claim.at, lastSeen);
    const lost: QueueAttempt = {
      attempt: q.attempt,
      worker: claim.worker,
      startedAt: claim.at,
      endedAt: lostAt,
      outcome: "lost",
      error: `no heartbeat from worker ${claim.worker} since ${
        new Date(lastSeen).toISOString()
      } (lease ${claim.leaseMs} ms lapsed)`,
    };
    const attempts = [...q.attempts, lost];
    const { claim: _c, ...rest } = q;
    const lostCount = crashLosses(attempts);
    const runKey = ctx.layout.run(run.id);
    const cancel = cancels[i];
    if (cancel !== null || lostCount >= MAX_LOST_ATTEMPTS) {
      // Cancelled while its worker ran it, then that worker was lost: the cancel stands (the
      // request would be dropped by a requeue, and the run run again).
      // Its end is not recorded: what its nodes' events said is kept, as for an abandoned run
      // (a node that succeeded did, its side effects happened), with the outputs kept beside them.
      const final: RunRecord = {
        ...run,
        nodes: { ...run.nodes, ...outcomesOfEvents(await getEventsWithOutputs(ctx, run.id)) },
        status: cancel !== null ? "cancelled" : "failed",
        endedAt: lostAt,
        // Its duration is its last attempt's, as for any claimed run's end.
        durationMs: Math.max(0, lostAt - claim.at),
        error: {
          message: cancel !== null
            ? `cancelled; its attempt was lost: ${lost.error}`
            : `lost ${lostCount} times (its worker stopped answering each time: does a node end ` +
              `the process, or run out of memory?): ${lost.error}`,
        },
        queue: { ...rest, attempts },
      };
      delete final.heartbeatAt;
      const ok = await finishRun(
        ctx,
        tails,
        final,
        [],
        (stored) => stillClaimed(stored, run) && stored.heartbeatAt === run.heartbeatAt,
        async (op, stored) => {
          op.delete(keys.claimed(run.id));
          if (stored !== null) await releaseSlot(ctx, op, stored);
        },
      ).catch((err) => {
        if (err instanceof ConflictError) return false;
        throw err;
      });
      if (ok) taken.push(run.id);
      if (ok) ended?.push(final);
      continue;
    }
    const requeued: RunRecord = {
      ...run,
      status: "queued",
      error: null,
      nodes: queuedNodes(run.nodes),
      queue: { ...rest, runAt: now, attempts },
    };
    delete requeued.heartbeatAt;
    // No cancel request was written meanwhile (it would be dropped): else the next look ends it.
    const op = ctx.store.atomic()
      .check(runKey, entry.version)
      .check(ctx.layout.cancel(run.id), null)
      .set(runKey, requeued)
      .delete(claimKey);
    moveIndexes(ctx, op, run, requeued);
    await releaseSlot(ctx, op, run);
    addDueEntry(keys, op, requeued, now);
    if ((await op.commit()).ok) taken.push(run.id);
  }
  if (taken.length > 0) await wake(ctx);
  return taken;
}

/**
 * `Records.cancelQueuedRun()`: record a `queued` run as `cancelled` without
 * it ever starting (its queue entry goes in the same commit). Resolves the
 * record as written, or `null` when the run is not queued (any more).
 */
export async function cancelQueuedRun(
  ctx: RecordsContext,
  tails: EventTails,
  runId: string,
): Promise<RunRecord | null> {
  assertRunId(runId, `Cannot cancel run ${JSON.stringify(runId)}`);
  const keys = new QueueKeys(ctx);
  const stored = await ctx.store.get<StoredRun>(ctx.layout.run(runId));
  if (stored === null || stored.value.status !== "queued") return null;
  const run = withoutEvents(stored.value);
  const now = ctx.clock.now();
  const record: RunRecord = {
    ...run,
    status: "cancelled",
    endedAt: now,
    // Its duration is its last attempt's, as for any queued run's end: the time it waited in
    // the queue is not the run's (a run due tomorrow, cancelled, did not take a day).
    durationMs: lastAttemptMs(run),
    error: { message: "cancelled while queued" },
  };
  // It waits for nothing any more.
  if (record.queue !== undefined) record.queue = withoutWaiting(record.queue);
  const ok = await finishRun(
    ctx,
    tails,
    record,
    [],
    (s) => s.status === "queued" && s.queue?.attempt === run.queue?.attempt,
    // The record as the commit checks it: a worker may have put it off meanwhile (its rate).
    async (op, stored) => {
      const queued = stored?.queue === undefined ? run : stored;
      deleteDueEntries(keys, op, queued);
      const q = queued.queue!;
      if (q.limit?.concurrency === undefined) return;
      // A run of a limited partition that was not parked would have taken a slot, and freed
      // it for the oldest parked one: that one goes now instead (else, with nothing of its
      // partition running, it would stay parked). Checked: parked or not, as read.
      const parkedKey = keys.parked(q.limit, queued.flowId, q, queued.id);
      const parked = await ctx.store.get(parkedKey);
      op.check(parkedKey, parked?.version ?? null);
      if (parked === null) await unparkOldest(ctx, keys, op, q.limit, queued.flowId, queued.id);
    },
  );
  return ok ? record : null;
}

/** `q` without `waiting` (a run that is not queued waits for nothing). */
function withoutWaiting(q: QueueInfo): QueueInfo {
  const { waiting: _waiting, ...rest } = q;
  return rest;
}

/** How long a run's last attempt took (0 when it never started): a queued run's duration at its end. */
function lastAttemptMs(run: RunRecord): number {
  const last = run.queue?.attempts.at(-1);
  return last === undefined ? 0 : Math.max(0, last.endedAt - last.startedAt);
}

/** The worker a retried run's first attempt names when the run was started directly, not queued. */
const DIRECT_WORKER = "a direct run (not queued)";

/**
 * `Records.requeueRun()`: put an ended run (failed, cancelled, timed out;
 * an abandoned one is failed) back in the queue for one more attempt on the
 * same run id, due now. A run that was never queued needs `flowPath`, the
 * flow file to run. Resolves the record as written.
 */
export async function requeueRun(
  ctx: RecordsContext,
  tails: EventTails,
  runId: string,
  options: { flowPath?: string } = {},
): Promise<RunRecord> {
  const what = `Cannot retry run ${JSON.stringify(runId)}`;
  assertRunId(runId, what);
  const keys = new QueueKeys(ctx);
  const runKey = ctx.layout.run(runId);
  return await withRetry(ctx.retry, what, async () => {
    const stored = await ctx.store.get<StoredRun>(runKey);
    if (stored === null) {
      throw new NotFoundError(`${what}: no such run`, { kind: "run", id: runId });
    }
    const run = withoutEvents(stored.value);
    if (run.status === "queued" || run.status === "running" || run.status === "succeeded") {
      throw new ConflictError(retryRefusal(runId, run.status));
    }
    if (run.inputsMasked === true) throw new ConflictError(maskedInputsRefusal(runId));
    const now = ctx.clock.now();
    // A run started directly (never queued) had one attempt of its own: it is listed as the
    // first, so the next is attempt 2 of 2 (not "2 of 1").
    const direct: QueueAttempt = {
      attempt: 1,
      worker: DIRECT_WORKER,
      startedAt: run.startedAt,
      endedAt: run.endedAt ?? now,
      outcome: run.status as QueueAttempt["outcome"],
    };
    if (run.error) direct.error = run.error.message;
    const previous: QueueInfo = run.queue ?? {
      flowPath: options.flowPath ?? "",
      enqueuedAt: run.startedAt,
      runAt: now,
      priority: 0,
      attempt: 1,
      maxAttempts: 1,
      attempts: [direct],
    };
    if (previous.flowPath === "") {
      throw new TypeError(`${what}: the flow file of "${run.flowId}" is not known`);
    }
    const requeued: RunRecord = {
      ...run,
      status: "queued",
      endedAt: null,
      durationMs: null,
      outputs: null,
      nodes: queuedNodes(run.nodes),
      // The error was the ended attempt's (kept in `attempts`, or "cancelled while queued"):
      // a queued run shows none.
      error: null,
      queue: {
        ...withoutWaiting(previous),
        runAt: now,
        // One more attempt than have failed so far.
        maxAttempts: failures(previous.attempts) + 1,
      },
    };
    const op = ctx.store.atomic().check(runKey, stored.version).set(runKey, requeued);
    moveIndexes(ctx, op, run, requeued);
    addDueEntry(keys, op, requeued, now);
    // The retry waits for new signals: its end cleared the run's, taken or not, unless Flowstate
    // 0.7 or before recorded that end (a 0.7 gc or worker of a mixed fleet, or after a rollback),
    // which leaves them: a signal its `wait` node took would be given again, an approval
    // approving the retry.
    op.clear(ctx.layout.signal(runId));
    if (previous.key !== undefined) {
      // The key is this run's again, unless another run took it meanwhile.
      const held = await ctx.store.get<{ runId: string }>(keys.dedupe(previous.key));
      const holder = held === null || held.value.runId === runId
        ? null
        : await ctx.store.get<StoredRun>(ctx.layout.run(held.value.runId));
      const taken = holder !== null && holdsKey(holder.value.status);
      if (!taken) {
        op.check(keys.dedupe(previous.key), held?.version ?? null)
          .set(keys.dedupe(previous.key), { runId });
      }
    }
    // Inline events go back to a chunk, so the next attempt's events follow them.
    const inline = stored.value[EVENTS_FIELD];
    if (Array.isArray(inline) && inline.length > 0) {
      op.check(ctx.layout.chunk(runId, 0), null)
        .set(ctx.layout.chunk(runId, 0), writeChunk(ctx.eventFormat, 0, inline, what));
    }
    const result = await op.commit();
    tails.forget(runId);
    return result.ok ? requeued : RETRY;
  }).then(async (requeued) => {
    await wake(ctx);
    return requeued;
  });
}

/**
 * `Records.heartbeatClaim()`: extend a claim's lease (write `heartbeatAt`)
 * if the run is still claimed by the same worker and attempt. Resolves
 * `false`, writing nothing, otherwise: `false` always means the claim is no
 * longer `claimed`'s (a write that raced another one, such as the run's other
 * heartbeat, is tried again on the record as it now is).
 */
export async function heartbeatClaim(
  ctx: RecordsContext,
  claimed: RunRecord,
  at: number,
): Promise<boolean> {
  const key = ctx.layout.run(claimed.id);
  const known = knownEntries(ctx);
  return await withRetry(
    ctx.retry,
    `Cannot record a heartbeat of claimed run ${JSON.stringify(claimed.id)}`,
    async () => {
      const stored = await ctx.store.get<StoredRun>(key);
      if (stored === null || !stillClaimed(stored.value, claimed)) return false;
      const value: StoredRun = { ...stored.value, heartbeatAt: at };
      const result = await ctx.store.atomic().check(key, stored.version).set(key, value).commit();
      if (result.ok) known.set(key, value, result.version);
      else known.forget(key);
      return result.ok ? true : RETRY;
    },
  );
}

/**
 * How many queued runs are due, due later, and claimed by a worker (see
 * `Records.queueCounts`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { QueueCounts } from "@flowstate/core/records";
 *
 * const counts: QueueCounts = { due: 2, scheduled: 1, claimed: 1 };
 * // Runs waiting for a worker now: alert when this keeps growing.
 * assert.equal(counts.due, 2);
 * ```
 */
export interface QueueCounts {
  /** Waiting and due now (or overdue): what idle workers would claim. */
  due: number;
  /** Waiting for a later time (`delay`, `runAt`, a retry's backoff). */
  scheduled: number;
  /** Claimed by a worker: running, or lost until its lease lapses. */
  claimed: number;
}

/**
 * {@linkcode QueueCounts} at `now`, counted from the queue's indexes (key
 * counts, no run read). A delayed entry is due once its time came, whether or
 * not a worker has moved it to the ready index yet.
 */
export async function queueCounts(ctx: RecordsContext, now: number): Promise<QueueCounts> {
  const keys = new QueueKeys(ctx);
  const delayed = keys.delayed();
  const dueLimit = [...delayed, timePart(now + 1)];
  const [ready, parked, delayedDue, delayedAll, claimed] = await Promise.all([
    ctx.store.count(keys.ready()),
    // Due, waiting for a slot of their partition.
    ctx.store.count(keys.allParked()),
    ctx.store.count(delayed, { end: dueLimit }),
    ctx.store.count(delayed),
    ctx.store.count(keys.claimed()),
  ]);
  return { due: ready + parked + delayedDue, scheduled: delayedAll - delayedDue, claimed };
}
