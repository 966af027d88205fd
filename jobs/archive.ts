/**
 * The `archive` job: moves finished runs older than `olderThan` out of the
 * records store into compressed archive files under `<home>/archive/`, where
 * `runs show` and `runs ls --archived` still find them, and so do `flowstate
 * serve`'s API (`GET /api/runs/{id}` and the routes under it,
 * `GET /api/runs?archived=true`) and its inspector, read-only.
 *
 * ```yaml
 * jobs:
 *   archive: { schedule: "30 2 * * *", options: { olderThan: 90d, period: month } }
 * ```
 *
 * ## Files
 *
 * - `runs-<period>.ndjson.gz`: one file per period of run start time (UTC),
 *   `2026-01` for `period: month` (the default) or `2026-01-15` for
 *   `period: day`. gzip'd newline-delimited JSON, one run per line:
 *   `{ "run": <RunRecord>, "events": [<RunEvent>…] }`, and `"onFailure":
 *   <OnFailureMarker>` for a run the config's `runs.onFailure` flow ran about. (gzip through the
 *   built-in `CompressionStream`; zstd is not available without a dependency.)
 * - `runs-<period>.index.json`: a small index of that file: `{ format, version,
 *   file, period, runs, bytes, sha256, updatedAt, entries }`, where `entries`
 *   holds each run's summary (`id, flowId, flowVersion, status, startedAt,
 *   endedAt, durationMs, error`) in file order. Listing reads only indexes;
 *   finding run X reads the index of the period its id's time falls in
 *   (run ids start with their start time), then decompresses that one file
 *   up to the run's line.
 * - `runs-<period>.versions.ndjson.gz`: the flow versions the period's runs
 *   ran, one a line, `{ "version": <FlowVersion> }` (definition and source
 *   included), each once, so that a run's definition outlives the retention
 *   job deleting its version from the records store. Taken from the records
 *   store when runs are archived; a period archived before archives kept
 *   flow versions (its index names no such file) gets its file on the next
 *   archive run, with the versions of its runs that the store still holds
 *   (run the archive job once before the first retention run after
 *   upgrading from 0.5). The index
 *   names it with its size and SHA-256 (`versions: { file, count, bytes,
 *   sha256 }`). A file of its own rather than lines in the runs file: readers
 *   of Flowstate 0.5 take a line without a run as damage.
 *
 * ## Safety
 *
 * An archive file is never appended to in place. Adding runs to a period
 * writes a new complete file (the old file's lines, then the new runs) to a
 * temp file, fsyncs it, re-reads it from disk and checks its size, SHA-256,
 * run count and every run id, and only then renames it over the old file and
 * writes the index (same temp + fsync + rename). The flow versions file is
 * written and checked the same way (every version, in order) and renamed
 * into place just before the runs file: it may hold a version more, never
 * one less. Runs are deleted from the
 * records store only after that, in batches. A run already in the period's
 * file is never written twice: so if the process is killed after writing a
 * file but before deleting its runs, the next run finds them in the file,
 * does not add them again, and deletes them. An index that does not match
 * its file (killed between the two renames) is rebuilt from the file. A
 * damaged archive file is never overwritten: no run of its period is archived
 * or deleted, the job goes on with the other periods, and then fails saying
 * where the file is; restore it from a backup, or move it aside and the next
 * run starts a new file for that period (the moved file's runs are then no
 * longer read as archived runs).
 *
 * Only one archive job runs at a time per records store: it holds a lease
 * (an expiring entry taken with compare-and-set, renewed while it works;
 * a killed job's lease expires after two minutes). `running` runs are never
 * archived. Cancelling stops at a consistent point: before a file is
 * renamed (the temp file is discarded), or between delete batches.
 *
 * ## Reading
 *
 * Reading the archive back (`listArchivedRuns`, `readArchivedRun`, the
 * `ArchiveReader` that keeps indexes and runs read for a long-lived process
 * such as `flowstate serve`, and the index checks the job shares) lives in
 * `src/records/_archive_read.ts` (with the records, whose listings read it); this module re-exports its public names.
 *
 * @module
 */
import { join } from "node:path";
import { z } from "zod";
import { parseTempName, writeFileAtomic } from "../src/_fs.ts";
import { durationProblem, parseDuration } from "../src/duration.ts";
import type { Duration } from "../src/flow/types.ts";
import { type RunRecord, type RunSummary, summarizeRun } from "../src/records/types.ts";
import { defineJob, type Job, type JobContext, type JobResult } from "../src/jobs/job.ts";
import type { Records } from "../src/records/records.ts";
import { Lease } from "../src/store/lease.ts";
import { StoreCorruptError } from "../src/errors.ts";
import type { Key, Store } from "../src/store/types.ts";
import {
  _internals,
  formatBytes,
  GzipFileWriter,
  readGzipLines,
  type WrittenFile,
} from "../src/archive_format.ts";
import {
  ARCHIVE_INDEX_FORMAT,
  archiveDir,
  archiveFiles,
  type ArchiveIndex,
  type ArchivePeriod,
  type ArchiveVersionsIndex,
  damagedArchiveWayOut,
  fileName,
  indexName,
  loadIndex,
  periodOf,
  versionKey,
  versionOnLine,
  versionsName,
} from "../src/records/_archive_read.ts";

export {
  ARCHIVE_INDEX_FORMAT,
  archiveDir,
  type ArchivedRun,
  type ArchivedRunSummary,
  type ArchiveIndex,
  type ArchivePeriod,
  listArchivedRuns,
  type ListArchivedRunsOptions,
  periodOf,
  readArchivedRun,
} from "../src/records/_archive_read.ts";

/**
 * Options of the archive job.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, runJob } from "@flowstate/core";
 * import { type ArchiveOptions, listArchivedRuns } from "@flowstate/core/jobs";
 *
 * const home = await Deno.makeTempDir();
 * let now = Date.UTC(2026, 0, 1);
 * {
 *   await using rt = await openRuntime({ home, config: { stores: { main: { plugin: "memory" } } }, clock: { now: () => now } });
 *   await rt.runFlow({ id: "hi", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] });
 *   now += 10 * 86_400_000;
 *   const options: Partial<ArchiveOptions> = { olderThan: "7d", period: "day" };
 *   await runJob(rt, "archive", { options });
 * }
 * const [summary] = await listArchivedRuns(home);
 * assert.equal(summary.archive, "runs-2026-01-01.ndjson.gz"); // one file per day
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export interface ArchiveOptions {
  /** Archive runs that started longer ago than this (`"30d"`, or ms). */
  olderThan: Duration;
  /** One archive file per `"day"` or `"month"` (default). */
  period: ArchivePeriod;
  /** Runs read per page, and deleted per batch between cancellation checks. */
  batchSize: number;
}

/** Default options of the archive job. */
export const defaults = {
  olderThan: "30d",
  period: "month",
  batchSize: 500,
} satisfies Partial<ArchiveOptions>;

const archiveOptions = z.strictObject({
  olderThan: z.union([z.number(), z.string()]).superRefine((value, ctx) => {
    const problem = durationProblem(value);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem.message });
  }).default(defaults.olderThan),
  period: z.enum(["day", "month"]).default(defaults.period),
  batchSize: z.number().int().min(1).max(1000).default(defaults.batchSize),
});

const LEASE_KEY: Key = ["flowstate", "archive-lease"];
const LEASE_TTL_MS = 120_000;

/** What the archive job reports. */
interface ArchiveTotals {
  archived: number;
  files: number;
  bytesWritten: number;
  deleted: number;
  alreadyArchived: number;
  skippedRunning: number;
  /** Flow versions written into the archive for the first time. */
  versionsArchived: number;
  /** Archived runs whose flow version the records store no longer held (not in the archive). */
  versionsMissing: number;
  periods: string[];
  cancelled: boolean;
}

/** A period being archived in this job run. */
interface PeriodWork {
  period: string;
  /** The file as it was when the period was opened (verified), or `null`. */
  existing: ArchiveIndex | null;
  /** The index had to be rebuilt from the file: write it even if nothing is added. */
  indexStale: boolean;
  present: Set<string>;
  writer: GzipFileWriter | null;
  /** The new flow versions file, opened with `writer`. */
  versionsWriter: GzipFileWriter | null;
  /** The flow versions in it (`versionKey`), in file order. */
  versionKeys: Set<string>;
  /** Flow versions the records store did not hold, with the runs archived without theirs. */
  missing: Map<string, number>;
  /** Summaries in the new file's order. */
  entries: RunSummary[];
  toDelete: string[];
  added: number;
}

/** What the archive lease holds: the job's run, its process, when it was last renewed. */
interface ArchiveLeaseHolder {
  runId?: string;
  pid: number;
  at: number;
}

/**
 * An expiring lease on the records store (a {@linkcode Lease} at
 * `["flowstate", "archive-lease"]`), so that one archive job runs at a time.
 */
class ArchiveLease {
  #store: Store;
  #ctx: JobContext;
  #lease: Lease<ArchiveLeaseHolder> | null = null;

  constructor(store: Store, ctx: JobContext) {
    this.#store = store;
    this.#ctx = ctx;
  }

  #value(): ArchiveLeaseHolder {
    return { runId: this.#ctx.runId, pid: Deno.pid, at: this.#ctx.clock.now() };
  }

  async acquire(): Promise<void> {
    const result = await Lease.acquire(this.#store, LEASE_KEY, this.#value(), {
      ttl: LEASE_TTL_MS,
      clock: this.#ctx.clock,
    });
    if (!result.ok) {
      const holder = result.holder;
      throw new Error(
        `Cannot archive runs: another archive job${
          holder?.value.runId ? ` (run ${holder.value.runId})` : ""
        } is running${
          holder?.expiresAt
            ? ` and holds the lease until ${new Date(holder.expiresAt).toISOString()}`
            : ""
        }; a killed job's lease expires by itself`,
      );
    }
    this.#lease = result.lease;
  }

  /** Renew if a quarter of the lease has passed; throws if it was lost. */
  async renew(force = false): Promise<void> {
    const lease = this.#lease;
    if (lease === null) return;
    if (!force && this.#ctx.clock.now() - lease.renewedAt < LEASE_TTL_MS / 4) return;
    if (!(await lease.renew({ value: this.#value() }))) {
      this.#lease = null;
      throw new Error(
        "Cannot archive runs: this job lost its lease (it stalled for over two minutes and another archive job may have started); stopped before changing anything more",
      );
    }
  }

  async release(): Promise<void> {
    const lease = this.#lease;
    if (lease === null) return;
    await lease.release().catch(() => false);
    this.#lease = null;
  }
}

async function removeStaleTemps(dir: string): Promise<void> {
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && parseTempName(entry.name)?.of.startsWith("runs-")) {
      await Deno.remove(join(dir, entry.name)).catch(() => {});
    }
  }
}

/** Moves old runs into archive files; see the module documentation. */
class Archiver {
  #ctx: JobContext;
  #records: Records;
  #options: ArchiveOptions;
  #dir: string;
  #lease: ArchiveLease;
  #totals: ArchiveTotals = {
    archived: 0,
    files: 0,
    bytesWritten: 0,
    deleted: 0,
    alreadyArchived: 0,
    skippedRunning: 0,
    versionsArchived: 0,
    versionsMissing: 0,
    periods: [],
    cancelled: false,
  };
  /** Indexes of the other granularity's files, to never archive a run twice. */
  #otherIndexes = new Map<string, Set<string> | null>();
  #otherPeriods: Set<string> = new Set();
  #dryRunPeriods: JobResult[] = [];
  /** The periods whose archive file is damaged, each with what was found: left alone. */
  #damaged = new Map<string, DamagedArchiveError>();

  constructor(ctx: JobContext, records: Records, options: ArchiveOptions, lease: ArchiveLease) {
    this.#ctx = ctx;
    this.#records = records;
    this.#options = options;
    this.#dir = archiveDir(ctx.home);
    this.#lease = lease;
  }

  /** What a dry run would do, per period. */
  get dryRunPeriods(): JobResult[] {
    return this.#dryRunPeriods;
  }

  /** The damaged archive files found (their periods were left alone), in the order found. */
  get damaged(): DamagedArchiveError[] {
    return [...this.#damaged.values()];
  }

  async run(cutoff: number): Promise<ArchiveTotals> {
    const ctx = this.#ctx;
    if (!ctx.dryRun) {
      await Deno.mkdir(this.#dir, { recursive: true }).catch(async (err) => {
        if ((await Deno.stat(this.#dir).catch(() => null))?.isFile) {
          throw new Error(
            `Cannot archive runs: ${this.#dir} is a file, not a directory: move it aside (the ` +
              `archive job keeps its files in that directory)`,
            { cause: err },
          );
        }
        throw err;
      });
      await removeStaleTemps(this.#dir);
    }
    const other: ArchivePeriod = this.#options.period === "month" ? "day" : "month";
    this.#otherPeriods = new Set(
      (await archiveFiles(this.#dir)).filter((p) => (p.length === 7) === (other === "month")),
    );
    let work: PeriodWork | null = null;
    let cursor: string | undefined;
    let scanned = 0;
    const scanning = `archive runs started before ${new Date(cutoff).toISOString()}`;
    ctx.progress.start(scanning);
    const stop = async () => {
      await abortWriters(work);
      work = null;
      this.#totals.cancelled = true;
      return this.#totals;
    };
    try {
      do {
        if (ctx.signal.aborted) return await stop();
        const page = await this.#records.listRuns({
          until: cutoff,
          limit: this.#options.batchSize,
          cursor,
        });
        cursor = page.cursor;
        for (const run of page.runs) {
          if (run.status === "running") {
            this.#totals.skippedRunning++;
            continue;
          }
          if (run.startedAt >= cutoff) continue;
          const period = periodOf(run.startedAt, this.#options.period);
          if (this.#damaged.has(period)) continue;
          if (work !== null && work.period !== period) {
            if (ctx.signal.aborted) return await stop();
            await this.#finish(work);
            work = null;
            if (this.#totals.cancelled) return this.#totals;
            ctx.progress.start(scanning);
            ctx.progress.update(scanned);
          }
          try {
            work ??= await this.#open(period);
            await this.#add(work, run);
          } catch (err) {
            if (!(err instanceof DamagedArchiveError)) throw err;
            // Its file is left as it is, and so are its runs: on to the other periods.
            await abortWriters(work);
            work = null;
            this.#damaged.set(period, err);
            ctx.log(err.message, "error");
            continue;
          }
          ctx.progress.update(++scanned);
        }
        await this.#lease.renew();
      } while (cursor !== undefined);
      if (ctx.signal.aborted) return await stop();
      if (work !== null) await this.#finish(work);
      work = null;
      if (!ctx.dryRun && !this.#totals.cancelled) await this.#keepEarlierVersions();
    } finally {
      await abortWriters(work as PeriodWork | null);
      ctx.progress.finish();
    }
    return this.#totals;
  }

  async #open(period: string): Promise<PeriodWork> {
    const loaded = await damagedArchiveHelp(period, () => loadIndex(this.#dir, period, "full"));
    if (loaded?.rebuilt) {
      this.#ctx.log(
        `index of ${
          fileName(period)
        } did not match the file (an interrupted archive run?); rebuilt it from the file`,
        "warn",
      );
    }
    const existing = loaded?.index ?? null;
    return {
      period,
      existing,
      indexStale: loaded?.rebuilt ?? false,
      present: new Set(existing?.entries.map((e) => e.id)),
      writer: null,
      versionsWriter: null,
      versionKeys: new Set(),
      missing: new Map(),
      entries: [...(existing?.entries ?? [])],
      toDelete: [],
      added: 0,
    };
  }

  async #inOtherGranularity(run: RunRecord): Promise<boolean> {
    if (this.#otherPeriods.size === 0) return false;
    const period = periodOf(run.startedAt, this.#options.period === "month" ? "day" : "month");
    if (!this.#otherPeriods.has(period)) return false;
    if (!this.#otherIndexes.has(period)) {
      try {
        const loaded = await loadIndex(this.#dir, period, "full");
        this.#otherIndexes.set(period, new Set(loaded?.index.entries.map((e) => e.id)));
      } catch (err) {
        this.#ctx.log(`cannot read ${fileName(period)}: ${(err as Error).message}`, "warn");
        this.#otherIndexes.set(period, null);
      }
    }
    return this.#otherIndexes.get(period)?.has(run.id) ?? false;
  }

  async #add(work: PeriodWork, run: RunRecord): Promise<void> {
    if (work.present.has(run.id) || await this.#inOtherGranularity(run)) {
      // Archived by an earlier run that stopped before deleting it.
      work.toDelete.push(run.id);
      this.#totals.alreadyArchived++;
      return;
    }
    if (this.#ctx.dryRun) {
      work.toDelete.push(run.id);
      work.added++;
      return;
    }
    if (work.writer === null) {
      work.writer = await GzipFileWriter.create(join(this.#dir, fileName(work.period)));
      work.versionsWriter = await GzipFileWriter.create(join(this.#dir, versionsName(work.period)));
      if (work.existing !== null) {
        const source = join(this.#dir, fileName(work.period));
        const writer = work.writer;
        await damagedArchiveHelp(work.period, async () => {
          for await (
            const line of readGzipLines(source, {
              what: `Cannot copy archive ${fileName(work.period)}`,
            })
          ) {
            await writer.writeLine(line);
          }
        });
        await this.#copyVersions(work);
        // Its earlier runs' versions that are not in the archive yet (archived before
        // archives kept them), while the records store still holds them.
        for (const entry of work.existing.entries) {
          await this.#addVersion(work, entry.flowId, entry.flowVersion, false);
        }
      }
    }
    await this.#addVersion(work, run.flowId, run.flowVersion, true);
    const events = await this.#records.getEvents(run.id);
    // Its runs.onFailure marker goes with it (deleted with the run): the link stays.
    const onFailure = await this.#records.onFailureMarker(run.id);
    await work.writer.writeLine(
      JSON.stringify({ run, events, ...(onFailure === null ? {} : { onFailure }) }),
    );
    work.present.add(run.id);
    work.entries.push(summarizeRun(run));
    work.toDelete.push(run.id);
    work.added++;
  }

  /**
   * Periods archived before archives kept flow versions (their index names no
   * flow versions file, as one written by Flowstate 0.5), not rewritten in
   * this run: write their flow versions file, with the versions of their runs
   * that the records store still holds, before the retention job deletes
   * them. The runs file is left as it is; a damaged one is skipped with a
   * warning (the next run tries again), as its runs were archived already.
   */
  async #keepEarlierVersions(): Promise<void> {
    for (const period of await archiveFiles(this.#dir)) {
      if (this.#damaged.has(period)) continue;
      if (this.#ctx.signal.aborted) {
        this.#totals.cancelled = true;
        return;
      }
      try {
        const quick = await damagedArchiveHelp(period, () => loadIndex(this.#dir, period, "size"));
        if (quick === null || quick.index.versions !== undefined) continue;
        await this.#keepVersionsOf(period);
      } catch (err) {
        if (!(err instanceof DamagedArchiveError)) throw err;
        this.#ctx.log(
          `cannot keep the flow versions of the runs archived in ${fileName(period)}: ` +
            err.message,
          "warn",
        );
      }
      await this.#lease.renew();
    }
  }

  async #keepVersionsOf(period: string): Promise<void> {
    const work = await this.#open(period);
    const existing = work.existing;
    if (existing === null) return;
    const name = fileName(period);
    try {
      work.versionsWriter = await GzipFileWriter.create(join(this.#dir, versionsName(period)));
      await this.#copyVersions(work);
      const before = this.#totals.versionsArchived;
      for (const entry of existing.entries) {
        await this.#addVersion(work, entry.flowId, entry.flowVersion, false);
      }
      const written = await finishVersions(work, name);
      await this.#lease.renew(true);
      await work.versionsWriter.commit();
      work.versionsWriter = null;
      const index: ArchiveIndex = { ...existing, versions: versionsIndex(work, written) };
      await writeFileAtomic(join(this.#dir, indexName(period)), JSON.stringify(index));
      this.#ctx.log(
        `kept ${this.#totals.versionsArchived - before} flow versions of runs archived earlier ` +
          `into ${versionsName(period)} (${existing.entries.length} runs in ${name})`,
      );
    } finally {
      await abortWriters(work);
    }
  }

  /** Copy the period's flow versions file (if any) into the new one. */
  async #copyVersions(work: PeriodWork): Promise<void> {
    const writer = work.versionsWriter!;
    const source = join(this.#dir, versionsName(work.period));
    const what = `Cannot copy archive ${versionsName(work.period)}`;
    await damagedArchiveHelp(work.period, async () => {
      let n = 0;
      try {
        for await (const line of readGzipLines(source, { what })) {
          const version = versionOnLine(line, { what, path: source, n: ++n });
          const key = versionKey(version.flowId, version.hash);
          if (work.versionKeys.has(key)) continue;
          work.versionKeys.add(key);
          await writer.writeLine(line);
        }
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      }
    });
  }

  /**
   * Write a flow version into the period's new flow versions file, from the
   * records store, unless it is there already; one the store no longer holds
   * is counted in `versionsMissing` when it is a run being archived now.
   */
  async #addVersion(
    work: PeriodWork,
    flowId: string,
    hash: string,
    archiving: boolean,
  ): Promise<void> {
    // A job's runs (`"job"`) and a broken flow file's ticks (`"unloadable"`, the scheduler's
    // UNLOADABLE_VERSION) ran no saved flow version: none is missing.
    if (hash === "job" || hash === "unloadable") return;
    const key = versionKey(flowId, hash);
    if (work.versionKeys.has(key)) return;
    const missing = work.missing.get(key);
    const version = missing === undefined ? await this.#records.getVersion(flowId, hash) : null;
    if (version === null) {
      work.missing.set(key, (missing ?? 0) + (archiving ? 1 : 0));
      if (archiving) this.#totals.versionsMissing++;
      return;
    }
    await work.versionsWriter!.writeLine(JSON.stringify({ version }));
    work.versionKeys.add(key);
    this.#totals.versionsArchived++;
  }

  async #finish(work: PeriodWork): Promise<void> {
    const ctx = this.#ctx;
    const name = fileName(work.period);
    const path = join(this.#dir, name);
    const indexPath = join(this.#dir, indexName(work.period));
    if (ctx.dryRun) {
      const ids = work.toDelete.slice(0, 10).join(", ");
      ctx.log(
        `would archive ${work.added} runs into ${name}${
          work.toDelete.length > work.added
            ? ` (${work.toDelete.length - work.added} more are there already)`
            : ""
        } and delete ${work.toDelete.length} from the records store: ${ids}${
          work.toDelete.length > 10 ? ", …" : ""
        }`,
      );
      this.#totals.periods.push(work.period);
      this.#dryRunPeriods.push({
        period: work.period,
        file: name,
        runs: work.added,
        alreadyArchived: work.toDelete.length - work.added,
        ids: work.toDelete.slice(0, 100),
      });
      return;
    }
    if (work.writer !== null) {
      const writer = work.writer;
      const versionsWriter = work.versionsWriter!;
      const written = await writer.finish();
      try {
        await _internals.verifyArchiveFile(writer.tempPath, {
          bytes: written.bytes,
          sha256: written.sha256,
          ids: work.entries.map((e) => e.id),
        }, `Cannot archive runs into ${name}: the file written did not read back intact`);
      } catch (err) {
        await abortWriters(work);
        throw err;
      }
      const versionsWritten = await finishVersions(work, name);
      await this.#lease.renew(true);
      // The versions first: a kill between the two renames leaves a version more, never one less.
      await versionsWriter.commit();
      work.versionsWriter = null;
      await writer.commit();
      work.writer = null;
      await _internals.afterArchiveFile(path);
      const index: ArchiveIndex = {
        format: ARCHIVE_INDEX_FORMAT,
        version: 1,
        file: name,
        period: work.period,
        runs: work.entries.length,
        bytes: written.bytes,
        sha256: written.sha256,
        updatedAt: new Date(ctx.clock.now()).toISOString(),
        entries: work.entries,
        versions: versionsIndex(work, versionsWritten),
      };
      await writeFileAtomic(indexPath, JSON.stringify(index));
      await _internals.afterArchiveIndex(indexPath);
      this.#totals.archived += work.added;
      this.#totals.files++;
      this.#totals.bytesWritten += written.bytes;
      ctx.log(
        `archived ${work.added} runs into ${name} (${work.entries.length} runs, ${
          formatBytes(written.bytes)
        }; ${work.versionKeys.size} flow versions in ${versionsName(work.period)})`,
      );
      const lost = [...work.missing].filter(([, runs]) => runs > 0);
      if (lost.length > 0) {
        ctx.log(
          `${lost.reduce((n, [, runs]) => n + runs, 0)} runs archived into ${name} without ` +
            `their flow version, which the records store no longer held (their definitions ` +
            `are not in the archive): ${lost.slice(0, 10).map(([key]) => key).join(", ")}${
              lost.length > 10 ? ", …" : ""
            }`,
          "warn",
        );
      }
    } else if (work.indexStale && work.existing !== null) {
      await writeFileAtomic(indexPath, JSON.stringify(work.existing));
    }
    this.#totals.periods.push(work.period);
    await this.#delete(work);
  }

  async #delete(work: PeriodWork): Promise<void> {
    const ctx = this.#ctx;
    const batchSize = this.#options.batchSize;
    ctx.progress.start(`delete archived runs of ${work.period}`, work.toDelete.length);
    for (let i = 0; i < work.toDelete.length; i += batchSize) {
      if (ctx.signal.aborted) {
        ctx.log(
          `cancelled with ${
            work.toDelete.length - i
          } archived runs of ${work.period} not yet deleted; the next archive run deletes them`,
          "warn",
        );
        this.#totals.cancelled = true;
        break;
      }
      const batch = work.toDelete.slice(i, i + batchSize);
      this.#totals.deleted += await this.#records.deleteRuns(batch);
      ctx.progress.advance(batch.length);
      await this.#lease.renew();
    }
    ctx.progress.finish();
  }
}

/**
 * The archive job. Options: `olderThan`, `period`, `batchSize` (see
 * {@linkcode ArchiveOptions}). Result: `{ archived, files, bytesWritten,
 * deleted, alreadyArchived, skippedRunning, versionsArchived,
 * versionsMissing, periods, cancelled }` (`versionsArchived`: flow versions
 * newly written into the archive, those of runs archived earlier included;
 * `versionsMissing`: runs archived without theirs, which the records store
 * no longer held); with
 * `dryRun`, nothing is written and `wouldArchive` lists each period's runs.
 */
const archiveJob: Job<ArchiveOptions> = defineJob<ArchiveOptions>({
  name: "archive",
  description: "move finished runs older than olderThan into compressed archive files",
  optionsSchema: archiveOptions,
  defaults,
  defaultSchedule: "30 2 * * *",
  async run(ctx, options): Promise<JobResult> {
    const olderThan = parseDuration(options.olderThan, "olderThan");
    const cutoff = ctx.clock.now() - olderThan;
    const records = await ctx.records();
    const store = await ctx.store(ctx.runtime.config.records);
    const lease = new ArchiveLease(store, ctx);
    if (!ctx.dryRun) await lease.acquire();
    const archiver = new Archiver(ctx, records, options, lease);
    try {
      const totals = await archiver.run(cutoff);
      const damaged = archiver.damaged;
      // Every other period is archived: now the job fails, naming the damaged files.
      if (damaged.length > 0) throw damagedArchivesError(damaged, totals);
      const result: JobResult = { ...totals };
      if (ctx.dryRun) {
        const periods = archiver.dryRunPeriods;
        result.dryRun = true;
        result.wouldArchive = periods.reduce((n, p) => n + (p.runs as number), 0);
        result.wouldDelete = periods.reduce(
          (n, p) => n + (p.runs as number) + (p.alreadyArchived as number),
          0,
        );
        result.plan = periods;
      }
      return result;
    } finally {
      await lease.release();
    }
  },
});

export default archiveJob;

/**
 * Finish the period's new flow versions file and re-read it from disk: it
 * must hold exactly the versions written, in order, with the size and
 * SHA-256 written (else every temp file of the period is discarded).
 */
async function finishVersions(work: PeriodWork, name: string): Promise<WrittenFile> {
  const writer = work.versionsWriter!;
  const written = await writer.finish();
  try {
    await _internals.verifyArchiveVersions(
      writer.tempPath,
      { bytes: written.bytes, sha256: written.sha256, ids: [...work.versionKeys] },
      `Cannot archive runs into ${name}: the flow versions file written did not read back intact`,
    );
  } catch (err) {
    await abortWriters(work);
    throw err;
  }
  return written;
}

/** What the index says of the period's flow versions file just written. */
function versionsIndex(work: PeriodWork, written: WrittenFile): ArchiveVersionsIndex {
  return {
    file: versionsName(work.period),
    count: work.versionKeys.size,
    bytes: written.bytes,
    sha256: written.sha256,
  };
}

/** Discard the temp files of a period being written, if any. */
async function abortWriters(work: PeriodWork | null): Promise<void> {
  if (work === null) return;
  await work.writer?.abort();
  await work.versionsWriter?.abort();
  work.writer = null;
  work.versionsWriter = null;
}

/** A period's existing archive file is damaged (a `StoreCorruptError` saying what to do). */
class DamagedArchiveError extends StoreCorruptError {
  /** The period whose file it is. */
  readonly period: string;
  constructor(
    period: string,
    message: string,
    details: { path: string; movedTo: null },
    options: ErrorOptions,
  ) {
    super(message, details, options);
    this.name = "StoreCorruptError";
    this.period = period;
  }
}

/**
 * The error an archive job that found damaged archive files ends with, once
 * it archived every other period: the first file's message (where it is,
 * that it was left as it is, the two ways out), what was archived all the
 * same, and the other damaged files, if any (each was logged in full).
 */
function damagedArchivesError(
  damaged: readonly DamagedArchiveError[],
  totals: ArchiveTotals,
): StoreCorruptError {
  const [first, ...others] = damaged;
  const more = others.length === 0
    ? ""
    : `. ${others.length} more archive file${
      others.length === 1 ? " is" : "s are"
    } damaged and left as ${others.length === 1 ? "it is" : "they are"}, the same way: ${
      others.map((e) => e.path).join(", ")
    }`;
  const done = totals.cancelled
    ? "the job was cancelled before it archived every other period"
    : `every other period was archived (${totals.archived} run${
      totals.archived === 1 ? "" : "s"
    } into ${totals.files} file${totals.files === 1 ? "" : "s"})`;
  return new StoreCorruptError(
    `${first.message}${more}; ${done}`,
    { path: first.path, movedTo: null },
    { cause: first },
  );
}

/**
 * Run `read` (which reads the period's existing archive file); a
 * `StoreCorruptError` about that file is thrown again (as a
 * {@linkcode DamagedArchiveError}) saying that the file is damaged, where it
 * is, that it was left as it is, and the two ways out.
 */
async function damagedArchiveHelp<T>(period: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (!(err instanceof StoreCorruptError)) throw err;
    const name = fileName(period);
    const reason = err.message.slice(err.message.indexOf(": ") + 2);
    throw new DamagedArchiveError(
      period,
      `Cannot archive runs into ${name}: the archive file ${err.path} is damaged: ${reason}. ` +
        `It is left as it is and no run of ${period} is archived or deleted. ` +
        damagedArchiveWayOut(err.path, name),
      { path: err.path, movedTo: null },
      { cause: err },
    );
  }
}
