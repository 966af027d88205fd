/**
 * How code below the encryption wrapper finds it through other wrappers: an
 * encrypted store (see `src/wrappers/encrypt.ts`) answers
 * {@linkcode encryptionOf} with a handle that holds the store under it (the
 * sealed values as stored) and what the rekey job needs. Wrappers that only
 * pass calls through (the runtime's notifying store) forward it. The backup
 * job reads the sealed values through it, so that backups stay encrypted.
 *
 * @module
 */
import type { Change, Entry, JsonValue, Key, Store } from "./types.ts";

/** The property an encrypted store (and a wrapper forwarding it) answers. */
export const ENCRYPTION: unique symbol = Symbol.for("flowstate.encryption") as never;

/** What an encrypted store tells about itself. */
export interface EncryptionHandle {
  /** The store under the wrapper: its values are the sealed envelopes. */
  readonly sealed: Store;
  /** The key id new values are sealed with. */
  readonly currentKeyId: string;
  /** Every configured key id, the current one first. */
  readonly keyIds: readonly string[];
  /** The key id a stored (sealed) value was sealed with, or `null` if it is not sealed. */
  keyIdOf(stored: JsonValue): string | null;
  /**
   * Whether the stored `entry` must be sealed again: not sealed, sealed with
   * an older key, or its plaintext fields are not those the declared paths
   * give now (the paths changed).
   */
  needsReseal(entry: Entry): Promise<boolean>;
  /**
   * The stored value `entry` (read from {@linkcode EncryptionHandle.sealed})
   * sealed under the current key: opened with its key (or taken as it is,
   * if it is not sealed) and sealed again. Throws a `DecryptionError` if it
   * cannot be opened.
   */
  reseal(entry: Entry): Promise<JsonValue>;
  /** Open one stored value of `key` (throws a `DecryptionError` if it cannot). */
  open(key: Key, stored: JsonValue): Promise<JsonValue>;
  /**
   * A change of the feed as stored, with its value opened as `changes()`
   * opens it: a value in the clear (written before encryption was turned on)
   * is handed out as it is, marked `unsealed`; one that cannot be opened
   * throws a `DecryptionError` naming the change and the key id.
   */
  openChange(change: Change): Promise<Change>;
}

/** The encryption handle of `store` (through forwarding wrappers), or `undefined` if it is not encrypted. */
export function encryptionOf(store: Store): EncryptionHandle | undefined {
  const handle = (store as { [ENCRYPTION]?: unknown })[ENCRYPTION];
  return typeof handle === "object" && handle !== null ? handle as EncryptionHandle : undefined;
}

/** What the store holds: under an encrypted store, the store of its sealed values; else `store`. */
export function sealedView(store: Store): Store {
  return encryptionOf(store)?.sealed ?? store;
}
