/**
 * Leases: one expiring entry that a single holder at a time owns, taken and
 * kept with compare-and-set over the public {@linkcode Store} interface. The
 * archive job's lease, the migration lock and the scheduler's tick leases are
 * built on it; each chooses its key and what its holder value says.
 *
 * ## Protocol
 *
 * A lease is one entry at a key of the caller's choosing: its value says who
 * holds it, its expiry until when.
 *
 * - **Acquire**: one atomic commit that checks that the key is absent (an
 *   expired entry counts as absent), plus any checks the caller adds, and
 *   writes the holder value with `expireIn: ttl`. Of several holders trying
 *   at once, exactly one commit succeeds; the others read the entry to say
 *   who holds it and until when.
 * - **Renew**: compare-and-set on the lease's own version, pushing its expiry
 *   back by `ttl`. If the version changed (the entry lapsed, was taken by
 *   another holder or was deleted), the lease is lost: `renew()` resolves
 *   `false` and the lease's `signal` aborts. A lost lease is never taken back
 *   behind its holder's back; a caller that knows it is safe may acquire
 *   the key again.
 * - **Check**: a commit that may only happen while the lease is held adds a
 *   check of the lease's version (`lease.check(op)`, or `lease.commit(build)`,
 *   which also keeps renewals from changing the version meanwhile), so it
 *   fails if the lease was lost, even before its holder noticed.
 * - **Release**: deletes the entry if its version is still this lease's, so
 *   that a lease that lapsed and was taken by another holder is left alone.
 *   A holder that crashed never releases: its lease lapses after `ttl`.
 * - **Keep alive**: `keepAlive()` renews on a timer, every third of `ttl`
 *   when a third of it passed on the clock since the last renewal, until the
 *   lease is released or lost.
 *
 * Renewals, `commit()` and `release()` of one lease run one at a time, so
 * they never race on its version. Expiry is measured by the store's clock;
 * whether a renewal is due, by the clock given here (pass the store's).
 *
 * @module
 */
import { type Clock, realTimers, systemClock, type Timers } from "../clock.ts";
import { keysEqual } from "./keys.ts";
import type { AtomicOperation, CommitResult, Key, Store } from "./types.ts";

/** Options of a {@linkcode Lease}. */
export interface LeaseOptions {
  /** How long the lease lives unless renewed, in ms (> 0). */
  ttl: number;
  /** When renewals are due (default: the system clock); pass the store's clock. */
  clock?: Clock;
  /** Timers for {@linkcode Lease.keepAlive} (default: real ones). */
  timers?: Timers;
  /** The reason `signal` aborts with when the lease is lost (default: an `Error` naming the key). */
  lostReason?: () => unknown;
}

/** Options of {@linkcode Lease.acquire}. */
export interface AcquireLeaseOptions extends LeaseOptions {
  /** Add checks of other keys to the acquiring commit (e.g. "a done marker is absent"). */
  check?: (op: AtomicOperation) => void;
}

/** A lease entry as read from the store: who holds it and until when. */
export interface LeaseInfo<T> {
  /** The holder value. */
  value: T;
  /** The entry's version. */
  version: string;
  /** When it lapses unless renewed (ms since the epoch), or `null` if never. */
  expiresAt: number | null;
}

/**
 * What {@linkcode Lease.acquire} resolves: the lease, or who holds the key.
 * `holder: null` means the key was free when read again: another of the
 * caller's checks failed, or the holder released it just then.
 */
export type LeaseAcquireResult<T> =
  | { ok: true; lease: Lease<T> }
  | { ok: false; holder: LeaseInfo<T> | null };

/**
 * `"held by <who> until <ISO time>"`, for error messages; `who` defaults to
 * the holder value as JSON.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeHolder } from "./lease.ts";
 *
 * const info = { value: { runner: "a" }, version: "v1", expiresAt: Date.UTC(2026, 0, 1) };
 * assert.equal(
 *   describeHolder(info, (v) => v.runner),
 *   "held by a until 2026-01-01T00:00:00.000Z",
 * );
 * ```
 */
export function describeHolder<T>(
  info: LeaseInfo<T>,
  who: (value: T) => string = (value) => JSON.stringify(value),
): string {
  const until = info.expiresAt === null
    ? "without expiry"
    : `until ${new Date(info.expiresAt).toISOString()}`;
  return `held by ${who(info.value)} ${until}`;
}

function checkTtl(ttl: unknown): asserts ttl is number {
  if (typeof ttl !== "number" || !Number.isFinite(ttl) || ttl <= 0) {
    throw new RangeError(`Cannot take a lease: ttl must be > 0 ms (got ${String(ttl)})`);
  }
}

/**
 * An expiring lease this process holds on one key; see the module
 * documentation for the protocol. Take one with {@linkcode Lease.acquire}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "../plugin.ts";
 * import { Lease } from "./lease.ts";
 *
 * await using store = await openStore({ plugin: "memory" });
 * const key = ["app", "lock"];
 * const first = await Lease.acquire(store, key, { holder: "a" }, { ttl: 30_000 });
 * const second = await Lease.acquire(store, key, { holder: "b" }, { ttl: 30_000 });
 * assert.equal(first.ok, true);
 * assert.deepEqual(!second.ok && second.holder?.value, { holder: "a" });
 * assert.ok(first.ok);
 * const lease = first.lease;
 * // A write that must only happen while the lease is held:
 * const written = await lease.commit((op) => op.set(["app", "data"], 1));
 * assert.equal(written.ok, true);
 * assert.equal(await lease.release(), true);
 * assert.equal(await store.get(key), null);
 * ```
 */
export class Lease<T> {
  /** The store the lease lives in. */
  readonly store: Store;
  /** The lease's key. */
  readonly key: Key;
  /** How long it lives unless renewed, in ms. */
  readonly ttl: number;
  #value: T;
  #version: string;
  #renewedAt: number;
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #lostReason: () => unknown;
  readonly #lost = new AbortController();
  /** Aborted on release, abandon or loss: stops `keepAlive`. */
  readonly #stop = new AbortController();
  #released = false;
  #keeping = false;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(
    store: Store,
    key: Key,
    value: T,
    version: string,
    renewedAt: number,
    options: LeaseOptions,
  ) {
    this.store = store;
    this.key = key;
    this.ttl = options.ttl;
    this.#value = value;
    this.#version = version;
    this.#renewedAt = renewedAt;
    this.#clock = options.clock ?? systemClock;
    this.#timers = options.timers ?? realTimers;
    this.#lostReason = options.lostReason ??
      (() =>
        new Error(
          `Lost the lease ${
            JSON.stringify(key)
          }: it expired or was taken over (ttl ${this.ttl} ms)`,
        ));
  }

  /**
   * Take the lease at `key` with `value` as its holder, if the key is absent
   * (or expired) and the caller's extra checks hold; one attempt. On failure,
   * resolves who holds the key now (`null` when nobody does).
   */
  static async acquire<T>(
    store: Store,
    key: Key,
    value: T,
    options: AcquireLeaseOptions,
  ): Promise<LeaseAcquireResult<T>> {
    checkTtl(options?.ttl);
    const clock = options.clock ?? systemClock;
    const takenAt = clock.now();
    const op = store.atomic().check(key, null);
    options.check?.(op);
    const result = await op.set(key, value, { expireIn: options.ttl }).commit();
    if (result.ok) {
      return { ok: true, lease: new Lease(store, key, value, result.version, takenAt, options) };
    }
    return { ok: false, holder: await Lease.read<T>(store, key) };
  }

  /** Who holds the lease at `key`, or `null` if nobody does (absent or expired). */
  static async read<T>(store: Store, key: Key): Promise<LeaseInfo<T> | null> {
    const entry = await store.get<T>(key);
    if (entry === null) return null;
    return { value: entry.value, version: entry.version, expiresAt: entry.expiresAt };
  }

  /** The holder value last written. */
  get value(): T {
    return this.#value;
  }

  /** The lease entry's version as this holder last wrote it. */
  get version(): string {
    return this.#version;
  }

  /** When it was last taken or renewed, by the lease's clock. */
  get renewedAt(): number {
    return this.#renewedAt;
  }

  /** Aborted (with the lost reason) when the lease is found lost. */
  get signal(): AbortSignal {
    return this.#lost.signal;
  }

  /** Whether the lease was found lost (a renewal or a checked commit failed on it). */
  get lost(): boolean {
    return this.#lost.signal.aborted;
  }

  /** Neither released, abandoned nor lost. */
  get held(): boolean {
    return !this.#released && !this.lost;
  }

  /** Whether a third of `ttl` passed on the clock since the last renewal. */
  get due(): boolean {
    return this.#clock.now() - this.#renewedAt >= this.ttl / 3;
  }

  /**
   * Push the expiry back by `ttl` (compare-and-set on this lease's version),
   * writing `value` instead when given. Resolves `false` when the lease is
   * not held: released, or lost (then, and at the first such renewal,
   * `signal` aborts). A store error rejects and leaves the lease as it was.
   */
  renew(options: { value?: T } = {}): Promise<boolean> {
    return this.#serialized(() => this.#renew(options.value ?? this.#value));
  }

  /** Renew if it is {@linkcode Lease.due}; resolves whether the lease is still held. */
  renewIfDue(): Promise<boolean> {
    if (!this.held) return Promise.resolve(false);
    if (!this.due) return Promise.resolve(true);
    return this.#serialized(() => this.due ? this.#renew(this.#value) : Promise.resolve(this.held));
  }

  async #renew(value: T): Promise<boolean> {
    if (!this.held) return false;
    const now = this.#clock.now();
    const result = await this.store.set(this.key, value, {
      ifVersion: this.#version,
      expireIn: this.ttl,
    });
    if (!result.ok) {
      this.#lose();
      return false;
    }
    this.#value = value;
    this.#version = result.version;
    this.#renewedAt = now;
    return true;
  }

  /**
   * Add a check of this lease's version to `op`: the commit fails unless the
   * lease entry is still the one this holder last wrote. A renewal between
   * this call and the commit fails the commit too; use
   * {@linkcode Lease.commit} while renewals may run.
   */
  check(op: AtomicOperation): AtomicOperation {
    return op.check(this.key, this.#version);
  }

  /**
   * Commit `build`'s writes with a check that the lease is still held, with
   * no renewal in between. When the lease check fails, the lease is lost
   * (`signal` aborts). A lease already lost or released commits nothing and
   * resolves a conflict on its key.
   */
  commit(build: (op: AtomicOperation) => void): Promise<CommitResult> {
    return this.#serialized(async (): Promise<CommitResult> => {
      if (!this.held) return { ok: false, version: null, conflicts: [this.key] };
      const op = this.check(this.store.atomic());
      build(op);
      const result = await op.commit();
      if (!result.ok && result.conflicts.some((key) => keysEqual(key, this.key))) this.#lose();
      return result;
    });
  }

  /**
   * Renew on a timer every third of `ttl` (when due by the clock) until the
   * lease is released, abandoned or lost. A renewal that throws is passed to
   * `onError` and tried again at the next turn. Calling it again does nothing.
   */
  keepAlive(options: { onError?: (error: unknown) => void } = {}): void {
    if (this.#keeping || !this.held) return;
    this.#keeping = true;
    const every = Math.max(1, Math.floor(this.ttl / 3));
    const stop = this.#stop.signal;
    const loop = async () => {
      while (this.held) {
        try {
          await this.#timers.sleep(every, stop);
        } catch {
          return; // Released, abandoned or lost.
        }
        try {
          await this.renewIfDue();
        } catch (err) {
          options.onError?.(err);
        }
      }
    };
    void loop();
  }

  /**
   * Delete the lease entry if it is still this holder's, and stop renewing.
   * Resolves whether it deleted it (`false` when it was lost, already
   * released, or taken by another holder meanwhile). A store error rejects;
   * the entry then lapses by itself.
   */
  release(): Promise<boolean> {
    if (!this.held) return Promise.resolve(false);
    this.#released = true;
    this.#stop.abort();
    return this.#serialized(async () => {
      if (this.lost) return false;
      return await this.store.delete(this.key, { ifVersion: this.#version });
    });
  }

  /**
   * Stop renewing and forget the lease without deleting it: for a caller
   * whose own commit deletes the entry (with {@linkcode Lease.check}), or
   * that lets it lapse.
   */
  abandon(): void {
    this.#released = true;
    this.#stop.abort();
  }

  #lose(): void {
    if (this.lost) return;
    this.#stop.abort();
    this.#lost.abort(this.#lostReason());
  }

  #serialized<R>(fn: () => Promise<R>): Promise<R> {
    const next = this.#queue.then(fn, fn);
    this.#queue = next.catch(() => {});
    return next;
  }
}
