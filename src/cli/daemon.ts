/**
 * `flowstate daemon [--grace 30s] [--quiet]`: run the scheduled jobs and
 * flows until SIGINT or SIGTERM (or SIGHUP on a terminal: the terminal hung
 * up), then stop: take no new ticks, wait up to the grace period for running
 * work, cancel what is left (it records itself as cancelled) and exit 0. A
 * second signal exits at once with its code (130, 143, 129), after recording
 * the runs still in flight as ended (see `onStopSignals`).
 *
 * The config file is looked at again as the flow files are (a `stat` every
 * 2 s): an edit applies its job schedules, job settings, `timezone` and
 * `flows:` at once (see `Scheduler.reload`; `Config flowstate.yaml changed:
 * applied jobs` on stdout, each schedule's change on stderr); a setting that
 * takes a restart (`stores`, `scopes`, `records`, `home`, `runs`, `nodes`,
 * `serve`) is a `warning: flowstate.yaml: serve changed: restart the daemon
 * to apply it …` line on stderr (always); an edit that cannot be used is one
 * `error: Cannot apply the edit of flowstate.yaml: file:line:column: …` line
 * (always), and nothing of it applies until the file is fixed. Off a
 * terminal (a service manager, `kill -HUP`), SIGHUP reads the config and flow
 * files again at once and the daemon goes on (`Received SIGHUP: reading the
 * config and flow files again`; `--json`: a `signal` object with `action:
 * "reload"`, then `config.reload`).
 *
 * A records store that cannot be reached at start (its server down or
 * starting: the database of a service that starts after this one) is waited
 * for before anything starts: one `warning: store "<name>" unreachable (…):
 * retrying in 4s; Ctrl-C to stop` line on stderr per attempt (0.5 s doubling
 * to 30 s; `--json`: `store.waiting`), `store "<name>" reachable after …:
 * starting` once it answers (`store.reachable`); a signal meanwhile stops it
 * (exit 0). `--wait-for-store <duration>` bounds the wait (default: none);
 * any other error opening it (a wrong password, a database that does not
 * exist) fails at once. Its queue worker, once started, waits out a later
 * outage the same way (`queue.waiting`, `queue.reachable` with `--json`).
 *
 * Several daemons may share one store (SQLite file, Postgres…): each tick
 * runs once, on whichever takes its lease first.
 *
 * Flows with `trigger: { changes: { store, prefix } }` run once per change
 * of a key under the prefix, at least once, from a position stored after
 * each run (see `src/scheduler/change_triggers.ts`); one daemon delivers a
 * trigger at a time. Lines: `Change trigger flow:<id> watching store "<s>"
 * under [...] after change N` at start, `change <seq> <key> flow:<id>
 * <status> run=<id>` per change (`--json`: `trigger.start`, `trigger.run`,
 * `trigger.standby`, `trigger.error`, `trigger.reset`). A stored position
 * the trigger cannot trust (the flow now watches another store, or the
 * store's feed was reset) is a `warning:` line on stderr (always; with
 * `--json`, a `trigger.reset` object, also with `--quiet`) saying it
 * delivers the changes that feed holds from its oldest kept. Edits of the
 * flow files apply to their triggers as they do to schedules (looked at
 * every 2 s and on SIGHUP; see `ChangeTriggers.update`), each said on stderr
 * unless `--quiet` (`[flow:<id>] change trigger added: …`, `… changed from …
 * to …`, `… removed …`, `flow file changed: its change trigger's next runs
 * use it as it is now …`, `flow file …: its change trigger can be used
 * again …`; `--json`: `trigger.reload` with `action`); a trigger an edit
 * made unusable is one `error:` line naming file:line:column, and goes on
 * as it was until the file is fixed.
 *
 * Output (stdout, unless `--quiet`): the schedules at start, then one line
 * per tick this runner ran:
 * `2026-01-01T03:00:00.000Z job:retention succeeded 1.25s run=0mjuohs004pv1au2ebsh`.
 * Log lines of jobs and flows go to stderr (unless `--quiet`), and so do errors
 * (always). A tick taken over from a runner that died while running it is
 * one line on stderr (always):
 * `warning: 2026-01-01T03:00:00.000Z job:backup abandoned by runner host:123:x (run=…): recorded as failed (abandoned: skip)`.
 * With `--quiet`, a tick that did not succeed is an `error:` line on stderr.
 *
 * With `--json`, every line on stdout is one JSON object: the scheduler's
 * event with `time` (ISO 8601, UTC) first, `type` (`start`, `tick.start`,
 * `tick.end`, `tick.skip`, `tick.queue`, `tick.abandoned`, `log`, `error`,
 * `stopping`, `stop`, and `signal` with its `signal`), and its fields
 * (`tick` as ms since the epoch, `tickAt` as ISO 8601; an `error` event's
 * `error` is its message; `config.reload` with `file`, `applied` and
 * `restart`). With `--json --quiet`: only `error`, failed `tick.end`,
 * `tick.abandoned`, `stop` and `config.reload` objects with a `restart`.
 *
 * @module
 */
import { loadConfig } from "../config.ts";
import { parseDuration } from "../duration.ts";
import { messageOf } from "../errors.ts";
import type { Clock } from "../store/types.ts";
import {
  checkOnFailure,
  openRuntime,
  type Runtime,
  sandboxPoolOf,
  setRunSource,
} from "../runtime.ts";
import { loadConfiguredJob } from "../scheduler/from_config.ts";
import { tickKey } from "../scheduler/lease.ts";
import { Scheduler, type SchedulerEvent } from "../scheduler/scheduler.ts";
import {
  type ChangeTriggerEvent,
  type ChangeTriggers,
  startChangeTriggers,
} from "../scheduler/change_triggers.ts";
import { formatDuration, printable } from "./format.ts";
import { lookalikeFlowWarnings, sharedFlowIdWarnings } from "../flow_files.ts";
import { UsageError } from "./input.ts";
import { type GlobalOptions, onStopSignals, printWarning } from "./common.ts";
import { jsonLogs, lineSink, logEvent, type LogFields } from "./log_format.ts";
import type { SchedulerStatus } from "../serve/api.ts";
import { startServer } from "./serve.ts";
import { DEFAULT_LEASE_MS, startWorker } from "../queue/worker.ts";
import {
  heldRunsAtExit,
  queuedRunLogs,
  reachableLine,
  waitForStoreSetting,
  waitingLine,
  workerPrinter,
} from "./queue.ts";
import { untilReachable } from "../queue/store_wait.ts";

/** How long the daemon keeps a custom node module's Worker after a run, unless the config says (ms). */
const DAEMON_WORKER_IDLE = 60_000;

/** Options of `flowstate daemon`. */
export interface DaemonOptions {
  /** `--grace <duration>`: how long to wait for running work when stopping (default `30s`). */
  grace?: string;
  /** `--quiet`: print only errors. */
  quiet?: boolean;
  /** `--json`: one JSON object a line on stdout for every event. */
  json?: boolean;
  /** `--runner-id <id>`: this runner's id in leases (default `<hostname>:<pid>:<random>`). */
  runnerId?: string;
  /** `--serve`: also serve the HTTP API (settings from the config's `serve:`). */
  serve?: boolean;
  /** `--no-queue` makes this `false`: do not work the queue (default: work it). */
  queue?: boolean;
  /** `--concurrency N`: queued runs at once (default 4). */
  concurrency?: number;
  /** `--wait-for-store 5m`: how long to wait for an unreachable records store at start (default: no limit). */
  waitForStore?: string;
}

/** What a test (or an embedding program) can give the daemon instead of OS signals. */
export interface DaemonControl {
  /** Stops the daemon when aborted, as SIGTERM does. */
  signal?: AbortSignal;
  /** Lease lifetime of ticks (default 60 s): how soon a dead daemon's tick is taken over. */
  leaseMs?: number;
}

/** The default grace period. */
export const DEFAULT_GRACE = "30s";

/** `daemon [--grace 30s] [--quiet]`: exit 0 after a clean stop, 2 for an invalid config. */
export async function daemonCommand(
  options: DaemonOptions,
  global: GlobalOptions,
  control: DaemonControl = {},
): Promise<number> {
  let graceMs: number;
  try {
    graceMs = parseDuration(options.grace ?? DEFAULT_GRACE, "--grace");
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  // --concurrency sizes the daemon's queue worker: with --no-queue there is none to size.
  if (options.queue === false && options.concurrency !== undefined) {
    throw new UsageError(
      "--concurrency is how many queued runs the daemon's worker runs at once, and --no-queue " +
        "starts no worker: drop one of them",
    );
  }
  const quiet = options.quiet ?? false;
  const { waitForStoreMs } = waitForStoreSetting(options.waitForStore);
  await using runtime = await openRuntime({ config: global.config, onWarning: printWarning });
  setRunSource(runtime, "schedule");
  // A bad runs.onFailure flow is said at the start, not at the first failure.
  await checkOnFailure(runtime);
  // A daemon runs flows again and again: custom node Workers serve the next run (nodes.workerIdle).
  const pool = sandboxPoolOf(runtime);
  if (pool && runtime.config.nodes.workerIdleMs === undefined) pool.idleMs = DAEMON_WORKER_IDLE;
  const clock = runtime.clock;
  // Two flow files with one id share its state: said once, before anything starts.
  for (const warning of await sharedFlowIdWarnings(runtime.config)) {
    console.error(printable(`warning: ${warning}`));
  }
  // A flow in a file not named *.flow.yaml would never be scheduled, and nothing would say so.
  for (const warning of await lookalikeFlowWarnings(runtime.config)) {
    console.error(printable(`warning: ${warning}`));
  }

  // Listen before starting, so a signal while schedules load still stops cleanly. On a
  // terminal SIGHUP is the terminal hanging up: a stop; elsewhere (a service manager, `kill
  // -HUP`) it asks to read the config and flow files again, as daemons do.
  const reloadOnHangUp = !onTerminal();
  const stopRequested = Promise.withResolvers<string>();
  using _signals = onStopSignals(
    (name) => stopRequested.resolve(name),
    (name) => `Received ${name} again: exiting without waiting`,
    reloadOnHangUp ? { signals: ["SIGINT", "SIGTERM"] } : {},
  );
  let started: Scheduler | undefined;
  let reloadAsked = false;
  const onHangUp = () => {
    if (options.json) {
      if (!quiet) printJson(clock, { type: "signal", signal: "SIGHUP", action: "reload" });
    } else if (!quiet) {
      lineSink().out("Received SIGHUP: reading the config and flow files again", {
        event: "signal",
        signal: "SIGHUP",
        action: "reload",
      });
    }
    if (started === undefined) reloadAsked = true;
    else void started.reload();
  };
  using _hangUp = reloadOnHangUp ? listenFor("SIGHUP", onHangUp) : undefined;
  const onAbort = () => stopRequested.resolve("stop request");
  control.signal?.addEventListener("abort", onAbort, { once: true });
  if (control.signal?.aborted) onAbort();

  try {
    // Nothing starts before the records store answers: a server down or starting (the database
    // of a service that starts after this one) is waited for, until it answers or a stop.
    const waiting = new AbortController();
    void stopRequested.promise.then(() => waiting.abort());
    const records = runtime.config.records;
    const reached = await untilReachable(() => runtime.store(records), {
      signal: waiting.signal,
      ...(waitForStoreMs === undefined ? {} : { maxWaitMs: waitForStoreMs }),
      onWait(info) {
        const event = { ...info, error: info.reason, starting: true };
        if (options.json) {
          printJson(clock, {
            type: "store.waiting",
            store: info.store,
            error: info.reason,
            attempt: info.attempt,
            retryInMs: info.retryInMs,
          });
        } else {
          lineSink().err(waitingLine(event), {
            event: "store.unreachable",
            store: info.store,
            error: info.reason,
            attempt: info.attempt,
            retryInMs: info.retryInMs,
            starting: true,
          });
        }
      },
    });
    if (reached === undefined) {
      const reason = await stopRequested.promise;
      if (options.json) {
        if (!quiet) printJson(clock, { type: "signal", signal: reason });
      } else if (!quiet) {
        lineSink().out(`Received ${reason}: stopping`, { event: "signal", signal: reason });
      }
      return 0;
    }
    if (reached.failures > 0) {
      const event = {
        store: records,
        attempts: reached.failures,
        waitedMs: Math.round(reached.waitedMs),
        starting: true,
      };
      if (options.json) printJson(clock, { type: "store.reachable", ...event });
      else lineSink().err(reachableLine(event), { event: "store.reachable", ...event });
    }
    const print = options.json
      ? jsonPrinter(quiet, clock)
      : printer(quiet, quiet ? undefined : await jobPathLines(runtime));
    const status: SchedulerStatus = { ticking: false, lastTickAt: null, lagSeconds: null };
    const configFile = runtime.config.file;
    let triggers: ChangeTriggers | undefined = undefined;
    // The scheduler's stop ("Stopped") is said once the whole daemon stopped: its queue worker
    // and change triggers may still be finishing or releasing runs when the scheduler is done.
    let stopped: SchedulerEvent | undefined;
    const scheduler = new Scheduler(runtime, {
      // The change triggers follow the flow files as the schedules do (read at the same looks).
      onFlowFiles: (flows) => triggers?.update(flows),
      ...(options.runnerId !== undefined ? { runnerId: options.runnerId } : {}),
      ...(control.leaseMs !== undefined ? { leaseMs: control.leaseMs } : {}),
      // An edit of the config file applies its schedules and jobs' settings without a restart.
      ...(configFile === null ? {} : { loadConfig: () => loadConfig({ config: configFile }) }),
      onEvent(event) {
        if (event.type === "tick.start") {
          const now = clock.now();
          status.lastTickAt = now;
          status.lagSeconds = Math.max(0, now - event.tick) / 1000;
        }
        if (event.type === "stop") stopped = event;
        else print(event);
      },
    });
    await scheduler.start();
    status.ticking = true;
    started = scheduler;
    if (reloadAsked) void scheduler.reload();
    // Flows with trigger: { changes }: one run per change, from a stored position.
    triggers = await startChangeTriggers(runtime, {
      ...(options.runnerId !== undefined ? { runnerId: options.runnerId } : {}),
      ...(control.leaseMs !== undefined ? { leaseMs: control.leaseMs } : {}),
      onEvent: (event) => printTrigger(event, options.json ?? false, quiet, clock),
    }).catch(async (err) => {
      await scheduler.stop({ graceMs: 0 });
      if (stopped !== undefined) print(stopped);
      throw err;
    });
    // The queue too: one line per queued run that ends (JSON: `queue.end`, `queue.lost`,
    // `queue.abandoned`, `queue.error`).
    using held = heldRunsAtExit(DEFAULT_LEASE_MS);
    // With --log-format json, the node logs of the queued runs too (text mode prints none).
    const runLogs = queuedRunLogs(quiet);
    const worker = options.queue === false ? undefined : startWorker(runtime, {
      ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
      ...(options.runnerId === undefined ? {} : { workerId: options.runnerId }),
      ...(runLogs.onRunEvent === undefined ? {} : { onRunEvent: runLogs.onRunEvent }),
      onEvent(event) {
        held.track(event);
        runLogs.track(event);
        // Its start and stop are the daemon's (queueLine says none of them: it names the worker).
        if (!options.json) return queueLine(event);
        if (
          event.type !== "end" && event.type !== "lost" && event.type !== "abandoned" &&
          event.type !== "error" && event.type !== "waiting" && event.type !== "reachable"
        ) return;
        if (quiet && event.type === "end" && event.status === "succeeded") return;
        printJson(clock, { ...event, type: `queue.${event.type}` });
      },
    });
    const queueLine = workerPrinter(false, quiet, false);
    const server = options.serve
      // The daemon's own worker runs what the server enqueues (none with --no-queue).
      ? await startServer(runtime, {}, {
        scheduler: () => ({ ...status }),
        worker: false,
        // /health reports the daemon's worker.
        ...(worker === undefined ? {} : { workerBeside: worker }),
        // The jobs and schedules as the daemon runs them (it applies edits of the config).
        config: () => scheduler.config,
        // The schedules it runs: a flow file that broke keeps the schedule it had.
        schedules: () => ({ schedules: scheduler.schedules, problems: scheduler.flowProblems }),
      })
      : undefined;
    const reason = await stopRequested.promise;
    if (options.json) {
      if (!quiet) printJson(clock, { type: "signal", signal: reason });
    } else if (!quiet) {
      lineSink().out(`Received ${reason}: stopping`, { event: "signal", signal: reason });
    }
    // The server first: its waiting requests answered, its jobs cancelled, its streams closed.
    await server?.shutdown();
    await Promise.all([
      scheduler.stop({ graceMs }),
      worker?.stop({ graceMs }),
      triggers!.stop({ graceMs }),
    ]);
    if (stopped !== undefined) print(stopped);
    status.ticking = false;
    return 0;
  } finally {
    control.signal?.removeEventListener("abort", onAbort);
  }
}

const SKIP_REASONS: Partial<Record<string, string>> = {
  overlap: "skipped: the previous run is still running",
  missed: "missed while no runner was running (missed: skip)",
  late: "skipped: the runner woke late; running the latest due tick instead",
};

/** Prints a change trigger's event: a line (stdout; errors on stderr), or JSON with `--json`. */
function printTrigger(event: ChangeTriggerEvent, json: boolean, quiet: boolean, clock: Clock) {
  if (json) {
    if (event.type === "error") {
      printJson(clock, {
        type: "trigger.error",
        flowId: event.flowId,
        error: messageOf(event.error),
      });
    } else if (event.type === "trigger.run") {
      if (quiet && event.run.status === "succeeded") return;
      printJson(clock, {
        type: "trigger.run",
        flowId: event.flowId,
        seq: event.seq,
        key: event.key,
        runId: event.run.id,
        status: event.run.status,
      });
    } else if (!quiet || event.type === "trigger.reset" || event.type === "trigger.abandoned") {
      printJson(clock, { ...event });
    }
    return;
  }
  const sink = lineSink();
  const context = { event: event.type, flow: event.flowId };
  switch (event.type) {
    case "error":
      sink.err(`error: ${messageOf(event.error)}`, {
        ...context,
        event: "trigger.error",
        error: messageOf(event.error),
      });
      return;
    case "trigger.reset":
      sink.err(`warning: ${event.message}`, context);
      return;
    case "trigger.abandoned":
      sink.err(
        `warning: change trigger flow:${event.flowId}: recorded run ${event.runId} abandoned (its daemon stopped answering)`,
        { ...context, runId: event.runId },
      );
      return;
    case "trigger.start":
      if (!quiet) {
        sink.out(
          `Change trigger flow:${event.flowId} watching store "${event.store}" under ${
            JSON.stringify(event.prefix)
          } after change ${event.since}`,
          { ...context, store: event.store, prefix: event.prefix, since: event.since },
        );
      }
      return;
    case "trigger.reload":
      if (!quiet) {
        sink.err(`[flow:${event.flowId}] ${reloadText(event)}`, {
          ...context,
          action: event.action,
          store: event.store,
        });
      }
      return;
    case "trigger.standby":
      if (!quiet) {
        sink.out(`Change trigger flow:${event.flowId} is run by ${event.holder}; standing by`, {
          ...context,
          holder: event.holder,
        });
      }
      return;
    case "trigger.run": {
      const line = `change ${event.seq} ${
        JSON.stringify(event.key)
      } flow:${event.flowId} ${event.run.status} run=${event.run.id}`;
      const fields = {
        ...context,
        seq: event.seq,
        key: event.key,
        runId: event.run.id,
        status: event.run.status,
      };
      if (event.run.status !== "succeeded") {
        sink.err(quiet ? `error: ${line}` : line, fields, "error");
      } else if (!quiet) sink.out(line, fields);
    }
  }
}

/** What an edit of a flow file did to its change trigger, as the daemon says it on stderr. */
function reloadText(event: Extract<ChangeTriggerEvent, { type: "trigger.reload" }>): string {
  const watched = (w: { store: string; prefix: readonly string[] }) =>
    `store "${w.store}" under ${JSON.stringify(w.prefix)}`;
  const from = `from its position stored for that store and prefix if any, else from the end ` +
    `of its feed (after change ${event.since})`;
  switch (event.action) {
    case "added":
      return `change trigger added: ${watched(event)}, ${from}`;
    case "changed":
      return `change trigger changed from ${watched(event.previous!)} to ${
        watched(event)
      }: once its run in progress (if any) ends, ${from}`;
    case "removed":
      return `change trigger removed (its flow file no longer has one, or is no longer under ` +
        `flows:): no more runs (a run in progress ends as it would); its position stays stored`;
    case "recovered":
      return `flow file ${event.file}: its change trigger can be used again (${watched(event)})`;
    case "updated":
      return `flow file changed: its change trigger's next runs use it as it is now ` +
        `(${watched(event)}, from its stored position)`;
  }
}

/** Whether this process runs on a terminal (any of its standard streams is one). */
function onTerminal(): boolean {
  try {
    return Deno.stdin.isTerminal() || Deno.stdout.isTerminal() || Deno.stderr.isTerminal();
  } catch {
    return false;
  }
}

/** Call `listener` on each `signal` until disposed (nothing where the system lacks it). */
function listenFor(signal: Deno.Signal, listener: () => void): Disposable {
  try {
    Deno.addSignalListener(signal, listener);
  } catch {
    return { [Symbol.dispose]() {} };
  }
  return { [Symbol.dispose]: () => Deno.removeSignalListener(signal, listener) };
}

/** Turns scheduler events into lines: progress on stdout, logs and errors on stderr. */
/**
 * The files each job of the config writes and reads (its path options,
 * absolute), as lines under its schedule: `job:backup` → `out /srv/app/nightly`.
 */
async function jobPathLines(runtime: Runtime): Promise<Map<string, string[]>> {
  const lines = new Map<string, string[]>();
  for (const [name, settings] of Object.entries(runtime.config.jobs)) {
    if (Object.keys(settings.options).length === 0) continue;
    const loaded = await loadConfiguredJob(runtime.config, name).catch(() => undefined);
    const paths = Object.entries(loaded?.paths ?? {}).map(([option, value]) =>
      `${option} ${Array.isArray(value) ? value.join(", ") : value}`
    );
    if (paths.length > 0) lines.set(`job:${name}`, paths);
  }
  return lines;
}

/**
 * The context fields of a schedule: `schedule`, and `job` or `flow` by its
 * kind; an entry of a flow's `schedule:` list with an `id` (`flow:backup#a`)
 * is `flow: "backup"` and `entry: "a"`.
 */
function scheduleFields(scheduleId: string | undefined): LogFields {
  if (scheduleId === undefined) return {};
  if (scheduleId.startsWith("job:")) return { schedule: scheduleId, job: scheduleId.slice(4) };
  if (scheduleId.startsWith("flow:")) {
    const [flow, entry] = scheduleId.slice(5).split("#", 2);
    return { schedule: scheduleId, flow, ...(entry === undefined ? {} : { entry }) };
  }
  return { schedule: scheduleId };
}

/**
 * Turns scheduler events into lines: progress on stdout, logs and errors on stderr; with
 * `--log-format json`, JSON log lines on stderr (`scheduler.start`, `job.end` / `run.end`
 * per tick of a job / flow, `tick.skip`, `tick.queue`, `tick.abandoned`, `config.reload`,
 * `schedule.log`, `schedule.warning`, `scheduler.error`, `scheduler.stopping`,
 * `scheduler.stop`).
 */
function printer(
  quiet: boolean,
  paths: ReadonlyMap<string, string[]> = new Map(),
): (event: SchedulerEvent) => void {
  const sink = lineSink();
  return (event) => {
    switch (event.type) {
      case "start": {
        if (quiet) return;
        const n = event.schedules.length;
        const head = `Scheduler started (runner ${event.runnerId}) with ${n} schedule${
          n === 1 ? "" : "s"
        }${n === 0 ? "; nothing to run (add jobs or flows with a schedule to the config)" : ":"}`;
        if (jsonLogs()) {
          // One line: the schedules as a field.
          logEvent("info", head.replace(/:$/, ""), {
            event: "scheduler.start",
            runner: event.runnerId,
            schedules: event.schedules.map((s) => ({
              schedule: s.id,
              cron: s.cron,
              timezone: s.timezone,
              next: s.next === null ? null : tickKey(s.next),
              ...(paths.has(s.id) ? { paths: paths.get(s.id) } : {}),
            })),
          });
          return;
        }
        console.log(head);
        for (const s of event.schedules) {
          console.log(
            `  ${s.id}  ${s.cron} (${s.timezone})  next ${
              s.next === null ? "never" : tickKey(s.next)
            }`,
          );
          for (const line of paths.get(s.id) ?? []) console.log(`    ${line}`);
        }
        return;
      }
      case "config.reload": {
        const fields = {
          event: "config.reload",
          file: event.file,
          applied: event.applied,
          restart: event.restart,
          restartNotNeeded: event.restartNotNeeded,
          recovered: event.recovered,
        };
        if (event.restart.length > 0) {
          sink.err(
            `warning: ${event.file}: ${
              event.restart.join(", ")
            } changed: restart the daemon to apply ${
              event.restart.length === 1 ? "it" : "them"
            } (it goes on with the values it started with)`,
            fields,
          );
        }
        if (quiet) return;
        const notNeeded = event.restartNotNeeded ?? [];
        if (notNeeded.length > 0) {
          sink.out(
            `Config ${event.file}: ${
              notNeeded.join(", ")
            } back to the values the daemon runs with: no restart needed for ${
              notNeeded.length === 1 ? "it" : "them"
            } any more`,
            fields,
          );
        }
        if (event.recovered) {
          sink.out(
            `Config ${event.file} can be used again: ${
              event.applied.length > 0
                ? `applied ${event.applied.join(", ")}`
                : "nothing changed from the config in use"
            }`,
            fields,
          );
        } else if (event.applied.length > 0) {
          sink.out(`Config ${event.file} changed: applied ${event.applied.join(", ")}`, fields);
        } else if (event.restart.length === 0 && notNeeded.length === 0) {
          sink.out(`Config ${event.file} read again: nothing changed`, fields);
        }
        return;
      }
      case "tick.end": {
        const line = `${tickKey(event.tick)} ${event.scheduleId} ${event.status} ${
          formatDuration(event.durationMs)
        }${event.runId ? ` run=${event.runId}` : ""}${event.catchUp ? " (catch-up)" : ""}${
          event.error ? `: ${event.error.split("\n")[0]}` : ""
        }`;
        const context = scheduleFields(event.scheduleId);
        const fields = {
          event: context.job === undefined ? "run.end" : "job.end",
          ...context,
          runId: event.runId ?? undefined,
          tickAt: tickKey(event.tick),
          catchUp: event.catchUp || undefined,
          status: event.status,
          durationMs: event.durationMs,
          error: event.error ?? undefined,
        };
        const level = event.status === "succeeded" ? "info" : "error";
        if (event.status === "succeeded") {
          if (!quiet) sink.out(line, fields, level);
        } else if (quiet) {
          sink.err(`error: ${line}`, fields, level);
        } else {
          sink.out(line, fields, level);
        }
        return;
      }
      case "tick.skip": {
        const why = SKIP_REASONS[event.reason];
        if (!quiet && why !== undefined) {
          sink.out(`${tickKey(event.tick)} ${event.scheduleId} ${why}`, {
            event: "tick.skip",
            ...scheduleFields(event.scheduleId),
            tickAt: tickKey(event.tick),
            reason: event.reason,
          });
        }
        return;
      }
      case "tick.abandoned": {
        const what = event.action === "skip"
          ? "recorded as failed (abandoned: skip)"
          : event.action === "rerun"
          ? "running it again (abandoned: rerun)"
          : "its run had ended; recorded the tick";
        sink.err(
          `warning: ${tickKey(event.tick)} ${event.scheduleId} abandoned by runner ${event.runner}${
            event.runId ? ` (run=${event.runId})` : ""
          }: ${what}`,
          {
            event: "tick.abandoned",
            ...scheduleFields(event.scheduleId),
            tickAt: tickKey(event.tick),
            runner: event.runner,
            runId: event.runId ?? undefined,
            action: event.action,
          },
        );
        return;
      }
      case "tick.queue":
        if (!quiet) {
          sink.out(
            `${tickKey(event.tick)} ${event.scheduleId} queued: runs when the previous run ends`,
            {
              event: "tick.queue",
              ...scheduleFields(event.scheduleId),
              tickAt: tickKey(event.tick),
            },
          );
        }
        return;
      case "log":
        if (jsonLogs()) {
          if (!quiet) {
            // A scheduled flow's node log line: a node.log line of its run.
            const node = event.node;
            logEvent(
              event.level,
              node !== undefined && event.message.startsWith(`${node}: `)
                ? event.message.slice(node.length + 2)
                : event.message,
              {
                event: node === undefined ? "schedule.log" : "node.log",
                ...scheduleFields(event.scheduleId),
                runId: event.runId,
                node,
                item: event.item,
              },
            );
          }
        } else if (!quiet) {
          const level = event.level === "info" ? "" : `${event.level}: `;
          console.error(`[${event.scheduleId}] ${level}${event.message}`);
        }
        return;
      case "warning":
        sink.err(`warning: [${event.scheduleId}] ${event.message}`, {
          event: "schedule.warning",
          ...scheduleFields(event.scheduleId),
        });
        return;
      case "error":
        sink.err(`error: ${event.message.split("\n")[0]}`, {
          event: "scheduler.error",
          ...scheduleFields(event.scheduleId),
          ...(event.tick === undefined ? {} : { tickAt: tickKey(event.tick) }),
          error: messageOf(event.error),
        });
        return;
      case "stopping":
        if (!quiet) {
          sink.out(
            `Waiting up to ${formatDuration(event.graceMs)} for ${event.running} running tick${
              event.running === 1 ? "" : "s"
            }…`,
            { event: "scheduler.stopping", running: event.running, graceMs: event.graceMs },
          );
        }
        return;
      case "stop":
        if (event.cancelled > 0) {
          sink.err(
            `warning: cancelled ${event.cancelled} tick${
              event.cancelled === 1 ? "" : "s"
            } still running after the grace period`,
            { event: "scheduler.cancelled", cancelled: event.cancelled },
          );
        }
        if (!quiet) sink.out("Stopped", { event: "scheduler.stop", cancelled: event.cancelled });
        return;
      case "tick.start":
        if (jsonLogs()) {
          logEvent("debug", `${tickKey(event.tick)} ${event.scheduleId} started`, {
            event: "tick.start",
            ...scheduleFields(event.scheduleId),
            tickAt: tickKey(event.tick),
            catchUp: event.catchUp || undefined,
          });
        }
        return;
    }
  };
}

/** Print one JSON object on stdout: `time` first, then the fields of `fields`. */
function printJson(clock: Clock, fields: Record<string, unknown>): void {
  console.log(JSON.stringify({ time: new Date(clock.now()).toISOString(), ...fields }));
}

/** Turns scheduler events into one JSON object a line on stdout (`--json`). */
function jsonPrinter(quiet: boolean, clock: Clock): (event: SchedulerEvent) => void {
  return (event) => {
    if (quiet) {
      const shown = event.type === "error" || event.type === "warning" ||
        event.type === "tick.abandoned" ||
        event.type === "stop" || (event.type === "tick.end" && event.status !== "succeeded") ||
        (event.type === "config.reload" && event.restart.length > 0);
      if (!shown) return;
    }
    const fields: Record<string, unknown> = { ...event };
    if ("tick" in event && typeof event.tick === "number") fields.tickAt = tickKey(event.tick);
    if (event.type === "error") fields.error = messageOf(event.error);
    printJson(clock, fields);
  };
}
