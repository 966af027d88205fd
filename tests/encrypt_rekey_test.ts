/**
 * The rekey job: rotation in place, resumed after kill -9, concurrent writes
 * never lost, plaintext values sealed.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { openRuntime, openStore, runJob, type Store, type StoreSpec } from "../mod.ts";
import { encrypted } from "../encrypt.ts";
import { type RekeyReport, rekeyStore } from "../jobs.ts";
import { killAtLine } from "./_kill_at.ts";
import { exitOf } from "./_deadline.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const CHILD = join(ROOT, "tests/fixtures/rekey_child.ts");
const OLD_KEY = "11".repeat(32);
const NEW_KEY = "22".repeat(32);
const ENTRIES = 600;

function sealedWith(store: Store): Promise<Map<string, number>> {
  const handle =
    (store as unknown as Record<symbol, { sealed: Store; keyIdOf(v: unknown): string }>)[
      Symbol.for("flowstate.encryption")
    ];
  return (async () => {
    const counts = new Map<string, number>();
    for await (const e of handle.sealed.list()) {
      const id = handle.keyIdOf(e.value) ?? "plain";
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    return counts;
  })();
}

/**
 * Run the rekey job in a child process on `dir`'s store (with a change feed
 * when `feed`), and kill it with SIGKILL once it reports `killAt` entries done.
 */
async function rekeyKilledAt(dir: string, killAt: number, feed = false): Promise<void> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--config",
      join(ROOT, "deno.json"),
      CHILD,
      dir,
      NEW_KEY,
      OLD_KEY,
      ...(feed ? ["feed"] : []),
    ],
    stdout: "piped",
    stderr: "null",
    env: { RUST_BACKTRACE: "0" },
  }).spawn();
  const killed = await killAtLine(child, (line) => {
    const match = /^progress (\d+)$/.exec(line);
    return match !== null && Number(match[1]) >= killAt;
  });
  assert.ok(killed, "the child finished before its kill point");
  assert.equal((await exitOf(child)).signal, "SIGKILL");
}

/** Run the rekey job again in this process on `dir`'s store `main` (`spec`); resolves its report. */
async function rekeyAgain(dir: string, spec: StoreSpec): Promise<RekeyReport> {
  await using rt = await openRuntime({
    config: { stores: { main: spec } },
    home: join(dir, "home"),
    cwd: dir,
  });
  const run = await runJob(rt, "rekey", { progress: "quiet", onLog: () => {} });
  assert.equal(run.status, "succeeded", JSON.stringify(run.error));
  return (run.outputs as unknown as { stores: RekeyReport[] }).stores[0];
}

/** How many of the change feed's values are sealed with each key id ("plain": in the clear). */
async function feedSealedWith(store: Store): Promise<Map<string, number>> {
  const handle =
    (store as unknown as Record<symbol, { sealed: Store; keyIdOf(v: unknown): string }>)[
      Symbol.for("flowstate.encryption")
    ];
  const counts = new Map<string, number>();
  for await (const c of handle.sealed.changes()) {
    if (c.op !== "set") continue;
    const id = handle.keyIdOf(c.value) ?? "plain";
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

Deno.test("rekey killed with kill -9 mid-way loses nothing; run again, every value is under the new key", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-rekey-kill-" });
  try {
    const path = join(dir, "s.db");
    let oldId: string;
    {
      await using old = await openStore({ plugin: "sqlite", path, encrypt: { key: OLD_KEY } });
      oldId = (old as unknown as { keyId: string }).keyId;
      const op = old.atomic();
      for (let i = 0; i < ENTRIES; i++) {
        op.set(["k", String(i).padStart(4, "0")], { i, secret: `s${i}` });
      }
      await op.commit();
      await old.set(["expiring"], "e", { expireIn: 3_600_000 });
    }
    await rekeyKilledAt(dir, 200);

    // Mid-way: some values under each key, every one readable with both keys.
    const config = (keys: string[]) => ({ plugin: "sqlite" as const, path, encrypt: { keys } });
    {
      await using both = await openStore(config([NEW_KEY, OLD_KEY]));
      const counts = await sealedWith(both);
      const newId = (both as unknown as { keyId: string }).keyId;
      assert.ok((counts.get(newId) ?? 0) >= 200, `after the kill: ${JSON.stringify([...counts])}`);
      assert.ok((counts.get(oldId) ?? 0) > 0, `after the kill: ${JSON.stringify([...counts])}`);
      let n = 0;
      for await (const e of both.list({ prefix: ["k"] })) {
        assert.deepEqual(e.value, { i: n, secret: `s${n}` });
        n++;
      }
      assert.equal(n, ENTRIES);
    }

    // Run again (in this process): it finishes, skipping what was done.
    {
      const report = await rekeyAgain(dir, config([NEW_KEY, OLD_KEY]));
      assert.ok(report.skipped >= 200, JSON.stringify(report));
      assert.ok(report.resealed > 0 && report.resealed < ENTRIES + 1, JSON.stringify(report));
    }
    // The new key alone opens every value; expiry was kept.
    await using fresh = await openStore(config([NEW_KEY]));
    let n = 0;
    for await (const e of fresh.list({ prefix: ["k"] })) {
      assert.deepEqual(e.value, { i: n, secret: `s${n}` });
      n++;
    }
    assert.equal(n, ENTRIES);
    const expiring = await fresh.get(["expiring"]);
    assert.equal(expiring?.value, "e");
    assert.ok(expiring!.expiresAt! > Date.now() + 3_000_000);
    // The old key alone no longer opens any value of the store.
    await assert.rejects(() => openStore(config([OLD_KEY])), /the key is wrong/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rekey never loses a concurrent write: a compare-and-set per entry", async () => {
  const base = await openStore({ plugin: "memory" }, { name: "main" });
  const old = await encrypted(base, { key: OLD_KEY });
  const N = 2000;
  for (let i = 0; i < N; i++) await old.set(["k", String(i)], `old ${i}`);
  const store = await encrypted(base, { keys: [NEW_KEY, OLD_KEY] });
  const writer = (async () => {
    for (let i = N - 1; i >= 0; i--) {
      await store.set(["k", String(i)], `written ${i}`);
      if (i % 50 === 0) await new Promise((r) => setTimeout(r, 0));
    }
  })();
  const [report] = await Promise.all([rekeyStore(store, { batchSize: 100 }), writer]);
  assert.equal(report.entries, N);
  for (let i = 0; i < N; i++) {
    assert.equal((await store.get(["k", String(i)]))?.value, `written ${i}`);
  }
  assert.deepEqual([...(await sealedWith(store)).keys()], [store.keyId]);
  await store.close();
});

Deno.test("rekey seals the values of a store that held them in the clear; a dry run writes nothing", async () => {
  const base = await openStore({ plugin: "memory" }, { name: "main" });
  await base.set(["a"], { secret: "was plain" });
  await base.set(["b"], 2);
  const store = await encrypted(base, { key: NEW_KEY });
  await assert.rejects(() => store.get(["a"]), /is not sealed.*rekey/);
  assert.equal((await rekeyStore(store, { dryRun: true })).resealed, 2);
  assert.deepEqual((await base.get(["a"]))?.value, { secret: "was plain" });
  const report = await rekeyStore(store);
  assert.deepEqual(
    { entries: report.entries, resealed: report.resealed, skipped: report.skipped },
    { entries: 2, resealed: 2, skipped: 0 },
  );
  assert.deepEqual((await store.get(["a"]))?.value, { secret: "was plain" });
  assert.ok(!JSON.stringify((await base.get(["a"]))?.value).includes("was plain"));
  await assert.rejects(() => rekeyStore(base), /not encrypted/);
  await store.close();
});

Deno.test("rekey without an encrypted store in the config fails saying what to add", async () => {
  await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  const run = await runJob(rt, "rekey", { progress: "quiet", onLog: () => {} });
  assert.equal(run.status, "failed");
  assert.match(JSON.stringify(run.error), /no store is encrypted; add encrypt/);
});

Deno.test("rekey after changing the plaintext paths: values read again, and queries see the new paths", async () => {
  const base = await openStore({ plugin: "memory" }, { name: "main" });
  const before = await encrypted(base, { key: NEW_KEY, plaintext: ["status"] });
  await before.set(["o", "1"], { status: "open", customer: { id: "c1", name: "Ada" } });
  await before.set(["o", "2"], [1, 2]);
  const after = await encrypted(base, { key: NEW_KEY, plaintext: ["customer.id", "status"] });
  await assert.rejects(() => after.get(["o", "1"]), /plaintext paths changed.*rekey/);
  const report = await rekeyStore(after);
  assert.deepEqual({ resealed: report.resealed, skipped: report.skipped }, {
    resealed: 1,
    skipped: 1,
  });
  assert.deepEqual((await after.get(["o", "1"]))?.value, {
    status: "open",
    customer: { id: "c1", name: "Ada" },
  });
  const hits = await after.query({ where: [{ path: "customer.id", op: "eq", value: "c1" }] });
  assert.deepEqual(hits.map((e) => e.key), [["o", "1"]]);
  assert.equal((await rekeyStore(after)).resealed, 0);
  await after.close();
});

Deno.test("rekey killed with kill -9 mid-way through the change feed: run again, the whole feed is under the new key", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-rekey-kill-feed-" });
  try {
    const path = join(dir, "s.db");
    const config = (keys: string[]) => ({
      plugin: "sqlite" as const,
      path,
      encrypt: { keys },
      changes: { keep: "30d" },
    });
    let oldId: string;
    {
      await using old = await openStore(config([OLD_KEY]));
      oldId = (old as unknown as { keyId: string }).keyId;
      const op = old.atomic();
      for (let i = 0; i < ENTRIES; i++) {
        op.set(["k", String(i).padStart(4, "0")], { i, secret: `s${i}` });
      }
      await op.commit();
    }
    // The entries come first (ENTRIES of them), then the feed: killed in the feed's first half.
    await rekeyKilledAt(dir, ENTRIES + 150, true);

    let newId: string;
    {
      await using both = await openStore(config([NEW_KEY, OLD_KEY]));
      newId = (both as unknown as { keyId: string }).keyId;
      const counts = await feedSealedWith(both);
      // The old values resealed so far, and the new values the entries' reseal appended.
      assert.ok(
        (counts.get(newId) ?? 0) >= ENTRIES + 150,
        `after the kill: ${JSON.stringify([...counts])}`,
      );
      assert.ok((counts.get(oldId) ?? 0) > 0, `after the kill: ${JSON.stringify([...counts])}`);
    }
    {
      const report = await rekeyAgain(dir, config([NEW_KEY, OLD_KEY]));
      assert.equal(report.resealed, 0, JSON.stringify(report));
      const changes = report.changes!;
      assert.ok(changes.skipped >= ENTRIES + 150, JSON.stringify(report));
      assert.ok(changes.resealed > 0 && changes.resealed <= ENTRIES - 150, JSON.stringify(report));
    }
    // The old key removed: the whole feed reads with the new key alone, the same values.
    await using fresh = await openStore(config([NEW_KEY]));
    assert.deepEqual([...(await feedSealedWith(fresh)).keys()], [newId]);
    let n = 0;
    for await (const c of fresh.changes({ limit: ENTRIES })) {
      assert.deepEqual([c.seq, c.value], [n + 1, { i: n, secret: `s${n}` }]);
      n++;
    }
    assert.equal(n, ENTRIES);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
