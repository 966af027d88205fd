/**
 * The change feed, kept by the core in the reserved internal key space of any
 * driver: every commit appends, in the same driver commit, one entry per
 * changed key and moves a head counter, checked against the version it was
 * read at. Two commits can never take the same sequence numbers (the second
 * one's check fails and the core retries it), so sequence numbers are
 * gap-free and in commit order, across processes, on every backend whose
 * `commit()` is atomic.
 *
 * Layout (all under `["\u0000", "feed"]`):
 * - `head`: `{"seq": N}`, the last sequence number;
 * - `e/<seq, 16 digits>`: the entry (a {@linkcode Change} as JSON);
 * - `k/<key token>/<seq>`: an index by key, for history and `getAt`.
 *
 * A driver with a {@linkcode FeedTable} (sqlite) keeps the feed natively
 * instead: every function here then reads and trims through it.
 *
 * @module
 */
import { sha256Hex } from "../_sha256.ts";
import { parseDuration } from "../duration.ts";
import type { FeedCommit, FeedTable, Mutation, RawEntry, StoreDriver } from "./driver.ts";
import { internalKey } from "./internal_keys.ts";
import { hasPrefix } from "./keys.ts";
import type {
  AtomicCheck,
  Change,
  ChangeActor,
  ChangesOptions,
  FeedKeep,
  JsonValue,
  Key,
} from "./types.ts";
import { parseJson } from "../_json.ts";

/** The head counter's key. */
export const FEED_HEAD: Key = internalKey("feed", "head");
/** The prefix of the entries' keys (`e/<seq>`). */
export const FEED_ENTRIES: Key = internalKey("feed", "e");
/** The prefix of the index by key (`k/<key token>/<seq>`). */
export const FEED_BY_KEY: Key = internalKey("feed", "k");
const ENTRIES = FEED_ENTRIES;
const BY_KEY = FEED_BY_KEY;
const SEQ_WIDTH = 16;
/**
 * Entries a feed listing reads per page. A long read (a point-in-time
 * restore, an increment, a resuming watcher) pays the driver's per-page cost
 * (a statement, a round trip) once per this many entries.
 */
const FEED_PAGE = 1000;

/** A sequence number as a key element (fixed width, so key order is number order). */
export function seqElement(seq: number): string {
  return String(seq).padStart(SEQ_WIDTH, "0");
}

/** The key of entry `seq`. */
export function entryKey(seq: number): Key {
  return [...ENTRIES, seqElement(seq)];
}

/** One key element naming a user's key in the by-key index (a hash for a long key). */
export function keyToken(key: Key): string {
  const json = JSON.stringify(key);
  return json.length <= 512 ? json : `#${sha256Hex(json)}`;
}

/** The normalized retention of a feed: by age (ms) and/or count. */
export interface FeedRetention {
  /** Keep entries younger than this many ms (`undefined`: any age). */
  ageMs?: number;
  /** Keep at most this many newest entries (`undefined`: any number). */
  count?: number;
  /** As configured, for display. */
  keep: FeedKeep;
}

/** `parseDuration`, its message starting with `what` (`Cannot open store "x": changes.keep: …`). */
function feedDuration(value: string | number, what: string, field: string): number {
  try {
    return parseDuration(value, field);
  } catch (error) {
    const message = `${what}: ${field}: ${
      (error as Error).message.replace(/^Cannot use .* as a duration: /, "")
    }`;
    throw error instanceof TypeError ? new TypeError(message) : new RangeError(message);
  }
}

/** Validate `changes: { keep }` of a store spec (`what` starts the error message). */
export function normalizeFeedOption(option: unknown, what: string): FeedRetention | undefined {
  if (option === undefined || option === null || option === false) return undefined;
  if (typeof option !== "object" || Array.isArray(option)) {
    throw new TypeError(
      `${what}: changes must be an object like { keep: "30d" } (got ${JSON.stringify(option)})`,
    );
  }
  const { keep, ...rest } = option as { keep?: unknown };
  const unknown = Object.keys(rest);
  if (unknown.length > 0) {
    throw new TypeError(`${what}: changes.${unknown[0]} is not an option; changes has only keep`);
  }
  if (keep === undefined) {
    throw new TypeError(
      `${what}: changes.keep is required: a duration like "30d", or { age: "30d", count: 1000000 }`,
    );
  }
  if (typeof keep === "string" || typeof keep === "number") {
    return { ageMs: feedDuration(keep, what, "changes.keep"), keep };
  }
  if (typeof keep !== "object" || keep === null || Array.isArray(keep)) {
    throw new TypeError(
      `${what}: changes.keep must be a duration like "30d" or { age, count } (got ${
        JSON.stringify(keep)
      })`,
    );
  }
  const { age, count, ...others } = keep as { age?: unknown; count?: unknown };
  const extra = Object.keys(others);
  if (extra.length > 0) {
    throw new TypeError(`${what}: changes.keep.${extra[0]} is not an option; use age and count`);
  }
  if (age === undefined && count === undefined) {
    throw new TypeError(`${what}: changes.keep needs age (a duration), count, or both`);
  }
  const out: FeedRetention = { keep: keep as FeedKeep };
  if (age !== undefined) {
    if (typeof age !== "string" && typeof age !== "number") {
      throw new TypeError(`${what}: changes.keep.age must be a duration like "30d"`);
    }
    out.ageMs = feedDuration(age, what, "changes.keep.age");
  }
  if (count !== undefined) {
    if (typeof count !== "number" || !Number.isInteger(count) || count < 1) {
      throw new RangeError(
        `${what}: changes.keep.count must be a positive integer (got ${JSON.stringify(count)})`,
      );
    }
    out.count = count;
  }
  return out;
}

/** What the feed adds to one commit. */
export interface FeedPlan {
  /** The check on the head counter. */
  check: AtomicCheck;
  /** The entries, index entries and the new head. */
  mutations: Mutation[];
  /** The head's version as read (`null`: absent). */
  headVersion: string | null;
  /** The last sequence number this commit takes (the head's, when nothing changes). */
  lastSeq: number;
}

async function getRaw(driver: StoreDriver, key: Key, now: number): Promise<RawEntry | null> {
  return await driver.get(key, now);
}

/** The head: the last sequence number, when the feed started, and the head's version. */
export interface FeedHead {
  /** The last sequence number (0: none yet). */
  seq: number;
  /** When the first entry was written (ms), if any was. */
  since?: number;
  /** The head entry's version (`null`: absent). */
  version: string | null;
}

function parseHead(raw: RawEntry | null): FeedHead {
  if (raw === null) return { seq: 0, version: null };
  const { seq, since } = JSON.parse(raw.value) as { seq: number; since?: number };
  return { seq, since, version: raw.version };
}

/** The head as stored. */
export async function readHead(driver: StoreDriver): Promise<FeedHead> {
  const table = driver.feedTable;
  if (table !== undefined) {
    const { seq, since } = await table.head();
    return since === undefined ? { seq, version: null } : { seq, since, version: null };
  }
  return parseHead(await getRaw(driver, FEED_HEAD, 0));
}

/** Iterate an iterable or async iterable, without an await per item for a synchronous one. */
async function* each<T>(items: Iterable<T> | AsyncIterable<T>): AsyncGenerator<T> {
  if (Symbol.iterator in items) yield* items as Iterable<T>;
  else yield* items as AsyncIterable<T>;
}

/** The last write of each key in `mutations` (clears already expanded), in commit order. */
function lastWrites(mutations: readonly Mutation[]): (Mutation & { type: "set" | "delete" })[] {
  const last = new Map<string, Mutation & { type: "set" | "delete" }>();
  for (const m of mutations) {
    if (m.type === "clear") throw new Error("planFeed: clears must be expanded first");
    const id = JSON.stringify(m.key);
    last.delete(id);
    last.set(id, m);
  }
  return [...last.values()];
}

/**
 * Plan the feed's part of a commit of `mutations` (clears already expanded
 * into deletes): reads the head and the current version of each written key
 * (as of `now`); one entry per key, for its last write in the commit; a
 * delete of an absent key is no change.
 */
export async function planFeed(
  driver: StoreDriver,
  mutations: readonly Mutation[],
  now: number,
  version: string,
  by: ChangeActor,
): Promise<FeedPlan> {
  const writes = lastWrites(mutations);
  const keys = writes.map((m) => m.key);
  let headRaw: RawEntry | null;
  let previous: (RawEntry | null)[];
  if (driver.getMany) {
    [headRaw, ...previous] = await driver.getMany([FEED_HEAD, ...keys], now);
  } else {
    [headRaw, ...previous] = await Promise.all(
      [FEED_HEAD, ...keys].map((k) => getRaw(driver, k, now)),
    );
  }
  return feedPlanFrom(headRaw, previous, writes, now, version, by);
}

/**
 * The feed's part of a commit for a driver that writes the feed in its own
 * transaction ({@linkcode StoreDriver.commitFeed}): which entries to read
 * under its locks (the head, then each written key), and the feed's
 * mutations given what it read.
 */
export function feedCommit(
  mutations: readonly Mutation[],
  now: number,
  version: string,
  by: ChangeActor,
  topic: string,
): FeedCommit {
  const writes = lastWrites(mutations);
  const byJson = JSON.stringify(by);
  return {
    reads: [FEED_HEAD, ...writes.map((m) => m.key)],
    topic,
    template: {
      head: FEED_HEAD,
      entries: ENTRIES,
      since: now,
      writes: writes.map((m) => ({
        key: m.key,
        delete: m.type === "delete",
        byKey: [...BY_KEY, keyToken(m.key)],
        ...entryPieces(m, now, version, byJson),
      })),
    },
    plan: ([headRaw, ...previous]) =>
      feedPlanFrom(headRaw ?? null, previous, writes, now, version, by).mutations,
  };
}

/**
 * The text of a change entry around its sequence number and previous version:
 * the entry is `{"seq":` + seq + `middle` + the previous version as JSON + `tail`.
 */
function entryPieces(
  m: Mutation & { type: "set" | "delete" },
  now: number,
  version: string,
  byJson: string,
): { middle: string; tail: string } {
  return m.type === "set"
    ? {
      middle: `,"at":${now},"key":${JSON.stringify(m.key)},"op":"set","value":${m.value},` +
        `"version":${JSON.stringify(version)},"previousVersion":`,
      tail: `,"expiresAt":${m.expiresAt},"by":${byJson}}`,
    }
    : {
      middle: `,"at":${now},"key":${JSON.stringify(m.key)},"op":"delete","version":null,` +
        `"previousVersion":`,
      tail: `,"expiresAt":null,"by":${byJson}}`,
    };
}

function feedPlanFrom(
  headRaw: RawEntry | null,
  previous: readonly (RawEntry | null)[],
  writes: readonly (Mutation & { type: "set" | "delete" })[],
  now: number,
  version: string,
  by: ChangeActor,
): FeedPlan {
  const head = parseHead(headRaw);
  const out: Mutation[] = [];
  let seq = head.seq;
  const byJson = JSON.stringify(by);
  for (let i = 0; i < writes.length; i++) {
    const m = writes[i];
    const prev = previous[i] ?? null;
    const prevVersion = prev !== null && (prev.expiresAt === null || prev.expiresAt > now)
      ? prev.version
      : null;
    if (m.type === "delete" && prevVersion === null) continue;
    seq++;
    const { middle, tail } = entryPieces(m, now, version, byJson);
    const value = `{"seq":${seq}${middle}${JSON.stringify(prevVersion)}${tail}`;
    out.push({ type: "set", key: entryKey(seq), value, expiresAt: null });
    out.push({
      type: "set",
      key: [...BY_KEY, keyToken(m.key), seqElement(seq)],
      value: "null",
      expiresAt: null,
    });
  }
  if (seq !== head.seq) {
    const since = head.since ?? now;
    out.push({
      type: "set",
      key: FEED_HEAD,
      value: `{"seq":${seq},"since":${since}}`,
      expiresAt: null,
    });
  }
  return {
    check: { key: FEED_HEAD, version: head.version },
    mutations: out,
    headVersion: head.version,
    lastSeq: seq,
  };
}

/** The oldest sequence number kept (`lastSeq + 1` when none is) and the last. */
export async function feedBounds(
  driver: StoreDriver,
): Promise<{ firstSeq: number; lastSeq: number; head: FeedHead }> {
  const head = await readHead(driver);
  const table = driver.feedTable;
  if (table !== undefined) {
    const first = await table.first();
    return { firstSeq: first ?? head.seq + 1, lastSeq: head.seq, head };
  }
  for await (const raw of driver.list({ prefix: ENTRIES, limit: 1, batchSize: 1 }, 0)) {
    return { firstSeq: Number(raw.key[raw.key.length - 1]), lastSeq: head.seq, head };
  }
  return { firstSeq: head.seq + 1, lastSeq: head.seq, head };
}

function parseChange<T = JsonValue>(raw: RawEntry): Change<T> {
  return parseJson(raw.value) as Change<T>;
}

/** Check {@linkcode ChangesOptions}; `what` starts the error message. */
export function checkChangesOptions(options: ChangesOptions, what: string): void {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`${what}: options must be an object`);
  }
  const { since, until, limit } = options;
  if (since !== undefined && (!Number.isInteger(since) || since < 0)) {
    throw new RangeError(`${what}: since must be a sequence number >= 0 (got ${since})`);
  }
  if (until !== undefined && !Number.isFinite(until)) {
    throw new RangeError(`${what}: until must be a time in ms since the epoch (got ${until})`);
  }
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) {
    throw new RangeError(`${what}: limit must be a non-negative integer (got ${limit})`);
  }
}

/** Read entries (see {@linkcode ChangesOptions}); the options are checked already. */
export async function* readChanges<T = JsonValue>(
  driver: StoreDriver,
  options: ChangesOptions,
): AsyncGenerator<Change<T>> {
  const limit = options.limit ?? Infinity;
  if (limit === 0) return;
  const since = options.since ?? 0;
  // Every entry read is yielded unless a filter skips it: a limit then bounds the page.
  const filtered = options.until !== undefined ||
    (options.prefix !== undefined && options.prefix.length > 0);
  const batchSize = filtered ? FEED_PAGE : Math.min(limit, FEED_PAGE);
  const table = driver.feedTable;
  const range = options.reverse
    ? { prefix: ENTRIES, start: entryKey(since + 1), reverse: true, batchSize }
    : { prefix: ENTRIES, start: entryKey(since + 1), batchSize };
  const until = options.until;
  const prefix = options.prefix !== undefined && options.prefix.length > 0
    ? options.prefix
    : undefined;
  /** `change` itself, `SKIP` if the options leave it out, `STOP` past the end. */
  const accept = (change: Change<T>): Change<T> | typeof SKIP | typeof STOP => {
    if (until !== undefined && change.at > until) {
      // Commit times follow sequence numbers only roughly (clocks of several
      // processes): keep reading, but stop well past the bound.
      return !options.reverse && change.at > until + 60_000 ? STOP : SKIP;
    }
    return prefix !== undefined && !hasPrefix(change.key, prefix) ? SKIP : change;
  };
  let n = 0;
  if (table !== undefined) {
    const entries = table.changes({ after: since, reverse: options.reverse, batchSize });
    if (Symbol.iterator in entries) {
      // A synchronous driver (sqlite): no await per entry.
      for (const entry of entries) {
        const change = accept(entry as Change<T>);
        if (change === STOP) return;
        if (change === SKIP) continue;
        yield change;
        if (++n >= limit) return;
      }
      return;
    }
    for await (const entry of entries) {
      const change = accept(entry as Change<T>);
      if (change === STOP) return;
      if (change === SKIP) continue;
      yield change;
      if (++n >= limit) return;
    }
    return;
  }
  const listing = driver.list(range, 0);
  if (Symbol.iterator in listing) {
    // A synchronous driver's listing (sqlite, memory): no await per entry.
    for (const raw of listing) {
      const change = accept(parseChange<T>(raw));
      if (change === STOP) return;
      if (change === SKIP) continue;
      yield change;
      if (++n >= limit) return;
    }
    return;
  }
  for await (const raw of listing) {
    const change = accept(parseChange<T>(raw));
    if (change === STOP) return;
    if (change === SKIP) continue;
    yield change;
    if (++n >= limit) return;
  }
}

const SKIP = Symbol("skip");
const STOP = Symbol("stop");

/** The sequence numbers of the changes of `key`, oldest first (`reverse`: newest first). */
export async function* keyHistorySeqs(
  driver: StoreDriver,
  key: Key,
  options: { reverse?: boolean; before?: number; after?: number } = {},
): AsyncGenerator<number> {
  const table = driver.feedTable;
  if (table !== undefined) {
    yield* each(table.keySeqs(key, { ...options, batchSize: 100 }));
    return;
  }
  const prefix = [...BY_KEY, keyToken(key)];
  const range = {
    prefix,
    ...(options.after !== undefined ? { start: [...prefix, seqElement(options.after + 1)] } : {}),
    ...(options.before !== undefined ? { end: [...prefix, seqElement(options.before)] } : {}),
    reverse: options.reverse === true,
    batchSize: 100,
  };
  for await (const raw of driver.list(range, 0)) yield Number(raw.key[raw.key.length - 1]);
}

/** Entry `seq`, or `null` when it is not kept (trimmed). */
export async function readEntry<T = JsonValue>(
  driver: StoreDriver,
  seq: number,
): Promise<Change<T> | null> {
  const table = driver.feedTable;
  if (table !== undefined) return (await table.entry(seq)) as Change<T> | null;
  const raw = await getRaw(driver, entryKey(seq), 0);
  return raw === null ? null : parseChange<T>(raw);
}

/**
 * Delete the entries the retention no longer keeps (older than `ageMs`
 * before `now`, or beyond the newest `count`), in batches; resolves how many.
 * The head is never touched, so it never conflicts with writers beyond a retry.
 */
export async function trimFeed(
  driver: StoreDriver,
  retention: { ageMs?: number; count?: number },
  now: number,
  newVersion: () => string,
): Promise<number> {
  const { firstSeq, lastSeq } = await feedBounds(driver);
  let keepFrom = firstSeq;
  if (retention.count !== undefined) keepFrom = Math.max(keepFrom, lastSeq - retention.count + 1);
  const cutoff = retention.ageMs === undefined ? undefined : now - retention.ageMs;
  const table: FeedTable | undefined = driver.feedTable;
  if (table !== undefined) return await table.trim({ keepFrom, cutoff, lastSeq });
  let removed = 0;
  for (;;) {
    const batch: Change[] = [];
    for await (const raw of driver.list({ prefix: ENTRIES, batchSize: 200 }, 0)) {
      const change = parseChange(raw);
      const old = change.seq < keepFrom || (cutoff !== undefined && change.at < cutoff);
      if (!old || change.seq > lastSeq) break;
      batch.push(change);
      if (batch.length >= 200) break;
    }
    if (batch.length === 0) return removed;
    const mutations: Mutation[] = [];
    for (const change of batch) {
      mutations.push({ type: "delete", key: entryKey(change.seq) });
      mutations.push({
        type: "delete",
        key: [...BY_KEY, keyToken(change.key), seqElement(change.seq)],
      });
    }
    await driver.commit({ checks: [], mutations, version: newVersion(), now });
    removed += batch.length;
  }
}

/**
 * Replace the values of `set` entries in place (the `rekey` job seals them
 * again): `from` is the entry as read, `value` the new value's JSON text;
 * everything else of the entry stays. An entry no longer kept (trimmed), or
 * whose value is no longer `from`'s, is left alone. In the key space, one
 * commit per call, each entry checked against the version it was read at
 * (a trim that deleted it meanwhile is never undone). Resolves how many were
 * rewritten.
 */
export async function setFeedValues(
  driver: StoreDriver,
  values: readonly { from: Change; value: string }[],
  now: number,
  newVersion: () => string,
): Promise<number> {
  if (values.length === 0) return 0;
  const table = driver.feedTable;
  if (table !== undefined) {
    if (table.setValues === undefined) {
      throw new TypeError(
        "Cannot rewrite the change feed's values: this store's driver keeps the feed in a " +
          "table of its own without FeedTable.setValues; the plugin must add it",
      );
    }
    return await table.setValues(values.map((v) => ({ seq: v.from.seq, value: v.value })));
  }
  const keys = values.map((v) => entryKey(v.from.seq));
  const raws = driver.getMany
    ? await driver.getMany(keys, 0)
    : await Promise.all(keys.map((k) => getRaw(driver, k, 0)));
  const writes: { check: AtomicCheck; mutation: Mutation }[] = [];
  values.forEach((v, i) => {
    const raw = raws[i];
    if (raw === null) return; // trimmed
    const change = parseChange(raw);
    if (change.op !== "set" || JSON.stringify(change.value) !== JSON.stringify(v.from.value)) {
      return; // not the entry read (cannot happen but by hand): left alone
    }
    writes.push({
      check: { key: keys[i], version: raw.version },
      mutation: {
        type: "set",
        key: keys[i],
        value: JSON.stringify({ ...change, value: parseJson(v.value) }),
        expiresAt: null,
      },
    });
  });
  const commit = async (batch: typeof writes) =>
    (await driver.commit({
      checks: batch.map((w) => w.check),
      mutations: batch.map((w) => w.mutation),
      version: newVersion(),
      now,
    })).ok;
  if (writes.length === 0 || await commit(writes)) return writes.length;
  // One was trimmed (or rewritten) meanwhile: the others one at a time.
  let n = 0;
  for (const w of writes) if (await commit([w])) n++;
  return n;
}

/** What the key's value was at a point of the feed: the change in effect, or none. */
export type AtResult =
  | { kind: "change"; change: Change }
  | { kind: "absent" }
  | { kind: "current" };

/**
 * Which change of `key` was in effect at `at` (a sequence number or a time):
 * `change` (its last change at or before that point), `absent` (its first
 * later change created it), or `current` (no change since: the current
 * entry). Throws a `RangeError` when the feed does not reach back that far.
 */
export async function changeAt(
  driver: StoreDriver,
  key: Key,
  at: { seq: number } | { time: number },
  what: string,
): Promise<{ result: AtResult; time: number }> {
  const { firstSeq, lastSeq, head } = await feedBounds(driver);
  let time: number;
  const bySeq = "seq" in at;
  if (bySeq) {
    if (!Number.isInteger(at.seq) || at.seq < 0) {
      throw new RangeError(`${what}: seq must be a sequence number >= 0 (got ${at.seq})`);
    }
    if (at.seq > lastSeq) {
      throw new RangeError(`${what}: there is no change #${at.seq} yet (the last is #${lastSeq})`);
    }
    if (at.seq < firstSeq - 1) {
      throw new RangeError(
        `${what}: the change feed reaches back to #${firstSeq - 1} (older entries were trimmed ` +
          `by the gc job's retention); ask for #${firstSeq - 1} or later`,
      );
    }
    time = at.seq === 0 ? -Infinity : (await readEntry(driver, at.seq))?.at ?? -Infinity;
  } else {
    if (typeof at.time !== "number" || !Number.isFinite(at.time)) {
      throw new RangeError(`${what}: time must be ms since the epoch (got ${at.time})`);
    }
    time = at.time;
    const oldest = firstSeq > lastSeq ? undefined : await readEntry(driver, firstSeq);
    const reach = firstSeq > 1 ? oldest?.at : head.since;
    if (reach !== undefined && time < reach) {
      throw new RangeError(
        `${what}: the change feed reaches back to ${new Date(reach).toISOString()}; ` +
          `ask for a later time`,
      );
    }
  }
  let later: Change | undefined;
  // By sequence number, the index seeks straight to the point (a key changed
  // a million times since is not read back); by time, it reads back from the
  // newest change, since commit times follow sequence numbers only roughly.
  const atSeq = bySeq ? (at as { seq: number }).seq : undefined;
  const range = atSeq === undefined ? { reverse: true } : { reverse: true, before: atSeq + 1 };
  for await (const seq of keyHistorySeqs(driver, key, range)) {
    const change = await readEntry(driver, seq);
    if (change === null) break; // trimmed meanwhile
    if (atSeq !== undefined ? change.seq <= atSeq : change.at <= time) {
      return { result: { kind: "change", change }, time };
    }
    later = change;
  }
  if (atSeq !== undefined && later === undefined) {
    // No change at or before the point: the key's first later change tells.
    for await (const seq of keyHistorySeqs(driver, key, { after: atSeq })) {
      later = (await readEntry(driver, seq)) ?? undefined;
      break;
    }
  }
  if (later === undefined) return { result: { kind: "current" }, time };
  if (later.previousVersion === null) return { result: { kind: "absent" }, time };
  throw new RangeError(
    `${what}: key ${JSON.stringify(key)} had a value from before the change feed's oldest ` +
      `entry at that point; the feed cannot tell what it was`,
  );
}
