/**
 * Test helper for jsonfile_test.ts: compare-and-set increments of one counter.
 * Usage: jsonfile_cas.ts <store path> <increments> <durability>
 * Prints "ready" once the store is open, waits until stdin is closed, then
 * prints the counter value each successful increment wrote, one per line,
 * and finally "conflicts <n>".
 */
import { openStore } from "../../../mod.ts";

const [path, count, durability] = Deno.args as [string, string, "full" | "relaxed"];
const store = await openStore(
  { plugin: "jsonfile", path, durability, lockTimeout: 30_000 },
  { name: "cas" },
);
console.log("ready");
await Deno.stdin.readable.pipeTo(new WritableStream()).catch(() => {});
let conflicts = 0;
const written: number[] = [];
for (let done = 0; done < Number(count);) {
  const entry = await store.get<number>(["counter"]);
  const next = (entry?.value ?? 0) + 1;
  const result = await store.set(["counter"], next, { ifVersion: entry?.version ?? null });
  if (result.ok) {
    written.push(next);
    done++;
  } else {
    conflicts++;
  }
}
await store.close();
console.log(written.join("\n"));
console.log(`conflicts ${conflicts}`);
