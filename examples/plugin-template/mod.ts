/**
 * A template for a Flowstate storage plugin: entries in a `Map`, in memory.
 * Copy this folder, rename the package in `deno.json`, and replace the
 * `Map` with your backend; `mod_test.ts` runs the conformance suite on it.
 *
 * ```yaml
 * # flowstate.yaml of a project that maps "@example/flowstate-plugin-template"
 * stores:
 *   scratch: { plugin: "@example/flowstate-plugin-template", label: scratch }
 * ```
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import template from "@example/flowstate-plugin-template";
 *
 * await using store = await openStore({ plugin: template, label: "demo" });
 * await store.set(["greeting"], "hello");
 * assert.equal((await store.get(["greeting"]))?.value, "hello");
 * assert.equal(store.location, "template:demo");
 * ```
 *
 * @module
 */
import {
  type ClearRange,
  type CommitRequest,
  compareKeys,
  definePlugin,
  type DriverCommitResult,
  hasPrefix,
  type Key,
  type KeyRange,
  type Plugin,
  type RawEntry,
  type StoreDriver,
} from "@flowstate/core/plugin";
import { z } from "zod";

/** The plugin's options, as a config gives them (validated before `open`). */
export interface TemplateOptions {
  /** A name for this store, shown as its location (default `"memory"`). */
  label: string;
}

const optionsSchema: z.ZodType<TemplateOptions> = z.strictObject({
  label: z.string().min(1).default("memory"),
});

/** Whether `key` is in `range`: strictly under the prefix, `>= start` (or `>`), `< end`. */
function inRange(key: Key, range: KeyRange | ClearRange): boolean {
  const prefix = range.prefix ?? [];
  if (prefix.length > 0 && !hasPrefix(key, prefix)) return false;
  if (range.start !== undefined) {
    const c = compareKeys(key, range.start);
    if (c < 0 || (c === 0 && "startExclusive" in range && range.startExclusive)) return false;
  }
  return range.end === undefined || compareKeys(key, range.end) < 0;
}

/** The driver: four required methods, plus a native `count`. */
export class TemplateDriver implements StoreDriver {
  /** What this driver does natively; the core supplies the rest. */
  readonly capabilities = { persistent: false, count: true };
  /** Entries by `JSON.stringify(key)`. */
  #entries = new Map<string, RawEntry>();

  /** A driver for a store shown as `template:<label>`. */
  constructor(readonly location: string) {}

  /** One entry or `null`; an expired one may be returned (the core hides it). */
  get(key: Key): RawEntry | null {
    return this.#entries.get(JSON.stringify(key)) ?? null;
  }

  /** The entries in the range, in key order (`compareKeys`), reversed on request. */
  list(range: KeyRange): RawEntry[] {
    const found = [...this.#entries.values()].filter((e) => inRange(e.key, range));
    found.sort((a, b) => compareKeys(a.key, b.key));
    return range.reverse ? found.reverse() : found;
  }

  /** Live entries in the range: expired at `now` (the store's clock) do not count. */
  count(range: ClearRange, now: number): Promise<number> {
    let n = 0;
    for (const e of this.#entries.values()) {
      if (
        (e.expiresAt === null || e.expiresAt > now) && inRange(e.key, range)
      ) n++;
    }
    return Promise.resolve(n);
  }

  /** Every check holds, then every mutation applies; or nothing changes. */
  commit({ checks, mutations, version, now }: CommitRequest): DriverCommitResult {
    const conflicts = checks.filter((check) => {
      const entry = this.#entries.get(JSON.stringify(check.key));
      const live = entry !== undefined && (entry.expiresAt === null || entry.expiresAt > now);
      return (live ? entry.version : null) !== check.version;
    }).map((check) => check.key);
    if (conflicts.length > 0) return { ok: false, conflicts };
    for (const m of mutations) {
      if (m.type === "set") {
        const { key, value, expiresAt } = m;
        this.#entries.set(JSON.stringify(key), { key, value, version, expiresAt });
      } else if (m.type === "delete") {
        this.#entries.delete(JSON.stringify(m.key));
      } // "clear" only reaches drivers that claim capabilities.atomicClear.
    }
    return { ok: true };
  }

  /** Nothing to release: the entries go with the driver. */
  close(): void {}
}

/** The plugin: the module's default export, as the loader expects. */
const template: Plugin<TemplateOptions> = definePlugin({
  name: "template",
  description: "a template: entries in a Map, in memory",
  optionsSchema,
  open: (options) => new TemplateDriver(`template:${options.label}`),
});
export default template;
