/**
 * Sharded run metrics, for `Records`: once run ends of a process have
 * conflicted on a flow's metrics entry (`P, "metrics", flowId, version`:
 * several runs ending at once, as in queue workers), that process adds each
 * run's counts to a *shard* of it (`P, "metrics-shards", flowId, version,
 * shard`) instead, so that many runs of one flow ending at once never retry
 * against each other. Each store object of a process has its own shard ids (a
 * random id, and a slot per run ending at the same moment through it), so a
 * shard has one writer at a time. Readers merge the entry and its shards;
 * `compactMetrics` folds the shards into the entry (queue workers do it when
 * they start and stop).
 * Internal to `src/records/`.
 *
 * @module
 */
import type { Entry, Key, Store } from "../store/types.ts";
import { type RecordsContext, RETRY, withRetry } from "./_context.ts";
import { type FlowMetrics, mergeHistograms, quantile } from "./metrics.ts";
import { uniqueRandomHex } from "../_random.ts";

/** How many times a reader re-reads when a compaction moved shards meanwhile. */
const READ_TRIES = 20;

/** The shard slots of one store object: a slot is held by one run end at a time. */
export class MetricShards {
  /**
   * Whether run ends count in shards: set (for the life of the store object)
   * once a run end of this process conflicted on a metrics entry. Until then
   * they count in the entries themselves, so a process that never races
   * (one CLI run) leaves no shard behind.
   */
  sharded = false;
  readonly #id = uniqueRandomHex(6);
  #free: number[] = [];
  #next = 0;

  /** Take a free slot: its shard id. */
  take(): string {
    const slot = this.#free.pop() ?? this.#next++;
    return `${this.#id}-${slot}`;
  }

  /** Give a slot back. */
  give(shard: string): void {
    this.#free.push(Number(shard.slice(shard.lastIndexOf("-") + 1)));
  }
}

const shardsOf = new WeakMap<Store, MetricShards>();

/**
 * The shard slots of `ctx`'s store in this process: every `Records` on one
 * store object shares them (a runtime makes a `Records` per call of
 * `records()`), so shards stay as few as the runs that ever ended at once.
 */
export function metricShards(ctx: RecordsContext): MetricShards {
  let shards = shardsOf.get(ctx.store);
  if (shards === undefined) shardsOf.set(ctx.store, shards = new MetricShards());
  return shards;
}

/** `P, "metrics-shards"`, a flow's, a version's, or one shard. */
export function shardKey(ctx: RecordsContext, ...parts: string[]): Key {
  return ctx.layout.key("metrics-shards", ...parts);
}

/** Later of two (startedAt, id) pairs, as `addRunToMetrics` orders them. */
function isLater(a: FlowMetrics, b: FlowMetrics): boolean {
  if (a.lastRunAt === null) return false;
  if (b.lastRunAt === null) return true;
  return a.lastRunAt > b.lastRunAt ||
    (a.lastRunAt === b.lastRunAt && (a.lastRunId ?? "") > (b.lastRunId ?? ""));
}

const minOf = (a: number | null, b: number | null) =>
  a === null ? b : b === null ? a : Math.min(a, b);
const maxOf = (a: number | null, b: number | null) =>
  a === null ? b : b === null ? a : Math.max(a, b);

/** Metrics counting every run `a` and `b` count (`a`'s flow and version). */
export function mergeMetrics(a: FlowMetrics, b: FlowMetrics): FlowMetrics {
  const histogram = mergeHistograms(a.histogram, b.histogram);
  const min = minOf(a.minDurationMs, b.minDurationMs);
  const max = maxOf(a.maxDurationMs, b.maxDurationMs);
  const last = isLater(b, a) ? b : a;
  return {
    flowId: a.flowId,
    version: a.version,
    count: a.count + b.count,
    succeeded: a.succeeded + b.succeeded,
    failed: a.failed + b.failed,
    cancelled: a.cancelled + b.cancelled,
    timedOut: a.timedOut + b.timedOut,
    totalDurationMs: a.totalDurationMs + b.totalDurationMs,
    minDurationMs: min,
    maxDurationMs: max,
    p50DurationMs: quantile(histogram, 0.5, { min, max }),
    p95DurationMs: quantile(histogram, 0.95, { min, max }),
    lastRunAt: last.lastRunAt,
    lastRunId: last.lastRunId,
    lastStatus: last.lastStatus,
    updatedAt: Math.max(a.updatedAt, b.updatedAt),
    histogram,
  };
}

/** `flowId \0 version` of a metrics or shard key under `base` (its next two parts). */
function groupOf(key: Key, base: Key): string {
  return `${key[base.length]}\u0000${key[base.length + 1]}`;
}

/**
 * The merged metrics of every (flow, version) whose entry or shards lie
 * under `metrics`/`shards` (the same flow or version prefix in both
 * layouts). Exact: the entries are read again after the shards, and all is
 * read again if a compaction moved shards into an entry meanwhile.
 */
async function readMerged(
  ctx: RecordsContext,
  metricsPrefix: Key,
  shardsPrefix: Key,
): Promise<FlowMetrics[]> {
  const { store } = ctx;
  const base = ctx.layout.key("metrics");
  const shardBase = shardKey(ctx);
  const readEntries = async () => {
    const out = new Map<string, Entry<FlowMetrics>>();
    if (metricsPrefix.length === base.length + 2) {
      const e = await store.get<FlowMetrics>(metricsPrefix);
      if (e !== null) out.set(groupOf(e.key, base), e);
      return out;
    }
    for await (const e of store.list<FlowMetrics>({ prefix: metricsPrefix })) {
      if (e.key.length === base.length + 2) out.set(groupOf(e.key, base), e);
    }
    return out;
  };
  for (let n = 0; n < READ_TRIES; n++) {
    const entries = await readEntries();
    const shards = new Map<string, FlowMetrics[]>();
    for await (const e of store.list<FlowMetrics>({ prefix: shardsPrefix })) {
      const group = groupOf(e.key, shardBase);
      shards.set(group, [...(shards.get(group) ?? []), e.value]);
    }
    const again = await readEntries();
    const same = again.size === entries.size &&
      [...entries].every(([g, e]) => again.get(g)?.version === e.version);
    if (!same) continue;
    const groups = [...new Set([...entries.keys(), ...shards.keys()])].sort();
    return groups.map((g) => {
      const parts = shards.get(g) ?? [];
      let merged = entries.get(g)?.value ?? parts.shift()!;
      for (const p of parts) merged = mergeMetrics(merged, p);
      return merged;
    });
  }
  throw new Error(
    `Cannot read metrics: they were compacted ${READ_TRIES} times while being read; try again`,
  );
}

/** `Records.getMetrics()`: one flow version's (or `"*"`) metrics, entry and shards merged. */
export async function readMetrics(
  ctx: RecordsContext,
  flowId: string,
  version: string,
): Promise<FlowMetrics | null> {
  const merged = await readMerged(
    ctx,
    ctx.layout.key("metrics", flowId, version),
    shardKey(ctx, flowId, version),
  );
  return merged[0] ?? null;
}

/** `Records.listMetrics()`: every (or one flow's) metrics, entries and shards merged. */
export async function listMetrics(ctx: RecordsContext, flowId?: string): Promise<FlowMetrics[]> {
  return flowId === undefined
    ? await readMerged(ctx, ctx.layout.key("metrics"), shardKey(ctx))
    : await readMerged(ctx, ctx.layout.key("metrics", flowId), shardKey(ctx, flowId));
}

/**
 * `Records.compactMetrics()`: fold every shard into its metrics entry (one
 * commit per flow version, checked against every version it read, retried
 * if a run ended meanwhile). Resolves how many shards were folded.
 */
export async function compactMetrics(ctx: RecordsContext): Promise<number> {
  const { store } = ctx;
  const shardBase = shardKey(ctx);
  const groups = new Map<string, Entry<FlowMetrics>[]>();
  for await (const e of store.list<FlowMetrics>({ prefix: shardBase })) {
    const g = groupOf(e.key, shardBase);
    groups.set(g, [...(groups.get(g) ?? []), e]);
  }
  let folded = 0;
  for (const g of groups.keys()) {
    const [flowId, version] = g.split("\u0000");
    folded += await withRetry(ctx.retry, `Cannot compact metrics of "${flowId}"`, async () => {
      const entryKey = ctx.layout.key("metrics", flowId, version);
      const entry = await store.get<FlowMetrics>(entryKey);
      const parts: Entry<FlowMetrics>[] = [];
      for await (
        const e of store.list<FlowMetrics>({ prefix: shardKey(ctx, flowId, version) })
      ) parts.push(e);
      if (parts.length === 0) return 0;
      const op = store.atomic().check(entryKey, entry?.version ?? null);
      let merged = entry?.value ?? parts[0].value;
      for (const [i, p] of parts.entries()) {
        if (entry !== null || i > 0) merged = mergeMetrics(merged, p.value);
        op.check(p.key, p.version).delete(p.key);
      }
      op.set(entryKey, merged);
      return (await op.commit()).ok ? parts.length : RETRY;
    });
  }
  return folded;
}
