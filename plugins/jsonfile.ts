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
 * - Each write holds the lock file `<path>.lock` (pid, host name and time
 *   inside; hard-linked into place from a temp file, so it is never seen half
 *   written) only for its read-modify-write: it re-reads the file if another
 *   process replaced it, evaluates the version checks against that fresh
 *   content, writes, and releases. Another process waits up to `lockTimeout`.
 * - A lock left by a dead process is broken safely. On the same host the
 *   holder's pid is checked with `process.kill(pid, 0)` (needs `--allow-run`);
 *   with `--allow-all`, Linux's /proc also reveals zombies, reused pids and
 *   reboots; a lock with this process's own pid that it does not hold is a
 *   predecessor's. A lock whose holder cannot be checked (another host, or no
 *   permission) is broken once it is a minute old.
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
import process from "node:process";
import { z } from "zod";
import { moveAside, writeFileAtomic } from "../src/_fs.ts";
import { StoreCorruptError } from "../src/errors.ts";
import { definePlugin, type Plugin } from "../src/plugin.ts";
import type {
  CommitRequest,
  DriverCommitResult,
  KeyRange,
  RawEntry,
  StoreDriver,
} from "../src/store/driver.ts";
import { compareKeys, hasPrefix } from "../src/store/keys.ts";
import type { Capabilities, Key } from "../src/store/types.ts";

/** Options of the jsonfile plugin. */
export const jsonFileOptions: z.ZodObject<{
  path: z.ZodOptional<z.ZodString>;
  durability: z.ZodDefault<z.ZodEnum<{ full: "full"; relaxed: "relaxed" }>>;
  onCorrupt: z.ZodDefault<z.ZodEnum<{ refuse: "refuse"; "start-empty": "start-empty" }>>;
  lockTimeout: z.ZodDefault<z.ZodNumber>;
}, z.core.$strict> = z.strictObject({
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

/** Validated options of the jsonfile plugin. */
export type JsonFileOptions = z.infer<typeof jsonFileOptions>;

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
/** A lock whose holder cannot be checked (another host, unreadable) is stale after this long. */
const UNVERIFIABLE_LOCK_STALE_MS = 60_000;
/** A `.break` file (held for microseconds while breaking a stale lock) is stale after this long. */
const BREAKER_STALE_MS = 10_000;

const encoder = new TextEncoder();

/** One entry held in memory: the raw entry plus its line of the document, as UTF-8. */
interface Rec {
  id: string;
  raw: RawEntry;
  line: Uint8Array;
}

/** An immutable view of the store: replaced, never mutated, so listings see a snapshot. */
interface State {
  entries: Map<string, Rec>;
  sorted: Rec[];
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
  | { kind: "clear"; prefix: Key; now: number }
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

const EMPTY: State = { entries: new Map(), sorted: [] };

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

/** The document's bytes: the entries' cached lines copied between header and footer. */
function render(sorted: readonly Rec[]): Uint8Array {
  if (sorted.length === 0) return EMPTY_DOCUMENT;
  let size = DOCUMENT_START.length + DOCUMENT_END.length +
    LINE_SEPARATOR.length * (sorted.length - 1);
  for (const rec of sorted) size += rec.line.length;
  const out = new Uint8Array(size);
  out.set(DOCUMENT_START);
  let at = DOCUMENT_START.length;
  for (let i = 0; i < sorted.length; i++) {
    if (i > 0) {
      out.set(LINE_SEPARATOR, at);
      at += LINE_SEPARATOR.length;
    }
    out.set(sorted[i].line, at);
    at += sorted[i].line.length;
  }
  out.set(DOCUMENT_END, at);
  return out;
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

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
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
  return { entries, sorted };
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

/** Who this process is, as written into lock files. */
interface Identity {
  pid: number;
  hostname: string;
  bootId: string | null;
  startTime: string | null;
}

/** What a lock file says about its holder (fields are absent when unreadable). */
interface LockInfo {
  text: string;
  ino: number | null;
  mtime: number | null;
  pid?: number;
  hostname?: string;
  createdAt?: string;
  bootId?: string;
  startTime?: string;
}

let identityPromise: Promise<Identity> | undefined;

/** This process's held lock texts and lock temp files, shared by every copy of this module. */
interface ProcessLocks {
  held: Set<string>;
  temps: Set<string>;
}
const PROCESS_LOCKS = Symbol.for("flowstate.jsonfile.locks");
function processLocks(): ProcessLocks {
  const registry = globalThis as { [PROCESS_LOCKS]?: ProcessLocks };
  return registry[PROCESS_LOCKS] ??= { held: new Set(), temps: new Set() };
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await file.write(bytes.subarray(written));
  }
}

function processIdentity(): Promise<Identity> {
  identityPromise ??= (async () => {
    let hostname = "unknown";
    try {
      hostname = Deno.hostname();
    } catch { /* no --allow-sys: hosts cannot be told apart, locks fall back to age */ }
    const stat = await procStat(Deno.pid);
    let bootId: string | null = null;
    if (Deno.build.os === "linux") {
      bootId = await Deno.readTextFile("/proc/sys/kernel/random/boot_id").then(
        (t) => t.trim(),
        () => null,
      );
    }
    return { pid: Deno.pid, hostname, bootId, startTime: stat?.startTime ?? null };
  })();
  return identityPromise;
}

/**
 * Linux: a process's state letter and start time (clock ticks since boot),
 * `null` if there is no such process, `undefined` if it cannot be told.
 */
async function procStat(
  pid: number,
): Promise<{ state: string; startTime: string } | null | undefined> {
  if (Deno.build.os !== "linux") return undefined;
  let text: string;
  try {
    text = await Deno.readTextFile(`/proc/${pid}/stat`);
  } catch (err) {
    return err instanceof Deno.errors.NotFound ? null : undefined;
  }
  // "pid (comm) S ppid … starttime(22nd field) …"; comm may hold spaces and parentheses.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return fields.length > 19 ? { state: fields[0], startTime: fields[19] } : undefined;
}

/** `true`/`false` when the holder is known to be alive/dead, `undefined` when it cannot be told. */
async function holderAlive(info: LockInfo, me: Identity): Promise<boolean | undefined> {
  if (info.pid === undefined || info.hostname === undefined) return undefined;
  if (info.hostname !== me.hostname || me.hostname === "unknown") return undefined;
  if (info.bootId && me.bootId && info.bootId !== me.bootId) return false; // written before a reboot
  // Our own pid: either a lock this process holds, or one left by an earlier process that had
  // the same pid (a restarted container's pid 1, say).
  if (info.pid === me.pid) return processLocks().held.has(info.text);
  const stat = await procStat(info.pid);
  if (stat === null) return false;
  if (stat !== undefined) {
    if (stat.state === "Z" || stat.state === "X") return false; // killed, not yet reaped
    if (info.startTime && me.startTime && stat.startTime !== info.startTime) return false; // pid reused
    return true;
  }
  try {
    process.kill(info.pid, 0);
    return true;
  } catch (err) {
    const code = (err as { code?: string }).code;
    return code === "ESRCH" ? false : code === "EPERM" ? true : undefined;
  }
}

async function readLock(path: string): Promise<LockInfo | null> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  try {
    const stat = await file.stat();
    const text = new TextDecoder().decode(await readAll(file, stat.size));
    const info: LockInfo = { text, ino: stat.ino, mtime: stat.mtime?.getTime() ?? null };
    try {
      const parsed = JSON.parse(text);
      if (Number.isSafeInteger(parsed?.pid) && parsed.pid > 0) info.pid = parsed.pid;
      if (typeof parsed?.hostname === "string") info.hostname = parsed.hostname;
      if (typeof parsed?.createdAt === "string") info.createdAt = parsed.createdAt;
      if (typeof parsed?.bootId === "string") info.bootId = parsed.bootId;
      if (typeof parsed?.startTime === "string") info.startTime = parsed.startTime;
    } catch { /* being written, or damaged: judged by age */ }
    return info;
  } finally {
    file.close();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Remove a stale lock, but only if it is still the very lock that was judged
 * stale. Breakers take turns through `<lock>.break`, so two processes that
 * both saw the same stale lock cannot remove each other's fresh one. Resolves
 * `false` when another process is breaking it (wait and look again).
 */
async function breakStaleLock(lockPath: string, stale: LockInfo): Promise<boolean> {
  const breaker = `${lockPath}.break`;
  try {
    await Deno.writeTextFile(breaker, `${Deno.pid}\n`, { createNew: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    // Another process is breaking it right now; a .break older than that crashed mid-break.
    const info = await statOrNull(breaker);
    if (info?.mtime && Date.now() - info.mtime.getTime() > BREAKER_STALE_MS) {
      await Deno.remove(breaker).catch(() => {});
      return true;
    }
    return false;
  }
  try {
    const current = await readLock(lockPath);
    if (current !== null && current.text === stale.text && current.ino === stale.ino) {
      await Deno.remove(lockPath).catch((err) => {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      });
    }
    return true;
  } finally {
    await Deno.remove(breaker).catch(() => {});
  }
}

function describeHolder(info: LockInfo): string {
  if (info.pid === undefined) return "an unknown process (the lock file is unreadable)";
  const time = info.createdAt ?? (info.mtime === null ? null : new Date(info.mtime).toISOString());
  const since = time ? ` since ${time}` : "";
  return `process ${info.pid} on host ${JSON.stringify(info.hostname ?? "unknown")}${since}`;
}

/** A lock this process holds: its text, and the inode of the lock file (if known). */
interface HeldLock {
  text: string;
  ino: number | null;
}

/**
 * One driver's view of a store's lock file. The lock's text (pid, host, time)
 * is written to a temp file that the driver keeps, and hard-linked into place:
 * the link fails if the lock exists, and a lock file is never seen empty or
 * half written, even if the process dies taking it. Without hard links, the
 * lock is created exclusively and then written.
 */
class StoreLock {
  readonly path: string;
  readonly #storeName: string;
  readonly #nonce = crypto.randomUUID();
  #temp: { path: string; ino: number | null; length: number } | undefined;
  #noLinks = false;

  constructor(path: string, storeName: string) {
    this.path = path;
    this.#storeName = storeName;
  }

  /** Take the lock, waiting up to `timeout` ms for a live holder and breaking a dead one's. */
  async acquire(what: string, timeout: number): Promise<HeldLock> {
    const me = await processIdentity();
    const deadline = performance.now() + timeout;
    let delay = 1;
    for (;;) {
      const text = JSON.stringify({
        pid: me.pid,
        hostname: me.hostname,
        createdAt: new Date().toISOString(),
        bootId: me.bootId,
        startTime: me.startTime,
        nonce: this.#nonce,
      }) + "\n";
      // Registered first, so no other driver in this process takes it for a predecessor's.
      processLocks().held.add(text);
      try {
        return { text, ino: await this.#create(text) };
      } catch (err) {
        processLocks().held.delete(text);
        if (!(err instanceof Deno.errors.AlreadyExists)) {
          throw new Error(
            `Cannot ${what} store "${this.#storeName}": could not create the lock file ${this.path}: ${
              (err as Error)?.message ?? err
            }`,
            { cause: err },
          );
        }
      }
      const holder = await readLock(this.path);
      if (holder === null) continue; // released just now
      const alive = await holderAlive(holder, me);
      const age = holder.mtime === null ? 0 : Date.now() - holder.mtime;
      if (alive === false || (alive === undefined && age > UNVERIFIABLE_LOCK_STALE_MS)) {
        if (await breakStaleLock(this.path, holder)) continue;
      }
      const remaining = deadline - performance.now();
      if (remaining <= 0) {
        throw new Deno.errors.TimedOut(
          `Cannot ${what} store "${this.#storeName}": the lock file ${this.path} is held by ${
            describeHolder(holder)
          }, and it was not released within ${timeout} ms (lockTimeout). ` +
            `If that process is stuck, stop it; if it is not a Flowstate process using this store ` +
            `(its pid was reused), delete the lock file`,
        );
      }
      await sleep(Math.min(delay + Math.random() * delay, remaining));
      delay = Math.min(delay * 2, 16);
    }
  }

  /** Create the lock file holding `text`; resolves its inode, or `null` if unknown. */
  async #create(text: string): Promise<number | null> {
    const bytes = encoder.encode(text);
    for (let attempt = 0; !this.#noLinks; attempt++) {
      try {
        await this.#writeTemp(bytes);
        await Deno.link(this.#temp!.path, this.path);
        return this.#temp!.ino;
      } catch (err) {
        if (err instanceof Deno.errors.AlreadyExists) throw err;
        if (err instanceof Deno.errors.NotFound && attempt === 0) {
          await this.dispose(); // someone removed our temp file: make a new one
          continue;
        }
        // No hard links here (or no temp file): create the lock directly from now on.
        await this.dispose();
        this.#noLinks = true;
      }
    }
    const file = await Deno.open(this.path, { write: true, createNew: true });
    try {
      await writeAll(file, bytes);
    } catch (err) {
      file.close();
      await Deno.remove(this.path).catch(() => {});
      throw err;
    }
    file.close();
    return null;
  }

  /** Put `bytes` in our temp file, creating it the first time (rewriting in place is cheaper). */
  async #writeTemp(bytes: Uint8Array): Promise<void> {
    if (this.#temp === undefined) {
      const path = join(
        dirname(this.path),
        `.${basename(this.path)}-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}.tmp`,
      );
      processLocks().temps.add(path);
      try {
        const file = await Deno.open(path, { write: true, createNew: true });
        try {
          await writeAll(file, bytes);
          this.#temp = { path, ino: (await file.stat()).ino, length: bytes.length };
        } finally {
          file.close();
        }
      } catch (err) {
        processLocks().temps.delete(path);
        await Deno.remove(path).catch(() => {});
        throw err;
      }
    } else if (this.#temp.length === bytes.length) {
      // Not linked as the lock right now (we released it), so no one reads it mid-write.
      const file = await Deno.open(this.#temp.path, { write: true });
      try {
        await writeAll(file, bytes);
      } finally {
        file.close();
      }
    } else {
      await Deno.writeFile(this.#temp.path, bytes, { create: false });
      this.#temp.length = bytes.length;
    }
  }

  /** Release the lock if it is still ours; `false` if another process broke it meanwhile. */
  async release(held: HeldLock): Promise<boolean> {
    try {
      const ours = held.ino !== null
        ? (await Deno.lstat(this.path).catch(() => null))?.ino === held.ino
        : (await readLock(this.path).catch(() => null))?.text === held.text;
      if (ours) {
        // If it cannot be removed, stop using the temp file it is linked to: a later lock
        // must not rewrite it, and the leftover lock then reads as a predecessor's.
        await Deno.remove(this.path).catch(() => this.dispose());
      } else if (held.ino !== null) {
        await this.dispose(); // a lock still linked to our temp file must not be rewritten
      }
      return ours;
    } finally {
      processLocks().held.delete(held.text);
    }
  }

  /** Remove the temp file (when the driver closes). */
  async dispose(): Promise<void> {
    const temp = this.#temp;
    this.#temp = undefined;
    if (temp === undefined) return;
    processLocks().temps.delete(temp.path);
    await Deno.remove(temp.path).catch(() => {});
  }
}

// ---------------------------------------------------------------------------
// The driver

/**
 * The jsonfile driver: an in-memory sorted map mirroring one JSON file, kept
 * in sync with other processes through a lock file held for each write.
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
    query: false,
  };
  readonly #path: string;
  readonly #lock: StoreLock;
  readonly #name: string;
  readonly #sync: boolean;
  readonly #onCorrupt: "refuse" | "start-empty";
  readonly #lockTimeout: number;
  #state: State = EMPTY;
  /** The loaded file, kept open so its inode cannot be reused while we compare against it. */
  #held: Deno.FsFile | undefined;
  /** Identity of the loaded file; `null` when there is no file. */
  #stamp: Stamp | null = null;
  /** Set when the file became unreadable at run time: every later call fails with it. */
  #poison: Error | undefined;
  #queue: Pending[] = [];
  #flushing: Promise<void> | undefined;
  /**
   * True while this driver holds the lock file and the in-process mutex and
   * has made its state match the file: only its own write can change the file.
   */
  #lockHeld = false;
  #mutex: Promise<void> = Promise.resolve();
  #reloading: Promise<void> | undefined;
  #writes = 0;

  private constructor(path: string, options: JsonFileDriverOptions) {
    this.#path = path;
    this.location = path;
    this.#name = options.storeName ?? "jsonfile";
    this.#lock = new StoreLock(`${path}.lock`, this.#name);
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
      await driver.#locked("open", async () => {
        await driver.#removeLeftoverTemps();
        await driver.#refreshLocked("open");
      });
    } catch (err) {
      driver.#held?.close();
      await driver.#lock.dispose();
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

  async count(prefix: Key, now: number): Promise<number> {
    const { sorted } = await this.#fresh();
    let n = 0;
    for (const rec of underPrefix(sorted, prefix)) if (live(rec, now)) n++;
    return n;
  }

  commit(request: CommitRequest): Promise<DriverCommitResult> {
    // The commit may wait for the write in flight: copy the keys so later changes to the
    // caller's arrays cannot change what it writes.
    const copy: CommitRequest = {
      checks: request.checks.map((c) => ({ key: [...c.key], version: c.version })),
      mutations: request.mutations.map((m) => ({ ...m, key: [...m.key] })),
      version: request.version,
      now: request.now,
    };
    return this.#enqueue({ kind: "commit", request: copy }) as Promise<DriverCommitResult>;
  }

  clear(prefix: Key, now: number): Promise<number> {
    return this.#enqueue({ kind: "clear", prefix: [...prefix], now }) as Promise<number>;
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
    await this.#mutex;
    this.#held?.close();
    this.#held = undefined;
    await this.#lock.dispose();
  }

  // -- reading -------------------------------------------------------------

  /** The current state, re-read first if another process replaced the file. */
  async #fresh(): Promise<State> {
    if (this.#poison) throw this.#poison;
    if (this.#lockHeld) return this.#state; // only our own write can change the file now
    if (!this.#reloading) {
      const info = await statOrNull(this.#path);
      if (this.#lockHeld || sameFile(info, this.#stamp, false)) return this.#state;
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
    if (sameFile(await statOrNull(this.#path), this.#stamp, strict)) return undefined;
    let file: Deno.FsFile;
    try {
      file = await Deno.open(this.#path, { read: true });
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      this.#install(EMPTY, null, undefined);
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
    const corrupt = await this.#load(true);
    if (corrupt) await this.#handleCorrupt(corrupt, what);
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
      this.#install(EMPTY, null, undefined);
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
    // Data temps are written only under the lock, so none of them is in flight now.
    const dataPrefix = `.${basename(this.#path)}.tmp-`;
    // Lock temps are written before taking the lock: remove only those of dead processes.
    const lockPrefix = `.${basename(this.#lock.path)}-`;
    const dir = dirname(this.#path);
    const me = await processIdentity();
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.isFile) continue;
      const path = join(dir, entry.name);
      if (entry.name.startsWith(dataPrefix)) {
        if (/^\d+-[0-9a-f]{8}$/.test(entry.name.slice(dataPrefix.length))) {
          await Deno.remove(path).catch(() => {});
        }
      } else if (
        entry.name.startsWith(lockPrefix) && !processLocks().temps.has(path) &&
        /^\d+-[0-9a-f]{8}\.tmp$/.test(entry.name.slice(lockPrefix.length))
      ) {
        const info = await readLock(path).catch(() => null);
        if (info === null) continue;
        const alive = await holderAlive(info, me);
        const age = info.mtime === null ? 0 : Date.now() - info.mtime;
        if (alive === false || (alive === undefined && age > UNVERIFIABLE_LOCK_STALE_MS)) {
          await Deno.remove(path).catch(() => {});
        }
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
    /** Ids of the entries under `prefix` as this batch has left them so far. */
    const idsUnder = (prefix: Key): Set<string> => {
      const ids = new Set<string>();
      for (const rec of underPrefix(base.sorted, prefix)) if (!overlay.has(rec.id)) ids.add(rec.id);
      for (const [id, rec] of overlay) if (rec && hasPrefix(rec.raw.key, prefix)) ids.add(id);
      return ids;
    };
    const results: OperationResult[] = [];
    const compacts: number[] = [];
    let changed = false;
    for (const { op } of batch) {
      if (op.kind === "clear" || op.kind === "purge") {
        let removed = 0;
        for (const id of idsUnder(op.kind === "clear" ? op.prefix : [])) {
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
        } else {
          const id = JSON.stringify(m.key);
          if (current(id)) {
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
      const bytesAfter = await this.#write(changed ? merge(base, overlay) : base);
      for (const i of compacts) results[i] = { bytesBefore, bytesAfter };
    }
    return results;
  }

  /** Write `next` as the file and make it the state; resolves the file's size. */
  async #write(next: State): Promise<number> {
    const bytes = render(next.sorted);
    try {
      await writeFileAtomic(this.#path, bytes, { sync: this.#sync });
    } catch (err) {
      throw new Error(
        `Cannot commit to store "${this.#name}": writing ${this.#path} failed (${
          (err as Error)?.message ?? err
        }); the commit was not acknowledged`,
        { cause: err },
      );
    }
    this.#writes++;
    // We still hold the lock, so the file at the path is the one just written.
    let file: Deno.FsFile | undefined;
    try {
      file = await Deno.open(this.#path, { read: true });
      this.#install(next, stampOf(await file.stat()), file);
    } catch {
      file?.close();
      // Unknown identity: the next read re-reads the file, which holds `next`.
      this.#install(next, { dev: -1, ino: -1, size: -1, mtime: null }, undefined);
    }
    return bytes.length;
  }

  // -- locking -------------------------------------------------------------

  /** Run `fn` alone within this process (orders reloads against writes). */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#mutex.then(fn);
    this.#mutex = run.then(() => {}, () => {});
    return run;
  }

  /** Run `fn` holding the lock file, then the in-process mutex (always in that order). */
  async #locked<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const held = await this.#lock.acquire(what, this.#lockTimeout);
    try {
      return await this.#exclusive(async () => {
        try {
          return await fn();
        } finally {
          this.#lockHeld = false;
        }
      });
    } finally {
      if (!await this.#lock.release(held)) {
        console.warn(
          `Store "${this.#name}": the lock file ${this.#lock.path} was removed or replaced while this process held it; another process judged it stale`,
        );
      }
    }
  }
}

/** The state after applying `overlay` to `base`. */
function merge(base: State, overlay: Map<string, Rec | null>): State {
  const entries = new Map(base.entries);
  const added: Rec[] = [];
  for (const [id, rec] of overlay) {
    if (rec === null) {
      entries.delete(id);
    } else {
      if (!base.entries.has(id)) added.push(rec);
      entries.set(id, rec);
    }
  }
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
  return { entries, sorted };
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
 * console.assert((await store.get(["flow", "counter", "count"]))?.value === 1);
 * await store.close();
 * console.assert((await Deno.readTextFile(`${dir}/state.json`)).includes('"count"'));
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
