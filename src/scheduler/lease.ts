/**
 * Tick leases: each scheduled tick runs once, however many runners share the
 * store.
 *
 * ## Key layout
 *
 * Under the prefix `P` (default `["flowstate", "scheduler"]`) of the records
 * store; `tick` is the tick's nominal time as an ISO string
 * (`2026-01-01T03:00:00.000Z`), so key order is time order:
 *
 * | key | value | expiry |
 * |---|---|---|
 * | `P, "lease", scheduleId, tick` | {@linkcode LeaseHolder}: who runs the tick | `leaseMs`, renewed while it runs |
 * | `P, "done", scheduleId, tick` | {@linkcode DoneMarker}: the tick ran | none; pruned (see below) |
 * | `P, "pruned", scheduleId` | {@linkcode PrunedBefore}: ticks before `before` count as done | none |
 * | `P, "last", scheduleId` | {@linkcode LastTick}: the latest tick that completed | none |
 * | `P, "running", scheduleId, tick` | {@linkcode RunningMarker}: the run a tick's work is recording | none; deleted when the tick completes |
 *
 * ## Protocol
 *
 * The lease itself is the store's lease primitive (`src/store/lease.ts`);
 * the done marker and the last tick are this module's.
 *
 * - **Acquire**: one atomic commit that checks that the lease and the done
 *   marker are both absent (an expired lease counts as absent) and writes the
 *   lease with `expireIn: leaseMs`. Of several runners trying the same tick,
 *   exactly one commit succeeds.
 * - **Renew**: compare-and-set on the lease's own version, pushing its expiry
 *   back. A runner that crashed stops renewing, so its lease lapses and the
 *   tick may be taken again, but only if it never completed. A lease that
 *   lapsed but that nobody took is taken again (the acquire commit: safe,
 *   since it checks the done marker).
 * - **Complete**: one atomic commit writes the done marker, moves `last`
 *   forward (never back), and deletes the lease if it is still this runner's.
 *   Done markers are pruned as new ones are written, so the history stays
 *   bounded: those older than `historyMs` (default 7 days), and those older
 *   than the prune window (ten lease lifetimes before the completed tick)
 *   beyond the newest `historyCount` (default 100) such ones. A per-second
 *   schedule keeps about 700 markers, a daily one 7. The prune commit moves
 *   the schedule's `pruned` mark up to the newest tick it deleted, but never
 *   past a tick that is leased or marked running (not done: its runner may
 *   die, and a runner taking it over must not find it "done"); the markers
 *   after such a tick are kept until it ends.
 * - **Pruned ticks count as done**: acquire refuses a tick before the
 *   `pruned` mark (its marker may be gone: it may have run), and its commit
 *   checks the mark at the version read, so a prune between the read and the
 *   commit cannot let a tick run twice. Only a tick that waited longer than
 *   the prune window (`overlap: queue` behind a long run) can meet it.
 *   A tick whose lease lapsed with no running marker and that no runner took
 *   over before a prune (at most a moment, for a runner watching the lease)
 *   may still be passed by the mark.
 * - **Release**: deletes the lease without a done marker (a cancelled tick),
 *   so the tick may be run again (by a catch-up after a restart).
 * - **Record the run**: once the tick's work has recorded its run, its id is
 *   written into the lease and into a running marker that does not expire;
 *   completing (or releasing) the tick deletes the marker. A marker whose
 *   tick is neither leased nor done tells that the runner died with the run
 *   unfinished, even after its lease lapsed and vanished.
 *
 * @module
 */
import type { RunStatus } from "../records/types.ts";
import { Lease, type LeaseAcquireResult } from "../store/lease.ts";
import type { Clock, Entry, Key, Store } from "../store/types.ts";
import { systemClock } from "../clock.ts";

/** Who holds a tick's lease. */
export interface LeaseHolder {
  /** The runner's id. */
  runner: string;
  /** The tick's nominal time (ms since the epoch). */
  tick: number;
  /** When the lease was first taken. */
  takenAt: number;
  /**
   * The run the tick's work is recording, once it started (see
   * {@linkcode TickLease.recordRun}): a runner that takes the tick over after
   * this one died records that run abandoned.
   */
  runId?: string;
}

/** A completed tick. */
export interface DoneMarker {
  /** The runner that ran it. */
  runner: string;
  /** How the work ended. */
  status: RunStatus;
  /** The run's id, when the work made a run record. */
  runId: string | null;
  /** When it completed. */
  endedAt: number;
}

/** The run a tick's work is recording, kept until the tick completes. */
export interface RunningMarker {
  /** The runner running it. */
  runner: string;
  /** The run's id. */
  runId: string;
  /** When it was written. */
  at: number;
}

/** How far a schedule's done markers were pruned: ticks before `before` count as done. */
export interface PrunedBefore {
  /** Ticks before this time (ms) may have had their markers deleted. */
  before: number;
}

/** The latest completed tick of a schedule (what missed ticks are counted from). */
export interface LastTick {
  /** The tick's nominal time, or when the schedule was first seen (`status: "baseline"`). */
  tick: number;
  /** How it ended; `"baseline"` before any tick completed. */
  status: RunStatus | "baseline";
  /** The runner that wrote it. */
  runner: string;
  /** The run's id, if any. */
  runId: string | null;
  /** When it was written. */
  at: number;
}

/** Options for {@linkcode TickLeases}. */
export interface TickLeasesOptions {
  /** This runner's id, written into the leases it takes. */
  runnerId: string;
  /** How long a lease lives without renewal (default 60 s). */
  leaseMs?: number;
  /** How long done markers are kept (default 7 days). */
  historyMs?: number;
  /**
   * Done markers kept per schedule beyond the prune window (ten lease
   * lifetimes before the latest completed tick; default 100).
   */
  historyCount?: number;
  /** The clock for `takenAt`/`endedAt` (default: the system clock); expiry uses the store's. */
  clock?: Clock;
  /** Key prefix (default `["flowstate", "scheduler"]`). */
  prefix?: Key;
}

/** Why {@linkcode TickLeases.acquire} did not get a lease. */
export type AcquireFailure =
  /** `done` is `null` for a tick before the schedule's `pruned` mark (its marker may be gone). */
  | { ok: false; reason: "done"; done: DoneMarker | null }
  | { ok: false; reason: "leased"; holder: LeaseHolder; expiresAt: number | null };

/** The outcome of {@linkcode TickLeases.acquire}. */
export type AcquireResult = { ok: true; lease: TickLease } | AcquireFailure;

/** The default prefix of the scheduler's keys. */
export const SCHEDULER_PREFIX: Key = ["flowstate", "scheduler"];

/** Default lease lifetime. */
export const DEFAULT_LEASE_MS = 60_000;

/** Default history of done markers. */
export const DEFAULT_HISTORY_MS = 7 * 24 * 3_600_000;

/** Default count of done markers kept per schedule beyond the prune window. */
export const DEFAULT_HISTORY_COUNT = 100;

/** The prune window, in lease lifetimes: markers of ticks this recent are never pruned by count. */
const PRUNE_WINDOW_LEASES = 10;

const MAX_ATTEMPTS = 50;
const PRUNE_BATCH = 200;

/**
 * One attempt at a tick's lease: the lease key must be free (or expired) and
 * the tick not done. Taking a tick, and taking back a lapsed lease in
 * {@linkcode TickLease.renew}, are both this.
 */
function takeLease(
  leases: TickLeases,
  scheduleId: string,
  tick: number,
  holder: LeaseHolder,
  /** The `pruned` mark's version as read (acquire), checked in the same commit. */
  prunedVersion?: string | null,
): Promise<LeaseAcquireResult<LeaseHolder>> {
  const doneKey = leases.doneKey(scheduleId, tick);
  const prunedKey = leases.prunedKey(scheduleId);
  return Lease.acquire(leases.store, leases.leaseKey(scheduleId, tick), holder, {
    ttl: leases.leaseMs,
    clock: leases.clock,
    check: (op) => {
      op.check(doneKey, null);
      if (prunedVersion !== undefined) op.check(prunedKey, prunedVersion);
    },
  });
}

/** Makes a {@linkcode TickLease} (its constructor is private to this module). */
let newTickLease: (
  leases: TickLeases,
  scheduleId: string,
  tick: number,
  lease: Lease<LeaseHolder>,
) => TickLease;

/**
 * A tick's nominal time as the key part used for it (ISO 8601, UTC), so that
 * key order is time order.
 *
 * @example
 * ```ts
 * import { tickKey } from "./lease.ts";
 * import assert from "node:assert/strict";
 *
 * const key = tickKey(Date.UTC(2026, 0, 1, 3));
 * assert.equal(key, "2026-01-01T03:00:00.000Z");
 * ```
 */
export function tickKey(tick: number): string {
  return new Date(tick).toISOString();
}

/**
 * Leases, done markers and the last completed tick of every schedule, in one
 * store: of several runners sharing the store, one runs each tick.
 *
 * @example
 * ```ts
 * import { openStore } from "@flowstate/core";
 * import { TickLeases } from "./lease.ts";
 * import assert from "node:assert/strict";
 *
 * await using store = await openStore({ plugin: "memory" });
 * const a = new TickLeases(store, { runnerId: "a" });
 * const b = new TickLeases(store, { runnerId: "b" });
 * const tick = Date.UTC(2026, 0, 1, 3);
 * const first = await a.acquire("job:backup", tick);
 * const second = await b.acquire("job:backup", tick);
 * assert.ok(first.ok);
 * assert.equal(second.ok, false);
 * await first.lease.complete({ status: "succeeded" });
 * assert.equal(await b.state("job:backup", tick), "done");
 * ```
 */
export class TickLeases {
  /** The store the keys live in. */
  readonly store: Store;
  /** This runner's id. */
  readonly runnerId: string;
  /** Lease lifetime without renewal. */
  readonly leaseMs: number;
  /** How long done markers are kept. */
  readonly historyMs: number;
  /** Done markers kept per schedule beyond the prune window. */
  readonly historyCount: number;
  /** The clock for `takenAt`, `endedAt` and `at` (expiry uses the store's own). */
  readonly clock: Clock;
  readonly #prefix: Key;

  /** Keep leases in `store`. */
  constructor(store: Store, options: TickLeasesOptions) {
    if (typeof options?.runnerId !== "string" || options.runnerId === "") {
      throw new TypeError("Cannot create tick leases: runnerId must be a non-empty string");
    }
    const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    if (!Number.isFinite(leaseMs) || leaseMs <= 0) {
      throw new RangeError(`Cannot create tick leases: leaseMs must be > 0 (got ${leaseMs})`);
    }
    const historyMs = options.historyMs ?? DEFAULT_HISTORY_MS;
    if (!Number.isFinite(historyMs) || historyMs < 0) {
      throw new RangeError(`Cannot create tick leases: historyMs must be >= 0 (got ${historyMs})`);
    }
    this.store = store;
    this.runnerId = options.runnerId;
    this.leaseMs = leaseMs;
    const historyCount = options.historyCount ?? DEFAULT_HISTORY_COUNT;
    if (!Number.isInteger(historyCount) || historyCount < 0) {
      throw new RangeError(
        `Cannot create tick leases: historyCount must be a whole number >= 0 (got ${historyCount})`,
      );
    }
    this.historyMs = historyMs;
    this.historyCount = historyCount;
    this.clock = options.clock ?? systemClock;
    this.#prefix = options.prefix ?? SCHEDULER_PREFIX;
  }

  /** The key of a tick's lease. */
  leaseKey(scheduleId: string, tick: number): Key {
    return [...this.#prefix, "lease", scheduleId, tickKey(tick)];
  }

  /** The key of a tick's done marker. */
  doneKey(scheduleId: string, tick: number): Key {
    return [...this.#prefix, "done", scheduleId, tickKey(tick)];
  }

  /** The key of a schedule's `pruned` mark. */
  prunedKey(scheduleId: string): Key {
    return [...this.#prefix, "pruned", scheduleId];
  }

  /** The key of a tick's running marker. */
  runningKey(scheduleId: string, tick: number): Key {
    return [...this.#prefix, "running", scheduleId, tickKey(tick)];
  }

  /** The running markers of a schedule's ticks, oldest first (at most `limit`, default 100). */
  async running(
    scheduleId: string,
    options: { limit?: number } = {},
  ): Promise<{ tick: number; marker: RunningMarker }[]> {
    const out: { tick: number; marker: RunningMarker }[] = [];
    const entries = this.store.list<RunningMarker>({
      prefix: [...this.#prefix, "running", scheduleId],
      limit: options.limit ?? 100,
    });
    for await (const entry of entries) {
      out.push({ tick: Date.parse(entry.key[entry.key.length - 1]), marker: entry.value });
    }
    return out;
  }

  /** The key of a schedule's last completed tick. */
  lastKey(scheduleId: string): Key {
    return [...this.#prefix, "last", scheduleId];
  }

  /**
   * Take the lease of a tick, unless another runner holds it or the tick
   * already completed.
   */
  async acquire(scheduleId: string, tick: number): Promise<AcquireResult> {
    const doneKey = this.doneKey(scheduleId, tick);
    const holder: LeaseHolder = { runner: this.runnerId, tick, takenAt: this.clock.now() };
    for (let attempt = 1;; attempt++) {
      const pruned = await this.store.get<PrunedBefore>(this.prunedKey(scheduleId));
      if (pruned !== null && tick < pruned.value.before) {
        return { ok: false, reason: "done", done: null };
      }
      const acquired = await takeLease(this, scheduleId, tick, holder, pruned?.version ?? null);
      if (acquired.ok) {
        return { ok: true, lease: newTickLease(this, scheduleId, tick, acquired.lease) };
      }
      const done = await this.store.get<DoneMarker>(doneKey);
      if (done !== null) return { ok: false, reason: "done", done: done.value };
      if (acquired.holder !== null) {
        return {
          ok: false,
          reason: "leased",
          holder: acquired.holder.value,
          expiresAt: acquired.holder.expiresAt,
        };
      }
      // Released or lapsed between the commit and the read: try again.
      if (attempt >= MAX_ATTEMPTS) {
        throw new Error(
          `Cannot take the lease of ${scheduleId} at ${tickKey(tick)}: it kept changing`,
        );
      }
    }
  }

  /** Whether a tick completed. */
  async isDone(scheduleId: string, tick: number): Promise<boolean> {
    return (await this.store.get(this.doneKey(scheduleId, tick))) !== null;
  }

  /** Whether a tick completed (or is before the schedule's `pruned` mark), is held by a runner, or neither. */
  async state(scheduleId: string, tick: number): Promise<"done" | "leased" | "free"> {
    const [lease, done, pruned] = await this.store.getMany([
      this.leaseKey(scheduleId, tick),
      this.doneKey(scheduleId, tick),
      this.prunedKey(scheduleId),
    ]) as [Entry | null, Entry | null, Entry<PrunedBefore> | null];
    if (done !== null || (pruned !== null && tick < pruned.value.before)) return "done";
    return lease !== null ? "leased" : "free";
  }

  /** The ticks of a schedule whose lease some runner holds now, oldest first (at most `limit`, default 100). */
  async leased(scheduleId: string, options: { limit?: number } = {}): Promise<number[]> {
    const ticks: number[] = [];
    const entries = this.store.list({
      prefix: [...this.#prefix, "lease", scheduleId],
      limit: options.limit ?? 100,
    });
    for await (const entry of entries) ticks.push(Date.parse(entry.key[entry.key.length - 1]));
    return ticks;
  }

  /** The latest completed tick of a schedule, or `null` if none was recorded. */
  async last(scheduleId: string): Promise<LastTick | null> {
    return (await this.store.get<LastTick>(this.lastKey(scheduleId)))?.value ?? null;
  }

  /**
   * Record `at` as a schedule's baseline if it has no last tick yet (the
   * first time any runner sees the schedule), so that ticks missed from then
   * on can be counted. Resolves the schedule's last tick.
   */
  async baseline(scheduleId: string, at: number): Promise<LastTick> {
    const key = this.lastKey(scheduleId);
    const value: LastTick = {
      tick: at,
      status: "baseline",
      runner: this.runnerId,
      runId: null,
      at: this.clock.now(),
    };
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const current = await this.store.get<LastTick>(key);
      if (current !== null) return current.value;
      if ((await this.store.set(key, value, { ifVersion: null })).ok) return value;
    }
    throw new Error(`Cannot record the baseline of ${scheduleId}: the key kept changing`);
  }

  /** Done markers of a schedule, oldest first (at most `limit`). */
  async history(
    scheduleId: string,
    options: { limit?: number } = {},
  ): Promise<{ tick: number; done: DoneMarker }[]> {
    const out: { tick: number; done: DoneMarker }[] = [];
    const entries = this.store.list<DoneMarker>({
      prefix: [...this.#prefix, "done", scheduleId],
      limit: options.limit,
    });
    for await (const entry of entries) {
      out.push({ tick: Date.parse(entry.key[entry.key.length - 1]), done: entry.value });
    }
    return out;
  }

  /**
   * Delete the done markers of a schedule that the history no longer keeps,
   * now that `tick` completed: those before `tick - historyMs`, and those
   * before the prune window (`tick` minus ten lease lifetimes) beyond the
   * newest `historyCount` of them; at most a few hundred per call. None at or
   * after a tick that is leased or marked running is deleted (that tick has
   * not completed). The schedule's `pruned` mark moves up past the newest one
   * deleted, in the same commit. Resolves how many were deleted.
   */
  async prune(scheduleId: string, tick: number): Promise<number> {
    const prefix = [...this.#prefix, "done", scheduleId];
    const byAge = tick - this.historyMs;
    const windowStart = Math.max(byAge, tick - PRUNE_WINDOW_LEASES * this.leaseMs);
    // Newest first, from the window's start down: the first `historyCount` are kept (unless
    // older than `historyMs`).
    const stale: Entry[] = [];
    let kept = 0;
    const entries = this.store.list({
      prefix,
      end: [...prefix, tickKey(windowStart)],
      reverse: true,
      limit: this.historyCount + PRUNE_BATCH,
    });
    for await (const entry of entries) {
      const at = Date.parse(entry.key[entry.key.length - 1]);
      if (kept < this.historyCount && !(at < byAge)) kept++;
      else stale.push(entry);
    }
    if (stale.length === 0) return 0;
    const prunedKey = this.prunedKey(scheduleId);
    const pruned = await this.store.get<PrunedBefore>(prunedKey);
    // The mark must not pass a tick that never completed: one leased now, or whose run is
    // marked running (its runner may have died): a runner taking it over must find it not
    // done. Markers after such a tick stay too (a tick after the mark without one is free).
    const open = await this.#oldestOpen(scheduleId, pruned?.value.before ?? -Infinity);
    const deleting = stale.filter((e) => Date.parse(e.key[e.key.length - 1]) < open);
    if (deleting.length === 0) return 0;
    const newest = Math.max(...deleting.map((e) => Date.parse(e.key[e.key.length - 1])));
    const op = this.store.atomic();
    for (const entry of deleting) op.check(entry.key, entry.version).delete(entry.key);
    if (pruned === null || pruned.value.before <= newest) {
      const mark: PrunedBefore = { before: newest + 1 };
      op.check(prunedKey, pruned?.version ?? null).set(prunedKey, mark);
    }
    return (await op.commit()).ok ? deleting.length : 0;
  }

  /**
   * The oldest tick of a schedule from `from` on that is leased or has a running marker
   * (`Infinity` if none). Ticks before `from` already count as done.
   */
  async #oldestOpen(scheduleId: string, from: number): Promise<number> {
    let oldest = Infinity;
    for (const kind of ["lease", "running"]) {
      const prefix = [...this.#prefix, kind, scheduleId];
      const start = Number.isFinite(from) ? { start: [...prefix, tickKey(from)] } : {};
      for await (const entry of this.store.list({ prefix, ...start, limit: 1 })) {
        oldest = Math.min(oldest, Date.parse(entry.key[entry.key.length - 1]));
      }
    }
    return oldest;
  }
}

/**
 * A lease this runner holds on one tick, from {@linkcode TickLeases.acquire}:
 * renew it while the work runs, then `complete()` it, or `release()` it to
 * let the tick be run again.
 *
 * @example
 * ```ts
 * import { openStore } from "@flowstate/core";
 * import { TickLeases } from "./lease.ts";
 * import assert from "node:assert/strict";
 *
 * await using store = await openStore({ plugin: "memory" });
 * const leases = new TickLeases(store, { runnerId: "runner-1", leaseMs: 30_000 });
 * const tick = Date.UTC(2026, 0, 1, 3);
 * const acquired = await leases.acquire("flow:report", tick);
 * assert.ok(acquired.ok);
 * assert.ok(await acquired.lease.renew());
 * await acquired.lease.release(); // cancelled: no done marker
 * assert.equal(await leases.state("flow:report", tick), "free");
 * ```
 */
export class TickLease {
  /** The schedule. */
  readonly scheduleId: string;
  /** The tick's nominal time. */
  readonly tick: number;
  #leases: TickLeases;
  #lease: Lease<LeaseHolder>;
  #settled = false;
  #recordedRun = false;

  static {
    newTickLease = (leases, scheduleId, tick, lease) =>
      new TickLease(leases, scheduleId, tick, lease);
  }

  /** Made by {@linkcode TickLeases.acquire} only. */
  private constructor(
    leases: TickLeases,
    scheduleId: string,
    tick: number,
    lease: Lease<LeaseHolder>,
  ) {
    this.#leases = leases;
    this.scheduleId = scheduleId;
    this.tick = tick;
    this.#lease = lease;
  }

  /** What the lease holds. */
  get holder(): LeaseHolder {
    return this.#lease.value;
  }

  /**
   * Write the id of the tick's run into the lease (renewing it), so that
   * whoever takes the tick over if this runner dies can find the run.
   * Resolves `false` if the lease was lost.
   */
  async recordRun(runId: string): Promise<boolean> {
    if (this.#settled) return false;
    if (!(await this.#lease.renew({ value: { ...this.#lease.value, runId } }))) return false;
    const leases = this.#leases;
    const marker: RunningMarker = { runner: leases.runnerId, runId, at: leases.clock.now() };
    await leases.store.set(leases.runningKey(this.scheduleId, this.tick), marker);
    this.#recordedRun = true;
    return true;
  }

  /** The lease entry's current version. */
  get version(): string {
    return this.#lease.version;
  }

  /**
   * Push the lease's expiry back by `leaseMs`. Resolves `false` when the
   * lease was lost: it lapsed and another runner took the tick, or the tick
   * was completed meanwhile. A lease that lapsed but that nobody took is
   * taken again.
   */
  async renew(): Promise<boolean> {
    if (this.#settled) return false;
    if (await this.#lease.renew()) return true;
    const retaken = await takeLease(this.#leases, this.scheduleId, this.tick, this.holder);
    if (!retaken.ok) return false;
    this.#lease = retaken.lease;
    return true;
  }

  /**
   * The tick's work ended: write its done marker and move the schedule's
   * last tick forward, in one commit, and drop the lease.
   */
  async complete(outcome: { status: RunStatus; runId?: string | null }): Promise<void> {
    if (this.#settled) {
      throw new Error(`Cannot complete ${this.scheduleId} at ${tickKey(this.tick)} twice`);
    }
    this.#settled = true;
    // The commit below deletes the lease itself, if it is still ours.
    this.#lease.abandon();
    const leases = this.#leases;
    const leaseKey = leases.leaseKey(this.scheduleId, this.tick);
    const lastKey = leases.lastKey(this.scheduleId);
    const now = leases.clock.now();
    const runId = outcome.runId ?? null;
    const done: DoneMarker = {
      runner: leases.runnerId,
      status: outcome.status,
      runId,
      endedAt: now,
    };
    const last: LastTick = {
      tick: this.tick,
      status: outcome.status,
      runner: leases.runnerId,
      runId,
      at: now,
    };
    for (let attempt = 1;; attempt++) {
      const [lease, previous] = await leases.store.getMany([leaseKey, lastKey]) as [
        Entry<LeaseHolder> | null,
        Entry<LastTick> | null,
      ];
      const op = leases.store.atomic()
        .check(lastKey, previous?.version ?? null)
        .set(leases.doneKey(this.scheduleId, this.tick), done)
        .delete(leases.runningKey(this.scheduleId, this.tick));
      // A lease that lapsed and was taken by another runner is not ours to delete.
      if (lease !== null && lease.version === this.#lease.version) {
        this.#lease.check(op).delete(leaseKey);
      }
      // `last` only moves forward: ticks of one schedule may complete out of order.
      if (previous === null || previous.value.tick <= this.tick) op.set(lastKey, last);
      if ((await op.commit()).ok) break;
      if (attempt >= MAX_ATTEMPTS) {
        throw new Error(
          `Cannot record ${this.scheduleId} at ${
            tickKey(this.tick)
          } as done: its keys kept changing`,
        );
      }
    }
    await leases.prune(this.scheduleId, this.tick);
  }

  /** Give the tick up without marking it done (its work was cancelled). */
  async release(): Promise<void> {
    if (this.#settled) return;
    this.#settled = true;
    await this.#lease.release();
    // Its run recorded its own end (cancelled). A lease taken over from a
    // dead runner and given back leaves that runner's marker alone.
    if (this.#recordedRun) {
      await this.#leases.store.delete(this.#leases.runningKey(this.scheduleId, this.tick));
    }
  }
}
