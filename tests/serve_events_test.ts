/**
 * `GET /api/events` (src/serve/events.ts), driven directly with a `Request`:
 * the runtime's events as SSE, runs of another process found by polling the
 * records, `Last-Event-ID` resumption, filters, a slow client's overflow, and
 * the ends of a stream.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime, type Runtime } from "../mod.ts";
import { eventsRoute, type EventsRouteOptions, RETRY_MS } from "../src/serve/events.ts";
import type { RunEvent, RunRecord } from "../records.ts";
import { FakeClock, newRun } from "../src/records/_test_utils.ts";
import { cliCommand } from "./_cli_sandbox.ts";
import { withServed } from "./_serve.ts";
import { outputOf } from "./_deadline.ts";

/** One message of the stream. */
interface Message {
  id?: string;
  event?: string;
  data?: unknown;
  retry?: number;
  comment?: string;
}

/** Reads a stream of Server-Sent Events message by message. */
class SseReader {
  readonly response: Response;
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #decoder = new TextDecoder();
  #buffer = "";
  #queue: Message[] = [];
  #done = false;
  /** Every message read so far. */
  readonly seen: Message[] = [];

  constructor(response: Response) {
    this.response = response;
    this.#reader = response.body!.getReader();
  }

  /** The next message, or `null` once the stream ended; fails after `ms`. */
  async next(ms = 10_000): Promise<Message | null> {
    while (this.#queue.length === 0) {
      if (this.#done) return null;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const read = await Promise.race([
        this.#reader.read(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no SSE message within ${ms} ms`)), ms);
        }),
      ]).finally(() => clearTimeout(timer));
      if (read.done) {
        this.#done = true;
        continue;
      }
      this.#buffer += this.#decoder.decode(read.value, { stream: true });
      let end: number;
      while ((end = this.#buffer.indexOf("\n\n")) !== -1) {
        const block = this.#buffer.slice(0, end);
        this.#buffer = this.#buffer.slice(end + 2);
        this.#queue.push(parse(block));
      }
    }
    const message = this.#queue.shift()!;
    this.seen.push(message);
    return message;
  }

  /** Read until a message satisfies `test` (returned), failing if the stream ends first. */
  async until(test: (m: Message) => boolean, ms = 15_000): Promise<Message> {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = await this.next(Math.max(1, deadline - Date.now()));
      if (m === null) throw new Error(`the stream ended; read: ${JSON.stringify(this.seen)}`);
      if (test(m)) return m;
    }
  }

  /** Every message up to the end of the stream. */
  async rest(ms = 10_000): Promise<Message[]> {
    const out: Message[] = [];
    for (let m = await this.next(ms); m !== null; m = await this.next(ms)) out.push(m);
    return out;
  }

  /** Go away, as a client that disconnects: its stream is cancelled. */
  disconnect(): Promise<void> {
    return this.#reader.cancel();
  }
}

function parse(block: string): Message {
  const m: Message = {};
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) m.comment = line.slice(1).trim();
    else if (line.startsWith("id: ")) m.id = line.slice(4);
    else if (line.startsWith("event: ")) m.event = line.slice(7);
    else if (line.startsWith("data: ")) m.data = JSON.parse(line.slice(6));
    else if (line.startsWith("retry: ")) m.retry = Number(line.slice(7));
    else throw new Error(`unexpected SSE line ${JSON.stringify(line)}`);
  }
  return m;
}

type Data = Record<string, unknown> & { runId?: string; flowId?: string };
const data = (m: Message) => m.data as Data;
const nodeEvent = (m: Message) => data(m).event as { type: string; node: string } & Data;

/** Open the route for `rt` (the server's shutdown signal is `shutdown`). */
function connect(
  rt: Runtime,
  query = "",
  options: Partial<EventsRouteOptions> & { headers?: HeadersInit } = {},
  shutdown = new AbortController(),
): SseReader {
  const request = new Request(`http://127.0.0.1:8377/api/events${query}`, {
    headers: options.headers,
  });
  return new SseReader(eventsRoute(rt, request, { signal: shutdown.signal, ...options }));
}

const memoryConfig = { stores: { main: { plugin: "memory" as const } } };

/** A `running` run of flow "elsewhere" started at `startedAt`, to record directly (as another process would). */
function foreignRun(startedAt: number): RunRecord {
  const clock = new FakeClock();
  clock.t = startedAt;
  return newRun(clock, "elsewhere", "v");
}

Deno.test("/api/events sends an in-process run as run.started, node events (with reads and writes), state.changed and run.ended", async () => {
  await using rt = await openRuntime({ config: memoryConfig });
  const shutdown = new AbortController();
  const sse = connect(rt, "", {}, shutdown);
  assert.equal(sse.response.status, 200);
  assert.equal(sse.response.headers.get("content-type"), "text/event-stream; charset=utf-8");
  assert.equal(sse.response.headers.get("cache-control"), "no-cache");
  assert.equal(sse.response.headers.get("x-accel-buffering"), "no");
  assert.deepEqual(await sse.next(), { retry: RETRY_MS });

  const run = await rt.runFlow({
    id: "greet",
    nodes: [
      { id: "count", type: "state.increment", with: { key: "greetings" } },
      { id: "say", type: "log", needs: ["count"], with: { message: "hello" } },
    ],
  });
  const started = await sse.until((m) => m.event === "run.started");
  assert.deepEqual(data(started), { runId: run.id, flowId: "greet", at: run.startedAt });
  const changed = await sse.until((m) => m.event === "state.changed");
  assert.deepEqual(
    { ...data(changed), at: 0, version: 0 },
    {
      store: "main",
      key: ["flow", "greet", "greetings"],
      op: "set",
      version: 0,
      at: 0,
      runId: run.id,
      flowId: "greet",
      nodeId: "count",
    },
  );
  const countEnd = await sse.until((m) =>
    m.event === "node" && nodeEvent(m).type === "node.end" && nodeEvent(m).node === "count"
  );
  assert.equal(data(countEnd).runId, run.id);
  assert.equal(data(countEnd).flowId, "greet");
  assert.deepEqual(nodeEvent(countEnd).writes, [{ scope: "flow", key: ["greetings"] }]);
  assert.deepEqual(nodeEvent(countEnd).reads, [{ scope: "flow", key: ["greetings"] }]);
  await sse.until((m) => m.event === "node" && nodeEvent(m).type === "node.log");
  const ended = await sse.until((m) => m.event === "run.ended");
  assert.equal(data(ended).status, "succeeded");
  assert.equal((data(ended).run as { id: string }).id, run.id);
  assert.ok(!("outputs" in (data(ended).run as object)), "a summary, not the whole record");

  // Ids are numbers, increasing by one over what this client was sent.
  const ids = sse.seen.filter((m) => m.id !== undefined).map((m) => Number(m.id));
  assert.deepEqual(ids, ids.map((_, i) => ids[0] + i));

  shutdown.abort();
  assert.deepEqual(await sse.rest(), [], "shutdown ends the stream");
});

Deno.test("/api/events: a run of ANOTHER process (flowstate run) appears by polling: run.started, its node events, run.ended", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-feed-" });
  const home = join(dir, "home");
  try {
    await Deno.writeTextFile(
      join(dir, "slow.yaml"),
      `id: slow
nodes:
  - id: hello
    type: log
    with: { message: hi }
  - id: wait
    type: delay
    needs: [hello]
    with: { for: 2500ms }
  - id: done
    type: state.set
    needs: [wait]
    with: { key: done, value: true }
`,
    );
    await using rt = await openRuntime({ cwd: dir, home });
    await (await rt.records()).listRunSummaries(); // creates the store before the child opens it
    const shutdown = new AbortController();
    const sse = connect(rt, "?flow=slow", {}, shutdown);
    const child = cliCommand(dir, ["run", "slow.yaml", "--json"], { home }).spawn();
    const output = outputOf(child);
    const started = await sse.until((m) => m.event === "run.started");
    const runId = data(started).runId!;
    assert.equal(data(started).flowId, "slow");
    const ended = await sse.until((m) => m.event === "run.ended", 30_000);
    const result = await output;
    assert.equal(result.code, 0, result.stderr);
    const record = JSON.parse(result.stdout);
    assert.equal(runId, record.id);
    assert.equal(data(ended).runId, runId);
    assert.equal(data(ended).status, "succeeded");
    assert.equal((data(ended).run as { durationMs: number }).durationMs, record.durationMs);
    // Every node event of the run, once each, in order, between the start and the end.
    const nodes = sse.seen.filter((m) => m.event === "node").map((m) => {
      assert.equal(data(m).runId, runId);
      return `${nodeEvent(m).type} ${nodeEvent(m).node}`;
    });
    const recorded = (await (await rt.records()).getEvents(runId))
      .filter((e) => e.type.startsWith("node."))
      .map((e) => `${e.type} ${(e as { node: string }).node}`);
    assert.deepEqual(nodes, recorded);
    assert.ok(nodes.includes("node.end done"));
    assert.equal(sse.seen.filter((m) => m.event === "run.started").length, 1);
    shutdown.abort();
    await sse.rest();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("/api/events: a run this process started before the first client, seen by a poll too, is announced and ended once", async () => {
  await using rt = await openRuntime({ config: memoryConfig });
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let runId = "";
  const running = rt.runFlow(
    { id: "long", nodes: [{ id: "wait", type: "delay", with: { for: "2s" } }] },
    { onEvent: (e, run) => e.type === "node.start" && (runId = run.id, release()) },
  );
  await gate;
  const shutdown = new AbortController();
  const sse = connect(rt, "", {}, shutdown);
  const started = await sse.until((m) => m.event === "run.started"); // from the poll
  assert.equal(data(started).runId, runId);
  const ended = await sse.until((m) => m.event === "run.ended");
  assert.equal(data(ended).runId, runId);
  await running;
  // A run recorded without this runtime's events (as by another process).
  const records = await rt.records();
  const startedAt = Date.now();
  const foreign = foreignRun(startedAt);
  await records.startRun(foreign);
  await sse.until((m) => m.event === "run.started" && data(m).runId === foreign.id);
  await records.finishRun({
    ...foreign,
    status: "succeeded",
    endedAt: startedAt + 1,
    durationMs: 1,
  });
  // Its end is found by a later poll, which also went through the run this test is about.
  await sse.until((m) => m.event === "run.ended" && data(m).runId === foreign.id);
  const of = (name: string) => sse.seen.filter((m) => m.event === name && data(m).runId === runId);
  assert.equal(of("run.started").length, 1);
  assert.equal(of("run.ended").length, 1);
  assert.equal(of("node").filter((m) => nodeEvent(m).type === "node.end").length, 1);
  shutdown.abort();
  await sse.rest();
});

Deno.test("/api/events: the node events of another process's run are sent while it runs, as recorded", async () => {
  await using rt = await openRuntime({ config: memoryConfig });
  const shutdown = new AbortController();
  const sse = connect(rt, "", {}, shutdown);
  const records = await rt.records();
  const startedAt = Date.now();
  const foreign = foreignRun(startedAt);
  await records.startRun(foreign);
  await sse.until((m) => m.event === "run.started" && data(m).runId === foreign.id);
  const at = startedAt + 1;
  const events: RunEvent[] = [
    { at, type: "run.start" },
    { at, type: "node.start", node: "a" },
    { at, type: "node.attempt", node: "a", attempt: 1 },
    { at: at + 1, type: "node.log", node: "a", message: "hé \ud800", level: "warn" },
    {
      at: at + 2,
      type: "node.end",
      node: "a",
      status: "succeeded",
      attempt: 1,
      durationMs: 2,
      outputBytes: 4,
      reads: [{ scope: "flow", key: ["x", "y"], store: "other", prefix: true }],
      writes: [{ scope: "global", key: ["z"] }],
    },
    { at: at + 2.5, type: "node.custom", node: "a", extra: [1] } as unknown as RunEvent,
  ];
  // Stored as a chunk of this version's form, found by a poll while the run runs.
  await records.appendEvents(foreign.id, events);
  const nodeEvents = events.filter((e) => e.type.startsWith("node."));
  const sent = [];
  while (sent.length < nodeEvents.length) {
    const m = await sse.until((m) => m.event === "node" && data(m).runId === foreign.id);
    sent.push(data(m).event);
  }
  assert.deepEqual(sent, nodeEvents);
  assert.equal((await records.getRun(foreign.id))?.status, "running");
  await records.finishRun({ ...foreign, status: "succeeded", endedAt: at + 3, durationMs: 3 }, [
    { at: at + 3, type: "run.end" },
  ]);
  await sse.until((m) => m.event === "run.ended" && data(m).runId === foreign.id);
  assert.equal(
    sse.seen.filter((m) => m.event === "node" && data(m).runId === foreign.id).length,
    5,
  );
  shutdown.abort();
  await sse.rest();
});

Deno.test("/api/events resumes after Last-Event-ID from the backlog, and says reset when it cannot", async () => {
  await using rt = await openRuntime({ config: memoryConfig });
  const shutdown = new AbortController();
  const keeper = connect(rt, "", {}, shutdown); // keeps the feed running throughout
  const store = await rt.store();
  const first = connect(rt, "", {}, shutdown);
  await store.set(["a"], 1);
  const a = await first.until((m) => m.event === "state.changed");
  await first.disconnect();
  await store.set(["b"], 2);
  await store.delete(["a"]);

  const resumed = connect(rt, "", { headers: { "last-event-id": a.id! } }, shutdown);
  assert.deepEqual(await resumed.next(), { retry: RETRY_MS });
  const b = await resumed.next();
  assert.equal(Number(b!.id), Number(a.id) + 1);
  assert.deepEqual([b!.event, data(b!).key, data(b!).op], ["state.changed", ["b"], "set"]);
  const del = await resumed.next();
  assert.deepEqual([data(del!).key, data(del!).op], [["a"], "delete"]);
  await store.set(["c"], 3); // and then live
  assert.deepEqual(data((await resumed.next())!).key, ["c"]);

  // The query parameter works as the header does.
  const byQuery = connect(rt, `?lastEventId=${a.id}`, {}, shutdown);
  await byQuery.next();
  assert.equal((await byQuery.next())!.id, b!.id);

  // An id this server never sent (it restarted): reset, then live.
  const stranger = connect(rt, "", { headers: { "last-event-id": "999999" } }, shutdown);
  await stranger.next();
  const reset = await stranger.next();
  assert.equal(reset!.event, "reset");
  assert.equal(reset!.id, undefined);
  assert.equal(data(reset!).lastEventId, 999999);

  const bad = eventsRoute(
    rt,
    new Request("http://x/api/events", { headers: { "last-event-id": "abc" } }),
    { signal: shutdown.signal },
  );
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error.message, /Last-Event-ID "abc"/);
  assert.ok((await keeper.until((m) => data(m)?.key?.toString() === "c")).id);
  shutdown.abort();
  await Promise.all([keeper, resumed, byQuery, stranger].map((s) => s.rest()));
});

Deno.test("/api/events: events missed while no client listened cannot be resumed: reset", async () => {
  await using rt = await openRuntime({ config: memoryConfig });
  const store = await rt.store();
  const shutdown = new AbortController();
  const only = connect(rt, "", {}, shutdown);
  await store.set(["a"], 1);
  const a = await only.until((m) => m.event === "state.changed");
  await only.disconnect(); // the last client: the feed stops
  await store.set(["unseen"], 1);
  const back = connect(rt, "", { headers: { "last-event-id": a.id! } }, shutdown);
  await back.next();
  assert.equal((await back.next())!.event, "reset");
  await store.set(["b"], 1);
  assert.deepEqual(data((await back.next())!).key, ["b"]);
  shutdown.abort();
  await back.rest();
});

Deno.test("/api/events filters by ?flow= and ?run=, and refuses bad filters with a 400", async () => {
  await using rt = await openRuntime({ config: memoryConfig });
  const shutdown = new AbortController();
  const all = connect(rt, "", {}, shutdown);
  const onlyA = connect(rt, "?flow=a", {}, shutdown);
  const runA = await rt.runFlow({
    id: "a",
    nodes: [{ id: "n", type: "state.set", with: { key: "k", value: 1 } }],
  });
  const onlyRun = connect(rt, `?run=${runA.id}&run=0000000000zzzzzzzzzz`, {}, shutdown);
  await rt.runFlow({
    id: "b",
    nodes: [{ id: "n", type: "state.set", with: { key: "k", value: 1 } }],
  });
  await (await rt.store()).set(["flow", "a", "direct"], 1); // flow a's state, not by a run
  await (await rt.store()).set(["global", "x"], 1);
  await all.until((m) => data(m)?.key?.toString() === "global,x");
  shutdown.abort();
  const seenA = [...onlyA.seen, ...await onlyA.rest()].filter((m) => m.event);
  assert.ok(seenA.length > 4);
  for (const m of seenA) assert.equal(data(m).flowId ?? (data(m).key as string[])[1], "a");
  assert.ok(seenA.some((m) => m.event === "state.changed" && data(m).runId === undefined));
  const seenRun = (await onlyRun.rest()).filter((m) => m.event);
  assert.deepEqual(seenRun, [], "connected after run a ended, without Last-Event-ID");
  const flowsSeen = new Set(
    all.seen.filter((m) => m.event === "run.started").map((m) => data(m).flowId),
  );
  assert.deepEqual([...flowsSeen], ["a", "b"]);

  for (
    const [query, message] of [
      ["?run=nope", /Invalid \?run="nope"/],
      ["?flow=", /Invalid \?flow=/],
    ] as const
  ) {
    const response = eventsRoute(rt, new Request(`http://x/api/events${query}`), {
      signal: shutdown.signal,
    });
    assert.equal(response.status, 400);
    assert.equal(response.headers.get("content-type"), "application/json; charset=utf-8");
    const body = await response.json();
    assert.equal(body.error.code, "bad_request");
    assert.match(body.error.message, message);
  }
});

Deno.test("/api/events ?run= with Last-Event-ID replays only that run's events", async () => {
  await using rt = await openRuntime({ config: memoryConfig });
  const shutdown = new AbortController();
  const keeper = connect(rt, "", {}, shutdown);
  const a = await rt.runFlow({
    id: "a",
    nodes: [{ id: "n", type: "transform", with: { value: 1 } }],
  });
  await rt.runFlow({ id: "b", nodes: [{ id: "n", type: "transform", with: { value: 1 } }] });
  await keeper.until((m) => m.event === "run.ended" && data(m).flowId === "b");
  const replay = connect(rt, `?run=${a.id}`, { headers: { "last-event-id": "0" } }, shutdown);
  shutdown.abort();
  const messages = (await replay.rest()).filter((m) => m.event);
  assert.deepEqual(messages.map((m) => m.event), [
    "reset", // events from before the feed started were never seen: told, then what is kept
    "run.started",
    "node",
    "node",
    "node",
    "run.ended",
  ]);
  for (const m of messages.slice(1)) assert.equal(data(m).runId, a.id);
  await keeper.rest();
});

Deno.test("/api/events drops a client that does not read past its queue limit, with a last overflow event; others go on", async () => {
  await using rt = await openRuntime({ config: memoryConfig });
  const shutdown = new AbortController();
  const slow = connect(rt, "", { queueLimit: 5 }, shutdown);
  const fine = connect(rt, "", {}, shutdown);
  const store = await rt.store();
  for (let i = 0; i < 50; i++) await store.set(["k", String(i)], i);
  const messages = await slow.rest();
  const last = messages.at(-1)!;
  assert.equal(last.event, "overflow");
  assert.deepEqual(last.data, { limit: 5 });
  assert.ok(messages.filter((m) => m.event === "state.changed").length < 50);
  const got = await fine.until((m) => data(m)?.key?.toString() === "k,49");
  assert.ok(got);
  assert.equal(fine.seen.filter((m) => m.event === "state.changed").length, 50);
  shutdown.abort();
  await fine.rest();
});

Deno.test("/api/events ends on the server's shutdown, on the client's going away, and when the runtime closes; pings an idle client", async () => {
  const rt = await openRuntime({ config: memoryConfig });
  const shutdown = new AbortController();
  const leaving = connect(rt, "", {}, shutdown);
  const pinged = connect(rt, "", { pingMs: 20 }, shutdown);
  await pinged.next();
  assert.deepEqual(await pinged.next(), { comment: "ping" });
  await leaving.next();
  await leaving.disconnect(); // (that the feed lets go of it: see the reset test above)

  const staying = connect(rt, "", {}, new AbortController());
  await staying.next();
  await rt.close();
  assert.deepEqual(await staying.rest(), [], "the runtime closed");

  shutdown.abort();
  assert.ok((await pinged.rest()).every((m) => m.comment === "ping"));
  const late = connect(rt, "", {}, shutdown); // after shutdown: the retry line, then the end
  assert.deepEqual(await late.rest(), [{ retry: RETRY_MS }]);
});

Deno.test("flowstate serve mounts the feed: an EventSource sees a run started through the API and a value set through it", async () => {
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ server, request }) => {
    const source = new EventSource(new URL("/api/events?flow=hello", server.url));
    const got: { type: string; id: string; data: Data }[] = [];
    let notify = () => {};
    const on = (type: string) =>
      source.addEventListener(type, (e) => {
        const m = e as MessageEvent;
        got.push({ type, id: m.lastEventId, data: JSON.parse(m.data) });
        notify();
      });
    for (const type of ["run.started", "node", "run.ended", "state.changed"]) on(type);
    const seen = async (test: (m: (typeof got)[number]) => boolean) => {
      for (;;) {
        const found = got.find(test);
        if (found) return found;
        await new Promise<void>((resolve) => (notify = resolve));
      }
    };
    try {
      await new Promise((resolve, reject) => {
        source.onopen = resolve;
        source.onerror = reject;
      });
      const started = await request("/api/flows/hello/runs", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ input: { name: "sse" } }),
      });
      assert.equal(started.status, 202);
      const { runId } = await started.json();
      const ended = await seen((m) => m.type === "run.ended");
      assert.equal(ended.data.runId, runId);
      assert.equal(ended.data.status, "succeeded");
      assert.ok(got.some((m) => m.type === "run.started" && m.data.runId === runId));
      assert.ok(got.some((m) => m.type === "node" && nodeEvent(m as Message).type === "node.end"));
      const put = await request("/api/stores/main/entry?key=flow&key=hello&key=greeting", {
        method: "PUT",
        headers: { "content-type": "application/json", "if-none-match": "*" },
        body: JSON.stringify({ value: "hi" }),
      });
      assert.equal(put.status, 200, await put.clone().text());
      const changed = await seen((m) => m.type === "state.changed");
      assert.deepEqual(changed.data.key, ["flow", "hello", "greeting"]);
      assert.equal(changed.data.op, "set");
      assert.equal(changed.data.version, (await put.json()).version);
      assert.ok(Number(changed.id) > Number(ended.id), "ids increase");
    } finally {
      source.close();
    }
  });
});

Deno.test("/api/events: another process's run whose record cannot be read is ended from its summary, and later runs still appear", async () => {
  await using rt = await openRuntime({ config: memoryConfig });
  const shutdown = new AbortController();
  const sse = connect(rt, "", {}, shutdown);
  const records = await rt.records();
  const store = await rt.store(rt.config.records);
  const startedAt = Date.now();
  const a = foreignRun(startedAt);
  await records.startRun(a);
  await sse.until((m) => m.event === "run.started" && data(m).runId === a.id);
  await records.finishRun({
    ...a,
    status: "failed",
    endedAt: startedAt + 3,
    durationMs: 3,
    nodes: { n: { status: "failed", attempts: 1, error: "boom" } },
    error: { node: "n", message: "boom" },
  });
  // Its node outcomes as a newer Flowstate might write them: this version cannot read them.
  const key = ["flowstate", "runs", a.id];
  const stored = (await store.get<Record<string, unknown>>(key))!.value;
  assert.equal(stored.nodes, null);
  await store.set(key, { ...stored, "@nodes": { format: 3 } });
  await assert.rejects(() => records.getRun(a.id), TypeError);
  const b = foreignRun(startedAt + 10);
  await records.startRun(b);
  await records.finishRun({ ...b, status: "succeeded", endedAt: startedAt + 12, durationMs: 2 });
  // Both ends come, in either order (a run followed since the last poll waits one poll more).
  const ended = new Map<string, unknown>();
  while (ended.size < 2) {
    const m = await sse.until((m) => m.event === "run.ended");
    ended.set(data(m).runId!, data(m).status);
  }
  assert.deepEqual(Object.fromEntries(ended), { [a.id]: "failed", [b.id]: "succeeded" });
  assert.ok(sse.seen.some((m) => m.event === "run.started" && data(m).runId === b.id));
  shutdown.abort();
  await sse.rest();
});
