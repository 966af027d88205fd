/**
 * What every part of `Records` shares: the store, clock, key layout
 * and retry settings it was set up with ({@linkcode RecordsContext}), the one
 * compare-and-set retry loop, and the shape of stored runs (event chunks: see
 * `_event_chunks.ts`).
 * Internal to `src/records/`.
 *
 * @module
 */
import { ConflictError } from "../errors.ts";
import type { AtomicOperation, Clock, Key, Store } from "../store/types.ts";
import { EVENTS_FIELD, type RecordsLayout } from "./layout.ts";
import type { RunEvent, RunRecord } from "./types.ts";
import type { EventFormat } from "./_event_chunks.ts";
import { decodeNodes, encodeNodes, NODES_FIELD, type NodesFormat } from "./_node_outcomes.ts";

/** How many times a read-modify-write is tried, and how long it waits between tries. */
export interface RetrySettings {
  /** Tries before giving up with a `ConflictError`. */
  readonly attempts: number;
  /** Upper bound of one jittered wait, in ms. */
  readonly maxDelayMs: number;
}

/** The settings a `Records` passes to the functions it delegates to. */
export interface RecordsContext {
  /** Where the records are kept. */
  readonly store: Store;
  /** Time source for `createdAt`, `updatedAt`, `endedAt` and metrics. */
  readonly clock: Clock;
  /** The keys, under the records' prefix. */
  readonly layout: RecordsLayout;
  /** Compare-and-set retries on conflict. */
  readonly retry: RetrySettings;
  /** The form event chunks are written in (`RecordsOptions.eventFormat`). */
  readonly eventFormat: EventFormat;
  /** The form run records' node outcomes are written in (`RecordsOptions.nodesFormat`). */
  readonly nodesFormat: NodesFormat;
}

/** What an attempt of a read-modify-write returns when its commit lost a race. */
export const RETRY: unique symbol = Symbol("retry");

/**
 * Run `attempt` until it returns something other than {@linkcode RETRY},
 * waiting a small jittered exponential backoff between tries; after
 * `settings.attempts` lost races, throw a `ConflictError` starting with `what`.
 */
export async function withRetry<T>(
  settings: RetrySettings,
  what: string,
  attempt: () => Promise<T | typeof RETRY>,
): Promise<T> {
  for (let n = 0; n < settings.attempts; n++) {
    const result = await attempt();
    if (result !== RETRY) return result;
    if (n + 1 < settings.attempts) {
      const cap = Math.min(settings.maxDelayMs, 2 ** Math.min(n, 16));
      await new Promise((resolve) => setTimeout(resolve, Math.random() * cap));
    }
  }
  throw new ConflictError(
    `${what}: other writers changed the same records ${settings.attempts} times in a row; try again`,
  );
}

/**
 * A run record as stored: finished runs may carry their events inline, and
 * their node outcomes compact (`nodes` is then `null`: see `_node_outcomes.ts`).
 */
export type StoredRun = RunRecord & { [EVENTS_FIELD]?: RunEvent[]; [NODES_FIELD]?: unknown };

/**
 * The record as the API gives it: without its inline events, its node
 * outcomes as they were written (in the place of `nodes` among its fields).
 */
export function withoutEvents(stored: StoredRun): RunRecord {
  if (!(EVENTS_FIELD in stored) && !(NODES_FIELD in stored)) return stored;
  const { [EVENTS_FIELD]: _events, [NODES_FIELD]: compact, ...record } = stored;
  // Only in the place of `nodes: null`: a record a process of 0.5 rewrote (spreading the
  // stored record, "@nodes" and all, with outcomes of its own) is read by its `nodes`.
  if (compact !== undefined && stored.nodes === null) {
    record.nodes = decodeNodes(compact, `Cannot read run ${JSON.stringify(stored.id)}`);
  }
  return record;
}

/**
 * `record` as written in `ctx.nodesFormat` (with `events` inline, if given):
 * its node outcomes compact when they fit that form.
 */
function storedRun(
  ctx: RecordsContext,
  record: RunRecord,
  events?: RunEvent[],
): StoredRun {
  const compact = ctx.nodesFormat === 1 ? undefined : encodeNodes(record.nodes);
  const stored: StoredRun = compact === undefined
    ? { ...record }
    : { ...record, nodes: null as unknown as RunRecord["nodes"], [NODES_FIELD]: compact };
  if (events !== undefined) stored[EVENTS_FIELD] = events;
  return stored;
}

/**
 * `op.set(key, storedRun(ctx, record, events))`; when the store refuses the
 * compact form (a value that is not JSON, or a record at the size limit,
 * which the compact form's few bytes of header can cross), the first form is
 * set instead: it is stored if it fits, or refused with the error that names
 * the outcome by its node (`value.nodes.<id>.output…`), not by a column of
 * the compact form.
 */
export function setStoredRun(
  ctx: RecordsContext,
  op: AtomicOperation,
  key: Key,
  record: RunRecord,
  events?: RunEvent[],
): void {
  const stored = storedRun(ctx, record, events);
  if (!(NODES_FIELD in stored)) {
    op.set(key, stored);
    return;
  }
  try {
    op.set(key, stored);
  } catch (err) {
    if (!(err instanceof TypeError || err instanceof RangeError)) throw err;
    op.set(key, storedRun({ ...ctx, nodesFormat: 1 }, record, events));
  }
}
