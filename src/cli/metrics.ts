/**
 * `flowstate metrics [<flow-id>]`: run counts and durations per flow, from
 * the metrics kept with the run records. They count every finished run since
 * the flow first ran: a run is counted when it ends, apart from its record,
 * so the runs the archive job moved to `<home>/archive/` and those the
 * retention job deleted stay counted. Without a flow id, one row per flow
 * (all its versions together); with one, that flow's total, then one row
 * per version, most recently run first, then (`pruned`) the runs of the
 * versions the retention job deleted: the rows below the total add up to it.
 *
 * `--json` prints one array (stable):
 * `[{ "flowId", "version", "count", "succeeded", "failed", "cancelled", "timedOut",
 * "p50DurationMs", "p95DurationMs", "meanDurationMs", "minDurationMs", "maxDurationMs",
 * "lastRunAt", "lastStatus" }]` where `version` is `"*"` for all versions together,
 * a version hash, or `"*pruned"` for the versions the retention job deleted; durations are in ms, rounded to 0.1 ms (`null` before the first
 * finished run), p50 and p95 are histogram estimates (within 5 %). A flow with no
 * recorded runs prints `null` (exit 1), as every lookup of the CLI does. A flow known only
 * from the archive (the records store that counted its runs holds nothing of it) prints `[]`
 * (exit 0), saying on stderr where its archived runs are.
 *
 * @module
 */
import type { RunStatus } from "../records/types.ts";
import type { FlowMetrics } from "../records/records.ts";
import { PRUNED_METRICS } from "../records/layout.ts";
import { formatDuration, printTable, shortHash, unknownFlowMessage } from "./format.ts";
import { type GlobalOptions, notFound, openForReading, unlessMissing } from "./common.ts";
import { archiveReaderOf } from "../records/_archive_read.ts";

/** One row of `flowstate metrics --json`. */
export interface MetricsRow {
  /** The flow's id. */
  flowId: string;
  /** `"*"` for all versions together, `"*pruned"` for the versions retention deleted, else a version hash. */
  version: string;
  /** Finished runs. */
  count: number;
  /** Runs that succeeded. */
  succeeded: number;
  /** Runs that failed. */
  failed: number;
  /** Runs that were cancelled. */
  cancelled: number;
  /** Runs that timed out. */
  timedOut: number;
  /** Median duration in ms (estimate), or `null`. */
  p50DurationMs: number | null;
  /** 95th percentile duration in ms (estimate), or `null`. */
  p95DurationMs: number | null;
  /** Mean duration in ms, or `null`. */
  meanDurationMs: number | null;
  /** Shortest duration in ms, or `null`. */
  minDurationMs: number | null;
  /** Longest duration in ms, or `null`. */
  maxDurationMs: number | null;
  /** Start time of the latest run counted, or `null`. */
  lastRunAt: number | null;
  /** Status of that run, or `null`. */
  lastStatus: RunStatus | null;
}

/** A duration in ms to 0.1 ms: estimates and means are not more precise than that. */
function roundMs(ms: number | null): number | null {
  return ms === null ? null : Math.round(ms * 10) / 10;
}

function toRow(m: FlowMetrics): MetricsRow {
  return {
    flowId: m.flowId,
    version: m.version,
    count: m.count,
    succeeded: m.succeeded,
    failed: m.failed,
    cancelled: m.cancelled,
    timedOut: m.timedOut,
    p50DurationMs: roundMs(m.p50DurationMs),
    p95DurationMs: roundMs(m.p95DurationMs),
    meanDurationMs: m.count === 0 ? null : roundMs(m.totalDurationMs / m.count),
    minDurationMs: m.minDurationMs,
    maxDurationMs: m.maxDurationMs,
    lastRunAt: m.lastRunAt,
    lastStatus: m.lastStatus,
  };
}

/** Why a flow known only from the archive has no metrics, and where its runs are. */
function archivedOnly(flowId: string, home: string): string {
  return `No metrics of "${flowId}": it is known only from the archive (${home}/archive), and ` +
    "the metrics of its runs were counted in a records store that no longer holds them; its " +
    `archived runs: flowstate runs ls --archived --flow ${flowId}`;
}

/** `metrics [<flow-id>] [--json]`: exit 1 for a flow with no recorded runs or versions. */
export async function showMetrics(
  flowId: string | undefined,
  options: { json?: boolean },
  global: GlobalOptions,
): Promise<number> {
  await using runtime = await openForReading(global);
  const records = await unlessMissing(() => runtime.records());
  if (records === null) {
    if (flowId !== undefined) {
      // Known from the archive: no metrics, as when the records store lost them (exit 0).
      if ((await archiveReaderOf(runtime).flows(() => {})).has(flowId)) {
        if (options.json) console.log("[]");
        else console.error(archivedOnly(flowId, runtime.home));
        return 0;
      }
      return notFound(options.json, `Flow "${flowId}" has no recorded runs; no flow has run yet`);
    }
    if (options.json) console.log("[]");
    return 0;
  }
  const all = await records.listMetrics(flowId);
  let rows: MetricsRow[];
  if (flowId === undefined) {
    rows = all.filter((m) => m.version === "*").map(toRow);
  } else {
    const total = all.filter((m) => m.version === "*");
    const pruned = all.filter((m) => m.version === PRUNED_METRICS);
    const versions = all.filter((m) => m.version !== "*" && m.version !== PRUNED_METRICS)
      .sort((a, b) => (b.lastRunAt ?? 0) - (a.lastRunAt ?? 0));
    rows = [...total, ...versions, ...pruned].map(toRow);
    if (rows.length === 0) {
      const known = (await records.listFlows()).map((f) => f.id);
      if (!known.includes(flowId)) {
        return notFound(options.json, unknownFlowMessage(flowId, "runs", known));
      }
    }
  }
  if (options.json) {
    console.log(JSON.stringify(rows));
    return 0;
  }
  if (rows.length === 0) {
    const archived = flowId !== undefined &&
      (await records.listFlows()).find((f) => f.id === flowId)?.archived;
    console.error(
      flowId === undefined
        ? "No runs recorded yet"
        : archived
        ? archivedOnly(flowId, runtime.home)
        : `No finished runs of "${flowId}" yet`,
    );
    return 0;
  }
  // Without a flow id every row is a flow's total: no VERSION column.
  const perVersion = flowId !== undefined;
  const drop = (row: string[]) => perVersion ? row : row.filter((_, i) => i !== 1);
  printTable(
    drop([
      "FLOW",
      "VERSION",
      "RUNS",
      "SUCCEEDED",
      "FAILED",
      "CANCELLED",
      "TIMED-OUT",
      "P50",
      "P95",
      "MEAN",
    ]),
    rows.map((r) =>
      drop([
        r.flowId,
        r.version === "*" ? "all" : r.version === PRUNED_METRICS ? "pruned" : shortHash(r.version),
        String(r.count),
        String(r.succeeded),
        String(r.failed),
        String(r.cancelled),
        String(r.timedOut),
        formatDuration(r.p50DurationMs),
        formatDuration(r.p95DurationMs),
        formatDuration(r.meanDurationMs),
      ])
    ),
  );
  return 0;
}
