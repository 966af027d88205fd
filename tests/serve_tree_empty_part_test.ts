/**
 * The key tree (`GET /api/stores/{store}/children`) of a store holding a key
 * whose first part is empty (`[""]`, which `PUT …/entry?key=` makes): the
 * empty part is listed like any other and the parts after it follow, a page
 * at a time too. Stepping past it used to start the next list from ["\u0000"],
 * which the store refuses (reserved for internal keys): every listing of the
 * root, and so the inspector's State view, answered 500.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { ConfigObject } from "../mod.ts";
import { documented, withServed } from "./_serve.ts";

const SQLITE = (dir: string): ConfigObject["stores"] => ({
  main: { plugin: "sqlite", path: join(dir, "state.db") },
});
const PATTERN = "/api/stores/{store}/children";
type Children = { children: { part: string; isEntry: boolean }[]; cursor?: string };

Deno.test("serve: the key tree lists an empty first key part and the parts after it", async () => {
  await withServed(SQLITE, async ({ runtime, request }) => {
    const store = await runtime.store("main");
    for (const key of [[""], ["", "x"], ["a"], ["b", "c"]]) await store.set(key, 1);
    const all = await documented<Children>(
      "GET",
      PATTERN,
      await request("/api/stores/main/children"),
    );
    // (The store holds the records too, under "flowstate".)
    assert.deepEqual(all.children.map((c) => c.part), ["", "a", "b", "flowstate"]);
    assert.equal(all.children[0].isEntry, true);
    // A page at a time: the cursor after the empty part leads on to the next.
    const parts: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await documented<Children>(
        "GET",
        PATTERN,
        await request(`/api/stores/main/children?limit=1${cursor ? `&cursor=${cursor}` : ""}`),
      );
      parts.push(...page.children.map((c) => c.part));
      cursor = page.cursor;
    } while (cursor !== undefined);
    assert.deepEqual(parts, ["", "a", "b", "flowstate"]);
    // Under the empty part, its children.
    const under = await documented<Children>(
      "GET",
      PATTERN,
      await request("/api/stores/main/children?prefix="),
    );
    assert.deepEqual(under.children.map((c) => c.part), ["x"]);
  });
});
