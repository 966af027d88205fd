/**
 * A `store.watch` that falls behind the change feed's retention
 * (`changes.keep` trimmed changes it had not read yet) fails naming them, as
 * a watch started after trimmed changes does, instead of passing over them.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime, runJob } from "../mod.ts";

Deno.test("store.watch that falls behind the feed's retention fails naming the trimmed changes, instead of passing over them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-watch-trimmed-" });
  try {
    await using rt = await openRuntime({
      home: dir,
      config: {
        stores: {
          default: { plugin: "sqlite", path: join(dir, "s.db"), changes: { keep: { count: 3 } } },
        },
      },
    });
    const store = await rt.store("default");
    await store.set(["k", "1"], 1);
    const seen: number[] = [];
    const watching = (async () => {
      for await (const change of store.watch([["k"]], { since: 0 })) {
        seen.push(change.seq);
        if (seen.length === 1) {
          // Behind: nine more changes, and gc trims the feed to the last 3 before it reads on.
          for (let i = 2; i <= 10; i++) await store.set(["k", String(i)], i);
          const gc = await runJob(rt, "gc", { progress: "quiet", onLog: () => {} });
          assert.equal(gc.status, "succeeded", JSON.stringify(gc.error));
          await store.set(["k", "11"], 11); // one more, so that a watch passing over them ends
        }
        if (seen.length === 2) break; // it passed over the trimmed changes
      }
    })();
    await assert.rejects(
      watching,
      /Cannot watch: changes #2 to #\d+ were trimmed by the feed's retention \(changes\.keep\) before this watch read them; resume from #\d+/,
    );
    assert.deepEqual(seen, [1]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
