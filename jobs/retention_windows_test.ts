import assert from "node:assert/strict";
import type { RunStatus } from "../src/records/types.ts";
import { createProgress, type Progress } from "../src/jobs/progress.ts";
import type { Key, KeyBounds, Store } from "../src/store/types.ts";
import {
  addRun,
  assertRemaining,
  DAY,
  dump,
  model,
  retain,
  type SeededRun,
  withEnv,
} from "./testdata/retention.ts";

// The retention job through the store: windows of about batchSize runs,
// bounded listings, one commit per window, cancellation between windows,
// progress, and a window read again when a run changed under it.

/** Wrap a store to see its commits (mutation counts) and listings. */
function observed(
  store: Store,
  onCommit?: (n: number) => void,
  beforeCommit?: () => Promise<void>,
  afterCommit?: () => Promise<void>,
) {
  const seen = {
    commits: [] as number[],
    clears: 0,
    lists: [] as { limit?: number; prefix?: Key; end?: Key }[],
  };
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === "atomic") {
        return () => {
          const op = target.atomic();
          let n = 0;
          const wrapped = {
            check: (key: Key, version: string | null) => (op.check(key, version), wrapped),
            set: (key: Key, value: unknown, o?: { expireIn?: number }) => (
              n++, op.set(key, value, o), wrapped
            ),
            delete: (key: Key) => (n++, op.delete(key), wrapped),
            clear: (prefix: Key, bounds?: KeyBounds) => (
              seen.clears++, op.clear(prefix, bounds), wrapped
            ),
            commit: async () => {
              await beforeCommit?.();
              const result = await op.commit();
              await afterCommit?.();
              if (result.ok) {
                seen.commits.push(n);
                onCommit?.(seen.commits.length);
              }
              return result;
            },
          };
          return wrapped;
        };
      }
      if (prop === "list") {
        return (options: { limit?: number; prefix?: Key; end?: Key } = {}) => {
          seen.lists.push({ limit: options.limit, prefix: options.prefix, end: options.end });
          return target.list(options);
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { store: proxy, seen };
}

Deno.test("retention deletes by age in windows of about batchSize runs, never reading succeeded runs", async () => {
  await withEnv("memory", async (env) => {
    // 1200 runs spread over 12 days, all older than 30 days, and 30 recent ones.
    for (let i = 0; i < 1200; i++) await addRun(env, `f${i % 2}`, "succeeded", 40 + i / 100);
    for (let i = 0; i < 30; i++) await addRun(env, "f0", "succeeded", 1);
    const { store, seen } = observed(env.store);
    const result = await retain(env.rt, { batchSize: 500, maxRuns: null }, {
      store: () => Promise.resolve(store),
    });
    assert.equal(result.deleted, 1200);
    assert.equal(result.deletedByAge, 1200);
    assert.equal(result.scanned, 0, "no index entry was read");
    assert.ok(result.batches >= 2 && result.batches <= 5, `${result.batches} commits`);
    assert.equal(seen.commits.length, result.batches);
    for (const list of seen.lists) {
      assert.ok(
        (list.limit !== undefined && list.limit <= 1000) || list.end !== undefined,
        `unbounded listing ${JSON.stringify(list)}`,
      );
      if (JSON.stringify(list.prefix) === '["flowstate","runs"]') {
        assert.equal(list.limit, 1, "run records are only probed for where the next run is");
      }
    }
    assert.equal(await env.store.count(["flowstate", "runs"]), 30);
    assert.equal(await env.store.count(["flowstate", "runs-by-flow"]), 30);
    assert.equal(await env.store.count(["flowstate", "events"]), 0);
  });
});

Deno.test("retention by age keeps each window near batchSize runs when the rate of runs changes", async () => {
  await withEnv("memory", async (env) => {
    // A quiet stretch (one run a day), then a burst (100 runs within an hour), then one more.
    for (let d = 0; d < 20; d++) await addRun(env, "f", "succeeded", 100 - d);
    for (let i = 0; i < 100; i++) await addRun(env, "f", "succeeded", 60 - i / 2400);
    await addRun(env, "f", "succeeded", 31);
    const sizes: number[] = [];
    let last = await env.store.count(["flowstate", "runs"]);
    const { store } = observed(env.store, undefined, undefined, async () => {
      const now = await env.store.count(["flowstate", "runs"]);
      sizes.push(last - now);
      last = now;
    });
    const result = await retain(env.rt, { batchSize: 10, maxRuns: null }, {
      store: () => Promise.resolve(store),
    });
    assert.equal(result.deleted, 121);
    assert.equal(sizes.reduce((a, b) => a + b, 0), 121);
    assert.ok(sizes.every((n) => n <= 20), `window sizes ${sizes}`);
  });
});

Deno.test("retention with many flows deletes in bigger windows, each touching every flow's index once", async () => {
  await withEnv("sqlite", async (env) => {
    const runs: SeededRun[] = [];
    for (let i = 0; i < 600; i++) {
      const status: RunStatus = i % 9 === 0 ? "failed" : i % 13 === 0 ? "running" : "succeeded";
      runs.push(await addRun(env, `flow-${i % 150}`, status, 31 + i / 20, i % 2));
    }
    for (let i = 0; i < 150; i++) runs.push(await addRun(env, `flow-${i}`, "succeeded", 1));
    const before = await dump(env.store);
    const result = await retain(env.rt, { batchSize: 10, maxRuns: null, failedMaxAge: "40d" });
    const expected = model(runs, { maxAge: 30 * DAY, failedMaxAge: 40 * DAY, maxRuns: null });
    await assertRemaining(env.store, before, expected.byAge);
    assert.equal(result.deletedByAge, expected.byAge.size);
    assert.equal(result.keptFailed, expected.keptFailed);
    // 150 flows: windows aim at 50 runs per flow (7,500), not at batchSize (10).
    assert.equal(result.batches, 1);
  });
});

Deno.test("retention stops between windows when cancelled and leaves every run whole", async () => {
  await withEnv("memory", async (env) => {
    for (let i = 0; i < 50; i++) {
      await addRun(env, `f${i % 2}`, i % 7 ? "succeeded" : "cancelled", 40 + i / 10, i % 3);
    }
    const controller = new AbortController();
    const { store } = observed(env.store, (n) => {
      if (n === 2) controller.abort();
    });
    const result = await retain(env.rt, { batchSize: 10, maxRuns: null }, {
      store: () => Promise.resolve(store),
      signal: controller.signal,
    });
    assert.equal(result.cancelled, true);
    assert.equal(result.batches, 2);
    const runs = await Array.fromAsync(
      env.store.list<{ status: string }>({ prefix: ["flowstate", "runs"] }),
    );
    assert.equal(result.deleted, 50 - runs.length);
    assert.ok(result.deleted >= 10 && result.deleted < 50, `${result.deleted} deleted`);
    // Every remaining run is whole: record, its index entries, all its events; nothing else.
    const ids = new Set(runs.map((e) => e.key[2]));
    const byFlow = await Array.fromAsync(env.store.list({ prefix: ["flowstate", "runs-by-flow"] }));
    assert.deepEqual(new Set(byFlow.map((e) => e.key.at(-1))), ids);
    const cancelled = new Set(
      runs.filter((e) => e.value.status === "cancelled").map((e) => e.key[2]),
    );
    for (const index of ["runs-by-status", "runs-by-flow-status"]) {
      const entries = await Array.fromAsync(env.store.list({ prefix: ["flowstate", index] }));
      assert.deepEqual(new Set(entries.map((e) => e.key.at(-1))), cancelled, index);
    }
    for (const id of ids) {
      const run = await env.records.getRun(id);
      assert.notEqual(run, null);
    }
    for await (const e of env.store.list({ prefix: ["flowstate", "events"] })) {
      assert.ok(ids.has(e.key[2]), `events of a deleted run remain: ${e.key}`);
    }
  });
});

Deno.test("retention reports progress in phases with totals", async () => {
  await withEnv("sqlite", async (env) => {
    for (let i = 0; i < 12; i++) await addRun(env, `f${i % 3}`, "succeeded", i * 5);
    const updates: number[] = [];
    const labels: (string | number | undefined)[] = [];
    const inner = createProgress({ mode: "quiet" });
    const progress: Progress = {
      ...inner,
      get state() {
        return inner.state;
      },
      start(label, total) {
        labels.push(label, total);
        inner.start(label, total);
      },
      update(done) {
        updates.push(done);
        inner.update(done);
      },
    };
    const result = await retain(env.rt, {}, { progress });
    // First each flow is ranked (3 flows), then the runs below the newest doomed one are
    // counted in time windows: here the 5 runs older than 30 days, in one window.
    assert.deepEqual(labels, [
      "retention: flows ranked by their newest runs",
      3,
      "retention: runs checked",
      5,
    ]);
    assert.deepEqual(updates, [1, 2, 3, 5]);
    assert.equal(result.scanned, 12, "the 4 runs of each flow, to rank them");
    assert.equal(result.deleted, 5);
  });
});

Deno.test("retention reads a window again when one of its running runs finishes meanwhile", async () => {
  await withEnv("sqlite", async (env) => {
    for (let i = 0; i < 5; i++) await addRun(env, "f", "succeeded", 40 + i);
    const running = await addRun(env, "f", "running", 42.5);
    const record = (await env.records.getRun(running.id))!;
    let finished = false;
    // Another process finishes the running run just before the first commit.
    const { store, seen } = observed(env.store, undefined, async () => {
      if (finished) return;
      finished = true;
      await env.records.finishRun({ ...record, status: "succeeded" });
    });
    const result = await retain(env.rt, { maxRuns: null }, {
      store: () => Promise.resolve(store),
    });
    // Runs are aged from their end: the one that finished now stays (it has not aged out).
    assert.equal(result.deleted, 5, "the others are deleted");
    assert.equal(result.skipped, 0);
    assert.equal(seen.commits.length, 1, "one commit went through (the first was refused)");
    assert.equal(result.keptRunning, 0);
    assert.equal((await env.records.getRun(running.id))?.status, "succeeded");
    const left = (await dump(env.store)).filter((e) => !e.key.includes(running.id));
    assert.deepEqual([...new Set(left.map((e) => e.key[1]))], ["metrics"], "only it is left");
  });
});
