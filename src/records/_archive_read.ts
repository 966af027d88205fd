/**
 * Reading the archive that the `archive` job writes under `<home>/archive/`
 * (the files and their indexes are described in `jobs/archive.ts`): file
 * and period names, the archive indexes (checked against their file and
 * rebuilt from it when they do not match), the flow versions file beside
 * each archive file (`runs-<period>.versions.ndjson.gz`), and the public
 * readers {@linkcode listArchivedRuns} and {@linkcode readArchivedRun}, which
 * `jobs/archive.ts` re-exports. Nothing here writes.
 *
 * @module
 */
import { join } from "node:path";
import { damaged, readGzipLines, runningChecksum, sha256File } from "../archive_format.ts";
import { StoreCorruptError } from "../errors.ts";
import { shellQuote } from "../_shell.ts";
import { runIdTime } from "./run_id.ts";
import {
  type RunEvent,
  type RunRecord,
  type RunStatus,
  type RunSummary,
  summarizeRun,
} from "./types.ts";
import { parseJson } from "../_json.ts";
import type { FlowVersion } from "./flow_version.ts";
import type { OnFailureMarker } from "./types.ts";

/**
 * How runs are grouped into archive files: by day or by month of their start time (UTC).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, runJob } from "@flowstate/core";
 * import { type ArchivePeriod, listArchivedRuns } from "@flowstate/core/jobs";
 *
 * const home = await Deno.makeTempDir();
 * let now = Date.UTC(2026, 0, 1);
 * {
 *   await using rt = await openRuntime({ home, config: { stores: { main: { plugin: "memory" } } }, clock: { now: () => now } });
 *   await rt.runFlow({ id: "hi", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] });
 *   now += 40 * 86_400_000;
 *   const period: ArchivePeriod = "month";
 *   await runJob(rt, "archive", { options: { period } });
 * }
 * assert.equal((await listArchivedRuns(home))[0].archive, "runs-2026-01.ndjson.gz");
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export type ArchivePeriod = "day" | "month";

/** The format name of an archive index. */
export const ARCHIVE_INDEX_FORMAT = "flowstate.archive-index";

/** The index of one archive file (`runs-<period>.index.json`). */
export interface ArchiveIndex {
  /** Always {@linkcode ARCHIVE_INDEX_FORMAT}. */
  format: string;
  /** Index format version (1). */
  version: number;
  /** The archive file's name (in the same directory). */
  file: string;
  /** `YYYY-MM` or `YYYY-MM-DD` (UTC). */
  period: string;
  /** Runs in the file. */
  runs: number;
  /** Size of the file in bytes. */
  bytes: number;
  /** SHA-256 (hex) of the file. */
  sha256: string;
  /** When the file was last written (ISO 8601). */
  updatedAt: string;
  /** One summary per run, in file order. */
  entries: RunSummary[];
  /**
   * The flow versions file beside it (`runs-<period>.versions.ndjson.gz`),
   * which holds the definitions its runs ran; absent in indexes written
   * before archives kept them (and by Flowstate 0.5, which leaves that file
   * alone).
   */
  versions?: ArchiveVersionsIndex;
}

/**
 * What an {@linkcode ArchiveIndex} says of its period's flow versions file:
 * one line per flow version, `{ "version": <FlowVersion> }`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { join } from "node:path";
 * import { openRuntime, runJob } from "@flowstate/core";
 * import type { ArchiveIndex, ArchiveVersionsIndex } from "./_archive_read.ts";
 *
 * const home = await Deno.makeTempDir();
 * let now = Date.UTC(2026, 0, 1);
 * {
 *   await using rt = await openRuntime({ home, config: { stores: { main: { plugin: "memory" } } }, clock: { now: () => now } });
 *   await rt.runFlow({ id: "hi", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] });
 *   now += 40 * 86_400_000;
 *   await runJob(rt, "archive");
 * }
 * const index: ArchiveIndex = JSON.parse(
 *   await Deno.readTextFile(join(home, "archive", "runs-2026-01.index.json")),
 * );
 * const versions: ArchiveVersionsIndex | undefined = index.versions;
 * assert.deepEqual([versions?.file, versions?.count], ["runs-2026-01.versions.ndjson.gz", 1]);
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export interface ArchiveVersionsIndex {
  /** The file's name (in the same directory). */
  file: string;
  /** Flow versions in it. */
  count: number;
  /** Size of the file in bytes. */
  bytes: number;
  /** SHA-256 (hex) of the file. */
  sha256: string;
}

/**
 * An archived run's summary, with the file that holds it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, runJob } from "@flowstate/core";
 * import { type ArchivedRunSummary, listArchivedRuns } from "@flowstate/core/jobs";
 *
 * const home = await Deno.makeTempDir();
 * let now = Date.UTC(2026, 0, 1);
 * {
 *   await using rt = await openRuntime({ home, config: { stores: { main: { plugin: "memory" } } }, clock: { now: () => now } });
 *   await rt.runFlow({ id: "hi", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] });
 *   now += 40 * 86_400_000;
 *   await runJob(rt, "archive");
 * }
 * const [summary]: ArchivedRunSummary[] = await listArchivedRuns(home);
 * assert.deepEqual([summary.flowId, summary.status], ["hi", "succeeded"]);
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export interface ArchivedRunSummary extends RunSummary {
  /** The archive file's name (under `<home>/archive/`). */
  archive: string;
}

/**
 * A run read back from an archive.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, runJob } from "@flowstate/core";
 * import { type ArchivedRun, readArchivedRun } from "@flowstate/core/jobs";
 *
 * const home = await Deno.makeTempDir();
 * let now = Date.UTC(2026, 0, 1);
 * let runId = "";
 * {
 *   await using rt = await openRuntime({ home, config: { stores: { main: { plugin: "memory" } } }, clock: { now: () => now } });
 *   runId = (await rt.runFlow({ id: "hi", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] })).id;
 *   now += 40 * 86_400_000;
 *   await runJob(rt, "archive");
 * }
 * const archived: ArchivedRun | null = await readArchivedRun(home, runId);
 * assert.equal(archived?.run.status, "succeeded");
 * assert.ok(archived?.events.some((e) => e.type === "node.log"));
 * assert.equal(archived?.version?.definition.nodes[0].type, "log"); // the definition it ran
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export interface ArchivedRun {
  /** The run's record, as it was in the records store. */
  run: RunRecord;
  /** Its events. */
  events: RunEvent[];
  /** The archive file's name (under `<home>/archive/`). */
  archive: string;
  /**
   * The flow version the run ran (`run.flowVersion`), with its definition, as
   * the archive keeps it; `null` when the archive does not hold it: the run
   * was archived before archives kept flow versions (or by Flowstate 0.5), or
   * its version was no longer in the records store when it was archived.
   */
  version: FlowVersion | null;
  /**
   * The config's `runs.onFailure` flow that was started about the run (its
   * marker in the records store when it was archived), if one was.
   */
  onFailure?: OnFailureMarker;
}

/**
 * Filters of {@linkcode listArchivedRuns}; they combine.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, runJob } from "@flowstate/core";
 * import { listArchivedRuns, type ListArchivedRunsOptions } from "@flowstate/core/jobs";
 *
 * const home = await Deno.makeTempDir();
 * let now = Date.UTC(2026, 0, 1);
 * {
 *   await using rt = await openRuntime({ home, config: { stores: { main: { plugin: "memory" } } }, clock: { now: () => now } });
 *   await rt.runFlow({ id: "ok", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] });
 *   await rt.runFlow({ id: "bad", nodes: [{ id: "x", type: "fail", with: { message: "no" } }] });
 *   now += 40 * 86_400_000;
 *   await runJob(rt, "archive");
 * }
 * const failures: ListArchivedRunsOptions = { status: "failed", limit: 10 };
 * assert.deepEqual((await listArchivedRuns(home, failures)).map((r) => r.flowId), ["bad"]);
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export interface ListArchivedRunsOptions {
  /** Only runs of this flow. */
  flowId?: string;
  /** Only runs with this status. */
  status?: RunStatus;
  /** Only runs started at or after this time (ms since the epoch). */
  since?: number;
  /** Only runs started before this time (ms since the epoch, exclusive). */
  until?: number;
  /** At most this many (default 100). */
  limit?: number;
}

const FILE = /^runs-(\d{4}-\d{2}(?:-\d{2})?)\.ndjson\.gz$/;

/** `<home>/archive`. */
export function archiveDir(home: string): string {
  return join(home, "archive");
}

/** The period (UTC) that `ms` falls in: `YYYY-MM` or `YYYY-MM-DD`. */
export function periodOf(ms: number, period: ArchivePeriod): string {
  const iso = new Date(ms).toISOString();
  return period === "month" ? iso.slice(0, 7) : iso.slice(0, 10);
}

/** The time range `[start, end)` of a period name. */
function periodRange(period: string): [number, number] {
  const [y, m, d] = period.split("-").map(Number);
  if (d === undefined) return [Date.UTC(y, m - 1, 1), Date.UTC(y, m, 1)];
  return [Date.UTC(y, m - 1, d), Date.UTC(y, m - 1, d + 1)];
}

/** The archive file's name for a period: `runs-<period>.ndjson.gz`. */
export function fileName(period: string): string {
  return `runs-${period}.ndjson.gz`;
}

/** The index file's name for a period: `runs-<period>.index.json`. */
export function indexName(period: string): string {
  return `runs-${period}.index.json`;
}

/** The flow versions file's name for a period: `runs-<period>.versions.ndjson.gz`. */
export function versionsName(period: string): string {
  return `runs-${period}.versions.ndjson.gz`;
}

/** How a flow version is named in a flow versions file's checks: `<flowId>@<hash>`. */
export function versionKey(flowId: string, hash: string): string {
  return `${flowId}@${hash}`;
}

/** The flow version on a line of a flow versions file (`n`th of `path`), or a damaged error. */
export function versionOnLine(
  line: string,
  { what, path, n }: { what: string; path: string; n: number },
): FlowVersion {
  let version: FlowVersion | undefined;
  try {
    version = (parseJson(line) as { version?: FlowVersion }).version;
  } catch (err) {
    throw damaged(what, path, `line ${n} is not JSON`, err);
  }
  if (typeof version?.flowId !== "string" || typeof version.hash !== "string") {
    throw damaged(what, path, `line ${n} holds no flow version`);
  }
  return version;
}

/**
 * Read a whole flow versions file: what its index says of it, or `null`
 * when there is none.
 */
async function scanVersions(dir: string, period: string): Promise<ArchiveVersionsIndex | null> {
  const path = join(dir, versionsName(period));
  const what = `Cannot read archive ${versionsName(period)}`;
  const sum = runningChecksum();
  let n = 0;
  try {
    for await (const line of readGzipLines(path, { what, onBytes: sum.onBytes })) {
      versionOnLine(line, { what, path, n: ++n });
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  return { file: versionsName(period), count: n, bytes: sum.bytes, sha256: sum.hex() };
}

/**
 * The index's word on the period's flow versions file, checked against the
 * file (size and SHA-256); rebuilt from the file when it does not match, or
 * left out when the file is gone (moved aside: its definitions are no longer
 * in the archive).
 */
async function checkVersions(
  dir: string,
  period: string,
  listed: ArchiveVersionsIndex | undefined,
): Promise<{ versions: ArchiveVersionsIndex | undefined; rebuilt: boolean }> {
  const path = join(dir, versionsName(period));
  let found: { sha256: string; bytes: number } | null = null;
  try {
    found = await sha256File(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  if (found === null) return { versions: undefined, rebuilt: listed !== undefined };
  if (listed?.bytes === found.bytes && listed.sha256 === found.sha256) {
    return { versions: listed, rebuilt: false };
  }
  return { versions: (await scanVersions(dir, period)) ?? undefined, rebuilt: true };
}

/** The archive files in `dir`, by period. */
export async function archiveFiles(dir: string): Promise<string[]> {
  const periods: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      const match = entry.isFile ? FILE.exec(entry.name) : null;
      if (match) periods.push(match[1]);
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
  return periods.sort();
}

/** Read a whole archive file: its runs' summaries in file order, size and checksum. */
async function scanArchive(dir: string, period: string): Promise<ArchiveIndex> {
  const path = join(dir, fileName(period));
  const what = `Cannot read archive ${fileName(period)}`;
  const sum = runningChecksum();
  const entries: RunSummary[] = [];
  let n = 0;
  for await (const line of readGzipLines(path, { what, onBytes: sum.onBytes })) {
    n++;
    let run: RunRecord | undefined;
    try {
      run = (parseJson(line) as { run?: RunRecord }).run;
    } catch {
      throw damaged(what, path, `line ${n} is not JSON`);
    }
    if (typeof run?.id !== "string") throw damaged(what, path, `line ${n} holds no run`);
    entries.push(summarizeRun(run));
  }
  const stat = await Deno.stat(path);
  return {
    format: ARCHIVE_INDEX_FORMAT,
    version: 1,
    file: fileName(period),
    period,
    runs: entries.length,
    bytes: sum.bytes,
    sha256: sum.hex(),
    updatedAt: (stat.mtime ?? new Date(0)).toISOString(),
    entries,
  };
}

/**
 * The index of a period's archive, or `null` if there is no archive file.
 * `check: "size"` trusts an index whose size matches the file; `"full"`
 * checksums the file. An index that is missing, unreadable or does not match
 * is rebuilt from the file (`rebuilt: true`, not written here).
 */
export async function loadIndex(
  dir: string,
  period: string,
  check: "size" | "full",
): Promise<{ index: ArchiveIndex; rebuilt: boolean } | null> {
  const path = join(dir, fileName(period));
  let size: number;
  try {
    size = (await Deno.stat(path)).size;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  let index: ArchiveIndex | undefined;
  try {
    const parsed = JSON.parse(await Deno.readTextFile(join(dir, indexName(period))));
    if (
      parsed?.format === ARCHIVE_INDEX_FORMAT && parsed.version === 1 &&
      Array.isArray(parsed.entries) && parsed.entries.length === parsed.runs
    ) {
      index = parsed as ArchiveIndex;
    }
  } catch {
    // Missing or unreadable: rebuilt below.
  }
  if (index !== undefined && index.bytes === size) {
    if (check === "size") return { index, rebuilt: false };
    const { sha256 } = await sha256File(path);
    if (sha256 === index.sha256) {
      const { versions, rebuilt } = await checkVersions(dir, period, index.versions);
      return { index: withVersions(index, versions), rebuilt };
    }
  }
  const scanned = await scanArchive(dir, period);
  if (check === "size") return { index: scanned, rebuilt: true };
  const { versions } = await checkVersions(dir, period, index?.versions);
  return { index: withVersions(scanned, versions), rebuilt: true };
}

function withVersions(
  index: ArchiveIndex,
  versions: ArchiveVersionsIndex | undefined,
): ArchiveIndex {
  const { versions: _, ...rest } = index;
  return versions === undefined ? rest : { ...rest, versions };
}

/** The run on one line (the `n`th of `path`; `what` failed if it is not JSON), if it is that run's. */
function runOnLine(
  line: string,
  runId: string,
  { what, path, n }: { what: string; path: string; n: number },
): { run: RunRecord; events: RunEvent[]; onFailure?: OnFailureMarker } | null {
  if (!line.includes(`"${runId}"`)) return null;
  let parsed: { run?: RunRecord; events?: RunEvent[]; onFailure?: OnFailureMarker };
  try {
    parsed = parseJson(line);
  } catch (err) {
    throw damaged(what, path, `line ${n} is not JSON`, err);
  }
  if (parsed?.run?.id !== runId) return null;
  const { onFailure } = parsed;
  return {
    run: parsed.run,
    events: parsed.events ?? [],
    ...(typeof onFailure === "object" && onFailure !== null ? { onFailure } : {}),
  };
}

/**
 * What to do about the damaged archive file at `path` (the period's file
 * `name`): restore it, or move it aside (the command, its paths quoted for
 * the shell), and what moving it aside means.
 */
export function damagedArchiveWayOut(path: string, name: string): string {
  if (path.endsWith(".versions.ndjson.gz")) {
    return `Restore it from a backup, or move it aside (mv ${shellQuote(path)} ${
      shellQuote(`${path}.damaged`)
    }): the next archive run that adds runs to ${name} writes a new one with the flow versions ` +
      `of its runs that the records store still holds, and the definitions only in the moved ` +
      `file are no longer read back with archived runs (keep it: they are still in it)`;
  }
  return `Restore it from a backup, or move it aside (mv ${shellQuote(path)} ${
    shellQuote(`${path}.damaged`)
  }): the next archive run then writes a new ${name} holding only the runs it archives, and ` +
    `the runs in the moved file are no longer listed or read back as archived runs (keep it: ` +
    `they are still in it)`;
}

/**
 * Run `read` (which reads the period's archive file for a reader); a
 * `StoreCorruptError` about that file is thrown again saying that the file is
 * damaged, its full path, that it is left as it is, and the two ways out.
 */
async function readingArchive<T>(period: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (!(err instanceof StoreCorruptError)) throw err;
    const reason = err.message.slice(err.message.indexOf(": ") + 2);
    throw new StoreCorruptError(
      `Cannot read archived runs: the archive file ${err.path} is damaged: ${reason}. It is ` +
        `left as it is. ${damagedArchiveWayOut(err.path, fileName(period))}`,
      { path: err.path, movedTo: null },
      { cause: err },
    );
  }
}

/** A file's identity and content as `stat` sees it: changes when it is rewritten (renamed over). */
async function fileStamp(path: string): Promise<string | null> {
  try {
    const s = await Deno.stat(path);
    return `${s.size}:${s.mtime?.getTime() ?? ""}:${s.ino ?? ""}`;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/** A period's index as an {@linkcode ArchiveReader} keeps it. */
interface KeptIndex {
  /** The archive file's stamp when the index was read. */
  stamp: string;
  index: ArchiveIndex;
  ids: Set<string>;
}

/**
 * What an {@linkcode ArchiveReader} keeps of a period's index for the listings
 * of flows and jobs, apart from the index itself (a few entries per flow, so
 * kept however many runs the archive holds): each flow's newest run, and the
 * flow versions its runs ran.
 */
interface PeriodDigest {
  /** The archive file's stamp when the index was read. */
  stamp: string;
  /** The newest run of each flow (and job, `job:<name>`) in the period. */
  newest: Map<string, RunSummary>;
  /** The flow versions the period's runs ran (`versionKey`). */
  versions: Set<string>;
  /** The same, by flow: the hashes of the versions each flow's runs in the period ran. */
  hashes: Map<string, Set<string>>;
}

/**
 * A flow as the archive knows it, from its indexes: see
 * {@linkcode ArchiveReader.flows}.
 */
export interface ArchivedFlow {
  /** Its newest archived run. */
  newest: ArchivedRunSummary;
  /** The hashes of the flow versions its archived runs ran. */
  versions: Set<string>;
}

/** A flow version from the archive's flow versions files, with the archive file whose runs ran it. */
export interface ArchivedFlowVersion {
  /** The flow version, with its definition and source. */
  version: FlowVersion;
  /** The archive file whose runs ran it (under `<home>/archive/`); its versions file holds it. */
  archive: string;
}

/** How many flow versions files an {@linkcode ArchiveReader} keeps read (the last ones read). */
const KEEP_VERSIONS_FILES = 8;

/** The newest-first order of archived runs' summaries (by start time, then id). */
const newestFirst = (a: RunSummary, b: RunSummary) =>
  b.startedAt - a.startedAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

/**
 * A flow version read back from the archive by {@linkcode ArchiveReader.version}:
 * `version` is `null` when archived runs ran it but the archive does not keep
 * it (archived before archives kept flow versions, or already deleted from
 * the records store when its runs were archived).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, runJob } from "@flowstate/core";
 * import { ArchiveReader, type ArchivedVersion } from "./_archive_read.ts";
 *
 * const home = await Deno.makeTempDir();
 * let now = Date.UTC(2026, 0, 1);
 * let hash = "";
 * {
 *   await using rt = await openRuntime({ home, config: { stores: { main: { plugin: "memory" } } }, clock: { now: () => now } });
 *   hash = (await rt.runFlow({ id: "hi", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] })).flowVersion;
 *   now += 40 * 86_400_000;
 *   await runJob(rt, "archive");
 * }
 * const found: ArchivedVersion | null = await new ArchiveReader(home).version("hi", hash);
 * assert.deepEqual([found?.archive, found?.version?.seq], ["runs-2026-01.ndjson.gz", 1]);
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export interface ArchivedVersion {
  /** The flow version, with its definition and source, or `null` (see above). */
  version: FlowVersion | null;
  /** The archive file whose runs ran it (under `<home>/archive/`); its versions file holds it. */
  archive: string;
}

/**
 * Where a listing of archived runs goes on from: the last run of the page before
 * (the runs after it in newest-first order follow).
 */
export interface ArchivedRunsAfter {
  /** Its start time. */
  startedAt: number;
  /** Its id. */
  id: string;
}

/**
 * Reads the archive under `<home>/archive/` back, remembering what it read
 * for the next reads: each period's index (the ids and summaries of its
 * runs), kept while its archive file is the same (its size, modification
 * time and inode, one `stat` per read), and the last runs read whole (with
 * their flow version), kept while their archive and flow versions files are
 * the same. So a reader that lives long (`flowstate serve`'s) answers a run
 * asked for again without decompressing anything, and finds which file holds
 * a run by its index in memory; a file the archive job rewrote is read
 * again. {@linkcode readArchivedRun} and {@linkcode listArchivedRuns} are a
 * fresh reader's answers (`runs show`, `runs ls --archived`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, runJob } from "@flowstate/core";
 * import { ArchiveReader } from "./_archive_read.ts";
 *
 * const home = await Deno.makeTempDir();
 * let now = Date.UTC(2026, 0, 1);
 * let runId = "";
 * {
 *   await using rt = await openRuntime({ home, config: { stores: { main: { plugin: "memory" } } }, clock: { now: () => now } });
 *   runId = (await rt.runFlow({ id: "hi", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] })).id;
 *   now += 40 * 86_400_000;
 *   await runJob(rt, "archive");
 * }
 * const reader = new ArchiveReader(home);
 * assert.equal((await reader.read(runId))?.run.status, "succeeded");
 * assert.equal((await reader.read(runId))?.archive, "runs-2026-01.ndjson.gz"); // from memory
 * assert.equal((await reader.list({ flowId: "hi" })).length, 1);
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export class ArchiveReader {
  readonly #dir: string;
  readonly #keepRuns: number;
  readonly #keepSummaries: number;
  /** Indexes by period, least recently used first. */
  readonly #indexes = new Map<string, KeptIndex>();
  #keptSummaries = 0;
  /** Runs read whole by id, least recently used first, with the stamps of their files. */
  readonly #runs = new Map<string, { stamp: string; versions: string | null; run: ArchivedRun }>();
  /** Each period's digest (kept whatever `keepSummaries` says: a few entries per flow). */
  readonly #digests = new Map<string, PeriodDigest>();
  /** Flow versions read (`versionKey`), least recently used first, with their versions file's stamp. */
  readonly #versions = new Map<string, { stamp: string | null; found: ArchivedVersion }>();
  /**
   * Flow versions files read whole (by period, least recently used first, at
   * most {@linkcode KEEP_VERSIONS_FILES}), by flow, with the file's stamp.
   */
  readonly #versionFiles = new Map<string, { stamp: string; byFlow: Map<string, FlowVersion[]> }>();

  /**
   * A reader of the archive under `home`. `keepRuns`: runs read whole kept
   * (default 32); `keepSummaries`: run summaries of indexes kept, in all
   * (default 200,000; the least recently used indexes go first, and the last
   * one read is always kept).
   */
  constructor(home: string, options: { keepRuns?: number; keepSummaries?: number } = {}) {
    this.#dir = archiveDir(home);
    this.#keepRuns = options.keepRuns ?? 32;
    this.#keepSummaries = options.keepSummaries ?? 200_000;
  }

  /** The period's index (its archive file checked by size), or `null` when there is no file. */
  async #index(period: string): Promise<KeptIndex | null> {
    const stamp = await fileStamp(join(this.#dir, fileName(period)));
    const kept = this.#indexes.get(period);
    if (kept !== undefined) {
      this.#indexes.delete(period);
      this.#keptSummaries -= kept.index.entries.length;
    }
    if (stamp === null) return null;
    let fresh = kept?.stamp === stamp ? kept : undefined;
    if (fresh === undefined) {
      const loaded = await readingArchive(period, () => loadIndex(this.#dir, period, "size"));
      if (loaded === null) return null;
      const { index } = loaded;
      fresh = { stamp, index, ids: new Set(index.entries.map((e) => e.id)) };
    }
    this.#indexes.set(period, fresh);
    this.#keptSummaries += fresh.index.entries.length;
    for (const [old, { index }] of this.#indexes) {
      if (this.#keptSummaries <= this.#keepSummaries || old === period) break;
      this.#indexes.delete(old);
      this.#keptSummaries -= index.entries.length;
    }
    return fresh;
  }

  /**
   * One archived run, or `null` if no archive holds it: see
   * {@linkcode readArchivedRun}. Throws a `TypeError` if `runId` is not a
   * run id, and a `StoreCorruptError` if a file it reads is damaged.
   */
  async read(runId: string): Promise<ArchivedRun | null> {
    const time = runIdTime(runId);
    const periods = await archiveFiles(this.#dir);
    const likely = [periodOf(time, "month"), periodOf(time, "day")];
    const order = [
      ...likely.filter((p) => periods.includes(p)),
      ...periods.filter((p) => !likely.includes(p)).reverse(),
    ];
    for (const period of order) {
      const kept = await this.#index(period);
      if (!kept?.ids.has(runId)) continue;
      const versions = await fileStamp(join(this.#dir, versionsName(period)));
      const hit = this.#runs.get(runId);
      if (hit !== undefined) {
        this.#runs.delete(runId);
        if (hit.stamp === kept.stamp && hit.versions === versions) {
          this.#runs.set(runId, hit);
          return hit.run;
        }
      }
      const found = await readingArchive(period, async () => {
        const path = join(this.#dir, fileName(period));
        const what = `Cannot read archive ${fileName(period)}`;
        let n = 0;
        for await (const line of readGzipLines(path, { what })) {
          const found = runOnLine(line, runId, { what, path, n: ++n });
          if (found) return found;
        }
        return null;
      });
      if (found === null) continue;
      const version = await readingArchive(
        period,
        () => readArchivedVersion(this.#dir, period, found.run.flowId, found.run.flowVersion),
      );
      const run: ArchivedRun = { ...found, archive: fileName(period), version };
      if (this.#keepRuns > 0) {
        this.#runs.set(runId, { stamp: kept.stamp, versions, run });
        while (this.#runs.size > this.#keepRuns) this.#runs.delete(this.#runs.keys().next().value!);
      }
      return run;
    }
    return null;
  }

  /**
   * The period's digest, read again from its index only when its archive
   * file changed (one `stat`), or `null` when there is no file.
   */
  async #digest(period: string): Promise<PeriodDigest | null> {
    const stamp = await fileStamp(join(this.#dir, fileName(period)));
    const kept = this.#digests.get(period);
    if (stamp !== null && kept?.stamp === stamp) return kept;
    this.#digests.delete(period);
    const index = stamp === null ? null : await this.#index(period);
    if (index === null) return null;
    const digest: PeriodDigest = {
      stamp: index.stamp,
      newest: new Map(),
      versions: new Set(),
      hashes: new Map(),
    };
    for (const e of index.index.entries) {
      const newest = digest.newest.get(e.flowId);
      if (newest === undefined || newestFirst(e, newest) < 0) digest.newest.set(e.flowId, e);
      digest.versions.add(versionKey(e.flowId, e.flowVersion));
      let hashes = digest.hashes.get(e.flowId);
      if (hashes === undefined) digest.hashes.set(e.flowId, hashes = new Set());
      hashes.add(e.flowVersion);
    }
    this.#digests.set(period, digest);
    return digest;
  }

  /**
   * The newest archived run of each flow (and of each job, `job:<name>`),
   * from the indexes. A reader that lives long answers from what it kept of
   * each period's index: one `stat` per archive file, no file read unless
   * the archive job rewrote it. An index read again that does not match its
   * file is rebuilt from it; if that file is damaged, its `StoreCorruptError`
   * is thrown, or with `onDamaged` handed to it and its period left out.
   */
  async lastRuns(
    onDamaged?: (error: StoreCorruptError) => void,
  ): Promise<Map<string, ArchivedRunSummary>> {
    const out = new Map<string, ArchivedRunSummary>();
    for (const [period, digest] of await this.#allDigests(onDamaged)) {
      for (const [flowId, summary] of digest.newest) {
        const seen = out.get(flowId);
        if (seen === undefined || newestFirst(summary, seen) < 0) {
          out.set(flowId, { ...summary, archive: fileName(period) });
        }
      }
    }
    return out;
  }

  /**
   * Every period's digest, oldest period first (see {@linkcode lastRuns} for
   * what it costs and how a damaged file is met).
   */
  async #allDigests(
    onDamaged?: (error: StoreCorruptError) => void,
  ): Promise<[string, PeriodDigest][]> {
    const periods = await archiveFiles(this.#dir);
    for (const period of this.#digests.keys()) {
      if (!periods.includes(period)) this.#digests.delete(period);
    }
    const out: [string, PeriodDigest][] = [];
    for (const period of periods) {
      let digest: PeriodDigest | null;
      try {
        digest = await this.#digest(period);
      } catch (err) {
        if (!(err instanceof StoreCorruptError) || onDamaged === undefined) throw err;
        onDamaged(err);
        continue;
      }
      if (digest !== null) out.push([period, digest]);
    }
    return out;
  }

  /**
   * Every flow the archive holds runs of (jobs' runs, `job:<name>`, left
   * out), with its newest archived run and the versions its archived runs
   * ran: from the indexes alone, at the cost of {@linkcode lastRuns}.
   */
  async flows(
    onDamaged?: (error: StoreCorruptError) => void,
  ): Promise<Map<string, ArchivedFlow>> {
    const out = new Map<string, ArchivedFlow>();
    for (const [period, digest] of await this.#allDigests(onDamaged)) {
      for (const [flowId, summary] of digest.newest) {
        if (flowId.startsWith("job:")) continue;
        const seen = out.get(flowId);
        const hashes = digest.hashes.get(flowId) ?? new Set<string>();
        if (seen === undefined) {
          out.set(flowId, {
            newest: { ...summary, archive: fileName(period) },
            versions: new Set(hashes),
          });
          continue;
        }
        for (const h of hashes) seen.versions.add(h);
        if (newestFirst(summary, seen.newest) < 0) {
          seen.newest = { ...summary, archive: fileName(period) };
        }
      }
    }
    return out;
  }

  /**
   * The versions of `flowId` that the archive keeps (with definition and
   * source), each once, in no order. The indexes say which periods' runs ran
   * the flow; only those periods' flow versions files are read, newest
   * first, and only while a version they ran is not found yet nor in `known`
   * (the hashes the caller has already: the records store's), each kept
   * while it stays the same, the last few read. So a flow whose versions
   * are all recorded reads no versions file, and one with a version per
   * period reads each period's once. A version its archived runs
   * ran that no versions file keeps (archived before archives kept flow
   * versions, or already deleted when its runs were archived) is not in it.
   * A damaged file is thrown as a `StoreCorruptError`, or with `onDamaged`
   * handed to it and its versions left out.
   */
  async listVersions(
    flowId: string,
    onDamaged?: (error: StoreCorruptError) => void,
    known: ReadonlySet<string> = new Set(),
  ): Promise<ArchivedFlowVersion[]> {
    const found = new Map<string, ArchivedFlowVersion>();
    const digests = (await this.#allDigests(onDamaged)).reverse();
    for (const [period, digest] of digests) {
      const hashes = digest.hashes.get(flowId);
      // Only a period whose runs ran a version not found yet (nor `known`) is read.
      if (hashes === undefined || [...hashes].every((h) => found.has(h) || known.has(h))) continue;
      let versions: FlowVersion[];
      try {
        versions = (await this.#versionsFile(period))?.get(flowId) ?? [];
      } catch (err) {
        if (!(err instanceof StoreCorruptError) || onDamaged === undefined) throw err;
        onDamaged(err);
        continue;
      }
      for (const version of versions) {
        if (!found.has(version.hash)) {
          found.set(version.hash, { version, archive: fileName(period) });
        }
      }
    }
    return [...found.values()];
  }

  /** The period's flow versions file, by flow, or `null` when it has none. */
  async #versionsFile(period: string): Promise<Map<string, FlowVersion[]> | null> {
    const path = join(this.#dir, versionsName(period));
    const stamp = await fileStamp(path);
    const kept = this.#versionFiles.get(period);
    this.#versionFiles.delete(period);
    if (stamp === null) return null;
    if (kept?.stamp === stamp) {
      this.#versionFiles.set(period, kept);
      return kept.byFlow;
    }
    const byFlow = await readingArchive(period, async () => {
      const what = `Cannot read archive ${versionsName(period)}`;
      const out = new Map<string, FlowVersion[]>();
      let n = 0;
      try {
        for await (const line of readGzipLines(path, { what })) {
          const version = versionOnLine(line, { what, path, n: ++n });
          const list = out.get(version.flowId);
          if (list === undefined) out.set(version.flowId, [version]);
          else list.push(version);
        }
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) return null;
        throw err;
      }
      return out;
    });
    if (byFlow === null) return null;
    this.#versionFiles.set(period, { stamp, byFlow });
    while (this.#versionFiles.size > KEEP_VERSIONS_FILES) {
      this.#versionFiles.delete(this.#versionFiles.keys().next().value!);
    }
    return byFlow;
  }

  /**
   * The flow version `hash` of `flowId` as the archive keeps it, or `null`
   * when no archived run ran it. The indexes say which periods' runs ran it
   * (newest period first); only the flow versions file of such a period is
   * read, once while it stays the same. Throws a `StoreCorruptError` if a
   * file it reads is damaged.
   */
  async version(flowId: string, hash: string): Promise<ArchivedVersion | null> {
    const key = versionKey(flowId, hash);
    const periods = (await archiveFiles(this.#dir)).reverse();
    let ran: string | null = null;
    for (const period of periods) {
      const digest = await this.#digest(period);
      if (!digest?.versions.has(key)) continue;
      ran ??= period;
      const stamp = await fileStamp(join(this.#dir, versionsName(period)));
      const hit = this.#versions.get(key);
      this.#versions.delete(key);
      if (hit?.found.archive === fileName(period) && hit.stamp === stamp) {
        this.#versions.set(key, hit);
        return hit.found;
      }
      if (stamp === null) continue;
      const version = await readingArchive(
        period,
        () => readArchivedVersion(this.#dir, period, flowId, hash),
      );
      if (version === null) continue;
      const found: ArchivedVersion = { version, archive: fileName(period) };
      if (this.#keepRuns > 0) {
        this.#versions.set(key, { stamp, found });
        while (this.#versions.size > this.#keepRuns) {
          this.#versions.delete(this.#versions.keys().next().value!);
        }
      }
      return found;
    }
    return ran === null ? null : { version: null, archive: fileName(ran) };
  }

  /**
   * Archived runs' summaries, newest first, from the indexes: see
   * {@linkcode listArchivedRuns}. With `after`, only the runs that follow it
   * (the next page).
   */
  async list(
    options: ListArchivedRunsOptions & { after?: ArchivedRunsAfter } = {},
  ): Promise<ArchivedRunSummary[]> {
    const limit = options.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1) {
      throw new RangeError(
        `Cannot list archived runs: limit must be a positive integer (got ${limit})`,
      );
    }
    const { flowId, status, since, after } = options;
    const until = after === undefined
      ? options.until
      : Math.min(options.until ?? Infinity, after.startedAt + 1);
    const files = (await archiveFiles(this.#dir))
      .map((period) => ({ period, range: periodRange(period) }))
      .filter(({ range: [start, end] }) =>
        (since === undefined || end > since) && (until === undefined || start < until)
      )
      .sort((a, b) => b.range[1] - a.range[1] || b.range[0] - a.range[0]);
    const found: ArchivedRunSummary[] = [];
    for (const { period, range } of files) {
      if (found.length >= limit && range[1] <= found[limit - 1].startedAt) break;
      const kept = await this.#index(period);
      if (kept === null) continue;
      for (const e of kept.index.entries) {
        if (flowId !== undefined && e.flowId !== flowId) continue;
        if (status !== undefined && e.status !== status) continue;
        if (since !== undefined && e.startedAt < since) continue;
        if (until !== undefined && e.startedAt >= until) continue;
        if (after !== undefined && newestFirst(after as RunSummary, e) >= 0) continue;
        found.push({ ...e, archive: fileName(period) });
      }
      found.sort(newestFirst);
      if (found.length > limit) found.length = limit;
    }
    return found;
  }
}

const readers = new WeakMap<object, ArchiveReader>();

/**
 * The reader of the archive under `owner.home` (a runtime's), made once and
 * kept as long as `owner`, so that what it read of the archive indexes
 * serves the next reads: the runtime's records' listings, the API's and the
 * CLI's read through it.
 */
export function archiveReaderOf(owner: { readonly home: string }): ArchiveReader {
  let reader = readers.get(owner);
  if (reader === undefined) readers.set(owner, reader = new ArchiveReader(owner.home));
  return reader;
}

/**
 * Read one archived run back, or `null` if no archive under `home` holds it.
 * Looks first in the files of the period its id's time falls in, then in the
 * others' indexes; decompresses only the file that holds it (up to the run's
 * line), then the flow versions file beside it for the version the run
 * ran (`version`, `null` when the archive does not hold it). Throws a
 * `TypeError` if `runId` is not a run id, and a `StoreCorruptError` if a
 * file it reads is damaged.
 *
 * @example
 * ```ts
 * import { openRuntime, runJob } from "@flowstate/core";
 * import { readArchivedRun } from "@flowstate/core/jobs";
 * import assert from "node:assert/strict";
 *
 * const home = await Deno.makeTempDir();
 * let now = Date.UTC(2026, 0, 1);
 * const config = { stores: { main: { plugin: "memory" } } };
 * await using rt = await openRuntime({ home, config, clock: { now: () => now } });
 * const flow = { id: "hello", nodes: [{ id: "hi", type: "transform", with: { value: 1 } }] };
 * const run = await rt.runFlow(flow);
 * now += 40 * 86_400_000; // 40 days later: older than the default olderThan (30d)
 * await runJob(rt, "archive", { progress: "quiet" });
 * const archived = await readArchivedRun(home, run.id);
 * assert.equal(archived?.run.status, "succeeded");
 * assert.equal(archived?.archive, "runs-2026-01.ndjson.gz");
 * assert.deepEqual(archived?.version?.definition, flow); // kept with the run
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export async function readArchivedRun(home: string, runId: string): Promise<ArchivedRun | null> {
  return await new ArchiveReader(home, { keepRuns: 0 }).read(runId);
}

/** A flow version from the period's flow versions file, or `null` (no such file or version). */
async function readArchivedVersion(
  dir: string,
  period: string,
  flowId: string,
  hash: string,
): Promise<FlowVersion | null> {
  const path = join(dir, versionsName(period));
  const what = `Cannot read archive ${versionsName(period)}`;
  let n = 0;
  try {
    for await (const line of readGzipLines(path, { what })) {
      n++;
      if (!line.includes(hash)) continue;
      const version = versionOnLine(line, { what, path, n });
      if (version.flowId === flowId && version.hash === hash) return version;
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  return null;
}

/**
 * Archived runs' summaries, newest first, read from the archive indexes only.
 * Files whose period cannot hold a match (by `since`/`until`) are not read.
 *
 * @example
 * ```ts
 * import { listArchivedRuns } from "@flowstate/core/jobs";
 * import { openRuntime, runJob } from "@flowstate/core";
 * import assert from "node:assert/strict";
 *
 * const home = await Deno.makeTempDir();
 * let now = Date.UTC(2026, 0, 1);
 * const config = { stores: { main: { plugin: "memory" } } };
 * await using rt = await openRuntime({ home, config, clock: { now: () => now } });
 * const flow = { id: "hello", nodes: [{ id: "hi", type: "transform", with: { value: 1 } }] };
 * const run = await rt.runFlow(flow);
 * now += 40 * 86_400_000; // 40 days later: older than the default olderThan (30d)
 * await runJob(rt, "archive", { progress: "quiet" });
 * const [summary] = await listArchivedRuns(home, { flowId: "hello" });
 * assert.equal(summary?.id, run.id);
 * assert.equal(summary?.archive, "runs-2026-01.ndjson.gz");
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export async function listArchivedRuns(
  home: string,
  options: ListArchivedRunsOptions = {},
): Promise<ArchivedRunSummary[]> {
  return await new ArchiveReader(home, { keepRuns: 0 }).list(options);
}

/**
 * Why `action` cannot be done to an archived run: every archived run had
 * ended, and the archive is read-only. A retry is refused rather than done
 * from the archived record: it would put the run back in the records store
 * under its id while the archive still holds it, and the next archive run
 * deletes such a run as already archived, with the attempts added since.
 * So the way out is a new run of its flow (with its inputs, which the
 * archived record shows).
 */
export function archivedCannot(action: "cancel" | "retry", archived: ArchivedRun): string {
  const { run } = archived;
  const again = run.flowId.startsWith("job:")
    ? `run the job again: flowstate jobs run ${run.flowId.slice("job:".length)}`
    : `start a new run of flow "${run.flowId}" (with its inputs: flowstate enqueue ${run.flowId} ` +
      `--input name=value, or POST /api/flows/${run.flowId}/runs)`;
  return action === "cancel"
    ? `Cannot cancel run ${run.id}: it already ended (${run.status}) and is archived in ` +
      `${archived.archive}`
    : `Cannot retry run ${run.id}: it ended (${run.status}) and is archived in ` +
      `${archived.archive}; archived runs are read-only (a retry would put it back in the ` +
      `records store, and the next archive run would delete it again as already archived). ` +
      `Instead, ${again}`;
}
