/**
 * The backup file format's names, shared by `jobs/backup.ts` (which writes
 * and re-exports them) and `jobs/_restore_verify.ts` (which reads them); see
 * `jobs/backup.ts` for the format.
 *
 * @module
 */
import type { ChangeActor, JsonValue, Key } from "../src/store/types.ts";

/** The `format` of a backup file's header. */
export const BACKUP_FORMAT = "flowstate.backup";

/**
 * The newest backup format version this code writes and reads: full backups
 * are version 1 (readable by every release), increments version 2.
 */
export const BACKUP_VERSION = 2;

/** The format version of a full backup. */
export const FULL_BACKUP_VERSION = 1;

/** The format version of an incremental backup (the changes after another backup). */
export const INCREMENT_VERSION = 2;

/** The file name extension of backups. */
export const BACKUP_EXTENSION = ".fsbackup";

/**
 * The key a restore writes first and deletes last: while it exists, the
 * store holds an unfinished restore (and a backup of it is refused).
 */
export const RESTORE_MARKER_KEY: Key = Object.freeze(["flowstate", "restore-in-progress"]);

/**
 * How a backup makes its snapshot; see the module documentation.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { type BackupConsistency, backupStore } from "@flowstate/core/jobs";
 *
 * const dir = await Deno.makeTempDir();
 * await using store = await openStore({ plugin: "memory" }, { name: "main" });
 * await store.set(["a"], 1);
 * const consistency: BackupConsistency = "per-key"; // no retry on concurrent writes
 * const info = await backupStore(store, `${dir}/main.fsbackup`, { consistency });
 * assert.equal(info.consistency, "per-key");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export type BackupConsistency = "snapshot" | "per-key";

/**
 * The header line of a backup file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { type BackupHeader, backupStore, verifyBackup } from "@flowstate/core/jobs";
 *
 * const dir = await Deno.makeTempDir();
 * await using store = await openStore({ plugin: "memory" }, { name: "main" });
 * await backupStore(store, `${dir}/main.fsbackup`);
 * const header: BackupHeader = (await verifyBackup(`${dir}/main.fsbackup`)).header;
 * assert.deepEqual([header.store, header.plugin, header.kind], ["main", "memory", undefined]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface BackupHeader {
  /** Always {@linkcode BACKUP_FORMAT}. */
  format: string;
  /** The format version. */
  version: number;
  /** The name of the store it was taken from. */
  store: string;
  /** The plugin of that store. */
  plugin: string;
  /** When the backup started (ISO 8601). */
  createdAt: string;
  /**
   * Present when the store is encrypted: its values are written sealed, as
   * stored, and `keyIds` are the key ids the store had (the current one
   * first). A restore needs a target encrypted with one of them.
   * `plaintext` (written since 0.7) are the plaintext paths the values
   * carry beside their sealed text: a target declaring others records them,
   * so that its queries on a path they lack wait for rekey.
   */
  encrypted?: { keyIds: string[]; plaintext?: string[][] };
  /**
   * A full backup of a store that keeps a change feed: the feed's last
   * sequence number read before the snapshot started (replaying the feed's
   * changes after it over the snapshot is exact).
   */
  feedSeq?: number;
  /** The commit time of change `feedSeq` (`null`: none, or no longer kept). */
  feedAt?: number | null;
  /** `"increment"` for an incremental backup; absent for a full one. */
  kind?: "increment";
  /** An increment: the sequence number its changes come after (exclusive). */
  fromSeq?: number;
  /** An increment: the feed's last sequence number it covers (inclusive). */
  toSeq?: number;
  /** An increment: the commit time of change `toSeq` (`null`: none). */
  toAt?: number | null;
  /** An increment: the SHA-256 of the full backup file its chain starts from. */
  base?: string;
  /**
   * Which project's store it was taken of: a SHA-256 (hex) of the project
   * home's real path and the store name, written by the backup job (absent in
   * backups written by older versions, or by `backupStore` without `origin`).
   * Pruning deletes only the backups whose `origin` is the store's it prunes
   * for, so projects can share a backup directory. Restore ignores it.
   */
  origin?: string;
}

/**
 * One change line of an incremental backup (a feed entry, without versions).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ChangeLine } from "@flowstate/core/jobs";
 *
 * // One line of an incremental backup file (NDJSON), as a restore replays it.
 * const line: ChangeLine = { seq: 42, at: Date.UTC(2026, 0, 1), key: ["orders", "1"], op: "set", value: { total: 5 }, expiresAt: null };
 * const parsed = JSON.parse(JSON.stringify(line)) as ChangeLine;
 * assert.deepEqual(parsed.op === "set" ? parsed.value : undefined, { total: 5 });
 * ```
 */
export interface ChangeLine {
  /** The feed's sequence number. */
  seq: number;
  /** Its commit time (ms since the epoch). */
  at: number;
  /** The key changed. */
  key: Key;
  /** What happened. */
  op: "set" | "delete";
  /** The new value, for `"set"` (as stored: sealed in an encrypted store). */
  value?: JsonValue;
  /** The new expiry, for `"set"`. */
  expiresAt: number | null;
  /** Who made the change. */
  by?: ChangeActor;
}

/**
 * The trailer line of a backup file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { type BackupTrailer, backupStore, verifyBackup } from "@flowstate/core/jobs";
 *
 * const dir = await Deno.makeTempDir();
 * await using store = await openStore({ plugin: "memory" }, { name: "main" });
 * await store.set(["a"], 1);
 * await store.set(["b"], 2);
 * const info = await backupStore(store, `${dir}/main.fsbackup`);
 * const trailer: BackupTrailer = (await verifyBackup(`${dir}/main.fsbackup`)).trailer;
 * assert.equal(trailer.entries, 2);
 * assert.equal(trailer.consistency, info.consistency);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface BackupTrailer {
  /** Always {@linkcode BACKUP_FORMAT}: marks the line as the trailer. */
  end: string;
  /** How many entry lines come before it. */
  entries: number;
  /** SHA-256 (hex) of the entry lines, each with its newline. */
  sha256: string;
  /** How the snapshot was taken. */
  consistency: BackupConsistency;
  /**
   * A full backup of a store with a feed: the feed's last sequence number
   * read after the snapshot's entries were read. The file holds the store as
   * it was at some point up to this change: a point-in-time restore needs a
   * time at or after it.
   */
  feedSeqEnd?: number;
}
