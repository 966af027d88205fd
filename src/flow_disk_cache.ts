/**
 * A persistent cache of validated flow files, under the home
 * (`<home>/cache/flows/<key>.json`), so that a cold `flowstate run` of a flow
 * file it has run before does not load the YAML parser nor the flow schema.
 *
 * - The key is the SHA-256 of: a fingerprint of Flowstate's own parser and
 *   schema code (the text of `deno.json`, the Deno version and the size and
 *   modification time of those modules, or the module's URL when it is not a
 *   local file; see `_disk_cache.ts`, whose storage this cache uses), the
 *   file's absolute path and its text. An edited file, a moved one, an edit
 *   of Flowstate's parser or an upgrade is a miss.
 * - An entry holds the validated definition and the position in the YAML of
 *   every value in it, so that errors raised while preparing or running still
 *   say `file:line:column` without parsing the YAML again.
 * - An entry is checked before it is used (its own checksum, the format, the
 *   key, the path): a corrupt, truncated, foreign or unreadable
 *   entry is ignored and written again. Only valid flows are written; an
 *   invalid file is parsed every time and fails with the same located error.
 * - Writes are atomic (a temporary file renamed over the entry). When the
 *   home is read-only or not writable, nothing is cached and nothing is said.
 * - At most {@linkcode FLOW_DISK_CACHE_ENTRIES} entries; the oldest are
 *   removed when a new one is written.
 * - Flows naming a node type by package name (which the project's import map
 *   resolves) are not cached: their validity depends on files other than the
 *   flow.
 *
 * Internal: used by `flowstate run`.
 *
 * @module
 */
import type { ParsedFlow } from "./flow/parse.ts";
import type { FlowDefinition } from "./flow/types.ts";
import { readYamlFile } from "./_yaml_file.ts";
import { builtinNodes } from "./flow/nodes.ts";
import { OPTIONS_CHECKED } from "./flow/prepare.ts";
import { isAbsolute, join, resolve } from "./_path.ts";
import {
  type CachedLoad,
  DISK_CACHE_ENTRIES,
  DiskCache,
  type DiskCacheStats,
  locatorOf,
  type Positions,
  SAVE_NOTHING,
  saveOnce,
} from "./_disk_cache.ts";

/** The most entries kept under `<home>/cache/flows`. */
export const FLOW_DISK_CACHE_ENTRIES: number = DISK_CACHE_ENTRIES;

/** Modules whose code decides what a flow file validates to (relative to this one). */
const FINGERPRINTED = [
  "./flow/parse.ts",
  "./flow/check.ts",
  "./flow/schema.ts",
  "./flow/types.ts",
  "./flow/inputs.ts",
  "./flow/nodes.ts",
  "./flow/node_schemas.ts",
  "./flow/_http.ts",
  "./_lazy_schema.ts",
  "./flow/node_options.ts",
  "./flow/prepare.ts",
  "./flow/_shapes.ts",
  "./flow/_values.ts",
  "./flow/template/_date_format.ts",
  "./flow/template/_segment.ts",
  "./flow/template/ast.ts",
  "./flow/template/compile.ts",
  "./flow/template/error.ts",
  "./flow/template/functions.ts",
  "./flow/template/lex.ts",
  "./flow/template/mod.ts",
  "./flow/template/parse.ts",
  "./flow/template/values.ts",
  "./duration.ts",
  "./cron.ts",
  "./timezone.ts",
  "./store/values.ts",
  "./yaml_source.ts",
  "./_yaml_file.ts",
  "./loader.ts",
  "./flow_disk_cache.ts",
  "./_disk_cache.ts",
];

/** One entry as stored (after the header: format, key, path). */
interface Entry {
  definition: FlowDefinition;
  /** `[path, line, column]` of every value of the definition that has a position. */
  positions: Positions;
}

const cache = new DiskCache<Entry>(import.meta.url, {
  format: 1,
  modules: FINGERPRINTED,
  valid: (entry) =>
    typeof entry.definition?.id === "string" && Array.isArray(entry.definition.nodes) &&
    Array.isArray(entry.positions),
});

/** What lookups did (for tests and benchmarks). */
export const flowDiskCacheStats: DiskCacheStats = cache.stats;

/** What {@linkcode loadFlowFileCached} returns. */
export interface CachedFlowFile extends CachedLoad {
  /** The flow, as `loadFlowFile` returns it. */
  parsed: ParsedFlow;
}

/**
 * Load a flow file as `loadFlowFile` does (same result, same errors), through
 * the cache under `cacheDir` when given.
 *
 * @param path The file, absolute or relative to the working directory.
 * @param options `displayPath` (the name in messages), the configured `stores`,
 *   and `cacheDir` (`<home>/cache`; no caching when absent).
 */
export async function loadFlowFileCached(
  path: string,
  options: { displayPath?: string; stores?: readonly string[]; cacheDir?: string } = {},
): Promise<CachedFlowFile> {
  const { cacheDir, ...loadOptions } = options;
  const shown = options.displayPath ?? path;
  const parse = async (): Promise<CachedFlowFile> => {
    const { loadFlowFile } = await import("./flow/parse.ts");
    return { parsed: await loadFlowFile(path, loadOptions), hit: false, save: SAVE_NOTHING };
  };
  if (cacheDir === undefined) return await parse();
  // A pipe (`run <(…)`) can be read once only: the parser reads it, and nothing is cached.
  if (!(await Deno.stat(path).then((info) => info.isFile, () => true))) return await parse();
  let text: string;
  try {
    const read = await readYamlFile(path);
    if (!("text" in read)) return await parse(); // the parser reports it
    text = read.text;
  } catch {
    return await parse(); // the same error, from the parser
  }
  const absolute = isAbsolute(path) ? path : resolve(path);
  // One digest: the key covers the code, the path and the text.
  const key = await cache.keyOf(absolute, text);
  if (key === undefined) return await parse();
  const dir = join(cacheDir, "flows");

  const entry = await cache.read(dir, key, absolute);
  if (entry !== undefined) {
    flowDiskCacheStats.hits++;
    return { parsed: parsedFromEntry(entry, shown, text), hit: true, save: SAVE_NOTHING };
  }
  flowDiskCacheStats.misses++;
  const { parsed } = await parse();
  // Cached only when the parser read the same text (the file did not change between reads).
  if (parsed.source !== text || !cacheable(parsed.definition)) {
    return { parsed, hit: false, save: SAVE_NOTHING };
  }
  const save = saveOnce(() =>
    cache.write(dir, key, absolute, {
      definition: parsed.definition,
      positions: positionsOf(parsed),
    })
  );
  return { parsed, hit: false, save };
}

function parsedFromEntry(entry: Entry, file: string, text: string): ParsedFlow {
  return {
    definition: entry.definition,
    file,
    source: text,
    locate: locatorOf(entry.positions),
    // Written only after the flow was prepared (its options checked) and ran: see cli/run.ts.
    [OPTIONS_CHECKED]: true,
  } as ParsedFlow;
}

/** The position of every value of the definition (and of the paths under them). */
function positionsOf(parsed: ParsedFlow): Positions {
  const out: Positions = [];
  const walk = (value: unknown, path: (string | number)[]): void => {
    const at = parsed.locate(path);
    if (at !== undefined) out.push([path, at.line, at.column]);
    if (Array.isArray(value)) value.forEach((v, i) => walk(v, [...path, i]));
    else if (typeof value === "object" && value !== null) {
      for (const [k, v] of Object.entries(value)) walk(v, [...path, k]);
    }
  };
  walk(parsed.definition, []);
  return out;
}

/** Whether the flow's validity depends only on its own text (no node type named by package). */
function cacheable(definition: FlowDefinition): boolean {
  return definition.nodes.every(({ type }) =>
    builtinNodes.has(type) || type.startsWith("./") || type.startsWith("../") ||
    type.startsWith("/") || type.includes(":")
  );
}
