/**
 * Nodes' `when:` in the executor: which nodes a node without `needs` that
 * runs on failure (or always) waits for, and whether a node whose needs have
 * ended starts, is skipped because its `when:` is not met, or is dropped
 * because the run failed.
 *
 * @module
 */
import type { NodeStatus } from "../records/types.ts";
import type { NodeSpec } from "./types.ts";

/** What the plan reads of a prepared node (the executor's `PreparedNode` has it). */
interface PreparedNode {
  readonly spec: NodeSpec;
  /** Indices of the nodes it needs. */
  readonly needs: readonly number[];
  /** Indices of the nodes that need it. */
  readonly dependents: readonly number[];
}

/** `when: on_success` (the default). */
const ON_SUCCESS = 0;
/** `when: on_failure`. */
const ON_FAILURE = 1;
/** `when: always`. */
const ALWAYS = 2;

/** What `when:` asks of a flow's nodes, worked out once per prepared flow. */
export interface WhenPlan {
  /** Each node's `when:` ({@linkcode ON_SUCCESS}, {@linkcode ON_FAILURE}, {@linkcode ALWAYS}). */
  readonly kinds: Uint8Array;
  /**
   * 1 for a node a watcher waits for: neither `on_failure`/`always` nor after
   * a watcher (through needs, which would make it wait for itself).
   */
  readonly main: Uint8Array;
  /** The watchers: the `on_failure`/`always` nodes without needs; they wait for the main part. */
  readonly watchers: readonly number[];
  /** How many nodes each node waits for before it is decided (its needs; a watcher's, the main part). */
  readonly waiting: readonly number[];
}

/** The plan of `nodes`, or `undefined` when none has a `when:` other than `on_success`. */
export function whenPlan(nodes: readonly PreparedNode[]): WhenPlan | undefined {
  if (!nodes.some((node) => (node.spec.when ?? "on_success") !== "on_success")) return undefined;
  const kinds = new Uint8Array(nodes.length);
  const main = new Uint8Array(nodes.length);
  nodes.forEach((node, i) => {
    kinds[i] = node.spec.when === "on_failure"
      ? ON_FAILURE
      : node.spec.when === "always"
      ? ALWAYS
      : ON_SUCCESS;
  });
  // Whether a node is a watcher or comes after one; needs come first in a topological order.
  const watched = new Uint8Array(nodes.length);
  const watchers: number[] = [];
  let mainCount = 0;
  for (const i of topological(nodes)) {
    const needs = nodes[i].needs;
    if (kinds[i] !== ON_SUCCESS && needs.length === 0) watchers.push(i);
    watched[i] = kinds[i] !== ON_SUCCESS && needs.length === 0 ||
        needs.some((n) => watched[n] === 1)
      ? 1
      : 0;
    if (kinds[i] === ON_SUCCESS && watched[i] === 0) {
      main[i] = 1;
      mainCount++;
    }
  }
  const waiting = nodes.map((node) => node.needs.length);
  for (const w of watchers) waiting[w] = mainCount;
  return { kinds, main, watchers, waiting };
}

/** The nodes' indices with each node after the nodes it needs (the DAG has no cycle). */
function topological(nodes: readonly PreparedNode[]): number[] {
  const left = nodes.map((node) => node.needs.length);
  const order: number[] = [];
  nodes.forEach((_, i) => {
    if (left[i] === 0) order.push(i);
  });
  for (let k = 0; k < order.length; k++) {
    for (const d of nodes[order[k]].dependents) if (--left[d] === 0) order.push(d);
  }
  return order;
}

/** What becomes of a node whose needs have ended. */
export type WhenDecision =
  /** It starts. */
  | "start"
  /** Its `when:` is not met (or a node it needs was skipped so): recorded `skipped`. */
  | "skip"
  /** The run failed: it does not start, as every node not started once a run fails. */
  | "drop";

/**
 * One run's `when:` bookkeeping: which nodes failed the run, which were
 * skipped by their `when:`, which handle a failure.
 */
export class WhenRun {
  readonly plan: WhenPlan;
  readonly #nodes: readonly PreparedNode[];
  /** 1 for a node whose failure failed the run. */
  readonly #failed: Uint8Array;
  /** 1 for a node skipped because its `when:` was not met (or a need of it was so skipped). */
  readonly #unmet: Uint8Array;
  /** 1 for an `on_failure` node that started, and an `on_success` node after it that did. */
  readonly #handling: Uint8Array;
  /** Whether a node of the main part failed the run. */
  #mainFailed = false;

  constructor(plan: WhenPlan, nodes: readonly PreparedNode[]) {
    this.plan = plan;
    this.#nodes = nodes;
    this.#failed = new Uint8Array(nodes.length);
    this.#unmet = new Uint8Array(nodes.length);
    this.#handling = new Uint8Array(nodes.length);
  }

  /**
   * Whether node `i` (which started) handles a failure or runs whatever
   * happened: an `on_failure` or `always` node, or an `on_success` node after
   * an `on_failure` one that ran.
   */
  handles(i: number): boolean {
    return this.plan.kinds[i] !== ON_SUCCESS || this.#handling[i] === 1;
  }

  /** Node `i` failed the run. */
  failed(i: number): void {
    this.#failed[i] = 1;
    if (this.plan.main[i] === 1) this.#mainFailed = true;
  }

  /**
   * What becomes of node `i`, every node it waits for ended (`status` tells
   * how: `undefined` for a node that did not start); `failing`, whether the
   * run has failed.
   */
  decide(i: number, failing: boolean, status: (n: number) => NodeStatus | undefined): WhenDecision {
    const node = this.#nodes[i];
    switch (this.plan.kinds[i]) {
      case ALWAYS:
        return "start";
      case ON_FAILURE:
        if (node.needs.length === 0 ? this.#mainFailed : this.#failedBefore(i)) {
          this.#handling[i] = 1;
          return "start";
        }
        this.#unmet[i] = 1;
        return "skip";
    }
    let handled = false;
    for (const n of node.needs) {
      if (this.#unmet[n] === 1) {
        this.#unmet[i] = 1;
        return "skip";
      }
      if (this.#handling[n] === 1) handled = true;
    }
    if (!failing) return "start";
    // After a failure, an on_success node goes on from an on_failure node that ran, when every
    // node it needs ended well (succeeded, skipped by its `if`, or failed with continueOnError).
    if (!handled) return "drop";
    for (const n of node.needs) {
      const ended = status(n);
      if (ended === undefined || ended === "cancelled" || this.#failed[n] === 1) return "drop";
    }
    this.#handling[i] = 1;
    return "start";
  }

  /** Whether a node that node `i` needs, directly or indirectly, failed the run. */
  #failedBefore(i: number): boolean {
    const nodes = this.#nodes;
    const seen = new Set<number>();
    const stack = [...nodes[i].needs];
    while (stack.length > 0) {
      const n = stack.pop()!;
      if (seen.has(n)) continue;
      seen.add(n);
      if (this.#failed[n] === 1) return true;
      stack.push(...nodes[n].needs);
    }
    return false;
  }
}
