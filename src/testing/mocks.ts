/**
 * A mock for `RunFlowOptions.mocks` that keeps what it was called with.
 *
 * @module
 */
import type { NodeMock, NodeMockCall } from "../flow/mocks.ts";

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
 * assert.deepEqual(notify.calls[0].with, {
 *   url: "https://hooks.slack.com/services/T0",
 *   method: "POST",
 *   body: { text: "disk full" },
 * });
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
