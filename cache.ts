/**
 * A read cache over any store: LRU, hit/miss statistics, write-through or
 * write-behind.
 *
 * @example
 * ```ts
 * import { cached } from "@flowstate/core/cache";
 * import { openStore } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * await using store = cached(await openStore({ plugin: "memory" }), { max: 100 });
 * await store.set(["a"], 1);
 * assert.equal((await store.get(["a"]))?.value, 1);
 * ```
 *
 * @module
 */
export {
  cached,
  type CachedStore,
  type CacheOptions,
  type CacheStats,
} from "./src/wrappers/cached.ts";
