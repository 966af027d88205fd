/**
 * Conformance cases: the store's description, close(), and use after close().
 *
 * @module
 */
import { StoreClosedError } from "../../errors.ts";
import type { Store } from "../../store/types.ts";
import { check, collect, fails, LETTERS, same, seed } from "./_assert.ts";
import type { DefineCase } from "./_case.ts";

/** Registers the cases of this file with `define`, in the order of the report. */
export function defineCloseCases(define: DefineCase): void {
  define("store exposes name, plugin, location and capabilities", async (c) => {
    const store = await c.open();
    for (const field of ["name", "plugin", "location"] as const) {
      check(
        typeof store[field] === "string" && store[field] !== "",
        `store.${field} must be a non-empty string`,
      );
    }
    for (
      const cap of ["persistent", "expiry", "query", "count", "clear", "multiProcess"] as const
    ) {
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
    const paged = store.list({ batchSize: 1 });
    same((await paged.nextPage()).map((e) => e.key), [["a"]], "first page before close()");
    await store.close();
    await fails(() => iterator.next(), StoreClosedError, "iterator.next() after close()");
    await fails(() => paged.nextPage(), StoreClosedError, "iterator.nextPage() after close()");
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
}
