/**
 * The jsonfile driver: an in-memory sorted map mirroring one JSON file (see
 * `format.ts`), kept in sync with other processes through the lock protocol
 * of `lock.ts`, held for each write. Commits that arrive while a write is in
 * flight are written together by the next write (group commit).
 *
 * @module
 */
import { basename, dirname, join, resolve } from "node:path";
import { messageOf, StoreCorruptError, StoreReadOnlyError } from "../../src/errors.ts";
import type {
  ClearRange,
  CommitRequest,
  DriverCommitResult,
  KeyRange,
  RawEntry,
  StoreDriver,
} from "../../src/store/driver.ts";
import { compareKeys, hasPrefix, inClearRange } from "../../src/store/keys.ts";
import type { Capabilities, Key } from "../../src/store/types.ts";
import {
  lockPathOf,
  moveCorruptAside,
  parseTempName,
  readAll,
  sameFile,
  sameInode,
  type Stamp,
  stampOf,
  statOrNull,
  tempPathOf,
} from "./files.ts";
import {
  type Corruption,
  emptyState,
  makeRec,
  parseDocument,
  type Rec,
  render,
  type State,
} from "./format.ts";
import { StoreLock } from "./lock.ts";
import { io } from "./_io.ts";
import { explainFsError, notWritableReason } from "../../src/store/fs_errors.ts";
import { deniedReading } from "../../src/_fs.ts";
import type { NormalizedQuery } from "../../src/store/query.ts";
import type { PreparedIndexes, PrepareIndexesRequest } from "../../src/store/driver.ts";
import type { QueryPlan } from "../../src/store/types.ts";
import { EqIndexes } from "../_shared/eq_indexes.ts";

/**
 * Past this size (bytes) a jsonfile store warns, once per process, when it is
 * opened: every commit rewrites the whole file and every other process
 * re-reads all of it. Measured at 4 MB (2-core VM): opening takes ~80 ms
 * (sqlite ~5), a commit ~20 ms (sqlite ~3), and a commit or read after
 * another process's write ~90 ms (sqlite ~2), growing ~20 ms per MB; at
 * 2 MB jsonfile is still within a few times sqlite. `flowstate migrate
 * store` moves a store over.
 */
export const LARGE_STORE_BYTES: number = 4 * 1024 * 1024;
/** The store files this process has warned about being large. */
const warnedLarge = new Set<string>();

/**
 * Options of {@linkcode JsonFileDriver.open}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { JsonFileDriver, type JsonFileDriverOptions } from "@flowstate/core/plugins/jsonfile";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/state.json`, "{ not json");
 * const options: JsonFileDriverOptions = { storeName: "main", onCorrupt: "refuse" };
 * await assert.rejects(() => JsonFileDriver.open(`${dir}/state.json`, options), /main/);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface JsonFileDriverOptions {
  /** The store's name, for messages (default `"jsonfile"`). */
  storeName?: string;
  /** See {@linkcode jsonFileOptions}; default `"full"`. */
  durability?: "full" | "relaxed";
  /** See {@linkcode jsonFileOptions}; default `"refuse"`. */
  onCorrupt?: "refuse" | "start-empty";
  /**
   * See {@linkcode jsonFileOptions}; default 5000 ms: the least time a commit
   * waits for the lock, raised from measured commit times (see `lockWaitBudget`
   * in `lock.ts`); 0 means one try.
   */
  lockTimeout?: number;
  /** Receives warnings (a large store, a failed directory flush…); default: dropped. */
  onWarning?: (warning: { code: string; message: string }) => void;
}

type Operation =
  | { kind: "commit"; request: CommitRequest }
  | { kind: "clear"; range: ClearRange; now: number }
  | { kind: "purge"; now: number }
  | { kind: "compact" };

/** What `compact()` resolves. */
interface CompactSizes {
  bytesBefore: number;
  bytesAfter: number;
}

type OperationResult = DriverCommitResult | number | CompactSizes;

interface Pending {
  op: Operation;
  resolve(result: OperationResult): void;
  reject(error: unknown): void;
}

/** The first index in `sorted` whose key is `>= bound` (or `> bound` when `exclusive`). */
function lowerBound(sorted: readonly Rec[], bound: Key, exclusive: boolean, from = 0): number {
  let a = from;
  let b = sorted.length;
  while (a < b) {
    const m = (a + b) >> 1;
    const c = compareKeys(sorted[m].raw.key, bound);
    if (c < 0 || (c === 0 && exclusive)) a = m + 1;
    else b = m;
  }
  return a;
}

/** A copy of a range the caller may change later. */
function copyRange(range: ClearRange): ClearRange {
  const copy: ClearRange = { prefix: [...range.prefix] };
  if (range.start !== undefined) copy.start = [...range.start];
  if (range.end !== undefined) copy.end = [...range.end];
  return copy;
}

/** The records under `prefix` (strictly longer keys), in key order. */
function underPrefix(sorted: readonly Rec[], prefix: Key): Rec[] {
  if (prefix.length === 0) return sorted.slice();
  const out: Rec[] = [];
  for (let i = lowerBound(sorted, prefix, true); i < sorted.length; i++) {
    if (!hasPrefix(sorted[i].raw.key, prefix)) break;
    out.push(sorted[i]);
  }
  return out;
}

function live(rec: Rec | null | undefined, now: number): rec is Rec {
  return rec != null && (rec.raw.expiresAt === null || rec.raw.expiresAt > now);
}

/**
 * The jsonfile driver: an in-memory sorted map mirroring one JSON file, kept
 * in sync with other processes through a lock on `<path>.lock` held for each write.
 * {@linkcode JsonFileDriver.open} is for tests and tools; applications open a
 * store with `openStore({ plugin: "jsonfile", path })`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { JsonFileDriver } from "@flowstate/core/plugins/jsonfile";
 *
 * const dir = await Deno.makeTempDir();
 * const driver = await JsonFileDriver.open(`${dir}/state.json`);
 * await driver.commit({
 *   checks: [],
 *   mutations: [{ type: "set", key: ["a"], value: '{"n":1}', expiresAt: null }],
 *   version: "v1",
 *   now: Date.now(),
 * });
 * assert.equal((await driver.get(["a"]))?.version, "v1");
 * await driver.close();
 * assert.match(await Deno.readTextFile(`${dir}/state.json`), /"n"/);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class JsonFileDriver implements StoreDriver {
  /** The store file's absolute path. */
  readonly location: string;
  /**
   * Persistent and safe across processes; the core filters expiry and runs
   * queries, except an `eq` on a declared index, answered from an in-memory
   * index kept with the entries.
   */
  readonly capabilities: Partial<Capabilities> = {
    persistent: true,
    multiProcess: true,
    expiry: false,
    count: true,
    clear: true,
    atomicClear: true,
    query: true,
    indexes: true,
  };
  readonly #path: string;
  #lock: StoreLock | undefined;
  readonly #name: string;
  readonly #sync: boolean;
  readonly #onCorrupt: "refuse" | "start-empty";
  readonly #lockTimeout: number;
  readonly #onWarning: JsonFileDriverOptions["onWarning"];
  #state: State = emptyState();
  /** The declared indexes of `#state`'s entries, updated with it. */
  #ix = new EqIndexes();
  /**
   * The file `#stamp` describes (loaded or written), kept open so its inode
   * cannot be reused while we compare against it.
   */
  #held: Deno.FsFile | undefined;
  /** A document buffer no longer in use, reused by the next write. */
  #scratch: Uint8Array | undefined;
  /** The store file's directory, kept open to fsync it after each rename (durability "full"). */
  #dir: { handle: Deno.FsFile; info: Deno.FileInfo } | undefined;
  /** Identity of the loaded file; `null` when there is no file. */
  #stamp: Stamp | null = null;
  /** How many times a state was installed from the file (see `changeToken`). */
  #loads = 0;
  /** Set when the file became unreadable at run time: every later call fails with it. */
  #poison: Error | undefined;
  #queue: Pending[] = [];
  #flushing: Promise<void> | undefined;
  /**
   * True while this driver holds the lock and the in-process mutex and has
   * made its state match the file: only its own write can change the file.
   */
  #lockHeld = false;
  /** Turns to take the lock: one lock file handle serves one taker at a time. */
  #lockTurn: Promise<void> = Promise.resolve();
  #mutex: Promise<void> = Promise.resolve();
  #reloading: Promise<void> | undefined;
  #writes = 0;
  #closed = false;
  /**
   * Why this store was opened read-only (its directory or lock file cannot be
   * written), or `undefined`: then every write is refused with a {@linkcode StoreReadOnlyError}.
   */
  #readOnly: { path: string; reason: string; cause: unknown } | undefined;

  private constructor(path: string, options: JsonFileDriverOptions) {
    this.#path = path;
    this.location = path;
    this.#name = options.storeName ?? "jsonfile";
    this.#sync = (options.durability ?? "full") === "full";
    this.#onCorrupt = options.onCorrupt ?? "refuse";
    this.#lockTimeout = options.lockTimeout ?? 5000;
    this.#onWarning = options.onWarning;
    if (!Number.isFinite(this.#lockTimeout) || this.#lockTimeout < 0) {
      throw new RangeError(
        `Cannot open store "${this.#name}": lockTimeout must be a non-negative number of milliseconds (got ${this.#lockTimeout})`,
      );
    }
  }

  /**
   * Open (or create on first write) the store file at `path` (or the file a
   * symlink there points to): create missing parent directories, remove temp
   * files left by crashed processes, and load the file. Rejects with a `StoreCorruptError` for an unreadable file unless
   * `onCorrupt` is `"start-empty"`.
   */
  static async open(path: string, options: JsonFileDriverOptions = {}): Promise<JsonFileDriver> {
    path = resolve(path);
    // Through a symlink, write (and lock) the file it points to, so that every
    // name for one file shares one lock, and the link survives our renames.
    if ((await Deno.lstat(path).catch(() => null))?.isSymlink) path = await linkTarget(path);
    const driver = new JsonFileDriver(path, options);
    const dir = dirname(driver.#path);
    try {
      await Deno.mkdir(dir, { recursive: true });
    } catch (err) {
      const reason = notWritableReason(err);
      if (reason === undefined) throw err;
      driver.#readOnly = { path: dir, reason, cause: err };
    }
    try {
      if (driver.#readOnly === undefined) {
        try {
          driver.#lock = StoreLock.open(lockPathOf(path), driver.#name);
        } catch (err) {
          // A lock file we may not create or write: nobody can write here, so read without one.
          const reason = notWritableReason(err);
          if (reason === undefined) throw err;
          const where = reason.includes("read-only") ? dir : lockPathOf(path);
          driver.#readOnly = { path: where, reason, cause: err };
        }
      }
      await driver.#locked("open", async () => {
        if (driver.#readOnly === undefined) await driver.#removeLeftoverTemps();
        await driver.#refreshLocked("open");
      });
    } catch (err) {
      driver.#held?.close();
      driver.#lock?.close();
      throw err;
    }
    driver.#warnIfLarge();
    return driver;
  }

  /** Whether this store was opened read-only (its file system or directory cannot be written). */
  get readOnly(): boolean {
    return this.#readOnly !== undefined;
  }

  /** Once per process and store file: say that a store this large is better off in sqlite. */
  #warnIfLarge(): void {
    const size = this.#stamp?.size ?? 0;
    // Said once per process and file to whoever listens (a store opened without a handler does
    // not use up the warning).
    if (size <= LARGE_STORE_BYTES || warnedLarge.has(this.#path) || !this.#onWarning) return;
    warnedLarge.add(this.#path);
    const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
    this.#warn(
      "STORE_LARGE",
      `Store "${this.#name}": ${this.#path} is ${mb(size)}, past the ${
        mb(LARGE_STORE_BYTES)
      } where a sqlite store is faster: a jsonfile store rewrites the whole file on every ` +
        `commit, and every other process re-reads it. Move it to sqlite with \`flowstate migrate ` +
        `store --from ${this.#name} --to <a sqlite store>\` (add the sqlite store to the config first)`,
    );
  }

  /** Hand a warning to the caller's handler, if any (the library never prints). */
  #warn(code: string, message: string): void {
    this.#onWarning?.({ code, message });
  }

  /** The error for a write to a store opened read-only. */
  #readOnlyError(what: string): StoreReadOnlyError {
    const ro = this.#readOnly!;
    return new StoreReadOnlyError(
      `Cannot ${what} store "${this.#name}": it was opened read-only, because ${ro.path} ` +
        `${ro.reason}: reads work, writes do not. Remount the file system read-write (or fix ` +
        `the permissions), or copy the store somewhere writable`,
      { store: this.#name, path: ro.path },
      { cause: ro.cause },
    );
  }

  /** How many times this driver has written the file (group commit makes this fewer than commits). */
  get writes(): number {
    return this.#writes;
  }

  /**
   * Which state of the file is loaded: one stat, and a re-read only when
   * another writer (another process, or another store on the same file)
   * replaced the file; the number moves with each re-read. (This driver's
   * own writes do not move it.)
   */
  async changeToken(): Promise<number> {
    await this.#fresh();
    return this.#loads;
  }

  async get(key: Key): Promise<RawEntry | null> {
    const state = await this.#fresh();
    return state.entries.get(JSON.stringify(key))?.raw ?? null;
  }

  async getMany(keys: readonly Key[]): Promise<(RawEntry | null)[]> {
    const state = await this.#fresh();
    return keys.map((key) => state.entries.get(JSON.stringify(key))?.raw ?? null);
  }

  async *list(range: KeyRange): AsyncIterable<RawEntry> {
    const { sorted } = await this.#fresh();
    const prefix = range.prefix ?? [];
    let lo = 0;
    if (prefix.length > 0) lo = lowerBound(sorted, prefix, true);
    if (range.start) {
      lo = Math.max(lo, lowerBound(sorted, range.start, range.startExclusive === true));
    }
    const hi = range.end ? lowerBound(sorted, range.end, false, lo) : sorted.length;
    if (range.reverse) {
      for (let i = hi - 1; i >= lo; i--) {
        if (prefix.length === 0 || hasPrefix(sorted[i].raw.key, prefix)) yield sorted[i].raw;
      }
    } else {
      for (let i = lo; i < hi; i++) {
        if (prefix.length > 0 && !hasPrefix(sorted[i].raw.key, prefix)) break;
        yield sorted[i].raw;
      }
    }
  }

  /** Build the declared indexes (in memory) from the entries; every commit keeps them exact. */
  async prepareIndexes(request: PrepareIndexesRequest): Promise<PreparedIndexes> {
    const state = await this.#fresh();
    return this.#ix.prepare(request, rawEntries(state));
  }

  /** An `eq` on a declared index, from the in-memory index; `undefined`: the core scans. */
  async query(q: NormalizedQuery, now: number): Promise<RawEntry[] | undefined> {
    const state = await this.#fresh();
    return this.#ix.query(q, (id) => state.entries.get(id)?.raw, now);
  }

  /** Say whether an index answers `q` (`undefined`: the core scans). */
  explain(q: NormalizedQuery): Promise<QueryPlan | undefined> {
    return Promise.resolve(this.#ix.explain(q, "jsonfile"));
  }

  async count(range: ClearRange, now: number): Promise<number> {
    const { sorted } = await this.#fresh();
    let n = 0;
    for (const rec of underPrefix(sorted, range.prefix)) {
      if (live(rec, now) && inClearRange(rec.raw.key, range)) n++;
    }
    return n;
  }

  commit(request: CommitRequest): Promise<DriverCommitResult> {
    // The commit may wait for the write in flight: copy the keys so later changes to the
    // caller's arrays cannot change what it writes.
    const copy: CommitRequest = {
      checks: request.checks.map((c) => ({ key: [...c.key], version: c.version })),
      mutations: request.mutations.map((m) =>
        m.type === "clear" ? { ...m, range: copyRange(m.range) } : { ...m, key: [...m.key] }
      ),
      version: request.version,
      now: request.now,
    };
    return this.#enqueue({ kind: "commit", request: copy }) as Promise<DriverCommitResult>;
  }

  clear(range: ClearRange, now: number): Promise<number> {
    return this.#enqueue({ kind: "clear", range: copyRange(range), now }) as Promise<number>;
  }

  /** Delete every entry expired at `now`, in one write; resolves how many. */
  purgeExpired(now: number): Promise<number> {
    return this.#enqueue({ kind: "purge", now }) as Promise<number>;
  }

  /** Rewrite the file in its canonical layout (after hand edits, say); resolves its sizes. */
  compact(): Promise<{ bytesBefore: number; bytesAfter: number }> {
    return this.#enqueue({ kind: "compact" }) as Promise<CompactSizes>;
  }

  async close(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    await this.#lockTurn;
    await this.#mutex;
    this.#held?.close();
    this.#held = undefined;
    this.#scratch = undefined;
    this.#dir?.handle.close();
    this.#dir = undefined;
    this.#lock?.close();
    this.#lock = undefined;
    this.#closed = true;
  }

  // -- reading -------------------------------------------------------------

  /** The current state, re-read first if another process replaced the file. */
  async #fresh(): Promise<State> {
    if (this.#poison) throw this.#poison;
    if (this.#lockHeld) return this.#state; // only our own write can change the file now
    if (!this.#reloading) {
      if (sameFile(statOrNull(this.#path), this.#stamp, false)) return this.#state;
      this.#reloading ??= this.#reloadForRead().finally(() => {
        this.#reloading = undefined;
      });
    }
    await this.#reloading;
    if (this.#poison) throw this.#poison;
    return this.#state;
  }

  async #reloadForRead(): Promise<void> {
    const corrupt = await this.#exclusive(() => this.#load(false));
    // Only move a damaged file aside while holding the lock: a writer might be replacing it.
    if (corrupt) await this.#locked("read", () => this.#refreshLocked("read"));
  }

  /** Load the file if it is not the one loaded; report (not handle) damage. */
  async #load(strict: boolean): Promise<Corruption | undefined> {
    if (sameFile(statOrNull(this.#path), this.#stamp, strict)) return undefined;
    let file: Deno.FsFile;
    try {
      file = await Deno.open(this.#path, { read: true });
    } catch (err) {
      if (err instanceof Deno.errors.PermissionDenied) {
        throw new Error(deniedReading(this.#path), { cause: err });
      }
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      this.#install(emptyState(), null, undefined);
      return undefined;
    }
    let keep = false;
    try {
      const info = await file.stat();
      if (sameFile(info, this.#stamp, strict)) return undefined;
      const parsed = parseDocument(await readAll(file, info.size));
      if ("reason" in parsed) return parsed;
      this.#install(parsed, stampOf(info), file);
      keep = true;
      return undefined;
    } finally {
      if (!keep) file.close();
    }
  }

  #install(state: State, stamp: Stamp | null, file: Deno.FsFile | undefined): void {
    if (this.#held !== file) this.#held?.close();
    this.#held = file;
    this.#stamp = stamp;
    this.#loads++;
    this.#state = state;
    this.#ix.rebuild(rawEntries(state));
  }

  /** Under the lock: make the state match the file; a damaged file is refused (or set aside). */
  async #refreshLocked(what: string): Promise<void> {
    // Under the lock no other writer replaces the file: a stat that matches means the state is current.
    if (!sameFile(statOrNull(this.#path), this.#stamp, true)) {
      const corrupt = await this.#load(true);
      if (corrupt) await this.#handleCorrupt(corrupt, what);
    }
    this.#lockHeld = true;
  }

  async #handleCorrupt(corrupt: Corruption, what: string): Promise<void> {
    const where = `file ${this.#path} ${corrupt.reason}`;
    const kind = corrupt.kind ?? "damaged";
    // Only a damaged store is set aside: a newer Flowstate's file, or another application's
    // document, is someone's data that this version must not move.
    if (this.#onCorrupt === "start-empty" && kind === "damaged") {
      let movedTo: string | null = null;
      let moveError: unknown;
      try {
        movedTo = await moveCorruptAside(this.#path);
      } catch (err) {
        moveError = err;
      }
      if (movedTo !== null) {
        this.#warn(
          "STORE_CORRUPT_MOVED",
          `Store "${this.#name}": ${where}; moved it to ${movedTo} and started empty (onCorrupt: "start-empty")`,
        );
        this.#install(emptyState(), null, undefined);
        return;
      }
      this.#poison = new StoreCorruptError(
        `Cannot ${what} store "${this.#name}": ${where} (left in place, because moving it aside ` +
          `failed: ${(moveError as Error)?.message}). Repair or remove it; it is never overwritten`,
        { path: this.#path, movedTo: null },
        { cause: corrupt.cause ?? moveError },
      );
      throw this.#poison;
    }
    // Refused, and left exactly where it is: every later open refuses it too,
    // until a person repairs it, restores a backup, or sets it aside.
    const error = new StoreCorruptError(
      `Cannot ${what} store "${this.#name}": ${where} (left in place; it is never overwritten). ${
        kind === "newer"
          ? "Upgrade Flowstate to open it"
          : kind === "foreign"
          ? `It is not a store: point the store's "path" option at a new file`
          : `Restore a backup over it, or run \`flowstate stores repair ${this.#name}\` to set ` +
            `it aside and start an empty store`
      }`,
      { path: this.#path, movedTo: null, reason: kind },
      { cause: corrupt.cause },
    );
    this.#poison = error;
    throw error;
  }

  /** Under the lock: remove temp files that crashed processes left beside the store. */
  async #removeLeftoverTemps(): Promise<void> {
    // Temps are written only under the lock, so none of them is in flight now.
    const name = basename(this.#path);
    const dir = dirname(this.#path);
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile && parseTempName(entry.name)?.of === name) {
        await Deno.remove(join(dir, entry.name)).catch(() => {});
      }
    }
  }

  // -- writing -------------------------------------------------------------

  #enqueue(op: Operation): Promise<OperationResult> {
    if (this.#poison) return Promise.reject(this.#poison);
    if (this.#readOnly !== undefined) {
      return Promise.reject(this.#readOnlyError(op.kind === "commit" ? "commit to" : `${op.kind}`));
    }
    const { promise, resolve, reject } = Promise.withResolvers<OperationResult>();
    this.#queue.push({ op, resolve, reject });
    this.#flushing ??= this.#flushLoop();
    return promise;
  }

  /** Group commit: everything queued while a write was in flight goes into the next write. */
  async #flushLoop(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0);
      try {
        const results = await this.#locked("commit to", () => this.#applyBatch(batch));
        batch.forEach((pending, i) => pending.resolve(results[i]));
      } catch (err) {
        for (const pending of batch) pending.reject(err);
      }
    }
    this.#flushing = undefined;
  }

  async #applyBatch(batch: Pending[]): Promise<OperationResult[]> {
    if (this.#poison) throw this.#poison;
    await this.#refreshLocked("commit to");
    const base = this.#state;
    // Changes of this batch; `null` is a delete. The state is replaced only after the write.
    const overlay = new Map<string, Rec | null>();
    const current = (id: string): Rec | null | undefined =>
      overlay.has(id) ? overlay.get(id) : base.entries.get(id);
    /** Ids of the entries in `range` as this batch has left them so far. */
    const idsIn = (range: ClearRange): Set<string> => {
      const ids = new Set<string>();
      for (const rec of underPrefix(base.sorted, range.prefix)) {
        if (!overlay.has(rec.id) && inClearRange(rec.raw.key, range)) ids.add(rec.id);
      }
      for (const [id, rec] of overlay) if (rec && inClearRange(rec.raw.key, range)) ids.add(id);
      return ids;
    };
    const results: OperationResult[] = [];
    const compacts: number[] = [];
    let changed = false;
    for (const { op } of batch) {
      if (op.kind === "clear" || op.kind === "purge") {
        let removed = 0;
        for (const id of idsIn(op.kind === "clear" ? op.range : { prefix: [] })) {
          const isLive = live(current(id), op.now);
          if (op.kind === "purge" && isLive) continue;
          if (op.kind === "purge" || isLive) removed++;
          overlay.set(id, null);
          changed = true;
        }
        results.push(removed);
        continue;
      }
      if (op.kind === "compact") {
        compacts.push(results.length);
        results.push({ bytesBefore: 0, bytesAfter: 0 });
        continue;
      }
      const request = op.request;
      const conflicts: Key[] = [];
      for (const check of request.checks) {
        const rec = current(JSON.stringify(check.key));
        const version = live(rec, request.now) ? rec.raw.version : null;
        if (version !== check.version) conflicts.push(check.key);
      }
      if (conflicts.length > 0) {
        results.push({ ok: false, conflicts });
        continue;
      }
      for (const m of request.mutations) {
        if (m.type === "set") {
          const rec = makeRec(m.key, m.value, request.version, m.expiresAt);
          overlay.set(rec.id, rec);
          changed = true;
        } else if (m.type === "delete") {
          const id = JSON.stringify(m.key);
          if (current(id)) {
            overlay.set(id, null);
            changed = true;
          }
        } else {
          for (const id of idsIn(m.range)) {
            overlay.set(id, null);
            changed = true;
          }
        }
      }
      results.push({ ok: true });
    }
    // compact() rewrites the file even when nothing changed (say, after a hand edit).
    const bytesBefore = this.#stamp?.size ?? 0;
    if (changed || (compacts.length > 0 && this.#stamp !== null)) {
      const bytesAfter = await this.#write(changed ? merge(base, overlay) : base.sorted, overlay);
      for (const i of compacts) results[i] = { bytesBefore, bytesAfter };
    }
    return results;
  }

  /**
   * Under the lock: write `sorted` as the file, the way an atomic replace does
   * (temp file, fsync, rename, fsync the directory), and make it the state,
   * applying `overlay` to the index. Resolves the file's size.
   */
  async #write(sorted: Rec[], overlay: ReadonlyMap<string, Rec | null>): Promise<number> {
    const base = this.#state;
    const doc = render(sorted, base.sorted, base.doc, this.#scratch);
    this.#scratch = undefined;
    const dir = dirname(this.#path);
    const temp = tempPathOf(this.#path);
    let file: Deno.FsFile | undefined;
    let stamp: Stamp;
    // Until the rename, nothing is applied: a failure leaves the file and the state as they were.
    try {
      file = await io.createTemp(temp);
      for (let written = 0; written < doc.bytes.length;) {
        written += await io.write(file, doc.bytes.subarray(written));
      }
      if (this.#sync) await io.sync(file);
      stamp = stampOf(file.statSync());
      // The file being replaced is still at the path (we hold the lock): stop holding it,
      // so that the rename frees it, as a plain replace does, instead of a close here.
      // Until the new file is in place its identity is unknown: a failure makes us re-read.
      this.#held?.close();
      this.#held = undefined;
      this.#stamp = { dev: -1, ino: -1, size: -1, mtime: null };
      // rename(2) is atomic: when it fails, the old file is still in place.
      await io.rename(temp, this.#path);
    } catch (err) {
      file?.close();
      await Deno.remove(temp).catch(() => {});
      this.#scratch = doc.buffer ?? undefined;
      throw this.#writeError(err);
    }
    // The rename is done: the commit is applied, whatever happens next, and says so.
    this.#writes++;
    for (const [id, rec] of overlay) {
      this.#ix.update(id, base.entries.get(id)?.raw, rec?.raw);
      if (rec === null) base.entries.delete(id);
      else base.entries.set(id, rec);
    }
    this.#scratch = base.doc?.buffer ?? undefined;
    // The temp file we still have open is the file now at the path.
    this.#held = file;
    this.#stamp = stamp;
    this.#state = { entries: base.entries, sorted, doc };
    if (this.#sync) {
      try {
        await this.#syncDir(dir);
      } catch (err) {
        // Every process already sees this commit: reporting it failed would have it retried on
        // top of itself. It stands; only its survival of a power loss is in doubt.
        this.#warn(
          "DIR_SYNC_FAILED",
          `Store "${this.#name}": a commit was applied to ${this.#path}, but flushing the ` +
            `directory ${dir} failed: ${
              explainFsError(err)
            }. The commit stands, but may not survive a power loss`,
        );
      }
    }
    return doc.bytes.length;
  }

  /** The error for a write that failed before its rename: nothing was applied. */
  #writeError(err: unknown): Error {
    const what = `Cannot commit to store "${this.#name}"`;
    const reason = notWritableReason(err);
    if (reason !== undefined) {
      const dir = dirname(this.#path);
      return new StoreReadOnlyError(
        `${what}: ${dir} ${reason} (${messageOf(err)}); nothing was written. ` +
          `Remount it read-write or fix its permissions, or copy the store somewhere writable`,
        { store: this.#name, path: dir },
        { cause: err },
      );
    }
    return new Error(
      `${what}: writing ${this.#path} failed: ${
        explainFsError(err)
      }. Nothing was written: the store holds what it held before the commit`,
      { cause: err },
    );
  }

  /**
   * Fsync the directory `dir`, so that a rename in it survives a power loss,
   * through a handle kept open (opening it each time costs more than the
   * call), reopened if the path now names another directory. File systems
   * that cannot fsync a directory are let be, as `syncDir` in src/_fs.ts does.
   */
  async #syncDir(dir: string): Promise<void> {
    try {
      const now = statOrNull(dir);
      if (this.#dir !== undefined && (now === null || !sameInode(now, this.#dir.info))) {
        this.#dir.handle.close();
        this.#dir = undefined;
      }
      if (this.#dir === undefined) {
        const handle = Deno.openSync(dir, { read: true });
        try {
          this.#dir = { handle, info: handle.statSync() };
        } catch (err) {
          handle.close();
          throw err;
        }
      }
      await io.syncDir(this.#dir.handle);
    } catch (err) {
      if (
        !(err instanceof Deno.errors.PermissionDenied) &&
        !(err instanceof Deno.errors.NotSupported) &&
        !(err instanceof Error && /EINVAL|EISDIR|not supported/i.test(err.message))
      ) {
        throw err;
      }
    }
  }

  // -- locking -------------------------------------------------------------

  /** Run `fn` alone within this process (orders reloads against writes). */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#mutex.then(fn);
    this.#mutex = run.then(() => {}, () => {});
    return run;
  }

  /**
   * Run `fn` holding the lock, then the in-process mutex (always in that
   * order). This driver's takers of the lock queue for their turn first: they
   * share one lock file handle, and a handle that holds the lock would let a
   * second taker in.
   */
  async #locked<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#lockTurn;
    const turn = Promise.withResolvers<void>();
    this.#lockTurn = turn.promise;
    await previous;
    try {
      const lock = this.#lock;
      if (this.#closed) throw new Error(`Cannot ${what} store "${this.#name}": it is closed`);
      if (lock === undefined) {
        // Opened read-only: no lock file, and no writer here to exclude (writes are refused).
        return await this.#exclusive(async () => {
          try {
            return await fn();
          } finally {
            this.#lockHeld = false;
          }
        });
      }
      const waiting = lock.acquire(what, this.#lockTimeout);
      if (waiting) await waiting;
      try {
        return await this.#exclusive(async () => {
          try {
            return await fn();
          } finally {
            this.#lockHeld = false;
          }
        });
      } finally {
        lock.release();
      }
    } finally {
      turn.resolve();
    }
  }
}

/** The entries of a state, as `[id, entry]` pairs. */
function* rawEntries(state: State): Iterable<[string, RawEntry]> {
  for (const [id, rec] of state.entries) yield [id, rec.raw];
}

/** The records of `base` with `overlay` applied (`null`: deleted), in key order; `base` is unchanged. */
function merge(base: State, overlay: ReadonlyMap<string, Rec | null>): Rec[] {
  if (overlay.size <= 16) {
    // A few changes: find each by binary search in a copy.
    const sorted = base.sorted.slice();
    for (const [id, rec] of overlay) {
      const at = lowerBound(sorted, rec?.raw.key ?? JSON.parse(id), false);
      const found = at < sorted.length && sorted[at].id === id;
      if (rec === null) {
        if (found) sorted.splice(at, 1);
      } else if (found) {
        sorted[at] = rec;
      } else {
        sorted.splice(at, 0, rec);
      }
    }
    return sorted;
  }
  const added: Rec[] = [];
  for (const [id, rec] of overlay) if (rec !== null && !base.entries.has(id)) added.push(rec);
  added.sort((a, b) => compareKeys(a.raw.key, b.raw.key));
  const sorted: Rec[] = [];
  let j = 0;
  for (const old of base.sorted) {
    while (j < added.length && compareKeys(added[j].raw.key, old.raw.key) < 0) {
      sorted.push(added[j++]);
    }
    const rec = overlay.has(old.id) ? overlay.get(old.id) : old;
    if (rec) sorted.push(rec);
  }
  while (j < added.length) sorted.push(added[j++]);
  return sorted;
}

/** The file a symlink points to; for a link to a file not made yet, where it will be. */
async function linkTarget(path: string): Promise<string> {
  try {
    return await Deno.realPath(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  // A link to a file not made yet, maybe through more links: follow each to the missing end
  // (so the file is made there, not in place of a link along the way). realPath has
  // refused a loop already; the bound only keeps a link changing meanwhile from spinning.
  let at = path;
  for (let hop = 0; hop < 40; hop++) {
    const next = resolve(dirname(at), await Deno.readLink(at));
    const info = await Deno.lstat(next).catch((err) => {
      if (err instanceof Deno.errors.NotFound) return null;
      throw err;
    });
    if (info === null || !info.isSymlink) return next;
    at = next;
  }
  throw new Error(`${path} is a loop of symbolic links`);
}
