// cached() over an encrypted store: the encryption handle is forwarded, so the rekey, backup
// and restore jobs see the sealed values through the cache, and the cache stays coherent.
import assert from "node:assert/strict";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { openStore } from "../../mod.ts";
import { cached } from "../../cache.ts";
import { encrypted, SEALED_FIELD } from "../../encrypt.ts";
import { withHooks } from "../../hooks.ts";
import { backupStore, rekeyStore, restoreBackup } from "../../jobs.ts";

const OLD_KEY = "11".repeat(32);
const NEW_KEY = "22".repeat(32);
const MARKER = "4242-SECRET";

Deno.test("cached(encrypted): rekey sees through a write-behind cache, and reads after it show the new versions", async () => {
  const base = await openStore({ plugin: "memory" }, { name: "main" });
  const old = await encrypted(base, { key: OLD_KEY });
  for (let i = 0; i < 5; i++) await old.set(["k", String(i)], { n: i });
  const store = cached(await encrypted(base, { keys: [NEW_KEY, OLD_KEY] }), {
    mode: "write-behind",
    flushInterval: 0,
  });
  // cached: the versions under the old key
  const before = await store.get(["k", "0"]);
  assert.equal(before?.value && (before.value as { n: number }).n, 0);
  // a queued write-behind write is flushed before the rekey reads the store
  await store.set(["k", "queued"], { n: 99 });
  assert.equal(store.stats().pendingWrites, 1);

  const report = await rekeyStore(store);
  assert.equal(report.entries, 6);
  assert.equal(report.resealed, 5); // the queued write went through the wrapper: new key already
  assert.equal(report.skipped, 1);
  assert.equal(store.stats().pendingWrites, 0);
  assert.equal((await rekeyStore(store)).resealed, 0);

  // the cache dropped what the rekey rewrote: a read shows the store's new version, and a
  // compare-and-set with it succeeds
  const after = await store.get(["k", "0"]);
  assert.deepEqual(after?.value, { n: 0 });
  assert.notEqual(after?.version, before?.version);
  assert.equal(after?.version, (await base.get(["k", "0"]))?.version);
  assert.equal((await store.set(["k", "0"], { n: 1 }, { ifVersion: after!.version })).ok, true);
  // the old key alone no longer opens anything
  await assert.rejects(() => old.get(["k", "1"]));
  await store.close();
});

Deno.test("cached(encrypted) and hooks over it: a backup stays sealed and restores into a cached encrypted store", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-cached-encrypt-" });
  try {
    const source = withHooks(
      cached(
        await encrypted(await openStore({ plugin: "memory" }, { name: "main" }), {
          key: NEW_KEY,
        }),
      ),
      {},
    );
    for (let i = 0; i < 10; i++) await source.set(["o", String(i)], { card: `${MARKER}-${i}` });
    const file = join(dir, "cached.fsbackup");
    const info = await backupStore(source, file);
    assert.equal(info.entries, 10);
    const text = new TextDecoder().decode(gunzipSync(await Deno.readFile(file)));
    assert.ok(!text.includes(MARKER), "the backup holds a value in the clear");
    assert.ok(text.includes(SEALED_FIELD));

    const target = cached(
      await encrypted(await openStore({ plugin: "memory" }, { name: "target" }), {
        key: NEW_KEY,
      }),
    );
    assert.equal(await target.get(["o", "3"]), null); // cached as absent before the restore
    const restored = await restoreBackup(target, file);
    assert.equal(restored.restored, 10);
    // the restore wrote through the cache's sealed view: the cached absence was dropped
    assert.deepEqual((await target.get(["o", "3"]))?.value, { card: `${MARKER}-3` });
    await source.close();
    await target.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cached() over a plain store forwards no encryption handle: rekey refuses it", async () => {
  await using store = cached(await openStore({ plugin: "memory" }, { name: "plain" }));
  await assert.rejects(() => rekeyStore(store), /not encrypted/);
});

Deno.test("cached(), withHooks() and encrypted() forward a store's listen and signal", async () => {
  const base = await openStore({ plugin: "memory" }, { name: "main" });
  const topics: string[] = [];
  // A store that carries signals (as postgres does), around the memory store.
  const signalling = new Proxy(base, {
    get(target, property) {
      if (property === "listen") {
        return (topic: string, _onSignal: () => void) => {
          topics.push(`listen ${topic}`);
          return Promise.resolve(() => Promise.resolve());
        };
      }
      if (property === "signal") {
        return (topic: string) => (topics.push(`signal ${topic}`), Promise.resolve());
      }
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const store = withHooks(cached(await encrypted(signalling, { key: NEW_KEY })), {});
  assert.equal(typeof store.listen, "function");
  const stop = await store.listen!("queue", () => {});
  await store.signal!("queue");
  await stop();
  assert.deepEqual(topics, ["listen queue", "signal queue"]);
  // and none where the store has none
  await using plain = withHooks(cached(await openStore({ plugin: "memory" })), {});
  assert.equal(plain.listen, undefined);
  await store.close();
});
