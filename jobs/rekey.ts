/**
 * The `rekey` job: seal every value of an encrypted store with its current
 * key, in place, after a key rotation (or after turning encryption on for a
 * store that already held values).
 *
 * ```yaml
 * stores:
 *   main:
 *     plugin: sqlite
 *     encrypt: { keys: ["${env.FLOWSTATE_KEY}", "${env.FLOWSTATE_OLD_KEY}"] }
 * ```
 *
 * `flowstate jobs run rekey` then reads each entry as stored, and when its
 * value is not sealed with the current key (the first of `keys`) opens it
 * with the key it was sealed with (or takes it as it is, if it was never
 * sealed) and writes it back sealed with the current key, by compare-and-set
 * on the version it read: a concurrent write wins, and is not lost (it went
 * through the wrapper, so it is sealed with the current key already; a
 * conflicting entry is read again and checked again). Expiry is kept.
 *
 * A value whose plaintext fields are not what the declared `plaintext`
 * paths give now (after changing them) is sealed again too; once every entry
 * is done, the store records the declared paths, and queries on a path
 * declared since (refused until then: the values written before lack it) work.
 *
 * It is idempotent: a value already under the current key is skipped, so a
 * job stopped at any point (Ctrl-C, `kill -9`) is finished by running it
 * again. The values held in the store's change feed (`changes: { keep }`)
 * are sealed again the same way, after the entries (only the value of an
 * entry changes: its number, time, key, op, versions and actor stay), so
 * that no value stays in the clear, or needs an old key, for the feed's
 * whole retention. When it reports no value left under an old key, the old
 * key can be removed from the config: history stays readable. Values that cannot be opened (tampered, or sealed with a key that
 * is not configured) fail the job, naming the key; nothing else changes.
 *
 * @module
 */
import { z } from "zod";
import { defineJob, type Job, type JobContext, type JobResult } from "../src/jobs/job.ts";
import type { Progress } from "../src/jobs/progress.ts";
import { type EncryptionHandle, encryptionOf } from "../src/store/sealed.ts";
import { setChangeValues } from "../src/store/store.ts";
import type { Change, Clock, Entry, Store } from "../src/store/types.ts";
import { ConfigError } from "../src/errors.ts";
import { systemClock } from "../src/clock.ts";

/**
 * Options of the rekey job.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, runJob } from "@flowstate/core";
 * import type { RekeyOptions } from "@flowstate/core/jobs";
 *
 * const config = (keys: string[]) => ({ stores: { main: { plugin: "memory" as const, encrypt: { keys } } } });
 * await using rt = await openRuntime({ config: config(["22".repeat(32), "11".repeat(32)]) });
 * await (await rt.store("main")).set(["a"], 1);
 * const options: Partial<RekeyOptions> = { stores: ["main"], batchSize: 100 };
 * const run = await runJob(rt, "rekey", { options });
 * assert.equal(run.status, "succeeded");
 * ```
 */
export interface RekeyOptions {
  /** The stores to rekey (default: every configured store with `encrypt:`). */
  stores?: string[];
  /** Entries read per page. */
  batchSize: number;
}

/** Default options of the rekey job. */
export const defaults = { batchSize: 500 } satisfies Partial<RekeyOptions>;

const optionsSchema = z.strictObject({
  stores: z.array(z.string().min(1)).min(1).optional(),
  batchSize: z.number().int().min(1).max(100_000).default(defaults.batchSize),
});

/**
 * What {@linkcode rekeyStore} did to one store.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { encrypted } from "@flowstate/core/encrypt";
 * import { type RekeyReport, rekeyStore } from "@flowstate/core/jobs";
 *
 * const base = await openStore({ plugin: "memory" }, { name: "main" });
 * const old = await encrypted(base, { key: "11".repeat(32) });
 * await old.set(["a"], 1);
 * await using store = await encrypted(base, { keys: ["22".repeat(32), "11".repeat(32)] });
 * const report: RekeyReport = await rekeyStore(store);
 * assert.deepEqual([report.store, report.entries, report.resealed], ["main", 1, 1]);
 * assert.equal(report.keyId, store.keyId);
 * ```
 */
export interface RekeyReport {
  /** The store. */
  store: string;
  /** The key id values are now sealed with. */
  keyId: string;
  /** Entries read. */
  entries: number;
  /** Entries sealed again with the current key (in a dry run: that would be). */
  resealed: number;
  /** Entries already under the current key. */
  skipped: number;
  /** Compare-and-set conflicts (a concurrent write), each read again and checked again. */
  conflicts: number;
  /**
   * The values held in the store's change feed (`null`: the store keeps no
   * feed): its `set` entries read, sealed again with the current key (in a
   * dry run: that would be), and already under it. Only the value changes:
   * an entry keeps its number, time, key, op, versions and actor.
   */
  changes: { entries: number; resealed: number; skipped: number } | null;
}

/**
 * Options of {@linkcode rekeyStore}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { encrypted } from "@flowstate/core/encrypt";
 * import { rekeyStore, type RekeyStoreOptions } from "@flowstate/core/jobs";
 *
 * const base = await openStore({ plugin: "memory" }, { name: "main" });
 * const old = await encrypted(base, { key: "11".repeat(32) });
 * await old.set(["a"], 1);
 * await using store = await encrypted(base, { keys: ["22".repeat(32), "11".repeat(32)] });
 * const options: RekeyStoreOptions = { dryRun: true, batchSize: 50 };
 * assert.equal((await rekeyStore(store, options)).resealed, 1); // would reseal
 * assert.equal((await old.get(["a"]))?.value, 1); // still under the old key
 * ```
 */
export interface RekeyStoreOptions {
  /** Entries read per page (default 500). */
  batchSize?: number;
  /** Stops between entries (the job is idempotent: run it again to finish). */
  signal?: AbortSignal;
  /** Receives progress. */
  progress?: Progress;
  /** Count what would be resealed, write nothing. */
  dryRun?: boolean;
  /** For the remaining time of expiring entries (default: the system clock). */
  clock?: Clock;
}

const MAX_TRIES = 20;

/**
 * Seal every value of the encrypted `store` with its current key, in place
 * (see the module documentation). Rejects with a `TypeError` if the store is
 * not encrypted, with a `DecryptionError` for a value that cannot be opened.
 *
 * @example
 * ```ts
 * import { rekeyStore } from "@flowstate/core/jobs";
 * import { encrypted } from "@flowstate/core/encrypt";
 * import { openStore } from "@flowstate/core";
 * import assert from "node:assert/strict";
 *
 * const base = await openStore({ plugin: "memory" }, { name: "main" });
 * const old = await encrypted(base, { key: "11".repeat(32) });
 * await old.set(["a"], 1);
 * const store = await encrypted(base, { keys: ["22".repeat(32), "11".repeat(32)] });
 * const report = await rekeyStore(store);
 * assert.equal(report.resealed, 1);
 * assert.equal((await rekeyStore(store)).resealed, 0); // idempotent
 * await assert.rejects(() => old.get(["a"])); // the old key alone no longer opens it
 * await store.close();
 * ```
 */
export async function rekeyStore(
  store: Store,
  options: RekeyStoreOptions = {},
): Promise<RekeyReport> {
  const handle = encryptionOf(store);
  if (handle === undefined) {
    throw new TypeError(
      `Cannot rekey store "${store.name}": it is not encrypted; add encrypt: { key: ... } to it`,
    );
  }
  const sealed = handle.sealed;
  const clock = options.clock ?? systemClock;
  const batchSize = options.batchSize ?? defaults.batchSize;
  const report: RekeyReport = {
    store: store.name,
    keyId: handle.currentKeyId,
    entries: 0,
    resealed: 0,
    skipped: 0,
    conflicts: 0,
    changes: null,
  };
  const total = sealed.capabilities.count ? await sealed.count() : undefined;
  options.progress?.start(`rekey ${store.name}`, total);
  let cursor: string | undefined;
  for (;;) {
    // One page at a time, read before any of it is written.
    const page: Entry[] = [];
    const listing = sealed.list({ limit: batchSize, cursor, batchSize });
    for await (const entry of listing) page.push(entry);
    cursor = listing.cursor;
    for (let entry of page) {
      options.signal?.throwIfAborted();
      report.entries++;
      for (let tries = 1;; tries++) {
        if (!(await handle.needsReseal(entry))) {
          report.skipped++;
          break;
        }
        const value = await handle.reseal(entry); // throws for a value it cannot open
        if (options.dryRun) {
          report.resealed++;
          break;
        }
        let expireIn: number | undefined;
        if (entry.expiresAt !== null) {
          expireIn = entry.expiresAt - clock.now();
          if (expireIn <= 0) break; // expired: never read again, gc deletes it
        }
        const result = await sealed.set(entry.key, value, { ifVersion: entry.version, expireIn });
        if (result.ok) {
          report.resealed++;
          break;
        }
        report.conflicts++;
        const current = await sealed.get(entry.key);
        if (current === null) break; // deleted meanwhile
        if (tries >= MAX_TRIES) {
          throw new Error(
            `Cannot rekey ${JSON.stringify(entry.key)} in store "${store.name}": it changed ` +
              `${tries} times while being resealed; run the job again when it is quieter`,
          );
        }
        entry = current;
      }
      options.progress?.advance();
    }
    if (page.length < batchSize) break;
  }
  // Every entry holds the declared plaintext fields now: queries on paths declared since the
  // last rekey may use them.
  if (!options.dryRun) await handle.settlePlaintext();
  options.progress?.finish(
    `rekey ${store.name}: ${report.resealed} resealed, ${report.skipped} already under key ${report.keyId}`,
  );
  // Then the feed (read after the entries: it holds their reseals too, already under the key).
  const feed = await sealed.feedInfo();
  if (feed.enabled) {
    options.progress?.start(
      `rekey ${store.name} change feed`,
      Math.max(0, feed.lastSeq - feed.firstSeq + 1),
    );
    const changes = await rekeyChanges(store, handle, batchSize, options);
    report.changes = changes;
    options.progress?.finish(
      `rekey ${store.name} change feed: ${changes.resealed} values resealed, ` +
        `${changes.skipped} already under key ${report.keyId}`,
    );
  }
  return report;
}

/**
 * Seal again the values held in the change feed of `store` (kept by the
 * store under the wrapper), a page at a time: a page is read, its values
 * that need it are sealed again, and they are written in one transaction
 * (one commit of the core's feed rows, checked against the versions read).
 * Idempotent like the rest: a value already under the current key is
 * skipped, so a job stopped midway finishes when run again.
 */
async function rekeyChanges(
  store: Store,
  handle: EncryptionHandle,
  batchSize: number,
  options: RekeyStoreOptions,
): Promise<{ entries: number; resealed: number; skipped: number }> {
  const out = { entries: 0, resealed: 0, skipped: 0 };
  let since = 0;
  for (;;) {
    const page: Change[] = [];
    for await (const change of handle.sealed.changes({ since, limit: batchSize })) {
      page.push(change);
    }
    if (page.length === 0) break;
    since = page[page.length - 1].seq;
    const values: { from: Change; value: string }[] = [];
    for (const change of page) {
      options.signal?.throwIfAborted();
      if (change.op !== "set") continue;
      out.entries++;
      // The entry as the wrapper would read it: the value is bound to the change's key.
      const entry = {
        key: change.key,
        value: change.value!,
        version: change.version ?? "",
        expiresAt: change.expiresAt,
      };
      if (!(await handle.needsReseal(entry))) {
        out.skipped++;
        continue;
      }
      values.push({ from: change, value: JSON.stringify(await handle.reseal(entry)) });
    }
    if (!options.dryRun && values.length > 0) {
      const written = await setChangeValues(handle.sealed, values);
      if (written === undefined) {
        throw new TypeError(
          `Cannot rekey the change feed of store "${store.name}": the store under the ` +
            `encryption is not one openStore() made, so its feed cannot be rewritten`,
        );
      }
    }
    out.resealed += values.length;
    for (let i = 0; i < page.length; i++) options.progress?.advance();
    if (page.length < batchSize) break;
  }
  return out;
}

async function runRekey(ctx: JobContext, options: RekeyOptions): Promise<JobResult> {
  const configured = ctx.runtime.config.stores;
  const names = options.stores ??
    Object.keys(configured).filter((name) => configured[name].encrypt !== undefined);
  if (names.length === 0) {
    throw new ConfigError(
      "Cannot rekey: no store is encrypted; add encrypt: { key: ... } to a store in the config",
    );
  }
  const reports: RekeyReport[] = [];
  for (const name of names) {
    const store = await ctx.store(name);
    const report = await rekeyStore(store, {
      batchSize: options.batchSize,
      signal: ctx.signal,
      progress: ctx.progress,
      dryRun: ctx.dryRun,
      clock: ctx.clock,
    });
    const verb = ctx.dryRun ? "would reseal" : "resealed";
    ctx.log(
      `${verb} ${report.resealed} of ${report.entries} ` +
        `entries of store "${name}" with key ${report.keyId} (${report.conflicts} conflicts)`,
    );
    if (report.changes !== null) {
      ctx.log(
        `${verb} ${report.changes.resealed} of the ${report.changes.entries} values in the ` +
          `change feed of store "${name}" with key ${report.keyId}`,
      );
    }
    if (!ctx.dryRun) {
      ctx.log(
        `store "${name}": no value left under an old key or in the clear (entries` +
          `${report.changes !== null ? " and change feed" : ""}); an old key can now be ` +
          `removed from its encrypt: keys`,
      );
    }
    reports.push(report);
  }
  return { stores: reports.map((r) => ({ ...r })) };
}

/**
 * The rekey job. Options: `stores` (default: every encrypted store),
 * `batchSize`. Result: `{ stores: [{ store, keyId, entries, resealed,
 * skipped, conflicts, changes: { entries, resealed, skipped } | null }] }`.
 *
 * @example
 * ```ts
 * import { openRuntime, runJob } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * await using rt = await openRuntime({
 *   config: { stores: { main: { plugin: "memory", encrypt: { key: "33".repeat(32) } } } },
 * });
 * const run = await runJob(rt, "rekey", { progress: "quiet", onLog: () => {} });
 * assert.equal(run.status, "succeeded");
 * ```
 */
const rekeyJob: Job<RekeyOptions> = defineJob<RekeyOptions>({
  name: "rekey",
  description:
    "seals every value of the encrypted stores with their current key (after a rotation)",
  optionsSchema,
  defaults,
  run: runRekey,
});

export default rekeyJob;
