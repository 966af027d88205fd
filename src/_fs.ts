/**
 * Durable file helpers shared by file-backed plugins and jobs.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { uniqueRandomHex } from "./_random.ts";

/** Fsync a directory so a rename inside it survives power loss. */
export async function syncDir(dir: string): Promise<void> {
  let handle: Deno.FsFile | undefined;
  try {
    handle = await Deno.open(dir, { read: true });
    await handle.sync();
  } catch (err) {
    // Some file systems cannot fsync a directory; the rename is still atomic.
    if (
      !(err instanceof Deno.errors.PermissionDenied) && !(err instanceof Deno.errors.NotSupported)
    ) {
      if (!(err instanceof Error && /EINVAL|EISDIR|not supported/i.test(err.message))) throw err;
    }
  } finally {
    handle?.close();
  }
}

/**
 * A new temp file name beside `path`, for writing a file that then replaces
 * `path`: `.<name>.tmp-<this pid>-<8 random hex>`. The one format every temp
 * file Flowstate writes has (gc finds the ones a dead process left by it).
 */
export function tempPathFor(path: string): string {
  return join(
    dirname(path),
    `.${basename(path)}.tmp-${Deno.pid}-${uniqueRandomHex(4)}`,
  );
}

const TEMP_NAME = /^\.(.+)\.tmp-(\d+)-[0-9a-f]{8}$/;

/**
 * What a temp file's name (from {@linkcode tempPathFor}) says: the name of
 * the file it was to replace, and the pid of the process that wrote it;
 * `undefined` for any other name.
 */
export function parseTempName(fileName: string): { of: string; pid: number } | undefined {
  const match = TEMP_NAME.exec(fileName);
  return match === null ? undefined : { of: match[1], pid: Number(match[2]) };
}

/**
 * Replace `path` with `data` atomically: write a temp file beside it, fsync it
 * (unless `sync` is false), rename it over `path`, and fsync the directory.
 * A crash at any point leaves either the old or the new content, never a mix.
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
  options: { sync?: boolean } = {},
): Promise<void> {
  const sync = options.sync ?? true;
  const dir = dirname(path);
  const tmp = tempPathFor(path);
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
  try {
    let written = 0;
    while (written < bytes.length) written += await file.write(bytes.subarray(written));
    if (sync) await file.sync();
  } catch (err) {
    file.close();
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
  file.close();
  try {
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
  if (sync) await syncDir(dir);
}

/** A timestamp safe for file names: `20260102T030405123Z`. */
export function fileTimestamp(date: Date = new Date()): string {
  return date.toISOString().replace(/[-:]/g, "").replace(".", "");
}

/** Where {@linkcode setAside} put a damaged file and its side files. */
export interface SetAside {
  /** The damaged file's new path: `<path>.corrupt-<timestamp>`. */
  movedTo: string;
  /** Its side files' new paths (`<path><side>.corrupt-<timestamp>`), in the order given. */
  sideFiles: string[];
}

/**
 * Set a damaged file aside as `<path>.corrupt-<timestamp>`, with each of its
 * side files that exists (`<path><side>`, e.g. SQLite's `-wal`) under the same
 * suffix, never overwriting anything.
 *
 * Every file is first hard-linked to its new name and the directory synced;
 * only then are the old names removed, the damaged file's first. A kill at any
 * point leaves either the store untouched at `path` or a complete set-aside
 * copy (a SQLite file with its `-wal`), never a copy without the part that
 * held its last commits. Running it again after such a kill reuses the links
 * it made. Where hard links are not supported, files are copied and synced.
 *
 * `afterStep` is for tests: it is called after each step, and throwing from
 * it stops there, as a kill would.
 */
export async function setAside(
  path: string,
  sides: readonly string[] = [],
  afterStep?: (step: string) => void | Promise<void>,
): Promise<SetAside> {
  const dir = dirname(path);
  const info = await Deno.lstat(path);
  const target = await earlierLinkOf(path, info) ?? await freeCorruptName(path);
  const suffix = target.slice(path.length);
  const present: string[] = [];
  for (const side of sides) {
    try {
      await Deno.lstat(path + side);
      present.push(side);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  for (const side of ["", ...present]) {
    await linkOrCopy(path + side, path + side + suffix);
    await afterStep?.(`linked file${side}`);
  }
  await syncDir(dir);
  await afterStep?.("synced links");
  for (const side of ["", ...present]) {
    await Deno.remove(path + side);
    await afterStep?.(`removed file${side}`);
  }
  await syncDir(dir);
  return { movedTo: target, sideFiles: present.map((side) => path + side + suffix) };
}

/** The `<path>.corrupt-…` name a killed earlier {@linkcode setAside} linked to `path`'s file. */
async function earlierLinkOf(path: string, info: Deno.FileInfo): Promise<string | undefined> {
  if (info.ino === null) return undefined;
  const prefix = `${basename(path)}.corrupt-`;
  for await (const entry of Deno.readDir(dirname(path))) {
    if (!entry.name.startsWith(prefix)) continue;
    const candidate = join(dirname(path), entry.name);
    const other = await Deno.lstat(candidate).catch(() => undefined);
    if (other !== undefined && other.ino === info.ino && other.dev === info.dev) return candidate;
  }
  return undefined;
}

async function freeCorruptName(path: string): Promise<string> {
  let target = `${path}.corrupt-${fileTimestamp()}`;
  for (let i = 1;; i++) {
    try {
      await Deno.lstat(target);
      target = `${path}.corrupt-${fileTimestamp()}-${i}`;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return target;
      throw err;
    }
  }
}

/** Hard-link `from` to `to` (kept if it is already that file); copy and sync where links fail. */
async function linkOrCopy(from: string, to: string): Promise<void> {
  try {
    await Deno.link(from, to);
    return;
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) {
      const [a, b] = await Promise.all([Deno.lstat(from), Deno.lstat(to)]);
      if (a.ino !== null && a.ino === b.ino && a.dev === b.dev) return;
      throw err;
    }
    if (err instanceof Deno.errors.NotFound) throw err;
  }
  await Deno.copyFile(from, to);
  const copy = await Deno.open(to, { read: true, write: true });
  try {
    await copy.sync();
  } finally {
    copy.close();
  }
}

/**
 * What to say of a file the file system will not let this process read (its
 * mode or owner: a `Deno.errors.PermissionDenied`, not Deno's own
 * `--allow-read`, which is not the fix): the path, and how to fix it.
 */
export function deniedReading(path: string): string {
  return `the file system denies this process reading ${path}; make it readable by the user ` +
    `Flowstate runs as (chmod a+r, or chown), or run as one who may read it`;
}

/** Whether the file system refuses this process reading the file at `path` (a path or URL). */
export async function readDenied(path: string | URL): Promise<boolean> {
  try {
    (await Deno.open(path, { read: true })).close();
    return false;
  } catch (err) {
    return err instanceof Deno.errors.PermissionDenied;
  }
}
