/**
 * The pool for transactions: connections reserved one transaction at a time,
 * with what postgres@3.4.9 does not do by itself when a connection is lost.
 *
 * - A `reserve()` asked for while the pool reconnects can go unanswered for
 *   good: the pool hands a waiting reservation to a connection that
 *   reconnects (its `onclose` takes the next waiting request as the
 *   connection's first one), and that connection, once logged in, drops a
 *   first request that is a reservation (it expects to find it still waiting
 *   in the pool's queue). So the wait for a connection is bounded here
 *   ({@linkcode TxPool.reserve}): at most `boundMs` once the pool has a free
 *   connection slot; a connection that comes after that is released at once.
 *   Waiting for a slot (every connection reserved by a transaction of this
 *   process) is not bounded: it lasts as long as those transactions'
 *   statements, however long (an index build, a big query).
 * - A statement sent on a reserved connection that has closed crashes the
 *   process (the client writes to its closed socket from a timer), and the
 *   statements a reserved connection holds back (pipelined behind one that
 *   is described first) never settle once it closes; releasing a closed
 *   connection puts it back among the open ones. So a {@linkcode Reservation}
 *   knows when its connection is lost (a statement failed with a connection
 *   error, or the pool said that connection closed): then every statement of
 *   it still waiting rejects, no other is sent, and it is not released (the
 *   pool already took the connection back).
 *
 * @module
 */
import type { Sql } from "postgres";
import { isPostgresError } from "./errors.ts";

/** The statements of a transaction's connection (all the driver sends on one). */
export interface TxSql {
  /** One statement (see the client's `unsafe`). */
  unsafe: Sql["unsafe"];
}

/** Why a reservation gave up: no connection within the bound (see {@linkcode TxPool.reserve}). */
export class ReserveTimeoutError extends Error {
  override name = "ReserveTimeoutError";
  /** The bound, in milliseconds. */
  readonly ms: number;
  /** Make the error. */
  constructor(ms: number) {
    super(`no connection within ${ms / 1000} s`);
    this.ms = ms;
  }
}

/**
 * Whether an error says the connection itself failed (closed, reset, refused,
 * timed out, ended by the server), not the statement: the client's
 * connection errors carry a code of their own (`CONNECTION_CLOSED`,
 * `CONNECT_TIMEOUT`…), the socket's an `E…` code; the server ends a session
 * with class 57P (`pg_terminate_backend`, a shutdown).
 */
export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return false;
  if (isPostgresError(err)) return code.startsWith("57P");
  return code.startsWith("CONNECTION_") || code === "CONNECT_TIMEOUT" || /^E[A-Z]+$/.test(code);
}

/** The client's connection as its `onexecute` hook sees it. */
interface ClientConnection {
  id: number;
}

/** What this module uses of the client's query (a promise, sent by its handler). */
interface ClientQuery {
  handler: ((q: ClientQuery) => unknown) & { debug?: unknown };
  reject(err: Error): void;
}

/**
 * A connection reserved for one transaction; {@linkcode Reservation.release}
 * gives it back (once).
 */
export class Reservation implements TxSql {
  #sql: Sql & { release(): void };
  #pool: TxPool;
  /** The client's id of the connection, once a statement was sent on it. */
  #connectionId: number | undefined;
  /** Set once the connection is lost: every statement waiting rejects with it. */
  #lost: Error | undefined;
  #lostSignal = Promise.withResolvers<never>();
  #released = false;

  /** Wrap a reserved connection of `pool`. */
  constructor(sql: Sql & { release(): void }, pool: TxPool) {
    this.#sql = sql;
    this.#pool = pool;
    this.#lostSignal.promise.catch(() => {});
  }

  /** Whether the connection was lost (nothing more is sent on it). */
  get lost(): boolean {
    return this.#lost !== undefined;
  }

  /**
   * One statement on this connection: as the client's `unsafe`, except that
   * it rejects at once when the connection was lost (it is not sent), and
   * when the connection is lost while it waits.
   */
  unsafe: Sql["unsafe"] = ((text: string, params?: never[], options?: object) => {
    // The first statement sent tells which connection this is (the pool's `onclose` names it).
    const hooked = this.#connectionId === undefined
      ? {
        ...options,
        onexecute: (c: ClientConnection) => {
          this.#bind(c.id);
          return true;
        },
      }
      : options;
    const query = this.#sql.unsafe(text, params, hooked as never);
    // The client sends a query when it is first awaited (then, catch, finally, execute), through
    // its handler: not once the connection is lost (the client would write to the closed socket).
    const client = query as unknown as ClientQuery;
    const send = client.handler;
    client.handler = Object.assign((q: ClientQuery) => {
      if (this.#lost !== undefined) return q.reject(this.#lost);
      // Its answer, read without sending it again (the intrinsic then, not the client's).
      Promise.prototype.then.call(q, undefined, (err) => {
        if (isConnectionError(err)) this.lose(err as Error);
      });
      return send(q);
    }, { debug: send.debug });
    // A statement held back behind another (pipelined) never settles once the connection is lost.
    const then = query.then as (this: unknown) => Promise<unknown>;
    query.then =
      ((onFulfilled?: (v: unknown) => unknown, onRejected?: (e: unknown) => unknown) =>
        Promise.race([then.call(query), this.#lostSignal.promise]).then(
          onFulfilled,
          onRejected,
        )) as typeof query.then;
    return query;
  }) as Sql["unsafe"];

  #bind(id: number): void {
    if (this.#connectionId !== undefined || this.#released) return;
    this.#connectionId = id;
    this.#pool.bound(id, this);
  }

  /** The connection is gone: every statement waiting rejects with `err`, none is sent. */
  lose(err: Error): void {
    if (this.#lost !== undefined) return;
    this.#lost = err;
    this.#lostSignal.reject(err);
  }

  /** Give the connection back to the pool (unless it was lost: the pool took it back). */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    if (this.#connectionId !== undefined) this.#pool.unbound(this.#connectionId, this);
    if (this.#lost === undefined) this.#sql.release();
    this.#pool.freeSlot();
  }
}

/**
 * The connections for transactions, reserved with a bounded wait (see the
 * module's documentation).
 */
export class TxPool {
  /** The client's pool. */
  readonly sql: Sql;
  /** Milliseconds a reservation waits for a connection once it has a slot. */
  readonly boundMs: number;
  #free: number;
  #waiting: { resolve(): void; reject(err: Error): void }[] = [];
  #bound = new Map<number, Reservation>();
  #closed: Error | undefined;

  /**
   * A pool over `sql` (a client made with `max: slots`, whose `onclose`
   * option calls {@linkcode TxPool.closed}).
   */
  constructor(sql: Sql, slots: number, boundMs: number) {
    this.sql = sql;
    this.#free = slots;
    this.boundMs = boundMs;
  }

  /**
   * A connection for one transaction: waits for a slot (one of the pool's
   * connections not reserved here), then at most `boundMs` for the pool to
   * hand one over, else rejects with a {@linkcode ReserveTimeoutError}.
   */
  async reserve(): Promise<Reservation> {
    await this.#slot();
    const asked = this.sql.reserve();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<"expired">((resolve) => {
      timer = setTimeout(() => resolve("expired"), this.boundMs);
    });
    try {
      const got = await Promise.race([asked, expired]);
      if (got === "expired") {
        // Answered late (if ever): given back at once.
        asked.then((c) => c.release(), () => {});
        throw new ReserveTimeoutError(this.boundMs);
      }
      if (this.#closed !== undefined) {
        got.release();
        throw this.#closed;
      }
      return new Reservation(got as Sql & { release(): void }, this);
    } catch (err) {
      this.freeSlot();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  #slot(): Promise<void> {
    if (this.#closed !== undefined) return Promise.reject(this.#closed);
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve();
    }
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#waiting.push({ resolve, reject });
    return promise;
  }

  /** A reservation ended: its slot goes to the next one waiting. */
  freeSlot(): void {
    const next = this.#waiting.shift();
    if (next !== undefined) next.resolve();
    else this.#free++;
  }

  /** A reservation learned its connection's id. */
  bound(id: number, reservation: Reservation): void {
    this.#bound.set(id, reservation);
  }

  /** A reservation ended. */
  unbound(id: number, reservation: Reservation): void {
    if (this.#bound.get(id) === reservation) this.#bound.delete(id);
  }

  /** The client closed connection `id` (its `onclose` option): the reservation on it is lost. */
  closed(id: number): void {
    const reservation = this.#bound.get(id);
    if (reservation === undefined) return;
    const err = Object.assign(new Error(`the connection to the server closed`), {
      code: "CONNECTION_CLOSED",
    });
    reservation.lose(err);
  }

  /**
   * Run `fn` in a transaction on a connection of its own: `BEGIN`, `fn`,
   * `COMMIT`; `ROLLBACK` when `fn` (or the commit) throws, unless the
   * connection was lost (the server rolled back).
   */
  async transaction<T>(fn: (tx: TxSql) => Promise<T>): Promise<T> {
    const tx = await this.reserve();
    try {
      await tx.unsafe("BEGIN");
      const result = await fn(tx);
      await tx.unsafe("COMMIT");
      return result;
    } catch (err) {
      if (!tx.lost) await tx.unsafe("ROLLBACK").catch(() => {});
      throw err;
    } finally {
      tx.release();
    }
  }

  /** Closing: reservations waiting for a slot, and any asked for from now on, reject with `err`. */
  close(err: Error): void {
    this.#closed ??= err;
    for (const waiter of this.#waiting.splice(0)) waiter.reject(err);
  }
}

/** Runs transactions (what index and search builds take: see `TxPool.transaction`). */
export interface Transactions {
  /** Run `fn` in a transaction: committed when it resolves, rolled back when it throws. */
  begin<T>(fn: (tx: TxSql) => Promise<T>): Promise<T>;
}
