/** `GET /api/stores/{store}/changes`: a store's change feed over HTTP. */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Change } from "../mod.ts";
import { documented, withServed } from "./_serve.ts";

type Page = { changes: Change[]; lastSeq: number; next?: number };

Deno.test("serve: GET /api/stores/{store}/changes pages through the feed, by prefix, after since", async () => {
  await withServed((dir) => ({
    main: { plugin: "sqlite", path: join(dir, "state.db"), changes: { keep: "30d" } },
    plain: { plugin: "memory" },
  }), async ({ request, runtime }) => {
    const store = await runtime.store("main");
    const before = (await store.feedInfo()).lastSeq; // the server's own records may be here
    for (let i = 0; i < 5; i++) await store.set(["feed", String(i)], i);
    await store.set(["elsewhere"], "x");
    await store.delete(["feed", "0"]);

    const first = await documented<Page>(
      "GET",
      "/api/stores/{store}/changes",
      await request(`/api/stores/main/changes?prefix=feed&since=${before}&limit=4`),
    );
    assert.deepEqual(first.changes.map((c) => [c.op, c.key]), [
      ["set", ["feed", "0"]],
      ["set", ["feed", "1"]],
      ["set", ["feed", "2"]],
      ["set", ["feed", "3"]],
    ]);
    assert.equal(first.next, before + 4);
    const second = await documented<Page>(
      "GET",
      "/api/stores/{store}/changes",
      await request(`/api/stores/main/changes?prefix=feed&since=${first.next}&limit=4`),
    );
    assert.deepEqual(second.changes.map((c) => [c.seq - before, c.op, c.key.join("/")]), [
      [5, "set", "feed/4"],
      [7, "delete", "feed/0"],
    ]);
    assert.equal(second.next, undefined, "the last page has no next");

    const plain = await request("/api/stores/plain/changes");
    assert.equal(plain.status, 400);
    assert.match(
      (await plain.json()).error.message,
      /add `changes: \{ keep: 30d \}` to stores\.plain in flowstate\.yaml/,
    );
    const bad = await request("/api/stores/main/changes?since=-1");
    assert.equal(bad.status, 400);
    await bad.body?.cancel();
    // No queue worker: its registry entry's heartbeats are writes of the records store, which
    // would take sequence numbers between the test's own.
  }, { worker: false });
});
