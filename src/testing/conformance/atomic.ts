/**
 * Conformance cases: atomic() commits, checks, versions and concurrent
 * compare-and-set.
 *
 * @module
 */
import { AssertionError } from "node:assert/strict";
import {
  check,
  differentVersions,
  expectAbsent,
  expectValue,
  listKeys,
  same,
  seed,
  show,
} from "./_assert.ts";
import type { DefineCase } from "./_case.ts";

/** What a lost compare-and-set says about the driver. */
const ATOMIC_COMMIT = "The driver's commit() must evaluate its checks and apply its writes " +
  "with no other commit in between: an async driver serialises its commits (chain them on a " +
  "promise), a server needs one transaction that locks the checked keys, absent ones too";

/** Registers the cases of this file with `define`, in the order of the report. */
export function defineAtomicCases(define: DefineCase): void {
  define("atomic() applies all sets and deletes together", async (c) => {
    const store = await c.open();
    await seed(store, [[["x"], 1], [["y"], 2]]);
    const result = await store.atomic().set(["a"], "A").set(["b", "1"], ["B"]).delete(["x"])
      .commit();
    check(result.ok, `atomic commit must succeed, got ${show(result)}`);
    same(await listKeys(store), [["a"], ["b", "1"], ["y"]], "keys after the atomic commit");
    await expectValue(store, ["b", "1"], ["B"], "atomic set");
  });

  define("atomic() with a failing check writes nothing and reports the key", async (c) => {
    const store = await c.open();
    const x1 = await store.set(["x"], 1);
    await store.set(["x"], 2);
    const y = await store.set(["y"], "y");
    const result = await store.atomic()
      .check(["x"], x1.version)
      .check(["y"], y.version)
      .set(["z"], "z")
      .set(["y"], "changed")
      .delete(["x"])
      .commit();
    same(result, { ok: false, version: null, conflicts: [["x"]] }, "commit with one stale check");
    same(await listKeys(store), [["x"], ["y"]], "keys after the failed commit");
    await expectValue(store, ["x"], 2, "x after the failed commit");
    await expectValue(store, ["y"], "y", "y after the failed commit");
  });

  define("atomic() reports only keys whose checks failed", async (c) => {
    const store = await c.open();
    const a = await store.set(["a"], 1);
    await store.set(["a"], 2);
    const b = await store.set(["b"], 1);
    const result = await store.atomic()
      .check(["a"], a.version)
      .check(["b"], b.version)
      .check(["c"], b.version)
      .check(["d"], null)
      .set(["e"], 1)
      .commit();
    check(!result.ok, `two stale checks must fail the commit, got ${show(result)}`);
    same(result.version, null, "a failed commit's version");
    const conflicts = new Set(result.conflicts.map(show));
    check(conflicts.size > 0, "a failed commit must name at least one conflicting key");
    for (const key of conflicts) {
      check(
        key === show(["a"]) || key === show(["c"]),
        `conflicts must only name keys whose check failed (["a"], ["c"]), got ${key}`,
      );
    }
    await expectAbsent(store, ["e"], "after the failed commit");
  });

  define(
    "atomic() checks with null require absence; an expired key counts as absent",
    async (c) => {
      const store = await c.open();
      await store.set(["present"], 1);
      await store.set(["expiring"], 1, { expireIn: 10 });
      const blocked = await store.atomic().check(["present"], null).set(["out"], 1).commit();
      same(blocked, { ok: false, version: null, conflicts: [["present"]] }, "check(present, null)");
      const blockedLive = await store.atomic().check(["expiring"], null).set(["out"], 1).commit();
      same(
        blockedLive,
        { ok: false, version: null, conflicts: [["expiring"]] },
        "check(live, null)",
      );
      c.clock.advance(10);
      const passed = await store.atomic().check(["absent"], null).check(["expiring"], null)
        .set(["out"], 1).commit();
      check(
        passed.ok,
        `check(absent, null) and check(expired, null) must pass, got ${show(passed)}`,
      );
      await expectValue(store, ["out"], 1, "written by the passing commit");
    },
  );

  define("atomic() gives every entry it sets one version, the one commit() returns", async (c) => {
    const store = await c.open();
    const before = await store.set(["a"], 0);
    const result = await store.atomic().set(["a"], 1).set(["b"], 2).set(["c", "d"], 3).commit();
    check(result.ok, "atomic commit must succeed");
    differentVersions([before.version, result.version], "before and after the atomic commit");
    same(
      (await store.getMany([["a"], ["b"], ["c", "d"]])).map((e) => e?.version),
      [result.version, result.version, result.version],
      "versions of the entries set in one commit",
    );
  });

  define("atomic() applies mutations in order: a later write to the same key wins", async (c) => {
    const store = await c.open();
    await seed(store, [[["j"], "old"]]);
    const result = await store.atomic()
      .set(["k"], 1).delete(["k"])
      .delete(["j"]).set(["j"], 2)
      .set(["m"], 1).set(["m"], 2)
      .commit();
    check(result.ok, "atomic commit must succeed");
    await expectAbsent(store, ["k"], "set then delete");
    await expectValue(store, ["j"], 2, "delete then set");
    await expectValue(store, ["m"], 2, "set then set");
  });

  define("atomic() with a check and a set of the same key is a compare-and-set", async (c) => {
    const store = await c.open();
    const { version } = await store.set(["n"], 1);
    const first = await store.atomic().check(["n"], version).set(["n"], 2).commit();
    check(first.ok, "the first CAS must succeed");
    const second = await store.atomic().check(["n"], version).set(["n"], 3).commit();
    same(
      second,
      { ok: false, version: null, conflicts: [["n"]] },
      "the second CAS with the old version",
    );
    await expectValue(store, ["n"], 2, "after two CAS attempts");
  });

  define("atomic() with only checks succeeds and writes nothing", async (c) => {
    const store = await c.open();
    const { version } = await store.set(["a"], 1);
    const result = await store.atomic().check(["a"], version).check(["b"], null).commit();
    check(result.ok, `a commit with passing checks only must succeed, got ${show(result)}`);
    same((await store.get(["a"]))?.version, version, "the checked entry is unchanged");
    same(await store.count(), 1, "count() after a check-only commit");
  });

  define("20 concurrent compare-and-set increments end at exactly 20", async (c) => {
    const store = await c.open();
    await store.set(["counter"], 0);
    const versions: string[] = [];
    let attempts = 0;
    const increment = async (): Promise<void> => {
      for (;;) {
        if (++attempts > 2000) {
          throw new AssertionError({
            message: "CAS increments did not converge after 2000 attempts",
          });
        }
        const entry = await store.get<number>(["counter"]);
        check(entry !== null, "the counter must exist");
        const result = await store.set(["counter"], entry.value + 1, { ifVersion: entry.version });
        if (result.ok) {
          versions.push(result.version);
          return;
        }
        same(result.conflicts, [["counter"]], "a lost race reports the counter key");
      }
    };
    await Promise.all(Array.from({ length: 20 }, increment));
    const final = await store.get<number>(["counter"]);
    same(
      final?.value,
      20,
      `the counter after 20 concurrent increments (${attempts} attempts)${
        versions.length === 20 && (final?.value ?? 0) < 20
          ? `: all 20 compare-and-sets succeeded, so ${
            20 - (final?.value ?? 0)
          } wrote over a version that had already changed. ${ATOMIC_COMMIT}`
          : ""
      }`,
    );
    same(versions.length, 20, "winning commits");
    differentVersions(versions, "the 20 winning commits");
    check(versions.includes(final!.version), "the final version is one a winning commit returned");
  });

  define("concurrent set(ifVersion: null): exactly one writer wins", async (c) => {
    const store = await c.open();
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => store.set(["lock"], `writer ${i}`, { ifVersion: null })),
    );
    const winners = results.flatMap((r, i) => r.ok ? [i] : []);
    same(
      winners.length,
      1,
      `exactly one of 10 concurrent creators wins (winners: ${show(winners)})${
        winners.length > 1 ? `. ${ATOMIC_COMMIT}` : ""
      }`,
    );
    await expectValue(store, ["lock"], `writer ${winners[0]}`, "the lock holds the winner's value");
    same((await store.get(["lock"]))?.version, results[winners[0]].version, "the winner's version");
  });

  define("atomic() reports a key checked twice once", async (c) => {
    const store = await c.open();
    const a1 = await store.set(["a"], 1);
    const a2 = await store.set(["a"], 2);
    const twice = await store.atomic()
      .check(["a"], a1.version)
      .check(["b"], null)
      .check(["a"], a1.version)
      .set(["c"], 1)
      .commit();
    same(twice, { ok: false, version: null, conflicts: [["a"]] }, "the same stale check twice");
    const mixed = await store.atomic()
      .check(["a"], a2.version)
      .check(["a"], a1.version)
      .check(["a"], null)
      .set(["c"], 1)
      .commit();
    same(mixed, { ok: false, version: null, conflicts: [["a"]] }, "one key, two failing checks");
    await expectAbsent(store, ["c"], "after the failed commits");
  });
}
