/**
 * Conformance cases: the store under test against the memory plugin on the
 * same seeded random workload (see `_random.ts`). The memory plugin is the
 * reference; it is opened through the plugin loader, as any store is, with
 * the case's clock.
 *
 * @module
 */
import { openStore } from "../../plugin.ts";
import type { ListOptions, Store } from "../../store/types.ts";
import { collect, same, show } from "./_assert.ts";
import type { CaseRun, DefineCase } from "./_case.ts";
import { randomListWorkload, randomQueryWorkload, writeEntries } from "./_random.ts";

/**
 * The suite's query workload, smaller than the default so that every store
 * and wrapper runs it in well under a second. The SQL plugins' own tests run
 * the default 300 entries and 2,000 queries, and count how many their
 * driver answers natively.
 */
const QUERY_WORKLOAD = { entries: 100, queries: 300 };

/** A fresh memory store on the case's clock. The case closes it. */
function openReference(c: CaseRun): Promise<Store> {
  return openStore({ plugin: "memory" }, { clock: c.clock });
}

/** Registers the cases of this file with `define`, in the order of the report. */
export function defineDifferentialCases(define: DefineCase): void {
  define("list() matches the memory plugin on random ranges (differential)", async (c) => {
    const store = await c.open();
    const reference = await openReference(c);
    try {
      const { seed, entries, elapse, operations } = randomListWorkload();
      await writeEntries(store, entries);
      await writeEntries(reference, entries);
      c.clock.advance(elapse);
      const listed = async (s: Store, options: ListOptions) =>
        (await collect(s.list(options))).map((e) => [e.key, e.value]);
      for (const [n, options] of operations.entries()) {
        const what = `seed ${seed}, listing ${n}: list(${show(options)})`;
        const expected = await listed(reference, options);
        same(await listed(store, options), expected, what);
        // Resume from a cursor halfway through.
        const half = Math.floor(expected.length / 2);
        if (half > 0) {
          const iterator = store.list(options);
          for (let i = 0; i < half; i++) await iterator.next();
          const resumed = await listed(store, {
            ...options,
            cursor: iterator.cursor,
            limit: options.limit === undefined ? undefined : options.limit - half,
          });
          same(resumed, expected.slice(half), `${what}, resumed after ${half} entries`);
        }
        const prefix = options.prefix ?? [];
        same(
          await store.count(prefix),
          await reference.count(prefix),
          `seed ${seed}, listing ${n}: count(${show(prefix)})`,
        );
      }
    } finally {
      await reference.close();
    }
  });

  define(
    "query() matches the memory plugin on random data and queries (differential)",
    async (c) => {
      const store = await c.open();
      const reference = await openReference(c);
      try {
        const { seed, entries, elapse, operations } = randomQueryWorkload(QUERY_WORKLOAD);
        await writeEntries(store, entries);
        await writeEntries(reference, entries);
        c.clock.advance(elapse);
        for (const [n, query] of operations.entries()) {
          const expected = (await reference.query(query)).map((e) => [e.key, e.value]);
          const actual = (await store.query(query)).map((e) => [e.key, e.value]);
          same(actual, expected, `seed ${seed}, query ${n}: query(${show(query)})`);
        }
      } finally {
        await reference.close();
      }
    },
  );
}
