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
  /**
   * Record in the store that its values carry the plaintext fields the
   * declared paths give now (rekey, once every entry holds them): queries on
   * paths declared since the last record are allowed from then on. With
   * `paths`, that they carry those (a restore of values another store
   * sealed): queries on declared paths they do not cover are refused until
   * rekey.
   */
  settlePlaintext(paths?: readonly (readonly string[])[]): Promise<void>;
  /**
   * The plaintext paths the store's values carry, as far as it knows: the
   * declared ones, or the recorded ones while they differ (until rekey).
   */
  carriedPlaintext(): readonly (readonly string[])[];
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

/** What made an encrypted store refuse a query or search: the option and the sealed path. */
export interface SealedPathDetail {
  /** The start of the message: `Cannot query`, `Cannot explain`, `Cannot search`. */
  readonly what: string;
  /** The encrypted store's name. */
  readonly store: string;
  /** The option that named the path. */
  readonly option: "where" | "orderBy" | "fields";
  /**
   * Which item of the option (`where[1]`); `undefined` for a search without
   * `fields`, which reads the store's declared search fields.
   */
  readonly index?: number;
  /** The sealed path (`[]`: the whole value); `null`: every field (no search fields declared). */
  readonly path: readonly string[] | null;
  /** The declared plaintext paths. */
  readonly plaintext: readonly (readonly string[])[];
  /** For a search: the plaintext fields it could name instead (may be empty). */
  readonly usable?: readonly (readonly string[])[];
  /**
   * Set when `path` is declared plaintext, but only since values were
   * written: they carry only these plaintext paths (the ones the store
   * recorded), so the backend would not find them by it until the rekey job
   * has run.
   */
  readonly recorded?: readonly (readonly string[])[];
}

/**
 * A query or search on an encrypted store that would read a sealed field
 * (a `TypeError`: the call is wrong, not the store). Its message speaks of
 * the library call's options (`where[0]`, `fields`), which are also those of
 * the `state.query`/`state.search` nodes; the CLI words it with its own
 * options by {@linkcode SealedPathError.messageFor}.
 */
export class SealedPathError extends TypeError {
  /** The option and path refused. */
  readonly detail: SealedPathDetail;

  constructor(detail: SealedPathDetail) {
    super(sealedPathMessage(detail));
    this.detail = detail;
  }

  /**
   * The message in the CLI's words: `typed` is the option as the user typed
   * it (`--where body=secret`, `--order-by -body`, `--fields title,body`), and
   * fields to search are named with `--fields`.
   */
  messageFor(cli: { typed?: string }): string {
    return sealedPathMessage(this.detail, cli);
  }
}

function showPath(path: readonly string[]): string {
  return path.length === 0 ? "the whole value" : `"${path.join(".")}"`;
}

function sealedPathMessage(
  d: SealedPathDetail,
  cli?: { typed?: string },
): string {
  const name = (p: readonly string[]) => p.join(".") || "...";
  const declare = (p: readonly string[]) =>
    `encrypt: { plaintext: [${[...d.plaintext.map(name), name(p)].join(", ")}] }`;
  const item = d.index === undefined ? "" : cli?.typed ?? `${d.option}[${d.index}]`;
  if (d.recorded !== undefined) {
    const on = d.index === undefined
      ? `the store's search field ${showPath(d.path ?? [])}`
      : `${item} (${showPath(d.path ?? [])})`;
    return `${d.what}: ${on} was declared plaintext in encrypted store "${d.store}" after ` +
      `values were written without it (they carry ${
        d.recorded.length === 0 ? "no plaintext field" : d.recorded.map(name).join(", ")
      }), so the store cannot find them by it yet; run the rekey job ` +
      `(flowstate jobs run rekey) to store it beside every value, then try again`;
  }
  if (d.option !== "fields") {
    return `${d.what}: ${item} is on ${showPath(d.path ?? [])}, which is sealed in encrypted ` +
      `store "${d.store}" (queries cannot read sealed values); declare it plaintext ` +
      `(${declare(d.path ?? [])}) and run the rekey job, or filter the listed values in your code`;
  }
  const usable = d.usable ?? [];
  const nameThem = (fields: readonly string[]) =>
    cli
      ? `--fields ${fields.join(",")}`
      : `search(text, { fields: [${fields.map((f) => JSON.stringify(f)).join(", ")}] }), ` +
        `or fields: [${fields.join(", ")}] in a state.search node`;
  const plain = usable.length > 0
    ? `search plaintext fields only (${nameThem(usable.map(name))})`
    : "";
  let reads: string;
  let fix: string;
  if (d.path === null) {
    reads = "without fields a search reads every field (the store declares no search fields)";
    fix = plain !== ""
      ? plain
      : `declare the fields to search plaintext (${declare(["title"])}), ` +
        `run the rekey job and name them (${nameThem(["title"])})`;
  } else {
    reads = d.index === undefined
      ? `without fields a search reads the store's search fields, and ${showPath(d.path)} ` +
        `among them is sealed`
      : `${item} names ${showPath(d.path)}, which is sealed`;
    const declareIt = `declare it plaintext (${declare(d.path)}) and run the rekey job`;
    fix = plain !== "" ? `${plain}, or ${declareIt}` : declareIt;
  }
  return `${d.what}: ${reads} in encrypted store "${d.store}" (search cannot read sealed ` +
    `values); ${fix}`;
}
