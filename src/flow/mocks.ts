/**
 * Node mocks (`RunFlowOptions.mocks`): a test replaces nodes of a flow by
 * their id, so that a flow whose nodes call the outside world (`http`,
 * `exec`, custom nodes, `queue`) runs without it. A mocked node's `with` is
 * still evaluated and checked; its run is the mock's value, or the mock
 * called with what the node would have run with. The run's record marks
 * the node `mocked: true`.
 *
 * Keys: a node id of the flow run, or `"flowNode/child"` for node `child`
 * of the sub-flow that node `flowNode` starts (any depth: `"a/b/c"`).
 *
 * @module
 */
import { didYouMean } from "../_suggest.ts";
import { serializeValue } from "../store/values.ts";
import type { JsonValue } from "../store/types.ts";
import { dirname, resolve } from "../_path.ts";
import { builtinNodes } from "./nodes.ts";
import type { FlowDefinition } from "./types.ts";

/**
 * What a mock function of {@linkcode NodeMocks} is called with, once per
 * attempt of its node (per item under `forEach:`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type NodeMockCall, openRuntime } from "@flowstate/core";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const calls: NodeMockCall[] = [];
 * const run = await rt.runFlow({
 *   id: "notify",
 *   nodes: [{ id: "post", type: "http", permissions: { net: ["hooks.example.com"] },
 *     with: { url: "https://hooks.example.com/x", method: "POST", body: { text: "hi" } } }],
 * }, { mocks: { post: (call) => (calls.push(call), { status: 200 }) } });
 * assert.equal(run.status, "succeeded");
 * assert.equal(calls[0].attempt, 1);
 * assert.deepEqual((calls[0].with as { body: unknown }).body, { text: "hi" });
 * ```
 */
export interface NodeMockCall {
  /** The node's id. */
  node: string;
  /** The node's `with:`, evaluated and checked against its type's options schema. */
  with: unknown;
  /** The attempt, from 1 (a `retry:` makes more when the mock throws). */
  attempt: number;
  /** Under `forEach:`: the item this call is for. */
  item?: JsonValue;
  /** Under `forEach:`: the item's index in the list. */
  index?: number;
  /** Aborted when the attempt is stopped (its `timeout:`, the run cancelled or timed out) or over. */
  signal: AbortSignal;
  /** The run's id. */
  runId: string;
  /** The flow's id. */
  flowId: string;
}

/**
 * A mock of one node: its output (any JSON value, `null` for none), or a
 * function of the {@linkcode NodeMockCall} returning the output (or a
 * promise of it). A function that throws (or rejects) fails the attempt, as
 * the node failing would: `retry:`, `continueOnError` and `when: on_failure`
 * nodes then behave as for a real failure.
 *
 * @example
 * ```ts
 * import type { NodeMock } from "@flowstate/core";
 * const ok: NodeMock = { status: 200, body: "ok" };
 * const down: NodeMock = () => {
 *   throw new Error("503 Service Unavailable");
 * };
 * void ok, down;
 * ```
 */
export type NodeMock = JsonValue | ((call: NodeMockCall) => unknown);

/**
 * Mocks by node id (see {@linkcode NodeMock}). A key `"a/b"` mocks node `b`
 * of the sub-flow that node `a` runs (a `flow` node, or a custom node's
 * `ctx.runFlow`); deeper sub-flows add more parts (`"a/b/c"`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type NodeMocks, openRuntime } from "@flowstate/core";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const mocks: NodeMocks = { fetch: { rows: 3 } };
 * const run = await rt.runFlow({
 *   id: "count",
 *   nodes: [
 *     { id: "fetch", type: "http", permissions: { net: ["db.example.com"] },
 *       with: { url: "https://db.example.com/rows" } },
 *     { id: "report", type: "transform", needs: ["fetch"],
 *       with: { value: "${{ nodes.fetch.output.rows }} rows" } },
 *   ],
 * }, { mocks });
 * assert.equal(run.nodes.report.output, "3 rows");
 * assert.equal(run.nodes.fetch.mocked, true);
 * ```
 */
export type NodeMocks = Record<string, NodeMock>;

/** The mocks of one run, split: its own nodes', and its sub-flows' by the calling node's id. */
export interface MockLevel {
  /** Mocks of the run's own nodes. */
  own: Map<string, NodeMock>;
  /** Mocks of sub-flows' nodes, by the id of the node that runs the sub-flow (keys without it). */
  nested: Map<string, NodeMocks>;
}

/**
 * Check `mocks` as given to `runFlow` (before anything runs): a plain object,
 * each value a function or JSON. A `TypeError` says which and why.
 */
export function checkMocks(mocks: unknown): void {
  if (typeof mocks !== "object" || mocks === null || Array.isArray(mocks)) {
    throw new TypeError(
      `Cannot run flow: option mocks must be an object of node ids to outputs or functions (got ${
        Array.isArray(mocks) ? "a list" : mocks === null ? "null" : typeof mocks
      })`,
    );
  }
  for (const [key, mock] of Object.entries(mocks)) {
    if (key.split("/").some((part) => part === "")) {
      throw new TypeError(
        `Cannot run flow: mocks key ${
          JSON.stringify(key)
        } has an empty part; a key is a node id, or "flowNode/child" for a node of a sub-flow`,
      );
    }
    if (typeof mock === "function") continue;
    if (mock === undefined) {
      throw new TypeError(
        `Cannot run flow: mocks.${key} is undefined; give the node's output (null for none) or a function`,
      );
    }
    serializeValue(mock, `Cannot run flow: mocks.${key} is not JSON (a node's output is JSON)`);
  }
}

/** `mocks` split into the run's own and its sub-flows' (see {@linkcode MockLevel}). */
export function mockLevel(mocks: NodeMocks | undefined): MockLevel | undefined {
  if (mocks === undefined) return undefined;
  const level: MockLevel = { own: new Map(), nested: new Map() };
  for (const [key, mock] of Object.entries(mocks)) {
    const slash = key.indexOf("/");
    if (slash < 0) {
      level.own.set(key, mock);
      continue;
    }
    const node = key.slice(0, slash);
    let sub = level.nested.get(node);
    if (sub === undefined) level.nested.set(node, sub = {});
    sub[key.slice(slash + 1)] = mock;
  }
  return level.own.size === 0 && level.nested.size === 0 ? undefined : level;
}

/**
 * The ids of `level` that are no node of `flowId` (whose nodes are `ids`): a
 * `TypeError` naming the first, with the closest id. `path` is the sub-flow
 * keys' prefix (`"a/"`), for the message.
 */
export function assertMockedNodesExist(
  level: MockLevel,
  flowId: string,
  ids: readonly string[],
  path = "",
): void {
  const known = new Set(ids);
  for (const id of [...level.own.keys(), ...level.nested.keys()]) {
    if (known.has(id)) continue;
    const key = path + (level.own.has(id) ? id : `${id}/…`);
    throw new TypeError(
      `Cannot run flow ${flowId}: mocks names node ${JSON.stringify(id)} (key ${
        JSON.stringify(key)
      }), which the flow does not have${didYouMean(id, ids)}; its nodes are ${ids.join(", ")}`,
    );
  }
}

/**
 * The sub-flow keys of `level` (`"a/b"`) checked before the run starts, as
 * far as the flow file tells: `a` must not be mocked itself (its sub-flow
 * would not run), must be a node that can run a sub-flow (a `flow` node, or
 * a custom node through `ctx.runFlow`), and when it is a `flow` node whose
 * `flow:` is written out (a path without templates, or a definition), `b`
 * must be a node of that flow (and so on down). A `TypeError` otherwise.
 * Keys under a sub-flow known only at run time are checked when it starts.
 */
export async function assertSubFlowMocks(
  level: MockLevel,
  def: FlowDefinition,
  baseDir: string,
  nodeTypes: ReadonlySet<string>,
  path = "",
): Promise<void> {
  for (const [id, sub] of level.nested) {
    const key = `${path}${id}`;
    if (level.own.has(id)) {
      throw new TypeError(
        `Cannot run flow ${def.id}: mocks has both ${JSON.stringify(key)} and keys under ${
          JSON.stringify(`${key}/`)
        }; node ${id} is mocked, so the sub-flow it would run does not run: drop one of them`,
      );
    }
    const spec = def.nodes.find((n) => n.id === id);
    if (spec === undefined) continue; // named by assertMockedNodesExist
    const builtin = builtinNodes.has(spec.type) && !nodeTypes.has(spec.type);
    if (builtin && spec.type !== "flow") {
      throw new TypeError(
        `Cannot run flow ${def.id}: mocks key ${
          JSON.stringify(`${key}/${Object.keys(sub)[0]}`)
        } names a node of a sub-flow of node ${id}, which is a ${spec.type} node and runs no sub-flow; a key "a/b" is for node b of the sub-flow that node a (a flow node) runs`,
      );
    }
    if (!builtin) continue;
    const target = (spec.with as Record<string, unknown> | undefined)?.flow;
    let child: { def: FlowDefinition; baseDir: string } | undefined;
    try {
      const { loadFlowFile, validateFlow } = await import("./parse.ts");
      const types = new Set([...builtinNodes.keys(), ...nodeTypes]);
      if (typeof target === "string" && !target.includes("${{")) {
        const file = resolve(baseDir, target);
        const parsed = await loadFlowFile(file, { nodeTypes: types });
        child = { def: parsed.definition, baseDir: dirname(file) };
      } else if (typeof target === "object" && target !== null && !Array.isArray(target)) {
        child = { def: validateFlow(target, { nodeTypes: types }).definition, baseDir };
      }
    } catch {
      // A sub-flow that does not load fails its node when it runs, saying why.
    }
    if (child === undefined) continue;
    const subLevel = mockLevel(sub)!;
    assertMockedNodesExist(subLevel, child.def.id, child.def.nodes.map((n) => n.id), `${key}/`);
    await assertSubFlowMocks(subLevel, child.def, child.baseDir, nodeTypes, `${key}/`);
  }
}

/**
 * A node mock (see `RunFlowOptions.mocks`) that keeps every call it gets:
 * what {@linkcode recordCalls} returns.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type RecordedCalls, recordCalls } from "@flowstate/core/testing";
 *
 * const mock: RecordedCalls = recordCalls("done");
 * assert.deepEqual(mock.calls, []);
 * ```
 */
export interface RecordedCalls {
  /** The mock itself: records `call`, then answers as the `respond` given to `recordCalls`. */
  (call: NodeMockCall): unknown;
  /** Every call so far, in order (one per attempt, per item under `forEach:`). */
  readonly calls: NodeMockCall[];
}

/**
 * A node mock that records each call (its node's evaluated `with`, the
 * attempt, the item under `forEach:`…) in `.calls`, then answers as
 * `respond` says: the node's output (default `null`), or a function of the
 * call (which may throw to fail the attempt, or return a promise).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import { recordCalls } from "@flowstate/core/testing";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const notify = recordCalls({ status: 200, body: "ok" });
 * const run = await rt.runFlow({
 *   id: "alert",
 *   nodes: [{
 *     id: "notify",
 *     type: "http",
 *     permissions: { net: ["hooks.slack.com"] },
 *     with: { url: "https://hooks.slack.com/services/T0", method: "POST", body: { text: "disk full" } },
 *   }],
 * }, { mocks: { notify } });
 * assert.equal(run.status, "succeeded");
 * assert.equal(notify.calls.length, 1);
 * // What the node would have sent (its options as checked, defaults filled in).
 * const sent = notify.calls[0].with as { url: string; method: string; body: unknown };
 * assert.equal(sent.method, "POST");
 * assert.deepEqual(sent.body, { text: "disk full" });
 * ```
 */
export function recordCalls(respond: NodeMock = null): RecordedCalls {
  const calls: NodeMockCall[] = [];
  const mock = (call: NodeMockCall): unknown => {
    calls.push(call);
    return typeof respond === "function" ? respond(call) : respond;
  };
  return Object.assign(mock, { calls });
}
