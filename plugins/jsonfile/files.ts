/**
 * The files of a jsonfile store, by name and by identity. Beside the store
 * file `<path>` live:
 *
 * | file | written by | removed by |
 * | --- | --- | --- |
 * | `<path>.lock` | each writer, under its lock (see `lock.ts`) | a holder of the lock: a store that closes, or gc |
 * | `.<name>.tmp-<pid>-<8 hex>` | a write, renamed over `<path>` | the write if it fails; else the next open, or gc, once `<pid>` is gone |
 * | `<path>.corrupt-<timestamp>` | a store that found `<path>` unreadable, moving it aside | a person (never overwritten) |
 *
 * (`<name>` is the base name of `<path>`; temp files of `writeFileAtomic()`
 * in src/_fs.ts have the same shape.) Tools that clean up after crashed
 * processes use the functions here rather than matching names themselves.
 *
 * @module
 */
import { setAside } from "../../src/_fs.ts";
import { parseTempName as parseTempFileName, tempPathFor } from "../../src/_fs.ts";

/** The lock file of the store file `path`: `<path>.lock`. */
export function lockPathOf(path: string): string {
  return `${path}.lock`;
}

/** Whether a file name is a lock file's, `<store file name>.lock`. */
export function isLockFileName(fileName: string): boolean {
  return fileName.length > ".lock".length && fileName.endsWith(".lock");
}

/** A new temp file name beside the store file `path` (the core's one temp-file format). */
export const tempPathOf: (path: string) => string = tempPathFor;

/**
 * What a temp file's name says: the name of the file it was to replace, and
 * the pid of the process that wrote it; `undefined` for any other name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTempName } from "./files.ts";
 *
 * assert.deepEqual(parseTempName(".state.json.tmp-4242-0a1b2c3d"), { of: "state.json", pid: 4242 });
 * assert.equal(parseTempName("state.json"), undefined);
 * ```
 */
export const parseTempName: (fileName: string) => { of: string; pid: number } | undefined =
  parseTempFileName;

/**
 * Move the unreadable store file `path` aside, never overwriting anything,
 * as `<path>.corrupt-<timestamp>` (`-<n>` appended when that name is
 * taken); resolves the new path.
 */
export function moveCorruptAside(path: string): Promise<string> {
  return setAside(path).then((moved) => moved.movedTo);
}

const CORRUPT_NAME = /^(.+)\.corrupt-(\d{8}T\d{9}Z)(?:-\d+)?$/;

/**
 * What the name of a file moved aside by {@linkcode moveCorruptAside} says:
 * the name of the store file, and when (`20260102T030405123Z`); `undefined`
 * for any other name.
 */
export function parseCorruptName(fileName: string): { of: string; timestamp: string } | undefined {
  const match = CORRUPT_NAME.exec(fileName);
  return match === null ? undefined : { of: match[1], timestamp: match[2] };
}

// ---------------------------------------------------------------------------
// Identity

/** Identity of the file a state was loaded from. */
export interface Stamp {
  dev: number;
  ino: number | null;
  size: number;
  mtime: number | null;
}

/** The identity of the file `info` describes. */
export function stampOf(info: Deno.FileInfo): Stamp {
  return { dev: info.dev, ino: info.ino, size: info.size, mtime: info.mtime?.getTime() ?? null };
}

/**
 * Whether `info` is the file `stamp` was taken from. Writers always replace
 * the file by rename and the driver keeps the loaded file open (so its inode
 * cannot be reused), hence an unchanged device+inode means unchanged content.
 * Without inodes (Windows), `strict` treats every file as changed; otherwise
 * size and mtime decide.
 */
export function sameFile(
  info: Deno.FileInfo | null,
  stamp: Stamp | null,
  strict: boolean,
): boolean {
  if (info === null || stamp === null) return info === stamp;
  if (info.ino === null || stamp.ino === null) {
    return !strict && info.size === stamp.size && info.mtime?.getTime() === stamp.mtime;
  }
  return info.ino === stamp.ino && info.dev === stamp.dev && info.size === stamp.size &&
    (info.mtime?.getTime() ?? null) === stamp.mtime;
}

/** `stat` of `path`, `null` if it does not exist. Synchronous: a stat costs microseconds, a thread hop more. */
export function statOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.statSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/** All bytes of `file` from where it stands; `sizeHint` sizes the first buffer. */
export async function readAll(file: Deno.FsFile, sizeHint: number): Promise<Uint8Array> {
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

/** Whether two `stat`s are of one file (device and inode). */
export function sameInode(a: Deno.FileInfo, b: Deno.FileInfo): boolean {
  return a.ino === b.ino && a.dev === b.dev;
}
