// Incremental backups and point-in-time restore, on memory, jsonfile, sqlite
// (and postgres with FLOWSTATE_TEST_POSTGRES_URL): a restore at several
// instants equals a snapshot taken at that instant; full + increments equals
// the source; gaps, wrong orders and a feed cut by its retention are refused.
import assert from "node:assert/strict";
import { join } from "node:path";
import { BackupError, StoreCorruptError } from "../src/errors.ts";
import { quietProgress } from "./_test_utils.ts";
import { dropSchemaTest } from "../plugins/postgres/_test_utils.ts";
import { openStore, type StoreSpec } from "../src/plugin.ts";
import { trimChanges } from "../src/store/store.ts";
import type { JsonValue, Store } from "../src/store/types.ts";
import { type FakeClock, fakeClock } from "../src/testing/clock.ts";
import { backupIncrement, backupStore } from "./backup.ts";
import { restoreBackup, verifyBackup } from "./restore.ts";

const PG_URL = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL");
const PG_SCHEMA = `flowstate_test_pitr_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;

interface Backend {
  name: string;
  spec: (dir: string, id: string) => StoreSpec;
  ignore?: boolean;
}

const BACKENDS: Backend[] = [
  { name: "memory", spec: () => ({ plugin: "memory" }) },
  { name: "jsonfile", spec: (dir, id) => ({ plugin: "jsonfile", path: join(dir, `${id}.json`) }) },
  { name: "sqlite", spec: (dir, id) => ({ plugin: "sqlite", path: join(dir, `${id}.db`) }) },
  {
    name: "postgres",
    spec: (_dir, id) => ({ plugin: "postgres", url: PG_URL!, schema: PG_SCHEMA, table: id }),
    ignore: PG_URL === undefined,
  },
];

type Snapshot = Record<string, { value: JsonValue; expiresAt: number | null }>;

async function snapshot(store: Store): Promise<Snapshot> {
  const out: Snapshot = {};
  for await (const e of store.list({})) {
    out[JSON.stringify(e.key)] = { value: e.value, expiresAt: e.expiresAt };
  }
  return out;
}

/** A small deterministic random source, so that a failure repeats. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** `n` writes: sets, deletes, atomic batches of several keys, a clear of a prefix; 1 ms apart. */
async function churn(store: Store, clock: FakeClock, n: number, rand: () => number) {
  for (let i = 0; i < n; i++) {
    clock.advance(1);
    const k = () => ["k", String(Math.floor(rand() * 40))];
    const r = rand();
    if (r < 0.55) {
      await store.set(k(), { i, n: Math.floor(rand() * 1000), s: "x".repeat(i % 7) });
    } else if (r < 0.75) {
      await store.delete(k());
    } else if (r < 0.9) {
      const op = store.atomic();
      op.set(k(), i).set(["other", String(i % 5)], [i, "b"]).delete(k());
      await op.commit();
    } else if (r < 0.95) {
      await store.set(["ttl", String(i % 3)], i, { expireIn: 3_600_000 });
    } else {
      await store.clear(["other"]);
    }
  }
}

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-pitr-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

for (const backend of BACKENDS) {
  Deno.test({
    name: `${backend.name}: point-in-time restore at several instants equals a snapshot taken then`,
    ignore: backend.ignore,
    async fn() {
      await withDir(async (dir) => {
        const clock = fakeClock();
        const rand = random(7);
        let n = 0;
        const open = async (feed: boolean) =>
          await openStore({
            ...backend.spec(dir, `s${n++}`),
            ...(feed ? { changes: { keep: "3650d" } } : {}),
          }, { clock, name: "src" });
        await using src = await open(true);
        await churn(src, clock, 60, rand);
        const full = join(dir, "full.fsbackup");
        await backupStore(src, full, { clock });
        assert.equal((await verifyBackup(full)).header.feedSeq, (await src.feedInfo()).lastSeq);
        const instants: { time: number; state: Snapshot }[] = [];
        const inc1 = join(dir, "inc1.fsbackup");
        const inc2 = join(dir, "inc2.fsbackup");
        for (let round = 0; round < 4; round++) {
          await churn(src, clock, 40, rand);
          instants.push({ time: clock.now(), state: await snapshot(src) });
          if (round === 1) await backupIncrement(src, inc1, full, { clock });
        }
        await backupIncrement(src, inc2, inc1, { clock });
        const end = await snapshot(src);
        await churn(src, clock, 20, rand); // after the last file: only in the live feed
        const live = await snapshot(src);

        for (const [i, { time, state }] of instants.entries()) {
          // From the full backup and the live feed.
          await using a = await open(false);
          const r = await restoreBackup(a, full, { at: { time }, from: src, clock });
          assert.deepEqual(await snapshot(a), state, `instant ${i} from the live feed`);
          assert.ok(r.changes > 0);
          // From the full backup and the increments.
          await using b = await open(false);
          await restoreBackup(b, full, { at: { time }, increments: [inc1, inc2], clock });
          assert.deepEqual(await snapshot(b), state, `instant ${i} from the increments`);
          // And as getAt reads each key of the source at that time.
          for (const [id, entry] of Object.entries(state)) {
            const was = await src.getAt(JSON.parse(id), { time });
            assert.deepEqual(was?.value, entry.value);
          }
        }
        // The increments, then the live feed for the rest; no time: up to the last change.
        await using c = await open(false);
        await restoreBackup(c, full, { increments: [inc1], from: src, clock });
        assert.deepEqual(await snapshot(c), live);
        // Full + increments alone equals the source as of the last increment.
        await using d = await open(false);
        const r = await restoreBackup(d, full, { increments: [inc1, inc2], clock });
        assert.deepEqual(await snapshot(d), end);
        assert.equal(r.feedSeq, (await verifyBackup(inc2)).header.toSeq);
      });
    },
  });
}

Deno.test("incremental restore refuses a gap, a wrong order and another chain, naming files and sequence numbers", async () => {
  await withDir(async (dir) => {
    const clock = fakeClock();
    await using src = await openStore({ plugin: "memory", changes: { keep: "30d" } }, {
      clock,
      name: "src",
    });
    await src.set(["a"], 1);
    const full = join(dir, "full.fsbackup");
    await backupStore(src, full, { clock });
    await src.set(["b"], 2);
    const inc1 = join(dir, "inc1.fsbackup");
    await backupIncrement(src, inc1, full, { clock });
    await src.set(["c"], 3);
    const inc2 = join(dir, "inc2.fsbackup");
    await backupIncrement(src, inc2, inc1, { clock });
    const other = join(dir, "other.fsbackup");
    await backupStore(src, other, { clock });
    const inc3 = join(dir, "inc3.fsbackup");
    await src.set(["d"], 4);
    await backupIncrement(src, inc3, other, { clock });

    await using target = await openStore({ plugin: "memory" }, { clock, name: "t" });
    await assert.rejects(
      restoreBackup(target, full, { increments: [inc2] }),
      (err: Error) => {
        assert.ok(err instanceof BackupError);
        assert.match(err.message, /a gap: .*full\.fsbackup ends at change 1, and .*inc2\.fsbackup/);
        assert.match(err.message, /changes 2 to 2 are missing/);
        return true;
      },
    );
    await assert.rejects(
      restoreBackup(target, full, { increments: [inc2, inc1] }),
      /a gap/,
    );
    await assert.rejects(
      restoreBackup(target, full, { increments: [inc1, inc1] }),
      /out of order: .*inc1\.fsbackup holds the changes after 1, but .*inc1\.fsbackup already ends at change 2/,
    );
    await assert.rejects(
      restoreBackup(target, full, { increments: [inc1, inc2, inc3] }),
      /inc3\.fsbackup does not continue .*full\.fsbackup: its chain starts from another full backup/,
    );
    await assert.rejects(
      restoreBackup(target, inc1, { increments: [inc2] }),
      /is an increment .*give the full backup first/,
    );
    await assert.rejects(restoreBackup(target, full, { increments: [full] }), /is a full backup/);
    assert.deepEqual(await snapshot(target), {}, "nothing was written");
    // In the right order, it restores.
    await restoreBackup(target, full, { increments: [inc1, inc2] });
    assert.deepEqual(Object.keys(await snapshot(target)), ['["a"]', '["b"]', '["c"]']);
  });
});

Deno.test("an incremental backup is refused when the feed's retention removed the changes it needs", async () => {
  await withDir(async (dir) => {
    const clock = fakeClock();
    await using src = await openStore(
      { plugin: "memory", changes: { keep: { count: 3 } } },
      { clock, name: "src" },
    );
    await src.set(["a"], 1);
    const full = join(dir, "full.fsbackup");
    await backupStore(src, full, { clock });
    for (let i = 0; i < 10; i++) await src.set(["b", String(i)], i);
    await trimChanges(src);
    await assert.rejects(
      backupIncrement(src, join(dir, "inc.fsbackup"), full),
      (err: Error) => {
        assert.ok(err instanceof BackupError);
        assert.match(
          err.message,
          /no longer holds the changes after .*full\.fsbackup \(it needs change 2, the oldest kept is 9/,
        );
        assert.match(err.message, /take a full backup/);
        return true;
      },
    );
    // A point-in-time restore from that live feed is refused the same way.
    await using target = await openStore({ plugin: "memory" }, { clock, name: "t" });
    await assert.rejects(
      restoreBackup(target, full, { at: { time: clock.now() }, from: src }),
      /a gap: .*full\.fsbackup ends at change 1, and the feed of store "src" starts at 9/,
    );
    // Without a feed at all, clearly.
    await using plain = await openStore({ plugin: "memory" }, { clock, name: "plain" });
    await assert.rejects(
      backupIncrement(plain, join(dir, "x.fsbackup"), full),
      /keeps no change feed; add changes: \{ keep: "30d" \}/,
    );
  });
});

Deno.test("a point-in-time restore goes into an empty store only, from a backup taken before that time", async () => {
  await withDir(async (dir) => {
    const clock = fakeClock();
    await using src = await openStore({ plugin: "memory", changes: { keep: "30d" } }, {
      clock,
      name: "src",
    });
    await src.set(["a"], 1);
    clock.advance(1000);
    const before = clock.now();
    clock.advance(1000);
    await src.set(["a"], 2);
    const full = join(dir, "full.fsbackup");
    await backupStore(src, full, { clock });
    await using target = await openStore({ plugin: "memory" }, { clock, name: "t" });
    await assert.rejects(
      restoreBackup(target, full, { at: { time: before }, from: src }),
      /full\.fsbackup was taken after .*: restore from a full backup taken before that point/,
    );
    await target.set(["x"], 1);
    await assert.rejects(
      restoreBackup(target, full, { at: { time: clock.now() }, from: src }),
      /goes into a new, empty store only/,
    );
    assert.deepEqual(await snapshot(target), { '["x"]': { value: 1, expiresAt: null } });
    // The files alone cannot tell what happened after the last one was taken.
    await using empty = await openStore({ plugin: "memory" }, { clock, name: "e" });
    clock.advance(5000);
    await assert.rejects(
      restoreBackup(empty, full, { at: { time: clock.now() } }),
      /the changes after it are not in the files/,
    );
  });
});

Deno.test("a point-in-time restore stopped midway resumes from its marker and ends equal; a damaged increment is refused before writing", async () => {
  await withDir(async (dir) => {
    const clock = fakeClock();
    const rand = random(11);
    await using src = await openStore(
      { plugin: "sqlite", path: join(dir, "src.db"), changes: { keep: "30d" } },
      { clock, name: "src" },
    );
    await churn(src, clock, 50, rand);
    const full = join(dir, "full.fsbackup");
    await backupStore(src, full, { clock });
    await churn(src, clock, 300, rand);
    const inc = join(dir, "inc.fsbackup");
    await backupIncrement(src, inc, full, { clock });
    await churn(src, clock, 300, rand);
    const time = clock.now();
    const expected = await snapshot(src);
    await churn(src, clock, 50, rand);

    await using target = await openStore({ plugin: "sqlite", path: join(dir, "t.db") }, {
      clock,
      name: "t",
    });
    const stop = new AbortController();
    const progress = quietProgress((label, done) => {
      if (label.startsWith("restore into") && done >= 100) stop.abort();
    });
    const options = { at: { time }, increments: [inc], from: src, clock, batchSize: 50 };
    const first = await restoreBackup(target, full, { ...options, signal: stop.signal, progress });
    assert.equal(first.cancelled, true);
    const second = await restoreBackup(target, full, options);
    assert.equal(second.cancelled, false);
    assert.ok(second.resumedFrom >= 100, `resumed from ${second.resumedFrom}`);
    assert.deepEqual(await snapshot(target), expected);

    // One byte of the increment changed: refused, naming it; the target is not touched.
    const bytes = await Deno.readFile(inc);
    bytes[bytes.length - 20] ^= 0xff;
    const bad = join(dir, "bad.fsbackup");
    await Deno.writeFile(bad, bytes);
    await using empty = await openStore({ plugin: "memory" }, { clock, name: "e" });
    await assert.rejects(
      restoreBackup(empty, full, { increments: [bad] }),
      (err: Error) => err instanceof StoreCorruptError && /bad\.fsbackup/.test(err.message),
    );
    assert.deepEqual(await snapshot(empty), {});
  });
});

Deno.test("an encrypted store: increments hold sealed values, and a point-in-time restore into an encrypted store equals the source", async () => {
  await withDir(async (dir) => {
    const key = "kZ8b3YqB6h4n0aY0m6E2c1rG9d5Vq7sJ2uT4wX8yZ0A=";
    const clock = fakeClock();
    const rand = random(5);
    const spec = (id: string) =>
      ({ plugin: "sqlite", path: join(dir, `${id}.db`), encrypt: { key } }) as StoreSpec;
    await using src = await openStore({ ...spec("src"), changes: { keep: "30d" } }, {
      clock,
      name: "src",
    });
    await src.set(["secret"], "PLAINTEXT-MARKER");
    const full = join(dir, "full.fsbackup");
    await backupStore(src, full, { clock });
    await churn(src, clock, 40, rand);
    await src.set(["secret2"], "PLAINTEXT-MARKER");
    const inc = join(dir, "inc.fsbackup");
    await backupIncrement(src, inc, full, { clock });
    const time = clock.now();
    const expected = await snapshot(src);
    await churn(src, clock, 20, rand);
    // No value in the clear in the increment.
    const text = await new Response(
      (await Deno.open(inc)).readable.pipeThrough(new DecompressionStream("gzip")),
    ).text();
    assert.ok(!text.includes("PLAINTEXT-MARKER"));
    assert.ok(text.includes('"encrypted"'));

    await using target = await openStore(spec("t"), { clock, name: "t" });
    await restoreBackup(target, full, { at: { time }, increments: [inc], from: src, clock });
    assert.deepEqual(await snapshot(target), expected);
    await using plain = await openStore({ plugin: "memory" }, { clock, name: "p" });
    await assert.rejects(
      restoreBackup(plain, full, { increments: [inc], clock }),
      /sealed values .* the store is not encrypted/,
    );
  });
});

dropSchemaTest("pitr: drop the postgres test schema", PG_SCHEMA);
