/**
 * The words the SQL backends index for full-text search: the core's own
 * tokenizer (`searchWords`: Unicode NFKC, JavaScript `toLowerCase()`, NFKC
 * again where that changed something, then runs of `\p{L}`, `\p{N}`,
 * `\p{Co}`), so which entries match is the reference's by construction rather
 * than as far as a database's tokenizer and locale allow.
 *
 * - sqlite calls {@linkcode valueWords} from its triggers (a function the
 *   driver registers on its connection) and writes the words, joined by
 *   spaces, into an FTS5 table whose `ascii` tokenizer cuts them at the
 *   spaces and changes nothing else (the words hold no ASCII punctuation
 *   and no capitals).
 * - postgres cannot call JavaScript from its trigger: it normalizes with its
 *   own `normalize(text, NFKC)` (PostgreSQL 13 or newer, UTF8 database), and
 *   {@linkcode pgRunRegex}, {@linkcode pgWordRegex} and {@linkcode pgLowerMap}
 *   are this engine's Unicode tables of the other steps, written into the SQL
 *   function that cuts the words there.
 *
 * The words' format ({@linkcode searchMetaValue}) is kept next to the search declaration in
 * the store's metadata: an index built the old way (by the database's
 * tokenizer, or by the rule without NFKC: format 1) or with another Unicode
 * version is rebuilt at open.
 *
 * @module
 */
import { searchableStrings, searchWords } from "../../src/store/indexes.ts";
import { parseJson } from "../../src/_json.ts";

let wordsFormat: string | undefined;

/**
 * The version of the words' rule in {@linkcode searchMetaValue}: 1 lower-cased
 * and cut; 2 normalizes to NFKC first (an index of format 1 is rebuilt at open).
 */
export const WORDS_FORMAT = 2;

/**
 * Load {@linkcode searchMetaValue}'s format: the words' format and the Unicode
 * version of this engine's tables. Only a store that declares a search calls
 * it: `node:process` (where the version is) starts Deno's Node compatibility,
 * ~20 ms of a cold run that a run without search must not pay.
 */
export async function loadSearchWordsFormat(): Promise<void> {
  if (wordsFormat !== undefined) return;
  const { default: process } = await import("node:process");
  wordsFormat = `words ${WORDS_FORMAT}, unicode ${process.versions.unicode ?? "?"}`;
}

/** Whether {@linkcode loadSearchWordsFormat} ran. */
export function searchWordsFormatLoaded(): boolean {
  return wordsFormat !== undefined;
}

/**
 * The metadata value of a search index built for `spec` in the current format
 * (after {@linkcode loadSearchWordsFormat}).
 */
export function searchMetaValue(spec: unknown): string {
  if (wordsFormat === undefined) {
    throw new Error("searchMetaValue() before loadSearchWordsFormat()");
  }
  return `${JSON.stringify(spec)} ${wordsFormat}`;
}

const paths = new Map<string, string[][] | null>();

/**
 * The words of the JSON text `value` (of its strings at `path`, a JSON array
 * of segments, or of every string when `path` is null), joined by spaces;
 * null for a value that is not JSON.
 */
export function valueWords(value: unknown, path: unknown): string | null {
  if (typeof value !== "string") return null;
  let parsed: unknown;
  try {
    parsed = parseJson(value);
  } catch {
    return null;
  }
  let fields: string[][] | null = null;
  if (typeof path === "string") {
    fields = paths.get(path) ?? null;
    if (fields === null) {
      if (paths.size > 100) paths.clear();
      paths.set(path, fields = [JSON.parse(path) as string[]]);
    }
  }
  const words: string[] = [];
  for (const s of searchableStrings(parsed, fields)) {
    for (const w of searchWords(s)) words.push(w);
  }
  return words.join(" ");
}

/** A code point in a PostgreSQL regular expression (ARE escape). */
function pgChar(c: number): string {
  return `\\U${c.toString(16).padStart(8, "0")}`;
}

/** Every code point, unpaired surrogates as spaces (what a table is made from). */
function everyCodePoint(): string {
  const units = new Uint16Array(0x110000 * 2);
  let n = 0;
  for (let c = 0; c <= 0x10ffff; c++) {
    if (c < 0x10000) units[n++] = c >= 0xd800 && c <= 0xdfff ? 0x20 : c;
    else {
      const d = c - 0x10000;
      units[n++] = 0xd800 + (d >> 10);
      units[n++] = 0xdc00 + (d & 0x3ff);
    }
  }
  return new TextDecoder("utf-16le").decode(units.subarray(0, n));
}

interface PgTables {
  /** One word: a run of `\p{L}`, `\p{N}`, `\p{Co}`. */
  regex: string;
  /** One run of word characters and combining marks (`\p{M}`). */
  run: string;
  /** One-character lower cases. */
  lower: Record<string, string>;
  /** A character outside ASCII that the lower-case table changes, or a combining mark. */
  special: string;
  /** A character outside ASCII that the lower-case table changes. */
  upper: string;
  /** A combining mark. */
  mark: string;
}

let tables: PgTables | undefined;

/** `[...]` of the code points of `chars`, runs of consecutive ones as ranges. */
function pgClass(chars: readonly string[]): string {
  const cps = chars.map((c) => c.codePointAt(0)!).sort((a, b) => a - b);
  const ranges: string[] = [];
  for (let i = 0; i < cps.length;) {
    let j = i;
    while (j + 1 < cps.length && cps[j + 1] === cps[j] + 1) j++;
    ranges.push(i === j ? pgChar(cps[i]) : `${pgChar(cps[i])}-${pgChar(cps[j])}`);
    i = j + 1;
  }
  return `[${ranges.join("")}]`;
}

/** `[...]+` of the runs of `all` that `of` matches. */
function pgRuns(all: string, of: RegExp): string {
  const ranges: string[] = [];
  for (const m of all.matchAll(of)) {
    const cps = [...m[0]];
    const first = cps[0].codePointAt(0)!;
    const last = cps[cps.length - 1].codePointAt(0)!;
    ranges.push(first === last ? pgChar(first) : `${pgChar(first)}-${pgChar(last)}`);
  }
  return `[${ranges.join("")}]+`;
}

function makeTables(): PgTables {
  const all = everyCodePoint();
  const lower: Record<string, string> = {};
  for (const m of all.matchAll(/\p{Changes_When_Lowercased}/gu)) {
    const to = m[0].toLowerCase();
    // İ (the one letter whose lower case is two characters) is replaced before the cut.
    if ([...to].length === 1) lower[m[0]] = to;
  }
  // Σ lower-cases to ς at the end of a word and to σ elsewhere: both are indexed
  // as σ (and searched as σ), and every hit is checked against the reference.
  lower["ς"] = "σ";
  lower["Σ"] = "σ";
  const marks = [...all.matchAll(/\p{M}/gu)].map((m) => m[0]);
  const upper = Object.keys(lower).filter((c) => c.codePointAt(0)! > 0x7f);
  return {
    regex: pgRuns(all, /[\p{L}\p{N}\p{Co}]+/gu),
    run: pgRuns(all, /[\p{L}\p{N}\p{Co}\p{M}]+/gu),
    lower,
    special: pgClass([...upper, ...marks]),
    upper: pgClass(upper),
    mark: pgClass(marks),
  };
}

/**
 * A PostgreSQL regular expression matching a character outside ASCII that the
 * lower-case table changes, or a combining mark (`\p{M}`): a run without one
 * is a word as it is, one with one is lower-cased character by character,
 * normalized to NFKC again and cut into words.
 */
export function pgSpecialRegex(): string {
  return (tables ??= makeTables()).special;
}

/**
 * A PostgreSQL regular expression matching a character outside ASCII that the
 * lower-case table changes (in a string without marks, a word without one
 * needs no character-by-character pass).
 */
export function pgNonAsciiUpperRegex(): string {
  return (tables ??= makeTables()).upper;
}

/** A PostgreSQL regular expression matching a combining mark (`\p{M}`). */
export function pgMarkRegex(): string {
  return (tables ??= makeTables()).mark;
}

/**
 * A PostgreSQL regular expression matching one run of word characters and
 * combining marks (`\p{L}`, `\p{N}`, `\p{Co}`, `\p{M}`): cut first, so a
 * capital and the mark after it are lower-cased and composed together (Υ +
 * U+0342 as ῦ) before the marks left over are dropped.
 */
export function pgRunRegex(): string {
  return (tables ??= makeTables()).run;
}

/** A PostgreSQL regular expression matching one word (a run of `\p{L}`, `\p{N}`, `\p{Co}` characters). */
export function pgWordRegex(): string {
  return (tables ??= makeTables()).regex;
}

/** The lower case of every character that has a one-character one, as a JSON object (σ for Σ and ς). */
export function pgLowerMap(): Record<string, string> {
  return (tables ??= makeTables()).lower;
}

/** A search term as postgres indexes it (final sigma as σ). */
export function pgTerm(term: string): string {
  return term.replaceAll("ς", "σ");
}
