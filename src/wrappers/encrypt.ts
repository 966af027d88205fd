/**
 * Encryption at rest over any {@linkcode Store}: values sealed with
 * AES-256-GCM, bound to their entry key, with a key id so that old keys stay
 * readable while the `rekey` job rotates values to the new one. A value of up
 * to 4 KiB is sealed and opened with `node:crypto`, synchronously (no thread
 * hop: a 1 KB value costs about 40% of the CPU WebCrypto costs); a larger one
 * with WebCrypto, off the event loop. Both write the same bytes.
 *
 * A sealed value, as the store under the wrapper holds it, is a JSON object:
 *
 * ```json
 * { "$sealed": "fs1:<key id>:<base64 of 12-byte IV + ciphertext + 16-byte tag>",
 *   "status": "open" }
 * ```
 *
 * beside `$sealed`, only the fields at the declared `plaintext` paths, at the
 * same paths, so that the backend's own queries and indexes on them work.
 * The authenticated data (AAD) is `flowstate.encrypt.v1`, the key id and the
 * entry's encoded key, so a value copied to another key (or another key id)
 * does not open. Entry keys, versions and expiry times stay in the clear.
 *
 * The store records (in its internal key space) the plaintext paths its
 * values carry. After the declaration changes, a query, an explain or a
 * search on a path newly declared is refused until the rekey job has stored
 * it beside every value (values written earlier lack it: the backend would
 * silently not find them); a store that holds no entries takes the new
 * declaration at once.
 *
 * @module
 */
import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  type KeyObject,
  randomFillSync,
} from "node:crypto";
import { ForwardingBase } from "./_forwarding.ts";
import { OpenedCache } from "./_opened_cache.ts";
import { SIZE_UNITS } from "../_size_units.ts";
import { ConfigError, DecryptionError, StoreClosedError } from "../errors.ts";
import { assertKey, assertKeySize, encodeCursor, encodeKey, encodeKeyInto } from "../store/keys.ts";
import { jsonEqual, parsePath } from "../store/query.ts";
import { listIterator } from "../store/list_iterator.ts";
import {
  ENCRYPTION,
  type EncryptionHandle,
  encryptionOf,
  type SealedPathDetail,
  SealedPathError,
} from "../store/sealed.ts";
import { internalAccess, internalKey } from "../store/internal_keys.ts";
import { newVersion } from "../store/store.ts";
import { type StoredReader, type StoredReads, storedReads } from "../store/stored_read.ts";
import type { RawEntry } from "../store/driver.ts";
import type {
  AtomicOperation,
  Change,
  ChangesOptions,
  CommitResult,
  CompactResult,
  DeleteOptions,
  Entry,
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
  WatchOptions,
} from "../store/types.ts";
import { assertValueSize, MAX_VALUE_BYTES, serializeValue, utf8Length } from "../store/values.ts";
import { parseJson } from "../_json.ts";

/**
 * The field of a sealed value that holds the ciphertext.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encrypted, SEALED_FIELD } from "@flowstate/core/encrypt";
 * import { openStore } from "@flowstate/core";
 *
 * const base = await openStore({ plugin: "memory" });
 * await using store = await encrypted(base, { key: "11".repeat(32) });
 * await store.set(["secret"], { card: "4242" });
 * const stored = (await base.get<Record<string, unknown>>(["secret"]))?.value;
 * assert.equal(typeof stored?.[SEALED_FIELD], "string"); // the ciphertext, under "$sealed"
 * ```
 */
export const SEALED_FIELD = "$sealed";

const FORMAT = "fs1";
/** What every sealed value's text starts with. */
const FORMAT_PREFIX = `${FORMAT}:`;
const AAD_PREFIX = new TextEncoder().encode("flowstate.encrypt.v1\u0000");
const KEY_ID_PREFIX = new TextEncoder().encode("flowstate.encrypt.key-id\u0000");
const IV_BYTES = 12;
const TAG_BYTES = 16;
const ALGORITHM = "aes-256-gcm";
/**
 * A value whose JSON is at most this long (in characters to seal it, in
 * UTF-8 bytes to open it) is sealed and opened with node:crypto,
 * synchronously, in the buffers below; a larger one with WebCrypto (its
 * thread hop is paid back by its faster cipher from about 4 KB on, and a
 * large value does not hold up the event loop).
 */
const SYNC_MAX = 4096;
/** Room for a value's UTF-8 (at most 3 bytes a character). */
const PLAIN_BUFFER = new Uint8Array(SYNC_MAX * 3);
/** Room for IV + ciphertext + tag of a value sealed synchronously. */
const PACKED_BUFFER = new Uint8Array(IV_BYTES + PLAIN_BUFFER.length + TAG_BYTES);
/** The longest base64 opened synchronously: IV + {@linkcode SYNC_MAX} bytes + tag. */
const SYNC_MAX_BASE64 = Math.ceil((IV_BYTES + SYNC_MAX + TAG_BYTES) / 3) * 4;
/**
 * Random bytes, 12 at a time for IVs, drawn from the system's CSPRNG a pool
 * at a time (one call per 1,024 IVs instead of one per value). Each IV is
 * taken once: the offset moves on before it is used.
 */
const IV_POOL = new Uint8Array(IV_BYTES * 1024);
let ivPoolOffset = IV_POOL.length;
/** The authenticated data of the value being sealed or opened (grows for a long key). */
let aadBuffer = new Uint8Array(256);
const ENCODER = new TextEncoder();
const DECODER = new TextDecoder();
/** Entries the open-time check looks at for a sealed value. */
const OPEN_CHECK_ENTRIES = 1000;
/** Entries a listing (or a read of the feed) reads ahead of the one it yields once a value is large, to open them in parallel with WebCrypto. */
const READ_AHEAD = 16;

/**
 * Key material: 32 bytes, as 64 hex digits, base64 (44 characters) or base64url, or the bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encrypted, type EncryptionKeyMaterial } from "@flowstate/core/encrypt";
 * import { openStore } from "@flowstate/core";
 *
 * const bytes: EncryptionKeyMaterial = crypto.getRandomValues(new Uint8Array(32));
 * const hex: EncryptionKeyMaterial = "ab".repeat(32); // or base64 of 32 bytes
 * const base = await openStore({ plugin: "memory" });
 * await using store = await encrypted(base, { keys: [bytes, hex] });
 * assert.equal(store.keyIds.length, 2);
 * ```
 */
export type EncryptionKeyMaterial = string | Uint8Array;

/**
 * Options for {@linkcode encrypted}, and the `encrypt:` field of a store in
 * the config (`encrypt: { key: "${env.FLOWSTATE_KEY}" }`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encrypted, type EncryptOptions } from "@flowstate/core/encrypt";
 * import { openStore } from "@flowstate/core";
 *
 * const options: EncryptOptions = { key: "11".repeat(32), plaintext: ["status"] };
 * const base = await openStore({ plugin: "memory" });
 * await using store = await encrypted(base, options);
 * await store.set(["orders", "1"], { status: "open", card: "4242" });
 * const stored = (await base.get<Record<string, unknown>>(["orders", "1"]))?.value;
 * assert.equal(stored?.status, "open"); // readable: queries on it work
 * assert.equal(stored?.card, undefined); // sealed
 * ```
 */
export interface EncryptOptions {
  /** The key: 32 random bytes as 64 hex digits or base64 (`openssl rand -base64 32`). */
  key?: EncryptionKeyMaterial;
  /**
   * Several keys, for a rotation: the first seals new values, every one of
   * them opens values sealed with it. Give `key` or `keys`, not both.
   */
  keys?: readonly EncryptionKeyMaterial[];
  /**
   * Paths of fields kept readable beside the sealed value (`"status"`,
   * `"customer.id"`, `["customer", "id"]`), so that queries, indexes and
   * search on them work. Everything else of the value is sealed. A path must
   * go through objects only (not arrays).
   */
  plaintext?: readonly (string | readonly string[])[];
  /**
   * How much plaintext of recently written or read values to keep in this
   * process's memory, so that reading a value again does not decrypt it
   * again: MiB as a number, or a size such as `"16MiB"` or `"512KiB"`.
   * Default 8 MiB; `0` keeps none (every read decrypts). What is kept stays
   * until it is pushed out by newer values or the store is closed, also
   * after the value is deleted.
   */
  cache?: number | string;
}

/**
 * A parsed, checked {@linkcode EncryptOptions} (no key material in it is ever printed).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseEncryptOptions, type ParsedEncryptOptions } from "@flowstate/core/encrypt";
 *
 * const parsed: ParsedEncryptOptions = parseEncryptOptions({
 *   keys: ["22".repeat(32), "11".repeat(32)],
 *   plaintext: ["customer.id"],
 * });
 * assert.equal(parsed.keys.length, 2);
 * assert.deepEqual(parsed.plaintext, [["customer", "id"]]);
 * ```
 */
export interface ParsedEncryptOptions {
  /** The raw keys, the current one first. */
  readonly keys: readonly Uint8Array[];
  /** The plaintext paths, split into segments. */
  readonly plaintext: readonly (readonly string[])[];
  /** How many bytes of opened plaintext to keep in memory (0: none). */
  readonly cacheBytes: number;
}

/** The default of {@linkcode EncryptOptions.cache}: 8 MiB of plaintext kept in memory. */
export const DEFAULT_ENCRYPT_CACHE_BYTES = 8 * 1024 * 1024;

/** `cache` in bytes, or what is wrong with it. */
function cacheBytesOf(cache: unknown): number | string {
  const problem = `cache must be MiB as a number (8), a size such as "16MiB" or "512KiB", ` +
    `or 0 to keep no plaintext in memory; got ${JSON.stringify(cache)}`;
  if (typeof cache === "number") {
    return Number.isFinite(cache) && cache >= 0 && cache <= 1024 * 1024
      ? Math.floor(cache * 1024 * 1024)
      : problem;
  }
  if (typeof cache !== "string") return problem;
  // A number without a unit is MiB, as a YAML number is (`${env.…}` gives a string).
  const m = /^\s*(\d+(?:\.\d+)?)\s*(kib|mib|gib|kb|mb|gb)?\s*$/i.exec(cache);
  if (m === null) return problem;
  const bytes = Math.floor(Number(m[1]) * SIZE_UNITS[(m[2] ?? "mib").toLowerCase()]);
  return Number.isSafeInteger(bytes) ? bytes : problem;
}

/**
 * An encrypted store, made by {@linkcode encrypted}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encrypted, type EncryptedStore } from "@flowstate/core/encrypt";
 * import { openStore } from "@flowstate/core";
 *
 * const base = await openStore({ plugin: "memory" });
 * await using store: EncryptedStore = await encrypted(base, { key: "11".repeat(32) });
 * assert.match(store.keyId, /^[0-9a-f]{16}$/);
 * assert.deepEqual(store.keyIds, [store.keyId]);
 * ```
 */
export interface EncryptedStore extends Store {
  /** The key id new values are sealed with (16 hex digits, derived from the key). */
  readonly keyId: string;
  /** Every configured key id, the current one first. */
  readonly keyIds: readonly string[];
  /** The declared plaintext paths, split into segments. */
  readonly plaintext: readonly (readonly string[])[];
}

function keyProblem(material: unknown): string | null {
  if (material instanceof Uint8Array) {
    return material.length === 32
      ? null
      : `the key is ${material.length} bytes; it must be 32 bytes`;
  }
  if (typeof material !== "string") {
    return "the key must be a string (64 hex digits or base64 of 32 bytes)";
  }
  if (material === "") return "the key is empty (is its environment variable set?)";
  return null;
}

/** Decode one key, or say what is wrong with it (never showing it). */
function decodeKey(material: unknown): Uint8Array | string {
  const problem = keyProblem(material);
  if (problem !== null) return problem;
  if (material instanceof Uint8Array) return new Uint8Array(material);
  const text = (material as string).trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Uint8Array.fromHex(text);
  if (/^[A-Za-z0-9+/]{43}=?$/.test(text)) {
    return Uint8Array.fromBase64(text.length === 43 ? text + "=" : text);
  }
  if (/^[A-Za-z0-9_-]{43}=?$/.test(text)) {
    return Uint8Array.fromBase64(text.length === 43 ? text + "=" : text, { alphabet: "base64url" });
  }
  return `the key is not 32 bytes as 64 hex digits or base64 (got ${text.length} characters); ` +
    `make one with: openssl rand -base64 32`;
}

/**
 * Check encryption options: the keys decoded, the paths split. A
 * {@linkcode ConfigError} says which option is wrong (at `encrypt.key`,
 * `encrypt.keys.1`, `encrypt.plaintext.0`…) and never shows a key.
 *
 * @example
 * ```ts
 * import { parseEncryptOptions } from "@flowstate/core/encrypt";
 * import { ConfigError } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * const parsed = parseEncryptOptions({ key: "a".repeat(64), plaintext: ["status"] });
 * assert.equal(parsed.keys[0].length, 32);
 * assert.throws(() => parseEncryptOptions({ key: "short" }), ConfigError);
 * ```
 */
export function parseEncryptOptions(
  options: EncryptOptions,
  what = "Cannot encrypt store",
): ParsedEncryptOptions {
  // The message names the option itself ("the key is empty"), so that it
  // reads after a location (`stores.main.encrypt.key: the key is empty`).
  const fail = (path: (string | number)[], message: string): never => {
    throw new ConfigError(`${what}: encrypt.${path.join(".")}: ${message}`, {
      issues: [{ path: ["encrypt", ...path], message }],
    });
  };
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new ConfigError(
      `${what}: encrypt must be an object like { key: "\${env.FLOWSTATE_KEY}" }`,
      {
        issues: [{ path: ["encrypt"], message: "must be an object like { key: ... }" }],
      },
    );
  }
  for (const field of Object.keys(options)) {
    if (!["key", "keys", "plaintext", "cache"].includes(field)) {
      fail(
        [field],
        `unknown option "${field}"; the options of encrypt are key, keys, plaintext and cache`,
      );
    }
  }
  const keys: Uint8Array[] = [];
  if (options.key !== undefined && options.keys !== undefined) {
    fail(["keys"], "key and keys are both given; give key (one key) or keys (current first)");
  }
  if (options.key !== undefined) {
    const key = decodeKey(options.key);
    if (typeof key === "string") fail(["key"], key);
    keys.push(key as Uint8Array);
  } else if (options.keys !== undefined) {
    if (!Array.isArray(options.keys) || options.keys.length === 0) {
      fail(["keys"], "keys must be a non-empty list of keys, the current one first");
    }
    options.keys.forEach((material, i) => {
      const key = decodeKey(material);
      if (typeof key === "string") fail(["keys", i], key);
      keys.push(key as Uint8Array);
    });
  } else {
    fail(["key"], `the key is missing: give it, like key: "\${env.FLOWSTATE_KEY}"`);
  }
  const plaintext: string[][] = [];
  const declared = options.plaintext ?? [];
  if (!Array.isArray(declared)) {
    fail(["plaintext"], "plaintext must be a list of paths like [status, customer.id]");
  }
  declared.forEach((path, i) => {
    let segments: string[];
    try {
      segments = parsePath(path, "plaintext path");
    } catch {
      return fail(["plaintext", i], "a plaintext path must be like status or customer.id");
    }
    if (segments.length === 0 || segments.some((s) => s === "")) {
      fail(
        ["plaintext", i],
        `the plaintext path ${JSON.stringify(path)} must name a field, like status or customer.id`,
      );
    }
    if (segments[0] === SEALED_FIELD) {
      fail(
        ["plaintext", i],
        `a plaintext path must not start with ${SEALED_FIELD}: that field holds the sealed value`,
      );
    }
    plaintext.push(segments);
  });
  let cacheBytes = DEFAULT_ENCRYPT_CACHE_BYTES;
  if (options.cache !== undefined) {
    const bytes = cacheBytesOf(options.cache);
    if (typeof bytes === "string") fail(["cache"], bytes);
    cacheBytes = bytes as number;
  }
  return { keys, plaintext, cacheBytes };
}

async function keyIdOf(raw: Uint8Array): Promise<string> {
  const data = new Uint8Array(KEY_ID_PREFIX.length + raw.length);
  data.set(KEY_ID_PREFIX);
  data.set(raw, KEY_ID_PREFIX.length);
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return hash.subarray(0, 8).toHex();
}

interface SealingKey {
  id: string;
  /** The key for node:crypto (held outside the JS heap, as the CryptoKey is). */
  secret: KeyObject;
  /** The same key imported into WebCrypto, for large values. */
  key: CryptoKey;
  /** What a sealed value's text starts with: `fs1:<id>:`. */
  header: string;
  /** The start of the authenticated data: the AAD prefix, the key id and a NUL. */
  aad: Uint8Array;
}

function sealingKey(id: string, secret: KeyObject, key: CryptoKey): SealingKey {
  const idBytes = ENCODER.encode(id + "\u0000");
  const aad = new Uint8Array(AAD_PREFIX.length + idBytes.length);
  aad.set(AAD_PREFIX);
  aad.set(idBytes, AAD_PREFIX.length);
  return { id, secret, key, header: `${FORMAT}:${id}:`, aad };
}

/**
 * The authenticated data for `key` under `head` (the prefix and the key id):
 * a view of a shared buffer, valid until the next call (use it at once).
 */
function aadOf(head: Uint8Array, key: Key): Uint8Array {
  aadBuffer.set(head);
  let end = encodeKeyInto(key, aadBuffer, head.length);
  if (end < 0) {
    const keyBytes = encodeKey(key);
    end = head.length + keyBytes.length;
    aadBuffer = new Uint8Array(end * 2);
    aadBuffer.set(head);
    aadBuffer.set(keyBytes, head.length);
  }
  return aadBuffer.subarray(0, end);
}

/** Write a fresh random IV at the start of `out`. */
function drawIv(out: Uint8Array): void {
  if (ivPoolOffset + IV_BYTES > IV_POOL.length) {
    // The system's CSPRNG itself: `crypto.getRandomValues` repeats its bytes under
    // `deno run --seed N`, which would repeat IVs (GCM's nonces) on every start.
    randomFillSync(IV_POOL);
    ivPoolOffset = 0;
  }
  const at = ivPoolOffset;
  ivPoolOffset += IV_BYTES;
  for (let i = 0; i < IV_BYTES; i++) out[i] = IV_POOL[at + i];
}

/**
 * Seal `text` under `sealing` with `aad`: the base64 of IV + ciphertext + tag.
 * Synchronous (node:crypto, in shared buffers) for a value of up to
 * {@linkcode SYNC_MAX} characters; WebCrypto for a larger one.
 */
function sealText(sealing: SealingKey, aad: Uint8Array, text: string): string | Promise<string> {
  if (text.length > SYNC_MAX) return sealLarge(sealing, aad.slice(), text);
  const length = ENCODER.encodeInto(text, PLAIN_BUFFER).written;
  drawIv(PACKED_BUFFER);
  const cipher = createCipheriv(ALGORITHM, sealing.secret, PACKED_BUFFER.subarray(0, IV_BYTES));
  cipher.setAAD(aad);
  PACKED_BUFFER.set(cipher.update(PLAIN_BUFFER.subarray(0, length)), IV_BYTES);
  PLAIN_BUFFER.fill(0, 0, length); // the plaintext does not stay behind in the shared buffer
  cipher.final();
  PACKED_BUFFER.set(cipher.getAuthTag(), IV_BYTES + length);
  return PACKED_BUFFER.subarray(0, IV_BYTES + length + TAG_BYTES).toBase64();
}

async function sealLarge(sealing: SealingKey, aad: Uint8Array, text: string): Promise<string> {
  const iv = new Uint8Array(IV_BYTES);
  drawIv(iv);
  const ct = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: "AES-GCM", iv, additionalData: aad as Uint8Array<ArrayBuffer> },
      sealing.key,
      ENCODER.encode(text),
    ),
  );
  // 12 bytes are exactly 16 base64 digits (no padding): the two encodings concatenate.
  return iv.toBase64() + ct.toBase64();
}

/**
 * Open `base64` (IV + ciphertext + tag) under `sealing` with `aad`: the
 * plaintext's bytes. Throws if it is damaged or fails authentication.
 * Synchronous for a value of up to {@linkcode SYNC_MAX} bytes; WebCrypto for a larger one.
 */
function openText(
  sealing: SealingKey,
  aad: Uint8Array,
  base64: string,
): Uint8Array | Promise<Uint8Array> {
  if (base64.length > SYNC_MAX_BASE64) return openLarge(sealing, aad.slice(), base64);
  // It fits: PACKED_BUFFER holds far more than SYNC_MAX_BASE64 decodes to.
  const { written } = PACKED_BUFFER.setFromBase64(base64, { lastChunkHandling: "loose" });
  if (written < IV_BYTES + TAG_BYTES) throw new Error("too short");
  const decipher = createDecipheriv(ALGORITHM, sealing.secret, PACKED_BUFFER.subarray(0, IV_BYTES));
  decipher.setAAD(aad);
  decipher.setAuthTag(PACKED_BUFFER.subarray(written - TAG_BYTES, written));
  const plain = decipher.update(PACKED_BUFFER.subarray(IV_BYTES, written - TAG_BYTES));
  decipher.final(); // throws if the tag does not match: the plaintext is not used then
  return plain;
}

async function openLarge(
  sealing: SealingKey,
  aad: Uint8Array,
  base64: string,
): Promise<Uint8Array> {
  const packed = Uint8Array.fromBase64(base64, { lastChunkHandling: "loose" });
  if (packed.length < IV_BYTES + TAG_BYTES) throw new Error("too short");
  return new Uint8Array(
    await crypto.subtle.decrypt(
      {
        name: "AES-GCM",
        iv: packed.subarray(0, IV_BYTES),
        additionalData: aad as Uint8Array<ArrayBuffer>,
      },
      sealing.key,
      packed.subarray(IV_BYTES),
    ),
  );
}

/** A path a query or search reads through the backend, and the option that named it. */
interface QueryPath {
  path: readonly string[];
  option: "where" | "orderBy" | "fields";
  index?: number;
}

/** Where a store records the plaintext paths its values carry: `{ "paths": [[...], ...] }`. */
const PLAINTEXT_KEY: Key = internalKey("encrypt", "plaintext");

/** The paths of a plaintext record, or `null` when it is not one this version reads. */
function parsePlaintextRecord(text: string): string[][] | null {
  try {
    const paths = (JSON.parse(text) as { paths?: unknown })?.paths;
    if (
      Array.isArray(paths) &&
      paths.every((p) => Array.isArray(p) && p.every((s) => typeof s === "string"))
    ) {
      return paths as string[][];
    }
  } catch { /* not ours */ }
  return null;
}

/** Whether two lists of paths cover the same fields (in any order). */
function samePaths(
  a: readonly (readonly string[])[],
  b: readonly (readonly string[])[],
): boolean {
  return a.every((p) => covered(b, p)) && b.every((p) => covered(a, p));
}

/** Whether `path` is covered by a declared plaintext path (equal to one, or under one). */
function covered(plaintext: readonly (readonly string[])[], path: readonly string[]): boolean {
  return plaintext.some((p) => p.length <= path.length && p.every((s, i) => s === path[i]));
}

/** Keys shown in messages: JSON. */
function showKey(key: Key): string {
  return JSON.stringify(key);
}

/** Whether `sealed` holds no field but the sealed value (no allocation). */
function onlySealedField(sealed: Record<string, unknown>): boolean {
  for (const field in sealed) if (field !== SEALED_FIELD) return false;
  return true;
}

function isEnvelope(value: unknown): value is Record<string, JsonValue> & { $sealed: string } {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    typeof (value as Record<string, unknown>)[SEALED_FIELD] === "string" &&
    (value as Record<string, string>)[SEALED_FIELD].startsWith(FORMAT_PREFIX);
}

/** `then` applied to `value` now if it is not a promise, else when it resolves. */
function whenOpened<A, B>(value: A | Promise<A>, then: (a: A) => B): B | Promise<B> {
  return value instanceof Promise ? value.then(then) : then(value);
}

/**
 * `open` applied to each of `items`, in order: the array at once if every one
 * opened synchronously (values up to 4 KiB), else a promise of it (larger
 * values open in parallel). The first failure throws (or rejects); openings
 * already under way are left to settle, unobserved.
 */
function openEach<I, O>(
  items: readonly I[],
  open: (item: I) => O | Promise<O>,
): O[] | Promise<O[]> {
  const out: (O | Promise<O>)[] = [];
  let pending = false;
  for (const item of items) {
    let opened: O | Promise<O>;
    try {
      opened = open(item);
    } catch (err) {
      // Every earlier item opened: this is the first failure.
      if (!pending) throw err;
      // An earlier (large) item is still opening and may fail too: its failure comes first.
      out.push(Promise.reject(err));
      break;
    }
    if (opened instanceof Promise) pending = true;
    out.push(opened);
  }
  if (!pending) return out as O[];
  // Settled in order, so the first item that fails is the one reported; the others'
  // failures are observed (never an unhandled rejection).
  for (const opened of out) if (opened instanceof Promise) opened.catch(() => {});
  return (async () => {
    const values: O[] = [];
    for (const opened of out) values.push(await opened);
    return values;
  })();
}

/**
 * The items of `source` opened by `open`, in order. An item that opens
 * synchronously (a value up to 4 KiB) is opened when its turn comes, nothing
 * read ahead. When one opens asynchronously (WebCrypto, a larger value), up
 * to {@linkcode READ_AHEAD} items are read and opened at once: each WebCrypto
 * call waits for a thread of a pool, so a page of large values pays about one
 * cipher latency per few values instead of one per value. An item that fails
 * to open fails the iteration when its turn comes; no item is handed out once
 * `closed()` names the operation (the store was closed). `handing` is told
 * of each item just before it is handed out.
 */
async function* openAhead<I, O>(
  source: AsyncIterator<I>,
  open: (item: I) => O | Promise<O>,
  closed: () => string | null,
  name: string,
  handing?: (item: O) => void,
): AsyncGenerator<O> {
  const checkOpen = () => {
    const what = closed();
    if (what !== null) throw new StoreClosedError(`Cannot ${what}: store "${name}" is closed`);
  };
  const ahead: Promise<O>[] = [];
  let exhausted = false;
  try {
    for (;;) {
      if (ahead.length === 0) {
        if (exhausted) return;
        const step = await source.next();
        if (step.done) {
          exhausted = true;
          return;
        }
        checkOpen();
        const opened = open(step.value); // its turn: a failure is reported now
        if (!(opened instanceof Promise)) {
          handing?.(opened);
          yield opened;
          continue;
        }
        ahead.push(opened);
        opened.catch(() => {}); // reported when its turn comes, or dropped with the rest
        while (!exhausted && ahead.length < READ_AHEAD) {
          const next = await source.next();
          if (next.done) {
            exhausted = true;
            break;
          }
          let opening: Promise<O>;
          try {
            opening = Promise.resolve(open(next.value));
          } catch (err) {
            opening = Promise.reject(err);
          }
          opening.catch(() => {}); // reported when its turn comes, or dropped with the rest
          ahead.push(opening);
        }
      }
      const item = await ahead.shift()!;
      checkOpen();
      handing?.(item);
      yield item;
    }
  } finally {
    if (!exhausted) await source.return?.();
  }
}

/**
 * Put encryption at rest in front of any store: every value is sealed with
 * AES-256-GCM before the store sees it, and opened on every read. Resolves
 * once the keys are imported and the store is checked: if it already holds a
 * sealed value whose key id is none of the configured keys (a wrong key),
 * this rejects with a {@linkcode DecryptionError} and writes nothing.
 *
 * - Keys (entry keys) stay in the clear, so ordering, prefixes, `list`,
 *   `count` and `clear` work as before. Versions and expiry are unchanged.
 * - Values are bound to their key: a sealed value copied to another key
 *   fails authentication. A tampered value fails too: a
 *   {@linkcode DecryptionError} naming the key.
 * - `query` (and `explain`) with a `where` or `orderBy` path that is not
 *   declared `plaintext` is refused with a `TypeError` that says which path
 *   and how to declare it. `search` reads plaintext fields only: the
 *   `fields` it is given, or without them the store's declared search
 *   `fields`, must all be declared plaintext.
 *   A query without `where` and `orderBy` (a prefix, offset, limit) works.
 * - Reading a value that is not sealed (written before encryption was turned
 *   on) is a {@linkcode DecryptionError}: run the `rekey` job to seal them.
 *   In the change feed (`changes`, `watch`, `getAt` of a past point) such a
 *   value is history from before encryption: it is handed out as it is
 *   (a change marked `unsealed: true`) until `rekey` seals it. A value
 *   sealed with a key no longer configured is a `DecryptionError` naming
 *   its key id: configure that key again (`keys: [current, old]`).
 * - The open-time check reads at most the first 1,000 entries; a store whose
 *   first 1,000 entries hold no sealed value is not checked there (each read
 *   still is).
 *
 * @example Values are sealed in the store under the wrapper
 * ```ts
 * import { encrypted } from "@flowstate/core/encrypt";
 * import { openStore } from "@flowstate/core";
 * import assert from "node:assert/strict";
 *
 * const key = "kZ8b3YqB6h4n0aY0m6E2c1rG9d5Vq7sJ2uT4wX8yZ0A="; // openssl rand -base64 32
 * const base = await openStore({ plugin: "memory" });
 * await using store = await encrypted(base, { key, plaintext: ["status"] });
 * await store.set(["orders", "1"], { status: "open", card: "4242 4242" });
 * assert.deepEqual((await store.get(["orders", "1"]))?.value, { status: "open", card: "4242 4242" });
 *
 * const stored = (await base.get(["orders", "1"]))?.value as Record<string, string>;
 * assert.equal(stored.status, "open"); // declared plaintext
 * assert.ok(!JSON.stringify(stored).includes("4242"));
 *
 * // queries on a plaintext path work; on any other path they are refused
 * assert.equal((await store.query({ where: [{ path: "status", op: "eq", value: "open" }] })).length, 1);
 * await assert.rejects(() => store.query({ where: [{ path: "card", op: "exists" }] }), TypeError);
 * ```
 *
 * @example Rotation: the new key first, the old one still opens old values
 * ```ts
 * import { encrypted } from "@flowstate/core/encrypt";
 * import { openStore } from "@flowstate/core";
 * import assert from "node:assert/strict";
 *
 * const oldKey = "11".repeat(32);
 * const newKey = "22".repeat(32);
 * const base = await openStore({ plugin: "memory" });
 * const before = await encrypted(base, { key: oldKey });
 * await before.set(["a"], "sealed with the old key");
 * const after = await encrypted(base, { keys: [newKey, oldKey] });
 * assert.equal((await after.get(["a"]))?.value, "sealed with the old key");
 * assert.notEqual(after.keyId, before.keyId);
 * await after.close();
 * ```
 */
export async function encrypted(store: Store, options: EncryptOptions): Promise<EncryptedStore> {
  if (
    typeof store !== "object" || store === null || typeof store.get !== "function" ||
    typeof store.atomic !== "function"
  ) {
    throw new TypeError("Cannot encrypt store: expected a Store (as returned by openStore())");
  }
  if (encryptionOf(store) !== undefined) {
    throw new TypeError(
      `Cannot encrypt store "${store.name}": it is encrypted already (do not wrap it twice)`,
    );
  }
  const parsed = parseEncryptOptions(options, `Cannot encrypt store "${store.name}"`);
  const keys: SealingKey[] = [];
  for (const raw of parsed.keys) {
    const id = await keyIdOf(raw);
    if (keys.some((k) => k.id === id)) continue;
    const key = await crypto.subtle.importKey(
      "raw",
      raw as Uint8Array<ArrayBuffer>,
      "AES-GCM",
      false,
      [
        "encrypt",
        "decrypt",
      ],
    );
    keys.push(sealingKey(id, createSecretKey(raw), key));
  }
  const wrapper = new EncryptingStore(store, keys, parsed.plaintext, parsed.cacheBytes);
  await wrapper.checkKeys();
  await wrapper.checkPlaintext();
  return wrapper;
}

class EncryptingStore extends ForwardingBase implements EncryptedStore {
  readonly #store: Store;
  readonly #keys: SealingKey[];
  readonly #byId: Map<string, SealingKey>;
  readonly #plaintext: readonly (readonly string[])[];
  /**
   * The plaintext paths the store records its values carry, when they are not
   * the declared ones (the declaration changed and rekey has not run since):
   * a query on a declared path they do not cover is refused. `null`: the
   * values carry the declared paths (or the store cannot tell).
   */
  #recorded: readonly (readonly string[])[] | null = null;
  readonly #handle: EncryptionHandle;
  readonly #opened: OpenedCache;
  /** The store's reads as stored, when it has them and the cache is on. */
  readonly #reads: StoredReads | undefined;
  #closed = false;

  constructor(
    store: Store,
    keys: SealingKey[],
    plaintext: readonly (readonly string[])[],
    cacheBytes: number,
  ) {
    super(store);
    this.#store = store;
    // Without plaintext fields an envelope is its sealed text alone: the cache compares a
    // stored text with it in place, so a write keeps no stored text of its own.
    this.#opened = new OpenedCache(cacheBytes, {
      head: `{"${SEALED_FIELD}":"`,
      tail: `"}`,
      bareHits: plaintext.length === 0,
    });
    this.#reads = cacheBytes > 0 ? storedReads(store) : undefined;
    this.#keys = keys;
    this.#byId = new Map(keys.map((k) => [k.id, k]));
    this.#plaintext = plaintext;
    this.#handle = Object.freeze({
      sealed: store,
      currentKeyId: keys[0].id,
      keyIds: keys.map((k) => k.id),
      keyIdOf: (stored: JsonValue) => this.#keyIdOfStored(stored),
      needsReseal: async (entry: Entry) => {
        if (this.#keyIdOfStored(entry.value) !== keys[0].id) return true;
        if (
          this.#plaintext.length === 0 && onlySealedField(entry.value as Record<string, unknown>)
        ) {
          return false;
        }
        // Under the current key: resealed only if its plaintext fields are not
        // what the declared paths give now (the paths changed, or were tampered with).
        const value = await this.#open(entry.key, entry.value, false);
        return !this.#projectionMatches(entry.key, value, entry.value as Record<string, JsonValue>);
      },
      reseal: async (entry: Entry) => {
        const value = isEnvelope(entry.value)
          ? await this.#open(entry.key, entry.value, false)
          : entry.value;
        return await this.#seal(entry.key, serializeValue(value, "Cannot rekey"), value);
      },
      open: (key: Key, stored: JsonValue) => this.#open<JsonValue>(key, stored),
      openChange: async (change: Change) => await this.#openChange(change),
      settlePlaintext: (paths?: readonly (readonly string[])[]) => this.#recordPlaintext(paths),
      carriedPlaintext: () => this.#recorded ?? this.#plaintext,
    });
  }

  get [ENCRYPTION](): EncryptionHandle {
    return this.#handle;
  }

  get keyId(): string {
    return this.#keys[0].id;
  }

  get keyIds(): readonly string[] {
    return this.#keys.map((k) => k.id);
  }

  get plaintext(): readonly (readonly string[])[] {
    return this.#plaintext;
  }

  /** At open: the first sealed value (among the first entries) must be under a configured key id. */
  async checkKeys(): Promise<void> {
    for await (const entry of this.#store.list({ limit: OPEN_CHECK_ENTRIES })) {
      if (!isEnvelope(entry.value)) continue;
      const id = this.#keyIdOfStored(entry.value);
      if (id === null || !this.#byId.has(id)) {
        throw new DecryptionError(
          `Cannot open encrypted store "${this.name}": it holds values sealed with key id ${id}, ` +
            `and the configured key${this.#keys.length > 1 ? "s have ids" : " has id"} ${
              this.keyIds.join(", ")
            }: the key is wrong. Configure the key it was sealed with (for a rotation: ` +
            `keys: [new, old]); nothing was written`,
          { store: this.name, key: entry.key, keyId: id },
        );
      }
      // The id is a hash of the key: the same id is the same key. A value
      // that is damaged is reported when it is read, not here (one bad value
      // must not make the whole store unopenable).
      return;
    }
  }

  /**
   * At open: read the plaintext paths the store records its values carry.
   * None recorded (a new store, or one from before they were recorded): the
   * declared ones are recorded. Others than the declared ones: a store that
   * holds no entries records the declared ones; else queries on the paths
   * declared since are refused until rekey (see {@linkcode #checkRecorded}),
   * and the record keeps only the paths both the recorded and the declared
   * ones cover: the values written from now on carry no other.
   */
  async checkPlaintext(): Promise<void> {
    const access = internalAccess(this.#store);
    if (access === undefined) return; // not a store openStore() made: it cannot tell
    const raw = await access.driver.get(PLAINTEXT_KEY, access.clock.now());
    if (raw !== null) {
      const recorded = parsePlaintextRecord(raw.value);
      if (recorded !== null && samePaths(recorded, this.#plaintext)) return;
      const empty = (await Array.fromAsync(this.#store.list({ limit: 1 }))).length === 0;
      if (!empty) {
        // A record this version cannot read is taken as no path: every query waits for rekey.
        const carried = recorded ?? [];
        // The values written from now on carry only the declared paths: the record keeps the
        // paths both cover, so a path declared before, dropped now and declared again is not
        // taken as carried by the values written meanwhile (a query would silently miss them).
        const both = [
          ...carried.filter((p) => covered(this.#plaintext, p)),
          ...this.#plaintext.filter((p) => covered(carried, p)),
        ];
        const kept = [...new Map(both.map((p) => [JSON.stringify(p), p])).values()];
        // A record this version cannot read (a newer one's) is left as it is.
        if (recorded !== null && !samePaths(kept, carried)) {
          try {
            await this.#recordPlaintext(kept);
          } catch {
            // Best effort (see below): this process may only read, and writes nothing then.
          }
        }
        this.#recorded = kept;
        return;
      }
    }
    try {
      await this.#recordPlaintext();
    } catch {
      // Best effort: a store this process may only read (a read-only file system, a role without
      // write rights) still opens; its values are unchanged, and the next writer records them.
    }
  }

  /**
   * Record that the store's values carry `paths` (default: the declared
   * plaintext paths; at open, and by rekey).
   */
  async #recordPlaintext(
    paths: readonly (readonly string[])[] = this.#plaintext,
  ): Promise<void> {
    const access = internalAccess(this.#store);
    if (access === undefined) return;
    const now = access.clock.now();
    await access.driver.commit({
      checks: [],
      mutations: [{
        type: "set",
        key: PLAINTEXT_KEY,
        value: JSON.stringify({ paths }),
        expiresAt: null,
      }],
      version: newVersion(now),
      now,
    });
    this.#recorded = samePaths(paths, this.#plaintext) ? null : paths;
  }

  /**
   * Refuse reading `path` through the backend (a query, a search) when the
   * plaintext paths changed and the values written before do not carry it:
   * the backend would not find them. The record is read again first: rekey
   * may have run in another process since this store opened.
   */
  async #checkRecorded(paths: readonly QueryPath[], what: string): Promise<void> {
    if (this.#recorded === null) return;
    const missing = () => paths.find((p) => !covered(this.#recorded ?? [], p.path));
    if (missing() === undefined) return;
    const access = internalAccess(this.#store);
    const raw = access === undefined
      ? null
      : await access.driver.get(PLAINTEXT_KEY, access.clock.now());
    const recorded = raw === null ? null : parsePlaintextRecord(raw.value);
    if (recorded !== null && samePaths(recorded, this.#plaintext)) {
      this.#recorded = null;
      return;
    }
    if (recorded !== null) this.#recorded = recorded;
    const refused = missing();
    if (refused === undefined) return;
    throw new SealedPathError({
      what,
      store: this.name,
      option: refused.option,
      ...(refused.index === undefined ? {} : { index: refused.index }),
      path: refused.path,
      plaintext: this.#plaintext,
      recorded: this.#recorded!,
    });
  }

  #keyIdOfStored(stored: unknown): string | null {
    if (!isEnvelope(stored)) return null;
    const text = stored[SEALED_FIELD];
    const end = text.indexOf(":", FORMAT.length + 1);
    return end < 0 ? null : text.slice(FORMAT.length + 1, end);
  }

  /** The fields at the plaintext paths, at the same paths; throws if a path crosses an array. */
  #project(key: Key, value: unknown, what: string): Record<string, JsonValue> {
    const out: Record<string, JsonValue> = {};
    for (const path of this.#plaintext) {
      let from: unknown = value;
      let to: Record<string, JsonValue> = out;
      for (let i = 0; i < path.length; i++) {
        if (Array.isArray(from)) {
          // As queries read it: only an index segment reaches into an array.
          if (!/^(0|[1-9]\d*)$/.test(path[i]) || Number(path[i]) >= from.length) break;
          throw new TypeError(
            `${what} ${showKey(key)} in encrypted store "${this.name}": the plaintext path ` +
              `"${path.join(".")}" goes through an array at "${path.slice(0, i).join(".")}"; ` +
              `plaintext paths go through objects only: declare the array itself (or a field above it)`,
          );
        }
        if (typeof from !== "object" || from === null || !Object.hasOwn(from, path[i])) break;
        from = (from as Record<string, unknown>)[path[i]];
        if (i === path.length - 1) {
          to[path[i]] = from as JsonValue;
        } else {
          const next = Object.hasOwn(to, path[i]) ? to[path[i]] : undefined;
          if (typeof next === "object" && next !== null && !Array.isArray(next)) {
            to = next as Record<string, JsonValue>;
          } else if (next === undefined) {
            to = (to[path[i]] = {}) as Record<string, JsonValue>;
          } else {
            break; // a shorter declared path copied this subtree whole already
          }
        }
      }
    }
    return out;
  }

  /** Seal `text` (the value's JSON) for `key` under the current key. */
  async #seal(key: Key, text: string, value: unknown): Promise<JsonValue> {
    const projection = this.#plaintext.length > 0 ? this.#project(key, value, "Cannot write") : {};
    const sealing = this.#keys[0];
    const sealed: Record<string, JsonValue> = {
      [SEALED_FIELD]: sealing.header + await sealText(sealing, aadOf(sealing.aad, key), text),
    };
    const result = this.#plaintext.length > 0 ? { ...sealed, ...projection } : sealed;
    // Sealing makes a value about a third larger (base64): one the store would take in clear
    // may be over the limit once sealed. Say so, with both sizes, not only the sealed one.
    if ((sealed[SEALED_FIELD] as string).length + 16 > MAX_VALUE_BYTES) {
      const size = utf8Length(JSON.stringify(result));
      if (size > MAX_VALUE_BYTES) {
        throw new RangeError(
          `Cannot write: the value is ${utf8Length(text).toLocaleString("en-US")} bytes as JSON ` +
            `and ${size.toLocaleString("en-US")} bytes once encrypted (base64 ciphertext); ` +
            `values are at most ${MAX_VALUE_BYTES.toLocaleString("en-US")} bytes (16 MiB) ` +
            "stored, so an encrypted store holds values up to about 12 MiB of JSON. Split it " +
            "over several keys, or keep large files outside the store",
        );
      }
    }
    return result;
  }

  /**
   * Keep the plaintext of a write the store committed (`sealed` as stored),
   * for reads; with plaintext fields, with the envelope's JSON text as the
   * core writes it (a backend that gives back other text, reordered, is a
   * miss, never a wrong hit).
   */
  #keepWritten(key: Key, sealed: JsonValue, text: string): void {
    if (this.#closed) return;
    const envelope = sealed as Record<string, JsonValue> & { $sealed: string };
    const stored = this.#plaintext.length === 0 ? undefined : JSON.stringify(envelope);
    this.#opened.put(envelope[SEALED_FIELD], key, text, stored, true); // sealed here
  }

  /** Whether the plaintext fields stored beside a sealed value are the projection of `value`. */
  #projectionMatches(key: Key, value: unknown, stored: Record<string, JsonValue>): boolean {
    const actual: Record<string, JsonValue> = { ...stored };
    delete actual[SEALED_FIELD];
    // Compared as JSON values: a backend may reorder object fields (jsonb does).
    return jsonEqual(this.#project(key, value, "Cannot read"), actual);
  }

  /** {@linkcode #openNow} as a promise: a value that cannot be opened rejects. */
  async #open<T>(key: Key, stored: unknown, checkProjection = true): Promise<T> {
    return await this.#openNow<T>(key, stored, checkProjection);
  }

  /**
   * Open a stored value; with `checkProjection` (the default) its plaintext
   * fields must be what the declared paths give. The plaintext kept for it
   * (`encrypt.cache`) is used when its sealed text is the one kept; with
   * `keep` (a read by key: get, getMany) what it opens is kept, while
   * listings, queries and history only look (a scan does not push out the
   * values read by key). `storedText` is the stored value's JSON text, when
   * it was read as stored: kept beside the plaintext once every check
   * passed, so that a read of the same text is a hit without parsing it.
   * Synchronous (the value, or a throw) for a value up to 4 KiB; a promise
   * for a larger one.
   */
  #openNow<T>(
    key: Key,
    stored: unknown,
    checkProjection = true,
    seq?: number,
    keep = false,
    storedText?: string,
  ): T | Promise<T> {
    // Built only for an error (a key as JSON costs about a microsecond).
    const where = () =>
      `${seq === undefined ? "" : `change #${seq} of `}${
        showKey(key)
      } in encrypted store "${this.name}"`;
    if (!isEnvelope(stored)) {
      throw new DecryptionError(
        `Cannot read ${where()}: its value is not sealed (written before encryption was turned on, ` +
          `or by a program without the key); run the rekey job to seal every value`,
        { store: this.name, key, keyId: null },
      );
    }
    const text = stored[SEALED_FIELD];
    // Most values are under the current key: its header is compared in place.
    const current = this.#keys[0];
    let sealing: SealingKey | undefined;
    let idEnd: number;
    let id: string;
    if (text.startsWith(current.header)) {
      sealing = current;
      id = current.id;
      idEnd = current.header.length - 1;
    } else {
      idEnd = text.indexOf(":", FORMAT_PREFIX.length);
      id = idEnd < 0 ? "" : text.slice(FORMAT_PREFIX.length, idEnd);
      sealing = this.#byId.get(id);
    }
    if (sealing === undefined) {
      throw new DecryptionError(
        `Cannot read ${where()}: it was sealed with key id ${id || "(none)"}, which is not a ` +
          `configured key (${this.keyIds.join(", ")}); configure that key (keys: [current, old])` +
          (seq === undefined
            ? ""
            : `; the rekey job, run with both keys, then seals the change feed's values with ` +
              `the current key too`),
        { store: this.name, key, keyId: id || null },
      );
    }
    const failed = (err: unknown) =>
      new DecryptionError(
        `Cannot read ${where()}: its sealed value fails authentication (key id ${id}): it was ` +
          `tampered with, damaged, or copied from another key. Restore it from a backup or delete it`,
        { store: this.name, key, keyId: id },
        { cause: err },
      );
    const parse = (json: string): T => {
      const value = parseJson(json) as T;
      if (
        checkProjection && (this.#plaintext.length > 0 || !onlySealedField(stored)) &&
        !this.#projectionMatches(key, value, stored)
      ) {
        throw new DecryptionError(
          `Cannot read ${where()}: its plaintext fields do not match its sealed value (key id ${id}): ` +
            `they were tampered with, or the plaintext paths changed (run the rekey job after changing them)`,
          { store: this.name, key, keyId: id },
        );
      }
      return value;
    };
    // Kept (again, with the stored text when there is one) only once the checks passed.
    const kept = (json: string, fresh: boolean): T => {
      const value = parse(json);
      if (keep && (fresh || storedText !== undefined) && !this.#closed) {
        this.#opened.put(text, key, json, storedText);
      }
      return value;
    };
    const known = this.#opened.get(text, key);
    if (known !== undefined) return kept(known, false);
    let plain: Uint8Array | Promise<Uint8Array>;
    try {
      // Damaged base64 fails here, inside the try: it is a value that fails authentication.
      plain = openText(sealing, aadOf(sealing.aad, key), text.slice(idEnd + 1));
    } catch (err) {
      throw failed(err);
    }
    return plain instanceof Promise
      ? plain.then((bytes) => kept(DECODER.decode(bytes), true), (err) => {
        throw failed(err);
      })
      : kept(DECODER.decode(plain), true);
  }

  /** The entry with its value opened: at once, or a promise for a large value. */
  #openEntry<T>(entry: Entry<T>, keep = false): Entry<T> | Promise<Entry<T>> {
    return whenOpened(
      this.#openNow<T>(entry.key, entry.value, true, undefined, keep),
      (value) => ({ ...entry, value }),
    );
  }

  /**
   * An entry read as stored, opened: from the cache when its whole stored
   * text is the one kept for its key (the envelope is not parsed), else
   * parsed and opened as any read by key, its text kept once it opened.
   */
  #openStored<T>(raw: RawEntry): Entry<T> | Promise<Entry<T>> {
    const { key, value: storedText, version, expiresAt } = raw;
    const json = this.#opened.getStored(storedText, key);
    if (json !== undefined) {
      return { key: [...key], value: parseJson(json) as T, version, expiresAt };
    }
    return whenOpened(
      this.#openNow<T>(key, parseJson(storedText), true, undefined, true, storedText),
      (value) => ({ key: [...key], value, version, expiresAt }),
    );
  }

  async #sealFor(
    key: Key,
    value: unknown,
    what: string,
  ): Promise<{ sealed: JsonValue; text: string }> {
    const text = serializeValue(value, what);
    assertValueSize(text, what);
    const parsed = this.#plaintext.length > 0 ? parseJson(text) : undefined;
    return { sealed: await this.#seal(key, text, parsed), text };
  }

  /**
   * The store's reads as stored, asked for at each read: only the core's
   * store (or the runtime's notifying store over it) has them, and only
   * while its `get` and `getMany` are its own; a store that intercepts reads
   * (a `Proxy`, a replaced method, a wrapper) is read through its `get`.
   */
  #reader(): StoredReader | undefined {
    return this.#reads?.now();
  }

  get<T = JsonValue>(key: Key): Promise<Entry<T> | null> {
    const reader = this.#reader();
    if (reader === undefined) return this.#getParsed(key);
    try {
      // Read as stored (no parse of the envelope on a hit), at once from a synchronous driver.
      const raw = reader.get(key);
      if (raw instanceof Promise) {
        return raw.then((r) => r === null ? null : this.#openStored<T>(r));
      }
      return Promise.resolve(raw === null ? null : this.#openStored<T>(raw));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** `get` through the store's own `get` (a store that does not read as stored). */
  async #getParsed<T>(key: Key): Promise<Entry<T> | null> {
    const entry = await this.#store.get<T>(key);
    return entry === null ? null : await this.#openEntry(entry, true);
  }

  override changes<T = JsonValue>(options?: ChangesOptions): AsyncIterable<Change<T>> {
    // Opened as a listing's values are (a bad option throws here).
    const inner = this.#store.changes<T>(options)[Symbol.asyncIterator]();
    return openAhead(
      inner,
      (change: Change<T>) => this.#openChange(change),
      () => this.#closed ? "read changes" : null,
      this.name,
    );
  }

  override async *watch<T = JsonValue>(
    prefixes: readonly Key[],
    options?: WatchOptions,
  ): AsyncIterable<Change<T>> {
    for await (const change of this.#store.watch<T>(prefixes, options)) {
      yield await this.#openChange(change);
    }
  }

  override async getAt<T = JsonValue>(
    key: Key,
    at: { time: number } | { seq: number },
  ): Promise<Entry<T> | null> {
    const entry = await this.#store.getAt<T>(key, at);
    if (entry === null) return null;
    if (!isEnvelope(entry.value)) {
      // A value from the feed in the clear is history from before encryption was turned on:
      // as it is. The current entry in the clear is refused as get() refuses it.
      const current = await this.#store.get(key);
      if (current === null || current.version !== entry.version) return entry;
    }
    return await this.#openEntry(entry);
  }

  /**
   * A feed entry with its value opened (a delete has none): at once, or a
   * promise for a large value. A value in the clear was written before
   * encryption was turned on: it is history, handed out as it is, marked
   * `unsealed` (the rekey job seals it).
   */
  #openChange<T>(change: Change<T>): Change<T> | Promise<Change<T>> {
    if (change.op !== "set") return change;
    if (!isEnvelope(change.value)) return { ...change, unsealed: true };
    return whenOpened(
      this.#openNow<T>(change.key, change.value, true, change.seq),
      (value) => ({ ...change, value }),
    );
  }

  async getMany<T = JsonValue>(keys: readonly Key[]): Promise<(Entry<T> | null)[]> {
    const reader = this.#reader();
    if (reader !== undefined) {
      const raws = await reader.getMany(keys);
      return await openEach(raws, (r) => r === null ? null : this.#openStored<T>(r));
    }
    const entries = await this.#store.getMany<T>(keys);
    return await openEach(entries, (e) => e === null ? null : this.#openEntry(e, true));
  }

  async set(key: Key, value: unknown, options?: SetOptions): Promise<CommitResult> {
    const what = "Cannot set";
    assertKey(key, what);
    assertKeySize(key, what);
    // The key as it is now: the value is sealed for it, and written under it, whatever the
    // caller does with its array meanwhile.
    const at = [...key];
    const { sealed, text } = await this.#sealFor(at, value, what);
    const result = await this.#store.set(at, sealed, options);
    if (result.ok) this.#keepWritten(at, sealed, text);
    return result;
  }

  delete(key: Key, options?: DeleteOptions): Promise<boolean> {
    return this.#store.delete(key, options);
  }

  list<T = JsonValue>(options?: ListOptions): ListIterator<T> {
    const inner = this.#store.list<T>(options);
    const open = (entry: Entry<T>) => this.#openEntry(entry);
    const closed = () => this.#closed;
    const name = this.name;
    // Large values are read a few ahead so that they are opened in parallel
    // (each WebCrypto call waits for a thread); entries are yielded in order,
    // and the cursor is the last one yielded, as the store's own is.
    let last: Key | undefined;
    const opened = openAhead(inner, open, () => closed() ? "list" : null, name, (entry) => {
      last = entry.key;
    });
    return listIterator(opened, {
      cursor: () => last === undefined ? "" : encodeCursor(last),
      pageSize: options?.batchSize,
    });
  }

  count(prefix?: Key, bounds?: KeyBounds): Promise<number> {
    return this.#store.count(prefix, bounds);
  }

  /** Refuse a query whose paths are not all declared plaintext; returns its paths. */
  #checkQuery(query: Query | undefined, what: string): QueryPath[] {
    const checked: QueryPath[] = [];
    if (typeof query !== "object" || query === null) return checked; // the store's own error
    const paths: { path: unknown; option: "where" | "orderBy"; index: number }[] = [];
    (Array.isArray(query.where) ? query.where : []).forEach((c, index) =>
      paths.push({ path: c?.path, option: "where", index })
    );
    const orders = query.orderBy === undefined
      ? []
      : Array.isArray(query.orderBy)
      ? query.orderBy
      : [query.orderBy];
    orders.forEach((o, index) =>
      paths.push({ path: (o as { path?: unknown })?.path, option: "orderBy", index })
    );
    for (const { path, option, index } of paths) {
      let segments: string[];
      try {
        segments = parsePath(path as string, what);
      } catch {
        continue; // malformed: the store's own error says so
      }
      if (!covered(this.#plaintext, segments)) {
        throw new SealedPathError({
          what,
          store: this.name,
          option,
          index,
          path: segments,
          plaintext: this.#plaintext,
        });
      }
      checked.push({ path: segments, option, index });
    }
    return checked;
  }

  async query<T = JsonValue>(query?: Query): Promise<Entry<T>[]> {
    const paths = this.#checkQuery(query, "Cannot query");
    await this.#checkRecorded(paths, "Cannot query");
    const entries = await this.#store.query<T>(query);
    return await openEach(entries, (e) => this.#openEntry(e));
  }

  async explain(query?: Query): Promise<QueryPlan> {
    const paths = this.#checkQuery(query, "Cannot explain");
    await this.#checkRecorded(paths, "Cannot explain");
    return await this.#store.explain(query);
  }

  /**
   * Why a search with these `fields` would read a sealed field, or
   * `undefined` when it reads plaintext fields only. Without `fields` it
   * reads the store's declared search fields (every field when it declares
   * none). Malformed `fields` are left to the store's own error.
   */
  #sealedSearchField(
    fields: unknown,
  ): Pick<SealedPathDetail, "option" | "index" | "path" | "usable"> | undefined {
    const isPlain = (path: readonly string[]) => covered(this.#plaintext, path);
    const declared = internalAccess(this.#store)?.search?.fields ?? null;
    if (fields === undefined) {
      if (declared === null) {
        return { option: "fields", path: null, usable: this.#plaintext };
      }
      const sealed = declared.find((f) => !isPlain(f));
      if (sealed === undefined) return undefined;
      return { option: "fields", path: sealed, usable: declared.filter(isPlain) };
    }
    if (!Array.isArray(fields)) return undefined;
    for (const [index, field] of fields.entries()) {
      let path: string[];
      try {
        path = parsePath(field as string, "Cannot search");
      } catch {
        continue; // malformed: the store's own error
      }
      if (isPlain(path)) continue;
      const usable = declared === null ? this.#plaintext : declared.filter(isPlain);
      return { option: "fields", index, path, usable };
    }
    return undefined;
  }

  async search<T = JsonValue>(text: string, options?: SearchOptions): Promise<SearchHit<T>[]> {
    const what = "Cannot search";
    const refused = this.#sealedSearchField(options?.fields);
    if (refused !== undefined) {
      throw new SealedPathError({ what, store: this.name, plaintext: this.#plaintext, ...refused });
    }
    if (this.#recorded !== null) {
      // The fields it reads: those given, else the store's declared search fields.
      const given = options?.fields;
      const read: QueryPath[] = [];
      if (Array.isArray(given)) {
        for (const [index, field] of given.entries()) {
          try {
            read.push({ path: parsePath(field as string, what), option: "fields", index });
          } catch { /* malformed: the store's own error */ }
        }
      } else {
        for (const path of internalAccess(this.#store)?.search?.fields ?? []) {
          read.push({ path, option: "fields" });
        }
      }
      await this.#checkRecorded(read, what);
    }
    const hits = await this.#store.search<T>(text, options);
    return await openEach(
      hits,
      (hit) => whenOpened(this.#openNow<T>(hit.key, hit.value), (value) => ({ ...hit, value })),
    );
  }

  atomic(): AtomicOperation {
    const what = "Cannot commit atomic operation";
    // Every call is made on a probe first, so that a bad argument throws
    // where the caller made it, with the store's own message; the probe is
    // never committed. The writes are replayed, sealed, at commit.
    const probe = this.#store.atomic();
    type Step =
      | { type: "check"; key: Key; version: string | null }
      | { type: "set"; key: Key; text: string; value: unknown; options?: { expireIn?: number } }
      | { type: "delete"; key: Key }
      | { type: "clear"; prefix: Key; bounds?: KeyBounds };
    const steps: Step[] = [];
    let committed = false;
    const op: AtomicOperation = {
      check: (key, version) => {
        probe.check(key, version);
        steps.push({ type: "check", key: [...key], version });
        return op;
      },
      set: (key, value, options) => {
        const text = serializeValue(value, `${what}: set`);
        probe.set(key, null, options);
        assertValueSize(text, `${what}: set`);
        steps.push({
          type: "set",
          key: [...key],
          text,
          value: this.#plaintext.length > 0 ? parseJson(text) : undefined,
          options: options === undefined ? undefined : { ...options },
        });
        return op;
      },
      delete: (key) => {
        probe.delete(key);
        steps.push({ type: "delete", key: [...key] });
        return op;
      },
      clear: (prefix, bounds) => {
        probe.clear(prefix, bounds);
        steps.push({ type: "clear", prefix: [...prefix], bounds: bounds && { ...bounds } });
        return op;
      },
      commit: async () => {
        if (committed) throw new TypeError(`${what}: this operation was already committed`);
        committed = true;
        const sealed = await Promise.all(
          steps.map((s) => s.type === "set" ? this.#seal(s.key, s.text, s.value) : null),
        );
        const inner = this.#store.atomic();
        steps.forEach((s, i) => {
          if (s.type === "check") inner.check(s.key, s.version);
          else if (s.type === "set") inner.set(s.key, sealed[i], s.options);
          else if (s.type === "delete") inner.delete(s.key);
          else inner.clear(s.prefix, s.bounds);
        });
        const result = await inner.commit();
        if (result.ok) {
          steps.forEach((s, i) => {
            if (s.type === "set") this.#keepWritten(s.key, sealed[i]!, s.text);
          });
        }
        return result;
      },
    };
    return op;
  }

  clear(prefix: Key, bounds?: KeyBounds): Promise<number> {
    return this.#store.clear(prefix, bounds);
  }

  purgeExpired(): Promise<number> {
    return this.#store.purgeExpired();
  }

  compact(): Promise<CompactResult> {
    return this.#store.compact();
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#opened.clear();
    return this.#store.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
