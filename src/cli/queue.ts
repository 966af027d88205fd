/**
 * The queue on the command line: `flowstate enqueue`, `flowstate worker`,
 * `flowstate runs retry` and the queued half of `flowstate runs cancel`.
 *
 * - `enqueue <flow> [--inputs <file>] [--input k=v]… [--delay 10m | --at <iso>] [--priority N]
 *   [--key K] [--max-attempts N] [--backoff 10s] [--json]` prints the run id (with `--json`:
 *   `{ "runId", "existing" }`). Exit 0, 2 for an invalid flow, input or option.
 *   With `--wait` (or `--follow`, which prints the run's timeline and events too) it then
 *   waits until the run ends (see `follow.ts`) and exits with the code `flowstate run` gives
 *   its status; `--timeout <duration>` bounds the wait (exit 124, the run goes on).
 * - `worker [--concurrency N] [--flows a,b] [--lease 30s] [--poll 500ms] [--grace 5s] [--json]`
 *   claims and runs queued runs until SIGINT/SIGTERM: one line per run that ends
 *   (`<run id> <flow> <status> <duration> (attempt N)`), and with `--json` one JSON object a
 *   line, the {@linkcode WorkerEvent} with `time` first. On a signal it stops claiming, waits
 *   up to the grace period, then releases what still runs back to the queue, and exits 0.
 *   A records store that cannot be reached (its server down or starting) is waited for, at
 *   start and while it runs: one `warning: store "<name>" unreachable (…): retrying in 4s`
 *   line on stderr per attempt (0.5 s doubling to 30 s), `store "<name>" reachable again …`
 *   once it answers; the `started` line comes only then. `--wait-for-store <duration>` bounds
 *   the wait at start (default: none; `0s`: fail at once); any other error opening the store
 *   (a wrong password, a database that does not exist) exits 1 at once.
 * - `runs retry <id> [--json]`: a failed, cancelled or timed-out run is queued again
 *   (same id, one more attempt). Exit 1 if it is not found or not retryable.
 * - `runs cancel <id>` of a queued run records it `cancelled` (it never starts).
 *
 * @module
 */
import { parseDuration } from "../duration.ts";
import { DEFAULT_TIMEZONE, parseIsoTime } from "../timezone.ts";
import { ConflictError, NotFoundError } from "../errors.ts";
import { TemplateError } from "../flow/template/error.ts";
import { findFlowFile, isFlowPath } from "../flow_files.ts";
import { isRunId } from "../records/run_id.ts";
import { maskedInputsRefusal, retryRefusal } from "../records/_queue.ts";
import { checkOnFailure, openRuntime } from "../runtime.ts";
import { DEFAULT_LEASE_MS, startWorker, type WorkerEvent } from "../queue/worker.ts";
import { formatDuration, printable, queueAttemptText } from "./format.ts";
import { UsageError } from "./input.ts";
import { projectElsewhereWarning } from "./paths.ts";
import { commandInputs } from "./run.ts";
import {
  EXIT_FAILURE,
  type GlobalOptions,
  notFound,
  onStopSignals,
  printError,
  printWarning,
} from "./common.ts";
import { jsonLogs, lineSink, logEvent } from "./log_format.ts";
import { runEventLogger } from "./run_logs.ts";
import type { RunEvent } from "../records/types.ts";

/** Options of `flowstate enqueue`. */
export interface EnqueueCommandOptions {
  /** `--input name=value`, repeatable. */
  input?: string[];
  /** `--inputs <file>`: a JSON object of inputs (`-`: stdin); `--input` overrides its keys. */
  inputs?: string;
  /** `--delay 10m`. */
  delay?: string;
  /** `--at <ISO time>`. */
  at?: string;
  /** `--priority N`. */
  priority?: string;
  /** `--key K`. */
  key?: string;
  /** `--max-attempts N`. */
  maxAttempts?: string;
  /** `--backoff 10s`: the first wait between attempts (doubling). */
  backoff?: string;
  /** `--json`. */
  json?: boolean;
  /** `--wait`: wait until the run ends, print its outcome, exit with its code. */
  wait?: boolean;
  /** `--follow`: as `--wait`, printing the run's timeline and events as they are recorded. */
  follow?: boolean;
  /** `--timeout 10m`: stop waiting after this long. */
  timeout?: string;
}

function wholeNumber(text: string, flag: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(
      `Invalid ${flag} "${text}": expected a whole number from ${min} to ${max}`,
    );
  }
  return n;
}

function duration(text: string, flag: string): number {
  try {
    return parseDuration(text, flag);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** `enqueue <flow> …`: print the run id. */
export async function enqueueCommand(
  flow: string,
  options: EnqueueCommandOptions,
  global: GlobalOptions,
): Promise<number> {
  const given = await commandInputs(options);
  if (options.delay !== undefined && options.at !== undefined) {
    throw new UsageError("Give --delay or --at, not both");
  }
  const at = (timezone: string | undefined) => {
    if (options.at === undefined) return undefined;
    const time = parseIsoTime(options.at, timezone ?? DEFAULT_TIMEZONE);
    if (time === undefined) {
      throw new UsageError(
        `Invalid --at "${options.at}": expected an ISO date-time, like 2026-05-01T12:00:00Z ` +
          `(without an offset, a time in the config's timezone)`,
      );
    }
    // A run's time is ms since the epoch: none before it. A past time (after it) runs at once.
    if (time < 0) {
      throw new UsageError(
        `Invalid --at "${options.at}": it is before 1970-01-01T00:00:00Z, the earliest time a ` +
          "run can be queued for; a time in the past runs at once: give one after that",
      );
    }
    return time;
  };
  at(undefined); // bad input is refused before anything opens
  const delay = options.delay === undefined ? undefined : duration(options.delay, "--delay");
  const priority = options.priority === undefined
    ? undefined
    : wholeNumber(options.priority, "--priority", -1_000_000, 1_000_000);
  const maxAttempts = options.maxAttempts === undefined
    ? undefined
    : wholeNumber(options.maxAttempts, "--max-attempts", 1, 1_000_000);
  const backoff = options.backoff === undefined
    ? undefined
    : { delay: duration(options.backoff, "--backoff") };
  if (options.key === "") throw new UsageError("Invalid --key: it must not be empty");
  if (options.wait && options.follow) {
    throw new UsageError("Give --wait or --follow, not both (--follow waits too)");
  }
  const waiting = options.wait || options.follow;
  if (options.timeout !== undefined && !waiting) {
    throw new UsageError("--timeout bounds --wait and --follow: give it with one of them");
  }
  const timeoutMs = options.timeout === undefined
    ? undefined
    : (await import("./follow.ts")).parseFollowTimeout(options.timeout);
  await using runtime = await openRuntime({ config: global.config, onWarning: printWarning });
  // Read as the tables show times: without an offset, in the config's timezone.
  const runAt = at(runtime.config.timezone);
  if (isFlowPath(flow)) {
    // A flow file outside its project is queued in the default store here: said first.
    const elsewhere = await projectElsewhereWarning(flow, runtime.config);
    if (elsewhere !== undefined) console.error(printable(`warning: ${elsewhere}`));
  }
  let result;
  try {
    result = await runtime.enqueue(flow, {
      input: given.input,
      inputFromStrings: given.fromStrings,
      ...(runAt === undefined ? {} : { runAt }),
      ...(delay === undefined ? {} : { delay }),
      ...(priority === undefined ? {} : { priority }),
      ...(options.key === undefined ? {} : { key: options.key }),
      ...(maxAttempts === undefined ? {} : { maxAttempts }),
      ...(backoff === undefined ? {} : { backoff }),
    });
  } catch (err) {
    if (err instanceof NotFoundError) {
      throw new UsageError(err.message);
    }
    // The flow's queue.by template fails on these inputs: bad input (exit 2), nothing queued.
    if (err instanceof TemplateError) throw new UsageError(err.message, { cause: err });
    // The options were checked above; what is left is a value out of range (a --key over the
    // dedupe key's limit): bad input too, as POST /api/flows/{flow}/runs answers it 400.
    if (err instanceof RangeError || err instanceof TypeError) {
      throw new UsageError(err.message, { cause: err });
    }
    throw err;
  }
  if (options.json) console.log(JSON.stringify(result));
  else {
    console.log(result.runId);
    if (result.existing && !global.quiet) {
      console.error(
        `(key ${printable(options.key ?? "")}: run ${result.runId} was already queued or running)`,
      );
    }
  }
  if (!waiting) return 0;
  const records = await runtime.records();
  const run = await records.getRun(result.runId);
  if (run === null) {
    // Deleted at once (a retention job racing): nothing to wait for.
    printError(`Run ${result.runId} is no longer in the records store: nothing to wait for`);
    return EXIT_FAILURE;
  }
  const { followRun } = await import("./follow.ts");
  return await followRun(records, run, {
    mode: options.follow ? "follow" : "wait",
    json: options.json,
    timezone: runtime.config.timezone,
    quiet: global.quiet,
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });
}

/** Options of `flowstate worker`. */
export interface WorkerCommandOptions {
  /** `--concurrency N`. */
  concurrency?: number;
  /** `--flows a,b`. */
  flows?: string;
  /** `--lease 30s`. */
  lease?: string;
  /** `--poll 500ms`. */
  poll?: string;
  /** `--grace 5s` (default: the config's `runs.abortGrace`). */
  grace?: string;
  /** `--worker-id ID`. */
  workerId?: string;
  /** `--wait-for-store 5m`: how long to wait for an unreachable records store at start (default: no limit). */
  waitForStore?: string;
  /** `--json`. */
  json?: boolean;
  /** `--quiet`. */
  quiet?: boolean;
}

/**
 * Print worker events as lines (or JSON lines on stdout with `json`). With `--log-format json`
 * the lines are JSON log lines on stderr instead (`worker.start`, `run.claim`, `run.end`,
 * `queue.lost`, `queue.abandoned`, `worker.error`, `store.unreachable`, `store.reachable`,
 * `worker.stopping`, `worker.stop`), each with the `worker`'s id. `announce: false` (the
 * daemon's worker, whose process says its own start and stop): no start, stopping and stop
 * lines (nor, in text, the runs released at stop), as the daemon has always printed it.
 */
export function workerPrinter(
  json: boolean,
  quiet: boolean,
  announce = true,
): (event: WorkerEvent) => void {
  const sink = lineSink();
  let worker: string | undefined;
  return (event) => {
    if (json) {
      if (
        quiet && event.type !== "error" && event.type !== "stop" && event.type !== "lost" &&
        event.type !== "abandoned" && event.type !== "waiting" && event.type !== "reachable" &&
        !(event.type === "end" && event.status !== "succeeded")
      ) return;
      console.log(JSON.stringify({ time: new Date().toISOString(), ...event }));
      return;
    }
    switch (event.type) {
      case "start":
        worker = event.worker;
        if (!quiet && announce) {
          sink.out(
            `Worker ${event.worker} started: ${event.concurrency} at once, ${
              event.flows === null ? "any flow" : `flows ${event.flows.join(", ")}`
            }`,
            {
              event: "worker.start",
              worker,
              concurrency: event.concurrency,
              flows: event.flows,
            },
          );
        }
        return;
      case "end": {
        // A run released at stop was cancelled by this worker only to give it back: the queue
        // runs it again, so its "error" (the cancel) is not what happened to it.
        const line = event.requeued === "released"
          ? `${event.runId} ${event.flowId} stopped after ${
            formatDuration(event.durationMs)
          } (attempt ${event.attempt}): released to the queue (not finished within the grace period)`
          // Its end was not recorded: the run goes on in another attempt, it did not fail.
          : event.requeued === "lost"
          ? `${event.runId} ${event.flowId} lost after ${
            formatDuration(event.durationMs)
          } (attempt ${event.attempt}): ${
            printable((event.error ?? "its claim lapsed").split("\n")[0])
          }`
          : `${event.runId} ${event.flowId} ${event.status} ${
            formatDuration(event.durationMs)
          } (attempt ${event.attempt})${
            event.requeued === "retry" ? ": queued again to retry" : ""
          }${
            event.error && event.status !== "succeeded"
              ? `: ${printable(event.error.split("\n")[0])}`
              : ""
          }`;
        const fields = {
          event: "run.end",
          worker,
          runId: event.runId,
          flow: event.flowId,
          attempt: event.attempt,
          status: event.status,
          durationMs: event.durationMs,
          requeued: event.requeued,
          error: event.status === "succeeded" ? undefined : event.error,
        };
        const level = event.status === "succeeded" ? "info" : event.requeued ? "warn" : "error";
        if (event.status === "succeeded") {
          if (!quiet) sink.out(line, fields, level);
        } else if (quiet) sink.err(`error: ${line}`, fields, level);
        else sink.out(line, fields, level);
        return;
      }
      case "lost": {
        const ended = new Map((event.ended ?? []).map((e) => [e.runId, e.status]));
        const requeued = event.runIds.filter((id) => !ended.has(id));
        if (requeued.length > 0) {
          sink.err(
            `warning: took back ${requeued.length} run${
              requeued.length === 1 ? "" : "s"
            } whose worker stopped answering: ${requeued.join(", ")}`,
            { event: "queue.lost", worker, runIds: requeued },
          );
        }
        for (const [id, status] of ended) {
          sink.err(
            status === "cancelled"
              ? `warning: recorded run ${id} cancelled: its worker stopped answering after a cancel was requested`
              : `warning: recorded run ${id} failed: its workers stopped answering too many times (a node that ends the process?)`,
            { event: "queue.lost", worker, runId: id, status },
          );
        }
        return;
      }
      case "abandoned":
        sink.err(
          `warning: recorded ${event.runIds.length} sub-run${
            event.runIds.length === 1 ? "" : "s"
          } of lost attempts abandoned (no heartbeat): ${event.runIds.join(", ")}`,
          { event: "queue.abandoned", worker, runIds: event.runIds },
        );
        return;
      case "error":
        sink.err(`error: ${printable(event.message.split("\n")[0])}`, {
          event: "worker.error",
          worker,
          error: event.message,
          fatal: event.fatal,
        });
        return;
      case "waiting":
        sink.err(waitingLine(event), {
          event: "store.unreachable",
          worker,
          store: event.store,
          error: event.error,
          attempt: event.attempt,
          retryInMs: event.retryInMs,
          starting: event.starting,
        });
        return;
      case "reachable":
        sink.err(reachableLine(event), {
          event: "store.reachable",
          worker,
          store: event.store,
          attempts: event.attempts,
          waitedMs: event.waitedMs,
          starting: event.starting,
        });
        return;
      case "stopping":
        if (!quiet && announce) {
          sink.out(
            `Waiting up to ${formatDuration(event.graceMs)} for ${event.running} running run${
              event.running === 1 ? "" : "s"
            }…`,
            { event: "worker.stopping", worker, running: event.running, graceMs: event.graceMs },
          );
        }
        return;
      case "stop":
        // The daemon never said it in text; its JSON log does.
        if (event.released > 0 && (announce || jsonLogs())) {
          sink.err(
            `warning: released ${event.released} run${
              event.released === 1 ? "" : "s"
            } still running after the grace period back to the queue`,
            { event: "worker.released", worker, released: event.released },
          );
        }
        if (!quiet && announce) {
          sink.out("Worker stopped", { event: "worker.stop", worker, released: event.released });
        }
        return;
      case "claim":
        // Text mode says nothing of a claim; with --log-format json --debug it is a debug line.
        if (jsonLogs()) {
          logEvent("debug", `${event.runId} ${event.flowId} claimed (attempt ${event.attempt})`, {
            event: "run.claim",
            worker,
            runId: event.runId,
            flow: event.flowId,
            attempt: event.attempt,
          });
        }
        return;
    }
  };
}

/**
 * With `--log-format json` (and not `--quiet`): the events of the runs a worker runs as JSON
 * log lines (see {@linkcode runEventLogger}), each with the worker's id; `track` is given the
 * worker's events (its start names it, its claims are the runs it started). Without, no
 * `onRunEvent`: text mode prints no node logs of queued runs.
 */
export function queuedRunLogs(quiet: boolean): {
  onRunEvent?: (event: RunEvent, run: { id: string; flowId: string }) => void;
  track(event: WorkerEvent): void;
} {
  if (quiet || !jsonLogs()) return { track() {} };
  const fields: { worker?: string } = {};
  const claimed = new Set<string>();
  return {
    onRunEvent: runEventLogger(fields, (id) => claimed.has(id)),
    track(event) {
      if (event.type === "start") fields.worker = event.worker;
      else if (event.type === "claim") claimed.add(event.runId);
      else if (event.type === "end") claimed.delete(event.runId);
    },
  };
}

/**
 * The stderr line of a store that cannot be reached, waited for:
 * `warning: store "main" unreachable (cannot reach …): retrying in 4s; Ctrl-C to stop`
 * (`starting`: nothing started yet; else the queue is polled again then).
 */
export function waitingLine(
  event: { store: string; error: string; retryInMs: number; starting: boolean },
): string {
  return `warning: store "${event.store}" unreachable (${printable(event.error.split("\n")[0])}): ${
    event.starting ? "retrying" : "polling the queue again"
  } in ${formatDuration(event.retryInMs)}${event.starting ? "; Ctrl-C to stop" : ""}`;
}

/** The stderr line of a store that answers again after {@linkcode waitingLine}s. */
export function reachableLine(
  event: { store: string; attempts: number; waitedMs: number; starting: boolean },
): string {
  return `store "${event.store}" reachable after ${
    formatDuration(event.waitedMs)
  } (${event.attempts} failed attempt${event.attempts === 1 ? "" : "s"}): ${
    event.starting ? "starting" : "working the queue again"
  }`;
}

/**
 * The runs this process's worker holds, to say so on stderr when the process exits while it holds
 * some: a node that ends the process (`Deno.exit` in a trusted node) would otherwise end a worker
 * or a daemon without a word, its runs `running` until their lease lapses. `track` is given the
 * worker's events; dispose to stop watching.
 */
export function heldRunsAtExit(leaseMs: number): Disposable & { track(event: WorkerEvent): void } {
  const held = new Map<string, string>();
  let stopping = false;
  const onUnload = () => {
    if (held.size === 0) return;
    const runs = [...held].map(([id, flow]) => `${id} (${flow})`).join(", ");
    console.error(
      `error: exiting (code ${Deno.exitCode}) with ${held.size} run${
        held.size === 1 ? "" : "s"
      } still running here: ${runs}; ${
        stopping ? "" : "a node ended the process (Deno.exit in a trusted node?). "
      }A worker takes ${held.size === 1 ? "it" : "them"} back once the lease (${
        formatDuration(leaseMs)
      }) lapses`,
    );
  };
  globalThis.addEventListener("unload", onUnload);
  return {
    track(event) {
      if (event.type === "claim") held.set(event.runId, event.flowId);
      else if (event.type === "end") held.delete(event.runId);
      else if (event.type === "stopping") stopping = true;
    },
    [Symbol.dispose]() {
      globalThis.removeEventListener("unload", onUnload);
    },
  };
}

/** Parse the worker options shared by `worker` and `daemon`. */
export function workerSettings(options: WorkerCommandOptions): {
  concurrency?: number;
  flows?: string[];
  leaseMs?: number;
  pollMs?: number;
  graceMs?: number;
  workerId?: string;
  waitForStoreMs?: number;
} {
  const flows = options.flows?.split(",").map((f) => f.trim()).filter((f) => f !== "");
  if (flows !== undefined && flows.length === 0) {
    throw new UsageError(`Invalid --flows "${options.flows}": expected flow ids, like a,b`);
  }
  const leaseMs = options.lease === undefined ? undefined : duration(options.lease, "--lease");
  if (leaseMs !== undefined && leaseMs < 1_000) {
    throw new UsageError(`Invalid --lease "${options.lease}": it must be at least 1s`);
  }
  const pollMs = options.poll === undefined ? undefined : duration(options.poll, "--poll");
  if (pollMs !== undefined && pollMs <= 0) {
    throw new UsageError(`Invalid --poll "${options.poll}": it must be more than 0`);
  }
  return {
    ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
    ...(flows === undefined ? {} : { flows }),
    ...(leaseMs === undefined ? {} : { leaseMs }),
    ...(pollMs === undefined ? {} : { pollMs }),
    ...(options.grace === undefined ? {} : { graceMs: duration(options.grace, "--grace") }),
    ...(options.workerId === undefined ? {} : { workerId: options.workerId }),
    ...waitForStoreSetting(options.waitForStore),
  };
}

/** `--wait-for-store <duration>` as `waitForStoreMs` (none given: wait without limit). */
export function waitForStoreSetting(text: string | undefined): { waitForStoreMs?: number } {
  return text === undefined ? {} : { waitForStoreMs: duration(text, "--wait-for-store") };
}

/** `worker …`: run queued runs until SIGINT or SIGTERM; exit 0 after a clean stop. */
export async function workerCommand(
  options: WorkerCommandOptions,
  global: GlobalOptions,
  control: { signal?: AbortSignal } = {},
): Promise<number> {
  const settings = workerSettings(options);
  const quiet = options.quiet ?? global.quiet ?? false;
  await using runtime = await openRuntime({ config: global.config, onWarning: printWarning });
  // A bad runs.onFailure flow is said at the start, not at the first failure.
  await checkOnFailure(runtime);
  for (const flow of settings.flows ?? []) {
    // A flow id nobody has: most likely a typo, and the worker would idle forever.
    await findFlowFile(runtime.config, flow, Deno.cwd()).catch(() => {
      console.error(
        `warning: no flow "${flow}" among the config's flows: this worker takes its runs when they come`,
      );
    });
  }
  const stop = Promise.withResolvers<string>();
  using _signals = onStopSignals(
    (name) => stop.resolve(name),
    (name) => `Received ${name} again: exiting without waiting`,
  );
  control.signal?.addEventListener("abort", () => stop.resolve("stop request"), { once: true });
  // --grace is stop()'s, not the worker's.
  const { graceMs, ...workerOptions } = settings;
  const print = workerPrinter(options.json ?? false, quiet);
  let failed = false;
  using held = heldRunsAtExit(settings.leaseMs ?? DEFAULT_LEASE_MS);
  const runLogs = queuedRunLogs(quiet);
  const worker = startWorker(runtime, {
    ...workerOptions,
    ...(runLogs.onRunEvent === undefined ? {} : { onRunEvent: runLogs.onRunEvent }),
    onEvent(event) {
      held.track(event);
      runLogs.track(event);
      print(event);
      // It cannot work (its records store did not open): exit 1 rather than idle until a signal.
      if (event.type === "error" && event.fatal) {
        failed = true;
        stop.resolve("a fatal error");
      }
    },
  });
  const reason = await stop.promise;
  if (!quiet && !options.json && !failed) {
    lineSink().out(`Received ${reason}: stopping`, { event: "signal", signal: reason });
  }
  await worker.stop(graceMs === undefined ? {} : { graceMs });
  return failed ? EXIT_FAILURE : 0;
}

/** `runs retry <id> [--json]`. */
export async function retryCommand(
  runId: string,
  options: { json?: boolean },
  global: GlobalOptions,
): Promise<number> {
  if (!isRunId(runId)) {
    return notFound(
      options.json,
      `Run "${runId}" not found: run ids are 20 lowercase letters and digits`,
    );
  }
  await using runtime = await openRuntime({ config: global.config, onWarning: printWarning });
  const records = await runtime.records();
  const run = await records.getRun(runId);
  if (run === null) {
    const { archivedCannot, findArchivedRun } = await import("./archive.ts");
    const archived = await findArchivedRun(runId, runtime.home);
    return notFound(
      options.json,
      archived === null ? `Run ${runId} not found` : archivedCannot("retry", archived),
    );
  }
  let flowPath: string | undefined;
  if (run.status === "succeeded" || run.status === "queued" || run.status === "running") {
    // Said before anything about its flow file: no file would make it retriable.
    printError(retryRefusal(runId, run.status));
    return 1;
  }
  if (run.inputsMasked === true) {
    printError(maskedInputsRefusal(runId));
    return 1;
  }
  if (run.queue === undefined) {
    // A job's run (flow "job:<name>") has no flow file: a job runs with jobs run, never queued.
    const job = run.flowId.startsWith("job:") ? run.flowId.slice("job:".length) : undefined;
    if (job !== undefined) {
      printError(
        `Cannot retry run ${runId}: it is a run of the job "${printable(job)}", and jobs do ` +
          `not go through the queue: run it again with flowstate jobs run ${printable(job)}`,
      );
      return 1;
    }
    try {
      flowPath = await findFlowFile(runtime.config, run.flowId, Deno.cwd());
    } catch (err) {
      if (!(err instanceof NotFoundError)) {
        printError(`Cannot retry run ${runId}: ${(err as Error).message}`);
        return 1;
      }
      // Its record keeps no file (it was started directly): only the config's flows: can say.
      printError(
        `Cannot retry run ${runId}: it was started directly (not enqueued), so a worker ` +
          `needs its flow's file among the config's flows:, and no file there has flow id ` +
          `"${printable(run.flowId)}": add the file's folder to flows: in ` +
          `${runtime.config.file ?? "flowstate.yaml"}, or run it again with flowstate run <file>`,
      );
      return 1;
    }
  }
  try {
    const record = await records.requeueRun(runId, flowPath === undefined ? {} : { flowPath });
    if (options.json) console.log(JSON.stringify({ runId, status: record.status }));
    else console.log(`${runId} queued again: ${queueAttemptText(record.status, record.queue!)}`);
    return 0;
  } catch (err) {
    if (err instanceof ConflictError) {
      printError(err.message);
      return 1;
    }
    throw err;
  }
}
