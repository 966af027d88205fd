/**
 * Text formatting shared by the CLI commands: aligned tables, durations and
 * times for people, and flow problems as `error:` lines.
 *
 * @module
 */
import { didYouMean } from "../_suggest.ts";
import {
  enqueuedByRun,
  type NodeItems,
  type NodeProgressEvent,
  type QueueInfo,
  runStartTime,
  type RunStatus,
  type RunSummary,
} from "../records/types.ts";
import { MIN_ABANDONED_MS } from "../records/heartbeat.ts";

/**
 * What the tables' `running?` means (a run recorded running whose process
 * is gone): said once after `runs ls`, `jobs ls` and `schedules ls` that
 * show one.
 */
export const RUNNING_GONE_NOTE =
  `running?: recorded running, but its process has written no heartbeat for over ${
    MIN_ABANDONED_MS / 1000
  } s: it is gone (killed, or its end could not be recorded). \`flowstate jobs run gc\` ` +
  "records such runs failed (abandoned); the daemon runs gc daily";

/**
 * What `runs ls`'s `abandoned` means (a run recorded running whose process
 * is verifiably dead on this machine): said once after a table that shows one.
 */
export const PROCESS_GONE_NOTE =
  "abandoned: recorded running, but its process is gone from this machine (killed or crashed): " +
  "`flowstate runs resume <id>` resumes it now; `flowstate jobs run gc` records it failed";

/**
 * What `runs ls`'s `running (stalled?)` means (a run whose process is alive
 * on this machine but wrote no heartbeat for over `MIN_ABANDONED_MS`).
 */
export const STALLED_NOTE =
  `running (stalled?): no heartbeat for over ${
    MIN_ABANDONED_MS / 1000
  } s, but its process is alive on this host (stopped, stalled, in a debugger): it is never ` +
  "recorded abandoned while it lives; `flowstate runs cancel <id>` to end it";

/**
 * What the tables' `running? (lease lapsed)` means (a queued run recorded running whose
 * worker's claim lapsed, with no worker to take it back yet): said once after `runs ls`.
 */
export const LEASE_LAPSED_NOTE =
  "running? (lease lapsed): a queued run whose worker wrote no heartbeat within its claim's " +
  "lease: that worker is gone (killed, stopped while its store was down, or cut off from it); " +
  "the next worker that polls the queue takes the run back and runs it again";

/**
 * Thrown by {@linkcode writeStdout} when whoever read stdout went away
 * (`flowstate changes | head`): the command stops and exits 0, quietly.
 */
export class StdoutClosedError extends Error {
  /** A stdout closed by its reader. */
  constructor(options?: ErrorOptions) {
    super("stdout was closed by its reader", options);
    this.name = "StdoutClosedError";
  }
}

const stdoutEncoder = new TextEncoder();

/**
 * Write `text` to stdout whole (a full pipe takes part of it at a time); a
 * reader that went away is a {@linkcode StdoutClosedError}.
 *
 * @example
 * ```ts ignore
 * writeStdout("[");
 * ```
 */
export function writeStdout(text: string): void {
  let bytes = stdoutEncoder.encode(text);
  try {
    while (bytes.length > 0) bytes = bytes.subarray(Deno.stdout.writeSync(bytes));
  } catch (error) {
    if (error instanceof Deno.errors.BrokenPipe) throw new StdoutClosedError({ cause: error });
    throw error;
  }
}

/** Print rows as columns separated by two spaces; the last column is not padded. */
export function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  const table = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...table.map((row) => row[i].length)));
  for (const row of table) {
    console.log(
      row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i])).join("  "),
    );
  }
}

/** A duration for people: `18ms`, `1.25s`, `3m 4s`, `2h 5m`; `-` for `null`. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "-";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(2))}s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  const m = Math.round(s / 60);
  if (m < 24 * 60) return `${Math.floor(m / 60)}h ${m % 60}m`;
  return `${Math.floor(m / 1440)}d ${Math.floor((m % 1440) / 60)}h`;
}

const timeFormats = new Map<string, Intl.DateTimeFormat>();

/**
 * A time (ms since the epoch) for a table, with its zone:
 * `2026-12-04 21:15:03 UTC` in UTC, `2026-12-04 22:15:03 +01:00` in another
 * IANA zone (the offset in force at that time); `-` for `null`. Commands pass
 * the config's `timezone` (default UTC), the zone schedules use too. A time
 * a store holds but a `Date` does not (past ±8.64e15 ms) reads "after the
 * year 275760" (or "before the year -271821"), as in the inspector.
 *
 * @example
 * ```ts
 * import { formatTime } from "./format.ts";
 * import assert from "node:assert/strict";
 * const t = Date.UTC(2026, 11, 4, 21, 15, 3);
 * assert.equal(formatTime(t), "2026-12-04 21:15:03 UTC");
 * assert.equal(formatTime(t, "Europe/Paris"), "2026-12-04 22:15:03 +01:00");
 * assert.equal(formatTime(9e15), "after the year 275760");
 * ```
 */
export function formatTime(ms: number | null | undefined, timezone = "UTC"): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "-";
  // A store keeps times past the last one a Date holds (year 275760), as the inspector says.
  if (Number.isNaN(new Date(ms).getTime())) {
    return ms > 0 ? "after the year 275760" : "before the year -271821";
  }
  let format = timeFormats.get(timezone);
  if (format === undefined) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone: timezone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      hourCycle: "h23",
      timeZoneName: "longOffset",
    });
    timeFormats.set(timezone, format);
  }
  const part: Record<string, string> = {};
  for (const { type, value } of format.formatToParts(ms)) part[type] = value;
  // "GMT+01:00", or "GMT" for a zero offset.
  const offset = part.timeZoneName.replace(/^GMT/, "") || "+00:00";
  const zone = timezone === "UTC" || timezone === "Etc/UTC" ? "UTC" : offset;
  return `${part.year}-${part.month}-${part.day} ${part.hour}:${part.minute}:${part.second} ${zone}`;
}

/**
 * A last run in a listing's LAST RUN column: its status and start time,
 * `(archived)` when the archive job moved it to `<home>/archive/`; `-` for none.
 * A run in `gone` (by id: recorded running, its process gone) reads
 * `running?`, as in `runs ls` (see {@linkcode RUNNING_GONE_NOTE}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lastRunText } from "./format.ts";
 *
 * const startedAt = Date.UTC(2026, 11, 4, 21, 15, 3);
 * assert.equal(lastRunText({ status: "failed", startedAt }), "failed 2026-12-04 21:15:03 UTC");
 * assert.equal(
 *   lastRunText({ status: "succeeded", startedAt, archived: true }),
 *   "succeeded 2026-12-04 21:15:03 UTC (archived)",
 * );
 * assert.equal(lastRunText(null), "-");
 * const killed = { id: "0mjuw3ms0abcdefghijk", status: "running", startedAt };
 * assert.equal(lastRunText(killed, "UTC", new Set([killed.id])), "running? 2026-12-04 21:15:03 UTC");
 * ```
 */
export function lastRunText(
  last: { id?: string; status: string; startedAt: number; archived?: true } | null,
  timezone = "UTC",
  gone: ReadonlySet<string> = new Set(),
): string {
  if (last === null) return "-";
  const status = last.id !== undefined && gone.has(last.id) ? "running?" : last.status;
  return `${status} ${formatTime(last.startedAt, timezone)}${last.archived ? " (archived)" : ""}`;
}

/**
 * A run's FLOW cell in the run tables: its flow id, with `(sub-flow)` for a
 * `flow` node's run and `(enqueued)` for a run a `queue` node enqueued.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runFlowCell } from "./format.ts";
 *
 * const run = {
 *   id: "0mjuw3ms0abcdefghijk", flowId: "work", flowVersion: "abc", status: "succeeded" as const,
 *   startedAt: 1, endedAt: 3, durationMs: 2, error: null, parentRunId: "0mjuw3ms0abcdefghijj",
 * };
 * assert.equal(runFlowCell(run), "work (sub-flow)");
 * assert.equal(runFlowCell({ ...run, enqueuedAt: 1, claimedAt: 2 }), "work (enqueued)");
 * ```
 */
export function runFlowCell(run: RunSummary): string {
  if (run.parentRunId === undefined) return run.flowId;
  return `${run.flowId} ${enqueuedByRun(run) ? "(enqueued)" : "(sub-flow)"}`;
}

/**
 * A run's STARTED cell in the run tables: when it really started (a queued
 * run's current or last attempt's claim, not its enqueue time), or `-` for
 * a queued run (its next attempt has not started) and a run that never did.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runStartedCell } from "./format.ts";
 *
 * const enqueued = Date.UTC(2026, 11, 4, 21, 0, 0);
 * const run = {
 *   id: "0mjuw3ms0abcdefghijk", flowId: "work", flowVersion: "abc", status: "succeeded" as const,
 *   startedAt: enqueued, endedAt: enqueued + 600_500, durationMs: 500, error: null,
 *   enqueuedAt: enqueued, claimedAt: enqueued + 600_000,
 * };
 * assert.equal(runStartedCell(run), "2026-12-04 21:10:00 UTC");
 * assert.equal(runStartedCell({ ...run, status: "queued" }), "-");
 * ```
 */
export function runStartedCell(run: RunSummary, timezone = "UTC"): string {
  return run.status === "queued" ? "-" : formatTime(runStartTime(run), timezone);
}

/** The first 12 hex digits of a version hash (`-` for `null`). */
export function shortHash(hash: string | null | undefined): string {
  return hash ? hash.slice(0, 12) : "-";
}

/** Print each line of a multi-line error message to stderr as `error: <line>`. */
export function printErrorLines(message: string): void {
  for (const line of message.split("\n")) console.error(`error: ${line}`);
}

/**
 * Terminal control characters (C0 but tab and newline, DEL, C1) and the
 * characters that reorder text (bidi overrides and isolates, line and
 * paragraph separators), as escapes: text from flows, nodes, stores and
 * errors cannot clear the screen, move the cursor or disguise itself.
 */
const UNPRINTABLE =
  // deno-lint-ignore no-control-regex
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** `text` for a terminal, with control characters escaped (`\x1b`, `\u202e`). */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/**
 * What the CLI says of a flow id with nothing recorded under it: `Flow "x"
 * has no recorded <what> (did you mean "y"?); …` and the flow ids it knows.
 * `known: "recorded"` names the flows that have run (`metrics`, `flows
 * versions`); `"declared"` says that no flow file or recorded run has the id
 * and names both kinds (`runs ls --flow`).
 */
export function unknownFlowMessage(
  flowId: string,
  what: string,
  ids: readonly string[],
  known: "recorded" | "declared" = "recorded",
): string {
  const list = known === "recorded"
    ? (ids.length === 0 ? "no flow has run yet" : `the recorded flows are ${ids.join(", ")}`)
    : `no flow file or recorded run has that id; ${
      ids.length === 0
        ? "no flow has run and the config's flows: names no flow file"
        : `the known flows are ${ids.join(", ")}`
    }`;
  return `Flow "${flowId}" has no recorded ${what}${didYouMean(flowId, ids)}; ${list}`;
}

/**
 * A queued run's attempt as `runs show` and `runs retry` print it, in the one numbering the
 * record's `queue.attempts` and a worker's log use (one number per claim, lost and released
 * attempts included): for a queued run the next attempt (`queue.attempt` is the last one's),
 * else the current or last one; out of `maxAttempts` plus the lost attempts, which do not count
 * against it. Like `attempt 2 of 2 (1 lost, not counted)`.
 */
export function queueAttemptText(status: RunStatus, q: QueueInfo): string {
  const current = status === "queued" ? q.attempt + 1 : q.attempt;
  const lost = q.attempts.filter((a) => a.outcome === "lost").length;
  const of = Math.max(current, q.maxAttempts + lost);
  return `${status === "queued" ? "next " : ""}attempt ${current} of ${of}${
    lost === 0 ? "" : ` (${lost} lost, not counted)`
  }`;
}

/**
 * A run's error as its `error:` line shows it: `node "f": boom`, or the message alone.
 *
 * @example
 * ```ts
 * import { runErrorText } from "./format.ts";
 * import assert from "node:assert/strict";
 * assert.equal(runErrorText({ node: "f", message: "boom" }), 'node "f": boom');
 * ```
 */
export function runErrorText(error: { node?: string; message: string }): string {
  return `${error.node ? `node "${error.node}": ` : ""}${printable(error.message)}`;
}

/**
 * How the items of a node with `forEach:` ended: `3 items` when each
 * succeeded, else `5 items: 2 succeeded, 1 failed (item 2), 2 stopped or not
 * started`. `undefined` for a node without items (or a record whose `items`
 * is not the shape this version writes).
 */
export function itemsText(items: NodeItems | undefined): string | undefined {
  if (typeof items !== "object" || items === null) return undefined;
  const { count, succeeded, failed, failedIndex } = items;
  if (![count, succeeded, failed].every((n) => Number.isSafeInteger(n) && n >= 0)) {
    return undefined;
  }
  const total = `${count} ${count === 1 ? "item" : "items"}`;
  if (succeeded === count) return total;
  const parts = [`${succeeded} succeeded`];
  if (failed > 0) {
    parts.push(
      `${failed} failed${
        typeof failedIndex !== "number"
          ? ""
          : failed === 1
          ? ` (item ${failedIndex})`
          : ` (first: item ${failedIndex})`
      }`,
    );
  }
  const rest = count - succeeded - failed;
  if (rest > 0) parts.push(`${rest} stopped or not started`);
  return `${total}: ${parts.join(", ")}`;
}

/** How a number is written to people: `1,000`. */
const counted = new Intl.NumberFormat("en-US");

/**
 * A running `forEach` node's progress: `312 of 1,000 items done (31%), 2
 * failed (items 4, 17), 4 running`. `undefined` for an event whose counts are
 * not the shape this version writes.
 */
export function progressText(
  event: Pick<NodeProgressEvent, "count" | "succeeded" | "failed" | "running" | "failedItems">,
): string | undefined {
  const { count, succeeded, failed, running, failedItems } = event;
  if (![count, succeeded, failed].every((n) => Number.isSafeInteger(n) && n >= 0)) {
    return undefined;
  }
  const done = succeeded + failed;
  const percent = count === 0 ? 100 : Math.floor((done / count) * 100);
  const parts = [
    `${counted.format(done)} of ${counted.format(count)} ${
      count === 1 ? "item" : "items"
    } done (${percent}%)`,
  ];
  if (failed > 0) {
    const named = Array.isArray(failedItems) ? failedItems.filter(Number.isSafeInteger) : [];
    parts.push(
      `${counted.format(failed)} failed${
        named.length === 0
          ? ""
          : ` (${named.length === 1 ? "item" : "items"} ${named.join(", ")}${
            failed > named.length ? ", …" : ""
          })`
      }`,
    );
  }
  if (Number.isSafeInteger(running) && running > 0) {
    parts.push(`${counted.format(running)} running`);
  }
  return parts.join(", ");
}
