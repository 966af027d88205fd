import assert from "node:assert/strict";
import { StoreClosedError } from "../errors.ts";
import { fakeClock } from "../testing/clock.ts";
import type {
  ClearRange,
  CommitRequest,
  DriverCommitResult,
  KeyRange,
  RawEntry,
  StoreDriver,
} from "./driver.ts";
import { compareKeys, hasPrefix, keysEqual } from "./keys.ts";
import type { NormalizedQuery } from "./query.ts";
import { newVersion, wrapDriver } from "./store.ts";
import type { Key, Store } from "./types.ts";

/**
 * The smallest driver the contract allows: get, list, commit, close. It keeps
 * entries sorted and records what the core asked of it.
 */
class TinyDriver implements StoreDriver {
  readonly location = "tiny";
  entries: RawEntry[] = [];
  ranges: KeyRange[] = [];
  commits: CommitRequest[] = [];
  gets = 0;
  closed = 0;
  nows: number[] = [];

  get(key: Key, now: number): RawEntry | null {
    this.gets++;
    this.nows.push(now);
    return this.entries.find((e) => keysEqual(e.key, key)) ?? null;
  }

  *list(range: KeyRange, now: number): Iterable<RawEntry> {
    this.ranges.push({ ...range });
    this.nows.push(now);
    const prefix = range.prefix ?? [];
    const found = this.entries.filter((e) =>
      (prefix.length === 0 || hasPrefix(e.key, prefix)) &&
      (!range.start || compareKeys(e.key, range.start) > (range.startExclusive ? 0 : -1)) &&
      (!range.end || compareKeys(e.key, range.end) < 0)
    );
    if (range.reverse) found.reverse();
    yield* found;
  }

  commit(request: CommitRequest): DriverCommitResult {
    this.commits.push(request);
    const conflicts = request.checks.filter((c) => {
      const e = this.entries.find((x) => keysEqual(x.key, c.key));
      const live = e && (e.expiresAt === null || e.expiresAt > request.now);
      return (live ? e.version : null) !== c.version;
    }).map((c) => c.key);
    if (conflicts.length > 0) return { ok: false, conflicts };
    for (const m of request.mutations) {
      if (m.type === "clear") throw new Error("clear mutations need capabilities.atomicClear");
      this.entries = this.entries.filter((e) => !keysEqual(e.key, m.key));
      if (m.type === "set") {
        this.entries.push({
          key: m.key,
          value: m.value,
          version: request.version,
          expiresAt: m.expiresAt,
        });
      }
    }
    this.entries.sort((a, b) => compareKeys(a.key, b.key));
    return { ok: true };
  }

  close(): void {
    this.closed++;
  }

  /** Put raw entries in directly, bypassing the core. */
  put(...entries: [Key, unknown, number | null][]): void {
    for (const [key, value, expiresAt] of entries) {
      this.entries.push({
        key,
        value: JSON.stringify(value),
        version: "v-" + key.join("/"),
        expiresAt,
      });
    }
    this.entries.sort((a, b) => compareKeys(a.key, b.key));
  }
}

const START = Date.UTC(2026, 0, 1);

function tinyStore(
  driver = new TinyDriver(),
): { store: Store; driver: TinyDriver; clock: ReturnType<typeof fakeClock> } {
  const clock = fakeClock(START);
  return {
    store: wrapDriver(driver, { name: "tiny-store", plugin: "tiny", clock }),
    driver,
    clock,
  };
}

/** The error `fn` fails with, whether it throws synchronously or rejects. */
async function failure(fn: () => unknown): Promise<Error> {
  try {
    await fn();
  } catch (err) {
    return err as Error;
  }
  throw new assert.AssertionError({ message: "expected the call to fail, but it succeeded" });
}

async function keys(iterable: AsyncIterable<{ key: Key }>): Promise<Key[]> {
  const out: Key[] = [];
  for await (const e of iterable) out.push(e.key);
  return out;
}

Deno.test("wrapDriver() fills the capabilities a driver does not declare with false", () => {
  const { store } = tinyStore();
  assert.deepEqual({ ...store.capabilities }, {
    persistent: false,
    expiry: false,
    query: false,
    count: false,
    clear: false,
    atomicClear: false,
    multiProcess: false,
    indexes: false,
    search: false,
  });
  assert.ok(Object.isFrozen(store.capabilities));
  assert.equal(store.name, "tiny-store");
  assert.equal(store.plugin, "tiny");
  assert.equal(store.location, "tiny");
});

Deno.test("Store.set() hands the driver JSON text, a new version and the clock's time", async () => {
  const { store, driver, clock } = tinyStore();
  const result = await store.set(["a", "b"], { list: [1, "x"], skip: undefined });
  assert.ok(result.ok);
  assert.equal(driver.commits.length, 1);
  assert.deepEqual(driver.commits[0], {
    // A driver without native indexes: each commit is checked against the set of indexes the
    // core keeps as read (another program may record one; see core_indexes.ts).
    checks: [{ key: ["\u0000", "ixgen"], version: null }],
    mutations: [{ type: "set", key: ["a", "b"], value: '{"list":[1,"x"]}', expiresAt: null }],
    version: result.version,
    now: clock.now(),
  });
});

Deno.test("Store.set() with expireIn and ifVersion sends expiresAt and a check", async () => {
  const { store, driver, clock } = tinyStore();
  await store.set(["a"], 1, { expireIn: 250, ifVersion: null });
  assert.deepEqual(driver.commits[0].checks, [
    { key: ["a"], version: null },
    { key: ["\u0000", "ixgen"], version: null },
  ]);
  assert.equal(
    (driver.commits[0].mutations[0] as { expiresAt: number | null }).expiresAt,
    clock.now() + 250,
  );
});

Deno.test("Store.get(), set() and delete() pass their signal to the driver, and every call refuses to start once it aborted", async () => {
  const { store, driver } = tinyStore();
  const stop = new AbortController();
  const signal = stop.signal;
  await store.set(["a"], 1, { signal });
  assert.equal(driver.commits.at(-1)!.signal, signal);
  assert.equal((await store.get(["a"], { signal }))?.value, 1);
  await store.set(["b"], 1);
  assert.equal(driver.commits.at(-1)!.signal, undefined, "no signal given, none passed");
  const commits = driver.commits.length;
  stop.abort("stopped");
  for (
    const [what, call] of [
      ["Cannot set", () => store.set(["a"], 2, { signal })],
      ["Cannot delete", () => store.delete(["a"], { signal })],
      ["Cannot get", () => store.get(["a"], { signal })],
      ["Cannot list", () => Array.fromAsync(store.list({ signal }))],
      ["Cannot query", () => store.query({ signal })],
      ["Cannot search", () => store.search("a", { signal })],
    ] as const
  ) {
    const err = await failure(call);
    assert.equal(err.name, "AbortError");
    assert.match(
      err.message,
      new RegExp(`^${what}: store "tiny-store" \\(tiny\\): given up, its signal aborted`),
    );
    assert.equal(err.cause, "stopped");
  }
  assert.equal(driver.commits.length, commits, "the driver saw none of them");
  assert.equal((await store.get(["a"]))?.value, 1);
});

Deno.test("Store.get() and Store.list() hide expired entries a driver returns", async () => {
  const { store, driver, clock } = tinyStore();
  driver.put([["a"], 1, START - 1], [["b"], 2, START], [["c"], 3, START + 1], [["d"], 4, null]);
  assert.equal(await store.get(["a"]), null);
  assert.equal(await store.get(["b"]), null, "an entry is expired at exactly expiresAt");
  assert.equal((await store.get(["c"]))?.value, 3);
  assert.deepEqual(await keys(store.list()), [["c"], ["d"]]);
  clock.advance(1);
  assert.deepEqual(await keys(store.list()), [["d"]]);
  assert.ok(driver.nows.every((n) => n >= START), "the driver gets the store clock's time");
});

Deno.test("Store.getMany() falls back to get() per key, in order, without expired entries", async () => {
  const { store, driver } = tinyStore();
  driver.put([["a"], 1, null], [["b"], 2, START - 1]);
  const got = await store.getMany([["b"], ["a"], ["zz"], ["a"]]);
  assert.deepEqual(got.map((e) => e?.value ?? null), [null, 1, null, 1]);
  assert.equal(driver.gets, 4);
});

Deno.test("Store.count() falls back to scanning list() and skips expired entries", async () => {
  const { store, driver } = tinyStore();
  driver.put([["p"], 0, null], [["p", "1"], 1, null], [["p", "2"], 2, START - 5], [["q"], 3, null]);
  assert.equal(await store.count(["p"]), 1);
  assert.equal(await store.count(), 3);
  // Every key: below and above the internal space (see internal_keys.ts).
  assert.deepEqual(driver.ranges.map((r) => r.prefix), [["p"], [], []]);
});

Deno.test("Store.count() uses the driver's count() when it declares capabilities.count", async () => {
  class Counting extends TinyDriver {
    readonly capabilities = { count: true };
    seen: ClearRange[] = [];
    count(range: ClearRange, now: number): Promise<number> {
      this.seen.push(range);
      return Promise.resolve(range.prefix.length * 100 + (now === START ? 1 : 0));
    }
  }
  const driver = new Counting();
  const { store } = tinyStore(driver);
  assert.equal(await store.count(["a", "b"]), 201);
  assert.equal(await store.count(["a"], { start: ["a", "c"], end: ["a", "d"] }), 101);
  assert.deepEqual(driver.seen, [
    { prefix: ["a", "b"] },
    { prefix: ["a"], start: ["a", "c"], end: ["a", "d"] },
  ]);
  assert.equal(driver.ranges.length, 0, "no list() scan");
});

Deno.test("atomic().clear() on a driver without atomicClear becomes deletes of the listed keys", async () => {
  const { store, driver } = tinyStore();
  driver.put(...["a", "b", "c", "d"].map((k): [Key, unknown, null] => [["r", k], k, null]));
  driver.put([["s"], 1, null]);
  const result = await store.atomic()
    .set(["r", "bb"], 1)
    .set(["r", "z"], 2)
    .clear(["r"], { start: ["r", "b"], end: ["r", "d"] })
    .commit();
  assert.ok(result.ok);
  const last = driver.commits.at(-1)!;
  assert.deepEqual(last.mutations.map((m) => m.type === "clear" ? "clear" : [m.type, m.key]), [
    ["delete", ["r", "bb"]], // a set the clear covers becomes a delete
    ["set", ["r", "z"]],
    ["delete", ["r", "b"]],
    ["delete", ["r", "c"]],
  ]);
  assert.deepEqual(await keys(store.list()), [["r", "a"], ["r", "d"], ["r", "z"], ["s"]]);
});

Deno.test("Store.query() falls back to list() with the reference semantics", async () => {
  const { store, driver } = tinyStore();
  driver.put(
    [["q", "1"], { n: 3 }, null],
    [["q", "2"], { n: 1 }, null],
    [["q", "3"], { n: 2 }, START - 1],
    [["q", "4"], { n: 2 }, null],
    [["q", "5"], { s: "x" }, null],
    [["r", "1"], { n: 0 }, null],
  );
  const got = await store.query({
    prefix: ["q"],
    where: [{ path: "n", op: "gte", value: 1 }],
    orderBy: { path: "n", direction: "desc" },
    offset: 1,
    limit: 5,
  });
  assert.deepEqual(got.map((e) => [e.key, e.value]), [[["q", "4"], { n: 2 }], [["q", "2"], {
    n: 1,
  }]]);
  assert.deepEqual(driver.ranges.map((r) => r.prefix), [["q"]]);
});

Deno.test("Store.query() falls back when a native query returns undefined", async () => {
  const seen: NormalizedQuery[] = [];
  class Partial extends TinyDriver {
    readonly capabilities = { query: true };
    query(q: NormalizedQuery): Promise<RawEntry[] | undefined> {
      seen.push(q);
      return Promise.resolve(q.where.length > 0 ? undefined : this.entries.slice(0, 1));
    }
  }
  const { store, driver } = tinyStore(new Partial());
  driver.put([["a"], 1, null], [["b"], 2, null]);
  assert.deepEqual((await store.query()).map((e) => e.key), [["a"]], "native answer used");
  assert.deepEqual(
    (await store.query({ where: [{ path: "", op: "gt", value: 1 }] })).map((e) => e.key),
    [["b"]],
    "fallback answer",
  );
  assert.deepEqual(
    seen[1].where,
    [{ path: [], op: "gt", value: 1 }],
    "the driver sees a normalized query",
  );
});

Deno.test("Store.clear() falls back to deleting in batches and counts only live entries", async () => {
  const { store, driver } = tinyStore();
  for (let i = 0; i < 1203; i++) {
    driver.put([["c", String(i).padStart(4, "0")], i, i < 3 ? START - 1 : null]);
  }
  driver.put([["c"], "the prefix key itself", null], [["d"], "sibling", null]);
  assert.equal(await store.clear(["c"]), 1200);
  assert.equal(driver.commits.length, 3, "1203 keys in batches of 500");
  assert.ok(
    driver.commits.every((c) =>
      c.checks.length === 0 && c.mutations.every((m) => m.type === "delete")
    ),
  );
  assert.deepEqual(driver.entries.map((e) => e.key), [["c"], ["d"]]);
});

Deno.test("Store.clear() uses the driver's clear() when it declares capabilities.clear", async () => {
  class Clearing extends TinyDriver {
    readonly capabilities = { clear: true };
    cleared: ClearRange[] = [];
    clear(range: ClearRange): Promise<number> {
      this.cleared.push(range);
      return Promise.resolve(7);
    }
  }
  const driver = new Clearing();
  const { store } = tinyStore(driver);
  // clear([]) clears below and above the internal space, and adds the counts.
  assert.equal(await store.clear([]), 14);
  assert.equal(await store.clear(["x"], { end: ["x", "m"] }), 7);
  assert.deepEqual(driver.cleared, [
    { prefix: [], end: ["\u0000"] },
    { prefix: [], start: ["\u0000\u0000"] },
    { prefix: ["x"], end: ["x", "m"] },
  ]);
  assert.equal(driver.commits.length, 0);
});

Deno.test("Store.list() with a cursor asks the driver for the keys after it", async () => {
  const { store, driver } = tinyStore();
  driver.put(...["a", "b", "c", "d", "e"].map((s): [Key, unknown, null] => [[s], s, null]));
  const first = store.list({ limit: 2 });
  assert.deepEqual(await keys(first), [["a"], ["b"]]);
  assert.deepEqual(await keys(store.list({ cursor: first.cursor })), [["c"], ["d"], ["e"]]);
  // (The first listing asked below the internal space, then above it.)
  assert.deepEqual(driver.ranges[2], { reverse: false, start: ["b"], startExclusive: true });

  const back = store.list({ reverse: true, limit: 2 });
  assert.deepEqual(await keys(back), [["e"], ["d"]]);
  assert.deepEqual(await keys(store.list({ reverse: true, cursor: back.cursor })), [["c"], ["b"], [
    "a",
  ]]);
  // Above the internal space first (reverse), then below it.
  assert.deepEqual(driver.ranges.slice(-2), [
    { reverse: true, start: ["\u0000\u0000"], end: ["d"] },
    { reverse: true, end: ["\u0000"] },
  ]);

  // A cursor outside the listing's own bounds never widens them.
  assert.deepEqual(await keys(store.list({ start: ["d"], cursor: first.cursor })), [["d"], ["e"]]);
  assert.deepEqual(
    await keys(store.list({ end: ["b"], reverse: true, cursor: back.cursor })),
    [["a"]],
  );
});

Deno.test("Store.list() cursors are URL-safe and resume after unusual keys", async () => {
  const { store, driver } = tinyStore();
  const odd: Key[] = [["+/="], ["a", "\u0000"], ["é", "😀"], ["\u{10FFFF}"]];
  driver.put(...odd.map((k): [Key, unknown, null] => [k, 1, null]));
  let cursor = "";
  const seen: Key[] = [];
  for (;;) {
    const it = store.list({ limit: 1, cursor });
    const page = await keys(it);
    if (page.length === 0) break;
    assert.match(it.cursor, /^[A-Za-z0-9_-]+$/);
    seen.push(...page);
    cursor = it.cursor;
  }
  assert.deepEqual(seen, [...odd].sort(compareKeys));
});

Deno.test("Store.list() rejects a cursor it did not make and says what to pass", async () => {
  const { store } = tinyStore();
  const err = await failure(() => keys(store.list({ cursor: "garbage!" })));
  assert.ok(err instanceof TypeError);
  assert.match(
    err.message,
    /^Cannot list: cursor "garbage!" is not a cursor returned by list\(\); pass the iterator's \.cursor unchanged$/,
  );
  assert.ok(err.cause, "the decoding error is kept as the cause");
});

Deno.test("Store.list() passes limit to the driver only when it filters expiry itself", async () => {
  const plain = tinyStore();
  await keys(plain.store.list({ limit: 3 }));
  assert.equal(plain.driver.ranges[0].limit, undefined);
  class Expiring extends TinyDriver {
    readonly capabilities = { expiry: true };
  }
  const native = tinyStore(new Expiring());
  await keys(native.store.list({ limit: 3, batchSize: 10 }));
  assert.equal(native.driver.ranges[0].limit, 3);
  assert.equal(native.driver.ranges[0].batchSize, 10);
});

Deno.test("Store.set() names the path of a value JSON cannot hold", async () => {
  const { store, driver } = tinyStore();
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  const cases: [unknown, RegExp][] = [
    [{ a: { f() {} } }, /^Cannot set: value\.a\.f is a function, which JSON cannot hold$/],
    [
      [1, undefined],
      /^Cannot set: value\[1\] is undefined; JSON arrays cannot hold undefined, use null$/,
    ],
    [
      { deep: [{ list: [0, undefined] }] },
      /^Cannot set: value\.deep\[0\]\.list\[1\] is undefined; JSON arrays cannot hold undefined, use null$/,
    ],
    [
      { n: 10n },
      /^Cannot set: value\.n is a BigInt, which JSON cannot hold; store it as a string or number$/,
    ],
    [cycle, /^Cannot set: value\.self refers back to itself \(a cycle\); JSON cannot hold it$/],
    [
      NaN,
      /^Cannot set: value is NaN, which JSON cannot hold; store a finite number, null or a string$/,
    ],
    [{ x: [Infinity] }, /^Cannot set: value\.x\[0\] is Infinity, which JSON cannot hold/],
    [{ x: -Infinity }, /^Cannot set: value\.x is -Infinity, which JSON cannot hold/],
    [
      { when: new Date(0) },
      /^Cannot set: value\.when is a Date, not a plain object; convert it to JSON first \(for a Date, use toISOString\(\)\)$/,
    ],
    [{ m: new Map() }, /^Cannot set: value\.m is a Map, not a plain object/],
    [
      { "a b": { "c-d": [0, Symbol("s")] } },
      /^Cannot set: value\["a b"\]\["c-d"\]\[1\] is a symbol, which JSON cannot hold$/,
    ],
    [undefined, /^Cannot set: value is undefined; store null or delete the key instead$/],
  ];
  for (const [value, message] of cases) {
    const err = await failure(() => store.set(["k"], value));
    assert.ok(err instanceof TypeError, `${message}: got ${err}`);
    assert.match(err.message, message);
  }
  const atomic = await failure(() => store.atomic().set(["k"], { f: () => 1 }));
  assert.match(atomic.message, /^Cannot commit atomic operation: set: value\.f is a function/);
  assert.equal(driver.commits.length, 0, "nothing reached the driver");
});

Deno.test("Store.set() accepts shared (non-cyclic) references and null-prototype objects", async () => {
  const { store } = tinyStore();
  const shared = { n: 1 };
  const bare = Object.assign(Object.create(null), { a: 1 });
  assert.ok((await store.set(["k"], { x: shared, y: [shared, shared], bare })).ok);
  assert.deepEqual((await store.get(["k"]))?.value, {
    x: { n: 1 },
    y: [{ n: 1 }, { n: 1 }],
    bare: { a: 1 },
  });
});

Deno.test("Store methods name the bad key and the element at fault", async () => {
  const { store, driver } = tinyStore();
  const cases: [() => unknown, RegExp][] = [
    [
      () => store.set(["a", 1] as unknown as Key, 1),
      /^Cannot set: key element 1 must be a string \(got number in \["a",1\]\)$/,
    ],
    [
      () => store.set(["a", 2n] as unknown as Key, 1),
      /^Cannot set: key element 1 must be a string \(got bigint in \["a","2n"\]\)$/,
    ],
    [
      () => store.get("flow" as unknown as Key),
      /^Cannot get: key must be an array of strings, like \["flow", "counter"\] \(got the string "flow"\)$/,
    ],
    [
      () => store.get(null as unknown as Key),
      /^Cannot get: key must be an array of strings.*\(got null\)$/,
    ],
    [() => store.delete([]), /^Cannot delete: key must have at least one element \(got \[\]\)$/],
    [
      () => store.set(["ok", "\ud83d"], 1),
      /^Cannot set: key element 1 contains a lone UTF-16 surrogate; use well-formed Unicode$/,
    ],
    [
      () => store.getMany("a" as unknown as Key[]),
      /^Cannot getMany: keys must be an array of keys$/,
    ],
    [() => store.count("a" as unknown as Key), /^Cannot count: key must be an array of strings/],
    [
      () => store.atomic().check([], null),
      /^Cannot commit atomic operation: check: key must have at least one element/,
    ],
  ];
  for (const [call, message] of cases) {
    const err = await failure(call);
    assert.ok(err instanceof TypeError, `${message}: got ${err}`);
    assert.match(err.message, message);
  }
  assert.equal(driver.commits.length, 0);
});

Deno.test("Store.set() says why an expireIn or ifVersion is rejected", async () => {
  const { store } = tinyStore();
  for (const expireIn of [0, -5, NaN, Infinity]) {
    const err = await failure(() => store.set(["k"], 1, { expireIn }));
    assert.ok(err instanceof RangeError);
    assert.equal(
      err.message,
      `Cannot set: expireIn must be a positive number of milliseconds (got ${expireIn})`,
    );
  }
  const version = await failure(() => store.set(["k"], 1, { ifVersion: 1 as unknown as string }));
  assert.ok(version instanceof TypeError);
  assert.equal(version.message, "Cannot set: ifVersion must be a version string or null");
});

Deno.test("Store.set() reports bad input as a rejected promise, never a synchronous throw", async () => {
  const { store } = tinyStore();
  // A promise-returning method that throws synchronously escapes `.catch()` and `Promise.all`.
  for (
    const [label, call] of [
      ["bad key", () => store.set([] as Key, 1)],
      ["bad value", () => store.set(["k"], 10n)],
      ["bad expireIn", () => store.set(["k"], 1, { expireIn: 0 })],
    ] as const
  ) {
    let promise: Promise<unknown> | undefined;
    try {
      promise = call();
    } catch (err) {
      assert.fail(`set() with a ${label} threw synchronously (${err}) instead of rejecting`);
    }
    await assert.rejects(promise);
  }
});

Deno.test("Store.atomic().commit() a second time rejects with TypeError", async () => {
  const { store } = tinyStore();
  const op = store.atomic().set(["a"], 1);
  assert.ok((await op.commit()).ok);
  await assert.rejects(op.commit(), {
    name: "TypeError",
    message: "Cannot commit atomic operation: this operation was already committed",
  });
});

Deno.test("Store commit conflicts come back as { ok: false } with the driver's keys", async () => {
  const { store } = tinyStore();
  const first = await store.set(["a"], 1);
  await store.set(["a"], 2);
  assert.deepEqual(await store.set(["a"], 3, { ifVersion: first.version }), {
    ok: false,
    version: null,
    conflicts: [["a"]],
  });
  assert.equal(await store.delete(["a"], { ifVersion: first.version! }), false);
});

Deno.test("Store turns a driver's synchronous commit() error into a rejection", async () => {
  class Broken extends TinyDriver {
    override commit(): DriverCommitResult {
      throw new Error("disk on fire");
    }
  }
  const { store } = tinyStore(new Broken());
  let promise: Promise<unknown> | undefined;
  assert.doesNotThrow(() => {
    promise = store.set(["a"], 1);
  });
  await assert.rejects(promise!, /disk on fire/);
});

Deno.test("Store methods throw StoreClosedError naming the store after close()", async () => {
  const { store, driver } = tinyStore();
  await store.close();
  const err = await failure(() => store.get(["a"]));
  assert.ok(err instanceof StoreClosedError);
  assert.equal(err.message, 'Cannot get: store "tiny-store" is closed');
  assert.match(
    (await failure(() => store.list())).message,
    /^Cannot list: store "tiny-store" is closed$/,
  );
  assert.equal(driver.gets, 0);
});

Deno.test("Store.close() closes the driver once, however often it is called", async () => {
  const { store, driver } = tinyStore();
  await Promise.all([store.close(), store.close(), store[Symbol.asyncDispose]()]);
  await store.close();
  assert.equal(driver.closed, 1);
});

Deno.test("Store reads return copies: mutating a returned key leaves the driver's entry alone", async () => {
  const { store, driver } = tinyStore();
  driver.put([["a", "b"], { n: 1 }, null]);
  const entry = await store.get(["a", "b"]);
  (entry!.key as string[])[0] = "z";
  (entry!.value as { n: number }).n = 2;
  assert.deepEqual(driver.entries[0].key, ["a", "b"]);
  assert.equal(driver.entries[0].value, '{"n":1}');
});

Deno.test("newVersion() never repeats, even within one millisecond", () => {
  const versions = new Set(Array.from({ length: 10_000 }, () => newVersion()));
  assert.equal(versions.size, 10_000);
});

/** TinyDriver whose list() is async (like postgres or redis), counting returns. */
class AsyncTinyDriver extends TinyDriver {
  returned = 0;
  // @ts-expect-error: an async listing where TinyDriver's is synchronous
  override list(range: KeyRange, now: number): AsyncIterable<RawEntry> {
    const inner = super.list(range, now)[Symbol.iterator]();
    return {
      [Symbol.asyncIterator]: () => ({
        next: async () => {
          await new Promise((r) => setTimeout(r, 0));
          return inner.next();
        },
        return: () => {
          this.returned++;
          return Promise.resolve({ done: true as const, value: undefined });
        },
      }),
    };
  }
}

Deno.test("Store.list() over an async driver answers steps asked at once in order, skipping expired ones", async () => {
  const driver = new AsyncTinyDriver();
  const store = wrapDriver(driver, { name: "tiny-store", plugin: "tiny", clock: fakeClock(START) });
  driver.put(
    [["a"], 1, null],
    [["b"], 2, START - 1],
    [["c"], 3, null],
    [["d"], 4, START - 1],
    [["e"], 5, null],
    [["f"], 6, null],
  );
  const it = store.list<number>({ limit: 3 });
  const steps = await Promise.all([it.next(), it.next(), it.next(), it.next()]);
  assert.deepEqual(steps.map((s) => s.done ? "done" : s.value.value), [1, 3, 5, "done"]);
  assert.equal(driver.returned, 1, "reaching the limit closes the driver's listing");
  assert.deepEqual(await keys(store.list({ prefix: [] })), [["a"], ["c"], ["e"], ["f"]]);
});

Deno.test("Store.list() over an async driver closes its listing on break and on close()", async () => {
  const driver = new AsyncTinyDriver();
  const store = wrapDriver(driver, { name: "tiny-store", plugin: "tiny", clock: fakeClock(START) });
  driver.put([["a"], 1, null], [["b"], 2, null], [["c"], 3, null]);
  for await (const _ of store.list()) break;
  assert.equal(driver.returned, 1);
  const it = store.list();
  await it.next();
  const pending = it.next();
  await store.close();
  assert.ok((await failure(() => pending)) instanceof StoreClosedError);
  assert.equal(driver.returned, 2);
  assert.ok((await failure(() => it.next())) instanceof StoreClosedError);
});

Deno.test("a value's own keys are what is checked and written, as JSON.stringify takes them", async () => {
  const { store } = tinyStore();
  // An enumerable property inherited from a polluted Object.prototype is not the value's.
  Object.defineProperty(Object.prototype, "polluted", {
    value: () => 1,
    enumerable: true,
    configurable: true,
    writable: true,
  });
  try {
    await store.set(["a"], { a: 1 });
    assert.equal(JSON.stringify((await store.get(["a"]))?.value), '{"a":1}');
    await assert.rejects(
      () => store.set(["b"], { a: 1, b: [undefined] }),
      (err) => err instanceof TypeError && err.message.includes("value.b[0]"),
    );
  } finally {
    delete (Object.prototype as Record<string, unknown>).polluted;
  }
});
