/**
 * Test helper for processes_test.ts (run as a separate OS process):
 * `deno run redis_counter.ts <url> <prefix> <name> <increments>` opens the
 * store, prints "ready", waits for a line on stdin (so two processes start
 * together), then that many times adds 1 to the counter at ["counter"] with
 * compare-and-set, in one atomic commit with a log entry ["log", name, i]
 * (pausing up to 2 ms between the read and the write), retrying on
 * conflicts; then prints how many conflicts it retried.
 *
 * @module
 */
import { openStore } from "@flowstate/core";
import redis from "../mod.ts";

const [url, prefix, name, times] = Deno.args;
const store = await openStore({ plugin: redis, url, prefix });
Deno.stdout.writeSync(new TextEncoder().encode("ready\n"));
await Deno.stdin.read(new Uint8Array(16));
let conflicts = 0;
for (let i = 0; i < Number(times); i++) {
  for (;;) {
    const current = await store.get<number>(["counter"]);
    // Widen the read-to-write window so the other process often writes in between.
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 2));
    const result = await store.atomic()
      .check(["counter"], current?.version ?? null)
      .set(["counter"], (current?.value ?? 0) + 1)
      .set(["log", name, String(i).padStart(6, "0")], current?.value ?? 0)
      .commit();
    if (result.ok) break;
    conflicts++;
  }
}
await store.close();
console.log(JSON.stringify({ conflicts }));
