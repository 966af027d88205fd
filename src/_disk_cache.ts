/**
 * The storage under `<home>/cache/<kind>/` shared by the caches of validated
 * files that spare a cold `flowstate run` the YAML parser and the schemas
 * (`flow_disk_cache.ts` for flows, `config_disk_cache.ts` for the config):
 *
 * - an entry is one file `<key>.json`: the SHA-256 of its body on the first
 *   line, then the body (JSON); a missing, unreadable, truncated or corrupt
 *   entry reads as nothing (a miss);
 * - writes are atomic (a temporary file renamed over the entry); a read-only
 *   or unwritable home means nothing is cached, and nothing is said;
 * - at most {@linkcode DISK_CACHE_ENTRIES} entries per kind: the oldest are
 *   removed when one is written;
 * - keys are built from a fingerprint of the Flowstate code that decides what
 *   a file validates to ({@linkcode codeFingerprint}).
 *
 * @module
 */
import { join } from "./_path.ts";
import { uniqueRandomHex } from "./_random.ts";
import { parseJson } from "./_json.ts";

/** The most entries kept under one `<home>/cache/<kind>` directory. */
export const DISK_CACHE_ENTRIES = 256;

/** What a cache's lookups did (for tests and benchmarks). */
export interface DiskCacheStats {
  /** Entries found and used. */
  hits: number;
  /** Lookups that found no usable entry. */
  misses: number;
  /** Entries written. */
  writes: number;
}

/** What every entry starts with: checked before the entry is used. */
export interface DiskCacheHeader {
  /** The format of the entry ({@linkcode DiskCache}'s `format`). */
  format: number;
  /** The key: also the file's name. */
  key: string;
  /** The absolute path of the file the entry is for. */
  path: string;
}

/**
 * One kind of cached file (`<home>/cache/<kind>/<key>.json`): its key (the
 * code fingerprint, the file's path and text), reading an entry (checksum,
 * header, then the caller's own check) and writing one; `stats` counts.
 */
export class DiskCache<E extends object> {
  /** Hits and misses are counted by the caller (it decides what a usable entry is); writes here. */
  readonly stats: DiskCacheStats = { hits: 0, misses: 0, writes: 0 };
  readonly #base: string;
  readonly #modules: readonly string[];
  readonly #format: number;
  readonly #valid: (body: Partial<E>) => boolean;
  #fingerprint: string | null | undefined;

  /**
   * @param base The URL of the caching module (its `import.meta.url`).
   * @param options `format` of the entries, `modules` whose code decides what a
   *   file validates to (relative to `base`), `valid` checks an entry's own fields.
   */
  constructor(
    base: string,
    options: {
      format: number;
      modules: readonly string[];
      valid: (body: Partial<E>) => boolean;
    },
  ) {
    this.#base = base;
    this.#modules = options.modules;
    this.#format = options.format;
    this.#valid = options.valid;
  }

  /** The key of a file's text (SHA-256 of the code fingerprint, the path, the text), or `undefined` when the code cannot be fingerprinted. */
  async keyOf(path: string, text: string): Promise<string | undefined> {
    if (this.#fingerprint === undefined) {
      this.#fingerprint = codeFingerprint(this.#base, this.#modules, this.#format) ?? null;
    }
    if (this.#fingerprint === null) return undefined;
    return await sha256Hex(`${this.#fingerprint}\0${path}\0${text}`);
  }

  /** The entry `<dir>/<key>.json` for `path`, or `undefined` when there is none usable. */
  async read(dir: string, key: string, path: string): Promise<E | undefined> {
    const entry = await readCacheEntry(join(dir, `${key}.json`)) as
      | Partial<E & DiskCacheHeader>
      | undefined;
    if (
      typeof entry !== "object" || entry === null || entry.format !== this.#format ||
      entry.key !== key || entry.path !== path || !this.#valid(entry as Partial<E>)
    ) return undefined;
    return entry as E;
  }

  /** Write the entry `<dir>/<key>.json` for `path` (never throws; counted when written). */
  async write(dir: string, key: string, path: string, body: E): Promise<void> {
    const entry = { format: this.#format, key, path, ...body };
    if (await writeCacheEntry(dir, join(dir, `${key}.json`), entry)) this.stats.writes++;
  }
}

/** What a load through a disk cache says besides what it loaded. */
export interface CachedLoad {
  /** Whether it came from the cache. */
  hit: boolean;
  /**
   * Write the cache entry (after a miss of a cacheable file; else nothing).
   * Call it once the run started: a run refused before must not write
   * anything to the home. Writes once however often it is called; never throws.
   */
  save(): Promise<void>;
}

/** The `save` of a hit, or of a file that is not cached. */
export const SAVE_NOTHING = (): Promise<void> => Promise.resolve();

/** A `save` that calls `write` the first time only. */
export function saveOnce(write: () => Promise<void>): () => Promise<void> {
  let saved = false;
  return async () => {
    if (saved) return;
    saved = true;
    await write();
  };
}

/** `[path, line, column]` of the paths of a file's data, as an entry stores them. */
export type Positions = [(string | number)[], number, number][];

/**
 * Where a path is written, from stored {@linkcode Positions}: as
 * `YamlSource.locate`, a path that does not exist is placed at its nearest
 * ancestor; `undefined` when no ancestor has a position.
 */
export function locatorOf(
  positions: Positions,
): (path: readonly (string | number)[]) => { line: number; column: number } | undefined {
  const byPath = new Map<string, { line: number; column: number }>();
  for (const [path, line, column] of positions) byPath.set(JSON.stringify(path), { line, column });
  return (path) => {
    for (let n = path.length; n >= 0; n--) {
      const found = byPath.get(JSON.stringify(path.slice(0, n)));
      if (found !== undefined) return { ...found };
    }
    return undefined;
  };
}

/** The hex SHA-256 of a text. */
export async function sha256Hex(text: string): Promise<string> {
  // WebCrypto: a pure-TypeScript hash runs interpreted on a cold start (~5 ms per KiB).
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The fingerprint of the Flowstate code that decides what a file validates
 * to: the text of `deno.json` (the version, the pinned `yaml`, `zod` and
 * `croner`), the Deno version (its time-zone data) and the size and
 * modification time of each module of `modules` (relative to `base`; read
 * synchronously: a few stats are cheaper than hashing the code on every cold
 * run). For a published version (`base` not a local file), `base` itself,
 * which names the version. `undefined` when it cannot be read.
 *
 * @param base The URL of the module the `modules` are relative to (its `import.meta.url`).
 * @param modules The modules, relative to `base`.
 * @param format The format of the caller's entries (a new format is a new fingerprint).
 */
export function codeFingerprint(
  base: string,
  modules: readonly string[],
  format: number,
): string | undefined {
  const self = new URL(base);
  if (self.protocol !== "file:") return `${format}\0${self.href}\0${Deno.version.deno}`;
  try {
    const parts = [
      String(format),
      Deno.version.deno,
      Deno.readTextFileSync(new URL("../deno.json", self)),
    ];
    for (const p of modules) {
      let info: Deno.FileInfo | undefined;
      try {
        info = Deno.statSync(new URL(p, self));
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err; // a module renamed since: still a fingerprint
      }
      parts.push(`${p}:${info?.size ?? "-"}:${info?.mtime?.getTime() ?? 0}`);
    }
    return parts.join("\0");
  } catch {
    return undefined;
  }
}

/**
 * The body of the entry `file` (parsed JSON), or `undefined` when it is
 * missing, unreadable, not JSON, or does not match its checksum (corrupt or
 * truncated). The caller checks the body's own fields.
 */
export async function readCacheEntry(file: string): Promise<unknown> {
  try {
    const raw = Deno.readTextFileSync(file);
    const nl = raw.indexOf("\n");
    if (nl === -1) return undefined;
    const body = raw.slice(nl + 1);
    if (raw.slice(0, nl) !== await sha256Hex(body)) return undefined;
    return parseJson(body);
  } catch {
    return undefined;
  }
}

/**
 * Write `body` (as JSON) to the entry `file` in `dir` atomically, then remove
 * the oldest entries beyond {@linkcode DISK_CACHE_ENTRIES}. Whether it was
 * written; never throws (a read-only home, no permission or a full disk: no
 * cache).
 */
export async function writeCacheEntry(dir: string, file: string, body: unknown): Promise<boolean> {
  const text = JSON.stringify(body);
  const tmp = `${file}.${uniqueRandomHex(16)}.tmp`;
  try {
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(tmp, `${await sha256Hex(text)}\n${text}`);
    await Deno.rename(tmp, file);
  } catch {
    await Deno.remove(tmp).catch(() => {});
    return false;
  }
  await prune(dir).catch(() => {});
  return true;
}

/** Remove the oldest entries beyond {@linkcode DISK_CACHE_ENTRIES}. */
async function prune(dir: string): Promise<void> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.endsWith(".json")) names.push(e.name);
  }
  if (names.length <= DISK_CACHE_ENTRIES) return;
  const stats = await Promise.all(
    names.map(async (name) => ({
      name,
      mtime: (await Deno.stat(join(dir, name)).catch(() => null))?.mtime?.getTime() ?? 0,
    })),
  );
  stats.sort((a, b) => a.mtime - b.mtime);
  for (const { name } of stats.slice(0, stats.length - DISK_CACHE_ENTRIES)) {
    await Deno.remove(join(dir, name)).catch(() => {});
  }
}
