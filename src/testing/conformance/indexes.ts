/**
 * Conformance cases: declared indexes and full-text search. An indexed
 * query must answer exactly as a scan does (the memory plugin without
 * indexes is the reference) after random writes, overwrites, deletes and
 * expiries; search must find exactly the entries the reference rule finds.
 *
 * @module
 */
import { openStore } from "../../plugin.ts";
import { readPath } from "../../store/query.ts";
import { searchScore, searchTerms } from "../../store/indexes.ts";
import type {
  IndexDeclaration,
  JsonValue,
  Key,
  Query,
  SearchDeclaration,
  Store,
  WhereClause,
  WhereOp,
} from "../../store/types.ts";
import { check, collect, same, show } from "./_assert.ts";
import type { CaseRun, DefineCase } from "./_case.ts";
import { random, randomQueryWorkload, writeEntries } from "./_random.ts";

const INDEXES: IndexDeclaration[] = [
  { prefix: ["p"], path: "a" },
  { prefix: ["p"], path: ["b"] },
  { prefix: ["p"], path: "a.b" },
  { prefix: ["p"], path: ["x.y"] },
  { prefix: ["p", "q"], path: "c" },
  { prefix: ["z"], path: "a" },
  { prefix: [], path: "c" },
];

function openReference(c: CaseRun): Promise<Store> {
  return openStore({ plugin: "memory" }, { clock: c.clock });
}

function checkDeclared(store: Store, count: number, what: string): void {
  check(
    Array.isArray(store.indexes) && store.indexes.length === count,
    `${what}: the store has ${show(store.indexes?.length)} indexes, not the ${count} the case ` +
      `declared; the suite's open() must pass ctx.indexes and ctx.search in the spec to openStore`,
  );
}

/** Queries that fit each index: eq, ranges and sorts with operands from the data. */
function indexQueries(values: readonly JsonValue[], seed: number): Query[] {
  const rand = random(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const ops: WhereOp[] = ["eq", "eq", "lt", "lte", "gt", "gte"];
  const queries: Query[] = [];
  for (const index of INDEXES) {
    const path = index.path;
    const prefixes: Key[] = [index.prefix, [...index.prefix, "q"]];
    for (let i = 0; i < 25; i++) {
      const doc = pick(values);
      let operand = readPath(doc, typeof path === "string" ? path.split(".") : [...path]);
      if (operand === undefined || rand() < 0.2) operand = pick([1, 2.5, "apple", "", null, true]);
      const where: WhereClause[] = [{ path, op: pick(ops), value: operand as JsonValue }];
      if (rand() < 0.3) where.push({ path: "b", op: "exists" });
      const query: Query = { prefix: pick(prefixes), where };
      if (rand() < 0.4) query.orderBy = { path, direction: rand() < 0.5 ? "asc" : "desc" };
      if (rand() < 0.4) query.limit = Math.floor(rand() * 5) + 1;
      if (rand() < 0.2) query.offset = Math.floor(rand() * 3);
      queries.push(query);
    }
    for (const direction of ["asc", "desc"] as const) {
      queries.push({ prefix: index.prefix, orderBy: { path, direction }, limit: 7 });
      queries.push({ prefix: index.prefix, orderBy: [{ path, direction }, { path: "b" }] });
    }
  }
  return queries;
}

async function sameAnswers(
  store: Store,
  reference: Store,
  queries: readonly Query[],
  what: string,
): Promise<void> {
  for (const [n, query] of queries.entries()) {
    const expected = (await reference.query(query)).map((e) => [e.key, e.value]);
    const actual = (await store.query(query)).map((e) => [e.key, e.value]);
    same(actual, expected, `${what}, query ${n}: query(${show(query)})`);
  }
}

const WORDS = ["apple", "Banana", "cherry", "date", "elder", "fig", "grape", "ÉTÉ", "x1", "42"];

function randomText(rand: () => number): string {
  const n = Math.floor(rand() * 6);
  return Array.from({ length: n }, () => WORDS[Math.floor(rand() * WORDS.length)]).join(
    rand() < 0.5 ? " " : ", ",
  );
}

function randomNote(rand: () => number): JsonValue {
  const r = rand();
  if (r < 0.05) return randomText(rand);
  if (r < 0.1) return [randomText(rand), 3, { deep: randomText(rand) }];
  const note: Record<string, JsonValue> = { title: randomText(rand), n: Math.floor(rand() * 9) };
  if (rand() < 0.7) note.body = randomText(rand);
  if (rand() < 0.3) note.tags = [randomText(rand), randomText(rand)];
  if (rand() < 0.2) note.other = randomText(rand);
  return note;
}

/** Texts whose words a database's own tokenizer cuts or folds differently from the reference. */
const SCRIPT_TEXTS = [
  "ΟΔΟΣ",
  "οδος",
  "ΣΊΣΥΦΟΣ και ΟΔΥΣΣΕΥΣ",
  "İstanbul İZMİR",
  "ıspanak IŞIK",
  "cafe\u0301 noir",
  "caf\u00e9 cr\u00e8me",
  "Straße STRASSE Москва МОСКВА",
  "mixedΑλφαScripts латиница42",
  "A1b2 \u0663\u0664\u0665 \u00bd Ⅻ ⅻ",
  "東京タワー 中文テキスト 한국어",
  "😀 party🎉time ❤️love",
  "\ue000x\ue001 \u{f0000}priv",
  "ǅemal ǆ ﬁle ＡＢＣ ⓐⓑ",
  "a\u0308ha e\u0301te\u0301",
];

/** Queries besides the texts themselves. */
const SCRIPT_QUERIES = [
  "οδοσ",
  "Οδος",
  "σισυφος",
  "istanbul",
  "i stanbul",
  "izmi̇r",
  "IŞIK",
  "cafe",
  "café",
  "strasse",
  "москва",
  "alfa",
  "mixedαλφαscripts",
  "١٢٣ ٣٤٥",
  "ⅻ",
  "東京タワー",
  "party time",
  "abc",
  "ǆemal",
  "ete",
  "te",
];

/** The reference answer of a search: matching keys in key order. */
async function expectedHits(
  reference: Store,
  text: string,
  prefix: Key,
  fields: string[][] | null,
): Promise<string[]> {
  const terms = searchTerms(text);
  const out: string[] = [];
  for (const e of await collect(reference.list({ prefix }))) {
    if (searchScore(e.value, terms, fields) !== undefined) out.push(show(e.key));
  }
  return out;
}

/**
 * Registers the cases of this file with `define` (and the ones that close and
 * reopen the store with `definePersistent`), in the order of the report.
 */
export function defineIndexCases(define: DefineCase, definePersistent: DefineCase = define): void {
  define(
    "indexes: indexed queries answer like a scan after random writes, deletes and expiries (differential)",
    async (c) => {
      const store = await c.open({ indexes: INDEXES });
      checkDeclared(store, INDEXES.length, "indexes");
      const reference = await openReference(c);
      try {
        const { seed, entries, operations } = randomQueryWorkload({
          seed: 777,
          entries: 150,
          queries: 60,
        });
        await writeEntries(store, entries);
        await writeEntries(reference, entries);
        const values = entries.map((e) => e.value);
        const queries = [...indexQueries(values, seed), ...operations];
        await sameAnswers(store, reference, queries, `seed ${seed}, after writes`);

        // Overwrite, delete and let some expire; the indexes must follow.
        const rand = random(seed + 1);
        for (const [i, e] of entries.entries()) {
          const r = rand();
          if (r < 0.2) {
            await store.delete(e.key);
            await reference.delete(e.key);
          } else if (r < 0.45) {
            const value = values[(i * 7) % values.length];
            const options = rand() < 0.3 ? { expireIn: 500 } : undefined;
            await store.set(e.key, value, options);
            await reference.set(e.key, value, options);
          }
        }
        const op = store.atomic().clear(["p", "q"], { start: ["p", "q", "k150"] });
        await op.commit();
        await reference.atomic().clear(["p", "q"], { start: ["p", "q", "k150"] }).commit();
        c.clock.advance(1000);
        await sameAnswers(store, reference, queries, `seed ${seed}, after changes and expiry`);
        await store.purgeExpired();
        await store.clear(["z"]);
        await reference.clear(["z"]);
        await sameAnswers(store, reference, queries, `seed ${seed}, after purge and clear`);
      } finally {
        await reference.close();
      }
    },
  );

  define(
    "indexes: an index on an escaped object key matches the key as written, after a poisoning parse",
    async (c) => {
      // V8's JSON.parse (nodejs/node#63785) may read `{"st":1,"a\n":2}` as `{ st: 1, "a\\": 2 }`
      // after a parse of `{"st":1,"a\\":1}`: an index fed by such a parse misses the entry.
      const path = ["a\n"];
      const store = await c.open({ indexes: [{ prefix: ["esc"], path }] });
      const a = { st: 1, "a\\": 1 };
      const b = { st: 1, "a\n": 2 };
      const poison = (): void => void JSON.parse(JSON.stringify(a));
      poison();
      await store.set(["esc", "a"], a);
      poison();
      await store.set(["esc", "b"], b);
      for (const op of ["eq", "gte"] as const) {
        poison();
        const found = await store.query({ prefix: ["esc"], where: [{ path, op, value: 2 }] });
        same(found.map((e) => e.key), [["esc", "b"]], `query() where "a\\n" ${op} 2`);
      }
    },
  );

  define("indexes: store.indexes and explain() name the index a query uses", async (c) => {
    const store = await c.open({ indexes: INDEXES });
    checkDeclared(store, INDEXES.length, "indexes");
    same(
      store.indexes.map((i) => [i.prefix, i.path]),
      [[["p"], ["a"]], [["p"], ["b"]], [["p"], ["a", "b"]], [["p"], ["x.y"]], [["p", "q"], ["c"]], [
        ["z"],
        ["a"],
      ], [[], ["c"]]],
      "store.indexes (prefix and path)",
    );
    const names = new Set(store.indexes.map((i) => i.name));
    check(names.size === INDEXES.length, `index names are distinct: ${show([...names])}`);
    const index = store.indexes.find((i) => i.path.join(".") === "a" && i.prefix[0] === "p")!;
    const plan = await store.explain({
      prefix: ["p"],
      where: [{ path: "a", op: "eq", value: "x" }],
    });
    check(typeof plan.scan === "boolean" && Array.isArray(plan.detail), `a plan: ${show(plan)}`);
    if (index.native) {
      same(plan.index, index.name, `explain() of an eq on a native index: ${show(plan)}`);
      same(plan.scan, false, `explain() of an eq on a native index scans nothing`);
    } else if (plan.by === "core") {
      // Index entries kept by the core (a driver without native indexes).
      same(plan.index, index.name, `explain() of an eq on the core's index entries: ${show(plan)}`);
      same(plan.scan, false, `explain() of an eq on the core's index entries scans nothing`);
    } else {
      same(plan.index, null, `explain() without native indexes names none: ${show(plan)}`);
      same(plan.scan, true, `explain() without native indexes scans`);
    }
    const unindexed = await store.explain({
      prefix: ["p"],
      where: [{ path: "zzz", op: "eq", value: 1 }],
    });
    same(unindexed.index, null, `explain() of an unindexed path: ${show(unindexed)}`);
    same(unindexed.scan, true, "an unindexed query scans");
  });

  define(
    "search: finds exactly the entries holding every word, after writes, deletes and expiry (differential)",
    async (c) => {
      const declared: SearchDeclaration = { prefix: ["notes"], fields: ["title", "body", "tags"] };
      const store = await c.open({ search: declared });
      const reference = await openReference(c);
      try {
        const rand = random(99);
        const keys: Key[] = [];
        const writeBoth = async (key: Key, value: JsonValue, expireIn?: number) => {
          const options = expireIn === undefined ? undefined : { expireIn };
          await store.set(key, value, options);
          await reference.set(key, value, options);
        };
        for (let i = 0; i < 120; i++) {
          const key = [rand() < 0.85 ? "notes" : "other", rand() < 0.3 ? "deep" : "top", `n${i}`];
          keys.push(key);
          await writeBoth(key, randomNote(rand), rand() < 0.1 ? 500 : undefined);
        }
        const fieldsOf = (f: string[] | undefined) =>
          f === undefined ? [["title"], ["body"], ["tags"]] : f.map((x) => [x]);
        const searches: { text: string; prefix?: Key; fields?: string[] }[] = [];
        for (let i = 0; i < 40; i++) {
          const text = randomText(rand) || "apple";
          const s: (typeof searches)[number] = { text };
          if (rand() < 0.3) s.prefix = ["notes", "deep"];
          if (rand() < 0.3) s.fields = rand() < 0.5 ? ["title"] : ["body", "tags"];
          searches.push(s);
        }
        searches.push({ text: "APPLE" }, { text: "été" }, { text: "x1 42" });
        const compare = async (what: string) => {
          for (const [n, s] of searches.entries()) {
            const prefix = s.prefix ?? ["notes"];
            const expected = await expectedHits(reference, s.text, prefix, fieldsOf(s.fields));
            const hits = await store.search(s.text, {
              prefix: s.prefix,
              fields: s.fields,
              limit: 1000,
            });
            same(
              hits.map((h) => show(h.key)).sort(),
              [...expected].sort(),
              `${what}, search ${n}: search(${show(s.text)}, ${show(s)})`,
            );
            for (let i = 1; i < hits.length; i++) {
              check(
                hits[i - 1].score >= hits[i].score,
                `${what}, search ${n}: hits are best first (scores ${
                  show(hits.map((h) => h.score))
                })`,
              );
            }
            for (const h of hits) {
              same(h, { ...(await store.get(h.key))!, score: h.score }, "a hit is the entry");
            }
            const limited = await store.search(s.text, {
              prefix: s.prefix,
              fields: s.fields,
              limit: 2,
            });
            same(limited.length, Math.min(2, expected.length), `${what}, search ${n} with limit 2`);
          }
        };
        await compare("after writes");
        for (const key of keys) {
          const r = rand();
          if (r < 0.2) {
            await store.delete(key);
            await reference.delete(key);
          } else if (r < 0.5) {
            await writeBoth(key, randomNote(rand), rand() < 0.2 ? 300 : undefined);
          }
        }
        c.clock.advance(600);
        await compare("after overwrites, deletes and expiry");
        await store.clear(["notes", "deep"]);
        await reference.clear(["notes", "deep"]);
        await compare("after clear");
      } finally {
        await reference.close();
      }
    },
  );

  define(
    "search: words of every script are cut as the reference cuts them, on every backend (an entry is found by its own text)",
    async (c) => {
      const store = await c.open({ search: { prefix: ["w"] } });
      const reference = await openReference(c);
      try {
        for (const [i, text] of SCRIPT_TEXTS.entries()) {
          const value: JsonValue = i % 3 === 0
            ? text
            : i % 3 === 1
            ? { t: text }
            : [1, { t: text }];
          await store.set(["w", `v${i}`], value);
          await reference.set(["w", `v${i}`], value);
        }
        for (const [i, text] of [...SCRIPT_TEXTS, ...SCRIPT_QUERIES].entries()) {
          if (searchTerms(text).length === 0) continue;
          const expected = await expectedHits(reference, text, ["w"], null);
          if (i < SCRIPT_TEXTS.length) {
            check(
              expected.includes(show(["w", `v${i}`])),
              `the reference finds ${show(text)} by its own text`,
            );
          }
          const hits = await store.search(text, { limit: 1000 });
          same(hits.map((h) => show(h.key)).sort(), [...expected].sort(), `search(${show(text)})`);
        }
      } finally {
        await reference.close();
      }
    },
  );

  define(
    "search: text equal in Unicode NFKC finds each other (NFD and NFC, full-width and ASCII, ligatures), both ways",
    async (c) => {
      const store = await c.open({ search: { prefix: ["u"] } });
      const values: Record<string, JsonValue> = {
        nfd: "cafe\u0301 cre\u0300me", // decomposed accents
        nfc: { t: "caf\u00e9 br\u00fbl\u00e9e" }, // composed
        wide: ["\uff21\uff22\uff23\u3000\uff44\uff45\uff46\uff11\uff12"], // "ＡＢＣ", an ideographic space, "ｄｅｆ１２"
        ascii: { t: "xyz 42" },
        ligature: "\ufb01le \ufb02ow", // ﬁle ﬂow
        letters: "office",
        greek: "\u039d\u03a5\u0342\u039d", // ΝΥ͂Ν: a capital and a mark that lower-case to ῦ
      };
      for (const [k, v] of Object.entries(values)) await store.set(["u", k], v);
      const cases: [string, string[], string][] = [
        ["caf\u00e9", ["nfc", "nfd"], "NFC text finds the NFD value (and the NFC one)"],
        ["CAF\u00c9", ["nfc", "nfd"], "in capitals too"],
        ["cre\u0300me", ["nfd"], "NFD text finds the NFD value"],
        ["cr\u00e8me", ["nfd"], "NFC text finds the NFD value"],
        ["bru\u0302le\u0301e", ["nfc"], "NFD text finds the NFC value"],
        ["cafe", [], "accents are kept"],
        ["abc", ["wide"], "ASCII text finds the full-width value"],
        ["DEF12", ["wide"], "ASCII capitals find full-width lower case and digits"],
        [
          "\uff58\uff59\uff5a\u3000\uff14\uff12",
          ["ascii"],
          "full-width text finds the ASCII value",
        ],
        ["file flow", ["ligature"], "letters find the ligatures"],
        ["o\ufb03ce", ["letters"], "a ligature finds the letters"],
        ["\u03bd\u1fe6\u03bd", ["greek"], "νῦν finds ΝΥ͂Ν"],
        ["\u039d\u03a5\u0342\u039d", ["greek"], "ΝΥ͂Ν finds itself"],
      ];
      for (const [text, expected, what] of cases) {
        const hits = await store.search(text, { limit: 100 });
        same(
          hits.map((h) => h.key[1]).sort(),
          expected,
          `search(${show(text)}): ${what} (words are cut from the text in Unicode NFKC, ` +
            `lower-cased, and in NFKC again)`,
        );
      }
    },
  );

  define("search: refuses text without words and fields that are not declared", async (c) => {
    const store = await c.open({ search: { prefix: ["notes"], fields: ["title"] } });
    await store.set(["notes", "a"], { title: "hello world", body: "hidden words" });
    same(
      (await store.search("HELLO")).map((h) => h.key),
      [["notes", "a"]],
      "search is case-insensitive",
    );
    same(await store.search("hidden"), [], "undeclared fields are not searched");
    for (
      const [text, options, pattern] of [
        ["  ,; ", undefined, /no words/],
        ["hello", { fields: ["body"] }, /not indexed for search/],
        ["hello", { limit: 0 }, /limit/],
      ] as const
    ) {
      let error: unknown;
      try {
        await store.search(text, options);
      } catch (err) {
        error = err;
      }
      check(
        error instanceof Error && pattern.test(error.message),
        `search(${show(text)}, ${show(options)}) rejects with ${pattern} (got ${show(error)})`,
      );
    }
  });

  definePersistent(
    "indexes: writes by a program that opens the store without the declaration keep the indexes exact",
    async (c) => {
      const reference = await openReference(c);
      try {
        const { seed, entries, operations } = randomQueryWorkload({
          seed: 919,
          entries: 120,
          queries: 40,
        });
        const both = async (write: (s: Store) => Promise<unknown>) => {
          await write(store);
          await write(reference);
        };
        let store = await c.open({ indexes: INDEXES });
        checkDeclared(store, INDEXES.length, "indexes");
        await both((s) => writeEntries(s, entries.slice(0, 60)));
        await both((s) => s.set(["p", "order1"], { a: "open" }));
        // Another program opens the same store without the `indexes` option and writes to it.
        store = await c.reopen(store);
        await both((s) => s.set(["p", "order1"], { a: "shipped" }));
        await both((s) => s.set(["p", "order2"], { a: "open" }));
        await both((s) => writeEntries(s, entries.slice(60)));
        const values = entries.map((e) => e.value);
        const rand = random(seed + 2);
        for (const [i, e] of entries.entries()) {
          const r = rand();
          if (r < 0.2) await both((s) => s.delete(e.key));
          else if (r < 0.5) await both((s) => s.set(e.key, values[(i * 5) % values.length]));
        }
        await both((s) => s.atomic().clear(["p", "q"], { start: ["p", "q", "k100"] }).commit());
        await both((s) => s.clear(["z"]));
        // The declaring program opens it again: its indexed queries see every write.
        await store.close();
        store = await c.open({ indexes: INDEXES });
        same(
          (await store.query({ prefix: ["p"], where: [{ path: "a", op: "eq", value: "open" }] }))
            .map((e) => e.key),
          (await reference.query({
            prefix: ["p"],
            where: [{ path: "a", op: "eq", value: "open" }],
          }))
            .map((e) => e.key),
          `query(a = "open") after another program set order1 to "shipped" and order2 to "open"`,
        );
        await sameAnswers(
          store,
          reference,
          [...indexQueries(values, seed), ...operations],
          `seed ${seed}, after writes by a store opened without the declaration`,
        );
      } finally {
        await reference.close();
      }
    },
  );
}
