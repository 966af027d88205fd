/**
 * A stored version of a flow: its shape ({@linkcode FlowVersion}), the
 * summary `Records.listFlows()` gives of a flow ({@linkcode FlowSummary}),
 * and how a version is addressed: the SHA-256 of the definition's canonical
 * JSON ({@linkcode hashFlowDefinition}).
 *
 * @module
 */
import type { FlowDefinition } from "../flow/types.ts";
import type { RunStatus } from "./types.ts";

/**
 * One stored version of a flow.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import type { FlowVersion } from "@flowstate/core/records";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const run = await rt.runFlow({ id: "hi", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] });
 * const head: FlowVersion | null = await (await rt.records()).getHead("hi");
 * assert.equal(head?.hash, run.flowVersion);
 * assert.equal(head?.seq, 1);
 * assert.equal(head?.parent, null); // the first version
 * ```
 */
export interface FlowVersion {
  /** The flow's id. */
  flowId: string;
  /** SHA-256 (hex) of the definition's canonical JSON. */
  hash: string;
  /** The head when this version was created, or `null` for the first version. */
  parent: string | null;
  /** Creation order within the flow, from 1. */
  seq: number;
  /** When it was first saved (ms since the epoch). */
  createdAt: number;
  /** The definition. */
  definition: FlowDefinition;
  /** The text it was parsed from, if given when first saved. */
  source?: string;
}

/**
 * One flow, as `Records.listFlows()` reports it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import type { FlowSummary } from "@flowstate/core/records";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * await rt.runFlow({ id: "hi", description: "says hi", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] });
 * const flows: FlowSummary[] = await (await rt.records()).listFlows();
 * assert.deepEqual(flows.map((f) => [f.id, f.versions, f.lastStatus, f.description]), [
 *   ["hi", 1, "succeeded", "says hi"],
 * ]);
 * ```
 */
export interface FlowSummary {
  /** The flow's id. */
  id: string;
  /** Hash of the current version. */
  head: string;
  /**
   * How many distinct versions were created (the newest one's `seq`), those
   * the retention job deleted included: `versions - prunedVersions` are stored.
   */
  versions: number;
  /** How many of them the retention job deleted (unused versions older than its `maxAge`). */
  prunedVersions: number;
  /**
   * When the newest run (any status) started, or `null`: for a run that went
   * through the queue, when its last attempt was claimed (when it was
   * enqueued, if it has not started).
   */
  lastRunAt: number | null;
  /** Status of the newest run (`running` while it runs), or `null`. */
  lastStatus: RunStatus | null;
  /** The current version's description, or `null`. */
  description: string | null;
  /**
   * Present when the flow is known only from the archive (`<home>/archive/`,
   * written by the `archive` job): the records store holds nothing of it (its
   * records were lost, or moved to another store), but archived runs of it
   * are kept. Then `head` is the version its newest archived run ran,
   * `versions` the number of versions its archived runs ran,
   * `prunedVersions` 0 and `description` `null`. Only the records of a
   * runtime (`rt.records()`) read the archive.
   */
  archived?: true;
  /**
   * The archive file (under `<home>/archive/`) of the flow's last run, when
   * that run is an archived one (newer than any run in the records store);
   * `lastRunAt` and `lastStatus` are then that run's.
   */
  lastRunArchive?: string;
}

/**
 * The canonical JSON of a JSON-compatible value: object keys sorted,
 * `undefined` properties dropped, no whitespace. Throws a `TypeError` for
 * anything JSON cannot hold (functions, `BigInt`, non-finite numbers,
 * `undefined` in arrays, cycles, class instances).
 *
 * @example
 * ```ts
 * import { canonicalJson } from "@flowstate/core/records";
 * import assert from "node:assert/strict";
 * assert.equal(canonicalJson({ b: 1, a: [true, null], c: undefined }), '{"a":[true,null],"b":1}');
 * assert.throws(() => canonicalJson({ when: new Date(0) }), TypeError); // a Date is not plain JSON
 * ```
 */
export function canonicalJson(value: unknown): string {
  try {
    return fastCanonical(value, []);
  } catch {
    // Again, keeping the path of every value, to say where the problem is.
    return canonical(value, "value", []);
  }
}

/**
 * {@linkcode canonical} without the paths (a string per value, built for the
 * error message only): a runtime computes this for every run of an object
 * flow (its cache key). Throws a bare error where `canonical` would throw.
 */
function fastCanonical(value: unknown, ancestors: object[]): string {
  switch (typeof value) {
    case "string":
    case "boolean":
      return JSON.stringify(value);
    case "number":
      if (!Number.isFinite(value)) throw new TypeError();
      return JSON.stringify(value);
    case "object": {
      if (value === null) return "null";
      if (ancestors.includes(value)) throw new TypeError();
      ancestors.push(value);
      let out: string;
      if (Array.isArray(value)) {
        out = "[";
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ",";
          out += fastCanonical(value[i], ancestors);
        }
        out += "]";
      } else {
        const proto = Object.getPrototypeOf(value);
        if (proto !== Object.prototype && proto !== null) throw new TypeError();
        const record = value as Record<string, unknown>;
        out = "{";
        let first = true;
        for (const k of Object.keys(record).sort()) {
          const v = record[k];
          if (v === undefined) continue;
          out += `${first ? "" : ","}${JSON.stringify(k)}:${fastCanonical(v, ancestors)}`;
          first = false;
        }
        out += "}";
      }
      ancestors.pop();
      return out;
    }
    default:
      throw new TypeError();
  }
}

function canonical(value: unknown, path: string, ancestors: object[]): string {
  switch (typeof value) {
    case "string":
    case "boolean":
      return JSON.stringify(value);
    case "number":
      if (!Number.isFinite(value)) {
        throw new TypeError(`Cannot hash flow: ${path} is ${value}, which JSON cannot hold`);
      }
      return JSON.stringify(value);
    case "object": {
      if (value === null) return "null";
      if (ancestors.includes(value)) {
        throw new TypeError(`Cannot hash flow: ${path} refers back to itself (a cycle)`);
      }
      ancestors.push(value);
      let out: string;
      if (Array.isArray(value)) {
        out = `[${value.map((v, i) => canonical(v, `${path}[${i}]`, ancestors)).join(",")}]`;
      } else {
        const proto = Object.getPrototypeOf(value);
        if (proto !== Object.prototype && proto !== null) {
          throw new TypeError(
            `Cannot hash flow: ${path} is a ${
              value.constructor?.name ?? "non-plain object"
            }; use plain objects, arrays, strings, numbers, booleans and null`,
          );
        }
        const record = value as Record<string, unknown>;
        const parts: string[] = [];
        for (const k of Object.keys(record).sort()) {
          if (record[k] === undefined) continue;
          parts.push(`${JSON.stringify(k)}:${canonical(record[k], `${path}.${k}`, ancestors)}`);
        }
        out = `{${parts.join(",")}}`;
      }
      ancestors.pop();
      return out;
    }
    default:
      throw new TypeError(`Cannot hash flow: ${path} is ${typeof value}, which JSON cannot hold`);
  }
}

/**
 * The content hash of a flow definition: SHA-256 (lowercase hex) of its canonical JSON.
 *
 * @example
 * ```ts
 * import { hashFlowDefinition } from "@flowstate/core/records";
 * import assert from "node:assert/strict";
 * const a = await hashFlowDefinition({ id: "hello", nodes: [{ id: "say", type: "log" }] });
 * const b = await hashFlowDefinition({ nodes: [{ type: "log", id: "say" }], id: "hello" });
 * assert.equal(a, b); // key order does not change the hash
 * assert.match(a, /^[0-9a-f]{64}$/);
 * ```
 */
export async function hashFlowDefinition(definition: FlowDefinition): Promise<string> {
  const bytes = new TextEncoder().encode(canonicalJson(definition));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Hashes of definitions a runtime's flow cache holds (objects nobody else can change). */
const knownHashes = new WeakMap<FlowDefinition, string>();

/**
 * Compute `definition`'s hash once and keep it for {@linkcode knownFlowHash}
 * (internal: for definitions the caller owns and never changes, such as a
 * runtime's cached prepared flows).
 */
export async function rememberFlowHash(definition: FlowDefinition): Promise<string> {
  let hash = knownHashes.get(definition);
  if (hash === undefined) {
    hash = await hashFlowDefinition(definition);
    knownHashes.set(definition, hash);
  }
  return hash;
}

/** The hash {@linkcode rememberFlowHash} kept for this very object, if any (internal). */
export function knownFlowHash(definition: FlowDefinition): string | undefined {
  return knownHashes.get(definition);
}
