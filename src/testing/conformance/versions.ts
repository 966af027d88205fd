/**
 * Conformance cases: versions, and compare-and-set with `ifVersion`.
 *
 * @module
 */
import { check, differentVersions, expectAbsent, expectValue, same, show } from "./_assert.ts";
import type { DefineCase } from "./_case.ts";

/** Registers the cases of this file with `define`, in the order of the report. */
export function defineVersionCases(define: DefineCase): void {
  // Versions

  define("versions change on every write, even an identical rewrite", async (c) => {
    const store = await c.open();
    const versions: string[] = [];
    for (const value of [1, 1, 2, 2]) {
      const result = await store.set(["same"], value);
      check(result.ok, "set() must succeed");
      versions.push(result.version);
      same(
        (await store.get(["same"]))?.version,
        result.version,
        "get() reports the latest version",
      );
    }
    const atomic = await store.atomic().set(["same"], 2).commit();
    check(atomic.ok, "atomic rewrite must succeed");
    versions.push(atomic.version);
    differentVersions(versions, "five writes of the same key");
  });

  define("versions differ across keys", async (c) => {
    const store = await c.open();
    const a = await store.set(["a"], 1);
    const b = await store.set(["b"], 1);
    const x = await store.set(["c", "x"], 1);
    differentVersions(
      [a.version, b.version, x.version],
      "separate writes of different keys",
    );
  });

  define("a key deleted and written again gets a new version", async (c) => {
    const store = await c.open();
    const first = await store.set(["again"], "v");
    await store.delete(["again"]);
    const second = await store.set(["again"], "v");
    differentVersions([first.version, second.version], "before and after delete");
    const stale = await store.set(["again"], "w", { ifVersion: first.version! });
    same(
      stale,
      { ok: false, version: null, conflicts: [["again"]] },
      "ifVersion from before the delete",
    );
  });

  // Compare-and-set

  define("set() with a matching ifVersion writes", async (c) => {
    const store = await c.open();
    const first = await store.set(["cas"], 1);
    const second = await store.set(["cas"], 2, { ifVersion: first.version! });
    check(second.ok, `set(ifVersion: current) must succeed, got ${show(second)}`);
    differentVersions([first.version, second.version], "a CAS write");
    same(await store.get(["cas"]), {
      key: ["cas"],
      value: 2,
      version: second.version,
      expiresAt: null,
    }, "after CAS");
  });

  define("set() with a stale ifVersion writes nothing and reports the key", async (c) => {
    const store = await c.open();
    const first = await store.set(["cas"], 1);
    const second = await store.set(["cas"], 2);
    const result = await store.set(["cas"], 3, { ifVersion: first.version! });
    same(result, { ok: false, version: null, conflicts: [["cas"]] }, "set(ifVersion: stale)");
    same(await store.get(["cas"]), {
      key: ["cas"],
      value: 2,
      version: second.version,
      expiresAt: null,
    }, "the entry after a failed CAS");
  });

  define("set() with ifVersion null writes only if the key is absent", async (c) => {
    const store = await c.open();
    const created = await store.set(["lock"], "me", { ifVersion: null });
    check(created.ok, `set(ifVersion: null) on an absent key must succeed, got ${show(created)}`);
    const again = await store.set(["lock"], "you", { ifVersion: null });
    same(
      again,
      { ok: false, version: null, conflicts: [["lock"]] },
      "set(ifVersion: null) on a present key",
    );
    await expectValue(store, ["lock"], "me", "after a failed ifVersion: null");
    await store.delete(["lock"]);
    const afterDelete = await store.set(["lock"], "them", { ifVersion: null });
    check(afterDelete.ok, "set(ifVersion: null) must succeed again after a delete");
  });

  define("set() with an ifVersion on an absent key writes nothing", async (c) => {
    const store = await c.open();
    const other = await store.set(["other"], 1);
    const result = await store.set(["absent"], 1, { ifVersion: other.version! });
    same(result, { ok: false, version: null, conflicts: [["absent"]] }, "CAS on an absent key");
    await expectAbsent(store, ["absent"], "after a failed CAS");
  });

  define("delete() with a matching ifVersion deletes", async (c) => {
    const store = await c.open();
    const { version } = await store.set(["del"], 1);
    same(await store.delete(["del"], { ifVersion: version! }), true, "delete(ifVersion: current)");
    await expectAbsent(store, ["del"], "after delete(ifVersion)");
  });

  define("delete() with a stale ifVersion resolves false and keeps the entry", async (c) => {
    const store = await c.open();
    const first = await store.set(["del"], 1);
    const second = await store.set(["del"], 2);
    same(
      await store.delete(["del"], { ifVersion: first.version! }),
      false,
      "delete(ifVersion: stale)",
    );
    same((await store.get(["del"]))?.version, second.version, "the entry after a failed delete");
  });

  define("delete() with an ifVersion on an absent key resolves false", async (c) => {
    const store = await c.open();
    const { version } = await store.set(["present"], 1);
    same(
      await store.delete(["absent"], { ifVersion: version! }),
      false,
      "delete(ifVersion) of an absent key",
    );
  });
}
