// deno-lint-ignore-file no-explicit-any
/**
 * A list of 100 by prefix on two source trees (before / after a change) and
 * the bare query, in the same process on the same data: rounds interleaved,
 * the order flipped every round, medians, and each one's ratio to bare
 * (bare time / its time: 1.0 = parity, higher is better).
 *
 *   git worktree add --detach /tmp/before main
 *   deno run -A bench/list_ab.ts /tmp/before [entries=100000] [rounds=15] [sqlite|postgres]
 *
 * "after page" (and "before page", when that tree has it) takes the same 100
 * entries with one `nextPage()` call instead of `for await`. On sqlite,
 * "bare arrays" is the bare query with rows as arrays (`setReturnArrays`, as
 * the plugin reads them): a stricter baseline than the default row objects.
 *
 * The bare baseline is the same `SELECT … ORDER BY key LIMIT 100` on the
 * same key range plus `JSON.parse` of each value (node:sqlite on a second
 * connection; for postgres the `postgres` client with a prepared statement,
 * as the driver does, on a table of its own that is dropped at the end).
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { openClient } from "../plugins/postgres/client.ts";
import { openStore as openAfter } from "../mod.ts";
import { byteBounds } from "../src/store/keys.ts";

const [beforeRoot, sizeArg, roundsArg, backendArg] = Deno.args;
if (beforeRoot === undefined) {
  console.error("usage: deno run -A bench/list_ab.ts <before-tree> [entries] [rounds] [backend]");
  Deno.exit(2);
}
const N = Number(sizeArg ?? 100_000);
const ROUNDS = Number(roundsArg ?? 15);
const BACKEND = backendArg ?? "sqlite";
const OPS = 100;
const { openStore: openBefore } = await import(pathToFileURL(join(beforeRoot, "mod.ts")).href);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

async function race(fns: Record<string, () => unknown>): Promise<void> {
  const names = Object.keys(fns);
  const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (const n of names) for (let i = 0; i < 20; i++) await fns[n](); // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    for (const n of r % 2 ? [...names].reverse() : names) {
      const t0 = performance.now();
      for (let i = 0; i < OPS; i++) await fns[n]();
      times[n].push((performance.now() - t0) / OPS * 1000);
    }
  }
  const bare = median(times.bare);
  /** The spread of the per-round ratios (bare / it in the same round): p25–p75. */
  const spread = (n: string) => {
    const r = times[n].map((t, i) => times.bare[i] / t).sort((a, b) => a - b);
    const at = (p: number) => r[Math.floor((r.length - 1) * p)].toFixed(2);
    return `${at(0.25)}–${at(0.75)}`;
  };
  console.log(
    `| ${BACKEND} list of 100, ${N} entries | ` +
      names.map((n) =>
        `${n} ${median(times[n]).toFixed(0)} µs (${(bare / median(times[n])).toFixed(2)}×, ` +
        `rounds ${spread(n)})`
      )
        .join(" | ") +
      " |",
  );
}

const value = (i: number) => ({
  status: i % 7 === 0 ? "open" : "done",
  total: i,
  customer: { id: `c${i % 100}` },
  title: "some title words here",
});
const listOf = (store: any) => async () => {
  const out = [];
  for await (const e of store.list({ prefix: ["orders"], limit: 100 })) out.push(e);
  return out;
};
/** The same 100 entries in one call (`nextPage`), on a tree that has it. */
const pageOf = (store: any) => () => store.list({ prefix: ["orders"], limit: 100 }).nextPage();
const paged = (name: string, store: any) =>
  typeof store.list({ limit: 0 }).nextPage === "function" ? { [name]: pageOf(store) } : {};
async function fill(store: any): Promise<void> {
  for (let k = 0; k < N; k += 5000) {
    const op = store.atomic();
    for (let i = k; i < Math.min(N, k + 5000); i++) {
      op.set(["orders", String(i).padStart(8, "0")], value(i));
    }
    await op.commit();
  }
}
const b = byteBounds({ prefix: ["orders"] });

if (BACKEND === "sqlite") {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-list-ab-" });
  const path = join(dir, "s.db");
  {
    await using s = await openAfter({ plugin: "sqlite", path, durability: "relaxed" });
    await fill(s);
  }
  await using after = await openAfter({ plugin: "sqlite", path });
  await using before = await openBefore({ plugin: "sqlite", path });
  const db = new DatabaseSync(path);
  const stmt = db.prepare(
    "SELECT key, value, version, expires_at FROM flowstate_entries WHERE key > ? AND key < ? " +
      "ORDER BY key LIMIT 100",
  );
  const arrays = db.prepare(stmt.sourceSQL);
  (arrays as unknown as { setReturnArrays(on: boolean): void }).setReturnArrays(true);
  await race({
    before: listOf(before),
    after: listOf(after),
    ...paged("before page", before),
    ...paged("after page", after),
    bare: () => (stmt.all(b.lower!, b.upper!) as any[]).map((r) => JSON.parse(r.value)),
    // The same with rows as arrays (as the plugin now reads them): a stricter baseline.
    "bare arrays": () => (arrays.all(b.lower!, b.upper!) as any[]).map((r) => JSON.parse(r[1])),
  });
  db.close();
  await Deno.remove(dir, { recursive: true });
} else {
  const url = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL");
  if (!url) throw new Error("set FLOWSTATE_TEST_POSTGRES_URL to bench postgres");
  const table = `list_ab_${Date.now()}`;
  const admin = openClient(url);
  try {
    await using after = await openAfter({ plugin: "postgres", url, table });
    await fill(after);
    await admin.unsafe(`ANALYZE ${table}`); // fresh statistics for every plan below
    await using before = await openBefore({ plugin: "postgres", url, table });
    const bare = openClient(url);
    const q = `SELECT key, value, version, expires_at FROM ${table} WHERE key > $1 AND key < $2 ` +
      `ORDER BY key LIMIT 100`;
    await race({
      before: listOf(before),
      after: listOf(after),
      ...paged("before page", before),
      ...paged("after page", after),
      bare: async () =>
        (await bare.unsafe(q, [b.lower!, b.upper!] as never[], { prepare: true })).map((r: any) =>
          JSON.parse(r.value)
        ),
    });
    await bare.end();
  } finally {
    await admin.unsafe(`DROP TABLE IF EXISTS ${table}, ${table}_meta CASCADE`);
    await admin.end();
  }
}
