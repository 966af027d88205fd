/**
 * The jsonfile document: one entry per line, sorted by key, under a format
 * header, so that a person can read and diff it:
 *
 * ```json
 * {"format": "flowstate.jsonfile", "version": 1, "entries": [
 * {"key": ["flow","counter","count"], "value": 3, "version": "…", "expiresAt": null}
 * ]}
 * ```
 *
 * `render()` writes it (reusing the bytes of the last document it wrote for
 * lines that did not change), `parseDocument()` reads it, or says where and
 * why it is not one.
 *
 * @module
 */
import type { RawEntry } from "../../src/store/driver.ts";
import { compareKeys } from "../../src/store/keys.ts";
import type { Key } from "../../src/store/types.ts";
import { messageOf, type StoreCorruptReason } from "../../src/errors.ts";
import { parseJson } from "../../src/_json.ts";

const FORMAT = "flowstate.jsonfile";
const FORMAT_VERSION = 1;
const HEADER = `{"format": "${FORMAT}", "version": ${FORMAT_VERSION}, "entries": [`;

const encoder = new TextEncoder();

/** One entry held in memory: the raw entry plus its line of the document, as UTF-8. */
export interface Rec {
  id: string;
  raw: RawEntry;
  line: Uint8Array;
}

/**
 * The store in memory. `sorted` is replaced, never mutated, so a listing in
 * progress keeps its snapshot; `entries` is the driver's own index by id,
 * updated in place when a write lands (every lookup in it is synchronous).
 */
export interface State {
  entries: Map<string, Rec>;
  sorted: Rec[];
  /** The document this driver wrote for `sorted`; `null` when `sorted` was read from the file. */
  doc: Rendered | null;
}

/** A rendered document. */
export interface Rendered {
  bytes: Uint8Array;
  /** The whole buffer `bytes` is a view of, to reuse once this document is replaced. */
  buffer: Uint8Array | null;
}

/** Why a file is not a readable store document. */
export interface Corruption {
  reason: string;
  cause: unknown;
  /** Damaged unless set: a newer Flowstate's document, or not a store document at all. */
  kind?: StoreCorruptReason;
}

/** A store with no entries. */
export function emptyState(): State {
  return { entries: new Map(), sorted: [], doc: null };
}

/** The record of an entry, with its line of the document. */
export function makeRec(key: Key, value: string, version: string, expiresAt: number | null): Rec {
  const id = JSON.stringify(key);
  return {
    id,
    raw: { key, value, version, expiresAt },
    line: encoder.encode(
      `{"key": ${id}, "value": ${value}, "version": ${
        JSON.stringify(version)
      }, "expiresAt": ${expiresAt}}`,
    ),
  };
}

const EMPTY_DOCUMENT = encoder.encode(`${HEADER}]}\n`);
const DOCUMENT_START = encoder.encode(`${HEADER}\n`);
const DOCUMENT_END = encoder.encode("\n]}\n");
const LINE_SEPARATOR = encoder.encode(",\n");

/**
 * The document for `sorted`: the entries' cached lines between header and
 * footer. A run of lines that were already neighbours in `base` (the document
 * written for `baseSorted`) is copied from it in one piece, separators
 * included, so a small change to a large store costs a few copies rather than
 * one per line. `scratch` is reused for the bytes when it is big enough.
 */
export function render(
  sorted: readonly Rec[],
  baseSorted: readonly Rec[],
  base: Rendered | null,
  scratch: Uint8Array | undefined,
): Rendered {
  const n = sorted.length;
  if (n === 0) return { bytes: EMPTY_DOCUMENT, buffer: null };
  const separator = LINE_SEPARATOR.length;
  let size = DOCUMENT_START.length + DOCUMENT_END.length + separator * (n - 1);
  for (let i = 0; i < n; i++) size += sorted[i].line.length;
  // Room to grow a little, so that the buffer can be reused by the write after the next one.
  const buffer = scratch !== undefined && scratch.length >= size
    ? scratch
    : new Uint8Array(size + (size >> 4));
  const out = buffer.subarray(0, size);
  out.set(DOCUMENT_START);
  let at = DOCUMENT_START.length;
  const old = base === null ? [] : baseSorted;
  let j = 0;
  let from = DOCUMENT_START.length; // where old[j]'s line starts in base
  for (let i = 0; i < n;) {
    const rec = sorted[i];
    while (j < old.length && old[j] !== rec && compareKeys(old[j].raw.key, rec.raw.key) < 0) {
      from += old[j++].line.length + separator;
    }
    if (j < old.length && old[j] === rec) {
      let end = from + rec.line.length;
      for (i++, j++; i < n && j < old.length && old[j] === sorted[i]; i++, j++) {
        end += separator + old[j].line.length;
      }
      out.set(base!.bytes.subarray(from, end), at);
      at += end - from;
      from = end + separator;
    } else {
      out.set(rec.line, at);
      at += rec.line.length;
      i++;
    }
    if (i < n) {
      out.set(LINE_SEPARATOR, at);
      at += separator;
    }
  }
  out.set(DOCUMENT_END, at);
  return { bytes: out, buffer };
}

function lineColumn(text: string, position: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < position && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: position - lineStart + 1 };
}

/**
 * Find where JSON text first goes wrong, because V8's messages do not always
 * give a position. Returns the offset and what was expected there.
 */
function findJsonError(text: string): { position: number; expected: string } | undefined {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  const fail = (expected: string): never => {
    throw { position: i, expected };
  };
  const number = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const string = (): void => {
    i++; // the opening quote
    for (;;) {
      if (i >= text.length) fail("a closing quote");
      const c = text.charCodeAt(i);
      if (c === 0x22) break;
      if (c < 0x20) fail("no raw control character in a string");
      if (c === 0x5c) {
        i++;
        if (text[i] === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail("4 hex digits after \\u");
          i += 4;
        } else if (!'"\\/bfnrt'.includes(text[i] ?? "x")) fail("a valid escape after a backslash");
      }
      i++;
    }
    i++;
  };
  const value = (depth: number): void => {
    if (depth > 10_000) throw undefined;
    ws();
    const c = text[i];
    if (c === "{" || c === "[") {
      const close = c === "{" ? "}" : "]";
      i++;
      ws();
      if (text[i] === close) {
        i++;
        return;
      }
      for (;;) {
        if (c === "{") {
          ws();
          if (text[i] !== '"') fail("a property name in double quotes");
          string();
          ws();
          if (text[i] !== ":") fail("':' after a property name");
          i++;
        }
        value(depth + 1);
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === close) {
          i++;
          return;
        }
        fail(`',' or '${close}'`);
      }
    }
    if (c === '"') return string();
    for (const word of ["true", "false", "null"]) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return;
      }
    }
    number.lastIndex = i;
    if (number.test(text)) {
      i = number.lastIndex;
      return;
    }
    fail("a value");
  };
  try {
    value(0);
    ws();
    if (i < text.length) fail("the end of the text");
    return undefined;
  } catch (err) {
    return err as { position: number; expected: string } | undefined;
  }
}

function describeJsonError(err: unknown, text: string): string {
  const found = findJsonError(text);
  if (found === undefined) {
    return `is not valid JSON: ${messageOf(err)}`;
  }
  const { line, column } = lineColumn(text, found.position);
  const got = found.position >= text.length
    ? "the end of the file"
    : JSON.stringify(String.fromCodePoint(text.codePointAt(found.position)!));
  return `is not valid JSON at line ${line}, column ${column} (expected ${found.expected}, found ${got})`;
}

/** Parse a store document, or say why it is not one. */
export function parseDocument(bytes: Uint8Array): State | Corruption {
  // A store file is always written whole (temp file, then rename): an empty one, or one of NUL
  // bytes (what a crash leaves on some file systems), lost its content.
  if (bytes.length === 0) {
    return { reason: "is empty (0 bytes): a store file that lost its content", cause: undefined };
  }
  if (bytes.every((byte) => byte === 0)) {
    return {
      reason: `holds only NUL bytes (${bytes.length}; what a crash leaves on some file systems): ` +
        "a store file that lost its content",
      cause: undefined,
    };
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (err) {
    return { reason: "is not valid UTF-8 text", cause: err };
  }
  let doc: unknown;
  try {
    doc = parseJson(text);
  } catch (err) {
    return { reason: describeJsonError(err, text), cause: err };
  }
  const d = doc as { format?: unknown; version?: unknown; entries?: unknown } | null;
  if (typeof d !== "object" || d === null || Array.isArray(d) || d.format !== FORMAT) {
    const format = typeof d === "object" && d !== null && !Array.isArray(d)
      ? JSON.stringify(d.format)
      : "none";
    return {
      reason: `is not a ${FORMAT} document (its format is ${format})`,
      cause: undefined,
      kind: "foreign",
    };
  }
  if (d.version !== FORMAT_VERSION) {
    const newer = typeof d.version === "number" && d.version > FORMAT_VERSION;
    return {
      reason: `has ${FORMAT} version ${JSON.stringify(d.version)}, but this Flowstate reads only ` +
        `version ${FORMAT_VERSION}${newer ? " (it was written by a newer Flowstate)" : ""}`,
      cause: undefined,
      kind: newer ? "newer" : "damaged",
    };
  }
  if (!Array.isArray(d.entries)) {
    return {
      reason: `is not a valid ${FORMAT} document: "entries" must be an array`,
      cause: undefined,
    };
  }
  const entries = new Map<string, Rec>();
  for (let i = 0; i < d.entries.length; i++) {
    const e = d.entries[i] as Record<string, unknown> | null;
    const problem = typeof e !== "object" || e === null || Array.isArray(e)
      ? "must be an object"
      : !Array.isArray(e.key) || e.key.length === 0 ||
          !e.key.every((p) => typeof p === "string" && p.isWellFormed())
      ? "has a key that is not a non-empty array of strings"
      : !("value" in e)
      ? "has no value"
      : typeof e.version !== "string" || e.version === ""
      ? "has no version string"
      : e.expiresAt !== null && !(typeof e.expiresAt === "number" && Number.isFinite(e.expiresAt))
      ? "has an expiresAt that is neither null nor a number"
      : undefined;
    if (problem) {
      return {
        reason: `is not a valid ${FORMAT} document: entries[${i}] ${problem}`,
        cause: undefined,
      };
    }
    const entry = e as { key: string[]; value: unknown; version: string; expiresAt: number | null };
    const rec = makeRec(entry.key, JSON.stringify(entry.value), entry.version, entry.expiresAt);
    if (entries.has(rec.id)) {
      return {
        reason: `is not a valid ${FORMAT} document: entries[${i}] repeats the key ${rec.id}`,
        cause: undefined,
      };
    }
    entries.set(rec.id, rec);
  }
  const sorted = [...entries.values()].sort((a, b) => compareKeys(a.raw.key, b.raw.key));
  return { entries, sorted, doc: null };
}
