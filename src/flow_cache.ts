/**
 * Prepared flows kept by a runtime across its runs (the daemon, queue
 * workers, a program calling `runFlow` in a loop): a flow is parsed,
 * validated and prepared once per content, and its version hash computed
 * once. A flow file is read on every run and looked up by its content, so an
 * edited file is prepared again (and a file that became invalid fails as it
 * would without the cache). Flows whose nodes run in a sandbox Worker are not
 * kept: their check runs the module in the Worker that then runs it.
 *
 * @module
 */
import { resolve } from "node:path";
import { type FlowSource, type LoadedFlow, loadFlowIn } from "./flow/load.ts";
import type { ParsedFlow } from "./flow/parse.ts";
import type { SandboxPool } from "./flow/sandbox.ts";
import { canonicalJson, rememberFlowHash } from "./records/flow_version.ts";
import { readYamlFile } from "./_yaml_file.ts";

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
}

/** The most prepared flows a runtime keeps (the least recently used goes first). */
export const FLOW_CACHE_SIZE = 256;

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
  #max: number;
  #hits = 0;
  #misses = 0;

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

  /** Forget every flow. */
  clear(): void {
    this.#entries.clear();
  }

  async #key(
    flow: FlowSource,
    cwd: string,
  ): Promise<{ id: string; text?: string } | undefined> {
    if (typeof flow === "string") {
      const path = resolve(cwd, flow);
      let read: Awaited<ReturnType<typeof readYamlFile>>;
      try {
        read = await readYamlFile(path);
      } catch {
        return undefined; // loading it again reports the error
      }
      if ("problem" in read) return undefined;
      // The name as given is part of it: messages and ParsedFlow.file show it.
      return { id: `file\0${cwd}\0${flow}\0${read.text}`, text: read.text };
    }
    if (typeof flow !== "object" || flow === null || isParsedOrLoaded(flow)) return undefined;
    let json: string;
    try {
      json = canonicalJson(flow);
    } catch {
      return undefined; // not JSON: validating it reports what is wrong
    }
    return { id: `json\0${cwd}\0${json}` };
  }
}

function isParsedOrLoaded(flow: object): flow is ParsedFlow | LoadedFlow {
  return "prepared" in flow || typeof (flow as Partial<ParsedFlow>).locate === "function";
}
