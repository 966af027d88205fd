/**
 * The migration lock and the store a migration sees: a lease at
 * {@linkcode MIGRATION_LOCK_KEY} (the store's lease primitive,
 * `src/store/lease.ts`), renewed by a timer and before each of a migration's
 * store calls, and checked by every record write. Part of the `migrate` job.
 *
 * @module
 */
import type { LogLevel } from "../src/log.ts";
import { INNER_STORE } from "../src/store/internal_keys.ts";
import { Lease, type LeaseInfo } from "../src/store/lease.ts";
import type {
  AtomicOperation,
  Clock,
  JsonValue,
  Key,
  ListIterator,
  ListOptions,
  Store,
} from "../src/store/types.ts";
// MigrationError is used only inside functions, so this import cycle is harmless.
import { messageOf, MigrationError } from "../src/errors.ts";
import { periodicYield } from "../src/_yield.ts";
import { listIterator } from "../src/store/list_iterator.ts";

/** The lease key `up` and `down` hold while they run. */
export const MIGRATION_LOCK_KEY: Key = Object.freeze(["flowstate", "locks", "migrate"]);

/**
 * Who holds the migration lock.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { type MigrationLockInfo, migrationStatus } from "@flowstate/core/jobs";
 *
 * const dir = await Deno.makeTempDir();
 * await using store = await openStore({ plugin: "memory" });
 * const lock: MigrationLockInfo | null = (await migrationStatus(store, dir)).lock;
 * assert.equal(lock, null); // no migration is running
 * const describe = (l: MigrationLockInfo) => `${l.holder} is running "${l.action}" since ${new Date(l.since).toISOString()}`;
 * assert.match(describe({ holder: "host:42", action: "up", since: 0, expiresAt: null }), /host:42 is running "up"/);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface MigrationLockInfo {
  /** Host and process, like `"build-1 pid 4242"`. */
  holder: string;
  /** `"up"` or `"down"`. */
  action: string;
  /** When it was taken (ms since the epoch). */
  since: number;
  /** When it expires unless renewed (ms since the epoch). */
  expiresAt: number | null;
}

/** A migration's store calls let the event loop run at least this often (ms of real time). */
const YIELD_EVERY_MS = 50;

/** An ISO time, or `"never"`. */
export function iso(ms: number | null): string {
  return ms === null || !Number.isFinite(ms) ? "never" : new Date(ms).toISOString();
}

/** Who holds the migration lock of `store`, or `null`. */
export async function readLock(store: Store): Promise<MigrationLockInfo | null> {
  const held = await Lease.read<Partial<MigrationLockInfo>>(store, MIGRATION_LOCK_KEY);
  return held === null ? null : lockInfo(held);
}

/** A lock entry as {@linkcode MigrationLockInfo}, whatever process wrote it. */
function lockInfo(held: LeaseInfo<Partial<MigrationLockInfo>>): MigrationLockInfo {
  const v = held.value ?? {};
  return {
    holder: typeof v.holder === "string" ? v.holder : "an unknown process",
    action: typeof v.action === "string" ? v.action : "?",
    since: typeof v.since === "number" ? v.since : 0,
    expiresAt: held.expiresAt,
  };
}

function holderName(): string {
  let host = "localhost";
  try {
    host = Deno.hostname();
  } catch {
    // Without --allow-sys the host name is unknown; the pid still tells processes apart.
  }
  return `${host} pid ${Deno.pid}`;
}

/** What the migration lock's entry holds. */
interface MigrationLockHolder {
  holder: string;
  action: "up" | "down";
  since: number;
}

/**
 * The migration lock: a {@linkcode Lease} at {@linkcode MIGRATION_LOCK_KEY}
 * in the target store, checked by every record write. It is renewed every
 * third of its lifetime, measured on the stores' clock, two ways: by a timer
 * (for migrations that wait on I/O), and before any call a migration makes
 * through `ctx.store` (for migrations whose store calls never yield to the
 * event loop, such as loops over a SQLite store). The lease runs renewals
 * and record writes one at a time, so they never race on its version.
 */
export class MigrationLock {
  #lease: Lease<MigrationLockHolder>;
  #log: (message: string, level?: LogLevel) => void;

  private constructor(
    lease: Lease<MigrationLockHolder>,
    log: (message: string, level?: LogLevel) => void,
  ) {
    this.#lease = lease;
    this.#log = log;
    lease.keepAlive({ onError: (err) => this.#renewFailed(err) });
  }

  static async acquire(
    store: Store,
    action: "up" | "down",
    options: { ttl: number; clock: Clock; log: (message: string, level?: LogLevel) => void },
  ): Promise<MigrationLock> {
    const value: MigrationLockHolder = {
      holder: holderName(),
      action,
      since: options.clock.now(),
    };
    const lostReason = () =>
      new MigrationError(
        `Lost the migration lock of store "${store.name}": it expired or was taken over ` +
          `(lockTtl ${options.ttl} ms); the migration was stopped`,
      );
    for (let attempt = 0; attempt < 3; attempt++) {
      const result = await Lease.acquire(store, MIGRATION_LOCK_KEY, value, {
        ttl: options.ttl,
        clock: options.clock,
        lostReason,
      });
      if (result.ok) return new MigrationLock(result.lease, options.log);
      if (result.holder === null) continue; // It expired or was released just now: try again.
      const held = lockInfo(result.holder);
      throw new MigrationError(
        `Cannot migrate ${action} store "${store.name}": another migration holds the lock ` +
          `(${held.holder}, running "${held.action}" since ${
            iso(held.since)
          }; the lock expires at ` +
          `${iso(held.expiresAt)} unless renewed). Wait for it to finish; if that process died, ` +
          `the lock expires by itself`,
      );
    }
    throw new MigrationError(
      `Cannot migrate ${action} store "${store.name}": the migration lock changed hands repeatedly; try again`,
    );
  }

  /** Aborted, with a {@linkcode MigrationError}, when the lock is lost. */
  get signal(): AbortSignal {
    return this.#lease.signal;
  }

  #renewFailed(err: unknown): void {
    // A transient store error: the next renewal tries again; a record write
    // after the lease expired fails its check.
    this.#log(`Cannot renew the migration lock: ${messageOf(err)}`, "warn");
  }

  /**
   * Before a migration's store call: fail if the lock is lost, renew it if a
   * third of its lifetime passed since the last renewal.
   */
  beforeStoreCall(): Promise<void> | undefined {
    const lease = this.#lease;
    if (lease.lost) return Promise.reject(lease.signal.reason);
    if (!lease.due) return undefined;
    return lease.renewIfDue().catch((err) => this.#renewFailed(err)).then(() => {
      if (lease.lost) throw lease.signal.reason;
    });
  }

  /** Commit `build`'s writes together with a check that the lock is still ours. */
  async commit(build: (op: AtomicOperation) => void): Promise<void> {
    const lease = this.#lease;
    if (lease.lost) throw lease.signal.reason;
    const result = await lease.commit(build);
    // The lock's version is the commit's only check: a conflict means the lock was lost.
    if (!result.ok) throw lease.signal.reason;
  }

  async release(): Promise<void> {
    try {
      await this.#lease.release();
    } catch (err) {
      // Do not hide the outcome of the migrations: the lease expires by itself.
      this.#log(
        `Cannot release the migration lock: ${
          messageOf(err)
        }; it expires within ${this.#lease.ttl} ms`,
        "warn",
      );
    }
  }
}

/**
 * The store a migration sees: the target store, with the lock renewed (when
 * due) before each call, the event loop given a turn every 50 ms, and
 * `close` refused (the run still needs the store).
 */
export function storeForMigration(store: Store, lock: MigrationLock): Store {
  // So that Ctrl-C reaches ctx.signal during long loops over a synchronous backend.
  const breathe = periodicYield(YIELD_EVERY_MS);
  const guard = async <T>(call: () => Promise<T>): Promise<T> => {
    await breathe();
    await lock.beforeStoreCall();
    return await call();
  };
  const atomic = (): AtomicOperation => {
    const inner = store.atomic();
    const op: AtomicOperation = {
      check: (key, version) => (inner.check(key, version), op),
      set: (key, value, options) => (inner.set(key, value, options), op),
      delete: (key) => (inner.delete(key), op),
      clear: (prefix, bounds) => (inner.clear(prefix, bounds), op),
      commit: () => guard(() => inner.commit()),
    };
    return op;
  };
  const list = <T = JsonValue>(options?: ListOptions): ListIterator<T> => {
    const inner = store.list<T>(options);
    return listIterator(inner, {
      cursor: () => inner.cursor,
      next: (step) => guard(step),
      page: (max) => guard(() => inner.nextPage(max)),
      pageSize: options?.batchSize,
    });
  };
  const refuseClose = () =>
    Promise.reject(
      new TypeError(`Cannot close store "${store.name}" from a migration: the run still uses it`),
    );
  return {
    name: store.name,
    plugin: store.plugin,
    location: store.location,
    capabilities: store.capabilities,
    get: (key) => guard(() => store.get(key)),
    getMany: (keys) => guard(() => store.getMany(keys)),
    set: (key, value, options) => guard(() => store.set(key, value, options)),
    delete: (key, options) => guard(() => store.delete(key, options)),
    list,
    count: (prefix, bounds) => guard(() => store.count(prefix, bounds)),
    query: (query) => guard(() => store.query(query)),
    explain: (query) => guard(() => store.explain(query)),
    search: (text, options) => guard(() => store.search(text, options)),
    indexes: store.indexes,
    atomic,
    clear: (prefix, bounds) => guard(() => store.clear(prefix, bounds)),
    purgeExpired: () => guard(() => store.purgeExpired()),
    compact: () => guard(() => store.compact()),
    changes: (options) => store.changes(options),
    watch: (prefixes, options) => store.watch(prefixes, options),
    getAt: (key, at) => guard(() => store.getAt(key, at)),
    feedInfo: () => store.feedInfo(),
    [INNER_STORE]: () => store,
    close: refuseClose,
    [Symbol.asyncDispose]: refuseClose,
  } as Store;
}
