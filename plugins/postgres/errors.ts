/**
 * What an error from the `postgres` client means: a PostgreSQL error carries
 * its SQLSTATE as `code`; a connection error, the client's own code.
 *
 * @module
 */
import type { PostgresError } from "postgres";

import { messageOf } from "../../src/errors.ts";

export { messageOf };

/** The SQLSTATE of a PostgreSQL error, or the driver's code of a connection error. */
export function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** An error the server sent (not one of the connection or the client). */
export function isPostgresError(err: unknown): err is PostgresError {
  return err instanceof Error && err.name === "PostgresError";
}

/**
 * SQLSTATE too_many_connections: the server refused a new session because a
 * connection limit is reached (`max_connections` less the reserved slots, or
 * the role's or the database's `CONNECTION LIMIT`). Sent at login, before any
 * statement: nothing of the call that needed the connection was sent.
 */
export const TOO_MANY_CONNECTIONS = "53300";

/**
 * What an operator changes when the server refuses connections for its limit
 * (see {@linkcode TOO_MANY_CONNECTIONS}), for a store of `max` connections
 * that opens `connections` in each process.
 */
export function connectionLimitHint(max: number, connections: number): string {
  return `the server's connection limit is reached (max_connections, or the CONNECTION LIMIT of ` +
    `the role or the database; pg_stat_activity shows who holds them): this store opens up to ` +
    `${connections} connections in each process (max ${max}, plus one for LISTEN): give the ` +
    `store a smaller max (max: 2 opens 3), run fewer processes, or raise the limit`;
}

/**
 * Whether an error that kept a store from opening may go away by itself
 * (`StoreUnavailableError.transient`): anything but an error the server
 * sent (the connection was refused, reset or timed out, the name did not
 * resolve yet), or one the server sends while it cannot take the session
 * now: class 08 (connection exception), 53 (insufficient resources: too
 * many connections, out of memory or disk), 57P01–57P03 (shut down by an
 * administrator, after a crash, starting up or in recovery). A wrong
 * password, a database or role that does not exist, a missing privilege:
 * not transient, trying again changes nothing.
 */
export function isTransientOpenError(err: unknown): boolean {
  if (!isPostgresError(err)) return true;
  const code = codeOf(err) ?? "";
  return code.startsWith("08") || code.startsWith("53") ||
    code === "57P01" || code === "57P02" || code === "57P03";
}

/** Deadlock detected / serialization failure: the whole transaction was rolled back. */
export function isRetryable(err: unknown): boolean {
  const code = codeOf(err);
  return isPostgresError(err) && (code === "40P01" || code === "40001");
}

/**
 * A statement cancelled by a cancel request meant for another one: 57014
 * "due to user request" when the call's own signal did not abort. PostgreSQL
 * cancels whatever the session runs when the request arrives, and
 * postgres.js sends the request for a statement that waited behind another on
 * its connection only once it starts, so a quick statement can end first and
 * the request lands on the next statement of that connection. A cancelled
 * statement wrote nothing: it may be sent again.
 */
export function isStrayCancel(err: unknown, signal: AbortSignal | undefined): boolean {
  return isPostgresError(err) && codeOf(err) === "57014" && signal?.aborted !== true &&
    /due to user request/.test((err as Error).message);
}

/** A `jsonb` cast failed on a row (NUL or lone surrogate in a string, nesting too deep…). */
export function isCastFailure(err: unknown): boolean {
  const code = codeOf(err);
  return isPostgresError(err) && code !== undefined &&
    (code.startsWith("22") || code.startsWith("54"));
}
