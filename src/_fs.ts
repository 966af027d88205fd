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

/**
 * Move a damaged file aside as `<path>.corrupt-<timestamp>` (never overwriting
 * anything) and return the new path.
 */
export async function moveAside(path: string): Promise<string> {
  let target = `${path}.corrupt-${fileTimestamp()}`;
  for (let i = 1;; i++) {
    try {
      await Deno.lstat(target);
      target = `${path}.corrupt-${fileTimestamp()}-${i}`;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) break;
      throw err;
    }
  }
  await Deno.rename(path, target);
  await syncDir(dirname(path));
  return target;
}
