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
import { RunRecorder } from "./recorder.ts";
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
function randomEvents(seed: number, count: number) {
  const r = random(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const str = () => pick(ODD_STRINGS);
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
  // While it runs, and in another process (no remembered tail: read from the last chunk). As JSON
  // text: the same values with their keys in the same order.
  assert.equal(
    JSON.stringify(await new Records(store, { clock }).getEvents(run.id)),
    JSON.stringify(events.slice(0, last)),
  );
  await new Records(store, { clock }).appendEvents(run.id, events.slice(last, last + 20));
  await records.finishRun(finished(run, "succeeded", 5), events.slice(last + 20));
  assert.equal(JSON.stringify(await records.getEvents(run.id)), JSON.stringify(events));
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
    // Values are stored as JSON text (plugins/postgres/schema.ts): exact, NULs and key order kept.
    await roundTrip(store, randomEvents(11, 1_300));
    await roundTrip(store, randomEvents(12, 500));
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
        assert.equal(JSON.stringify(await records.getEvents(run.id)), JSON.stringify(all));
        assert.equal(await store.count(["flowstate", "events", run.id]), kept === "chunks" ? 4 : 0);
      }
      // A run finished before format 2, its events inline.
      const run = finished(newRun(clock), "succeeded", 5);
      await store.set(["flowstate", "runs", run.id], { ...run, "@events": old });
      assert.equal(JSON.stringify(await records.getEvents(run.id)), JSON.stringify(old));
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

// ---------------------------------------------------------------- review fixes (evfmt2)

/** `1` nested in `n` arrays. */
function deep(n: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < n; i++) v = [v];
  return v;
}

/** The events a compact chunk keeps as they are (raw rows): its rows' only objects. */
function rawRows(chunk: { rows: unknown[] }): unknown[] {
  return chunk.rows.filter((item) => typeof item === "object" && item !== null);
}

Deno.test("event chunks: rows hold only primitives; an event with another value is kept raw", () => {
  const base = { at: 1, type: "node.end", node: "a", status: "failed", attempt: 1, durationMs: 1 };
  // Values JSON holds but a row must not (NaN and the like are refused: see below).
  for (const value of [[1], { n: 1 }, [], {}]) {
    for (const field of ["attempt", "durationMs", "outputBytes", "error"]) {
      const event = { ...base, [field]: value } as unknown as RunEvent;
      const chunk = encodeChunk(0, [event], "test");
      assert.deepEqual(rawRows(chunk), [event], `${field}: ${JSON.stringify(value)}`);
      assert.equal(
        JSON.stringify(decodeChunk(viaJson(chunk), "c").events),
        JSON.stringify([event]),
      );
    }
  }
  const log = { at: 1, type: "node.log", node: "a", message: ["x"], level: "info" };
  const attempt = { at: 1, type: "node.attempt", node: "a", attempt: 2, error: { e: 1 } };
  const chunk = encodeChunk(0, [log, attempt] as unknown as RunEvent[], "test");
  assert.equal(rawRows(chunk).length, 2);
  assert.equal(
    JSON.stringify(decodeChunk(viaJson(chunk), "c").events),
    JSON.stringify([log, attempt]),
  );
});

backendTest(
  "Records: an event at the depth limit is refused by appendEvents, so the run's finish never fails on it",
  async (backend) => {
    const { store, clock, records } = await setup(backend);
    try {
      for (const depth of [253, 254]) {
        const run = newRun(clock);
        await records.startRun(run);
        const event = { at: 1, type: "node.log", node: "a", message: deep(depth), level: "info" };
        const appended = records.appendEvents(run.id, [event as unknown as RunEvent]);
        // As `{ events: [event] }` (format 1) and the inline `@events`: value, events, event, message.
        if (depth === 254) await assert.rejects(appended, /is nested deeper than 256 levels/);
        else await appended;
        await records.finishRun(finished(run, "succeeded", 5), []);
        assert.equal((await records.getRun(run.id))?.status, "succeeded", `depth ${depth}`);
        assert.equal((await records.getEvents(run.id)).length, depth === 254 ? 0 : 1);
      }
    } finally {
      await store.close();
    }
  },
);

Deno.test("Records: a bad value in an event is named by the event and its field", async () => {
  const { store, clock, records } = await setup("memory");
  try {
    const run = newRun(clock);
    await records.startRun(run);
    const start = { at: 1, type: "node.start" as const, node: "a" };
    const end = { at: 2, type: "node.end", node: "a", status: "failed", attempt: 1 };
    await assert.rejects(
      records.appendEvents(run.id, [start, start, { ...end, durationMs: NaN } as RunEvent]),
      (err: Error) =>
        err instanceof TypeError &&
        err.message.startsWith(`Cannot append events to run "${run.id}": value.events[2]`) &&
        /value\.events\[2\]\.durationMs is NaN/.test(err.message),
    );
    await assert.rejects(
      records.appendEvents(run.id, [{ ...end, durationMs: 1, outputBytes: Infinity } as RunEvent]),
      /value\.events\[0\]\.outputBytes is Infinity/,
    );
    // The last chunk of a finish (more than 1,000 events: not inlined).
    const many = Array.from({ length: 1_001 }, (_, i) => ({ ...start, at: i }));
    await assert.rejects(
      records.finishRun(finished(run, "failed", 5), [
        ...many,
        { ...end, durationMs: NaN } as RunEvent,
      ]),
      /value\.events\[1001\]\.durationMs is NaN/,
    );
    assert.equal((await records.getRun(run.id))?.status, "running", "nothing written");
  } finally {
    await store.close();
  }
});

Deno.test("event chunks: a chunk this version cannot read is a TypeError", () => {
  const where = 'Cannot read the events of run "r": event chunk 00000002';
  assert.throws(() => decodeChunk({ first: 0, format: 3, rows: [] }, where), TypeError);
  assert.throws(
    () =>
      decodeChunk(
        { first: 0, format: 2, count: 1, base: 0, nodes: [], lists: [], rows: [2, 0, 5] },
        where,
      ),
    TypeError,
  );
  assert.throws(() => decodeChunk(null, where), TypeError);
});

Deno.test("RunRecorder: a chunk of a newer format fails the finish at once, without retries", async () => {
  await using store = await openStore({ plugin: "memory" });
  const records = new Records(store);
  let calls = 0;
  const finishRun = records.finishRun.bind(records);
  records.finishRun = (...args: Parameters<typeof finishRun>) => {
    calls++;
    return finishRun(...args);
  };
  const clock = { now: () => Date.now() };
  const recorder = await RunRecorder.start(
    records,
    clock,
    { flowId: "f", flowVersion: "v1", inputs: {} },
    // Long waits: a retry would show as a second call (and a slow test).
    { finishRetryDelaysMs: [60_000] },
  );
  await store.set(["flowstate", "events", recorder.id, "00000000"], {
    first: 0,
    format: 3,
    data: [],
  });
  await assert.rejects(
    recorder.finish({ status: "succeeded", outputs: null, nodes: {}, error: null }),
    (err: Error) => err instanceof TypeError && /is stored in format 3/.test(err.message),
  );
  assert.equal(calls, 1);
});

backendTest(
  "Records: a run whose events inline would pass the size limit keeps its chunks",
  async (backend) => {
    const { store, clock, records } = await setup(backend);
    try {
      const run = newRun(clock);
      await records.startRun(run);
      const message = "x".repeat(17_000); // 500 of them: 8.5 MB a chunk, 17 MB inline
      const events = (c: number) =>
        Array.from({ length: 500 }, (_, i) => ({
          at: c * 500 + i,
          type: "node.log" as const,
          node: "a",
          message,
          level: "info" as const,
        }));
      await records.appendEvents(run.id, events(0));
      await records.appendEvents(run.id, events(1));
      await records.finishRun(finished(run, "succeeded", 5), []);
      assert.equal((await records.getRun(run.id))?.status, "succeeded");
      assert.equal(await store.count(["flowstate", "events", run.id]), 2, "the chunks are kept");
      const read = await records.getEvents(run.id);
      assert.equal(JSON.stringify(read), JSON.stringify([...events(0), ...events(1)]));
      // A small run is still folded inline.
      const small = newRun(clock);
      await records.startRun(small);
      await records.appendEvents(small.id, events(0).slice(0, 10));
      await records.finishRun(finished(small, "succeeded", 5), events(1).slice(0, 10));
      assert.equal(await store.count(["flowstate", "events", small.id]), 0);
      assert.equal((await records.getEvents(small.id)).length, 20);
    } finally {
      await store.close();
    }
  },
);

backendTest(
  "Records with eventFormat 1 write every chunk in the first form, as Flowstate 0.4 did",
  async (backend) => {
    const { store, clock } = await setup(backend);
    try {
      const records = new Records(store, { clock, eventFormat: 1 });
      const run = newRun(clock);
      await records.startRun(run);
      const events = randomEvents(21, 1_200);
      const last = events.length - 50;
      for (let i = 0; i < last; i += 200) {
        await records.appendEvents(run.id, events.slice(i, Math.min(i + 200, last)));
      }
      await records.finishRun(finished(run, "succeeded", 5), events.slice(last));
      const chunks = await Array.fromAsync(store.list({ prefix: ["flowstate", "events", run.id] }));
      // What 0.4 wrote: `{ first, events }`, the events as given (to the JSON text).
      const expected = [];
      for (let i = 0; i < last; i += 200) {
        expected.push({ first: i, events: events.slice(i, Math.min(i + 200, last)) });
      }
      expected.push({ first: last, events: events.slice(last) });
      assert.equal(JSON.stringify(chunks.map((e) => e.value)), JSON.stringify(expected));
      assert.equal(JSON.stringify(await records.getEvents(run.id)), JSON.stringify(events));
      // Reading is unchanged: a default Records appends compact chunks after them, and reads all.
      const open = newRun(clock);
      await records.startRun(open);
      await records.appendEvents(open.id, events.slice(0, 10));
      await new Records(store, { clock }).appendEvents(open.id, events.slice(10, 20));
      const [first, second] = await Array.fromAsync(
        store.list<Record<string, unknown>>({ prefix: ["flowstate", "events", open.id] }),
      );
      assert.equal(
        JSON.stringify(first.value),
        JSON.stringify({ first: 0, events: events.slice(0, 10) }),
      );
      assert.equal(second.value.format, CHUNK_FORMAT);
      assert.equal(
        JSON.stringify(await records.getEvents(open.id)),
        JSON.stringify(events.slice(0, 20)),
      );
      assert.throws(
        () => new Records(store, { eventFormat: 3 as 2 }),
        /eventFormat must be 1 or 2 \(got 3\)/,
      );
    } finally {
      await store.close();
    }
  },
);
