/**
 * What every store wrapper (`cached`, `withHooks`, `encrypted`, the
 * runtime's notifying store, the sealed view under a cache) passes through
 * unchanged: the wrapped store's name, plugin, location, capabilities and
 * indexes, its cross-process wake-ups (`listen`, `signal`) when it has
 * them, and by default its change feed (`changes`, `watch`, `getAt`,
 * `feedInfo`: a wrapper that must see or change those overrides them). A
 * wrapper extends {@linkcode ForwardingBase} and implements the rest of
 * `Store` itself.
 *
 * @module
 */
import type {
  Capabilities,
  Change,
  ChangesOptions,
  Entry,
  FeedInfo,
  IndexInfo,
  JsonValue,
  Key,
  Store,
  WatchOptions,
} from "../store/types.ts";
import { INNER_STORE } from "../store/internal_keys.ts";

/** The wrapped store's identity, capabilities, indexes, cross-process signals and feed, forwarded. */
export abstract class ForwardingBase {
  readonly #wrapped: Store;
  /** The store's cross-process signals (postgres `LISTEN/NOTIFY`), forwarded when it has them. */
  readonly listen?: Store["listen"];
  /** See {@linkcode Store.signal}: forwarded when the store has it. */
  readonly signal?: Store["signal"];

  constructor(store: Store) {
    this.#wrapped = store;
    if (store.listen) this.listen = store.listen.bind(store);
    if (store.signal) this.signal = store.signal.bind(store);
  }

  get name(): string {
    return this.#wrapped.name;
  }

  get plugin(): string {
    return this.#wrapped.plugin;
  }

  get location(): string {
    return this.#wrapped.location;
  }

  get capabilities(): Readonly<Capabilities> {
    return this.#wrapped.capabilities;
  }

  get indexes(): readonly IndexInfo[] {
    return this.#wrapped.indexes;
  }

  /** The wrapped store, for core code (see `coreStore`). */
  [INNER_STORE](): Store {
    return this.#wrapped;
  }

  changes<T = JsonValue>(options?: ChangesOptions): AsyncIterable<Change<T>> {
    return this.#wrapped.changes<T>(options);
  }

  watch<T = JsonValue>(prefixes: readonly Key[], options?: WatchOptions): AsyncIterable<Change<T>> {
    return this.#wrapped.watch<T>(prefixes, options);
  }

  getAt<T = JsonValue>(key: Key, at: { time: number } | { seq: number }): Promise<Entry<T> | null> {
    return this.#wrapped.getAt<T>(key, at);
  }

  feedInfo(): Promise<FeedInfo> {
    return this.#wrapped.feedInfo();
  }
}
