/**
 * A signal a `wait` node took is that node's for the rest of the run: an
 * attempt that took it and then did not succeed does not lose it, the node's
 * next attempt gets it at once (through mod.ts; the queued run whose worker
 * died is in wait_signal_worker_test.ts).
 *
 * The window tested: the node's `timeout:` fires (or its sub-flow node's)
 * while the take's commit is in flight. The commit goes through, deleting the
 * pending signal, but the attempt is already over and its result is dropped.
 * A test store holds the take's commit, once it went through, until the
 * node's timeout fired; the timeout is a sleep the test fires (fake timers for
 * that one duration, real ones for the rest): no timing assumption.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime, openStore, type RunEvent, type Runtime, type Store } from "../mod.ts";
import { firedTimers } from "./_fired_timers.ts";

/** A hang guard for each step (not a timing assertion). */
const STEP_MS = 60_000;

/**
 * Hold the first commit of a store of `store`'s class that takes a pending
 * signal (deletes a `signals` key), after it went through, until
 * `release()`: `taken` resolves once it has gone through. The runtime's
 * records store is not the one `rt.store()` gives (that one tells the
 * runtime's events of changes), so the class's `atomic` is wrapped, until
 * `restore()`.
 */
function holdFirstTake(store: Store): {
  taken: Promise<void>;
  release: () => void;
  restore: () => void;
} {
  let tookIt!: () => void;
  const taken = new Promise<void>((r) => tookIt = r);
  let release!: () => void;
  const released = new Promise<void>((r) => release = r);
  let first = true;
  const proto = Object.getPrototypeOf(store) as Store;
  const atomic = Object.getOwnPropertyDescriptor(proto, "atomic")!;
  Object.defineProperty(proto, "atomic", {
    ...atomic,
    value(this: Store) {
      const op = (atomic.value as Store["atomic"]).call(this);
      let takes = false;
      const proxy: ReturnType<Store["atomic"]> = new Proxy(op, {
        get(target, prop) {
          const value = Reflect.get(target, prop, target);
          if (typeof value !== "function") return value;
          if (prop === "commit") {
            return async () => {
              const result = await target.commit();
              if (takes && first && result.ok) {
                first = false;
                tookIt();
                await released;
              }
              return result;
            };
          }
          return (...args: unknown[]) => {
            if (prop === "delete" && (args[0] as unknown[])[1] === "signals") takes = true;
            const out = value.apply(target, args);
            return out === target ? proxy : out;
          };
        },
      });
      return proxy;
    },
  });
  return { taken, release, restore: () => Object.defineProperty(proto, "atomic", atomic) };
}

/** Resolves with the root run's id at the first waiting line of node `node`. */
function onWaiting(node: string): {
  onStart: (id: string) => void;
  onEvent: (e: RunEvent) => void;
  waiting: Promise<string>;
} {
  let resolve!: (id: string) => void;
  const waiting = new Promise<string>((r) => resolve = r);
  let root: string | undefined;
  return {
    waiting,
    onStart: (id) => root ??= id,
    onEvent: (e) => {
      if (e.type === "node.log" && e.node === node && e.message.startsWith("waiting for signal")) {
        resolve(root!);
      }
    },
  };
}

/** `promise`, or a failure saying what did not happen within {@linkcode STEP_MS}. */
async function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${STEP_MS} ms`)), STEP_MS);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The keys left under the records' `signals` prefix. */
async function signalKeys(rt: Runtime): Promise<string[][]> {
  const store = await rt.store("main");
  const keys: string[][] = [];
  for await (const e of store.list({ prefix: ["flowstate", "signals"] })) keys.push([...e.key]);
  return keys;
}

/**
 * Run `flow` until its node `node` waits, send signal `go` with `{ n: 1 }`,
 * let the take go through, fire the timeout of the attempt that took it
 * (then `afterTake`), and resolve the run's record.
 */
async function takenThenTimedOut(
  flow: string | Record<string, unknown>,
  node: string,
  afterTake: (rt: Runtime, runId: string) => Promise<void> = () => Promise.resolve(),
) {
  const rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  const probe = await openStore({ plugin: "memory" });
  const hold = holdFirstTake(probe);
  try {
    const { timers, nth } = firedTimers();
    const w = onWaiting(node);
    const running = rt.runFlow(flow, { timers, onStart: w.onStart, onEvent: w.onEvent });
    const id = await within(w.waiting, "the wait node's waiting line");
    assert.equal((await rt.signalRun(id, "go", { n: 1 })).kind, "stored");
    await within(hold.taken, "the take of the signal");
    await afterTake(rt, id);
    // The attempt's timeout fires while its take is in flight; the take then ends.
    (await within(nth(0), "the node's timeout timer"))();
    await new Promise((r) => setTimeout(r, 0)); // the timer's reactions run first (task order)
    hold.release();
    const run = await within(running, "the run's end");
    const keys = await signalKeys(rt);
    return { run, keys };
  } finally {
    hold.restore();
    await probe.close();
    await rt.close();
  }
}

Deno.test("wait (mod.ts): an attempt timed out after it took the signal: its retry gets that signal at once", async () => {
  const { run, keys } = await takenThenTimedOut({
    id: "kept",
    nodes: [
      {
        id: "approve",
        type: "wait",
        with: { signal: "go", timeout: "20s" },
        timeout: "7m",
        retry: { attempts: 2 },
      },
    ],
  }, "approve");
  assert.equal(run.status, "succeeded", JSON.stringify(run.error));
  assert.deepEqual(run.nodes.approve.output, { n: 1 });
  assert.equal(run.nodes.approve.attempts, 2);
  assert.deepEqual(keys, [], "the received record went with the run's end");
});

Deno.test("wait (mod.ts): a second signal of the same name stays pending for the next wait node, not taken by the retry", async () => {
  const { run, keys } = await takenThenTimedOut(
    {
      id: "two",
      nodes: [
        {
          id: "first",
          type: "wait",
          with: { signal: "go", timeout: "20s" },
          timeout: "7m",
          retry: { attempts: 2 },
        },
        { id: "second", type: "wait", needs: ["first"], with: { signal: "go", timeout: "20s" } },
      ],
    },
    "first",
    async (rt, id) => {
      assert.equal((await rt.signalRun(id, "go", { n: 2 })).kind, "stored");
    },
  );
  assert.equal(run.status, "succeeded", JSON.stringify(run.error));
  assert.deepEqual(run.nodes.first.output, { n: 1 });
  assert.deepEqual(run.nodes.second.output, { n: 2 });
  assert.deepEqual(keys, []);
});

Deno.test("wait (mod.ts): a sub-flow node timed out after its sub-run's wait took the signal: the retry's new sub-run gets it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-wait-kept-" });
  try {
    await Deno.writeTextFile(
      join(dir, "child.yaml"),
      `id: child
nodes:
  - { id: approve, type: wait, with: { signal: go, timeout: 20s } }
outputs:
  got: "\${{ nodes.approve.output.n }}"
`,
    );
    await Deno.writeTextFile(
      join(dir, "parent.yaml"),
      `id: parent
nodes:
  - id: review
    type: flow
    timeout: 7m
    retry: { attempts: 2 }
    with: { flow: ./child.yaml }
`,
    );
    const { run, keys } = await takenThenTimedOut(join(dir, "parent.yaml"), "approve");
    assert.equal(run.status, "succeeded", JSON.stringify(run.error));
    assert.deepEqual(run.nodes.review.output, { got: 1 });
    assert.equal(run.nodes.review.attempts, 2);
    assert.deepEqual(keys, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
