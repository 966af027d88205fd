/**
 * In-memory `eq` indexes for plugins that keep every entry in memory (memory,
 * jsonfile): for each declared index, the ids of the entries by their
 * field's scalar value. The plugin calls {@linkcode EqIndexes.update} for
 * every entry it adds, replaces or removes (inside its own commit, so the
 * indexes are exact whenever the entries are), or
 * {@linkcode EqIndexes.rebuild} when it replaces all of them.
 *
 * @module
 */
import type { PreparedIndexes, PrepareIndexesRequest, RawEntry } from "../../src/store/driver.ts";
import { hasPrefix } from "../../src/store/keys.ts";
import { applyQuery, type NormalizedQuery, readPath } from "../../src/store/query.ts";
import { chooseIndex, type IndexSpec } from "../../src/store/indexes.ts";
import type { Key, QueryPlan } from "../../src/store/types.ts";
import { parseJson } from "../../src/_json.ts";

/** A scalar field as an index key (`eq` is JSON equality); `undefined` for anything else. */
function scalarToken(field: unknown): string | undefined {
  return field === null || typeof field === "string" || typeof field === "number" ||
      typeof field === "boolean"
    ? JSON.stringify(field)
    : undefined;
}

/** The declared indexes of one in-memory store. */
export class EqIndexes {
  #ix: { spec: IndexSpec; byValue: Map<string, Set<string>> }[] = [];

  /** Whether any index is declared (skip {@linkcode EqIndexes.update} otherwise). */
  get active(): boolean {
    return this.#ix.length > 0;
  }

  /** Declare the indexes and build them from `entries` (`[id, entry]` pairs). */
  prepare(
    request: PrepareIndexesRequest,
    entries: Iterable<[string, RawEntry]>,
  ): PreparedIndexes {
    this.#ix = request.indexes.map((spec) => ({ spec, byValue: new Map() }));
    this.rebuild(entries);
    return { indexes: request.indexes.map((i) => i.name), search: false };
  }

  /** Build every index again from `entries` (after the plugin replaced them all). */
  rebuild(entries: Iterable<[string, RawEntry]>): void {
    if (this.#ix.length === 0) return;
    for (const ix of this.#ix) ix.byValue.clear();
    for (const [id, entry] of entries) this.#entry(id, entry, true);
  }

  /** Entry `id` changed from `old` to `next` (`undefined`: absent). */
  update(id: string, old: RawEntry | undefined, next: RawEntry | undefined): void {
    if (this.#ix.length === 0 || old === next) return;
    if (old !== undefined) this.#entry(id, old, false);
    if (next !== undefined) this.#entry(id, next, true);
  }

  #entry(id: string, entry: RawEntry, add: boolean): void {
    let value: unknown;
    let parsed = false;
    for (const ix of this.#ix) {
      if (ix.spec.prefix.length > 0 && !hasPrefix(entry.key, ix.spec.prefix)) continue;
      if (!parsed) {
        value = parseJson(entry.value);
        parsed = true;
      }
      const token = scalarToken(readPath(value, ix.spec.path));
      if (token === undefined) continue;
      let ids = ix.byValue.get(token);
      if (add) {
        if (ids === undefined) ix.byValue.set(token, ids = new Set());
        ids.add(id);
      } else if (ids !== undefined) {
        ids.delete(id);
        if (ids.size === 0) ix.byValue.delete(token);
      }
    }
  }

  /** The index and token that answer `q`: an `eq` on a scalar only. */
  #find(q: NormalizedQuery) {
    if (this.#ix.length === 0) return undefined;
    const choice = chooseIndex(this.#ix.map((i) => i.spec), q);
    if (choice?.clause === undefined || q.where[choice.clause].op !== "eq") return undefined;
    const token = scalarToken(q.where[choice.clause].value);
    if (token === undefined) return undefined;
    return { ix: this.#ix.find((i) => i.spec === choice.index)!, token };
  }

  /**
   * An `eq` on an indexed path: the live entries with that value, then the
   * rest of the query; `undefined` when no index fits (the core scans).
   */
  query(
    q: NormalizedQuery,
    get: (id: string) => RawEntry | undefined,
    now: number,
  ): RawEntry[] | undefined {
    const found = this.#find(q);
    if (found === undefined) return undefined;
    const candidates: { key: Key; value: unknown; raw: RawEntry }[] = [];
    for (const id of found.ix.byValue.get(found.token) ?? []) {
      const raw = get(id)!;
      if (q.prefix.length > 0 && !hasPrefix(raw.key, q.prefix)) continue;
      if (raw.expiresAt !== null && raw.expiresAt <= now) continue;
      candidates.push({ key: raw.key, value: parseJson(raw.value), raw });
    }
    return applyQuery(candidates, q).map((c) => c.raw);
  }

  /** Say whether an index answers `q` (`undefined`: the core scans). */
  explain(q: NormalizedQuery, plugin: string): QueryPlan | undefined {
    const found = this.#find(q);
    if (found === undefined) return undefined;
    const n = found.ix.byValue.get(found.token)?.size ?? 0;
    return {
      index: found.ix.spec.name,
      scan: false,
      by: "native",
      detail: [`${plugin}: ${n} entries with ${found.ix.spec.path.join(".")} = ${found.token}`],
    };
  }
}
