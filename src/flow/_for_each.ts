/**
 * A `forEach` node's code beside its items' attempt loop (the executor's `#runItems`): its
 * `node.progress` events, why its other items stop when one fails, and how it ended. Loaded by
 * the first run of a flow with a `forEach` node (see `executor.ts`): a run without one does not
 * parse it.
 *
 * @module
 */
import type { Clock, Timers } from "../clock.ts";
import type { JsonValue } from "../store/types.ts";
import {
  FOR_EACH_PROGRESS_MS,
  MAX_FAILED_ITEMS,
  type NodeItems,
  type NodeStatus,
  type RunEventInit,
} from "../records/types.ts";

/** An item's result, as the executor keeps it (structurally a part of its `NodeResult`). */
export interface ItemResult {
  status: NodeStatus;
  attempts: number;
  output?: JsonValue;
  error?: string;
  items?: NodeItems;
}

/**
 * A running `forEach` node's `node.progress` events: one once an item ended,
 * at most every {@linkcode FOR_EACH_PROGRESS_MS} and never sooner than that
 * after the node started (a node that ends within it records none). The last
 * counts wait for a timer when an item ends too soon after the last event;
 * `stop` (the node ended: `node.end` says it all) drops them.
 */
export class ItemsProgress {
  #succeeded = 0;
  #failed = 0;
  /** Items started and not ended. */
  running = 0;
  readonly #failedItems: number[] = [];
  /** Whether an item ended since the last event. */
  #dirty = false;
  /** When the next event may be recorded (by the run's clock). */
  #nextAt: number;
  /** The timer waiting for `#nextAt`, while one does. */
  #timer: AbortController | null = null;

  constructor(
    readonly host: { readonly timers: Timers; readonly clock: Clock; emit(e: RunEventInit): void },
    readonly node: string,
    readonly count: number,
  ) {
    this.#nextAt = host.clock.now() + FOR_EACH_PROGRESS_MS;
  }

  /** Item `k` ended so. */
  ended(k: number, status: NodeStatus): void {
    this.running--;
    if (status === "succeeded") this.#succeeded++;
    else if (status === "failed" || status === "timed-out") {
      this.#failed++;
      if (this.#failedItems.length < MAX_FAILED_ITEMS) this.#failedItems.push(k);
    } else return; // stopped: the node ends now
    if (this.#succeeded + this.#failed === this.count) return this.stop(); // so does it now
    this.#dirty = true;
    if (this.#timer !== null) return;
    const wait = this.#nextAt - this.host.clock.now();
    if (wait <= 0) return this.#record();
    const timer = this.#timer = new AbortController();
    this.host.timers.sleep(wait, timer.signal).then(() => {
      this.#timer = null;
      this.#record();
    }, () => {});
  }

  /** The node ended: nothing more is recorded. */
  stop(): void {
    this.#dirty = false;
    this.#timer?.abort();
    this.#timer = null;
  }

  #record(): void {
    if (!this.#dirty) return;
    this.#dirty = false;
    this.host.emit({
      type: "node.progress",
      node: this.node,
      count: this.count,
      succeeded: this.#succeeded,
      failed: this.#failed,
      running: this.running,
      ...(this.#failedItems.length === 0 ? {} : { failedItems: [...this.#failedItems] }),
    });
    this.#nextAt = this.host.clock.now() + FOR_EACH_PROGRESS_MS;
  }
}

/** Why the attempts of a `forEach` node's other items are stopped when one item failed. */
export class ItemFailed extends Error {
  constructor(item: number) {
    super(`stopped: item ${item} of the node failed`);
    this.name = "AbortError";
  }
}

/**
 * How a `forEach` node ended, from its items' `results` (a hole: an item not started), and the
 * JSON length of its output when it has one. `aborted`: the run's end stopped it.
 */
export function itemsResult(
  node: { id: string; continueOnError?: boolean },
  results: readonly ItemResult[],
  aborted: boolean,
  assertOutputSize: (text: string, id: string) => void,
): { result: ItemResult; bytes: number | undefined } {
  const items: NodeItems = { count: results.length, succeeded: 0, failed: 0 };
  let attempts = 0;
  let first: ItemResult | undefined;
  for (let k = 0; k < results.length; k++) {
    const r = results[k];
    if (r === undefined) continue;
    attempts += r.attempts;
    if (r.status === "succeeded") items.succeeded++;
    else if (r.status === "failed" || r.status === "timed-out") {
      items.failed++;
      if (first === undefined) {
        first = r;
        items.failedIndex = k;
      }
    }
  }
  if (aborted) {
    const error = first === undefined ? undefined : `item ${items.failedIndex}: ${first.error}`;
    const result: ItemResult = {
      status: "cancelled",
      attempts,
      ...(error === undefined ? {} : { error }),
      items,
    };
    return { result, bytes: undefined };
  }
  const error = first === undefined
    ? undefined
    : `item ${items.failedIndex}: ${first.error}${
      items.failed > 1
        ? ` (and ${items.failed - 1} more ${items.failed === 2 ? "item" : "items"} failed)`
        : ""
    }`;
  // Every item ran (or the node goes on after failures): the outputs, in the items' order.
  if (first === undefined || node.continueOnError) {
    const output = results.map((r) => r.status === "succeeded" ? r.output ?? null : null);
    const text = JSON.stringify(output);
    try {
      assertOutputSize(text, node.id);
    } catch (err) {
      return {
        result: { status: "failed", attempts, error: (err as Error).message, items },
        bytes: undefined,
      };
    }
    const bytes = text.length;
    if (first === undefined) {
      return { result: { status: "succeeded", attempts, output, items }, bytes };
    }
    return { result: { status: first.status, attempts, output, error, items }, bytes };
  }
  return { result: { status: first.status, attempts, error, items }, bytes: undefined };
}
