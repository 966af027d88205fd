/**
 * The `gc` job: removes what nothing will read again and gives the space
 * back to the file system.
 *
 * ```yaml
 * jobs:
 *   gc:
 *     schedule: "30 3 * * *"
 *     options: { orphans: true, knownFlows: [nightly-report] }
 * ```
 *
 * Its parts, in this order (each can be switched off):
 * 1. `expired`: every store's expired entries are deleted
 *    (`Store.purgeExpired()`). They are never returned by reads anyway, so a
 *    dry run cannot count them and reports `expiredRemoved: null`.
 * 2. `orphans` (off unless `orphans: true`): state of flows and nodes that
 *    no longer exist. A flow exists when it has a recorded version (a head in
 *    the records) or is listed in `knownFlows`; a node exists when the head
 *    version of its flow has a node with its id (a flow known only from
 *    `knownFlows` keeps all its node state). Flow state is `["flow", flowId,
 *    …]` and node state `["node", flowId, nodeId, …]` in any configured
 *    store; each orphaned prefix is listed with its key count, and (unless
 *    dry run) cleared after the flow's existence is checked once more.
 * 3. `tempFiles`: leftovers of crashed processes under the home directory,
 *    older than `tempMaxAge`. Temp files of atomic writes
 *    (`.<name>.tmp-<pid>-<hex>`, see `writeFileAtomic`) whose process is
 *    gone. And the jsonfile plugin's lock files (`<store file>.lock`) last
 *    taken, as their first line says, by a process of this host that is gone:
 *    such a file holds no lock (the OS releases a dead process's `flock`) and
 *    only lingers. A lock file is removed the way the plugin removes one, as a
 *    holder of its lock: it is locked without waiting, so a lock held by a
 *    live process is never touched, whatever its file says; a file gc cannot
 *    read as a Flowstate lock, or one from another host, is left alone.
 *    And the owner locks of processes that recorded runs
 *    (`<home>/owners/*.lock`, see `src/records/owner.ts`) that are free: a
 *    live process holds its own for its whole life.
 *    A process is "gone" when its pid does not exist (`kill(pid, 0)`), and,
 *    where Deno may read /proc (`--allow-all` on Linux), also when it is a
 *    zombie or started after the file was last written (a reused pid).
 * 4. `abandonedAfter` (default `"1m"`; `null` turns it off): runs still
 *    recorded as `running` whose heartbeat is older than this are recorded
 *    as `failed` ("abandoned: …"): their process was killed, crashed or
 *    could not record the end, and retention never deletes a running run.
 *    A live run writes its heartbeat every 5 s, so a live run is never
 *    touched: values under 20 s (four missed beats) count as 20 s. A run
 *    recorded by a version before heartbeats (no `heartbeatAt`) is judged by
 *    its age instead, and only after a day at least (or `abandonedAfter`,
 *    if longer). A run whose process is verifiably on this machine is
 *    judged by that process first: dead, the run is recorded abandoned
 *    whatever its heartbeat's age; alive (stopped, stalled, in a debugger),
 *    it is left running, however old its heartbeat, and said
 *    (`stalledRuns`). See `src/records/heartbeat.ts`. A queued run is never
 *    recorded abandoned: once its worker's lease lapsed, gc puts it back in
 *    the queue (`requeuedRuns`), as any worker would.
 * 5. `dedupeKeys`: the queue's dedupe keys (`enqueue --key`,
 *    `Idempotency-Key`, a `queue` node's `key:`) whose run ended or is gone
 *    are deleted (`Records.sweepDedupeKeys()`; a dry run counts them). A
 *    run's end deletes its key itself; these are the keys left by older
 *    versions of Flowstate (or by such a process in a mixed fleet).
 * 6. `staleWorkersAfter` (default `"1h"`; `null` turns it off): the worker
 *    registry's entries (`flowstate workers`) of queue workers with no
 *    heartbeat for this long are deleted: their process was killed (a clean
 *    stop removes its own entry). A live worker writes its heartbeat every
 *    heartbeat interval, and an entry is never deleted before it is stale
 *    (three missed heartbeats), whatever the value; one that a worker writes
 *    meanwhile is kept. One listing of the registry (a few entries).
 * 7. `changes`: every store that keeps a change feed (`changes: { keep }`)
 *    drops the entries its retention no longer keeps (older than `keep`'s
 *    age, or beyond its count). Point-in-time reads (`getAt`, `state get
 *    --at`) reach back to the oldest entry kept. Not in a dry run.
 * 8. `compact`: every store that can returns free space to the file system
 *    (`Store.compact()`: SQLite's incremental vacuum, a jsonfile rewrite), and
 *    the sizes before and after are reported.
 *
 * Cancelling (`ctx.signal`) stops between stores and files; what was done
 * is reported.
 *
 * @module
 */
import { basename, dirname, join, relative } from "node:path";
import process from "node:process";
import { z } from "zod";
import { durationProblem, formatDurationExactly, parseDuration } from "../src/duration.ts";
import type { Duration } from "../src/flow/types.ts";
import { defineJob, type Job, type JobContext } from "../src/jobs/job.ts";
import type { Records } from "../src/records/records.ts";
import { judgeRun, MIN_ABANDONED_MS } from "../src/records/heartbeat.ts";
import type { Store } from "../src/store/types.ts";
import { trimChanges } from "../src/store/store.ts";
import { messageOf } from "../src/errors.ts";
import { parseTempName } from "../src/_fs.ts";
import { isLockFileName } from "../plugins/jsonfile/files.ts";
import { removeLockFile } from "../plugins/jsonfile/lock.ts";
import { childNames } from "../src/store/children.ts";

/**
 * Options of the gc job.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, runJob } from "@flowstate/core";
 * import type { GcOptions } from "@flowstate/core/jobs";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const main = await rt.store("main");
 * await main.set(["session", "a"], "x", { expireIn: 1 });
 * await new Promise((resolve) => setTimeout(resolve, 5)); // it has expired
 * const options: Partial<GcOptions> = { expired: true, orphans: false, tempFiles: false, compact: false };
 * const run = await runJob(rt, "gc", { options });
 * assert.equal(run.status, "succeeded");
 * assert.equal(await main.count(["session"]), 0);
 * ```
 */
export interface GcOptions {
  /** Delete expired entries in every store. */
  expired: boolean;
  /** Find (and unless dry run, delete) state of flows and nodes that no longer exist. Off by default. */
  orphans: boolean;
  /** Flow ids that exist even without a recorded version (their state is never orphaned). */
  knownFlows: string[];
  /** Remove temp and lock files left under the home by crashed processes. */
  tempFiles: boolean;
  /** Only temp and lock files older than this are removed. */
  tempMaxAge: Duration;
  /** Record runs still `running` with no heartbeat for this long (at least 20 s) as failed ("abandoned"); `null` never does. Default `"1m"`. */
  abandonedAfter: Duration | null;
  /** Delete the queue's dedupe keys whose run ended or is gone (left by older versions). */
  dedupeKeys: boolean;
  /** Delete the registry entries of queue workers with no heartbeat for this long (never before they are stale); `null` never does. Default `"1h"`. */
  staleWorkersAfter: Duration | null;
  /** Trim each store's change feed by its retention (`changes.keep`). */
  changes: boolean;
  /** Return free space to the file system where a store can. */
  compact: boolean;
  /** Only these configured stores (default: every configured store). */
  stores?: string[];
}

/** Default options of the gc job. */
export const defaults = {
  expired: true,
  orphans: false,
  knownFlows: [],
  tempFiles: true,
  tempMaxAge: "1h",
  abandonedAfter: "1m",
  dedupeKeys: true,
  staleWorkersAfter: "1h",
  changes: true,
  compact: true,
} satisfies Partial<GcOptions>;

/** One orphaned key prefix. */
export type GcOrphan = {
  /** The store holding it. */
  store: string;
  /** `["flow", flowId]` or `["node", flowId, nodeId]` (or `["node", flowId]` for a gone flow). */
  prefix: string[];
  /** Keys under it (deleted, unless dry run). */
  keys: number;
  /** Why: the flow or the node no longer exists. */
  reason: "flow" | "node";
};

/** What gc did to one store. */
export type GcStoreResult = {
  /** Expired entries deleted (`null` in a dry run, or when `expired` is off). */
  expiredRemoved: number | null;
  /** Orphaned keys found (deleted unless dry run). */
  orphanKeys: number;
  /** Change feed entries removed by retention (`null`: no feed, dry run, or `changes: false`). */
  changesRemoved?: number | null;
  /** What compacting did (`null` when not run: dry run, `compact: false`, or an error). */
  compact: { supported: boolean; bytesBefore: number; bytesAfter: number } | null;
  /** Why the store could not be processed. */
  error?: string;
};

/** What the gc job reports. */
export type GcResult = {
  /** Expired entries deleted in all stores (`null` in a dry run or when `expired` is off). */
  expiredRemoved: number | null;
  /** Orphaned keys found in all stores (deleted unless dry run). */
  orphanKeys: number;
  /** The orphaned prefixes (at most 1000 listed). */
  orphans: GcOrphan[];
  /** Temp and lock files removed (or that a dry run would remove). */
  tempFilesRemoved: number;
  /** Those files, relative to the home (at most 1000 listed). */
  tempFiles: string[];
  /** Runs still `running` with no heartbeat for `abandonedAfter`, now recorded as failed (or that a dry run would). */
  abandonedRuns: number;
  /** Runs with no heartbeat for `abandonedAfter` whose process is alive on this host: left running. */
  stalledRuns: number;
  /** Queued runs whose worker's lease lapsed, now back in the queue (none in a dry run). */
  requeuedRuns: number;
  /** Dedupe keys of runs that ended or are gone, deleted (or that a dry run would delete). */
  dedupeKeysRemoved: number;
  /** Registry entries of workers stale for `staleWorkersAfter`, deleted (or that a dry run would delete). */
  staleWorkersRemoved: number;
  /** Change feed entries removed by retention in all stores (`null` in a dry run or when off). */
  changesRemoved: number | null;
  /** Size on disk of the compacted stores before. */
  bytesBefore: number;
  /** Size on disk of the compacted stores after. */
  bytesAfter: number;
  /** `bytesBefore - bytesAfter`. */
  bytesFreed: number;
  /** Per store. */
  stores: Record<string, GcStoreResult>;
  /** Whether nothing was changed. */
  dryRun: boolean;
  /** Whether the job stopped early because it was cancelled. */
  cancelled: boolean;
  /** Wall-clock time the job took. */
  durationMs: number;
};

const MAX_LISTED = 1000;

const optionsSchema = z.strictObject({
  expired: z.boolean().default(defaults.expired),
  orphans: z.boolean().default(defaults.orphans),
  knownFlows: z.array(z.string().min(1)).default(defaults.knownFlows),
  tempFiles: z.boolean().default(defaults.tempFiles),
  tempMaxAge: z.union([z.number(), z.string()]).default(defaults.tempMaxAge).superRefine(
    (value, ctx) => {
      const problem = durationProblem(value);
      if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem.message });
    },
  ),
  abandonedAfter: z.union([z.number(), z.string()]).nullable().default(defaults.abandonedAfter)
    .superRefine((value, ctx) => {
      if (value === null) return;
      const problem = durationProblem(value);
      if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem.message });
    }),
  dedupeKeys: z.boolean().default(defaults.dedupeKeys),
  staleWorkersAfter: z.union([z.number(), z.string()]).nullable().default(
    defaults.staleWorkersAfter,
  ).superRefine((value, ctx) => {
    if (value === null) return;
    const problem = durationProblem(value);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem.message });
  }),
  changes: z.boolean().default(defaults.changes),
  compact: z.boolean().default(defaults.compact),
  stores: z.array(z.string().min(1)).optional(),
});

// ---------------------------------------------------------------------------
// Orphaned state

/** Which flows and nodes exist: a flow's head version's node ids, `null` for "all". */
class FlowCatalog {
  #records: Records;
  #known: ReadonlySet<string>;
  #cache = new Map<string, Promise<ReadonlySet<string> | null | undefined>>();

  constructor(records: Records, knownFlows: readonly string[]) {
    this.#records = records;
    this.#known = new Set(knownFlows);
  }

  /** `undefined`: the flow does not exist; `null`: it exists, every node counts as existing. */
  nodes(flowId: string, fresh = false): Promise<ReadonlySet<string> | null | undefined> {
    let found = fresh ? undefined : this.#cache.get(flowId);
    if (found === undefined) {
      found = this.#load(flowId);
      this.#cache.set(flowId, found);
    }
    return found;
  }

  async #load(flowId: string): Promise<ReadonlySet<string> | null | undefined> {
    const head = await this.#records.getHead(flowId);
    if (head !== null) return new Set(head.definition.nodes.map((n) => n.id));
    return this.#known.has(flowId) ? null : undefined;
  }
}

/** Find (and unless dry run, clear) orphaned flow and node state in one store. */
async function collectOrphans(
  store: Store,
  catalog: FlowCatalog,
  dryRun: boolean,
  signal: AbortSignal,
  found: (orphan: GcOrphan) => void,
): Promise<void> {
  const handle = async (
    prefix: string[],
    reason: GcOrphan["reason"],
    stillOrphan: () => Promise<boolean>,
  ) => {
    let keys = await store.count(prefix);
    if (keys === 0) return;
    if (!dryRun) {
      // Checked again right before clearing: a flow may have been saved since the scan began.
      if (!(await stillOrphan())) return;
      keys = await store.clear(prefix);
    }
    found({ store: store.name, prefix, keys, reason });
  };
  for await (const flowId of childNames(store, ["flow"])) {
    if (signal.aborted) return;
    if ((await catalog.nodes(flowId)) !== undefined) continue;
    await handle(
      ["flow", flowId],
      "flow",
      async () => (await catalog.nodes(flowId, true)) === undefined,
    );
  }
  for await (const flowId of childNames(store, ["node"])) {
    if (signal.aborted) return;
    const nodes = await catalog.nodes(flowId);
    if (nodes === null) continue;
    if (nodes === undefined) {
      await handle(
        ["node", flowId],
        "flow",
        async () => (await catalog.nodes(flowId, true)) === undefined,
      );
      continue;
    }
    for await (const nodeId of childNames(store, ["node", flowId])) {
      if (signal.aborted) return;
      if (nodes.has(nodeId)) continue;
      await handle(["node", flowId, nodeId], "node", async () => {
        const now = await catalog.nodes(flowId, true);
        return now !== null && !now?.has(nodeId);
      });
    }
  }
}

// ---------------------------------------------------------------------------
// Processes, for temp and lock files

/**
 * Linux: a process's state letter and start time (clock ticks since boot),
 * `null` if there is no such process, `undefined` if it cannot be told
 * (not Linux, or no --allow-all: Deno lets only that read /proc).
 */
async function procStat(
  pid: number,
): Promise<{ state: string; startTime: string } | null | undefined> {
  if (Deno.build.os !== "linux") return undefined;
  let text: string;
  try {
    text = await Deno.readTextFile(`/proc/${pid}/stat`);
  } catch (err) {
    return err instanceof Deno.errors.NotFound ? null : undefined;
  }
  // "pid (comm) S ppid … starttime(22nd field) …"; comm may hold spaces and parentheses.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return fields.length > 19 ? { state: fields[0], startTime: fields[19] } : undefined;
}

/** Linux: boot time in ms since the epoch (from /proc/stat), for process start times. */
let bootTimeMs: Promise<number | undefined> | undefined;
function bootTime(): Promise<number | undefined> {
  bootTimeMs ??= Deno.readTextFile("/proc/stat").then(
    (text) => {
      const m = /^btime (\d+)$/m.exec(text);
      return m ? Number(m[1]) * 1000 : undefined;
    },
    () => undefined,
  );
  return bootTimeMs;
}

/** Clock ticks per second of /proc start times (USER_HZ: 100 on every Linux Deno runs on). */
const USER_HZ = 100;

/**
 * Whether the process `pid` (on this host) is gone, or is not the one that
 * wrote a file last modified at `mtime` because it started after that (its
 * pid was reused). `false` when that cannot be told.
 */
async function writerGone(pid: number, mtime: number): Promise<boolean> {
  const stat = await procStat(pid);
  if (stat === null) return true;
  if (stat !== undefined) {
    if (stat.state === "Z" || stat.state === "X") return true; // killed, not yet reaped
    const boot = await bootTime();
    if (boot === undefined) return false;
    return boot + (Number(stat.startTime) / USER_HZ) * 1000 > mtime + 2000;
  }
  if (pid === Deno.pid) return false;
  try {
    process.kill(pid, 0); // needs --allow-run
    return false;
  } catch (err) {
    return (err as { code?: string }).code === "ESRCH";
  }
}

function hostName(): string | null {
  try {
    return Deno.hostname();
  } catch {
    return null; // no --allow-sys: lock files cannot be told to be this host's
  }
}

// ---------------------------------------------------------------------------
// Temp and lock files

async function* walkFiles(dir: string, signal: AbortSignal): AsyncGenerator<string> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    throw err;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    if (signal.aborted) return;
    const path = join(dir, entry.name);
    if (entry.isDirectory) yield* walkFiles(path, signal);
    else if (entry.isFile) yield path; // symbolic links are never followed
  }
}

/** A temp file of an atomic write whose writer is gone: remove it (unless dry run). */
async function removeTemp(path: string, pid: number, mtime: number, dryRun: boolean) {
  if (!(await writerGone(pid, mtime))) return false;
  if (dryRun) return true;
  try {
    await Deno.remove(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/**
 * A jsonfile lock file left by a process that is gone: removed (unless dry
 * run) by the plugin's own protocol (`removeLockFile` in
 * plugins/jsonfile/lock.ts: opened, locked without waiting, still the file at
 * `path`), when its first line says it was last taken on this host by a
 * process that is gone. An owner lock (`<home>/owners/*.lock`, see
 * `src/records/owner.ts`) says nothing in its first line: one that can be
 * locked is free, so its process is gone (a live one holds it for its whole
 * life).
 */
function removeLock(
  path: string,
  mtime: number,
  host: string | null,
  dryRun: boolean,
  ownerLock: boolean,
) {
  return removeLockFile(path, {
    dryRun,
    when: async (holder) =>
      ownerLock ||
      holder !== undefined && holder.pid > 0 && host !== null && holder.hostname === host &&
        await writerGone(holder.pid, mtime),
  });
}

// The job

// ---------------------------------------------------------------------------
// Change feeds

/** Trim one store's change feed by its retention (a store without a feed is left alone). */
async function trimFeed(
  ctx: JobContext,
  store: Store,
  name: string,
  result: GcResult,
): Promise<void> {
  const removed = await trimChanges(store);
  result.stores[name].changesRemoved = removed ?? null;
  if (removed === undefined) return;
  result.changesRemoved = (result.changesRemoved ?? 0) + removed;
  ctx.log(`store "${name}": ${removed} change feed entries past retention removed`);
}

async function runGc(ctx: JobContext, options: GcOptions): Promise<GcResult> {
  const startedAt = performance.now();
  const { dryRun, signal, runtime } = ctx;
  const storeNames = options.stores === undefined
    ? [...runtime.storeNames]
    : [...new Set(options.stores)];
  for (const name of storeNames) {
    if (!runtime.storeNames.includes(name)) {
      throw new RangeError(
        `Cannot run gc on store "${name}": no such store; the configured stores are ${
          runtime.storeNames.map((n) => `"${n}"`).join(", ")
        }`,
      );
    }
  }
  const tempMaxAge = parseDuration(options.tempMaxAge, "tempMaxAge");
  const result: GcResult = {
    expiredRemoved: options.expired && !dryRun ? 0 : null,
    orphanKeys: 0,
    orphans: [],
    tempFilesRemoved: 0,
    tempFiles: [],
    abandonedRuns: 0,
    stalledRuns: 0,
    requeuedRuns: 0,
    dedupeKeysRemoved: 0,
    staleWorkersRemoved: 0,
    changesRemoved: options.changes && !dryRun ? 0 : null,
    bytesBefore: 0,
    bytesAfter: 0,
    bytesFreed: 0,
    stores: {},
    dryRun,
    cancelled: false,
    durationMs: 0,
  };
  for (const name of storeNames) {
    result.stores[name] = { expiredRemoved: result.expiredRemoved, orphanKeys: 0, compact: null };
  }
  const failed = new Map<string, string>();
  /** Run `body` on each store that has not failed yet; a failure is kept and the rest go on. */
  const eachStore = async (label: string, body: (store: Store, name: string) => Promise<void>) => {
    ctx.progress.start(label, storeNames.length);
    for (const name of storeNames) {
      if (signal.aborted) break;
      if (!failed.has(name)) {
        try {
          await body(await ctx.store(name), name);
        } catch (err) {
          failed.set(name, messageOf(err));
          result.stores[name].error = messageOf(err);
          ctx.log(`store "${name}": ${messageOf(err)}`, "error");
        }
      }
      ctx.progress.advance();
    }
    ctx.progress.finish();
  };

  try {
    if (options.expired) {
      await eachStore(
        dryRun ? "gc (dry run): expired entries" : "gc: expired entries",
        async (store, name) => {
          if (dryRun) return;
          const removed = await store.purgeExpired();
          ctx.log(`store "${name}": ${removed} expired entries removed`);
          result.stores[name].expiredRemoved = removed;
          result.expiredRemoved = (result.expiredRemoved ?? 0) + removed;
        },
      );
      if (dryRun) ctx.log("dry run: expired entries are not counted (reads never see them)");
    }

    if (options.orphans && !signal.aborted) {
      const catalog = new FlowCatalog(await ctx.records(), options.knownFlows);
      await eachStore(
        dryRun ? "gc (dry run): orphaned state" : "gc: orphaned state",
        async (store, name) => {
          await collectOrphans(store, catalog, dryRun, signal, (orphan) => {
            result.stores[name].orphanKeys += orphan.keys;
            result.orphanKeys += orphan.keys;
            if (result.orphans.length < MAX_LISTED) result.orphans.push(orphan);
            ctx.log(
              `${dryRun ? "would delete" : "deleted"} ${orphan.keys} keys of ${
                orphan.reason === "flow" ? "a flow" : "a node"
              } that no longer exists: store "${name}", prefix ${JSON.stringify(orphan.prefix)}`,
            );
          });
        },
      );
    }

    if (options.tempFiles && !signal.aborted) {
      ctx.progress.start(dryRun ? "gc (dry run): files checked" : "gc: files checked");
      const host = hostName();
      const now = ctx.clock.now();
      const ownersDir = join(ctx.home, "owners");
      let checked = 0;
      for await (const path of walkFiles(ctx.home, signal)) {
        ctx.progress.update(++checked);
        const name = basename(path);
        const temp = parseTempName(name);
        if (!temp && !isLockFileName(name)) continue;
        let mtime: number;
        try {
          mtime = (await Deno.lstat(path)).mtime?.getTime() ?? now;
        } catch {
          continue; // gone meanwhile
        }
        if (now - mtime <= tempMaxAge) continue;
        const removed = temp
          ? await removeTemp(path, temp.pid, mtime, dryRun)
          : await removeLock(path, mtime, host, dryRun, dirname(path) === ownersDir);
        if (!removed) continue;
        result.tempFilesRemoved++;
        const shown = relative(ctx.home, path);
        if (result.tempFiles.length < MAX_LISTED) result.tempFiles.push(shown);
        ctx.log(`${dryRun ? "would remove" : "removed"} ${shown} (left by a process that is gone)`);
      }
      ctx.progress.finish();
    }

    if (options.abandonedAfter !== null && !signal.aborted) {
      const afterMs = parseDuration(options.abandonedAfter, "abandonedAfter");
      const now = ctx.clock.now();
      if (afterMs < MIN_ABANDONED_MS) {
        ctx.log(
          `abandonedAfter ${
            String(options.abandonedAfter)
          } is shorter than four missed heartbeats; using ${
            MIN_ABANDONED_MS / 1000
          }s so that no live run is touched`,
          "warn",
        );
      }
      const records = await ctx.records();
      if (!dryRun) {
        // Queued runs are never recorded abandoned: when their worker's lease lapsed, they
        // go back to the queue for the next worker (the same as any worker does on its poll).
        const requeued = await records.reclaimLost();
        result.requeuedRuns += requeued.length;
        for (const id of requeued) ctx.log(`run ${id} lost its worker: back in the queue`);
      }
      ctx.progress.start(dryRun ? "gc (dry run): abandoned runs" : "gc: abandoned runs");
      const candidates: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await records.listRunSummaries({
          // Any age: a run whose process is dead on this machine is abandoned at once.
          status: "running",
          limit: 1000,
          cursor,
        });
        for (const summary of page.runs) if (summary.id !== ctx.runId) candidates.push(summary.id);
        cursor = page.cursor;
      } while (cursor !== undefined && !signal.aborted);
      for (const id of candidates) {
        if (signal.aborted) break;
        let run = await records.getRun(id);
        if (run === null) continue;
        const judged = judgeRun(run, now, afterMs);
        if (judged.state === "stalled") {
          result.stalledRuns++;
          ctx.log(
            `run ${id} of ${run.flowId}: no heartbeat for ${
              formatDurationExactly(Math.round((now - judged.lastSeenAt) / 1000) * 1000)
            } but its process ${judged.pid} is alive on this host: left running; ` +
              `\`flowstate runs cancel ${id}\` to end it`,
            "warn",
          );
          continue;
        }
        if (judged.state !== "abandoned") continue;
        if (!dryRun) {
          run = await records.abandonRun(id, { afterMs, now });
          if (run === null) continue;
        }
        result.abandonedRuns++;
        ctx.progress.advance();
        ctx.log(`${dryRun ? "would record" : "recorded"} run ${id} of ${run.flowId} as abandoned`);
      }
      ctx.progress.finish();
    }

    if (options.dedupeKeys && !signal.aborted) {
      const records = await ctx.records();
      const removed = await records.sweepDedupeKeys({ dryRun, signal });
      result.dedupeKeysRemoved = removed;
      if (removed > 0) {
        ctx.log(
          `${dryRun ? "would delete" : "deleted"} ${removed} queue dedupe keys of runs that ended`,
        );
      }
    }

    if (options.staleWorkersAfter !== null && !signal.aborted) {
      const records = await ctx.records();
      const gone = await records.sweepWorkers({
        olderThanMs: parseDuration(options.staleWorkersAfter, "staleWorkersAfter"),
        now: ctx.clock.now(),
        dryRun,
      });
      result.staleWorkersRemoved = gone.length;
      for (const id of gone) {
        ctx.log(
          `${dryRun ? "would delete" : "deleted"} stale worker ${id} from the worker registry`,
        );
      }
    }

    if (options.changes && !dryRun && !signal.aborted) {
      await eachStore("gc: change feeds", (store, name) => trimFeed(ctx, store, name, result));
    }

    if (options.compact && !dryRun && !signal.aborted) {
      await eachStore("gc: compacting", async (store, name) => {
        const compacted = await store.compact();
        result.stores[name].compact = compacted;
        if (!compacted.supported) return;
        result.bytesBefore += compacted.bytesBefore;
        result.bytesAfter += compacted.bytesAfter;
      });
      result.bytesFreed = result.bytesBefore - result.bytesAfter;
    }
  } finally {
    result.cancelled = signal.aborted;
    result.durationMs = Math.round(performance.now() - startedAt);
  }
  if (failed.size > 0) {
    throw new Error(
      `Cannot finish gc: ${
        [...failed].map(([name, message]) => `store "${name}": ${message}`).join("; ")
      } (the other stores were processed)`,
    );
  }
  return result;
}

/**
 * The gc job. Run it with `flowstate jobs run gc`, or
 * `runJob(runtime, "gc", { options })`.
 */
const gcJob: Job<GcOptions> = defineJob<GcOptions>({
  name: "gc",
  description:
    "removes expired entries, orphaned state (opt-in), leftover temp and lock files, and reclaims disk space",
  optionsSchema,
  defaults,
  defaultSchedule: "30 3 * * *",
  run: runGc,
});

export default gcJob;
