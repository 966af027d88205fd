/**
 * Hooks over any store: before/after get, set and delete, and errors.
 *
 * @example
 * ```ts
 * import { withHooks } from "@flowstate/core/hooks";
 * import { openStore } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * const seen: string[] = [];
 * await using store = withHooks(await openStore({ plugin: "memory" }), {
 *   afterSet: (key) => void seen.push(key.join("/")),
 * });
 * await store.set(["a", "b"], 1);
 * assert.deepEqual(seen, ["a/b"]);
 * ```
 *
 * @module
 */
export {
  type HookMutation,
  type HookOperation,
  type StoreHooks,
  withHooks,
} from "./src/wrappers/hooks.ts";
