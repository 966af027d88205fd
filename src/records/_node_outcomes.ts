/**
 * The outcome of every node seen so far in a run's events, as a recorder
 * keeps it for an end recorded by `RunRecorder.interruptAll`: `node.start`
 * makes it `cancelled` with no attempt, a `node.attempt` without an error
 * counts the attempt (still `cancelled`), a `node.end` sets it, with the
 * node's output when it came with one; nodes come in the order their first
 * event came.
 *
 * When the run's node ids are known in advance (a flow's), outcomes are kept
 * by position in arrays, through an index of the ids shared by every run of
 * the same ids: a run of 10,000 nodes then adds nothing to a hash table and
 * makes no object per node (filling a fresh 10,000-key `Map` per run cost
 * about 5% of a recorded run of cheap nodes). Other ids are kept in a `Map`.
 *
 * And how a run record's node outcomes are stored: compact
 * ({@linkcode CompactNodes}, `encodeNodes`/`decodeNodes`) or, for processes
 * of Flowstate 0.5 and before (`RecordsOptions.nodesFormat: 1`), as they are.
 *
 * @module
 */
import { setOwn } from "../_json.ts";
import type { JsonValue } from "../store/types.ts";
import type { NodeOutcome, NodeStatus, RunEvent, RunRecord } from "./types.ts";

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
  /** By position: the outputs given (made on the first). */
  #outputs: (JsonValue | undefined)[] | undefined;
  /** The ids of the nodes whose output was given masked (`NodeOutcome.masked`). */
  #masked: Set<string> | undefined;
  /** The sub-runs of the nodes' current attempts, in an outcome's `subRuns` (see `subRun`). */
  #subRuns: Map<string, NodeOutcome> | undefined;
  /** The nodes in the order of their first event: a position, or an id not among `ids`. */
  readonly #order: (number | string)[] = [];
  readonly #others = new Map<string, NodeOutcome>();
  /** The last id looked up among `ids`, and its position (a node's events mostly follow each other). */
  #lastId: string | undefined;
  #lastAt = 0;
  /** The ids of the nodes a test's mock stood in for (their `node.start` said `mocked`). */
  #mocked: Set<string> | undefined;

  /** Outcomes of the nodes of a run whose node ids are `ids` (others are kept all the same). */
  constructor(ids: readonly string[] = NO_IDS) {
    this.#ids = ids;
    this.#index = indexOf(ids);
    this.#status = new Array(ids.length);
    this.#attempts = new Array(ids.length);
    this.#errors = new Array(ids.length);
  }

  /**
   * Node `id` is `status` after `attempts` attempts (with `error`, when it
   * failed; with `output`, when it returned one, `masked` when a secret's
   * value in it was masked).
   */
  set(
    id: string,
    status: NodeStatus,
    attempts: number,
    error?: string,
    output?: JsonValue,
    masked?: boolean,
  ): void {
    if (masked === true) (this.#masked ??= new Set()).add(id);
    else this.#masked?.delete(id);
    let i: number | undefined;
    if (id === this.#lastId) i = this.#lastAt;
    else if ((i = this.#index.get(id)) !== undefined) {
      this.#lastId = id;
      this.#lastAt = i;
    }
    if (i === undefined) {
      if (!this.#others.has(id)) this.#order.push(id);
      const outcome: NodeOutcome = { status, attempts };
      if (output !== undefined) outcome.output = output;
      if (error !== undefined) outcome.error = error;
      this.#others.set(id, outcome);
      return;
    }
    if (this.#status[i] === undefined) this.#order.push(i);
    this.#status[i] = status;
    this.#attempts[i] = attempts;
    this.#errors[i] = error;
    if (output !== undefined) (this.#outputs ??= new Array(this.#ids.length))[i] = output;
    else if (this.#outputs !== undefined) this.#outputs[i] = undefined;
  }

  /**
   * Node `id`'s current attempt started sub-run `run` for call `call` (from
   * 1): its outcome lists it in `subRuns` until its next attempt starts
   * (`newAttempt`).
   */
  subRun(id: string, call: number, run: string): void {
    if (!Number.isSafeInteger(call) || call < 1) return;
    const outcome = (this.#subRuns ??= new Map()).get(id) ?? { status: "cancelled", attempts: 0 };
    addSubRun(outcome, call, run);
    this.#subRuns.set(id, outcome);
  }

  /** Node `id` starts an attempt: the sub-runs of the one before are not its outcome's. */
  newAttempt(id: string): void {
    this.#subRuns?.delete(id);
  }

  /**
   * The outputs given and not masked, as `[id, output]`: those a secret made
   * known since may be in (see `RunRecorder.secretsAdded`).
   */
  *unmaskedOutputs(): Generator<[string, JsonValue]> {
    for (const [id, outcome] of this.#others) {
      if (outcome.output !== undefined && !this.#masked?.has(id)) yield [id, outcome.output];
    }
    if (this.#outputs === undefined) return;
    for (let i = 0; i < this.#outputs.length; i++) {
      const output = this.#outputs[i];
      if (output !== undefined && !this.#masked?.has(this.#ids[i])) yield [this.#ids[i], output];
    }
  }

  /** Node `id`'s output, given before, is `output` masked (a secret was found in it since). */
  maskOutput(id: string, output: JsonValue): void {
    const i = this.#index.get(id);
    if (i === undefined) {
      const outcome = this.#others.get(id);
      if (outcome === undefined) return;
      outcome.output = output;
    } else if (this.#outputs !== undefined) this.#outputs[i] = output;
    (this.#masked ??= new Set()).add(id);
  }

  /** Node `id` is mocked (`NodeOutcome.mocked`): its outcome says so. */
  mocked(id: string): void {
    (this.#mocked ??= new Set()).add(id);
  }

  /**
   * The outcomes, by node id, in the order of their first event (objects of
   * their own; the outputs are the ones given), without the outputs when
   * `outputs` is `false`.
   */
  record(outputs = true): RunRecord["nodes"] {
    const nodes = this.#record(outputs);
    if (this.#mocked !== undefined) {
      for (const id of this.#mocked) if (Object.hasOwn(nodes, id)) nodes[id].mocked = true;
    }
    if (this.#subRuns !== undefined) {
      for (const [id, { subRuns }] of this.#subRuns) {
        if (Object.hasOwn(nodes, id) && subRuns !== undefined) nodes[id].subRuns = subRuns;
      }
    }
    if (outputs && this.#masked !== undefined) {
      for (const id of this.#masked) {
        if (Object.hasOwn(nodes, id) && nodes[id].output !== undefined) nodes[id].masked = true;
      }
    }
    return nodes;
  }

  #record(outputs: boolean): RunRecord["nodes"] {
    const nodes: RunRecord["nodes"] = {};
    for (const at of this.#order) {
      if (typeof at === "string") {
        const outcome = { ...this.#others.get(at)! };
        if (!outputs) delete outcome.output;
        nodes[at] = outcome;
        continue;
      }
      const outcome: NodeOutcome = { status: this.#status[at]!, attempts: this.#attempts[at] };
      const output = outputs ? this.#outputs?.[at] : undefined;
      if (output !== undefined) outcome.output = output;
      const error = this.#errors[at];
      if (error !== undefined) outcome.error = error;
      nodes[this.#ids[at]] = outcome;
    }
    return nodes;
  }
}

/**
 * The property of a stored run record that holds its node outcomes in the
 * compact form ({@linkcode CompactNodes}); its `nodes` is then `null`.
 */
export const NODES_FIELD = "@nodes";

/** The format of {@linkcode CompactNodes}. */
export const NODES_FORMAT = 2;

/** The forms a run record's node outcomes can be stored in (`RecordsOptions.nodesFormat`). */
export type NodesFormat = 1 | 2;

/**
 * A run record's node outcomes as stored in format 2: a 10k-node run's
 * `nodes` object was 578 KB of JSON (~58 bytes a node: the keys `status`,
 * `attempts` and `output` again in every outcome) and its serializing ~0.4
 * µs a node. Here the ids are one array, in the record's order; each node
 * has one character in `codes` (`"A"` plus its status's index in
 * `STATUSES` times 4, plus 1 when it has an `output`, plus 2 when it has an
 * `error`); `attempts` is one number when every node made as many, else one
 * number a node; the outputs and errors present are in `outputs` and
 * `errors`, in the nodes' order.
 *
 * Only outcomes this form gives back exactly are written so (the fields
 * `status`, `attempts`, `output`, `error` in that order, a known status, a
 * number of attempts, a string error; an `output` of `undefined` is left out
 * as JSON leaves it): a record with any other keeps its `nodes` as they are.
 */
export interface CompactNodes {
  /** Always {@linkcode NODES_FORMAT}. */
  format: typeof NODES_FORMAT;
  /** The node ids, in the order of the record's `nodes`. */
  ids: string[];
  /** One character a node (see the interface's documentation). */
  codes: string;
  /** The attempts of every node, or of each node. */
  attempts: number | number[];
  /** The outputs present, in order. */
  outputs: unknown[];
  /** The errors present, in order. */
  errors: string[];
}

const STATUSES: readonly NodeStatus[] = [
  "succeeded",
  "failed",
  "skipped",
  "cancelled",
  "timed-out",
];
const STATUS_INDEX: Readonly<Record<string, number>> = Object.assign(
  Object.create(null),
  Object.fromEntries(STATUSES.map((s, i) => [s, i])),
);
const CODE_BASE = 65; // "A"

/**
 * `nodes` in the compact form, or `undefined` when an outcome does not fit
 * it exactly (see {@linkcode CompactNodes}). Empty `nodes` stay as they are
 * too (nothing to gain: a run's start record, readable by any version).
 */
export function encodeNodes(nodes: RunRecord["nodes"]): CompactNodes | undefined {
  // Only a plain object of outcomes: anything else is stored as it is (and refused or kept as
  // the first form would be: an array stays an array).
  if (typeof nodes !== "object" || nodes === null || Array.isArray(nodes)) return undefined;
  const proto = Object.getPrototypeOf(nodes);
  if (proto !== Object.prototype && proto !== null) return undefined;
  const ids: string[] = [];
  const attempts: number[] = [];
  const outputs: unknown[] = [];
  const errors: string[] = [];
  const codes: number[] = [];
  let sameAttempts = true;
  for (const id in nodes) {
    if (!Object.hasOwn(nodes, id)) return undefined;
    const outcome = nodes[id] as unknown as Record<string, unknown>;
    if (typeof outcome !== "object" || outcome === null || Array.isArray(outcome)) return undefined;
    // The fields, in the order the first form's JSON would give them back.
    let stage = 0;
    let code = 0;
    for (const k in outcome) {
      const v = outcome[k];
      if (k === "status" && stage === 0) {
        const s = typeof v === "string" ? STATUS_INDEX[v] : undefined;
        if (s === undefined) return undefined;
        code = s * 4;
        stage = 1;
      } else if (k === "attempts" && stage === 1) {
        if (typeof v !== "number" || !Number.isFinite(v)) return undefined;
        if (attempts.length > 0 && v !== attempts[0]) sameAttempts = false;
        attempts.push(v);
        stage = 2;
      } else if (k === "output" && stage === 2) {
        if (v !== undefined) {
          outputs.push(v);
          code += 1;
        }
        stage = 3;
      } else if (k === "error" && (stage === 2 || stage === 3)) {
        if (v === undefined) {
          stage = 4;
          continue;
        }
        if (typeof v !== "string") return undefined;
        errors.push(v);
        code += 2;
        stage = 4;
      } else {
        return undefined;
      }
    }
    if (stage < 2 || Object.getPrototypeOf(outcome) !== Object.prototype) return undefined;
    ids.push(id);
    codes.push(CODE_BASE + code);
  }
  if (ids.length === 0) return undefined;
  return {
    format: NODES_FORMAT,
    ids,
    // One flat string (a string grown a character at a time is a deep rope).
    codes: new TextDecoder().decode(new Uint8Array(codes)),
    attempts: sameAttempts ? attempts[0] : attempts,
    outputs,
    errors,
  };
}

/**
 * The `nodes` of a stored compact form, as the first form would have read
 * back. A `TypeError` (naming `what`) when it is not one this version can
 * read (a newer format, or damaged).
 */
export function decodeNodes(stored: unknown, what: string): RunRecord["nodes"] {
  const c = stored as Partial<CompactNodes> | null;
  const bad = (why: string) => new TypeError(`${what}: its node outcomes cannot be read (${why})`);
  if (typeof c !== "object" || c === null || Array.isArray(c)) {
    throw bad(
      `"@nodes" is ${c === null ? "null" : Array.isArray(c) ? "a list" : `a ${typeof c}`}, ` +
        `not the compact form: the record is damaged`,
    );
  }
  if (c.format !== NODES_FORMAT) {
    const format = JSON.stringify(c.format) ?? "missing";
    throw bad(
      typeof c.format === "number" && Number.isInteger(c.format) && c.format > NODES_FORMAT
        ? `format ${format}, written by a newer Flowstate: read it with that version or later`
        : `format ${format}, not one Flowstate writes: the record is damaged`,
    );
  }
  const { ids, codes, attempts, outputs, errors } = c;
  if (
    !Array.isArray(ids) || typeof codes !== "string" || codes.length !== ids.length ||
    !Array.isArray(outputs) || !Array.isArray(errors) ||
    !(typeof attempts === "number" || (Array.isArray(attempts) && attempts.length === ids.length))
  ) throw bad("damaged");
  if (typeof attempts === "number" && !Number.isFinite(attempts)) throw bad("damaged attempts");
  const nodes: RunRecord["nodes"] = {};
  let o = 0;
  let e = 0;
  for (let i = 0; i < ids.length; i++) {
    const code = codes.charCodeAt(i) - CODE_BASE;
    const status = STATUSES[code >> 2];
    const id = ids[i];
    if (status === undefined || code < 0 || typeof id !== "string") throw bad("damaged");
    // What encodeNodes writes, and nothing else: a finite number of attempts, errors as
    // text, each id once (a repeated id would hide a node's outcome behind another's).
    if (Object.hasOwn(nodes, id)) throw bad(`node ${JSON.stringify(id)} twice`);
    const tries = typeof attempts === "number" ? attempts : attempts[i];
    if (typeof tries !== "number" || !Number.isFinite(tries)) throw bad("damaged attempts");
    const outcome: NodeOutcome = { status, attempts: tries };
    if (code & 1) {
      if (o >= outputs.length) throw bad("damaged");
      outcome.output = outputs[o++] as NodeOutcome["output"];
    }
    if (code & 2) {
      if (e >= errors.length || typeof errors[e] !== "string") throw bad("damaged");
      outcome.error = errors[e++];
    }
    setOwn(nodes, id, outcome);
  }
  if (o !== outputs.length || e !== errors.length) throw bad("damaged");
  return nodes;
}

/**
 * A `node.end` event as `getEventsWithOutputs` (`_runs.ts`) reads it back:
 * with the output its recorder kept beside it in the same chunk (see
 * `Records.appendEvents`), and whether that output was masked.
 */
export type NodeEndWithOutput = Extract<RunEvent, { type: "node.end" }> & {
  output?: JsonValue;
  outputMasked?: true;
};

/**
 * The outcomes the events of a run give (status, attempts, error, items, and
 * the outputs kept beside their `node.end` events: see
 * {@linkcode NodeEndWithOutput}): for a run that ended without recording its
 * end (abandoned, or its queued attempt lost). A node that started and did
 * not end was stopped: `cancelled`, its attempts counted, as
 * `RunRecorder.interruptAll` records it.
 */
export function outcomesOfEvents(events: readonly RunEvent[]): RunRecord["nodes"] {
  const nodes: RunRecord["nodes"] = {};
  for (const e of events) {
    if (e.type === "node.start") {
      setOwn(nodes, e.node, { status: "cancelled", attempts: 0 });
      continue;
    }
    // An item's attempts are not its node's (they are counted in its `items`).
    if (e.type === "node.attempt" && e.error === undefined && e.item === undefined) {
      setOwn(nodes, e.node, { status: "cancelled", attempts: e.attempt });
      continue;
    }
    if (e.type === "node.subrun") {
      // A sub-run its attempt started (an item's are not its node's: a `forEach` node's
      // sub-runs are never resumed).
      const outcome = e.item === undefined && Object.hasOwn(nodes, e.node)
        ? nodes[e.node]
        : undefined;
      if (outcome !== undefined && Number.isSafeInteger(e.call) && e.call >= 1) {
        addSubRun(outcome, e.call, e.run);
      }
      continue;
    }
    if (e.type !== "node.end") continue;
    const outcome: NodeOutcome = { status: e.status, attempts: e.attempt };
    const { output, outputMasked } = e as NodeEndWithOutput;
    if (output !== undefined) outcome.output = output;
    if (e.error !== undefined) outcome.error = e.error;
    if (e.items !== undefined) outcome.items = e.items;
    if (e.mocked === true) outcome.mocked = true;
    if (e.reused !== undefined) outcome.reused = e.reused;
    if (output !== undefined && outputMasked === true) outcome.masked = true;
    // Its sub-runs, from the `node.subrun` events of its last attempt (its end carries none).
    const before = Object.hasOwn(nodes, e.node) ? nodes[e.node].subRuns : undefined;
    if (before !== undefined && e.items === undefined) outcome.subRuns = before;
    setOwn(nodes, e.node, outcome);
  }
  return nodes;
}

/** Sub-run `run` of call `call` (from 1) of `outcome`'s node: `null` for the calls before without one. */
function addSubRun(outcome: NodeOutcome, call: number, run: string): void {
  const subRuns = outcome.subRuns ??= [];
  while (subRuns.length < call - 1) subRuns.push(null);
  subRuns[call - 1] = run;
}
