/**
 * Signals sent to a run (the `wait` node type): `P, "signals", runId, name,
 * seq` holds one signal not taken yet, `seq` being the send time (15 digits
 * of ms), a count within that ms and a random tail, so that the signals of
 * one name are taken in the order sent (FIFO; two processes sending in the
 * same ms: in either order). A signal is written only beside a `queued` or `running`
 * run, in one commit checking the run's record as read; the run's end
 * (`finishRun`) and its deletion clear every signal it had not taken, in the
 * same commit, so no signal outlives its run.
 *
 * A signal a `wait` node takes becomes that node's for the rest of the run:
 * `P, "signals", rootRunId, "@received", receiver, name` (the node's place in
 * the root run, and which of the attempt's takes of `name` it is), written in the commit that deletes the pending one; a later
 * attempt of the node (a retry after a timeout or a failure after the take,
 * a queued run's next attempt after its worker died) gets it back at once
 * instead of waiting for a signal that is gone. It is cleared with the run's
 * other signal keys. A resumed run is a new run: its `wait` nodes that had
 * not succeeded wait for a signal sent to it.
 *
 * @module
 */
import type { Entry, JsonValue } from "../store/types.ts";
import {
  type RecordsContext,
  RETRY,
  type StoredRun,
  withoutEvents,
  withRetry,
} from "./_context.ts";
import { assertRunId } from "./run_id.ts";
import { getEvents } from "./_runs.ts";
import { listRunSummaries } from "./_listing.ts";
import type { RunEvent, RunRecord } from "./types.ts";
import { waitingLine } from "../flow/_signal_name.ts";
import { getVersion } from "./_versions.ts";
import { didYouMean } from "../_suggest.ts";

import { SIGNAL_NAME } from "../flow/_signal_name.ts";
export { SIGNAL_NAME };

/** The most bytes a signal's data may take as JSON (64 KiB). */
export const MAX_SIGNAL_BYTES = 65_536;

/**
 * One signal as stored (what `Records.takeSignal` resolves).
 *
 * @example
 * ```ts
 * import type { StoredSignal } from "@flowstate/core/records";
 * import assert from "node:assert/strict";
 * const signal: StoredSignal = { name: "approve", data: { by: "ada" }, sentAt: Date.UTC(2026, 0, 1) };
 * assert.equal(signal.name, "approve");
 * ```
 */
export interface StoredSignal {
  /** The signal's name. */
  name: string;
  /** Its data (`null` when sent without). */
  data: JsonValue;
  /** When it was sent (ms since the epoch). */
  sentAt: number;
}

/**
 * What sending a signal did (see `Records.sendSignal`, `Runtime.signalRun`).
 *
 * @example
 * ```ts
 * import type { SignalOutcome } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * const outcome = { kind: "unknown" } as SignalOutcome;
 * assert.equal(outcome.kind === "stored" ? "sent" : "refused", "refused");
 * ```
 */
export type SignalOutcome =
  /**
   * Written beside the run: its `wait` node for that name takes it (now or when it waits).
   * `waiting`: the nodes that were waiting for it, as the run's events recorded so far say
   * (a node that began to wait less than a second ago may not be in it yet).
   */
  | {
    kind: "stored";
    run: RunRecord;
    waiting: string[];
    /**
     * What the run's flow says of the name (see {@linkcode SignalExpectation}):
     * whether one of its `wait` nodes waits for it, and which names they wait for.
     */
    expectation: SignalExpectation;
  }
  /** The run had ended: nothing written. */
  | { kind: "ended"; run: RunRecord }
  /** No run with that id. */
  | { kind: "unknown" };

/** Why `name` cannot name a signal, or `undefined` when it can. */
export function signalNameProblem(name: unknown): string | undefined {
  if (typeof name === "string" && SIGNAL_NAME.test(name)) return undefined;
  return `${
    JSON.stringify(name) ?? String(name)
  } is not a signal name: use 1 to 64 letters, digits, _ and - (like approve or build-done)`;
}

/**
 * The data of a signal as it is stored, checked: JSON, at most
 * {@linkcode MAX_SIGNAL_BYTES} as JSON (a `TypeError` saying what is wrong
 * otherwise). `undefined` is `null`.
 */
export function signalData(data: unknown): JsonValue {
  if (data === undefined) return null;
  let text: string | undefined;
  try {
    text = JSON.stringify(data);
  } catch (err) {
    throw new TypeError(`the signal's data is not JSON: ${(err as Error).message}`);
  }
  if (text === undefined) throw new TypeError("the signal's data is not JSON");
  const bytes = new TextEncoder().encode(text).length;
  if (bytes > MAX_SIGNAL_BYTES) {
    throw new TypeError(
      `the signal's data takes ${bytes} bytes as JSON, over the limit of ${MAX_SIGNAL_BYTES} (64 KiB); send a reference (a URL, a state key) instead`,
    );
  }
  // What is stored is what JSON gives back (no `undefined` properties, no class instances).
  return JSON.parse(text) as JsonValue;
}

let lastSentAt = 0;
let sentInMs = 0;

/**
 * The key of a signal sent at `sentAt`: its time, then a count of the
 * signals this process sent in the same ms (so that they keep their order),
 * then a random tail (so that two processes never write the same key).
 */
function nextSeq(sentAt: number): string {
  sentInMs = sentAt === lastSentAt ? sentInMs + 1 : 0;
  lastSentAt = sentAt;
  return `${String(sentAt).padStart(15, "0")}-${String(sentInMs).padStart(6, "0")}-${
    crypto.randomUUID().slice(0, 8)
  }`;
}

/** Send signal `name` with `data` to run `runId` (see the module documentation). */
export async function sendSignal(
  ctx: RecordsContext,
  runId: string,
  name: string,
  data: unknown,
): Promise<SignalOutcome> {
  const what = `Cannot send signal ${JSON.stringify(name)} to run ${JSON.stringify(runId)}`;
  assertRunId(runId, what);
  const problem = signalNameProblem(name);
  if (problem !== undefined) throw new TypeError(`${what}: ${problem}`);
  let value: JsonValue;
  try {
    value = signalData(data);
  } catch (err) {
    throw new TypeError(`${what}: ${(err as Error).message}`);
  }
  const { store, layout, clock } = ctx;
  const outcome = await withRetry<SignalOutcome>(ctx.retry, what, async () => {
    const entry = await store.get<StoredRun>(layout.run(runId));
    if (entry === null) return { kind: "unknown" };
    const run = withoutEvents(entry.value);
    if (run.status !== "running" && run.status !== "queued") return { kind: "ended", run };
    const sentAt = clock.now();
    const seq = nextSeq(sentAt);
    const signal: StoredSignal = { name, data: value, sentAt };
    // Written only if the run is still as read: never a signal beside an ended run.
    const result = await store.atomic()
      .check(layout.run(runId), entry.version)
      .set(layout.signal(runId, name, seq), signal as unknown as JsonValue)
      .commit();
    return result.ok
      ? {
        kind: "stored",
        run,
        waiting: [],
        expectation: { expected: true, waitSignals: [], unread: [] },
      }
      : RETRY;
  });
  if (outcome.kind === "stored") {
    const running = outcome.run.status === "running" ? await runningChildren(ctx) : new Map();
    if (outcome.run.status === "running") {
      outcome.waiting = (await waitingInTree(ctx, runId, running)).filter((w) => w.signal === name)
        .map((w) => w.node);
    }
    outcome.expectation = await signalExpectation(ctx, runId, outcome.run, name, running);
  }
  return outcome;
}

/**
 * What a run's flow says of a signal name, as far as it is known without
 * running anything: the names its `wait` nodes wait for, those of its sub-flows
 * written in it, and those of its sub-runs running now (their flows as they
 * ran). A custom node may take any name (`ctx.takeSignal`), so a name no
 * `wait` node waits for is kept all the same: this only says so.
 *
 * @example
 * ```ts
 * import type { SignalExpectation } from "@flowstate/core/records";
 * const expectation: SignalExpectation = { expected: false, waitSignals: ["approve"], unread: [] };
 * console.log(expectation.expected ? "waited for" : `its wait nodes wait for ${expectation.waitSignals}`);
 * ```
 */
export interface SignalExpectation {
  /** Whether a `wait` node of the run's flow (or of a sub-flow known) waits for the name. */
  expected: boolean;
  /** The names the `wait` nodes known wait for, sorted, each once. */
  waitSignals: string[];
  /**
   * The sub-flows whose `wait` nodes are not known (a `flow` node naming a file, or computing
   * its flow, whose sub-run is not running now), as `<flow> (node <id>)`.
   */
  unread: string[];
}

/** The running sub-runs of every running run, by parent (a `queue` node's runs are their own). */
async function runningChildren(ctx: RecordsContext): Promise<Map<string, string[]>> {
  const children = new Map<string, string[]>();
  let cursor: string | undefined;
  do {
    const page = await listRunSummaries(ctx, { status: "running", limit: 1000, cursor });
    for (const run of page.runs) {
      if (run.parentRunId === undefined) continue;
      let list = children.get(run.parentRunId);
      if (list === undefined) children.set(run.parentRunId, list = []);
      list.push(run.id);
    }
    cursor = page.cursor;
  } while (cursor !== undefined);
  return children;
}

/** The definition of the flow version `run` ran, or `undefined` (a job's run, a version gone). */
async function definitionOf(
  ctx: RecordsContext,
  run: Pick<RunRecord, "flowId" | "flowVersion">,
): Promise<unknown> {
  try {
    return (await getVersion(ctx, run.flowId, run.flowVersion))?.definition;
  } catch (err) {
    if (err instanceof TypeError) return undefined; // not a flow id (a job's "job:…")
    throw err;
  }
}

/** See {@linkcode SignalExpectation}. */
async function signalExpectation(
  ctx: RecordsContext,
  runId: string,
  run: RunRecord,
  name: string,
  running: ReadonlyMap<string, string[]>,
): Promise<SignalExpectation> {
  const names = new Set<string>();
  const byPath: string[] = [];
  const inline = new Set<string>();
  const visit = (definition: unknown): void => {
    const nodes = (definition as { nodes?: unknown } | undefined)?.nodes;
    if (!Array.isArray(nodes)) return;
    for (const node of nodes) {
      const { id, type, with: options } = (node ?? {}) as {
        id?: unknown;
        type?: unknown;
        with?: { signal?: unknown; flow?: unknown };
      };
      if (type === "wait" && typeof options?.signal === "string") names.add(options.signal);
      if (type !== "flow") continue;
      const flow = options?.flow;
      // A sub-flow written in the flow is read; one named by a file is its sub-run's.
      if (typeof flow === "object" && flow !== null) {
        inline.add(String((flow as { id?: unknown }).id));
        visit(flow);
      } else {
        const named = typeof flow === "string" ? flow : "a computed flow";
        byPath.push(`${named} (node ${String(id)})`);
      }
    }
  };
  visit(await definitionOf(ctx, run));
  // The sub-runs running now (and theirs): their flows as they run.
  const tree = [...(running.get(runId) ?? [])];
  let fromFiles = 0;
  for (let i = 0; i < tree.length; i++) {
    const entry = await ctx.store.get<StoredRun>(ctx.layout.run(tree[i]));
    if (entry === null || entry.value.queue !== undefined) continue;
    // A sub-run of a flow not written inline is that of a flow node naming a file.
    if (!inline.has(entry.value.flowId)) fromFiles++;
    visit(await definitionOf(ctx, entry.value));
    tree.push(...(running.get(tree[i]) ?? []));
  }
  return {
    expected: names.has(name),
    waitSignals: [...names].sort(),
    // Each running sub-run of a file reads one of them: those are known.
    unread: byPath.slice(fromFiles),
  };
}

/**
 * The warning to give when a signal was kept for a run whose flow has no
 * `wait` node waiting for its name (a typo, most often), or `undefined`.
 */
export function unexpectedSignalWarning(
  name: string,
  flowId: string,
  expectation: SignalExpectation,
): string | undefined {
  if (expectation.expected) return undefined;
  const { waitSignals, unread } = expectation;
  return `no wait node of flow ${flowId} waits for ${JSON.stringify(name)}; ${
    waitSignals.length === 0
      ? "it has no wait node"
      : `its wait nodes wait for: ${waitSignals.join(", ")}${didYouMean(name, waitSignals)}`
  }${
    unread.length === 0
      ? ""
      : ` (not counted: the wait nodes of ${unread.join(", ")}, not running now)`
  }. The signal is kept for the run all the same (a custom node may take it with ` +
    "ctx.takeSignal) and is dropped when the run ends";
}

/**
 * The `wait` nodes waiting now in run `runId` and in its running sub-runs
 * (their waits take the signals sent to their ancestors too), each with the
 * run it is in: the run's own first.
 */
export async function waitingInTree(
  ctx: RecordsContext,
  runId: string,
  running?: ReadonlyMap<string, string[]>,
): Promise<(WaitingNode & { runId: string })[]> {
  const children = running ?? await runningChildren(ctx);
  const waiting: (WaitingNode & { runId: string })[] = [];
  const tree = [runId];
  for (let i = 0; i < tree.length; i++) {
    const run = await ctx.store.get<StoredRun>(ctx.layout.run(tree[i]));
    const waits = run === null ? new Set<string>() : await waitNodeIds(ctx, run.value);
    const events = await getEvents(ctx, tree[i]);
    for (const w of waitingNodes(events, waits)) waiting.push({ ...w, runId: tree[i] });
    for (const child of children.get(tree[i]) ?? []) {
      // A run a `queue` node enqueued is a run of its own: it takes only its own signals.
      const entry = await ctx.store.get<StoredRun>(ctx.layout.run(child));
      if (entry !== null && entry.value.queue === undefined) tree.push(child);
    }
  }
  return waiting;
}

/**
 * Take the oldest signal `name` of run `runId` (deleting it, so that no one
 * else takes it), or `null` when there is none. Given several runs (a
 * sub-run's `wait` node: its own id, then its parent's, up to the root run's),
 * the oldest signal `name` sent to any of them, by the time it was sent.
 *
 * With a `receiver` (the taking node's place in the root run, the last of
 * `runIds`: see {@linkcode receivedKey}), the signal taken is recorded as that
 * node's in the same commit that deletes it, and a later call for the same
 * receiver and name resolves that same signal at once: an attempt that took a
 * signal but did not succeed (it timed out or was cancelled while the take
 * was in flight, its worker died) does not lose it, the node's next attempt
 * gets it. The record goes with the root run's other signal keys (its end,
 * its deletion).
 */
export async function takeSignal(
  ctx: RecordsContext,
  runIds: string | readonly string[],
  name: string,
  receiver?: string,
): Promise<StoredSignal | null> {
  const { store, layout } = ctx;
  const ids = typeof runIds === "string" ? [runIds] : runIds;
  const what = `Cannot take signal ${JSON.stringify(name)} of run ${ids[0]}`;
  const mine = receiver === undefined ? undefined : receivedKey(ctx, ids.at(-1)!, receiver, name);
  return await withRetry(ctx.retry, what, async () => {
    let received: Entry<ReceivedSignal> | null = null;
    if (mine !== undefined) {
      received = await store.get<ReceivedSignal>(mine);
      // Taken by an earlier attempt of the same node: its signal still.
      if (received !== null && received.value.name === name) {
        const { seq: _seq, ...signal } = received.value;
        return signal;
      }
    }
    let oldest: Entry<StoredSignal> | undefined;
    for (const id of ids) {
      const [first] = await store.list<StoredSignal>({
        prefix: layout.signal(id, name),
        limit: 1,
      }).nextPage();
      // The last part of the key (its seq) begins with the time it was sent: oldest first.
      if (
        first !== undefined &&
        (oldest === undefined || String(first.key.at(-1)) < String(oldest.key.at(-1)))
      ) {
        oldest = first;
      }
    }
    if (oldest === undefined) return null;
    const op = store.atomic().check(oldest.key, oldest.version).delete(oldest.key);
    if (mine !== undefined) {
      // In the same commit: the signal leaves the pending ones only as this node's.
      const record: ReceivedSignal = { ...oldest.value, seq: String(oldest.key.at(-1)) };
      op.check(mine, received?.version ?? null).set(mine, record as unknown as JsonValue);
    }
    const result = await op.commit();
    return result.ok ? oldest.value : RETRY;
  });
}

/** A signal a node took, as recorded for its later attempts (see {@linkcode takeSignal}). */
interface ReceivedSignal extends StoredSignal {
  /** Its key's last part when it was pending (when and in what order it was sent). */
  seq: string;
}

/**
 * The key of the signal `name` node `receiver` of root run `rootId` took:
 * `P, "signals", rootId, "@received", receiver, name`, under the run's
 * signals (so cleared with them) and apart from the pending ones (`@` is in
 * no signal name). `receiver` is the node's id, after its place in the run's
 * tree for a sub-run's node (see `run_flow.ts`), and with `+n` for the
 * (n+1)th signal `name` one attempt takes (see `executor.ts`). One key per
 * name: a node taking two names keeps both.
 */
function receivedKey(ctx: RecordsContext, rootId: string, receiver: string, name: string) {
  return [...ctx.layout.signal(rootId, RECEIVED, receiver), name];
}

/** The part of the signal keys of a run that holds the ones its nodes took. */
const RECEIVED = "@received";

/** A `wait` node of a run that waits for a signal now (see {@linkcode waitingNodes}). */
export interface WaitingNode {
  /** The node's id. */
  node: string;
  /** The signal it waits for. */
  signal: string;
  /** Its `message`, when it has one. */
  message?: string;
  /** When it began to wait (ms since the epoch). */
  since: number;
}

/**
 * The ids of the nodes whose type is `wait` in the flow version run `run`
 * ran (its `flowId` and `flowVersion`): the only nodes whose waiting line
 * says that they wait (any other node may log the same text). None when the
 * version is not recorded (a job's run, or a version already deleted).
 */
export async function waitNodeIds(
  ctx: RecordsContext,
  run: Pick<RunRecord, "flowId" | "flowVersion">,
): Promise<Set<string>> {
  let version;
  try {
    version = await getVersion(ctx, run.flowId, run.flowVersion);
  } catch (err) {
    if (err instanceof TypeError) return new Set(); // not a flow id (a job's "job:…")
    throw err;
  }
  const nodes = (version?.definition as { nodes?: unknown } | undefined)?.nodes;
  const ids = new Set<string>();
  if (!Array.isArray(nodes)) return ids;
  for (const node of nodes) {
    const { id, type } = (node ?? {}) as { id?: unknown; type?: unknown };
    if (typeof id === "string" && type === "wait") ids.add(id);
  }
  return ids;
}

/**
 * The `wait` nodes of a run waiting for a signal, from its events so far: a
 * node of `waits` (the run's `wait` nodes, see {@linkcode waitNodeIds}) whose
 * attempt logged its waiting line and which has not ended since.
 */
export function waitingNodes(
  events: readonly RunEvent[],
  waits: ReadonlySet<string>,
): WaitingNode[] {
  const waiting = new Map<string, WaitingNode>();
  for (const event of events) {
    if (event.type === "node.log" && waits.has(event.node)) {
      const line = waitingLine(event.message);
      if (line !== undefined) {
        waiting.set(event.node, { node: event.node, ...line, since: event.at });
      }
    } else if (event.type === "node.end" || event.type === "node.attempt" && event.error) {
      waiting.delete(event.node);
    }
  }
  return [...waiting.values()];
}
