import assert from "node:assert/strict";
import { openStore } from "../plugin.ts";
import { type FakeClock, fakeClock } from "../testing/clock.ts";
import { manualTimers } from "../testing/timers.ts";
import { describeHolder, Lease, type LeaseAcquireResult } from "./lease.ts";
import type { Store } from "./types.ts";

const KEY = ["app", "lease"];
const TTL = 30_000;

async function setup(): Promise<{ clock: FakeClock; store: Store }> {
  const clock = fakeClock();
  const store = await openStore({ plugin: "memory" }, { clock });
  return { clock, store };
}

function leaseOf<T>(result: LeaseAcquireResult<T>): Lease<T> {
  assert.ok(result.ok, `expected a lease, got ${JSON.stringify(result)}`);
  return result.lease;
}

Deno.test("Lease.acquire() gives the key to one of two holders; the other learns who holds it", async () => {
  const { clock, store } = await setup();
  const results = await Promise.all([
    Lease.acquire(store, KEY, { holder: "a" }, { ttl: TTL, clock }),
    Lease.acquire(store, KEY, { holder: "b" }, { ttl: TTL, clock }),
  ]);
  assert.equal(results.filter((r) => r.ok).length, 1);
  const winner = results.find((r) => r.ok)!;
  const loser = results.find((r) => !r.ok)!;
  assert.ok(winner.ok && !loser.ok);
  assert.deepEqual(loser.holder, {
    value: winner.lease.value,
    version: winner.lease.version,
    expiresAt: clock.now() + TTL,
  });
  assert.equal(
    describeHolder(loser.holder!, (v) => v.holder),
    `held by ${winner.lease.value.holder} until ${new Date(clock.now() + TTL).toISOString()}`,
  );
  await store.close();
});

Deno.test("Lease.acquire() honours the caller's extra checks and reports a free key as holder null", async () => {
  const { clock, store } = await setup();
  await store.set(["app", "done"], true);
  const blocked = await Lease.acquire(store, KEY, "a", {
    ttl: TTL,
    clock,
    check: (op) => op.check(["app", "done"], null),
  });
  assert.deepEqual(blocked, { ok: false, holder: null });
  assert.equal(await store.get(KEY), null, "nothing was written");
  await assert.rejects(() => Lease.acquire(store, KEY, "a", { ttl: 0 }), RangeError);
  await store.close();
});

Deno.test("Lease: an expired lease is free for another holder", async () => {
  const { clock, store } = await setup();
  leaseOf(await Lease.acquire(store, KEY, "a", { ttl: TTL, clock }));
  clock.advance(TTL - 1);
  const early = await Lease.acquire(store, KEY, "b", { ttl: TTL, clock });
  assert.equal(!early.ok && early.holder?.value, "a");
  clock.advance(1);
  const b = leaseOf(await Lease.acquire(store, KEY, "b", { ttl: TTL, clock }));
  assert.equal((await Lease.read<string>(store, KEY))?.value, "b");
  assert.equal(b.held, true);
  await store.close();
});

Deno.test("Lease.renew() pushes the expiry back, and may write a new holder value", async () => {
  const { clock, store } = await setup();
  const lease = leaseOf(await Lease.acquire(store, KEY, { at: 0 }, { ttl: TTL, clock }));
  assert.equal(lease.due, false);
  clock.advance(TTL / 2);
  assert.equal(lease.due, true);
  assert.equal(await lease.renew({ value: { at: 1 } }), true);
  assert.equal(lease.renewedAt, clock.now());
  assert.equal(lease.due, false);
  const entry = await store.get(KEY);
  assert.deepEqual(entry?.value, { at: 1 });
  assert.equal(entry?.expiresAt, clock.now() + TTL);
  assert.equal(entry?.version, lease.version);
  clock.advance(TTL - 1);
  assert.equal(await lease.renewIfDue(), true, "still held one ms before it lapses");
  assert.equal((await store.get(KEY))?.expiresAt, clock.now() + TTL);
  await store.close();
});

Deno.test("Lease.renew() after the lease lapsed and was taken reports it lost and aborts its signal", async () => {
  const { clock, store } = await setup();
  const a = leaseOf(await Lease.acquire(store, KEY, "a", { ttl: TTL, clock }));
  clock.advance(TTL);
  const b = leaseOf(await Lease.acquire(store, KEY, "b", { ttl: TTL, clock }));
  assert.equal(await a.renew(), false);
  assert.equal(a.lost, true);
  assert.equal(a.held, false);
  assert.ok(a.signal.aborted);
  assert.match(String(a.signal.reason), /Lost the lease \["app","lease"\]/);
  assert.equal(await a.renew(), false, "a lost lease stays lost");
  assert.equal((await store.get(KEY))?.version, b.version, "the winner's lease is untouched");
  await store.close();
});

Deno.test("Lease.renew() of a lease that lapsed unclaimed is lost too (never taken back silently)", async () => {
  const { clock, store } = await setup();
  const reason = new Error("custom");
  const a = leaseOf(
    await Lease.acquire(store, KEY, "a", { ttl: TTL, clock, lostReason: () => reason }),
  );
  clock.advance(TTL + 1);
  assert.equal(await a.renewIfDue(), false);
  assert.equal(a.signal.reason, reason);
  assert.equal(await store.get(KEY), null);
  await store.close();
});

Deno.test("Lease.release() by a holder that lost the lease leaves the new holder's lease alone", async () => {
  const { clock, store } = await setup();
  const a = leaseOf(await Lease.acquire(store, KEY, "a", { ttl: TTL, clock }));
  clock.advance(TTL);
  const b = leaseOf(await Lease.acquire(store, KEY, "b", { ttl: TTL, clock }));
  assert.equal(await a.release(), false);
  assert.equal((await store.get(KEY))?.value, "b");
  assert.equal(await b.release(), true);
  assert.equal(await store.get(KEY), null);
  assert.equal(await b.release(), false, "releasing twice does nothing");
  assert.equal(await b.renew(), false, "a released lease is not renewed");
  assert.equal(b.lost, false, "released is not lost");
  await store.close();
});

Deno.test("Lease.check() and Lease.commit() fail a caller's commit once the lease is lost", async () => {
  const { clock, store } = await setup();
  const a = leaseOf(await Lease.acquire(store, KEY, "a", { ttl: TTL, clock }));
  const held = await a.commit((op) => op.set(["app", "data"], 1));
  assert.equal(held.ok, true);
  assert.equal((await a.check(store.atomic()).set(["app", "data"], 2).commit()).ok, true);

  clock.advance(TTL);
  leaseOf(await Lease.acquire(store, KEY, "b", { ttl: TTL, clock }));
  const checked = await a.check(store.atomic()).set(["app", "data"], 3).commit();
  assert.equal(checked.ok, false, "the version check fails");
  assert.equal(a.lost, false, "check() alone does not notice the loss");
  const committed = await a.commit((op) => op.set(["app", "data"], 4));
  assert.deepEqual(committed, { ok: false, version: null, conflicts: [KEY] });
  assert.equal(a.lost, true, "commit() does");
  assert.equal((await store.get(["app", "data"]))?.value, 2);
  assert.equal((await a.commit((op) => op.set(["app", "data"], 5))).ok, false);
  await store.close();
});

Deno.test("Lease.commit() failing on another key's check does not lose the lease", async () => {
  const { clock, store } = await setup();
  const a = leaseOf(await Lease.acquire(store, KEY, "a", { ttl: TTL, clock }));
  await store.set(["app", "other"], 1);
  const result = await a.commit((op) => op.check(["app", "other"], null));
  assert.equal(result.ok, false);
  assert.equal(a.lost, false);
  assert.equal(await a.renew(), true);
  await store.close();
});

Deno.test("Lease.keepAlive() renews every third of the ttl and stops on release", async () => {
  const { clock, store } = await setup();
  const timers = manualTimers(clock);
  const lease = leaseOf(await Lease.acquire(store, KEY, "a", { ttl: 30, clock, timers }));
  lease.keepAlive();
  lease.keepAlive(); // a second call starts no second timer
  assert.equal(timers.pending, 1);
  for (let i = 1; i <= 5; i++) {
    await timers.advance(10);
    const entry = await store.get(KEY);
    assert.equal(entry?.expiresAt, clock.now() + 30, `renewal ${i} extends the lease`);
    assert.equal(entry?.version, lease.version);
  }
  assert.equal(clock.now() - lease.renewedAt, 0);
  assert.equal(await lease.release(), true);
  assert.equal(timers.pending, 0, "release stops the timer");
  assert.equal(await store.get(KEY), null);
  await store.close();
});

Deno.test("Lease.keepAlive() aborts the signal and stops when a renewal finds the lease lost", async () => {
  const { clock, store } = await setup();
  const timers = manualTimers(clock);
  const errors: unknown[] = [];
  const lease = leaseOf(await Lease.acquire(store, KEY, "a", { ttl: 30, clock, timers }));
  lease.keepAlive({ onError: (err) => errors.push(err) });
  const aborted = new Promise((resolve) => lease.signal.addEventListener("abort", resolve));
  await store.set(KEY, "thief", { expireIn: 1_000 });
  await timers.advance(10);
  await aborted;
  assert.equal(lease.lost, true);
  assert.equal(timers.pending, 0, "no more renewals");
  assert.deepEqual(errors, []);
  assert.equal(await lease.release(), false);
  assert.equal((await store.get(KEY))?.value, "thief");
  await store.close();
});

Deno.test("Lease.keepAlive() reports a renewal that throws and tries again", async () => {
  const { clock, store } = await setup();
  const timers = manualTimers(clock);
  const lease = leaseOf(await Lease.acquire(store, KEY, "a", { ttl: 30, clock, timers }));
  const errors: unknown[] = [];
  lease.keepAlive({ onError: (err) => errors.push(err) });
  const set = store.set;
  store.set = () => Promise.reject(new Error("disk full"));
  await timers.advance(10);
  assert.equal(errors.length, 1);
  assert.match(String(errors[0]), /disk full/);
  assert.equal(lease.held, true);
  store.set = set;
  await timers.advance(10);
  assert.equal((await store.get(KEY))?.expiresAt, clock.now() + 30);
  assert.equal(errors.length, 1);
  lease.abandon();
  assert.equal(timers.pending, 0, "abandon stops the timer");
  assert.notEqual(await store.get(KEY), null, "abandon leaves the entry to lapse");
  await store.close();
});
