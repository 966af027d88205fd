/**
 * The `jsonfile` plugin: one human-readable JSON document per store, written
 * durably and shared safely between processes.
 *
 * ```yaml
 * stores:
 *   main: { plugin: jsonfile, path: state.json, durability: full }
 * ```
 *
 * The document holds one entry per line, sorted by key, so a person can read
 * and diff it:
 *
 * ```json
 * {"format": "flowstate.jsonfile", "version": 1, "entries": [
 * {"key": ["flow","counter","count"], "value": 3, "version": "…", "expiresAt": null},
 * {"key": ["flow","counter","last"], "value": "2026-01-02", "version": "…", "expiresAt": null}
 * ]}
 * ```
 *
 * How it works:
 * - Every acknowledged write is on disk: the whole document is written to a
 *   temp file, fsynced, renamed over the store file and the directory is
 *   fsynced (`durability: "relaxed"` skips both fsyncs: it survives a killed
 *   process, not a power loss). A commit resolves only after that.
 * - Commits that arrive while a write is in flight are queued and written
 *   together by the next write (group commit); each resolves after the write
 *   that contains it. A failed write leaves the in-memory view unchanged.
 * - Each write holds an OS advisory lock on `<path>.lock` (`flock` on Unix,
 *   `LockFileEx` on Windows) only for its read-modify-write: it re-reads the
 *   file if another process replaced it, evaluates the version checks against
 *   that fresh content, writes, and releases. Another process (or another
 *   store on the same file in this process) waits up to `lockTimeout`, then
 *   fails naming the holder: each holder writes its pid, host name and time
 *   into the lock file when it takes the lock, for that message only.
 * - The OS releases the lock of a process that dies, however it dies, so a
 *   crash never leaves the store locked and no lock is ever judged stale. A
 *   waiting process tries again every few milliseconds (a blocking wait could
 *   not be cancelled at `lockTimeout`, and would keep the process alive).
 * - The lock file is opened once per store and kept open. A store that closes
 *   deletes it if no one holds the lock, taking the lock to do so; whoever
 *   takes the lock then checks that its lock file is still the one at
 *   `<path>.lock`, and if not (deleted, or replaced) reopens the path and tries
 *   again. So deleting the lock file never lets two writers in, unless it is
 *   deleted by something that does not take the lock first, while a write
 *   holds it.
 * - Reads see other processes' writes: each read costs one `stat` of the
 *   file, and the file is re-read only when it was replaced.
 * - Expired entries are hidden by the core and stay in the file until
 *   `purgeExpired()` deletes them; `compact()` rewrites the file.
 * - A file that is not valid JSON, or has an unknown format or version, is
 *   never overwritten: it is moved aside as `<path>.corrupt-<timestamp>`, and
 *   the store refuses to open (`onCorrupt: "refuse"`, the default) or starts
 *   empty (`onCorrupt: "start-empty"`).
 *
 * @module
 */
import { basename, dirname, join, resolve } from "node:path";
import { z } from "zod";
import { moveAside } from "../../src/_fs.ts";
import { StoreCorruptError } from "../../src/errors.ts";
import { definePlugin, type ParsingSchema, type Plugin } from "../../src/plugin.ts";
import type {
  ClearRange,
  CommitRequest,
  DriverCommitResult,
  KeyRange,
  RawEntry,
  StoreDriver,
} from "../../src/store/driver.ts";
import { compareKeys, hasPrefix, inClearRange } from "../../src/store/keys.ts";
import type { Capabilities, Key } from "../../src/store/types.ts";

/** Validated options of the jsonfile plugin (see {@linkcode jsonFileOptions}). */
export interface JsonFileOptions {
  /** The store file (default: `<home>/<store name>.json`). */
  path?: string;
  /** `"full"` (default) or `"relaxed"`. */
  durability: "full" | "relaxed";
  /** `"refuse"` (default) or `"start-empty"`. */
  onCorrupt: "refuse" | "start-empty";
  /** Milliseconds to wait for another process's lock (default 5000). */
  lockTimeout: number;
}

/** The schema of the jsonfile plugin's options (a zod schema). */
export const jsonFileOptions: ParsingSchema<JsonFileOptions> = z.strictObject({
  /**
   * The store file, relative to the config's directory (default:
   * `<home>/<store name>.json`). Missing parent directories are created.
   */
  path: z.string().min(1).optional(),
  /**
   * `"full"` (default): fsync the file and its directory on every write, so an
   * acknowledged write survives a power loss. `"relaxed"`: atomic rename
   * without fsync; survives a killed process, not a power loss.
   */
  durability: z.enum(["full", "relaxed"]).default("full"),
  /**
   * What to do with a file that is not a readable store: it is always moved
   * aside as `<path>.corrupt-<timestamp>`; then `"refuse"` (default) fails
   * with a `StoreCorruptError`, `"start-empty"` warns and starts empty.
   */
  onCorrupt: z.enum(["refuse", "start-empty"]).default("refuse"),
  /** How long (ms) to wait for another process's lock before failing (default 5000). */
  lockTimeout: z.number().int().min(0).default(5000),
});

/** Options of {@linkcode JsonFileDriver.open}. */
export interface JsonFileDriverOptions {
  /** The store's name, for messages (default `"jsonfile"`). */
  storeName?: string;
  /** See {@linkcode jsonFileOptions}; default `"full"`. */
  durability?: "full" | "relaxed";
  /** See {@linkcode jsonFileOptions}; default `"refuse"`. */
  onCorrupt?: "refuse" | "start-empty";
  /** See {@linkcode jsonFileOptions}; default 5000 ms. */
  lockTimeout?: number;
}

const FORMAT = "flowstate.jsonfile";
const FORMAT_VERSION = 1;
const HEADER = `{"format": "${FORMAT}", "version": ${FORMAT_VERSION}, "entries": [`;
/** The longest pause between two tries to take a lock another process holds (ms). */
const LOCK_POLL_MAX_MS = 4;

const encoder = new TextEncoder();

/** One entry held in memory: the raw entry plus its line of the document, as UTF-8. */
interface Rec {
  id: string;
  raw: RawEntry;
  line: Uint8Array;
}

/**
 * The store in memory. `sorted` is replaced, never mutated, so a listing in
 * progress keeps its snapshot; `entries` is the driver's own index by id,
 * updated in place when a write lands (every lookup in it is synchronous).
 */
interface State {
  entries: Map<string, Rec>;
  sorted: Rec[];
  /** The document this driver wrote for `sorted`; `null` when `sorted` was read from the file. */
  doc: Rendered | null;
}

/** A rendered document. */
interface Rendered {
  bytes: Uint8Array;
  /** The whole buffer `bytes` is a view of, to reuse once this document is replaced. */
  buffer: Uint8Array | null;
}

/** Identity of the file a state was loaded from. */
interface Stamp {
  dev: number;
  ino: number | null;
  size: number;
  mtime: number | null;
}

type Operation =
  | { kind: "commit"; request: CommitRequest }
  | { kind: "clear"; range: ClearRange; now: number }
  | { kind: "purge"; now: number }
  | { kind: "compact" };

/** What `compact()` resolves. */
interface CompactSizes {
  bytesBefore: number;
  bytesAfter: number;
}

type OperationResult = DriverCommitResult | number | CompactSizes;

interface Pending {
  op: Operation;
  resolve(result: OperationResult): void;
  reject(error: unknown): void;
}

interface Corruption {
  reason: string;
  cause: unknown;
}

function emptyState(): State {
  return { entries: new Map(), sorted: [], doc: null };
}

function makeRec(key: Key, value: string, version: string, expiresAt: number | null): Rec {
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
function render(
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

function stampOf(info: Deno.FileInfo): Stamp {
  return { dev: info.dev, ino: info.ino, size: info.size, mtime: info.mtime?.getTime() ?? null };
}

/**
 * Whether `info` is the file `stamp` was taken from. Writers always replace
 * the file by rename and the driver keeps the loaded file open (so its inode
 * cannot be reused), hence an unchanged device+inode means unchanged content.
 * Without inodes (Windows), `strict` treats every file as changed; otherwise
 * size and mtime decide.
 */
function sameFile(info: Deno.FileInfo | null, stamp: Stamp | null, strict: boolean): boolean {
  if (info === null || stamp === null) return info === stamp;
  if (info.ino === null || stamp.ino === null) {
    return !strict && info.size === stamp.size && info.mtime?.getTime() === stamp.mtime;
  }
  return info.ino === stamp.ino && info.dev === stamp.dev && info.size === stamp.size &&
    (info.mtime?.getTime() ?? null) === stamp.mtime;
}

/** `stat` of `path`, `null` if it does not exist. Synchronous: a stat costs microseconds, a thread hop more. */
function statOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.statSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

async function readAll(file: Deno.FsFile, sizeHint: number): Promise<Uint8Array> {
  let buf = new Uint8Array(sizeHint + 1);
  let n = 0;
  for (;;) {
    if (n === buf.length) {
      const bigger = new Uint8Array(buf.length * 2);
      bigger.set(buf);
      buf = bigger;
    }
    const read = await file.read(buf.subarray(n));
    if (read === null) return buf.subarray(0, n);
    n += read;
  }
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
    return `is not valid JSON: ${err instanceof Error ? err.message : String(err)}`;
  }
  const { line, column } = lineColumn(text, found.position);
  const got = found.position >= text.length
    ? "the end of the file"
    : JSON.stringify(String.fromCodePoint(text.codePointAt(found.position)!));
  return `is not valid JSON at line ${line}, column ${column} (expected ${found.expected}, found ${got})`;
}

/** Parse a store document, or say why it is not one. */
function parseDocument(bytes: Uint8Array): State | Corruption {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (err) {
    return { reason: "is not valid UTF-8 text", cause: err };
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
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
    };
  }
  if (d.version !== FORMAT_VERSION) {
    const newer = typeof d.version === "number" && d.version > FORMAT_VERSION;
    return {
      reason: `has ${FORMAT} version ${JSON.stringify(d.version)}, but this Flowstate reads only ` +
        `version ${FORMAT_VERSION}${newer ? " (it was written by a newer Flowstate)" : ""}`,
      cause: undefined,
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

/** The first index in `sorted` whose key is `>= bound` (or `> bound` when `exclusive`). */
function lowerBound(sorted: readonly Rec[], bound: Key, exclusive: boolean, from = 0): number {
  let a = from;
  let b = sorted.length;
  while (a < b) {
    const m = (a + b) >> 1;
    const c = compareKeys(sorted[m].raw.key, bound);
    if (c < 0 || (c === 0 && exclusive)) a = m + 1;
    else b = m;
  }
  return a;
}

/** A copy of a range the caller may change later. */
function copyRange(range: ClearRange): ClearRange {
  const copy: ClearRange = { prefix: [...range.prefix] };
  if (range.start !== undefined) copy.start = [...range.start];
  if (range.end !== undefined) copy.end = [...range.end];
  return copy;
}

/** The records under `prefix` (strictly longer keys), in key order. */
function underPrefix(sorted: readonly Rec[], prefix: Key): Rec[] {
  if (prefix.length === 0) return sorted.slice();
  const out: Rec[] = [];
  for (let i = lowerBound(sorted, prefix, true); i < sorted.length; i++) {
    if (!hasPrefix(sorted[i].raw.key, prefix)) break;
    out.push(sorted[i]);
  }
  return out;
}

function live(rec: Rec | null | undefined, now: number): rec is Rec {
  return rec != null && (rec.raw.expiresAt === null || rec.raw.expiresAt > now);
}

// ---------------------------------------------------------------------------
// The lock file

/** Bytes a holder writes into the lock file: one line, padded so that every holder writes as many. */
const HOLDER_LINE_BYTES = 256;
let holderTemplate: { bytes: Uint8Array; timeAt: number } | undefined;

/**
 * What this process writes into a lock file it takes: one JSON line, padded
 * with spaces to {@linkcode HOLDER_LINE_BYTES} so that it replaces the last
 * holder's line without a truncate. Readers look at the first line only.
 */
function holderLine(): Uint8Array {
  const time = new Date().toISOString();
  if (holderTemplate === undefined || time.length !== 24) {
    let hostname = "unknown";
    try {
      hostname = Deno.hostname();
    } catch { /* no --allow-sys: the message cannot name the host */ }
    const prefix = `{"pid": ${Deno.pid}, "hostname": ${JSON.stringify(hostname)}, "since": "`;
    const line = `${prefix}${time}"}`;
    const bytes = encoder.encode(`${line.padEnd(HOLDER_LINE_BYTES - 1)}\n`);
    if (time.length !== 24) return bytes;
    holderTemplate = { bytes, timeAt: encoder.encode(prefix).length };
  }
  // Only the time changes: write it over the last one (an ISO time is 24 ASCII bytes).
  encoder.encodeInto(time, holderTemplate.bytes.subarray(holderTemplate.timeAt));
  return holderTemplate.bytes;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function sameInode(a: Deno.FileInfo, b: Deno.FileInfo): boolean {
  return a.ino === b.ino && a.dev === b.dev;
}

/** Who holds a lock, from what the holder wrote into the lock file. */
async function describeHolder(path: string): Promise<string> {
  let holder: { pid?: unknown; hostname?: unknown; since?: unknown } | null = null;
  try {
    const text = await Deno.readTextFile(path);
    const end = text.indexOf("\n");
    holder = JSON.parse(end < 0 ? text : text.slice(0, end));
  } catch { /* being written right now, or unreadable */ }
  if (!Number.isSafeInteger(holder?.pid)) {
    return "another process (the lock file does not say which)";
  }
  const host = typeof holder!.hostname === "string" ? holder!.hostname : "unknown";
  const since = typeof holder!.since === "string" ? ` since ${holder!.since}` : "";
  return `process ${holder!.pid} on host ${JSON.stringify(host)}${since}`;
}

/**
 * One driver's handle on its store's lock file `<path>.lock`, opened once and
 * kept open. The lock is an OS advisory lock on it (`flock` on Unix,
 * `LockFileEx` on Windows): exclusive between processes and between two
 * handles in one process, and released by the OS when its process dies.
 *
 * A lock file can be deleted (by a store closing, or by hand) while others
 * have it open; a lock on a deleted file would exclude no one. So taking the
 * lock checks that the path still names the file locked, and if not, reopens
 * the path and tries again; and a lock file is deleted only by a holder of its
 * lock, so no one can take the deleted one and pass that check.
 */
class StoreLock {
  readonly path: string;
  readonly #storeName: string;
  #file: Deno.FsFile | undefined;
  /** The open file's identity, or `null` where the OS does not report inodes. */
  #info: Deno.FileInfo | null = null;
  #held = false;

  private constructor(path: string, storeName: string) {
    this.path = path;
    this.#storeName = storeName;
  }

  /** Open (creating it if needed) the lock file. */
  static open(path: string, storeName: string): StoreLock {
    const lock = new StoreLock(path, storeName);
    lock.#reopen("open");
    return lock;
  }

  #reopen(what: string): Deno.FsFile {
    this.#file?.close();
    this.#file = undefined;
    try {
      this.#file = Deno.openSync(this.path, { read: true, write: true, create: true });
      const info = this.#file.statSync();
      this.#info = info.ino === null ? null : info;
      return this.#file;
    } catch (err) {
      this.#file?.close();
      this.#file = undefined;
      throw new Error(
        `Cannot ${what} store "${this.#storeName}": could not open the lock file ${this.path}: ${
          (err as Error)?.message ?? err
        }`,
        { cause: err },
      );
    }
  }

  /**
   * Take the lock, trying again every few milliseconds for up to `timeout` ms
   * while another handle holds it. (Polling, rather than a blocking `lock()`
   * raced against a timer: a blocking lock cannot be cancelled, so after a
   * timeout it would keep a thread, and the process, waiting for the holder.)
   */
  acquire(what: string, timeout: number): Promise<void> | undefined {
    // Taken at once (the usual case): no promise, no turn of the event loop.
    return this.#tryAcquire(what) ? undefined : this.#wait(what, timeout);
  }

  async #wait(what: string, timeout: number): Promise<void> {
    const deadline = performance.now() + timeout;
    for (let pause = 1;; pause = Math.min(pause * 2, LOCK_POLL_MAX_MS)) {
      const remaining = deadline - performance.now();
      if (remaining <= 0) {
        throw new Deno.errors.TimedOut(
          `Cannot ${what} store "${this.#storeName}": the lock file ${this.path} is held by ${await describeHolder(
            this.path,
          )}, and it was not released within ${timeout} ms (lockTimeout). If that process is ` +
            `stuck, stop it: the lock is released when it exits`,
        );
      }
      await sleep(Math.min(pause * (0.5 + Math.random()), remaining));
      if (this.#tryAcquire(what)) return;
    }
  }

  /** One try: `false` when another handle holds the lock. */
  #tryAcquire(what: string): boolean {
    let file = this.#file ?? this.#reopen(what);
    for (let attempt = 1;; attempt++) {
      let taken: boolean;
      try {
        taken = file.tryLockSync(true);
      } catch (err) {
        throw new Error(
          `Cannot ${what} store "${this.#storeName}": could not lock ${this.path}: ${
            (err as Error)?.message ?? err
          }`,
          { cause: err },
        );
      }
      if (!taken) return false;
      if (this.#info === null || this.#stillAtPath(this.#info)) break;
      // Deleted or replaced since we opened it: take the lock on the file now at the path.
      file.unlockSync();
      if (attempt === 10) {
        throw new Error(
          `Cannot ${what} store "${this.#storeName}": the lock file ${this.path} keeps being deleted or replaced`,
        );
      }
      file = this.#reopen(what);
    }
    this.#held = true;
    // For the message of whoever waits for us: who holds the lock, and since when.
    try {
      const line = holderLine();
      file.seekSync(0, Deno.SeekMode.Start);
      for (let written = 0; written < line.length;) {
        written += file.writeSync(line.subarray(written));
      }
      // Only a host name too long for the usual line leaves a longer line behind.
      if (line.length > HOLDER_LINE_BYTES) file.truncateSync(line.length);
    } catch { /* only informational: a full disk must not stop the commit from trying */ }
    return true;
  }

  #stillAtPath(info: Deno.FileInfo): boolean {
    const now = statOrNull(this.path);
    return now !== null && sameInode(now, info);
  }

  /** Release the lock. */
  release(): void {
    if (!this.#held) return;
    this.#held = false;
    this.#file!.unlockSync();
  }

  /**
   * Close the lock file; delete it first if no one holds it, so that an unused
   * store leaves no lock file behind (only a holder may delete it, see above).
   */
  close(): void {
    const file = this.#file;
    this.#file = undefined;
    if (file === undefined) return;
    try {
      if (this.#info !== null && file.tryLockSync(true) && this.#stillAtPath(this.#info)) {
        Deno.removeSync(this.path);
      }
    } catch { /* left in place: harmless, the next store reuses it */ }
    file.close(); // releases the lock
  }
}

// ---------------------------------------------------------------------------
// The driver

/**
 * The jsonfile driver: an in-memory sorted map mirroring one JSON file, kept
 * in sync with other processes through a lock on `<path>.lock` held for each write.
 * {@linkcode JsonFileDriver.open} is for tests and tools; applications open a
 * store with `openStore({ plugin: "jsonfile", path })`.
 */
export class JsonFileDriver implements StoreDriver {
  /** The store file's absolute path. */
  readonly location: string;
  /** Persistent and safe across processes; the core filters expiry and runs queries. */
  readonly capabilities: Partial<Capabilities> = {
    persistent: true,
    multiProcess: true,
    expiry: false,
    count: true,
    clear: true,
    atomicClear: true,
    query: false,
  };
  readonly #path: string;
  #lock: StoreLock | undefined;
  readonly #name: string;
  readonly #sync: boolean;
  readonly #onCorrupt: "refuse" | "start-empty";
  readonly #lockTimeout: number;
  #state: State = emptyState();
  /**
   * The file `#stamp` describes (loaded or written), kept open so its inode
   * cannot be reused while we compare against it.
   */
  #held: Deno.FsFile | undefined;
  /** A document buffer no longer in use, reused by the next write. */
  #scratch: Uint8Array | undefined;
  /** The store file's directory, kept open to fsync it after each rename (durability "full"). */
  #dir: { handle: Deno.FsFile; info: Deno.FileInfo } | undefined;
  /** Identity of the loaded file; `null` when there is no file. */
  #stamp: Stamp | null = null;
  /** Set when the file became unreadable at run time: every later call fails with it. */
  #poison: Error | undefined;
  #queue: Pending[] = [];
  #flushing: Promise<void> | undefined;
  /**
   * True while this driver holds the lock and the in-process mutex and has
   * made its state match the file: only its own write can change the file.
   */
  #lockHeld = false;
  /** Turns to take the lock: one lock file handle serves one taker at a time. */
  #lockTurn: Promise<void> = Promise.resolve();
  #mutex: Promise<void> = Promise.resolve();
  #reloading: Promise<void> | undefined;
  #writes = 0;

  private constructor(path: string, options: JsonFileDriverOptions) {
    this.#path = path;
    this.location = path;
    this.#name = options.storeName ?? "jsonfile";
    this.#sync = (options.durability ?? "full") === "full";
    this.#onCorrupt = options.onCorrupt ?? "refuse";
    this.#lockTimeout = options.lockTimeout ?? 5000;
    if (!Number.isFinite(this.#lockTimeout) || this.#lockTimeout < 0) {
      throw new RangeError(
        `Cannot open store "${this.#name}": lockTimeout must be a non-negative number of milliseconds (got ${this.#lockTimeout})`,
      );
    }
  }

  /**
   * Open (or create on first write) the store file at `path` (or the file a
   * symlink there points to): create missing parent directories, remove temp
   * files left by crashed processes, and load the file. Rejects with a `StoreCorruptError` for an unreadable file unless
   * `onCorrupt` is `"start-empty"`.
   */
  static async open(path: string, options: JsonFileDriverOptions = {}): Promise<JsonFileDriver> {
    path = resolve(path);
    // Through a symlink, write (and lock) the file it points to, so that every
    // name for one file shares one lock, and the link survives our renames.
    if ((await Deno.lstat(path).catch(() => null))?.isSymlink) path = await Deno.realPath(path);
    const driver = new JsonFileDriver(path, options);
    await Deno.mkdir(dirname(driver.#path), { recursive: true });
    try {
      driver.#lock = StoreLock.open(`${path}.lock`, driver.#name);
      await driver.#locked("open", async () => {
        await driver.#removeLeftoverTemps();
        await driver.#refreshLocked("open");
      });
    } catch (err) {
      driver.#held?.close();
      driver.#lock?.close();
      throw err;
    }
    return driver;
  }

  /** How many times this driver has written the file (group commit makes this fewer than commits). */
  get writes(): number {
    return this.#writes;
  }

  async get(key: Key): Promise<RawEntry | null> {
    const state = await this.#fresh();
    return state.entries.get(JSON.stringify(key))?.raw ?? null;
  }

  async getMany(keys: readonly Key[]): Promise<(RawEntry | null)[]> {
    const state = await this.#fresh();
    return keys.map((key) => state.entries.get(JSON.stringify(key))?.raw ?? null);
  }

  async *list(range: KeyRange): AsyncIterable<RawEntry> {
    const { sorted } = await this.#fresh();
    const prefix = range.prefix ?? [];
    let lo = 0;
    if (prefix.length > 0) lo = lowerBound(sorted, prefix, true);
    if (range.start) {
      lo = Math.max(lo, lowerBound(sorted, range.start, range.startExclusive === true));
    }
    const hi = range.end ? lowerBound(sorted, range.end, false, lo) : sorted.length;
    if (range.reverse) {
      for (let i = hi - 1; i >= lo; i--) {
        if (prefix.length === 0 || hasPrefix(sorted[i].raw.key, prefix)) yield sorted[i].raw;
      }
    } else {
      for (let i = lo; i < hi; i++) {
        if (prefix.length > 0 && !hasPrefix(sorted[i].raw.key, prefix)) break;
        yield sorted[i].raw;
      }
    }
  }

  async count(range: ClearRange, now: number): Promise<number> {
    const { sorted } = await this.#fresh();
    let n = 0;
    for (const rec of underPrefix(sorted, range.prefix)) {
      if (live(rec, now) && inClearRange(rec.raw.key, range)) n++;
    }
    return n;
  }

  commit(request: CommitRequest): Promise<DriverCommitResult> {
    // The commit may wait for the write in flight: copy the keys so later changes to the
    // caller's arrays cannot change what it writes.
    const copy: CommitRequest = {
      checks: request.checks.map((c) => ({ key: [...c.key], version: c.version })),
      mutations: request.mutations.map((m) =>
        m.type === "clear" ? { ...m, range: copyRange(m.range) } : { ...m, key: [...m.key] }
      ),
      version: request.version,
      now: request.now,
    };
    return this.#enqueue({ kind: "commit", request: copy }) as Promise<DriverCommitResult>;
  }

  clear(range: ClearRange, now: number): Promise<number> {
    return this.#enqueue({ kind: "clear", range: copyRange(range), now }) as Promise<number>;
  }

  /** Delete every entry expired at `now`, in one write; resolves how many. */
  purgeExpired(now: number): Promise<number> {
    return this.#enqueue({ kind: "purge", now }) as Promise<number>;
  }

  /** Rewrite the file in its canonical layout (after hand edits, say); resolves its sizes. */
  compact(): Promise<{ bytesBefore: number; bytesAfter: number }> {
    return this.#enqueue({ kind: "compact" }) as Promise<CompactSizes>;
  }

  async close(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    await this.#lockTurn;
    await this.#mutex;
    this.#held?.close();
    this.#held = undefined;
    this.#scratch = undefined;
    this.#dir?.handle.close();
    this.#dir = undefined;
    this.#lock?.close();
    this.#lock = undefined;
  }

  // -- reading -------------------------------------------------------------

  /** The current state, re-read first if another process replaced the file. */
  async #fresh(): Promise<State> {
    if (this.#poison) throw this.#poison;
    if (this.#lockHeld) return this.#state; // only our own write can change the file now
    if (!this.#reloading) {
      if (sameFile(statOrNull(this.#path), this.#stamp, false)) return this.#state;
      this.#reloading ??= this.#reloadForRead().finally(() => {
        this.#reloading = undefined;
      });
    }
    await this.#reloading;
    if (this.#poison) throw this.#poison;
    return this.#state;
  }

  async #reloadForRead(): Promise<void> {
    const corrupt = await this.#exclusive(() => this.#load(false));
    // Only move a damaged file aside while holding the lock: a writer might be replacing it.
    if (corrupt) await this.#locked("read", () => this.#refreshLocked("read"));
  }

  /** Load the file if it is not the one loaded; report (not handle) damage. */
  async #load(strict: boolean): Promise<Corruption | undefined> {
    if (sameFile(statOrNull(this.#path), this.#stamp, strict)) return undefined;
    let file: Deno.FsFile;
    try {
      file = await Deno.open(this.#path, { read: true });
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      this.#install(emptyState(), null, undefined);
      return undefined;
    }
    let keep = false;
    try {
      const info = await file.stat();
      if (sameFile(info, this.#stamp, strict)) return undefined;
      const parsed = parseDocument(await readAll(file, info.size));
      if ("reason" in parsed) return parsed;
      this.#install(parsed, stampOf(info), file);
      keep = true;
      return undefined;
    } finally {
      if (!keep) file.close();
    }
  }

  #install(state: State, stamp: Stamp | null, file: Deno.FsFile | undefined): void {
    if (this.#held !== file) this.#held?.close();
    this.#held = file;
    this.#stamp = stamp;
    this.#state = state;
  }

  /** Under the lock: make the state match the file, moving a damaged file aside. */
  async #refreshLocked(what: string): Promise<void> {
    // Under the lock no other writer replaces the file: a stat that matches means the state is current.
    if (!sameFile(statOrNull(this.#path), this.#stamp, true)) {
      const corrupt = await this.#load(true);
      if (corrupt) await this.#handleCorrupt(corrupt, what);
    }
    this.#lockHeld = true;
  }

  async #handleCorrupt(corrupt: Corruption, what: string): Promise<void> {
    let movedTo: string | null = null;
    let moveError: unknown;
    try {
      movedTo = await moveAside(this.#path);
    } catch (err) {
      moveError = err;
    }
    const where = `file ${this.#path} ${corrupt.reason}`;
    if (movedTo !== null && this.#onCorrupt === "start-empty") {
      console.warn(
        `Store "${this.#name}": ${where}; moved it to ${movedTo} and started empty (onCorrupt: "start-empty")`,
      );
      this.#install(emptyState(), null, undefined);
      return;
    }
    const kept = movedTo !== null
      ? `kept as ${movedTo}`
      : `left in place, because moving it aside failed: ${(moveError as Error)?.message}`;
    const error = new StoreCorruptError(
      `Cannot ${what} store "${this.#name}": ${where} (${kept}). Repair or remove it; ` +
        `it is never overwritten`,
      { path: this.#path, movedTo },
      { cause: corrupt.cause ?? moveError },
    );
    this.#poison = error;
    throw error;
  }

  /** Under the lock: remove temp files that crashed processes left beside the store. */
  async #removeLeftoverTemps(): Promise<void> {
    // Temps are written only under the lock, so none of them is in flight now.
    const prefix = `.${basename(this.#path)}.tmp-`;
    const dir = dirname(this.#path);
    for await (const entry of Deno.readDir(dir)) {
      if (
        entry.isFile && entry.name.startsWith(prefix) &&
        /^\d+-[0-9a-f]{8}$/.test(entry.name.slice(prefix.length))
      ) {
        await Deno.remove(join(dir, entry.name)).catch(() => {});
      }
    }
  }

  // -- writing -------------------------------------------------------------

  #enqueue(op: Operation): Promise<OperationResult> {
    if (this.#poison) return Promise.reject(this.#poison);
    const { promise, resolve, reject } = Promise.withResolvers<OperationResult>();
    this.#queue.push({ op, resolve, reject });
    this.#flushing ??= this.#flushLoop();
    return promise;
  }

  /** Group commit: everything queued while a write was in flight goes into the next write. */
  async #flushLoop(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0);
      try {
        const results = await this.#locked("commit to", () => this.#applyBatch(batch));
        batch.forEach((pending, i) => pending.resolve(results[i]));
      } catch (err) {
        for (const pending of batch) pending.reject(err);
      }
    }
    this.#flushing = undefined;
  }

  async #applyBatch(batch: Pending[]): Promise<OperationResult[]> {
    if (this.#poison) throw this.#poison;
    await this.#refreshLocked("commit to");
    const base = this.#state;
    // Changes of this batch; `null` is a delete. The state is replaced only after the write.
    const overlay = new Map<string, Rec | null>();
    const current = (id: string): Rec | null | undefined =>
      overlay.has(id) ? overlay.get(id) : base.entries.get(id);
    /** Ids of the entries in `range` as this batch has left them so far. */
    const idsIn = (range: ClearRange): Set<string> => {
      const ids = new Set<string>();
      for (const rec of underPrefix(base.sorted, range.prefix)) {
        if (!overlay.has(rec.id) && inClearRange(rec.raw.key, range)) ids.add(rec.id);
      }
      for (const [id, rec] of overlay) if (rec && inClearRange(rec.raw.key, range)) ids.add(id);
      return ids;
    };
    const results: OperationResult[] = [];
    const compacts: number[] = [];
    let changed = false;
    for (const { op } of batch) {
      if (op.kind === "clear" || op.kind === "purge") {
        let removed = 0;
        for (const id of idsIn(op.kind === "clear" ? op.range : { prefix: [] })) {
          const isLive = live(current(id), op.now);
          if (op.kind === "purge" && isLive) continue;
          if (op.kind === "purge" || isLive) removed++;
          overlay.set(id, null);
          changed = true;
        }
        results.push(removed);
        continue;
      }
      if (op.kind === "compact") {
        compacts.push(results.length);
        results.push({ bytesBefore: 0, bytesAfter: 0 });
        continue;
      }
      const request = op.request;
      const conflicts: Key[] = [];
      for (const check of request.checks) {
        const rec = current(JSON.stringify(check.key));
        const version = live(rec, request.now) ? rec.raw.version : null;
        if (version !== check.version) conflicts.push(check.key);
      }
      if (conflicts.length > 0) {
        results.push({ ok: false, conflicts });
        continue;
      }
      for (const m of request.mutations) {
        if (m.type === "set") {
          const rec = makeRec(m.key, m.value, request.version, m.expiresAt);
          overlay.set(rec.id, rec);
          changed = true;
        } else if (m.type === "delete") {
          const id = JSON.stringify(m.key);
          if (current(id)) {
            overlay.set(id, null);
            changed = true;
          }
        } else {
          for (const id of idsIn(m.range)) {
            overlay.set(id, null);
            changed = true;
          }
        }
      }
      results.push({ ok: true });
    }
    // compact() rewrites the file even when nothing changed (say, after a hand edit).
    const bytesBefore = this.#stamp?.size ?? 0;
    if (changed || (compacts.length > 0 && this.#stamp !== null)) {
      const bytesAfter = await this.#write(changed ? merge(base, overlay) : base.sorted, overlay);
      for (const i of compacts) results[i] = { bytesBefore, bytesAfter };
    }
    return results;
  }

  /**
   * Under the lock: write `sorted` as the file, the way an atomic replace does
   * (temp file, fsync, rename, fsync the directory), and make it the state,
   * applying `overlay` to the index. Resolves the file's size.
   */
  async #write(sorted: Rec[], overlay: ReadonlyMap<string, Rec | null>): Promise<number> {
    const base = this.#state;
    const doc = render(sorted, base.sorted, base.doc, this.#scratch);
    this.#scratch = undefined;
    const dir = dirname(this.#path);
    const temp = join(
      dir,
      `.${basename(this.#path)}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`,
    );
    let file: Deno.FsFile | undefined;
    let stamp: Stamp;
    let renamed = false;
    try {
      file = await Deno.open(temp, { write: true, createNew: true });
      for (let written = 0; written < doc.bytes.length;) {
        written += await file.write(doc.bytes.subarray(written));
      }
      if (this.#sync) await file.sync();
      stamp = stampOf(file.statSync());
      // The file being replaced is still at the path (we hold the lock): stop holding it,
      // so that the rename frees it, as a plain replace does, instead of a close here.
      // Until the new file is in place its identity is unknown: a failure makes us re-read.
      this.#held?.close();
      this.#held = undefined;
      this.#stamp = { dev: -1, ino: -1, size: -1, mtime: null };
      await Deno.rename(temp, this.#path);
      renamed = true;
      if (this.#sync) await this.#syncDir(dir);
    } catch (err) {
      file?.close();
      if (!renamed) await Deno.remove(temp).catch(() => {});
      this.#scratch = doc.buffer ?? undefined;
      throw new Error(
        `Cannot commit to store "${this.#name}": writing ${this.#path} failed (${
          (err as Error)?.message ?? err
        }); the commit was not acknowledged`,
        { cause: err },
      );
    }
    this.#writes++;
    for (const [id, rec] of overlay) {
      if (rec === null) base.entries.delete(id);
      else base.entries.set(id, rec);
    }
    this.#scratch = base.doc?.buffer ?? undefined;
    // The temp file we still have open is the file now at the path.
    this.#held = file;
    this.#stamp = stamp;
    this.#state = { entries: base.entries, sorted, doc };
    return doc.bytes.length;
  }

  /**
   * Fsync the directory `dir`, so that a rename in it survives a power loss,
   * through a handle kept open (opening it each time costs more than the
   * call), reopened if the path now names another directory. File systems
   * that cannot fsync a directory are let be, as `syncDir` in src/_fs.ts does.
   */
  async #syncDir(dir: string): Promise<void> {
    try {
      const now = statOrNull(dir);
      if (this.#dir !== undefined && (now === null || !sameInode(now, this.#dir.info))) {
        this.#dir.handle.close();
        this.#dir = undefined;
      }
      if (this.#dir === undefined) {
        const handle = Deno.openSync(dir, { read: true });
        try {
          this.#dir = { handle, info: handle.statSync() };
        } catch (err) {
          handle.close();
          throw err;
        }
      }
      await this.#dir.handle.sync();
    } catch (err) {
      if (
        !(err instanceof Deno.errors.PermissionDenied) &&
        !(err instanceof Deno.errors.NotSupported) &&
        !(err instanceof Error && /EINVAL|EISDIR|not supported/i.test(err.message))
      ) {
        throw err;
      }
    }
  }

  // -- locking -------------------------------------------------------------

  /** Run `fn` alone within this process (orders reloads against writes). */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#mutex.then(fn);
    this.#mutex = run.then(() => {}, () => {});
    return run;
  }

  /**
   * Run `fn` holding the lock, then the in-process mutex (always in that
   * order). This driver's takers of the lock queue for their turn first: they
   * share one lock file handle, and a handle that holds the lock would let a
   * second taker in.
   */
  async #locked<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#lockTurn;
    const turn = Promise.withResolvers<void>();
    this.#lockTurn = turn.promise;
    await previous;
    try {
      const lock = this.#lock;
      if (lock === undefined) throw new Error(`Cannot ${what} store "${this.#name}": it is closed`);
      const waiting = lock.acquire(what, this.#lockTimeout);
      if (waiting) await waiting;
      try {
        return await this.#exclusive(async () => {
          try {
            return await fn();
          } finally {
            this.#lockHeld = false;
          }
        });
      } finally {
        lock.release();
      }
    } finally {
      turn.resolve();
    }
  }
}

/** The records of `base` with `overlay` applied (`null`: deleted), in key order; `base` is unchanged. */
function merge(base: State, overlay: ReadonlyMap<string, Rec | null>): Rec[] {
  if (overlay.size <= 16) {
    // A few changes: find each by binary search in a copy.
    const sorted = base.sorted.slice();
    for (const [id, rec] of overlay) {
      const at = lowerBound(sorted, rec?.raw.key ?? JSON.parse(id), false);
      const found = at < sorted.length && sorted[at].id === id;
      if (rec === null) {
        if (found) sorted.splice(at, 1);
      } else if (found) {
        sorted[at] = rec;
      } else {
        sorted.splice(at, 0, rec);
      }
    }
    return sorted;
  }
  const added: Rec[] = [];
  for (const [id, rec] of overlay) if (rec !== null && !base.entries.has(id)) added.push(rec);
  added.sort((a, b) => compareKeys(a.raw.key, b.raw.key));
  const sorted: Rec[] = [];
  let j = 0;
  for (const old of base.sorted) {
    while (j < added.length && compareKeys(added[j].raw.key, old.raw.key) < 0) {
      sorted.push(added[j++]);
    }
    const rec = overlay.has(old.id) ? overlay.get(old.id) : old;
    if (rec) sorted.push(rec);
  }
  while (j < added.length) sorted.push(added[j++]);
  return sorted;
}

/**
 * The jsonfile plugin: one human-readable JSON file per store, durable on
 * every acknowledged write and safe to share between processes.
 *
 * @example
 * ```ts
 * import { openStore } from "@flowstate/core";
 *
 * const dir = await Deno.makeTempDir();
 * const store = await openStore({ plugin: "jsonfile", path: `${dir}/state.json` });
 * await store.set(["flow", "counter", "count"], 1);
 * if (!((await store.get(["flow", "counter", "count"]))?.value === 1)) throw new Error("unexpected result");
 * await store.close();
 * if (!((await Deno.readTextFile(`${dir}/state.json`)).includes('"count"'))) throw new Error("unexpected result");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
const jsonfile: Plugin<JsonFileOptions> = definePlugin({
  name: "jsonfile",
  description: "one human-readable JSON file per store; durable writes, safe across processes",
  optionsSchema: jsonFileOptions,
  open(options, context) {
    const path = options.path !== undefined
      ? resolve(context.baseDir, options.path)
      : resolve(context.home, `${context.storeName}.json`);
    return JsonFileDriver.open(path, {
      storeName: context.storeName,
      durability: options.durability,
      onCorrupt: options.onCorrupt,
      lockTimeout: options.lockTimeout,
    });
  },
});
export default jsonfile;
