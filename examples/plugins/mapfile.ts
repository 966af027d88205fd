/**
 * An example storage plugin, written the way a third party would write one:
 * a plain `Map` in memory, saved to a JSON file after every commit. It is a
 * guide, not a production backend (each commit rewrites the whole file).
 *
 * Use it from a config with `plugin: ./examples/plugins/mapfile.ts` and a
 * `path` option. Test it with the conformance suite (see `mapfile_test.ts`).
 *
 * @module
 */
// A plugin imports only the public API (and its own dependencies): the
// driver contract from "@flowstate/core/plugin", the Store types from "@flowstate/core".
import {
  type CommitRequest,
  compareKeys,
  definePlugin,
  type DriverCommitResult,
  type KeyRange,
  type Plugin,
  type RawEntry,
  StoreCorruptError,
  type StoreDriver,
} from "@flowstate/core/plugin";
import type { Key } from "@flowstate/core";
import { z } from "zod";

/** The plugin's options. */
export interface MapfileOptions {
  /** The JSON file, relative to the config's directory. */
  path: string;
}

// The core validates options with this schema before `open()` runs, and turns
// a mistake into an error naming the store and the option.
const optionsSchema: z.ZodType<MapfileOptions> = z.strictObject({
  path: z.string().min(1),
});

// The file: { format, entries: [[key, value, version, expiresAt], …] }.
const fileSchema = z.object({
  format: z.literal("flowstate.mapfile/1"),
  entries: z.array(
    z.tuple([z.array(z.string()).min(1), z.unknown(), z.string(), z.number().nullable()]),
  ),
});

/**
 * The driver. The core does the rest: it validates keys and values, turns
 * values into JSON text, makes versions, hides expired entries, and supplies
 * getMany, count, query and clear on top of `get` and `list`.
 */
class MapfileDriver implements StoreDriver {
  // Only what this driver does natively; everything else gets a core fallback.
  readonly capabilities = { persistent: true };
  #entries: Map<string, RawEntry>; // JSON.stringify(key) -> entry
  #queue: Promise<unknown> = Promise.resolve();

  constructor(readonly location: string, entries: Map<string, RawEntry>) {
    this.#entries = entries;
  }

  get(key: Key): RawEntry | null {
    return this.#entries.get(JSON.stringify(key)) ?? null;
  }

  // Return entries in key order, using compareKeys (code-point order, element by element).
  // Expired entries may be returned: the core filters them.
  *list(range: KeyRange): Iterable<RawEntry> {
    const prefix = range.prefix ?? [];
    const inRange = ({ key }: RawEntry): boolean =>
      key.length > prefix.length && prefix.every((part, i) => key[i] === part) &&
      (range.start === undefined ||
        compareKeys(key, range.start) > (range.startExclusive ? 0 : -1)) &&
      (range.end === undefined || compareKeys(key, range.end) < 0);
    const found = [...this.#entries.values()].filter(inRange).sort((a, b) =>
      compareKeys(a.key, b.key)
    );
    yield* range.reverse ? found.reverse() : found;
  }

  // A commit is all or nothing: check every version, then write a new map to disk,
  // and only then make it current. Commits run one at a time, in order.
  commit(request: CommitRequest): Promise<DriverCommitResult> {
    const result = this.#queue.then(() => this.#apply(request));
    this.#queue = result.catch(() => {});
    return result;
  }

  async #apply({ checks, mutations, version, now }: CommitRequest): Promise<DriverCommitResult> {
    const conflicts = checks.filter(({ key, version: expected }) => {
      const entry = this.#entries.get(JSON.stringify(key));
      const live = entry && (entry.expiresAt === null || entry.expiresAt > now);
      return (live ? entry.version : null) !== expected; // null: must be absent or expired
    }).map(({ key }) => key);
    if (conflicts.length > 0) return { ok: false, conflicts };
    const next = new Map(this.#entries);
    for (const m of mutations) {
      // Copy the key: the caller owns the array it passed in.
      if (m.type === "set") {
        next.set(JSON.stringify(m.key), {
          key: [...m.key],
          value: m.value,
          version,
          expiresAt: m.expiresAt,
        });
      } else if (m.type === "delete") next.delete(JSON.stringify(m.key));
      // (`clear` mutations only reach drivers with `capabilities.atomicClear`.)
    }
    await save(this.location, next, now);
    this.#entries = next;
    return { ok: true };
  }

  async close(): Promise<void> {
    await this.#queue; // let pending commits finish
  }
}

// Write a temp file, flush it to disk, then rename it over the old one:
// a crash leaves either the old file or the new one, never half of each.
async function save(path: string, entries: Map<string, RawEntry>, now: number): Promise<void> {
  const lines: string[] = [];
  for (const e of entries.values()) {
    if (e.expiresAt !== null && e.expiresAt <= now) continue; // drop what has expired
    lines.push(`[${JSON.stringify(e.key)},${e.value},${JSON.stringify(e.version)},${e.expiresAt}]`);
  }
  const tmp = `${path}.tmp`;
  await Deno.writeTextFile(
    tmp,
    `{"format":"flowstate.mapfile/1","entries":[\n${lines.join(",\n")}\n]}\n`,
  );
  using file = await Deno.open(tmp, { write: true });
  await file.sync();
  await Deno.rename(tmp, path);
}

async function load(path: string, storeName: string): Promise<Map<string, RawEntry>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return new Map(); // a new store
    throw err;
  }
  let doc: z.infer<typeof fileSchema>;
  try {
    doc = fileSchema.parse(JSON.parse(text));
  } catch (err) {
    // Say what failed and where; never overwrite a file we could not read.
    throw new StoreCorruptError(
      `Cannot open store "${storeName}": ${path} is not a mapfile store (${
        err instanceof z.ZodError
          ? z.prettifyError(err).replaceAll("\n", " ")
          : (err as Error).message
      }); the file was left as it is`,
      { path },
      { cause: err },
    );
  }
  const entries = new Map<string, RawEntry>();
  for (const [key, value, version, expiresAt] of doc.entries) {
    entries.set(JSON.stringify(key), { key, value: JSON.stringify(value), version, expiresAt });
  }
  return entries;
}

/** The mapfile plugin: the module's default export, as the loader expects. */
const mapfile: Plugin<MapfileOptions> = definePlugin({
  name: "mapfile",
  description: "example: a Map saved to a JSON file on each commit",
  optionsSchema,
  async open(options, context) {
    // Relative paths are relative to the config's directory (context.baseDir).
    const path = /^([a-zA-Z]:)?[\\/]/.test(options.path)
      ? options.path
      : `${context.baseDir}/${options.path}`;
    return new MapfileDriver(path, await load(path, context.storeName));
  },
});
export default mapfile;
