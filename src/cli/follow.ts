/**
 * Following a run from the terminal until it ends: `flowstate runs show <id>
 * --follow` and `flowstate enqueue <flow> --follow | --wait`.
 *
 * The run is read from the records store this process opens, so the run may
 * be run by any worker (`flowstate worker`, `serve`, the daemon), in this or
 * another process or machine sharing the store. Each poll reads the run's
 * record (one key) and only the events after the last one seen
 * (`Records.getEventsFrom`, as `GET /api/runs/{id}?after=` does): every
 * {@linkcode POLL_FIRST_MS} ms, backing off by half up to
 * {@linkcode POLL_MAX_MS} while nothing changes, back to the first interval
 * as soon as something does.
 *
 * Output (`follow`): the run as `runs show` prints it, then one line per new
 * event (`+1.2s  node: log: hi`; a running `forEach` node's progress,
 * `+3s  notify: 312 of 1,000 items done (31%), 2 failed (items 4, 17)`, at
 * most once a poll and a second per node, never once the node ended), notes about its queue (waiting for a
 * worker, a slot or a rate window; an attempt lost and queued again) on
 * stderr, then the outcome. `wait`: only the notes and the outcome. With
 * `json`: one JSON object a line on stdout (see {@linkcode followRun}).
 *
 * Exit codes: those of `flowstate run` for the run's status (0 succeeded;
 * 1 failed, cancelled or timed out), {@linkcode EXIT_FOLLOW_TIMEOUT} when
 * `--timeout` passed first, 130/143/129 when a stop signal stopped the
 * following (never the run).
 *
 * @module
 */
import type { RunEvent, RunRecord } from "../records/types.ts";
import type { Records } from "../records/records.ts";
import { abandonedRun, MIN_ABANDONED_MS } from "../records/heartbeat.ts";
import { parseDuration } from "../duration.ts";
import { formatDuration, formatTime, printable, runErrorText } from "./format.ts";
import { UsageError } from "./input.ts";
import {
  EXIT_FAILURE,
  type GlobalOptions,
  interruptible,
  notFound,
  openForReading,
  unlessMissing,
} from "./common.ts";
import { describeEvent, printRun } from "./run_print.ts";

/** The first wait between two polls of a followed run, in ms. */
export const POLL_FIRST_MS = 200;
/** The longest wait between two polls while nothing changes, in ms. */
export const POLL_MAX_MS = 1_000;
/** Exit code: `--timeout` passed before the run ended (the run goes on). */
export const EXIT_FOLLOW_TIMEOUT = 124;

/** How much a follow prints: the timeline and every event, or only the outcome. */
export type FollowMode = "follow" | "wait";

/** Options of a follow. */
export interface FollowOptions {
  /** `follow`: the timeline and each event; `wait`: only the outcome. */
  mode: FollowMode;
  /** `--json`: one JSON object a line. */
  json?: boolean;
  /** `--timeout`, in ms: stop following after this long. */
  timeoutMs?: number;
  /** The config's timezone, for times. */
  timezone: string;
  /** The global `--quiet`: no notes on stderr. */
  quiet?: boolean;
}

/** Parse `--timeout <duration>` (a usage error when it is not one, or not more than 0). */
export function parseFollowTimeout(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  let ms: number;
  try {
    ms = parseDuration(text, "--timeout");
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (ms <= 0) throw new UsageError(`Invalid --timeout "${text}": it must be more than 0`);
  return ms;
}

/** The exit code `flowstate run` gives a run that ended so: 0 succeeded, else 1. */
export function exitCodeOf(status: RunRecord["status"]): number {
  return status === "succeeded" ? 0 : EXIT_FAILURE;
}

function ended(run: RunRecord): boolean {
  return run.status !== "queued" && run.status !== "running";
}

/** `runs show <id> --follow [--json] [--timeout D]` of a valid run id (`runs show` checks it). */
export async function followCommand(
  runId: string,
  options: { json?: boolean; timeout?: string },
  global: GlobalOptions,
): Promise<number> {
  const timeoutMs = parseFollowTimeout(options.timeout); // refused before anything opens
  await using runtime = await openForReading(global);
  const tz = runtime.config.timezone;
  const records = await unlessMissing(() => runtime.records());
  const run = records === null ? null : await records.getRun(runId);
  if (run === null || records === null) {
    const { findArchivedRun } = await import("./archive.ts");
    const archived = await findArchivedRun(runId, runtime.home);
    if (archived === null) {
      return notFound(
        options.json,
        `Run ${runId} not found in store "${runtime.config.records}" nor in the archive ` +
          "(list runs with: flowstate runs ls)",
      );
    }
    // An archived run ended long ago: shown, with the exit code of its status.
    if (options.json) {
      archived.events.forEach((event, index) => line({ index, event }));
      line({ run: archived.run, archive: archived.archive });
    } else {
      printRun(archived.run, archived.events, tz);
      console.log(`archived: ${archived.archive}`);
      printOutcome(archived.run);
    }
    return exitCodeOf(archived.run.status);
  }
  return await followRun(records, run, {
    mode: "follow",
    json: options.json,
    timezone: tz,
    quiet: global.quiet,
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });
}

function line(value: unknown): void {
  console.log(JSON.stringify(value));
}

/** What stopped a follow before the run ended. */
type Stopped = { kind: "timeout" } | { kind: "signal"; code: number };

/**
 * Follow `first` (a run just read from `records`) until it ends, printing as
 * `options.mode` says; resolves the exit code.
 *
 * With `json`, stdout holds one JSON object a line: `{ "index", "event" }`
 * for each event (a {@linkcode RunEvent}; `index` its place among the run's
 * events), `{ "queue": { "status", "waiting", "attempt" } }` when the run
 * is (again) queued or its reason to wait changes, `{ "attempt": <QueueAttempt> }`
 * when an attempt ends and the run is queued again (`outcome: "lost"`: its
 * worker stopped answering), then `{ "run": <RunRecord> }` once it ended.
 * In `wait` mode only the last line. Nothing more when the follow stops
 * first (a signal, `--timeout`): stderr says so.
 */
export async function followRun(
  records: Records,
  first: RunRecord,
  options: FollowOptions,
): Promise<number> {
  const { json, mode, timezone: tz } = options;
  const live = mode === "follow";
  const note = (text: string) => {
    if (!options.quiet) console.error(printable(text));
  };
  let run = first;
  let { events, count } = await records.getEventsFrom(run.id, 0);
  if (!ended(run)) {
    // Read again so that the record is not older than the events (a run that ended between).
    run = (await records.getRun(run.id)) ?? run;
    const more = await records.getEventsFrom(run.id, count);
    events = [...events, ...more.events];
    count = more.count;
  }
  if (live) {
    if (json) events.forEach((event, index) => line({ index, event }));
    else {
      printRun(
        run,
        events,
        tz,
        null,
        run.status === "running" ? await records.waitingNodes(run.id) : [],
      );
    }
  }
  if (ended(run)) {
    finish(run, options);
    return exitCodeOf(run.status);
  }

  const startedAt = run.startedAt;
  const printEvent = (event: RunEvent, index: number) => {
    if (!live) return;
    if (json) return line({ index, event });
    const text = eventText(event);
    if (text !== undefined) {
      console.log(`+${formatDuration(Math.max(0, event.at - startedAt))}  ${text}`);
    }
  };
  // What was last said about the run's queue state, so that it is said once per change.
  let said = "";
  let attemptsSeen = run.queue?.attempts.length ?? 0;
  let goneSaid = false;
  const sayState = () => {
    const waiting = run.status === "queued" ? run.queue?.waiting ?? null : null;
    const state = `${run.status}/${waiting}/${run.queue?.attempt ?? 0}`;
    if (state === said) return;
    said = state;
    if (json && live) {
      line({ queue: { status: run.status, waiting, attempt: run.queue?.attempt ?? 0 } });
    }
    if (run.status === "queued") note(queuedText(run, tz));
    else if (live && !json) note(`Run ${run.id} is running: following its events`);
  };
  const sayAttempts = () => {
    const attempts = run.queue?.attempts ?? [];
    for (const a of attempts.slice(attemptsSeen)) {
      if (json && live) line({ attempt: a });
      if (ended(run)) continue; // the outcome says how it ended
      note(
        a.outcome === "lost"
          ? `attempt ${a.attempt} was lost on worker ${a.worker} (it stopped answering: ${
            a.error ?? "its lease lapsed"
          }); the run is queued again: following its next attempt`
          : `attempt ${a.attempt} ${a.outcome} on worker ${a.worker}${
            a.error === undefined ? "" : `: ${a.error}`
          }; the run is queued again to retry: following its next attempt`,
      );
    }
    attemptsSeen = attempts.length;
  };
  sayState();
  if (live && !json) {
    note("Following: new events appear as they are recorded (Ctrl-C stops following, not the run)");
  }

  let timedOut = false;
  const { value: stopped, exitCode } = await interruptible(
    `Stopped following run ${run.id}; the run goes on`,
    async (signal): Promise<Stopped | null> => {
      const timer = new AbortController();
      const timeout = options.timeoutMs === undefined ? undefined : setTimeout(() => {
        timedOut = true;
        timer.abort();
      }, options.timeoutMs);
      const stop = AbortSignal.any([signal, timer.signal]);
      try {
        let wait = POLL_FIRST_MS;
        for (;;) {
          await sleep(wait, stop);
          if (stop.aborted) return timedOut ? { kind: "timeout" } : { kind: "signal", code: 0 };
          const next = await records.getRun(run.id);
          if (next === null) {
            // Deleted meanwhile (retention, or archived and pruned): nothing more to follow.
            note(`Run ${run.id} is no longer in the records store (archived or deleted)`);
            return null;
          }
          const more = await records.getEventsFrom(run.id, count);
          const changed = more.count !== count || next.status !== run.status ||
            (next.queue?.attempts.length ?? 0) !== attemptsSeen ||
            next.queue?.waiting !== run.queue?.waiting;
          run = next;
          const shown = json ? undefined : lastProgress(more.events);
          more.events.forEach((event, i) => {
            // A forEach node's progress: its latest line per poll (at most one a second).
            if (shown === undefined || event.type !== "node.progress" || shown.has(event)) {
              printEvent(event, count + i);
            }
          });
          count = more.count;
          sayAttempts();
          if (ended(run)) return null;
          sayState();
          if (!goneSaid && run.status === "running" && run.queue === undefined) {
            const gone = abandonedRun(run, Date.now(), MIN_ABANDONED_MS);
            if (gone !== null) {
              goneSaid = true;
              note(
                `warning: run ${run.id} ${
                  gone.by === "process"
                    ? `is abandoned: ${gone.process}`
                    : `has had no heartbeat since ${
                      formatTime(gone.lastSeenAt, tz)
                    }: the process running it is gone`
                }; it stays running until \`flowstate jobs run gc\` ` +
                  "records it failed (the daemon runs gc daily); still following",
              );
            }
          }
          wait = changed ? POLL_FIRST_MS : Math.min(POLL_MAX_MS, Math.ceil(wait * 1.5));
        }
      } finally {
        clearTimeout(timeout);
      }
    },
  );
  if (stopped === null) {
    if (!ended(run)) return EXIT_FAILURE;
    finish(run, options);
    return exitCodeOf(run.status);
  }
  const resume = `flowstate runs show ${run.id} --follow`;
  if (stopped.kind === "timeout") {
    console.error(
      `Run ${run.id} is still ${run.status} after ${
        formatDuration(options.timeoutMs ?? 0)
      } (--timeout): stopped waiting; the run goes on. Follow it again with: ${resume}`,
    );
    return EXIT_FOLLOW_TIMEOUT;
  }
  console.error(
    `Run ${run.id} is still ${run.status}: it goes on. Follow it again with: ${resume}`,
  );
  return exitCode;
}

/** The run ended: its last line (`--json`) or its outcome. */
function finish(run: RunRecord, options: FollowOptions): void {
  if (options.json) line({ run });
  else printOutcome(run);
}

function printOutcome(run: RunRecord): void {
  const lines = [
    `Run ${run.id} (${run.flowId}) ${run.status}${
      run.durationMs === null ? "" : ` in ${formatDuration(run.durationMs)}`
    }`,
  ];
  if (run.error) {
    lines.push(`error:    ${runErrorText(run.error)}`);
  }
  if (run.outputs !== null) lines.push(`outputs:  ${printable(JSON.stringify(run.outputs))}`);
  console.log(lines.join("\n"));
}

/**
 * The `node.progress` events of `events` worth a line: the last of each
 * node, unless that node's `node.end` follows it.
 */
export function lastProgress(events: RunEvent[]): Set<RunEvent> {
  const last = new Map<string, RunEvent>();
  for (const event of events) {
    if (event.type === "node.progress") last.set(event.node, event);
    else if (event.type === "node.end") last.delete(event.node);
  }
  return new Set(last.values());
}

/** One event as a live line: `node: log: hi`, `run started`, or nothing. */
function eventText(event: RunEvent): string | undefined {
  if (event.type === "run.start") return "run started";
  if (event.type === "run.end") return "run ended";
  const text = describeEvent(event);
  return text === undefined ? undefined : `${printable(event.node)}: ${text}`;
}

/** What a queued run waits for, as a note. */
function queuedText(run: RunRecord, tz: string): string {
  const q = run.queue;
  const why = q?.waiting === "slot"
    ? `a slot: its partition is at its flow's \`queue: { concurrency${
      q.limit?.concurrency === undefined ? "" : `: ${q.limit.concurrency}`
    } }\` limit`
    : q?.waiting === "rate"
    ? "its rate limit: its partition's `queue: { rate }` window is full"
    : q !== undefined && q.runAt > Date.now()
    ? `its time (${formatTime(q.runAt, tz)})`
    : "a worker to claim it (flowstate worker, serve or daemon)";
  return `Run ${run.id} (${run.flowId}) is queued, waiting for ${why}`;
}

/** Resolve after `ms`, or as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}
