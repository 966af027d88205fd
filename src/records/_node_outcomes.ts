/**
 * The outcome of every node seen so far in a run's events, as a recorder
 * keeps it for an end recorded by `RunRecorder.interruptAll`: `node.start`
 * makes it `cancelled` with no attempt, a `node.attempt` without an error
 * counts the attempt (still `cancelled`), a `node.end` sets it; nodes come
 * in the order their first event came.
 *
 * When the run's node ids are known in advance (a flow's), outcomes are kept
 * by position in arrays, through an index of the ids shared by every run of
 * the same ids: a run of 10,000 nodes then adds nothing to a hash table and
 * makes no object per node (filling a fresh 10,000-key `Map` per run cost
 * about 5% of a recorded run of cheap nodes). Other ids are kept in a `Map`.
 *
 * @module
 */
import type { NodeOutcome, NodeStatus, RunRecord } from "./types.ts";

/** The position of each id, shared by every run given the same array of ids. */
const indexes = new WeakMap<readonly string[], ReadonlyMap<string, number>>();

function indexOf(ids: readonly string[]): ReadonlyMap<string, number> {
  let index = indexes.get(ids);
  if (index === undefined) {
    const map = new Map<string, number>();
    for (let i = 0; i < ids.length; i++) if (!map.has(ids[i])) map.set(ids[i], i);
    indexes.set(ids, index = map);
  }
  return index;
}

const NO_IDS: readonly string[] = Object.freeze([]);

/** See the module's documentation. */
export class NodeOutcomes {
  readonly #ids: readonly string[];
  readonly #index: ReadonlyMap<string, number>;
  /** By position: `undefined` until the node's first event. */
  readonly #status: (NodeStatus | undefined)[];
  readonly #attempts: number[];
  readonly #errors: (string | undefined)[];
  /** The nodes in the order of their first event: a position, or an id not among `ids`. */
  readonly #order: (number | string)[] = [];
  readonly #others = new Map<string, NodeOutcome>();

  /** Outcomes of the nodes of a run whose node ids are `ids` (others are kept all the same). */
  constructor(ids: readonly string[] = NO_IDS) {
    this.#ids = ids;
    this.#index = indexOf(ids);
    this.#status = new Array(ids.length);
    this.#attempts = new Array(ids.length);
    this.#errors = new Array(ids.length);
  }

  /** Node `id` is `status` after `attempts` attempts (with `error`, when it failed). */
  set(id: string, status: NodeStatus, attempts: number, error?: string): void {
    const i = this.#index.get(id);
    if (i === undefined) {
      if (!this.#others.has(id)) this.#order.push(id);
      const outcome: NodeOutcome = { status, attempts };
      if (error !== undefined) outcome.error = error;
      this.#others.set(id, outcome);
      return;
    }
    if (this.#status[i] === undefined) this.#order.push(i);
    this.#status[i] = status;
    this.#attempts[i] = attempts;
    this.#errors[i] = error;
  }

  /** The outcomes, by node id, in the order of their first event (objects of their own). */
  record(): RunRecord["nodes"] {
    const nodes: RunRecord["nodes"] = {};
    for (const at of this.#order) {
      if (typeof at === "string") {
        nodes[at] = { ...this.#others.get(at)! };
        continue;
      }
      const outcome: NodeOutcome = { status: this.#status[at]!, attempts: this.#attempts[at] };
      const error = this.#errors[at];
      if (error !== undefined) outcome.error = error;
      nodes[this.#ids[at]] = outcome;
    }
    return nodes;
  }
}
