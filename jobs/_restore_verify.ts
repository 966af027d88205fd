/**
 * Verifying a backup file, for the `restore` job and `verifyBackup`: the
 * `.sha256` file beside it, gzip and its CRC, the header and format version,
 * every entry line (a key, a JSON value, an expiry; keys strictly
 * increasing), and the trailer's entry count and SHA-256. A damaged file is
 * refused with a `StoreCorruptError` saying what is wrong. `jobs/restore.ts`
 * re-exports the public names, and reads the file a second time through
 * {@linkcode readBackup} to write the entries it checked.
 *
 * @module
 */
import { resolve } from "node:path";
import type { Progress } from "../src/jobs/progress.ts";
import { assertKey, compareKeys, keysEqual } from "../src/store/keys.ts";
import type { JsonValue, Key } from "../src/store/types.ts";
import {
  cancelled,
  damaged,
  isStorableJson,
  newSha256,
  parseChecksumLine,
  readGzipLines,
} from "../src/archive_format.ts";
import {
  BACKUP_FORMAT,
  BACKUP_VERSION,
  type BackupHeader,
  type BackupTrailer,
  type ChangeLine,
  FULL_BACKUP_VERSION,
  INCREMENT_VERSION,
  RESTORE_MARKER_KEY,
} from "./_backup_format.ts";
import { parseJson } from "../src/_json.ts";

/**
 * What {@linkcode verifyBackup} found in a sound backup file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { backupStore, type VerifiedBackup, verifyBackup } from "@flowstate/core/jobs";
 *
 * const dir = await Deno.makeTempDir();
 * await using store = await openStore({ plugin: "memory" }, { name: "main" });
 * await store.set(["a"], 1);
 * const info = await backupStore(store, `${dir}/main.fsbackup`);
 * const verified: VerifiedBackup = await verifyBackup(`${dir}/main.fsbackup`);
 * assert.equal(verified.sha256, info.sha256);
 * assert.equal(verified.entries, 1);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface VerifiedBackup {
  /** The file (absolute). */
  file: string;
  /** Its header. */
  header: BackupHeader;
  /** Its trailer. */
  trailer: BackupTrailer;
  /** Entries in the file. */
  entries: number;
  /** SHA-256 (hex) of the compressed file. */
  sha256: string;
  /** Whether a `<file>.sha256` was found and matched. */
  checksumFile: boolean;
}

/**
 * Options for {@linkcode verifyBackup}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { backupStore, createProgress, verifyBackup, type VerifyBackupOptions } from "@flowstate/core/jobs";
 *
 * const dir = await Deno.makeTempDir();
 * await using store = await openStore({ plugin: "memory" }, { name: "main" });
 * await backupStore(store, `${dir}/main.fsbackup`);
 * const stop = new AbortController();
 * const options: VerifyBackupOptions = { signal: stop.signal, progress: createProgress({ mode: "quiet" }) };
 * assert.equal((await verifyBackup(`${dir}/main.fsbackup`, options)).entries, 0);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface VerifyBackupOptions {
  /** Stops reading between lines. */
  signal?: AbortSignal;
  /**
   * How its errors begin (default `Cannot restore from <path>`): an incremental backup that
   * verifies the backup it follows says what it was doing.
   */
  what?: string;
  /** Receives progress (lines read). */
  progress?: Progress;
}

/** One entry line of a backup file, checked. */
export interface EntryLine {
  /** The entry's key. */
  key: Key;
  /** Its value. */
  value: JsonValue;
  /** When it expires (ms since the epoch), or `null`. */
  expiresAt: number | null;
}

const CHECK_EVERY = 1000;

/**
 * Read a backup file through and check everything (see the module
 * documentation) without writing anything. Resolves what it holds; rejects
 * with a `StoreCorruptError` naming the problem when the file is damaged,
 * and with `Deno.errors.NotFound` when it does not exist.
 *
 * @example
 * ```ts
 * import { backupStore, verifyBackup } from "@flowstate/core/jobs";
 * import { openStore } from "@flowstate/core";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await using store = await openStore({ plugin: "memory" }, { name: "main" });
 * await store.set(["flow", "counter", "count"], 1);
 * await backupStore(store, `${dir}/main.fsbackup`);
 * const backup = await verifyBackup(`${dir}/main.fsbackup`);
 * assert.equal(backup.entries, 1);
 * assert.equal(backup.header.store, "main");
 * assert.equal(backup.checksumFile, true);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function verifyBackup(
  path: string,
  options: VerifyBackupOptions = {},
): Promise<VerifiedBackup> {
  const file = resolve(path);
  const what = options.what ?? `Cannot restore from ${path}`;
  let expectedSha: string | undefined;
  try {
    const text = await Deno.readTextFile(`${file}.sha256`);
    expectedSha = parseChecksumLine(text);
    if (expectedSha === undefined) {
      throw damaged(what, `${file}.sha256`, `${path}.sha256 is not a sha256sum line`);
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const result = await readBackup(file, what, options, undefined);
  if (expectedSha !== undefined && result.sha256 !== expectedSha) {
    throw damaged(
      what,
      file,
      `its SHA-256 is ${result.sha256}, but ${path}.sha256 says ${expectedSha} (the file was changed or damaged)`,
    );
  }
  return { ...result, file, checksumFile: expectedSha !== undefined };
}

/**
 * Read and check a backup file; call `onEntry` for each entry (in file
 * order, with its index) if given. Every check of {@linkcode verifyBackup}
 * except the `.sha256` file.
 */
export async function readBackup(
  file: string,
  what: string,
  options: VerifyBackupOptions,
  onEntry:
    | ((entry: EntryLine & Partial<ChangeLine>, index: number, bytes: number) => Promise<void>)
    | undefined,
): Promise<Omit<VerifiedBackup, "file" | "checksumFile">> {
  const fileHash = newSha256();
  const entryHash = newSha256();
  let header: BackupHeader | undefined;
  let trailer: BackupTrailer | undefined;
  let entries = 0;
  let lineNo = 0;
  let previous: Key | undefined;
  let lastSeq: number | undefined;
  const progress = options.progress;
  for await (
    const line of readGzipLines(file, { what, onBytes: (chunk) => fileHash.update(chunk) })
  ) {
    lineNo++;
    if (trailer !== undefined) {
      throw damaged(what, file, `it has data after its trailer (line ${lineNo})`);
    }
    let parsed: unknown;
    try {
      parsed = parseJson(line);
    } catch {
      throw damaged(
        what,
        file,
        header === undefined
          ? "it is not a Flowstate backup (its first line is not JSON)"
          : `line ${lineNo} is not valid JSON`,
      );
    }
    if (header === undefined) {
      header = checkBackupHeader(parsed, what, file);
      continue;
    }
    const record = parsed as Record<string, unknown>;
    if (typeof record === "object" && record !== null && "end" in record) {
      trailer = checkTrailer(record, what, file, lineNo);
      continue;
    }
    if (header.kind === "increment") {
      const change = checkChange(parsed, what, file, lineNo);
      if (change.seq <= (lastSeq ?? header.fromSeq!) || change.seq > header.toSeq!) {
        throw damaged(
          what,
          file,
          `line ${lineNo}: change ${change.seq} is out of order (the increment holds the changes ` +
            `after ${header.fromSeq} up to ${header.toSeq}, in order; the one before was ${
              lastSeq ?? "none"
            })`,
        );
      }
      lastSeq = change.seq;
      entryHash.update(line);
      entryHash.update("\n");
      if (onEntry) await onEntry(change as EntryLine & ChangeLine, entries, line.length);
      entries++;
      if (entries % CHECK_EVERY === 0) {
        progress?.update(entries);
        if (options.signal?.aborted) throw cancelled(what);
      }
      continue;
    }
    const entry = checkEntry(parsed, what, file, lineNo);
    if (previous !== undefined && compareKeys(previous, entry.key) >= 0) {
      throw damaged(
        what,
        file,
        `line ${lineNo}: key ${JSON.stringify(entry.key)} is not after the key before it ` +
          `(entries are written in key order, each key once)`,
      );
    }
    previous = entry.key;
    entryHash.update(line);
    entryHash.update("\n");
    if (onEntry) await onEntry(entry, entries, line.length);
    entries++;
    if (entries % CHECK_EVERY === 0) {
      progress?.update(entries);
      if (options.signal?.aborted) throw cancelled(what);
    }
  }
  if (header === undefined) {
    throw damaged(what, file, "it is empty (no header line)");
  }
  if (trailer === undefined) {
    throw damaged(
      what,
      file,
      `it is truncated: no trailer after ${entries} entries (the backup did not finish writing it)`,
    );
  }
  if (trailer.entries !== entries) {
    throw damaged(
      what,
      file,
      `its trailer says ${trailer.entries} entries, but it holds ${entries}`,
    );
  }
  const sha = entryHash.digest("hex");
  if (trailer.sha256 !== sha) {
    throw damaged(
      what,
      file,
      `the SHA-256 of its entries is ${sha}, but its trailer says ${trailer.sha256}`,
    );
  }
  return { header, trailer, entries, sha256: fileHash.digest("hex") };
}

/**
 * Check a parsed header line: a Flowstate backup's, of a format version this
 * code reads, with the fields its kind needs. Throws a `StoreCorruptError`
 * (starting with `what`) naming what is wrong; the pruning of backups uses
 * it to recognise its own files.
 */
export function checkBackupHeader(value: unknown, what: string, file: string): BackupHeader {
  const h = value as Partial<BackupHeader> | null;
  if (typeof h !== "object" || h === null || h.format !== BACKUP_FORMAT) {
    throw damaged(what, file, `it is not a Flowstate backup (no "${BACKUP_FORMAT}" header)`);
  }
  if (typeof h.version !== "number" || !Number.isInteger(h.version) || h.version < 1) {
    throw damaged(
      what,
      file,
      `its header has no valid format version (${JSON.stringify(h.version)})`,
    );
  }
  if (h.version > BACKUP_VERSION) {
    throw damaged(
      what,
      file,
      `it is backup format version ${h.version}, newer than this Flowstate reads (${BACKUP_VERSION}); upgrade Flowstate to restore it`,
    );
  }
  if (typeof h.store !== "string" || typeof h.plugin !== "string") {
    throw damaged(what, file, "its header lacks the store or plugin name");
  }
  const seq = (n: unknown) => typeof n === "number" && Number.isInteger(n) && n >= 0;
  if ((h.kind === "increment") !== (h.version === INCREMENT_VERSION)) {
    throw damaged(
      what,
      file,
      `its header says format version ${h.version}${
        h.kind === undefined ? "" : ` and kind ${JSON.stringify(h.kind)}`
      }: increments are version ${INCREMENT_VERSION}, full backups version ${FULL_BACKUP_VERSION}`,
    );
  }
  if (h.kind !== undefined) {
    if (
      h.kind !== "increment" || !seq(h.fromSeq) || !seq(h.toSeq) || h.toSeq! < h.fromSeq! ||
      typeof h.base !== "string"
    ) {
      throw damaged(
        what,
        file,
        "its header is not a valid increment's (kind, fromSeq <= toSeq, base)",
      );
    }
  } else if (h.feedSeq !== undefined && !seq(h.feedSeq)) {
    throw damaged(what, file, `its header's feedSeq is not a sequence number`);
  }
  return h as BackupHeader;
}

function checkTrailer(
  value: Record<string, unknown>,
  what: string,
  file: string,
  lineNo: number,
): BackupTrailer {
  const t = value as Partial<BackupTrailer>;
  if (
    t.end !== BACKUP_FORMAT || typeof t.entries !== "number" || !Number.isInteger(t.entries) ||
    typeof t.sha256 !== "string"
  ) {
    throw damaged(what, file, `line ${lineNo} is not a valid trailer`);
  }
  return t as BackupTrailer;
}

function checkChange(value: unknown, what: string, file: string, lineNo: number): ChangeLine {
  const c = value as Partial<ChangeLine> | null;
  if (typeof c !== "object" || c === null || Array.isArray(c)) {
    throw damaged(what, file, `line ${lineNo} is not a change object`);
  }
  if (typeof c.seq !== "number" || !Number.isInteger(c.seq) || c.seq < 1) {
    throw damaged(what, file, `line ${lineNo}: seq must be a sequence number`);
  }
  if (typeof c.at !== "number" || !Number.isFinite(c.at)) {
    throw damaged(what, file, `line ${lineNo}: at must be a time in ms`);
  }
  try {
    assertKey(c.key, `line ${lineNo}`);
  } catch (err) {
    throw damaged(what, file, (err as Error).message);
  }
  if (c.op !== "set" && c.op !== "delete") {
    throw damaged(what, file, `line ${lineNo}: op must be "set" or "delete"`);
  }
  if (c.op === "set" && (!("value" in c) || !isStorableJson(c.value))) {
    throw damaged(what, file, `line ${lineNo} sets no value, or a number JSON cannot hold`);
  }
  const expiresAt = c.expiresAt ?? null;
  if (expiresAt !== null && (typeof expiresAt !== "number" || !Number.isFinite(expiresAt))) {
    throw damaged(what, file, `line ${lineNo}: expiresAt must be a number of ms or null`);
  }
  return { ...c, expiresAt } as ChangeLine;
}

function checkEntry(value: unknown, what: string, file: string, lineNo: number): EntryLine {
  const e = value as Partial<EntryLine> | null;
  if (typeof e !== "object" || e === null || Array.isArray(e)) {
    throw damaged(what, file, `line ${lineNo} is not an entry object`);
  }
  try {
    assertKey(e.key, `line ${lineNo}`);
  } catch (err) {
    throw damaged(what, file, (err as Error).message);
  }
  if (keysEqual(e.key, RESTORE_MARKER_KEY)) {
    throw damaged(
      what,
      file,
      `line ${lineNo} is the marker of an unfinished restore; the backup was taken of a partial store`,
    );
  }
  if (!("value" in e) || !isStorableJson(e.value)) {
    throw damaged(what, file, `line ${lineNo} has no value, or a number JSON cannot hold`);
  }
  const expiresAt = e.expiresAt ?? null;
  if (expiresAt !== null && (typeof expiresAt !== "number" || !Number.isFinite(expiresAt))) {
    throw damaged(what, file, `line ${lineNo}: expiresAt must be a number of ms or null`);
  }
  return { key: e.key, value: e.value as JsonValue, expiresAt };
}
