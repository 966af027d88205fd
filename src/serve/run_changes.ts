/**
 * `GET /api/runs/{id}/changes`: the changes a run made, read from the change
 * feeds of the configured stores (the audit trail of issue 15), each with
 * what its key held before, a page at a time.
 *
 * A feed has no index by run: a page reads each feed from just before the
 * run started (found by a binary search over commit times) to a little after
 * it ended, keeping the changes whose `by.runId` is the run's. A page stops
 * at `limit` changes or after reading {@linkcode SCAN_BUDGET} feed entries,
 * whichever comes first, and then gives a cursor (a busy store's feed holds
 * many other changes in that window).
 *
 * @module
 */
import type { z } from "zod";
import { messageOf } from "../errors.ts";
import type { RunRecord } from "../records/types.ts";
import type { Runtime } from "../runtime.ts";
import { feedSeqBefore } from "../store/store.ts";
import type { Change, Store } from "../store/types.ts";
import type * as S from "./schemas.ts";

/** The most feed entries one page reads (the run's and others'). */
export const SCAN_BUDGET = 20_000;

/**
 * How far before a run's start and after its end its changes are looked
 * for: commit times come from the clock of the process that commits, and
 * changes of several processes interleave in the feed.
 */
export const CLOCK_SLACK_MS = 10_000;

/** The largest value (as JSON, in bytes) a page returns whole. */
const MAX_VALUE_BYTES = 64 * 1024;

type RunChange = z.infer<typeof S.RunChangeSchema>;
type Before = z.infer<typeof S.BeforeSchema>;
type StoreInfo = z.infer<typeof S.RunChangesStoreSchema>;

/** A page of a run's changes. */
export type RunChangesPage = z.infer<typeof S.RunChangesPageSchema>;

/** Where a page starts: in store `store`, after sequence number `after`. */
interface Position {
  store: string;
  after: number;
}

const encoder = new TextEncoder();

/** The cursor of `position` (base64url of its JSON). */
function encodeCursor(position: Position): string {
  const bytes = encoder.encode(JSON.stringify([position.store, position.after]));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replaceAll("=", "");
}

/** The position of a cursor, or a `TypeError` saying what is wrong with it. */
export function decodeCursor(cursor: string, storeNames: readonly string[]): Position {
  let parsed: unknown;
  try {
    const text = atob(cursor.replaceAll("-", "+").replaceAll("_", "/"));
    parsed = JSON.parse(new TextDecoder().decode(Uint8Array.from(text, (c) => c.charCodeAt(0))));
  } catch {
    parsed = undefined;
  }
  if (
    !Array.isArray(parsed) || parsed.length !== 2 || typeof parsed[0] !== "string" ||
    !Number.isSafeInteger(parsed[1]) || parsed[1] < 0
  ) {
    throw new TypeError(
      `Invalid cursor "${cursor}": pass the cursor of the previous page as it was`,
    );
  }
  if (!storeNames.includes(parsed[0])) {
    throw new TypeError(
      `Invalid cursor "${cursor}": it points into store "${parsed[0]}", which is not configured ` +
        `now; start again without a cursor`,
    );
  }
  return { store: parsed[0], after: parsed[1] };
}

function sizeOf(value: unknown): number {
  return encoder.encode(JSON.stringify(value) ?? "null").length;
}

/** What `change.key` held before `change`. */
async function beforeOf(
  store: Store,
  change: Change,
  seen: Map<string, Change>,
): Promise<Before> {
  if (change.previousVersion === null) return { kind: "absent" };
  const id = JSON.stringify(change.key);
  const earlier = seen.get(id);
  let value: unknown;
  if (earlier !== undefined && earlier.version === change.previousVersion) {
    value = earlier.value;
  } else {
    try {
      const entry = await store.getAt(change.key, { seq: change.seq - 1 });
      if (entry === null || entry.version !== change.previousVersion) {
        return {
          kind: "unknown",
          reason: `the change feed does not hold version ${change.previousVersion} of this key`,
        };
      }
      value = entry.value;
    } catch (err) {
      if (err instanceof RangeError) return { kind: "unknown", reason: messageOf(err) };
      throw err;
    }
  }
  const size = sizeOf(value);
  return size > MAX_VALUE_BYTES
    ? { kind: "truncated", version: change.previousVersion, size }
    : { kind: "value", value, version: change.previousVersion };
}

async function runChangeOf(
  storeName: string,
  store: Store,
  change: Change,
  seen: Map<string, Change>,
): Promise<RunChange> {
  const before = await beforeOf(store, change, seen);
  const out: RunChange = {
    store: storeName,
    ...change,
    key: [...change.key],
    by: { ...change.by },
    before,
  };
  if (change.op === "set") {
    const size = sizeOf(change.value);
    if (size > MAX_VALUE_BYTES) {
      delete out.value;
      out.truncated = true;
      out.size = size;
    }
  }
  return out;
}

/**
 * A page of the changes `run` made in the feeds of `runtime`'s stores, in
 * store (config) order then sequence order, from `cursor` (see
 * {@linkcode decodeCursor}) on. Every page lists every store with whether it
 * keeps a feed.
 */
export async function runChangesPage(
  runtime: Runtime,
  run: RunRecord,
  options: { limit: number; cursor?: string },
): Promise<RunChangesPage> {
  const names = runtime.storeNames;
  const from = options.cursor === undefined ? undefined : decodeCursor(options.cursor, names);
  const stores: StoreInfo[] = [];
  const open = new Map<string, Store>();
  for (const name of names) {
    try {
      const store = await runtime.store(name);
      const info = await store.feedInfo();
      if (info.enabled) {
        stores.push({ name, feed: true, firstSeq: info.firstSeq, lastSeq: info.lastSeq });
        open.set(name, store);
      } else {
        stores.push({
          name,
          feed: false,
          reason: `store "${name}" keeps no change feed; add \`changes: { keep: 30d }\` to ` +
            `stores.${name} in flowstate.yaml to record the values of later runs' changes`,
        });
      }
    } catch (err) {
      stores.push({ name, feed: false, error: `cannot read store "${name}": ${messageOf(err)}` });
    }
  }
  const changes: RunChange[] = [];
  let scanned = 0;
  let next: Position | undefined;
  const until = run.endedAt === null ? Infinity : run.endedAt + CLOCK_SLACK_MS;
  let started = from === undefined;
  outer: for (const name of names) {
    if (!started) {
      if (name !== from!.store) continue;
      started = true;
    }
    const store = open.get(name);
    if (store === undefined) continue;
    const since = from?.store === name
      ? from.after
      : await feedSeqBefore(store, run.startedAt - CLOCK_SLACK_MS);
    const seen = new Map<string, Change>();
    for await (const change of store.changes({ since })) {
      scanned++;
      if (change.at > until) break;
      if (change.by.runId === run.id) {
        changes.push(await runChangeOf(name, store, change, seen));
        // The run's own earlier change is the usual "before" (kept for them only: bounded).
        seen.set(JSON.stringify(change.key), change);
      } else if (seen.size > 0) seen.delete(JSON.stringify(change.key));
      if (changes.length >= options.limit || scanned >= SCAN_BUDGET) {
        next = { store: name, after: change.seq };
        break outer;
      }
    }
  }
  return {
    runId: run.id,
    scopes: { ...runtime.config.scopes },
    stores,
    changes,
    scanned,
    ...(next === undefined ? {} : { cursor: encodeCursor(next) }),
  };
}
