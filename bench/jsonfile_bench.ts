/**
 * jsonfile plugin: one durable write to a ~100 KB store, beside the bare
 * pattern writing the same number of bytes: temp file, fsync, rename, fsync
 * the directory (the same durability guarantee).
 * Run: deno task bench
 */
import { join } from "node:path";
import { openStore } from "../mod.ts";

const dir = await Deno.makeTempDir({ prefix: "flowstate-bench-jsonfile-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
const ENTRIES = 500;
const payload = "x".repeat(150);

for (const durability of ["full", "relaxed"] as const) {
  const path = join(dir, `store-${durability}.json`);
  const store = await openStore({ plugin: "jsonfile", path, durability });
  const op = store.atomic();
  for (let i = 0; i < ENTRIES; i++) op.set(["item", String(i).padStart(4, "0")], { i, payload });
  await op.commit();
  const size = (await Deno.stat(path)).size;
  const bare = join(dir, `bare-${durability}.json`);
  const bytes = new TextEncoder().encode("y".repeat(size));
  let n = 0;

  Deno.bench({
    name: `bare: write ${Math.round(size / 1024)} KB to temp, fsync, rename (${durability})`,
    group: `jsonfile write (${durability})`,
    baseline: true,
    async fn() {
      bytes[n++ % bytes.length] = 0x61 + (n % 26);
      const tmp = `${bare}.tmp`;
      const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
      await file.write(bytes);
      if (durability === "full") await file.sync();
      file.close();
      await Deno.rename(tmp, bare);
      if (durability === "full") {
        const d = await Deno.open(dir, { read: true });
        await d.sync();
        d.close();
      }
    },
  });
  Deno.bench({
    name: `jsonfile plugin: store.set in a ${Math.round(size / 1024)} KB store (${durability})`,
    group: `jsonfile write (${durability})`,
    async fn() {
      await store.set(["item", String(n++ % ENTRIES).padStart(4, "0")], { i: n, payload });
    },
  });
}
