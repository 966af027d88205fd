/**
 * How a run's event chunks are stored (`P, "events", runId, chunk` in the
 * layout table of `records.ts`). Internal to `src/records/` (and the
 * inspector's reader of running runs, `src/serve/events.ts`).
 *
 * A chunk is written in the compact form ({@linkcode CompactChunk}, format
 * 2): what a run records costs its bytes (a 10k-node flow wrote 3.3 MB of
 * event JSON, ~330 bytes a node: the JSON, the store's checks and the SQLite
 * writes all scale with them), so a chunk keeps its node ids and its
 * `reads`/`writes` lists once each, in tables, and its events as one flat
 * array of numbers: a type code, the time as a difference from the event
 * before, indexes into the tables, and the fields that are left. A
 * `node.start` with its first `node.attempt` at the same instant is one row.
 * Any event the compact rows cannot give back exactly (an unknown type, a
 * field more or less, its fields in another order, a time that is not an
 * integer) is kept as it is, in a row of its own: reading a chunk gives back
 * the very events written, as the JSON of the first form would have.
 *
 * Chunks of the first form (`{ first, events }`, Flowstate before format 2)
 * are read as they are, and are still written with `eventFormat: 1`
 * (`RecordsOptions`, the config's `runs:`), for a fleet whose older processes
 * read only that form ({@linkcode writeChunk}). A compact chunk has no
 * `events` array, so a reader of the first form fails on it (`events is not
 * iterable`) rather than show a run without events. A chunk this version
 * cannot read (a newer format, or damaged) is a `TypeError`: retrying cannot
 * help, and the run recorder does not retry it.
 *
 * @module
 */
import type { JsonValue, Key } from "../store/types.ts";
import { checkValue } from "../store/values.ts";
import type { RunEvent, StateAccess } from "./types.ts";

/** The format of the compact chunks. */
export const CHUNK_FORMAT = 2;

/** The forms a chunk can be written in (see {@linkcode writeChunk}). */
export type EventFormat = 1 | 2;

/** One `appendEvents()` call as read back: the index of its first event, and the events. */
export interface EventChunk {
  /** Index of `events[0]` among all the run's events. */
  first: number;
  /** The events of the call, in order. */
  events: RunEvent[];
}

/** A chunk as stored in format 2 (see the module's documentation). */
export interface CompactChunk {
  /** Index of the chunk's first event among all the run's events. */
  first: number;
  /** Always {@linkcode CHUNK_FORMAT}. */
  format: typeof CHUNK_FORMAT;
  /** How many events the rows hold (a folded row holds two). */
  count: number;
  /** The time the first row's difference is from. */
  base: number;
  /** The node ids the rows refer to, by index. */
  nodes: string[];
  /** The `reads`/`writes` lists the rows refer to, by index, each once. */
  lists: StateAccess[][];
  /** The events, one row after another (see `Code`). */
  rows: unknown[];
}

/**
 * The row codes. After the code: `dt`, the time since the row before's (or
 * `base`); `n`, an index in `nodes`.
 */
const enum Code {
  /** `run.start`: code, dt. */
  RunStart = 0,
  /** `run.end`: code, dt. */
  RunEnd = 1,
  /** `node.start`: code, dt, n. */
  NodeStart = 2,
  /** `node.start`, then `node.attempt` 1 of the same node at the same time: code, dt, n. */
  NodeStartAttempt = 3,
  /** `node.attempt`: code, dt, n, attempt. */
  NodeAttempt = 4,
  /** `node.attempt` with its `error`: code, dt, n, attempt, error. */
  NodeAttemptError = 5,
  /**
   * `node.end`: code, dt, n, status (an index in `STATUSES`), attempt,
   * durationMs, the bits of the optional fields present (`END_FIELDS`), then
   * each present field's value in that order (a `reads`/`writes` list as
   * its index in `lists`; the `…Truncated` flags have none: they are `true`).
   */
  NodeEnd = 6,
  /** `node.log`: code, dt, n, level (an index in `LEVELS`), message. */
  NodeLog = 7,
  /** Any other event, as it is: code, the event. */
  Raw = 8,
}

const STATUSES = ["succeeded", "failed", "skipped", "cancelled", "timed-out"] as const;
const LEVELS = ["debug", "info", "warn", "error"] as const;

/** The fields of each kind of event in the order the compact rows give them back. */
const RUN_FIELDS = ["at", "type"];
const START_FIELDS = ["at", "type", "node"];
const ATTEMPT_FIELDS = ["at", "type", "node", "attempt", "error"];
const ATTEMPT_REQUIRED = 4;
const END_FIELDS = [
  "at",
  "type",
  "node",
  "status",
  "attempt",
  "durationMs",
  "outputBytes",
  "error",
  "reads",
  "readsTruncated",
  "writes",
  "writesTruncated",
];
const END_REQUIRED = 6;
const LOG_FIELDS = ["at", "type", "node", "message", "level"];
const ACCESS_FIELDS = ["scope", "key", "store", "prefix"];

/** The bits of `END_FIELDS`' optional fields. */
const OUTPUT_BYTES = 1,
  ERROR = 2,
  READS = 4,
  READS_TRUNCATED = 8,
  WRITES = 16,
  WRITES_TRUNCATED = 32;

/**
 * Which of `fields` the object `e` has, when it has exactly the first
 * `required` of them, maybe some of the others, in that order, and nothing
 * else: the bits of the optional ones present (bit 0 for `fields[required]`),
 * or -1. An `undefined` property counts as absent, as it does in JSON.
 */
function fieldsOf(e: object, fields: readonly string[], required: number): number {
  let i = 0;
  let bits = 0;
  for (const k in e) {
    if ((e as Record<string, unknown>)[k] === undefined) continue;
    while (i < fields.length && fields[i] !== k) {
      if (i < required) return -1;
      i++;
    }
    if (i === fields.length) return -1;
    if (i >= required) bits |= 1 << (i - required);
    i++;
  }
  return i < required ? -1 : bits;
}

/**
 * Whether `v` may be a row's item: a string, a finite number, a boolean or
 * `null`. Anything else (an object, an array, NaN…) keeps its event in a raw
 * row: nested in the rows it would sit one level shallower than in
 * `{ events: [event] }` or a run's inline events (a value at the depth limit
 * would be accepted here and refused when the run's events are inlined), and
 * the store's error for a bad value would name a row, not the event's field.
 */
function isPrimitive(v: unknown): boolean {
  const type = typeof v;
  return type === "string" || type === "boolean" || v === null ||
    (type === "number" && Number.isFinite(v));
}

/**
 * Builds one chunk's rows and tables. One per chunk written; `encode`
 * returns `false` for an event the rows cannot give back exactly.
 */
class ChunkWriter {
  readonly nodes: string[] = [];
  readonly lists: StateAccess[][] = [];
  readonly rows: unknown[] = [];
  readonly #nodeIndex = new Map<string, number>();
  readonly #listIndex = new Map<string, number>();
  /** The last node looked up, and its index (a node's events mostly follow each other). */
  #lastNode: string | undefined;
  #lastIndex = 0;
  /** The last list looked up, and its index. */
  #lastList: StateAccess[] | undefined;
  #lastListIndex = 0;
  /** The time the next row's difference is from. */
  prev: number;
  /** Where the row of a `node.start` just written is, for its first attempt to fold into. */
  #startRow = -1;

  constructor(base: number) {
    this.prev = base;
  }

  #node(id: string): number {
    if (id === this.#lastNode) return this.#lastIndex;
    let n = this.#nodeIndex.get(id);
    if (n === undefined) {
      n = this.nodes.push(id) - 1;
      this.#nodeIndex.set(id, n);
    }
    this.#lastNode = id;
    this.#lastIndex = n;
    return n;
  }

  /** The index of `list` in `lists`, or -1 if it is not a list of plain `StateAccess` objects. */
  #list(list: unknown): number {
    if (!Array.isArray(list)) return -1;
    // Most often the same as the list before (a node reading and writing one key, nodes
    // alike): compared field by field, without building its id.
    const last = this.#lastList;
    if (last !== undefined && sameList(list, last)) return this.#lastListIndex;
    // The id of the list: each part with its length before it (parts may hold any character).
    let id = "";
    for (let i = 0; i < list.length; i++) {
      const access = list[i];
      if (!isAccess(access)) return -1;
      const { scope, key, store, prefix } = access;
      id += `${scope.length}:${scope}${prefix ? "*" : "="}${
        store === undefined ? "" : `${store.length}:${store}`
      }${key.length}|`;
      for (let j = 0; j < key.length; j++) id += `${key[j].length}:${key[j]}`;
    }
    let n = this.#listIndex.get(id);
    if (n === undefined) {
      n = this.lists.push(list as StateAccess[]) - 1;
      this.#listIndex.set(id, n);
    }
    this.#lastList = list as StateAccess[];
    this.#lastListIndex = n;
    return n;
  }

  /** Add `e`'s row; `false`, adding nothing, if the rows cannot give it back exactly. */
  encode(e: RunEvent): boolean {
    const startRow = this.#startRow;
    this.#startRow = -1;
    if (Object.getPrototypeOf(e) !== Object.prototype) return false;
    const at = e.at;
    const dt = at - this.prev;
    // Exact in both directions only for integers (a custom clock may give fractions).
    if (!Number.isSafeInteger(at) || !Number.isSafeInteger(dt)) return false;
    const rows = this.rows;
    switch (e.type) {
      case "run.start":
      case "run.end":
        if (fieldsOf(e, RUN_FIELDS, 2) !== 0) return false;
        rows.push(e.type === "run.start" ? Code.RunStart : Code.RunEnd, dt);
        break;
      case "node.start":
        if (typeof e.node !== "string" || fieldsOf(e, START_FIELDS, 3) !== 0) return false;
        this.#startRow = rows.length;
        rows.push(Code.NodeStart, dt, this.#node(e.node));
        break;
      case "node.attempt": {
        if (typeof e.node !== "string") return false;
        const bits = fieldsOf(e, ATTEMPT_FIELDS, ATTEMPT_REQUIRED);
        if (bits < 0) return false;
        if (!isPrimitive(e.attempt) || (bits !== 0 && !isPrimitive(e.error))) return false;
        const n = this.#node(e.node);
        if (bits === 0) {
          if (
            startRow >= 0 && dt === 0 && e.attempt === 1 && rows[startRow + 2] === n
          ) {
            rows[startRow] = Code.NodeStartAttempt;
          } else rows.push(Code.NodeAttempt, dt, n, e.attempt);
        } else rows.push(Code.NodeAttemptError, dt, n, e.attempt, e.error);
        break;
      }
      case "node.end": {
        if (typeof e.node !== "string") return false;
        const status = STATUSES.indexOf(e.status);
        if (status < 0) return false;
        const bits = fieldsOf(e, END_FIELDS, END_REQUIRED);
        if (
          bits < 0 || !isPrimitive(e.attempt) || !isPrimitive(e.durationMs) ||
          (bits & OUTPUT_BYTES && !isPrimitive(e.outputBytes)) ||
          (bits & ERROR && !isPrimitive(e.error))
        ) return false;
        let reads = -1;
        let writes = -1;
        if (bits & READS && (reads = this.#list(e.reads)) < 0) return false;
        if (bits & WRITES && (writes = this.#list(e.writes)) < 0) return false;
        if (bits & READS_TRUNCATED && e.readsTruncated !== true) return false;
        if (bits & WRITES_TRUNCATED && e.writesTruncated !== true) return false;
        rows.push(Code.NodeEnd, dt, this.#node(e.node), status, e.attempt, e.durationMs, bits);
        if (bits & OUTPUT_BYTES) rows.push(e.outputBytes);
        if (bits & ERROR) rows.push(e.error);
        if (bits & READS) rows.push(reads);
        if (bits & WRITES) rows.push(writes);
        break;
      }
      case "node.log": {
        const level = LEVELS.indexOf(e.level);
        if (
          level < 0 || typeof e.node !== "string" || !isPrimitive(e.message) ||
          fieldsOf(e, LOG_FIELDS, 5) !== 0
        ) {
          return false;
        }
        rows.push(Code.NodeLog, dt, this.#node(e.node), level, e.message);
        break;
      }
      default:
        return false;
    }
    this.prev = at;
    return true;
  }
}

/**
 * Whether `access` is a plain `StateAccess` object as the rows give it back: its
 * fields of the right types, in their order, and nothing else.
 */
function isAccess(access: unknown): access is StateAccess {
  if (typeof access !== "object" || access === null) return false;
  if (Object.getPrototypeOf(access) !== Object.prototype) return false;
  const { scope, key, store, prefix } = access as StateAccess;
  if (typeof scope !== "string" || !Array.isArray(key) || fieldsOf(access, ACCESS_FIELDS, 2) < 0) {
    return false;
  }
  if (store !== undefined && typeof store !== "string") return false;
  if (prefix !== undefined && prefix !== true) return false;
  for (let j = 0; j < key.length; j++) if (typeof key[j] !== "string") return false;
  return true;
}

/** Whether `list` holds the same accesses as `known` (a list `isAccess` accepted). */
function sameList(list: unknown[], known: StateAccess[]): boolean {
  if (list.length !== known.length) return false;
  for (let i = 0; i < list.length; i++) {
    const a = list[i] as StateAccess;
    const b = known[i];
    if (
      a === null || typeof a !== "object" || a.scope !== b.scope || a.store !== b.store ||
      a.prefix !== b.prefix || !Array.isArray(a.key) || a.key.length !== b.key.length
    ) return false;
    for (let j = 0; j < a.key.length; j++) if (a.key[j] !== b.key[j]) return false;
    // The same values as an access `isAccess` accepted (so of the right types): now the same
    // shape (a plain object, no other field, the same order).
    if (Object.getPrototypeOf(a) !== Object.prototype || fieldsOf(a, ACCESS_FIELDS, 2) < 0) {
      return false;
    }
  }
  return true;
}

/**
 * The stored form of a chunk of `events` whose first is the run's event
 * number `first`. The events are not copied: the chunk refers to their
 * `reads`/`writes` lists and any event kept as it is, so it is to be
 * serialized (written) before they may change. Throws a `TypeError` starting
 * with `what` and naming the event's field (`value.events[2].durationMs is
 * NaN`, as for the first form) if an event holds a value no store accepts.
 */
export function encodeChunk(
  first: number,
  events: readonly RunEvent[],
  what: string,
): CompactChunk {
  const base = events.length > 0 && Number.isSafeInteger(events[0].at) ? events[0].at : 0;
  const writer = new ChunkWriter(base);
  let raw = false;
  for (const e of events) {
    if (!writer.encode(e)) {
      writer.rows.push(Code.Raw, e);
      raw = true;
    }
  }
  // Only a raw row can hold a value the store refuses (the others hold primitives and
  // lists of strings): checked here, where the error can name the event, not a row.
  if (raw) checkValue({ events }, what);
  return {
    first,
    format: CHUNK_FORMAT,
    count: events.length,
    base,
    nodes: writer.nodes,
    lists: writer.lists,
    rows: writer.rows,
  };
}

/**
 * A chunk of `events` as written in `format`: 1 is the first form
 * `{ first, events }`, as Flowstate 0.4 wrote it (for a fleet with processes
 * that cannot read format 2 yet: `RecordsOptions.eventFormat`), 2 the compact
 * form of {@linkcode encodeChunk}.
 */
export function writeChunk(
  format: EventFormat,
  first: number,
  events: readonly RunEvent[],
  what: string,
  kept?: { nodes: string[]; outputs: JsonValue[]; masked?: string[] },
): EventChunk | CompactChunk {
  const chunk: (EventChunk | CompactChunk) & KeptFields = format === 1
    ? { first, events: events as RunEvent[] } satisfies EventChunk
    : encodeChunk(first, events, what);
  if (kept !== undefined && kept.nodes.length > 0) {
    chunk.outputNodes = kept.nodes;
    chunk.outputs = kept.outputs;
    if (kept.masked !== undefined && kept.masked.length > 0) chunk.maskedOutputs = kept.masked;
  }
  return chunk;
}

/**
 * What a chunk of either form may hold beside its events (see
 * `Records.appendEvents`): the outputs of nodes whose `node.end` it holds
 * (`outputs[i]` is node `outputNodes[i]`'s: two lists, whose JSON text V8
 * makes on its fast path), and the ids of those masked. Readers that do not
 * know them (Flowstate 0.7 and before) pass them by.
 */
export interface KeptFields {
  /** The nodes whose outputs are kept, in the order of `outputs`. */
  outputNodes?: string[];
  /** Their outputs. */
  outputs?: JsonValue[];
  /** The ids among `outputNodes` whose output was masked. */
  maskedOutputs?: string[];
}

/** How a chunk is named in the errors of {@linkcode decodeChunk} and {@linkcode chunkSize}. */
export function chunkWhere(runId: string, key: Key): string {
  return `Cannot read the events of run ${JSON.stringify(runId)}: event chunk ${
    key[key.length - 1]
  }`;
}

/** How many events a stored chunk (of either form) holds, without decoding it. */
export function chunkSize(chunk: unknown, where: string): number {
  const value = chunk as Partial<CompactChunk & EventChunk> | null;
  if (Array.isArray(value?.events)) return value.events.length;
  return checkCompact(value, where).count;
}

/** `value` as a compact chunk, or the reason it is not one, thrown. */
function checkCompact(value: unknown, where: string): CompactChunk {
  const chunk = value as Partial<CompactChunk> | null;
  if (typeof chunk !== "object" || chunk === null || !("format" in chunk)) {
    throw new TypeError(`${where} is not an event chunk (no "events" and no "format")`);
  }
  if (chunk.format !== CHUNK_FORMAT) {
    throw new TypeError(
      `${where} is stored in format ${
        JSON.stringify(chunk.format)
      }, which this version of Flowstate cannot read (it reads formats 1 and ${CHUNK_FORMAT}): ` +
        `the records were written by a newer Flowstate; upgrade to read them`,
    );
  }
  if (
    typeof chunk.first !== "number" || typeof chunk.count !== "number" ||
    typeof chunk.base !== "number" || !Array.isArray(chunk.nodes) ||
    !Array.isArray(chunk.lists) || !Array.isArray(chunk.rows)
  ) {
    throw new TypeError(`${where} is malformed: a format ${CHUNK_FORMAT} chunk lacks a field`);
  }
  return chunk as CompactChunk;
}

/**
 * The events of a stored chunk of either form. `where` names the chunk in an
 * error (`Cannot read the events of run "…": chunk 00000002`). Throws a
 * `TypeError` when the chunk is of a format this version cannot read, or
 * damaged.
 */
export function decodeChunk(value: unknown, where: string): EventChunk {
  const old = value as Partial<EventChunk> | null;
  if (Array.isArray(old?.events)) return old as EventChunk;
  const chunk = checkCompact(value, where);
  const { nodes, lists, rows } = chunk;
  const events: RunEvent[] = [];
  const bad = (why: string): never => {
    throw new TypeError(`${where} is malformed: ${why}`);
  };
  const nodeAt = (i: number): string => {
    const node = nodes[rows[i] as number];
    return typeof node === "string" ? node : bad(`row ${i} refers to no node`);
  };
  const listAt = (i: number): StateAccess[] => {
    const list = lists[rows[i] as number];
    return Array.isArray(list) ? list.map(copyAccess) : bad(`row ${i} refers to no list`);
  };
  let at = chunk.base;
  let i = 0;
  while (i < rows.length) {
    const code = rows[i];
    if (code === Code.Raw) {
      const event = rows[i + 1];
      if (typeof event !== "object" || event === null) bad(`row ${i} holds no event`);
      events.push(event as RunEvent);
      i += 2;
      continue;
    }
    const dt = rows[i + 1];
    if (typeof dt !== "number") bad(`row ${i} has no time`);
    at += dt as number;
    switch (code) {
      case Code.RunStart:
        events.push({ at, type: "run.start" });
        i += 2;
        break;
      case Code.RunEnd:
        events.push({ at, type: "run.end" });
        i += 2;
        break;
      case Code.NodeStart:
        events.push({ at, type: "node.start", node: nodeAt(i + 2) });
        i += 3;
        break;
      case Code.NodeStartAttempt: {
        const node = nodeAt(i + 2);
        events.push({ at, type: "node.start", node }, {
          at,
          type: "node.attempt",
          node,
          attempt: 1,
        });
        i += 3;
        break;
      }
      case Code.NodeAttempt:
      case Code.NodeAttemptError: {
        const event: RunEvent = {
          at,
          type: "node.attempt",
          node: nodeAt(i + 2),
          attempt: rows[i + 3] as number,
        };
        if (code === Code.NodeAttemptError) event.error = rows[i++ + 4] as string;
        events.push(event);
        i += 4;
        break;
      }
      case Code.NodeEnd: {
        const status = STATUSES[rows[i + 3] as number] ?? bad(`row ${i} has no status`);
        const bits = rows[i + 6] as number;
        const event: RunEvent = {
          at,
          type: "node.end",
          node: nodeAt(i + 2),
          status,
          attempt: rows[i + 4] as number,
          durationMs: rows[i + 5] as number,
        };
        let j = i + 7;
        if (bits & OUTPUT_BYTES) event.outputBytes = rows[j++] as number;
        if (bits & ERROR) event.error = rows[j++] as string;
        if (bits & READS) event.reads = listAt(j++);
        if (bits & READS_TRUNCATED) event.readsTruncated = true;
        if (bits & WRITES) event.writes = listAt(j++);
        if (bits & WRITES_TRUNCATED) event.writesTruncated = true;
        events.push(event);
        i = j;
        break;
      }
      case Code.NodeLog:
        events.push({
          at,
          type: "node.log",
          node: nodeAt(i + 2),
          message: rows[i + 4] as string,
          level: LEVELS[rows[i + 3] as number] ?? bad(`row ${i} has no level`),
        });
        i += 5;
        break;
      default:
        bad(`row ${i} has an unknown code ${JSON.stringify(code)}`);
    }
  }
  if (i !== rows.length || events.length !== chunk.count) {
    bad(`its rows hold ${events.length} events, not ${chunk.count}`);
  }
  return { first: chunk.first, events };
}

/** A fresh copy of a `StateAccess` of a chunk's table (each event gets its own). */
function copyAccess(access: StateAccess): StateAccess {
  const copy: StateAccess = { scope: access.scope, key: [...access.key] };
  if (access.store !== undefined) copy.store = access.store;
  if (access.prefix !== undefined) copy.prefix = access.prefix;
  return copy;
}
