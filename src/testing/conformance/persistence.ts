/**
 * Conformance cases run when the backend is persistent: what survives close
 * and reopen.
 *
 * @module
 */
import type { JsonValue, Key } from "../../store/types.ts";
import {
  check,
  collect,
  differentVersions,
  expectAbsent,
  expectValue,
  listKeys,
  same,
  seed,
} from "./_assert.ts";
import type { DefineCase } from "./_case.ts";

/** Registers the cases of this file with `definePersistent`, in the order of the report. */
export function definePersistenceCases(definePersistent: DefineCase): void {
  definePersistent(
    "persistence: entries, values and versions survive close and reopen",
    async (c) => {
      let store = await c.open();
      const values: [Key, JsonValue][] = [
        [["p", "a"], { nested: [1, "two", null, { three: true }] }],
        [["p", "b"], "😀 \u0000 é"],
        [["p", "c"], 3.25],
        [["p", "d"], null],
        [["p\u0000"], false],
      ];
      await seed(store, values.slice(0, 3));
      for (const [key, value] of values.slice(3)) await store.set(key, value);
      const before = await collect(store.list());
      store = await c.reopen(store);
      same(
        await collect(store.list()),
        before,
        "every entry (key, value, version, expiresAt) after reopen",
      );
      const cas = await store.set(["p", "a"], "updated", { ifVersion: before[0].version });
      check(cas.ok, "a version read before close must still work for ifVersion after reopen");
      differentVersions(
        [...new Set(before.map((e) => e.version)), cas.version],
        "versions after reopen",
      );
    },
  );

  definePersistent("persistence: expiry survives close and reopen", async (c) => {
    let store = await c.open();
    const start = c.clock.now();
    await store.set(["ttl"], "short", { expireIn: 60_000 });
    await store.set(["forever"], "long");
    store = await c.reopen(store);
    const ttl = await store.get(["ttl"]);
    check(
      ttl !== null,
      `an entry expiring at ${
        start + 60_000
      } must still be there after reopen (clock at ${c.clock.now()}); was the expiry checked against the system clock instead of the store's clock?`,
    );
    same(ttl.expiresAt, start + 60_000, "expiresAt after reopen");
    c.clock.advance(60_000);
    await expectAbsent(store, ["ttl"], "after expiry, in the reopened store");
    store = await c.reopen(store);
    await expectAbsent(store, ["ttl"], "an expired entry after a second reopen");
    await expectValue(store, ["forever"], "long", "an entry without expiry after two reopens");
  });

  definePersistent(
    "persistence: deletes, clears and atomic commits survive close and reopen",
    async (c) => {
      let store = await c.open();
      await seed(store, [[["a"], 1], [["b", "1"], 2], [["b", "2"], 3], [["c"], 4]]);
      await store.delete(["a"]);
      await store.clear(["b"]);
      await store.atomic().set(["d"], 5).delete(["c"]).commit();
      await store.atomic().check(["d"], null).set(["e"], 6).commit(); // fails: writes nothing
      store = await c.reopen(store);
      same(await listKeys(store), [["d"]], "keys after reopen");
      await expectValue(store, ["d"], 5, "an atomic set after reopen");
    },
  );

  definePersistent(
    "persistence: writes in flight when close() is called land or reject, never vanish",
    async (c) => {
      const store = await c.open();
      // Writes on their way (sets, an atomic commit, a delete), then close() before any settles.
      await store.set(["gone"], 0);
      const writes: [string, Promise<unknown>][] = [];
      for (let i = 0; i < 20; i++) {
        writes.push([`set ["w","${i}"]`, store.set(["w", String(i)], i)]);
      }
      writes.push(["atomic commit", store.atomic().set(["x"], "x").set(["y"], "y").commit()]);
      writes.push(['delete ["gone"]', store.delete(["gone"])]);
      const closing = store.close();
      const outcomes = await Promise.allSettled(writes.map(([, write]) => write));
      await closing;
      const again = await c.reopen(store);
      const vanished: string[] = [];
      const landed = async (key: Key, value: JsonValue | undefined): Promise<boolean> => {
        const entry = await again.get(key);
        return value === undefined ? entry === null : entry?.value === value;
      };
      for (const [index, outcome] of outcomes.entries()) {
        // A write that rejected (the store closing under it) is the caller's to retry: fine.
        if (outcome.status === "rejected") continue;
        const what = writes[index][0];
        const ok = index < 20
          ? await landed(["w", String(index)], index)
          : what === "atomic commit"
          ? await landed(["x"], "x") && await landed(["y"], "y")
          : await landed(["gone"], undefined);
        if (!ok) vanished.push(what);
      }
      check(
        vanished.length === 0,
        `writes that resolved as done while close() was called are not in the store after ` +
          `reopening: ${vanished.join(", ")}; close() must let the commits on their way finish ` +
          `(or fail them), never acknowledge one and drop it`,
      );
    },
  );
}
