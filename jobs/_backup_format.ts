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

/** How a backup makes its snapshot; see the module documentation. */
export type BackupConsistency = "snapshot" | "per-key";

/** The header line of a backup file. */
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
   */
  encrypted?: { keyIds: string[] };
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
}

/** One change line of an incremental backup (a feed entry, without versions). */
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

/** The trailer line of a backup file. */
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
