/**
 * Prepared flows kept by a runtime across its runs (the daemon, queue
 * workers, a program calling `runFlow` in a loop): a flow is parsed,
 * validated and prepared once per content, and its version hash computed
 * once. A flow file is looked up by its content, so an edited file is
 * prepared again (and a file that became invalid fails as it would without
 * the cache): it is read on every run, except when its status (times, size,
 * inode: one `stat`) is what it was at its last read and it had not changed
 * for two seconds then. Flows whose nodes run in a sandbox Worker are not
 * kept: their check runs the module in the Worker that then runs it.
 *
 * @module
 */
import { fromFileUrl, resolve } from "./_path.ts";
import { moduleUrl } from "./loader.ts";
import { type FlowSource, type LoadedFlow, loadFlowIn } from "./flow/load.ts";
import type { ParsedFlow } from "./flow/parse.ts";
import { FlowValidationError } from "./errors.ts";
import type { SandboxPool } from "./flow/sandbox.ts";
import type { ProgramNodeTypes } from "./flow/program_nodes.ts";
import { builtinNodes } from "./flow/nodes.ts";
import { type FileStamp, nodeModuleFiles, unchanged } from "./flow/_module_files.ts";
import { canonicalJson, rememberFlowHash } from "./records/flow_version.ts";
import { readYamlFile } from "./_yaml_file.ts";
import { serializeValue } from "./store/values.ts";
import { parseJson } from "./_json.ts";

/** How a runtime loads flows: what {@linkcode loadFlowIn} takes. */
export interface FlowLoadOptions {
  /** The directory a path (and a definition's sub-flows) resolve against. */
  cwd: string;
  /** Workers of sandboxed nodes. */
  pool?: SandboxPool;
  /** The configured store names. */
  stores?: readonly string[];
  /** Module node types that run in-process. */
  trusted?: readonly string[];
  /** Directory `trusted` paths resolve against. */
  trustedBaseDir?: string;
  /**
   * The program's node types (`nodeTypes` of `openRuntime`): the same for
   * every load of one runtime's cache, so not part of its keys.
   */
  nodeTypes?: ProgramNodeTypes;
  /** Called with the parsed flow before its modules load, and on every hit (see `loadFlowIn`). */
  beforePrepare?: (parsed: ParsedFlow, baseDir: string) => void;
  /** Gives up waiting for a turn to check custom nodes in Workers. */
  signal?: AbortSignal;
}

/** The most prepared flows a runtime keeps (the least recently used goes first). */
export const FLOW_CACHE_SIZE = 256;

/**
 * The most flow files a runtime keeps parsed for listing ({@linkcode FlowCache.parseFile}):
 * a config's whole `flows:` folder, however large, is listed without parsing it again.
 */
export const PARSED_FILES_KEPT = 10_000;

/** A flow file as {@linkcode FlowCache.parseFile} last parsed it: its status and text then, and the outcome. */
interface ParsedFile {
  /** Its status then (see `fileStamp`), when it had not changed for two seconds; else `undefined`. */
  stamp: string | undefined;
  text: string;
  parsed?: ParsedFlow;
  error?: FlowValidationError;
}

/**
 * Prepared flows by content, least recently used dropped first.
 *
 * @example
 * ```ts
 * import { FlowCache } from "./flow_cache.ts";
 * import assert from "node:assert/strict";
 * const cache = new FlowCache();
 * const flow = { id: "hello", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] };
 * const first = await cache.load(flow, { cwd: Deno.cwd() });
 * const again = await cache.load({ ...flow }, { cwd: Deno.cwd() });
 * assert.equal(again, first); // the same content is prepared once
 * assert.deepEqual(cache.stats, { hits: 1, misses: 1, size: 1 });
 * ```
 */
export class FlowCache {
  #entries = new Map<string, LoadedFlow>();
  /**
   * Flows loaded for enqueueing (see `loadChecked`), with the local files of
   * their sandboxed modules' graphs and their status before the check.
   */
  #checked = new Map<string, { loaded: LoadedFlow; files: readonly FileStamp[] }>();
  /** Loads for `loadChecked` under way, by key. */
  #loading = new Map<string, Promise<LoadedFlow>>();
  /** Flow files' text as last read, by path, with their status then (see `fileStamp`). */
  #files = new Map<string, { stamp: string; text: string }>();
  /** Definitions passed as objects: their content (see `snapshotOf`) and key when last seen. */
  #objects = new WeakMap<object, { snapshot: Snapshot; cwd: string; id: string }>();
  #max: number;
  #hits = 0;
  #misses = 0;
  /** Flow files parsed for listing, by path and store names (see `parseFile`). */
  #parsed = new Map<string, ParsedFile>();
  #parseHits = 0;
  #parses = 0;

  /** A cache of at most `max` flows. */
  constructor(max = FLOW_CACHE_SIZE) {
    this.#max = max;
  }

  /** Hits, misses and flows held (for tests and metrics). */
  get stats(): { hits: number; misses: number; size: number } {
    return { hits: this.#hits, misses: this.#misses, size: this.#entries.size };
  }

  /**
   * `flow` loaded (parsed, validated, prepared) as {@linkcode loadFlowIn}
   * would, from the cache when the same content was loaded before with the
   * same `cwd`. An already parsed or loaded flow is not cached.
   */
  async load(flow: FlowSource, options: FlowLoadOptions): Promise<LoadedFlow> {
    const key = await this.#key(flow, options.cwd);
    if (key === undefined) return loadFlowIn(flow, options);
    const found = this.#entries.get(key.id);
    if (found !== undefined) {
      options.beforePrepare?.(found.parsed, found.prepared.baseDir);
      this.#hits++;
      this.#entries.delete(key.id);
      this.#entries.set(key.id, found);
      return found;
    }
    this.#misses++;
    const loaded = await loadFlowIn(flow, options);
    // The file may have changed between the two reads: keep it only under its own text.
    if (key.text !== undefined && loaded.parsed.source !== key.text) return loaded;
    // A sandboxed node's module is checked in the Worker that runs it, on every run.
    if (loaded.prepared.nodes.some((n) => n.runs === "worker")) return loaded;
    // Its version hash is computed once too (the definition is the cache's own copy).
    await rememberFlowHash(loaded.prepared.definition);
    this.#entries.set(key.id, loaded);
    while (this.#entries.size > this.#max) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
    return loaded;
  }

  /**
   * `flow` loaded as {@linkcode loadFlowIn} loads it, for enqueueing a run
   * (which needs its definition, not its node types): kept by content as
   * {@linkcode FlowCache.load} keeps flows, and a flow whose nodes run in a
   * sandbox Worker too, so an unchanged flow's modules are checked in a
   * Worker once, not on every enqueue. It is loaded again
   * when its text changed or a local file of its sandboxed nodes' module
   * graphs did: the module file or one it imports (see `_module_files.ts`;
   * one `stat` each per call, as the sandbox pool looks before reusing a
   * Worker); the run checks its modules in its own Worker as always.
   *
   * @example
   * ```ts
   * import { FlowCache } from "./flow_cache.ts";
   * import assert from "node:assert/strict";
   * const cache = new FlowCache();
   * const flow = { id: "hello", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] };
   * const first = await cache.loadChecked(flow, { cwd: Deno.cwd() });
   * assert.equal(await cache.loadChecked({ ...flow }, { cwd: Deno.cwd() }), first);
   * ```
   */
  async loadChecked(flow: FlowSource, options: FlowLoadOptions): Promise<LoadedFlow> {
    const found = await this.#key(flow, options.cwd);
    if (found === undefined) return await loadFlowIn(flow, options);
    // Checked against these store names (`state.*` nodes' `store`): kept apart from `load`'s.
    const key = `${found.id}\0${JSON.stringify(options.stores ?? null)}`;
    const kept = this.#checked.get(key);
    if (kept !== undefined && unchanged(kept.files)) {
      options.beforePrepare?.(kept.loaded.parsed, kept.loaded.prepared.baseDir);
      this.#hits++;
      // The most recently used last (unless another call replaced it meanwhile).
      if (this.#checked.get(key) === kept) this.#checked.delete(key);
      this.#checked.set(key, kept);
      return kept.loaded;
    }
    if (this.#checked.get(key) === kept) this.#checked.delete(key);
    // Calls at once for the same content share one load (one check of its modules).
    const pending = this.#loading.get(key);
    if (pending !== undefined) {
      this.#hits++;
      return await pending;
    }
    this.#misses++;
    const loading = this.#loadToCheck(flow, options, key, found.text);
    this.#loading.set(key, loading);
    try {
      return await loading;
    } finally {
      this.#loading.delete(key);
    }
  }

  async #loadToCheck(
    flow: FlowSource,
    options: FlowLoadOptions,
    key: string,
    text: string | undefined,
  ): Promise<LoadedFlow> {
    // Each module's graph as it is before the check reads it: an edit meanwhile is a change next time.
    const graphs = new Map<string, FileStamp[]>();
    const graphOf = (type: string, baseDir: string) => {
      const url = moduleUrl(type, baseDir);
      if (url === undefined || !url.startsWith("file:")) return [];
      const path = fromFileUrl(url);
      let graph = graphs.get(path);
      if (graph === undefined) graphs.set(path, graph = nodeModuleFiles(path));
      return graph;
    };
    const loaded = await loadFlowIn(flow, {
      ...options,
      beforePrepare: (parsed, baseDir) => {
        for (const node of parsed.definition.nodes) {
          if (!builtinNodes.has(node.type)) graphOf(node.type, baseDir);
        }
        options.beforePrepare?.(parsed, baseDir);
      },
    });
    if (text !== undefined && loaded.parsed.source !== text) return loaded;
    const files: FileStamp[] = [];
    for (const node of loaded.prepared.nodes) {
      if (node.runs !== "worker") continue;
      const graph = graphOf(node.spec.type, loaded.prepared.baseDir);
      // A module file that could not be had is not kept: the next call checks it again.
      if (graph.length > 0 && graph[0][1] === "") return loaded;
      files.push(...graph);
    }
    this.#checked.set(key, { loaded, files });
    while (this.#checked.size > this.#max) {
      this.#checked.delete(this.#checked.keys().next().value!);
    }
    return loaded;
  }

  /** Of {@linkcode FlowCache.parseFile}: answers without parsing, parses, and files held. */
  get parseStats(): { hits: number; parses: number; size: number } {
    return { hits: this.#parseHits, parses: this.#parses, size: this.#parsed.size };
  }

  /**
   * The flow file at `path` parsed and validated as `loadFlowFile` does it
   * (not prepared: what listing flows needs, their ids and schedules), or its
   * `FlowValidationError`, thrown. A file is parsed again only when its text
   * changed: while its status (times, size, inode: one `stat`) is what it was
   * when it was last read, and it had not changed for two seconds then, it is
   * not even read; else it is read, and parsed when its text is not the one
   * parsed last. Whether a file is valid depends on its text alone, so its
   * error is kept too (a reader of the message gets the one of its last
   * parse). Other failures (the file cannot be read) are not kept.
   *
   * @example
   * ```ts
   * import { FlowCache } from "./flow_cache.ts";
   * import assert from "node:assert/strict";
   * const dir = await Deno.makeTempDir();
   * const path = `${dir}/hello.flow.yaml`;
   * await Deno.writeTextFile(path, "id: hello\nnodes: [{ id: a, type: log, with: { message: hi } }]\n");
   * const cache = new FlowCache();
   * const first = await cache.parseFile(path);
   * assert.equal(await cache.parseFile(path), first); // the same text: not parsed again
   * assert.deepEqual(cache.parseStats, { hits: 1, parses: 1, size: 1 });
   * await Deno.writeTextFile(path, "id: bye\nnodes: [{ id: a, type: log, with: { message: hi } }]\n");
   * assert.equal((await cache.parseFile(path)).definition.id, "bye"); // edited: parsed again
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  async parseFile(
    path: string,
    options: { stores?: readonly string[] } = {},
  ): Promise<ParsedFlow> {
    const key = `${path}\0${JSON.stringify(options.stores ?? null)}`;
    const stamp = fileStamp(path);
    const seen = this.#parsed.get(key);
    if (seen !== undefined && stamp !== undefined && seen.stamp === stamp) {
      return this.#parsedHit(key, seen);
    }
    let read: Awaited<ReturnType<typeof readYamlFile>> | undefined;
    try {
      read = await readYamlFile(path);
    } catch {
      read = undefined; // loading it reports the error
    }
    // The parser loads with the first file parsed (not with the runtime: `flowstate run` of a cached flow never needs it).
    const { loadFlowFile } = await import("./flow/parse.ts");
    if (read === undefined || "problem" in read) {
      this.#parsed.delete(key);
      return loadFlowFile(path, options);
    }
    // Trusted unread next time only if it did not change while read, and had not for a while.
    const trusted = stamp !== undefined && stamp === fileStamp(path) && isStable(path)
      ? stamp
      : undefined;
    if (seen !== undefined && seen.text === read.text) {
      seen.stamp = trusted;
      return this.#parsedHit(key, seen);
    }
    this.#parses++;
    let entry: ParsedFile;
    try {
      const parsed = await loadFlowFile(path, options);
      // The file may have changed between the two reads: keep it only under its own text.
      if (parsed.source !== read.text) {
        this.#parsed.delete(key);
        return parsed;
      }
      entry = { stamp: trusted, text: read.text, parsed };
    } catch (err) {
      if (!(err instanceof FlowValidationError)) {
        this.#parsed.delete(key);
        throw err;
      }
      entry = { stamp: trusted, text: read.text, error: err };
    }
    this.#parsed.delete(key);
    this.#parsed.set(key, entry);
    while (this.#parsed.size > PARSED_FILES_KEPT) {
      this.#parsed.delete(this.#parsed.keys().next().value!);
    }
    if (entry.error !== undefined) throw entry.error;
    return entry.parsed!;
  }

  #parsedHit(key: string, entry: ParsedFile): ParsedFlow {
    this.#parseHits++;
    this.#parsed.delete(key);
    this.#parsed.set(key, entry);
    if (entry.error !== undefined) throw entry.error;
    return entry.parsed!;
  }

  /** Forget every flow. */
  clear(): void {
    this.#entries.clear();
    this.#files.clear();
    this.#parsed.clear();
    this.#objects = new WeakMap();
  }

  async #key(
    flow: FlowSource,
    cwd: string,
  ): Promise<{ id: string; text?: string } | undefined> {
    if (typeof flow === "string") {
      const path = resolve(cwd, flow);
      // The text read last, while the file's status is the same as then (and it was
      // already older than STABLE_MS then: a change later shows in its times).
      const stamp = fileStamp(path);
      const seen = this.#files.get(path);
      if (stamp !== undefined && seen !== undefined && seen.stamp === stamp) {
        return { id: `file\0${cwd}\0${flow}\0${seen.text}`, text: seen.text };
      }
      let read: Awaited<ReturnType<typeof readYamlFile>>;
      try {
        read = await readYamlFile(path);
      } catch {
        return undefined; // loading it again reports the error
      }
      if ("problem" in read) return undefined;
      this.#files.delete(path);
      if (stamp !== undefined && stamp === fileStamp(path) && isStable(path)) {
        this.#files.set(path, { stamp, text: read.text });
        while (this.#files.size > this.#max) {
          this.#files.delete(this.#files.keys().next().value!);
        }
      }
      // The name as given is part of it: messages and ParsedFlow.file show it.
      return { id: `file\0${cwd}\0${flow}\0${read.text}`, text: read.text };
    }
    if (typeof flow !== "object" || flow === null || isParsedOrLoaded(flow)) return undefined;
    // The same object again (a program calling runFlow in a loop): its key is
    // the one computed last time if its content is still what it was then,
    // compared value by value with a copy kept then (no text is made: making
    // the JSON text of a 10,000-node flow on every run cost ~5 ms).
    const seen = this.#objects.get(flow);
    if (seen !== undefined && seen.cwd === cwd && sameAsSnapshot(flow, seen.snapshot)) {
      return { id: seen.id };
    }
    // Its checked JSON text (serializeValue), in its own key order, for the copy.
    let text: string | undefined;
    try {
      text = serializeValue(flow, "flow");
    } catch {
      text = undefined; // not JSON (or too deep): the canonical walk decides
    }
    let json: string;
    try {
      json = canonicalJson(flow);
    } catch {
      return undefined; // not JSON: validating it reports what is wrong
    }
    const id = `json\0${cwd}\0${json}`;
    if (text !== undefined) {
      this.#objects.set(flow, { snapshot: snapshotOf(parseJson(text)), cwd, id });
    }
    return { id };
  }
}

/**
 * A file is only trusted unread by its status once its last change is at
 * least this old (ms): a write within the same clock tick as the read could
 * otherwise leave its times and size as they were.
 */
const STABLE_MS = 2_000;

/**
 * The status of the file at `path` that any change of its content changes
 * (modification and status-change times, size, inode), or `undefined` when
 * it cannot be had; one synchronous `stat` (no thread hop, as a read takes).
 */
export function fileStamp(path: string): string | undefined {
  try {
    const info = Deno.statSync(path);
    if (!info.isFile || info.mtime === null || info.ctime === null) return undefined;
    return `${info.mtime.getTime()}:${info.ctime.getTime()}:${info.size}:${info.ino}:${info.dev}`;
  } catch {
    return undefined;
  }
}

/** Whether the file at `path` last changed at least {@linkcode STABLE_MS} ago. */
export function isStable(path: string): boolean {
  try {
    const info = Deno.statSync(path);
    const changed = Math.max(info.mtime?.getTime() ?? Infinity, info.ctime?.getTime() ?? Infinity);
    return Date.now() - changed >= STABLE_MS;
  } catch {
    return false;
  }
}

/**
 * A copy of a JSON value to compare a definition with later, as one flat
 * array (a few bytes per value, and no object per object of the value): in
 * order of a walk of the value, an object is `OBJECT`, its number of keys,
 * then each key followed by its value; an array is `ARRAY`, its length, then
 * its items; a leaf is itself.
 */
type Snapshot = unknown[];

/** The marks of a {@linkcode Snapshot} (objects: never equal to a leaf). */
const OBJECT = Object.freeze({ mark: "object" });
const ARRAY = Object.freeze({ mark: "array" });

/** The {@linkcode Snapshot} of `value`, a value `JSON.parse` returned. */
function snapshotOf(value: unknown, into: Snapshot = []): Snapshot {
  if (typeof value !== "object" || value === null) {
    into.push(value);
  } else if (Array.isArray(value)) {
    into.push(ARRAY, value.length);
    for (const item of value) snapshotOf(item, into);
  } else {
    const keys = Object.keys(value);
    into.push(OBJECT, keys.length);
    for (const k of keys) {
      into.push(k);
      snapshotOf((value as Record<string, unknown>)[k], into);
    }
  }
  return into;
}

/**
 * Whether `value` is JSON whose text (as `serializeValue` makes it) is the
 * text `snapshot` was made from: the same leaves, arrays of the same length,
 * plain objects with the same keys (`undefined` ones left out, as JSON
 * leaves them) in the same order. `false` for anything else (a key order
 * that changed too): the caller then makes the key from the text, as it did
 * the first time.
 */
function sameAsSnapshot(value: unknown, snapshot: Snapshot): boolean {
  return sameFrom(value, snapshot, 0) === snapshot.length;
}

/**
 * Compare `value` with the snapshot from position `at`: the position after
 * it when they are the same, else -1. Every step moves along the snapshot,
 * which is finite: a cycle put in the value ends the walk too.
 */
function sameFrom(value: unknown, snapshot: Snapshot, at: number): number {
  const type = typeof value;
  if (type === "string" || type === "number" || type === "boolean" || value === null) {
    return value === snapshot[at] ? at + 1 : -1;
  }
  if (type !== "object") return -1; // a function, a symbol, a BigInt, undefined
  if (Array.isArray(value)) {
    if (snapshot[at] !== ARRAY || snapshot[at + 1] !== value.length) return -1;
    at += 2;
    for (let i = 0; i < value.length && at >= 0; i++) at = sameFrom(value[i], snapshot, at);
    return at;
  }
  const proto = Object.getPrototypeOf(value);
  if (snapshot[at] !== OBJECT || (proto !== Object.prototype && proto !== null)) return -1;
  const count = snapshot[at + 1] as number;
  at += 2;
  let n = 0;
  for (const k in value as object) {
    const v = (value as Record<string, unknown>)[k];
    if (v === undefined) continue;
    if (n === count || snapshot[at] !== k) return -1;
    at = sameFrom(v, snapshot, at + 1);
    if (at < 0) return -1;
    n++;
  }
  return n === count ? at : -1;
}

function isParsedOrLoaded(flow: object): flow is ParsedFlow | LoadedFlow {
  return "prepared" in flow || typeof (flow as Partial<ParsedFlow>).locate === "function";
}
