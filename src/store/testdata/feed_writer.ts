/**
 * Test helper for src/store/feed_test.ts (run as a separate OS process):
 * `deno run feed_writer.ts <spec JSON> <name> <count>` opens the store of the
 * spec (with its change feed) and writes `[name, i]` for i < count, some as
 * atomic pairs, then prints "done". `FLOWSTATE_ACTOR` names who writes.
 *
 * @module
 */
import { openStore, type StoreSpec } from "../../plugin.ts";

const [specJson, name, count] = Deno.args;
const store = await openStore(JSON.parse(specJson) as StoreSpec);
for (let i = 0; i < Number(count); i++) {
  const key = String(i).padStart(5, "0");
  if (i % 5 === 4) {
    const r = await store.atomic().set([name, key], i).set([name, `${key}-b`], i).commit();
    if (!r.ok) throw new Error("unexpected conflict");
  } else {
    await store.set([name, key], i);
  }
}
await store.close();
console.log("done");
