/**
 * The pool for transactions: one connection per transaction at a time, with
 * what postgres@3.4.9 does not do by itself when a connection is lost (a
 * failover, a restart, a PgBouncer restart, `pg_terminate_backend`).
 *
 * Each slot has a client of its own with a single connection, made from the
 * store's pooled client's options (see {@linkcode TxPool}), and a
 * transaction reserves it with the client's `reserve()`. What the client
 * gets wrong, and what is done here instead:
 *
 * - A `reserve()` that has to wait for the client to connect is queued in
 *   the client's list of waiting requests *and* made the connecting
 *   connection's first request. When that login fails (the session killed
 *   while it logs in: `57P01`), the reservation is rejected but stays in the
 *   list, and the next connection to log in is handed to that settled
 *   request: nobody gets it, and it never returns to the pool. After one
 *   such login per connection the pool hands out nothing, and every
 *   transaction waits for a connection for good. A reservation queued when a
 *   connection closes is taken from the list as that connection's first
 *   request and dropped once it logged in: never answered. So a client is
 *   only asked to reserve its connection when that connection is known to be
 *   open (the client's `reserve()` then answers at once); otherwise one
 *   plain statement (`SELECT 1`, which the client never loses) opens it
 *   first ({@linkcode TxPool.reserve}), within a bound: a client that does
 *   not answer within it is replaced by a new one.
 * - After a connection error the client is not to be trusted with the next
 *   statement: it keeps a dead connection among the usable ones until its
 *   socket closes (a statement given to it in between never settles), and
 *   it can fail the first statement of its next session with the error the
 *   server sent as it ended the last one. So a slot whose connection failed
 *   gets a new client, unless that client said its connection closed since
 *   (`Slot.failed`); the old one is ended.
 * - A client fetches the array types on each login; a session killed during
 *   that fetch rejects a promise nobody handles, which ends the process.
 *   No client of a store fetches them: the slots' clients share the pooled
 *   client's, built in (see `client.ts`).
 * - A statement sent on a reserved connection that has closed crashes the
 *   process (the client writes to its closed socket from a timer), and the
 *   statements a reserved connection holds back (pipelined behind one that
 *   is described first) never settle once it closes; releasing a closed
 *   connection puts it back among the open ones. So a {@linkcode Reservation}
 *   knows when its connection is lost (a statement failed with a connection
 *   error, or its slot's client said its connection closed): then every
 *   statement of it still waiting rejects, no other is sent, and the
 *   connection is not released to the client (the client already took it
 *   back).
 *
 * Waiting for a slot (every slot reserved by a transaction of this process)
 * is not bounded: it lasts as long as those transactions' statements,
 * however long (an index build, a big query).
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

/**
 * Whether a failed opening statement may be sent again at once: the session
 * was ended by an administrator (`57P01`: `pg_terminate_backend`, a pooler
 * restarting) or closed under it, while the server itself answers. A server
 * that refuses connections, or does not answer, fails the reservation.
 */
function isSessionKilled(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return (isPostgresError(err) && code === "57P01") || code === "CONNECTION_CLOSED";
}

/** Attempts at opening a slot's connection for one reservation (see `isSessionKilled`). */
const OPEN_ATTEMPTS = 3;

/** What this module uses of the client's query (a promise, sent by its handler). */
interface ClientQuery {
  handler: ((q: ClientQuery) => unknown) & { debug?: unknown };
  reject(err: Error): void;
}

/** A client with one connection, made for a slot (see {@linkcode TxPool}). */
export type MakeClient = (onclose: () => void) => Sql;

/** One connection for transactions: its client, and what is known of the connection. */
class Slot {
  /** The client (one connection). */
  client: Sql;
  /** A client replaced while a request of it was still waiting: ended once that settles. */
  retired: Sql | undefined;
  /**
   * The connection is open and not reserved (or reserved by `reservation`):
   * the client's `reserve()` answers at once. Cleared when it closes, or a
   * reservation on it was lost.
   */
  open = false;
  /** The reservation on this slot's connection, while there is one. */
  reservation: Reservation | undefined;
  /** How many times the client said its connection closed (or was replaced). */
  closes = 0;
  /** Ended with the store: no client is made any more. */
  #ended = false;
  #make: MakeClient;

  constructor(make: MakeClient) {
    this.#make = make;
    this.client = this.#newClient();
  }

  #newClient(): Sql {
    const client: Sql = this.#make(() => this.#closed(client));
    return client;
  }

  /** The client said its connection closed: a reservation on it is lost. */
  #closed(client: Sql): void {
    if (client !== this.client) return;
    this.closes++;
    this.open = false;
    this.reservation?.lose(
      Object.assign(new Error("the connection to the server closed"), {
        code: "CONNECTION_CLOSED",
      }),
    );
  }

  /**
   * A statement on the connection failed with a connection error, the
   * client having said its connection closed `closes` times before it was
   * sent. Unless it said so once more since, the client is not used again:
   * it moves a connection to its closed ones only when its socket closes,
   * some time after a socket error, and a statement it is given in between
   * goes to the dead socket and never settles (it rejects only what was
   * sent before the error); and an error the server sent as its session
   * ended can stay with the client and fail the first statement of its
   * next session (which is open and well). A new client has neither.
   */
  failed(closes: number): void {
    if (closes === this.closes) this.replace();
  }

  /**
   * A new client for this slot. The current one is ended at once, or once
   * `waiting` (a request of it that did not settle in time) settles: ending
   * a client while it connects again could leave a session open behind it.
   * One replaced before that is ended at once.
   */
  replace(waiting?: Promise<unknown>): void {
    if (this.#ended) return;
    const old = this.client;
    this.client = this.#newClient();
    this.closes++;
    this.open = false;
    const end = () => {
      if (this.retired === old) this.retired = undefined;
      void old.end({ timeout: 0 }).catch(() => {});
    };
    if (waiting === undefined) return end();
    if (this.retired !== undefined) void this.retired.end({ timeout: 0 }).catch(() => {});
    this.retired = old;
    waiting.then(end, end);
  }

  /** End the clients (at most `timeout` seconds for the statements on their way). */
  async end(timeout: number): Promise<void> {
    this.#ended = true;
    await Promise.all([
      this.client.end({ timeout }),
      this.retired?.end({ timeout: 0 }),
    ]);
  }
}

/**
 * A connection reserved for one transaction; {@linkcode Reservation.release}
 * gives it back (once).
 */
export class Reservation implements TxSql {
  #sql: Sql & { release(): void };
  #slot: Slot;
  #pool: TxPool;
  /** Set once the connection is lost: every statement waiting rejects with it. */
  #lost: Error | undefined;
  #lostSignal = Promise.withResolvers<never>();
  #released = false;
  /** The slot's `closes` when its connection was reserved. */
  #closes: number;

  /** Wrap the reserved connection of `slot`, a slot of `pool`. */
  constructor(sql: Sql & { release(): void }, slot: Slot, pool: TxPool) {
    this.#sql = sql;
    this.#slot = slot;
    this.#closes = slot.closes;
    this.#pool = pool;
    this.#lostSignal.promise.catch(() => {});
    slot.reservation = this;
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
    const query = this.#sql.unsafe(text, params, options as never);
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

  /** The connection is gone: every statement waiting rejects with `err`, none is sent. */
  lose(err: Error): void {
    if (this.#lost !== undefined) return;
    this.#lost = err;
    // Not known open any more: the next reservation of the slot opens it first.
    this.#slot.open = false;
    this.#slot.failed(this.#closes);
    this.#lostSignal.reject(err);
  }

  /** Give the connection back (unless it was lost: the client took it back). */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    if (this.#slot.reservation === this) this.#slot.reservation = undefined;
    if (this.#lost === undefined) this.#sql.release();
    this.#pool.freeSlot(this.#slot);
  }
}

/**
 * The connections for transactions: `slots` clients of one connection each
 * (see the module's documentation), reserved one transaction at a time.
 */
export class TxPool {
  /** Milliseconds a reservation waits for its slot's connection to open. */
  readonly boundMs: number;
  #make: MakeClient;
  /** Slots made so far (made when first needed: after the store's pooled client logged in). */
  #slots: Slot[] = [];
  #size: number;
  #idle: Slot[] = [];
  #waiting: { resolve(slot: Slot): void; reject(err: Error): void }[] = [];
  #closed: Error | undefined;

  /**
   * A pool of `slots` connections, each a client made by `make` (with one
   * connection, that calls the `onclose` it is given when that connection
   * closes).
   */
  constructor(make: MakeClient, slots: number, boundMs: number) {
    this.#make = make;
    this.#size = slots;
    this.boundMs = boundMs;
  }

  /**
   * A connection for one transaction: waits for a slot (one not reserved by
   * a transaction of this process), then at most `boundMs` for its
   * connection to open (a killed session's login is tried again, up to
   * `OPEN_ATTEMPTS` times), else rejects with a {@linkcode ReserveTimeoutError}
   * (or the connection's error).
   */
  async reserve(): Promise<Reservation> {
    const slot = await this.#slot();
    try {
      return await this.#reserveOn(slot);
    } catch (err) {
      this.freeSlot(slot);
      throw err;
    }
  }

  async #reserveOn(slot: Slot): Promise<Reservation> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<"expired">((resolve) => {
      timer = setTimeout(() => resolve("expired"), this.boundMs);
    });
    try {
      for (let attempt = 1; !slot.open; attempt++) {
        if (this.#closed !== undefined) throw this.#closed;
        // Opened by a plain statement: the client never loses one (see the module's doc).
        const closes = slot.closes;
        const opening = slot.client.unsafe("SELECT 1").then(() => true);
        const opened = await Promise.race([opening, expired]).catch((err) => err as Error);
        if (opened === "expired") {
          slot.replace(opening);
          throw new ReserveTimeoutError(this.boundMs);
        }
        if (opened !== true) {
          if (isConnectionError(opened)) slot.failed(closes);
          if (attempt >= OPEN_ATTEMPTS || !isSessionKilled(opened)) throw opened;
          continue;
        }
        slot.open = true;
      }
      // The connection is open and idle: the client hands it over at once.
      const asked = slot.client.reserve();
      const got = await Promise.race([asked, expired]);
      if (got === "expired") {
        slot.replace(asked);
        throw new ReserveTimeoutError(this.boundMs);
      }
      if (this.#closed !== undefined) {
        got.release();
        throw this.#closed;
      }
      return new Reservation(got as Sql & { release(): void }, slot, this);
    } finally {
      clearTimeout(timer);
    }
  }

  #slot(): Promise<Slot> {
    if (this.#closed !== undefined) return Promise.reject(this.#closed);
    const idle = this.#idle.pop();
    if (idle !== undefined) return Promise.resolve(idle);
    if (this.#slots.length < this.#size) {
      const slot = new Slot(this.#make);
      this.#slots.push(slot);
      return Promise.resolve(slot);
    }
    const { promise, resolve, reject } = Promise.withResolvers<Slot>();
    this.#waiting.push({ resolve, reject });
    return promise;
  }

  /** A reservation of `slot` ended: the slot goes to the next one waiting. */
  freeSlot(slot: Slot): void {
    const next = this.#waiting.shift();
    if (next !== undefined) next.resolve(slot);
    else this.#idle.push(slot);
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

  /** End every slot's client (at most `timeout` seconds for the statements on their way). */
  async end(timeout: number): Promise<void> {
    await Promise.all(this.#slots.map((slot) => slot.end(timeout)));
  }
}

/** Runs transactions (what index and search builds take: see `TxPool.transaction`). */
export interface Transactions {
  /** Run `fn` in a transaction: committed when it resolves, rolled back when it throws. */
  begin<T>(fn: (tx: TxSql) => Promise<T>): Promise<T>;
}
