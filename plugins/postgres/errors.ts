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

/** Deadlock detected / serialization failure: the whole transaction was rolled back. */
export function isRetryable(err: unknown): boolean {
  const code = codeOf(err);
  return isPostgresError(err) && (code === "40P01" || code === "40001");
}

/** A `jsonb` cast failed on a row (NUL or lone surrogate in a string, nesting too deep…). */
export function isCastFailure(err: unknown): boolean {
  const code = codeOf(err);
  return isPostgresError(err) && code !== undefined &&
    (code.startsWith("22") || code.startsWith("54"));
}
