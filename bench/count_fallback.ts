/**
 * What a capability is worth: `store.count()` on 3,000 entries with the
 * driver's native `count`, and with the core's fallback (a `list` scan) on the
 * same driver, the same data, in the same run. Prints the median of each and
 * the ratio, per backend (postgres when FLOWSTATE_TEST_POSTGRES_URL is set).
 *
 *   deno run -A bench/count_fallback.ts [entries] [rounds]
 */
import { join } from "node:path";
import { loadPlugin } from "../src/plugin.ts";
import type { StoreDriver } from "../src/store/driver.ts";
import { wrapDriver } from "../src/store/store.ts";
import { systemClock } from "../src/clock.ts";

const ENTRIES = Number(Deno.args[0] ?? 3000);
const ROUNDS = Number(Deno.args[1] ?? 25);
const dir = await Deno.makeTempDir({ prefix: "flowstate-count-bench-" });
const pg = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL");
const table = `count_bench_${crypto.randomUUID().slice(0, 8)}`;

const backends: [string, Record<string, unknown>][] = [
  ["sqlite", { path: join(dir, "count.db") }],
  ...(pg ? [["postgres", { url: pg, table }] as [string, Record<string, unknown>]] : []),
];

/** The same driver, claiming no native count: the core falls back to scanning `list`. */
function withoutCount(driver: StoreDriver): StoreDriver {
  return {
    location: driver.location,
    capabilities: { ...driver.capabilities, count: false },
    get: (key, now) => driver.get(key, now),
    list: (range, now) => driver.list(range, now),
    commit: (request) => driver.commit(request),
    close: () => {},
  };
}

async function median(fn: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

for (const [name, options] of backends) {
  const plugin = await loadPlugin(name);
  const driver = await plugin.open(options, {
    storeName: name,
    clock: systemClock,
    home: dir,
    baseDir: dir,
  });
  const native = wrapDriver(driver, { name, plugin: name });
  const fallback = wrapDriver(withoutCount(driver), { name, plugin: name });
  let op = native.atomic();
  for (let i = 0; i < ENTRIES; i++) {
    op.set(["c", String(i).padStart(6, "0")], { n: i, text: "x".repeat(40) });
    if (i % 500 === 499) {
      await op.commit();
      op = native.atomic();
    }
  }
  await op.commit();
  if ((await native.count(["c"])) !== ENTRIES || (await fallback.count(["c"])) !== ENTRIES) {
    throw new Error("the counts disagree");
  }
  const a = await median(() => native.count(["c"]));
  const b = await median(() => fallback.count(["c"]));
  console.log(
    `${name}: count of ${ENTRIES} entries: native ${a.toFixed(2)} ms, fallback ${
      b.toFixed(2)
    } ms (${(b / a).toFixed(1)}x)`,
  );
  await native.clear([]);
  await native.close();
}
await Deno.remove(dir, { recursive: true });
if (pg) {
  const { openClient } = await import("../plugins/postgres/client.ts");
  const sql = openClient(pg, { max: 1 });
  await sql.unsafe(`DROP TABLE IF EXISTS "${table}", "${table}_meta"`);
  await sql.end();
}
