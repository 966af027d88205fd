/**
 * The redis plugin beside bare ioredis calls doing the same work on the same
 * server, in the same process, interleaved: every round runs each operation
 * with the plugin and by hand, the order flipped each round, so machine noise
 * hits both alike. Prints per operation the median of each and the ratio
 * plugin / bare (lower is better; the target is within 1.3×).
 *
 * "By hand" keeps the same data the plugin keeps (an entry with its version in
 * a hash, its key in a sorted set for ordered listing, atomically): set is
 * one `MULTI HSET ZADD ZREM EXEC`; get is `HGET` and `JSON.parse`; batch is
 * one `MULTI` of N × (`HSET`, `ZADD`, `ZREM`); list is `ZRANGEBYLEX` then
 * `HMGET` (two round trips; the plugin's is one script), building the same
 * entries (key decoded, value parsed, version, expiry). For scale, the table
 * also shows a plain `SET` and `GET` of the JSON (no version, no order).
 *
 *   cd packages/redis && deno task bench [rounds] [redis url]
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { Redis } from "ioredis";
import { openStore } from "@flowstate/core";
import { decodeKey, encodeKey } from "@flowstate/core/plugin";
import redis from "../mod.ts";

const ROUNDS = Number(Deno.args[0] ?? 9);
const URL = Deno.args[1] ?? Deno.env.get("FLOWSTATE_TEST_REDIS_URL") ?? "redis://127.0.0.1:6379";
const SETS = 500;
const GETS = 1000;
const BATCH = 1000;
const BATCHES = 5;
const LIST = 1000;
const LISTS = 10;
const RUN = `flowstate_bench:${crypto.randomUUID().slice(0, 8)}:`;

const value = (n: number) => ({ n, name: "counter", tags: ["a", "b"], at: 1700000000000 + n });
const keyBytes = (key: string[]) => {
  const b = encodeKey(key);
  return Buffer.from(b.buffer, b.byteOffset, b.length);
};
let counter = 0;
const version = () => `${Date.now().toString(36)}.${(++counter).toString(36)}.bench`;

const store = await openStore({ plugin: redis, url: URL, prefix: `${RUN}plugin:` });
const bare = new Redis(URL);
const h = `${RUN}bare:entries`;
const z = `${RUN}bare:keys`;
const x = `${RUN}bare:expiry`;

// Seed what get and list read, both ways.
const seed = store.atomic();
const seedBare = bare.multi();
for (let i = 0; i < LIST; i++) {
  const key = ["list", `item${String(i).padStart(5, "0")}`];
  seed.set(key, value(i));
  const k = keyBytes(key);
  seedBare.hset(h, k, `${version()}\n\n${JSON.stringify(value(i))}`).zadd(z, 0, k);
}
await seed.commit();
await seedBare.exec();
await store.set(["bench", "hot"], value(0));
const hot = keyBytes(["bench", "hot"]);
await bare.hset(h, hot, `${version()}\n\n${JSON.stringify(value(0))}`);
await bare.set(`${RUN}plain:hot`, JSON.stringify(value(0)));

const listLower = Buffer.concat([Buffer.from("("), keyBytes(["list"])]);
const listUpper = Buffer.concat([Buffer.from("("), keyBytes(["list"]), Buffer.from([0xff])]);

type Op = () => Promise<unknown>;
const ops: [name: string, plugin: Op, bare: Op, plain?: Op][] = [
  [
    `set ×${SETS}`,
    async () => {
      for (let i = 0; i < SETS; i++) await store.set(["bench", "hot"], value(++counter));
    },
    async () => {
      for (let i = 0; i < SETS; i++) {
        await bare.multi()
          .hset(h, hot, `${version()}\n\n${JSON.stringify(value(counter))}`)
          .zadd(z, 0, hot)
          .zrem(x, hot)
          .exec();
      }
    },
    async () => {
      for (let i = 0; i < SETS; i++) {
        await bare.set(`${RUN}plain:hot`, JSON.stringify(value(++counter)));
      }
    },
  ],
  [
    `get ×${GETS}`,
    async () => {
      for (let i = 0; i < GETS; i++) await store.get(["bench", "hot"]);
    },
    async () => {
      for (let i = 0; i < GETS; i++) {
        const rec = (await bare.hget(h, hot))!;
        const a = rec.indexOf("\n");
        const b = rec.indexOf("\n", a + 1);
        JSON.parse(rec.slice(b + 1));
      }
    },
    async () => {
      for (let i = 0; i < GETS; i++) JSON.parse((await bare.get(`${RUN}plain:hot`))!);
    },
  ],
  [
    `batch: atomic ${BATCH} sets ×${BATCHES}`,
    async () => {
      for (let b = 0; b < BATCHES; b++) {
        const op = store.atomic();
        for (let i = 0; i < BATCH; i++) op.set(["batch", String(i)], value(++counter));
        await op.commit();
      }
    },
    async () => {
      for (let b = 0; b < BATCHES; b++) {
        const m = bare.multi();
        const v = version();
        for (let i = 0; i < BATCH; i++) {
          const k = keyBytes(["batch", String(i)]);
          m.hset(h, k, `${v}\n\n${JSON.stringify(value(++counter))}`).zadd(z, 0, k).zrem(x, k);
        }
        await m.exec();
      }
    },
  ],
  [
    `list ${LIST} ×${LISTS}`,
    async () => {
      for (let r = 0; r < LISTS; r++) {
        let n = 0;
        for await (const _ of store.list({ prefix: ["list"] })) n++;
        if (n !== LIST) throw new Error(`listed ${n}`);
      }
    },
    async () => {
      for (let r = 0; r < LISTS; r++) {
        const keys = await bare.zrangebylexBuffer(z, listLower, listUpper, "LIMIT", 0, LIST);
        const recs = await bare.hmget(h, ...keys);
        const entries = [];
        for (const [i, rec] of recs.entries()) {
          const a = rec!.indexOf("\n");
          const b = rec!.indexOf("\n", a + 1);
          const expires = rec!.slice(a + 1, b);
          entries.push({
            key: decodeKey(keys[i]),
            value: JSON.parse(rec!.slice(b + 1)),
            version: rec!.slice(0, a),
            expiresAt: expires === "" ? null : Number(expires),
          });
        }
        if (entries.length !== LIST) throw new Error(`listed ${entries.length}`);
      }
    },
  ],
];

async function time(op: Op): Promise<number> {
  const t0 = performance.now();
  await op();
  return performance.now() - t0;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// One warm-up round (script loading, JIT), not counted.
for (const [, p, b, plain] of ops) {
  await p();
  await b();
  if (plain) await plain();
}
const results = ops.map(() => ({
  plugin: [] as number[],
  bare: [] as number[],
  plain: [] as number[],
}));
for (let round = 0; round < ROUNDS; round++) {
  for (const [i, [, p, b, plain]] of ops.entries()) {
    const runs: [Op, number[]][] = [[p, results[i].plugin], [b, results[i].bare]];
    if (plain) runs.push([plain, results[i].plain]);
    if (round % 2 === 1) runs.reverse();
    for (const [op, into] of runs) into.push(await time(op));
  }
}

console.log(
  `redis plugin vs bare ioredis, ${ROUNDS} rounds, ${
    URL.replace(/\/\/[^@]*@/, "//")
  }, Deno ${Deno.version.deno}`,
);
console.log(
  "| Operation | plugin (ms, median) | bare ioredis, same data (ms) | plugin / bare | plain SET/GET (ms) |",
);
console.log("| --- | ---: | ---: | ---: | ---: |");
for (const [i, [name]] of ops.entries()) {
  const p = median(results[i].plugin);
  const b = median(results[i].bare);
  const plain = results[i].plain.length ? median(results[i].plain).toFixed(2) : "—";
  console.log(`| ${name} | ${p.toFixed(2)} | ${b.toFixed(2)} | ${(p / b).toFixed(2)} | ${plain} |`);
}

// Remove every key this run wrote.
await store.close();
let cursor = "0";
do {
  const [next, keys] = await bare.scan(cursor, "MATCH", `${RUN}*`, "COUNT", 1000);
  if (keys.length > 0) await bare.unlink(...keys);
  cursor = next;
} while (cursor !== "0");
await bare.quit();
