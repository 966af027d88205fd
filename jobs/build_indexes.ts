/**
 * The `build-indexes` job: build the indexes (and search index) a store
 * declares but does not have yet, ahead of time, with progress.
 *
 * ```yaml
 * stores:
 *   data:
 *     plugin: sqlite
 *     path: data.db
 *     indexes:
 *       - { prefix: [orders], path: status }   # just added
 * ```
 *
 * `flowstate jobs run build-indexes` (or `--option stores=data`) opens each
 * store that declares indexes or search and builds what is missing: a
 * progress bar per index (with a count and an ETA where the backend can
 * tell how far a build has got: PostgreSQL reads
 * `pg_stat_progress_create_index`, the core's index entries count batches;
 * SQLite builds an index in one statement and tells only its start and
 * end), then a line per index saying whether it was built now or was there
 * already. Opening a store builds its missing indexes too (so an index is
 * never missing); run this job after adding one so that no flow run or
 * command waits for the build.
 *
 * A build is one transaction on SQLite and PostgreSQL: stopped (Ctrl-C
 * between stores, or `kill -9` at any time), it leaves no half-built index,
 * and the next run (or open) builds it again. The core's index entries are
 * built in batches and resume where they stopped. Memory stores keep their
 * indexes in memory, built at each open: there is nothing to build ahead.
 *
 * @module
 */
import { z } from "zod";
import { defineJob, type Job, type JobContext, type JobResult } from "../src/jobs/job.ts";
import { ConfigError, StoreMissingError } from "../src/errors.ts";
import { openStore } from "../src/plugin.ts";
import type { IndexBuildEvent } from "../src/store/driver.ts";
import type { Store } from "../src/store/types.ts";
import { takeIndexesBuiltByOpen } from "../src/runtime.ts";

/**
 * Options of the build-indexes job.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, runJob } from "@flowstate/core";
 * import type { BuildIndexesOptions } from "@flowstate/core/jobs";
 *
 * const dir = await Deno.makeTempDir();
 * const indexes = [{ prefix: ["orders"], path: "status" }];
 * await using rt = await openRuntime({
 *   config: { stores: { main: { plugin: "sqlite", path: `${dir}/main.db`, indexes } } },
 * });
 * const options: Partial<BuildIndexesOptions> = { stores: ["main"] };
 * const run = await runJob(rt, "build-indexes", { options });
 * assert.equal(run.status, "succeeded");
 * ```
 */
export interface BuildIndexesOptions {
  /**
   * The stores (default: every configured store that declares `indexes` or
   * `search`); on the command line `--option stores=a,b`.
   */
  stores?: string[];
}

const optionsSchema = z.strictObject({
  // `--option stores=a,b` on the command line, or a list.
  stores: z.preprocess(
    (v) => typeof v === "string" ? v.split(",").map((s) => s.trim()) : v,
    z.array(z.string().min(1)).min(1).optional(),
  ),
});

/**
 * One declared index after the job.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, runJob } from "@flowstate/core";
 * import type { BuildIndexesReport, BuiltIndex } from "@flowstate/core/jobs";
 *
 * const dir = await Deno.makeTempDir();
 * const indexes = [{ prefix: ["orders"], path: "status" }];
 * await using rt = await openRuntime({
 *   config: { stores: { main: { plugin: "sqlite", path: `${dir}/main.db`, indexes } } },
 * });
 * const run = await runJob(rt, "build-indexes");
 * const reports = run.outputs?.stores as unknown as BuildIndexesReport[];
 * const built: BuiltIndex[] = reports[0].indexes;
 * assert.equal(built.length, 1);
 * assert.equal(built[0].native, true);
 * ```
 */
export interface BuiltIndex {
  /** Its name (`fs_ix_…`), or `"search"`. */
  name: string;
  /** `now`: built by this run; `before`: the store had it already. */
  built: "now" | "before";
  /** Whether the backend keeps it natively (else the core's index entries, or scans). */
  native: boolean;
  /** Entries indexed (when built now). */
  entries?: number;
  /** Time the build took, ms (when built now). */
  ms?: number;
}

/**
 * What the job did to one store.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, runJob } from "@flowstate/core";
 * import type { BuildIndexesReport } from "@flowstate/core/jobs";
 *
 * const dir = await Deno.makeTempDir();
 * const indexes = [{ prefix: ["orders"], path: "status" }];
 * await using rt = await openRuntime({
 *   config: { stores: { main: { plugin: "sqlite", path: `${dir}/main.db`, indexes } } },
 * });
 * const run = await runJob(rt, "build-indexes");
 * const reports = run.outputs?.stores as unknown as BuildIndexesReport[];
 * assert.deepEqual(reports.map((r) => r.store), ["main"]);
 * ```
 */
export interface BuildIndexesReport {
  /** The store. */
  store: string;
  /** Its declared indexes, and the search index as `"search"` when declared. */
  indexes: BuiltIndex[];
}

function declares(spec: Record<string, unknown>): boolean {
  const indexes = spec.indexes;
  return (Array.isArray(indexes) && indexes.length > 0) || spec.search !== undefined;
}

async function buildStore(ctx: JobContext, name: string): Promise<BuildIndexesReport | undefined> {
  const spec = ctx.runtime.config.stores[name] as Record<string, unknown> & { plugin: string };
  if (spec.plugin === "memory") {
    ctx.log(`store "${name}" is a memory store: its indexes are built in memory at each open`);
    return undefined;
  }
  const started = new Map<string, { at: number; total?: number }>();
  const now: BuiltIndex[] = [];
  let store: Store;
  const owned = !ctx.runtime.isOpen(name);
  if (!owned) {
    // Opened by this runtime already: its open built what was missing (and told the runtime).
    store = await ctx.store(name);
    for (const b of takeIndexesBuiltByOpen(ctx.runtime, name)) {
      now.push({ name: b.index, built: "now", native: true, entries: b.entries, ms: b.ms });
    }
  } else {
    try {
      store = await openStore(spec as never, {
        name,
        home: ctx.home,
        baseDir: ctx.runtime.config.baseDir,
        clock: ctx.clock,
        mustExist: true,
        onIndexBuild: (event: IndexBuildEvent) => {
          if (event.phase === "start") {
            started.set(event.index, { at: performance.now(), total: event.total });
            ctx.progress.start(`store "${name}": ${event.label}`, event.total);
            if (event.done) ctx.progress.update(event.done);
          } else if (event.phase === "progress") {
            if (event.done !== undefined) ctx.progress.update(event.done);
          } else {
            const ms = Math.round(performance.now() - (started.get(event.index)?.at ?? 0));
            if (event.done !== undefined) ctx.progress.update(event.done);
            ctx.progress.finish(`store "${name}": built ${event.label} in ${ms} ms`);
            now.push({ name: event.index, built: "now", native: true, entries: event.done, ms });
          }
        },
      });
    } catch (err) {
      if (err instanceof StoreMissingError) {
        ctx.log(
          `store "${name}" does not exist yet: nothing to index (its first open builds them)`,
        );
        return undefined;
      }
      throw err;
    }
  }
  try {
    const report: BuildIndexesReport = { store: name, indexes: [] };
    const builtNow = new Map(now.map((b) => [b.name, b]));
    for (const index of store.indexes) {
      const fresh = builtNow.get(index.name);
      report.indexes.push(
        fresh !== undefined
          ? { ...fresh, native: index.native }
          : { name: index.name, built: "before", native: index.native },
      );
      ctx.log(
        `store "${name}": index ${index.name} on ${index.path.join(".")} under ${
          JSON.stringify(index.prefix)
        } ${
          fresh !== undefined
            ? `built now (${fresh.entries ?? "?"} entries, ${fresh.ms} ms)`
            : "was built already"
        }${index.native ? "" : " (kept by the core)"}`,
      );
    }
    const search = builtNow.get("search");
    if (search !== undefined) report.indexes.push(search);
    else if (spec.search !== undefined) {
      report.indexes.push({ name: "search", built: "before", native: true });
    }
    return report;
  } finally {
    // The runtime's own handle stays open; the job's is closed.
    if (owned) await store.close();
  }
}

async function runBuildIndexes(ctx: JobContext, options: BuildIndexesOptions): Promise<JobResult> {
  const configured = ctx.runtime.config.stores;
  const names = options.stores ??
    Object.keys(configured).filter((name) => declares(configured[name]));
  for (const name of names) {
    if (!Object.hasOwn(configured, name)) {
      throw new ConfigError(
        `Cannot build indexes of store "${name}": no such store; the configured stores are ${
          Object.keys(configured).map((n) => `"${n}"`).join(", ")
        }`,
      );
    }
  }
  if (names.length === 0) {
    ctx.log("no store declares indexes or search: nothing to build");
    return { stores: [] };
  }
  const reports: BuildIndexesReport[] = [];
  for (const name of names) {
    ctx.signal.throwIfAborted();
    if (ctx.dryRun) {
      ctx.log(`would open store "${name}" and build the indexes it lacks`);
      continue;
    }
    const report = await buildStore(ctx, name);
    if (report !== undefined) reports.push(report);
  }
  return {
    stores: reports.map((r) => ({ store: r.store, indexes: r.indexes.map((i) => ({ ...i })) })),
  };
}

/**
 * The build-indexes job. Options: `stores` (default: every store that
 * declares `indexes` or `search`). Result: `{ stores: [{ store, indexes:
 * [{ name, built: "now" | "before", native, entries?, ms? }] }] }`.
 *
 * @example
 * ```ts
 * import { openRuntime, runJob } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * const dir = await Deno.makeTempDir();
 * await using rt = await openRuntime({
 *   config: {
 *     stores: {
 *       data: {
 *         plugin: "sqlite",
 *         path: `${dir}/data.db`,
 *         indexes: [{ prefix: ["orders"], path: "status" }],
 *       },
 *     },
 *   },
 * });
 * await (await rt.store("data")).set(["orders", "1"], { status: "open" });
 * const run = await runJob(rt, "build-indexes", { progress: "quiet", onLog: () => {} });
 * assert.equal(run.status, "succeeded");
 * ```
 */
const buildIndexesJob: Job<BuildIndexesOptions> = defineJob<BuildIndexesOptions>({
  name: "build-indexes",
  description: "builds the indexes and search index the stores declare but lack, with progress",
  optionsSchema,
  run: runBuildIndexes,
});

export default buildIndexesJob;
