/**
 * What every store wrapper (`cached`, `withHooks`, `encrypted`, the
 * runtime's notifying store, the sealed view under a cache) passes through
 * unchanged: the wrapped store's name, plugin, location, capabilities and
 * indexes, and its cross-process wake-ups (`listen`, `signal`) when it has
 * them. A wrapper extends {@linkcode ForwardingBase} and implements the rest
 * of `Store` itself.
 *
 * @module
 */
import type { Capabilities, IndexInfo, Store } from "../store/types.ts";

/** The wrapped store's identity, capabilities, indexes and cross-process signals, forwarded. */
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
}
