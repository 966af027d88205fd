/**
 * Change triggers (`trigger: { changes: { store, prefix } }`): one run per
 * change under the prefix, the change as the run's inputs, resumed after a
 * restart without loss (in process, and as `flowstate daemon` processes
 * stopped with SIGTERM and killed with SIGKILL), and config errors with
 * file:line:column.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError } from "../src/errors.ts";
import { openRuntime, type Runtime } from "../src/runtime.ts";
import { openStore } from "../src/plugin.ts";
import {
  type ChangeTriggerEvent,
  type ChangeTriggers,
  startChangeTriggers,
  type TriggerPosition,
  triggerPositionKey,
} from "../src/scheduler/change_triggers.ts";
import type { Store } from "../src/store/types.ts";
import { spawnDaemon, streamLines } from "./fixtures/daemon_process.ts";
import { cliArgv, withCliProject } from "./_cli_sandbox.ts";
import { exitOf, within } from "./_deadline.ts";

const FLOW = `
id: on-order
trigger:
  changes: { store: data, prefix: [orders] }
inputs:
  key: { type: array }
  op: { type: string }
  value: {}
  seq: { type: number }
nodes:
  - id: count
    type: state.increment
    with: { store: data, key: ["seen", "seq-\${{ inputs.seq }}"] }
  - id: what
    type: state.set
    with:
      store: data
      key: ["what", "seq-\${{ inputs.seq }}"]
      value: { key: "\${{ inputs.key }}", op: "\${{ inputs.op }}", value: "\${{ inputs.value }}" }
`;

const CONFIG = `
stores:
  main: { plugin: sqlite, path: main.db }
  data: { plugin: sqlite, path: data.db, changes: { keep: 30d } }
  other: { plugin: jsonfile, path: other.json, changes: { keep: 30d } }
scopes: { global: main, flow: main, node: main }
flows: [./on-order.flow.yaml]
jobs:
  retention: { enabled: false }
  gc: { enabled: false }
`;

async function withProject(fn: (dir: string) => Promise<void>, flow = FLOW) {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-trigger-" });
  await Deno.writeTextFile(join(dir, "flowstate.yaml"), CONFIG);
  await Deno.writeTextFile(join(dir, "on-order.flow.yaml"), flow);
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A store of the project in `dir` (as CONFIG declares it), opened in this process. */
function projectStore(dir: string, name: "main" | "data" | "other"): Promise<Store> {
  const changes = { keep: "30d" };
  const specs = {
    main: { plugin: "sqlite", path: join(dir, "main.db") },
    data: { plugin: "sqlite", path: join(dir, "data.db"), changes },
    other: { plugin: "jsonfile", path: join(dir, "other.json"), changes },
  };
  return openStore(specs[name], { name });
}

/** Wait until `check` holds (up to 2 minutes: a loaded machine is slow, never a failure by itself). */
async function eventually(check: () => Promise<boolean>, what: string) {
  const deadline = Date.now() + 120_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Start the project's change triggers, keeping the messages of their error events; resolves once
 * the trigger of "on-order" stored its first position (the triggers are stopped if it never does).
 */
async function startKeepingErrors(
  rt: Runtime,
  options: { leaseMs?: number } = {},
): Promise<{ triggers: ChangeTriggers; errors: string[] }> {
  const errors: string[] = [];
  const triggers = await startChangeTriggers(rt, {
    ...options,
    onEvent: (event) => {
      if (event.type === "error") errors.push((event.error as Error).message);
    },
  });
  try {
    await eventually(
      async () =>
        (await (await rt.store("main")).get(triggerPositionKey("on-order", "data"))) !== null,
      "the first position",
    );
  } catch (err) {
    await triggers.stop();
    throw err;
  }
  return { triggers, errors };
}

/** How many times each sequence number was delivered. */
async function seen(data: Store): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for await (const e of data.list<number>({ prefix: ["flow", "on-order", "seen"] })) {
    out.set(Number(e.key[3].slice("seq-".length)), e.value);
  }
  return out;
}

/** The sequence numbers of the changes under ["orders"], from the feed. */
async function orderSeqs(data: Store, since: number): Promise<number[]> {
  const out: number[] = [];
  for await (const c of data.changes({ since, prefix: ["orders"] })) out.push(c.seq);
  return out;
}

Deno.test("change trigger: one run per change with the change as inputs; resumes after a restart without loss", async () => {
  await withProject(async (dir) => {
    const config = join(dir, "flowstate.yaml");
    let rt = await openRuntime({ config });
    let data = await rt.store("data");
    await data.set(["orders", "before"], 0); // before the first start: not delivered
    let triggers = await startChangeTriggers(rt);
    assert.equal(triggers.triggers.length, 1);
    await eventually(
      async () =>
        (await rt.store("main").then((m) => m.get(triggerPositionKey("on-order", "data")))) !==
          null,
      "the first position",
    );
    const start =
      (await (await rt.store("main")).get<{ seq: number }>(triggerPositionKey("on-order", "data")))!
        .value.seq;
    await data.set(["orders", "1"], { total: 5 });
    await data.set(["other", "x"], 1); // not under the prefix
    await data.delete(["orders", "1"]);
    await eventually(async () => (await seen(data)).size >= 2, "two runs");
    await triggers.stop();
    // Written while no trigger runs.
    for (let i = 2; i < 6; i++) await data.set(["orders", String(i)], i);
    await rt.close();

    rt = await openRuntime({ config });
    data = await rt.store("data");
    triggers = await startChangeTriggers(rt);
    const expected = await orderSeqs(data, start);
    assert.equal(expected.length, 6);
    await eventually(async () => (await seen(data)).size >= expected.length, "every change");
    await triggers.stop();
    const counts = await seen(data);
    assert.deepEqual([...counts.keys()].sort((a, b) => a - b), expected);
    assert.ok([...counts.values()].every((n) => n === 1), "no duplicate after a clean stop");
    const first = await data.get<{ key: string[]; op: string; value: unknown }>([
      "flow",
      "on-order",
      "what",
      `seq-${expected[0]}`,
    ]);
    assert.deepEqual(first?.value, { key: ["orders", "1"], op: "set", value: { total: 5 } });
    const second = await data.get<{ op: string }>([
      "flow",
      "on-order",
      "what",
      `seq-${expected[1]}`,
    ]);
    assert.equal(second?.value.op, "delete");
    await rt.close();
  });
});

Deno.test("change trigger: an error does not end it; it starts again from its stored position and delivers what came meanwhile", async () => {
  await withProject(async (dir) => {
    // The records store gives up on a lock after 100 ms.
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      CONFIG.replace(
        "main: { plugin: sqlite, path: main.db }",
        "main: { plugin: sqlite, path: main.db, busyTimeout: 100 }",
      ),
    );
    const rt = await openRuntime({ config: join(dir, "flowstate.yaml") });
    const data = await rt.store("data");
    // A lease whose release failed (the store was locked) lapses after 2 s.
    const { triggers, errors } = await startKeepingErrors(rt, { leaseMs: 2_000 });
    try {
      await data.set(["orders", "1"], 1);
      await eventually(async () => (await seen(data)).size === 1, "the first run");
      // Another process holds the records store's write lock: recording the next run (and the
      // trigger's lease and position) fails while it does.
      const { DatabaseSync } = await import("node:sqlite");
      const other = new DatabaseSync(join(dir, "main.db"));
      other.exec("BEGIN IMMEDIATE");
      try {
        await data.set(["orders", "2"], 2);
        // (The lease's keep-alive may report an error of its own meanwhile: this one is the restart.)
        await eventually(
          () => Promise.resolve(errors.some((e) => e.includes("starting again"))),
          "the trigger's error and restart reported",
        );
      } finally {
        other.exec("ROLLBACK");
        other.close();
      }
      assert.match(
        errors.find((e) => e.includes("starting again"))!,
        /^change trigger of flow "on-order" \(store "data"\): .*locked.*; starting again from its stored position in 1 s$/,
      );
      await eventually(
        async () => (await seen(data)).size === 2,
        "the change written during the error, delivered",
      );
    } finally {
      await triggers.stop();
      await rt.close();
    }
  });
});

Deno.test("change trigger: a change the flow refuses as its inputs is said and passed over, not retried forever", async () => {
  const strict = FLOW.replace("  value: {}\n", "  value: { type: object }\n");
  assert.notEqual(strict, FLOW);
  await withProject(async (dir) => {
    const rt = await openRuntime({ config: join(dir, "flowstate.yaml") });
    const data = await rt.store("data");
    const { triggers, errors } = await startKeepingErrors(rt);
    try {
      await data.set(["orders", "1"], { total: 5 });
      await data.delete(["orders", "1"]); // value null: not an object
      await data.set(["orders", "2"], { total: 7 });
      await eventually(async () => (await seen(data)).size === 2, "the two sets run");
      const [del] = (await orderSeqs(data, 0)).slice(1, 2);
      const refused = errors.filter((e) => /was not run/.test(e));
      assert.equal(refused.length, 1, refused.join("\n"));
      assert.match(
        refused[0],
        new RegExp(
          `^change trigger of flow "on-order": change ${del} \\(delete \\["orders","1"\\]\\) was ` +
            `not run, the flow refuses it as its inputs: .*on-order\\.flow\\.yaml:\\d+:\\d+: ` +
            `inputs\\.value: .*; passed over \\(declare the inputs so that every change under the ` +
            `prefix fits, e\\.g\\. value: \\{\\} for deletes\\)$`,
        ),
      );
      assert.ok(!errors.some((e) => e.includes("starting again")), errors.join("\n"));
    } finally {
      await triggers.stop();
      await rt.close();
    }
  }, strict);
});

Deno.test({
  name:
    "change trigger under flowstate daemon: SIGTERM then SIGKILL, each change delivered at least once, none lost",
  sanitizeResources: false,
  async fn() {
    await withProject(async (dir) => {
      await using data = await projectStore(dir, "data");
      const writeOrders = async (from: number, to: number) => {
        for (let i = from; i < to; i++) await data.set(["orders", String(i)], i);
      };
      const daemon = async (id: string) => {
        const child = spawnDaemon(dir, id, { leaseMs: 1000 });
        const out = streamLines(child.stdout);
        const err = streamLines(child.stderr);
        await out.next(/^Change trigger flow:on-order watching/);
        return { child, out, err };
      };
      const a = await daemon("a");
      const start = (await data.feedInfo()).lastSeq;
      await writeOrders(0, 10);
      await eventually(async () => (await seen(data)).size >= 3, "some runs by daemon a");
      a.child.kill("SIGTERM");
      assert.equal(
        (await exitOf(a.child, () => a.err.lines.join("\n"))).code,
        0,
        a.err.lines.join("\n"),
      );
      await Promise.all([a.out.done, a.err.done]);
      await writeOrders(10, 15); // while no daemon runs

      const b = await daemon("b");
      await writeOrders(15, 20);
      await eventually(async () => (await seen(data)).size >= 12, "more runs by daemon b");
      b.child.kill("SIGKILL");
      await exitOf(b.child);
      await Promise.all([b.out.done.catch(() => {}), b.err.done.catch(() => {})]);
      await writeOrders(20, 25);

      const c = await daemon("c");
      const expected = await orderSeqs(data, start);
      assert.equal(expected.length, 25);
      await eventually(
        async () => (await seen(data)).size >= expected.length,
        "every change after the kill",
      );
      c.child.kill("SIGTERM");
      assert.equal(
        (await exitOf(c.child, () => c.err.lines.join("\n"))).code,
        0,
        c.err.lines.join("\n"),
      );
      await Promise.all([c.out.done, c.err.done]);
      const counts = await seen(data);
      assert.deepEqual([...counts.keys()].sort((x, y) => x - y), expected, "none lost");
      // A change is delivered twice only if the daemon died between its run and the position write.
      const twice = [...counts.values()].filter((n) => n > 1).length;
      assert.ok(twice <= 1, `at most the change in flight when killed ran twice (${twice})`);
    });
  },
});

/**
 * Start the triggers of the project in `dir` with `position` stored first (if
 * given); resolves the events up to the trigger's start, the runtime and the triggers.
 */
async function startWith(dir: string, position?: TriggerPosition, watched = "data") {
  const rt = await openRuntime({ config: join(dir, "flowstate.yaml") });
  if (position !== undefined) {
    await (await rt.store("main")).set(triggerPositionKey("on-order", position.store), position);
  }
  const events: ChangeTriggerEvent[] = [];
  const started = Promise.withResolvers<void>();
  const triggers = await startChangeTriggers(rt, {
    onEvent: (event) => {
      events.push(event);
      if (event.type === "trigger.start") started.resolve();
      if (event.type === "error") started.reject(event.error);
    },
  });
  await within(started.promise, "the started event");
  const position_ = async () =>
    (await (await rt.store("main")).get<TriggerPosition>(triggerPositionKey("on-order", watched)))
      ?.value;
  return { rt, events, triggers, position: position_ };
}

const ORDERS = ["j1", "j2", "j3"];

/** Where versions before the per-store positions kept the flow's one position. */
const OLD_POSITION_KEY = ["flowstate", "triggers", "on-order", "position"];

/**
 * Run `flowstate daemon` on the project in `dir` while `fn` reads its output, then stop it with
 * SIGTERM (it must exit 0); resolves the lines it wrote on stderr.
 */
async function whileDaemonRuns(
  dir: string,
  fn: (out: ReturnType<typeof streamLines>, err: ReturnType<typeof streamLines>) => Promise<void>,
): Promise<string[]> {
  const child = spawnDaemon(dir, "a", { leaseMs: 1000 });
  const out = streamLines(child.stdout);
  const err = streamLines(child.stderr);
  try {
    await fn(out, err);
  } finally {
    child.kill("SIGTERM");
    assert.equal((await exitOf(child, () => err.lines.join("\n"))).code, 0, err.lines.join("\n"));
    await Promise.all([out.done, err.done]);
  }
  return err.lines;
}

async function writeOrders(store: Store) {
  for (const id of ORDERS) await store.set(["orders", id], id);
}

Deno.test("change trigger whose flow now watches another store: every change of that store is delivered, said in a trigger.reset event", async () => {
  await withProject(async (dir) => {
    {
      await using other = await projectStore(dir, "other");
      await writeOrders(other); // changes 1 to 3, before the daemon starts
    }
    // The position the trigger stored while it watched store "data".
    const { rt, events, triggers, position } = await startWith(
      dir,
      { seq: 548, store: "data" },
      "other",
    );
    try {
      const reset = events.find((e) => e.type === "trigger.reset");
      assert.ok(reset?.type === "trigger.reset", JSON.stringify(events));
      assert.equal(reset.reason, "store");
      assert.equal(reset.since, 0);
      assert.deepEqual(reset.previous, { seq: 548, store: "data" });
      assert.match(
        reset.message,
        /its position \(change 548\) is one of store "data", and the flow now watches store "other"; delivering the changes of store "other" from its oldest kept: changes 1 to 3/,
      );
      const start = events.find((e) => e.type === "trigger.start");
      assert.equal(start?.type === "trigger.start" && start.since, 0);
      const data = await rt.store("data");
      await eventually(async () => (await seen(data)).size >= 3, "the three changes of other");
      assert.deepEqual([...(await seen(data)).entries()], [[1, 1], [2, 1], [3, 1]]);
      await eventually(async () => (await position())?.seq === 3, "the position after change 3");
      assert.equal((await position())?.store, "other");
    } finally {
      await triggers.stop();
      await rt.close();
    }
  }, FLOW.replace("store: data, prefix", "store: other, prefix"));
});

Deno.test({
  name:
    "flowstate daemon: a trigger whose flow now watches another store says so on stderr and delivers that store's changes",
  sanitizeResources: false,
  async fn() {
    await withProject(async (dir) => {
      {
        await using other = await projectStore(dir, "other");
        await writeOrders(other);
        // Stored by a version that kept one position per flow, while the flow watched "data".
        await using main = await projectStore(dir, "main");
        await main.set(OLD_POSITION_KEY, { seq: 548, store: "data" });
      }
      await whileDaemonRuns(dir, async (out, err) => {
        assert.match(
          await out.next(/^Change trigger flow:on-order watching/),
          /^Change trigger flow:on-order watching store "other" under \["orders"\] after change 0$/,
        );
        assert.match(
          await err.next(/^warning: /),
          /^warning: change trigger of flow "on-order": its position \(change 548\) is one of store "data", and the flow now watches store "other"; delivering the changes of store "other" from its oldest kept: changes 1 to 3 \(every change its feed holds\)\. To skip them instead: stop the daemon, run flowstate state set --store main flowstate\/triggers\/on-order\/store\/other\/position '\{"seq":3,"store":"other"\}' --force and start it again$/,
        );
        for (const seq of [1, 2, 3]) {
          await out.next(
            new RegExp(`^change ${seq} \\["orders","j${seq}"\\] flow:on-order succeeded run=`),
          );
        }
      });
      // The old key stays as it was (an older daemon still watching "data" during a rolling
      // upgrade that also moves the flow resumes from it: deleting it made that daemon start from
      // then on, skipping the changes of "data" made meanwhile); it is copied as the position of
      // store "data".
      await using main = await projectStore(dir, "main");
      assert.deepEqual((await main.get(OLD_POSITION_KEY))?.value, { seq: 548, store: "data" });
      assert.deepEqual((await main.get(triggerPositionKey("on-order", "data")))?.value, {
        seq: 548,
        store: "data",
        copied: true,
      });
      assert.equal(
        (await main.get<TriggerPosition>(triggerPositionKey("on-order", "other")))?.value.seq,
        3,
      );
    }, FLOW.replace("store: data, prefix", "store: other, prefix"));
  },
});

Deno.test("change trigger on a store whose feed was reset: its changes are delivered from the first, said in a trigger.reset event", async () => {
  // The feed ends before the position: the store's file was recreated (or replaced).
  await withProject(async (dir) => {
    {
      await using data = await projectStore(dir, "data");
      await writeOrders(data);
    }
    const { rt, events, triggers, position } = await startWith(dir, {
      seq: 548,
      store: "data",
      at: Date.parse("2026-01-01T00:00:00Z"),
    });
    try {
      const reset = events.find((e) => e.type === "trigger.reset");
      assert.ok(reset?.type === "trigger.reset", JSON.stringify(events));
      assert.equal(reset.reason, "feed");
      assert.equal(reset.since, 0);
      assert.match(
        reset.message,
        /the feed of store "data" was reset .*: it ends at change 3, before the trigger's position \(change 548\); delivering/,
      );
      const data = await rt.store("data");
      await eventually(async () => (await seen(data)).size >= 3, "the three changes");
      assert.deepEqual([...(await seen(data)).keys()], [1, 2, 3]);
      await eventually(async () => (await position())?.seq === 3, "the position after change 3");
    } finally {
      await triggers.stop();
      await rt.close();
    }
  });
  // The new feed already went past the position: its change there is another one.
  await withProject(async (dir) => {
    let delivered: TriggerPosition;
    {
      const { rt, triggers, position } = await startWith(dir);
      const data = await rt.store("data");
      await writeOrders(data);
      const last = (await orderSeqs(data, 0)).at(-1);
      await eventually(async () => (await position())?.seq === last, "the first three delivered");
      delivered = (await position())!;
      assert.equal(typeof delivered.at, "number");
      await triggers.stop();
      await rt.close();
    }
    // The store's file replaced by a new one (a restore into a new file, say) with more changes.
    for (const name of ["data.db", "data.db-wal", "data.db-shm"]) {
      await Deno.remove(join(dir, name)).catch(() => {});
    }
    {
      await using data = await projectStore(dir, "data");
      // More changes than the old feed had when the trigger stopped (its own writes included).
      for (let i = 0; i < 20; i++) await data.set(["orders", `n${i}`], i);
    }
    const { rt, events, triggers, position } = await startWith(dir);
    try {
      const reset = events.find((e) => e.type === "trigger.reset");
      assert.ok(reset?.type === "trigger.reset", JSON.stringify(events));
      assert.equal(reset.reason, "feed");
      assert.match(
        reset.message,
        new RegExp(`its change ${delivered.seq} is not the one the trigger delivered`),
      );
      assert.equal(reset.since, 0);
      const data = await rt.store("data");
      await eventually(async () => (await seen(data)).size >= 20, "the new feed's twenty changes");
      const orders = await orderSeqs(data, 0);
      assert.deepEqual([...(await seen(data)).keys()].sort((a, b) => a - b), orders);
      // The position goes on in the new feed, with its changes' commit times (and the prefix).
      await eventually(async () => (await position())?.seq === orders.at(-1), "the last position");
      const last = (await position())!;
      const [change] = await Array.fromAsync(data.changes({ since: last.seq - 1, limit: 1 }));
      assert.deepEqual(last, {
        seq: change.seq,
        store: "data",
        at: change.at,
        prefix: ["orders"],
      });
    } finally {
      await triggers.stop();
      await rt.close();
    }
  });
});

Deno.test("change trigger config errors name the flow file, line and column", async () => {
  const bad = FLOW.replace("store: data,", "store: nope,");
  await withProject(async (dir) => {
    await using rt = await openRuntime({ config: join(dir, "flowstate.yaml") });
    await assert.rejects(
      startChangeTriggers(rt),
      (err: Error) => {
        assert.ok(err instanceof ConfigError);
        assert.match(
          err.message,
          /on-order\.flow\.yaml:\d+:\d+: trigger\.changes\.store: no store "nope"/,
        );
        return true;
      },
    );
  }, bad);
  const noFeed = FLOW.replace("store: data,", "store: main,");
  await withProject(async (dir) => {
    await using rt = await openRuntime({ config: join(dir, "flowstate.yaml") });
    await assert.rejects(
      startChangeTriggers(rt),
      /on-order\.flow\.yaml:\d+:\d+: trigger\.changes: store "main" keeps no change feed; add changes: \{ keep: 30d \} to stores\.main/,
    );
  }, noFeed);
  const typo = FLOW.replace("prefix: [orders]", "prefx: [orders]");
  await withProject(async (dir) => {
    await using rt = await openRuntime({ config: join(dir, "flowstate.yaml") });
    await assert.rejects(
      startChangeTriggers(rt),
      /on-order\.flow\.yaml:\d+:\d+.*prefx.*unknown field/s,
    );
  }, typo);
});

Deno.test("every bad change trigger at once: validate reports each flow's, the daemon names them all", async () => {
  const config = CONFIG.replace(
    "flows: [./on-order.flow.yaml]",
    "flows: [./missing.flow.yaml, ./nofeed.flow.yaml, ./on-order.flow.yaml]",
  );
  await withCliProject(config, async (run, dir) => {
    const missing = FLOW.replace("id: on-order", "id: missing").replace(
      "store: data,",
      "store: nope,",
    );
    const noFeed = FLOW.replace("id: on-order", "id: nofeed").replace(
      "store: data,",
      "store: main,",
    );
    await Deno.writeTextFile(join(dir, "missing.flow.yaml"), missing);
    await Deno.writeTextFile(join(dir, "nofeed.flow.yaml"), noFeed);
    await Deno.writeTextFile(join(dir, "on-order.flow.yaml"), FLOW);
    const checked = await run(
      "validate",
      "missing.flow.yaml",
      "nofeed.flow.yaml",
      "on-order.flow.yaml",
    );
    assert.equal(checked.code, 2, checked.stderr);
    assert.match(
      checked.stderr,
      /missing\.flow\.yaml:4:\d+: trigger\.changes\.store: no store "nope" in the config \(stores: main, data, other\)/,
    );
    assert.match(
      checked.stderr,
      /nofeed\.flow\.yaml:4:\d+: trigger\.changes: store "main" keeps no change feed; add changes: \{ keep: 30d \} to stores\.main/,
    );
    assert.match(checked.stdout, /^ok .*on-order\.flow\.yaml$/m);

    await using rt = await openRuntime({ config: join(dir, "flowstate.yaml") });
    await assert.rejects(startChangeTriggers(rt), (err: Error) => {
      assert.ok(err instanceof ConfigError);
      assert.match(
        err.message,
        /missing\.flow\.yaml:\d+:\d+: trigger\.changes\.store: no store "nope"/,
      );
      assert.match(
        err.message,
        /nofeed\.flow\.yaml:\d+:\d+: trigger\.changes: store "main" keeps no change feed/,
      );
      return true;
    });
  });
});

/** The flow of the rolling-deploy test: it counts each change by store and sequence number. */
const FLOW_BY_STORE = `
id: on-order
trigger:
  changes: { store: STORE, prefix: [orders] }
inputs:
  seq: { type: number }
  store: { type: string }
nodes:
  - id: count
    type: state.increment
    with: { store: data, key: ["seen", "\${{ inputs.store }}-\${{ inputs.seq }}"] }
`;

Deno.test("change trigger during a rolling deploy: daemons pointing the flow at two stores keep a position each as the lease passes between them; each change runs once, no reset after each store's first start", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-trigger-" });
  const stores = CONFIG.replace(
    "other: { plugin: jsonfile, path: other.json, changes: { keep: 30d } }",
    "other: { plugin: sqlite, path: other.db, changes: { keep: 30d } }",
  );
  // The old config's flow watches store "data", the new one's store "other": same flow id.
  for (const [config, store] of [["old", "data"], ["new", "other"]]) {
    await Deno.writeTextFile(
      join(dir, `${config}.yaml`),
      stores.replace("./on-order.flow.yaml", `./${config}.flow.yaml`),
    );
    await Deno.writeTextFile(
      join(dir, `${config}.flow.yaml`),
      FLOW_BY_STORE.replace("STORE", store),
    );
  }
  const data = await projectStore(dir, "data");
  const other = await openStore(
    { plugin: "sqlite", path: join(dir, "other.db"), changes: { keep: "30d" } },
    { name: "other" },
  );
  const events: { config: string; event: ChangeTriggerEvent }[] = [];
  const startsOf = (config: string) =>
    events.filter((e) => e.config === config && e.event.type === "trigger.start").length;
  const standbysOf = (config: string) =>
    events.filter((e) => e.config === config && e.event.type === "trigger.standby").length;
  const running = new Set<{ stop(): Promise<void> }>();
  const start = async (config: "old" | "new") => {
    const rt = await openRuntime({ config: join(dir, `${config}.yaml`) });
    const triggers = await startChangeTriggers(rt, {
      runnerId: config,
      // Long enough for a loaded machine's renewals (every 2 s) never to let it lapse: a lapsed
      // lease would run a change again (at least once), and this test counts exactly once. A
      // stopped daemon releases it, and the other takes it within a third of it.
      leaseMs: 6_000,
      onEvent: (event) => events.push({ config, event }),
    });
    const daemon = {
      async stop() {
        running.delete(daemon);
        await triggers.stop();
        await rt.close();
      },
    };
    running.add(daemon);
    return daemon;
  };
  /** How many times each change of each store ran ("data-7": 1). */
  const runs = async () => {
    const out = new Map<string, number>();
    for await (const e of data.list<number>({ prefix: ["flow", "on-order", "seen"] })) {
      out.set(e.key[3], e.value);
    }
    return out;
  };
  const feeds = { data, other };
  /** Wait until every change under ["orders"] of `store` ran. */
  const delivered = async (store: "data" | "other", what: string) => {
    const seqs = await orderSeqs(feeds[store], 0);
    await eventually(async () => {
      const ran = await runs();
      return seqs.every((seq) => ran.has(`${store}-${seq}`));
    }, what);
  };
  const write = async (round: number) => {
    for (const store of [data, other]) {
      for (let i = 0; i < 3; i++) await store.set(["orders", `${round}-${i}`], i);
    }
  };
  const watchedBy = (config: "old" | "new") => config === "old" ? "data" : "other";
  try {
    // The old config's daemon holds the lease; the new one's waits.
    let holder: { config: "old" | "new"; daemon: { stop(): Promise<void> } } = {
      config: "old",
      daemon: await start("old"),
    };
    await eventually(() => Promise.resolve(startsOf("old") === 1), "the old daemon's start");
    let waiting: typeof holder = { config: "new", daemon: await start("new") };
    await eventually(() => Promise.resolve(standbysOf("new") === 1), "the new daemon waiting");
    for (let round = 0; round < 5; round++) {
      await write(round);
      await delivered(watchedBy(holder.config), `round ${round}: the holder's changes`);
      // The holder stops (its daemon upgraded, or rolled back): the lease passes to the other
      // daemon; the stopped one comes back and waits.
      const starts = startsOf(waiting.config);
      await holder.daemon.stop();
      await eventually(
        () => Promise.resolve(startsOf(waiting.config) === starts + 1),
        `round ${round}: the ${waiting.config} daemon taking over`,
      );
      const standbys = standbysOf(holder.config);
      const back: typeof holder = { config: holder.config, daemon: await start(holder.config) };
      await eventually(
        () => Promise.resolve(standbysOf(back.config) === standbys + 1),
        `round ${round}: the ${back.config} daemon waiting`,
      );
      holder = waiting;
      waiting = back;
    }
    await delivered(watchedBy(holder.config), "the last holder's changes");
    await holder.daemon.stop();
    await waiting.daemon.stop();
    const ran = await runs();
    for (const store of ["data", "other"] as const) {
      const seqs = await orderSeqs(feeds[store], 0);
      assert.equal(seqs.length, 15);
      const mine = [...ran].filter(([key]) => key.startsWith(`${store}-`));
      assert.deepEqual(
        mine.map(([key, n]) => [Number(key.slice(store.length + 1)), n]).sort((a, b) =>
          a[0] - b[0]
        ),
        seqs.map((seq) => [seq, 1]),
        `each change of store "${store}" ran once`,
      );
    }
    // One reset: the new config's first start, with no position in "other" yet (its changes
    // written before, delivered from its oldest kept); none at the handovers after it.
    const resets = events.filter((e) => e.event.type === "trigger.reset");
    assert.equal(resets.length, 1, JSON.stringify(resets));
    const [first] = resets;
    assert.ok(first.event.type === "trigger.reset");
    assert.equal(first.config, "new");
    assert.equal(first.event.reason, "store");
    assert.equal(first.event.since, 0);
    assert.deepEqual(events.filter((e) => e.event.type === "error"), []);
  } finally {
    for (const daemon of [...running]) await daemon.stop();
    await data.close();
    await other.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "flowstate daemon after an upgrade: the position an older version stored (one per flow) is honoured, moved to its store's key, nothing delivered twice or lost",
  sanitizeResources: false,
  async fn() {
    await withProject(async (dir) => {
      {
        await using data = await projectStore(dir, "data");
        await writeOrders(data); // changes 1 to 3
        // The older version's daemon delivered changes 1 and 2, then stopped.
        const [second] = await Array.fromAsync(data.changes({ since: 1, limit: 1 }));
        await using main = await projectStore(dir, "main");
        await main.set(OLD_POSITION_KEY, { seq: 2, store: "data", at: second.at });
      }
      const stderr = await whileDaemonRuns(dir, async (out) => {
        assert.match(
          await out.next(/^Change trigger flow:on-order watching/),
          /^Change trigger flow:on-order watching store "data" under \["orders"\] after change 2$/,
        );
        await out.next(/^change 3 \["orders","j3"\] flow:on-order succeeded run=/);
      });
      assert.deepEqual(stderr.filter((line) => line.startsWith("warning:")), []);
      await using data = await projectStore(dir, "data");
      assert.deepEqual([...(await seen(data))], [[3, 1]], "change 3 only, once");
      await using main = await projectStore(dir, "main");
      assert.equal(await main.get(OLD_POSITION_KEY), null, "the old key is gone");
      const moved = await main.get<TriggerPosition>(triggerPositionKey("on-order", "data"));
      assert.equal(moved?.value.seq, 3);
      assert.equal(moved?.value.store, "data");
    });
  },
});

Deno.test("change trigger: an old-layout position written after this version stored its own (a daemon of the older version ran meanwhile) is dropped; this version's is kept", async () => {
  await withProject(async (dir) => {
    {
      await using data = await projectStore(dir, "data");
      await writeOrders(data); // changes 1 to 3
      await using main = await projectStore(dir, "main");
      await main.set(triggerPositionKey("on-order", "data"), { seq: 1, store: "data" });
      // An older daemon that found no position at its key started after change 3.
      await main.set(OLD_POSITION_KEY, { seq: 3, store: "data" });
    }
    const { rt, events, triggers, position } = await startWith(dir);
    try {
      const start = events.find((e) => e.type === "trigger.start");
      assert.equal(start?.type === "trigger.start" && start.since, 1, JSON.stringify(events));
      assert.equal(await (await rt.store("main")).get(OLD_POSITION_KEY), null);
      const data = await rt.store("data");
      await eventually(async () => (await seen(data)).size >= 2, "changes 2 and 3");
      assert.deepEqual([...(await seen(data))], [[2, 1], [3, 1]]);
      await eventually(async () => (await position())?.seq === 3, "the position after change 3");
    } finally {
      await triggers.stop();
      await rt.close();
    }
  });
});

Deno.test("change trigger: the warning's skip command, run as printed in a shell, skips (a store name the shell would read otherwise)", async () => {
  const odd = "it's (eu);x";
  await withProject(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      CONFIG.replace("  other: {", `  ${JSON.stringify(odd)}: {`),
    );
    {
      await using other = await openStore(
        { plugin: "jsonfile", path: join(dir, "other.json"), changes: { keep: "30d" } },
        { name: odd },
      );
      await writeOrders(other); // changes 1 to 3
    }
    const { rt, events, triggers } = await startWith(dir, { seq: 548, store: "data" }, odd);
    await triggers.stop();
    // Whatever the trigger delivered before it stopped: back to "nothing delivered".
    await (await rt.store("main")).set(triggerPositionKey("on-order", odd), { seq: 0, store: odd });
    await rt.close();
    const reset = events.find((e) => e.type === "trigger.reset");
    assert.ok(reset?.type === "trigger.reset", JSON.stringify(events));
    const command = /run (flowstate state set .*) and start it again$/.exec(reset.message)?.[1];
    assert.ok(command !== undefined, reset.message);
    // The CLI of this checkout in place of `flowstate`, then the command exactly as printed.
    const cli = cliArgv([]).map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
    const shell = await new Deno.Command("sh", {
      args: ["-c", `${cli} ${command.slice("flowstate ".length)}`],
      cwd: dir,
      env: { FLOWSTATE_HOME: join(dir, "home"), NO_COLOR: "1", RUST_BACKTRACE: "0" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(shell.code, 0, new TextDecoder().decode(shell.stderr));
    await using main = await projectStore(dir, "main");
    assert.deepEqual((await main.get(triggerPositionKey("on-order", odd)))?.value, {
      seq: 3,
      store: odd,
    });
  }, FLOW.replace("store: data, prefix", `store: ${JSON.stringify(odd)}, prefix`));
});

Deno.test("change trigger: the copy of an older daemon's position follows it while that daemon delivers; moving the flow back resumes from where it got to, nothing run twice", async () => {
  await withProject(async (dir) => {
    {
      await using data = await projectStore(dir, "data");
      await writeOrders(data); // changes 1 to 3
      await using main = await projectStore(dir, "main");
      // An older version's position: change 1 of "data" delivered.
      await main.set(OLD_POSITION_KEY, { seq: 1, store: "data" });
    }
    const watching = (store: string) =>
      Deno.writeTextFile(
        join(dir, "on-order.flow.yaml"),
        FLOW.replace("store: data, prefix", `store: ${store}, prefix`),
      );
    // The new config moves the flow to "other": the older daemons keep watching "data".
    await watching("other");
    {
      const { rt, triggers } = await startWith(dir, undefined, "other");
      await triggers.stop();
      await rt.close();
    }
    await using main = await projectStore(dir, "main");
    const copyKey = triggerPositionKey("on-order", "data");
    assert.deepEqual((await main.get(OLD_POSITION_KEY))?.value, { seq: 1, store: "data" });
    assert.deepEqual((await main.get(copyKey))?.value, { seq: 1, store: "data", copied: true });
    // An older daemon delivers changes 2 and 3 of "data" (its one position moves to 3).
    await main.set(OLD_POSITION_KEY, { seq: 3, store: "data" });
    {
      const { rt, triggers } = await startWith(dir, undefined, "other");
      await triggers.stop();
      await rt.close();
    }
    assert.deepEqual((await main.get(copyKey))?.value, { seq: 3, store: "data", copied: true });
    // The flow moves back to "data": this version resumes after change 3, as the older daemon left it.
    await watching("data");
    const { rt, events, triggers, position } = await startWith(dir);
    try {
      const start = events.find((e) => e.type === "trigger.start");
      assert.equal(start?.type === "trigger.start" && start.since, 3, JSON.stringify(events));
      assert.equal(events.some((e) => e.type === "trigger.reset"), false, JSON.stringify(events));
      assert.equal(await main.get(OLD_POSITION_KEY), null, "the old key is moved");
      assert.deepEqual((await position())?.copied, undefined, "this version's own position now");
      const data = await rt.store("data");
      await data.set(["orders", "j4"], "j4");
      await eventually(async () => (await seen(data)).size >= 1, "the next change");
      assert.deepEqual([...(await seen(data)).values()], [1], "only the new change ran");
    } finally {
      await triggers.stop();
      await rt.close();
    }
  });
});
