/**
 * The runtime: a loaded configuration plus its named stores, opened on first
 * use and closed together.
 *
 * @module
 */
import { withWritten, writtenOf } from "./_written.ts";
import { loadActorStorage, setProcessActor } from "./store/actor.ts";
import { dirname, isAbsolute, relative, resolve } from "./_path.ts";
import {
  CONFIG_FILE_NAME,
  type ConfigObject,
  formerHomeOf,
  loadConfig,
  type LoadConfigOptions,
  type ResolvedConfig,
} from "./config.ts";
import {
  ConfigError,
  NotFoundError,
  type Problem,
  type ProblemPath,
  StoreClosedError,
  StoreOpenError,
  UnknownStoreError,
} from "./errors.ts";
import { type CheckedStoreSpec, openStore } from "./plugin.ts";
import type { Clock, Store } from "./store/types.ts";
import type { IndexBuildEvent } from "./store/driver.ts";
import { assertKnownFields, didYouMean, fieldNames } from "./_suggest.ts";
import type { FlowSource } from "./flow/load.ts";
import type { NodeType } from "./flow/node.ts";
import { type ProgramNodeTypes, programNodeTypes } from "./flow/program_nodes.ts";
import type { SignalOutcome } from "./records/_signals.ts";
import { abandonedRun, DEFAULT_ABANDONED_MS } from "./records/heartbeat.ts";
import { useOwnerLockDir } from "./records/owner.ts";
import {
  type FlowHost,
  previewResumeFlow,
  type PreviewResumeOptions,
  resumeFlow,
  type ResumeRunOptions,
  runFlow,
  type RunFlowOptions,
} from "./run_flow.ts";
// resume.ts is loaded by resumeRun and previewResume only (not on a cold run's path).
import type { ResumePreview } from "./resume.ts";
// enqueue.ts is loaded by the first enqueue (a cold `flowstate run` enqueues nothing).
import type { EnqueueOptions, EnqueueResult } from "./queue/enqueue.ts";
let enqueueImport: Promise<typeof import("./queue/enqueue.ts")> | undefined;
import { findFlowFile, rethrowWithFlowIdHint } from "./flow_files.ts";
import { SandboxPool } from "./flow/sandbox.ts";
import { FlowCache } from "./flow_cache.ts";
import type { RunRecord, ScheduledTick } from "./records/types.ts";
import { Records, recordsWithArchive, tellEndsFound } from "./records/records.ts";
import type {
  FailureNotifier,
  FailureNotifierHost,
  OnFailureFlow,
  RunSource,
} from "./on_failure.ts";
import { INTERRUPT_TIMEOUT_MS } from "./records/recorder.ts";
import { assertRunId, isRunId, RUN_ID_HINT } from "./records/run_id.ts";
import { realTimers, systemClock, type Timers } from "./clock.ts";
import { type ScopeName, SCOPES, type StateChange, type StateChangeSink } from "./state/scopes.ts";
import { notifyingStore } from "./wrappers/_notify.ts";
import { warnGuarded, type Warning, type WarningHandler } from "./log.ts";
import {
  attachEventBus,
  EventBus,
  type EventsOptions,
  type RuntimeEvent,
} from "./runtime_events.ts";

/**
 * Options for {@linkcode openRuntime}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, type RuntimeOptions } from "@flowstate/core";
 *
 * const options: RuntimeOptions = {
 *   config: { stores: { main: { plugin: "memory" } } }, // or a path to flowstate.yaml
 *   actor: "billing-service",
 *   createStores: true,
 * };
 * await using rt = await openRuntime(options);
 * assert.deepEqual(rt.storeNames, ["main"]);
 * ```
 */
export interface RuntimeOptions {
  /**
   * Who this process writes as, in change feeds, outside of runs and jobs
   * (`FLOWSTATE_ACTOR` wins; default `<user>@<hostname>`).
   */
  actor?: string;
  /**
   * A path to a YAML config file (relative to `cwd`) or a config object.
   * Default: `flowstate.yaml` in `cwd` if it exists, else one `sqlite` store
   * named `default` at `<home>/state.db`.
   */
  config?: string | ConfigObject;
  /** The working directory (default: `Deno.cwd()`). */
  cwd?: string;
  /**
   * Flowstate's home directory (default: the config's `home`,
   * `$FLOWSTATE_HOME`, `.flowstate` beside the config file, else in `cwd`).
   */
  home?: string;
  /** The clock every store uses for expiry (default: the system clock). */
  clock?: Clock;
  /** Environment lookup for `${env.NAME}` and `FLOWSTATE_HOME` (default: `Deno.env`). */
  env?: Readonly<Record<string, string | undefined>>;
  /**
   * Whether opening a store that does not exist yet creates it (default
   * `true`). With `false` (what the read-only CLI commands use) nothing is
   * created, not even the home directory, and {@linkcode Runtime.store}
   * rejects with a `StoreMissingError` for such a store.
   */
  createStores?: boolean;
  /**
   * Receives warnings from the stores (see {@linkcode Warning}): a large
   * jsonfile store, a directory flush that failed after a commit… Default:
   * none, and warnings are dropped: the library never prints (the CLI passes
   * a handler that prints them on stderr).
   */
  onWarning?: WarningHandler;
  /**
   * Told how far the build of each declared index missing from a store has
   * got while the runtime opens that store (see `onIndexBuild` of
   * `openStore`). Default: none (the `INDEX_BUILD` warnings still come).
   */
  onIndexBuild?: (event: IndexBuildEvent & { store: string }) => void;
  /**
   * Node types this program defines, by name: a flow run by this runtime
   * (a flow file or a definition, its sub-flows, a run it enqueues and a
   * worker of this runtime claims) uses one as `type: acme.greet`, as it uses
   * a built-in. They run in-process with this program's permissions, like
   * the config's `nodes.trusted` modules: a node of such a type with a
   * `permissions:` is a validation error (there is no sandbox to give them
   * to), and a sandboxed node's sub-flow may not hold one. Their options are
   * checked against their `optionsSchema` before the run (positions in a
   * flow file), and their output must be JSON, as a module node's.
   *
   * A name must not be a built-in's (`log`…) nor look like a module path or
   * specifier (`./x.ts`, `jsr:…`), else `openRuntime` throws a `TypeError`;
   * it comes before a name the project's import map has. Only this
   * runtime knows them: the CLI (`flowstate validate`, `run`, `daemon`,
   * `worker`) reports `unknown node type` for them. A flow's version is the
   * hash of its definition: changing a program node's code makes no new
   * version, as editing a node module does not.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { defineNode, openRuntime } from "@flowstate/core";
   * import { z } from "zod";
   *
   * const greet = defineNode({
   *   optionsSchema: z.object({ name: z.string() }),
   *   async run(ctx, { name }) {
   *     const times = await ctx.flow.increment(["greeted", name], 1);
   *     return `hello ${name} (${times})`;
   *   },
   * });
   * const dir = await Deno.makeTempDir();
   * await Deno.writeTextFile(
   *   `${dir}/hello.flow.yaml`,
   *   "id: hello\nnodes:\n  - { id: say, type: acme.greet, with: { name: Ada } }\n",
   * );
   * {
   *   await using rt = await openRuntime({
   *     cwd: dir,
   *     config: { stores: { main: { plugin: "memory" } } },
   *     nodeTypes: { "acme.greet": greet },
   *   });
   *   await rt.runFlow("hello.flow.yaml");
   *   const run = await rt.runFlow("hello.flow.yaml");
   *   assert.equal(run.nodes.say.output, "hello Ada (2)");
   * }
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  nodeTypes?: Readonly<Record<string, NodeType>>;
}

/**
 * The compile-time check of a config object `C`: each store under `stores`
 * whose `plugin` is a built-in name takes exactly that plugin's options (see
 * {@linkcode CheckedStoreSpec}); the rest is checked when the config loads.
 *
 * @example
 * ```ts
 * import type { CheckedConfig } from "@flowstate/core";
 * type Ok = CheckedConfig<{ stores: { main: { plugin: "memory" } } }>;
 * const ok: Ok = { stores: { main: { plugin: "memory" } } };
 * ```
 */
export type CheckedConfig<C> = C extends { stores: infer T }
  ? { stores: { [K in keyof T]: CheckedStoreSpec<T[K]> } }
  : unknown;

/**
 * A loaded configuration and its stores.
 *
 * Stores open lazily: {@linkcode Runtime.store} opens a store the first time it
 * is asked for, so a configured store that is never used (a postgres server,
 * say) is never connected to. {@linkcode Runtime.close} closes every store that
 * was opened, even if closing one of them fails.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, type Runtime } from "@flowstate/core";
 *
 * await using rt: Runtime = await openRuntime({
 *   config: { stores: { main: { plugin: "memory" } } },
 * });
 * // the stores of the config, opened on first use
 * const main = await rt.store("main");
 * await main.set(["flow", "hello", "greeting"], "hi");
 * // flows, recorded in the records store
 * const run = await rt.runFlow({
 *   id: "hello",
 *   nodes: [{ id: "read", type: "state.get", with: { scope: "flow", key: "greeting" } }],
 *   outputs: { greeting: "${{ nodes.read.output }}" },
 * });
 * assert.equal(run.outputs?.greeting, "hi");
 * const records = await rt.records();
 * assert.equal((await records.getRun(run.id))?.status, "succeeded");
 * ```
 */
export interface Runtime extends AsyncDisposable {
  /** The resolved configuration. */
  readonly config: ResolvedConfig;
  /** Flowstate's home directory (absolute). */
  readonly home: string;
  /** The clock the stores use. */
  readonly clock: Clock;
  /** The configured store names, in config order. */
  readonly storeNames: readonly string[];
  /**
   * The store named `name` (default: the store the `global` scope maps to),
   * opened on first use. Writes committed through it (`set`, `delete`, an
   * atomic commit, `clear`) are told to {@linkcode Runtime.events} as
   * `state.changed` while someone listens. Rejects with an {@linkcode UnknownStoreError}
   * (`store`, `known`: the configured names) when there is no such store, with a
   * {@linkcode ConfigError} (pointing at
   * the store in the config file) when its options are invalid, with a
   * `StoreMissingError` when it does not exist yet and the runtime
   * was opened with `createStores: false`, and with a
   * {@linkcode StoreClosedError} after {@linkcode Runtime.close}.
   */
  store(name?: string): Promise<Store>;
  /** The store a scope maps to (`scopes:` in the config), opened on first use. */
  storeFor(scope: ScopeName): Promise<Store>;
  /** Whether the store named `name` has been opened (or is opening). */
  isOpen(name: string): boolean;
  /**
   * Run a flow (a YAML file path relative to `cwd`, or a definition object)
   * and return its record. An invalid flow or input throws a
   * `FlowValidationError` before anything is written; a run that fails is a
   * record with `status: "failed"`, not an exception.
   *
   * @example
   * ```ts
   * import { openRuntime } from "@flowstate/core";
   * import assert from "node:assert/strict";
   * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
   * const run = await rt.runFlow({
   *   id: "hello",
   *   nodes: [{ id: "count", type: "state.increment", with: { key: "runs" } }],
   *   outputs: { runs: "${{ nodes.count.output }}" },
   * });
   * assert.equal(run.status, "succeeded");
   * assert.equal(run.outputs?.runs, 1);
   * ```
   */
  runFlow(flow: FlowSource, options?: RunFlowOptions): Promise<RunRecord>;
  /**
   * Resume run `runId` (one that failed, was cancelled, timed out or was
   * abandoned): start a new run of its flow with its inputs, whose record
   * says `resumeOf: runId`, in which the nodes that succeeded are not run
   * again: each keeps its recorded output, its outcome and `node.end` marked
   * `reused: runId`. A node runs again when its output was not recorded
   * faithfully (masked for a secret, dropped, a mock's), its definition
   * changed since, it has `when: on_failure` or `always`, a node it needs
   * runs again, or it is `from` (then every node that needs it runs again
   * too). The flow is found by the run's flow id among the config's `flows:`
   * (or by the file a queued run recorded), else given as `flow`. Returns the
   * new run's record, as `runFlow`.
   *
   * Refused, nothing written: an unknown run with a `NotFoundError` (`kind:
   * "run"`; an unknown flow `kind: "flow"`), a run still queued or running, a
   * job's run, a run with mocks, a succeeded run without `from`, a `from` naming
   * no node, a `flow` of another id, with a `ResumeRefusedError` (its `reason`).
   *
   * @example
   * ```ts
   * import { openRuntime } from "@flowstate/core";
   * import assert from "node:assert/strict";
   * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
   * const flow = (fail: boolean) => ({
   *   id: "pay",
   *   nodes: [
   *     { id: "charge", type: "state.increment", with: { key: "charges" } },
   *     { id: "mail", type: fail ? "fail" : "log", needs: ["charge"], with: { message: "sent" } },
   *   ],
   * });
   * const failed = await rt.runFlow(flow(true));
   * assert.equal(failed.status, "failed");
   * const resumed = await rt.resumeRun(failed.id, { flow: flow(false) });
   * assert.equal(resumed.status, "succeeded");
   * assert.equal(resumed.nodes.charge.reused, failed.id); // charged once only
   * assert.equal(resumed.nodes.charge.output, 1);
   * ```
   */
  resumeRun(runId: string, options?: ResumeRunOptions): Promise<RunRecord>;
  /**
   * What `resumeRun(runId, options)` would do, without running or writing
   * anything: each node of the flow now, reused (taken as recorded) or run
   * again, and why (see {@linkcode ResumeDecision}). Refused exactly as
   * `resumeRun` would refuse (the same errors), including a run already
   * resumed by another run unless `again`.
   *
   * @example
   * ```ts
   * import { openRuntime } from "@flowstate/core";
   * import assert from "node:assert/strict";
   * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
   * const flow = (fail: boolean) => ({
   *   id: "pay",
   *   nodes: [
   *     { id: "charge", type: "state.increment", with: { key: "charges" } },
   *     { id: "mail", type: fail ? "fail" : "log", needs: ["charge"], with: { message: "sent" } },
   *   ],
   * });
   * const failed = await rt.runFlow(flow(true));
   * const preview = await rt.previewResume(failed.id, { flow: flow(false) });
   * assert.deepEqual(preview.nodes.map((n) => n.reused), [true, false]);
   * assert.equal(preview.nodes[1].message, `failed in run ${failed.id}`);
   * ```
   */
  previewResume(runId: string, options?: PreviewResumeOptions): Promise<ResumePreview>;
  /**
   * Put a run of `flow` in the queue and return its id at once: the run is
   * recorded `queued` and a worker (`flowstate worker`, `flowstate daemon`,
   * or {@linkcode startWorker}) runs it when it is due. `flow` is a flow id
   * found among the config's `flows:` files, or a path to a flow file
   * (relative to `cwd`). The flow and `input` are checked now: an invalid one
   * throws and nothing is written: a flow id no file has is a
   * `NotFoundError` (`kind: "flow"`), an invalid flow or input a
   * `FlowValidationError`, a bad option a `TypeError` or `RangeError`. With
   * `key`, a run enqueued with the same key that is still queued or running
   * is returned instead (`existing: true`).
   *
   * @example
   * ```ts
   * import { openRuntime } from "@flowstate/core";
   * import assert from "node:assert/strict";
   * const dir = await Deno.makeTempDir();
   * await Deno.writeTextFile(`${dir}/hello.flow.yaml`, "id: hello\nnodes:\n  - id: a\n    type: log\n    with: { message: hi }\n");
   * await using rt = await openRuntime({ cwd: dir, config: { stores: { main: { plugin: "memory" } } } });
   * const { runId, existing } = await rt.enqueue("./hello.flow.yaml", { delay: "10m", key: "greet" });
   * assert.equal(existing, false);
   * assert.equal((await (await rt.records()).getRun(runId))?.status, "queued");
   * assert.deepEqual(await rt.enqueue("./hello.flow.yaml", { key: "greet" }), { runId, existing: true });
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  enqueue(flow: string, options?: EnqueueOptions): Promise<EnqueueResult>;
  /**
   * Send signal `name` with `data` to run `runId`, for its `wait` node (see
   * the `wait` node type): from any process sharing the records store. A
   * node waiting for it takes it within a second; sent before the node
   * waits, it is kept for the run until then (`kind: "stored"` either way).
   * A run that ended is refused (`"ended"`, nothing written), as is an
   * unknown one (`"unknown"`). A run whose process is gone (no heartbeat for
   * a minute: killed while it waited) is recorded abandoned, as
   * `flowstate runs cancel` does, and answered `"ended"`: nothing is kept. A bad name, data that is not JSON or takes
   * more than 64 KiB as JSON, is a `TypeError` saying so.
   *
   * @example
   * ```ts
   * import { openRuntime } from "@flowstate/core";
   * import assert from "node:assert/strict";
   * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
   * const flow = { id: "deploy", nodes: [{ id: "approve", type: "wait", with: { signal: "approve" } }] };
   * let sent: Promise<unknown> | undefined;
   * const run = await rt.runFlow(flow, {
   *   onEvent: (event, { id }) => {
   *     if (event.type === "node.log") sent = rt.signalRun(id, "approve", { by: "ada" });
   *   },
   * });
   * assert.equal(run.status, "succeeded");
   * assert.deepEqual(run.nodes.approve.output, { by: "ada" });
   * assert.equal((await rt.signalRun(run.id, "approve")).kind, "ended");
   * await sent;
   * ```
   */
  signalRun(runId: string, name: string, data?: unknown): Promise<SignalOutcome>;
  /** The run records, flow versions and metrics (in the `records` store). */
  records(): Promise<Records>;
  /**
   * Every run started through this runtime from now on, whoever started it
   * (`runFlow`, `runJob`, the scheduler, a `flow` node's sub-runs): its start,
   * its node events, its end, and a job's progress, in one ordered stream
   * (see {@linkcode RuntimeEvent}), with every state write committed through
   * the runtime (`state.changed`: by a node's state views, or on a store from
   * {@linkcode Runtime.store}). Each call is a consumer of its own that
   * buffers from the moment it is made; runs never wait for a consumer: past
   * `bufferSize` (default 10,000) held events, new ones are dropped for that
   * consumer and it gets one `dropped` event with their count in their place.
   * The stream ends when the runtime closes (after what is buffered), when
   * `signal` aborts, or when the loop is left (`break`).
   *
   * @example
   * ```ts
   * import { openRuntime, type RuntimeEvent } from "@flowstate/core";
   * import assert from "node:assert/strict";
   *
   * const rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
   * const seen: string[] = [];
   * const watching = (async () => {
   *   for await (const event of rt.events()) {
   *     if (event.type === "run.ended") seen.push(`${event.flowId} ${event.status}`);
   *   }
   * })();
   * await rt.runFlow({ id: "a", nodes: [{ id: "n", type: "transform", with: { value: 1 } }] });
   * await rt.runFlow({ id: "b", nodes: [{ id: "n", type: "fail", with: { message: "no" } }] });
   * await rt.close(); // ends the stream once it is read
   * await watching;
   * assert.deepEqual(seen, ["a succeeded", "b failed"]);
   * ```
   */
  events(options?: EventsOptions): AsyncIterableIterator<RuntimeEvent>;
  /**
   * Close the runtime: cancel the runs it is running (those of
   * {@linkcode Runtime.runFlow}, their sub-runs, and the scheduler's), wait
   * for their ends to be recorded `cancelled` — each waits up to the config's
   * `runs.abortGrace` (5 s by default) for its nodes to stop, as a run
   * cancelled by its `signal` does, and close waits that long plus a moment
   * to record the end — then end the event stream, stop the Workers of
   * sandboxed nodes and close every opened store. All stores are closed even
   * if one throws; the first error is rethrown (an `AggregateError` if
   * several failed). Idempotent; leaving an `await using` block calls it.
   * (A queue worker's runs are the worker's: stop it first, see its `stop()`.)
   * Afterwards `runFlow` rejects with a {@linkcode StoreClosedError}
   * ("Cannot run flow …: the runtime is closed").
   *
   * @example
   * ```ts
   * import { openRuntime } from "@flowstate/core";
   * import assert from "node:assert/strict";
   * const rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
   * let started!: () => void;
   * const running = new Promise<void>((resolve) => started = resolve);
   * const run = rt.runFlow(
   *   { id: "slow", nodes: [{ id: "wait", type: "delay", with: { for: "1h" } }] },
   *   { onStart: () => started() },
   * );
   * await running;
   * await rt.close(); // the run is cancelled, and its end recorded, first
   * assert.equal((await run).status, "cancelled");
   * await assert.rejects(rt.runFlow("flow.yaml"), /Cannot run flow "flow.yaml": the runtime is closed/);
   * ```
   */
  close(): Promise<void>;
}

/**
 * Load the configuration (see {@linkcode RuntimeOptions.config}) and return a
 * runtime whose stores open on first use. Throws a {@linkcode ConfigError} for
 * an invalid config. Dispose it with `await using` or call `close()`.
 *
 * @example
 * ```ts
 * import { openRuntime } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * assert.deepEqual(rt.storeNames, ["main"]);
 * assert.equal(rt.isOpen("main"), false); // stores open on first use
 * const store = await rt.storeFor("flow"); // every scope maps to the only store
 * await store.set(["greeting"], "hi");
 * assert.equal((await store.get(["greeting"]))?.value, "hi");
 * assert.equal(rt.isOpen("main"), true);
 * ```
 */
export async function openRuntime<const C extends ConfigObject>(
  options: RuntimeOptions & { config?: string | (C & CheckedConfig<C>) } = {},
): Promise<Runtime> {
  // A misspelt option (`confg`) would be ignored without a word: named instead, here and below.
  if (typeof options === "string") {
    // openRuntime("other.yaml") would open ./flowstate.yaml, not other.yaml.
    throw new TypeError(
      `Cannot open runtime: expected an object of options, got the config path ${
        JSON.stringify(options)
      }: write openRuntime({ config: ${JSON.stringify(options)} })`,
    );
  }
  assertKnownFields(options, RUNTIME_OPTIONS, "Cannot open runtime", "option");
  const { env, clock } = options;
  checkEnvOption(env, "Cannot open runtime");
  if (clock !== undefined && typeof (clock as Partial<Clock> | null)?.now !== "function") {
    throw new TypeError(
      "Cannot open runtime: option clock must be an object with a now() method (ms since the epoch), " +
        "such as fakeClock() of @flowstate/core/testing",
    );
  }
  return await openRuntimeWith(options, loadConfig);
}

/**
 * {@linkcode openRuntime}, with the config loaded by `load` (internal:
 * `flowstate run` loads it through the config disk cache, which returns what
 * `loadConfig` does).
 */
export async function openRuntimeWith(
  options: RuntimeOptions,
  load: (options: LoadConfigOptions) => Promise<ResolvedConfig>,
): Promise<Runtime> {
  // Checked before the config loads: a wrong node type is the program's mistake, not the config's.
  const nodeTypes = options.nodeTypes === undefined
    ? undefined
    : programNodeTypes(options.nodeTypes);
  setProcessActor(options.actor);
  if (options.cwd !== undefined) await checkCwd(options.cwd);
  const config = await load({
    config: options.config,
    cwd: options.cwd,
    home: options.home,
    env: options.env,
  });
  // Everything Flowstate keeps beside the stores goes under its home: a file there is a mistake.
  // A home from $FLOWSTATE_HOME this process may not read is checked (and said) when needed.
  const homePath = homeIfKnown(config);
  const home = homePath === undefined ? null : await Deno.stat(homePath).catch(() => null);
  if (home !== null && !home.isDirectory) {
    throw new ConfigError(
      `Flowstate's home ${config.home} is a file, not a directory: point $FLOWSTATE_HOME ` +
        `(or home: in the config) at a directory`,
    );
  }
  const moved = options.onWarning && homePath !== undefined && await homeMovedWarning(config);
  if (moved) warnGuarded(options.onWarning, moved);
  // Stores open on first use, inside nodes: the actor's context must exist before.
  if (Object.values(config.stores).some((spec) => spec.changes !== undefined)) {
    await loadActorStorage();
  }
  return new FlowstateRuntime(
    config,
    options.clock ?? systemClock,
    options.cwd ?? Deno.cwd(),
    options.createStores ?? true,
    options.onWarning,
    options.onIndexBuild,
    nodeTypes,
  );
}

/**
 * Refuse a `cwd` option that names no directory: relative paths (the config file, the home,
 * the stores') would resolve against it, and a store would create it.
 */
async function checkCwd(given: string): Promise<void> {
  const cwd = resolve(given);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(cwd);
  } catch (err) {
    // Not readable: what reads under it says so (a config object may need nothing there).
    if (!(err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory)) return;
    throw new ConfigError(
      `Cannot open runtime: the working directory ${JSON.stringify(given)} (option cwd) does ` +
        "not exist: create it, or pass the path of an existing directory",
      { cause: err },
    );
  }
  if (!info.isDirectory) {
    throw new ConfigError(
      `Cannot open runtime: the working directory ${JSON.stringify(given)} (option cwd) is a ` +
        "file, not a directory: pass the directory that holds it",
    );
  }
}

/**
 * `config.home`, or `undefined` when it comes from `$FLOWSTATE_HOME` and this process may not
 * read that variable (a program that needs no home need not grant it).
 */
function homeIfKnown(config: ResolvedConfig): string | undefined {
  try {
    return config.home;
  } catch (err) {
    if (err instanceof ConfigError) return undefined;
    throw err;
  }
}

/**
 * A config file read from another folder now has its home beside it, where
 * Flowstate up to 0.5 used `<cwd>/.flowstate`: said while the new home does
 * not exist yet (the first run after the upgrade) and the old one holds files,
 * unless the working directory is a project of its own (its `flowstate.yaml`
 * owns that `.flowstate`), or all it holds is what a run there without a
 * config leaves (its default store `state.db`, when this config names stores
 * of its own, and `cache/`): a clone where `deno task run` ran an example
 * before a command with `--config docs/examples/flowstate.yaml`.
 */
async function homeMovedWarning(config: ResolvedConfig): Promise<Warning | undefined> {
  const former = formerHomeOf(config);
  if (former === undefined) return undefined;
  const isDir = async (path: string) => (await Deno.stat(path).catch(() => null))?.isDirectory;
  // What a run in the working directory without a config leaves there: not this config's files.
  const defaultStore = resolve(config.home, "state.db");
  const usesDefaultStore = Object.values(config.stores).some((spec) =>
    (spec as { path?: unknown }).path === defaultStore
  );
  const configless = (name: string) =>
    name === "cache" || (!usesDefaultStore && /^state\.db(-wal|-shm|-journal)?$/.test(name));
  const nonEmpty = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) if (!configless(entry.name)) return true;
    return false;
  };
  try {
    if (await isDir(config.home) !== undefined) return undefined;
    if (!await isDir(former) || !await nonEmpty(former)) return undefined;
    if (await Deno.stat(resolve(former, "..", CONFIG_FILE_NAME)).catch(() => null)) {
      return undefined;
    }
  } catch {
    return undefined; // unreadable: nothing to say for sure
  }
  return {
    code: "HOME_MOVED",
    message: `Flowstate's home is now ${config.home}, beside the config file ${config.file}; ` +
      `${former}, the home versions up to 0.5 used when run from this folder, holds files this ` +
      `run does not use (default stores, backups, archives): to keep using it, write ` +
      `"home: ${former}" in the config, or move it to ${config.home}`,
  };
}

/** The options of {@linkcode openRuntime}. */
const RUNTIME_OPTIONS: readonly string[] = fieldNames<RuntimeOptions>()(
  ["actor", "config", "cwd", "home", "clock", "env", "createStores"],
  ["onWarning", "onIndexBuild", "nodeTypes"],
);

/** The options of `Runtime.runFlow`. */
const RUN_FLOW_OPTIONS: readonly string[] = fieldNames<RunFlowOptions>()(
  ["input", "inputFromStrings", "signal", "timers", "onEvent", "concurrency", "env"],
  ["parentRunId", "abortGrace", "maxSubRuns", "defaultTimeout", "onStart", "depth", "mocks"],
  ["scheduled"],
);

/**
 * `depth` and `parentRunId` are set by a run for its sub-runs; a caller who
 * passes them anyway gets them checked (a negative depth would lift the
 * nesting limit, a parent that is no run id would be recorded as one).
 */
const RESUME_RUN_OPTIONS: readonly string[] = fieldNames<ResumeRunOptions>()(
  ["from", "flow", "again", "signal", "timers", "onEvent", "concurrency", "env", "abortGrace"],
  ["maxSubRuns", "defaultTimeout", "onStart"],
);

const PREVIEW_RESUME_OPTIONS: readonly string[] = fieldNames<PreviewResumeOptions>()(
  ["from", "flow", "again", "env"],
);

/**
 * Throw a `TypeError` naming the first option of `options` of the wrong kind (a `signal` that is
 * no `AbortSignal`, a callback that is no function, a count or a time that is no number in
 * range): found here, before anything is recorded, rather than deep inside the run.
 */
function checkRunOptionKinds(options: Partial<RunFlowOptions>, what: string): void {
  const shown = (value: unknown) =>
    typeof value === "number" ? String(value) : JSON.stringify(value) ?? String(value);
  const refuse = (name: string, kind: string, value: unknown) => {
    throw new TypeError(`${what}: option ${name} must be ${kind} (got ${shown(value)})`);
  };
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    refuse("signal", "an AbortSignal", options.signal);
  }
  for (const name of ["onEvent", "onStart"] as const) {
    const value = options[name];
    if (value !== undefined && typeof value !== "function") refuse(name, "a function", value);
  }
  const count = (value: unknown, min: number) =>
    value === undefined || (Number.isSafeInteger(value) && (value as number) >= min);
  // Infinity: no limit (a program's way to say so; the executor has always taken it).
  if (!count(options.concurrency, 1) && options.concurrency !== Infinity) {
    refuse("concurrency", "a whole number of 1 or more, or Infinity", options.concurrency);
  }
  if (!count(options.maxSubRuns, 0)) {
    refuse("maxSubRuns", "a whole number, 0 or more", options.maxSubRuns);
  }
  const timers: unknown = options.timers;
  if (timers !== undefined && typeof (timers as Partial<Timers> | null)?.sleep !== "function") {
    refuse("timers", "an object with a sleep(ms, signal) method, such as manualTimers()", timers);
  }
  checkEnvOption(options.env, what);
  const grace: unknown = options.abortGrace;
  if (
    grace !== undefined &&
    !(typeof grace === "number" && grace >= 0 && grace <= Number.MAX_SAFE_INTEGER)
  ) {
    refuse("abortGrace", "a number of milliseconds, 0 or more", grace);
  }
  // A run's limit of 0 would time it out at once (the config's `runs.timeout` refuses 0 too).
  const limit: unknown = options.defaultTimeout;
  if (
    limit !== undefined &&
    !(typeof limit === "number" && limit > 0 && limit <= Number.MAX_SAFE_INTEGER)
  ) {
    refuse("defaultTimeout", "a number of milliseconds above 0", limit);
  }
}

function checkInternalRunOptions(options: RunFlowOptions): void {
  checkRunOptionKinds(options, "Cannot run flow");
  const { depth, parentRunId } = options;
  if (depth !== undefined && !(Number.isSafeInteger(depth) && depth >= 0)) {
    throw new TypeError(
      `Cannot run flow: option depth must be a non-negative integer (got ${
        JSON.stringify(depth) ?? String(depth)
      }); it is the sub-flow nesting a run sets for its sub-runs: leave it out`,
    );
  }
  if (parentRunId !== undefined) assertRunId(parentRunId, "Cannot run flow: option parentRunId");
  checkScheduledOption(options.scheduled, "Cannot run flow");
}

/**
 * Throw a `TypeError` (`what: option env must be …`) unless `env` is left
 * out or an object of strings (or `undefined`) by name.
 */
function checkEnvOption(env: unknown, what: string): void {
  if (env === undefined) return;
  const bad = typeof env !== "object" || env === null || Array.isArray(env)
    ? [JSON.stringify(env) ?? String(env)]
    : Object.entries(env).filter(([, v]) => v !== undefined && typeof v !== "string")
      .map(([name, v]) => `${name}: ${JSON.stringify(v) ?? String(v)}`);
  if (bad.length === 0) return;
  throw new TypeError(
    `${what}: option env must be an object of strings by name, as Deno.env.toObject() returns (got ${
      bad[0]
    })`,
  );
}

/**
 * Throw a `TypeError` (`what: option scheduled must be …`) unless
 * `scheduled` is left out or a {@linkcode ScheduledTick}: the check
 * `runFlow` and `runJob` make of their option `scheduled`.
 */
export function checkScheduledOption(scheduled: ScheduledTick | undefined, what: string): void {
  if (
    scheduled !== undefined &&
    (typeof scheduled !== "object" || scheduled === null || !Number.isFinite(scheduled.at) ||
      typeof scheduled.schedule !== "string" || scheduled.schedule === "")
  ) {
    throw new TypeError(
      `${what}: option scheduled must be { at: <ms since the epoch>, schedule: "<schedule id>" } (got ${
        JSON.stringify(scheduled) ?? String(scheduled)
      })`,
    );
  }
}

/** The options of `Runtime.enqueue`. */
const ENQUEUE_OPTIONS: readonly string[] = fieldNames<EnqueueOptions>()(
  ["input", "inputFromStrings", "runAt", "delay", "priority", "key", "maxAttempts"],
  ["backoff", "parentRunId"],
);

/** An index a runtime's open of a store built: its name, entries indexed and time, ms. */
export interface IndexBuiltByOpen {
  index: string;
  entries?: number;
  ms: number;
}

const openBuilds = new WeakMap<object, Map<string, IndexBuiltByOpen[]>>();
/** Each runtime's cache of prepared flows (see {@linkcode flowCacheOf}). */
const flowCaches = new WeakMap<object, FlowCache>();

/**
 * The indexes the opens of store `name` by `runtime` built, not taken yet
 * (internal: the build-indexes job takes them and reports them as built now
 * when the runtime opened the store before the job ran; a second run of the
 * job finds them built before); none for a stand-in runtime.
 */
export function takeIndexesBuiltByOpen(runtime: object, name: string): IndexBuiltByOpen[] {
  const builds = openBuilds.get(runtime);
  const built = builds?.get(name) ?? [];
  builds?.delete(name);
  return built;
}

class FlowstateRuntime implements Runtime {
  readonly config: ResolvedConfig;
  readonly clock: Clock;
  readonly storeNames: readonly string[];
  #opening = new Map<string, Promise<Store>>();
  /** The stores of `#opening` that have opened, by name: what the state views take without waiting. */
  #opened = new Map<string, Store>();
  #closing: Promise<void> | undefined;
  /** Aborted by `close()`: the stores still opening give up (see `PluginContext.signal`). */
  #giveUpOpening = new AbortController();
  /** Aborted by `close()`: cancels the runs of `runFlow` still going. */
  #stopRuns = new AbortController();
  /** The runs of `runFlow` still going, which `close()` waits for. */
  #runs = new Set<Promise<unknown>>();
  #cwd: string;
  #createStores: boolean;
  #onWarning: WarningHandler | undefined;
  #onIndexBuild: RuntimeOptions["onIndexBuild"];
  /** The indexes each store's open built, by store (see {@linkcode takeIndexesBuiltByOpen}). */
  #builtByOpen = new Map<string, IndexBuiltByOpen[]>();
  #events = new EventBus();
  /** Prepared flows by content, kept across runs of this runtime. */
  #flows = new FlowCache();
  /** What `store()` hands out: each opened store, reporting its writes to the event stream. */
  #notifying = new WeakMap<Store, Store>();
  /** State writes of flow nodes, onto the event stream (with the run, flow and node). */
  #stateChanges: StateChangeSink;
  /** The Workers of sandboxed node modules; see {@linkcode sandboxPoolOf}. */
  readonly sandboxes: SandboxPool;
  /** The program's node types (`nodeTypes` of {@linkcode openRuntime}); see {@linkcode programNodesOf}. */
  readonly nodeTypes: ProgramNodeTypes | undefined;
  /** Runs `runs.onFailure`, when the config sets it. */
  readonly notifier: LazyFailureNotifier | undefined;
  /** How this runtime's runs come to run, for `runs.onFailure` (see {@linkcode setRunSource}). */
  runSource: RunSource = "program";

  constructor(
    config: ResolvedConfig,
    clock: Clock,
    cwd: string,
    createStores: boolean,
    onWarning: WarningHandler | undefined,
    onIndexBuild: RuntimeOptions["onIndexBuild"],
    nodeTypes: ProgramNodeTypes | undefined,
  ) {
    this.nodeTypes = nodeTypes;
    this.#cwd = cwd;
    this.#onWarning = onWarning;
    this.#onIndexBuild = onIndexBuild;
    this.#createStores = createStores;
    this.config = config;
    // Where this process's owner lock goes, should it record a run (see `records/owner.ts`);
    // the home is read then, not now.
    useOwnerLockDir(() => config.home);
    this.clock = clock;
    this.storeNames = Object.freeze(Object.keys(config.stores));
    this.sandboxes = new SandboxPool({
      idleMs: config.nodes.workerIdleMs ?? 0,
      memoryLimitMiB: config.nodes.memoryLimitMiB,
      checkTimeoutMs: config.nodes.checkTimeoutMs,
      projectDir: config.baseDir,
      protect: () => protectedPaths(config),
    });
    attachEventBus(this, this.#events);
    openBuilds.set(this, this.#builtByOpen);
    flowCaches.set(this, this.#flows);
    const events = this.#events;
    const at = () => clock.now();
    this.#stateChanges = {
      get listening() {
        return events.listening;
      },
      changed: (change: StateChange) =>
        events.emit({ type: "state.changed", at: at(), ...change, key: [...change.key] }),
    };
    this.notifier = config.runs.onFailure === undefined ? undefined : new LazyFailureNotifier({
      config,
      records: () => this.records(),
      flowHost: () => this.flowHost(),
      runOptions: () => ({ ...this.runDefaults(), signal: this.#stopRuns.signal }),
      loadFlow: (file) =>
        this.#flows.load(file, {
          pool: this.sandboxes,
          cwd: this.#cwd,
          trusted: this.config.nodes.trusted,
          trustedBaseDir: this.config.baseDir,
          ...(this.nodeTypes === undefined ? {} : { nodeTypes: this.nodeTypes }),
        }),
      // The library never prints: told to the program's handler, dropped without one.
      warn: (message) => warnGuarded(this.#onWarning, { code: "ON_FAILURE", message }),
      source: () => this.runSource,
    });
  }

  events(options?: EventsOptions): AsyncIterableIterator<RuntimeEvent> {
    return this.#events.subscribe(options);
  }

  async store(name: string = this.config.scopes.global): Promise<Store> {
    const store = await this.#store(name);
    let notifying = this.#notifying.get(store);
    if (notifying === undefined) {
      const events = this.#events;
      const clock = this.clock;
      // Flowstate's own records (runs, versions, leases) are not state changes.
      const records = name === this.config.records;
      notifying = notifyingStore(store, {
        get listening() {
          return events.listening;
        },
        changed: (change) =>
          events.emit({ type: "state.changed", at: clock.now(), store: name, ...change }),
        ignore: records ? (key) => key[0] === "flowstate" : undefined,
      });
      this.#notifying.set(store, notifying);
    }
    return notifying;
  }

  /** The store itself, unwrapped: for the records and for the state views (they report their own writes). */
  #store(name: string = this.config.scopes.global): Promise<Store> {
    if (this.#closing) {
      return Promise.reject(
        new StoreClosedError(`Cannot open store "${name}": the runtime is closed`),
      );
    }
    if (typeof name !== "string" || !Object.hasOwn(this.config.stores, name)) {
      return Promise.reject(
        new UnknownStoreError(
          `Cannot open store "${String(name)}": no such store${
            didYouMean(String(name), this.storeNames)
          }; the configured stores are ${this.storeNames.map((n) => `"${n}"`).join(", ")}`,
          { store: String(name), known: this.storeNames },
        ),
      );
    }
    let opening = this.#opening.get(name);
    if (!opening) {
      opening = this.#open(name);
      this.#opening.set(name, opening);
      // A failed open is forgotten so that a later call can try again.
      opening.then((store) => {
        if (this.#opening.get(name) === opening) this.#opened.set(name, store);
      }, () => {
        if (this.#opening.get(name) === opening) this.#opening.delete(name);
      });
    }
    return opening;
  }

  storeFor(scope: ScopeName): Promise<Store> {
    if (!SCOPES.includes(scope)) {
      return Promise.reject(
        new RangeError(
          `Cannot open the store of scope "${String(scope)}": the scopes are ${SCOPES.join(", ")}`,
        ),
      );
    }
    return this.store(this.config.scopes[scope]);
  }

  /** The store of `scope`, unwrapped, if it has opened and the runtime is not closing (else see `#storeFor`). */
  #openedFor(scope: ScopeName): Store | undefined {
    return this.#closing === undefined ? this.#opened.get(this.config.scopes[scope]) : undefined;
  }

  /** {@linkcode storeFor}, unwrapped (see `#store`). */
  #storeFor(scope: ScopeName): Promise<Store> {
    if (!SCOPES.includes(scope)) return this.storeFor(scope); // its error
    return this.#store(this.config.scopes[scope]);
  }

  /** The config's home, read when first asked for (see {@linkcode ResolvedConfig.home}). */
  get home(): string {
    return this.config.home;
  }

  isOpen(name: string): boolean {
    return this.#opening.has(name);
  }

  async #open(name: string): Promise<Store> {
    const spec = this.config.stores[name];
    if (
      this.#createStores && typeof spec.path === "string" && isAbsolute(spec.path) &&
      isInside(spec.path, this.home)
    ) {
      // Flowstate owns its home: create the directory of a store file under it
      // (the default store's .flowstate/state.db) on first use, never elsewhere.
      await Deno.mkdir(dirname(spec.path), { recursive: true });
    }
    const started = new Map<string, number>();
    const onIndexBuild = (event: IndexBuildEvent & { store: string }) => {
      if (event.phase === "start") started.set(event.index, performance.now());
      else if (event.phase === "done") {
        const at = started.get(event.index) ?? performance.now();
        const built = this.#builtByOpen.get(name) ?? [];
        built.push({
          index: event.index,
          entries: event.done,
          ms: Math.round(performance.now() - at),
        });
        this.#builtByOpen.set(name, built);
      }
      this.#onIndexBuild?.(event);
    };
    try {
      const home = () => this.home;
      return await openStore(withWritten({ ...spec }, writtenOf(spec)), {
        name,
        // Read when the store needs it (a memory store does not).
        get home() {
          return home();
        },
        baseDir: this.config.baseDir,
        clock: this.clock,
        mustExist: !this.#createStores,
        signal: this.#giveUpOpening.signal,
        onWarning: this.#onWarning,
        onIndexBuild,
      });
    } catch (err) {
      throw this.#locate(err, name);
    }
  }

  /**
   * Prefix a plugin's ConfigError with where the store (or its first bad option) is written,
   * and a StoreOpenError with where the store is.
   */
  #locate(err: unknown, name: string): unknown {
    if (err instanceof StoreOpenError && this.config.file !== null) {
      const where = this.config.where(["stores", name]);
      if (where === undefined) return err;
      return new StoreOpenError(`${where}: stores.${name}: ${err.message}`, {
        store: err.store,
        plugin: err.plugin,
        file: this.config.file,
      }, { cause: err.cause });
    }
    if (!(err instanceof ConfigError) || this.config.file === null) return err;
    const spec = this.config.stores[name];
    const within = (issue: Problem): ProblemPath => {
      const option = issue.path[0];
      return typeof option === "string" && Object.hasOwn(spec, option)
        ? ["stores", name, option]
        : ["stores", name];
    };
    const path = within(err.issues[0] ?? { path: [], message: "" });
    const where = this.config.where(path);
    if (where === undefined) return err;
    const issues = err.issues.map((issue) => ({ ...issue, path: within(issue) }));
    return new ConfigError(`${where}: ${path.join(".")}: ${err.message}`, {
      cause: err,
      issues,
      file: this.config.file,
    });
  }

  close(): Promise<void> {
    this.#giveUpOpening.abort();
    this.#closing ??= this.#closeAll();
    return this.#closing;
  }

  async #closeAll(): Promise<void> {
    await this.#cancelRuns();
    this.#events.close();
    this.sandboxes.close();
    const pending = [...this.#opening.values()];
    const results = await Promise.allSettled(
      pending.map(async (opening) => {
        let store: Store;
        try {
          store = await opening;
        } catch {
          return; // It never opened; its error went to whoever asked for it.
        }
        await store.close();
      }),
    );
    const errors = results.flatMap((r) => (r.status === "rejected" ? [r.reason] : []));
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) {
      throw new AggregateError(errors, `Cannot close ${errors.length} stores cleanly`);
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Cancel the runs still going (as a caller's `signal` does) and wait until
   * their ends are recorded: a run waits up to `runs.abortGrace` for its nodes
   * to stop, then records its end; past that and {@linkcode INTERRUPT_TIMEOUT_MS}
   * more, the stores close under whatever is left.
   */
  async #cancelRuns(): Promise<void> {
    if (this.#runs.size === 0) return;
    this.#stopRuns.abort("the runtime is closing");
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.allSettled(this.#runs),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.config.runs.abortGraceMs + INTERRUPT_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
  }

  /** The file of a flow among the config's `flows:`, by id (internal: see `flowHostOf`). */
  findFlowFile(flowId: string): Promise<string> {
    return findFlowFile(this.config, flowId, this.#cwd);
  }

  /** What running a flow needs (internal: the queue's workers run claimed runs with it). */
  flowHost(): FlowHost {
    return {
      resolver: {
        forScope: (scope) => this.#storeFor(scope),
        opened: (scope) => this.#openedFor(scope),
        byName: (name) => this.#store(name),
        stateChanges: this.#stateChanges,
      },
      recordsStore: () => this.#store(this.config.records),
      eventFormat: this.config.runs.eventFormat,
      nodesFormat: this.config.runs.nodesFormat,
      clock: this.clock,
      cwd: this.#cwd,
      events: this.#events,
      trustedNodes: this.config.nodes.trusted,
      trustedBaseDir: this.config.baseDir,
      ...(this.nodeTypes === undefined ? {} : { nodeTypes: this.nodeTypes }),
      sandboxes: this.sandboxes,
      flows: this.#flows,
      flowRoots: this.config.flows,
      enqueue: (flow, options) => this.enqueue(flow, options),
      ...(this.notifier === undefined ? {} : {
        afterRun: (record: RunRecord, signal?: AbortSignal) =>
          this.notifier!.notify(record, signal),
      }),
    };
  }

  /** The defaults of run options from the config. */
  runDefaults(): RunFlowOptions {
    return {
      abortGrace: this.config.runs.abortGraceMs,
      maxSubRuns: this.config.runs.maxSubRuns,
      ...(this.config.runs.timeoutMs === undefined
        ? {}
        : { defaultTimeout: this.config.runs.timeoutMs }),
    };
  }

  runFlow(flow: FlowSource, options?: RunFlowOptions): Promise<RunRecord> {
    try {
      if (options != null) {
        assertKnownFields(options, RUN_FLOW_OPTIONS, "Cannot run flow", "option");
        checkInternalRunOptions(options);
      }
      if (this.#closing !== undefined) {
        throw new StoreClosedError(`Cannot run flow ${flowLabel(flow)}: the runtime is closed`);
      }
      return this.#tracked(options?.signal, (signal) =>
        runFlow(this.flowHost(), flow, {
          ...this.runDefaults(),
          ...definedOnly(options),
          signal,
        }).catch((err) => rethrowWithFlowIdHint(err, flow, this.config, this.#cwd)));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * `start` a run, with the caller's `given` signal and the runtime's own
   * (aborted by `close()`); `close()` waits for it.
   */
  #tracked(
    given: AbortSignal | undefined,
    start: (signal: AbortSignal) => Promise<RunRecord>,
  ): Promise<RunRecord> {
    const stop = this.#stopRuns.signal;
    const run = start(given == null ? stop : AbortSignal.any([given, stop]));
    // close() waits for it (its rejection is the caller's, through `run`).
    const tracked = run.catch(() => {}).finally(() => this.#runs.delete(tracked));
    this.#runs.add(tracked);
    return run;
  }

  resumeRun(runId: string, options: ResumeRunOptions = {}): Promise<RunRecord> {
    try {
      assertKnownFields(options, RESUME_RUN_OPTIONS, `Cannot resume run ${runId}`, "option");
      checkRunOptionKinds(options, `Cannot resume run ${runId}`);
      this.#checkResume(runId, options.from);
      const { from, flow: given, again, onStart, ...rest } = options;
      return this.#tracked(options.signal, async (signal) => {
        const records = await this.records();
        const { assertResumable, claimResume, holdResumeClaim, runToResume } = await import(
          "./resume.ts"
        );
        const run = await runToResume(records, runId, this.clock.now());
        assertResumable(run, from);
        const flow = given ?? await this.#flowOfRun(run);
        const version = await records.getVersion(run.flowId, run.flowVersion);
        // The first write: one resume of a run goes on, any other is refused.
        const claim = await claimResume(records, run, again === true, this.clock.now());
        // Renewed until the run starts: a claim that lapses is one whose resume was stopped.
        const held = holdResumeClaim(records, run.id, claim, {
          timers: rest.timers ?? realTimers,
          clock: this.clock,
        });
        let marked: Promise<void> | undefined;
        try {
          return await resumeFlow(
            this.flowHost(),
            flow,
            {
              run,
              before: version?.definition ?? null,
              ...(from === undefined ? {} : { from }),
              lost: held.lost,
              confirm: held.confirm,
            },
            {
              ...this.runDefaults(),
              ...definedOnly(rest),
              signal,
              onStart: (id) => {
                marked = held.release().then((at) => records.markResumeRun(run.id, at, id));
                onStart?.(id);
              },
            },
          );
        } catch (err) {
          // Refused once its flow loaded (another flow, an unknown --from): no run holds the claim.
          if (marked === undefined && !held.lost.aborted) {
            await records.releaseResume(run.id, await held.release());
          }
          throw err;
        } finally {
          // Not written (the store failed): the mark stays, without the run's id.
          await marked?.catch(() => {});
          await held.release();
        }
      });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async previewResume(runId: string, options: PreviewResumeOptions = {}): Promise<ResumePreview> {
    assertKnownFields(options, PREVIEW_RESUME_OPTIONS, `Cannot resume run ${runId}`, "option");
    checkEnvOption(options.env, `Cannot resume run ${runId}`);
    const from = this.#checkResume(runId, options.from);
    const records = await this.records();
    const { assertNotResumed, assertResumable, runToResume } = await import("./resume.ts");
    const run = await runToResume(records, runId, this.clock.now());
    assertResumable(run, from);
    const flow = options.flow ?? await this.#flowOfRun(run);
    const version = await records.getVersion(run.flowId, run.flowVersion);
    await assertNotResumed(records, run, options.again === true, this.clock.now());
    const { sameVersion, nodes } = await previewResumeFlow(this.flowHost(), flow, {
      run,
      before: version?.definition ?? null,
      ...(from === undefined ? {} : { from }),
    }, options.env);
    return {
      runId: run.id,
      flowId: run.flowId,
      ...(from === undefined ? {} : { from }),
      sameVersion,
      nodes,
    };
  }

  /** `runId` and `from` checked as a resume takes them (`from` returned). */
  #checkResume(runId: string, from: unknown): string | undefined {
    if (typeof runId !== "string" || !isRunId(runId)) {
      throw new NotFoundError(
        `Cannot resume run ${JSON.stringify(runId)}: not a run id (${RUN_ID_HINT})`,
        { kind: "run", id: String(runId) },
      );
    }
    if (from !== undefined && (typeof from !== "string" || from === "")) {
      throw new TypeError(`Cannot resume run ${runId}: option from must be a node id`);
    }
    if (this.#closing !== undefined) {
      throw new StoreClosedError(`Cannot resume run ${runId}: the runtime is closed`);
    }
    return from;
  }

  /**
   * The file of `run`'s flow: the one among the config's `flows:` with its
   * id, else the file a queued run recorded; else a `NotFoundError` saying to
   * give it.
   */
  async #flowOfRun(run: RunRecord): Promise<string> {
    try {
      return await findFlowFile(this.config, run.flowId, this.#cwd);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      const recorded = run.queue?.flowPath;
      if (recorded !== undefined) return recorded;
      throw new NotFoundError(
        `Cannot resume run ${run.id}: no file under the config's flows: has flow id ` +
          `"${run.flowId}", and the run's record does not keep its file; pass the flow file ` +
          "with --flow <file> (the option flow of resumeRun)",
        { kind: "flow", id: run.flowId },
        { cause: err },
      );
    }
  }

  /** Told when this runtime enqueued a run: its own workers wake at once (internal). */
  readonly enqueued: EventTarget = new EventTarget();

  enqueue(flow: string, options: EnqueueOptions = {}): Promise<EnqueueResult> {
    if (typeof options === "object" && options !== null) {
      try {
        assertKnownFields(
          options,
          ENQUEUE_OPTIONS,
          `Cannot enqueue ${JSON.stringify(flow)}`,
          "option",
        );
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.#enqueue(flow, options).then((result) => {
      this.enqueued.dispatchEvent(new Event("enqueued"));
      return result;
    });
  }

  async #enqueue(flow: string, options: EnqueueOptions): Promise<EnqueueResult> {
    const { enqueueFlow } = await (enqueueImport ??= import("./queue/enqueue.ts"));
    return await enqueueFlow(
      {
        records: () => this.records(),
        findFlow: (name) => findFlowFile(this.config, name, this.#cwd),
        now: () => this.clock.now(),
        pool: this.sandboxes,
        trusted: this.config.nodes.trusted,
        trustedBaseDir: this.config.baseDir,
        ...(this.nodeTypes === undefined ? {} : { nodeTypes: this.nodeTypes }),
        stores: this.storeNames,
        flows: this.#flows,
      },
      flow,
      options,
    );
  }

  async signalRun(runId: string, name: string, data?: unknown): Promise<SignalOutcome> {
    const records = await this.records();
    const outcome = await records.sendSignal(runId, name, data);
    if (
      outcome.kind === "stored" &&
      abandonedRun(outcome.run, this.clock.now(), DEFAULT_ABANDONED_MS) !== null
    ) {
      // Its process is gone (killed while it waited): nobody would ever take the signal, nor
      // end the run. Recorded abandoned, as `runs cancel` does; its end clears the signal.
      const abandoned = await records.abandonRun(runId, { afterMs: DEFAULT_ABANDONED_MS });
      if (abandoned !== null) return { kind: "ended", run: abandoned };
    }
    if (outcome.kind !== "unknown") return outcome;
    // An archived run ended long ago.
    const archived = await records.getRun(runId);
    return archived === null ? outcome : { kind: "ended", run: archived };
  }

  async records(): Promise<Records> {
    const records = new Records(await this.#store(this.config.records), {
      clock: this.clock,
      eventFormat: this.config.runs.eventFormat,
      nodesFormat: this.config.runs.nodesFormat,
    });
    if (this.notifier !== undefined) {
      const notifier = this.notifier;
      tellEndsFound(records, (record) => notifier.notify(record));
    }
    return recordsWithArchive(records, {
      // Loaded when a listing reads the archive: a run never does (nor its node: built-ins).
      reader: async () => (await import("./records/_archive_read.ts")).archiveReaderOf(this),
      ...(this.#onWarning === undefined ? {} : { onWarning: this.#onWarning }),
    });
  }
}

/**
 * A {@linkcode FailureNotifier} whose module (`on_failure.ts`) is loaded on
 * first use: a run whose config has no `runs.onFailure` never loads it. The
 * notifier is made once; every call goes to it, in the order made.
 */
class LazyFailureNotifier {
  readonly #host: FailureNotifierHost;
  #notifier: Promise<FailureNotifier> | undefined;

  constructor(host: FailureNotifierHost) {
    this.#host = host;
  }

  #loaded(): Promise<FailureNotifier> {
    return this.#notifier ??= import("./on_failure.ts").then(({ FailureNotifier }) =>
      new FailureNotifier(this.#host)
    );
  }

  /** See {@linkcode FailureNotifier.check}. */
  async check(): Promise<OnFailureFlow> {
    return await (await this.#loaded()).check();
  }

  /** See {@linkcode FailureNotifier.warnExcept}. */
  async warnExcept(): Promise<void> {
    await (await this.#loaded()).warnExcept();
  }

  /** See {@linkcode FailureNotifier.notify} (never throws). */
  async notify(record: RunRecord, signal?: AbortSignal): Promise<void> {
    await (await this.#loaded()).notify(record, signal);
  }
}

/**
 * Run the config's `runs.onFailure` flow about `record` if it calls for it
 * (internal: a job's run, a claimed run that never started; see
 * `on_failure.ts`). Never throws.
 */
export async function notifyRunEnded(runtime: Runtime, record: RunRecord): Promise<void> {
  await (runtime as Partial<FlowstateRuntime>).notifier?.notify(record);
}

/**
 * Say how the runs `runtime` starts itself come to run (internal: the CLI's
 * commands), as `runs.onFailure` is told: `cli`, `schedule`, `api`; a
 * program's runtime says `program`.
 */
export function setRunSource(runtime: Runtime, source: RunSource): void {
  if (runtime instanceof FlowstateRuntime) runtime.runSource = source;
}

/**
 * Check the config's `runs.onFailure` flow (internal: `flowstate validate`,
 * the daemon, `worker` and `serve` at their start): its file, definition and
 * inputs, or a `ConfigError` at `runs.onFailure.flow`; `undefined` without
 * one. Its `except:` entries that name no known flow or job are warned about
 * (the runtime's `onWarning`, code `ON_FAILURE`).
 */
export async function checkOnFailure(runtime: Runtime): Promise<OnFailureFlow | undefined> {
  const notifier = (runtime as Partial<FlowstateRuntime>).notifier;
  if (notifier === undefined) return undefined;
  const checked = await notifier.check();
  // An except: entry that matches no known flow or job: most likely a typo (warned, not refused).
  await notifier.warnExcept();
  return checked;
}

/**
 * The pool `runtime` takes custom node Workers from (internal: the CLI checks
 * a flow with it, so that its run reuses the Worker that checked it).
 */
export function sandboxPoolOf(runtime: Runtime): SandboxPool | undefined {
  const pool = (runtime as Partial<FlowstateRuntime>).sandboxes;
  return pool instanceof SandboxPool ? pool : undefined;
}

/**
 * The node types the program gave `runtime` (`nodeTypes` of
 * {@linkcode openRuntime}), if any (internal: the scheduler loads the
 * config's flows with them).
 */
export function programNodesOf(runtime: Runtime): ProgramNodeTypes | undefined {
  return runtime instanceof FlowstateRuntime ? runtime.nodeTypes : undefined;
}

/**
 * The prepared flows `runtime` keeps across its runs (internal: the
 * scheduler loads the config's flow files through it, and tests read its
 * `stats` to count what was parsed).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { flowCacheOf, openRuntime } from "./runtime.ts";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const flow = { id: "hi", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] };
 * await rt.runFlow(flow);
 * await rt.runFlow(flow);
 * assert.equal(flowCacheOf(rt)?.stats.misses, 1); // prepared once
 * ```
 */
export function flowCacheOf(runtime: Runtime): FlowCache | undefined {
  return flowCaches.get(runtime);
}

/**
 * How `runtime` runs flows, with the config's run defaults (internal: the
 * queue's workers run claimed runs with it).
 */
export function flowHostOf(
  runtime: Runtime,
): {
  host: FlowHost;
  defaults: RunFlowOptions;
  enqueued: EventTarget;
  findFlow: (flowId: string) => Promise<string>;
} {
  if (!(runtime instanceof FlowstateRuntime)) {
    throw new TypeError("Cannot work the queue: the runtime must come from openRuntime()");
  }
  return {
    host: runtime.flowHost(),
    defaults: runtime.runDefaults(),
    enqueued: runtime.enqueued,
    findFlow: (flowId) => runtime.findFlowFile(flowId),
  };
}

/** How a message names `flow`: its path, or its id. */
function flowLabel(flow: FlowSource): string {
  type Shapes = {
    id?: unknown;
    definition?: { id?: unknown };
    parsed?: { definition?: { id?: unknown } };
  };
  const shapes = flow as Shapes;
  const name = typeof flow === "string"
    ? flow
    : shapes.id ?? shapes.definition?.id ?? shapes.parsed?.definition?.id;
  return typeof name === "string" ? JSON.stringify(name) : "(inline)";
}

function isInside(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel);
}

/** `options` without its `undefined` fields, so they do not hide the config's defaults. */
function definedOnly<T extends object>(options: T | undefined): Partial<T> {
  return Object.fromEntries(
    Object.entries(options ?? {}).filter(([, value]) => value !== undefined),
  ) as Partial<T>;
}

/**
 * What no node module may read through its imports: the home, every store's
 * file (a store option `path`, relative to the config) and the config file.
 */
function protectedPaths(config: ResolvedConfig): string[] {
  const paths = [config.home];
  if (config.file !== null) paths.push(config.file);
  for (const spec of Object.values(config.stores)) {
    const path = (spec as { path?: unknown }).path;
    if (typeof path === "string") paths.push(resolve(config.baseDir, path));
  }
  return paths;
}
