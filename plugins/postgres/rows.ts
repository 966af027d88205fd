/**
 * Rows of a listing as the postgres driver reads them: the key comes back as
 * the `escape` text of its bytes after the listing's prefix
 * (`encode(substring(key from n + 1), 'escape')`), and each row as an array
 * (`.values()`), not as a `bytea` the client hex-decodes into a `Buffer` and
 * a row object.
 *
 * Why: a key is ASCII in nearly every store (`["orders", "00001234"]`), and
 * the escape text of its encoding is then the elements themselves with
 * `\000` after each. Splitting that text costs a fraction of what the client
 * spends on a `bytea` (a hex string, then a `Buffer`, then our decoder), and
 * it is half as many bytes on the wire. Any other byte (a non-ASCII
 * character, an escaped NUL, a backslash) puts a backslash in an element,
 * and such a key takes the exact path: the escape text back to bytes, then
 * `decodeKey`.
 *
 * @module
 */
import type { RawEntry } from "../../src/store/driver.ts";
import { decodeKey, encodeKey } from "../../src/store/keys.ts";
import type { Key } from "../../src/store/types.ts";

/** A listing's row: the key's escape text after the prefix, the value, version and expiry. */
export type EscapedRow = [key: string, value: string, version: string, expiresAt: number | null];

/** The terminator of a key element, in escape text. */
const TERMINATOR = "\\000";

/**
 * The bytes of PostgreSQL `escape` text (`encode(b, 'escape')`): `\\` is a
 * backslash, `\ooo` an octal byte, any other character its own byte.
 * Throws on text that is not escape output (never, for text the server sent).
 */
export function unescapeBytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  let o = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c) {
      if (text.charCodeAt(i + 1) === 0x5c) {
        out[o++] = 0x5c;
        i++;
        continue;
      }
      const octal = text.slice(i + 1, i + 4);
      if (!/^[0-3][0-7]{2}$/.test(octal)) {
        throw new TypeError(`not PostgreSQL escape text: ${JSON.stringify(text)}`);
      }
      out[o++] = parseInt(octal, 8);
      i += 3;
    } else if (c < 0x80) {
      out[o++] = c;
    } else {
      throw new TypeError(`not PostgreSQL escape text: ${JSON.stringify(text)}`);
    }
  }
  return out.slice(0, o);
}

/**
 * How a listing under `prefix` reads its rows: the SQL expression of the key
 * column (escape text of the bytes after the prefix's), the entry of a row,
 * and a row's full key bytes (for the next page's bound).
 */
export interface EscapedKeys {
  /**
   * The select list: the key's escape text (aliased `k`, never `key`: `ORDER BY key` must
   * stay the column), the value, version and expiry.
   */
  columns: string;
  /** The entry of a row. */
  entry(row: EscapedRow): RawEntry;
  /** The full encoded key of a row. */
  key(row: EscapedRow): Uint8Array;
}

/**
 * The reader of a listing's rows under `prefix` (`[]` or absent: the whole
 * key); `table` qualifies the columns (`"e."`, or `""`).
 */
export function escapedKeys(prefix: Key | undefined, table = ""): EscapedKeys {
  const base = prefix === undefined ? [] : [...prefix]; // the caller's array may change
  const baseBytes = encodeKey(base);
  const n = baseBytes.length;
  const bytesOf = (text: string): Uint8Array => {
    const tail = unescapeBytes(text);
    if (n === 0) return tail;
    const out = new Uint8Array(n + tail.length);
    out.set(baseBytes);
    out.set(tail, n);
    return out;
  };
  const keyOf = (text: string): Key => {
    // Elements end with \000; a backslash anywhere else (a non-ASCII byte, an escaped NUL or
    // a backslash) sends the key down the exact path. Every \000 in text without another
    // backslash is a terminator, as every backslash of escape text starts an escape.
    const key = base.slice();
    let start = 0;
    for (let end = text.indexOf(TERMINATOR); end >= 0; end = text.indexOf(TERMINATOR, start)) {
      const element = text.slice(start, end);
      if (element.includes("\\")) return decodeKey(bytesOf(text));
      key.push(element);
      start = end + TERMINATOR.length;
    }
    return start === text.length ? key : decodeKey(bytesOf(text));
  };
  return {
    columns: `${
      n === 0
        ? `encode(${table}key, 'escape')`
        : `encode(substring(${table}key from ${n + 1}), 'escape')`
    } AS k, ${table}value, ${table}version, ${table}expires_at`,
    entry: (row) => ({ key: keyOf(row[0]), value: row[1], version: row[2], expiresAt: row[3] }),
    key: (row) => bytesOf(row[0]),
  };
}
