/**
 * Pruning flow versions, the last step of `Records.prune()` (the `retention`
 * job): a program that generates flow definitions, or a flow file edited
 * often, makes a version per change, and without this they would pile up
 * forever while their runs are pruned. Internal to `src/records/`.
 *
 * A version `P, "versions", flowId, hash` is deleted when all of these hold:
 * - it is not its flow's head (`P, "heads", flowId`: the current version);
 * - it was created longer than `maxAge` ago;
 * - no run record refers to it (the flow's index `P, "runs-by-flow", flowId`
 *   is read: what retention kept of the flow's runs, queued and running ones
 *   included).
 *
 * Its metrics (`P, "metrics", flowId, hash` and its shards) are folded into
 * the flow's `P, "metrics", flowId, "*pruned"` in the same commit, so the
 * per-version rows and that one still add up to the flow's `"*"` totals
 * (which are kept apart and never change); the head counts the versions
 * deleted (`pruned`, shown as `FlowSummary.prunedVersions`).
 *
 * ## Protocol (a run starting on a version being pruned)
 *
 * A run refers to its version from the moment its record is committed
 * (`startRun`, `enqueueRun`); it was saved (`saveVersion`) a moment before,
 * and a worker may skip saving a version it saved seconds ago. So a run can
 * be about to commit on a version that no run refers to yet. Three writes
 * make that safe, without a read or a write on the run's path beyond one
 * check in its commit:
 *
 * 1. **Mark.** Each candidate is written again with a hidden mark
 *    (`"@pruning"`, see `_versions.ts`), checked against the entry version
 *    read: its entry version changes.
 * 2. **Look again.** The flow's runs and head are read *after* the marks
 *    committed. A candidate now referred to, or the head, is unmarked.
 * 3. **Delete**, checked against the marked entry version (and the head and
 *    metrics entries read).
 *
 * A run's commit checks its version's entry version as its process saw it
 * saved, unmarked (`guardVersion`), and `saveVersion` rewrites a marked version
 * without its mark before handing it out. So a run that commits *before* a
 * mark is seen in step 2, and keeps its version; one that commits *after*
 * it checked an older entry version, or a rewritten one: the first fails (the
 * runtime saves the version again and starts over), the second changes the
 * entry, and the deletion's check fails instead. Either way no stored run
 * refers to a deleted version. A version deleted first and saved again later
 * is created anew, with the next `seq`.
 *
 * A queued run whose flow file changed while it waited runs the new content:
 * that version is saved when a worker takes the run, and the run's record
 * refers to it only from the run's end. That end's commit checks the version
 * the same way (`finishRun`, when the version differs from the record's), and
 * the runtime saves it again if it was deleted meanwhile.
 *
 * @module
 */
import type { Entry, Key, Store } from "../store/types.ts";
import { PRUNED_METRICS, type RecordsLayout } from "./layout.ts";
import { emptyMetrics, type FlowMetrics } from "./metrics.ts";
import { mergeMetrics } from "./_metric_shards.ts";
import { type HeadRecord, PRUNING_FIELD, type StoredVersion, withoutMark } from "./_versions.ts";
import type { RunSummary } from "./types.ts";

/** What {@linkcode pruneVersions} needs from `pruneRuns`. */
export interface VersionPruning {
  /** Versions created before this (ms since the epoch) may go. */
  createdBefore: number;
  /** The time written in the marks (ms since the epoch). */
  now: number;
  /** The flows to look at. */
  flows: readonly string[];
  /** Write nothing, count what would go. */
  dryRun: boolean;
  /**
   * In a dry run, whether the run `id` (its flow index entry `summary`) is
   * one the dry run would delete: the versions only such runs refer to are
   * counted as going, as they would once those runs are gone.
   */
  wouldDelete?: (flowId: string, id: string, summary: RunSummary) => boolean;
  /** Stops between commits. */
  signal: AbortSignal;
  /** A flow was looked at. */
  onFlow(): void;
}

/** What {@linkcode pruneVersions} did. */
export interface VersionsPruned {
  /** Versions deleted (in a dry run: that would be). */
  deleted: number;
  /** Versions left for the next run: saved or changed again while being deleted. */
  skipped: number;
  /** Version and run index entries read. */
  scanned: number;
  /** Commits that deleted versions. */
  batches: number;
}

/** Versions read, marked, looked at again and deleted at a time, per flow. */
const CHUNK = 5_000;
/** Versions marked or deleted per commit. */
const PER_COMMIT = 100;
/** Tries of one deletion commit before its versions are left for the next run. */
const TRIES = 10;

/** A version chosen to go. */
interface Candidate {
  key: Key;
  hash: string;
  value: StoredVersion;
  /** Its entry version: as read, then as marked. */
  version: string;
}

/** Entries read per listing. */
const PAGE = 1000;

/**
 * Every entry under `prefix`, in listings of at most {@linkcode PAGE}, a page
 * at a time (each listing is over before its entries are handed out, so the
 * caller may write under `prefix` meanwhile).
 */
async function* pages<T>(store: Store, prefix: Key): AsyncGenerator<Entry<T>[]> {
  let start: Key | undefined;
  for (;;) {
    const page = await Array.fromAsync(store.list<T>({ prefix, start, limit: PAGE }));
    if (page.length === 0) return;
    yield page;
    start = [...page[page.length - 1].key, "\0"]; // after it and everything under it
  }
}

/** The flows with a head, in key order. */
export async function flowsWithHeads(store: Store, layout: RecordsLayout): Promise<string[]> {
  const prefix = layout.key("heads");
  const ids: string[] = [];
  for await (const page of pages(store, prefix)) {
    for (const e of page) ids.push(e.key[prefix.length]);
  }
  return ids;
}

/**
 * The versions the flow's run records refer to (but for the runs
 * `wouldDelete` names: a dry run's).
 */
async function referencedVersions(
  store: Store,
  layout: RecordsLayout,
  flowId: string,
  out: VersionsPruned,
  wouldDelete?: VersionPruning["wouldDelete"],
): Promise<Set<string>> {
  const refs = new Set<string>();
  const prefix = layout.byFlow(flowId);
  for await (const page of pages<RunSummary>(store, prefix)) {
    for (const e of page) {
      out.scanned++;
      if (wouldDelete?.(flowId, e.key[prefix.length], e.value)) continue;
      let version: unknown = e.value?.flowVersion;
      if (typeof version !== "string") {
        // An index entry without the version (not written by Flowstate): the record says.
        const run = await store.get<{ flowVersion?: unknown }>(layout.run(e.key[prefix.length]));
        version = run?.value.flowVersion;
      }
      if (typeof version === "string") refs.add(version);
    }
  }
  return refs;
}

function sameKey(a: Key, b: Key): boolean {
  return a.length === b.length && a.every((p, i) => p === b[i]);
}

/**
 * Delete the unused old versions of `options.flows`: see the module doc. Resolves what it did.
 */
export async function pruneVersions(
  store: Store,
  layout: RecordsLayout,
  options: VersionPruning,
): Promise<VersionsPruned> {
  const out: VersionsPruned = { deleted: 0, skipped: 0, scanned: 0, batches: 0 };
  const { signal } = options;
  for (const flowId of options.flows) {
    if (signal.aborted) break;
    await pruneFlow(flowId);
    options.onFlow();
  }
  return out;

  async function pruneFlow(flowId: string): Promise<void> {
    const headKey = layout.key("heads", flowId);
    const head = await store.get<HeadRecord>(headKey);
    if (head === null) return;
    /** The versions runs refer to, read once a version old enough is found. */
    let refs: Set<string> | undefined;
    let chunk: Candidate[] = [];
    const flush = async () => {
      const doomed = chunk.filter((c) => !refs!.has(c.hash));
      chunk = [];
      if (doomed.length === 0) return;
      if (options.dryRun) out.deleted += doomed.length;
      else await pruneChunk(flowId, headKey, doomed);
    };
    const prefix = layout.key("versions", flowId);
    for await (const page of pages<StoredVersion>(store, prefix)) {
      if (signal.aborted) return;
      for (const e of page) {
        out.scanned++;
        const hash = e.key[prefix.length];
        if (hash === head.value.hash || !(e.value.createdAt < options.createdBefore)) continue;
        refs ??= await referencedVersions(
          store,
          layout,
          flowId,
          out,
          options.dryRun ? options.wouldDelete : undefined,
        );
        chunk.push({ key: e.key, hash, value: e.value, version: e.version });
      }
      if (chunk.length >= CHUNK) await flush();
    }
    if (chunk.length > 0 && !signal.aborted) await flush();
  }

  /** Mark, look again, delete (see the module doc). */
  async function pruneChunk(flowId: string, headKey: Key, chunk: Candidate[]): Promise<void> {
    // 1. Mark. A batch whose commit fails (one of its versions was saved meanwhile) is
    // marked one by one; a version that changed is left alone.
    const marked: Candidate[] = [];
    for (let i = 0; i < chunk.length && !signal.aborted; i += PER_COMMIT) {
      const batch = chunk.slice(i, i + PER_COMMIT);
      if (await mark(batch)) marked.push(...batch);
      else for (const c of batch) if (await mark([c])) marked.push(c);
    }
    if (marked.length === 0) return;
    // 2. Look again, after the marks: a run committed before them is seen here.
    const refs = await referencedVersions(store, layout, flowId, out);
    const head = await store.get<HeadRecord>(headKey);
    const doomed: Candidate[] = [];
    for (const c of marked) {
      if (refs.has(c.hash) || head?.value.hash === c.hash || signal.aborted) {
        // In use after all, or cancelled: unmarked (a failed check: saved again meanwhile).
        await store.atomic().check(c.key, c.version).set(c.key, withoutMark(c.value)).commit();
      } else doomed.push(c);
    }
    // 3. Delete, folding the metrics into the flow's "*pruned".
    for (let i = 0; i < doomed.length; i += PER_COMMIT) {
      if (signal.aborted) {
        for (const c of doomed.slice(i)) {
          await store.atomic().check(c.key, c.version).set(c.key, withoutMark(c.value)).commit();
        }
        return;
      }
      await deleteBatch(flowId, headKey, doomed.slice(i, i + PER_COMMIT));
    }
  }

  /** Write the mark on each of `batch`, in one commit; their `version` becomes the marked one. */
  async function mark(batch: Candidate[]): Promise<boolean> {
    const op = store.atomic();
    for (const c of batch) {
      const value = { ...withoutMark(c.value), [PRUNING_FIELD]: options.now };
      op.check(c.key, c.version).set(c.key, value);
    }
    const result = await op.commit();
    if (!result.ok) return false;
    for (const c of batch) c.version = result.version;
    return true;
  }

  /** Delete marked versions and fold their metrics, in one commit, retried on conflict. */
  async function deleteBatch(flowId: string, headKey: Key, batch: Candidate[]): Promise<void> {
    const prunedKey = layout.key("metrics", flowId, PRUNED_METRICS);
    let left = batch;
    for (let n = 0; n < TRIES && left.length > 0; n++) {
      const metricsKeys = left.map((c) => layout.key("metrics", flowId, c.hash));
      const [head, pruned, ...metrics] = await store.getMany<HeadRecord | FlowMetrics>([
        headKey,
        prunedKey,
        ...metricsKeys,
      ]) as [Entry<HeadRecord> | null, Entry<FlowMetrics> | null, ...(Entry<FlowMetrics> | null)[]];
      if (head === null) return; // the flow is gone (a `state` or store clear): nothing to count
      const op = store.atomic().check(headKey, head.version).check(
        prunedKey,
        pruned?.version ?? null,
      );
      let folded: FlowMetrics | null = pruned?.value ?? null;
      const fold = (m: FlowMetrics) => {
        folded = mergeMetrics(
          folded ?? emptyMetrics(flowId, PRUNED_METRICS, m.updatedAt),
          { ...m, version: PRUNED_METRICS },
        );
      };
      for (const [i, c] of left.entries()) {
        op.check(c.key, c.version).delete(c.key);
        const m = metrics[i];
        op.check(metricsKeys[i], m?.version ?? null);
        if (m !== null) {
          op.delete(m.key);
          fold(m.value);
        }
        const shards = layout.key("metrics-shards", flowId, c.hash);
        for await (const s of store.list<FlowMetrics>({ prefix: shards })) {
          op.check(s.key, s.version).delete(s.key);
          fold(s.value);
        }
      }
      if (folded !== null) op.set(prunedKey, folded);
      op.set(headKey, { ...head.value, pruned: (head.value.pruned ?? 0) + left.length });
      const result = await op.commit();
      if (result.ok) {
        out.deleted += left.length;
        out.batches++;
        return;
      }
      // A version saved again meanwhile (its mark taken off) stays; the others are tried again.
      left = left.filter((c) => !result.conflicts.some((k) => sameKey(k, c.key)));
    }
    out.skipped += left.length;
  }
}
