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
import type { SchedulerStatus } from "../serve/api.ts";
import { startServer } from "./serve.ts";
import { DEFAULT_LEASE_MS, startWorker } from "../queue/worker.ts";
import {
  heldRunsAtExit,
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
      console.log("Received SIGHUP: reading the config and flow files again");
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
        } else console.error(waitingLine(event));
      },
    });
    if (reached === undefined) {
      const reason = await stopRequested.promise;
      if (options.json) {
        if (!quiet) printJson(clock, { type: "signal", signal: reason });
      } else if (!quiet) console.log(`Received ${reason}: stopping`);
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
      else console.error(reachableLine(event));
    }
    const print = options.json
      ? jsonPrinter(quiet, clock)
      : printer(quiet, quiet ? undefined : await jobPathLines(runtime));
    const status: SchedulerStatus = { ticking: false, lastTickAt: null, lagSeconds: null };
    const configFile = runtime.config.file;
    let triggers: ChangeTriggers | undefined = undefined;
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
        print(event);
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
      throw err;
    });
    // The queue too: one line per queued run that ends (JSON: `queue.end`, `queue.lost`,
    // `queue.abandoned`, `queue.error`).
    using held = heldRunsAtExit(DEFAULT_LEASE_MS);
    const worker = options.queue === false ? undefined : startWorker(runtime, {
      ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
      ...(options.runnerId === undefined ? {} : { workerId: options.runnerId }),
      onEvent(event) {
        held.track(event);
        if (
          event.type !== "end" && event.type !== "lost" && event.type !== "abandoned" &&
          event.type !== "error" && event.type !== "waiting" && event.type !== "reachable"
        ) return;
        if (options.json) {
          if (quiet && event.type === "end" && event.status === "succeeded") return;
          printJson(clock, { ...event, type: `queue.${event.type}` });
        } else queueLine(event);
      },
    });
    const queueLine = workerPrinter(false, quiet);
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
    } else if (!quiet) console.log(`Received ${reason}: stopping`);
    // The server first: its waiting requests answered, its jobs cancelled, its streams closed.
    await server?.shutdown();
    await Promise.all([
      scheduler.stop({ graceMs }),
      worker?.stop({ graceMs }),
      triggers!.stop({ graceMs }),
    ]);
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
  switch (event.type) {
    case "error":
      console.error(`error: ${messageOf(event.error)}`);
      return;
    case "trigger.reset":
      console.error(`warning: ${event.message}`);
      return;
    case "trigger.abandoned":
      console.error(
        `warning: change trigger flow:${event.flowId}: recorded run ${event.runId} abandoned (its daemon stopped answering)`,
      );
      return;
    case "trigger.start":
      if (!quiet) {
        console.log(
          `Change trigger flow:${event.flowId} watching store "${event.store}" under ${
            JSON.stringify(event.prefix)
          } after change ${event.since}`,
        );
      }
      return;
    case "trigger.reload":
      if (!quiet) console.error(`[flow:${event.flowId}] ${reloadText(event)}`);
      return;
    case "trigger.standby":
      if (!quiet) {
        console.log(`Change trigger flow:${event.flowId} is run by ${event.holder}; standing by`);
      }
      return;
    case "trigger.run": {
      const line = `change ${event.seq} ${
        JSON.stringify(event.key)
      } flow:${event.flowId} ${event.run.status} run=${event.run.id}`;
      if (event.run.status !== "succeeded") console.error(quiet ? `error: ${line}` : line);
      else if (!quiet) console.log(line);
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

function printer(
  quiet: boolean,
  paths: ReadonlyMap<string, string[]> = new Map(),
): (event: SchedulerEvent) => void {
  return (event) => {
    switch (event.type) {
      case "start": {
        if (quiet) return;
        const n = event.schedules.length;
        console.log(
          `Scheduler started (runner ${event.runnerId}) with ${n} schedule${n === 1 ? "" : "s"}${
            n === 0 ? "; nothing to run (add jobs or flows with a schedule to the config)" : ":"
          }`,
        );
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
        if (event.restart.length > 0) {
          console.error(
            `warning: ${event.file}: ${
              event.restart.join(", ")
            } changed: restart the daemon to apply ${
              event.restart.length === 1 ? "it" : "them"
            } (it goes on with the values it started with)`,
          );
        }
        if (quiet) return;
        const notNeeded = event.restartNotNeeded ?? [];
        if (notNeeded.length > 0) {
          console.log(
            `Config ${event.file}: ${
              notNeeded.join(", ")
            } back to the values the daemon runs with: no restart needed for ${
              notNeeded.length === 1 ? "it" : "them"
            } any more`,
          );
        }
        if (event.recovered) {
          console.log(
            `Config ${event.file} can be used again: ${
              event.applied.length > 0
                ? `applied ${event.applied.join(", ")}`
                : "nothing changed from the config in use"
            }`,
          );
        } else if (event.applied.length > 0) {
          console.log(`Config ${event.file} changed: applied ${event.applied.join(", ")}`);
        } else if (event.restart.length === 0 && notNeeded.length === 0) {
          console.log(`Config ${event.file} read again: nothing changed`);
        }
        return;
      }
      case "tick.end": {
        const line = `${tickKey(event.tick)} ${event.scheduleId} ${event.status} ${
          formatDuration(event.durationMs)
        }${event.runId ? ` run=${event.runId}` : ""}${event.catchUp ? " (catch-up)" : ""}${
          event.error ? `: ${event.error.split("\n")[0]}` : ""
        }`;
        if (event.status === "succeeded") {
          if (!quiet) console.log(line);
        } else if (quiet) {
          console.error(`error: ${line}`);
        } else {
          console.log(line);
        }
        return;
      }
      case "tick.skip": {
        const why = SKIP_REASONS[event.reason];
        if (!quiet && why !== undefined) {
          console.log(`${tickKey(event.tick)} ${event.scheduleId} ${why}`);
        }
        return;
      }
      case "tick.abandoned": {
        const what = event.action === "skip"
          ? "recorded as failed (abandoned: skip)"
          : event.action === "rerun"
          ? "running it again (abandoned: rerun)"
          : "its run had ended; recorded the tick";
        console.error(
          `warning: ${tickKey(event.tick)} ${event.scheduleId} abandoned by runner ${event.runner}${
            event.runId ? ` (run=${event.runId})` : ""
          }: ${what}`,
        );
        return;
      }
      case "tick.queue":
        if (!quiet) {
          console.log(
            `${tickKey(event.tick)} ${event.scheduleId} queued: runs when the previous run ends`,
          );
        }
        return;
      case "log":
        if (!quiet) {
          const level = event.level === "info" ? "" : `${event.level}: `;
          console.error(`[${event.scheduleId}] ${level}${event.message}`);
        }
        return;
      case "warning":
        console.error(`warning: [${event.scheduleId}] ${event.message}`);
        return;
      case "error":
        console.error(`error: ${event.message.split("\n")[0]}`);
        return;
      case "stopping":
        if (!quiet) {
          console.log(
            `Waiting up to ${formatDuration(event.graceMs)} for ${event.running} running tick${
              event.running === 1 ? "" : "s"
            }…`,
          );
        }
        return;
      case "stop":
        if (event.cancelled > 0) {
          console.error(
            `warning: cancelled ${event.cancelled} tick${
              event.cancelled === 1 ? "" : "s"
            } still running after the grace period`,
          );
        }
        if (!quiet) console.log("Stopped");
        return;
      case "tick.start":
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
