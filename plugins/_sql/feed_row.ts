/**
 * A change feed entry as the SQL backends keep it in their feed tables (one
 * row per change: sqlite's `flowstate_feed`, postgres's `<table>_feed`), and
 * the {@linkcode Change} it holds.
 *
 * @module
 */
import type { Change, JsonValue, Key } from "../../src/store/types.ts";
import { decodeKey, encodeKey } from "../../src/store/keys.ts";
import { parseJson } from "../../src/_json.ts";

/** A row of the feed table's columns (`seq, at, key, op, value, version, previous_version, expires_at, by`), as an array. */
export type FeedRow = [
  number,
  number,
  Uint8Array,
  "set" | "delete",
  string | null,
  string | null,
  string | null,
  number | null,
  string,
];

/** The change a row holds, with the same fields as the core's entries (no `value` for a delete). */
export function changeOf(row: FeedRow): Change {
  const [seq, at, key, op, value, version, previousVersion, expiresAt, by] = row;
  if (op !== "set" && op !== "delete") {
    // The tables' own check (sqlite's) or the writers' literals (postgres's) keep this from
    // happening; a row written by hand must not read as a delete.
    throw new RangeError(
      `Cannot read change #${seq}: its op is ${JSON.stringify(op)}, not "set" or "delete"; ` +
        `the change feed's table was written outside Flowstate`,
    );
  }
  const decoded = decodeKey(key);
  const actor = parseJson(by);
  return op === "set"
    ? {
      seq,
      at,
      key: decoded,
      op,
      value: parseJson(value!) as JsonValue,
      version,
      previousVersion,
      expiresAt,
      by: actor,
    }
    : { seq, at, key: decoded, op, version: null, previousVersion, expiresAt: null, by: actor };
}

/** The row of a change (the inverse of {@linkcode changeOf}), to copy a feed into a table. */
export function rowOf(c: Change): FeedRow {
  return c.op === "set"
    ? [
      c.seq,
      c.at,
      encodeKey(c.key as Key),
      "set",
      JSON.stringify(c.value),
      c.version,
      c.previousVersion,
      c.expiresAt,
      JSON.stringify(c.by),
    ]
    : [
      c.seq,
      c.at,
      encodeKey(c.key as Key),
      "delete",
      null,
      c.version,
      c.previousVersion,
      null,
      JSON.stringify(c.by),
    ];
}

/** The core's rows of a feed in the key space (Flowstate 0.3), as this module needs them. */
export interface KeySpaceFeed {
  /** The head: the last sequence number, and when the first entry was written. */
  head: { seq: number; since?: number };
  /** The kept entries, in sequence order. */
  entries: Iterable<Change>;
}
