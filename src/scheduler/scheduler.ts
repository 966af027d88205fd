/**
 * The scheduler: runs scheduled jobs and flows at their cron ticks, each tick
 * exactly once across every runner that shares the records store.
 *
 * ## How a tick runs
 *
 * For every schedule the scheduler computes the next tick from its clock and
 * waits (with its injected timers) until the earliest one. At a tick it
 * waits a random delay up to the schedule's `jitter`, takes the tick's lease
 * (see `lease.ts`: an atomic compare-and-set that fails if another runner
 * holds the tick or already completed it), runs the work while renewing the
 * lease, then writes the tick's done marker and the schedule's last
 * completed tick in one commit. Work that throws or fails is recorded as
 * failed and never stops the scheduler.
 *
 * ## Policies
 *
 * - `overlap: skip` (default): a tick that comes while this schedule's
 *   previous run is still running *in this runner* is skipped here. Leases
 *   are per tick, so an idle runner sharing the store may still take that
 *   tick; when every runner is busy, nobody runs it. Runs of one schedule
 *   can therefore overlap across runners, never within one.
 * - `overlap: queue`: such a tick runs when the current run ends (still
 *   leased, so it is skipped if another runner ran it meanwhile). At most
 *   one tick waits; later ones are skipped.
 * - `missed: skip` (default): ticks that passed while no runner was running
 *   are not run. `missed: run-once`: on start, if a tick passed since the
 *   schedule's last completed tick, the latest such tick is run once, leased
 *   like any other (so several runners starting together run it once).
 *   A schedule seen for the first time records a baseline instead.
 * - A runner that wakes late (a suspended machine, a blocked event loop)
 *   runs only the latest tick that is due and skips the older ones.
 * - A cancelled tick (the scheduler stopped before its work ended) releases
 *   its lease without a done marker, so a `run-once` restart may run it again.
 * - `abandoned: skip` (default) / `rerun`: a runner that finds a tick leased
 *   by another (at the tick, or any leased tick of the schedule on start)
 *   watches that lease; on start it also takes over at once any tick whose
 *   run is still marked running (see `lease.ts`) with its lease gone and the
 *   tick not done (a runner killed, and restarted after its lease lapsed). If it lapses (its runner died: nobody renewed it for `leaseMs`)
 *   with the tick not done, this runner takes the tick over: the run that
 *   the dead runner wrote into the lease is recorded `failed` ("abandoned:
 *   no heartbeat…") once its heartbeat is stale (see
 *   `records/heartbeat.ts`; a run still beating is left to its runner and
 *   watched again), then the tick is recorded done as `failed` (`skip`,
 *   reported as `tick.abandoned`) or run again here (`rerun`, for work safe
 *   to repeat). A run that had ended before its runner died just has its
 *   tick recorded done with the run's status.
 *
 * ## Files read again
 *
 * With its schedules from the config, the scheduler looks at the flow files
 * every 2 s and before a flow's tick, and, given `loadConfig`, at the config
 * file too (a `stat` each; a file is read only when its status changed). An
 * edit applies from then on (see {@linkcode Scheduler.reload}); one of the
 * config file, once two looks in a row found it the same (a save caught
 * halfway is not applied), and never an empty one. A schedule
 * keeps its state while its cron and time zone stay: its next tick, the tick
 * running here (so `overlap` still sees it) and the one queued behind it.
 * A changed one ticks on its new cron from now; its ticks are still leased
 * per tick, so a tick already done is not run again. A removed one runs no
 * more ticks (a running one ends as it would, and is still the schedule's
 * if it is added back meanwhile: `overlap` sees it). One added records its
 * baseline at once, so `missed: run-once` counts from then after a restart.
 *
 * @module
 */
import { callGuarded } from "../_callback.ts";
import { assertKnownFields, fieldNames } from "../_suggest.ts";
import {
  type AbandonedPolicy,
  displayPath,
  type MissedPolicy,
  type OverlapPolicy,
  type ResolvedConfig,
} from "../config.ts";
import { realTimers, type Timers } from "../clock.ts";
import type { RunStatus } from "../records/types.ts";
import type { LogLevel } from "../log.ts";
import type { Runtime } from "../runtime.ts";
import type { Clock, Key } from "../store/types.ts";
import { DEFAULT_TIMEZONE, dstSkipProblem, nextTick, previousTick, validateCron } from "../cron.ts";
import {
  type LastTick,
  type LeaseHolder,
  type RunningMarker,
  tickKey,
  type TickLease,
  TickLeases,
} from "./lease.ts";
import { Lease } from "../store/lease.ts";
import { MIN_ABANDONED_MS } from "../records/heartbeat.ts";
import {
  type FlowFileProblem,
  FlowScheduleFiles,
  type JobProblem,
  loadSchedules,
  type LoadSchedulesOptions,
  type ScheduleLogContext,
} from "./from_config.ts";
import { fileStamp, isStable } from "../flow_cache.ts";
import { flowFiles } from "../flow_files.ts";
import type { FlowScheduleTarget, Schedule } from "./schedule.ts";
import type { ParsedFlow } from "../flow/parse.ts";
import { ConfigError, messageOf, StoreClosedError } from "../errors.ts";
import { uniqueRandomBytes } from "../_random.ts";

export type { AbandonedPolicy, MissedPolicy, OverlapPolicy } from "../config.ts";
export type { Schedule, TickContext } from "./schedule.ts";

/**
 * Why a tick was not run by this runner.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import { Scheduler, type SkipReason } from "@flowstate/core/scheduler";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const at = Date.UTC(2026, 0, 1, 3);
 * const clock = { now: () => at };
 * const schedules = [{ id: "report", cron: "0 3 * * *", run: () => {} }];
 * const first = new Scheduler(rt, { clock, schedules, runnerId: "a" });
 * await first.start();
 * await first.stop();
 * // a second runner sharing the store finds the tick done
 * const reasons: SkipReason[] = [];
 * const second = new Scheduler(rt, {
 *   clock,
 *   schedules,
 *   runnerId: "b",
 *   onEvent: (e) => void (e.type === "tick.skip" && reasons.push(e.reason)),
 * });
 * await second.start();
 * await second.stop();
 * assert.deepEqual(reasons, ["done"]);
 * ```
 */
export type SkipReason =
  /** This schedule's previous run is still running here (`overlap: skip`, or a tick already queued). */
  | "overlap"
  /** Another runner holds the tick's lease. */
  | "leased"
  /** The tick already completed (on another runner). */
  | "done"
  /** Ticks passed while no runner ran (`missed: skip`). */
  | "missed"
  /** The runner woke after later ticks were due; only the latest ran. */
  | "late"
  /** The scheduler stopped before the tick started. */
  | "stopping";

/**
 * What the scheduler reports as it works.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import { Scheduler, type SchedulerEvent } from "@flowstate/core/scheduler";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const events: SchedulerEvent["type"][] = [];
 * const scheduler = new Scheduler(rt, {
 *   clock: { now: () => Date.UTC(2026, 0, 1, 3) },
 *   schedules: [{ id: "report", cron: "0 3 * * *", run: () => {} }],
 *   onEvent: (event) => void events.push(event.type),
 * });
 * await scheduler.start();
 * await scheduler.stop();
 * assert.equal(events[0], "start");
 * assert.ok(events.includes("tick.start"));
 * assert.equal(events.at(-1), "stop");
 * ```
 */
export type SchedulerEvent =
  | {
    type: "start";
    runnerId: string;
    schedules: { id: string; cron: string; timezone: string; next: number | null }[];
  }
  | { type: "tick.start"; scheduleId: string; tick: number; catchUp: boolean; at: number }
  | {
    type: "tick.end";
    scheduleId: string;
    tick: number;
    catchUp: boolean;
    status: RunStatus;
    runId: string | null;
    durationMs: number;
    error: string | null;
  }
  | {
    type: "tick.skip";
    scheduleId: string;
    tick: number;
    reason: SkipReason;
    /** For `leased`: the runner holding it. */
    holder?: string;
  }
  | { type: "tick.queue"; scheduleId: string; tick: number }
  | {
    /**
     * A tick's runner died while running it (its lease lapsed, the tick not
     * done); this runner took it over. `runId`: the dead runner's run, now
     * recorded abandoned (`null` if its work had not started a run).
     * `action`: `skip` (recorded done as failed), `rerun` (running again
     * here), or `ended` (the run had ended: its tick is recorded with its
     * status).
     */
    type: "tick.abandoned";
    scheduleId: string;
    tick: number;
    runner: string;
    runId: string | null;
    action: "skip" | "rerun" | "ended";
  }
  | {
    /**
     * The config file was read again (it changed, or {@linkcode Scheduler.reload}
     * asked) and is in use now: `applied` names the settings that changed and
     * apply from now on (`jobs`, `timezone`, `flows`), `restart` those that
     * changed but apply only when the process starts again (`stores`,
     * `serve`…: it goes on with the values it started with). Both empty: the
     * file had not changed. An edit that cannot be used is an `error` event
     * instead, and the config in use stays as it was.
     */
    type: "config.reload";
    file: string;
    applied: string[];
    restart: string[];
    /**
     * Restart-only settings this edit brought back to the values the
     * process started with (an earlier edit had changed them): no restart
     * is needed for them any more.
     */
    restartNotNeeded?: string[];
    /** The file could not be used at the previous read (an `error` event said so); now it is. */
    recovered?: boolean;
  }
  | {
    type: "log";
    scheduleId: string;
    message: string;
    level: LogLevel;
    /** For a scheduled flow's node log line: its run (or sub-run). */
    runId?: string;
    /** For a scheduled flow's node log line: its node. */
    node?: string;
    /** For a `forEach` node's line: the item. */
    item?: number;
  }
  /**
   * A schedule that will not work as it is (a scheduled flow lists an
   * `env:` variable this process does not have: each tick fails), said at
   * the start and when the schedule is added or changed; so is one that a
   * daylight-saving gap leaves without any tick on some day within a year
   * (`*\/15 2 * * *` in Europe/Paris).
   */
  | { type: "warning"; scheduleId: string; message: string }
  | { type: "error"; scheduleId?: string; tick?: number; message: string; error: unknown }
  | { type: "stopping"; running: number; graceMs: number }
  | { type: "stop"; cancelled: number };

/**
 * Options for {@linkcode Scheduler}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import { Scheduler, type SchedulerOptions } from "@flowstate/core/scheduler";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const options: SchedulerOptions = {
 *   runnerId: "daemon-1",
 *   leaseMs: 30_000,
 *   prefix: ["app", "scheduler"],
 *   schedules: [{ id: "ping", cron: "@hourly", run: () => {} }],
 * };
 * const scheduler = new Scheduler(rt, options);
 * assert.equal(scheduler.runnerId, "daemon-1");
 * await scheduler.start();
 * assert.equal(scheduler.schedules[0].cron, "@hourly");
 * await scheduler.stop();
 * ```
 */
export interface SchedulerOptions {
  /** The clock (default: the runtime's). */
  clock?: Clock;
  /** Timers (default: real ones); tests pass manual ones. */
  timers?: Timers;
  /** This runner's id (default `<hostname>:<pid>:<random>`). */
  runnerId?: string;
  /** The schedules (default: {@linkcode loadSchedules} from the runtime's config). */
  schedules?: readonly Schedule[];
  /** Random numbers in [0, 1) for jitter (default `Math.random`). */
  random?: () => number;
  /** Lease lifetime; a running tick renews it every third of it (default 60 s). */
  leaseMs?: number;
  /**
   * How long the done markers of completed ticks are kept (default 7 days).
   * They make a tick run once across runners.
   */
  historyMs?: number;
  /**
   * Done markers kept per schedule beyond the prune window of ten lease
   * lifetimes (default 100): a per-second schedule keeps about 700, not a
   * week's 605,000. A tick older than the markers kept counts as done.
   */
  historyCount?: number;
  /** Longest single wait; the clock is read again after it (default 60 s). */
  maxSleepMs?: number;
  /** Receives every event (the daemon prints from here). */
  onEvent?: (event: SchedulerEvent) => void;
  /** Key prefix of leases (default `["flowstate", "scheduler"]`). */
  prefix?: Key;
  /**
   * Reads the config file again (the daemon passes `loadConfig` with the
   * options it started with). With it, and the schedules taken from the
   * runtime's config file, the scheduler looks at that file on each of its
   * turns (one `stat`, as at the flow files) and applies an edit: see
   * {@linkcode Scheduler.reload}.
   */
  loadConfig?: () => Promise<ResolvedConfig>;
  /**
   * Given, after each look at the flow files (schedules loaded from the
   * config: every 2 s, and at {@linkcode Scheduler.reload}), every flow file
   * under `flows:` with its flow as last read usable (a file an edit broke
   * keeps the flow it had; the `error` event says why once). The daemon
   * applies the flows' change triggers from here. Awaited; a rejection is an
   * `error` event.
   */
  onFlowFiles?: (flows: readonly { file: string; flow: ParsedFlow }[]) => void | Promise<void>;
  /**
   * What {@linkcode Scheduler.start} does with what it cannot use in the
   * config (schedules loaded from the config only): a flow file under
   * `flows:` that cannot be read or checked, two flow files with one id, a
   * job whose module cannot be loaded or whose options are invalid.
   *
   * - `"throw"` (default, what `flowstate daemon` does): `start()` rejects
   *   with a {@linkcode ConfigError} naming every such problem, and nothing
   *   runs.
   * - `"report"`: `start()` starts with everything else; each problem is an
   *   `error` event (`scheduleId` `job:<name>` for a job), and the flow files
   *   are listed in {@linkcode Scheduler.flowProblems} until they are fixed. A
   *   fixed flow file is picked up at the next look at the files (every 2 s),
   *   as after an edit; a fixed job at the next edit of the config file (with
   *   `loadConfig`) or the next start.
   */
  startProblems?: "throw" | "report";
  /**
   * Stops the scheduler when it aborts, as {@linkcode Scheduler.stop} with
   * its default grace period does (a `SIGTERM` handler's `AbortController`,
   * say); aborted before `start()`, nothing starts.
   */
  signal?: AbortSignal;
}

/** The names of {@linkcode SchedulerOptions}: a misspelt one is refused, not ignored. */
const SCHEDULER_OPTIONS: readonly string[] = fieldNames<SchedulerOptions>()(
  ["clock", "timers", "runnerId", "schedules", "random", "leaseMs", "historyMs", "historyCount"],
  ["maxSleepMs", "onEvent", "prefix", "loadConfig", "onFlowFiles", "startProblems", "signal"],
);

/**
 * What {@linkcode Scheduler.stop} did.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import { Scheduler, type StopResult } from "@flowstate/core/scheduler";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const scheduler = new Scheduler(rt, { schedules: [{ id: "ping", cron: "0 0 1 1 *", run: () => {} }] });
 * await scheduler.start();
 * const result: StopResult = await scheduler.stop();
 * assert.equal(result.cancelled, 0); // nothing was running
 * ```
 */
export interface StopResult {
  /** Ticks whose work was still running after the grace period and was cancelled. */
  cancelled: number;
}

/**
 * One schedule as the scheduler sees it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import { type ScheduleInfo, Scheduler } from "@flowstate/core/scheduler";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const scheduler = new Scheduler(rt, {
 *   clock: { now: () => Date.UTC(2026, 0, 1, 12) },
 *   schedules: [{ id: "report", cron: "0 3 * * *", run: () => {} }],
 * });
 * await scheduler.start();
 * const [info]: ScheduleInfo[] = scheduler.schedules;
 * assert.equal(info.next, Date.UTC(2026, 0, 2, 3));
 * assert.deepEqual([info.overlap, info.missed, info.timezone], ["skip", "skip", "UTC"]);
 * await scheduler.stop();
 * ```
 */
export interface ScheduleInfo {
  /** The schedule's id. */
  id: string;
  /** The cron expression. */
  cron: string;
  /** Its time zone. */
  timezone: string;
  /** Overlap policy. */
  overlap: OverlapPolicy;
  /** Missed-tick policy. */
  missed: MissedPolicy;
  /** What happens to a tick whose runner died while running it. */
  abandoned: AbandonedPolicy;
  /** Jitter upper bound, ms. */
  jitterMs: number;
  /** The next tick this runner will look at, or `null` if there is none. */
  next: number | null;
  /** Whether its work is running here. */
  running: boolean;
  /** For a flow's schedule: the flow, its `schedule:` entry and the inputs its runs get. */
  flow?: FlowScheduleTarget;
}

interface ScheduleState {
  schedule: Schedule;
  timezone: string;
  overlap: OverlapPolicy;
  missed: MissedPolicy;
  abandoned: AbandonedPolicy;
  jitterMs: number;
  next: number | null;
  active: Promise<void> | null;
  queued: { tick: number; catchUp: boolean } | null;
}

const DEFAULT_MAX_SLEEP_MS = 60_000;
/** How often the daemon's scheduler looks at the config's flow files again, in ms (a `stat` each). */
const FLOW_FILES_CHECK_MS = 2_000;

/** A schedule's state before its first tick is known. */
function stateOf(schedule: Schedule, timezone: string, jitterMs: number): ScheduleState {
  return {
    schedule,
    timezone,
    overlap: schedule.overlap ?? "skip",
    missed: schedule.missed ?? "skip",
    abandoned: schedule.abandoned ?? "skip",
    jitterMs,
    next: null,
    active: null,
    queued: null,
  };
}

/** A next tick as the `log` events say it. */
function nextText(next: number | null): string {
  return next === null ? "never" : tickKey(next);
}

/** The config file as the scheduler last read it (see `SchedulerOptions.loadConfig`). */
interface WatchedFile {
  path: string;
  stamp: string | undefined;
  /** Whether its status may be trusted to show a change (it had not changed for a while). */
  stable: boolean;
  /**
   * Its status at the last look: an edit applies (without `reload()`) only once
   * two looks in a row saw the same, so a save caught halfway is not.
   */
  looked: string | undefined;
  /** Its text at the last read (`null`: not read yet, or it could not be read). */
  text: string | null;
  /** Whether it could not be read at the last read (said once). */
  missing: boolean;
}

/** Why an edit that empties the config file is not applied. */
const EMPTY_CONFIG = "the file is empty (a save caught halfway?). An empty config would " +
  "drop every job's settings and bring back retention and gc with their defaults; " +
  "to mean that, write `{}`";

/** Whether a YAML text has nothing in it but blank lines and comments. */
function isBlank(text: string): boolean {
  return text.split("\n").every((line) => /^\s*(#.*)?$/.test(line));
}

/** The settings an edit of the config file applies to a running scheduler. */
const LIVE_SETTINGS: readonly (keyof ResolvedConfig)[] = ["jobs", "timezone", "flows"];

/** The settings an edit of the config file changes only for the next start (they are told so). */
const RESTART_SETTINGS: readonly (keyof ResolvedConfig)[] = [
  "home",
  "stores",
  "scopes",
  "records",
  "runs",
  "nodes",
  "serve",
];

/** What a job's schedule is made of: when it changes, the schedule is the new one. */
function jobSignature(schedule: Schedule, config: ResolvedConfig): string {
  const { id, cron, timezone, overlap, missed, abandoned, jitterMs } = schedule;
  const settings = config.jobs[id.slice("job:".length)];
  return JSON.stringify([cron, timezone, overlap, missed, abandoned, jitterMs, settings]);
}

/** A default runner id: host, process and a random suffix. */
export function defaultRunnerId(): string {
  let host = "runner";
  try {
    host = Deno.hostname();
  } catch {
    // No --allow-sys: the pid and the random part still make it unique.
  }
  const random = new DataView(uniqueRandomBytes(4).buffer).getUint32(0).toString(36);
  return `${host}:${Deno.pid}:${random}`;
}

/**
 * Runs schedules until stopped. Give it the runtime (for the records store,
 * where leases live, and to run jobs and flows), and for tests a clock and
 * timers that a test moves by hand. `start()` loads the schedules from the
 * config (or takes `schedules`), checks them and starts waiting for ticks;
 * `stop({ graceMs })` stops taking ticks and waits for running work, then
 * cancels it. The runtime stays open: close it after `stop()` (a scheduler
 * whose runtime is closed first stops at its next tick, with an `error`).
 *
 * @example
 * ```ts
 * import { openRuntime } from "@flowstate/core";
 * import { Scheduler } from "@flowstate/core/scheduler";
 * import assert from "node:assert/strict";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const ticks: number[] = [];
 * const scheduler = new Scheduler(rt, {
 *   clock: { now: () => Date.UTC(2026, 0, 1, 3) }, // a fixed clock, exactly at a tick
 *   schedules: [{ id: "report", cron: "0 3 * * *", run: ({ tick }) => void ticks.push(tick) }],
 * });
 * await scheduler.start(); // the tick due now starts at once
 * const { cancelled } = await scheduler.stop(); // stops waiting; the running tick finishes
 * assert.equal(ticks[0], Date.UTC(2026, 0, 1, 3));
 * assert.equal(cancelled, 0);
 * ```
 */
export class Scheduler implements AsyncDisposable {
  /** This runner's id. */
  readonly runnerId: string;
  readonly #runtime: Runtime;
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #random: () => number;
  readonly #options: SchedulerOptions;
  readonly #maxSleepMs: number;
  #states: ScheduleState[] = [];
  #leases: TickLeases | undefined;
  #starting: Promise<void> | undefined;
  #loop: Promise<void> | undefined;
  #stopping: Promise<StopResult> | undefined;
  /** Aborted at stop: ends waits for ticks and jitter. */
  readonly #halt = new AbortController();
  /** Aborted after the grace period: cancels running work. */
  readonly #cancel = new AbortController();
  readonly #running = new Set<Promise<void>>();
  /** Watches of ticks leased by other runners, by `scheduleId` and tick. */
  readonly #watching = new Map<string, Promise<void>>();
  /** The config's flow files, looked at again on each turn (schedules loaded from the config). */
  #flowFiles: FlowScheduleFiles | undefined;
  /** The last problem reading the flow files said (said again only when it changes). */
  #flowsProblem: string | undefined;
  /** When the flow files were last looked at (`#clock` time). */
  #flowsReadAt = 0;
  /** The config the schedules come from now (read again when its file changes). */
  #config: ResolvedConfig | undefined;
  /** The config file as last read, when it is watched (see `SchedulerOptions.loadConfig`). */
  #configFile: WatchedFile | undefined;
  /** The config this process started with: what restart-only settings are compared with. */
  #startConfig: ResolvedConfig | undefined;
  /** Whether the config file could not be used at its last read (said as an error). */
  #configBroken = false;
  /** What `loadSchedules` is given: timers and where logs go. */
  #loadOptions: LoadSchedulesOptions = {};
  /** Each job schedule's settings as last applied (see `jobSignature`), by schedule id. */
  #jobSignatures = new Map<string, string>();
  /** The rereads of the config and flow files, one after the other. */
  #refreshing: Promise<void> = Promise.resolve();
  /**
   * Removed schedules whose tick still runs here, by id: one added back
   * takes its state again, so `overlap` still sees that tick.
   */
  readonly #removed = new Map<string, ScheduleState>();
  /** Forgets `SchedulerOptions.signal` (at stop). */
  #unlisten: (() => void) | undefined;

  /** Create a scheduler; {@linkcode Scheduler.start} starts it. */
  constructor(runtime: Runtime, options: SchedulerOptions = {}) {
    assertKnownFields(options, SCHEDULER_OPTIONS, "Cannot create scheduler", "option");
    this.#runtime = runtime;
    this.#options = options;
    this.#clock = options.clock ?? runtime.clock;
    this.#timers = options.timers ?? realTimers;
    this.#random = options.random ?? Math.random;
    this.runnerId = options.runnerId ?? defaultRunnerId();
    this.#maxSleepMs = options.maxSleepMs ?? DEFAULT_MAX_SLEEP_MS;
    if (!(this.#maxSleepMs > 0)) {
      throw new RangeError(
        `Cannot create scheduler: maxSleepMs must be > 0 (got ${this.#maxSleepMs})`,
      );
    }
    const { startProblems } = options;
    if (startProblems !== undefined && startProblems !== "throw" && startProblems !== "report") {
      throw new TypeError(
        `Cannot create scheduler: startProblems must be "throw" or "report" (got ${
          JSON.stringify(startProblems) ?? String(startProblems)
        })`,
      );
    }
    const { signal } = options;
    if (signal !== undefined) {
      const onAbort = () => void this.stop().catch(() => {});
      if (signal.aborted) onAbort();
      else {
        signal.addEventListener("abort", onAbort, { once: true });
        this.#unlisten = () => signal.removeEventListener("abort", onAbort);
      }
    }
  }

  /**
   * Load and check the schedules, record baselines, start catch-up ticks
   * (`missed: run-once`) and start waiting for ticks; a tick due now starts
   * before it resolves. Resolves once running; throws (a {@linkcode ConfigError}
   * for a bad config, a flow file under `flows:` or a job that cannot be
   * used) before anything runs, unless `startProblems: "report"` makes those
   * `error` events and starts with the rest.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openRuntime } from "@flowstate/core";
   * import { Scheduler } from "@flowstate/core/scheduler";
   *
   * const dir = await Deno.makeTempDir();
   * await Deno.writeTextFile(`${dir}/good.flow.yaml`, 'id: good\nschedule: "@hourly"\nnodes: [{ id: a, type: log, with: { message: hi } }]\n');
   * await Deno.writeTextFile(`${dir}/bad.flow.yaml`, "id: bad\nnodes: [{ id: a, type: nope }]\n");
   * await using rt = await openRuntime({ cwd: dir, config: { stores: { main: { plugin: "memory" } }, flows: ["."] } });
   * // The default: one broken file and nothing starts.
   * await assert.rejects(new Scheduler(rt).start(), /bad\.flow\.yaml/);
   * // Reported instead: the good flow is scheduled, the bad file told and listed.
   * const errors: string[] = [];
   * const scheduler = new Scheduler(rt, {
   *   startProblems: "report",
   *   onEvent: (event) => void (event.type === "error" && errors.push(event.message)),
   * });
   * await scheduler.start();
   * assert.ok(scheduler.schedules.some((s) => s.id === "flow:good"));
   * assert.match(errors.join("\n"), /bad\.flow\.yaml cannot be used/);
   * assert.equal(scheduler.flowProblems.length, 1);
   * await scheduler.stop();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  start(): Promise<void> {
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    // Stopped before it started (its `signal` aborted, say): nothing to start.
    if (this.#halt.signal.aborted) return;
    let schedules = this.#options.schedules;
    if (schedules === undefined) {
      const options = {
        timers: this.#timers,
        onLog: (
          scheduleId: string,
          message: string,
          level: LogLevel,
          context?: ScheduleLogContext,
        ) => this.#emit({ type: "log", scheduleId, message, level, ...context }),
      };
      this.#loadOptions = options;
      const config = this.#runtime.config;
      // Its stamp before the read, so that an edit made meanwhile is seen on the first turn.
      const file = config.file;
      const stamp = file === null ? undefined : fileStamp(file);
      // Reported instead of thrown: each problem is an `error` event (see `startProblems`).
      const report = this.#options.startProblems === "report";
      // The jobs' schedules, then the flows': those are read again as their files change.
      schedules = await loadSchedules(this.#runtime, {
        ...options,
        flows: false,
        config,
        ...(report
          ? {
            onJobProblem: ({ job, message }: JobProblem) =>
              this.#emit({
                type: "error",
                scheduleId: `job:${job}`,
                message,
                error: new ConfigError(message),
              }),
          }
          : {}),
      });
      for (const schedule of schedules) {
        this.#jobSignatures.set(schedule.id, jobSignature(schedule, config));
      }
      this.#flowFiles = new FlowScheduleFiles(this.#runtime, {
        ...options,
        config,
        ...(report ? { onFlowProblem: () => {} } : {}),
      });
      const read = await this.#flowFiles.read();
      schedules = [...schedules, ...read.schedules];
      this.#reportFlowProblems(read.problems);
      for (const warning of read.warnings) this.#emit({ type: "warning", ...warning });
      this.#flowsReadAt = this.#clock.now();
      this.#config = config;
      this.#startConfig = config;
      if (file !== null && this.#options.loadConfig !== undefined) {
        // The text it was loaded from is not known here: the first turn reads it, and applies it
        // if it changed since (silently when nothing did).
        this.#configFile = {
          path: file,
          stamp,
          stable: false,
          looked: stamp,
          text: null,
          missing: false,
        };
      }
    }
    const seen = new Set<string>();
    for (const schedule of schedules) {
      if (typeof schedule.id !== "string" || schedule.id === "") {
        throw new TypeError("Cannot start scheduler: every schedule needs a non-empty id");
      }
      if (seen.has(schedule.id)) {
        throw new RangeError(`Cannot start scheduler: two schedules have the id "${schedule.id}"`);
      }
      seen.add(schedule.id);
      const timezone = schedule.timezone ?? DEFAULT_TIMEZONE;
      try {
        validateCron(schedule.cron, timezone);
      } catch (err) {
        throw new RangeError(
          `Cannot start scheduler: schedule "${schedule.id}": ${(err as Error).message}`,
        );
      }
      const jitterMs = schedule.jitterMs ?? 0;
      if (!Number.isFinite(jitterMs) || jitterMs < 0) {
        throw new RangeError(
          `Cannot start scheduler: schedule "${schedule.id}": jitterMs must be >= 0 (got ${jitterMs})`,
        );
      }
      this.#states.push(stateOf(schedule, timezone, jitterMs));
    }
    const store = await this.#runtime.store(this.#runtime.config.records);
    this.#leases = new TickLeases(store, {
      runnerId: this.runnerId,
      leaseMs: this.#options.leaseMs,
      historyMs: this.#options.historyMs,
      historyCount: this.#options.historyCount,
      clock: this.#clock,
      prefix: this.#options.prefix,
    });
    const now = this.#clock.now();
    const catchUps: [ScheduleState, number][] = [];
    for (const state of this.#states) {
      const { id, cron } = state.schedule;
      // Ticks held by other runners, maybe dead ones: watch them (see `abandoned`).
      for (const tick of await this.#leases.leased(id)) this.#watch(state, tick);
      // Ticks whose runner died with their run unfinished, their lease lapsed and gone.
      for (const { tick, marker } of await this.#leases.running(id)) {
        if (await this.#leases.state(id, tick) !== "free") continue;
        const dead: LeaseHolder = {
          runner: marker.runner,
          tick,
          takenAt: marker.at,
          runId: marker.runId,
        };
        const acquired = await this.#leases.acquire(id, tick);
        if (acquired.ok && await this.#takeOver(state, tick, acquired.lease, dead) === "alive") {
          this.#watch(state, tick, dead);
        }
      }
      // A tick at exactly `now` is a regular tick; missed ones are strictly before.
      state.next = nextTick(cron, now - 1, state.timezone);
      this.#warnOfDstGap(state, now);
      const last: LastTick = await this.#leases.baseline(id, now);
      const missed = previousTick(cron, now, state.timezone);
      if (missed === null || missed <= last.tick) continue;
      if (state.missed === "run-once") catchUps.push([state, missed]);
      else if (await this.#leases.state(id, missed) === "free") {
        // Not running elsewhere either: nobody will run it.
        this.#emit({ type: "tick.skip", scheduleId: id, tick: missed, reason: "missed" });
      }
    }
    this.#emit({
      type: "start",
      runnerId: this.runnerId,
      schedules: this.#states.map((s) => ({
        id: s.schedule.id,
        cron: s.schedule.cron,
        timezone: s.timezone,
        next: s.next,
      })),
    });
    if (this.#halt.signal.aborted) return;
    for (const [state, tick] of catchUps) this.#fire(state, tick, true);
    this.#loop = this.#run();
  }

  /** The schedules and their next ticks (empty before {@linkcode Scheduler.start}). */
  get schedules(): ScheduleInfo[] {
    return this.#states.map((s) => ({
      id: s.schedule.id,
      cron: s.schedule.cron,
      timezone: s.timezone,
      overlap: s.overlap,
      missed: s.missed,
      abandoned: s.abandoned,
      jitterMs: s.jitterMs,
      next: s.next,
      running: s.active !== null,
      ...(s.schedule.flow === undefined ? {} : { flow: s.schedule.flow }),
    }));
  }

  /**
   * The flow files under `flows:` that could not be used at its last look
   * (each keeps the schedule it had, if any; see
   * {@linkcode Scheduler.schedules}).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openRuntime } from "@flowstate/core";
   * import { Scheduler } from "@flowstate/core/scheduler";
   *
   * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
   * const scheduler = new Scheduler(rt);
   * assert.deepEqual(scheduler.flowProblems, []); // before start, and with no flow file
   * ```
   */
  get flowProblems(): FlowFileProblem[] {
    return this.#flowFiles?.problems() ?? [];
  }

  /**
   * The config whose jobs and flow schedules it runs: the runtime's, or, when
   * it watches the config file (`SchedulerOptions.loadConfig`), the file as
   * last applied.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openRuntime } from "@flowstate/core";
   * import { Scheduler } from "@flowstate/core/scheduler";
   *
   * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
   * const scheduler = new Scheduler(rt);
   * assert.equal(scheduler.config, rt.config);
   * ```
   */
  get config(): ResolvedConfig {
    return this.#config ?? this.#runtime.config;
  }

  /** How many ticks are running (or waiting for their jitter) here. */
  get running(): number {
    return this.#running.size;
  }

  /**
   * Read the config file (when the scheduler watches it: see
   * `SchedulerOptions.loadConfig`) and the flow files again now, as the
   * scheduler does by itself every 2 s for the files whose status changed:
   * what the daemon does on SIGHUP. A config that reads and checks applies
   * at once: job schedules added, removed or changed (a schedule whose cron
   * and time zone did not change keeps its next tick, its running and
   * queued tick and its lease; a changed one ticks from now on its new
   * cron), job options and policies for their next runs, the default time
   * zone, the flow files of `flows:`; a `config.reload` event says what
   * changed, and which changed settings take a restart. A config that does
   * not (YAML, a field, a job's options), or an empty file (a save caught
   * halfway: it would drop every job's settings), is an `error` event with
   * where and why, and everything goes on as it was until the file is fixed. Resolves
   * when done; never throws.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { join } from "node:path";
   * import { loadConfig, openRuntime } from "@flowstate/core";
   * import { Scheduler, type SchedulerEvent } from "@flowstate/core/scheduler";
   *
   * const dir = await Deno.makeTempDir();
   * const file = join(dir, "flowstate.yaml");
   * const yaml = (cron: string) =>
   *   `stores: { main: { plugin: memory } }\njobs:\n  retention: { schedule: "${cron}" }\n  gc: { enabled: false }\n`;
   * await Deno.writeTextFile(file, yaml("0 3 * * *"));
   * await using rt = await openRuntime({ config: file });
   * const events: SchedulerEvent[] = [];
   * const scheduler = new Scheduler(rt, {
   *   loadConfig: () => loadConfig({ config: file }),
   *   onEvent: (event) => void events.push(event),
   * });
   * await scheduler.start();
   * await Deno.writeTextFile(file, yaml("0 4 * * *"));
   * await scheduler.reload();
   * assert.equal(scheduler.schedules[0].cron, "0 4 * * *");
   * assert.ok(events.some((e) => e.type === "config.reload" && e.applied.includes("jobs")));
   * await scheduler.stop();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  async reload(): Promise<void> {
    await this.#starting?.catch(() => {});
    if (this.#flowFiles === undefined || this.#halt.signal.aborted) return;
    await this.#refresh(true);
  }

  /** Look at the config file, then the flow files, after any look already going. */
  #refresh(force: boolean): Promise<void> {
    const files = this.#flowFiles!;
    this.#refreshing = this.#refreshing.then(async () => {
      await this.#readConfigFile(force);
      await this.#readFlowFiles(files);
    });
    return this.#refreshing;
  }

  /**
   * Stop taking ticks, wait up to `graceMs` (default 30 s) for running work,
   * then cancel what is left and wait for it to record itself as cancelled.
   * Idempotent. Does not close the runtime.
   */
  stop(options: { graceMs?: number } = {}): Promise<StopResult> {
    this.#stopping ??= this.#stop(options.graceMs ?? 30_000);
    return this.#stopping;
  }

  /**
   * {@linkcode Scheduler.stop} with its default grace period: leaving an
   * `await using` block stops the scheduler (before the runtime declared
   * ahead of it closes). Idempotent, as `stop()` is.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openRuntime } from "@flowstate/core";
   * import { Scheduler } from "@flowstate/core/scheduler";
   *
   * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
   * const events: string[] = [];
   * {
   *   await using scheduler = new Scheduler(rt, {
   *     schedules: [{ id: "ping", cron: "@hourly", run: () => {} }],
   *     onEvent: (event) => void events.push(event.type),
   *   });
   *   await scheduler.start();
   * } // stopped here
   * assert.equal(events.at(-1), "stop");
   * ```
   */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  async #stop(graceMs: number): Promise<StopResult> {
    this.#unlisten?.();
    this.#halt.abort(new DOMException("The scheduler is stopping", "AbortError"));
    await this.#starting?.catch(() => {});
    await this.#loop;
    await this.#refreshing;
    await Promise.allSettled([...this.#watching.values()]);
    for (const state of this.#states) state.queued = null;
    let cancelled = 0;
    if (this.#running.size > 0) {
      this.#emit({ type: "stopping", running: this.#running.size, graceMs });
      const all = () => Promise.allSettled([...this.#running]);
      const grace = new AbortController();
      const timedOut = await Promise.race([
        all().then(() => false),
        this.#timers.sleep(graceMs, grace.signal).then(() => true, () => false),
      ]);
      grace.abort();
      if (timedOut && this.#running.size > 0) {
        cancelled = [...this.#states, ...this.#removed.values()].filter((s) => s.active !== null)
          .length;
        this.#cancel.abort(new DOMException("The scheduler stopped", "AbortError"));
      }
      // Work that was cancelled still records itself (and releases its lease).
      while (this.#running.size > 0) await all();
    }
    this.#emit({ type: "stop", cancelled });
    return { cancelled };
  }

  #emit(event: SchedulerEvent): void {
    const onEvent = this.#options.onEvent;
    // A listener's failure (a throw, or an async one's rejection) must not stop the scheduler.
    if (onEvent !== undefined) callGuarded(() => onEvent(event), () => {});
  }

  async #run(): Promise<void> {
    const halt = this.#halt.signal;
    // The first turn runs within start(), which has just read the flow files: the ticks due now
    // fire before start() resolves, so a stop() right after it does not skip them.
    let firstTurn = true;
    while (!halt.aborted) {
      let now = this.#clock.now();
      // The flow files are looked at before a flow's tick fires (it runs the file as it is, and
      // the schedule it has now), and every FLOW_FILES_CHECK_MS for schedules added meanwhile.
      if (
        !firstTurn && this.#flowFiles !== undefined &&
        (now - this.#flowsReadAt >= FLOW_FILES_CHECK_MS || this.#flowTickDue(now))
      ) {
        await this.#refresh(false);
        now = this.#clock.now();
      }
      for (const state of this.#states) {
        if (state.next === null || state.next > now) continue;
        const { cron, id } = state.schedule;
        let tick = state.next;
        const following = nextTick(cron, tick, state.timezone);
        if (following !== null && following <= now) {
          this.#emit({ type: "tick.skip", scheduleId: id, tick, reason: "late" });
          tick = previousTick(cron, now + 1, state.timezone) ?? tick;
        }
        state.next = nextTick(cron, Math.max(tick, now), state.timezone);
        this.#fire(state, tick, false);
      }
      firstTurn = false;
      let earliest = Infinity;
      for (const state of this.#states) {
        if (state.next !== null && state.next < earliest) earliest = state.next;
      }
      const wait = Math.min(
        Math.max(0, earliest - this.#clock.now()),
        this.#maxSleepMs,
        this.#flowFiles === undefined ? Infinity : FLOW_FILES_CHECK_MS,
      );
      try {
        await this.#timers.sleep(wait, halt);
      } catch {
        // Halted.
      }
    }
  }

  /** Whether a flow's tick is due at `now`. */
  #flowTickDue(now: number): boolean {
    return this.#states.some((s) =>
      s.next !== null && s.next <= now && s.schedule.id.startsWith("flow:")
    );
  }

  /**
   * Look at the config's flow files again: a schedule added to a flow (or a new flow file with
   * one) is taken from its next tick, a removed one runs no more ticks (a run in progress ends
   * as it would), a changed one ticks as it now says; each change is told as a `log` event. A
   * file that became invalid keeps the schedule it had (runs of it fail, saying why), told once
   * as an `error` event.
   */
  async #readFlowFiles(files: FlowScheduleFiles): Promise<void> {
    let read: Awaited<ReturnType<FlowScheduleFiles["read"]>>;
    try {
      read = await files.read();
    } catch (error) {
      const message = `Cannot read the flows' schedules again (they stay as they were): ${
        messageOf(error)
      }`;
      // Said once, not at every look (every 2 s), until it changes or is fixed.
      if (message !== this.#flowsProblem) this.#emit({ type: "error", message, error });
      this.#flowsProblem = message;
      return;
    } finally {
      this.#flowsReadAt = this.#clock.now();
    }
    if (this.#flowsProblem !== undefined) {
      this.#flowsProblem = undefined;
      this.#emit({
        type: "log",
        scheduleId: "flows",
        message: "the flows' schedules can be read again: the problem said above is gone",
        level: "info",
      });
    }
    this.#reportFlowProblems(read.problems);
    for (const { file, flowId } of read.recovered) {
      this.#emit({
        type: "log",
        scheduleId: flowId === "" ? "flows" : `flow:${flowId}`,
        message: `flow file ${file} can be used again`,
        level: "info",
      });
    }
    for (const warning of read.warnings) this.#emit({ type: "warning", ...warning });
    this.#merge("flow:", read.schedules, {
      removed:
        "schedule removed (its flow file no longer has one, or is no longer under flows:): no more ticks",
      changed: "flow file changed: its next runs use it as it is now",
    });
    const onFlowFiles = this.#options.onFlowFiles;
    if (onFlowFiles === undefined) return;
    try {
      await onFlowFiles(files.flows());
    } catch (error) {
      this.#emit({
        type: "error",
        message: `Cannot apply the flow files' edits: ${messageOf(error)}`,
        error,
      });
    }
  }

  /** Each flow file that cannot be used, as an `error` event. */
  #reportFlowProblems(problems: Awaited<ReturnType<FlowScheduleFiles["read"]>>["problems"]): void {
    for (const { file, error, new: isNew } of problems) {
      const why = messageOf(error).split("\n").join("; ");
      this.#emit({
        type: "error",
        message: isNew
          ? `flow file ${file} cannot be used (it schedules and triggers nothing until it can): ${why}`
          : `flow file ${file} changed but cannot be used (its schedule and change trigger, if any, stay as they were): ${why}`,
        error,
      });
    }
  }

  /**
   * The config file, when watched: read again when its status changed (or
   * `force`), applied when its text did. See {@linkcode Scheduler.reload}.
   */
  async #readConfigFile(force: boolean): Promise<void> {
    const watched = this.#configFile;
    const load = this.#options.loadConfig;
    if (watched === undefined || load === undefined) return;
    const { path } = watched;
    const stamp = fileStamp(path);
    const steady = stamp === watched.looked;
    watched.looked = stamp;
    if (!force && watched.stable && stamp !== undefined && stamp === watched.stamp) return;
    // Changed since the last look: maybe a save in progress. The next look applies it if it
    // stayed as it is now.
    if (!force && !steady) return;
    const text = await Deno.readTextFile(path).catch(() => null);
    const after = fileStamp(path);
    // Changed while it was read: the next look reads it again.
    if (!force && after !== stamp) {
      watched.looked = after;
      return;
    }
    watched.stamp = stamp;
    watched.stable = stamp !== undefined && stamp === after && isStable(path);
    // Touched, not changed; or still as it was when it could not be used (said once).
    if (!force && (text === null ? watched.missing : text === watched.text)) return;
    watched.text = text;
    watched.missing = text === null;
    const shown = displayPath(path, Deno.cwd());
    const refuse = (error: unknown) => {
      this.#configBroken = true;
      this.#emit({
        type: "error",
        message: `Cannot apply the edit of ${shown}: ${
          messageOf(error).split("\n").join("; ")
        }. Nothing of it applies, and the schedules go on as they were: fix the file and save it to apply it`,
        error,
      });
    };
    let config: ResolvedConfig;
    let jobs: Schedule[];
    try {
      if (text !== null && isBlank(text)) throw new Error(EMPTY_CONFIG);
      config = await load();
      jobs = await loadSchedules(this.#runtime, { ...this.#loadOptions, flows: false, config });
      await flowFiles(config); // every `flows:` entry there to read
    } catch (error) {
      refuse(error);
      return;
    }
    const before = this.#config!;
    const running = this.#startConfig ?? before;
    const differ = (a: ResolvedConfig, b: ResolvedConfig, key: keyof ResolvedConfig) =>
      JSON.stringify(a[key]) !== JSON.stringify(b[key]);
    const changed = (key: keyof ResolvedConfig) => differ(before, config, key);
    const applied = LIVE_SETTINGS.filter(changed);
    // A restart-only setting is compared with the value this process runs with: an edit that
    // changes it is said; one that brings it back to that value says no restart is needed.
    const restart: string[] = RESTART_SETTINGS.filter((key) =>
      changed(key) && differ(running, config, key)
    );
    const restartNotNeeded: string[] = RESTART_SETTINGS.filter((key) =>
      changed(key) && !differ(running, config, key)
    );
    // Schedules run their flow files by path; finding a flow by its id (a queued run, a
    // sub-flow) goes through the runtime, which keeps the `flows:` it started with.
    if (changed("flows")) {
      if (differ(running, config, "flows")) {
        restart.push("flows (for finding a flow by id: queued runs, sub-flows)");
      } else restartNotNeeded.push("flows (for finding a flow by id)");
    }
    const recovered = this.#configBroken;
    this.#configBroken = false;
    // A job whose settings did not change keeps its schedule: the same object, so its state stands.
    const current = new Map(this.#states.map((state) => [state.schedule.id, state.schedule]));
    const signatures = new Map<string, string>();
    const fresh = jobs.map((schedule) => {
      const signature = jobSignature(schedule, config);
      signatures.set(schedule.id, signature);
      const kept = current.get(schedule.id);
      return kept !== undefined && this.#jobSignatures.get(schedule.id) === signature
        ? kept
        : schedule;
    });
    this.#jobSignatures = signatures;
    this.#config = config;
    this.#flowFiles?.useConfig(config);
    if (
      force || recovered || applied.length > 0 || restart.length > 0 ||
      restartNotNeeded.length > 0
    ) {
      this.#emit({
        type: "config.reload",
        file: shown,
        applied,
        restart,
        ...(restartNotNeeded.length > 0 ? { restartNotNeeded } : {}),
        ...(recovered ? { recovered } : {}),
      });
    }
    this.#merge("job:", fresh, {
      removed: "schedule removed (the config no longer schedules this job): no more ticks",
      changed: "job settings changed in the config: its next runs use them",
    });
  }

  /**
   * Take `fresh` as the schedules whose id starts with `kind`: one added is
   * taken from its next tick, one removed runs no more ticks (a run in
   * progress ends as it would), one changed ticks as it now says (the same
   * cron and zone: its next tick, its running and queued ticks stay); each
   * change is told as a `log` event. A schedule that is the same object as
   * before did not change.
   */
  #merge(kind: "job:" | "flow:", schedules: readonly Schedule[], says: {
    removed: string;
    changed: string;
  }): void {
    const now = this.#clock.now();
    const fresh = new Map(schedules.map((s) => [s.id, s]));
    const log = (scheduleId: string, message: string) =>
      this.#emit({ type: "log", scheduleId, message, level: "info" });
    const kept: ScheduleState[] = [];
    for (const state of this.#states) {
      const id = state.schedule.id;
      if (!id.startsWith(kind)) {
        kept.push(state);
        continue;
      }
      const schedule = fresh.get(id);
      fresh.delete(id);
      if (schedule === undefined) {
        log(id, says.removed);
        state.queued = null;
        if (state.active !== null) this.#removed.set(id, state);
        continue;
      }
      kept.push(state);
      if (schedule === state.schedule) continue;
      const was = `${state.schedule.cron} (${state.timezone})`;
      const next = stateOf(schedule, schedule.timezone ?? DEFAULT_TIMEZONE, schedule.jitterMs ?? 0);
      const timing = `${schedule.cron} (${next.timezone})`;
      Object.assign(state, {
        ...next,
        next: state.next,
        active: state.active,
        queued: state.queued,
      });
      if (timing !== was) {
        state.next = nextTick(schedule.cron, now - 1, state.timezone);
        log(id, `schedule changed from ${was} to ${timing}: next ${nextText(state.next)}`);
        this.#warnOfDstGap(state, now);
      } else log(id, says.changed);
    }
    for (const schedule of fresh.values()) {
      const state = stateOf(
        schedule,
        schedule.timezone ?? DEFAULT_TIMEZONE,
        schedule.jitterMs ?? 0,
      );
      state.next = nextTick(schedule.cron, now - 1, state.timezone);
      // Added back while the tick it ran before its removal still runs: that tick is its own.
      const removed = this.#removed.get(schedule.id);
      this.#removed.delete(schedule.id);
      const stillRuns = removed !== undefined && removed.active !== null;
      kept.push(stillRuns ? Object.assign(removed, { ...state, active: removed.active }) : state);
      log(
        schedule.id,
        `schedule added: ${schedule.cron} (${state.timezone}), next ${nextText(state.next)}${
          stillRuns ? " (its tick from before its removal still runs: overlap sees it)" : ""
        }`,
      );
      this.#warnOfDstGap(state, now);
      // Seen for the first time: a baseline, so that a restart counts the ticks missed from now.
      this.#leases!.baseline(schedule.id, now).catch((error) =>
        this.#emit({
          type: "error",
          scheduleId: schedule.id,
          message: `Cannot record when ${schedule.id} was added: ${messageOf(error)}`,
          error,
        })
      );
    }
    this.#states = kept;
  }

  /** A `warning` when a spring-forward gap leaves `state`'s schedule no tick on a day within a year. */
  #warnOfDstGap(state: ScheduleState, now: number): void {
    const problem = dstSkipProblem(state.schedule.cron, now, state.timezone);
    if (problem !== undefined) {
      this.#emit({ type: "warning", scheduleId: state.schedule.id, message: problem });
    }
  }

  /**
   * Whether `error` (a tick's) comes of its runtime closed under it: then no
   * later tick can run, and the scheduler stops rather than fail each one.
   */
  async #runtimeClosed(error: unknown): Promise<boolean> {
    if (!(error instanceof StoreClosedError) || this.#halt.signal.aborted) return false;
    try {
      await this.#runtime.records();
      return false; // a store of the tick's own was closed, not the runtime
    } catch (err) {
      return err instanceof StoreClosedError;
    }
  }

  /** A tick is due: run it, queue it or skip it per the overlap policy. */
  #fire(state: ScheduleState, tick: number, catchUp: boolean): void {
    const scheduleId = state.schedule.id;
    if (state.active !== null) {
      if (state.overlap === "queue" && state.queued === null) {
        state.queued = { tick, catchUp };
        this.#emit({ type: "tick.queue", scheduleId, tick });
      } else {
        this.#emit({ type: "tick.skip", scheduleId, tick, reason: "overlap" });
      }
      return;
    }
    const running = this.#runTick(state, tick, catchUp).catch(async (error) => {
      const closed = await this.#runtimeClosed(error);
      this.#emit({
        type: "error",
        scheduleId,
        tick,
        message: `Cannot run ${scheduleId} at ${tickKey(tick)}: ${messageOf(error)}${
          closed ? "; the scheduler stops (stop a scheduler before closing its runtime)" : ""
        }`,
        error,
      });
      if (closed) void this.stop().catch(() => {});
    }).finally(() => {
      this.#running.delete(running);
      state.active = null;
      if (this.#removed.get(scheduleId) === state) this.#removed.delete(scheduleId);
      const queued = state.queued;
      state.queued = null;
      if (queued !== null && !this.#halt.signal.aborted) {
        this.#fire(state, queued.tick, queued.catchUp);
      }
    });
    state.active = running;
    this.#running.add(running);
  }

  async #runTick(state: ScheduleState, tick: number, catchUp: boolean): Promise<void> {
    const scheduleId = state.schedule.id;
    const halt = this.#halt.signal;
    if (state.jitterMs > 0) {
      const r = this.#random();
      const delay = Number.isFinite(r)
        ? Math.floor(Math.min(Math.max(r, 0), 1) * state.jitterMs)
        : 0;
      try {
        await this.#timers.sleep(delay, halt);
      } catch {
        // Halted while waiting.
      }
    }
    if (halt.aborted) {
      this.#emit({ type: "tick.skip", scheduleId, tick, reason: "stopping" });
      return;
    }
    const acquiring = this.#leases!.acquire(scheduleId, tick);
    const answered = await this.#bounded(acquiring, "take the lease", scheduleId, tick);
    if (answered === undefined) {
      // Taken after all, once nothing waits for it: given back.
      acquiring.then((a) => a.ok ? a.lease.release() : undefined).catch(() => {});
      return;
    }
    const acquired = answered.value;
    if (!acquired.ok) {
      this.#emit({
        type: "tick.skip",
        scheduleId,
        tick,
        reason: acquired.reason,
        ...(acquired.reason === "leased" ? { holder: acquired.holder.runner } : {}),
      });
      if (acquired.reason === "leased") this.#watch(state, tick);
      return;
    }
    await this.#work(state, tick, catchUp, acquired.lease);
  }

  /** Run a tick's work under its lease, renewing it, and record the outcome. */
  async #work(state: ScheduleState, tick: number, catchUp: boolean, lease: TickLease) {
    const scheduleId = state.schedule.id;
    const lost = new AbortController();
    const signal = AbortSignal.any([this.#cancel.signal, lost.signal]);
    const renewing = new AbortController();
    const keeping = this.#keepLease(lease, renewing.signal, () => {
      lost.abort(new DOMException("The tick's lease was lost to another runner", "AbortError"));
    });
    const startedAt = this.#clock.now();
    this.#emit({ type: "tick.start", scheduleId, tick, catchUp, at: startedAt });
    let status: RunStatus = "succeeded";
    let runId: string | null = null;
    let error: string | null = null;
    let recording: Promise<unknown> = Promise.resolve();
    const started = (id: string) => {
      recording = recording.then(() => lease.recordRun(id)).catch((err) => {
        this.#emit({
          type: "error",
          scheduleId,
          tick,
          message: `Cannot write run ${id} into the lease of ${scheduleId} at ${tickKey(tick)}: ${
            messageOf(err)
          }`,
          error: err,
        });
      });
    };
    try {
      const result = await state.schedule.run({
        scheduleId,
        tick,
        signal,
        runnerId: this.runnerId,
        started,
      });
      if (result) {
        status = result.status;
        runId = result.id ?? null;
        error = result.error?.message ?? null;
      }
    } catch (err) {
      status = signal.aborted ? "cancelled" : "failed";
      error = messageOf(err);
    } finally {
      renewing.abort();
      await this.#bounded(keeping, "renew the lease", scheduleId, tick);
      await this.#bounded(recording, "record the run in the lease", scheduleId, tick);
    }
    if (status === "running") status = signal.aborted ? "cancelled" : "failed";
    const durationMs = this.#clock.now() - startedAt;
    if (status === "cancelled") {
      await this.#bounded(lease.release(), "give back the lease", scheduleId, tick);
    } else {
      await this.#bounded(lease.complete({ status, runId }), "record as done", scheduleId, tick);
    }
    this.#emit({
      type: "tick.end",
      scheduleId,
      tick,
      catchUp,
      status,
      runId,
      durationMs,
      error,
    });
  }

  /**
   * Watch a tick that another runner holds (once per tick): if its lease
   * lapses with the tick not done, take it over (see `abandoned`).
   */
  #watch(state: ScheduleState, tick: number, dead?: LeaseHolder): void {
    const key = `${state.schedule.id}\u0000${tick}`;
    if (this.#watching.has(key) || this.#halt.signal.aborted) return;
    const watching = this.#watchLease(state, tick, dead).catch((error) => {
      this.#emit({
        type: "error",
        scheduleId: state.schedule.id,
        tick,
        message: `Cannot watch ${state.schedule.id} at ${tickKey(tick)} for a dead runner: ${
          messageOf(error)
        }`,
        error,
      });
    }).finally(() => this.#watching.delete(key));
    this.#watching.set(key, watching);
  }

  async #watchLease(state: ScheduleState, tick: number, dead?: LeaseHolder): Promise<void> {
    const leases = this.#leases!;
    const scheduleId = state.schedule.id;
    const halt = this.#halt.signal;
    const leaseKey = leases.leaseKey(scheduleId, tick);
    // A holder known dead already counts as lapsed.
    let last: { holder: LeaseHolder; expiresAt: number } | null = dead === undefined
      ? null
      : { holder: dead, expiresAt: -Infinity };
    while (!halt.aborted) {
      const seen = await Lease.read<LeaseHolder>(leases.store, leaseKey);
      const now = this.#clock.now();
      if (seen !== null) {
        // A live holder renews it before then; a dead one lets it lapse.
        const expiresAt = seen.expiresAt ?? now + leases.leaseMs;
        last = { holder: seen.value, expiresAt };
        const wait = Math.min(Math.max(1, expiresAt - now), this.#maxSleepMs);
        try {
          await this.#timers.sleep(wait, halt);
        } catch {
          return; // Halted.
        }
        continue;
      }
      // Gone before it could lapse: completed or released (cancelled) by its holder.
      if (last === null || now < last.expiresAt) return;
      const acquired = await leases.acquire(scheduleId, tick);
      if (!acquired.ok) {
        if (acquired.reason === "done") return;
        continue; // Another runner took it over: watch that one.
      }
      if (await this.#takeOver(state, tick, acquired.lease, last.holder) === "handled") return;
      // Its run still beats though its lease lapsed: look again later (`last`
      // stays, so a lease still free then is taken over again).
      try {
        await this.#timers.sleep(MIN_ABANDONED_MS, halt);
      } catch {
        return;
      }
    }
  }

  /**
   * This runner holds the lease of a tick whose previous holder let it lapse:
   * record that holder's run abandoned (unless it still beats: "alive", the
   * lease is given back) and skip or re-run the tick per its policy.
   */
  async #takeOver(
    state: ScheduleState,
    tick: number,
    lease: TickLease,
    dead: LeaseHolder,
  ): Promise<"alive" | "handled"> {
    const scheduleId = state.schedule.id;
    const leases = this.#leases!;
    // The lease may have lapsed before the run's id reached it; the marker has it.
    const marker = await leases.store.get<RunningMarker>(leases.runningKey(scheduleId, tick));
    const runId = dead.runId ?? marker?.value.runId ?? null;
    const records = await this.#runtime.records();
    let run = runId === null ? null : await records.getRun(runId);
    if (run !== null && run.status === "running") {
      const abandoned = await records.abandonRun(run.id, {
        afterMs: MIN_ABANDONED_MS,
        now: this.#clock.now(),
      });
      run = abandoned ?? await records.getRun(run.id);
      if (run !== null && run.status === "running") {
        await lease.release();
        return "alive";
      }
    }
    const report = (action: "skip" | "rerun" | "ended") =>
      this.#emit({ type: "tick.abandoned", scheduleId, tick, runner: dead.runner, runId, action });
    if (run !== null && !(run.status === "failed" && run.error?.message.startsWith("abandoned"))) {
      // Its run ended before its runner could record the tick.
      await lease.complete({ status: run.status, runId });
      report("ended");
      return "handled";
    }
    if (state.abandoned === "rerun" && !this.#halt.signal.aborted) {
      report("rerun");
      const running = this.#work(state, tick, true, lease).catch((error) => {
        this.#emit({
          type: "error",
          scheduleId,
          tick,
          message: `Cannot run ${scheduleId} at ${tickKey(tick)} again: ${messageOf(error)}`,
          error,
        });
      }).finally(() => this.#running.delete(running));
      this.#running.add(running);
      return "handled";
    }
    await lease.complete({ status: "failed", runId });
    report("skip");
    return "handled";
  }

  /**
   * A store call of a tick's bookkeeping (its lease, its done marker):
   * its value, or `undefined` when the store has not answered within the
   * lease's lifetime (the lease lapsed meanwhile: waiting longer holds up the
   * schedule for nothing), or, for a call made before the grace period's
   * cancel, once that cancel comes: then an `error` event says so, and the
   * call goes on unwatched. A store that never answers (a connection lost
   * for good) then neither blocks the schedule nor the stop. A call that
   * fails in time throws.
   */
  async #bounded<T>(
    call: Promise<T>,
    what: string,
    scheduleId: string,
    tick: number,
  ): Promise<{ value: T } | undefined> {
    const leaseMs = this.#leases!.leaseMs;
    const cancel = this.#cancel.signal;
    const done = new AbortController();
    const gaveUp = new Promise<"cancelled" | "expired">((resolve) => {
      if (!cancel.aborted) {
        cancel.addEventListener("abort", () => resolve("cancelled"), {
          once: true,
          signal: done.signal,
        });
      }
      this.#timers.sleep(leaseMs, done.signal).then(() => resolve("expired"), () => {});
    });
    try {
      const outcome = await Promise.race([call.then((value) => ({ value })), gaveUp]);
      if (typeof outcome === "object") return outcome;
      call.catch(() => {});
      this.#emit({
        type: "error",
        scheduleId,
        tick,
        message: `Cannot ${what} of ${scheduleId} at ${tickKey(tick)}: the store did not answer ${
          outcome === "cancelled"
            ? "before the grace period ended"
            : `within the lease's lifetime (${leaseMs} ms)`
        }; given up (a lease left behind lapses by itself)`,
        error: null,
      });
      return undefined;
    } finally {
      done.abort();
    }
  }

  async #keepLease(lease: TickLease, stop: AbortSignal, onLost: () => void): Promise<void> {
    const every = Math.max(1, Math.floor(this.#leases!.leaseMs / 3));
    while (!stop.aborted) {
      try {
        await this.#timers.sleep(every, stop);
      } catch {
        return;
      }
      try {
        if (!(await lease.renew())) {
          this.#emit({
            type: "error",
            scheduleId: lease.scheduleId,
            tick: lease.tick,
            message: `Lost the lease of ${lease.scheduleId} at ${
              tickKey(lease.tick)
            } (it lapsed and another runner took the tick); cancelling its work here`,
            error: null,
          });
          onLost();
          return;
        }
      } catch (err) {
        this.#emit({
          type: "error",
          scheduleId: lease.scheduleId,
          tick: lease.tick,
          message: `Cannot renew the lease of ${lease.scheduleId} at ${tickKey(lease.tick)}: ${
            messageOf(err)
          } (will retry)`,
          error: err,
        });
      }
    }
  }
}
