/**
 * A node's state calls are given its attempt's stop signal on a store that
 * can end a call that waits (`capabilities.abort`): when the attempt is
 * stopped (its timeout, the run cancelled) the call still waiting gives up,
 * and the attempt ends then, not after the abort grace. Checked through
 * `openRuntime` with a plugin whose writes of one key wait for their signal
 * (as a PostgreSQL statement waits for another session's lock): the
 * PostgreSQL end of it is in tests/pg_lock_cancel_test.ts.
 *
 * @module
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { openRuntime } from "../mod.ts";
import { definePlugin, type StoreDriver } from "../plugin.ts";
import { MemoryDriver } from "../plugins/memory/mod.ts";

/** The signals the locked store's commits were given, and a way to let its waiting writes go. */
interface Seen {
  signals: (AbortSignal | undefined)[];
  release(): void;
  /** Told when a write of the locked key begins to wait. */
  onWait?(): void;
}

/**
 * A memory store whose commits writing `["global", "locked"]` wait until
 * their signal aborts (then reject, writing nothing) or the test releases
 * them; `abort`: whether it declares `capabilities.abort`.
 */
function lockedPlugin(seen: Seen, abort: boolean) {
  const released = Promise.withResolvers<void>();
  seen.release = released.resolve;
  return definePlugin({
    name: "locked",
    optionsSchema: z.strictObject({}),
    open(): StoreDriver {
      const inner = new MemoryDriver();
      return {
        location: "locked:test",
        capabilities: { ...inner.capabilities, abort },
        get: (key) => inner.get(key),
        list: (range) => inner.list(range),
        async commit(request) {
          seen.signals.push(request.signal);
          const locked = request.mutations.some((m) =>
            m.type !== "clear" && m.key.join("/") === "global/locked"
          );
          if (locked) {
            const signal = request.signal;
            const aborted = Promise.withResolvers<void>();
            const onAbort = () => aborted.reject(new Error("given up", { cause: signal!.reason }));
            signal?.addEventListener("abort", onAbort, { once: true });
            seen.onWait?.();
            try {
              await Promise.race([released.promise, aborted.promise]);
            } finally {
              signal?.removeEventListener("abort", onAbort);
            }
          }
          return inner.commit(request);
        },
        close: () => inner.close(),
      };
    },
  });
}

/** A runtime whose global scope is the locked store (the records elsewhere), with a 60 s abort grace. */
function runtimeOver(seen: Seen, abort = true) {
  return openRuntime({
    config: {
      stores: { main: { plugin: "memory" }, locked: { plugin: lockedPlugin(seen, abort) } },
      scopes: { global: "locked" },
      records: "main",
      runs: { abortGrace: "60s" },
    },
  });
}

Deno.test("a node's state write still waiting on a store that can give up ends at the node's timeout", async () => {
  const seen: Seen = { signals: [], release: () => {} };
  await using rt = await runtimeOver(seen);
  try {
    const run = await rt.runFlow({
      id: "stuck",
      nodes: [{
        id: "put",
        type: "state.set",
        timeout: "50ms",
        with: { scope: "global", key: "locked", value: 1 },
      }],
    });
    assert.equal(run.nodes.put.status, "timed-out");
    // Ended at its timeout: not after the 60 s grace, and nothing was left running.
    assert.doesNotMatch(run.nodes.put.error ?? "", /grace period/);
    assert.match(run.nodes.put.error ?? "", /timed out after 50 ms/);
    assert.equal(seen.signals.length, 1);
    assert.equal(seen.signals[0]?.aborted, true);
    assert.equal(await (await rt.store("locked")).get(["global", "locked"]), null);
  } finally {
    seen.release();
  }
});

Deno.test("a node's state write still waiting on a store that can give up ends when the run is cancelled", async () => {
  const seen: Seen = { signals: [], release: () => {} };
  await using rt = await runtimeOver(seen);
  const stop = new AbortController();
  seen.onWait = () => stop.abort();
  try {
    const run = await rt.runFlow({
      id: "stuck",
      nodes: [{ id: "put", type: "state.set", with: { scope: "global", key: "locked", value: 1 } }],
    }, { signal: stop.signal });
    assert.equal(run.status, "cancelled");
    assert.equal(run.error?.message, "the run was cancelled");
    assert.equal(run.nodes.put.status, "cancelled");
    assert.equal(seen.signals[0]?.aborted, true);
    assert.equal(await (await rt.store("locked")).get(["global", "locked"]), null);
  } finally {
    seen.release();
  }
});

Deno.test("a node's state calls get a signal only from a store that can give up, and it stays unaborted when the node returns", async () => {
  for (const abort of [true, false]) {
    const seen: Seen = { signals: [], release: () => {} };
    await using rt = await runtimeOver(seen, abort);
    const run = await rt.runFlow({
      id: "fine",
      nodes: [{ id: "put", type: "state.increment", with: { scope: "global", key: "n" } }],
    });
    assert.equal(run.nodes.put.output, 1);
    assert.equal(seen.signals.length, 1);
    if (abort) assert.equal(seen.signals[0]?.aborted, false, "a plain end does not abort it");
    else assert.equal(seen.signals[0], undefined, "no signal is made for this store");
  }
});
