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
  /**
   * The keys, in first-use order. Made with its first key, as `[access]`: an
   * empty array's first `push` gives it room for 17, and most nodes' lists
   * hold one key.
   */
  list: StateAccess[] = NO_ACCESS;
  truncated = false;
  /** Set once the list is in the node's `node.end` event: a late call changes nothing. */
  closed = false;

  add(scope: ScopeName, key: readonly string[], store: string | undefined, prefix: boolean): void {
    if (this.closed) return;
    let id: string | undefined;
    if (this.#ids === undefined && this.list.length < FEW) {
      const list = this.list;
      for (let i = 0; i < list.length; i++) {
        if (sameAccess(list[i], scope, key, store, prefix)) return;
      }
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
    if (this.list === NO_ACCESS) this.list = [access];
    else this.list.push(access);
  }
}

/** The list of every {@linkcode AccessList} until its first key (never changed: it is frozen). */
const NO_ACCESS: StateAccess[] = Object.freeze([]) as unknown as StateAccess[];

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
  readonly #runId: string;
  readonly #flowId: string;
  readonly #nodeId: string;
  /** The writer, made when first asked for (most nodes' writes are told to no one). */
  #writer: Writer | undefined;
  readonly #sink: StateChangeSink | undefined;
  readonly #asActor: boolean;

  /**
   * Collect for the node `nodeId` of run `runId` of flow `flowId`, telling
   * committed writes to `sink` while it listens; with `asActor`, the views
   * also write as that node (see `StateObserver.actor`).
   */
  constructor(
    runId: string,
    flowId: string,
    nodeId: string,
    sink: StateChangeSink | undefined,
    asActor = false,
  ) {
    this.#runId = runId;
    this.#flowId = flowId;
    this.#nodeId = nodeId;
    this.#sink = sink;
    this.#asActor = asActor;
  }

  /** Who writes (one object per node, made on first use). */
  #who(): Writer {
    return this.#writer ??= { runId: this.#runId, flowId: this.#flowId, nodeId: this.#nodeId };
  }

  /** Set when the views also write as the node (see `StateObserver.actor`). */
  get actor(): Writer | undefined {
    return this.#asActor ? this.#who() : undefined;
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
    if (sink?.listening) sink.changed({ ...change, ...this.#who() });
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
