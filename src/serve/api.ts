/**
 * The JSON routes of `flowstate serve` (everything under `/api/` but the
 * event feed's own module, plus `/health` and `/metrics`), as one table
 * that the router serves and the OpenAPI document describes. See
 * `/work/notes/serve-api.md` for the contract they keep.
 *
 * @module
 */
import { isAbsolute, relative } from "node:path";
import { z } from "zod";
import {
  ConfigError,
  FeedDisabledError,
  FlowValidationError,
  formatProblem,
  messageOf,
  NotFoundError,
  ResumeRefusedError,
} from "../errors.ts";
import { didYouMean } from "../_suggest.ts";
import { fieldsAt } from "../_zod_fields.ts";
import { flowCacheOf, type Runtime } from "../runtime.ts";
import type { ResolvedConfig } from "../config.ts";
import type { Change, Entry, JsonValue, Key, Store } from "../store/types.ts";
import { assertKey } from "../store/keys.ts";
import { RUN_STATUSES } from "../records/layout.ts";
import type { RunEvent, RunRecord, RunStatus } from "../records/types.ts";
import type { OnFailureMarker, Records } from "../records/records.ts";
import { isRunId, RUN_ID_HINT } from "../records/run_id.ts";
import { builtinJobNames } from "../jobs/builtin.ts";
import { resolvePathOptions, runJob } from "../jobs/run.ts";
import { DEFAULT_TIMEZONE, nextTick } from "../cron.ts";
import {
  type FlowFileProblem,
  flowFiles,
  type JobProblem,
  loadConfiguredJob,
  loadSchedules,
} from "../scheduler/from_config.ts";
import { scheduleEntries } from "../flow/_schedule_entries.ts";
import { scheduleListing, type ScheduleSource } from "../scheduler/listing.ts";
import { rawFlowData, twoFilesOneId } from "../flow_files.ts";
import { cancelAnyRun } from "../queue/cancel.ts";
import { signalNameProblem, unexpectedSignalWarning } from "../records/_signals.ts";
import { listWorkers } from "../queue/workers.ts";
import type { Worker } from "../queue/worker.ts";
import { loadFlowFile } from "../flow/parse.ts";
import { flowGraph } from "../flow/graph.ts";
import type { FlowDefinition } from "../flow/types.ts";
import { TemplateError } from "../flow/template/error.ts";
import { HttpError, json, readJson, redactText, RUNTIME_CLOSED, runtimeClosed } from "./http.ts";
import { sameToken, sessionCookie } from "./auth.ts";
import type { Route, RouteContext } from "./router.ts";
import * as S from "./schemas.ts";
import { prometheusText, type SchedulerStatus } from "./metrics.ts";
import { eventsRoute } from "./events.ts";
import { openApiDocument } from "./openapi.ts";
import { enqueueOverHttp, httpDedupeKey } from "./queued.ts";
import { decodeCursor, runChangesPage, SCAN_BUDGET } from "./run_changes.ts";
import { archivedMark, archivedRun, archiveReaderOf } from "./archived.ts";
import { archivedCannot, type ArchivedRun } from "../records/_archive_read.ts";
import { lastRunBrief, lastRunFinder } from "../../jobs/_last_runs.ts";
import { claimLapsedAt } from "../records/heartbeat.ts";

export type { SchedulerStatus } from "./metrics.ts";

/** What every handler shares: the runtime, the limits, and the runs started here. */
export interface ServerState {
  /** The runtime whose stores and records are served. */
  runtime: Runtime;
  /** The largest request body, in bytes. */
  maxBodyBytes: number;
  /** The token, when one is required. */
  token: string | undefined;
  /** Aborted when the server shuts down. */
  signal: AbortSignal;
  /** Runs started by this server and still running, by id, to cancel them. */
  runs: Map<string, AbortController>;
  /** The cancel controllers of every run started here and not ended (started or starting). */
  controllers: Set<AbortController>;
  /** Promises of the runs started here (awaited on shutdown). */
  pending: Set<Promise<unknown>>;
  /** The scheduler's status, when one runs beside the server. */
  scheduler?: () => SchedulerStatus;
  /** The config whose jobs and schedules are listed and run (see `ServeOptions.config`). */
  config: () => ResolvedConfig;
  /** The schedules a scheduler beside the server runs (see `ServeOptions.schedules`). */
  schedules?: () => ScheduleSource;
  /** The queue worker of the server (or beside it), for /health. */
  worker?: Pick<Worker, "status" | "error">;
}

type Ctx = RouteContext<ServerState>;

const counts = new WeakMap<ServerState, Map<string, { until: number; value: Promise<number> }>>();

/**
 * A store's entry count for `GET /api/stores`. A count that took long (a
 * million sqlite keys: ~0.2 s, holding the server meanwhile) is reused for 20
 * times as long as it took, at most 10 s; a fast one is always fresh.
 * Concurrent requests share one count.
 */
export function countOf(
  server: ServerState,
  name: string,
  store: Store,
  clock: () => number = () => performance.now(),
): Promise<number> {
  let cache = counts.get(server);
  if (!cache) counts.set(server, cache = new Map());
  const now = clock();
  const hit = cache.get(name);
  if (hit && now < hit.until) return hit.value;
  const entry = { until: Infinity, value: store.count() };
  cache.set(name, entry);
  entry.value.then(
    () => {
      const end = clock();
      const took = end - now;
      entry.until = took < 50 ? 0 : end + Math.min(10_000, took * 20);
    },
    () => cache.delete(name),
  );
  return entry.value;
}
type ApiRoute = Route<ServerState>;

/** Nodes per page of `GET /api/runs/{id}/nodes` by default, and at most. */
const DEFAULT_NODE_PAGE = 500;
const MAX_NODE_PAGE = 10_000;

/** Node ids in name order, numbers by value (n2 before n10), as the inspector's timeline. */
const byName = new Intl.Collator("en", { numeric: true });

/**
 * The page of a run's nodes from `offset`, at most `limit`, in the order of
 * the inspector's timeline: the nodes that started, by start time (then in
 * the flow's order, then by name), then those that did not, in the flow's
 * order (`flowNodeIds`: its version's), then any other its record names.
 * While the run runs, a node that starts moves up to the started ones, and
 * the nodes it passes move down one: a later page may repeat a node, and
 * never misses one that has not started.
 */
function runNodesPage(
  run: RunRecord,
  events: RunEvent[],
  flowNodeIds: readonly string[],
  offset: number,
  limit: number,
): {
  run: RunRecord;
  events: RunEvent[];
  nodeIds: string[];
  offset: number;
  total: number;
  next?: number;
} {
  const place = new Map<string, number>();
  const add = (id: string) => {
    if (!place.has(id)) place.set(id, place.size);
  };
  for (const id of flowNodeIds) add(id);
  const startedAt = new Map<string, number>();
  for (const event of events) {
    if (!("node" in event) || typeof event.node !== "string") continue;
    add(event.node);
    if (event.type === "node.start") startedAt.set(event.node, event.at);
    else if (
      event.type === "node.end" && !startedAt.has(event.node) &&
      typeof event.durationMs === "number"
    ) startedAt.set(event.node, event.at - event.durationMs);
  }
  for (const id of Object.keys(run.nodes)) add(id);
  const started = [...startedAt.keys()].sort((a, b) =>
    startedAt.get(a)! - startedAt.get(b)! || place.get(a)! - place.get(b)! ||
    byName.compare(a, b)
  );
  const order = [...started, ...[...place.keys()].filter((id) => !startedAt.has(id))];
  const nodeIds = order.slice(offset, offset + limit);
  const inPage = new Set(nodeIds);
  const nodes: RunRecord["nodes"] = {};
  for (const id of nodeIds) if (Object.hasOwn(run.nodes, id)) nodes[id] = run.nodes[id];
  const next = offset + limit < order.length ? offset + limit : undefined;
  return {
    run: { ...run, nodes },
    events: events.filter((event) =>
      "node" in event && typeof event.node === "string" ? inPage.has(event.node) : offset === 0
    ),
    nodeIds,
    offset,
    total: order.length,
    ...(next === undefined ? {} : { next }),
  };
}

/** The node ids of a flow definition, in its order. */
function definitionNodeIds(definition: unknown): string[] {
  const nodes = (definition as { nodes?: unknown } | null)?.nodes;
  return Array.isArray(nodes)
    ? nodes.map((n) => (n as { id?: unknown })?.id).filter((id) => typeof id === "string")
    : [];
}

/** The most versions whose node ids a server keeps (the least recently used goes first). */
const VERSION_NODES_KEPT = 64;

const versionNodes = new WeakMap<ServerState, Map<string, Promise<string[] | null>>>();

/**
 * The node ids of a flow version in its definition's order, or `null` when it
 * is not recorded. A version is immutable (addressed by its hash), so its ids
 * are read once per server: a run page of a 10,000-node flow asks for them
 * without the server reading and parsing the definition again.
 */
function versionNodeIds(
  server: ServerState,
  flowId: string,
  hash: string,
): Promise<string[] | null> {
  let cache = versionNodes.get(server);
  if (!cache) versionNodes.set(server, cache = new Map());
  const key = `${flowId}\0${hash}`;
  const hit = cache.get(key);
  if (hit) {
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  const ids = (async () => {
    const records = await server.runtime.records();
    let version;
    try {
      version = await records.getVersion(flowId, hash);
    } catch (err) {
      if (err instanceof TypeError) return null; // not a flow id (a job's "job:…")
      throw err;
    }
    return version === null ? null : definitionNodeIds(version.definition);
  })();
  cache.set(key, ids);
  // Not kept: a missing version (it may be recorded later) or a failed read.
  ids.then((found) => found === null && cache.delete(key), () => cache.delete(key));
  while (cache.size > VERSION_NODES_KEPT) cache.delete(cache.keys().next().value!);
  return ids;
}

/** The largest value (as JSON, in bytes) an entry listing returns whole. */
export const MAX_LISTED_VALUE_BYTES = 64 * 1024;

const encoder = new TextEncoder();

function badRequest(message: string): HttpError {
  return new HttpError("bad_request", message);
}

function notFound(message: string): HttpError {
  return new HttpError("not_found", message);
}

/** The value at `path` inside a parsed JSON body (`undefined` when absent). */
function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  for (const part of path) {
    if (typeof value !== "object" || value === null || !Object.hasOwn(value, part)) {
      return undefined;
    }
    value = (value as Record<PropertyKey, unknown>)[part];
  }
  return value;
}

/** Parse and check a JSON body against `schema`. */
async function body<T>(ctx: Ctx, schema: z.ZodType<T>, what: string): Promise<T> {
  const raw = (await readJson(ctx.request, ctx.server.maxBodyBytes)) ?? {};
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.flatMap((i) => {
      const at = (...more: PropertyKey[]) => [...i.path, ...more].join(".") || "(body)";
      if (
        (i.code === "invalid_type" || i.code === "invalid_union") && i.path.length > 0 &&
        valueAt(raw, i.path) === undefined
      ) {
        // zod's words for it are "expected nonoptional, received undefined" ("Invalid input").
        return [`${at()}: missing required field`];
      }
      if (i.code !== "unrecognized_keys") return [`${at()}: ${i.message}`];
      // The fields of the object the unknown one is in (backoff's, not the body's).
      const known = fieldsAt(schema, i.path);
      return i.keys.map((key) =>
        `${at(key)}: unknown field${didYouMean(key, known)}; the fields are ${known.join(", ")}`
      );
    });
    throw badRequest(`Invalid body of ${what}: ${problems.join("; ")}`);
  }
  return parsed.data;
}

function intParam(url: URL, name: string, def: number, min: number, max: number): number {
  const text = url.searchParams.get(name);
  if (text === null || text === "") return def;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) {
    throw badRequest(
      `Invalid query parameter ${name}=${text}: expected a whole number from ${min} to ${max}`,
    );
  }
  return n;
}

function timeParam(url: URL, name: string): number | undefined {
  const text = url.searchParams.get(name);
  if (text === null || text === "") return undefined;
  const n = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(n)) {
    throw badRequest(
      `Invalid query parameter ${name}=${text}: expected ms since the epoch or an ISO date`,
    );
  }
  return n;
}

function keyParam(url: URL, name: string, allowEmpty: boolean): Key {
  const key = url.searchParams.getAll(name);
  try {
    assertKey(key, `Invalid query parameter ${name}`, allowEmpty);
  } catch (err) {
    throw badRequest(
      key.length === 0 && !allowEmpty
        ? `Missing query parameter ${name}: give the key's parts as repeated ${name}= parameters (${name}=flow&${name}=counter)`
        : messageOf(err),
    );
  }
  return key;
}

/**
 * A 403 for a write under `["flowstate"]` in the records store: Flowstate's
 * own records (runs, flow versions, metrics, leases), which a value written
 * by hand breaks (a run that cannot be shown, a worker's lease lost).
 */
function refuseRecordsWrite(ctx: Ctx, storeName: string, key: Key, what: string): void {
  // The key ["flowstate"] itself is a user's (`state ls` lists it): the records are under it.
  if (key.length < 2 || key[0] !== "flowstate" || storeName !== ctx.server.runtime.config.records) {
    return;
  }
  throw new HttpError(
    "forbidden",
    `${what}: keys under ["flowstate"] in store "${storeName}" are Flowstate's records (runs, ` +
      "flow versions, metrics, leases), written by Flowstate only: a value written by hand " +
      "breaks what it belongs to. Change them through the runs and flows routes (or, knowing " +
      "what it does, flowstate state set|rm … --force)",
  );
}

async function storeOf(ctx: Ctx): Promise<Store> {
  const name = ctx.params.store;
  if (!ctx.server.runtime.storeNames.includes(name)) {
    throw notFound(
      `No store "${name}": the configured stores are ${ctx.server.runtime.storeNames.join(", ")}`,
    );
  }
  return await ctx.server.runtime.store(name);
}

function entryJson(entry: Entry): z.infer<typeof S.EntrySchema> {
  return {
    key: [...entry.key],
    value: entry.value,
    version: entry.version,
    expiresAt: entry.expiresAt,
  };
}

const ETAG_QUOTED = /^[\x21\x23-\x7e\x80-\xff]+$/;
const ETAG_BARE = /^[\x21\x23-\x2b\x2d-\x7e\x80-\xff]+$/;

/**
 * The version an `If-Match` header names: `"v"`, `W/"v"` or a bare `v`; `null` for `*` (any
 * version: the entry exists). Anything else (empty, unterminated quotes, a list of versions,
 * spaces) is a 400 saying what to send: it can never match, and a 409 would send the client
 * round a read-and-retry loop that never ends.
 */
function versionOf(header: string, what: string): string | null {
  const text = header.trim();
  if (text === "*") return null;
  const tag = text.replace(/^W\//, "");
  const quoted = tag.startsWith('"') && tag.endsWith('"') && tag.length >= 2;
  const version = quoted ? tag.slice(1, -1) : tag;
  // An entity tag's characters (RFC 9110 etagc): no quote, space or control character; bare, no
  // comma either (a list of versions, which a compare-and-set of one entry cannot take).
  if (version === "" || !(quoted ? ETAG_QUOTED : ETAG_BARE).test(version)) {
    throw badRequest(
      `${what}: the If-Match header ${
        JSON.stringify(header)
      } is not one version; send If-Match: "<version>" with the version GET …/entry answered (its ETag), or If-Match: * to require only that the entry exists`,
    );
  }
  return version;
}

/**
 * The `ifVersion` of a compare-and-set write for `If-Match` `version` (from {@linkcode versionOf}):
 * `*` (`null`) is the entry's current version, `undefined` when there is none (the write
 * conflicts).
 */
async function matchedVersion(
  store: Store,
  key: Key,
  version: string | null,
): Promise<string | undefined> {
  if (version !== null) return version;
  return (await store.get(key))?.version;
}

async function conflict(store: Store, key: Key, what: string): Promise<HttpError> {
  const current = await store.get(key);
  return new HttpError(
    "conflict",
    `${what}: the entry changed meanwhile (${
      current === null ? "it does not exist now" : `its version is now "${current.version}"`
    }); read it again and retry with If-Match set to its version`,
    { current: current === null ? null : entryJson(current) },
  );
}

async function fileSize(location: string): Promise<number | null> {
  if (!isAbsolute(location)) return null;
  let total = 0;
  try {
    const info = await Deno.stat(location);
    if (!info.isFile) return null;
    total += info.size;
  } catch {
    return null;
  }
  for (const side of ["-wal", "-shm"]) {
    try {
      total += (await Deno.stat(location + side)).size;
    } catch {
      // No such side file.
    }
  }
  return total;
}

/**
 * Every flow id of the config's `flows:` files, with its file and definition.
 * Through the runtime's flow cache (`FlowCache.parseFile`): a file is parsed
 * again only when it changed, so listing an unchanged folder costs a `stat`
 * a file.
 */
export async function configuredFlows(
  runtime: Runtime,
): Promise<Map<string, { file: string; schedule: unknown; definition: unknown; also?: string }>> {
  const out = new Map<
    string,
    { file: string; schedule: unknown; definition: unknown; also?: string }
  >();
  const cache = flowCacheOf(runtime);
  const options = { stores: runtime.storeNames };
  for (const file of await flowFiles(runtime.config)) {
    try {
      const parsed = cache === undefined
        ? await loadFlowFile(file, options)
        : await cache.parseFile(file, options);
      const def = parsed.definition as { id: string; schedule?: unknown };
      const first = out.get(def.id);
      if (first === undefined) {
        out.set(def.id, { file, schedule: def.schedule, definition: parsed.definition });
      } else first.also ??= file; // a second file with the id: starting it is refused
    } catch {
      // An invalid flow file: not startable; `flowstate validate` says why.
    }
  }
  return out;
}

/** The file under the config's flows whose YAML says `id: <id>`, though it is not a valid flow. */
async function invalidFlowFile(runtime: Runtime, id: string): Promise<string | undefined> {
  for (const file of await flowFiles(runtime.config)) {
    if ((await rawFlowData(file))?.id === id) return file;
  }
  return undefined;
}

/** The entries of a flow's `schedule:`, each `{ cron, timezone? }`. */
function schedulesOf(value: unknown): { cron: string; timezone?: string }[] {
  return scheduleEntries(value).map(({ cron, raw }) => ({
    cron,
    ...(typeof raw !== "string" && typeof raw.timezone === "string"
      ? { timezone: raw.timezone }
      : {}),
  }));
}

function problemsOf(err: FlowValidationError): string {
  // A problem of the file is shown at its file:line:column; one of the request's inputs by its path.
  return err.problems.map((p) =>
    p.line !== undefined
      ? formatProblem(p, err.file)
      : `${p.path.length ? p.path.join(".") + ": " : ""}${p.message}`
  ).join("; ");
}

/**
 * Start `start` (which calls `onStart` with the run's id once it is
 * recorded) as a run of this server, tracked for cancel and shutdown.
 * Resolves the id once started, or the record with `wait`.
 */
export async function startTracked(
  state: ServerState,
  start: (signal: AbortSignal, onStart: (runId: string) => void) => Promise<RunRecord>,
  wait: boolean,
): Promise<{ runId: string; record?: RunRecord }> {
  if (state.signal.aborted) {
    throw new HttpError("internal", "Cannot start a run: the server is stopping", {}, 503);
  }
  const controller = new AbortController();
  state.controllers.add(controller);
  const started = Promise.withResolvers<string>();
  let runId: string | undefined;
  const running = start(controller.signal, (id) => {
    runId = id;
    state.runs.set(id, controller);
    started.resolve(id);
  });
  const tracked = running.finally(() => {
    if (runId !== undefined) state.runs.delete(runId);
    state.controllers.delete(controller);
    state.pending.delete(tracked);
  });
  state.pending.add(tracked);
  // Failures before the start are answered below; later ones are in the run's record.
  tracked.catch(() => {});
  const endedFirst = running.then((r) => r.id);
  endedFirst.catch(() => {});
  const id = await Promise.race([started.promise, endedFirst]);
  if (!wait) return { runId: id };
  return { runId: id, record: await running };
}

function startError(err: unknown, what: string): never {
  if (err instanceof FlowValidationError) {
    throw badRequest(`Cannot start ${what}: ${problemsOf(err)}`);
  }
  if (err instanceof ConfigError) {
    // "Cannot run job "gc": …" says the subject again: keep its reason only.
    const again = /^Cannot \w+ /.exec(err.message);
    const reason = again && err.message.startsWith(`${what}: `, again[0].length)
      ? err.message.slice(again[0].length + what.length + 2)
      : err.message;
    throw badRequest(`Cannot start ${what}: ${reason}`);
  }
  // The flow's queue.by template fails on these inputs (placed in the flow file): bad input.
  if (err instanceof TemplateError) throw badRequest(`Cannot start ${what}: ${err.message}`);
  throw err;
}

/**
 * `err` of a resume of run `id` (or of its preview) as an HTTP error: a
 * refusal is 409 (400 for a `from` naming no node), a run not found 404, or
 * 409 when it is archived (its outputs are not in the records store).
 */
async function resumeRefused(server: ServerState, id: string, err: unknown): Promise<never> {
  if (err instanceof ResumeRefusedError) {
    throw err.reason === "from" || err.reason === "flow"
      ? badRequest(err.message)
      : new HttpError("conflict", err.message);
  }
  if (err instanceof NotFoundError) {
    const archived = err.kind === "run" ? await archivedRun(server.runtime, id) : null;
    if (archived === null) throw notFound(err.message);
    throw new HttpError(
      "conflict",
      `Cannot resume run ${id}: it is archived (in ${archived.archive}), and a ` +
        `resumed run reuses outputs from the records store only; start a new run of flow ` +
        `"${archived.run.flowId}" instead`,
    );
  }
  if (err instanceof TypeError && /node outcomes cannot be read/.test(err.message)) {
    throw unreadableRun(id, err);
  }
  startError(err, `a resume of run ${id}`);
}

/** Where a page of archived runs goes on from: its `cursor`, `<startedAt>.<run id>`. */
function archivedCursorOf(cursor: string): { startedAt: number; id: string } {
  const match = /^(\d{1,16})\.([0-9a-z]+)$/.exec(cursor);
  if (match === null || !isRunId(match[2])) {
    throw badRequest(
      `Invalid cursor "${cursor}" with archived=true: pass the cursor of the previous page of ` +
        "archived runs as it was",
    );
  }
  return { startedAt: Number(match[1]), id: match[2] };
}

/** A 400 for a `{id}` that is not a run id (one that is, unknown, is a 404 where it is looked up). */
function checkRunId(id: string): void {
  if (!isRunId(id)) {
    throw badRequest(`${JSON.stringify(id)} is not a run id: expected ${RUN_ID_HINT}`);
  }
}

const errors = (...statuses: number[]) =>
  Object.fromEntries(
    statuses.map((s) => [s, {
      description: ERROR_TEXT[s],
      schema: s === 503 ? S.StoreUnavailableBody : S.ErrorBody,
    }]),
  );

const ERROR_TEXT: Record<number, string> = {
  400: "Invalid request (the message says what and how to fix it)",
  401: "The token is missing or wrong",
  403: "Cross-origin mutating request, or a Host that is not loopback on a server without token",
  404: "Not found",
  408: "The body did not arrive within 10 s",
  409: "Conflict",
  413: "The body is larger than maxBodyBytes",
  415: "The body is not application/json",
  428: "If-Match (or If-None-Match: *) is required",
  500:
    "The server cannot give what is stored: for a run, its record is there but this version cannot read it (damaged, or written by a newer Flowstate); the message says how to see the raw entry",
  503:
    "A store the request needs cannot be reached (its server is down or starting): code store_unavailable, the store's name in `store`; try again after Retry-After seconds. Or the runtime the server serves was closed: code runtime_closed (it serves nothing more). (Or the server is stopping: code internal.)",
};

const KEY_QUERY = {
  name: "key",
  description: "one part of the key, in order (repeat it)",
  type: "string",
  repeated: true,
  required: true,
} as const;

/** The routes of the API, in the order the OpenAPI document lists them. */
export const apiRoutes: readonly ApiRoute[] = [
  {
    method: "GET",
    path: "/health",
    anyQuery: true,
    tag: "server",
    summary:
      "Whether the stores answer, the queue worker works (and the daemon ticks); needs no token",
    open: true,
    responses: {
      200: {
        description: "Every store answers, and the worker (if any) is starting or running",
        schema: S.HealthSchema,
      },
      503: {
        description:
          "A store does not answer, or the worker cannot work (waiting for its store, stopped)",
        schema: S.HealthSchema,
      },
    },
    async handler({ server }) {
      const stores: Record<string, { ok: true; plugin: string } | { ok: false; error: string }> =
        {};
      let ok = true;
      let closed = false;
      for (const name of server.runtime.storeNames) {
        try {
          const store = await server.runtime.store(name);
          for await (const _ of store.list({ limit: 1 })) break;
          stores[name] = { ok: true, plugin: store.plugin };
        } catch (err) {
          ok = false;
          closed ||= runtimeClosed(err) !== undefined;
          stores[name] = { ok: false, error: redactText(messageOf(err)) };
        }
      }
      const status = server.scheduler?.();
      // A worker waiting for its store, or stopped (a fatal error), runs nothing that is queued.
      const worker = server.worker === undefined ? undefined : {
        status: server.worker.status,
        ...(server.worker.error === undefined ? {} : { error: redactText(server.worker.error) }),
      };
      if (worker !== undefined && worker.status !== "running" && worker.status !== "starting") {
        ok = false;
      }
      return json({
        status: ok ? "ok" : "unavailable",
        ...(closed ? { error: RUNTIME_CLOSED } : {}),
        stores,
        ...(worker === undefined ? {} : { worker }),
        ...(status ? { daemon: { ticking: status.ticking, lastTickAt: status.lastTickAt } } : {}),
      }, ok ? 200 : 503);
    },
  },
  {
    method: "GET",
    path: "/metrics",
    anyQuery: true,
    tag: "server",
    summary: "Prometheus metrics (text format 0.0.4)",
    responses: {
      200: { description: "The metrics", contentType: "text/plain; version=0.0.4; charset=utf-8" },
      ...errors(401, 503),
    },
    async handler({ server }) {
      return new Response(await prometheusText(server.runtime, server.scheduler?.()), {
        headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
      });
    },
  },
  {
    method: "GET",
    path: "/api/openapi.json",
    tag: "server",
    summary: "This document",
    responses: { 200: { description: "The OpenAPI 3.1 document" }, ...errors(400, 401) },
    handler() {
      return json(openApiDocument(apiRoutes));
    },
  },
  {
    method: "POST",
    path: "/api/session",
    tag: "server",
    summary: "Trade the token for a session cookie (HttpOnly, SameSite=Strict)",
    open: true,
    body: S.SessionBody,
    responses: { 204: { description: "The cookie is set" }, ...errors(400, 401, 403, 415) },
    async handler(ctx) {
      const { token } = await body(ctx, S.SessionBody, "POST /api/session");
      const expected = ctx.server.token;
      if (expected === undefined) return new Response(null, { status: 204 });
      if (!(await sameToken(token, expected))) {
        throw new HttpError(
          "unauthorized",
          "The token is wrong: send the token printed when the server started",
        );
      }
      return new Response(null, {
        status: 204,
        headers: { "set-cookie": sessionCookie(expected) },
      });
    },
  },
  {
    method: "GET",
    path: "/api/stores",
    tag: "state",
    summary: "The configured stores: plugin, location (no password), entries, size",
    responses: {
      200: { description: "The stores, in config order", schema: S.StoreInfoSchema.array() },
      ...errors(400, 401),
    },
    async handler({ server }) {
      const out: z.infer<typeof S.StoreInfoSchema>[] = [];
      for (const name of server.runtime.storeNames) {
        const spec = server.runtime.config.stores[name];
        const plugin = typeof spec.plugin === "string" ? spec.plugin : spec.plugin.name;
        try {
          const store = await server.runtime.store(name);
          out.push({
            name,
            plugin,
            location: redactText(store.location),
            entries: await countOf(server, name, store),
            sizeBytes: await fileSize(store.location),
            ok: true,
            records: name === server.runtime.config.records,
          });
        } catch (err) {
          out.push({
            name,
            plugin,
            location: null,
            entries: null,
            sizeBytes: null,
            ok: false,
            error: redactText(messageOf(err)),
            records: name === server.runtime.config.records,
          });
        }
      }
      return json(out);
    },
  },
  {
    method: "GET",
    path: "/api/stores/{store}/entries",
    tag: "state",
    summary: "A page of entries under a prefix, in key order",
    query: [
      {
        name: "prefix",
        description: "one part of the prefix, in order (repeat it)",
        type: "string",
        repeated: true,
      },
      { name: "limit", description: "entries per page, 1 to 1000 (default 100)", type: "integer" },
      { name: "cursor", description: "the cursor of the previous page", type: "string" },
    ],
    responses: {
      200: {
        description: "Values over 64 KiB as JSON come truncated (fetch them with GET …/entry)",
        schema: z.object({
          entries: S.EntrySchema.or(S.TruncatedEntrySchema).array(),
          cursor: z.string().optional(),
        }),
      },
      ...errors(400, 401, 404, 503),
    },
    async handler(ctx) {
      const store = await storeOf(ctx);
      const prefix = keyParam(ctx.url, "prefix", true);
      const limit = intParam(ctx.url, "limit", 100, 1, 1000);
      const cursor = ctx.url.searchParams.get("cursor") ?? undefined;
      const entries: unknown[] = [];
      let next: string | undefined;
      let more = false;
      try {
        const it = store.list({ prefix, cursor, batchSize: limit + 1 });
        for await (const e of it) {
          if (entries.length === limit) {
            more = true; // An entry follows the page: the cursor is worth giving.
            break;
          }
          const text = JSON.stringify(e.value);
          const size = encoder.encode(text).length;
          entries.push(
            size > MAX_LISTED_VALUE_BYTES
              ? {
                key: [...e.key],
                version: e.version,
                expiresAt: e.expiresAt,
                truncated: true,
                size,
              }
              : entryJson(e),
          );
          if (entries.length === limit) next = it.cursor;
        }
      } catch (err) {
        if (err instanceof TypeError || err instanceof RangeError) throw badRequest(messageOf(err));
        throw err;
      }
      return json(more && next !== undefined ? { entries, cursor: next } : { entries });
    },
  },
  {
    method: "GET",
    path: "/api/stores/{store}/changes",
    tag: "state",
    summary: "A page of the store's change feed (who changed what, when), oldest first",
    query: [
      {
        name: "since",
        description: "only changes after this sequence number (default 0)",
        type: "integer",
      },
      {
        name: "prefix",
        description: "one part of a key prefix, in order (repeat it): only keys under it",
        type: "string",
        repeated: true,
      },
      { name: "limit", description: "changes per page, 1 to 1000 (default 100)", type: "integer" },
    ],
    responses: {
      200: {
        description: "Changes in commit order; `next` is the `since` of the next page",
        schema: S.ChangesPageSchema,
      },
      ...errors(400, 401, 404, 503),
    },
    async handler(ctx) {
      const store = await storeOf(ctx);
      const since = intParam(ctx.url, "since", 0, 0, Number.MAX_SAFE_INTEGER);
      const prefix = keyParam(ctx.url, "prefix", true);
      const limit = intParam(ctx.url, "limit", 100, 1, 1000);
      try {
        const { lastSeq } = await store.feedInfo();
        const changes: Change[] = [];
        for await (const change of store.changes({ since, prefix, limit })) changes.push(change);
        const last = changes.at(-1)?.seq;
        return json(
          changes.length === limit && last !== undefined && last < lastSeq
            ? { changes, lastSeq, next: last }
            : { changes, lastSeq },
        );
      } catch (err) {
        if (err instanceof FeedDisabledError) throw badRequest(err.message);
        throw err;
      }
    },
  },
  {
    method: "GET",
    path: "/api/stores/{store}/children",
    tag: "state",
    summary: "The next key parts under a prefix (the tree), a page at a time",
    query: [
      {
        name: "prefix",
        description: "one part of the prefix, in order (repeat it)",
        type: "string",
        repeated: true,
      },
      { name: "limit", description: "children per page, 1 to 1000 (default 200)", type: "integer" },
      { name: "cursor", description: "the cursor of the previous page", type: "string" },
    ],
    responses: {
      200: {
        description: "The children in key order",
        schema: z.object({
          children: z.object({
            part: z.string(),
            hasChildren: z.boolean(),
            isEntry: z.boolean(),
          }).array(),
          cursor: z.string().optional(),
        }),
      },
      ...errors(400, 401, 404, 503),
    },
    async handler(ctx) {
      const store = await storeOf(ctx);
      const prefix = keyParam(ctx.url, "prefix", true);
      const limit = intParam(ctx.url, "limit", 200, 1, 1000);
      const cursor = ctx.url.searchParams.get("cursor");
      let after: string | undefined;
      if (cursor !== null && cursor !== "") {
        try {
          after = JSON.parse(
            new TextDecoder().decode(
              Uint8Array.from(
                atob(cursor.replaceAll("-", "+").replaceAll("_", "/")),
                (c) => c.charCodeAt(0),
              ),
            ),
          );
        } catch {
          after = undefined;
        }
        if (typeof after !== "string") {
          throw badRequest(
            `Invalid cursor "${cursor}": pass the cursor of the previous page as it was`,
          );
        }
      }
      // The first key after every key whose next part is `part`. Past the empty part at the root,
      // "\u0001": "\u0000…" begins the internal keys there, which a list never shows and refuses
      // to start from (a key [""] made the whole tree a 500).
      const past = (part: string): Key => [
        ...prefix,
        part === "" && prefix.length === 0 ? "\u0001" : `${part}\0`,
      ];
      const children: { part: string; hasChildren: boolean; isEntry: boolean }[] = [];
      let start: Key | undefined = after === undefined ? undefined : past(after);
      let more = false;
      for (;;) {
        let first: Key | undefined;
        for await (const e of store.list({ prefix, start, limit: 1 })) first = e.key;
        if (first === undefined) break;
        if (children.length === limit) {
          more = true;
          break;
        }
        const part = first[prefix.length];
        const isEntry = first.length === prefix.length + 1;
        let hasChildren = !isEntry;
        if (isEntry) {
          for await (const e of store.list({ prefix: [...prefix, part], limit: 2 })) {
            if (e.key.length > prefix.length + 1) hasChildren = true;
          }
        }
        children.push({ part, hasChildren, isEntry });
        start = past(part);
      }
      const last = children.at(-1)?.part;
      return json(
        more && last !== undefined
          ? {
            children,
            cursor: btoa(String.fromCharCode(...encoder.encode(JSON.stringify(last)))).replaceAll(
              "+",
              "-",
            ).replaceAll("/", "_").replaceAll("=", ""),
          }
          : { children },
      );
    },
  },
  {
    method: "GET",
    path: "/api/stores/{store}/entry",
    tag: "state",
    summary: "One entry, whole (with its version as ETag)",
    query: [KEY_QUERY],
    responses: {
      200: { description: "The entry", schema: S.EntrySchema },
      ...errors(400, 401, 404, 503),
    },
    async handler(ctx) {
      const store = await storeOf(ctx);
      const key = keyParam(ctx.url, "key", false);
      const entry = await store.get(key);
      if (entry === null) {
        throw notFound(`No entry ${JSON.stringify(key)} in store "${ctx.params.store}"`);
      }
      return json(entryJson(entry), 200, { etag: `"${entry.version}"` });
    },
  },
  {
    method: "PUT",
    path: "/api/stores/{store}/entry",
    tag: "state",
    summary: "Set an entry with compare-and-set (If-Match, or If-None-Match: * to create only)",
    query: [KEY_QUERY],
    headers: [
      {
        name: "If-Match",
        description:
          'the entry\'s current version, quoted: "<version>" (one version; * for any: the entry exists)',
      },
      { name: "If-None-Match", description: "* to create the entry only if it does not exist" },
    ],
    body: S.PutEntryBody,
    responses: {
      200: { description: "The entry as written", schema: S.EntrySchema },
      409: {
        description: "The entry changed meanwhile; `current` is it now",
        schema: S.ConflictBody,
      },
      ...errors(400, 401, 403, 404, 408, 413, 415, 428, 503),
    },
    async handler(ctx) {
      const store = await storeOf(ctx);
      const key = keyParam(ctx.url, "key", false);
      const what = `Cannot set ${JSON.stringify(key)}`;
      refuseRecordsWrite(ctx, store.name, key, what);
      const ifMatch = ctx.request.headers.get("if-match");
      const ifNoneMatch = ctx.request.headers.get("if-none-match");
      if (ifMatch !== null && ifNoneMatch?.trim() === "*") {
        throw badRequest(
          `${what}: send If-Match (to replace a version) or If-None-Match: * (to create), not both`,
        );
      }
      const wanted = ifMatch === null ? undefined : versionOf(ifMatch, what);
      if (wanted === undefined && ifNoneMatch?.trim() !== "*") {
        throw new HttpError(
          "precondition_required",
          `${what}: the API only writes with compare-and-set; send If-Match: "<version>" (from GET …/entry) or If-None-Match: * to create`,
        );
      }
      const input = await body(ctx, S.PutEntryBody, `PUT /api/stores/${ctx.params.store}/entry`);
      if (input.value === undefined) {
        throw badRequest('Invalid body: value is missing ({ "value": … })');
      }
      // No If-Match: If-None-Match: *, create only (ifVersion null).
      const ifVersion = wanted === undefined ? null : await matchedVersion(store, key, wanted);
      if (ifVersion === undefined) throw await conflict(store, key, what);
      let result;
      try {
        result = await store.set(key, input.value, {
          ifVersion,
          ...(input.expireIn === undefined ? {} : { expireIn: input.expireIn }),
        });
      } catch (err) {
        if (err instanceof TypeError || err instanceof RangeError) throw badRequest(messageOf(err));
        throw err;
      }
      if (!result.ok) throw await conflict(store, key, what);
      const now = ctx.server.runtime.clock.now();
      return json(
        {
          key: [...key],
          value: input.value as JsonValue,
          version: result.version,
          expiresAt: input.expireIn === undefined ? null : now + input.expireIn,
        },
        200,
        { etag: `"${result.version}"` },
      );
    },
  },
  {
    method: "DELETE",
    path: "/api/stores/{store}/entry",
    tag: "state",
    summary: "Delete an entry with compare-and-set (If-Match)",
    query: [KEY_QUERY],
    headers: [{
      name: "If-Match",
      description: 'the entry\'s current version, quoted: "<version>" (* for any: it exists)',
    }],
    responses: {
      204: { description: "Deleted" },
      409: {
        description: "The entry changed meanwhile; `current` is it now",
        schema: S.ConflictBody,
      },
      ...errors(400, 401, 403, 404, 428, 503),
    },
    async handler(ctx) {
      const store = await storeOf(ctx);
      const key = keyParam(ctx.url, "key", false);
      const ifMatch = ctx.request.headers.get("if-match");
      if (ifMatch === null) {
        throw new HttpError(
          "precondition_required",
          `Cannot delete ${
            JSON.stringify(key)
          }: the API only deletes with compare-and-set; send If-Match: "<version>" (from GET …/entry)`,
        );
      }
      const what = `Cannot delete ${JSON.stringify(key)}`;
      refuseRecordsWrite(ctx, store.name, key, what);
      const ifVersion = await matchedVersion(store, key, versionOf(ifMatch, what));
      const deleted = ifVersion !== undefined && await store.delete(key, { ifVersion });
      if (!deleted) throw await conflict(store, key, what);
      return new Response(null, { status: 204 });
    },
  },
  {
    method: "GET",
    path: "/api/flows",
    tag: "flows",
    summary: "Flows: recorded ones, those known only from the archive and the config's flow " +
      "files, with head, last run and schedule",
    responses: {
      200: {
        description: "The flows, by id. `lastRun` is the newest run, recorded or archived: a " +
          "flow whose newest run the archive job moved to <home>/archive has it marked " +
          "`archived` (with its `archive` file), rather than no last run. A flow whose runs and " +
          "versions were all archived (the records store holds nothing of it) is listed, marked " +
          "`archived`",
        schema: S.FlowInfoSchema.array(),
      },
      ...errors(400, 401, 503),
    },
    async handler({ server }) {
      const records = await server.runtime.records();
      const recorded = new Map((await records.listFlows()).map((f) => [f.id, f]));
      const files = await configuredFlows(server.runtime);
      const ids = [...new Set([...recorded.keys(), ...files.keys()])].sort();
      const now = server.runtime.clock.now();
      const findLast = await lastRunFinder(server.runtime, records);
      const out: z.infer<typeof S.FlowInfoSchema>[] = [];
      for (const id of ids) {
        const summary = recorded.get(id);
        const file = files.get(id);
        const last = await findLast(id);
        const info: z.infer<typeof S.FlowInfoSchema> = {
          id,
          head: summary?.head ?? null,
          versions: summary?.versions ?? 0,
          prunedVersions: summary?.prunedVersions ?? 0,
          lastRun: last === undefined ? null : { ...last },
          ...(summary?.archived ? { archived: true as const } : {}),
        };
        if (file) {
          info.file = relative(server.runtime.config.baseDir, file.file) || file.file;
          // Of several entries, the one that ticks first (`schedules ls` lists each).
          for (const schedule of schedulesOf(file.schedule)) {
            const timezone = schedule.timezone ?? server.runtime.config.timezone ??
              DEFAULT_TIMEZONE;
            let next: number | null = null;
            try {
              next = nextTick(schedule.cron, now, timezone);
            } catch {
              next = null;
            }
            const shown = info.schedule?.next;
            if (shown === undefined || (next !== null && (shown === null || next < shown))) {
              info.schedule = { cron: schedule.cron, timezone, next };
            }
          }
        }
        out.push(info);
      }
      return json(out);
    },
  },
  {
    method: "GET",
    path: "/api/flows/{flow}/versions",
    tag: "flows",
    summary: "A flow's versions, newest first: those in the records store and those the " +
      "archive keeps (marked `archived`, with the `archive` file whose runs ran it) that the " +
      "retention job deleted there",
    responses: {
      200: { description: "The versions", schema: S.VersionSchema.array() },
      ...errors(400, 401, 404, 503),
    },
    async handler({ server, params }) {
      const records = await server.runtime.records();
      const versions = await records.listVersions(params.flow);
      if (versions.length === 0) {
        const archived = (await archiveReaderOf(server.runtime).flows(() => {})).has(params.flow);
        throw notFound(
          archived
            ? `Flow "${params.flow}" is known only from the archive, which keeps none of its ` +
              "versions (its runs were archived before archives kept flow versions); its runs: " +
              `GET /api/runs?archived=true&flow=${params.flow}`
            : `No recorded flow "${params.flow}"`,
        );
      }
      return json(
        versions.map((v) => ({
          hash: v.hash,
          parent: v.parent,
          seq: v.seq,
          createdAt: v.createdAt,
          ...(v.archived ? { archived: true as const, archive: v.archive } : {}),
        })),
      );
    },
  },
  {
    method: "GET",
    path: "/api/flows/{flow}/versions/{hash}",
    tag: "flows",
    summary: "One version of a flow, with its source (YAML) and definition: from the records " +
      "store, or from the archive (marked `archived`, with the `archive` file whose runs ran " +
      "it) once the retention job deleted it there",
    responses: {
      200: { description: "The version", schema: S.VersionDetailSchema },
      ...errors(400, 401, 404, 500, 503),
    },
    async handler({ server, params }) {
      const records = await server.runtime.records();
      let v;
      try {
        v = await records.getVersion(params.flow, params.hash);
      } catch (err) {
        if (err instanceof TypeError) throw badRequest(messageOf(err));
        throw err;
      }
      const archived = v === null
        ? await archiveReaderOf(server.runtime).version(params.flow, params.hash)
        : null;
      if (archived !== null && archived.version === null) {
        throw notFound(
          `Version ${params.hash} of flow "${params.flow}" is no longer recorded (the retention ` +
            `job deleted it), and the archive does not keep it: the runs archived in ` +
            `${archived.archive} ran it, but it was archived before archives kept flow ` +
            "versions, or the version was already deleted when they were archived",
        );
      }
      v ??= archived?.version ?? null;
      if (v === null) throw notFound(`No version ${params.hash} of flow "${params.flow}"`);
      return json({
        hash: v.hash,
        parent: v.parent,
        seq: v.seq,
        createdAt: v.createdAt,
        ...(v.source === undefined ? {} : { source: v.source }),
        definition: v.definition,
        graph: flowGraph(v.definition as FlowDefinition),
        ...(archived === null ? {} : { archived: true, archive: archived.archive }),
      });
    },
  },
  {
    method: "GET",
    path: "/api/flows/{flow}/graph",
    tag: "flows",
    summary: "A flow's graph (its nodes and edges, for drawing): of its file under the config's " +
      "flows (what the next run runs), else of its newest recorded version (of a flow known " +
      "only from the archive: the version its newest archived run ran, marked `archived`)",
    responses: {
      200: { description: "The graph, and where it was read", schema: S.FlowGraphAnswerSchema },
      400: {
        description:
          "The flow's file under the config's flows is not a valid flow, and no version of it was recorded: its problems (file:line:column)",
        schema: S.ErrorBody,
      },
      ...errors(401, 404, 500, 503),
    },
    async handler({ server, params }) {
      const file = (await configuredFlows(server.runtime)).get(params.flow);
      if (file !== undefined) {
        return json({
          from: "file",
          file: relative(server.runtime.config.baseDir, file.file) || file.file,
          graph: flowGraph(file.definition as FlowDefinition),
        });
      }
      const records = await server.runtime.records();
      let version = await records.getHead(params.flow);
      let archive: string | undefined;
      if (version === null) {
        // A flow known only from the archive: the version its newest archived run ran.
        const head = (await records.listFlows()).find((f) => f.id === params.flow)?.head;
        const archived = head === undefined
          ? null
          : await archiveReaderOf(server.runtime).version(params.flow, head);
        version = archived?.version ?? null;
        archive = archived?.archive;
      }
      if (version === null) {
        // A file under the config's flows with that id, though not a valid flow: say why.
        const invalid = await invalidFlowFile(server.runtime, params.flow);
        if (invalid !== undefined) {
          try {
            await loadFlowFile(invalid, { stores: server.runtime.storeNames });
          } catch (err) {
            if (err instanceof FlowValidationError) {
              throw badRequest(
                `Cannot draw flow "${params.flow}": its file is not a valid flow: ${
                  problemsOf(err)
                }; fix it (flowstate validate ${
                  relative(server.runtime.config.baseDir, invalid) || invalid
                } says the same)`,
              );
            }
            throw err;
          }
        }
        throw notFound(
          `No flow "${params.flow}" in the config's flows, nor a recorded version of it`,
        );
      }
      return json({
        from: "version",
        hash: version.hash,
        graph: flowGraph(version.definition as FlowDefinition),
        ...(archive === undefined ? {} : { archived: true, archive }),
      });
    },
  },
  {
    method: "POST",
    path: "/api/flows/{flow}/runs",
    tag: "runs",
    summary:
      "Enqueue a run of a flow of the config's flows (202 with its id), or ?wait=true for its end",
    query: [{
      name: "wait",
      description: "true: answer when the run ends (whichever worker runs it), with its record",
      type: "boolean",
    }],
    body: S.StartRunBody,
    responses: {
      200: {
        description: "With wait=true: the run ended",
        schema: z.object({ run: S.RunRecordSchema }),
      },
      202: {
        description: "The run is queued (Location: /api/runs/{id}); a queue worker runs it",
        schema: S.QueuedRunSchema,
      },
      ...errors(400, 401, 403, 404, 408, 413, 415, 503),
    },
    async handler(ctx) {
      const { server, params } = ctx;
      const flows = await configuredFlows(server.runtime);
      const flow = flows.get(params.flow);
      if (flow?.also !== undefined) {
        throw badRequest(
          twoFilesOneId(`Cannot start flow "${params.flow}"`, [flow.file, flow.also]),
        );
      }
      // An invalid flow file is found by its id alone: starting it says what is wrong with it.
      const file = flow?.file ??
        await invalidFlowFile(server.runtime, params.flow);
      if (file === undefined) {
        throw notFound(
          `No flow "${params.flow}" among the config's flows: files${
            flows.size ? ` (${[...flows.keys()].join(", ")})` : ""
          }; add its file under "flows:" in the config`,
        );
      }
      const what = `POST /api/flows/${params.flow}/runs`;
      const b = await body(ctx, S.StartRunBody, what);
      const wait = ctx.url.searchParams.get("wait") === "true";
      const key = httpDedupeKey(params.flow, ctx.request, b.key);
      let answer;
      try {
        answer = await enqueueOverHttp(server.runtime, file, {
          input: b.input ?? {},
          ...(b.delay === undefined ? {} : { delay: b.delay }),
          ...(b.runAt === undefined
            ? {}
            : { runAt: typeof b.runAt === "number" ? b.runAt : Date.parse(b.runAt) }),
          ...(b.priority === undefined ? {} : { priority: b.priority }),
          ...(key === undefined ? {} : { key }),
          ...(b.maxAttempts === undefined ? {} : { maxAttempts: b.maxAttempts }),
          ...(b.backoff === undefined ? {} : { backoff: b.backoff }),
        }, wait ? { signal: AbortSignal.any([server.signal, ctx.request.signal]) } : undefined);
      } catch (err) {
        startError(err, `flow "${params.flow}"`);
      }
      if (answer.record) return json({ run: answer.record });
      return json(
        { runId: answer.runId, status: answer.status, existing: answer.existing },
        202,
        { location: `/api/runs/${answer.runId}` },
      );
    },
  },
  {
    method: "GET",
    path: "/api/runs",
    tag: "runs",
    summary: "A page of runs, newest first",
    query: [
      {
        name: "flow",
        description: "only runs of this flow (job runs: job:<name>)",
        type: "string",
      },
      {
        name: "status",
        description: `only runs with this status (${RUN_STATUSES.join(", ")})`,
        type: "string",
      },
      {
        name: "since",
        description: "only runs started at or after (ms since the epoch, or ISO date)",
        type: "string",
      },
      {
        name: "until",
        description: "only runs started before (ms since the epoch, or ISO date)",
        type: "string",
      },
      { name: "limit", description: "runs per page, 1 to 1000 (default 50)", type: "integer" },
      { name: "cursor", description: "the cursor of the previous page", type: "string" },
      {
        name: "archived",
        description: "true: the runs the archive job moved to <home>/archive instead (each with " +
          "`archived` and `archive`, its file), from the archive indexes; the other parameters " +
          "apply alike, since/until pick which periods' files are read",
        type: "boolean",
      },
    ],
    responses: {
      200: {
        description: "The page (with archived=true, of archived runs)",
        schema: S.RunPageSchema,
      },
      ...errors(400, 401, 503),
    },
    async handler({ server, url }) {
      const status = url.searchParams.get("status") || undefined;
      if (status !== undefined && !RUN_STATUSES.includes(status as RunStatus)) {
        throw badRequest(`Invalid status "${status}": expected one of ${RUN_STATUSES.join(", ")}`);
      }
      const flowId = url.searchParams.get("flow") || undefined;
      const since = timeParam(url, "since");
      const until = timeParam(url, "until");
      const cursor = url.searchParams.get("cursor") || undefined;
      const limit = intParam(url, "limit", 50, 1, 1000);
      // A boolean parameter is true or false (the server checks it before the handler).
      const archived = url.searchParams.get("archived") ?? "false";
      if (archived === "true") {
        const after = cursor === undefined ? undefined : archivedCursorOf(cursor);
        const runs = await archiveReaderOf(server.runtime).list({
          flowId,
          status: status as RunStatus | undefined,
          since,
          until,
          limit: limit + 1,
          after,
        });
        const page = runs.slice(0, limit).map((r) => ({ ...r, archived: true as const }));
        const last = page.at(-1);
        return json(
          runs.length > limit && last !== undefined
            ? { runs: page, cursor: `${last.startedAt}.${last.id}` }
            : { runs: page },
        );
      }
      const records = await server.runtime.records();
      try {
        const page = await records.listRunSummaries({
          ...(flowId ? { flowId } : {}),
          ...(status ? { status: status as RunStatus } : {}),
          ...(since === undefined ? {} : { since }),
          ...(until === undefined ? {} : { until }),
          ...(cursor ? { cursor } : {}),
          limit,
        });
        // A running queued run whose worker's claim lapsed says when (its record says), by the
        // runtime's clock: the one its claims and heartbeats are written with.
        const now = server.runtime.clock.now();
        const runs = await Promise.all(page.runs.map(async (summary) => {
          if (summary.status !== "running") return summary;
          const run = await records.getRun(summary.id).catch(() => null);
          const lapsedAt = run === null ? undefined : claimLapsedAt(run, now);
          return lapsedAt === undefined ? summary : { ...summary, leaseLapsedAt: lapsedAt };
        }));
        return json(page.cursor === undefined ? { runs } : { runs, cursor: page.cursor });
      } catch (err) {
        if (err instanceof TypeError || err instanceof RangeError) throw badRequest(messageOf(err));
        throw err;
      }
    },
  },
  {
    method: "GET",
    path: "/api/runs/{id}",
    tag: "runs",
    summary: "A run with its events (the node timeline), or only the events after a cursor; " +
      "a run the archive job moved out of the records store is read from the archive " +
      "(marked `archived`, with its `archive` file)",
    query: [{
      name: "after",
      description: "only the events from this index on: the `eventCount` of an earlier answer " +
        "(of this route or of …/nodes), so that a running run's page fetches what was added since",
      type: "integer",
    }],
    responses: {
      200: {
        description: "The run; `events` its events (from index `after`, when given); " +
          "`eventCount` how many events it has in all (the next `after`)",
        schema: S.RunDetailSchema,
      },
      ...errors(400, 401, 404, 500, 503),
    },
    async handler({ server, params, url }) {
      const { run, archived } = await runOr404(server, params.id);
      const after = intParam(url, "after", 0, 0, Number.MAX_SAFE_INTEGER);
      const { events, count } = archived === null
        ? await (await server.runtime.records()).getEventsFrom(params.id, after)
        : { events: archived.events.slice(after), count: archived.events.length };
      if (after > count) {
        throw badRequest(
          `Invalid query parameter after=${after}: run ${params.id} has ${count} event${
            count === 1 ? "" : "s"
          }; pass the eventCount of an earlier answer (or leave after out for every event)`,
        );
      }
      return json({
        run,
        events,
        eventCount: count,
        ...await onFailureMark(server, params.id, archived),
        ...await resumedByMark(server, params.id, archived),
        ...await waitingMark(server, run, archived),
        ...leaseLapsedMark(run, archived, server.runtime.clock.now()),
        ...archivedMark(archived),
      });
    },
  },
  {
    method: "GET",
    path: "/api/runs/{id}/nodes",
    tag: "runs",
    summary:
      "A run with a page of its nodes: every node of its flow version, in the flow's order (those not started too), with their outcomes and events",
    query: [
      {
        name: "offset",
        description: "the position of the page's first node (default 0)",
        type: "integer",
      },
      {
        name: "limit",
        description: `nodes per page, 1 to ${MAX_NODE_PAGE} (default ${DEFAULT_NODE_PAGE})`,
        type: "integer",
      },
    ],
    responses: {
      200: {
        description: "The run, its `nodes` only the page's outcomes; `events` the page's nodes' " +
          "events (and, in the page at offset 0, the run's own); `nodeIds` the page's nodes in " +
          "order (the flow version's, then any other that has run); `total` every node; " +
          "`next` the offset of the next page, when one follows; `eventCount` how many events " +
          "the run has in all (every page's events are among them: `GET /api/runs/{id}?after=` " +
          "it gives only the events added since)",
        schema: S.RunNodesPageSchema,
      },
      ...errors(400, 401, 404, 500, 503),
    },
    async handler({ server, params, url }) {
      const { run, archived } = await runOr404(server, params.id);
      const offset = intParam(url, "offset", 0, 0, Number.MAX_SAFE_INTEGER);
      const limit = intParam(url, "limit", DEFAULT_NODE_PAGE, 1, MAX_NODE_PAGE);
      const events = archived?.events ??
        await (await server.runtime.records()).getEvents(params.id);
      // An archived run's version may be gone from the records store: the archive keeps it.
      const flowNodeIds = run.flowId.startsWith("job:")
        ? null
        : archived?.version
        ? definitionNodeIds(archived.version.definition)
        : await versionNodeIds(server, run.flowId, run.flowVersion);
      return json({
        ...runNodesPage(run, events, flowNodeIds ?? [], offset, limit),
        eventCount: events.length,
        ...await onFailureMark(server, params.id, archived),
        ...await resumedByMark(server, params.id, archived),
        ...await waitingMark(server, run, archived),
        ...leaseLapsedMark(run, archived, server.runtime.clock.now()),
        ...archivedMark(archived),
      });
    },
  },
  {
    method: "GET",
    path: "/api/runs/{id}/changes",
    tag: "runs",
    summary:
      "The state changes a run made (from the stores' change feeds), each with the value before",
    query: [
      {
        name: "limit",
        description: "changes per page, 1 to 1000 (default 100)",
        type: "integer",
      },
      { name: "cursor", description: "the cursor of the previous page", type: "string" },
    ],
    responses: {
      200: {
        description:
          "Changes in store then sequence order; `stores` says which stores keep no feed " +
          "(their keys are only in the run's write sets). A page stops at `limit` changes or " +
          `after reading ${SCAN_BUDGET} feed entries; \`cursor\` is present when more may follow`,
        schema: S.RunChangesPageSchema,
      },
      ...errors(400, 401, 404, 500, 503),
    },
    async handler({ server, params, url }) {
      // An archived run's changes are in the feeds as long as they keep them.
      const { run } = await runOr404(server, params.id);
      const limit = intParam(url, "limit", 100, 1, 1000);
      const cursor = url.searchParams.get("cursor") || undefined;
      if (cursor !== undefined) {
        try {
          decodeCursor(cursor, server.runtime.storeNames);
        } catch (err) {
          throw badRequest(messageOf(err));
        }
      }
      return json(await runChangesPage(server.runtime, run, { limit, cursor }));
    },
  },
  {
    method: "GET",
    path: "/api/runs/{id}/definition",
    tag: "runs",
    summary:
      "The flow version a run ran, with its definition and source: from the records store, or " +
      "for an archived run from the archive (which keeps it after retention deleted it)",
    responses: {
      200: { description: "The version the run ran", schema: S.RunDefinitionSchema },
      404: {
        description: "No such run, or its definition is kept nowhere (the message says why)",
        schema: S.ErrorBody,
      },
      ...errors(400, 401, 500, 503),
    },
    async handler({ server, params }) {
      const { run, archived } = await runOr404(server, params.id);
      if (run.flowId.startsWith("job:")) {
        throw notFound(
          `Run ${run.id} is a run of job "${run.flowId.slice(4)}": a job has no flow definition`,
        );
      }
      let version = archived?.version ?? null;
      const from = version === null ? "records" : "archive";
      version ??= await (await server.runtime.records()).getVersion(run.flowId, run.flowVersion);
      if (version === null) {
        throw notFound(
          `The definition of run ${run.id} (flow "${run.flowId}", version ${run.flowVersion}) ` +
            (archived === null
              ? "is no longer recorded: the retention job deleted the version"
              : `is neither in the records store nor in the archive beside ${archived.archive} ` +
                "(archived before archives kept flow versions, or its version was already " +
                "deleted when the run was archived)"),
        );
      }
      return json({
        runId: run.id,
        flowId: run.flowId,
        hash: version.hash,
        parent: version.parent,
        seq: version.seq,
        createdAt: version.createdAt,
        ...(version.source === undefined ? {} : { source: version.source }),
        definition: version.definition,
        graph: flowGraph(version.definition as FlowDefinition),
        from,
        ...archivedMark(archived),
      });
    },
  },
  {
    method: "POST",
    path: "/api/runs/{id}/cancel",
    tag: "runs",
    summary: "Cancel a running run (of this process at once, of another within a second)",
    responses: {
      202: {
        description:
          "Cancel requested; `status` is the run's status when asked, or `failed` when its process was gone (no heartbeat for a minute) and it was recorded abandoned",
        schema: S.CancelSchema,
      },
      409: {
        description: "The run already ended (an archived run too: archived runs are read-only)",
        schema: S.ErrorBody,
      },
      ...errors(400, 401, 403, 404, 500, 503),
    },
    async handler({ server, params }) {
      checkRunId(params.id);
      const local = server.runs.get(params.id);
      if (local !== undefined) {
        local.abort("cancelled over HTTP");
        return json({ runId: params.id, status: "running" }, 202);
      }
      const records = await server.runtime.records();
      let done;
      try {
        done = await cancelAnyRun(records, params.id, server.runtime.clock.now());
      } catch (err) {
        if (err instanceof TypeError) throw unreadableRun(params.id, err);
        throw err;
      }
      if (done.kind === "unknown") {
        const archived = await archivedRun(server.runtime, params.id);
        if (archived === null) throw notFound(`No run ${params.id}`);
        throw new HttpError("conflict", archivedCannot("cancel", archived));
      }
      if (done.kind === "ended") {
        throw new HttpError(
          "conflict",
          `Cannot cancel run ${params.id}: it already ended (${done.run.status})`,
        );
      }
      // A run whose process is gone is recorded abandoned (failed) at once: nobody else would.
      const status = done.kind === "queued" ? "queued" : done.run.status;
      return json({ runId: params.id, status }, 202);
    },
  },
  {
    method: "POST",
    path: "/api/runs/{id}/resume",
    tag: "runs",
    summary: "Resume a failed, cancelled, timed-out or abandoned run: a new run of its flow " +
      "with its inputs (recorded `resumeOf`) that reuses the outputs of the nodes that " +
      "succeeded (each marked `reused`) and runs the rest; `from` runs that node and every " +
      "node that needs it again",
    body: S.ResumeRunBody,
    responses: {
      202: {
        description: "The new run started here (Location: /api/runs/{new id})",
        schema: S.RunIdSchema,
      },
      409: {
        description: "The run cannot be resumed: still queued or running, succeeded (without " +
          "`from`), a job's, a sub-run (resume its parent), run with mocks, archived, or " +
          "already resumed by another run (the message names it; `again` once it ended)",
        schema: S.ErrorBody,
      },
      ...errors(400, 401, 403, 404, 408, 413, 415, 500, 503),
    },
    async handler(ctx) {
      const { server, params } = ctx;
      checkRunId(params.id);
      const b = await body(ctx, S.ResumeRunBody, `POST /api/runs/${params.id}/resume`);
      let started;
      try {
        started = await startTracked(
          server,
          (signal, onStart) =>
            server.runtime.resumeRun(params.id, {
              signal,
              onStart,
              ...(b.from === undefined ? {} : { from: b.from }),
              ...(b.again === true ? { again: true } : {}),
            }),
          false,
        );
      } catch (err) {
        return await resumeRefused(server, params.id, err);
      }
      return json({ runId: started.runId }, 202, { location: `/api/runs/${started.runId}` });
    },
  },
  {
    method: "GET",
    path: "/api/runs/{id}/resume",
    tag: "runs",
    summary: "What `POST /api/runs/{id}/resume` would do, without running or writing anything: " +
      "each node of the flow, reused (its recorded output taken) or run again, and why",
    query: [
      {
        name: "from",
        description: "the node to run again from (as the body's `from`)",
        type: "string",
      },
      {
        name: "again",
        description: "as the body's `again`: true to preview resuming a run whose resume ended",
        type: "boolean",
      },
    ],
    responses: {
      200: { description: "The nodes, in the flow's order", schema: S.ResumePreviewSchema },
      409: {
        description: "The run cannot be resumed (the refusal `POST` would answer)",
        schema: S.ErrorBody,
      },
      ...errors(400, 401, 404, 500, 503),
    },
    async handler(ctx) {
      const { server, params, url } = ctx;
      checkRunId(params.id);
      const from = url.searchParams.get("from");
      if (from === "") throw badRequest("Invalid query parameter from=: expected a node id");
      const again = url.searchParams.get("again") ?? "false";
      try {
        return json(
          await server.runtime.previewResume(params.id, {
            ...(from === null ? {} : { from }),
            ...(again === "true" ? { again: true } : {}),
          }),
        );
      } catch (err) {
        return await resumeRefused(server, params.id, err);
      }
    },
  },
  {
    method: "POST",
    path: "/api/runs/{id}/signals/{name}",
    tag: "runs",
    summary:
      "Send a signal to a run's wait node: an approval, or an external system's callback (its URL built from run.id)",
    body: S.SignalBody,
    responses: {
      202: {
        description:
          "Kept for the run: a node waiting for it goes on within a second, one that waits later takes it then (each signal is taken once, oldest first)",
        schema: S.SignalSentSchema,
      },
      409: {
        description: "The run already ended (an archived run too): nothing is kept",
        schema: S.ErrorBody,
      },
      ...errors(400, 401, 403, 404, 413, 500, 503),
    },
    async handler(ctx) {
      const { server, params } = ctx;
      checkRunId(params.id);
      const problem = signalNameProblem(params.name);
      if (problem !== undefined) throw badRequest(`Cannot send a signal: ${problem}`);
      const input = await body(
        ctx,
        S.SignalBody,
        `POST /api/runs/${params.id}/signals/${params.name}`,
      );
      let done;
      try {
        done = await server.runtime.signalRun(params.id, params.name, input.data);
      } catch (err) {
        if (err instanceof TypeError) throw badRequest(messageOf(err));
        throw err;
      }
      if (done.kind === "unknown") throw notFound(`No run ${params.id}`);
      if (done.kind === "ended") {
        throw new HttpError(
          "conflict",
          `Cannot send signal ${params.name} to run ${params.id}: it already ended (${done.run.status})`,
        );
      }
      const warning = unexpectedSignalWarning(params.name, done.run.flowId, done.expectation);
      return json({
        runId: params.id,
        flowId: done.run.flowId,
        signal: params.name,
        waiting: done.waiting,
        expected: done.expectation.expected,
        waitSignals: done.expectation.waitSignals,
        ...(warning === undefined ? {} : { warning }),
      }, 202);
    },
  },
  {
    method: "GET",
    path: "/api/metrics",
    tag: "runs",
    summary: 'Per-flow metrics (counts by status, p50/p95 durations), per version and "*"',
    query: [{ name: "flow", description: "only this flow's", type: "string" }],
    responses: {
      200: {
        description: "The metrics: every finished run since the flow first ran, the runs the " +
          "archive job moved to <home>/archive and those the retention job deleted included " +
          "(they are counted when a run ends and kept apart from the runs); the rows of the " +
          'versions the retention job deleted are folded into "*pruned"',
        schema: S.FlowMetricsSchema.array(),
      },
      ...errors(400, 401, 503),
    },
    async handler({ server, url }) {
      const records = await server.runtime.records();
      const flow = url.searchParams.get("flow") || undefined;
      try {
        return json(await records.listMetrics(flow));
      } catch (err) {
        if (err instanceof TypeError) throw badRequest(messageOf(err));
        throw err;
      }
    },
  },
  {
    method: "GET",
    path: "/api/jobs",
    tag: "jobs",
    summary: "The jobs, built in and configured, with schedule, next and last run",
    responses: {
      200: {
        description: "The jobs; `last` is the run that started last (a run still waiting in " +
          "the queue is not one; `startedAt` is its start), recorded or archived (marked " +
          "`archived`, with its `archive` file)",
        schema: S.JobInfoSchema.array(),
      },
      ...errors(400, 401, 503),
    },
    async handler({ server }) {
      const runtime = server.runtime;
      const config = server.config();
      const records = await runtime.records();
      const now = runtime.clock.now();
      const names = [...new Set([...builtinJobNames(), ...Object.keys(config.jobs)])];
      const findLast = await lastRunFinder(runtime, records, undefined, { started: true });
      const out: z.infer<typeof S.JobInfoSchema>[] = [];
      for (const name of names) {
        const settings = config.jobs[name];
        const timezone = settings?.timezone ?? config.timezone;
        let description: string | null = null;
        let schedule: string | null = settings?.schedule ?? null;
        let error: string | null = null;
        let paths: Record<string, string | string[]> = {};
        try {
          const loaded = await loadConfiguredJob(config, name);
          description = loaded.job.description;
          schedule = loaded.schedule;
          paths = loaded.paths;
        } catch (err) {
          error = redactText(messageOf(err));
        }
        const enabled = settings?.enabled ?? true;
        const scheduled = settings !== undefined && enabled && schedule !== null && error === null;
        let next: number | null = null;
        if (scheduled) {
          try {
            next = nextTick(schedule!, now, timezone);
          } catch {
            next = null;
          }
        }
        out.push({
          name,
          description,
          enabled,
          schedule,
          timezone,
          next,
          last: lastRunBrief(await findLast(`job:${name}`)),
          error,
          paths,
        });
      }
      return json(out);
    },
  },
  {
    method: "GET",
    path: "/api/schedules",
    tag: "jobs",
    summary:
      "What the daemon runs, jobs then flows, and the jobs and flow files that cannot be used (as flowstate schedules ls --json)",
    responses: {
      200: {
        description:
          "The schedules. A flow file that cannot be used carries `error` (and `file`): on its schedule when one is in effect (a running daemon keeps the one the file had), else on a row of its own (`id` file:<path>, `cron` null) after the schedules; two flow files whose schedules declare one flow id are each such a file. A job of the config that cannot be scheduled (its module cannot be loaded, an option is invalid) is a row `job:<name>` with `cron` null and `error`, after the jobs' schedules",
        schema: S.ScheduleInfoSchema.array(),
      },
      ...errors(400, 401, 503),
    },
    async handler({ server }) {
      const runtime = server.runtime;
      let source: ScheduleSource;
      if (server.schedules !== undefined) source = server.schedules();
      else {
        const problems: FlowFileProblem[] = [];
        const jobProblems: JobProblem[] = [];
        try {
          const schedules = await loadSchedules(runtime, {
            config: server.config(),
            onFlowProblem: (p) => problems.push(p),
            onJobProblem: (p) => jobProblems.push(p),
          });
          source = { schedules, problems, jobProblems };
        } catch (err) {
          if (err instanceof ConfigError) throw badRequest(redactText(err.message));
          throw err;
        }
      }
      const rows = await scheduleListing(runtime, source, await runtime.records());
      return json(rows.map((row) =>
        row.error === undefined ? row : {
          ...row,
          error: redactText(row.error),
        }
      ));
    },
  },
  {
    method: "GET",
    path: "/api/workers",
    tag: "runs",
    summary:
      "The queue workers sharing the records store: live or stale, what they serve, the runs they hold (as flowstate workers --json)",
    responses: {
      200: {
        description:
          "The workers, in id order. `status` is `stale` once the last heartbeat is older than `staleAfterMs` (three heartbeat intervals): the worker was killed, is paused or cannot reach the store. `claims` are the runs it held at its last heartbeat. A clean stop removes a worker; the gc job deletes stale ones",
        schema: S.WorkerInfoSchema.array(),
      },
      ...errors(400, 401, 503),
    },
    async handler({ server }) {
      return json(await listWorkers(server.runtime));
    },
  },
  {
    method: "POST",
    path: "/api/jobs/{name}/runs",
    tag: "jobs",
    summary: "Run a job now (202 at once, or ?wait=true for its end)",
    query: [{
      name: "wait",
      description: "true: answer when the job ends, with its record",
      type: "boolean",
    }],
    body: S.RunJobBody,
    responses: {
      200: {
        description: "With wait=true: the job ended",
        schema: z.object({ run: S.RunRecordSchema }),
      },
      202: { description: "The job started (Location: /api/runs/{id})", schema: S.RunIdSchema },
      ...errors(400, 401, 403, 404, 408, 413, 415, 503),
    },
    async handler(ctx) {
      const { server, params } = ctx;
      const runtime = server.runtime;
      const config = server.config();
      const names = [...new Set([...builtinJobNames(), ...Object.keys(config.jobs)])];
      if (!names.includes(params.name)) {
        throw notFound(`No job "${params.name}": the jobs are ${names.join(", ")}`);
      }
      const input = await body(ctx, S.RunJobBody, `POST /api/jobs/${params.name}/runs`);
      const wait = ctx.url.searchParams.get("wait") === "true";
      let started;
      try {
        const loaded = await loadConfiguredJob(config, params.name);
        started = await startTracked(server, (signal, onStart) =>
          runJob(runtime, loaded.job, {
            configOptions: { ...loaded.config.options },
            // The server's working directory means nothing to a client: the config's folder.
            options: resolvePathOptions(loaded.job, input.options ?? {}, config.baseDir),
            signal,
            onStart,
          }), wait);
      } catch (err) {
        startError(err, `job "${params.name}"`);
      }
      if (started.record) return json({ run: started.record });
      return json({ runId: started.runId }, 202, { location: `/api/runs/${started.runId}` });
    },
  },
  {
    method: "GET",
    path: "/api/events",
    tag: "events",
    summary: "Server-Sent Events: run.started, node, run.ended, state.changed, job.progress",
    query: [
      {
        name: "flow",
        description: "only events of this flow (repeatable)",
        type: "string",
        repeated: true,
      },
      {
        name: "run",
        description: "only events of this run (repeatable)",
        type: "string",
        repeated: true,
      },
      {
        name: "lastEventId",
        description: "as the Last-Event-ID header, for clients that cannot set it",
        type: "integer",
      },
    ],
    headers: [{ name: "Last-Event-ID", description: "resume after this event (bounded backlog)" }],
    responses: {
      200: { description: "The event stream", contentType: "text/event-stream" },
      ...errors(400, 401, 503),
    },
    handler({ server, request }) {
      return eventsRoute(server.runtime, request, { signal: server.signal });
    },
  },
];

/**
 * The run `id`, from the records store or else from the archive (`archived`
 * is then what the archive holds of it): a 400 for an `id` that is not a run
 * id, a 404 for an unknown one.
 */
async function runOr404(
  server: ServerState,
  id: string,
): Promise<{ run: RunRecord; archived: ArchivedRun | null }> {
  checkRunId(id);
  const records = await server.runtime.records();
  let run: RunRecord | null;
  try {
    run = await records.getRun(id);
  } catch (err) {
    if (err instanceof TypeError) throw unreadableRun(id, err);
    throw err;
  }
  if (run !== null) return { run, archived: null };
  const archived = await archivedRun(server.runtime, id);
  if (archived === null) throw notFound(`No run ${id}`);
  return { run: archived.run, archived };
}

/**
 * `{ onFailure }`: the config's `runs.onFailure` flow that was started about
 * run `id`, if one was (its marker in the records store, or in the archive
 * for an archived run), else `{}`.
 */
async function onFailureMark(
  server: ServerState,
  id: string,
  archived: ArchivedRun | null,
): Promise<{ onFailure?: OnFailureMarker }> {
  if (archived !== null) {
    return archived.onFailure === undefined ? {} : { onFailure: archived.onFailure };
  }
  const marker = await (await server.runtime.records()).onFailureMarker(id);
  return marker === null ? {} : { onFailure: marker };
}

/**
 * `{ resumedBy }`: the run that resumes run `id` (its resume mark in the
 * records store), else `{}` (an archived run: the archive keeps no mark).
 */
async function resumedByMark(
  server: ServerState,
  id: string,
  archived: ArchivedRun | null,
): Promise<{ resumedBy?: string }> {
  if (archived !== null) return {};
  const by = (await (await server.runtime.records()).resumeMarker(id))?.marker.runId;
  return by === undefined ? {} : { resumedBy: by };
}

/**
 * A running run's `waiting`: the `wait` nodes waiting for a signal now in it
 * and in its running sub-runs (`Records.waitingNodes`); nothing for any other run.
 */
async function waitingMark(
  server: ServerState,
  run: RunRecord,
  archived: ArchivedRun | null,
): Promise<{ waiting?: Awaited<ReturnType<Records["waitingNodes"]>> }> {
  if (archived !== null || run.status !== "running") return {};
  return { waiting: await (await server.runtime.records()).waitingNodes(run.id) };
}

/**
 * `leaseLapsedAt` of a queued run recorded running whose worker's claim lapsed (the worker
 * is gone; the next worker that polls takes the run back): when it lapsed.
 */
function leaseLapsedMark(
  run: RunRecord,
  archived: ArchivedRun | null,
  now: number,
): { leaseLapsedAt?: number } {
  const at = archived === null ? claimLapsedAt(run, now) : undefined;
  return at === undefined ? {} : { leaseLapsedAt: at };
}

/** A 500 for a run that is recorded but whose record this version cannot read. */
function unreadableRun(id: string, err: unknown): HttpError {
  return new HttpError(
    "internal",
    `Run ${id} is recorded but cannot be read: ${messageOf(err)}. ` +
      `Its stored record: \`flowstate state get flowstate/runs/${id}\``,
  );
}
