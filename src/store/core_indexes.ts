/**
 * Index entries kept by the core, for declared indexes a driver does not
 * build natively (a third-party driver, Redis): for each live entry under an
 * index's prefix whose field is a scalar, an internal key
 *
 * ```text
 * ["\u0000", "ix", <index name>, <token>, ...the entry's key]
 * ```
 *
 * written in the same `commit()` as the entry itself (with a check on the
 * entry's version as read, retried when another writer got there first), and
 * expiring with it. The token orders like the core's sort: the type's rank
 * (`1` null, `2` false, `3` true, `4` number, `5` string), then for a number
 * 16 hex digits whose order is the number's, for a string its first
 * {@linkcode TOKEN_CHARS} characters. A query with an `eq` or range clause on
 * the path lists the matching index keys, reads those entries, and applies
 * the whole query to them (so a truncated string or an entry expired since
 * is never answered wrongly).
 *
 * `["\u0000", "ixmeta", <name>]` records an index the core keeps, with its
 * prefix, path and state (`building`, `built`, `dropping`): every writer keeps
 * the entries of every index recorded there (building or built), declared or
 * not, so a program that opens the store without the declaration keeps them
 * exact too. `["\u0000", "ixgen"]` is rewritten with every change to that set;
 * each commit checks it at the version read with the set, and a writer whose
 * check fails reads the set again and commits again. (Meta entries of an older
 * version hold `true`: their indexes are unknown, rebuilt by the next open
 * that declares them, dropped by one that does not.)
 *
 * @module
 */
import { applyQuery, type NormalizedQuery, readPath } from "./query.ts";
import { chooseIndex, type IndexSpec, normalizeIndexes } from "./indexes.ts";
import { hasPrefix } from "./keys.ts";
import type { AtomicCheck, Key, QueryPlan } from "./types.ts";
import type {
  CommitRequest,
  DriverCommitResult,
  Mutation,
  PrepareIndexesRequest,
  RawEntry,
  StoreDriver,
} from "./driver.ts";
import { internalKey, isInternalKey } from "./internal_keys.ts";
import { parseJson } from "../_json.ts";

/** Characters of a string field kept in its token (longer strings share a token; reads recheck). */
export const TOKEN_CHARS = 256;
/** Attempts of a commit whose index reads another writer overtook. */
const MAX_ATTEMPTS = 50;
/** Entries per commit while building an index. */
const BUILD_BATCH = 500;

const view = new DataView(new ArrayBuffer(8));

/** 16 hex digits whose string order is the order of the numbers. */
export function numberToken(n: number): string {
  view.setFloat64(0, n === 0 ? 0 : n);
  let hi = view.getUint32(0);
  let lo = view.getUint32(4);
  if (hi & 0x80000000) {
    hi = ~hi >>> 0;
    lo = ~lo >>> 0;
  } else hi = (hi | 0x80000000) >>> 0;
  return hi.toString(16).padStart(8, "0") + lo.toString(16).padStart(8, "0");
}

function truncate(s: string): string {
  if (s.length <= TOKEN_CHARS) return s;
  const code = s.charCodeAt(TOKEN_CHARS - 1);
  return s.slice(0, code >= 0xd800 && code < 0xdc00 ? TOKEN_CHARS - 1 : TOKEN_CHARS);
}

/** The token of a field's value, or `undefined` when it is not a scalar (not indexed). */
export function fieldToken(field: unknown): string | undefined {
  if (field === null) return "1";
  if (field === false) return "2";
  if (field === true) return "3";
  if (typeof field === "number") return `4${numberToken(field)}`;
  if (typeof field === "string") return `5${truncate(field)}`;
  return undefined;
}

const AREA = "ix";
const META = "ixmeta";
/** Rewritten with every change to the set of indexes recorded in `META`. */
const GEN_KEY = internalKey("ixgen");
const GEN_ID = JSON.stringify(GEN_KEY);

/** What `["\u0000", "ixmeta", <name>]` holds (`legacy`: `true`, from an older version). */
type MetaState = "building" | "built" | "dropping" | "legacy";
interface Meta {
  state: MetaState;
  /** The index, when the meta entry says which (not a legacy one). */
  spec?: IndexSpec;
}

function parseMeta(name: string, value: string): Meta {
  try {
    const doc = parseJson(value);
    if (
      typeof doc === "object" && doc !== null &&
      ["building", "built", "dropping"].includes(doc.state)
    ) {
      const [spec] = normalizeIndexes([{ prefix: doc.prefix, path: doc.path }], "ixmeta");
      if (spec.name === name) return { state: doc.state, spec };
    }
  } catch {
    // not one of ours: unknown, like a legacy one
  }
  return { state: "legacy" };
}

function metaValue(spec: IndexSpec, state: Exclude<MetaState, "legacy">): string {
  return JSON.stringify({ prefix: spec.prefix, path: spec.path, state });
}

/** The core's index entries of one store. */
export class CoreIndexes {
  readonly #driver: StoreDriver;
  /** The declared indexes the driver does not build natively (queries use these). */
  readonly specs: readonly IndexSpec[];
  /** Whether the core keeps indexes for this driver (it builds none natively). */
  readonly enabled: boolean;
  /** The indexes every write keeps: the declared ones and those recorded in the store. */
  #kept: readonly IndexSpec[];
  /** Checks what the driver's commit resolved (a driver's mistake is named at the write). */
  readonly #checkResult: (result: unknown) => DriverCommitResult;
  /** The version of `GEN_KEY` read with the recorded set (`null`: absent); `undefined`: unread. */
  #gen: string | null | undefined;

  /**
   * `specs`: the declared indexes the driver does not build natively;
   * `enabled`: the driver builds none natively (the core keeps the indexes
   * recorded in the store, declared or not).
   */
  constructor(
    driver: StoreDriver,
    specs: readonly IndexSpec[],
    enabled = specs.length > 0,
    checkResult: (result: unknown) => DriverCommitResult = (r) => r as DriverCommitResult,
  ) {
    this.#driver = driver;
    this.#checkResult = checkResult;
    this.specs = specs;
    this.enabled = enabled;
    this.#kept = specs;
  }

  /** Whether any index is kept by the core (as far as the store's record was read). */
  get active(): boolean {
    return this.#kept.length > 0;
  }

  /** The meta entries of the store, by index name. */
  async #readMeta(): Promise<Map<string, Meta>> {
    const metas = new Map<string, Meta>();
    for await (const raw of this.#driver.list({ prefix: internalKey(META) }, 0)) {
      if (raw.key.length === 3) metas.set(raw.key[2], parseMeta(raw.key[2], raw.value));
    }
    return metas;
  }

  /** Read the set of indexes recorded in the store (the version of `GEN_KEY` first). */
  async load(): Promise<Map<string, Meta>> {
    const gen = await this.#driver.get(GEN_KEY, 0);
    const metas = await this.#readMeta();
    const kept = new Map(this.specs.map((s) => [s.name, s]));
    for (const [name, meta] of metas) {
      if (meta.spec !== undefined && meta.state !== "dropping" && !kept.has(name)) {
        kept.set(name, meta.spec);
      }
    }
    this.#kept = [...kept.values()];
    this.#gen = gen?.version ?? null;
    return metas;
  }

  /** Read the recorded set unless read already (no-op when the core keeps no index here). */
  async loaded(): Promise<void> {
    if (this.enabled && this.#gen === undefined) await this.load();
  }

  /** Write meta entries (and rewrite `GEN_KEY` when the set of kept indexes changes). */
  async #writeMeta(mutations: Mutation[], newVersion: () => string, now: number, gen: boolean) {
    await this.#driver.commit({
      checks: [],
      mutations: gen
        ? [...mutations, { type: "set", key: GEN_KEY, value: "0", expiresAt: null }]
        : mutations,
      version: newVersion(),
      now,
    });
  }

  #covering(key: Key): IndexSpec[] {
    // The core's own keys (the change feed's entries) are never indexed.
    if (isInternalKey(key)) return [];
    return this.#kept.filter((s) => s.prefix.length === 0 || hasPrefix(key, s.prefix));
  }

  /** Whether a `clear` of `range` may remove an indexed entry. */
  touches(range: { prefix: Key }): boolean {
    return this.#kept.some((s) => {
      const n = Math.min(s.prefix.length, range.prefix.length);
      return s.prefix.slice(0, n).every((p, i) => range.prefix[i] === p);
    });
  }

  #entryKeys(key: Key, value: string | undefined): Map<string, Key> {
    const out = new Map<string, Key>();
    if (value === undefined) return out;
    const specs = this.#covering(key);
    if (specs.length === 0) return out;
    const doc = parseJson(value);
    for (const spec of specs) {
      const token = fieldToken(readPath(doc, spec.path));
      if (token === undefined) continue;
      const k = internalKey(AREA, spec.name, token, ...key);
      out.set(JSON.stringify(k), k);
    }
    return out;
  }

  /**
   * Commit `mutations` (clears already expanded into deletes) with the index
   * entries they change: each touched indexed key is read, checked at that
   * version, and its old index entries replaced by its new ones. Retried
   * while only those checks fail; a failed check of the caller's is the
   * caller's conflict.
   */
  async commit(
    checks: AtomicCheck[],
    mutations: Mutation[],
    version: string,
    now: () => number,
    signal?: AbortSignal,
  ): Promise<{ ok: true } | { ok: false; conflicts: Key[] }> {
    await this.loaded();
    for (const m of mutations) {
      if (m.type === "clear" && this.touches(m.range)) {
        throw new TypeError("CoreIndexes.commit: expand clears of indexed entries first");
      }
    }
    const userChecked = new Set(checks.map((c) => JSON.stringify(c.key)));
    for (let attempt = 1;; attempt++) {
      const result = this.#checkResult(
        await this.#commitOnce(checks, mutations, version, now, signal),
      );
      if (result.ok) return result;
      // A failed check of the caller's is the caller's conflict; one of ours is retried.
      const mine = result.conflicts.filter((k) => userChecked.has(JSON.stringify(k)));
      if (mine.length > 0) return { ok: false, conflicts: mine };
      if (attempt >= MAX_ATTEMPTS) {
        throw new Error(
          `Cannot commit: the entries kept changing under other writers while their index ` +
            `entries were written (${attempt} attempts); try again`,
        );
      }
      // Another program recorded or dropped an index since it was read: read the set again.
      if (result.conflicts.some((k) => JSON.stringify(k) === GEN_ID)) await this.load();
    }
  }

  /** One attempt: the entries' index entries as read now, checked at those versions. */
  async #commitOnce(
    checks: AtomicCheck[],
    mutations: Mutation[],
    version: string,
    now: () => number,
    signal: AbortSignal | undefined,
  ): Promise<DriverCommitResult> {
    // With the set of kept indexes as read: a commit after another program changed it fails.
    const genCheck: AtomicCheck[] = this.enabled ? [{ key: GEN_KEY, version: this.#gen! }] : [];
    const last = new Map<string, Mutation & { key: Key }>();
    for (const m of mutations) {
      if (m.type !== "clear" && this.#covering(m.key).length > 0) {
        last.set(JSON.stringify(m.key), m);
      }
    }
    if (last.size === 0) {
      const request: CommitRequest = {
        checks: [...checks, ...genCheck],
        mutations,
        version,
        now: now(),
      };
      if (signal !== undefined) request.signal = signal;
      return await this.#driver.commit(request);
    }
    const keys = [...last.values()].map((m) => m.key);
    const t = now();
    const olds = this.#driver.getMany
      ? await this.#driver.getMany(keys, t)
      : await Promise.all(keys.map((k) => this.#driver.get(k, t)));
    const extraChecks: AtomicCheck[] = [...genCheck];
    const extra: Mutation[] = [];
    keys.forEach((key, i) => {
      const old = olds[i];
      const live = old !== null && (old.expiresAt === null || old.expiresAt > t);
      extraChecks.push({ key, version: live ? old!.version : null });
      const m = last.get(JSON.stringify(key))!;
      const before = this.#entryKeys(key, old?.value);
      const after = this.#entryKeys(key, m.type === "set" ? m.value : undefined);
      for (const [id, k] of before) if (!after.has(id)) extra.push({ type: "delete", key: k });
      for (const [id, k] of after) {
        const sameExpiry = before.has(id) &&
          old!.expiresAt === (m as { expiresAt: number | null }).expiresAt;
        if (!sameExpiry) {
          extra.push({
            type: "set",
            key: k,
            value: "0",
            expiresAt: (m as { expiresAt: number | null }).expiresAt,
          });
        }
      }
    });
    const request: CommitRequest = {
      checks: [...checks, ...extraChecks],
      mutations: [...mutations, ...extra],
      version,
      now: t,
    };
    if (signal !== undefined) request.signal = signal;
    return await this.#driver.commit(request);
  }

  /** The index, and the range of its keys, that narrows `q`; `undefined`: none fits. */
  #plan(q: NormalizedQuery) {
    if (!this.active) return undefined;
    const choice = chooseIndex(this.specs, q);
    if (choice?.clause === undefined) return undefined;
    const clause = q.where[choice.clause];
    const operand = clause.value;
    const base = internalKey(AREA, choice.index.name);
    if (clause.op === "eq") {
      const token = fieldToken(operand);
      if (token === undefined) return undefined;
      return { index: choice.index, range: { prefix: [...base, token] } };
    }
    let rank: string;
    let token: string;
    if (typeof operand === "number") [rank, token] = ["4", `4${numberToken(operand)}`];
    else if (typeof operand === "string") [rank, token] = ["5", `5${truncate(operand)}`];
    else return undefined;
    const next = String(Number(rank) + 1);
    // A truncated string token may stand for longer strings on either side: bounds include it.
    const range = clause.op === "lt" || clause.op === "lte"
      ? { prefix: base, start: [...base, rank], end: [...base, `${token}\u0000`] }
      : { prefix: base, start: [...base, token], end: [...base, next] };
    return { index: choice.index, range };
  }

  /** Answer `q` from index entries, or `undefined` when no core index narrows it. */
  async query(q: NormalizedQuery, now: number): Promise<RawEntry[] | undefined> {
    const plan = this.#plan(q);
    if (plan === undefined) return undefined;
    const skip = 4; // ["\u0000", "ix", name, token, ...key]
    const keys: Key[] = [];
    const seen = new Set<string>();
    for await (const raw of this.#driver.list(plan.range, now)) {
      if (raw.expiresAt !== null && raw.expiresAt <= now) continue;
      const key = raw.key.slice(skip);
      if (q.prefix.length > 0 && !hasPrefix(key, q.prefix)) continue;
      const id = JSON.stringify(key);
      if (!seen.has(id)) {
        seen.add(id);
        keys.push(key);
      }
    }
    const raws = this.#driver.getMany
      ? await this.#driver.getMany(keys, now)
      : await Promise.all(keys.map((k) => this.#driver.get(k, now)));
    const candidates: { key: Key; value: unknown; raw: RawEntry }[] = [];
    for (const raw of raws) {
      if (raw === null || (raw.expiresAt !== null && raw.expiresAt <= now)) continue;
      candidates.push({ key: raw.key, value: parseJson(raw.value), raw });
    }
    return applyQuery(candidates, q).map((c) => c.raw);
  }

  /** How `q` runs on the core's index entries, or `undefined`. */
  explain(q: NormalizedQuery): QueryPlan | undefined {
    const plan = this.#plan(q);
    if (plan === undefined) return undefined;
    return {
      index: plan.index.name,
      scan: false,
      by: "core",
      detail: [
        `index entries kept by the core for ${plan.index.name} (${
          plan.index.path.join(".")
        }): list the matching ones, read those entries, apply the query to them`,
      ],
    };
  }

  /**
   * Read the indexes recorded in the store (every write keeps them from now
   * on), build every declared index not yet built (in batches, each its own
   * commit checked at the entries' versions), and, when `authoritative`, drop
   * the index entries of indexes no longer declared. An index recorded by an
   * older version (without its prefix and path) is built again when declared.
   * `progress` gets a line per step worth telling.
   */
  async prepare(
    authoritative: boolean,
    now: () => number,
    newVersion: () => string,
    progress: (message: string) => void,
    signal?: AbortSignal,
    onBuild?: PrepareIndexesRequest["onBuild"],
  ): Promise<void> {
    if (!this.enabled) return;
    const metas = await this.load();
    if (authoritative) {
      for (const [name, meta] of metas) {
        if (this.specs.some((s) => s.name === name)) continue;
        // Recorded as dropping first (no writer keeps it from then on), then emptied.
        if (meta.spec !== undefined && meta.state !== "dropping") {
          await this.#writeMeta(
            [{
              type: "set",
              key: internalKey(META, name),
              value: metaValue(meta.spec, "dropping"),
              expiresAt: null,
            }],
            newVersion,
            now(),
            true,
          );
        }
        await this.#clearArea(internalKey(AREA, name), now, newVersion);
        await this.#writeMeta(
          [
            { type: "delete", key: internalKey(META, name) },
            { type: "delete", key: internalKey(META + "-cursor", name) },
          ],
          newVersion,
          now(),
          false,
        );
        progress(`dropped index ${name}: no longer declared`);
      }
    }
    for (const spec of this.specs) {
      const state = metas.get(spec.name)?.state;
      if (state === "built") continue;
      await this.#build(spec, state === "building", now, newVersion, progress, signal, onBuild);
    }
  }

  async #clearArea(prefix: Key, now: () => number, newVersion: () => string): Promise<void> {
    for (;;) {
      const batch: Mutation[] = [];
      for await (const raw of this.#driver.list({ prefix, batchSize: BUILD_BATCH }, 0)) {
        batch.push({ type: "delete", key: raw.key });
        if (batch.length >= BUILD_BATCH) break;
      }
      if (batch.length === 0) return;
      await this.#driver.commit({
        checks: [],
        mutations: batch,
        version: newVersion(),
        now: now(),
      });
    }
  }

  async #build(
    spec: IndexSpec,
    resume: boolean,
    now: () => number,
    newVersion: () => string,
    progress: (message: string) => void,
    signal?: AbortSignal,
    onBuild?: PrepareIndexesRequest["onBuild"],
  ): Promise<void> {
    // Resumable: a cursor (the last key done) is kept in the meta area while building.
    const cursorKey = internalKey(META + "-cursor", spec.name);
    const saved = resume ? await this.#driver.get(cursorKey, 0) : null;
    let after: Key | undefined = saved === null ? undefined : JSON.parse(saved.value);
    if (!resume) {
      // Recorded first, so that every writer keeps it from then on; then every entry is read.
      // (What an older version or a dropped declaration left is rechecked by every read.)
      await this.#writeMeta(
        [
          {
            type: "set",
            key: internalKey(META, spec.name),
            value: metaValue(spec, "building"),
            expiresAt: null,
          },
          { type: "delete", key: cursorKey },
        ],
        newVersion,
        now(),
        true,
      );
    }
    const label = `index ${spec.name} on ${spec.path.join(".")} under ${
      JSON.stringify(spec.prefix)
    }`;
    let done = 0;
    let told = performance.now();
    if (after !== undefined) progress(`resuming the build of ${label}`);
    let total: number | undefined;
    if (onBuild !== undefined) {
      total = this.#driver.count === undefined
        ? undefined
        : await this.#driver.count({ prefix: spec.prefix }, now());
      if (after !== undefined && total !== undefined) {
        // Resuming: what is left is the entries from the cursor on (one more than is left).
        done = Math.max(
          0,
          total - await this.#driver.count!({ prefix: spec.prefix, start: after }, now()),
        );
      }
      onBuild({ index: spec.name, label, phase: "start", total, done });
    }
    for (;;) {
      signal?.throwIfAborted();
      const from = after;
      const batch: RawEntry[] = [];
      const range = {
        prefix: spec.prefix,
        ...(after === undefined ? {} : { start: after, startExclusive: true }),
        batchSize: BUILD_BATCH,
      };
      for await (const raw of this.#driver.list(range, Number.MIN_SAFE_INTEGER)) {
        if (raw.key[0] === "\u0000") continue;
        batch.push(raw);
        if (batch.length >= BUILD_BATCH) break;
      }
      if (batch.length === 0) break;
      const mutations: Mutation[] = [];
      for (const raw of batch) {
        for (const k of this.#entryKeys(raw.key, raw.value).values()) {
          mutations.push({ type: "set", key: k, value: "0", expiresAt: raw.expiresAt });
        }
      }
      after = batch[batch.length - 1].key;
      mutations.push({
        type: "set",
        key: cursorKey,
        value: JSON.stringify(after),
        expiresAt: null,
      });
      // Checked at the versions read: an entry rewritten meanwhile by a writer that does not
      // keep this index yet is read again.
      const result = await this.#driver.commit({
        checks: batch.map((r) => ({
          key: r.key,
          version: r.expiresAt !== null && r.expiresAt <= now() ? null : r.version,
        })),
        mutations,
        version: newVersion(),
        now: now(),
      });
      if (!result.ok) {
        after = from; // read this batch again
        continue;
      }
      done += batch.length;
      onBuild?.({ index: spec.name, label, phase: "progress", done, total });
      if (performance.now() - told > 2000) {
        progress(`building ${label}: ${done} entries…`);
        told = performance.now();
      }
    }
    await this.#driver.commit({
      checks: [],
      mutations: [
        {
          type: "set",
          key: internalKey(META, spec.name),
          value: metaValue(spec, "built"),
          expiresAt: null,
        },
        { type: "delete", key: cursorKey },
      ],
      version: newVersion(),
      now: now(),
    });
    if (done > 0) progress(`built ${label}: ${done} entries`);
    onBuild?.({ index: spec.name, label, phase: "done", done, total: total ?? done });
  }
}
