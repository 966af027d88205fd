/**
 * Change triggers: a flow declaring `trigger: { changes: { store, prefix } }`
 * runs once for each change of a key under `prefix` in `store` (a store whose
 * config keeps a change feed), where `flowstate daemon` runs.
 *
 * - **Delivery is at least once, in feed order, one run at a time per flow.**
 *   The trigger's position in the watched store (the last sequence number
 *   delivered) is stored in the records store at
 *   `["flowstate", "triggers", <flow id>, "store", <store name>, "position"]`,
 *   written after each run ends. A daemon that stops or restarts resumes
 *   after it: nothing is lost. A change is delivered twice only when the
 *   daemon dies between the end of a run and the write of the position.
 * - **One position per flow and watched store**: daemons whose configs point
 *   the same flow at different stores (a rolling deploy moving it from one to
 *   another) each resume their own store's position when the lease passes
 *   between them, without resetting the other's.
 * - **The first start** (the flow has no position in any store) stores the
 *   feed's last sequence number as the position: changes from then on are
 *   delivered, not the feed's history.
 * - **Several daemons** share a trigger through one lease per flow, whatever
 *   the store, at `["flowstate", "triggers", <flow id>, "lease"]`: one
 *   delivers, the others take over within the lease's lifetime if it dies.
 *   A flow's runs stay one at a time across the fleet, also while daemons
 *   watch different stores for it.
 * - **Positions of older versions** (one per flow, at
 *   `["flowstate", "triggers", <flow id>, "position"]`) are moved to the key
 *   of their store by the first daemon that takes the flow's lease, in one
 *   commit that deletes the old key; one of another store than the flow now
 *   watches is copied (marked `copied`, following it) and stays, for older
 *   daemons still watching that store.
 * - **The run's inputs** are the change's fields the flow declares among
 *   `key`, `op`, `value`, `seq`, `at`, `by`, `expiresAt`, `store` and
 *   `change` (the whole change). A run that fails still moves the position
 *   (it is recorded, failed); a run cancelled by the daemon stopping does not.
 * - Flowstate's own records (keys under `["flowstate"]`) trigger nothing
 *   unless the prefix names them, so that a trigger on a whole store never
 *   triggers on its own runs.
 * - When the feed's retention removed changes the position still needed (the
 *   daemon was down for longer than `changes.keep`), the trigger reports an
 *   `error` event naming the lost range and goes on from the oldest kept.
 * - A stored position that is not one of the watched feed's is not trusted:
 *   the flow has positions in other stores but none in the one it now
 *   watches, or the store's feed was reset (it ends before the position, or
 *   its change at the position is not the one delivered: the store's file
 *   recreated, restored or replaced, or the store's name now pointing at
 *   another database). The trigger then delivers every change that feed
 *   still holds, from its oldest kept (at least once: a change it cannot
 *   tell delivered is delivered), and reports a `trigger.reset` event saying
 *   so.
 * - **Edits of the flow files** (`flowstate daemon` hands each look at them
 *   to {@linkcode ChangeTriggers.update}, as its scheduler reads them for
 *   schedules): a flow edited without touching its trigger runs as edited
 *   from its next change (its loop, position and run in progress stay); a
 *   trigger added, or changed to another store or prefix, delivers the
 *   changes after the end of that store's feed as the edit applied, unless
 *   the position stored for its flow and store was written for the same
 *   prefix (positions record it): then it resumes from there; a changed one
 *   starts once the old one's run in progress ended and stored its position.
 *   A trigger removed stops taking changes; its position stays stored. A
 *   trigger an edit made unusable goes on as it was until the file is fixed.
 *
 * @module
 */
import { callGuarded } from "../_callback.ts";
import type { ResolvedConfig } from "../config.ts";
import {
  ConfigError,
  FlowValidationError,
  formatProblem,
  messageOf,
  type Problem,
} from "../errors.ts";
import { flowFiles } from "../flow_files.ts";
import { loadFlowFile, type ParsedFlow } from "../flow/parse.ts";
import { asConfigError, parseOptionsOf, prepareConfiguredFlow } from "./from_config.ts";
import type { RunRecord } from "../records/types.ts";
import type { Runtime } from "../runtime.ts";
import { Lease } from "../store/lease.ts";
import { formatKey, hasPrefix } from "../store/keys.ts";
import type { Change, JsonValue, Key, Store } from "../store/types.ts";
import { sealedView } from "../store/sealed.ts";
import { changeTime } from "../store/store.ts";
import { shellQuote } from "../_shell.ts";
import { HEARTBEAT_MS, MIN_ABANDONED_MS } from "../records/heartbeat.ts";

/**
 * Where trigger positions and leases live in the records store.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TRIGGERS_PREFIX, triggerPositionKey } from "@flowstate/core/scheduler";
 * import { hasPrefix } from "@flowstate/core/plugin";
 *
 * assert.deepEqual(TRIGGERS_PREFIX, ["flowstate", "triggers"]);
 * assert.ok(hasPrefix(triggerPositionKey("on-order", "main"), TRIGGERS_PREFIX));
 * ```
 */
export const TRIGGERS_PREFIX: Key = Object.freeze(["flowstate", "triggers"]);

/**
 * The key of a flow's trigger position in a watched store, in the records
 * store (a {@linkcode TriggerPosition}): one per flow and store, so that
 * daemons pointing the same flow at different stores keep a position each.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import { type TriggerPosition, triggerPositionKey } from "@flowstate/core/scheduler";
 *
 * assert.deepEqual(
 *   triggerPositionKey("on-order", "main"),
 *   ["flowstate", "triggers", "on-order", "store", "main", "position"],
 * );
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const records = await rt.store(rt.config.records);
 * const position = await records.get<TriggerPosition>(triggerPositionKey("on-order", "main"));
 * assert.equal(position, null); // no trigger has delivered a change of store "main" yet
 * ```
 */
export function triggerPositionKey(flowId: string, store: string): Key {
  return [...TRIGGERS_PREFIX, flowId, "store", store, "position"];
}

/**
 * The run a flow's trigger is running (`{ runId }`, written as it starts, in
 * the records store): a daemon that takes the trigger over from a dead one
 * records that run abandoned once its heartbeat is stale.
 */
function runningKey(flowId: string): Key {
  return [...TRIGGERS_PREFIX, flowId, "running"];
}

/** Where versions before the per-store positions kept a flow's one position. */
function oldPositionKey(flowId: string): Key {
  return [...TRIGGERS_PREFIX, flowId, "position"];
}

/**
 * A stored trigger position.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import { type TriggerPosition, triggerPositionKey } from "@flowstate/core/scheduler";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const records = await rt.store(rt.config.records);
 * // Rewind a trigger: its next start delivers the changes after seq 41 again.
 * const position: TriggerPosition = { seq: 41, store: "main" };
 * await records.set(triggerPositionKey("on-order", "main"), position);
 * assert.deepEqual((await records.get(triggerPositionKey("on-order", "main")))?.value, position);
 * ```
 */
export interface TriggerPosition {
  /** The last sequence number delivered (its run ended). */
  seq: number;
  /** The store watched (the name in the key). */
  store: string;
  /**
   * The commit time of change `seq` in that store's feed (`null`: none, or
   * no longer kept; absent in positions written before it was recorded): a
   * feed that numbers its changes from 1 again is told apart by it.
   */
  at?: number | null;
  /**
   * The key prefix the trigger watched when it wrote the position (absent in
   * positions written before it was recorded, and in copies): a trigger
   * started or changed while the daemon runs resumes a position only when it
   * was written for the same prefix (see {@linkcode ChangeTriggers.update}).
   */
  prefix?: Key;
  /**
   * Set on a copy of an older version's position (one per flow) that this
   * version made while that key stays for older daemons still watching the
   * store: the older key is the one to follow until a daemon of this version
   * delivers from this store (its position has no mark).
   */
  copied?: true;
}

/**
 * One flow's change trigger, loaded and checked.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { join } from "node:path";
 * import { openRuntime } from "@flowstate/core";
 * import { type ChangeTriggerSpec, loadChangeTriggers } from "@flowstate/core/scheduler";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(
 *   join(dir, "on-user.flow.yaml"),
 *   "id: on-user\ntrigger:\n  changes: { prefix: [users] }\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n",
 * );
 * {
 *   await using rt = await openRuntime({
 *     config: { stores: { main: { plugin: "memory", changes: { keep: "1d" } } }, flows: [dir] },
 *   });
 *   const specs: ChangeTriggerSpec[] = await loadChangeTriggers(rt);
 *   assert.deepEqual(specs.map((s) => [s.flowId, s.store, s.prefix]), [["on-user", "main", ["users"]]]);
 *   assert.equal(specs[0].flow.definition.id, "on-user");
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface ChangeTriggerSpec {
  /** The flow id. */
  flowId: string;
  /** The flow's file. */
  file: string;
  /** The flow, parsed. */
  flow: ParsedFlow;
  /** The store watched. */
  store: string;
  /** The key prefix. */
  prefix: Key;
}

/**
 * What the trigger runner reports.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { join } from "node:path";
 * import { openRuntime } from "@flowstate/core";
 * import { type ChangeTriggerEvent, startChangeTriggers } from "@flowstate/core/scheduler";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(
 *   join(dir, "on-user.flow.yaml"),
 *   "id: on-user\ntrigger:\n  changes: { prefix: [users] }\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n",
 * );
 * {
 *   await using rt = await openRuntime({
 *     config: { stores: { main: { plugin: "memory", changes: { keep: "1d" } } }, flows: [dir] },
 *   });
 *   const started = Promise.withResolvers<void>();
 *   const ran = Promise.withResolvers<ChangeTriggerEvent>();
 *   const triggers = await startChangeTriggers(rt, {
 *     onEvent: (event) => {
 *       if (event.type === "trigger.start") started.resolve();
 *       if (event.type === "trigger.run") ran.resolve(event);
 *     },
 *   });
 *   await started.promise; // the first start delivers the changes made after it
 *   await (await rt.store("main")).set(["users", "ada"], { name: "Ada" });
 *   const event = await ran.promise;
 *   assert.equal(event.type === "trigger.run" && event.run.status, "succeeded");
 *   await triggers.stop();
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export type ChangeTriggerEvent =
  | { type: "trigger.start"; flowId: string; store: string; prefix: Key; since: number }
  | { type: "trigger.run"; flowId: string; seq: number; key: Key; run: RunRecord }
  | { type: "trigger.standby"; flowId: string; holder: string }
  /**
   * The run a daemon that held the trigger before this one was running when it died, recorded
   * abandoned once its heartbeat was stale (with the sub-runs it left running).
   */
  | { type: "trigger.abandoned"; flowId: string; runId: string }
  | {
    type: "trigger.reset";
    flowId: string;
    store: string;
    /**
     * The stored position that could not be trusted (`store`: the flow's
     * position in another store: the one an older version had stored, else
     * the first in key order).
     */
    previous: TriggerPosition;
    /** The changes after this sequence number are delivered. */
    since: number;
    /**
     * `store`: the flow has positions in other stores but none in this one
     * (it now watches another store); `feed`: the store's feed was reset.
     */
    reason: "store" | "feed";
    /** What happened and what the trigger does, as a sentence. */
    message: string;
  }
  /**
   * An edit of the flow files applied to the change triggers (see
   * {@linkcode ChangeTriggers.update}): a trigger `added` (a new flow file,
   * or a trigger added to one), `changed` (another store or prefix: the new
   * one delivers the changes after `since`, the feed's end then, unless a
   * position written for that store and prefix is stored), `removed` (no
   * more runs; its position stays stored), or `updated` (the flow changed,
   * not its trigger: its next runs use it, from the stored position), or
   * `recovered` (its file's trigger, refused by an `error` event before, can
   * be used again; what the fix changes is another event).
   */
  | {
    type: "trigger.reload";
    flowId: string;
    file: string;
    action: "added" | "changed" | "removed" | "updated" | "recovered";
    store: string;
    prefix: Key;
    /** For `changed`: the store and prefix it watched before. */
    previous?: { store: string; prefix: Key };
    /** For `added` and `changed`: the last change of the store's feed when the edit applied. */
    since?: number;
  }
  | { type: "error"; flowId: string; error: unknown };

/**
 * Options for {@linkcode startChangeTriggers}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import { type ChangeTriggersOptions, startChangeTriggers } from "@flowstate/core/scheduler";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory", changes: { keep: "1d" } } } } });
 * const options: ChangeTriggersOptions = { runnerId: "daemon-1", leaseMs: 10_000, onEvent: () => {} };
 * const triggers = await startChangeTriggers(rt, options);
 * assert.equal(triggers.triggers.length, 0); // no flow declares a trigger here
 * await triggers.stop();
 * ```
 */
export interface ChangeTriggersOptions {
  /** This runner's id in the leases (default `<hostname>:<pid>`). */
  runnerId?: string;
  /** Lease lifetime in ms (default 30 s): how soon another daemon takes over a dead one's trigger. */
  leaseMs?: number;
  /** Receives events. */
  onEvent?: (event: ChangeTriggerEvent) => void;
}

/**
 * Running change triggers; {@linkcode startChangeTriggers} makes them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import { type ChangeTriggers, startChangeTriggers } from "@flowstate/core/scheduler";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory", changes: { keep: "1d" } } } } });
 * const triggers: ChangeTriggers = await startChangeTriggers(rt);
 * assert.deepEqual(triggers.triggers, []);
 * await triggers.update([]); // the flow files as they are now: none declares a trigger
 * await triggers.stop({ graceMs: 1_000 }); // waits for runs in progress, then cancels the rest
 * ```
 */
export interface ChangeTriggers {
  /** The triggers running now (loaded at start, then as {@linkcode ChangeTriggers.update} applied). */
  readonly triggers: readonly ChangeTriggerSpec[];
  /**
   * Apply the flow files as they are now (every flow file under `flows:`
   * with its flow, parsed and prepared; the daemon passes what its
   * scheduler read): each change is a `trigger.reload` event.
   *
   * - A flow whose trigger (store and prefix) did not change runs as it is
   *   now from its next change on: its position and its run in progress
   *   stay, nothing is delivered again.
   * - A trigger added, or changed to another store or prefix, delivers the
   *   changes after the end of its store's feed as this applies, unless the
   *   position stored for its flow and store was written for that prefix:
   *   then it resumes from it (a trigger removed and added back, or moved
   *   back). A changed one starts once the old one's run in progress ended
   *   and stored its position.
   * - A trigger removed (its flow file, or its `trigger:`, gone) takes no
   *   more changes; its run in progress ends as it would. Its position stays
   *   stored (`flowstate state rm` removes it).
   * - A trigger that cannot be used (an unknown store, one without a change
   *   feed, a flow id another trigger has) is an `error` event naming the
   *   file, line and column, once until it changes; the flow's trigger goes
   *   on as it was until the file is fixed.
   *
   * Calls are applied one after the other. Resolves when applied (it does
   * not wait for runs in progress).
   */
  update(flows: readonly { file: string; flow: ParsedFlow }[]): Promise<void>;
  /**
   * Stop: take no new change, wait up to `graceMs` for the runs in progress
   * (their changes' positions are then stored), cancel the rest (their
   * changes are delivered again at the next start).
   */
  stop(options?: { graceMs?: number }): Promise<void>;
}

const DEFAULT_LEASE_MS = 30_000;
/** After an error, a trigger starts again from its stored position after this long (ms), doubled at each error in a row. */
const RETRY_FIRST_MS = 1_000;
/** The longest wait between two starts after errors in a row (ms). */
const RETRY_MAX_MS = 60_000;

/**
 * The flows of the config with `trigger: { changes }`, checked: the store is
 * configured and keeps a change feed. A problem is a `ConfigError` naming the
 * flow file, line and column.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { join } from "node:path";
 * import { openRuntime } from "@flowstate/core";
 * import { loadChangeTriggers } from "@flowstate/core/scheduler";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(
 *   join(dir, "on-order.flow.yaml"),
 *   `id: on-order
 * trigger:
 *   changes: { store: main, prefix: [orders] }
 * nodes:
 *   - { id: seen, type: state.increment, with: { key: [seen] } }
 * `,
 * );
 * {
 *   await using rt = await openRuntime({
 *     config: {
 *       stores: { main: { plugin: "memory", changes: { keep: "1d" } } },
 *       flows: [dir],
 *     },
 *   });
 *   const [spec] = await loadChangeTriggers(rt);
 *   assert.equal(spec.flowId, "on-order");
 *   assert.equal(spec.store, "main");
 *   assert.deepEqual(spec.prefix, ["orders"]);
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadChangeTriggers(runtime: Runtime): Promise<ChangeTriggerSpec[]> {
  const config: ResolvedConfig = runtime.config;
  const out: ChangeTriggerSpec[] = [];
  // Every flow's problems at once: a daemon refused for one bad trigger must not be refused
  // again for the next one after it is fixed.
  const problems: string[] = [];
  const feedOn = async (store: string) => (await (await runtime.store(store)).feedInfo()).enabled;
  for (const file of await flowFiles(config)) {
    const parsed = await asConfigError(
      "load",
      file,
      () => loadFlowFile(file, parseOptionsOf(runtime)),
    );
    const trigger = parsed.definition.trigger?.changes;
    if (trigger === undefined) continue;
    await asConfigError("load", file, () => prepareConfiguredFlow(runtime, parsed));
    const found = await triggerProblems(parsed, config, feedOn);
    if (found.length > 0) {
      problems.push(...found.map((p) => formatProblem(p, file, file)));
      continue;
    }
    if (out.some((t) => t.flowId === parsed.definition.id)) {
      const at = parsed.locate(["id"]);
      problems.push(
        `${
          at === undefined ? file : `${file}:${at.line}:${at.column}`
        }: two flows with id "${parsed.definition.id}" declare a change trigger; flow ids must be unique`,
      );
      continue;
    }
    out.push({
      flowId: parsed.definition.id,
      file,
      flow: parsed,
      store: trigger.store ?? config.scopes.global,
      prefix: trigger.prefix ?? [],
    });
  }
  if (problems.length > 0) throw new ConfigError(problems.join("\n"));
  return out;
}

/**
 * What is wrong with a flow's change trigger for a config (`[]` without a
 * trigger, or when it is right): its store is not in the config, or keeps no
 * change feed (`feedOn`, by store name). `flowstate validate` reports these
 * with the flow's other problems; the daemon refuses to start on them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadConfig } from "@flowstate/core";
 * import { loadFlow } from "@flowstate/core/flow";
 * import { triggerProblems } from "./change_triggers.ts";
 *
 * const config = await loadConfig({ config: { stores: { main: { plugin: "memory" } } } });
 * const { parsed } = await loadFlow({
 *   id: "on-user",
 *   trigger: { changes: { prefix: ["users"] } },
 *   nodes: [{ id: "a", type: "log", with: { message: "hi" } }],
 * });
 * const [problem] = await triggerProblems(parsed, config, () => false);
 * assert.match(problem.message, /store "main" keeps no change feed/);
 * ```
 */
export async function triggerProblems(
  parsed: ParsedFlow,
  config: ResolvedConfig,
  feedOn: (store: string) => boolean | Promise<boolean>,
): Promise<Problem[]> {
  const trigger = parsed.definition.trigger?.changes;
  if (trigger === undefined) return [];
  const at = (path: string[]): Problem => ({ message: "", path, ...parsed.locate(path) });
  const stores = Object.keys(config.stores);
  const store = trigger.store ?? config.scopes.global;
  if (!stores.includes(store)) {
    return [{
      ...at(["trigger", "changes", "store"]),
      message: `no store "${store}" in the config (stores: ${stores.join(", ")})`,
    }];
  }
  if (!(await feedOn(store))) {
    return [{
      ...at(["trigger", "changes"]),
      message: `store "${store}" keeps no change feed; add changes: { keep: 30d } to ` +
        `stores.${store} in the config`,
    }];
  }
  return [];
}

/** The run's inputs: the change's fields the flow declares. */
function inputsOf(spec: ChangeTriggerSpec, change: Change): Record<string, JsonValue> {
  const declared = spec.flow.definition.inputs ?? {};
  const fields: Record<string, JsonValue> = {
    key: [...change.key],
    op: change.op,
    value: change.value ?? null,
    seq: change.seq,
    at: change.at,
    by: change.by as JsonValue,
    expiresAt: change.expiresAt,
    store: spec.store,
  };
  fields.change = { ...fields, version: change.version, previousVersion: change.previousVersion };
  const out: Record<string, JsonValue> = {};
  for (const name of Object.keys(fields)) if (name in declared) out[name] = fields[name];
  return out;
}

/** Whether `change` is one the trigger delivers. */
function delivers(spec: ChangeTriggerSpec, change: Change): boolean {
  if (!hasPrefix(change.key, spec.prefix)) return false;
  // Flowstate's own records trigger only a prefix that names them.
  return !(change.key[0] === "flowstate" && spec.prefix[0] !== "flowstate");
}

/**
 * Load the change triggers of the runtime's flows and start delivering
 * changes (see the module documentation). Rejects with a `ConfigError` for a
 * trigger on an unknown store or one without a feed, before any starts.
 *
 * @example
 * ```ts
 * import { startChangeTriggers } from "@flowstate/core/scheduler";
 * import { openRuntime } from "@flowstate/core";
 * import assert from "node:assert/strict";
 *
 * await using rt = await openRuntime({
 *   config: { stores: { main: { plugin: "memory", changes: { keep: "1d" } } } },
 * });
 * const triggers = await startChangeTriggers(rt); // no flow declares one here
 * assert.equal(triggers.triggers.length, 0);
 * await triggers.stop();
 * ```
 */
export async function startChangeTriggers(
  runtime: Runtime,
  options: ChangeTriggersOptions = {},
): Promise<ChangeTriggers> {
  const specs = await loadChangeTriggers(runtime);
  const stop = new AbortController();
  const cancel = new AbortController();
  const records = await runtime.store(runtime.config.records);
  const runnerId = options.runnerId ?? `${Deno.hostname()}:${Deno.pid}`;
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  // A listener's failure (a throw, or an async one's rejection) is not the trigger's.
  const emit = (event: ChangeTriggerEvent) => {
    const onEvent = options.onEvent;
    if (onEvent !== undefined) callGuarded(() => onEvent(event), () => {});
  };
  /** The triggers running, by flow id. */
  const active = new Map<string, ActiveTrigger>();
  /** Every loop started (those of removed or changed triggers too, until they end). */
  const loops = new Set<Promise<void>>();
  /** Each flow's latest loop: a trigger changed or added back starts once it ended. */
  const latest = new Map<string, Promise<void>>();
  const start = (spec: ChangeTriggerSpec, fresh?: { since: number }) => {
    const own = new AbortController();
    const trigger: ActiveTrigger = { spec, stop: own, ...(fresh === undefined ? {} : { fresh }) };
    const loop = (latest.get(spec.flowId) ?? Promise.resolve()).then(() =>
      runTrigger(runtime, records, trigger, {
        runnerId,
        leaseMs,
        stop: AbortSignal.any([stop.signal, own.signal]),
        cancel: cancel.signal,
        emit,
      }).catch((error) => emit({ type: "error", flowId: spec.flowId, error }))
    );
    loops.add(loop);
    latest.set(spec.flowId, loop);
    loop.finally(() => {
      loops.delete(loop);
      if (latest.get(spec.flowId) === loop) latest.delete(spec.flowId);
    });
    active.set(spec.flowId, trigger);
  };
  for (const spec of specs) start(spec);
  /** The problem last said for each flow file (said again only when it changes). */
  const said = new Map<string, string>();
  const feedOn = async (store: string) => (await (await runtime.store(store)).feedInfo()).enabled;
  const feedEnd = async (store: string) => (await (await runtime.store(store)).feedInfo()).lastSeq;

  /** A `trigger.reload` event about `spec`. */
  const tell = (
    action: ReloadAction,
    spec: ChangeTriggerSpec,
    more: { previous?: { store: string; prefix: Key }; since?: number } = {},
  ) => {
    const { flowId, file, store, prefix } = spec;
    emit({ type: "trigger.reload", flowId, file, action, store, prefix, ...more });
  };

  /** The flows last applied, by file: the same again (no file changed) is not looked at. */
  let lastFlows = new Map<string, ParsedFlow>();

  async function apply(flows: readonly { file: string; flow: ParsedFlow }[]): Promise<void> {
    if (stop.signal.aborted) return;
    if (flows.length === lastFlows.size && flows.every((f) => lastFlows.get(f.file) === f.flow)) {
      return;
    }
    const config = runtime.config;
    const wanted = new Map<string, ChangeTriggerSpec>();
    // Flows whose trigger cannot be used now: the one they had goes on.
    const held = new Set<string>();
    const problems = new Map<string, string>();
    const byId = new Map<string, { file: string; flow: ParsedFlow }[]>();
    for (const entry of flows) {
      if (entry.flow.definition.trigger?.changes === undefined) continue;
      const id = entry.flow.definition.id;
      byId.set(id, [...byId.get(id) ?? [], entry]);
    }
    for (const [id, entries] of byId) {
      // Two files, one id: the file that has the trigger now keeps it.
      const running = active.get(id)?.spec.file;
      const first = entries.find((e) => e.file === running) ?? entries[0];
      for (const { file, flow } of entries) {
        if (file !== first.file) {
          const at = flow.locate(["id"]);
          problems.set(
            file,
            `${
              at === undefined ? file : `${file}:${at.line}:${at.column}`
            }: two flows with id "${id}" declare a change trigger (the other: ${first.file}); flow ids must be unique`,
          );
          continue;
        }
        const found = await triggerProblems(flow, config, feedOn);
        if (found.length > 0) {
          problems.set(file, found.map((p) => formatProblem(p, file, file)).join("; "));
          held.add(id);
          continue;
        }
        const trigger = flow.definition.trigger!.changes!;
        wanted.set(id, {
          flowId: id,
          file,
          flow,
          store: trigger.store ?? config.scopes.global,
          prefix: trigger.prefix ?? [],
        });
      }
    }
    for (const [file, problem] of problems) {
      if (said.get(file) === problem) continue;
      emit({
        type: "error",
        flowId: byIdOf(file, flows),
        error: new ConfigError(
          `flow file ${file}: its change trigger cannot be used (the trigger it had, if any, goes on as it was until the file is fixed): ${problem}`,
        ),
      });
    }
    // A problem said before and gone: said too (what the fixed file changes is said below).
    for (const file of said.keys()) {
      if (problems.has(file)) continue;
      const spec = [...wanted.values()].find((w) => w.file === file) ??
        [...active.values()].map((t) => t.spec).find((t) => t.file === file);
      if (spec === undefined) continue;
      tell("recovered", spec);
    }
    said.clear();
    for (const [file, problem] of problems) said.set(file, problem);
    for (const [id, trigger] of [...active]) {
      const next = wanted.get(id);
      const was = trigger.spec;
      if (next === undefined) {
        if (held.has(id)) continue;
        trigger.stop.abort();
        active.delete(id);
        tell("removed", was);
        continue;
      }
      wanted.delete(id);
      if (next.store === was.store && samePrefix(next.prefix, was.prefix)) {
        // The same trigger: the loop runs the flow as it is now from its next change.
        if (next.flow === was.flow) continue;
        trigger.spec = next;
        if (next.flow.source !== was.flow.source || next.file !== was.file) {
          tell("updated", next);
        }
        continue;
      }
      // Stopped first, then the feed's end read: a change the old one still runs is before it.
      trigger.stop.abort();
      const since = await feedEnd(next.store);
      start(next, { since });
      tell("changed", next, { previous: { store: was.store, prefix: was.prefix }, since });
    }
    for (const spec of wanted.values()) {
      const since = await feedEnd(spec.store);
      start(spec, { since });
      tell("added", spec, { since });
    }
    lastFlows = new Map(flows.map((f) => [f.file, f.flow]));
  }

  let updating: Promise<void> = Promise.resolve();
  return {
    get triggers() {
      return [...active.values()].map((t) => t.spec);
    },
    update(flows) {
      const applied = updating.then(() => apply(flows));
      updating = applied.catch(() => {});
      return applied;
    },
    async stop(stopOptions = {}) {
      stop.abort();
      await updating;
      const grace = stopOptions.graceMs ?? 30_000;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const all = Promise.all([...loops]);
      const timedOut = await Promise.race([
        all.then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), grace);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        cancel.abort();
        await all;
      }
    },
  };
}

/** What an edit did to a trigger (see the `trigger.reload` event). */
type ReloadAction = Extract<ChangeTriggerEvent, { type: "trigger.reload" }>["action"];

/** The flow id of `file` among `flows` (for an event about it). */
function byIdOf(file: string, flows: readonly { file: string; flow: ParsedFlow }[]): string {
  return flows.find((f) => f.file === file)?.flow.definition.id ?? "";
}

/** Whether two key prefixes are the same (`undefined`: not recorded, never the same). */
function samePrefix(a: Key | undefined, b: Key): boolean {
  return a !== undefined && Array.isArray(a) && a.length === b.length &&
    a.every((part, i) => part === b[i]);
}

/** A trigger the runner runs: its spec (its flow replaced by an edit that keeps the trigger). */
interface ActiveTrigger {
  spec: ChangeTriggerSpec;
  /** Aborted when an edit removes or changes the trigger. */
  stop: AbortController;
  /**
   * Started or changed by an edit: at its first delivery, the changes after
   * `since` are delivered unless its position was written for its prefix.
   */
  fresh?: { since: number };
}

interface LoopContext {
  runnerId: string;
  leaseMs: number;
  stop: AbortSignal;
  cancel: AbortSignal;
  emit: (event: ChangeTriggerEvent) => void;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

async function runTrigger(
  runtime: Runtime,
  records: Store,
  trigger: ActiveTrigger,
  ctx: LoopContext,
): Promise<void> {
  // Its flow id, store and prefix stay (an edit of those starts another loop); its flow may not.
  const spec = trigger.spec;
  const leaseKey = [...TRIGGERS_PREFIX, spec.flowId, "lease"];
  const positionKey = triggerPositionKey(spec.flowId, spec.store);
  let reportedStandby = false;
  let store: Store | undefined;
  // Errors in a row: an error (a store locked or unreachable, a change that cannot be read or
  // run) never ends the trigger, since its changes would then wait unseen while the daemon runs.
  // It starts again from its stored position (at least once: nothing is skipped), later each time.
  let errors = 0;
  while (!ctx.stop.aborted) {
    try {
      store ??= await runtime.store(spec.store);
      const taken = await Lease.acquire(records, leaseKey, { runner: ctx.runnerId }, {
        ttl: ctx.leaseMs,
        clock: runtime.clock,
      });
      if (!taken.ok) {
        if (!reportedStandby) {
          reportedStandby = true;
          ctx.emit({
            type: "trigger.standby",
            flowId: spec.flowId,
            holder: (taken.holder?.value as { runner?: string } | undefined)?.runner ?? "?",
          });
        }
        await sleep(Math.max(50, Math.floor(ctx.leaseMs / 3)), ctx.stop);
        continue;
      }
      reportedStandby = false;
      const lease = taken.lease;
      lease.keepAlive({
        onError: (error) => ctx.emit({ type: "error", flowId: spec.flowId, error }),
      });
      // The run a dead holder left running ends abandoned, without holding back the changes.
      endAbandoned(runtime, records, spec, ctx).catch((error) => {
        if (!ctx.stop.aborted) ctx.emit({ type: "error", flowId: spec.flowId, error });
      });
      try {
        await deliver(runtime, store, records, trigger, lease, positionKey, ctx);
      } finally {
        await lease.release().catch(() => {});
      }
      errors = 0;
    } catch (error) {
      if (ctx.stop.aborted) return;
      const ms = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** errors++);
      ctx.emit({
        type: "error",
        flowId: spec.flowId,
        error: new Error(
          `change trigger of flow "${spec.flowId}" (store "${spec.store}"): ${
            messageOf(error)
          }; starting again from its stored position in ${ms / 1000} s`,
          { cause: error },
        ),
      });
      await sleep(ms, ctx.stop);
    }
  }
}

/**
 * Record abandoned the run the trigger's previous holder named as running
 * (see {@linkcode runningKey}) and the sub-runs it left running, once its
 * heartbeat is stale (`Records.abandonRun`, the check `gc` makes); looked at
 * every heartbeat period until it ends or the daemon stops.
 */
async function endAbandoned(
  runtime: Runtime,
  records: Store,
  spec: ChangeTriggerSpec,
  ctx: LoopContext,
): Promise<void> {
  const marker = await records.get<{ runId?: unknown }>(runningKey(spec.flowId));
  const runId = marker?.value.runId;
  if (typeof runId !== "string") return;
  const runs = await runtime.records();
  while (!ctx.stop.aborted) {
    const run = await runs.getRun(runId);
    if (run === null || run.status !== "running") return;
    const now = runtime.clock.now();
    await runs.abandonSubRuns(new Map([[runId, now]]), { afterMs: MIN_ABANDONED_MS, now });
    if (await runs.abandonRun(runId, { afterMs: MIN_ABANDONED_MS, now }) !== null) {
      ctx.emit({ type: "trigger.abandoned", flowId: spec.flowId, runId });
      return;
    }
    await sleep(HEARTBEAT_MS, ctx.stop);
  }
}

async function deliver(
  runtime: Runtime,
  store: Store,
  records: Store,
  trigger: ActiveTrigger,
  lease: Lease<unknown>,
  positionKey: Key,
  ctx: LoopContext,
): Promise<void> {
  const spec = trigger.spec;
  const prefix = [...spec.prefix];
  // Commit times are read beneath an encrypted store's wrapper: no value is opened for them.
  const feed = sealedView(store);
  /** Store `seq` as the position if the stored one is still at `version` (false: lease lost). */
  const startAt = async (seq: number, version: string | null): Promise<boolean> => {
    const position: TriggerPosition = {
      seq,
      store: spec.store,
      at: await changeTime(feed, seq),
      prefix,
    };
    const done = await lease.commit((op) =>
      op.check(positionKey, version).set(positionKey, position)
    );
    return done.ok;
  };
  const moved = await moveOldPosition(records, spec, lease);
  if (moved === false) return;
  if (trigger.fresh !== undefined) {
    // Added or changed by an edit: from the feed's end then, unless the position stored was
    // written for this prefix (the trigger added back, or another daemon applied the same edit).
    const current = await records.get<TriggerPosition>(positionKey);
    if (current === null || !samePrefix(current.value?.prefix, spec.prefix)) {
      if (!await startAt(trigger.fresh.since, current?.version ?? null)) return;
    }
    trigger.fresh = undefined;
  }
  let stored = await records.get<TriggerPosition>(positionKey);
  let untrusted: { reason: "store" | "feed"; why: string; previous: TriggerPosition } | undefined;
  if (stored === null) {
    // No position in this store: a position in another one says the flow watched it before.
    const other = moved ?? await otherPosition(records, spec);
    if (other === undefined) {
      // First start: changes from now on.
      if (!await startAt((await store.feedInfo()).lastSeq, null)) return;
    } else {
      untrusted = {
        reason: "store",
        why: `its position (change ${other.seq}) is one of store "${other.store}", and the ` +
          `flow now watches store "${spec.store}"`,
        previous: other,
      };
    }
  }
  const { firstSeq, lastSeq } = await store.feedInfo();
  if (stored !== null) {
    const why = await untrustedPosition(feed, spec, stored.value, firstSeq, lastSeq);
    if (why !== undefined) untrusted = { ...why, previous: stored.value };
  }
  if (untrusted !== undefined) {
    // Change firstSeq - 1 is not kept (or is 0): no commit time to record.
    const position: TriggerPosition = { seq: firstSeq - 1, store: spec.store, at: null, prefix };
    const skip = JSON.stringify({ seq: lastSeq, store: spec.store } satisfies TriggerPosition);
    const keyText = formatKey(positionKey);
    const held = firstSeq > lastSeq
      ? "it holds no change yet"
      : `changes ${firstSeq} to ${lastSeq} (every change its feed holds). To skip them ` +
        `instead: stop the daemon, run flowstate state set --store ${shellWord(records.name)} ` +
        `${shellWord(keyText)} ${shellQuote(skip)} --force and start it again`;
    const version = stored?.version ?? null;
    const reset = await lease.commit((op) =>
      op.check(positionKey, version).set(positionKey, position)
    );
    if (!reset.ok) return;
    ctx.emit({
      type: "trigger.reset",
      flowId: spec.flowId,
      store: spec.store,
      previous: untrusted.previous,
      since: position.seq,
      reason: untrusted.reason,
      message: `change trigger of flow "${spec.flowId}": ${untrusted.why}; delivering the ` +
        `changes of store "${spec.store}" from its oldest kept: ${held}`,
    });
  }
  stored = await records.get<TriggerPosition>(positionKey);
  if (stored === null) return;
  let since = stored.value.seq;
  if (firstSeq > since + 1) {
    ctx.emit({
      type: "error",
      flowId: spec.flowId,
      error: new Error(
        `change trigger of flow "${spec.flowId}": the feed of store "${spec.store}" no longer holds ` +
          `changes ${since + 1} to ${
            firstSeq - 1
          } (its retention removed them while no daemon ran ` +
          `the trigger); going on from change ${firstSeq}`,
      ),
    });
    // As said: from the oldest change kept (watching from the stored position would refuse it).
    since = firstSeq - 1;
  }
  ctx.emit({
    type: "trigger.start",
    flowId: spec.flowId,
    store: spec.store,
    prefix: spec.prefix,
    since,
  });
  const watching = AbortSignal.any([ctx.stop, lease.signal]);
  for await (const change of store.watch([spec.prefix], { since, signal: watching })) {
    // Stopped (the daemon stopping, an edit removing or changing the trigger): not run here.
    if (watching.aborted) return;
    // Not written for a change that runs nothing (a position write is a change
    // too: in the records store, that would never end); a restart reads those again.
    if (!delivers(spec, change)) continue;
    let run: RunRecord | undefined;
    let marked: Promise<unknown> | undefined;
    try {
      // The flow as it is now: an edit that kept the trigger reaches the next change.
      const now = trigger.spec;
      run = await runtime.runFlow(now.flow, {
        input: inputsOf(now, change),
        signal: ctx.cancel,
        // Named where a daemon taking the trigger over finds it, should this one die meanwhile.
        onStart: (runId) => {
          marked = lease.commit((op) => op.set(runningKey(spec.flowId), { runId }));
        },
      });
    } catch (err) {
      // Any other error: the trigger starts again from the stored position (this change).
      if (!(err instanceof FlowValidationError)) throw err;
      // The flow refuses this change as its inputs (a delete's null value where an object is
      // declared, say): no retry can change that, and waiting on it would hold back every later
      // change. Said, and passed over.
      ctx.emit({
        type: "error",
        flowId: spec.flowId,
        error: new Error(
          `change trigger of flow "${spec.flowId}": change ${change.seq} (${change.op} ` +
            `${JSON.stringify(change.key)}) was not run, the flow refuses it as its inputs: ` +
            `${messageOf(err).split("\n").join("; ")}; passed over (declare the inputs so that ` +
            `every change under the prefix fits, e.g. value: {} for deletes)`,
          { cause: err },
        ),
      });
    }
    await marked?.catch(() => {}); // a lease lost meanwhile is found by the position's commit
    // Cancelled by the daemon stopping: delivered again at the next start.
    if (run?.status === "cancelled" && ctx.cancel.aborted) return;
    if (run !== undefined) {
      ctx.emit({ type: "trigger.run", flowId: spec.flowId, seq: change.seq, key: change.key, run });
    }
    since = change.seq;
    const position: TriggerPosition = { seq: since, store: spec.store, at: change.at, prefix };
    const saved = await lease.commit((op) => op.set(positionKey, position));
    if (!saved.ok) {
      // Lost the lease: another daemon goes on from the stored position.
      ctx.emit({
        type: "error",
        flowId: spec.flowId,
        error: new Error(
          `change trigger of flow "${spec.flowId}": lost its lease after change ${since}; ` +
            `another daemon goes on from the stored position (${messageOf(lease.signal.reason)})`,
        ),
      });
      return;
    }
    if (ctx.stop.aborted) return;
  }
}

/**
 * Move the position an older version stored for the flow (one per flow, at
 * {@linkcode oldPositionKey}) to the key of its store, in one commit that
 * deletes the old key when it is one of the store this daemon watches. One
 * of another store is copied (marked `copied`, and copied again as it moves)
 * and stays, for older daemons watching that store. Resolves that position
 * (`undefined`: none, `false`: the commit failed, the lease lost). A position
 * this version stored itself for that store is kept: it is never moved
 * forward past changes this version did not deliver; a marked copy gives way
 * to the old key, which only older daemons delivering move.
 */
async function moveOldPosition(
  records: Store,
  spec: ChangeTriggerSpec,
  lease: Lease<unknown>,
): Promise<TriggerPosition | undefined | false> {
  const oldKey = oldPositionKey(spec.flowId);
  const old = await records.get<TriggerPosition>(oldKey);
  if (old === null) return undefined;
  const value = old.value;
  const valid = typeof value === "object" && value !== null && typeof value.seq === "number" &&
    typeof value.store === "string";
  const to = valid ? triggerPositionKey(spec.flowId, value.store) : undefined;
  const there = to === undefined ? null : await records.get<TriggerPosition | null>(to);
  // The old key of another store than this daemon's stays: during a rolling upgrade that also
  // moves the flow to another store, the older daemons (which read only the old key) watch that
  // store, and resume from it. Deleting it would make one of them start from then on, skipping
  // the changes made meanwhile (no daemon of this version watches that store to deliver them).
  const keepOld = valid && value.store !== spec.store;
  // A copy this version made (marked) follows the old key, which older daemons move forward as
  // they deliver; a position this version wrote itself after delivering is never replaced.
  const copy = there !== null && there.value?.copied === true;
  if (keepOld) {
    const unchanged = copy && there.value!.seq === value.seq && there.value!.at === value.at;
    if (there !== null && (!copy || unchanged)) return value;
    const done = await lease.commit((op) =>
      op.check(oldKey, old.version).check(to!, there?.version ?? null).set(to!, {
        ...value,
        copied: true,
      })
    );
    return done.ok ? value : false;
  }
  const done = await lease.commit((op) => {
    op.check(oldKey, old.version).delete(oldKey);
    if (to !== undefined && there === null) op.check(to, null).set(to, value);
    else if (to !== undefined && copy) op.check(to, there!.version).set(to, value);
  });
  if (!done.ok) return false;
  return valid ? value : undefined;
}

/** One of the flow's positions in another store than `spec.store` (the first in key order). */
async function otherPosition(
  records: Store,
  spec: ChangeTriggerSpec,
): Promise<TriggerPosition | undefined> {
  const prefix = [...TRIGGERS_PREFIX, spec.flowId, "store"];
  for await (const entry of records.list<TriggerPosition>({ prefix })) {
    const [store, leaf] = entry.key.slice(prefix.length);
    if (entry.key.length === prefix.length + 2 && leaf === "position" && store !== spec.store) {
      return entry.value;
    }
  }
  return undefined;
}

/**
 * Why a stored position is not one of `spec.store`'s feed (`undefined`: it
 * is): it names another store, or the feed was reset (it ends before the
 * position, or its change at the position was committed at another time
 * than the one delivered).
 */
async function untrustedPosition(
  feed: Store,
  spec: ChangeTriggerSpec,
  position: TriggerPosition,
  firstSeq: number,
  lastSeq: number,
): Promise<{ reason: "store" | "feed"; why: string } | undefined> {
  if (position.store !== spec.store) {
    return {
      reason: "store",
      why: `its position (change ${position.seq}) is one of store "${position.store}", and the ` +
        `flow now watches store "${spec.store}"`,
    };
  }
  const reset = `the feed of store "${spec.store}" was reset (the store's file recreated, ` +
    `restored or replaced)`;
  if (lastSeq < position.seq) {
    return {
      reason: "feed",
      why:
        `${reset}: it ends at change ${lastSeq}, before the trigger's position (change ${position.seq})`,
    };
  }
  if (typeof position.at !== "number" || position.seq < firstSeq) return undefined;
  const at = await changeTime(feed, position.seq);
  if (at === position.at) return undefined;
  return {
    reason: "feed",
    why: `${reset}: its change ${position.seq} is not the one the trigger delivered (committed at ${
      at === null ? "?" : new Date(at).toISOString()
    }, not ${new Date(position.at).toISOString()})`,
  };
}

/** `text` as one word of a POSIX shell: as it is when it holds nothing a shell reads, else quoted. */
function shellWord(text: string): string {
  return /^[A-Za-z0-9_./:@=+,-]+$/.test(text) ? text : shellQuote(text);
}
