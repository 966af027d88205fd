// A plugin written against 0.2 imported the driver contract from the package root.
// Those names stay there (deprecated) until 0.4: this file type-checks only if they do.
import {
  type ClearRange,
  type CommitRequest,
  compareKeys,
  definePlugin,
  type DriverCommitResult,
  type KeyRange,
  type Mutation,
  type NormalizedQuery,
  openStore,
  type RawEntry,
  type StoreDriver,
} from "../mod.ts";
import * as plugin from "../plugin.ts";
import assert from "node:assert/strict";
import { z } from "zod";

/** A driver that keeps the last entry written, and only that one. */
class LastEntryDriver implements StoreDriver {
  readonly location = "memory (last entry)";
  #entry: RawEntry | null = null;
  get(key: readonly string[]): RawEntry | null {
    return this.#entry && compareKeys([...key], this.#entry.key) === 0 ? this.#entry : null;
  }
  *list(range: KeyRange): Iterable<RawEntry> {
    const prefix = range.prefix ?? [];
    if (this.#entry && prefix.every((part, i) => this.#entry!.key[i] === part)) yield this.#entry;
  }
  commit(request: CommitRequest): DriverCommitResult {
    for (const m of request.mutations as Mutation[]) {
      if (m.type === "set") {
        this.#entry = { key: m.key, value: m.value, version: request.version, expiresAt: null };
      }
    }
    return { ok: true };
  }
  close(): void {}
}

Deno.test("a 0.2 plugin that imports the driver contract from the package root still works", async () => {
  const lastEntry = definePlugin({
    name: "last-entry",
    optionsSchema: z.strictObject({}),
    open: () => new LastEntryDriver(),
  });
  await using store = await openStore({ plugin: lastEntry });
  await store.set(["a"], 1);
  assert.equal((await store.get(["a"]))?.value, 1);
  // The same functions as the new entry point, not copies.
  assert.equal(compareKeys, plugin.compareKeys);
  const unused: [ClearRange?, NormalizedQuery?] = [];
  assert.equal(unused.length, 0);
});
