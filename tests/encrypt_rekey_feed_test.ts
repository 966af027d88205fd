/**
 * The rekey job and the change feed (review 15, finding 1): turning
 * encryption on for a store that keeps a feed, then rotating its key. On
 * sqlite and postgres (the feed's own tables) and jsonfile (the core's feed
 * rows in the key space):
 * - before rekey, the feed's values written in the clear read as they are
 *   (marked `unsealed`), not as an error;
 * - after rekey, no value is in the clear anywhere in the store's files
 *   (postgres: its tables);
 * - after a rotation (keys [new, old], rekey, the old key removed), the whole
 *   history reads with the new key alone: changes, getAt, a key's history.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openClient } from "../plugins/postgres/client.ts";
import { type Change, openStore, type Store, type StoreSpec } from "../mod.ts";
import { rekeyStore } from "../jobs.ts";

const K1 = "11".repeat(32);
const K2 = "22".repeat(32);
const SECRET = "PLAINSECRET-feed-9f3a";
const N = 120;
const PG_URL = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL");

interface Backend {
  name: string;
  ignore: boolean;
  spec(dir: string): StoreSpec;
  /** How many times the secret appears in the store's files (postgres: in its tables' values). */
  plaintext(dir: string, spec: StoreSpec): Promise<number>;
  drop?(spec: StoreSpec): Promise<void>;
}

/** Occurrences of `SECRET` in every file of `dir` (a store's file, its WAL, a journal). */
async function inFiles(dir: string): Promise<number> {
  let n = 0;
  for await (const f of Deno.readDir(dir)) {
    if (!f.isFile) continue;
    const text = new TextDecoder("latin1").decode(await Deno.readFile(join(dir, f.name)));
    n += text.split(SECRET).length - 1;
  }
  return n;
}

const BACKENDS: Backend[] = [
  {
    name: "sqlite",
    ignore: false,
    spec: (dir) => ({ plugin: "sqlite", path: join(dir, "s.db"), changes: { keep: "30d" } }),
    plaintext: inFiles,
  },
  {
    name: "jsonfile",
    ignore: false,
    spec: (dir) => ({ plugin: "jsonfile", path: join(dir, "s.json"), changes: { keep: "30d" } }),
    plaintext: inFiles,
  },
  {
    name: "postgres",
    ignore: PG_URL === undefined,
    spec: () => ({
      plugin: "postgres",
      url: PG_URL!,
      table: `rekeyfeed_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`,
      changes: { keep: "30d" },
    }),
    plaintext: async (_dir, spec) => {
      const table = (spec as unknown as { table: string }).table;
      const sql = openClient(PG_URL!);
      try {
        let n = 0;
        for (const t of [table, `${table}_feed`]) {
          const [row] = await sql.unsafe(
            `SELECT count(*)::int AS n FROM "${t}" WHERE value::text LIKE '%${SECRET}%'`,
          );
          n += row.n as number;
        }
        return n;
      } finally {
        await sql.end();
      }
    },
    drop: async (spec) => {
      const table = (spec as unknown as { table: string }).table;
      const sql = openClient(PG_URL!);
      try {
        for (const t of [`${table}_feed`, `${table}_meta`, table]) {
          await sql.unsafe(`DROP TABLE IF EXISTS "${t}" CASCADE`);
        }
      } finally {
        await sql.end();
      }
    },
  },
];

function value(i: number) {
  return { i, secret: `${SECRET}-${i}` };
}

function key(i: number) {
  return ["d", String(i).padStart(4, "0")];
}

async function allChanges(store: Store): Promise<Change[]> {
  const out: Change[] = [];
  for await (const c of store.changes()) out.push(c);
  return out;
}

const withKeys = (spec: StoreSpec, keys: string[]) => ({ ...spec, encrypt: { keys } }) as StoreSpec;

for (const backend of BACKENDS) {
  Deno.test({
    name:
      `${backend.name}: rekey seals the change feed's values too; after a rotation with the old key removed, history reads`,
    ignore: backend.ignore,
    sanitizeResources: false,
    fn: async () => {
      const dir = await Deno.makeTempDir({ prefix: `flowstate-rekey-feed-${backend.name}-` });
      const spec = backend.spec(dir);
      try {
        // Values written before encryption was turned on, then one changed (two versions).
        {
          await using plain = await openStore(spec, { name: "main" });
          const op = plain.atomic();
          for (let i = 0; i < N; i++) op.set(key(i), value(i));
          await op.commit();
          await plain.set(key(0), { ...value(0), changed: true });
        }
        assert.ok((await backend.plaintext(dir, spec)) > 0, "the test writes the secret");

        // Encryption on: the feed's values in the clear read as history, marked unsealed.
        let before: Change[];
        {
          await using store = await openStore(withKeys(spec, [K1]), { name: "main" });
          before = await allChanges(store);
          assert.equal(before.length, N + 1);
          assert.deepEqual(before[1].value, value(1));
          assert.equal(before[1].unsealed, true);
          assert.deepEqual((await store.getAt(key(0), { seq: 1 }))?.value, value(0));
          // The current entry in the clear is still refused (rekey seals it).
          await assert.rejects(() => store.getAt(key(1), { seq: 2 }), /not sealed.*rekey/);

          const report = await rekeyStore(store, { batchSize: 50 });
          // The feed: the N + 1 values in the clear, and the N the entries' reseal just wrote.
          assert.deepEqual(report.changes, { entries: 2 * N + 1, resealed: N + 1, skipped: N });
          assert.equal(report.resealed, N);
          // Idempotent: nothing left, in the entries or the feed.
          const again = await rekeyStore(store, { batchSize: 50 });
          assert.equal(again.resealed, 0);
          assert.equal(again.changes?.resealed, 0);
        }
        assert.equal(await backend.plaintext(dir, spec), 0, "a value in the clear after rekey");

        // Rotation as docs/store.md says: keys [new, old], rekey, then the old key removed.
        {
          await using store = await openStore(withKeys(spec, [K2, K1]), { name: "main" });
          const report = await rekeyStore(store, { batchSize: 50 });
          assert.deepEqual(report.changes, { entries: 3 * N + 1, resealed: 2 * N + 1, skipped: N });
        }
        await using store = await openStore(withKeys(spec, [K2]), { name: "main" });
        const after = await allChanges(store);
        // Only the values' sealing changed: numbers, times, keys, ops, versions, actors are the same.
        const strip = (c: Change) => ({ ...c, unsealed: undefined });
        assert.deepEqual(after.slice(0, N + 1).map(strip), before.map(strip));
        assert.ok(after.every((c) => c.unsealed === undefined));
        assert.deepEqual((await store.getAt(key(0), { seq: 1 }))?.value, value(0));
        assert.deepEqual((await store.getAt(key(5), { seq: N }))?.value, value(5));
        assert.deepEqual((await store.get(key(0)))?.value, { ...value(0), changed: true });
        assert.equal(await backend.plaintext(dir, spec), 0);
      } finally {
        await backend.drop?.(spec);
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

Deno.test("a feed value under a key no longer configured: the error names the key id and says to configure it", async () => {
  const base = await openStore({ plugin: "memory", changes: { keep: "1d" } }, { name: "main" });
  const { encrypted } = await import("../encrypt.ts");
  const old = await encrypted(base, { key: K1 });
  await old.set(["a"], "under the old key");
  await old.delete(["a"]);
  const store = await encrypted(base, { key: K2 });
  const read = async () => {
    for await (const _ of store.changes()) { /* read all */ }
  };
  await assert.rejects(read, (err: Error) => {
    assert.match(
      err.message,
      /change #1 of \["a"\].*key id [0-9a-f]{16}, which is not a configured key/,
    );
    assert.match(err.message, /configure that key \(keys: \[current, old\]\)/);
    assert.doesNotMatch(err.message, /run the rekey job to seal/);
    return true;
  });
  await store.close();
});
