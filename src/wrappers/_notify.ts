/**
 * A store that reports its committed writes: what {@linkcode Runtime.store}
 * returns, so that writes through it reach the runtime's event stream as
 * `state.changed`. Internal: the runtime wraps its stores with it.
 *
 * Every call goes to the wrapped store unchanged; while nobody listens a
 * call costs one property read more than on the store itself.
 *
 * @module
 */
import { ForwardingBase } from "./_forwarding.ts";
import type {
  AtomicOperation,
  CommitResult,
  CompactResult,
  DeleteOptions,
  Entry,
  GetOptions,
  JsonValue,
  Key,
  KeyBounds,
  ListIterator,
  ListOptions,
  Query,
  QueryPlan,
  SearchHit,
  SearchOptions,
  SetOptions,
  Store,
} from "../store/types.ts";
import { markUniqueVersions } from "../store/store.ts";
import { ENCRYPTION, type EncryptionHandle, encryptionOf } from "../store/sealed.ts";
import { provideStoredReader, storedReads } from "../store/stored_read.ts";

/** One committed write of a {@linkcode notifyingStore}. */
export interface StoreChange {
  /** The key written, or the prefix cleared (with `prefix`). */
  key: Key;
  /** What the write did. */
  op: "set" | "delete";
  /** The entry's new version, after a set. */
  version?: string;
  /** Set for a clear: every key under `key` was deleted. */
  prefix?: true;
}

/** Where a {@linkcode notifyingStore} reports. */
export interface StoreChangeListener {
  /** Whether anyone listens: nothing is reported (or kept) otherwise. */
  readonly listening: boolean;
  /** One committed write. */
  changed(change: StoreChange): void;
  /** Writes to keys it returns `true` for are not reported. */
  ignore?(key: Key): boolean;
}

/** `store`, telling `listener` of each write it commits while the listener listens. */
export function notifyingStore(store: Store, listener: StoreChangeListener): Store {
  return new NotifyingStore(store, listener);
}

class NotifyingStore extends ForwardingBase implements Store {
  readonly #store: Store;
  readonly #listener: StoreChangeListener;

  constructor(store: Store, listener: StoreChangeListener) {
    super(store);
    this.#store = store;
    this.#listener = listener;
    markUniqueVersions(this, store);
    // Its reads as stored are the store's (its `get` and `getMany` hand out the store's own).
    const reads = storedReads(store);
    provideStoredReader(this, NotifyingStore.prototype, () => reads?.now());
  }

  /** An encrypted store's handle, forwarded (the backup and rekey jobs read sealed values through it). */
  get [ENCRYPTION](): EncryptionHandle | undefined {
    return encryptionOf(this.#store);
  }

  #tell(change: StoreChange): void {
    const listener = this.#listener;
    if (listener.ignore?.(change.key)) return;
    listener.changed(change);
  }

  get<T = JsonValue>(key: Key, options?: GetOptions): Promise<Entry<T> | null> {
    return this.#store.get<T>(key, options);
  }

  getMany<T = JsonValue>(keys: readonly Key[]): Promise<(Entry<T> | null)[]> {
    return this.#store.getMany<T>(keys);
  }

  set(key: Key, value: unknown, options?: SetOptions): Promise<CommitResult> {
    const done = this.#store.set(key, value, options);
    if (!this.#listener.listening) return done;
    const copy = Array.isArray(key) ? [...key] : key; // the caller may reuse its array
    return done.then((result) => {
      if (result.ok) this.#tell({ key: copy, op: "set", version: result.version });
      return result;
    });
  }

  delete(key: Key, options?: DeleteOptions): Promise<boolean> {
    const done = this.#store.delete(key, options);
    if (!this.#listener.listening) return done;
    const copy = Array.isArray(key) ? [...key] : key;
    return done.then((deleted) => {
      if (deleted) this.#tell({ key: copy, op: "delete" });
      return deleted;
    });
  }

  list<T = JsonValue>(options?: ListOptions): ListIterator<T> {
    return this.#store.list<T>(options);
  }

  count(prefix?: Key, bounds?: KeyBounds): Promise<number> {
    return this.#store.count(prefix, bounds);
  }

  query<T = JsonValue>(query?: Query): Promise<Entry<T>[]> {
    return this.#store.query<T>(query);
  }

  explain(query?: Query): Promise<QueryPlan> {
    return this.#store.explain(query);
  }

  search<T = JsonValue>(text: string, options?: SearchOptions): Promise<SearchHit<T>[]> {
    return this.#store.search<T>(text, options);
  }

  clear(prefix: Key, bounds?: KeyBounds): Promise<number> {
    const done = this.#store.clear(prefix, bounds);
    if (!this.#listener.listening) return done;
    const copy = Array.isArray(prefix) ? [...prefix] : prefix;
    return done.then((count) => {
      if (count > 0) this.#tell({ key: copy, op: "delete", prefix: true });
      return count;
    });
  }

  purgeExpired(): Promise<number> {
    return this.#store.purgeExpired();
  }

  compact(): Promise<CompactResult> {
    return this.#store.compact();
  }

  atomic(): AtomicOperation {
    const inner = this.#store.atomic();
    const listener = this.#listener;
    const writes: StoreChange[] = []; // kept only while someone listens
    const op: AtomicOperation = {
      check(key, version) {
        inner.check(key, version);
        return op;
      },
      set(key, value, options) {
        inner.set(key, value, options); // validates
        if (listener.listening) writes.push({ key: [...key], op: "set" });
        return op;
      },
      delete(key) {
        inner.delete(key);
        if (listener.listening) writes.push({ key: [...key], op: "delete" });
        return op;
      },
      clear(prefix, bounds) {
        inner.clear(prefix, bounds);
        if (listener.listening) writes.push({ key: [...prefix], op: "delete", prefix: true });
        return op;
      },
      commit: () => {
        const done = inner.commit();
        if (writes.length === 0 || !listener.listening) return done;
        return done.then((result) => {
          if (result.ok) {
            for (const w of writes) {
              this.#tell(w.op === "set" ? { ...w, version: result.version } : w);
            }
          }
          return result;
        });
      },
    };
    return op;
  }

  close(): Promise<void> {
    return this.#store.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
