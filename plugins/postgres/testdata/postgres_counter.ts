/**
 * Test helper for plugins/postgres/concurrency_test.ts (run as a separate OS process):
 * `deno run postgres_counter.ts <url> <schema> <table> <increments>` opens the
 * store, prints "ready", waits for a line on stdin (so two processes start
 * together), adds 1 to the counter at ["counter"] that many times with
 * compare-and-set (pausing up to 2 ms between the read and the write),
 * retrying on conflicts, then prints how many conflicts it retried.
 *
 * @module
 */
import { openStore } from "../../../src/plugin.ts";
import postgres from "../mod.ts";

const [url, schema, table, times] = Deno.args;
const store = await openStore({ plugin: postgres, url, schema, table }, { home: "." });
Deno.stdout.writeSync(new TextEncoder().encode("ready\n"));
await Deno.stdin.read(new Uint8Array(16));
let conflicts = 0;
for (let i = 0; i < Number(times); i++) {
  for (;;) {
    const current = await store.get<number>(["counter"]);
    // Widen the read-to-write window so the other process often writes in between.
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 2));
    const result = await store.set(["counter"], (current?.value ?? 0) + 1, {
      ifVersion: current?.version ?? null,
    });
    if (result.ok) break;
    conflicts++;
  }
}
await store.close();
console.log(JSON.stringify({ conflicts }));
