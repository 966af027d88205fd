/**
 * A run's events as JSON log lines (`--log-format json`), for `flowstate run`
 * and the queue workers of `worker`, `daemon` and `serve`.
 *
 * @module
 */
import type { RunEvent } from "../records/types.ts";
import { logEvent, type LogFields } from "./log_format.ts";

/**
 * A run's events as JSON log lines on stderr: `run.start`, `node.log` at the
 * node's level, `node.attempt` (warn) for a failed attempt, `node.end`
 * (error when it failed, else debug), each with its `runId`, `flow` and,
 * where they apply, `node`, `attempt`, `item`, `status`, `durationMs` and
 * `error`, plus `fields`. A sub-run's lines carry its own run id and flow,
 * and its `run.start` is a debug line. `isTop` says whether a run id is one of
 * the runs started here (default: the first one seen).
 *
 * @example
 * ```ts
 * import { runEventLogger } from "./run_logs.ts";
 * const onEvent = runEventLogger({ worker: "w1" });
 * onEvent({ type: "node.log", at: 0, node: "say", message: "hi", level: "info" }, {
 *   id: "0mxcxif3nfamltx7ev9m",
 *   flowId: "hello",
 * });
 * ```
 */
export function runEventLogger(
  fields: LogFields = {},
  isTop?: (runId: string) => boolean,
): (event: RunEvent, run: { id: string; flowId: string }) => void {
  let first: string | undefined;
  const top = isTop ?? ((id: string) => (first ??= id) === id);
  return (event, run) => {
    const context = { ...fields, runId: run.id, flow: run.flowId };
    switch (event.type) {
      case "run.start":
        if (top(run.id)) {
          logEvent("info", `Running flow "${run.flowId}" (run ${run.id})`, {
            event: "run.start",
            ...context,
          });
        } else {
          logEvent("debug", `sub-run of flow "${run.flowId}" (run ${run.id})`, {
            event: "run.start",
            ...context,
          });
        }
        return;
      case "node.log":
        logEvent(event.level ?? "info", String(event.message ?? ""), {
          event: "node.log",
          ...context,
          node: event.node,
          item: event.item,
        });
        return;
      case "node.attempt":
        if (event.error === undefined) return;
        logEvent("warn", `node ${event.node} attempt ${event.attempt} failed: ${event.error}`, {
          event: "node.attempt",
          ...context,
          node: event.node,
          attempt: event.attempt,
          item: event.item,
          status: "failed",
          error: event.error,
        });
        return;
      case "node.end": {
        const failed = event.status === "failed" || event.status === "timed-out";
        const attempts = event.attempt
          ? ` after ${event.attempt} attempt${event.attempt === 1 ? "" : "s"}`
          : "";
        logEvent(
          failed ? "error" : "debug",
          `node ${event.node} ${event.status}${attempts}${
            event.error === undefined ? "" : `: ${event.error}`
          }`,
          {
            event: "node.end",
            ...context,
            node: event.node,
            attempt: event.attempt || undefined,
            status: event.status,
            durationMs: event.durationMs,
            error: event.error,
            items: event.items,
          },
        );
        return;
      }
    }
  };
}
