/**
 * Encrypted set/get of 1 KB values beside the same store without encryption,
 * in the same run: memory, and sqlite (durable, the default, and relaxed).
 * Each round runs, for each backend, plain then encrypted (the order
 * alternates between rounds), on fresh keys: `set` of N values one by one,
 * then `get` of each. Reported: the median ops/s of each over the rounds and
 * the ratio encrypted/plain of time per operation (1.00 = no cost). Also the
 * raw cost of AES-256-GCM alone (WebCrypto encrypt + decrypt of 1 KB).
 *
 * Run: deno run -A bench/encrypt_bench.ts [rounds] [n]
 * (`deno task bench` loads this file without running it.)
 */
import { join } from "node:path";
import { createCipheriv, createDecipheriv } from "node:crypto";
import { openStore, type Store } from "../mod.ts";
import { encrypted } from "../encrypt.ts";

const KEY = "0f".repeat(32);

function value(i: number): Record<string, unknown> {
  // ~1 KB of JSON: an id, a status and filler text.
  return { id: i, status: i % 2 ? "open" : "paid", note: "x".repeat(960) };
}

interface Backend {
  name: string;
  open: (dir: string, tag: string) => Promise<Store>;
  n: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function timeOps(
  store: Store,
  round: number,
  n: number,
): Promise<{ set: number; get: number }> {
  const keys = Array.from({ length: n }, (_, i) => ["bench", `r${round}`, String(i)]);
  const values = keys.map((_, i) => value(i));
  let t = performance.now();
  for (let i = 0; i < n; i++) await store.set(keys[i], values[i]);
  const set = performance.now() - t;
  t = performance.now();
  for (let i = 0; i < n; i++) {
    if ((await store.get(keys[i])) === null) throw new Error("lost a value");
  }
  const get = performance.now() - t;
  return { set: (n / set) * 1000, get: (n / get) * 1000 };
}

/** The same with node:crypto (synchronous), for comparison only: the wrapper uses WebCrypto. */
function rawNodeCrypto(n: number): { seal: number; open: number } {
  const key = new Uint8Array(32);
  const data = new TextEncoder().encode(JSON.stringify(value(1)));
  const iv = new Uint8Array(12);
  const sealed: { ct: Uint8Array; tag: Uint8Array }[] = [];
  let t = performance.now();
  for (let i = 0; i < n; i++) {
    const c = createCipheriv("aes-256-gcm", key, iv);
    const first = c.update(data);
    c.final();
    sealed.push({ ct: first, tag: c.getAuthTag() });
  }
  const seal = performance.now() - t;
  t = performance.now();
  for (let i = 0; i < n; i++) {
    const d = createDecipheriv("aes-256-gcm", key, iv);
    d.setAuthTag(sealed[i].tag);
    d.update(sealed[i].ct);
    d.final();
  }
  const open = performance.now() - t;
  return { seal: (n / seal) * 1000, open: (n / open) * 1000 };
}

async function rawCrypto(n: number): Promise<{ seal: number; open: number }> {
  const key = await crypto.subtle.importKey("raw", new Uint8Array(32), "AES-GCM", false, [
    "encrypt",
    "decrypt",
  ]);
  const data = new TextEncoder().encode(JSON.stringify(value(1)));
  const iv = new Uint8Array(12);
  const sealed: ArrayBuffer[] = [];
  let t = performance.now();
  for (let i = 0; i < n; i++) {
    sealed.push(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, data));
  }
  const seal = performance.now() - t;
  t = performance.now();
  for (let i = 0; i < n; i++) await crypto.subtle.decrypt({ name: "AES-GCM", iv }, key, sealed[i]);
  const open = performance.now() - t;
  return { seal: (n / seal) * 1000, open: (n / open) * 1000 };
}

if (import.meta.main) {
  const rounds = Number(Deno.args[0] ?? 7);
  const n = Number(Deno.args[1] ?? 2000);
  const dir = await Deno.makeTempDir({ prefix: "flowstate-bench-encrypt-" });
  const backends: Backend[] = [
    { name: "memory", open: () => openStore({ plugin: "memory" }), n: n * 5 },
    {
      name: "sqlite (durable)",
      open: (d, tag) => openStore({ plugin: "sqlite", path: join(d, `${tag}-durable.db`) }),
      n,
    },
    {
      name: "sqlite (relaxed)",
      open: (d, tag) =>
        openStore({ plugin: "sqlite", path: join(d, `${tag}-relaxed.db`), durability: "relaxed" }),
      n: n * 2,
    },
  ];
  const results = new Map<string, { set: number[]; get: number[] }>();
  const push = (name: string, r: { set: number; get: number }) => {
    const e = results.get(name) ?? { set: [], get: [] };
    e.set.push(r.set);
    e.get.push(r.get);
    results.set(name, e);
  };
  const stores: Record<string, { plain: Store; enc: Store }> = {};
  for (const b of backends) {
    stores[b.name] = {
      plain: await b.open(dir, "plain"),
      enc: await encrypted(await b.open(dir, "enc"), { key: KEY }),
    };
  }
  const crypto: { seal: number[]; open: number[] } = { seal: [], open: [] };
  const nodeCrypto: { seal: number[]; open: number[] } = { seal: [], open: [] };
  for (let round = 0; round < rounds; round++) {
    for (const b of backends) {
      const order = round % 2 === 0 ? ["plain", "enc"] as const : ["enc", "plain"] as const;
      for (const which of order) {
        push(`${b.name} ${which}`, await timeOps(stores[b.name][which], round, b.n));
      }
    }
    const c = await rawCrypto(n * 5);
    crypto.seal.push(c.seal);
    crypto.open.push(c.open);
    const nc = rawNodeCrypto(n * 5);
    nodeCrypto.seal.push(nc.seal);
    nodeCrypto.open.push(nc.open);
  }
  for (const s of Object.values(stores)) {
    await s.plain.close();
    await s.enc.close();
  }
  await Deno.remove(dir, { recursive: true });

  const fmt = (x: number) => Math.round(x).toLocaleString("en-US");
  console.log(`encrypted vs plain, 1 KB values, ${rounds} rounds, median ops/s`);
  console.log("| backend | op | plain ops/s | encrypted ops/s | ratio (time, enc/plain) |");
  console.log("|---|---|---:|---:|---:|");
  for (const b of backends) {
    for (const op of ["set", "get"] as const) {
      const plain = median(results.get(`${b.name} plain`)![op]);
      const enc = median(results.get(`${b.name} enc`)![op]);
      // Per-round ratios too, so the spread shows.
      const ratios = results.get(`${b.name} plain`)![op].map((p, i) =>
        p / results.get(`${b.name} enc`)![op][i]
      );
      console.log(
        `| ${b.name} | ${op} | ${fmt(plain)} | ${fmt(enc)} | ${(plain / enc).toFixed(2)}× (rounds ${
          Math.min(...ratios).toFixed(2)
        }–${Math.max(...ratios).toFixed(2)}) |`,
      );
    }
  }
  console.log(
    `| WebCrypto AES-256-GCM alone | seal / open 1 KB | | ${fmt(median(crypto.seal))} / ${
      fmt(median(crypto.open))
    } | |`,
  );
  console.log(
    `| node:crypto AES-256-GCM alone (not used) | seal / open 1 KB | | ${
      fmt(median(nodeCrypto.seal))
    } / ${fmt(median(nodeCrypto.open))} | |`,
  );
}
