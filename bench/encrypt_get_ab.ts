/**
 * Gets of 1 KB values already in the encryption cache (`encrypt.cache`),
 * read again and again: CPU time per value read by `get` and by `getMany`
 * (100 keys a call), plain beside encrypted (this tree's wrapper) and, with
 * `--baseline <dir>`, another tree's wrapper over that tree's own store (a
 * checkout, e.g. `git worktree add /tmp/before main`), on one backend. Each
 * store holds the same N values (written through it, so every read is a
 * hit), then each round reads all of them `reps` times from each store, the
 * stores in rotating order; a round's sample is long enough (~0.1 s and
 * more) for the kernel's CPU accounting. A first round warms up and is not
 * counted. Reported: medians over the rounds, the ratio to plain, and each
 * round's ratio (the spread shows the load).
 *
 * Run: deno run -A bench/encrypt_get_ab.ts <memory|relaxed|durable|postgres> [n=1000] [rounds=11]
 *      [reps=8] [--baseline <dir>]
 * (postgres reads FLOWSTATE_TEST_POSTGRES_URL and uses a schema of its own,
 * dropped at the end; `deno task bench` loads this file without running it.)
 */
import { cpuUs, median } from "./_cpu.ts";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { openStore, type Store } from "../mod.ts";
import { encrypted } from "../encrypt.ts";

const KEY = "0f".repeat(32);
const value = (i: number) => ({ id: i, status: i % 2 ? "open" : "paid", note: "x".repeat(960) });

if (import.meta.main) {
  const args = [...Deno.args];
  const flag = args.indexOf("--baseline");
  const baselineDir = flag < 0 ? undefined : args.splice(flag, 2)[1];
  const from = (file: string) => import(pathToFileURL(resolve(baselineDir!, file)).href);
  // The baseline's wrapper over the baseline's own core (its reads as stored are its core's).
  const baseline: { encrypted: typeof encrypted; openStore: typeof openStore } | undefined =
    baselineDir === undefined ? undefined : {
      encrypted: (await from("encrypt.ts")).encrypted,
      openStore: (await from("mod.ts")).openStore,
    };
  const [backend = "relaxed", n = "1000", rounds = "11", reps = "8"] = args;
  const N = Number(n);
  const ROUNDS = Number(rounds);
  const REPS = Number(reps);
  const dir = await Deno.makeTempDir({ prefix: "flowstate-bench-encrypt-get-" });
  const pgUrl = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL") || undefined;
  const schema = `flowstate_bench_encget_${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`;
  const open = (tag: string, opener = openStore): Promise<Store> => {
    if (backend === "memory") return opener({ plugin: "memory" });
    if (backend === "postgres") {
      if (pgUrl === undefined) throw new Error("postgres: set FLOWSTATE_TEST_POSTGRES_URL");
      return opener({ plugin: "postgres", url: pgUrl, schema, table: `get_${tag}` });
    }
    const durability = backend === "relaxed" ? "relaxed" : "full";
    return opener({ plugin: "sqlite", path: join(dir, `${tag}.db`), durability });
  };
  // A cache whose young generation (half of it) holds every value (~5 KB counted each).
  const cache = `${Math.max(8, Math.ceil((N * 16) / 1024))}MiB`;
  const stores: Record<string, Store> = {
    plain: await open("plain"),
    encrypted: await encrypted(await open("enc"), { key: KEY, cache }),
  };
  if (baseline !== undefined) {
    stores.baseline = await baseline.encrypted(await open("base", baseline.openStore), {
      key: KEY,
      cache,
    });
  }
  const keys = Array.from({ length: N }, (_, i) => ["bench", String(i).padStart(6, "0")]);
  for (const store of Object.values(stores)) {
    for (let i = 0; i < N; i++) await store.set(keys[i], value(i));
  }
  const names = Object.keys(stores);
  const batches = Array.from(
    { length: Math.ceil(N / 100) },
    (_, b) => keys.slice(b * 100, b * 100 + 100),
  );
  const reads = {
    get: async (store: Store) => {
      for (let i = 0; i < N; i++) {
        if ((await store.get(keys[i])) === null) throw new Error("lost a value");
      }
    },
    getMany: async (store: Store) => {
      for (const batch of batches) {
        if ((await store.getMany(batch)).includes(null)) throw new Error("lost a value");
      }
    },
  };
  const cpu: Record<string, Record<string, number[]>> = Object.fromEntries(
    Object.keys(reads).map((how) => [how, Object.fromEntries(names.map((name) => [name, []]))]),
  );
  for (let r = -1; r < ROUNDS; r++) { // round -1 warms up
    for (const [how, read] of Object.entries(reads)) {
      for (let j = 0; j < names.length; j++) {
        const name = names[(j + r + 1) % names.length];
        const before = cpuUs();
        for (let k = 0; k < REPS; k++) await read(stores[name]);
        if (r >= 0) cpu[how][name].push((cpuUs() - before) / N / REPS);
      }
    }
  }
  for (const store of Object.values(stores)) await store.close();
  await Deno.remove(dir, { recursive: true });
  if (backend === "postgres") {
    const { openClient } = await import("../plugins/postgres/client.ts");
    const sql = openClient(pgUrl!, { max: 1 });
    await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await sql.end({ timeout: 5 });
  }
  for (const [how, rows] of Object.entries(cpu)) {
    const plain = median(rows.plain);
    const show = (name: string) => {
      const m = median(rows[name]);
      const perRound = rows[name].map((c, i) => (c / rows.plain[i]).toFixed(2)).join(" ");
      return `${name} ${m.toFixed(2)} µs (${(m / plain).toFixed(2)}×; rounds ${perRound})`;
    };
    console.log(
      `${backend}, ${N} values of 1 KB, cached, read ${REPS}× a round, ${ROUNDS} rounds: CPU per ` +
        `value by ${how} plain ${plain.toFixed(2)} µs | ` +
        names.filter((x) => x !== "plain").map(show).join(" | "),
    );
  }
}
