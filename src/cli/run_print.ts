/**
 * How `runs show` prints a run: its record, its queue line, then a timeline
 * per node; shared by `runs show` and `runs show --follow` (`follow.ts`).
 *
 * @module
 */
import { type RunEvent, type RunRecord, runStartTime, type StateAccess } from "../records/types.ts";
import type { OnFailureMarker } from "../records/records.ts";
import {
  formatDuration,
  formatTime,
  itemsText,
  printable,
  progressText,
  queueAttemptText,
  runErrorText,
  shortHash,
} from "./format.ts";
import { formatRate } from "../rate.ts";
import { claimLapsedAt, judgeRun, MIN_ABANDONED_MS } from "../records/heartbeat.ts";

/**
 * Why a queued run is not starting, as `runs show` ends its queue line:
 * `, waiting for its rate limit (10/1m, partition "acme")` for a run a worker
 * put off because its rate window was full, `, waiting for a slot
 * (concurrency 2 reached, partition "acme")` for one a worker set aside
 * because its partition was at its concurrency limit; empty otherwise.
 */
function queueWaitText(run: RunRecord): string {
  const limit = run.queue?.limit;
  if (run.status !== "queued" || limit === undefined) return "";
  const partition = limit.partition === "*" ? "" : `, partition ${JSON.stringify(limit.partition)}`;
  if (run.queue?.waiting === "rate" && limit.rate !== undefined) {
    return printable(`, waiting for its rate limit (${formatRate(limit.rate)}${partition})`);
  }
  if (run.queue?.waiting === "slot" && limit.concurrency !== undefined) {
    return printable(`, waiting for a slot (concurrency ${limit.concurrency} reached${partition})`);
  }
  return "";
}

/** `, its lease lapsed at …` for a running queued run no worker took back yet (else ""). */
function claimLapsedText(run: RunRecord, tz: string): string {
  const at = claimLapsedAt(run, Date.now());
  return at === undefined
    ? ""
    : `, its lease lapsed at ${
      formatTime(at, tz)
    } (no heartbeat from that worker since): the next worker that polls the queue takes it back and runs it again`;
}

/**
 * Print a run as `runs show` does: its record, then a timeline per node (times in `tz`);
 * with `onFailure`, the `runs.onFailure` flow that ran about it; `waiting`, the `wait` nodes
 * of the run and of its sub-runs that wait (`Records.waitingNodes`: they take the signals sent to it).
 * `resumedBy`, the run that resumes it.
 */
export function printRun(
  run: RunRecord,
  events: readonly RunEvent[],
  tz: string,
  onFailure?: OnFailureMarker | null,
  waiting: readonly { runId: string; node: string; signal: string; message?: string }[] = [],
  resumedBy?: string,
): void {
  const lines = [
    `run:      ${run.id}`,
    `flow:     ${run.flowId} (version ${shortHash(run.flowVersion)})`,
  ];
  if (run.parentRunId !== undefined) lines.push(`parent:   ${run.parentRunId}`);
  if (run.scheduledAt !== undefined) {
    lines.push(
      printable(
        `schedule: ${run.schedule ?? "?"}, tick of ${formatTime(run.scheduledAt, tz)}`,
      ),
    );
  }
  if (run.onFailureOf !== undefined) {
    lines.push(`reports:  on run ${run.onFailureOf} (this is a run of the runs.onFailure flow)`);
  }
  if (run.resumeOf !== undefined) {
    lines.push(`resumes:  run ${run.resumeOf} (nodes marked reused were not run again)`);
  }
  if (resumedBy !== undefined) {
    lines.push(`resumed by: run ${resumedBy} (flowstate runs show ${resumedBy})`);
  }
  const judged = judgeRun(run, Date.now(), MIN_ABANDONED_MS);
  const gone = judged.state === "abandoned" ? judged.why : null;
  lines.push(
    `status:   ${run.status}${
      gone?.by === "process"
        ? ` (abandoned: ${gone.process}; \`flowstate runs resume ${run.id}\` resumes it, ` +
          "`flowstate jobs run gc` records it failed)"
        : gone !== null
        ? ` (no heartbeat since ${
          formatTime(gone.lastSeenAt, tz)
        }: its process is gone; \`flowstate jobs run gc\` records it failed)`
        : judged.state === "stalled"
        ? ` (stalled? no heartbeat since ${
          formatTime(judged.lastSeenAt, tz)
        }, but its process ${judged.pid} is alive on this host: left running; ` +
          `\`flowstate runs cancel ${run.id}\` to end it)`
        : ""
    }`,
  );
  if (run.status === "running" && gone === null) {
    // A wait node waiting for a signal: what to send, and how (not when its process is gone).
    for (const w of waiting) {
      lines.push(
        printable(
          `waiting:  node ${w.node}${
            w.runId === run.id ? "" : ` of sub-run ${w.runId}`
          } waits for signal ${w.signal}${
            w.message === undefined ? "" : ` (${w.message})`
          }: flowstate runs signal ${run.id} ${w.signal} [--data JSON]`,
        ),
      );
    }
  }
  if (onFailure) {
    lines.push(
      printable(
        `onFailure: ${onFailure.flow} ${
          onFailure.runId === undefined
            ? `started by ${onFailure.host} (pid ${onFailure.pid}) at ${
              formatTime(onFailure.at, tz)
            }, its run not recorded yet`
            : `ran as run ${onFailure.runId} (flowstate runs show ${onFailure.runId})`
        }`,
      ),
    );
  }
  // A queued run started when its (last) attempt was claimed, not when it was enqueued (its
  // id's time, `startedAt`): its duration is that attempt's.
  const q = run.queue;
  const started = runStartTime(run);
  lines.push(`started:  ${started === undefined ? "not yet" : formatTime(started, tz)}`);
  if (q !== undefined && q.enqueuedAt !== started) {
    lines.push(`enqueued: ${formatTime(q.enqueuedAt, tz)}`);
  }
  lines.push(
    `duration: ${formatDuration(run.durationMs)}`,
    `inputs:   ${printable(JSON.stringify(run.inputs))}`,
  );
  if (run.outputs !== null) lines.push(`outputs:  ${printable(JSON.stringify(run.outputs))}`);
  if (q !== undefined) {
    const runAt = formatTime(q.runAt, tz);
    lines.push(
      `queue:    run ${/^\d/.test(runAt) ? "at " : ""}${runAt}, priority ${q.priority}${
        q.key === undefined ? "" : `, key ${printable(q.key)}`
      }, ${queueAttemptText(run.status, q)}${
        q.claim ? `, claimed by ${printable(q.claim.worker)}${claimLapsedText(run, tz)}` : ""
      }${queueWaitText(run)}`,
    );
    for (const a of q.attempts) {
      lines.push(
        `  attempt ${a.attempt}: ${a.outcome} on ${printable(a.worker)} at ${
          formatTime(a.startedAt, tz)
        } (${formatDuration(a.endedAt - a.startedAt)})${
          a.error === undefined ? "" : `: ${printable(a.error)}`
        }`,
      );
    }
  }
  if (run.error) {
    lines.push(`error:    ${runErrorText(run.error)}`);
  }

  // One block per node, in the order nodes first appear, then nodes without events.
  const byNode = new Map<string, RunEvent[]>();
  for (const event of events) {
    if (!("node" in event)) continue;
    let list = byNode.get(event.node);
    if (!list) byNode.set(event.node, list = []);
    list.push(event);
  }
  for (const id of Object.keys(run.nodes)) if (!byNode.has(id)) byNode.set(id, []);
  if (byNode.size > 0) lines.push("", "nodes:");
  const offsetWidth = Math.max(
    0,
    ...events.map((e) => formatDuration(e.at - run.startedAt).length + 1),
  );
  for (const [id, nodeEvents] of byNode) {
    const result = run.nodes[id];
    const head = result === undefined
      ? "(no result recorded)"
      : `${result.status}, ${
        itemsText(result.items)?.concat(", ") ?? ""
      }${result.attempts} attempt${result.attempts === 1 ? "" : "s"}`;
    const end = nodeEvents.findLast((e) => e.type === "node.end");
    const took = end?.durationMs === undefined ? "" : `, ${formatDuration(end.durationMs)}`;
    const when = result?.when === undefined ? "" : ` (when: ${result.when})`;
    // A test's mock stood in for it: what it shows did not happen.
    const mocked = result?.mocked === true ? " (mocked: it did not run)" : "";
    // A resumed run's node taken as the run it resumes recorded it.
    const reused = result?.reused === undefined ? "" : ` (reused from run ${result.reused})`;
    lines.push(`  ${id}: ${head}${took}${when}${mocked}${reused}`);
    // A forEach node's progress: only where it stands now, while it runs (its end says it all).
    const progress = end === undefined
      ? nodeEvents.findLast((e) => e.type === "node.progress")
      : undefined;
    for (const event of nodeEvents) {
      if (event.type === "node.progress" && event !== progress) continue;
      const line = describeEvent(event);
      const offset = `+${formatDuration(event.at - run.startedAt)}`.padEnd(offsetWidth);
      if (line !== undefined) lines.push(`    ${offset}  ${line}`);
    }
    if (end?.type === "node.end") {
      const reads = describeAccess(end.reads, end.readsTruncated);
      if (reads !== undefined) lines.push(`    reads:  ${reads}`);
      const writes = describeAccess(end.writes, end.writesTruncated);
      if (writes !== undefined) lines.push(`    writes: ${writes}`);
    }
    // The runs of its sub-flows (runs show <id> shows each).
    const subRuns = (result?.subRuns ?? []).filter((r): r is string => typeof r === "string");
    if (subRuns.length > 0) {
      lines.push(`    ${subRuns.length === 1 ? "sub-run" : "sub-runs"}: ${subRuns.join(", ")}`);
    }
    if (result?.output !== undefined) {
      let output = JSON.stringify(result.output);
      if (output.length > 100) output = `${output.slice(0, 99)}…`;
      lines.push(`    output: ${printable(output)}`);
    }
  }
  console.log(lines.join("\n"));
}

/** `flow:a/b, node:items/*, global:x (store other)`, and a note when the list was cut. */
function describeAccess(
  list: readonly StateAccess[] | undefined,
  truncated: true | undefined,
): string | undefined {
  if (!Array.isArray(list) || list.length === 0) return undefined;
  const keys = list.map((a) => {
    const key = Array.isArray(a.key) ? a.key.join("/") : String(a.key);
    const listed = a.prefix ? (key === "" ? "*" : `${key}/*`) : key;
    return printable(`${a.scope}:${listed}${a.store === undefined ? "" : ` (store ${a.store})`}`);
  });
  return `${keys.join(", ")}${
    truncated ? `, … (only the first ${list.length} keys are recorded)` : ""
  }`;
}

/** A node event as a line of a timeline (`started`, `log: hi`, `failed: boom`), or nothing. */
export function describeEvent(event: RunEvent): string | undefined {
  switch (event.type) {
    case "node.start":
      return typeof event.items === "number"
        ? `started (${event.items} ${event.items === 1 ? "item" : "items"})`
        : "started";
    case "node.attempt": {
      const item = typeof event.item === "number" ? `item ${event.item} ` : "";
      return event.error === undefined
        ? `${item}attempt ${event.attempt}`
        : `${item}attempt ${event.attempt} failed: ${printable(event.error)}`;
    }
    case "node.log":
      return `${typeof event.item === "number" ? `item ${event.item} ` : ""}${
        event.level && event.level !== "info" ? `${event.level}: ` : "log: "
      }${printable(event.message ?? "")}`;
    case "node.progress":
      return progressText(event);
    case "node.subrun":
      return `${typeof event.item === "number" ? `item ${event.item} ` : ""}started sub-run ${
        printable(String(event.run))
      }`;
    case "node.end":
      return `${event.status}${
        event.status === "failed" || event.status === "timed-out"
          ? event.error === undefined ? "" : `: ${printable(event.error)}`
          : ""
      }`;
    default:
      return undefined;
  }
}
