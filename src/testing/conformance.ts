/**
 * The Store conformance suite: one set of cases that every storage plugin,
 * built in or third party, runs to prove it behaves like every other.
 *
 * @module
 */
import assert, { AssertionError } from "node:assert/strict";
import { StoreClosedError } from "../errors.ts";
import type {
  Clock,
  Entry,
  JsonValue,
  Key,
  KeyBounds,
  ListOptions,
  Query,
  Store,
} from "../store/types.ts";
import { type FakeClock, fakeClock } from "./clock.ts";

/** What {@linkcode OpenStoreForTest} receives for each case. */
export interface ConformanceContext {
  /**
   * Unique per case (letters, digits and `_`, safe as a file, table or schema
   * name). Opening the same id again must reopen the same data.
   */
  id: string;
  /** The clock the store must use for expiry (pass it as `clock` to `openStore`). */
  clock: Clock;
}

/** Opens the store under test: a new, empty store for a new id; the same data for the same id. */
export type OpenStoreForTest = (ctx: ConformanceContext) => Promise<Store>;

/** Options for {@linkcode testStore}. */
export interface ConformanceOptions {
  /** Case names to skip, each with the reason (reported in the step name). */
  skip?: Record<string, string>;
  /** Run close/reopen persistence cases (default: store.capabilities.persistent). */
  persistent?: boolean;
}

// ---------------------------------------------------------------------------
// The harness

/** What a case body gets: its id, its clock, and open/reopen that track what to close. */
interface CaseRun {
  readonly id: string;
  readonly clock: FakeClock;
  /** Open the store for this case's id. The first open must be empty. */
  open(): Promise<Store>;
  /** Close `store`, then open the same id again. */
  reopen(store: Store): Promise<Store>;
}

interface Case {
  name: string;
  persistence: boolean;
  run: (c: CaseRun) => Promise<void>;
}

const CASES: Case[] = [];
const CASE_NAMES = new Set<string>();

function define(name: string, run: (c: CaseRun) => Promise<void>): void {
  if (CASE_NAMES.has(name)) throw new Error(`Duplicate conformance case name: ${name}`);
  CASE_NAMES.add(name);
  CASES.push({ name, persistence: false, run });
}

function definePersistent(name: string, run: (c: CaseRun) => Promise<void>): void {
  define(name, run);
  CASES[CASES.length - 1].persistence = true;
}

/**
 * Register the Store conformance suite for one backend: a single
 * `Deno.test` named `"<name>: Store conformance"` with one step per case.
 *
 * Each case calls `open({ id, clock })` with an id of its own and a fresh
 * fake clock, and closes every store it opened. Persistence cases open the
 * same id twice (closing the first store in between); they run when
 * `options.persistent` is true, or, by default, when the store says
 * `capabilities.persistent`. A case named in `options.skip` is reported as an
 * ignored step `"<case> (skipped: <reason>)"`.
 *
 * @example A plugin's test file: the suite, then what only this backend does
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { testStore } from "@flowstate/core/testing";
 * import memory from "@flowstate/core/plugins/memory";
 *
 * testStore("memory", (ctx) => openStore({ plugin: memory }, { clock: ctx.clock }));
 *
 * Deno.test("memory plugin says where it lives", async () => {
 *   await using store = await openStore({ plugin: memory });
 *   assert.equal(store.location, "memory");
 * });
 * ```
 *
 * @param name The backend's name, shown in the test report.
 * @param open Opens the store under test for one case.
 * @param options Cases to skip (with reasons) and whether to run persistence cases.
 */
export function testStore(
  name: string,
  open: OpenStoreForTest,
  options: ConformanceOptions = {},
): void {
  if (typeof name !== "string" || name === "") {
    throw new TypeError("Cannot register Store conformance suite: name must be a non-empty string");
  }
  if (typeof open !== "function") {
    throw new TypeError(
      `Cannot register Store conformance suite "${name}": open must be a function (ctx) => Promise<Store>`,
    );
  }
  const skip = options.skip ?? {};
  for (const [caseName, reason] of Object.entries(skip)) {
    if (!CASE_NAMES.has(caseName)) {
      throw new TypeError(
        `Cannot register Store conformance suite "${name}": options.skip names unknown case ${
          JSON.stringify(caseName)
        }; case names are the step names of the report`,
      );
    }
    if (typeof reason !== "string" || reason.trim() === "") {
      throw new TypeError(
        `Cannot register Store conformance suite "${name}": skipping ${
          JSON.stringify(caseName)
        } needs a reason`,
      );
    }
  }
  const token = Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) => b.toString(36))
    .join("").slice(0, 6).padEnd(6, "0");

  Deno.test(`${name}: Store conformance`, async (t) => {
    let persistent = options.persistent;
    const learn = (store: Store): void => {
      persistent ??= store.capabilities?.persistent === true;
    };
    const isPersistent = async (): Promise<boolean> => {
      if (persistent === undefined) {
        // Every earlier case was skipped: open one store just to read its capabilities.
        const store = await open({ id: `fs_${token}_probe`, clock: fakeClock() });
        try {
          learn(store);
        } finally {
          await store.close();
        }
      }
      return persistent === true;
    };
    for (const [index, c] of CASES.entries()) {
      const reason = Object.hasOwn(skip, c.name)
        ? skip[c.name]
        : c.persistence && !(await isPersistent())
        ? "not persistent"
        : undefined;
      if (reason !== undefined) {
        await t.step({ name: `${c.name} (skipped: ${reason})`, ignore: true, fn: () => {} });
        continue;
      }
      const id = `fs_${token}_${String(index).padStart(3, "0")}`;
      await t.step(c.name, () => runCase(c, id, open, learn));
    }
  });
}

async function runCase(
  c: Case,
  id: string,
  open: OpenStoreForTest,
  learn: (store: Store) => void,
): Promise<void> {
  const clock = fakeClock();
  const opened: Store[] = [];
  const run: CaseRun = {
    id,
    clock,
    async open() {
      const store = await open({ id, clock });
      if (typeof store?.get !== "function" || typeof store?.close !== "function") {
        throw new TypeError(`open() must resolve to a Store (got ${show(store)})`);
      }
      opened.push(store);
      learn(store);
      if (opened.length === 1) {
        const n = await store.count();
        if (n !== 0) {
          throw new AssertionError({
            message: `open() must give a new id an empty store, but id "${id}" already holds ${n} ${
              n === 1 ? "entry" : "entries"
            }`,
          });
        }
      }
      return store;
    },
    async reopen(store) {
      await store.close();
      return await run.open();
    },
  };
  // Close everything the case opened, pass or fail; a case's own failure is
  // the one to report, and a close() failure fails a case that passed.
  let failure: { error: unknown } | undefined;
  try {
    await c.run(run);
  } catch (error) {
    failure = { error };
  } finally {
    for (const store of opened) {
      try {
        await store.close();
      } catch (error) {
        failure ??= {
          error: new Error(`close() failed after the case passed: ${errorText(error)}`, {
            cause: error,
          }),
        };
      }
    }
  }
  if (failure) throw failure.error;
}

// ---------------------------------------------------------------------------
// Assertion helpers: every failure says what was checked, then the diff.

function show(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v) => typeof v === "bigint" ? `${v}n` : v) ?? String(value);
  } catch {
    return String(value);
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** Deep strict equality; the message leads with `what`, followed by node's diff. */
function same(actual: unknown, expected: unknown, what: string): void {
  try {
    assert.deepStrictEqual(actual, expected);
  } catch (err) {
    if (!(err instanceof AssertionError)) throw err;
    throw new AssertionError({ message: `${what}\n${err.message}` });
  }
}

function check(condition: unknown, what: string): asserts condition {
  if (!condition) throw new AssertionError({ message: what });
}

function differentVersions(versions: readonly (string | null | undefined)[], what: string): void {
  for (const v of versions) {
    check(typeof v === "string" && v !== "", `${what}: ${show(v)} is not a version string`);
  }
  same(
    new Set(versions).size,
    versions.length,
    `${what}: versions must all differ, got ${show(versions)}`,
  );
}

type ErrorClass = abstract new (...args: never[]) => Error;

/**
 * `fn` must fail with `expected` (thrown synchronously or as a rejection;
 * matched by class or by `name`, so a copy of the class from another module
 * instance still counts).
 */
async function fails(fn: () => unknown, expected: ErrorClass, what: string): Promise<Error> {
  let error: unknown;
  let threw = false;
  try {
    await fn();
  } catch (err) {
    threw = true;
    error = err;
  }
  if (!threw) {
    throw new AssertionError({ message: `${what}: expected a ${expected.name}, but it succeeded` });
  }
  if (!(error instanceof expected) && (error as Error | null)?.name !== expected.name) {
    throw new AssertionError({
      message: `${what}: expected a ${expected.name}, got ${errorText(error)}`,
    });
  }
  return error as Error;
}

async function collect<T = JsonValue>(iterable: AsyncIterable<Entry<T>>): Promise<Entry<T>[]> {
  const out: Entry<T>[] = [];
  for await (const entry of iterable) out.push(entry);
  return out;
}

async function listKeys(store: Store, options?: ListOptions): Promise<Key[]> {
  return (await collect(store.list(options))).map((e) => e.key);
}

async function queryKeys(store: Store, query: Query): Promise<Key[]> {
  return (await store.query(query)).map((e) => e.key);
}

/** Write all entries in one atomic commit (one round trip even on slow backends). */
async function seed(store: Store, entries: readonly (readonly [Key, unknown])[]): Promise<string> {
  const op = store.atomic();
  for (const [key, value] of entries) op.set(key, value);
  const result = await op.commit();
  check(result.ok, `seeding ${entries.length} entries with one atomic commit must succeed`);
  return result.version;
}

/** A fixed, non-sorted permutation, so writes never arrive in key order. */
function scramble<T>(items: readonly T[]): T[] {
  const odd = items.filter((_, i) => i % 2 === 1).reverse();
  const even = items.filter((_, i) => i % 2 === 0);
  return [...odd, ...even];
}

async function expectValue(store: Store, key: Key, expected: unknown, what: string): Promise<void> {
  const entry = await store.get(key);
  check(entry !== null, `${what}: get(${show(key)}) returned null, expected ${show(expected)}`);
  same(entry.value, expected, `${what}: get(${show(key)}).value`);
}

async function expectAbsent(store: Store, key: Key, what: string): Promise<void> {
  const entry = await store.get(key);
  check(entry === null, `${what}: get(${show(key)}) should be null, got ${show(entry)}`);
}

// ---------------------------------------------------------------------------
// Round trips of every JSON type

const NUMBERS: number[] = [
  0,
  1,
  -1,
  42,
  0.1,
  -2.75,
  1e21,
  1.5e-7,
  123456789.123456,
  Number.MAX_SAFE_INTEGER,
  Number.MIN_SAFE_INTEGER,
  2 ** 64,
  Number.MAX_VALUE,
  -Number.MAX_VALUE,
  Number.MIN_VALUE,
];

const STRINGS: string[] = [
  "",
  " ",
  "null",
  "true",
  "0",
  '"quoted"',
  "back\\slash",
  "line\nbreak\ttab\rreturn",
  "nul\u0000inside",
  "control \u0001\u001f\u007f",
  "separators \u2028\u2029",
  "</script><!--",
  "café and cafe\u0301",
  "😀 emoji, 𝄞 clef, \u{10FFFF} last",
  "\ufeffbom",
  "x".repeat(1000),
];

const ARRAYS: JsonValue[] = [
  [],
  [[]],
  [null],
  [1, "a", true, false, null, {}, []],
  [[[[["deep"]]]]],
  [{ a: [1, { b: [2] }] }],
];

const OBJECTS: JsonValue[] = [
  {},
  { "": "empty key" },
  { "a.b": 1, "a": { "b": 2 } },
  { "😀": "emoji key", "é": "e-acute" },
  { "0": "zero", "1": "one" },
  { nested: { deeper: { deepest: { list: [1, 2, 3], flag: false, none: null } } } },
  { "with space": 1, 'with"quote': 2, "with\\backslash": 3, "with\u0000nul": 4 },
];

async function roundTrip(c: CaseRun, label: string, values: readonly JsonValue[]): Promise<void> {
  const store = await c.open();
  const keys = values.map((_, i) => [label, String(i).padStart(2, "0")]);
  for (let i = 0; i < values.length; i++) {
    const result = await store.set(keys[i], values[i]);
    check(result.ok, `set(${show(keys[i])}, ${show(values[i])}) must succeed`);
  }
  for (let i = 0; i < values.length; i++) {
    await expectValue(store, keys[i], values[i], `${label} #${i} round trip`);
  }
  for (let i = 0; i < values.length; i++) {
    check(await store.delete(keys[i]), `delete(${show(keys[i])}) must resolve true`);
    await expectAbsent(store, keys[i], `${label} #${i} after delete`);
  }
  same(await store.count(), 0, `count() after deleting every ${label} value`);
}

define("get() returns null for a key never written", async (c) => {
  const store = await c.open();
  same(await store.get(["never", "written"]), null, "get() of a missing key");
});

define("set() and get() round-trip null and booleans", async (c) => {
  await roundTrip(c, "scalars", [null, true, false]);
});

define("set() and get() round-trip numbers exactly", async (c) => {
  await roundTrip(c, "numbers", NUMBERS);
});

define("set() and get() round-trip strings exactly", async (c) => {
  await roundTrip(c, "strings", STRINGS);
});

define("set() and get() round-trip arrays", async (c) => {
  await roundTrip(c, "arrays", ARRAYS);
});

define("set() and get() round-trip objects", async (c) => {
  await roundTrip(c, "objects", OBJECTS);
});

define('falsy values (null, false, 0, "") are entries, not absence', async (c) => {
  const store = await c.open();
  const falsy: [Key, JsonValue][] = [
    [["f", "null"], null],
    [["f", "false"], false],
    [["f", "zero"], 0],
    [["f", "empty"], ""],
  ];
  await seed(store, falsy);
  for (const [key, value] of falsy) {
    const entry = await store.get(key);
    check(entry !== null, `get(${show(key)}) of a stored ${show(value)} must not be null`);
    same(entry.value, value, `get(${show(key)}).value`);
  }
  same(
    (await store.getMany(falsy.map(([k]) => k))).map((e) => e?.value),
    falsy.map(([, v]) => v),
    "getMany() of falsy values",
  );
  same(await store.count(["f"]), 4, "count() includes falsy values");
  const cas = await store.set(["f", "null"], "x", { ifVersion: null });
  check(!cas.ok, "set(ifVersion: null) must conflict on a key holding null");
});

define("values keep their object key order", async (c) => {
  const store = await c.open();
  const value = { zebra: 1, apple: { b: 2, a: [{ y: 1, x: 2 }] }, mango: null };
  await store.set(["ordered"], value);
  const entry = await store.get(["ordered"]);
  same(
    JSON.stringify(entry?.value),
    JSON.stringify(value),
    "the stored value's JSON text (key order included) must come back unchanged",
  );
  const [listed] = await collect(store.list({ prefix: [] }));
  same(JSON.stringify(listed?.value), JSON.stringify(value), "list() must keep key order too");
});

define("undefined object properties are dropped, as JSON.stringify does", async (c) => {
  const store = await c.open();
  await store.set(["u"], { a: 1, b: undefined, c: { d: undefined, e: 2 } });
  await expectValue(store, ["u"], { a: 1, c: { e: 2 } }, "undefined properties");
});

define("every JSON type round-trips through getMany(), list() and query() too", async (c) => {
  const store = await c.open();
  const values: JsonValue[] = [null, true, 0, -2.75, "", "😀\u0000", ...ARRAYS, ...OBJECTS];
  const entries = values.map((v, i): [Key, JsonValue] => [["t", String(i).padStart(2, "0")], v]);
  await seed(store, entries);
  same(
    (await store.getMany(entries.map(([k]) => k))).map((e) => e?.value),
    values,
    "getMany() values",
  );
  same(
    (await collect(store.list({ prefix: ["t"] }))).map((e) => e.value),
    values,
    "list() values",
  );
  same((await store.query({ prefix: ["t"] })).map((e) => e.value), values, "query() values");
});

define("set() returns { ok: true, version } and reads report that version", async (c) => {
  const store = await c.open();
  const result = await store.set(["v"], "value");
  check(result.ok, `set() must succeed, got ${show(result)}`);
  check(typeof result.version === "string" && result.version !== "", "set() must return a version");
  const entry = await store.get(["v"]);
  same(entry, { key: ["v"], value: "value", version: result.version, expiresAt: null }, "get()");
  const [listed] = await collect(store.list());
  same(listed, entry, "list() must return the same entry as get()");
  const [many] = await store.getMany([["v"]]);
  same(many, entry, "getMany() must return the same entry as get()");
});

define("set() overwrites the previous value", async (c) => {
  const store = await c.open();
  await store.set(["o"], { n: 1 });
  await store.set(["o"], [2]);
  await expectValue(store, ["o"], [2], "after overwrite");
  same(await store.count(), 1, "an overwrite must not add an entry");
});

define("delete() removes the entry and resolves true", async (c) => {
  const store = await c.open();
  await seed(store, [[["d", "1"], 1], [["d", "2"], 2]]);
  same(await store.delete(["d", "1"]), true, "delete() of a present key");
  await expectAbsent(store, ["d", "1"], "deleted key");
  await expectValue(store, ["d", "2"], 2, "sibling of a deleted key");
  same(await listKeys(store), [["d", "2"]], "list() after delete");
});

define("delete() of an absent key resolves true", async (c) => {
  const store = await c.open();
  same(await store.delete(["absent"]), true, "delete() without ifVersion of an absent key");
  same(await store.count(), 0, "count() after deleting an absent key");
});

// ---------------------------------------------------------------------------
// Copies

define("values are copies: mutating the value passed to set() changes nothing", async (c) => {
  const store = await c.open();
  const value: { list: number[]; inner: { flag: boolean }; extra?: string } = {
    list: [1, 2],
    inner: { flag: true },
  };
  await store.set(["copy"], value);
  value.list.push(3);
  value.inner.flag = false;
  value.extra = "added";
  const op = store.atomic();
  const atomicValue = { n: [1] };
  op.set(["copy", "atomic"], atomicValue);
  atomicValue.n.push(2);
  await op.commit();
  await expectValue(store, ["copy"], { list: [1, 2], inner: { flag: true } }, "after mutating");
  await expectValue(store, ["copy", "atomic"], { n: [1] }, "after mutating an atomic set() value");
});

define("values are copies: mutating a value returned by a read changes nothing", async (c) => {
  const store = await c.open();
  await seed(store, [[["r"], { list: [1], inner: { n: 1 } }]]);
  const expected = { list: [1], inner: { n: 1 } };
  const mutate = (entry: Entry | null | undefined): void => {
    const v = entry?.value as { list: number[]; inner: { n: number } };
    v.list.push(99);
    v.inner.n = 99;
  };
  mutate(await store.get(["r"]));
  await expectValue(store, ["r"], expected, "after mutating get()'s value");
  mutate((await store.getMany([["r"]]))[0]);
  await expectValue(store, ["r"], expected, "after mutating getMany()'s value");
  mutate((await collect(store.list()))[0]);
  await expectValue(store, ["r"], expected, "after mutating list()'s value");
  mutate((await store.query())[0]);
  await expectValue(store, ["r"], expected, "after mutating query()'s value");
  const entry = await store.get(["r"]);
  (entry!.key as string[]).push("mutated");
  same(await listKeys(store), [["r"]], "after mutating a returned key");
});

define("keys are copies: mutating a key array after passing it changes nothing", async (c) => {
  const store = await c.open();
  const key = ["k", "1"];
  await store.set(key, "one");
  key[1] = "9";
  key.push("x");
  same(await listKeys(store), [["k", "1"]], "list() after mutating the key array passed to set()");
  same((await store.get(["k", "1"]))?.value, "one", 'get(["k","1"]) after mutating the key array');
  const atomicKey = ["k", "2"];
  const op = store.atomic().set(atomicKey, "two");
  atomicKey[1] = "8";
  await op.commit();
  same(
    await listKeys(store),
    [["k", "1"], ["k", "2"]],
    "list() after mutating the key array passed to atomic().set() before commit()",
  );
});

// ---------------------------------------------------------------------------
// getMany

define("getMany() returns entries in the order of the keys, null for missing ones", async (c) => {
  const store = await c.open();
  await seed(store, [[["m", "a"], "A"], [["m", "b"], "B"], [["m", "c"], "C"]]);
  const got = await store.getMany([["m", "c"], ["m", "missing"], ["m", "a"], ["m", "c"], ["m"]]);
  same(
    got.map((e) => e === null ? null : [e.key, e.value]),
    [[["m", "c"], "C"], null, [["m", "a"], "A"], [["m", "c"], "C"], null],
    "getMany() results, in request order, with a duplicate and missing keys",
  );
});

define("getMany([]) returns []", async (c) => {
  const store = await c.open();
  await store.set(["x"], 1);
  same(await store.getMany([]), [], "getMany([])");
});

// ---------------------------------------------------------------------------
// Versions

define("versions change on every write, even an identical rewrite", async (c) => {
  const store = await c.open();
  const versions: string[] = [];
  for (const value of [1, 1, 2, 2]) {
    const result = await store.set(["same"], value);
    check(result.ok, "set() must succeed");
    versions.push(result.version);
    same((await store.get(["same"]))?.version, result.version, "get() reports the latest version");
  }
  const atomic = await store.atomic().set(["same"], 2).commit();
  check(atomic.ok, "atomic rewrite must succeed");
  versions.push(atomic.version);
  differentVersions(versions, "five writes of the same key");
});

define("versions differ across keys", async (c) => {
  const store = await c.open();
  const a = await store.set(["a"], 1);
  const b = await store.set(["b"], 1);
  const x = await store.set(["c", "x"], 1);
  differentVersions(
    [a.version, b.version, x.version],
    "separate writes of different keys",
  );
});

define("a key deleted and written again gets a new version", async (c) => {
  const store = await c.open();
  const first = await store.set(["again"], "v");
  await store.delete(["again"]);
  const second = await store.set(["again"], "v");
  differentVersions([first.version, second.version], "before and after delete");
  const stale = await store.set(["again"], "w", { ifVersion: first.version! });
  same(
    stale,
    { ok: false, version: null, conflicts: [["again"]] },
    "ifVersion from before the delete",
  );
});

// ---------------------------------------------------------------------------
// Compare-and-set

define("set() with a matching ifVersion writes", async (c) => {
  const store = await c.open();
  const first = await store.set(["cas"], 1);
  const second = await store.set(["cas"], 2, { ifVersion: first.version! });
  check(second.ok, `set(ifVersion: current) must succeed, got ${show(second)}`);
  differentVersions([first.version, second.version], "a CAS write");
  same(await store.get(["cas"]), {
    key: ["cas"],
    value: 2,
    version: second.version,
    expiresAt: null,
  }, "after CAS");
});

define("set() with a stale ifVersion writes nothing and reports the key", async (c) => {
  const store = await c.open();
  const first = await store.set(["cas"], 1);
  const second = await store.set(["cas"], 2);
  const result = await store.set(["cas"], 3, { ifVersion: first.version! });
  same(result, { ok: false, version: null, conflicts: [["cas"]] }, "set(ifVersion: stale)");
  same(await store.get(["cas"]), {
    key: ["cas"],
    value: 2,
    version: second.version,
    expiresAt: null,
  }, "the entry after a failed CAS");
});

define("set() with ifVersion null writes only if the key is absent", async (c) => {
  const store = await c.open();
  const created = await store.set(["lock"], "me", { ifVersion: null });
  check(created.ok, `set(ifVersion: null) on an absent key must succeed, got ${show(created)}`);
  const again = await store.set(["lock"], "you", { ifVersion: null });
  same(
    again,
    { ok: false, version: null, conflicts: [["lock"]] },
    "set(ifVersion: null) on a present key",
  );
  await expectValue(store, ["lock"], "me", "after a failed ifVersion: null");
  await store.delete(["lock"]);
  const afterDelete = await store.set(["lock"], "them", { ifVersion: null });
  check(afterDelete.ok, "set(ifVersion: null) must succeed again after a delete");
});

define("set() with an ifVersion on an absent key writes nothing", async (c) => {
  const store = await c.open();
  const other = await store.set(["other"], 1);
  const result = await store.set(["absent"], 1, { ifVersion: other.version! });
  same(result, { ok: false, version: null, conflicts: [["absent"]] }, "CAS on an absent key");
  await expectAbsent(store, ["absent"], "after a failed CAS");
});

define("delete() with a matching ifVersion deletes", async (c) => {
  const store = await c.open();
  const { version } = await store.set(["del"], 1);
  same(await store.delete(["del"], { ifVersion: version! }), true, "delete(ifVersion: current)");
  await expectAbsent(store, ["del"], "after delete(ifVersion)");
});

define("delete() with a stale ifVersion resolves false and keeps the entry", async (c) => {
  const store = await c.open();
  const first = await store.set(["del"], 1);
  const second = await store.set(["del"], 2);
  same(
    await store.delete(["del"], { ifVersion: first.version! }),
    false,
    "delete(ifVersion: stale)",
  );
  same((await store.get(["del"]))?.version, second.version, "the entry after a failed delete");
});

define("delete() with an ifVersion on an absent key resolves false", async (c) => {
  const store = await c.open();
  const { version } = await store.set(["present"], 1);
  same(
    await store.delete(["absent"], { ifVersion: version! }),
    false,
    "delete(ifVersion) of an absent key",
  );
});

// ---------------------------------------------------------------------------
// Key order and unicode

/** Sorted in the one key order every backend shares. */
const ORDERED_KEYS: Key[] = [
  ["a"],
  ["a", ""],
  ["a", "\u0000"],
  ["a", "b"],
  ["a", "b", ""],
  ["a", "b", "c"],
  ["a", "\uffff"],
  ["a", "😀"],
  ["a\u0000"],
  ["a\u0000", "x"],
  ["a\u0001"],
  ["aa"],
  ["b"],
];

define("list() orders keys element-wise by code point, shorter keys first", async (c) => {
  const store = await c.open();
  await seed(store, scramble(ORDERED_KEYS).map((k) => [k, k.join("/")]));
  same(
    await listKeys(store),
    ORDERED_KEYS,
    'key order: ["a"] < ["a",""] < ["a","b"] < ["a\\u0000"] < ["a\\u0001"] < ["b"], element by element',
  );
  same(
    await listKeys(store, { reverse: true }),
    [...ORDERED_KEYS].reverse(),
    "reverse key order must be the exact reverse",
  );
});

const CODE_POINT_ORDER = [
  "\u007f",
  "\u00e9",
  "\u0800",
  "\ud7ff",
  "\ue000",
  "\ufb01",
  "\ufffd",
  "\uffff",
  "\u{10000}",
  "😀", // U+1F600: UTF-16 order would put it before U+E000
  "\u{10FFFF}",
];

define(
  "list() orders astral characters after U+E000..U+FFFF (code points, not UTF-16)",
  async (c) => {
    const store = await c.open();
    const keys = CODE_POINT_ORDER.map((s) => ["cp", s]);
    const nested = CODE_POINT_ORDER.map((s) => ["cp2", `x${s}y`]);
    await seed(store, scramble([...keys, ...nested]).map((k) => [k, null]));
    same(await listKeys(store, { prefix: ["cp"] }), keys, "code-point order of single characters");
    same(
      await listKeys(store, { prefix: ["cp2"] }),
      nested,
      "code-point order inside longer strings",
    );
    same(
      await listKeys(store, { prefix: ["cp"], reverse: true }),
      [...keys].reverse(),
      "reverse code-point order",
    );
  },
);

const NUL_AND_EMPTY_KEYS: Key[] = [
  [""],
  ["", ""],
  ["", "\u0000"],
  ["", "a"],
  ["\u0000"],
  ["\u0000", ""],
  ["\u0000\u0000"],
  ["\u0001"],
  ["a"],
  ["a", "\u0000b"],
  ["a", "b"],
  ["a\u0000", "b"],
  ["a\u0000b"],
];

define("keys with NUL characters and empty strings are distinct and ordered", async (c) => {
  const store = await c.open();
  await seed(store, scramble(NUL_AND_EMPTY_KEYS).map((k) => [k, show(k)]));
  same(await listKeys(store), NUL_AND_EMPTY_KEYS, "order of keys with NUL and empty elements");
  same(await store.count(), NUL_AND_EMPTY_KEYS.length, "each such key is its own entry");
  for (const key of NUL_AND_EMPTY_KEYS) {
    await expectValue(store, key, show(key), "NUL/empty key");
  }
  same(
    await listKeys(store, { prefix: [""] }),
    [["", ""], ["", "\u0000"], ["", "a"]],
    'list({ prefix: [""] })',
  );
  same(
    await listKeys(store, { prefix: ["a"] }),
    [["a", "\u0000b"], ["a", "b"]],
    'list({ prefix: ["a"] })',
  );
});

define("list({ prefix }) matches whole elements, never a byte or string prefix", async (c) => {
  const store = await c.open();
  const keys: Key[] = [
    ["a"],
    ["a", ""],
    ["a", "x"],
    ["a", "x", "y"],
    ["a\u0000"],
    ["a\u0000", "x"],
    ["ab"],
    ["ab", "x"],
    ["a\uffff"],
  ];
  await seed(store, scramble(keys).map((k) => [k, 1]));
  const under: Key[] = [["a", ""], ["a", "x"], ["a", "x", "y"]];
  same(await listKeys(store, { prefix: ["a"] }), under, 'list({ prefix: ["a"] })');
  same(
    await listKeys(store, { prefix: ["a"], reverse: true }),
    [...under].reverse(),
    'list({ prefix: ["a"], reverse })',
  );
  same(await store.count(["a"]), 3, 'count(["a"])');
  same(await queryKeys(store, { prefix: ["a"] }), under, 'query({ prefix: ["a"] })');
  same(await store.clear(["a"]), 3, 'clear(["a"]) returns how many it deleted');
  same(
    await listKeys(store),
    keys.filter((k) => !under.some((u) => show(u) === show(k))),
    'what is left after clear(["a"])',
  );
});

define("prefixes with LIKE and glob wildcards match literally", async (c) => {
  const store = await c.open();
  const keys: Key[] = [
    ["%", "1"],
    ["%x", "1"],
    ["*", "1"],
    ["[a]", "1"],
    ["_", "1"],
    ["a", "1"],
    ["b", "1"],
    ["x\\", "1"],
    ["x\\%", "1"],
  ];
  await seed(store, scramble(keys).map((k) => [k, 1]));
  for (const element of ["%", "_", "*", "[a]", "x\\"]) {
    same(
      await listKeys(store, { prefix: [element] }),
      [[element, "1"]],
      `list({ prefix: [${show(element)}] })`,
    );
    same(await store.count([element]), 1, `count([${show(element)}])`);
  }
});

define("unicode keys round-trip exactly (no normalization)", async (c) => {
  const store = await c.open();
  const keys: Key[] = [
    ["caf\u00e9"],
    ["cafe\u0301"],
    ["\u{1F468}\u200D\u{1F469}\u200D\u{1F467}"],
    ["日本語", "キー"],
    ["مرحبا", "עולם"],
    ["\u2028\u2029"],
    ["\ufeff"],
    ["tab\tnew\nline\r"],
    ["quote'\"back\\slash"],
    ["Ω", "ω"],
    ["ﬁ", "fi"],
  ];
  for (const key of keys) {
    const result = await store.set(key, key.join("|"));
    check(result.ok, `set(${show(key)}) must succeed`);
  }
  same(
    await store.count(),
    keys.length,
    "every unicode key is its own entry (é and e+U+0301 differ)",
  );
  for (const key of keys) {
    const entry = await store.get(key);
    same(entry?.key, key, `get(${show(key)}).key`);
    same(entry?.value, key.join("|"), `get(${show(key)}).value`);
  }
  const listed = await listKeys(store);
  same(
    new Set(listed.map(show)),
    new Set(keys.map(show)),
    "list() returns every unicode key exactly as written",
  );
});

define("unicode values round-trip exactly", async (c) => {
  const store = await c.open();
  const value = {
    nfc: "caf\u00e9",
    nfd: "cafe\u0301",
    family: "\u{1F468}\u200D\u{1F469}\u200D\u{1F467}",
    astral: "\u{10000}\u{1F600}\u{10FFFF}",
    bmpEdge: "\ud7ff\ue000\ufffd\uffff",
    rtl: "مرحبا עולם",
    cjk: "日本語のキー",
    nul: "\u0000",
    "ключ 😀": ["ünïcödé", "𝄞"],
  };
  await store.set(["unicode"], value);
  await expectValue(store, ["unicode"], value, "unicode value");
  same(
    (await store.query({ where: [{ path: "nfd", op: "eq", value: "cafe\u0301" }] })).length,
    1,
    "query() on a decomposed string matches it exactly",
  );
  same(
    (await store.query({ where: [{ path: "nfc", op: "eq", value: "cafe\u0301" }] })).length,
    0,
    "query() must not normalize é to e+U+0301",
  );
});

function megabyteString(): string {
  const unit = 'flowstate é ü 😀 \u0000 "quote" \\ \n';
  const out = unit.repeat(Math.ceil(1_048_576 / unit.length));
  return out;
}

define("a 1 MB string value round-trips", async (c) => {
  const store = await c.open();
  const value = megabyteString();
  check(new TextEncoder().encode(value).length >= 1_000_000, "the test value is at least 1 MB");
  const result = await store.set(["big", "string"], value);
  check(result.ok, "set() of a 1 MB string must succeed");
  const got = (await store.get(["big", "string"]))?.value;
  if (got !== value) {
    const s = typeof got === "string" ? got : "";
    let i = 0;
    while (i < s.length && s[i] === value[i]) i++;
    throw new AssertionError({
      message: `1 MB string round trip: got ${
        typeof got === "string" ? `a string of length ${s.length}` : show(got)?.slice(0, 80)
      }, expected length ${value.length}; first difference at index ${i}`,
    });
  }
});

define("a 1 MB nested object value round-trips", async (c) => {
  const store = await c.open();
  const value = {
    items: Array.from({ length: 4000 }, (_, i) => ({
      id: i,
      name: `item-${i}`,
      ratio: i / 7,
      tags: ["alpha", "beta", i % 2 === 0 ? "even" : "odd"],
      nested: { level: { deep: [i, -i - 1, String(i), i % 3 === 0, null] } },
      text: "lorem ipsum dolor sit amet ".repeat(4) + "😀",
    })),
  };
  check(JSON.stringify(value).length >= 1_000_000, "the test value is at least 1 MB of JSON");
  const result = await store.set(["big", "object"], value);
  check(result.ok, "set() of a 1 MB object must succeed");
  const got = (await store.get<typeof value>(["big", "object"]))?.value;
  same(got?.items?.length, value.items.length, "1 MB object: number of items");
  same(got, value, "1 MB object round trip");
});

// ---------------------------------------------------------------------------
// list()

const LETTERS: Key[] = ["a", "b", "c", "d", "e"].map((s) => [s]);

define("list() without options returns every entry in key order", async (c) => {
  const store = await c.open();
  same(await listKeys(store), [], "list() of an empty store");
  await seed(store, scramble([...LETTERS, ["c", "1"], ["c", "1", "2"]]).map((k) => [k, k.join()]));
  const entries = await collect(store.list());
  same(
    entries.map((e) => e.key),
    [["a"], ["b"], ["c"], ["c", "1"], ["c", "1", "2"], ["d"], ["e"]],
    "list() keys",
  );
  same(entries.map((e) => e.value), ["a", "b", "c", "c,1", "c,1,2", "d", "e"], "list() values");
});

define("list({ prefix }) returns keys strictly under the prefix", async (c) => {
  const store = await c.open();
  await seed(store, [
    [["user"], 0],
    [["user", "1"], 1],
    [["user", "2"], 2],
    [["user", "2", "posts"], 3],
    [["users"], 4],
    [["usa"], 5],
  ]);
  same(
    await listKeys(store, { prefix: ["user"] }),
    [["user", "1"], ["user", "2"], ["user", "2", "posts"]],
    'list({ prefix: ["user"] }) excludes ["user"] itself and ["users"]',
  );
  same(await listKeys(store, { prefix: ["user", "2"] }), [["user", "2", "posts"]], "nested prefix");
  same(await listKeys(store, { prefix: ["nobody"] }), [], "a prefix with no keys");
  same((await listKeys(store, { prefix: [] })).length, 6, "list({ prefix: [] }) lists everything");
});

define("list({ start, end }) is start-inclusive and end-exclusive", async (c) => {
  const store = await c.open();
  await seed(store, scramble(LETTERS).map((k) => [k, 1]));
  same(await listKeys(store, { start: ["b"], end: ["d"] }), [["b"], ["c"]], "start b, end d");
  same(await listKeys(store, { start: ["b"] }), [["b"], ["c"], ["d"], ["e"]], "start b");
  same(await listKeys(store, { end: ["b"] }), [["a"]], "end b");
  same(
    await listKeys(store, { start: ["bb"], end: ["dd"] }),
    [["c"], ["d"]],
    "bounds between keys",
  );
  same(await listKeys(store, { start: ["b"], end: ["b"] }), [], "start equal to end");
  same(await listKeys(store, { start: ["d"], end: ["b"] }), [], "start after end");
  same(
    await listKeys(store, { start: ["b"], end: ["b", ""] }),
    [["b"]],
    'end ["b",""] keeps ["b"]',
  );
  same(
    await listKeys(store, { start: ["b"], end: ["d"], reverse: true }),
    [["c"], ["b"]],
    "start b, end d, reversed",
  );
});

define("list({ prefix, start, end }) applies all bounds together", async (c) => {
  const store = await c.open();
  const inside = ["1", "2", "3", "4", "5", "6"].map((s) => ["p", s]);
  await seed(store, scramble([...inside, ["o", "9"], ["p"], ["q", "0"]]).map((k) => [k, 1]));
  same(
    await listKeys(store, { prefix: ["p"], start: ["p", "2"], end: ["p", "5"] }),
    [["p", "2"], ["p", "3"], ["p", "4"]],
    "prefix p, start p/2, end p/5",
  );
  same(
    await listKeys(store, { prefix: ["p"], start: ["a"], end: ["z"] }),
    inside,
    "bounds wider than the prefix",
  );
  same(await listKeys(store, { prefix: ["p"], start: ["q"] }), [], "start after the prefix");
  same(await listKeys(store, { prefix: ["p"], end: ["p"] }), [], "end at the prefix key");
  same(
    await listKeys(store, { prefix: ["p"], start: ["p", "2"], end: ["p", "5"], reverse: true }),
    [["p", "4"], ["p", "3"], ["p", "2"]],
    "prefix + start + end, reversed",
  );
});

define("list({ reverse }) returns descending key order", async (c) => {
  const store = await c.open();
  await seed(store, scramble([...LETTERS, ["c", "1"]]).map((k) => [k, 1]));
  same(
    await listKeys(store, { reverse: true }),
    [["e"], ["d"], ["c", "1"], ["c"], ["b"], ["a"]],
    "list({ reverse: true })",
  );
  same(
    await listKeys(store, { prefix: ["c"], reverse: true }),
    [["c", "1"]],
    "reverse with a prefix",
  );
});

define("list({ limit }) stops after limit entries, forward and reverse", async (c) => {
  const store = await c.open();
  await seed(store, scramble(LETTERS).map((k) => [k, 1]));
  same(await listKeys(store, { limit: 2 }), [["a"], ["b"]], "limit 2");
  same(await listKeys(store, { limit: 2, reverse: true }), [["e"], ["d"]], "limit 2, reversed");
  same(await listKeys(store, { limit: 1, start: ["c"] }), [["c"]], "limit 1 from c");
  same((await listKeys(store, { limit: 50 })).length, 5, "a limit above the count");
});

define("list({ limit: 0 }) returns nothing", async (c) => {
  const store = await c.open();
  await seed(store, LETTERS.map((k) => [k, 1]));
  same(await listKeys(store, { limit: 0 }), [], "limit 0");
  same(await listKeys(store, { limit: 0, reverse: true }), [], "limit 0, reversed");
});

/** List in pages of `size`, resuming from each page's cursor, until a page is empty. */
async function pages(store: Store, options: ListOptions, size: number): Promise<Key[][]> {
  const out: Key[][] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 100; i++) {
    const iterator = store.list({ ...options, limit: size, cursor });
    const keys = (await collect(iterator)).map((e) => e.key);
    if (keys.length === 0) return out;
    out.push(keys);
    cursor = iterator.cursor;
  }
  throw new AssertionError({ message: "list() paging did not end after 100 pages" });
}

const TEN: Key[] = Array.from({ length: 10 }, (_, i) => ["k", `k${String(i).padStart(2, "0")}`]);

define("list() cursor resumes forward with exactly the remaining entries", async (c) => {
  const store = await c.open();
  await seed(store, scramble(TEN).map((k) => [k, 1]));
  const got = await pages(store, { prefix: ["k"] }, 3);
  same(got.map((p) => p.length), [3, 3, 3, 1], "page sizes");
  same(got.flat(), TEN, "all pages together: every key once, in order");
});

define("list() cursor resumes in reverse with exactly the remaining entries", async (c) => {
  const store = await c.open();
  await seed(store, scramble(TEN).map((k) => [k, 1]));
  const got = await pages(store, { prefix: ["k"], reverse: true }, 4);
  same(got.map((p) => p.length), [4, 4, 2], "page sizes");
  same(got.flat(), [...TEN].reverse(), "all reverse pages together: every key once, in order");
});

define("list() cursor resumes correctly after entries are added and removed", async (c) => {
  const store = await c.open();
  const k = (s: string): Key => ["k", s];
  await seed(store, scramble(TEN).map((key) => [key, 1]));
  const first = store.list({ prefix: ["k"], limit: 3 });
  same((await collect(first)).map((e) => e.key), [k("k00"), k("k01"), k("k02")], "first page");
  // Remove the cursor's own key and a later one; add keys before and after the cursor.
  await store.atomic().delete(k("k02")).delete(k("k05")).set(k("k015"), 1).set(k("k035"), 1)
    .set(k("k10"), 1).commit();
  same(
    await listKeys(store, { prefix: ["k"], cursor: first.cursor }),
    ["k03", "k035", "k04", "k06", "k07", "k08", "k09", "k10"].map(k),
    "forward resume after changes: later keys only, none twice, none missed",
  );
});

define("list() reverse cursor resumes correctly after entries are added and removed", async (c) => {
  const store = await c.open();
  const k = (s: string): Key => ["k", s];
  await seed(store, scramble(TEN).map((key) => [key, 1]));
  const first = store.list({ prefix: ["k"], limit: 3, reverse: true });
  same((await collect(first)).map((e) => e.key), [k("k09"), k("k08"), k("k07")], "first page");
  await store.atomic().delete(k("k07")).delete(k("k04")).set(k("k075"), 1).set(k("k065"), 1)
    .set(k("k005"), 1).commit();
  same(
    await listKeys(store, { prefix: ["k"], reverse: true, cursor: first.cursor }),
    ["k065", "k06", "k05", "k03", "k02", "k01", "k005", "k00"].map(k),
    "reverse resume after changes: earlier keys only, none twice, none missed",
  );
});

define("list() cursor is empty before the first entry and follows an early break", async (c) => {
  const store = await c.open();
  await seed(store, scramble(LETTERS).map((k) => [k, 1]));
  const iterator = store.list();
  same(iterator.cursor, "", "cursor before the first entry");
  const seen: Key[] = [];
  for await (const entry of iterator) {
    seen.push(entry.key);
    if (seen.length === 2) break;
  }
  same(seen, [["a"], ["b"]], "entries before the break");
  check(iterator.cursor !== "", "cursor after two entries must not be empty");
  same(
    await listKeys(store, { cursor: iterator.cursor }),
    [["c"], ["d"], ["e"]],
    "resume after an early break",
  );
  same(await listKeys(store, { cursor: "" }), LETTERS, 'cursor "" starts from the beginning');
});

define("list() cursor keeps the listing's own bounds", async (c) => {
  const store = await c.open();
  const inside = ["1", "2", "3", "4", "5", "6"].map((s) => ["p", s]);
  await seed(store, scramble([...inside, ["o"], ["p"], ["q"]]).map((k) => [k, 1]));
  same(await pages(store, { prefix: ["p"] }, 2), [
    inside.slice(0, 2),
    inside.slice(2, 4),
    inside.slice(4),
  ], "prefix pages");
  same(
    await pages(store, { prefix: ["p"], end: ["p", "5"] }, 2),
    [inside.slice(0, 2), inside.slice(2, 4)],
    "prefix + end pages",
  );
  same(
    await pages(store, { prefix: ["p"], start: ["p", "2"], reverse: true }, 2),
    [[inside[5], inside[4]], [inside[3], inside[2]], [inside[1]]],
    "prefix + start, reversed pages",
  );
});

define("list() with an invalid cursor throws TypeError", async (c) => {
  const store = await c.open();
  await store.set(["a"], 1);
  for (const cursor of ["not a cursor!", "%%%", btoa('"a string"'), btoa("[]"), btoa("[1]")]) {
    await fails(
      () => collect(store.list({ cursor })),
      TypeError,
      `list({ cursor: ${show(cursor)} })`,
    );
  }
});

// ---------------------------------------------------------------------------
// count()

define("count() counts every entry", async (c) => {
  const store = await c.open();
  same(await store.count(), 0, "count() of an empty store");
  await seed(store, [[["a"], 1], [["a", "b"], 2], [["c"], 3]]);
  same(await store.count(), 3, "count()");
  same(await store.count([]), 3, "count([])");
  await store.delete(["a"]);
  same(await store.count(), 2, "count() after a delete");
});

define("count(prefix) counts keys strictly under the prefix", async (c) => {
  const store = await c.open();
  await seed(store, [
    [["n"], 0],
    [["n", "1"], 1],
    [["n", "2"], 2],
    [["n", "2", "x"], 3],
    [["nn"], 4],
  ]);
  same(await store.count(["n"]), 3, 'count(["n"]) excludes ["n"] and ["nn"]');
  same(await store.count(["n", "2"]), 1, 'count(["n","2"])');
  same(await store.count(["zzz"]), 0, "count() of an unused prefix");
});

// ---------------------------------------------------------------------------
// Expiry (the fake clock moves; nothing sleeps)

define("expireIn: get() returns the entry until its expiry time, then null", async (c) => {
  const store = await c.open();
  const start = c.clock.now();
  const result = await store.set(["ttl"], "soon gone", { expireIn: 1000 });
  await store.set(["keep"], "stays");
  same(await store.get(["ttl"]), {
    key: ["ttl"],
    value: "soon gone",
    version: result.version,
    expiresAt: start + 1000,
  }, "get() before expiry: expiresAt is now + expireIn");
  c.clock.advance(999);
  check((await store.get(["ttl"])) !== null, "1 ms before its expiry time the entry is still live");
  c.clock.advance(1);
  await expectAbsent(store, ["ttl"], "at its expiry time");
  c.clock.advance(1_000_000);
  await expectAbsent(store, ["ttl"], "long after its expiry time");
  await expectValue(store, ["keep"], "stays", "an entry without expiry");
});

define("expired entries are absent from getMany()", async (c) => {
  const store = await c.open();
  await store.set(["a"], 1, { expireIn: 100 });
  await store.set(["b"], 2);
  await store.set(["c"], 3, { expireIn: 10_000 });
  c.clock.advance(100);
  same(
    (await store.getMany([["a"], ["b"], ["c"]])).map((e) => e?.value ?? null),
    [null, 2, 3],
    "getMany() after the first entry expired",
  );
});

define("expired entries are absent from list(), also with limit and cursor", async (c) => {
  const store = await c.open();
  const keys = ["0", "1", "2", "3", "4", "5", "6", "7"].map((s) => ["e", s]);
  const op = store.atomic();
  keys.forEach((k, i) => op.set(k, i, i % 2 === 0 ? { expireIn: 50 } : undefined));
  await op.commit();
  same((await listKeys(store, { prefix: ["e"] })).length, 8, "list() before expiry");
  c.clock.advance(50);
  const live = keys.filter((_, i) => i % 2 === 1);
  same(await listKeys(store, { prefix: ["e"] }), live, "list() after expiry");
  same(await listKeys(store, { prefix: ["e"], limit: 2 }), live.slice(0, 2), "list({ limit: 2 })");
  same(
    await listKeys(store, { prefix: ["e"], limit: 2, reverse: true }),
    [live[3], live[2]],
    "list({ limit: 2, reverse })",
  );
  same(await pages(store, { prefix: ["e"] }, 3), [live.slice(0, 3), live.slice(3)], "pages");
});

define("expired entries are not counted", async (c) => {
  const store = await c.open();
  await seed(store, [[["x", "1"], 1], [["y", "1"], 1]]);
  await store.atomic().set(["x", "2"], 2, { expireIn: 10 }).set(["y", "2"], 2, { expireIn: 20 })
    .commit();
  same(await store.count(), 4, "count() before expiry");
  c.clock.advance(10);
  same(await store.count(), 3, "count() after one expiry");
  same(await store.count(["x"]), 1, 'count(["x"]) after expiry');
  c.clock.advance(10);
  same(await store.count(), 2, "count() after both expired");
});

define("expired entries are absent from query()", async (c) => {
  const store = await c.open();
  await store.atomic()
    .set(["q", "1"], { n: 1 })
    .set(["q", "2"], { n: 2 }, { expireIn: 10 })
    .set(["q", "3"], { n: 3 })
    .set(["q", "4"], { n: 4 }, { expireIn: 10 })
    .commit();
  c.clock.advance(10);
  same(await queryKeys(store, {}), [["q", "1"], ["q", "3"]], "query() after expiry");
  same(
    await queryKeys(store, { where: [{ path: "n", op: "gte", value: 2 }] }),
    [["q", "3"]],
    "query(where) after expiry",
  );
  same(
    await queryKeys(store, { orderBy: { path: "n", direction: "desc" }, limit: 1 }),
    [["q", "3"]],
    "query(orderBy desc, limit 1) after expiry",
  );
});

define("expiresAt is now + expireIn; a rewrite without expireIn clears it", async (c) => {
  const store = await c.open();
  const start = c.clock.now();
  await store.set(["x"], 1, { expireIn: 60_000 });
  same((await store.get(["x"]))?.expiresAt, start + 60_000, "expiresAt after set(expireIn)");
  c.clock.advance(30_000);
  await store.set(["x"], 2, { expireIn: 60_000 });
  same(
    (await store.get(["x"]))?.expiresAt,
    start + 90_000,
    "a rewrite with expireIn moves the expiry",
  );
  await store.set(["x"], 3);
  same((await store.get(["x"]))?.expiresAt, null, "a rewrite without expireIn clears the expiry");
  c.clock.advance(1_000_000);
  await expectValue(store, ["x"], 3, "after the old expiry time passed");
});

define("an expired key can be written again", async (c) => {
  const store = await c.open();
  await store.set(["x"], "old", { expireIn: 10 });
  c.clock.advance(10);
  const result = await store.set(["x"], "new");
  check(result.ok, "set() over an expired entry must succeed");
  same(await store.get(["x"]), {
    key: ["x"],
    value: "new",
    version: result.version,
    expiresAt: null,
  }, "the rewritten entry");
  same(await store.count(), 1, "count() after rewriting an expired key");
});

define("set() with ifVersion null succeeds on an expired key", async (c) => {
  const store = await c.open();
  await store.set(["lease"], "old holder", { expireIn: 1000 });
  const early = await store.set(["lease"], "new holder", { ifVersion: null });
  check(!early.ok, "ifVersion: null must conflict while the entry is live");
  c.clock.advance(1000);
  const late = await store.set(["lease"], "new holder", { ifVersion: null, expireIn: 1000 });
  check(late.ok, `ifVersion: null must succeed once the entry expired, got ${show(late)}`);
  await expectValue(store, ["lease"], "new holder", "after taking an expired lease");
});

define("an expired entry's version no longer matches ifVersion", async (c) => {
  const store = await c.open();
  const { version } = await store.set(["x"], 1, { expireIn: 10 });
  c.clock.advance(10);
  same(
    await store.set(["x"], 2, { ifVersion: version! }),
    { ok: false, version: null, conflicts: [["x"]] },
    "set(ifVersion) with the version of an expired entry",
  );
  same(
    await store.delete(["x"], { ifVersion: version! }),
    false,
    "delete(ifVersion) of an expired entry",
  );
  const atomic = await store.atomic().check(["x"], version!).set(["y"], 1).commit();
  same(
    atomic,
    { ok: false, version: null, conflicts: [["x"]] },
    "atomic check of an expired entry",
  );
  await expectAbsent(store, ["y"], "nothing written by the failed atomic commit");
});

define("atomic().set() with expireIn expires", async (c) => {
  const store = await c.open();
  const start = c.clock.now();
  await store.atomic().set(["a"], 1, { expireIn: 500 }).set(["b"], 2).commit();
  same((await store.get(["a"]))?.expiresAt, start + 500, "expiresAt of an atomic set");
  c.clock.advance(500);
  await expectAbsent(store, ["a"], "after expiry");
  await expectValue(store, ["b"], 2, "its sibling without expiry");
});

// ---------------------------------------------------------------------------
// query()

const QUERY_DATA: [Key, JsonValue][] = [
  [["q", "a"], {
    n: 1,
    s: "apple",
    tags: ["red", "fruit"],
    nested: { x: 10, arr: [1, 2, 3] },
    flag: true,
    nul: null,
  }],
  [["q", "b"], { n: 2, s: "banana", tags: ["yellow", "fruit"], nested: { arr: [4], x: 20 } }],
  [["q", "c"], { n: "3", s: "cherry", tags: [], nested: { x: 10 }, flag: false }],
  [["q", "d"], { n: 2.5, tags: ["red"], nested: {}, nul: 0 }],
  [["q", "e"], "just a string"],
  [["q", "f"], ["x", { k: 1 }]],
  [["r", "z"], { n: 1, s: "apple" }],
];

async function queryStore(c: CaseRun): Promise<Store> {
  const store = await c.open();
  await seed(store, scramble(QUERY_DATA));
  return store;
}

/** Run a where-clause query under ["q"] and return the last key elements. */
async function where(store: Store, clauses: Query["where"]): Promise<string[]> {
  return (await queryKeys(store, { prefix: ["q"], where: clauses })).map((k) => k[k.length - 1]);
}

define("query() without options returns every entry in key order", async (c) => {
  const store = await queryStore(c);
  const all = await store.query();
  same(all.map((e) => e.key), QUERY_DATA.map(([k]) => k), "query() keys");
  same(all.map((e) => e.value), QUERY_DATA.map(([, v]) => v), "query() values");
  same(
    all[0],
    await store.get(QUERY_DATA[0][0]),
    "query() returns whole entries, like get()",
  );
});

define("query() eq and ne on nested paths and array indices", async (c) => {
  const store = await queryStore(c);
  same(await where(store, [{ path: "n", op: "eq", value: 2 }]), ["b"], "n eq 2");
  same(
    await where(store, [{ path: "nested.x", op: "eq", value: 10 }]),
    ["a", "c"],
    "nested.x eq 10",
  );
  same(
    await where(store, [{ path: "tags.0", op: "eq", value: "red" }]),
    ["a", "d"],
    "tags.0 eq red",
  );
  same(
    await where(store, [{ path: "tags.1", op: "eq", value: "fruit" }]),
    ["a", "b"],
    "tags.1 eq fruit",
  );
  same(await where(store, [{ path: "1.k", op: "eq", value: 1 }]), ["f"], "1.k eq 1 (array value)");
  same(
    await where(store, [{ path: "nested.arr", op: "eq", value: [1, 2, 3] }]),
    ["a"],
    "nested.arr eq [1,2,3]",
  );
  same(
    await where(store, [{ path: "nested", op: "eq", value: { x: 20, arr: [4] } }]),
    ["b"],
    "deep equality ignores object key order",
  );
  same(await where(store, [{ path: "nested", op: "eq", value: {} }]), ["d"], "nested eq {}");
  same(
    await where(store, [{ path: "n", op: "ne", value: 2 }]),
    ["a", "c", "d", "e", "f"],
    "n ne 2 (a missing field matches ne)",
  );
  same(
    await where(store, [{ path: "tags", op: "ne", value: [] }]),
    ["a", "b", "d", "e", "f"],
    "tags ne []",
  );
});

define("query() missing fields and null follow the documented semantics", async (c) => {
  const store = await queryStore(c);
  same(
    await where(store, [{ path: "nul", op: "exists" }]),
    ["a", "d"],
    "nul exists (null is present)",
  );
  same(await where(store, [{ path: "nul", op: "exists", value: true }]), ["a", "d"], "exists true");
  same(
    await where(store, [{ path: "nul", op: "exists", value: false }]),
    ["b", "c", "e", "f"],
    "nul exists false",
  );
  same(
    await where(store, [{ path: "nul", op: "eq", value: null }]),
    ["a"],
    "nul eq null (missing is not null)",
  );
  same(
    await where(store, [{ path: "nul", op: "ne", value: null }]),
    ["b", "c", "d", "e", "f"],
    "nul ne null (missing fields match ne)",
  );
  same(
    await where(store, [{ path: "nul", op: "lte", value: 0 }]),
    ["d"],
    "nul lte 0 (null is not a number)",
  );
  same(await where(store, [{ path: "missing.deeper", op: "exists" }]), [], "a missing parent");
  same(
    await where(store, [{ path: "s.0", op: "exists" }]),
    [],
    "a path into a string does not exist",
  );
  same(await where(store, [{ path: "tags.5", op: "exists" }]), [], "an index past the end");
  same(await where(store, [{ path: "tags.01", op: "exists" }]), [], 'a non-canonical index "01"');
  same(
    await where(store, [{ path: "missing", op: "in", value: [null] }]),
    [],
    "in never matches a missing field",
  );
  same(
    await where(store, [{ path: "missing", op: "contains", value: "x" }]),
    [],
    "contains on missing",
  );
});

define("query() lt lte gt gte compare numbers and strings, never across types", async (c) => {
  const store = await queryStore(c);
  same(await where(store, [{ path: "n", op: "lt", value: 2 }]), ["a"], "n lt 2");
  same(await where(store, [{ path: "n", op: "lte", value: 2 }]), ["a", "b"], "n lte 2");
  same(
    await where(store, [{ path: "n", op: "gt", value: 2 }]),
    ["d"],
    'n gt 2 (the string "3" is not a number)',
  );
  same(await where(store, [{ path: "n", op: "gte", value: 2 }]), ["b", "d"], "n gte 2");
  same(
    await where(store, [{ path: "n", op: "lt", value: "9" }]),
    ["c"],
    'n lt "9" (only strings compare)',
  );
  same(await where(store, [{ path: "n", op: "eq", value: 3 }]), [], 'n eq 3 does not match "3"');
  same(await where(store, [{ path: "s", op: "gt", value: "b" }]), ["b", "c"], 's gt "b"');
  same(
    await where(store, [{ path: "s", op: "lte", value: "banana" }]),
    ["a", "b"],
    's lte "banana"',
  );
  same(await where(store, [{ path: "flag", op: "lt", value: true }]), [], "booleans never compare");
  same(await where(store, [{ path: "flag", op: "eq", value: 1 }]), [], "true is not 1");
  same(await where(store, [{ path: "tags", op: "gt", value: "a" }]), [], "arrays never compare");
  same(
    await where(store, [{ path: "n", op: "gt", value: 0 }, { path: "n", op: "lt", value: 2.5 }]),
    ["a", "b"],
    "two clauses must both match",
  );
});

define("query() in and contains", async (c) => {
  const store = await queryStore(c);
  same(
    await where(store, [{ path: "n", op: "in", value: [1, "3", 99] }]),
    ["a", "c"],
    'n in [1, "3", 99]',
  );
  same(await where(store, [{ path: "n", op: "in", value: [] }]), [], "in []");
  same(
    await where(store, [{ path: "nested.arr", op: "in", value: [[4], [1, 2]] }]),
    ["b"],
    "in with array items (deep equality)",
  );
  same(
    await where(store, [{ path: "tags", op: "contains", value: "red" }]),
    ["a", "d"],
    'tags contains "red"',
  );
  same(
    await where(store, [{ path: "s", op: "contains", value: "an" }]),
    ["b"],
    's contains "an" (substring)',
  );
  same(
    await where(store, [{ path: "s", op: "contains", value: "" }]),
    ["a", "b", "c"],
    's contains ""',
  );
  same(
    await where(store, [{ path: "", op: "contains", value: { k: 1 } }]),
    ["f"],
    "array value contains an object",
  );
  same(
    await where(store, [{ path: "", op: "contains", value: "string" }]),
    ["e"],
    "string value contains",
  );
  same(await where(store, [{ path: "n", op: "contains", value: 1 }]), [], "contains on a number");
  same(
    await where(store, [{ path: "tags", op: "contains", value: "RED" }]),
    [],
    "contains is case-sensitive",
  );
});

define("query() paths: dot strings, segment arrays and the value itself", async (c) => {
  const store = await c.open();
  await seed(store, [
    [["p", "1"], { "a.b": 1, a: { b: 2 } }],
    [["p", "2"], { a: { b: 1 } }],
    [["p", "3"], 5],
    [["p", "4"], 7],
  ]);
  same(
    await queryKeys(store, { where: [{ path: ["a.b"], op: "eq", value: 1 }] }),
    [["p", "1"]],
    'path ["a.b"]',
  );
  same(
    await queryKeys(store, { where: [{ path: "a.b", op: "eq", value: 1 }] }),
    [["p", "2"]],
    'path "a.b"',
  );
  same(
    await queryKeys(store, { where: [{ path: ["a", "b"], op: "eq", value: 2 }] }),
    [["p", "1"]],
    'path ["a","b"]',
  );
  same(
    await queryKeys(store, { where: [{ path: "", op: "gt", value: 5 }] }),
    [["p", "4"]],
    'path "" (the value)',
  );
  same(
    await queryKeys(store, { where: [{ path: [], op: "gte", value: 5 }] }),
    [["p", "3"], ["p", "4"]],
    "path []",
  );
});

define("query() orderBy asc and desc break ties by key", async (c) => {
  const store = await c.open();
  await seed(
    store,
    scramble([
      [["o", "a"], { n: 3 }],
      [["o", "b"], { n: -10 }],
      [["o", "c"], { n: 100 }],
      [["o", "d"], { n: 3 }],
      [["o", "e"], { n: 2.5 }],
      [["o", "f"], { n: 10 }],
    ]),
  );
  const last = (keys: Key[]) => keys.map((k) => k[1]);
  same(
    last(await queryKeys(store, { orderBy: { path: "n" } })),
    ["b", "e", "a", "d", "f", "c"],
    "asc (numeric, not text)",
  );
  same(
    last(await queryKeys(store, { orderBy: { path: "n", direction: "desc" } })),
    ["c", "f", "a", "d", "e", "b"],
    "desc; the tie a/d stays in key order",
  );
  same(
    last(await queryKeys(store, { orderBy: [{ path: "n", direction: "asc" }] })),
    ["b", "e", "a", "d", "f", "c"],
    "orderBy as an array",
  );
});

define(
  "query() orderBy ranks types: missing < null < false < true < number < string < array < object",
  async (c) => {
    const store = await c.open();
    const values: [string, unknown][] = [
      ["k01", { v: { z: 1 } }],
      ["k02", { v: [2] }],
      ["k03", { v: "a" }],
      ["k04", { v: 2 }],
      ["k05", { v: true }],
      ["k06", { v: false }],
      ["k07", { v: null }],
      ["k08", {}],
      ["k09", { v: -1 }],
      ["k10", { v: "A" }],
      ["k11", { v: [] }],
      ["k12", { v: {} }],
    ];
    await seed(store, values.map(([k, v]) => [["t", k], v]));
    const asc = [
      "k08",
      "k07",
      "k06",
      "k05",
      "k09",
      "k04",
      "k10",
      "k03",
      "k02",
      "k11",
      "k01",
      "k12",
    ];
    same(
      (await queryKeys(store, { orderBy: { path: "v" } })).map((k) => k[1]),
      asc,
      'asc: missing, null, false, true, -1, 2, "A", "a", arrays (tied: key order), objects (tied: key order)',
    );
    same(
      (await queryKeys(store, { orderBy: { path: "v", direction: "desc" } })).map((k) => k[1]),
      ["k01", "k12", "k02", "k11", "k03", "k10", "k04", "k09", "k05", "k06", "k07", "k08"],
      "desc: the type ranks reversed; ties (arrays, objects) still in ascending key order",
    );
  },
);

define("query() orderBy compares strings by code point, not by locale", async (c) => {
  const store = await c.open();
  const sorted = ["B", "Z", "a", "b", "ä", "é", "\ufffd", "😀"];
  await seed(store, scramble(sorted).map((s, i) => [["s", String(i)], { s }]));
  same(
    (await store.query({ orderBy: { path: "s" } })).map((e) => (e.value as { s: string }).s),
    sorted,
    "code-point order: uppercase before lowercase, U+FFFD before U+1F600",
  );
});

define("query() orderBy with several keys", async (c) => {
  const store = await c.open();
  await seed(store, [
    [["m", "1"], { g: "b", n: 1 }],
    [["m", "2"], { g: "a", n: 1 }],
    [["m", "3"], { g: "b", n: 2 }],
    [["m", "4"], { g: "a", n: 3 }],
    [["m", "5"], { g: "a", n: 3 }],
    [["m", "6"], { n: 0 }],
  ]);
  same(
    (await queryKeys(store, { orderBy: [{ path: "g" }, { path: "n", direction: "desc" }] })).map((
      k,
    ) => k[1]),
    ["6", "4", "5", "2", "3", "1"],
    "g asc, then n desc, then key",
  );
  same(
    (await queryKeys(store, { orderBy: [{ path: "n" }, { path: "g", direction: "desc" }] })).map((
      k,
    ) => k[1]),
    ["6", "1", "2", "3", "4", "5"],
    "n asc, then g desc, then key",
  );
});

define("query() limit and offset", async (c) => {
  const store = await c.open();
  await seed(
    store,
    scramble(
      Array.from({ length: 6 }, (_, i) => [["l", `${i}`], { n: 5 - i }] as [Key, JsonValue]),
    ),
  );
  const byN = { orderBy: { path: "n" } } as const;
  same((await queryKeys(store, { ...byN, limit: 2 })).map((k) => k[1]), ["5", "4"], "limit 2");
  same(
    (await queryKeys(store, { ...byN, offset: 2, limit: 2 })).map((k) => k[1]),
    ["3", "2"],
    "offset 2, limit 2",
  );
  same((await queryKeys(store, { ...byN, offset: 4 })).map((k) => k[1]), ["1", "0"], "offset 4");
  same(await queryKeys(store, { ...byN, offset: 10 }), [], "offset past the end");
  same(await queryKeys(store, { ...byN, limit: 0 }), [], "limit 0");
  same(
    (await queryKeys(store, { where: [{ path: "n", op: "gte", value: 2 }], limit: 2, offset: 1 }))
      .map((k) => k[1]),
    ["1", "2"],
    "offset and limit apply after where (key order)",
  );
});

define("query({ prefix }) scopes to keys strictly under the prefix", async (c) => {
  const store = await c.open();
  await seed(store, [
    [["a"], { n: 1 }],
    [["a", "1"], { n: 1 }],
    [["a", "2", "deep"], { n: 1 }],
    [["ab", "1"], { n: 1 }],
    [["b", "1"], { n: 1 }],
  ]);
  const clause = [{ path: "n", op: "eq", value: 1 }] as const;
  same(
    await queryKeys(store, { prefix: ["a"], where: clause }),
    [["a", "1"], ["a", "2", "deep"]],
    'prefix ["a"]',
  );
  same((await queryKeys(store, { prefix: [], where: clause })).length, 5, "prefix []");
  same(await queryKeys(store, { prefix: ["zz"] }), [], "a prefix with no keys");
});

// ---------------------------------------------------------------------------
// atomic()

define("atomic() applies all sets and deletes together", async (c) => {
  const store = await c.open();
  await seed(store, [[["x"], 1], [["y"], 2]]);
  const result = await store.atomic().set(["a"], "A").set(["b", "1"], ["B"]).delete(["x"]).commit();
  check(result.ok, `atomic commit must succeed, got ${show(result)}`);
  same(await listKeys(store), [["a"], ["b", "1"], ["y"]], "keys after the atomic commit");
  await expectValue(store, ["b", "1"], ["B"], "atomic set");
});

define("atomic() with a failing check writes nothing and reports the key", async (c) => {
  const store = await c.open();
  const x1 = await store.set(["x"], 1);
  await store.set(["x"], 2);
  const y = await store.set(["y"], "y");
  const result = await store.atomic()
    .check(["x"], x1.version)
    .check(["y"], y.version)
    .set(["z"], "z")
    .set(["y"], "changed")
    .delete(["x"])
    .commit();
  same(result, { ok: false, version: null, conflicts: [["x"]] }, "commit with one stale check");
  same(await listKeys(store), [["x"], ["y"]], "keys after the failed commit");
  await expectValue(store, ["x"], 2, "x after the failed commit");
  await expectValue(store, ["y"], "y", "y after the failed commit");
});

define("atomic() reports only keys whose checks failed", async (c) => {
  const store = await c.open();
  const a = await store.set(["a"], 1);
  await store.set(["a"], 2);
  const b = await store.set(["b"], 1);
  const result = await store.atomic()
    .check(["a"], a.version)
    .check(["b"], b.version)
    .check(["c"], b.version)
    .check(["d"], null)
    .set(["e"], 1)
    .commit();
  check(!result.ok, `two stale checks must fail the commit, got ${show(result)}`);
  same(result.version, null, "a failed commit's version");
  const conflicts = new Set(result.conflicts.map(show));
  check(conflicts.size > 0, "a failed commit must name at least one conflicting key");
  for (const key of conflicts) {
    check(
      key === show(["a"]) || key === show(["c"]),
      `conflicts must only name keys whose check failed (["a"], ["c"]), got ${key}`,
    );
  }
  await expectAbsent(store, ["e"], "after the failed commit");
});

define("atomic() checks with null require absence; an expired key counts as absent", async (c) => {
  const store = await c.open();
  await store.set(["present"], 1);
  await store.set(["expiring"], 1, { expireIn: 10 });
  const blocked = await store.atomic().check(["present"], null).set(["out"], 1).commit();
  same(blocked, { ok: false, version: null, conflicts: [["present"]] }, "check(present, null)");
  const blockedLive = await store.atomic().check(["expiring"], null).set(["out"], 1).commit();
  same(blockedLive, { ok: false, version: null, conflicts: [["expiring"]] }, "check(live, null)");
  c.clock.advance(10);
  const passed = await store.atomic().check(["absent"], null).check(["expiring"], null)
    .set(["out"], 1).commit();
  check(passed.ok, `check(absent, null) and check(expired, null) must pass, got ${show(passed)}`);
  await expectValue(store, ["out"], 1, "written by the passing commit");
});

define("atomic() gives every entry it sets one version, the one commit() returns", async (c) => {
  const store = await c.open();
  const before = await store.set(["a"], 0);
  const result = await store.atomic().set(["a"], 1).set(["b"], 2).set(["c", "d"], 3).commit();
  check(result.ok, "atomic commit must succeed");
  differentVersions([before.version, result.version], "before and after the atomic commit");
  same(
    (await store.getMany([["a"], ["b"], ["c", "d"]])).map((e) => e?.version),
    [result.version, result.version, result.version],
    "versions of the entries set in one commit",
  );
});

define("atomic() applies mutations in order: a later write to the same key wins", async (c) => {
  const store = await c.open();
  await seed(store, [[["j"], "old"]]);
  const result = await store.atomic()
    .set(["k"], 1).delete(["k"])
    .delete(["j"]).set(["j"], 2)
    .set(["m"], 1).set(["m"], 2)
    .commit();
  check(result.ok, "atomic commit must succeed");
  await expectAbsent(store, ["k"], "set then delete");
  await expectValue(store, ["j"], 2, "delete then set");
  await expectValue(store, ["m"], 2, "set then set");
});

define("atomic() with a check and a set of the same key is a compare-and-set", async (c) => {
  const store = await c.open();
  const { version } = await store.set(["n"], 1);
  const first = await store.atomic().check(["n"], version).set(["n"], 2).commit();
  check(first.ok, "the first CAS must succeed");
  const second = await store.atomic().check(["n"], version).set(["n"], 3).commit();
  same(
    second,
    { ok: false, version: null, conflicts: [["n"]] },
    "the second CAS with the old version",
  );
  await expectValue(store, ["n"], 2, "after two CAS attempts");
});

define("atomic() with only checks succeeds and writes nothing", async (c) => {
  const store = await c.open();
  const { version } = await store.set(["a"], 1);
  const result = await store.atomic().check(["a"], version).check(["b"], null).commit();
  check(result.ok, `a commit with passing checks only must succeed, got ${show(result)}`);
  same((await store.get(["a"]))?.version, version, "the checked entry is unchanged");
  same(await store.count(), 1, "count() after a check-only commit");
});

define("20 concurrent compare-and-set increments end at exactly 20", async (c) => {
  const store = await c.open();
  await store.set(["counter"], 0);
  const versions: string[] = [];
  let attempts = 0;
  const increment = async (): Promise<void> => {
    for (;;) {
      if (++attempts > 2000) {
        throw new AssertionError({
          message: "CAS increments did not converge after 2000 attempts",
        });
      }
      const entry = await store.get<number>(["counter"]);
      check(entry !== null, "the counter must exist");
      const result = await store.set(["counter"], entry.value + 1, { ifVersion: entry.version });
      if (result.ok) {
        versions.push(result.version);
        return;
      }
      same(result.conflicts, [["counter"]], "a lost race reports the counter key");
    }
  };
  await Promise.all(Array.from({ length: 20 }, increment));
  const final = await store.get<number>(["counter"]);
  same(final?.value, 20, `the counter after 20 concurrent increments (${attempts} attempts)`);
  same(versions.length, 20, "winning commits");
  differentVersions(versions, "the 20 winning commits");
  check(versions.includes(final!.version), "the final version is one a winning commit returned");
});

define("concurrent set(ifVersion: null): exactly one writer wins", async (c) => {
  const store = await c.open();
  const results = await Promise.all(
    Array.from({ length: 10 }, (_, i) => store.set(["lock"], `writer ${i}`, { ifVersion: null })),
  );
  const winners = results.flatMap((r, i) => r.ok ? [i] : []);
  same(winners.length, 1, `exactly one of 10 concurrent creators wins (winners: ${show(winners)})`);
  await expectValue(store, ["lock"], `writer ${winners[0]}`, "the lock holds the winner's value");
  same((await store.get(["lock"]))?.version, results[winners[0]].version, "the winner's version");
});

// ---------------------------------------------------------------------------
// clear()

define(
  "clear(prefix) deletes keys under the prefix, returns how many, leaves the rest",
  async (c) => {
    const store = await c.open();
    await seed(store, [
      [["a"], 0],
      [["a", "1"], 1],
      [["a", "2", "x"], 2],
      [["ab"], 3],
      [["b", "1"], 4],
    ]);
    same(await store.clear(["a"]), 2, 'clear(["a"]) returns the number deleted');
    same(
      await listKeys(store),
      [["a"], ["ab"], ["b", "1"]],
      'keys after clear(["a"]): ["a"] itself and siblings stay',
    );
    same(await store.clear(["nothing"]), 0, "clear() of an unused prefix");
  },
);

define("clear([]) empties the store", async (c) => {
  const store = await c.open();
  await seed(store, scramble([...LETTERS, ["c", "1"], [""], ["\u0000"]]).map((k) => [k, 1]));
  same(await store.clear([]), 8, "clear([]) returns the number deleted");
  same(await store.count(), 0, "count() after clear([])");
  same(await listKeys(store), [], "list() after clear([])");
  const again = await store.set(["a"], 1, { ifVersion: null });
  check(again.ok, "a cleared key is absent for ifVersion: null");
});

define("clear() counts only live entries", async (c) => {
  const store = await c.open();
  await store.atomic().set(["c", "1"], 1).set(["c", "2"], 2, { expireIn: 5 }).set(["c", "3"], 3)
    .commit();
  c.clock.advance(5);
  same(await store.clear(["c"]), 2, "clear() skips the expired entry in its count");
  same(await store.count(["c"]), 0, "count() after clear()");
});

/** Keys for the range cases: a time-like id under several prefixes, and neighbours. */
const RANGE_SEED: [Key, number][] = [
  [["r"], 0],
  [["r", "a"], 1],
  [["r", "b"], 2],
  [["r", "b", "1"], 3],
  [["r", "b", "2"], 4],
  [["r", "c"], 5],
  [["r", "d"], 6],
  [["r", "d", "x"], 7],
  [["r", "e"], 8],
  [["ra"], 9],
  [["s", "b"], 10],
];

define("count(prefix, { start, end }) counts the keys of a range under the prefix", async (c) => {
  const store = await c.open();
  await seed(store, scramble(RANGE_SEED));
  same(await store.count(["r"], { start: ["r", "b"], end: ["r", "d"] }), 4, "b, b/1, b/2, c");
  same(await store.count(["r"], { start: ["r", "b", "2"] }), 5, "from b/2 to the end of r");
  same(await store.count(["r"], { end: ["r", "b"] }), 1, "up to b (exclusive): only a");
  same(await store.count(["r"], {}), 8, "empty bounds: the whole prefix");
  same(await store.count([], { start: ["r", "e"], end: ["s"] }), 2, "r/e and ra, no prefix");
  same(await store.count(["r"], { start: ["a"], end: ["z"] }), 8, "bounds wider than the prefix");
  same(await store.count(["r"], { start: ["r", "d"], end: ["r", "b"] }), 0, "start after end");
  same(await store.count(["r"], { start: ["s"] }), 0, "bounds outside the prefix");
});

define("count() with bounds skips expired entries", async (c) => {
  const store = await c.open();
  await store.atomic().set(["t", "1"], 1).set(["t", "2"], 2, { expireIn: 5 }).set(["t", "3"], 3)
    .commit();
  c.clock.advance(5);
  same(await store.count(["t"], { start: ["t", "1"], end: ["t", "3"] }), 1, "t/2 expired");
});

define("clear(prefix, { start, end }) deletes a range only and returns how many", async (c) => {
  const store = await c.open();
  await seed(store, scramble(RANGE_SEED));
  same(
    await store.clear(["r"], { start: ["r", "b"], end: ["r", "d"] }),
    4,
    "clear() of b..d returns how many it deleted",
  );
  same(
    await listKeys(store),
    [["r"], ["r", "a"], ["r", "d"], ["r", "d", "x"], ["r", "e"], ["ra"], ["s", "b"]],
    "keys after clearing b..d: everything outside the range stays",
  );
  same(await store.clear(["r"], { start: ["r", "d", "x"] }), 2, "clear() from d/x to the end");
  same(await store.clear(["r"], { end: ["r", "a"] }), 0, "clear() of an empty range");
  same(
    await listKeys(store),
    [["r"], ["r", "a"], ["r", "d"], ["ra"], ["s", "b"]],
    "keys after clearing from d/x",
  );
});

define("clear() with bounds counts only live entries and removes expired ones", async (c) => {
  const store = await c.open();
  await store.atomic().set(["t", "1"], 1).set(["t", "2"], 2, { expireIn: 5 }).set(["t", "3"], 3)
    .commit();
  c.clock.advance(5);
  same(await store.clear(["t"], { start: ["t", "2"] }), 1, "t/2 expired, t/3 live");
  same(await listKeys(store), [["t", "1"]], "keys after clear()");
  const again = await store.set(["t", "2"], 2, { ifVersion: null });
  check(again.ok, "the expired, cleared key is absent");
});

define("clear() and count() refuse bounds that are not keys", async (c) => {
  const store = await c.open();
  for (
    const bounds of [
      { start: "a" },
      { end: [1] },
      { start: [], end: ["x"] },
      null,
    ] as unknown as KeyBounds[]
  ) {
    await fails(() => store.clear(["r"], bounds), TypeError, `clear() with ${show(bounds)}`);
    await fails(() => store.count(["r"], bounds), TypeError, `count() with ${show(bounds)}`);
  }
  let threw = false;
  try {
    store.atomic().clear(["r"], { start: "a" } as unknown as KeyBounds);
  } catch (err) {
    threw = err instanceof TypeError;
  }
  check(threw, "atomic().clear() with a bad start throws a TypeError");
});

define("atomic().clear() deletes a range together with the other writes", async (c) => {
  const store = await c.open();
  await seed(store, scramble(RANGE_SEED));
  const result = await store.atomic()
    .clear(["r"], { start: ["r", "b"], end: ["r", "d"] })
    .set(["s", "c"], 11)
    .delete(["r", "a"])
    .commit();
  check(result.ok, "the commit succeeds");
  same(
    await listKeys(store),
    [["r"], ["r", "d"], ["r", "d", "x"], ["r", "e"], ["ra"], ["s", "b"], ["s", "c"]],
    "keys after the commit",
  );
  same((await store.get(["s", "c"]))?.version, result.version, "the set has the commit's version");
});

define("atomic().clear() with a failing check deletes nothing", async (c) => {
  const store = await c.open();
  await seed(store, scramble(RANGE_SEED));
  const before = await listKeys(store);
  const result = await store.atomic()
    .check(["r", "a"], null)
    .clear(["r"])
    .commit();
  check(!result.ok, "the check of an existing key as absent fails");
  same(result.ok ? [] : result.conflicts, [["r", "a"]], "the conflicting key");
  same(await listKeys(store), before, "every key is still there");
});

define("atomic().clear() applies in order: a set before it in the range is deleted", async (c) => {
  const store = await c.open();
  await seed(store, scramble(RANGE_SEED));
  const result = await store.atomic()
    .set(["r", "b", "3"], "before")
    .set(["r", "z"], "outside")
    .clear(["r", "b"])
    .set(["r", "b", "4"], "after")
    .commit();
  check(result.ok, "the commit succeeds");
  same(
    await listKeys(store, { prefix: ["r", "b"] }),
    [["r", "b", "4"]],
    "under r/b only the set after the clear stays",
  );
  same((await store.get(["r", "z"]))?.value, "outside", "a set outside the range stays");
  same((await store.get(["r", "b"]))?.value, 2, "the prefix key itself is not cleared");
});

define("atomic().clear([]) empties the store in one commit", async (c) => {
  const store = await c.open();
  await seed(store, scramble(RANGE_SEED));
  check((await store.atomic().clear([]).set(["new"], 1).commit()).ok, "the commit succeeds");
  same(await listKeys(store), [["new"]], "only the key set after the clear");
});

define("purgeExpired() deletes expired entries, returns how many, keeps live ones", async (c) => {
  const store = await c.open();
  const start = c.clock.now();
  await store.atomic()
    .set(["a"], 1, { expireIn: 10 })
    .set(["b"], 2, { expireIn: 20 })
    .set(["c"], 3)
    .set(["d", "1"], 4, { expireIn: 10 })
    .set(["d", "2"], 5, { expireIn: 10 })
    .commit();
  same(await store.purgeExpired(), 0, "purgeExpired() before anything expired");
  c.clock.advance(10);
  same(await store.purgeExpired(), 3, "purgeExpired() after three entries expired");
  same(await store.purgeExpired(), 0, "purgeExpired() again");
  // Back in time, a purged entry stays gone (it was deleted, not just hidden).
  c.clock.set(start);
  same(await listKeys(store), [["b"], ["c"]], "keys after purging, seen from before the expiry");
  c.clock.set(start + 20);
  same(await store.purgeExpired(), 1, "purgeExpired() once the last expiring entry expired");
  same(await listKeys(store), [["c"]], "keys after the second purge");
});

define("purgeExpired() leaves a key rewritten after it expired", async (c) => {
  const store = await c.open();
  const start = c.clock.now();
  await store.set(["x"], "old", { expireIn: 10 });
  await store.set(["y"], "old", { expireIn: 10 });
  c.clock.advance(10);
  await store.set(["x"], "new");
  const purged = await store.purgeExpired();
  // y may already be gone if the backend drops expired entries as it writes.
  check(purged === 0 || purged === 1, `purgeExpired() may count only y, got ${purged}`);
  await expectValue(store, ["x"], "new", "the rewritten key");
  c.clock.set(start);
  same(await listKeys(store), [["x"]], "keys seen from before the expiry: y is deleted, x kept");
});

define("compact() keeps every entry and reports sizes", async (c) => {
  const store = await c.open();
  await seed(store, scramble(TEN).map((k, i) => [k, { i, pad: "x".repeat(100) }]));
  await store.clear(["k"]);
  await seed(store, [[["kept", "1"], 1], [["kept", "2"], { nested: [true] }]]);
  const before = await collect(store.list());
  const result = await store.compact();
  same(typeof result.supported, "boolean", "compact().supported");
  for (const field of ["bytesBefore", "bytesAfter"] as const) {
    check(
      Number.isFinite(result[field]) && result[field] >= 0,
      `compact().${field} must be a number >= 0, got ${show(result[field])}`,
    );
  }
  same(await collect(store.list()), before, "entries (keys, values, versions) after compact()");
  const after = await store.set(["kept", "1"], 2, { ifVersion: before[0].version });
  check(after.ok, "a version read before compact() still works for ifVersion");
});

// ---------------------------------------------------------------------------
// close()

define("store exposes name, plugin, location and capabilities", async (c) => {
  const store = await c.open();
  for (const field of ["name", "plugin", "location"] as const) {
    check(
      typeof store[field] === "string" && store[field] !== "",
      `store.${field} must be a non-empty string`,
    );
  }
  for (const cap of ["persistent", "expiry", "query", "count", "clear", "multiProcess"] as const) {
    same(typeof store.capabilities[cap], "boolean", `store.capabilities.${cap}`);
  }
});

define("after close(), every method throws StoreClosedError", async (c) => {
  const store = await c.open();
  await store.set(["a"], 1);
  const pending = store.atomic().set(["b"], 2);
  await store.close();
  const calls: [string, () => unknown][] = [
    ["get", () => store.get(["a"])],
    ["getMany", () => store.getMany([["a"]])],
    ["set", () => store.set(["a"], 2)],
    ["delete", () => store.delete(["a"])],
    ["list", () => collect(store.list())],
    ["count", () => store.count()],
    ["query", () => store.query()],
    ["atomic", () => store.atomic().set(["c"], 1).commit()],
    ["commit of an operation started before close", () => pending.commit()],
    ["clear", () => store.clear([])],
    ["purgeExpired", () => store.purgeExpired()],
    ["compact", () => store.compact()],
  ];
  for (const [name, call] of calls) {
    await fails(call, StoreClosedError, `${name}() after close()`);
  }
});

define("a list() iterator used after close() throws StoreClosedError", async (c) => {
  const store = await c.open();
  await seed(store, LETTERS.map((k) => [k, 1]));
  const iterator = store.list({ batchSize: 1 });
  const first = await iterator.next();
  same(first.done ? null : first.value.key, ["a"], "first entry before close()");
  await store.close();
  await fails(() => iterator.next(), StoreClosedError, "iterator.next() after close()");
});

define("close() twice is fine", async (c) => {
  const store = await c.open();
  await store.set(["a"], 1);
  await Promise.all([store.close(), store.close()]);
  await store.close();
});

define("await using closes the store", async (c) => {
  let escaped: Store | undefined;
  {
    await using store = await c.open();
    escaped = store;
    await store.set(["a"], 1);
  }
  await fails(() => escaped!.get(["a"]), StoreClosedError, "get() after the await using block");
});

// ---------------------------------------------------------------------------
// Persistence (run when the backend is persistent)

definePersistent(
  "persistence: entries, values and versions survive close and reopen",
  async (c) => {
    let store = await c.open();
    const values: [Key, JsonValue][] = [
      [["p", "a"], { nested: [1, "two", null, { three: true }] }],
      [["p", "b"], "😀 \u0000 é"],
      [["p", "c"], 3.25],
      [["p", "d"], null],
      [["p\u0000"], false],
    ];
    await seed(store, values.slice(0, 3));
    for (const [key, value] of values.slice(3)) await store.set(key, value);
    const before = await collect(store.list());
    store = await c.reopen(store);
    same(
      await collect(store.list()),
      before,
      "every entry (key, value, version, expiresAt) after reopen",
    );
    const cas = await store.set(["p", "a"], "updated", { ifVersion: before[0].version });
    check(cas.ok, "a version read before close must still work for ifVersion after reopen");
    differentVersions(
      [...new Set(before.map((e) => e.version)), cas.version],
      "versions after reopen",
    );
  },
);

definePersistent("persistence: expiry survives close and reopen", async (c) => {
  let store = await c.open();
  const start = c.clock.now();
  await store.set(["ttl"], "short", { expireIn: 60_000 });
  await store.set(["forever"], "long");
  store = await c.reopen(store);
  const ttl = await store.get(["ttl"]);
  check(
    ttl !== null,
    `an entry expiring at ${
      start + 60_000
    } must still be there after reopen (clock at ${c.clock.now()}); was the expiry checked against the system clock instead of the store's clock?`,
  );
  same(ttl.expiresAt, start + 60_000, "expiresAt after reopen");
  c.clock.advance(60_000);
  await expectAbsent(store, ["ttl"], "after expiry, in the reopened store");
  store = await c.reopen(store);
  await expectAbsent(store, ["ttl"], "an expired entry after a second reopen");
  await expectValue(store, ["forever"], "long", "an entry without expiry after two reopens");
});

definePersistent(
  "persistence: deletes, clears and atomic commits survive close and reopen",
  async (c) => {
    let store = await c.open();
    await seed(store, [[["a"], 1], [["b", "1"], 2], [["b", "2"], 3], [["c"], 4]]);
    await store.delete(["a"]);
    await store.clear(["b"]);
    await store.atomic().set(["d"], 5).delete(["c"]).commit();
    await store.atomic().check(["d"], null).set(["e"], 6).commit(); // fails: writes nothing
    store = await c.reopen(store);
    same(await listKeys(store), [["d"]], "keys after reopen");
    await expectValue(store, ["d"], 5, "an atomic set after reopen");
  },
);

// ---------------------------------------------------------------------------
// Bad input

const BAD_KEYS: [string, unknown][] = [
  ["a string", "a"],
  ["null", null],
  ["undefined", undefined],
  ["an object", { 0: "a" }],
  ["an empty array", []],
  ["a number element", ["a", 1]],
  ["a null element", [null]],
  ["a nested array", [["a"]]],
  ["a lone high surrogate", ["\ud800"]],
  ["a lone low surrogate", ["a\udc00b"]],
];

define("bad keys throw TypeError and write nothing", async (c) => {
  const store = await c.open();
  await store.set(["sentinel"], 1);
  for (const [label, bad] of BAD_KEYS) {
    const key = bad as Key;
    await fails(() => store.set(key, 1), TypeError, `set() with ${label} as key`);
    await fails(() => store.get(key), TypeError, `get() with ${label} as key`);
    await fails(() => store.delete(key), TypeError, `delete() with ${label} as key`);
    await fails(() => store.getMany([key]), TypeError, `getMany() with ${label} as key`);
    await fails(
      () => store.atomic().set(key, 1).commit(),
      TypeError,
      `atomic().set() with ${label} as key`,
    );
    await fails(
      () => store.atomic().check(key, null).commit(),
      TypeError,
      `atomic().check() with ${label} as key`,
    );
    await fails(
      () => store.atomic().delete(key).commit(),
      TypeError,
      `atomic().delete() with ${label} as key`,
    );
  }
  // As options, undefined means "not given" and [] means "every key".
  const badOptionKeys = BAD_KEYS.filter(([l]) => l !== "an empty array" && l !== "undefined");
  for (const [label, bad] of badOptionKeys) {
    const prefix = bad as Key;
    await fails(() => collect(store.list({ prefix })), TypeError, `list({ prefix }) with ${label}`);
    await fails(
      () => collect(store.list({ start: prefix })),
      TypeError,
      `list({ start }) with ${label}`,
    );
    await fails(
      () => collect(store.list({ end: prefix })),
      TypeError,
      `list({ end }) with ${label}`,
    );
    await fails(() => store.count(prefix), TypeError, `count() with ${label} as prefix`);
    await fails(() => store.clear(prefix), TypeError, `clear() with ${label} as prefix`);
    await fails(() => store.query({ prefix }), TypeError, `query() with ${label} as prefix`);
  }
  await fails(() => store.getMany("a" as unknown as Key[]), TypeError, "getMany() with a string");
  same(await listKeys(store), [["sentinel"]], "keys after all the bad calls");
});

define("clear() without a prefix throws TypeError instead of clearing everything", async (c) => {
  const store = await c.open();
  await store.set(["keep"], 1);
  await fails(() => (store.clear as (p?: Key) => Promise<number>)(), TypeError, "clear()");
  same(await store.count(), 1, "count() after clear() without a prefix");
});

function badValues(): [string, unknown][] {
  const cycle: Record<string, unknown> = { a: 1 };
  cycle.self = cycle;
  const arrayCycle: unknown[] = [1];
  arrayCycle.push({ back: arrayCycle });
  return [
    ["a function", () => 1],
    ["a symbol", Symbol("s")],
    ["a BigInt", 10n],
    ["undefined", undefined],
    ["undefined in an array", [1, undefined, 3]],
    // deno-lint-ignore no-sparse-arrays
    ["a hole in an array", [1, , 3]],
    ["a nested BigInt", { a: { b: [1, 2n] } }],
    ["a nested function", { a: { f() {} } }],
    ["an object cycle", cycle],
    ["an array cycle", arrayCycle],
    ["NaN", NaN],
    ["Infinity", Infinity],
    ["-Infinity", { n: -Infinity }],
    ["a Date", new Date(0)],
    ["a Map", new Map([["a", 1]])],
    [
      "a class instance",
      new (class Point {
        x = 1;
      })(),
    ],
    ["a Uint8Array", new Uint8Array([1])],
  ];
}

define("bad values throw TypeError and write nothing", async (c) => {
  const store = await c.open();
  await store.set(["sentinel"], "unchanged");
  for (const [label, value] of badValues()) {
    await fails(() => store.set(["sentinel"], value), TypeError, `set() of ${label}`);
    await fails(() => store.set(["new"], value), TypeError, `set() of ${label} at a new key`);
    await fails(
      () => store.atomic().set(["new"], 1).set(["new2"], value).commit(),
      TypeError,
      `atomic().set() of ${label}`,
    );
  }
  same(await listKeys(store), [["sentinel"]], "keys after all the bad values");
  await expectValue(store, ["sentinel"], "unchanged", "the sentinel after bad overwrites");
});

define("expireIn <= 0 throws RangeError and writes nothing", async (c) => {
  const store = await c.open();
  for (const expireIn of [0, -1, -Infinity, NaN]) {
    await fails(
      () => store.set(["x"], 1, { expireIn }),
      RangeError,
      `set() with expireIn ${expireIn}`,
    );
    await fails(
      () => store.atomic().set(["x"], 1, { expireIn }).commit(),
      RangeError,
      `atomic().set() with expireIn ${expireIn}`,
    );
  }
  same(await store.count(), 0, "count() after the rejected writes");
});

define("bad options throw TypeError or RangeError", async (c) => {
  const store = await c.open();
  await store.set(["a"], 1);
  await fails(() => collect(store.list({ limit: -1 })), RangeError, "list({ limit: -1 })");
  await fails(() => collect(store.list({ limit: 1.5 })), RangeError, "list({ limit: 1.5 })");
  await fails(() => store.query({ limit: -1 }), RangeError, "query({ limit: -1 })");
  await fails(() => store.query({ offset: -1 }), RangeError, "query({ offset: -1 })");
  await fails(
    () => store.query({ where: [{ path: "a", op: "like" as "eq", value: 1 }] }),
    TypeError,
    'query() with op "like"',
  );
  await fails(
    () => store.query({ where: [{ path: "a", op: "in", value: 1 }] }),
    TypeError,
    "query() with in and a non-array value",
  );
  await fails(
    () => store.set(["a"], 2, { ifVersion: 42 as unknown as string }),
    TypeError,
    "set() with a numeric ifVersion",
  );
  await fails(
    () => store.delete(["a"], { ifVersion: null as unknown as string }),
    TypeError,
    "delete() with ifVersion null",
  );
  await expectValue(store, ["a"], 1, "after the bad calls");
});
