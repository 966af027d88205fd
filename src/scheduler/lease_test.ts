import assert from "node:assert/strict";
import { openStore } from "../plugin.ts";
import type { Store } from "../store/types.ts";
import { fakeClock } from "../testing/clock.ts";
import { type AcquireResult, tickKey, type TickLease, TickLeases } from "./lease.ts";

const T = Date.UTC(2026, 0, 1, 3);

async function setup() {
  const clock = fakeClock(T);
  const store = await openStore({ plugin: "memory" }, { clock });
  const leases = (runnerId: string, leaseMs = 60_000) =>
    new TickLeases(store, { runnerId, leaseMs, clock });
  return { clock, store, leases };
}

function leaseOf(result: AcquireResult): TickLease {
  assert.ok(result.ok, `expected a lease, got ${JSON.stringify(result)}`);
  return result.lease;
}

async function keys(store: Store): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of store.list({ prefix: ["flowstate", "scheduler"] })) {
    out.push(entry.key.slice(2).join("/"));
  }
  return out;
}

Deno.test("TickLeases.acquire() gives a tick to one runner only", async () => {
  const { store, leases } = await setup();
  const a = leases("a");
  const b = leases("b");
  const results = await Promise.all([a.acquire("job:x", T), b.acquire("job:x", T)]);
  assert.equal(results.filter((r) => r.ok).length, 1);
  const failed = results.find((r) => !r.ok)!;
  assert.equal(failed.ok, false);
  assert.equal(!failed.ok && failed.reason, "leased");
  // Another tick, or another schedule, is a separate lease.
  assert.ok((await b.acquire("job:x", T + 1000)).ok);
  assert.ok((await b.acquire("job:y", T)).ok);
  assert.deepEqual(await keys(store), [
    `lease/job:x/${tickKey(T)}`,
    `lease/job:x/${tickKey(T + 1000)}`,
    `lease/job:y/${tickKey(T)}`,
  ]);
  await store.close();
});

Deno.test("TickLease.complete() writes the done marker and last tick, and drops the lease", async () => {
  const { store, leases, clock } = await setup();
  const a = leases("a");
  const lease = leaseOf(await a.acquire("job:x", T));
  clock.advance(1500);
  await lease.complete({ status: "succeeded", runId: "r1" });
  assert.deepEqual(await keys(store), [`done/job:x/${tickKey(T)}`, "last/job:x"]);
  assert.deepEqual(await a.last("job:x"), {
    tick: T,
    status: "succeeded",
    runner: "a",
    runId: "r1",
    at: T + 1500,
  });
  assert.equal(await a.isDone("job:x", T), true);
  assert.equal(await a.state("job:x", T), "done");
  assert.equal(await a.state("job:x", T + 1), "free");
  // A completed tick is never taken again, by anyone.
  const again = await leases("b").acquire("job:x", T);
  assert.equal(!again.ok && again.reason, "done");
  await assert.rejects(() => lease.complete({ status: "succeeded" }), /twice/);
  await store.close();
});

Deno.test("TickLeases: a crashed runner's lease lapses, and the tick is taken again only if never completed", async () => {
  const { store, leases, clock } = await setup();
  const crashed = leaseOf(await leases("a", 10_000).acquire("job:x", T));
  assert.ok(crashed);
  const b = leases("b", 10_000);
  assert.equal(await b.state("job:x", T), "leased");
  const early = await b.acquire("job:x", T);
  assert.equal(!early.ok && early.reason, "leased");
  assert.equal(!early.ok && early.reason === "leased" && early.holder.runner, "a");
  clock.advance(10_001);
  const taken = leaseOf(await b.acquire("job:x", T));
  assert.equal(taken.holder.runner, "b");

  // The same, but runner a completed the tick before its lease would have lapsed.
  const done = leaseOf(await leases("a", 10_000).acquire("job:x", T + 60_000));
  await done.complete({ status: "failed" });
  clock.advance(60_000);
  const never = await b.acquire("job:x", T + 60_000);
  assert.equal(!never.ok && never.reason, "done");
  await store.close();
});

Deno.test("TickLease.renew() keeps a long run's lease alive past its first expiry", async () => {
  const { store, leases, clock } = await setup();
  const lease = leaseOf(await leases("a", 10_000).acquire("job:x", T));
  const b = leases("b", 10_000);
  for (let i = 0; i < 5; i++) {
    clock.advance(6_000);
    assert.equal(await lease.renew(), true);
    const tried = await b.acquire("job:x", T);
    assert.equal(!tried.ok && tried.reason, "leased");
  }
  await lease.complete({ status: "succeeded" });
  assert.deepEqual(await keys(store), [`done/job:x/${tickKey(T)}`, "last/job:x"]);
  await store.close();
});

Deno.test("TickLease.renew() fails once another runner took the lapsed lease, and the loser leaves it alone", async () => {
  const { store, leases, clock } = await setup();
  const slow = leaseOf(await leases("a", 10_000).acquire("job:x", T));
  clock.advance(10_001);
  const b = leases("b", 10_000);
  const other = leaseOf(await b.acquire("job:x", T));
  assert.equal(await slow.renew(), false);
  // The loser's completion records the tick but does not delete the winner's lease.
  await slow.complete({ status: "succeeded" });
  const lease = await store.get(b.leaseKey("job:x", T));
  assert.equal(lease?.version, other.version);
  await store.close();
});

Deno.test("TickLease.renew() takes back a lapsed lease nobody else took", async () => {
  const { store, leases, clock } = await setup();
  const lease = leaseOf(await leases("a", 10_000).acquire("job:x", T));
  clock.advance(20_000);
  assert.equal(await lease.renew(), true);
  const tried = await leases("b", 10_000).acquire("job:x", T);
  assert.equal(!tried.ok && tried.reason, "leased");
  await store.close();
});

Deno.test("TickLease.release() gives a tick up without marking it done", async () => {
  const { store, leases } = await setup();
  const lease = leaseOf(await leases("a").acquire("job:x", T));
  await lease.release();
  assert.deepEqual(await keys(store), []);
  assert.ok((await leases("b").acquire("job:x", T)).ok);
  await store.close();
});

Deno.test("TickLeases keeps `last` moving forward when ticks complete out of order", async () => {
  const { store, leases } = await setup();
  const a = leases("a");
  const first = leaseOf(await a.acquire("job:x", T));
  const second = leaseOf(await a.acquire("job:x", T + 1000));
  await second.complete({ status: "succeeded" });
  await first.complete({ status: "failed" });
  assert.equal((await a.last("job:x"))?.tick, T + 1000);
  assert.equal((await a.last("job:x"))?.status, "succeeded");
  await store.close();
});

Deno.test("TickLeases.baseline() records the first sighting once and never overwrites", async () => {
  const { store, leases } = await setup();
  const a = leases("a");
  assert.equal(await a.last("job:x"), null);
  const first = await a.baseline("job:x", T);
  assert.equal(first.status, "baseline");
  assert.equal(first.tick, T);
  assert.equal((await leases("b").baseline("job:x", T + 5000)).tick, T);
  await store.close();
});

Deno.test("TickLeases prunes done markers older than historyMs as it writes new ones", async () => {
  const { store, clock } = await setup();
  const day = 86_400_000;
  const a = new TickLeases(store, { runnerId: "a", historyMs: 3 * day, clock });
  for (let i = 0; i < 6; i++) {
    const tick = T + i * day;
    clock.set(tick);
    await leaseOf(await a.acquire("job:x", tick)).complete({ status: "succeeded" });
  }
  const kept = (await a.history("job:x")).map((h) => h.tick);
  assert.deepEqual(kept, [T + 2 * day, T + 3 * day, T + 4 * day, T + 5 * day]);
  await store.close();
});

Deno.test("TickLeases rejects bad options", async () => {
  const { store } = await setup();
  assert.throws(() => new TickLeases(store, { runnerId: "" }), TypeError);
  assert.throws(() => new TickLeases(store, { runnerId: "a", leaseMs: 0 }), RangeError);
  await store.close();
});

Deno.test("TickLease.recordRun() writes the run into the lease and a marker that outlives it until the tick ends", async () => {
  const { clock, store, leases } = await setup();
  const a = leases("a", 10_000);
  const first = leaseOf(await a.acquire("s", T));
  assert.equal(await first.recordRun("run-1"), true);
  assert.equal(first.holder.runId, "run-1");
  assert.deepEqual(await a.leased("s"), [T]);
  clock.advance(60_000); // the lease lapses; the marker stays
  assert.deepEqual(await a.leased("s"), []);
  assert.deepEqual((await a.running("s")).map((r) => [r.tick, r.marker.runner, r.marker.runId]), [
    [T, "a", "run-1"],
  ]);
  // Taken over and completed: the marker goes with the done marker, in one commit.
  const b = leaseOf(await leases("b").acquire("s", T));
  await b.complete({ status: "failed", runId: "run-1" });
  assert.deepEqual(await a.running("s"), []);
  // A released tick (its run recorded itself cancelled) leaves no marker either.
  const next = leaseOf(await a.acquire("s", T + 3_600_000));
  await next.recordRun("run-2");
  await next.release();
  assert.deepEqual(await a.running("s"), []);
  assert.deepEqual(await keys(store), [
    `done/s/${tickKey(T)}`,
    "last/s",
  ]);
  await store.close();
});
