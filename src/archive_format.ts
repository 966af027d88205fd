/**
 * The file format of archives and backups, shared by the archive, backup and
 * restore jobs and the CLI: gzip'd newline-delimited JSON written through a
 * temp file (fsync, rename, fsync of the directory) and read back as a stream
 * of lines, with SHA-256 of the compressed bytes computed on the way, and a
 * `sha256sum`-style `.sha256` file beside it. Internal: not exported from any
 * entry point. It imports only the ground floor (`src/_fs.ts`, `src/errors.ts`).
 *
 * Compression is the web `CompressionStream("gzip")`, built into Deno: zstd
 * would compress better and faster but is not available without a
 * dependency. Multi-member gzip (appending a second gzip stream to a file) is
 * not readable by `DecompressionStream`, so files are never appended to:
 * a file that grows is rewritten whole, beside the old one, and renamed over
 * it.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { basename, dirname } from "node:path";
import { syncDir, tempPathFor } from "./_fs.ts";
import { StoreCorruptError } from "./errors.ts";

/** Lines are gathered into chunks of about this many UTF-16 code units before compressing. */
const CHUNK_CHARS = 64 * 1024;

/** A new streaming SHA-256 (node:crypto, so that it can be fed chunk by chunk). */
export function newSha256(): Hash {
  return createHash("sha256");
}

/**
 * The size and SHA-256 of a file as it is read: pass `onBytes` to
 * {@linkcode readGzipLines}, then read `bytes` and `hex()` once it is read.
 */
export function runningChecksum(): {
  onBytes: (chunk: Uint8Array) => void;
  readonly bytes: number;
  hex: () => string;
} {
  const hash = newSha256();
  let bytes = 0;
  return {
    onBytes: (chunk) => {
      hash.update(chunk);
      bytes += chunk.length;
    },
    get bytes() {
      return bytes;
    },
    hex: () => hash.digest("hex"),
  };
}

/** The SHA-256 (lowercase hex) of a whole file, read as a stream. */
export async function sha256File(path: string): Promise<{ sha256: string; bytes: number }> {
  const hash = newSha256();
  let bytes = 0;
  using file = await Deno.open(path, { read: true });
  const buffer = new Uint8Array(256 * 1024);
  for (;;) {
    const n = await file.read(buffer);
    if (n === null) break;
    hash.update(buffer.subarray(0, n));
    bytes += n;
  }
  return { sha256: hash.digest("hex"), bytes };
}

/** What {@linkcode GzipFileWriter.finish} reports about the compressed file. */
export interface WrittenFile {
  /** The final path (the file is still at its temp path until `commit`). */
  path: string;
  /** Size of the compressed file in bytes. */
  bytes: number;
  /** SHA-256 (lowercase hex) of the compressed bytes. */
  sha256: string;
  /** Lines written. */
  lines: number;
}

/**
 * Writes gzip'd lines to a temp file beside `path`, in constant memory.
 * `finish()` fsyncs it, `commit()` renames it over `path` and fsyncs the
 * directory; `abort()` removes it. Nothing at `path` changes before `commit`.
 */
export class GzipFileWriter {
  /** The destination. */
  readonly path: string;
  /** The temp file being written, in the same directory. */
  readonly tempPath: string;
  #file: Deno.FsFile;
  #writer: WritableStreamDefaultWriter<BufferSource>;
  #pumping: Promise<void>;
  #encoder = new TextEncoder();
  #hash = newSha256();
  #bytes = 0;
  #lines = 0;
  #pending: string[] = [];
  #pendingChars = 0;
  #finished: WrittenFile | undefined;
  #closed = false;

  private constructor(path: string, tempPath: string, file: Deno.FsFile) {
    this.path = path;
    this.tempPath = tempPath;
    this.#file = file;
    const compress = new CompressionStream("gzip");
    this.#writer = compress.writable.getWriter();
    const hash = this.#hash;
    const sink = new WritableStream<Uint8Array>({
      write: async (chunk) => {
        hash.update(chunk);
        let written = 0;
        while (written < chunk.length) written += await file.write(chunk.subarray(written));
        this.#bytes += chunk.length;
      },
    });
    this.#pumping = compress.readable.pipeTo(sink);
    // A failed write surfaces through the writer; keep the promise from being unhandled.
    this.#pumping.catch(() => {});
  }

  /** Create the temp file beside `path` (its directory must exist). */
  static async create(path: string): Promise<GzipFileWriter> {
    const tempPath = tempPathFor(path);
    const file = await Deno.open(tempPath, { write: true, createNew: true });
    return new GzipFileWriter(path, tempPath, file);
  }

  /** Lines written so far. */
  get lines(): number {
    return this.#lines;
  }

  /** Append one line (a newline is added; `line` must not contain one). */
  async writeLine(line: string): Promise<void> {
    this.#pending.push(line, "\n");
    this.#pendingChars += line.length + 1;
    this.#lines++;
    if (this.#pendingChars >= CHUNK_CHARS) await this.#flush();
  }

  async #flush(): Promise<void> {
    if (this.#pending.length === 0) return;
    const bytes = this.#encoder.encode(this.#pending.join(""));
    this.#pending = [];
    this.#pendingChars = 0;
    await this.#writer.ready;
    await this.#writer.write(bytes);
  }

  /** Compress the rest, fsync and close the temp file; resolves its size and checksum. */
  async finish(): Promise<WrittenFile> {
    if (this.#finished) return this.#finished;
    await this.#flush();
    await this.#writer.close();
    await this.#pumping;
    await this.#file.sync();
    this.#file.close();
    this.#closed = true;
    this.#finished = {
      path: this.path,
      bytes: this.#bytes,
      sha256: this.#hash.digest("hex"),
      lines: this.#lines,
    };
    return this.#finished;
  }

  /** Rename the finished temp file over `path` and fsync the directory. */
  async commit(): Promise<WrittenFile> {
    const finished = await this.finish();
    await Deno.rename(this.tempPath, this.path);
    await syncDir(dirname(this.path));
    return finished;
  }

  /** Discard the temp file (safe to call at any point, and more than once). */
  async abort(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      await this.#writer.abort().catch(() => {});
      try {
        this.#file.close();
      } catch {
        // Already closed.
      }
    }
    await Deno.remove(this.tempPath).catch(() => {});
  }
}

/** Options for {@linkcode readGzipLines}. */
export interface ReadLinesOptions {
  /** Receives every compressed chunk as it is read (to checksum the file). */
  onBytes?: (chunk: Uint8Array) => void;
  /** Names the file in error messages (default: `path`). */
  display?: string;
  /** What was being done, for error messages (default `Cannot read <display>`). */
  what?: string;
  /** A line longer than this (decompressed characters) is refused (default: no limit). */
  maxLineChars?: number;
}

/**
 * Stream the lines of a gzip'd text file, in constant memory (one line at a
 * time). A file that is not gzip, is truncated, fails its gzip checksum, is not
 * UTF-8 or does not end with a newline throws a {@linkcode StoreCorruptError}
 * naming the file; a file that does not exist throws `Deno.errors.NotFound`.
 * The gzip checksum is only checked when the stream is read to its end.
 */
export async function* readGzipLines(
  path: string,
  options: ReadLinesOptions = {},
): AsyncGenerator<string> {
  const display = options.display ?? path;
  const what = options.what ?? `Cannot read ${display}`;
  const file = await Deno.open(path, { read: true });
  let bytes: ReadableStream<Uint8Array<ArrayBuffer>> = file.readable;
  const onBytes = options.onBytes;
  if (onBytes) {
    bytes = bytes.pipeThrough(
      new TransformStream<Uint8Array<ArrayBuffer>, Uint8Array<ArrayBuffer>>({
        transform(chunk, controller) {
          onBytes(chunk);
          controller.enqueue(chunk);
        },
      }),
    );
  }
  const stream: ReadableStream<BufferSource> = bytes;
  const text = stream
    .pipeThrough(new DecompressionStream("gzip"))
    .pipeThrough(new TextDecoderStream("utf-8", { fatal: true }));
  let rest = "";
  let lineNo = 0;
  const reader = text.getReader();
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<string>;
      try {
        chunk = await reader.read();
      } catch (err) {
        throw damaged(what, path, describeStreamError(err, lineNo), err);
      }
      if (chunk.done) break;
      const data = rest === "" ? chunk.value : rest + chunk.value;
      let start = 0;
      for (;;) {
        const nl = data.indexOf("\n", start);
        if (nl === -1) break;
        lineNo++;
        yield data.slice(start, nl);
        start = nl + 1;
      }
      rest = data.slice(start);
      if (options.maxLineChars !== undefined && rest.length > options.maxLineChars) {
        throw damaged(
          what,
          path,
          `line ${lineNo + 1} is longer than ${options.maxLineChars} characters`,
        );
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
  if (rest !== "") {
    throw damaged(what, path, `it ends in the middle of line ${lineNo + 1} (truncated?)`);
  }
}

function describeStreamError(err: unknown, lines: number): string {
  const message = err instanceof Error ? err.message : String(err);
  const where = lines === 0 ? "" : ` after ${lines.toLocaleString("en-US")} lines`;
  if (/invalid gzip header/i.test(message)) return "it is not a gzip file";
  if (/checksum|corrupt|deflate|invalid/i.test(message)) {
    return `it is damaged or truncated${where} (gzip: ${message})`;
  }
  if (/write whole buffer/i.test(message)) {
    return `it has bytes after the end of its gzip data${where}`;
  }
  if (err instanceof TypeError && /decode|encoding|utf/i.test(message)) {
    return `it is not UTF-8 text${where}`;
  }
  return `it cannot be decompressed${where} (${message})`;
}

/** A {@linkcode StoreCorruptError} for a damaged file left where it is. */
export function damaged(
  what: string,
  path: string,
  reason: string,
  cause?: unknown,
): StoreCorruptError {
  return new StoreCorruptError(`${what}: ${reason}`, { path, movedTo: null }, { cause });
}

/**
 * Whether a parsed JSON value holds only finite numbers (JSON text such as
 * `1e999` parses to `Infinity`, which a store refuses).
 */
export function isStorableJson(value: unknown): boolean {
  switch (typeof value) {
    case "number":
      return Number.isFinite(value);
    case "object":
      if (value === null) return true;
      if (Array.isArray(value)) return value.every(isStorableJson);
      for (const k in value) {
        if (!isStorableJson((value as Record<string, unknown>)[k])) return false;
      }
      return true;
    default:
      return true;
  }
}

/** The content of `<file>.sha256`, in `sha256sum` format: `<hex>  <file name>\n`. */
export function checksumLine(sha256: string, path: string): string {
  return `${sha256}  ${basename(path)}\n`;
}

/** Parse a `sha256sum`-style line; `undefined` if it is not one. */
export function parseChecksumLine(text: string): string | undefined {
  const match = /^([0-9a-f]{64})(?:\s+\*?\S.*)?\s*$/i.exec(text.trim().split("\n")[0] ?? "");
  return match?.[1].toLowerCase();
}

/** Sizes for people: `512 B`, `1.5 KB`, `12.3 MB`. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let n = bytes / 1024;
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit++;
  }
  return `${n >= 100 ? Math.round(n) : Number(n.toFixed(1))} ${units[unit]}`;
}

/** An error that stops a job because it was cancelled (the stores are consistent). */
export function cancelled(what: string): Error {
  const err = new Error(`${what}: cancelled`);
  err.name = "AbortError";
  return err;
}

/**
 * Test seams (as in denoland/std's `_internals`): the jobs call these, and
 * tests replace them to simulate a crash or a failed check at an exact point.
 * Production code never changes them.
 */
export const _internals = {
  /** After an archive file was renamed into place, before its index is written. */
  afterArchiveFile: (_path: string): Promise<void> => Promise.resolve(),
  /** After an archive index was written, before any run is deleted. */
  afterArchiveIndex: (_path: string): Promise<void> => Promise.resolve(),
  /**
   * Re-read a finished archive temp file and check it holds exactly
   * `expectedIds`, in order, with the checksum and size it was written with.
   * Throws a {@linkcode StoreCorruptError} otherwise.
   */
  verifyArchiveFile: verifyGzipIdsFile,
  /**
   * Re-read a finished temp file of archived flow versions and check it holds
   * exactly the versions `ids` (`<flowId>@<hash>`), in order, with the
   * checksum and size it was written with. Throws a
   * {@linkcode StoreCorruptError} otherwise.
   */
  verifyArchiveVersions: (
    path: string,
    expected: { bytes: number; sha256: string; ids: readonly string[] },
    what: string,
  ): Promise<void> =>
    verifyGzipLinesFile(path, expected, what, {
      noun: "flow versions",
      holds: "holds flow version",
      idOf: (parsed) => {
        const v = (parsed as { version?: { flowId?: unknown; hash?: unknown } }).version;
        return `${v?.flowId}@${v?.hash}`;
      },
    }),
};

/**
 * Re-read a gzip'd file of `{ "run": { "id" … } … }` lines from disk and check
 * its size, SHA-256, line count and the run id of every line, in order.
 */
export async function verifyGzipIdsFile(
  path: string,
  expected: { bytes: number; sha256: string; ids: readonly string[] },
  what: string,
): Promise<void> {
  await verifyGzipLinesFile(path, expected, what, {
    noun: "runs",
    idOf: (parsed) => (parsed as { run?: { id?: unknown } }).run?.id,
    holds: "holds run",
  });
}

/**
 * Re-read a gzip'd JSON-lines file from disk and check its size, SHA-256,
 * line count and the id (`how.idOf` of each parsed line) of every line, in
 * order; `how.noun` names what the lines hold in messages.
 */
export async function verifyGzipLinesFile(
  path: string,
  expected: { bytes: number; sha256: string; ids: readonly string[] },
  what: string,
  how: { noun: string; holds: string; idOf: (parsed: unknown) => unknown },
): Promise<void> {
  const sum = runningChecksum();
  let i = 0;
  for await (const line of readGzipLines(path, { what, onBytes: sum.onBytes })) {
    let id: unknown;
    try {
      id = how.idOf(JSON.parse(line));
    } catch {
      throw damaged(what, path, `line ${i + 1} is not JSON`);
    }
    if (i >= expected.ids.length) {
      throw damaged(
        what,
        path,
        `it holds more than the ${expected.ids.length} ${how.noun} written`,
      );
    }
    if (id !== expected.ids[i]) {
      throw damaged(
        what,
        path,
        `line ${i + 1} ${how.holds} ${JSON.stringify(id)}, expected ${expected.ids[i]}`,
      );
    }
    i++;
  }
  if (i !== expected.ids.length) {
    throw damaged(what, path, `it holds ${i} ${how.noun}, expected ${expected.ids.length}`);
  }
  const sha256 = sum.hex();
  if (sum.bytes !== expected.bytes || sha256 !== expected.sha256) {
    throw damaged(
      what,
      path,
      `read back ${sum.bytes} bytes with SHA-256 ${sha256}, but ${expected.bytes} bytes with ${expected.sha256} were written`,
    );
  }
}
