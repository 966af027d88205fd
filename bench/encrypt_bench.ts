/**
 * Encrypted set/get of 1 KB values beside the same store without encryption,
 * in the same run: memory, sqlite (durable, the default, and relaxed) and,
 * when FLOWSTATE_TEST_POSTGRES_URL is set, postgres (durable, the default;
 * a table of its own in a schema dropped at the end). Each round runs, for
 * each backend, plain then encrypted (the order alternates between rounds),
 * on fresh keys: `set` of N values one by one, `get` of each, then the same
 * values in batches of 100: `getMany` of 100 keys and a `list` page of 100.
 * Reported: the median ops/s (values/s for the batches) of each over the
 * rounds, the ratio encrypted/plain of time per value (1.00 = no cost) with
 * the spread of the per-round ratios, and what the encryption adds per value
 * in µs beside what the cipher alone costs. Also the raw cost of AES-256-GCM
 * alone (WebCrypto encrypt + decrypt of 1 KB, one at a time and 100 at once,
 * and node:crypto's, which the wrapper uses for values up to 4 KiB).
 * The last column is this process's CPU time per value (all its threads),
 * which moves much less with the load than the wall-clock rates; it leaves
 * out a server's CPU (postgres) and time spent waiting for a disk.
 *
 * With `--baseline <dir>` (a checkout of another version, e.g. from
 * `git archive main | tar -x -C <dir>`), the wrapper of that tree runs too,
 * on stores of its own, interleaved with the others in every round (the
 * order rotates), and each row shows its rate and ratio beside this tree's.
 *
 * With `--cache <size>` the encrypted store (and the baseline's) is opened
 * with that `encrypt.cache` (`--cache 0`: no plaintext kept, every read
 * decrypts); by default it keeps 8 MiB, so the reads of values just written
 * are hits.
 *
 * Run: deno run -A bench/encrypt_bench.ts [rounds] [n] [--baseline <dir>] [--cache <size>]
 * (`deno task bench` loads this file without running it.)
 */
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { createCipheriv, createDecipheriv } from "node:crypto";
import { cpuUs, median } from "./_cpu.ts";
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

const OPS = ["set", "get", "getMany", "list"] as const;
type Op = typeof OPS[number];
/** Values per `getMany` call and per `list` page. */
const BATCH = 100;

/** CPU µs per value of each op of the last {@linkcode timeOps}. */
let lastCpu: Record<Op, number> = { set: 0, get: 0, getMany: 0, list: 0 };

async function timeOps(store: Store, round: number, n: number): Promise<Record<Op, number>> {
  const pad = (i: number) => String(i).padStart(6, "0"); // key order = number order
  const keys = Array.from({ length: n }, (_, i) => ["bench", `r${round}`, pad(i)]);
  const values = keys.map((_, i) => value(i));
  let c = cpuUs();
  let t = performance.now();
  for (let i = 0; i < n; i++) await store.set(keys[i], values[i]);
  const set = performance.now() - t;
  const cpu = { set: (cpuUs() - c) / n, get: 0, getMany: 0, list: 0 };
  c = cpuUs();
  t = performance.now();
  for (let i = 0; i < n; i++) {
    if ((await store.get(keys[i])) === null) throw new Error("lost a value");
  }
  const get = performance.now() - t;
  cpu.get = (cpuUs() - c) / n;
  c = cpuUs();
  t = performance.now();
  for (let i = 0; i < n; i += BATCH) {
    const got = await store.getMany(keys.slice(i, i + BATCH));
    if (got.some((e) => e === null)) throw new Error("lost a value");
  }
  const getMany = performance.now() - t;
  cpu.getMany = (cpuUs() - c) / n;
  c = cpuUs();
  t = performance.now();
  for (let i = 0; i < n; i += BATCH) {
    let seen = 0;
    for await (
      const _ of store.list({ prefix: ["bench", `r${round}`], start: keys[i], limit: BATCH })
    ) {
      seen++;
    }
    if (seen !== Math.min(BATCH, n - i)) throw new Error(`listed ${seen} values`);
  }
  const list = performance.now() - t;
  cpu.list = (cpuUs() - c) / n;
  lastCpu = cpu;
  const rate = (ms: number) => (n / ms) * 1000;
  return { set: rate(set), get: rate(get), getMany: rate(getMany), list: rate(list) };
}

/** The same with node:crypto (synchronous), which the wrapper uses for values up to 4 KiB. */
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

async function rawCrypto(n: number): Promise<{ seal: number; open: number; openBatch: number }> {
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
  // A batch of 100 opened at once (Promise.all): what a getMany or a list page can reach.
  t = performance.now();
  for (let i = 0; i < n; i += BATCH) {
    await Promise.all(
      sealed.slice(i, i + BATCH).map((ct) =>
        crypto.subtle.decrypt({ name: "AES-GCM", iv }, key, ct)
      ),
    );
  }
  const openBatch = performance.now() - t;
  return { seal: (n / seal) * 1000, open: (n / open) * 1000, openBatch: (n / openBatch) * 1000 };
}

if (import.meta.main) {
  const args = [...Deno.args];
  const cacheFlag = args.indexOf("--cache");
  // `--cache 0`: every read decrypts (the encrypted store keeps no plaintext; default 8 MiB).
  const cache = cacheFlag < 0 ? undefined : args.splice(cacheFlag, 2)[1];
  const flag = args.indexOf("--baseline");
  const baselineDir = flag < 0 ? undefined : args.splice(flag, 2)[1];
  if (flag >= 0 && baselineDir === undefined) {
    throw new Error("--baseline needs a directory: a checkout of the version to compare with");
  }
  const baseline: typeof encrypted | undefined = baselineDir === undefined
    ? undefined
    : (await import(pathToFileURL(resolve(baselineDir, "encrypt.ts")).href)).encrypted;
  const rounds = Number(args[0] ?? 7);
  const n = Number(args[1] ?? 2000);
  const dir = await Deno.makeTempDir({ prefix: "flowstate-bench-encrypt-" });
  const pgUrl = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL") || undefined;
  const pgSchema = `flowstate_bench_encrypt_${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`;
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
  if (pgUrl !== undefined) {
    backends.push({
      name: "postgres (durable, loopback)",
      open: (_d, tag) =>
        openStore({ plugin: "postgres", url: pgUrl, schema: pgSchema, table: `bench_${tag}` }),
      n,
    });
  } else {
    console.log("(postgres left out: set FLOWSTATE_TEST_POSTGRES_URL to include it)");
  }
  const results = new Map<string, Record<Op, number[]>>();
  const cpuResults = new Map<string, Record<Op, number[]>>();
  const push = (name: string, r: Record<Op, number>) => {
    const e = results.get(name) ?? { set: [], get: [], getMany: [], list: [] };
    for (const op of OPS) e[op].push(r[op]);
    results.set(name, e);
    const c = cpuResults.get(name) ?? { set: [], get: [], getMany: [], list: [] };
    for (const op of OPS) c[op].push(lastCpu[op]);
    cpuResults.set(name, c);
  };
  // "base": the baseline tree's wrapper (with --baseline).
  const kinds = baseline === undefined
    ? ["plain", "enc"] as const
    : ["plain", "enc", "base"] as const;
  const stores: Record<string, Partial<Record<"plain" | "enc" | "base", Store>>> = {};
  for (const b of backends) {
    stores[b.name] = {
      plain: await b.open(dir, "plain"),
      enc: await encrypted(await b.open(dir, "enc"), { key: KEY, cache }),
      // The same cache for the baseline (a tree from before the option: leave --cache out).
      base: baseline &&
        await baseline(
          await b.open(dir, "base"),
          cache === undefined ? { key: KEY } : { key: KEY, cache },
        ),
    };
  }
  const webCrypto: { seal: number[]; open: number[]; openBatch: number[] } = {
    seal: [],
    open: [],
    openBatch: [],
  };
  const nodeCrypto: { seal: number[]; open: number[] } = { seal: [], open: [] };
  for (let round = 0; round < rounds; round++) {
    for (const b of backends) {
      // Each kind takes each place in turn (plain first, then second, …).
      const order = kinds.map((_, i) => kinds[(i + round) % kinds.length]);
      for (const which of order) {
        push(`${b.name} ${which}`, await timeOps(stores[b.name][which]!, round, b.n));
      }
    }
    const c = await rawCrypto(n * 5);
    webCrypto.seal.push(c.seal);
    webCrypto.open.push(c.open);
    webCrypto.openBatch.push(c.openBatch);
    const nc = rawNodeCrypto(n * 5);
    nodeCrypto.seal.push(nc.seal);
    nodeCrypto.open.push(nc.open);
  }
  for (const s of Object.values(stores)) {
    for (const store of Object.values(s)) await store?.close();
  }
  await Deno.remove(dir, { recursive: true });
  if (pgUrl !== undefined) {
    const { openClient } = await import("../plugins/postgres/client.ts");
    const sql = openClient(pgUrl, { max: 1 });
    await sql.unsafe(`DROP SCHEMA IF EXISTS "${pgSchema}" CASCADE`);
    await sql.end({ timeout: 5 });
  }

  const fmt = (x: number) => Math.round(x).toLocaleString("en-US");
  const us = (perSecond: number) => 1e6 / perSecond;
  const seal = median(webCrypto.seal);
  const open = median(webCrypto.open);
  const openBatch = median(webCrypto.openBatch);
  // What the cipher alone costs per value for each operation (a batch opens 100 at once).
  const cipher: Record<Op, number> = {
    set: us(seal),
    get: us(open),
    getMany: us(openBatch),
    list: us(openBatch),
  };
  console.log(
    `encrypted vs plain, 1 KB values, ${rounds} rounds, median ops/s (values/s for getMany and ` +
      `list, ${BATCH} a call)`,
  );
  const withBase = baseline !== undefined;
  console.log(
    withBase
      ? "| backend | op | plain ops/s | baseline enc ops/s | ratio baseline | encrypted ops/s | ratio (time, enc/plain) | added µs/value | CPU µs/value plain → baseline → enc |"
      : "| backend | op | plain ops/s | encrypted ops/s | ratio (time, enc/plain) | added µs/value | cipher alone µs | CPU µs/value plain → enc |",
  );
  console.log(
    withBase
      ? "|---|---|---:|---:|---:|---:|---:|---:|---:|"
      : "|---|---|---:|---:|---:|---:|---:|---:|",
  );
  for (const b of backends) {
    for (const op of OPS) {
      const rates = (which: string) => results.get(`${b.name} ${which}`)![op];
      const cpuOf = (which: string) => median(cpuResults.get(`${b.name} ${which}`)![op]).toFixed(1);
      const plain = median(rates("plain"));
      // The median ratio, and the per-round ratios, so the spread shows.
      const ratio = (which: string) => {
        const r = plain / median(rates(which));
        const rounds = rates("plain").map((p, i) => p / rates(which)[i]);
        return `${r.toFixed(2)}×${r <= 1.2 ? " ✓" : ""} (rounds ${Math.min(...rounds).toFixed(2)}–${
          Math.max(...rounds).toFixed(2)
        })`;
      };
      const enc = median(rates("enc"));
      const added = (us(enc) - us(plain)).toFixed(1);
      console.log(
        withBase
          ? `| ${b.name} | ${op} | ${fmt(plain)} | ${fmt(median(rates("base")))} | ${
            ratio("base")
          } | ${fmt(enc)} | ${ratio("enc")} | ${added} | ${cpuOf("plain")} → ${cpuOf("base")} → ${
            cpuOf("enc")
          } |`
          : `| ${b.name} | ${op} | ${fmt(plain)} | ${fmt(enc)} | ${ratio("enc")} | ${added} | ${
            cipher[op].toFixed(1)
          } | ${cpuOf("plain")} → ${cpuOf("enc")} |`,
      );
    }
  }
  console.log(
    `| WebCrypto AES-256-GCM alone | seal / open / open ${BATCH} at once, 1 KB | | ${fmt(seal)} / ${
      fmt(open)
    } / ${fmt(openBatch)} | | | | |`,
  );
  console.log(
    `| node:crypto AES-256-GCM alone | seal / open 1 KB | | ${fmt(median(nodeCrypto.seal))} / ${
      fmt(median(nodeCrypto.open))
    } | |`,
  );
}
