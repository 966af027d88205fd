/**
 * The `memory` plugin: a fast in-process store, optionally snapshotted to a
 * file on close and restored from it on open.
 *
 * ```yaml
 * stores:
 *   scratch: { plugin: memory, snapshot: scratch.snapshot.json }
 * ```
 *
 * A store with a snapshot is one process's at a time: each process keeps the
 * entries in its own memory and writes them all on close, so two processes
 * with the same snapshot open would each overwrite the other's writes. The
 * store holds an OS lock on `<snapshot>.lock` from open to close; another
 * process opening it waits up to 5 s for it to close, then fails
 * (`StoreUnavailableError`) naming the process that has it open. Use a
 * jsonfile or sqlite store for state that several processes share.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import { z } from "zod";
import { writeFileAtomic } from "../../src/_fs.ts";
import {
  StoreCorruptError,
  type StoreCorruptReason,
  StoreUnavailableError,
} from "../../src/errors.ts";
import { parseLockHolder, StoreLock } from "../jsonfile/lock.ts";
import {
  definePlugin,
  type ParsingSchema,
  type Plugin,
  requireStoreFile,
} from "../../src/plugin_define.ts";
import type {
  CommitRequest,
  DriverCommitResult,
  KeyRange,
  RawEntry,
  StoreDriver,
} from "../../src/store/driver.ts";
import { compareKeys, hasPrefix } from "../../src/store/keys.ts";
import type { NormalizedQuery } from "../../src/store/query.ts";
import type { PreparedIndexes, PrepareIndexesRequest } from "../../src/store/driver.ts";
import type { QueryPlan } from "../../src/store/types.ts";
import { EqIndexes } from "../_shared/eq_indexes.ts";
import type { Clock, Key } from "../../src/store/types.ts";
import { systemClock } from "../../src/clock.ts";
import { parseJson } from "../../src/_json.ts";
import { explainFsError } from "../../src/store/fs_errors.ts";

/**
 * Validated options of the memory plugin.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import type { MemoryOptions } from "@flowstate/core/plugins/memory";
 *
 * const dir = await Deno.makeTempDir();
 * const options: MemoryOptions = { snapshot: `${dir}/snapshot.json` };
 * const first = await openStore({ plugin: "memory", ...options });
 * await first.set(["a"], 1);
 * await first.close(); // writes the snapshot
 * await using again = await openStore({ plugin: "memory", ...options });
 * assert.equal((await again.get(["a"]))?.value, 1);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface MemoryOptions {
  /** A file to restore from on open and write to on close (relative to the config's directory). */
  snapshot?: string;
}

/**
 * The schema of the memory plugin's options (a zod schema).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { memoryOptions } from "@flowstate/core/plugins/memory";
 *
 * assert.deepEqual(memoryOptions.parse({ snapshot: "state.json" }), { snapshot: "state.json" });
 * assert.equal(memoryOptions.safeParse({ snapshots: "state.json" }).success, false); // unknown option
 * ```
 */
export const memoryOptions: ParsingSchema<MemoryOptions> = z.strictObject({
  /** A file to restore from on open and write to on close (relative to the config's directory). */
  snapshot: z.string().min(1).optional(),
});

const SNAPSHOT_FORMAT = "flowstate.memory-snapshot";
const SNAPSHOT_VERSION = 1;
/** How long an open waits for another process to close the same snapshot (ms). */
const SNAPSHOT_LOCK_WAIT_MS = 5_000;

interface Slot {
  id: string;
  key: Key;
}

/**
 * The memory driver: a Map plus a lazily merged sorted index. Applications
 * open a store with `openStore({ plugin: "memory" })`; the driver itself is
 * for plugin authors and tests of the driver contract.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryDriver } from "@flowstate/core/plugins/memory";
 *
 * const driver = new MemoryDriver();
 * const result = await driver.commit({
 *   checks: [{ key: ["a"], version: null }], // must be absent
 *   mutations: [{ type: "set", key: ["a"], value: "1", expiresAt: null }],
 *   version: "v1",
 *   now: Date.now(),
 * });
 * assert.deepEqual(result, { ok: true });
 * assert.equal((await driver.get(["a"]))?.value, "1"); // JSON text; this driver leaves expiry to the core
 * await driver.close();
 * ```
 */
export class MemoryDriver implements StoreDriver {
  readonly location: string;
  readonly capabilities = {
    persistent: false,
    expiry: false,
    atomicClear: true,
    query: true,
    indexes: true,
  };
  #entries = new Map<string, RawEntry>();
  #sorted: Slot[] = [];
  #inSorted = new Set<string>();
  #pending: Slot[] = [];
  #snapshot: string | undefined;
  /** The store's name, for messages. */
  #name: string;
  /** The lock on `<snapshot>.lock`, held from {@linkcode restore} to {@linkcode close}. */
  #lock: StoreLock | undefined;
  /** Declared indexes: for each, the ids of the entries by their field's value (scalars only). */
  #ix = new EqIndexes();

  #clock: Clock;

  /**
   * A driver keeping entries in memory; with `snapshot`, restored from and
   * written to that file (`storeName` names the store in messages).
   */
  constructor(snapshot?: string, clock: Clock = systemClock, storeName = "memory") {
    this.#snapshot = snapshot;
    this.#clock = clock;
    this.#name = storeName;
    this.location = snapshot ? `memory (snapshot ${snapshot})` : "memory";
  }

  /**
   * Load the snapshot file, if there is one, once this driver holds the
   * snapshot's lock (until {@linkcode close}): a snapshot is one process's
   * at a time, since each writes its whole content on close.
   */
  async restore(): Promise<void> {
    if (!this.#snapshot) return;
    await this.#lockSnapshot(this.#snapshot);
    try {
      await this.#load(this.#snapshot);
    } catch (err) {
      this.#unlock();
      throw err;
    }
  }

  async #lockSnapshot(snapshot: string): Promise<void> {
    // The lock file sits beside the snapshot: its directory is made now, not on the first close.
    await Deno.mkdir(dirname(snapshot), { recursive: true });
    const lock = StoreLock.open(`${snapshot}.lock`, this.#name);
    try {
      await lock.acquire("open", SNAPSHOT_LOCK_WAIT_MS);
    } catch (err) {
      lock.close();
      if (!(err instanceof Deno.errors.TimedOut)) throw err;
      let holder;
      try {
        holder = parseLockHolder(await Deno.readTextFile(`${snapshot}.lock`));
      } catch { /* named as "another process" */ }
      const who = holder === undefined
        ? "another process"
        : `process ${holder.pid} on host ${JSON.stringify(holder.hostname ?? "unknown")}${
          holder.since === undefined ? "" : ` (since ${holder.since})`
        }`;
      throw new StoreUnavailableError(
        `Cannot open store "${this.#name}": its memory snapshot ${snapshot} is open in ${who}, ` +
          `which did not close it within ${SNAPSHOT_LOCK_WAIT_MS} ms. A memory store is one ` +
          `process's at a time (each writes its whole snapshot on close, so two would lose each ` +
          `other's writes): wait for that process to end, or use a jsonfile or sqlite store for ` +
          `state that several processes share`,
        { store: this.#name, address: snapshot },
        { cause: err },
      );
    }
    this.#lock = lock;
  }

  #unlock(): void {
    const lock = this.#lock;
    this.#lock = undefined;
    if (lock === undefined) return;
    lock.release();
    lock.close();
  }

  async #load(snapshot: string): Promise<void> {
    let text: string;
    try {
      text = await Deno.readTextFile(snapshot);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return;
      throw err;
    }
    let entries: [Key, unknown, string, number | null][];
    let reason: StoreCorruptReason = "damaged";
    try {
      const doc = parseJson(text);
      if (doc?.format !== SNAPSHOT_FORMAT || doc.version !== SNAPSHOT_VERSION) {
        if (doc?.format !== SNAPSHOT_FORMAT) reason = "foreign";
        else if (typeof doc.version === "number" && doc.version > SNAPSHOT_VERSION) {
          reason = "newer";
        }
        throw new Error(`unknown format ${JSON.stringify(doc?.format)} version ${doc?.version}`);
      }
      entries = doc.entries;
      if (!Array.isArray(entries)) throw new Error("entries is not an array");
    } catch (err) {
      // Left in place: every open refuses it until a person sets it aside
      // (`flowstate stores repair`), so a restart never carries on from nothing.
      throw new StoreCorruptError(
        `Cannot restore memory snapshot ${snapshot}: ${
          (err as Error).message
        } (left in place; it is never overwritten). ${
          reason === "newer"
            ? "A newer Flowstate wrote it: upgrade Flowstate to restore it"
            : reason === "foreign"
            ? `It is not a memory snapshot: point the store's "snapshot" option at a new file`
            : "Fix it, or run `flowstate stores repair` to set it aside and start empty"
        }`,
        { path: snapshot, movedTo: null, reason },
        { cause: err },
      );
    }
    for (const [key, value, version, expiresAt] of entries) {
      this.#put({ key, value: JSON.stringify(value), version, expiresAt });
    }
  }

  #put(entry: RawEntry): void {
    const id = JSON.stringify(entry.key);
    const old = this.#entries.get(id);
    if (old === undefined && !this.#inSorted.has(id)) {
      this.#pending.push({ id, key: entry.key });
      this.#inSorted.add(id);
    }
    this.#ix.update(id, old, entry);
    this.#entries.set(id, entry);
  }

  #remove(id: string): void {
    if (this.#ix.active) this.#ix.update(id, this.#entries.get(id), undefined);
    this.#entries.delete(id);
  }

  /** Build the declared indexes from the entries (kept exact by every commit from now on). */
  prepareIndexes(request: PrepareIndexesRequest): PreparedIndexes {
    return this.#ix.prepare(request, this.#entries);
  }

  /** An `eq` on an indexed path: the entries with that value, then the rest of the query. */
  query(q: NormalizedQuery): Promise<RawEntry[] | undefined> {
    return Promise.resolve(
      this.#ix.query(q, (id) => this.#entries.get(id), this.#clock.now()),
    );
  }

  /** Say whether an index answers `q` (`undefined`: the core scans). */
  explain(q: NormalizedQuery): Promise<QueryPlan | undefined> {
    return Promise.resolve(this.#ix.explain(q, "memory"));
  }

  get(key: Key): RawEntry | null {
    return this.#entries.get(JSON.stringify(key)) ?? null;
  }

  #index(): Slot[] {
    if (this.#pending.length > 0) {
      const pending = this.#pending.sort((a, b) => compareKeys(a.key, b.key));
      this.#pending = [];
      const old = this.#sorted;
      if (pending.length * 16 < old.length) {
        // A few new keys among many (a run's end lists a small prefix after each run): each
        // goes to its place, found by a binary search, rather than comparing every key of the
        // store again (a list iterates its own slice of the array, so it may change under it).
        const next = old;
        for (const slot of pending) {
          let lo = 0;
          let hi = next.length;
          while (lo < hi) {
            const mid = (lo + hi) >>> 1;
            if (compareKeys(next[mid].key, slot.key) < 0) lo = mid + 1;
            else hi = mid;
          }
          next.splice(lo, 0, slot);
        }
        this.#sorted = next;
      } else {
        const merged: Slot[] = [];
        let i = 0;
        let j = 0;
        while (i < old.length || j < pending.length) {
          if (
            j >= pending.length ||
            (i < old.length && compareKeys(old[i].key, pending[j].key) < 0)
          ) {
            merged.push(old[i++]);
          } else {
            merged.push(pending[j++]);
          }
        }
        this.#sorted = merged;
      }
    }
    if (this.#sorted.length > 64 && this.#sorted.length > 2 * this.#entries.size) {
      this.#sorted = this.#sorted.filter((s) => this.#entries.has(s.id));
      this.#inSorted = new Set(this.#sorted.map((s) => s.id));
    }
    return this.#sorted;
  }

  *list(range: KeyRange): Iterable<RawEntry> {
    const index = this.#index();
    const prefix = range.prefix ?? [];
    const lower = range.start && (prefix.length === 0 || compareKeys(range.start, prefix) > 0)
      ? range.start
      : prefix.length > 0
      ? prefix
      : undefined;
    const lowerExclusive = lower === range.start ? range.startExclusive === true : true;
    let lo = 0;
    if (lower) {
      let a = 0;
      let b = index.length;
      while (a < b) {
        const m = (a + b) >> 1;
        const c = compareKeys(index[m].key, lower);
        if (c < 0 || (c === 0 && lowerExclusive)) a = m + 1;
        else b = m;
      }
      lo = a;
    }
    let hi = index.length;
    if (range.end) {
      let a = lo;
      let b = index.length;
      while (a < b) {
        const m = (a + b) >> 1;
        if (compareKeys(index[m].key, range.end) < 0) a = m + 1;
        else b = m;
      }
      hi = a;
    }
    const slice = index.slice(lo, hi);
    if (range.reverse) slice.reverse();
    for (const slot of slice) {
      if (prefix.length > 0 && !hasPrefix(slot.key, prefix)) {
        if (range.reverse) continue;
        break;
      }
      const entry = this.#entries.get(slot.id);
      if (entry) yield entry;
    }
  }

  commit(request: CommitRequest): DriverCommitResult {
    const conflicts: Key[] = [];
    for (const check of request.checks) {
      const entry = this.#entries.get(JSON.stringify(check.key));
      const current = entry && (entry.expiresAt === null || entry.expiresAt > request.now)
        ? entry.version
        : null;
      if (current !== check.version) conflicts.push(check.key);
    }
    if (conflicts.length > 0) return { ok: false, conflicts };
    for (const m of request.mutations) {
      if (m.type === "set") {
        this.#put({ key: m.key, value: m.value, version: request.version, expiresAt: m.expiresAt });
      } else if (m.type === "delete") {
        this.#remove(JSON.stringify(m.key));
      } else {
        const { prefix, start, end } = m.range;
        const doomed = [...this.list({ prefix, start, end })];
        for (const e of doomed) this.#remove(JSON.stringify(e.key));
      }
    }
    return { ok: true };
  }

  async close(): Promise<void> {
    if (!this.#snapshot) return;
    try {
      await this.#writeSnapshot(this.#snapshot);
    } catch (err) {
      // Written by temp file and rename: a failed write leaves the last snapshot whole.
      throw new Error(
        `Cannot write the snapshot of store "${this.#name}" to ${this.#snapshot}: ${
          explainFsError(err)
        }; the changes made to "${this.#name}" since this process opened it are lost (the ` +
          `snapshot file holds what it held before)`,
        { cause: err },
      );
    } finally {
      // Released once the snapshot is written (or failed to be): the next process reads it.
      this.#unlock();
    }
  }

  async #writeSnapshot(snapshot: string): Promise<void> {
    const now = this.#clock.now();
    const parts: string[] = [];
    for (const slot of this.#index()) {
      const e = this.#entries.get(slot.id);
      if (!e || (e.expiresAt !== null && e.expiresAt <= now)) continue;
      parts.push(
        `[${JSON.stringify(e.key)},${e.value},${JSON.stringify(e.version)},${e.expiresAt}]`,
      );
    }
    // Like the other file stores, create the snapshot's directory on first write.
    await Deno.mkdir(dirname(snapshot), { recursive: true });
    await writeFileAtomic(
      snapshot,
      `{"format":"${SNAPSHOT_FORMAT}","version":${SNAPSHOT_VERSION},"entries":[\n${
        parts.join(",\n")
      }\n]}\n`,
    );
  }
}

/**
 * The memory plugin: `openStore({ plugin: "memory" })` names it; the
 * default export is the plugin object itself, for `openStore({ plugin: memory })`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import memory from "@flowstate/core/plugins/memory";
 *
 * assert.equal(memory.name, "memory");
 * await using store = await openStore({ plugin: memory });
 * await store.set(["a"], 1);
 * assert.equal(await store.count(), 1);
 * ```
 */
const memory: Plugin<MemoryOptions> = definePlugin({
  name: "memory",
  description: "in-process store; optional snapshot file",
  optionsSchema: memoryOptions,
  async open(options, context) {
    const snapshot = options.snapshot ? resolve(context.baseDir, options.snapshot) : undefined;
    // Without a snapshot the store always "exists" (empty); with one, the file is the store.
    if (snapshot !== undefined) await requireStoreFile(snapshot, context, "snapshot");
    const driver = new MemoryDriver(snapshot, context.clock, context.storeName);
    await driver.restore();
    return driver;
  },
});
export default memory;
