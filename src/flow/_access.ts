/**
 * What one node read and wrote through its state views, for its `node.end`
 * event: each key once, in first-use order, at most
 * {@linkcode MAX_STATE_ACCESS} per list (then a `truncated` flag), so a node
 * looping over a million keys cannot bloat its run's record.
 *
 * @module
 */
import { MAX_STATE_ACCESS, type NodeEndEvent, type StateAccess } from "../records/types.ts";
import type { ScopeName, StateChangeSink, StateObserver } from "../state/scopes.ts";

/** A bounded, de-duplicated list of state keys. */
class AccessList {
  /**
   * The ids of the keys in `list`, in the same order, made once there are
   * more than a few (most nodes touch one or two keys: those are compared
   * field by field, without building an id).
   */
  #ids: string[] | undefined;
  /** The same, as a set, once there are more than 16. */
  #seen: Set<string> | undefined;
  readonly list: StateAccess[] = [];
  truncated = false;
  /** Set once the list is in the node's `node.end` event: a late call changes nothing. */
  closed = false;

  add(scope: ScopeName, key: readonly string[], store: string | undefined, prefix: boolean): void {
    if (this.closed) return;
    let id: string | undefined;
    if (this.#ids === undefined && this.list.length < FEW) {
      for (const access of this.list) if (sameAccess(access, scope, key, store, prefix)) return;
    } else {
      id = accessId(scope, key, store, prefix);
      if (this.#ids === undefined) this.#ids = this.list.map(idOf);
      if (this.#seen !== undefined ? this.#seen.has(id) : this.#ids.includes(id)) return;
    }
    if (this.list.length >= MAX_STATE_ACCESS) {
      this.truncated = true;
      return;
    }
    if (id !== undefined) {
      if (this.#seen !== undefined) this.#seen.add(id);
      else if (this.#ids!.push(id) > 16) this.#seen = new Set(this.#ids);
    }
    const access: StateAccess = { scope, key: [...key] };
    if (store !== undefined) access.store = store;
    if (prefix) access.prefix = true;
    this.list.push(access);
  }
}

/** Keys a list compares field by field before it builds ids. */
const FEW = 4;

/** The id of an access: each part with its length before it, not a join (parts may hold any character). */
function accessId(
  scope: ScopeName,
  key: readonly string[],
  store: string | undefined,
  prefix: boolean,
): string {
  let id = `${scope}${prefix ? "*" : "="}${store === undefined ? "" : `${store.length}:${store}`}|`;
  for (const part of key) id += `${part.length}:${part}`;
  return id;
}

function idOf(access: StateAccess): string {
  return accessId(access.scope, access.key, access.store, access.prefix === true);
}

function sameAccess(
  access: StateAccess,
  scope: ScopeName,
  key: readonly string[],
  store: string | undefined,
  prefix: boolean,
): boolean {
  if (
    access.scope !== scope || access.store !== store || (access.prefix === true) !== prefix ||
    access.key.length !== key.length
  ) return false;
  for (let i = 0; i < key.length; i++) if (access.key[i] !== key[i]) return false;
  return true;
}

/** Who writes, for the state-change events. */
export interface Writer {
  /** The run. */
  runId: string;
  /** Its flow. */
  flowId: string;
  /** The node. */
  nodeId: string;
}

/**
 * The reads and writes of one node, over all its attempts; it is the
 * observer its attempts' views report to (methods, not closures made per node).
 */
export class NodeAccess implements StateObserver {
  #reads = new AccessList();
  #writes = new AccessList();
  readonly #writer: Writer;
  readonly #sink: StateChangeSink | undefined;
  /** Set when the views also write as the node (see `StateObserver.actor`). */
  declare readonly actor?: Writer;

  /**
   * Collect for the node `writer`, telling committed writes to `sink` while
   * it listens; with `asActor`, the views also write as `writer` (see
   * `StateObserver.actor`).
   */
  constructor(writer: Writer, sink: StateChangeSink | undefined, asActor = false) {
    this.#writer = writer;
    this.#sink = sink;
    if (asActor) (this as { actor?: Writer }).actor = writer;
  }

  /** See {@linkcode StateObserver.read}. */
  read(scope: ScopeName, key: readonly string[], store: string | undefined, prefix: boolean): void {
    this.#reads.add(scope, key, store, prefix);
  }

  /** See {@linkcode StateObserver.wrote}. */
  wrote(
    scope: ScopeName,
    key: readonly string[],
    store: string | undefined,
    change: Parameters<StateObserver["wrote"]>[3],
  ): void {
    this.#writes.add(scope, key, store, false);
    const sink = this.#sink;
    if (sink?.listening) sink.changed({ ...change, ...this.#writer });
  }

  /** Stop collecting: what an attempt that is still stopping reads or writes later is not added. */
  close(): void {
    this.#reads.closed = this.#writes.closed = true;
  }

  /**
   * Add the `reads`/`writes` fields of the `node.end` event to `event` (none
   * when empty; written onto it, not made as an object of their own), and
   * {@linkcode NodeAccess.close}.
   */
  addFields(
    event: Pick<NodeEndEvent, "reads" | "readsTruncated" | "writes" | "writesTruncated">,
  ): void {
    this.close();
    if (this.#reads.list.length > 0) event.reads = this.#reads.list;
    if (this.#reads.truncated) event.readsTruncated = true;
    if (this.#writes.list.length > 0) event.writes = this.#writes.list;
    if (this.#writes.truncated) event.writesTruncated = true;
  }
}
