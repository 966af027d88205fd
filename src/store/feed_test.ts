import assert from "node:assert/strict";
import { join } from "node:path";
import { openStore, type StoreSpec } from "../plugin.ts";
import { dropSchemaTest, PG_URL } from "../../plugins/postgres/_test_utils.ts";
import type { Change, Store } from "./types.ts";
import { FeedDisabledError } from "../errors.ts";
import { feedSeqBefore, trimChanges } from "./store.ts";
import type { StoreDriver } from "./driver.ts";
import type { Plugin } from "../plugin.ts";
import sqlitePlugin from "../../plugins/sqlite/mod.ts";
import jsonfilePlugin from "../../plugins/jsonfile/mod.ts";

const WRITER = new URL("./testdata/feed_writer.ts", import.meta.url).pathname;
const SCHEMA = `flowstate_feed_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;

function writer(spec: StoreSpec, name: string, count: number, actor: string) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", WRITER, JSON.stringify(spec), name, String(count)],
    env: { FLOWSTATE_ACTOR: actor },
    stdout: "piped",
    stderr: "piped",
  }).output();
}

async function all(store: Store): Promise<Change[]> {
  const out: Change[] = [];
  for await (const change of store.changes()) out.push(change);
  return out;
}

/**
 * Three processes write at once; the feed must hold exactly one entry per
 * write, numbered 1..n without a gap, agree with the data, and each entry's
 * previousVersion must be the version of the key's entry before it.
 */
async function concurrentWriters(spec: StoreSpec): Promise<void> {
  const N = 60;
  const runs = await Promise.all(
    ["p1", "p2", "p3"].map((name) => writer(spec, name, N, `actor-${name}`)),
  );
  for (const r of runs) {
    assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  }
  await using store = await openStore(spec);
  const changes = await all(store);
  const perProcess = N + N / 5; // each fifth write is an atomic pair
  assert.equal(changes.length, 3 * perProcess);
  assert.deepEqual(changes.map((c) => c.seq), changes.map((_, i) => i + 1), "gap-free");
  assert.deepEqual(await store.feedInfo(), {
    enabled: true,
    firstSeq: 1,
    lastSeq: 3 * perProcess,
    keep: "30d",
  });
  // Commit order: each process's own writes appear in the order it made them.
  for (const name of ["p1", "p2", "p3"]) {
    const own = changes.filter((c) => c.key[0] === name).map((c) => c.key[1]);
    assert.deepEqual(own, [...own].sort(), `${name}'s writes in its order`);
    assert.ok(
      changes.filter((c) => c.key[0] === name).every((c) => c.by.actor === `actor-${name}`),
    );
  }
  // The feed agrees with the data.
  for await (const entry of store.list()) {
    const last = changes.findLast((c) => JSON.stringify(c.key) === JSON.stringify(entry.key));
    assert.equal(last?.version, entry.version);
    assert.deepEqual(last?.value, entry.value);
  }
}

/** A watcher in this process sees what another process writes, resuming without loss. */
async function watchAcrossProcesses(spec: StoreSpec): Promise<void> {
  await using store = await openStore(spec);
  const start = (await store.feedInfo()).lastSeq;
  const seen: Change[] = [];
  const stop = new AbortController();
  const watching = (async () => {
    for await (const c of store.watch([["w1"]], { since: start, signal: stop.signal })) {
      seen.push(c);
      if (seen.length === 12) stop.abort();
    }
  })();
  const r = await writer(spec, "w1", 10, "remote");
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  await watching;
  assert.deepEqual(seen.map((c) => c.seq), seen.map((_, i) => start + i + 1));
  assert.ok(seen.every((c) => c.by.actor === "remote"));
}

const dir = await Deno.makeTempDir({ prefix: "flowstate-feed-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

Deno.test("feed (sqlite): three processes writing at once get gap-free sequences in commit order", () =>
  concurrentWriters({ plugin: "sqlite", path: join(dir, "multi.db"), changes: { keep: "30d" } }));

Deno.test("feed (sqlite): watch() sees another process's writes", () =>
  watchAcrossProcesses({
    plugin: "sqlite",
    path: join(dir, "watch.db"),
    changes: { keep: "30d" },
  }));

Deno.test("feed (jsonfile): watch() sees another process's writes", () =>
  watchAcrossProcesses({
    plugin: "jsonfile",
    path: join(dir, "watch.json"),
    changes: { keep: "30d" },
  }));

/** What a spied driver was asked: its change token, and every read of entries or the feed's head. */
interface DriverSpy {
  tokens: number;
  reads: number;
  /** Resolves once `tokens + reads` has grown by `polls` from now. */
  polls(polls: number): Promise<void>;
}

/** `plugin`, its drivers counting token reads and reads (get, getMany, the feed table's head). */
function spied(plugin: Plugin): { plugin: Plugin; spy: DriverSpy } {
  const waiters: { at: number; resolve: () => void }[] = [];
  const spy: DriverSpy = {
    tokens: 0,
    reads: 0,
    polls(polls) {
      const { promise, resolve } = Promise.withResolvers<void>();
      waiters.push({ at: spy.tokens + spy.reads + polls, resolve });
      return promise;
    },
  };
  const tick = (what: "tokens" | "reads") => {
    spy[what]++;
    for (const w of waiters.filter((w) => spy.tokens + spy.reads >= w.at)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  };
  const counted =
    <F extends (...args: never[]) => unknown>(f: F, what: "tokens" | "reads") =>
    (...args: Parameters<F>) => {
      tick(what);
      return f(...args);
    };
  const wrap = (driver: StoreDriver): StoreDriver =>
    new Proxy(driver, {
      get(target, prop) {
        const value = Reflect.get(target, prop);
        if (prop === "feedTable" && value !== undefined) {
          const table = value as NonNullable<StoreDriver["feedTable"]>;
          return new Proxy(table, {
            get(t, p) {
              const v = Reflect.get(t, p);
              if (typeof v !== "function") return v;
              return p === "head" ? counted(v.bind(t), "reads") : v.bind(t);
            },
          });
        }
        if (typeof value !== "function") return value;
        const bound = value.bind(target);
        if (prop === "changeToken") return counted(bound, "tokens");
        return prop === "get" || prop === "getMany" ? counted(bound, "reads") : bound;
      },
    });
  return {
    plugin: { ...plugin, open: async (...args) => wrap(await plugin.open(...args)) },
    spy,
  };
}

/**
 * A watcher without wake-ups across processes reads nothing but the driver's
 * change token while nobody writes; it sees this store's own commit (which
 * need not move the token) and another process's.
 */
async function watchReadsOnlyOnChange(base: Plugin, path: string): Promise<void> {
  const options = { path, changes: { keep: "30d" } };
  const { plugin, spy } = spied(base);
  await using store = await openStore({ plugin, ...options } as unknown as StoreSpec);
  await store.set(["w1", "first"], 0);
  const start = (await store.feedInfo()).lastSeq;
  const seen: Change[] = [];
  const stop = new AbortController();
  const own = Promise.withResolvers<void>();
  const watching = (async () => {
    for await (const c of store.watch([["w1"]], { since: start, signal: stop.signal })) {
      seen.push(c);
      if (c.key[1] === "own") own.resolve();
      if (seen.length === 13) stop.abort();
    }
  })();
  await spy.polls(3); // past the first read of the head
  const reads = spy.reads;
  await spy.polls(10);
  assert.equal(spy.reads, reads, "no read while nothing changed");
  assert.ok(spy.tokens >= 10, `the token was polled (${spy.tokens} times)`);
  await store.set(["w1", "own"], 1);
  await Promise.race([own.promise, spy.polls(20)]); // seen at once, not only by a poll
  assert.deepEqual(seen.map((c) => c.key), [["w1", "own"]]);
  const r = await writer({ plugin: base.name, ...options } as StoreSpec, "w1", 10, "remote");
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  await watching;
  assert.deepEqual(seen.map((c) => c.seq), seen.map((_, i) => start + i + 1));
  assert.ok(seen.slice(1).every((c) => c.by.actor === "remote"));
  assert.ok(spy.reads > reads);
}

Deno.test("feed (sqlite): watch() reads the head only when PRAGMA data_version moved or this store wrote", () =>
  watchReadsOnlyOnChange(sqlitePlugin, join(dir, "token.db")));

Deno.test("feed (jsonfile): watch() reads the head only when the file was replaced or this store wrote", () =>
  watchReadsOnlyOnChange(jsonfilePlugin, join(dir, "token.json")));

const pgSpec = (table: string): StoreSpec => ({
  plugin: "postgres",
  url: PG_URL!,
  schema: SCHEMA,
  table,
  changes: { keep: "30d" },
});

Deno.test({
  name: "feed (postgres): three processes writing at once get gap-free sequences in commit order",
  ignore: PG_URL === undefined,
  fn: () => concurrentWriters(pgSpec("multi")),
});

Deno.test({
  name: "feed (postgres): watch() sees another process's writes (LISTEN/NOTIFY)",
  ignore: PG_URL === undefined,
  fn: () => watchAcrossProcesses(pgSpec("watch")),
});

Deno.test("feed: a store without one says which config to add", async () => {
  await using store = await openStore({ plugin: "memory" }, { name: "main" });
  assert.deepEqual(await store.feedInfo(), { enabled: false, firstSeq: 1, lastSeq: 0, keep: null });
  const err = assert.throws(() => store.changes(), FeedDisabledError) as unknown;
  void err;
  try {
    store.watch([[]]);
    assert.fail("watch() must throw");
  } catch (e) {
    assert.ok(e instanceof FeedDisabledError);
    assert.match(e.message, /changes: \{ keep: 30d \}` to stores\.main in flowstate\.yaml/);
  }
  await assert.rejects(() => store.getAt(["a"], { seq: 0 }), FeedDisabledError);
});

Deno.test("feed: getAt() with both seq and time is refused, saying to give one", async () => {
  await using store = await openStore({ plugin: "memory", changes: { keep: "1d" } });
  await store.set(["k"], "one");
  await assert.rejects(
    () => store.getAt(["k"], { seq: 1, time: 0 } as unknown as { seq: number }),
    (err: Error) => {
      assert.ok(err instanceof TypeError);
      assert.equal(
        err.message,
        "Cannot read a key as it was: at has both time (0) and seq (1); give one of them: " +
          "{ time: <ms since the epoch> } or { seq: <number> }",
      );
      return true;
    },
  );
  assert.equal((await store.getAt(["k"], { seq: 1 }))?.value, "one");
});

Deno.test("feed: a bad changes option is a ConfigError naming it", async () => {
  await assert.rejects(
    () => openStore({ plugin: "memory", changes: { keep: "30 days" } }),
    /changes\.keep/,
  );
  await assert.rejects(
    () => openStore({ plugin: "memory", changes: { keep: { count: 0 } } }),
    /changes\.keep\.count must be a positive integer/,
  );
  await assert.rejects(
    () => openStore({ plugin: "memory", changes: { kept: "1d" } as never }),
    /changes\.kept is not an option/,
  );
});

for (const plugin of ["memory", "sqlite"] as const) {
  Deno.test(`feed (${plugin}): trimming by count and by age keeps the newest entries and getAt refuses older points`, async () => {
    const { fakeClock } = await import("../testing/clock.ts");
    const clock = fakeClock();
    const changes = { keep: { age: "1h", count: 5 } } as const;
    await using store = await openStore(
      plugin === "memory"
        ? { plugin, changes }
        : { plugin, path: join(dir, `trim-${crypto.randomUUID()}.db`), changes },
      { clock },
    );
    for (let i = 0; i < 8; i++) await store.set(["k", String(i)], i);
    assert.equal(await trimChanges(store), 3);
    assert.deepEqual((await store.feedInfo()).firstSeq, 4);
    await assert.rejects(() => store.getAt(["k", "0"], { seq: 1 }), /reaches back to #3/);
    clock.advance(2 * 3_600_000);
    await store.set(["k", "new"], 1);
    assert.equal(await trimChanges(store), 5);
    assert.deepEqual(
      (await all(store)).map((c) => c.seq),
      [9],
    );
    // The by-key index is trimmed too: history of a trimmed key is empty.
    assert.equal((await store.getAt(["k", "7"], { seq: 9 }))?.value, 7);
  });
}

Deno.test("feed: with the core's own indexes (jsonfile), index entries move with the write and never show in the feed", async () => {
  await using store = await openStore({
    plugin: "jsonfile",
    path: join(dir, "indexed.json"),
    indexes: [{ prefix: ["orders"], path: "status" }],
    changes: { keep: "30d" },
  });
  await store.set(["orders", "1"], { status: "open" });
  await store.set(["orders", "2"], { status: "open" });
  await store.set(["orders", "1"], { status: "shipped" });
  const open = await store.query({
    prefix: ["orders"],
    where: [{ path: "status", op: "eq", value: "open" }],
  });
  assert.deepEqual(open.map((e) => e.key), [["orders", "2"]]);
  assert.deepEqual(
    (await all(store)).map((c) => [c.seq, c.key.join("/")]),
    [[1, "orders/1"], [2, "orders/2"], [3, "orders/1"]],
  );
});

Deno.test("feed: feedSeqBefore() finds where the changes from a time on start, past trimmed entries", async () => {
  const { fakeClock } = await import("../testing/clock.ts");
  const clock = fakeClock();
  await using store = await openStore(
    { plugin: "memory", changes: { keep: { count: 40 } } },
    { clock },
  );
  const t0 = clock.now();
  for (let i = 0; i < 50; i++) {
    await store.set(["k", String(i)], i); // seq i + 1 at t0 + 10 i
    clock.advance(10);
  }
  assert.equal(await feedSeqBefore(store, t0 + 200), 20, "changes from #21 on are at t0 + 200 on");
  assert.equal(await feedSeqBefore(store, t0 + 195), 20);
  assert.equal(await feedSeqBefore(store, t0 + 10_000), 50, "after the last: the last");
  assert.equal(await feedSeqBefore(store, t0 - 1), 0);
  assert.equal(await trimChanges(store), 10);
  assert.equal(await feedSeqBefore(store, t0), 10, "trimmed entries count as older");
  assert.equal(await feedSeqBefore(store, t0 + 300), 30);
  await using plain = await openStore({ plugin: "memory" });
  await assert.rejects(() => feedSeqBefore(plain, t0), FeedDisabledError);
});

// Last: the postgres tests above keep their tables in SCHEMA.
dropSchemaTest("feed (postgres): drop the test schema", SCHEMA);
