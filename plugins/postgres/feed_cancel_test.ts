/**
 * A write to a postgres store that keeps a change feed, given a signal, that
 * waits for its turn behind another feed commit (feed commits of a store go
 * one statement at a time, under the head's lock): when its signal aborts it
 * rejects at once and writes nothing, neither the entry nor a feed entry.
 * Before, the signal was dropped on the way (the core did not hand it to the
 * feed table), and the write went through once the one ahead of it was done.
 */
import assert from "node:assert/strict";
import { openStore } from "../../mod.ts";
import {
  dropTestSchema,
  newTable,
  pgTest,
  SCHEMA,
  settlesWithin,
  untilWaitingOnLock,
  withAdmin,
} from "./_test_utils.ts";

pgTest(
  "postgres with a change feed: a write waiting behind another feed commit is given up when its signal aborts, writing nothing",
  async (url) => {
    const table = newTable("feed_cancel");
    const spec = {
      plugin: "postgres",
      url,
      schema: SCHEMA,
      table,
      lockTimeout: 0,
      changes: { keep: "30d" },
    };
    await using store = await openStore(spec as { plugin: string });
    await store.set(["ready"], true); // the feed's table and function are made
    await withAdmin(url, (watcher) =>
      withAdmin(url, async (admin) => {
        const holder = await admin.reserve();
        let ahead: Promise<unknown> | undefined;
        try {
          await holder.unsafe("BEGIN");
          await holder.unsafe(`LOCK TABLE "${SCHEMA}"."${table}" IN ACCESS EXCLUSIVE MODE`);
          // The commit ahead: on its way, waiting for the table.
          ahead = store.set(["ahead"], 1);
          await untilWaitingOnLock(watcher, table);
          // The one behind it waits for its turn in this process; given up there.
          const controller = new AbortController();
          const behind = store.set(["behind"], 2, { signal: controller.signal });
          controller.abort(new Error("the caller gave up"));
          const err = await settlesWithin(
            behind.then(() => undefined, (e) => e as Error),
            10_000,
            "the write given up",
          );
          assert.ok(err instanceof Error, "the write given up went through");
          assert.match(err.message, /nothing was written/);
        } finally {
          await holder.unsafe("COMMIT");
          holder.release();
        }
        await ahead;
      }));
    assert.equal((await store.get(["ahead"]))?.value, 1);
    assert.equal(await store.get(["behind"]), null);
    const keys: string[] = [];
    for await (const change of store.changes()) keys.push(change.key.join("/"));
    assert.deepEqual(keys.filter((k) => k !== "ready"), ["ahead"]);
  },
);

dropTestSchema();
