/**
 * The queue's dedupe keys (`P, "queue", "key", key` → `{ runId }`), for
 * `Records`: a key names the run it was given to while that run is queued or
 * running. The run's end deletes it, in the end's commit and only if it still
 * names that run (`releaseDedupeKey`); so does deleting the run. A key whose
 * run ended or is gone otherwise (written by a version before this one, or
 * ended by such a process) is swept by `sweepDedupeKeys` (the gc job).
 * Internal to `src/records/`.
 *
 * @module
 */
import type { AtomicOperation, Entry, Key } from "../store/types.ts";
import type { RecordsContext, StoredRun } from "./_context.ts";
import type { RunRecord } from "./types.ts";

/** What a dedupe key entry holds. */
export interface DedupeEntry {
  /** The run the key was given to. */
  runId: string;
}

/** Keys read and deleted per batch of a sweep. */
const SWEEP_BATCH = 500;

/** `P, "queue", "key", key`: the run holding a dedupe key (or the prefix of all of them). */
export function dedupeKey(ctx: RecordsContext, key?: string): Key {
  return key === undefined ? ctx.layout.key("queue", "key") : ctx.layout.key("queue", "key", key);
}

/** Whether a run with this status holds its dedupe key (a later enqueue with it returns it). */
export function holdsKey(status: RunRecord["status"] | undefined): boolean {
  return status === "queued" || status === "running";
}

/**
 * Add to `op` the deletion of `run`'s dedupe key, checked at the version read,
 * if the key still names `run` (another run may have been given it since).
 * Nothing when the run has no key.
 */
export async function releaseDedupeKey(
  ctx: RecordsContext,
  op: AtomicOperation,
  run: Pick<RunRecord, "id" | "queue">,
): Promise<void> {
  const key = run.queue?.key;
  if (key === undefined) return;
  const entryKey = dedupeKey(ctx, key);
  const held = await ctx.store.get<DedupeEntry>(entryKey);
  if (held === null || held.value?.runId !== run.id) return;
  op.check(entryKey, held.version).delete(entryKey);
}

/**
 * `Records.sweepDedupeKeys()`: delete the dedupe keys whose run is gone or no
 * longer queued or running (each checked at the version read, so a key given
 * to a new run meanwhile is kept). With `dryRun`, only count them. Resolves
 * how many were (or would be) deleted.
 */
export async function sweepDedupeKeys(
  ctx: RecordsContext,
  options: { dryRun?: boolean; signal?: AbortSignal } = {},
): Promise<number> {
  const prefix = dedupeKey(ctx);
  let removed = 0;
  let cursor: string | undefined;
  for (;;) {
    if (options.signal?.aborted) break;
    const listing = ctx.store.list<DedupeEntry>(
      cursor === undefined
        ? { prefix, limit: SWEEP_BATCH }
        : { prefix, cursor, limit: SWEEP_BATCH },
    );
    const batch: Entry<DedupeEntry>[] = await listing.nextPage(SWEEP_BATCH);
    if (batch.length === 0) break;
    cursor = listing.cursor;
    const ids = batch.map((e) => typeof e.value?.runId === "string" ? e.value.runId : null);
    const runs = await ctx.store.getMany<StoredRun>(
      // A malformed entry (no run id) is read as a run no id names: stale.
      ids.map((id) => ctx.layout.run(id ?? "-")),
    );
    const stale = batch.filter((_, i) => ids[i] === null || !holdsKey(runs[i]?.value.status));
    if (stale.length === 0) {
      if (batch.length < SWEEP_BATCH) break;
      continue;
    }
    if (options.dryRun) {
      removed += stale.length;
    } else {
      const op = ctx.store.atomic();
      for (const e of stale) op.check(e.key, e.version).delete(e.key);
      if ((await op.commit()).ok) {
        removed += stale.length;
      } else {
        // One of them changed meanwhile (given to a new run): each on its own.
        for (const e of stale) {
          const one = await ctx.store.atomic().check(e.key, e.version).delete(e.key).commit();
          if (one.ok) removed++;
        }
      }
    }
    if (batch.length < SWEEP_BATCH) break;
  }
  return removed;
}
