/**
 * Listing the distinct key elements right under a prefix (the flows that
 * have state, the flows that have runs) without reading every key: a skip
 * scan, one one-entry listing per child.
 *
 * @module
 */
import type { Key, Store } from "./types.ts";

/**
 * The distinct key elements right under `prefix`, in key order, found by
 * skipping from one to the next: after child `c`, the listing restarts at
 * `c + "\0"`, the smallest element after `c` in code-point order, so each
 * child costs one seek however many keys it holds.
 *
 * @example
 * ```ts
 * import { openStore } from "@flowstate/core";
 * import { childNames } from "./children.ts";
 * import assert from "node:assert/strict";
 * await using store = await openStore({ plugin: "memory" });
 * for (const key of [["f", "a", "1"], ["f", "a", "2"], ["f", "b", "1"], ["g", "c"]]) {
 *   await store.set(key, 1);
 * }
 * assert.deepEqual(await Array.fromAsync(childNames(store, ["f"])), ["a", "b"]);
 * ```
 */
export async function* childNames(store: Store, prefix: Key): AsyncGenerator<string> {
  let start: Key | undefined;
  for (;;) {
    let next: string | undefined;
    for await (const e of store.list({ prefix, start, limit: 1 })) next = e.key[prefix.length];
    if (next === undefined) return;
    yield next;
    start = [...prefix, `${next}\0`];
  }
}
