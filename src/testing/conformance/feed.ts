/**
 * Conformance cases: the change feed (`changes: { keep }` on the store).
 * Any store keeps one when asked (the core writes it through the driver's
 * commits), so the test's open function must pass `ctx.changes` to
 * `openStore`; the cases fail, saying so, when it does not.
 *
 * @module
 */
import { withActor } from "../../store/actor.ts";
import type { Change, Key, Store } from "../../store/types.ts";
import { check, same } from "./_assert.ts";
import type { CaseRun, DefineCase } from "./_case.ts";

/** What the cases (and the harness's check of the open function) say of a store without a feed. */
export const DROPPED_CHANGES =
  "open() dropped ctx.changes: pass it to openStore (openStore({ plugin, ...options, indexes, " +
  "search, changes }, { clock })), so that a case asking for a change feed gets a store keeping one";

async function withFeed(c: CaseRun): Promise<Store> {
  const store = await c.open({ changes: { keep: "30d" } });
  check((await store.feedInfo()).enabled, DROPPED_CHANGES);
  return store;
}

async function all(store: Store, options = {}): Promise<Change[]> {
  const out: Change[] = [];
  for await (const change of store.changes(options)) out.push(change);
  return out;
}

function brief(changes: Change[]): [number, string, Key, unknown][] {
  return changes.map((ch) => [ch.seq, ch.op, ch.key, ch.value]);
}

/** Registers the cases of this file with `define`, in the order of the report. */
export function defineFeedCases(define: DefineCase): void {
  define("change feed: one entry per changed key, gap-free, in commit order", async (c) => {
    const store = await withFeed(c);
    same(await store.feedInfo(), { enabled: true, firstSeq: 1, lastSeq: 0, keep: "30d" }, "empty");
    const v1 = (await store.set(["a"], 1)).version!;
    c.clock.advance(10);
    const v2 = (await store.set(["a"], { n: 2 }, { expireIn: 1000 })).version!;
    const v3 = (await store.atomic().set(["b", "1"], "x").set(["b", "2"], null).delete(["a"])
      .commit()).version!;
    same(await store.delete(["nothing"]), true, "a delete of an absent key commits");
    const changes = await all(store);
    same(
      brief(changes),
      [
        [1, "set", ["a"], 1],
        [2, "set", ["a"], { n: 2 }],
        [3, "set", ["b", "1"], "x"],
        [4, "set", ["b", "2"], null],
        [5, "delete", ["a"], undefined],
      ],
      "entries (a delete of an absent key is no change)",
    );
    same(changes.map((ch) => ch.version), [v1, v2, v3, v3, null], "versions");
    same(
      changes.map((ch) => ch.previousVersion),
      [null, v1, null, null, v2],
      "previous versions",
    );
    same(changes[1].expiresAt, c.clock.now() + 1000, "expiresAt of a set with expireIn");
    same(changes[1].at - changes[0].at, 10, "commit times follow the store's clock");
    same(await store.feedInfo(), { enabled: true, firstSeq: 1, lastSeq: 5, keep: "30d" }, "info");
    same(brief(await all(store, { since: 3 })).map((x) => x[0]), [4, 5], "since is exclusive");
    same(brief(await all(store, { prefix: ["b"] })).map((x) => x[0]), [3, 4], "prefix");
    same(brief(await all(store, { limit: 2, reverse: true })).map((x) => x[0]), [5, 4], "reverse");
    await store.set(["c"], 1);
    same((await store.feedInfo()).lastSeq, 6, "the next commit takes the next number");
  });

  define("change feed: a failed compare-and-set records nothing", async (c) => {
    const store = await withFeed(c);
    const v = (await store.set(["k"], 1)).version!;
    await store.set(["k"], 2);
    same((await store.set(["k"], 3, { ifVersion: v })).ok, false, "stale ifVersion fails");
    same((await store.set(["k"], 3, { ifVersion: null })).ok, false, "ifVersion: null fails");
    same(await store.delete(["k"], { ifVersion: v }), false, "stale delete fails");
    const failed = await store.atomic().check(["k"], v).set(["other"], 1).commit();
    same(failed.ok, false, "atomic with a failed check");
    if (!failed.ok) same(failed.conflicts, [["k"]], "conflicts name only the user's key");
    same(brief(await all(store)).map((x) => x[0]), [1, 2], "only the two writes are recorded");
  });

  define("change feed: clear() records one delete per removed key", async (c) => {
    const store = await withFeed(c);
    await store.atomic().set(["p", "1"], 1).set(["p", "2"], 2).set(["q"], 3).commit();
    same(await store.clear(["p"]), 2, "clear() counts");
    await store.atomic().set(["r", "1"], 1).clear([]).set(["s"], 1).commit();
    const changes = await all(store, { since: 3 });
    same(
      changes.map((ch) => [ch.op, ch.key]),
      [["delete", ["p", "1"]], ["delete", ["p", "2"]], ["delete", ["q"]], ["set", ["s"]]],
      "clear() then atomic().clear([]): a delete per removed key (none for a set it undid)",
    );
  });

  define("change feed: who made each change (withActor)", async (c) => {
    const store = await withFeed(c);
    await withActor(
      { runId: "r1", flowId: "f", nodeId: "n" },
      () => store.set(["a"], 1),
    );
    await withActor({ job: "gc" }, async () => {
      await Promise.resolve();
      await withActor({ actor: "alice" }, () => store.delete(["a"]));
    });
    const [first, second] = await all(store);
    same(
      { runId: first.by.runId, flowId: first.by.flowId, nodeId: first.by.nodeId },
      { runId: "r1", flowId: "f", nodeId: "n" },
      "a node's write names its run, flow and node",
    );
    same({ job: second.by.job, actor: second.by.actor }, { job: "gc", actor: "alice" }, "nested");
    check(typeof first.by.actor === "string", "the process's declared actor is recorded too");
  });

  define(
    "change feed: getAt() reads a key as it was, by sequence number and by time",
    async (c) => {
      const store = await withFeed(c);
      const t0 = c.clock.now();
      await store.set(["k"], "one");
      c.clock.advance(100);
      await store.set(["k"], "two", { expireIn: 50 });
      c.clock.advance(100);
      await store.delete(["other"]);
      await store.set(["z"], 1);
      c.clock.advance(100);
      await store.set(["k"], "three");
      same((await store.getAt(["k"], { seq: 1 }))?.value, "one", "at #1");
      same((await store.getAt(["k"], { seq: 2 }))?.value, "two", "at #2");
      same(await store.getAt(["k"], { seq: 3 }), null, "at #3 (expired meanwhile)");
      same((await store.getAt(["k"], { seq: 4 }))?.value, "three", "at #4");
      same((await store.getAt(["k"], { time: t0 + 50 }))?.value, "one", "at t0 + 50");
      same((await store.getAt(["k"], { time: t0 + 120 }))?.value, "two", "at t0 + 120");
      same(await store.getAt(["k"], { time: t0 + 170 }), null, "expired at t0 + 170");
      same(await store.getAt(["z"], { seq: 2 }), null, "before it was created");
      same((await store.getAt(["z"], { seq: 4 }))?.value, 1, "unchanged since");
      same(await store.getAt(["never"], { seq: 4 }), null, "never written");
    },
  );

  define("change feed: watch() from since loses nothing and repeats nothing", async (c) => {
    const store = await withFeed(c);
    for (let i = 0; i < 5; i++) await store.set(["w", String(i)], i);
    await store.set(["elsewhere"], 0);
    const seen: number[] = [];
    // A consumer that stops after two changes, then resumes from the last it handled.
    let last = 0;
    for (let round = 0; round < 3; round++) {
      const stop = new AbortController();
      let n = 0;
      for await (const ch of store.watch([["w"]], { since: last, signal: stop.signal })) {
        seen.push(ch.seq);
        last = ch.seq;
        if (++n === 2) stop.abort();
        if (round === 2) {
          await store.set(["w", "late"], 1);
          stop.abort();
        }
      }
    }
    same(seen, [1, 2, 3, 4, 5], "every change under the prefix once, in order");
    const stop = new AbortController();
    const live = (async () => {
      for await (const ch of store.watch([["w"]], { since: last, signal: stop.signal })) {
        stop.abort();
        return ch.key;
      }
    })();
    same(await live, ["w", "late"], "a change committed while watching arrives");
  });
}
