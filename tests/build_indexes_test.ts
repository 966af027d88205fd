/**
 * The `build-indexes` job and `openStore`'s `onIndexBuild`: an index added to
 * the config of a store that holds data is built by the job, with progress
 * (start, done, and counts where the backend can tell), then found built;
 * through the library, the CLI, on sqlite, postgres and the core's index
 * entries of a driver without native indexes.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createProgress, type Progress } from "../jobs.ts";
import { definePlugin, type IndexBuildEvent, openRuntime, openStore, runJob } from "../mod.ts";
import { MemoryDriver } from "../plugins/memory/mod.ts";
import { runCli } from "./_cli_sandbox.ts";
import { z } from "zod";

const PG_URL = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL");
const ORDERS = 2_000;

/** A Progress that keeps every call, for assertions. */
function recording(): Progress & { calls: string[] } {
  const inner = createProgress({ mode: "quiet" });
  const calls: string[] = [];
  return {
    calls,
    start: (label, total) => {
      calls.push(`start ${label} ${total}`);
      inner.start(label, total);
    },
    advance: (n) => inner.advance(n),
    update: (done) => {
      calls.push(`update ${done}`);
      inner.update(done);
    },
    finish: (message) => {
      calls.push(`finish ${message}`);
      inner.finish(message);
    },
    get state() {
      return inner.state;
    },
  };
}

async function fillOrders(spec: Record<string, unknown>, n = ORDERS): Promise<void> {
  const store = await openStore(spec as never);
  try {
    for (let i = 0; i < n; i += 500) {
      const batch = store.atomic();
      for (let j = i; j < Math.min(n, i + 500); j++) {
        batch.set(["orders", String(j).padStart(6, "0")], {
          status: j % 10 === 0 ? "open" : "done",
        });
      }
      assert.ok((await batch.commit()).ok);
    }
  } finally {
    await store.close();
  }
}

const INDEXES = [{ prefix: ["orders"], path: "status" }];

async function jobBuildsThenFindsBuilt(spec: Record<string, unknown>, native: boolean) {
  await fillOrders(spec);
  // Runs are recorded elsewhere: the runtime does not open "data" before the job does.
  const config = {
    stores: { data: { ...spec, indexes: INDEXES }, runs: { plugin: "memory" } },
    records: "runs",
  };
  {
    await using rt = await openRuntime({ config: config as never });
    const progress = recording();
    const logs: string[] = [];
    const run = await runJob(rt, "build-indexes", { progress, onLog: (m) => logs.push(m) });
    assert.equal(run.status, "succeeded", JSON.stringify(run.error));
    const [report] =
      (run.outputs as { stores: { store: string; indexes: Record<string, unknown>[] }[] })
        .stores;
    assert.equal(report.store, "data");
    assert.equal(report.indexes.length, 1);
    assert.equal(report.indexes[0].built, "now");
    assert.equal(report.indexes[0].native, native);
    assert.equal(report.indexes[0].entries, ORDERS);
    assert.match(
      progress.calls[0],
      new RegExp(`^start store "data": index fs_ix_\\w+ on status under \\["orders"\\] ${ORDERS}$`),
    );
    assert.match(
      progress.calls.at(-1)!,
      /^finish store "data": built index fs_ix_\w+ .* in \d+ ms$/,
    );
    // Counts only go up, never past the total.
    const counts = progress.calls.filter((c) => c.startsWith("update ")).map((c) =>
      Number(c.slice(7))
    );
    assert.deepEqual(counts, [...counts].sort((a, b) => a - b));
    assert.equal(counts.at(-1), ORDERS);
    assert.ok(
      logs.some((l) =>
        /index fs_ix_\w+ on status under \["orders"\] built now \(2000 entries/.test(l)
      ),
      logs.join("\n"),
    );
    // The runtime's own open finds it built: the query uses it.
    const store = await rt.store("data");
    const plan = await store.explain({
      prefix: ["orders"],
      where: [{ path: "status", op: "eq", value: "open" }],
    });
    assert.equal(plan.index, report.indexes[0].name);
    assert.equal(
      (await store.query({
        prefix: ["orders"],
        where: [{ path: "status", op: "eq", value: "open" }],
      })).length,
      ORDERS / 10,
    );
  }
  {
    // A second run: built before, nothing to do.
    await using rt = await openRuntime({ config: config as never });
    const progress = recording();
    const run = await runJob(rt, "build-indexes", { progress, onLog: () => {} });
    assert.equal(run.status, "succeeded");
    const [report] = (run.outputs as { stores: { indexes: Record<string, unknown>[] }[] }).stores;
    assert.equal(report.indexes[0].built, "before");
    assert.deepEqual(progress.calls, []);
  }
}

Deno.test("build-indexes on sqlite: builds an index added to a store with data, then finds it built", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-build-indexes-" });
  try {
    await jobBuildsThenFindsBuilt({ plugin: "sqlite", path: join(dir, "data.db") }, true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "build-indexes on postgres: builds with progress read from pg_stat_progress_create_index",
  ignore: PG_URL === undefined,
  fn: async () => {
    const table = `bix_${crypto.randomUUID().slice(0, 8)}`;
    const spec = { plugin: "postgres", url: PG_URL!, table };
    try {
      await jobBuildsThenFindsBuilt(spec, true);
    } finally {
      const { openClient } = await import("../plugins/postgres/client.ts");
      const sql = openClient(PG_URL!);
      await sql.unsafe(`DROP TABLE IF EXISTS ${table} CASCADE`);
      await sql.unsafe(`DROP TABLE IF EXISTS ${table}_meta CASCADE`).catch(() => {});
      await sql.end();
    }
  },
});

/** A plugin whose driver builds no index natively (the core keeps index entries), over one shared memory driver. */
function plainPlugin(inner: MemoryDriver) {
  return definePlugin({
    name: "plain-test",
    optionsSchema: z.strictObject({}),
    open: () => ({
      location: "plain",
      capabilities: { atomicClear: true },
      get: (k: never) => inner.get(k),
      list: (r: never) => inner.list(r),
      commit: (req: never) => inner.commit(req),
      count: async (range: { prefix: string[] }) => {
        let n = 0;
        for await (const _ of inner.list(range as never)) n++;
        return n;
      },
      close: () => {},
    }),
  });
}

Deno.test("onIndexBuild: the core's index entries report start, a count per batch of 500, and done", async () => {
  const plugin = plainPlugin(new MemoryDriver());
  const store = await openStore({ plugin } as never);
  const batch = store.atomic();
  for (let i = 0; i < 1_200; i++) batch.set(["o", String(i)], { st: i % 2 ? "a" : "b" });
  assert.ok((await batch.commit()).ok);
  await store.close();
  const events: IndexBuildEvent[] = [];
  const indexed = await openStore(
    { plugin, indexes: [{ prefix: ["o"], path: "st" }] } as never,
    { onIndexBuild: (e) => events.push(e) },
  );
  try {
    assert.deepEqual(events.map((e) => [e.phase, e.done, e.total]), [
      ["start", 0, 1200],
      ["progress", 500, 1200],
      ["progress", 1000, 1200],
      ["progress", 1200, 1200],
      ["done", 1200, 1200],
    ]);
    assert.equal(events[0].index, indexed.indexes[0].name);
    assert.equal(indexed.indexes[0].native, false);
    const plan = await indexed.explain({
      prefix: ["o"],
      where: [{ path: "st", op: "eq", value: "a" }],
    });
    assert.equal(plan.by, "core");
  } finally {
    await indexed.close();
  }
});

Deno.test("flowstate jobs run build-indexes: a store that also holds the runs is built as it opens, shown as progress and reported built now", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-cli-build-indexes-" });
  try {
    await fillOrders({ plugin: "sqlite", path: join(dir, "data.db") });
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  data:\n    plugin: sqlite\n    path: data.db\n    indexes:\n      - { prefix: [orders], path: status }\n",
    );
    let r = await runCli(dir, ["jobs", "run", "build-indexes"]);
    assert.equal(r.code, 0, r.stderr);
    // Plain progress lines (stderr is not a terminal): the build, then its end.
    assert.match(
      r.stderr,
      /built store "data": index fs_ix_\w+ on status under \["orders"\] in \d+ ms/,
    );
    // The runtime's own open built it (the store holds the runs): the job says so.
    assert.match(
      r.stderr,
      /index fs_ix_\w+ on status under \["orders"\] built now \(2000 entries, \d+ ms\)/,
    );
    assert.doesNotMatch(r.stderr, /was built already/);
    assert.match(r.stdout, /"built":"now","native":true,"entries":2000,"ms":\d+/);
    assert.match(r.stdout, /status: +succeeded/);
    // Again: nothing to build, no progress.
    r = await runCli(dir, ["jobs", "run", "build-indexes", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /built store/);
    const record = JSON.parse(r.stdout);
    assert.equal(record.outputs.stores[0].indexes[0].built, "before");
    // A store that is not configured: a usage error naming the stores.
    r = await runCli(dir, ["jobs", "run", "build-indexes", "--option", "stores=nope"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /no such store; the configured stores are "data"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
