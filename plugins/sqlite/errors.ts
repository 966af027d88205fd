/**
 * What a SQLite error means: `node:sqlite` reports only a message, so these
 * read the message (SQLite's own wording and result code names).
 *
 * @module
 */

import { messageOf } from "../../src/errors.ts";

export { messageOf };

/** Another connection held the lock for longer than the busy timeout. */
export function isBusy(err: unknown): boolean {
  return /database is locked|SQLITE_BUSY/i.test(messageOf(err));
}

/** The file is not a database, or is damaged. */
export function isCorrupt(err: unknown): boolean {
  return /file is not a database|database disk image is malformed|SQLITE_(NOTADB|CORRUPT)/i
    .test(messageOf(err));
}
