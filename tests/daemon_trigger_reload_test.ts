/**
 * `flowstate daemon` follows edits of the flow files for change triggers
 * (`trigger: { changes }`) as it does for schedules, without a restart: an
 * edit of the flow that keeps its trigger reaches the next change from the
 * stored position, a trigger whose prefix changed watches from the feed's
 * end, one added (a new file) starts at the feed's end, one removed stops
 * (its position stays: added back, it resumes), an edit that cannot be used
 * is said once with file:line:column while the trigger goes on as it was.
 * Through the CLI (a daemon subprocess), waiting for its output.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { openStore } from "../src/plugin.ts";
import type { Store } from "../src/store/types.ts";
import { type TriggerPosition, triggerPositionKey } from "../src/scheduler/change_triggers.ts";
import { type DaemonProject, withDaemonProject, within } from "./fixtures/daemon_process.ts";
import { exitOf } from "./_deadline.ts";

const CONFIG = `
stores:
  main: { plugin: sqlite, path: main.db }
  data: { plugin: sqlite, path: data.db, changes: { keep: 30d } }
  other: { plugin: sqlite, path: other.db, changes: { keep: 30d } }
scopes: { global: main, flow: main, node: main }
flows: [./flows]
jobs:
  retention: { enabled: false }
  gc: { enabled: false }
`;

/**
 * A flow run once per change of store "data" under `prefix`, counting its
 * runs per change under `["<tag>", "<key's last part>"]` in store "main".
 */
const triggerFlow = (id: string, tag: string, prefix: string, store = "data") =>
  `id: ${id}
trigger:
  changes: { store: ${store}, prefix: [${prefix}] }
inputs:
  key: { type: array }
nodes:
  - id: count
    type: state.increment
    with: { key: ["${tag}", "\${{ inputs.key[1] }}"] }
`;

/** How many runs of flow `id` counted each key under `tag` (keys' last part → runs). */
async function counted(main: Store, id: string, tag: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for await (const e of main.list<number>({ prefix: ["flow", id, tag] })) {
    out[e.key[3]] = e.value;
  }
  return out;
}

/** The project's store `name`, opened in this process beside the daemon. */
function projectStore(dir: string, name: "main" | "data" | "other"): Promise<Store> {
  return openStore(
    name === "main"
      ? { plugin: "sqlite", path: join(dir, "main.db") }
      : { plugin: "sqlite", path: join(dir, `${name}.db`), changes: { keep: "30d" } },
    { name },
  );
}

/** The daemon's stdout line for a change of `key` run by flow `id`. */
const ran = (id: string, key: string[]) =>
  new RegExp(`^change \\d+ ${escape(JSON.stringify(key))} flow:${id} succeeded run=`);

/** Wait for the start of flow on-order's trigger, then for its run of `["orders", key]` set in `data`. */
async function firstRun(out: DaemonProject["out"], data: Store, key: string): Promise<void> {
  await within(out.next(/^Change trigger flow:on-order watching store "data"/), "the start");
  await data.set(["orders", key], 1);
  await within(out.next(ran("on-order", ["orders", key])), `${key} run`);
}

/** Wait until `n` lines of `stream` match `pattern`. */
async function untilCount(
  stream: DaemonProject["out"],
  pattern: RegExp,
  n: number,
  what: string,
): Promise<void> {
  await within(
    (async () => {
      while (stream.lines.filter((l) => pattern.test(l)).length < n) {
        await new Promise((r) => setTimeout(r, 50));
      }
    })(),
    what,
  );
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A daemon on CONFIG with `flows/` holding `flows`; stopped with SIGTERM after `body` (exit 0). */
function withTriggerDaemon(
  prefix: string,
  flows: Record<string, string>,
  body: (d: DaemonProject) => Promise<void>,
  after: (dir: string) => Promise<void>,
): Promise<void> {
  return withDaemonProject(
    prefix,
    {
      "flowstate.yaml": CONFIG,
      ...Object.fromEntries(Object.entries(flows).map(([n, t]) => [`flows/${n}`, t])),
    },
    [],
    async (d) => {
      await body(d);
      d.child.kill("SIGTERM");
      assert.equal(
        (await exitOf(d.child, () => d.err.lines.join("\n"))).code,
        0,
        d.err.lines.join("\n"),
      );
      await after(d.dir);
    },
  );
}

Deno.test({
  name:
    "daemon: change triggers follow flow-file edits live (flow edited, prefix changed, file added, trigger removed and added back), each said",
  sanitizeResources: false,
  async fn() {
    await withTriggerDaemon("flowstate-trigreload-", {
      "on-order.flow.yaml": triggerFlow("on-order", "v1", "orders"),
    }, async ({ dir, out, err }) => {
      await using data = await projectStore(dir, "data");
      const file = join(dir, "flows", "on-order.flow.yaml");
      await firstRun(out, data, "o1");

      // The flow's nodes change, its trigger does not: the next change runs the new version.
      await Deno.writeTextFile(file, triggerFlow("on-order", "v2", "orders"));
      await within(
        err.next(
          /^\[flow:on-order\] flow file changed: its change trigger's next runs use it as it is now \(store "data" under \["orders"\], from its stored position\)$/,
        ),
        "the edit said",
      );
      await data.set(["orders", "o2"], 2);
      await within(out.next(ran("on-order", ["orders", "o2"])), "o2 run by the second version");

      // Its prefix changes: changes under the new prefix made before the edit are not delivered.
      await data.set(["invoices", "i0"], 0);
      await Deno.writeTextFile(file, triggerFlow("on-order", "v3", "invoices"));
      await within(
        err.next(
          /^\[flow:on-order\] change trigger changed from store "data" under \["orders"\] to store "data" under \["invoices"\]: once its run in progress \(if any\) ends, from its position stored for that store and prefix if any, else from the end of its feed \(after change \d+\)$/,
        ),
        "the trigger change said",
      );
      await within(
        out.next(/^Change trigger flow:on-order watching store "data" under \["invoices"\]/),
        "the changed trigger's start",
      );
      await data.set(["orders", "o3"], 3);
      await data.set(["invoices", "i1"], 1);
      await within(out.next(ran("on-order", ["invoices", "i1"])), "i1 run under the new prefix");

      // A new flow file with a trigger: it starts at the feed's end.
      await Deno.writeTextFile(
        join(dir, "flows", "witness.flow.yaml"),
        triggerFlow("witness", "w", "invoices"),
      );
      await within(
        err.next(/^\[flow:witness\] change trigger added: store "data" under \["invoices"\], /),
        "the addition said",
      );
      await within(out.next(/^Change trigger flow:witness watching/), "the new trigger's start");

      // The trigger is removed: no more runs; a change made meanwhile goes to the witness only.
      await Deno.writeTextFile(
        file,
        "id: on-order\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n",
      );
      await within(
        err.next(/^\[flow:on-order\] change trigger removed \(.*\): no more runs/),
        "the removal said",
      );
      await data.set(["invoices", "i2"], 2);
      await within(out.next(ran("witness", ["invoices", "i2"])), "i2 run by the witness");

      // Added back as it was: it resumes from its stored position (i2 is delivered).
      await Deno.writeTextFile(file, triggerFlow("on-order", "v4", "invoices"));
      await within(
        err.next(/^\[flow:on-order\] change trigger added: store "data" under \["invoices"\]/),
        "the trigger added back said",
      );
      await within(out.next(ran("on-order", ["invoices", "i2"])), "i2 run after it came back");
      assert.deepEqual(err.lines.filter((l) => /^(error|warning)/.test(l)), []);
    }, async (dir) => {
      await using main = await projectStore(dir, "main");
      assert.deepEqual(await counted(main, "on-order", "v1"), { o1: 1 });
      assert.deepEqual(await counted(main, "on-order", "v2"), { o2: 1 });
      // Neither i0 (before the prefix changed) nor o3 (the old prefix, after it changed).
      assert.deepEqual(await counted(main, "on-order", "v3"), { i1: 1 });
      assert.deepEqual(await counted(main, "on-order", "v4"), { i2: 1 });
      // Started at the feed's end: i0 and i1 were there before.
      assert.deepEqual(await counted(main, "witness", "w"), { i2: 1 });
      const position = await main.get<TriggerPosition>(triggerPositionKey("on-order", "data"));
      assert.deepEqual(position?.value.prefix, ["invoices"]);
    });
  },
});

Deno.test({
  name:
    "daemon: a change-trigger edit that cannot be used is said once with file:line:column; the trigger goes on as it was until the file is fixed",
  sanitizeResources: false,
  async fn() {
    await withTriggerDaemon("flowstate-trigreload-bad-", {
      "on-order.flow.yaml": triggerFlow("on-order", "v1", "orders"),
    }, async ({ dir, child, out, err }) => {
      await using data = await projectStore(dir, "data");
      const file = join(dir, "flows", "on-order.flow.yaml");
      await within(out.next(/^Change trigger flow:on-order watching store "data"/), "the start");
      // Two more looks at the files (SIGHUP): the second's config line comes once the first look
      // (config file, then flow files) was applied.
      let hangUps = 0;
      const looks = async () => {
        for (let i = 0; i < 2; i++) {
          hangUps++;
          child.kill("SIGHUP");
          await untilCount(out, /^Config \S+ read again/, hangUps, "a look at the files");
        }
      };

      // An unknown store: said with the place, once; the old trigger still delivers.
      await Deno.writeTextFile(file, triggerFlow("on-order", "v2", "orders", "nope"));
      const said = await within(
        err.next(/^error: flow file .*on-order\.flow\.yaml: its change trigger cannot be used/),
        "the problem said",
      );
      assert.match(
        said,
        /\(the trigger it had, if any, goes on as it was until the file is fixed\): .*on-order\.flow\.yaml:3:\d+: trigger\.changes\.store: no store "nope"/,
      );
      await looks();
      await data.set(["orders", "o1"], 1);
      await within(out.next(ran("on-order", ["orders", "o1"])), "o1 run by the trigger it had");

      // Fixed back as it was: said, and nothing else changes.
      await Deno.writeTextFile(file, triggerFlow("on-order", "v1", "orders"));
      await within(
        err.next(
          /^\[flow:on-order\] flow file .*on-order\.flow\.yaml: its change trigger can be used again \(store "data" under \["orders"\]\)$/,
        ),
        "the fix said",
      );

      // YAML that does not parse: said once (with the place), the trigger goes on as it was.
      await Deno.writeTextFile(file, triggerFlow("on-order", "v2", "orders") + "  - [\n");
      const broken = await within(
        err.next(/^error: flow file .*on-order\.flow\.yaml changed but cannot be used/),
        "the broken file said",
      );
      assert.match(
        broken,
        /\(its schedule and change trigger, if any, stay as they were\): .*on-order\.flow\.yaml:\d+:\d+/,
      );
      await looks();
      await data.set(["orders", "o2"], 2);
      await within(out.next(ran("on-order", ["orders", "o2"])), "o2 run by the trigger it had");

      // Fixed: applied.
      await Deno.writeTextFile(file, triggerFlow("on-order", "v2", "orders"));
      await within(
        err.next(/^\[flow:on-order\] flow file changed: its change trigger's next runs use it/),
        "the fixed file applied",
      );
      await data.set(["orders", "o3"], 3);
      await within(out.next(ran("on-order", ["orders", "o3"])), "o3 run by the fixed file");
      const errors = err.lines.filter((l) => l.startsWith("error"));
      assert.equal(errors.length, 2, errors.join("\n"));
    }, async (dir) => {
      await using main = await projectStore(dir, "main");
      assert.deepEqual(await counted(main, "on-order", "v1"), { o1: 1, o2: 1 });
      assert.deepEqual(await counted(main, "on-order", "v2"), { o3: 1 });
    });
  },
});

Deno.test({
  name:
    "daemon: a change trigger moved to another store by an edit starts at that store's feed end, without the restart's deliver-everything reset",
  sanitizeResources: false,
  async fn() {
    await withTriggerDaemon("flowstate-trigreload-store-", {
      "on-order.flow.yaml": triggerFlow("on-order", "v1", "orders"),
    }, async ({ dir, out, err }) => {
      await using data = await projectStore(dir, "data");
      await using other = await projectStore(dir, "other");
      const file = join(dir, "flows", "on-order.flow.yaml");
      await firstRun(out, data, "d1");
      await other.set(["orders", "before"], 0); // history of the other store: not delivered

      await Deno.writeTextFile(file, triggerFlow("on-order", "v2", "orders", "other"));
      await within(
        err.next(
          /^\[flow:on-order\] change trigger changed from store "data" under \["orders"\] to store "other" under \["orders"\]: /,
        ),
        "the change said",
      );
      await within(
        out.next(
          /^Change trigger flow:on-order watching store "other" under \["orders"\] after change 1$/,
        ),
        "the trigger on the other store started at its feed's end",
      );
      await data.set(["orders", "d2"], 2); // the store it no longer watches
      await other.set(["orders", "o1"], 1);
      await within(out.next(ran("on-order", ["orders", "o1"])), "o1 run");
      assert.deepEqual(err.lines.filter((l) => /^(error|warning)/.test(l)), []);
    }, async (dir) => {
      await using main = await projectStore(dir, "main");
      assert.deepEqual(await counted(main, "on-order", "v1"), { d1: 1 });
      assert.deepEqual(await counted(main, "on-order", "v2"), { o1: 1 });
      const data = await main.get<TriggerPosition>(triggerPositionKey("on-order", "data"));
      assert.equal(data?.value.seq, 1, "the position in the store it left stays");
    });
  },
});

const WAIT_FOR_FILE = fileURLToPath(new URL("./fixtures/nodes/wait_for_file.ts", import.meta.url));

Deno.test({
  name:
    "daemon: a change trigger changed while its run is in progress: that run ends and stores its position first, then the new one starts; a change made meanwhile is delivered",
  sanitizeResources: false,
  async fn() {
    const gated = (dir: string) =>
      `id: on-order
trigger:
  changes: { store: data, prefix: [orders] }
inputs:
  key: { type: array }
nodes:
  - { id: started, type: state.set, with: { key: [started], value: true } }
  - id: gate
    type: ${WAIT_FOR_FILE}
    needs: [started]
    with: { path: ${JSON.stringify(join(dir, "gate"))} }
    permissions: { read: [${JSON.stringify(dir)}] }
  - id: count
    type: state.increment
    needs: [gate]
    with: { key: ["v1", "\${{ inputs.key[1] }}"] }
`;
    // The directory is known only once the project exists: the flow file is added then.
    await withTriggerDaemon("flowstate-trigreload-busy-", {
      "placeholder.flow.yaml":
        "id: placeholder\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n",
    }, async ({ dir, out, err }) => {
      await using data = await projectStore(dir, "data");
      await using main = await projectStore(dir, "main");
      const file = join(dir, "flows", "on-order.flow.yaml");
      await Deno.writeTextFile(file, gated(dir));
      await within(out.next(/^Change trigger flow:on-order watching store "data"/), "the start");
      await data.set(["orders", "o1"], 1);
      await within(
        (async () => {
          while ((await main.get(["flow", "on-order", "started"])) === null) {
            await new Promise((r) => setTimeout(r, 50));
          }
        })(),
        "the run of o1 started",
      );

      await Deno.writeTextFile(file, triggerFlow("on-order", "v2", "invoices"));
      await within(
        err.next(/^\[flow:on-order\] change trigger changed from store "data" under \["orders"\]/),
        "the change said",
      );
      await data.set(["invoices", "i1"], 1); // made while the old trigger's run goes on
      await Deno.writeTextFile(join(dir, "gate"), "");
      const oldRun = await within(out.next(ran("on-order", ["orders", "o1"])), "o1's run ended");
      const started = await within(
        out.next(/^Change trigger flow:on-order watching store "data" under \["invoices"\]/),
        "the new trigger's start",
      );
      await within(out.next(ran("on-order", ["invoices", "i1"])), "i1 run by the new trigger");
      assert.ok(
        out.lines.indexOf(oldRun) < out.lines.indexOf(started),
        `the new trigger started before the old one's run ended:\n${out.lines.join("\n")}`,
      );
    }, async (dir) => {
      await using main = await projectStore(dir, "main");
      assert.deepEqual(await counted(main, "on-order", "v1"), { o1: 1 });
      assert.deepEqual(await counted(main, "on-order", "v2"), { i1: 1 });
    });
  },
});
