/**
 * Where an encrypted `set` of a 1 KB value goes, in CPU µs per value, each
 * part alone, interleaved over rounds (medians): a plain memory set, an
 * encrypted one, the seal as the wrapper does it with node:crypto (encode,
 * IV, `createCipheriv` with the key as a `KeyObject`, AAD, update, final,
 * tag, base64), the same with the key as raw bytes, `createCipheriv` alone
 * both ways, the value's `JSON.stringify` (a plain set does it too) and the
 * envelope's (the core serialises the sealed value again). Then the cost of
 * the envelope's size on SQLite itself: bare `node:sqlite` (WAL,
 * `synchronous=NORMAL`, the plugin's table shape) reading and writing rows
 * of 1.06 KB (a 1 KB value) and 1.4 KB (its envelope).
 *
 * Run: deno run -A bench/encrypt_seal_cost.ts [rounds=9]
 * (`deno task bench` loads this file without running it.)
 */
import { cpuUs, median } from "./_cpu.ts";
import { createCipheriv, createSecretKey, type KeyObject, randomFillSync } from "node:crypto";
import { DatabaseSync } from "node:sqlite";
import { openStore } from "../mod.ts";
import { encrypted } from "../encrypt.ts";

const VALUE = { id: 1, status: "open", note: "x".repeat(960) };
const TEXT = JSON.stringify(VALUE);
const RAW_KEY = new Uint8Array(32).fill(15);
const KEY_OBJECT = createSecretKey(RAW_KEY);
const ENCODER = new TextEncoder();
const AAD = ENCODER.encode("flowstate.encrypt.v1 0123456789abcdef bench r1 000001");
const PLAIN = new Uint8Array(4096 * 3);
const PACKED = new Uint8Array(12 + PLAIN.length + 16);
const IVS = new Uint8Array(12 * 1024);
randomFillSync(IVS);
let ivAt = 0;

/** The wrapper's seal of a value up to 4 KiB (src/wrappers/encrypt.ts `sealText`). */
function seal(key: KeyObject | Uint8Array): string {
  const length = ENCODER.encodeInto(TEXT, PLAIN).written;
  ivAt = (ivAt + 12) % IVS.length;
  PACKED.set(IVS.subarray(ivAt, ivAt + 12));
  const cipher = createCipheriv("aes-256-gcm", key, PACKED.subarray(0, 12));
  cipher.setAAD(AAD);
  PACKED.set(cipher.update(PLAIN.subarray(0, length)), 12);
  PLAIN.fill(0, 0, length);
  cipher.final();
  PACKED.set(cipher.getAuthTag(), 12 + length);
  return PACKED.subarray(0, 12 + length + 16).toBase64();
}

/** CPU µs per row of bare node:sqlite reads and writes of rows of `length` characters. */
function sqliteRows(dir: string, tag: string, length: number): { get: number; set: number } {
  const db = new DatabaseSync(`${dir}/${tag}.db`);
  db.exec(
    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; CREATE TABLE e (key BLOB PRIMARY KEY " +
      "NOT NULL, value TEXT NOT NULL, version TEXT NOT NULL, expires_at REAL)",
  );
  const upsert = db.prepare(
    "INSERT INTO e VALUES (?, ?, ?, NULL) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
  );
  const get = db.prepare(
    "SELECT value, version, expires_at FROM e WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)",
  );
  const keys = Array.from(
    { length: 1000 },
    (_, i) => ENCODER.encode(`bench\u0000${String(i).padStart(6, "0")}`),
  );
  const value = "x".repeat(length);
  let before = cpuUs();
  for (const k of keys) {
    db.exec("BEGIN IMMEDIATE");
    upsert.run(k, value, "v".repeat(30));
    db.exec("COMMIT");
  }
  const set = (cpuUs() - before) / keys.length;
  before = cpuUs();
  for (let r = 0; r < 20; r++) for (const k of keys) get.get(k, 0);
  const read = (cpuUs() - before) / keys.length / 20;
  db.close();
  return { get: read, set };
}

if (import.meta.main) {
  const ROUNDS = Number(Deno.args[0] ?? 9);
  const N = 2000;
  const REPS = 10;
  const envelope = { $sealed: "fs1:0123456789abcdef:" + seal(KEY_OBJECT) };
  const plain = await openStore({ plugin: "memory" });
  const sealed = await encrypted(await openStore({ plugin: "memory" }), {
    key: "0f".repeat(32),
    cache: 64,
  });
  const keys = Array.from({ length: N }, (_, i) => ["bench", String(i).padStart(6, "0")]);
  const repeat = (f: () => unknown) => () => {
    for (let i = 0; i < N; i++) f();
  };
  const parts: Record<string, () => unknown> = {
    "plain memory set": async () => {
      for (const k of keys) await plain.set(k, VALUE);
    },
    "encrypted memory set": async () => {
      for (const k of keys) await sealed.set(k, VALUE);
    },
    "seal 1 KB (key as KeyObject, as the wrapper does)": repeat(() => seal(KEY_OBJECT)),
    "seal 1 KB (key as raw bytes)": repeat(() => seal(RAW_KEY)),
    "createCipheriv alone (KeyObject)": repeat(() =>
      createCipheriv("aes-256-gcm", KEY_OBJECT, IVS.subarray(0, 12))
    ),
    "createCipheriv alone (raw bytes)": repeat(() =>
      createCipheriv("aes-256-gcm", RAW_KEY, IVS.subarray(0, 12))
    ),
    "JSON.stringify of the value": repeat(() => JSON.stringify(VALUE)),
    "JSON.stringify of the envelope": repeat(() => JSON.stringify(envelope)),
  };
  const names = Object.keys(parts);
  const cpu: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (const name of names) await parts[name](); // warm up
  for (let r = 0; r < ROUNDS; r++) {
    for (let j = 0; j < names.length; j++) {
      const name = names[(j + r) % names.length];
      const before = cpuUs();
      for (let k = 0; k < REPS; k++) await parts[name]();
      cpu[name].push((cpuUs() - before) / N / REPS);
    }
  }
  await plain.close();
  await sealed.close();
  console.log("| part of a set of a 1 KB value | CPU µs per value (median) | rounds |");
  console.log("|---|---:|---|");
  for (const name of names) {
    console.log(
      `| ${name} | ${median(cpu[name]).toFixed(2)} | ${Math.min(...cpu[name]).toFixed(2)}–${
        Math.max(...cpu[name]).toFixed(2)
      } |`,
    );
  }
  const dir = await Deno.makeTempDir({ prefix: "flowstate-bench-seal-" });
  const rows: Record<number, { get: number[]; set: number[] }> = {
    1060: { get: [], set: [] },
    1400: { get: [], set: [] },
  };
  for (let r = 0; r < ROUNDS; r++) {
    for (const length of r % 2 ? [1060, 1400] : [1400, 1060]) {
      const { get, set } = sqliteRows(dir, `r${r}-${length}`, length);
      rows[length].get.push(get);
      rows[length].set.push(set);
    }
  }
  await Deno.remove(dir, { recursive: true });
  for (const length of [1060, 1400]) {
    console.log(
      `| bare node:sqlite, rows of ${length} characters | get ${
        median(rows[length].get).toFixed(2)
      } µs, upsert + commit ${median(rows[length].set).toFixed(1)} µs | |`,
    );
  }
}
