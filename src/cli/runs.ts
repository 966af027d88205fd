/**
 * `flowstate runs ls` and `flowstate runs show`: the recorded runs.
 *
 * `--json` output (one JSON document on stdout, stable):
 * - `runs ls`: `[{ "id", "flowId", "flowVersion", "status", "startedAt", "endedAt",
 *   "durationMs", "error", "parentRunId"?, "resumeOf"?, "enqueuedAt"?, "claimedAt"? }]`, newest
 *   first (times in ms since the epoch; `startedAt` is the id's time: for a run that went
 *   through the queue, marked by `enqueuedAt`, when it was enqueued, and `claimedAt` when its
 *   current or last attempt started; a `parentRunId` with `enqueuedAt` is a run a `queue` node
 *   enqueued, one without is a sub-flow's run)
 * - `runs show <id>`: `{ "run": <RunRecord>, "events": [{ "at", "type", "node"?, "attempt"?,
 *   "status"?, "durationMs"?, "outputBytes"?, "error"?, "message"?, "level"? }] }`, or `null`
 *   (exit 1) for a run that is not found, as every lookup of the CLI does; an archived run
 *   has two more fields: `"archive"` (the archive file's name) and `"version"` (the flow
 *   version it ran, `{ flowId, hash, parent, seq, createdAt, definition, source? }`, as the
 *   archive keeps it, or `null` when the archive does not hold it)
 * - `runs show <id> --definition --json`: the flow version the run ran (as above), from the
 *   records store or the archive; without `--json`, `--definition` prints its source (the
 *   flow file as it was). Exit 1 when it is kept nowhere.
 *
 * An archived run is read-only: `runs cancel` and `runs retry` of one exit 1 saying so.
 *
 * `runs ls --flow ID` with an id that no run, recorded flow or flow file of the
 * config has is an error (exit 1, `[]` with `--json`) naming the known flows
 * with a did-you-mean; a known flow without matching runs is no error. A flow
 * the archive knows (its runs archived: all of them, for a flow known only
 * from the archive) is a known flow: with no run in the records store,
 * `runs ls --flow` says on stderr that it has archived runs and the command
 * that lists them (`runs ls --archived --flow ID`). A job's
 * id, `job:<name>`, is judged against the built-in and configured jobs. This
 * holds before anything is recorded too (no records store yet).
 *
 * Times in the tables are shown in the config's `timezone` (default UTC), with it.
 *
 * @module
 */
import type { RunRecord } from "../records/types.ts";
import type { RunSummary } from "../records/types.ts";
import type { FlowVersion } from "../records/flow_version.ts";
import {
  formatDuration,
  formatTime,
  LEASE_LAPSED_NOTE,
  printable,
  printTable,
  PROCESS_GONE_NOTE,
  runFlowCell,
  RUNNING_GONE_NOTE,
  runStartedCell,
  shortHash,
  STALLED_NOTE,
} from "./format.ts";
import { unknownFlow } from "./known_flows.ts";
import {
  EXIT_FAILURE,
  type GlobalOptions,
  notFound,
  openForReading,
  printError,
  unlessMissing,
} from "./common.ts";
import type { Runtime } from "../runtime.ts";
import { archiveReaderOf } from "../records/_archive_read.ts";
import type { Records } from "../records/records.ts";
import { messageOf } from "../errors.ts";
import { UsageError } from "./input.ts";
import { isRunId } from "../records/run_id.ts";
import { CANCEL_ABANDONED_AFTER, cancelAnyRun } from "../queue/cancel.ts";
import { printRun } from "./run_print.ts";
import { runShapeProblem } from "../records/types.ts";
import { claimLapsedAt, HEARTBEAT_MS, judgeRun, MIN_ABANDONED_MS } from "../records/heartbeat.ts";
import { DEFAULT_RUNS_LIMIT, type ListRunsCommandOptions, parseTimeRange } from "./run_filters.ts";

const PAGE = 1000;

/** `runs ls [--flow ID] [--status S] [--since T] [--until T] [--limit N] [--json]`. */
export async function listRuns(
  options: ListRunsCommandOptions,
  global: GlobalOptions,
): Promise<number> {
  const now = Date.now();
  parseTimeRange(options, now); // bad input is refused before anything opens
  const limit = options.limit ?? DEFAULT_RUNS_LIMIT;
  await using runtime = await openForReading(global);
  // A time without an offset is one in the config's timezone, as the table shows times.
  const { since, until } = parseTimeRange(options, now, runtime.config.timezone);
  const records = await unlessMissing(() => runtime.records());
  if (records === null) {
    // No run is recorded yet, but the config's flow files and jobs are known: a typo is named.
    const unknown = options.flow === undefined
      ? null
      : await unknownFlow(runtime, null, options.flow);
    if (options.json) console.log("[]");
    if (unknown !== null) {
      printError(unknown);
      return EXIT_FAILURE;
    }
    await archivedRunsHint(runtime, options.flow);
    return 0;
  }
  const runs: RunSummary[] = [];
  const malformed: string[] = [];
  let cursor: string | undefined;
  while (runs.length < limit) {
    const page = await records.listRunSummaries({
      flowId: options.flow,
      status: options.status,
      since,
      until,
      limit: Math.min(PAGE, limit - runs.length),
      cursor,
    });
    runs.push(...page.runs);
    malformed.push(...(page.malformed ?? []));
    cursor = page.cursor;
    if (cursor === undefined) break;
  }
  if (runs.length === 0 && options.flow !== undefined) {
    const unknown = await unknownFlow(runtime, records, options.flow);
    if (unknown !== null) {
      if (options.json) console.log("[]");
      printError(unknown);
      return EXIT_FAILURE;
    }
  }
  if (options.json) {
    console.log(JSON.stringify(runs));
    if (runs.length === 0) await archivedRunsHint(runtime, options.flow);
  } else if (runs.length === 0) {
    console.error("No runs match");
    await archivedRunsHint(runtime, options.flow);
  } else {
    // A run still recorded running whose process stopped beating is not running: say so.
    const gone = new Set<string>();
    // Its process is dead on this machine (`abandoned`), or alive but silent (`stalled?`).
    const dead = new Set<string>();
    const stalled = new Set<string>();
    // A queued run whose worker's claim lapsed, not taken back yet (no worker polls): say so.
    const lapsed = new Set<string>();
    // A queued run a worker found over its flow's limits says which (its record says).
    const waiting = new Map<string, "rate" | "slot">();
    for (const r of runs) {
      if (r.status !== "running" && r.status !== "queued") continue;
      const run = await records.getRun(r.id);
      if (run === null) continue;
      const judged = r.status === "running" ? judgeRun(run, now, MIN_ABANDONED_MS) : undefined;
      if (judged?.state === "abandoned") (judged.why.by === "process" ? dead : gone).add(r.id);
      if (judged?.state === "stalled") stalled.add(r.id);
      if (r.status === "running" && claimLapsedAt(run, now) !== undefined) lapsed.add(r.id);
      const why = run.status === "queued" ? run.queue?.waiting : undefined;
      if (why !== undefined) waiting.set(r.id, why);
    }
    printTable(
      ["ID", "FLOW", "STATUS", "STARTED", "DURATION"],
      runs.map((r) => [
        r.id,
        runFlowCell(r),
        dead.has(r.id)
          ? "abandoned"
          : stalled.has(r.id)
          ? "running (stalled?)"
          : gone.has(r.id)
          ? "running?"
          : lapsed.has(r.id)
          ? "running? (lease lapsed)"
          : waiting.has(r.id)
          ? `queued (${waiting.get(r.id)})`
          : r.status,
        // A queued run's startedAt is when it was enqueued (its id's time), not when it started.
        runStartedCell(r, runtime.config.timezone),
        formatDuration(r.durationMs),
      ]),
    );
    if (gone.size > 0) {
      console.error(RUNNING_GONE_NOTE);
    }
    if (dead.size > 0) console.error(PROCESS_GONE_NOTE);
    if (stalled.size > 0) console.error(STALLED_NOTE);
    if (lapsed.size > 0) console.error(LEASE_LAPSED_NOTE);
    const why = new Set(waiting.values());
    if (why.has("slot")) {
      console.error(
        "queued (slot): its partition is at its flow's `queue: { concurrency }` limit; it " +
          "starts when one of the partition's runs ends (`flowstate runs show <id>` says which)",
      );
    }
    if (why.has("rate")) {
      console.error(
        "queued (rate): its partition's `queue: { rate }` window is full; it starts when the " +
          "window has room (`flowstate runs show <id>` says when)",
      );
    }
  }
  if (malformed.length > 0) {
    // Shown, not fatal: one damaged entry must not hide every other run.
    console.error(
      `warning: skipped ${malformed.length} malformed run record${
        malformed.length === 1 ? "" : "s"
      }: ${malformed.slice(0, 10).map(printable).join(", ")}${malformed.length > 10 ? ", …" : ""}`,
    );
  }
  return 0;
}

/**
 * When `runs ls --flow <flowId>` finds no run in the records store but the
 * archive holds runs of it (its runs were archived; all of them, for a flow
 * known only from the archive), say so on stderr, with the command that
 * lists them. Read from the archive indexes; a damaged archive file is left
 * out here (the archived listing names it).
 */
async function archivedRunsHint(runtime: Runtime, flowId: string | undefined): Promise<void> {
  if (flowId === undefined) return;
  const last = (await archiveReaderOf(runtime).lastRuns(() => {})).get(flowId);
  if (last === undefined) return;
  console.error(
    `${JSON.stringify(flowId)} has archived runs (the newest in ${last.archive}, under ` +
      `${runtime.home}/archive): flowstate runs ls --archived --flow ${flowId}`,
  );
}

/**
 * `runs show <run-id> [--json] [--definition]`: exit 1 when there is no such
 * run. With `--definition`, only the flow definition the run ran (its file as
 * it was, YAML; a definition given as an object: JSON), from the records
 * store or, for an archived run, from the archive; with `--json` too, the
 * flow version (`{ flowId, hash, parent, seq, createdAt, definition, source? }`).
 * Exit 1 when it is kept nowhere (the message says why).
 */
export async function showRun(
  runId: string,
  options: { json?: boolean; definition?: boolean; follow?: boolean; timeout?: string },
  global: GlobalOptions,
): Promise<number> {
  if (options.follow && options.definition) {
    throw new UsageError("Give --follow or --definition, not both");
  }
  if (options.timeout !== undefined && !options.follow) {
    throw new UsageError("--timeout bounds --follow: give it with --follow");
  }
  if (!isRunId(runId)) {
    return notFound(
      options.json,
      `Run "${runId}" not found: run ids are 20 lowercase letters and digits, as printed by ` +
        "flowstate run, flowstate enqueue and flowstate runs ls",
    );
  }
  if (options.follow) {
    const { followCommand } = await import("./follow.ts");
    return await followCommand(runId, options, global);
  }
  await using runtime = await openForReading(global);
  const records = await unlessMissing(() => runtime.records());
  let run: RunRecord | null;
  try {
    run = records === null ? null : await records.getRun(runId);
  } catch (err) {
    // Recorded, but not readable by this version (its node outcomes damaged or newer).
    if (!(err instanceof TypeError)) throw err;
    const why = messageOf(err).replace(/^Cannot read run "[^"]*": /, "");
    printError(unreadable(runId, why, runtime.config.records));
    return 1;
  }
  if (run === null) {
    const { findArchivedRun } = await import("./archive.ts");
    const archived = await findArchivedRun(runId, runtime.home);
    if (archived !== null) {
      if (options.definition) {
        const version = archived.version ??
          (records === null ? null : await recordedVersion(records, archived.run));
        return printDefinition(archived.run, version, options.json, archived.archive);
      }
      if (options.json) {
        console.log(JSON.stringify({
          run: archived.run,
          events: archived.events,
          archive: archived.archive,
          version: archived.version,
          ...(archived.onFailure === undefined ? {} : { onFailure: archived.onFailure }),
        }));
      } else {
        printRun(archived.run, archived.events, runtime.config.timezone, archived.onFailure);
        console.log(`archived: ${archived.archive}`);
        // A job's run has no definition to point to (as when it is still recorded).
        if (!archived.run.flowId.startsWith("job:")) {
          console.log(archivedVersionLine(archived.version, runId, runtime.config.timezone));
        }
      }
      return 0;
    }
    return notFound(
      options.json,
      `Run ${runId} not found in store "${runtime.config.records}" (list runs with: flowstate runs ls)`,
    );
  }
  const problem = runShapeProblem(run);
  if (problem !== undefined) {
    printError(unreadable(runId, `malformed (${problem})`, runtime.config.records));
    return 1;
  }
  if (options.definition) {
    return printDefinition(run, await recordedVersion(records!, run), options.json, null);
  }
  const events = await records!.getEvents(runId); // a run was found, so the store exists
  // The runs.onFailure flow that ran about it, if one did.
  const onFailure = await records!.onFailureMarker(runId);
  // The run that resumes it, if one does (`runs resume`).
  const resumedBy = (await records!.resumeMarker(runId))?.marker.runId;
  if (options.json) {
    console.log(JSON.stringify({
      run,
      events,
      ...(onFailure === null ? {} : { onFailure }),
      ...(resumedBy === undefined ? {} : { resumedBy }),
    }));
  } else {
    // Its wait nodes and those of its sub-runs (they take the signals sent to it): say so.
    const waiting = run.status === "running" ? await records!.waitingNodes(runId) : [];
    printRun(run, events, runtime.config.timezone, onFailure, waiting, resumedBy);
  }
  return 0;
}

/** Where an archived run's definition is: kept with it in the archive, or not. */
function archivedVersionLine(version: FlowVersion | null, runId: string, tz: string): string {
  return version === null
    ? "definition: not in the archive (archived before archives kept flow versions, or its " +
      "version was already deleted from the records store)"
    : `definition: in the archive (version ${version.seq}, saved ${
      formatTime(version.createdAt, tz)
    }); print it with: flowstate runs show ${runId} --definition`;
}

/** The flow version `run` ran, as the records store holds it (`null`: not, or a job's run). */
async function recordedVersion(records: Records, run: RunRecord): Promise<FlowVersion | null> {
  if (run.flowId.startsWith("job:")) return null;
  return await records.getVersion(run.flowId, run.flowVersion);
}

/**
 * `runs show --definition`: the definition `run` ran (`version`), as its
 * file was (its source), else as JSON; with `json`, the version. Exit 1 when
 * there is none (`archive`: the archived run's file, else the run is recorded).
 */
function printDefinition(
  run: RunRecord,
  version: FlowVersion | null,
  json: boolean | undefined,
  archive: string | null,
): number {
  if (version === null) {
    return notFound(
      json,
      run.flowId.startsWith("job:")
        ? `Run ${run.id} is a run of job "${run.flowId.slice(4)}": a job has no flow definition`
        : `The definition of run ${run.id} (flow "${run.flowId}", version ${
          shortHash(run.flowVersion)
        }) is kept nowhere: ${
          archive === null
            ? "the retention job deleted the version from the records store"
            : `it is neither in the records store nor in the archive beside ${archive} ` +
              "(archived before archives kept flow versions, or its version was already " +
              "deleted when the run was archived)"
        }`,
    );
  }
  if (json) console.log(JSON.stringify(version));
  else if (version.source !== undefined) {
    console.log(version.source.endsWith("\n") ? version.source.slice(0, -1) : version.source);
  } else console.log(JSON.stringify(version.definition, null, 2));
  return 0;
}

/** Why run `runId` cannot be shown, and how to see its raw entry in the records store. */
function unreadable(runId: string, problem: string, store: string): string {
  return `Run ${runId} is recorded but ${problem}, so it cannot be shown; ` +
    `see its raw entry with: flowstate state get flowstate/runs/${runId} --store ${store}`;
}

/**
 * `runs cancel <id>`: cancel a queued run at once (it never starts), or
 * record a cancel request for a running run (see
 * `Records.requestCancel`); the process running it ends it `cancelled`
 * within a second. Exit 0 when recorded, 1 when the run already ended
 * ("run X already ended (status)") or is unknown ("unknown run X").
 */
export async function cancelRun(id: string, global: GlobalOptions): Promise<number> {
  await using runtime = await openForReading(global);
  const records = await unlessMissing(() => runtime.records());
  const done = records === null || !isRunId(id)
    ? { kind: "unknown" as const }
    : await cancelAnyRun(records, id, runtime.clock.now());
  switch (done.kind) {
    case "unknown": {
      const { archivedCannot, findArchivedRun } = await import("./archive.ts");
      const archived = await findArchivedRun(id, runtime.home);
      printError(archived === null ? `unknown run ${id}` : archivedCannot("cancel", archived));
      return 1;
    }
    case "ended":
      printError(`run ${id} already ended (${done.run.status})`);
      return 1;
    case "queued":
      console.log(
        done.run.queue !== undefined && done.run.queue.attempts.length > 0
          ? `Cancelled run ${id} (${done.run.flowId}) while queued: it does not start again`
          : `Cancelled run ${id} (${done.run.flowId}) before it started`,
      );
      return 0;
    case "requested": {
      const now = runtime.clock.now();
      const silentMs = now - done.lastSeenAt;
      if (silentMs <= 2 * HEARTBEAT_MS) {
        console.log(
          `Cancel requested for run ${id} (${done.run.flowId}): it stops within a second`,
        );
        return 0;
      }
      // Two heartbeats missed: its process may be gone, and then nobody acts on the request yet.
      const tz = runtime.config.timezone;
      const judged = judgeRun(done.run, now, MIN_ABANDONED_MS);
      if (judged.state === "stalled") {
        console.log(
          `Cancel requested for run ${id} (${done.run.flowId}): its process ${judged.pid} is ` +
            `alive on this host but has not answered since ${
              formatTime(done.lastSeenAt, tz)
            } (stopped, stalled or in a debugger?): the run stops as soon as it goes on; it is ` +
            "never recorded abandoned while that process lives",
        );
        return 0;
      }
      const claim = done.run.queue?.claim;
      const then = claim === undefined
        ? `run this command again after ${
          formatTime(done.lastSeenAt + CANCEL_ABANDONED_AFTER, tz)
        } (a minute without a heartbeat) to record it failed (abandoned)`
        : `it is recorded cancelled when its worker's lease lapses, at ${
          formatTime(done.lastSeenAt + claim.leaseMs, tz)
        }, and a worker takes it back (or when this command runs again then)`;
      console.log(
        `Cancel requested for run ${id} (${done.run.flowId}), but the ${
          claim === undefined ? "process" : "worker"
        } running it has not answered since ${formatTime(done.lastSeenAt, tz)} (${
          Math.round(silentMs / 1000)
        } s ago): if it is alive, the run stops within a second; if it is gone, ${then}`,
      );
      return 0;
    }
    case "abandoned":
      console.log(
        `Run ${id} (${done.run.flowId}) has had no heartbeat since ${
          formatTime(done.lastSeenAt, runtime.config.timezone)
        }: the process running it is gone; recorded it failed (abandoned)`,
      );
      return 0;
    case "lost":
      console.log(
        `Run ${id} (${done.run.flowId}) has had no heartbeat since ${
          formatTime(done.lastSeenAt, runtime.config.timezone)
        }: its worker is gone (its lease lapsed); recorded it ${done.run.status}`,
      );
      return 0;
  }
}
