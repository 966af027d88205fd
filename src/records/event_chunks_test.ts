// Tests of how event chunks are stored (`_event_chunks.ts`): what is read back is exactly what was
// written, through the codec and through `Records` on every backend (and encrypted); chunks of the
// first form keep being read; a reader of the first form fails on the compact form; bad chunks
// get a clear error.
import assert from "node:assert/strict";
import { openStore } from "../plugin.ts";
import type { Store } from "../store/types.ts";
import { encrypted } from "../../encrypt.ts";
import { dropSchemaTest } from "../../plugins/postgres/_test_utils.ts";
import { random } from "../testing/conformance/_random.ts";
import { CHUNK_FORMAT, decodeChunk, encodeChunk } from "./_event_chunks.ts";
import { backendTest, FakeClock, finished, newRun, setup } from "./_test_utils.ts";
import { Records } from "./records.ts";
import type { RunEvent, StateAccess } from "./types.ts";

// ---------------------------------------------------------------- random events

const ODD_STRINGS = [
  "",
  "n1",
  "n1",
  "n2",
  "ü",
  "\ud800", // a lone surrogate
  "a\u0000b",
  "__proto__",
  "constructor",
  "🦕",
  '"quoted"\n\t\\',
  "x".repeat(300),
  "1:2|3",
  "=",
];

/** Events of every kind, as the executor makes them and as any caller of `appendEvents` might. */
function randomEvents(seed: number, count: number, options: { postgres?: boolean } = {}) {
  const r = random(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  // Postgres stores JSON as jsonb, which refuses NUL characters (in either form).
  const strings = options.postgres ? ODD_STRINGS.filter((s) => !s.includes("\u0000")) : ODD_STRINGS;
  const str = () => pick(strings);
  let at = 1_796_518_309_940;
  const time = (): number => {
    const p = r();
    if (p < 0.6) return at += Math.floor(r() * 3);
    if (p < 0.7) return at - 5; // a clock that went back
    if (p < 0.75) return at + 0.5; // a custom clock with fractions
    if (p < 0.78) return pick([0, -1, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 1e300]);
    return at;
  };
  const accessPool: StateAccess[][] = [];
  const access = (): unknown => {
    const p = r();
    if (p < 0.5 && accessPool.length > 0) return structuredClone(pick(accessPool));
    const list: unknown[] = [];
    const n = Math.floor(r() * 3) + (p < 0.9 ? 1 : 0);
    for (let i = 0; i < n; i++) {
      const a: Record<string, unknown> = {
        scope: pick(["node", "flow", "global", "other"]),
        key: Array.from({ length: Math.floor(r() * 3) }, str),
      };
      if (r() < 0.2) a.store = str();
      if (r() < 0.2) a.prefix = true;
      const q = r();
      if (q < 0.05) a.prefix = false; // not what a StateAccess holds: kept as it is
      else if (q < 0.1) a.extra = { nested: [1, "x"] };
      else if (q < 0.15) list.push({ key: a.key, scope: a.scope }); // another order
      else if (q < 0.17) a.key = [1, 2];
      list.push(a);
    }
    if (p > 0.6) accessPool.push(list as StateAccess[]);
    return list;
  };
  const events: Record<string, unknown>[] = [];
  for (let i = 0; i < count; i++) {
    const node = r() < 0.97 ? str() : 7;
    let e: Record<string, unknown>;
    switch (Math.floor(r() * 8)) {
      case 0:
        e = { at: time(), type: pick(["run.start", "run.end"]) };
        break;
      case 1:
      case 2:
        e = { at: time(), type: "node.start", node };
        // Its first attempt, as the executor emits it.
        if (r() < 0.5) {
          events.push(e);
          e = { at: r() < 0.8 ? e.at : time(), type: "node.attempt", node, attempt: 1 };
        }
        break;
      case 3:
        e = { at: time(), type: "node.attempt", node, attempt: pick([1, 2, 3, 2.5, -1]) };
        if (r() < 0.4) e.error = str();
        else if (r() < 0.2) e.error = undefined;
        break;
      case 4:
      case 5: {
        e = {
          at: time(),
          type: "node.end",
          node,
          status: pick(["succeeded", "failed", "skipped", "cancelled", "timed-out", "odd"]),
          attempt: pick([0, 1, 2]),
          durationMs: pick([0, 1, 17, 2.25, 1e9]),
          outputBytes: r() < 0.6 ? pick([1, 20, 0]) : undefined,
          error: r() < 0.3 ? str() : undefined,
        };
        if (r() < 0.7) e.reads = access();
        if (r() < 0.1) e.readsTruncated = r() < 0.8 ? true : false;
        if (r() < 0.7) e.writes = access();
        if (r() < 0.1) e.writesTruncated = true;
        break;
      }
      case 6:
        e = {
          at: time(),
          type: "node.log",
          node,
          message: str(),
          level: pick(["debug", "info", "warn", "error", "trace"]),
        };
        break;
      default:
        e = { at: time(), type: pick(["custom", "", "node.end"]), node, data: { list: [str()] } };
    }
    const q = r();
    if (q < 0.05) e.custom = { deep: [{ a: str() }] }; // a field of the caller's own
    else if (q < 0.08) e = { type: e.type, ...e }; // another order
    else if (q < 0.1) e = Object.assign(Object.create(null), e); // a prototype-less object
    events.push(e);
  }
  return events as unknown as RunEvent[];
}

/** What a store gives back of `value`: its JSON, read again. */
const viaJson = <T>(value: T): T => JSON.parse(JSON.stringify(value));

// ---------------------------------------------------------------- the codec

Deno.test("event chunks: every event is read back as written, to the JSON text (1,000 seeds)", () => {
  for (let seed = 1; seed <= 1_000; seed++) {
    const events = randomEvents(seed, 1 + (seed % 60));
    const stored = viaJson(encodeChunk(seed, events, "test"));
    assert.equal(stored.format, CHUNK_FORMAT);
    assert.ok(!("events" in stored), "no events array: readers of the first form fail on it");
    const read = decodeChunk(stored, "chunk");
    assert.equal(read.first, seed);
    assert.equal(JSON.stringify(read.events), JSON.stringify(events), `seed ${seed}`);
  }
});

Deno.test("event chunks: the executor's events are stored compact; each event read gets lists of its own", () => {
  const events: RunEvent[] = [{ at: 1_000, type: "run.start" }];
  for (let i = 0; i < 66; i++) {
    const node = `n${i}`;
    const at = 1_000 + i;
    events.push({ at, type: "node.start", node }, { at, type: "node.attempt", node, attempt: 1 }, {
      at,
      type: "node.end",
      node,
      status: "succeeded",
      attempt: 1,
      durationMs: 0,
      outputBytes: 1,
      error: undefined,
      reads: [{ scope: "flow", key: ["count"] }],
      writes: [{ scope: "flow", key: ["count"] }],
    });
  }
  events.push({ at: 1_070, type: "node.log", node: "n3", message: "hi", level: "info" });
  const stored = viaJson(encodeChunk(0, events, "test"));
  assert.deepEqual(stored.lists, [[{ scope: "flow", key: ["count"] }]], "one list, referred to");
  assert.equal(stored.nodes.length, 66);
  assert.ok(!stored.rows.some((x: unknown) => typeof x === "object"), "no event kept as it is");
  const bytesPerNode = JSON.stringify(stored).length / 66;
  const before = JSON.stringify({ first: 0, events }).length / 66;
  assert.ok(bytesPerNode < 40, `${bytesPerNode} bytes per node (${before} in the first form)`);
  const read = decodeChunk(stored, "chunk").events;
  assert.equal(JSON.stringify(read), JSON.stringify(events));
  // Lists shared in the chunk are not shared between the events read.
  const [a, b] = read.filter((e) => e.type === "node.end");
  assert.ok(a.type === "node.end" && b.type === "node.end");
  a.reads![0].key.push("changed");
  assert.deepEqual(a.writes, [{ scope: "flow", key: ["count"] }]);
  assert.deepEqual(b.reads, [{ scope: "flow", key: ["count"] }]);
});

Deno.test("event chunks: a chunk of a newer format, or damaged, is refused with a clear error", () => {
  const where = 'Cannot read the events of run "r": event chunk 00000002';
  assert.throws(
    () => decodeChunk({ first: 0, format: 3, rows: [] }, where),
    /event chunk 00000002 is stored in format 3, which this version of Flowstate cannot read .*newer Flowstate; upgrade/,
  );
  const ok = viaJson(encodeChunk(0, [{ at: 1, type: "node.start", node: "a" }], "test"));
  const damaged = [
    { ...ok, rows: [2, 0, 5] }, // no such node
    { ...ok, rows: [2, 0] }, // cut short
    { ...ok, rows: [99, 0] }, // no such code
    { ...ok, count: 2 },
    { ...ok, nodes: undefined },
    { ...ok, rows: [8, 5] }, // a kept event that is no object
  ];
  for (const value of damaged) {
    assert.throws(() => decodeChunk(value, where), /event chunk 00000002 is malformed/);
  }
  assert.throws(() => decodeChunk(null, where), /is not an event chunk/);
  assert.throws(() => decodeChunk({ first: 0 }, where), /is not an event chunk/);
});

// ---------------------------------------------------------------- through Records, on each backend

/** Append `events` in chunks of 97, finish the run, and check every way they are read back. */
async function roundTrip(store: Store, events: RunEvent[]) {
  const clock = new FakeClock();
  const records = new Records(store, { clock });
  const run = newRun(clock);
  await records.startRun(run);
  const last = events.length - 40;
  for (let i = 0; i < last; i += 97) {
    await records.appendEvents(run.id, events.slice(i, Math.min(i + 97, last)));
  }
  // While it runs, and in another process (no remembered tail: read from the last chunk).
  assert.deepEqual(
    await new Records(store, { clock }).getEvents(run.id),
    viaJson(events.slice(0, last)),
  );
  await new Records(store, { clock }).appendEvents(run.id, events.slice(last, last + 20));
  await records.finishRun(finished(run, "succeeded", 5), events.slice(last + 20));
  assert.deepEqual(await records.getEvents(run.id), viaJson(events));
  return run.id;
}

backendTest(
  "Records: events of every kind are read back as written, chunked or inline",
  async (backend) => {
    const { store } = await setup(backend);
    try {
      // More than 1,000: they stay in chunks.
      const id = await roundTrip(store, randomEvents(7, 1_500));
      assert.ok(await store.count(["flowstate", "events", id]) > 10);
      // Fewer: the chunks are folded into the record when the run finishes.
      const events = randomEvents(8, 600);
      assert.ok(events.length > 600 && events.length <= 1_000);
      const small = await roundTrip(store, events);
      assert.equal(await store.count(["flowstate", "events", small]), 0);
      const record = await store.get<Record<string, unknown>>(["flowstate", "runs", small]);
      // Inline in the first form: the very JSON of the events.
      assert.equal(JSON.stringify(record!.value["@events"]), JSON.stringify(events));
    } finally {
      await store.close();
    }
  },
);

Deno.test("Records: events of every kind are read back as written from an encrypted store", async () => {
  const base = await openStore({ plugin: "memory" });
  await using store = await encrypted(base, {
    key: "kZ8b3YqB6h4n0aY0m6E2c1rG9d5Vq7sJ2uT4wX8yZ0A=",
  });
  const id = await roundTrip(store, randomEvents(9, 1_200));
  await roundTrip(store, randomEvents(10, 300));
  // Sealed: the plaintext holds no event.
  for await (const e of base.list({ prefix: ["flowstate", "events", id] })) {
    assert.ok(!JSON.stringify(e.value).includes("node.end"));
  }
});

const PG_URL = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL");
const SCHEMA = `flowstate_test_chunks_${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`;

Deno.test({
  name: "Records: events of every kind are read back as written [postgres]",
  ignore: !PG_URL,
  async fn() {
    await using store = await openStore({ plugin: "postgres", url: PG_URL!, schema: SCHEMA });
    // jsonb keeps no key order: compared as values.
    await roundTrip(store, randomEvents(11, 1_300, { postgres: true }));
    await roundTrip(store, randomEvents(12, 500, { postgres: true }));
  },
});

dropSchemaTest("event chunks: the postgres test schema is dropped", SCHEMA);

// ---------------------------------------------------------------- the first form

backendTest(
  "Records: chunks of the first form are read, appended to and folded",
  async (backend) => {
    const { store, clock, records } = await setup(backend);
    try {
      const old = randomEvents(13, 30);
      for (const [many, kept] of [[900, "chunks"], [20, "inline"]] as const) {
        const run = newRun(clock);
        await records.startRun(run);
        const events = randomEvents(14, many);
        // Written by Flowstate before format 2.
        await store.atomic()
          .set(["flowstate", "events", run.id, "00000000"], { first: 0, events: old })
          .set(["flowstate", "events", run.id, "00000001"], {
            first: 30,
            events: events.slice(0, 5),
          })
          .commit();
        const other = new Records(store, { clock }); // no remembered tail: read from the old chunk
        const added = randomEvents(15, 200);
        await other.appendEvents(run.id, added);
        const last = await store.get<Record<string, unknown>>([
          "flowstate",
          "events",
          run.id,
          "00000002",
        ]);
        assert.equal(last?.value.format, CHUNK_FORMAT);
        assert.equal(last?.value.first, 35);
        const all = viaJson([...old, ...events.slice(0, 5), ...added, ...events.slice(5)]);
        await other.finishRun(finished(run, "failed", 5), events.slice(5));
        assert.deepEqual(await records.getEvents(run.id), all);
        assert.equal(await store.count(["flowstate", "events", run.id]), kept === "chunks" ? 4 : 0);
      }
      // A run finished before format 2, its events inline.
      const run = finished(newRun(clock), "succeeded", 5);
      await store.set(["flowstate", "runs", run.id], { ...run, "@events": old });
      assert.deepEqual(await records.getEvents(run.id), viaJson(old));
      assert.deepEqual(await records.getRun(run.id), run);
    } finally {
      await store.close();
    }
  },
);

Deno.test("a reader of the first form fails on a compact chunk rather than show no events", async () => {
  const { store, clock, records } = await setup("memory");
  const run = newRun(clock);
  await records.startRun(run);
  await records.appendEvents(run.id, [{ at: 1, type: "run.start" }]);
  const [chunk] = await Array.fromAsync(store.list<{ first: number; events: RunEvent[] }>({
    prefix: ["flowstate", "events", run.id],
  }));
  // `getEvents` and the tail of `appendEvents` before format 2, as they were.
  assert.throws(() => {
    const events: RunEvent[] = [];
    for (const event of chunk.value.events) events.push(event);
  }, /is not iterable/);
  assert.throws(() => chunk.value.first + chunk.value.events.length, TypeError);
  await store.close();
});

Deno.test("Records.getEvents refuses a chunk of a newer format, naming the run and the chunk", async () => {
  const { store, clock, records } = await setup("memory");
  const run = newRun(clock);
  await records.startRun(run);
  await store.set(["flowstate", "events", run.id, "00000000"], { first: 0, format: 3, data: [] });
  await assert.rejects(
    records.getEvents(run.id),
    new RegExp(
      `Cannot read the events of run "${run.id}": event chunk 00000000 is stored in format 3`,
    ),
  );
  await assert.rejects(
    records.appendEvents(run.id, [{ at: 1, type: "run.start" }]),
    /event chunk 00000000 is stored in format 3/,
  );
  await store.close();
});
