import assert from "node:assert/strict";
import { MemoryDriver } from "../../plugins/memory/mod.ts";
import type { StoreDriver } from "./driver.ts";
import { normalizeIndexes } from "./indexes.ts";
import { fieldToken, numberToken } from "./core_indexes.ts";
import { prepareCoreIndexes, wrapDriver } from "./store.ts";
import type { Clock, JsonValue, Query } from "./types.ts";
import { compareStrings } from "./keys.ts";

// Index entries kept by the core for a driver without native indexes: built
// for existing entries, kept exact by every write in the same commit, used by
// queries (explain says so), dropped when no longer declared.

/** A memory driver that claims no native query or index (as a third-party driver). */
function plainDriver(inner = new MemoryDriver()): StoreDriver {
  return {
    location: "plain",
    capabilities: { atomicClear: true },
    get: (k) => inner.get(k),
    list: (r) => inner.list(r),
    commit: (req) => inner.commit(req),
    close: () => inner.close(),
  };
}

const DECLARED = normalizeIndexes([
  { prefix: ["o"], path: "st" },
  { prefix: ["o"], path: "n" },
  { prefix: [], path: "tag" },
], "test");

function clock(): Clock & { t: number } {
  return {
    t: 1_000_000,
    now() {
      return this.t;
    },
  };
}

async function open(driver: StoreDriver, c: Clock, lines: string[] = [], indexes = DECLARED) {
  const store = wrapDriver(driver, { name: "t", plugin: "plain", clock: c, indexes });
  await prepareCoreIndexes(store, true, (m) => lines.push(m));
  return store;
}

async function indexKeys(driver: StoreDriver): Promise<number> {
  let n = 0;
  for await (const _ of driver.list({ prefix: ["\u0000", "ix"] }, 0)) n++;
  return n;
}

Deno.test("numberToken orders like the numbers; fieldToken orders by type then value", () => {
  const xs = [-Infinity, -1e300, -2.5, -1, -5e-324, 0, 5e-324, 1, 2, 1e21, Number.MAX_VALUE];
  const finite = xs.filter(Number.isFinite);
  for (let i = 1; i < finite.length; i++) {
    assert.ok(
      numberToken(finite[i - 1]) < numberToken(finite[i]),
      `${finite[i - 1]} < ${finite[i]}`,
    );
  }
  assert.equal(numberToken(-0), numberToken(0));
  const ordered = [null, false, true, -3, 7, "", "a", "b"].map(fieldToken) as string[];
  for (let i = 1; i < ordered.length; i++) {
    assert.ok(compareStrings(ordered[i - 1], ordered[i]) < 0);
  }
  assert.equal(fieldToken([1]), undefined);
  assert.equal(fieldToken({}), undefined);
  assert.equal(fieldToken("x".repeat(1000))!.length, 257);
});

Deno.test("the core's index entries answer queries exactly as a scan does, through writes, deletes, clears and expiry", async () => {
  const c = clock();
  const driver = plainDriver();
  // Entries written before the index was declared are indexed when the store opens.
  {
    const before = wrapDriver(driver, { name: "t", plugin: "plain", clock: c });
    for (let i = 0; i < 30; i++) {
      await before.set(["o", `k${i}`], { st: i % 3 ? "open" : "done", n: i });
    }
  }
  const lines: string[] = [];
  const store = await open(driver, c, lines);
  assert.ok(
    lines.some((l) => /built index fs_ix_\w+ on st under \["o"\]: 30 entries/.test(l)),
    lines.join("\n"),
  );
  assert.equal(store.indexes.every((i) => !i.native), true);
  const reference = await open(plainDriver(), c, [], []);
  for (let i = 0; i < 30; i++) {
    await reference.set(["o", `k${i}`], { st: i % 3 ? "open" : "done", n: i });
  }

  const rand = (() => {
    let s = 7;
    return () => (s = (s * 48271) % 2147483647) / 2147483647;
  })();
  const values: JsonValue[] = ["open", "done", "x", 1, 2.5, -3, null, true, false, "", ["open"], {
    a: 1,
  }];
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)];
  const queries = (): Query[] => [
    ...values.filter((v) => typeof v !== "object" || v === null).map((v) => ({
      prefix: ["o"],
      where: [{ path: "st", op: "eq" as const, value: v }],
    })),
    { prefix: ["o"], where: [{ path: "n", op: "gt", value: 10 }] },
    {
      prefix: ["o"],
      where: [{ path: "n", op: "lte", value: 2.5 }],
      orderBy: { path: "n", direction: "desc" },
    },
    { prefix: ["o"], where: [{ path: "st", op: "lt", value: "open" }], limit: 3 },
    { prefix: ["o"], where: [{ path: "st", op: "gte", value: "done" }] },
    { where: [{ path: "tag", op: "eq", value: "t1" }] },
  ];
  const compare = async (round: number) => {
    for (const q of queries()) {
      const ours = (await store.query(q)).map((e) => [e.key, e.value]);
      const ref = (await reference.query(q)).map((e) => [e.key, e.value]);
      assert.deepEqual(ours, ref, `round ${round}: ${JSON.stringify(q)}`);
    }
  };
  await compare(0);
  for (let round = 1; round <= 6; round++) {
    for (let i = 0; i < 40; i++) {
      const key = [pick(["o", "o", "p"]), `k${Math.floor(rand() * 40)}`];
      const r = rand();
      const value = { st: pick(values), n: pick(values), tag: pick(["t1", "t2"]) };
      const expireIn = rand() < 0.1 ? 50 : undefined;
      for (const s of [store, reference]) {
        if (r < 0.6) await s.set(key, value, expireIn === undefined ? undefined : { expireIn });
        else if (r < 0.85) await s.delete(key);
        else await s.atomic().set([...key, "x"], { st: "open", tag: "t1" }).delete(key).commit();
      }
    }
    if (round === 3) {
      await store.clear(["o"], { start: ["o", "k1"], end: ["o", "k2"] });
      await reference.clear(["o"], { start: ["o", "k1"], end: ["o", "k2"] });
      await store.atomic().clear(["p"]).commit();
      await reference.atomic().clear(["p"]).commit();
    }
    c.t += 30;
    await compare(round);
  }
  const plan = await store.explain(queries()[0]);
  assert.equal(plan.by, "core");
  assert.equal(plan.index, store.indexes[0].name);
  assert.equal(plan.scan, false);
  // No garbage: after expiry is purged, one index entry per indexed scalar field of a stored entry.
  c.t += 1000;
  await store.purgeExpired();
  let expected = 0;
  for await (const e of store.list()) {
    const v = e.value as Record<string, JsonValue>;
    if (e.key[0] === "o" && e.key.length > 1) {
      if (fieldToken(v.st) !== undefined) expected++;
      if (fieldToken(v.n) !== undefined) expected++;
    }
    if (fieldToken(v.tag) !== undefined) expected++;
  }
  assert.equal(await indexKeys(driver), expected);
  // The internal space never shows.
  for await (const e of store.list()) assert.notEqual(e.key[0], "\u0000");
  assert.equal(await store.count(), await reference.count());
});

Deno.test("the core's index entries of an index no longer declared are dropped, with a line", async () => {
  const c = clock();
  const driver = plainDriver();
  const store = await open(driver, c);
  await store.set(["o", "a"], { st: "open", n: 1, tag: "t" });
  assert.equal(await indexKeys(driver), 3);
  const lines: string[] = [];
  await open(driver, c, lines, DECLARED.slice(0, 1));
  assert.equal(await indexKeys(driver), 1);
  assert.equal(
    lines.filter((l) => /dropped index fs_ix_\w+: no longer declared/.test(l)).length,
    2,
  );
});

Deno.test("a compare-and-set conflict stays the caller's; a write racing the index read is retried", async () => {
  const c = clock();
  const inner = new MemoryDriver();
  const driver = plainDriver(inner);
  const a = await open(driver, c);
  const b = await open(driver, c);
  const v1 = await a.set(["o", "x"], { st: "open" });
  assert.ok(v1.ok);
  await b.set(["o", "x"], { st: "done" });
  const stale = await a.set(["o", "x"], { st: "late" }, { ifVersion: v1.version });
  assert.equal(stale.ok, false);
  // A writer that changes the entry between the core's read and its commit: retried, exact.
  let raced = false;
  const racing: StoreDriver = {
    ...driver,
    capabilities: driver.capabilities,
    commit: async (req) => {
      if (!raced && req.mutations.some((m) => m.type === "set" && m.key[0] === "o")) {
        raced = true;
        await b.set(["o", "x"], { st: "sneaky" });
      }
      return driver.commit(req);
    },
  };
  const d = await open(racing, c);
  assert.ok((await d.set(["o", "x"], { st: "final" })).ok);
  assert.deepEqual(
    await d.query({ prefix: ["o"], where: [{ path: "st", op: "eq", value: "sneaky" }] }),
    [],
  );
  assert.equal(
    (await d.query({ prefix: ["o"], where: [{ path: "st", op: "eq", value: "final" }] })).length,
    1,
  );
  assert.equal(await indexKeys(driver), 1);
});

Deno.test("an interrupted build of the core's index entries resumes where it stopped", async () => {
  const c = clock();
  const inner = new MemoryDriver();
  {
    const before = wrapDriver(plainDriver(inner), { name: "t", plugin: "plain", clock: c });
    const op = before.atomic();
    for (let i = 0; i < 1200; i++) op.set(["o", String(i).padStart(5, "0")], { st: `s${i % 7}` });
    await op.commit();
  }
  const one = DECLARED.slice(0, 1);
  const abort = new AbortController();
  let batches = 0;
  const driver = plainDriver(inner);
  const interrupting: StoreDriver = {
    ...driver,
    commit: async (req) => {
      const result = await driver.commit(req);
      if (req.mutations.some((m) => m.type === "set" && m.key[1] === "ix") && ++batches === 1) {
        abort.abort();
      }
      return result;
    },
  };
  const first = wrapDriver(interrupting, { name: "t", plugin: "plain", clock: c, indexes: one });
  await assert.rejects(prepareCoreIndexes(first, true, () => {}, abort.signal), /abort/i);
  assert.equal(await indexKeys(driver), 500);
  const lines: string[] = [];
  let listedFrom: unknown;
  const watching: StoreDriver = {
    ...driver,
    list: (r, now) => {
      if (r.prefix?.[0] === "o" && listedFrom === undefined) listedFrom = r.start;
      return driver.list(r, now);
    },
  };
  const store = await open(watching, c, lines, one);
  assert.ok(lines.some((l) => /resuming the build of index/.test(l)), lines.join("\n"));
  assert.deepEqual(listedFrom, ["o", "00499"]);
  assert.equal(await indexKeys(driver), 1200);
  const found = await store.query({
    prefix: ["o"],
    where: [{ path: "st", op: "eq", value: "s3" }],
  });
  assert.equal(
    found.length,
    Array.from({ length: 1200 }, (_, i) => i % 7).filter((x) => x === 3).length,
  );
});

Deno.test("a store opened without the declaration keeps the indexes the store records, also one another program builds after it opened", async () => {
  const c = clock();
  const inner = new MemoryDriver();
  const one = DECLARED.slice(0, 1);
  const eqOpen = { prefix: ["o"], where: [{ path: "st", op: "eq" as const, value: "open" }] };
  // B: another program, no declaration, opened before the index exists.
  const b = wrapDriver(plainDriver(inner), { name: "t", plugin: "plain", clock: c });
  await prepareCoreIndexes(b, false, () => {});
  await b.set(["o", "1"], { st: "open" });
  // A declares the index and builds it while B stays open.
  const a = await open(plainDriver(inner), c, [], one);
  assert.deepEqual((await a.query(eqOpen)).map((e) => e.key), [["o", "1"]]);
  await b.set(["o", "1"], { st: "shipped" });
  await b.set(["o", "2"], { st: "open" });
  await b.atomic().delete(["o", "3"]).set(["o", "4"], { st: "open" }).commit();
  assert.deepEqual((await a.query(eqOpen)).map((e) => e.key), [["o", "2"], ["o", "4"]]);
  // C: a third program opened afterwards without the declaration (reads the record at open).
  const cStore = wrapDriver(plainDriver(inner), { name: "t", plugin: "plain", clock: c });
  await prepareCoreIndexes(cStore, false, () => {});
  await cStore.set(["o", "4"], { st: "done" });
  await cStore.set(["o", "5"], { st: "open" });
  const d = await open(plainDriver(inner), c, [], one);
  assert.deepEqual((await d.query(eqOpen)).map((e) => e.key), [["o", "2"], ["o", "5"]]);
  assert.equal(await indexKeys(inner), 4);
});

Deno.test("an index recorded by an older version (meta `true`, entries possibly stale) is built again when declared", async () => {
  const c = clock();
  const inner = new MemoryDriver();
  const one = DECLARED.slice(0, 1);
  const eqOpen = { prefix: ["o"], where: [{ path: "st", op: "eq" as const, value: "open" }] };
  await open(plainDriver(inner), c, [], one);
  const name = one[0].name;
  // What an older version left: `true` as the meta entry, and a write it did not index.
  const meta = ["\u0000", "ixmeta", name];
  await inner.commit({
    checks: [],
    mutations: [
      { type: "set", key: meta, value: "true", expiresAt: null },
      { type: "set", key: ["o", "1"], value: JSON.stringify({ st: "open" }), expiresAt: null },
    ],
    version: "v-old",
    now: c.now(),
  });
  // A program opening it without the declaration cannot keep it (it does not know the path).
  const b = wrapDriver(plainDriver(inner), { name: "t", plugin: "plain", clock: c });
  await prepareCoreIndexes(b, false, () => {});
  await b.set(["o", "2"], { st: "open" });
  assert.equal(await indexKeys(inner), 0);
  const lines: string[] = [];
  const store = await open(plainDriver(inner), c, lines, one);
  assert.ok(lines.some((l) => /built index .*: 2 entries/.test(l)), lines.join("\n"));
  assert.deepEqual((await store.query(eqOpen)).map((e) => e.key), [["o", "1"], ["o", "2"]]);
  assert.deepEqual(JSON.parse(inner.get(meta)!.value), {
    prefix: ["o"],
    path: ["st"],
    state: "built",
  });
  // Not declared any more: dropped.
  const dropped: string[] = [];
  await open(plainDriver(inner), c, dropped, []);
  assert.equal(inner.get(meta), null);
  assert.equal(await indexKeys(inner), 0);
});

Deno.test("an index path refuses a segment PostgreSQL would read as an array subscript", () => {
  for (const seg of ["0", "12", "-1", "01", "+1", " 1", "1 "]) {
    assert.throws(
      () => normalizeIndexes([{ prefix: ["o"], path: ["a", seg] }], "openStore"),
      /cannot be indexed \(empty, an array index or a number read as one/,
      JSON.stringify(seg),
    );
  }
  for (const seg of ["1x", "x1", "-", "1.5", "status"]) {
    assert.equal(normalizeIndexes([{ prefix: ["o"], path: ["a", seg] }], "openStore").length, 1);
  }
});
