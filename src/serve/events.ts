/**
 * `GET /api/events`: the runtime's event stream as Server-Sent Events.
 *
 * One feed per runtime, shared by every client: started by the first client,
 * stopped when the last one leaves. It numbers events (`id:`, monotonic for
 * the runtime) and keeps the last {@linkcode BACKLOG_SIZE} in memory, so a
 * client that reconnects with `Last-Event-ID` misses nothing that is still
 * there (else it is told with a `reset` event). Its sources:
 *
 * - the runtime's own stream ({@linkcode Runtime.events}): runs started in
 *   this process, their node events and ends, job progress, state changes;
 * - the records store, polled at most once a second while a client listens,
 *   for runs of OTHER processes: a new `running` run is announced
 *   (`run.started`), its new events follow (`node`, read by chunk from where
 *   the last poll stopped), and its end (`run.ended`); a run that started and
 *   ended between two polls gets `run.started` and `run.ended`. A run is never
 *   announced or ended twice: the runtime's own events win, by run id.
 *
 * Each client has its own queue of at most {@linkcode CLIENT_QUEUE_LIMIT}
 * events not yet taken by its connection; past it the client is sent
 * `event: overflow` and its stream ends (an `EventSource` reconnects and
 * resumes from the backlog), so a slow client never makes the server buffer
 * without bound.
 *
 * @module
 */
import type { Runtime } from "../runtime.ts";
import type { RuntimeEvent } from "../runtime_events.ts";
import type { Records } from "../records/records.ts";
import { RecordsLayout } from "../records/layout.ts";
import { chunkWhere, decodeChunk } from "../records/_event_chunks.ts";
import { isRunId } from "../records/run_id.ts";
import {
  type RunEvent,
  type RunRecord,
  runShapeProblem,
  type RunSummary,
  summarizeRun,
} from "../records/types.ts";
import type { Key, Store } from "../store/types.ts";
import { messageOf } from "../errors.ts";
import { json } from "./http.ts";

/** Events kept for `Last-Event-ID` resumption, per runtime. */
export const BACKLOG_SIZE = 1_000;
/** Events one client may have waiting before it is dropped with `event: overflow`. */
export const CLIENT_QUEUE_LIMIT = 10_000;
/** A `: ping` comment is sent this often (ms) to a client with nothing else to read. */
export const PING_MS = 15_000;
/** The records store is polled at most this often (ms), and only while a client listens. */
export const POLL_MS = 1_000;
/** The reconnection delay told to clients (`retry:`), in ms. */
export const RETRY_MS = 2_000;

/** Options of {@linkcode eventsRoute}. */
export interface EventsRouteOptions {
  /** Aborts on server shutdown: the stream then ends (after what is queued). */
  signal: AbortSignal;
  /** Events this client may have waiting (default {@linkcode CLIENT_QUEUE_LIMIT}). */
  queueLimit?: number;
  /** Ping interval for this client, in ms (default {@linkcode PING_MS}). */
  pingMs?: number;
}

/** The response headers of the stream. */
const STREAM_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  "x-accel-buffering": "no",
};

/**
 * Answer `GET /api/events`: a `text/event-stream` of the runtime's events (see
 * the module documentation), filtered by `?flow=` and `?run=` (each may be
 * repeated: any of them), resumed after `Last-Event-ID` (the header, or a
 * `lastEventId` query parameter for clients that cannot set headers). Bad
 * query parameters answer 400 with a JSON error.
 *
 * Event names and data (one JSON object per event, times in ms since the
 * epoch): `run.started` `{ runId, flowId, at, parentRunId? }`; `node`
 * `{ runId, flowId, event }` (a run event); `run.ended` `{ runId, flowId,
 * status, at, run: RunSummary | null, error? }`; `state.changed` `{ store,
 * key, op, at, version?, prefix?, runId?, flowId?, nodeId? }`; `job.progress`
 * `{ runId, flowId, label, done, total, finished, at }`; `dropped` `{ count }`
 * (events the feed itself missed); `reset` `{ lastEventId, reason }` (the
 * resume could not be complete: reload); `overflow` `{ limit }` (last event
 * of a client that read too slowly).
 */
export function eventsRoute(
  runtime: Runtime,
  request: Request,
  options: EventsRouteOptions,
): Response {
  const url = new URL(request.url);
  let filter: Filter;
  let lastEventId: number | undefined;
  try {
    filter = parseFilter(url.searchParams);
    lastEventId = parseLastEventId(
      request.headers.get("last-event-id") ?? url.searchParams.get("lastEventId"),
    );
  } catch (err) {
    return badRequest(messageOf(err));
  }
  const queueLimit = options.queueLimit ?? CLIENT_QUEUE_LIMIT;
  const pingMs = options.pingMs ?? PING_MS;
  const feed = feedOf(runtime);
  let client: Client | undefined;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      client = new Client(controller, filter, queueLimit, () => feed.remove(client!));
      client.write(`retry: ${RETRY_MS}\n\n`);
      if (options.signal.aborted) {
        client.end();
        return;
      }
      // A client that goes away cancels the stream (Deno.serve does, on disconnect): that is
      // how it is noticed; request.signal is not used (Deno.serve warns about its legacy use).
      const onShutdown = () => client!.end();
      options.signal.addEventListener("abort", onShutdown, { once: true });
      client.onClose(() => options.signal.removeEventListener("abort", onShutdown));
      if (pingMs > 0) {
        const ping = setInterval(() => client!.ping(), pingMs);
        client.onClose(() => clearInterval(ping));
      }
      feed.add(client, lastEventId);
    },
    pull() {
      return client!.pull();
    },
    cancel() {
      client?.drop();
    },
  });
  return new Response(body, { status: 200, headers: STREAM_HEADERS });
}

// --- Query ------------------------------------------------------------------

interface Filter {
  flows: ReadonlySet<string>;
  runs: ReadonlySet<string>;
}

function parseFilter(params: URLSearchParams): Filter {
  const flows = params.getAll("flow");
  const runs = params.getAll("run");
  for (const flow of flows) {
    if (flow === "") {
      throw new Error("Invalid ?flow=: it is empty; pass a flow id, as in /api/events?flow=deploy");
    }
  }
  for (const run of runs) {
    if (!isRunId(run)) {
      throw new Error(
        `Invalid ?run=${JSON.stringify(run).slice(0, 60)}: a run id is 20 lowercase letters and ` +
          "digits, as listed by GET /api/runs",
      );
    }
  }
  return { flows: new Set(flows), runs: new Set(runs) };
}

function parseLastEventId(value: string | null): number | undefined {
  if (value === null || value === "") return undefined;
  if (!/^\d{1,15}$/.test(value)) {
    throw new Error(
      `Invalid Last-Event-ID ${
        JSON.stringify(value).slice(0, 40)
      }: it is the number of an event this server sent (its id: line); leave it out to start from now`,
    );
  }
  return Number(value);
}

function badRequest(message: string): Response {
  return json({ error: { code: "bad_request", message } }, 400);
}

// --- Frames -----------------------------------------------------------------

/** One event as sent: its text (with its `id:` line) and what filters look at. */
interface Frame {
  id: number;
  text: string;
  runId?: string;
  flowId?: string;
  /** Sent to every client whatever its filters (the feed missed events). */
  always?: boolean;
}

function matches(frame: Frame, filter: Filter): boolean {
  if (frame.always) return true;
  if (filter.runs.size > 0 && (frame.runId === undefined || !filter.runs.has(frame.runId))) {
    return false;
  }
  if (filter.flows.size > 0 && (frame.flowId === undefined || !filter.flows.has(frame.flowId))) {
    return false;
  }
  return true;
}

/** The flow a state key belongs to, by the scope layout (`flow`/`node` keys). */
function flowOfKey(key: Key): string | undefined {
  return (key[0] === "flow" || key[0] === "node") && key.length > 1 ? key[1] : undefined;
}

const encoder = new TextEncoder();

// --- Clients ----------------------------------------------------------------

/** One connection: its queue, its filter, its end. */
class Client {
  readonly filter: Filter;
  #controller: ReadableStreamDefaultController<Uint8Array>;
  #pending: string[] = [];
  #limit: number;
  #waiting: (() => void) | undefined;
  #closed = false;
  #onClose: (() => void)[] = [];

  constructor(
    controller: ReadableStreamDefaultController<Uint8Array>,
    filter: Filter,
    limit: number,
    leave: () => void,
  ) {
    this.#controller = controller;
    this.filter = filter;
    this.#limit = limit;
    this.#onClose.push(leave);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Run `fn` once the client is gone. */
  onClose(fn: () => void): void {
    if (this.#closed) fn();
    else this.#onClose.push(fn);
  }

  /** Queue a frame's text (not counted as an event: `retry:`, backlog replay, pings). */
  write(text: string): void {
    if (this.#closed) return;
    this.#pending.push(text);
    this.#wake();
  }

  /** Queue an event; past the limit, end the stream with `overflow`. */
  send(text: string): void {
    if (this.#closed) return;
    if (this.#pending.length >= this.#limit) {
      this.#pending = [];
      this.#close(`event: overflow\ndata: ${JSON.stringify({ limit: this.#limit })}\n\n`);
      return;
    }
    this.write(text);
  }

  ping(): void {
    if (this.#pending.length === 0) this.write(": ping\n\n");
  }

  /** The stream wants more: hand it what is queued, or wait for something. */
  pull(): Promise<void> | void {
    if (this.#closed) return;
    if (this.#pending.length > 0) return this.#flush();
    return new Promise((resolve) => (this.#waiting = resolve));
  }

  /** Server shutdown or feed end: send what is queued, then end the stream. */
  end(): void {
    this.#close("");
  }

  /** The client went away: forget it, and end its stream if it is not cancelled yet. */
  drop(): void {
    if (this.#closed) return;
    this.#pending = [];
    this.#closed = true;
    try {
      this.#controller.close();
    } catch { /* already cancelled */ }
    this.#release();
  }

  #wake(): void {
    const waiting = this.#waiting;
    if (waiting === undefined) return;
    this.#waiting = undefined;
    this.#flush();
    waiting();
  }

  #flush(): void {
    const text = this.#pending.length === 1 ? this.#pending[0] : this.#pending.join("");
    this.#pending = [];
    try {
      this.#controller.enqueue(encoder.encode(text));
    } catch {
      this.drop(); // cancelled under us
    }
  }

  #close(last: string): void {
    if (this.#closed) return;
    if (last !== "") this.#pending.push(last);
    if (this.#pending.length > 0) this.#flush();
    this.#closed = true;
    try {
      this.#controller.close();
    } catch { /* already cancelled */ }
    this.#release();
  }

  #release(): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.();
    for (const fn of this.#onClose.splice(0)) fn();
  }
}

// --- The feed -----------------------------------------------------------------

const feeds = new WeakMap<Runtime, Feed>();

function feedOf(runtime: Runtime): Feed {
  let feed = feeds.get(runtime);
  if (feed === undefined) feeds.set(runtime, feed = new Feed(runtime));
  return feed;
}

/** A set that forgets its oldest members past `max`. */
class RecentSet {
  #set = new Set<string>();
  #max: number;
  constructor(max: number) {
    this.#max = max;
  }
  has(value: string): boolean {
    return this.#set.has(value);
  }
  /** Add; `false` if it was there. */
  add(value: string): boolean {
    if (this.#set.has(value)) return false;
    this.#set.add(value);
    if (this.#set.size > this.#max) this.#set.delete(this.#set.values().next().value!);
    return true;
  }
}

/** A run of another process being followed by polling. */
interface Followed {
  flowId: string;
  /** Events already sent. */
  seen: number;
  /** Next event chunk to read. */
  chunk: number;
  /** Announced by the poll that is running now: its events are read from the next one. */
  fresh: boolean;
}

/** The events of a runtime for every SSE client of it. */
class Feed {
  #runtime: Runtime;
  #clients = new Set<Client>();
  #backlog: Frame[] = [];
  #nextId = 1;
  /** A `Last-Event-ID` below this cannot resume completely (events were evicted or not seen). */
  #completeFrom = 0;
  #stop: AbortController | undefined;
  /** Runs of this process (seen on the runtime's stream). */
  #local = new RecentSet(10_000);
  #started = new RecentSet(10_000);
  #ended = new RecentSet(10_000);
  #followed = new Map<string, Followed>();
  #pollTimer: ReturnType<typeof setTimeout> | undefined;
  /** Runs started from this time on are looked for among the recent ones (ms). */
  #since = 0;
  #records: Promise<{ records: Records; store: Store }> | undefined;

  constructor(runtime: Runtime) {
    this.#runtime = runtime;
  }

  add(client: Client, lastEventId: number | undefined): void {
    if (this.#clients.size === 0) this.#start();
    if (lastEventId !== undefined) this.#replay(client, lastEventId);
    if (!client.closed) this.#clients.add(client);
  }

  remove(client: Client): void {
    if (!this.#clients.delete(client)) return;
    if (this.#clients.size === 0) this.#halt();
  }

  #replay(client: Client, after: number): void {
    const last = this.#nextId - 1;
    if (after > last || after < this.#completeFrom) {
      const reason = after > last
        ? "this server never sent that event (it restarted)"
        : "events after it are no longer kept";
      client.write(
        `event: reset\ndata: ${JSON.stringify({ lastEventId: after, reason })}\n\n`,
      );
      if (after > last) return;
    }
    const text: string[] = [];
    for (const frame of this.#backlog) {
      if (frame.id > after && matches(frame, client.filter)) text.push(frame.text);
    }
    if (text.length > 0) client.write(text.join(""));
  }

  #start(): void {
    // Nothing was seen while the feed was stopped (not even how much): a client that
    // last saw an event from before cannot be told it missed nothing.
    this.#completeFrom = this.#nextId;
    const stop = this.#stop = new AbortController();
    const events = this.#runtime.events({ bufferSize: 100_000, signal: stop.signal });
    (async () => {
      for await (const event of events) this.#fromRuntime(event);
      if (!stop.signal.aborted) {
        // The runtime closed: end every stream.
        for (const client of [...this.#clients]) client.end();
      }
    })();
    this.#since = this.#runtime.clock.now();
    this.#schedulePoll(stop.signal);
  }

  #halt(): void {
    this.#stop?.abort();
    this.#stop = undefined;
    clearTimeout(this.#pollTimer);
    this.#pollTimer = undefined;
    this.#followed.clear();
  }

  #publish(name: string, data: unknown, frame: Omit<Frame, "id" | "text">): void {
    const id = this.#nextId++;
    const full: Frame = {
      ...frame,
      id,
      text: `id: ${id}\nevent: ${name}\ndata: ${JSON.stringify(data)}\n\n`,
    };
    this.#backlog.push(full);
    if (this.#backlog.length > BACKLOG_SIZE) {
      const evicted = this.#backlog.splice(0, this.#backlog.length - BACKLOG_SIZE);
      this.#completeFrom = Math.max(this.#completeFrom, evicted.at(-1)!.id);
    }
    for (const client of this.#clients) {
      if (matches(full, client.filter)) client.send(full.text);
    }
  }

  #fromRuntime(e: RuntimeEvent): void {
    switch (e.type) {
      case "run.started":
        this.#markLocal(e.runId);
        if (!this.#started.add(e.runId)) return; // a poll announced it first
        this.#publish("run.started", {
          runId: e.runId,
          flowId: e.flowId,
          at: e.at,
          ...(e.parentRunId === undefined ? {} : { parentRunId: e.parentRunId }),
        }, { runId: e.runId, flowId: e.flowId });
        return;
      case "node":
        this.#markLocal(e.runId);
        this.#publish("node", { runId: e.runId, flowId: e.flowId, event: e.event }, {
          runId: e.runId,
          flowId: e.flowId,
        });
        return;
      case "run.ended":
        this.#markLocal(e.runId);
        this.#started.add(e.runId);
        if (!this.#ended.add(e.runId)) return;
        this.#publish("run.ended", {
          runId: e.runId,
          flowId: e.flowId,
          status: e.status,
          at: e.at,
          run: e.record === null ? null : summarizeRun(e.record),
          ...(e.error === undefined ? {} : { error: e.error }),
        }, { runId: e.runId, flowId: e.flowId });
        return;
      case "job.progress":
        this.#publish("job.progress", {
          runId: e.runId,
          flowId: e.flowId,
          label: e.label,
          done: e.done,
          total: e.total ?? null,
          finished: e.finished,
          at: e.at,
        }, { runId: e.runId, flowId: e.flowId });
        return;
      case "state.changed": {
        const { type: _t, seq: _s, ...data } = e;
        this.#publish("state.changed", data, {
          runId: e.runId,
          flowId: e.flowId ?? flowOfKey(e.key),
        });
        return;
      }
      case "dropped":
        this.#publish("dropped", { count: e.count }, { always: true });
        return;
    }
  }

  #markLocal(runId: string): void {
    this.#local.add(runId);
    this.#followed.delete(runId);
  }

  // --- Polling the records, for other processes' runs --------------------------

  #schedulePoll(signal: AbortSignal): void {
    if (signal.aborted) return;
    this.#pollTimer = setTimeout(async () => {
      try {
        await this.#poll(signal);
      } catch {
        // The store failed (or closed): try again at the next poll.
      }
      this.#schedulePoll(signal);
    }, POLL_MS);
  }

  #openRecords(): Promise<{ records: Records; store: Store }> {
    return this.#records ??= (async () => {
      const runtime = this.#runtime;
      const records = await runtime.records();
      // Read-only, for the event chunks of running runs (the records API reads them all).
      const store = await runtime.store(runtime.config.records);
      return { records, store };
    })().catch((err) => {
      this.#records = undefined;
      throw err;
    });
  }

  async #poll(signal: AbortSignal): Promise<void> {
    const { records, store } = await this.#openRecords();
    const polledAt = this.#runtime.clock.now();
    // Runs that started since the last poll and maybe already ended; and every run
    // still running, however long ago it started.
    const recent = await records.listRunSummaries({ since: this.#since, limit: 1000 });
    const running = await records.listRunSummaries({ status: "running", limit: 1000 });
    if (signal.aborted) return;
    // Next time, from a little before this poll: another process's clock may be behind.
    this.#since = Math.max(this.#since, polledAt - 5_000);
    const runningIds = new Set(running.runs.map((r) => r.id));

    // Followed runs: new events, or their end.
    for (const [runId, followed] of [...this.#followed]) {
      if (signal.aborted || !this.#followed.has(runId)) continue;
      if (followed.fresh) {
        followed.fresh = false;
        continue;
      }
      if (runningIds.has(runId)) {
        await this.#readChunks(store, runId, followed);
        continue;
      }
      let run: RunRecord | null;
      let events: RunEvent[];
      try {
        run = await records.getRun(runId);
        if (!this.#followed.has(runId)) continue; // became local meanwhile
        if (run === null) {
          this.#followed.delete(runId); // deleted
          continue;
        }
        if (run.status === "running") continue; // the index moved before the record
        events = await records.getEvents(runId);
      } catch (err) {
        if (!(err instanceof TypeError)) throw err;
        // A record this version cannot read (damaged, or of a newer format): its end is
        // announced from the fields a summary needs, and the poll goes on to the other runs.
        await this.#endUnreadable(store, runId);
        continue;
      }
      if (!this.#followed.has(runId)) continue;
      this.#sendEvents(runId, followed, events.slice(followed.seen));
      this.#followed.delete(runId);
      this.#endRemote(summarizeRun(run));
    }

    // Runs not seen before.
    if (signal.aborted) return;
    for (const summary of running.runs) this.#announce(summary, true);
    for (const summary of recent.runs.toReversed()) {
      if (summary.status === "running") continue;
      if (this.#announce(summary, false)) this.#endRemote(summary);
    }
  }

  /** Announce a run of another process; `true` if it was new. */
  #announce(summary: RunSummary, follow: boolean): boolean {
    const { id: runId, flowId } = summary;
    if (this.#local.has(runId) || this.#started.has(runId) || this.#ended.has(runId)) {
      return false;
    }
    this.#started.add(runId);
    this.#publish("run.started", {
      runId,
      flowId,
      at: summary.startedAt,
      ...(summary.parentRunId === undefined ? {} : { parentRunId: summary.parentRunId }),
    }, { runId, flowId });
    if (follow) this.#followed.set(runId, { flowId, seen: 0, chunk: 0, fresh: true });
    return true;
  }

  /** Stop following a run whose record or events cannot be read; end it if its record says so. */
  async #endUnreadable(store: Store, runId: string): Promise<void> {
    const stored = await store.get<RunRecord>(new RecordsLayout(["flowstate"]).run(runId));
    if (!this.#followed.delete(runId)) return;
    if (stored === null || runShapeProblem(stored.value) !== undefined) return;
    if (stored.value.status !== "running" && stored.value.status !== "queued") {
      this.#endRemote(summarizeRun(stored.value));
    }
  }

  #endRemote(summary: RunSummary): void {
    if (this.#local.has(summary.id) || !this.#ended.add(summary.id)) return;
    this.#publish("run.ended", {
      runId: summary.id,
      flowId: summary.flowId,
      status: summary.status,
      at: summary.endedAt ?? this.#runtime.clock.now(),
      run: summary,
    }, { runId: summary.id, flowId: summary.flowId });
  }

  /** The event chunks of a running run from where the last read stopped. */
  async #readChunks(store: Store, runId: string, followed: Followed): Promise<void> {
    const layout = new RecordsLayout(["flowstate"]);
    const prefix = layout.events(runId);
    const chunks: { n: number; first: number; events: RunEvent[] }[] = [];
    for await (
      const entry of store.list({
        prefix,
        start: layout.chunk(runId, followed.chunk),
        limit: 100,
      })
    ) {
      const n = Number(entry.key[prefix.length]);
      if (!Number.isInteger(n)) continue;
      let value: { first: unknown; events: RunEvent[] };
      try {
        // Either form (see `_event_chunks.ts`).
        value = decodeChunk(entry.value, chunkWhere(runId, entry.key));
      } catch {
        continue; // Malformed, or of a newer format: `getEvents` says so at the run's end.
      }
      const first = typeof value.first === "number" ? value.first : followed.seen;
      chunks.push({ n, first, events: value.events });
    }
    if (!this.#followed.has(runId)) return;
    for (const chunk of chunks) {
      if (followed.seen < chunk.first) followed.seen = chunk.first; // a chunk gone missing
      const skip = followed.seen - chunk.first;
      this.#sendEvents(runId, followed, chunk.events.slice(skip));
      followed.chunk = chunk.n + 1;
    }
  }

  #sendEvents(runId: string, followed: Followed, events: readonly RunEvent[]): void {
    for (const event of events) {
      followed.seen++;
      if (!event.type.startsWith("node.")) continue;
      this.#publish("node", { runId, flowId: followed.flowId, event }, {
        runId,
        flowId: followed.flowId,
      });
    }
  }
}
