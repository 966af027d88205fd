/**
 * The shapes of the JSON the API sends and takes, as zod schemas: the route
 * table points at them, the OpenAPI document is generated from them, and
 * the tests check real responses against them.
 *
 * @module
 */
import { z } from "zod";
import { ERROR_CODES } from "./http.ts";

/** `{ error: { code, message } }`, `code` one of the fixed set. */
export const ErrorBody = z.object({
  error: z.object({ code: z.enum(ERROR_CODES), message: z.string() }),
});

/**
 * A 503: `store_unavailable` names the store that cannot be reached in
 * `store`; `runtime_closed` says the runtime the server serves was closed; a
 * request that came as the server stops is an `internal` one.
 */
export const StoreUnavailableBody = ErrorBody.extend({ store: z.string().optional() });

/** A Flowstate key: an array of strings. */
export const KeySchema = z.array(z.string());

/** A stored entry. */
export const EntrySchema = z.object({
  key: KeySchema,
  value: z.unknown(),
  version: z.string(),
  expiresAt: z.number().nullable(),
});

/** One change of a store's change feed. */
export const ChangeSchema = z.object({
  seq: z.number(),
  at: z.number(),
  key: KeySchema,
  op: z.enum(["set", "delete"]),
  value: z.unknown().optional(),
  version: z.string().nullable(),
  previousVersion: z.string().nullable(),
  expiresAt: z.number().nullable(),
  by: z.object({
    runId: z.string().optional(),
    flowId: z.string().optional(),
    nodeId: z.string().optional(),
    job: z.string().optional(),
    actor: z.string().optional(),
  }),
});

/** A page of a store's change feed. */
export const ChangesPageSchema = z.object({
  changes: ChangeSchema.array(),
  /** The feed's last sequence number when the page was read. */
  lastSeq: z.number(),
  /** Pass as `since` for the next page (present when more may follow). */
  next: z.number().optional(),
});

/** What a key held before a change of `GET /api/runs/{id}/changes`. */
export const BeforeSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("value"), value: z.unknown(), version: z.string() })
    .describe("the value the change replaced"),
  z.object({
    kind: z.literal("truncated"),
    version: z.string(),
    size: z.number().describe("its size as JSON, in bytes (over 64 KiB: left out)"),
  }),
  z.object({ kind: z.literal("absent") }).describe("the key did not exist (or had expired)"),
  z.object({ kind: z.literal("unknown"), reason: z.string() })
    .describe("the feed no longer holds it (trimmed, or written before the feed started)"),
]);

/** One change a run made, with the store it is in and what the key held before. */
export const RunChangeSchema = ChangeSchema.extend({
  store: z.string(),
  /** Set when the new value is over 64 KiB as JSON: `value` is left out. */
  truncated: z.literal(true).optional(),
  /** The new value's size as JSON, in bytes, when `truncated`. */
  size: z.number().optional(),
  before: BeforeSchema,
});

/** How a store took part in `GET /api/runs/{id}/changes`. */
export const RunChangesStoreSchema = z.object({
  name: z.string(),
  /** Whether the store keeps a change feed (false: only the run's write sets name its keys). */
  feed: z.boolean(),
  /** Why there are no changes from this store: it keeps no feed. */
  reason: z.string().optional(),
  /** Why there are no changes from this store: it cannot be opened or read. */
  error: z.string().optional(),
  firstSeq: z.number().optional(),
  lastSeq: z.number().optional(),
});

/** A page of the changes a run made (`GET /api/runs/{id}/changes`). */
export const RunChangesPageSchema = z.object({
  runId: z.string(),
  /** The store each scope maps to (a write set entry's store is `store ?? scopes[scope]`). */
  scopes: z.object({ node: z.string(), flow: z.string(), global: z.string() }),
  stores: RunChangesStoreSchema.array(),
  changes: RunChangeSchema.array(),
  /** Feed entries read for this page (the run's and others'). */
  scanned: z.number(),
  /** Pass as `cursor` for the next page (present when more may follow). */
  cursor: z.string().optional(),
});

/** An entry whose value is too large to list (fetch it with `GET …/entry`). */
export const TruncatedEntrySchema = z.object({
  key: KeySchema,
  version: z.string(),
  expiresAt: z.number().nullable(),
  truncated: z.literal(true),
  size: z.number(),
});

/** A conflict of a compare-and-set: the entry as it is now. */
export const ConflictBody = ErrorBody.extend({ current: EntrySchema.nullable() });

/** One store of `GET /api/stores`. */
export const StoreInfoSchema = z.object({
  name: z.string(),
  plugin: z.string(),
  location: z.string().nullable(),
  entries: z.number().nullable(),
  sizeBytes: z.number().nullable(),
  ok: z.boolean(),
  error: z.string().optional(),
  records: z.boolean().describe(
    "whether it is the records store: the keys under flowstate (runs, flow versions, metrics, " +
      "leases) are Flowstate's, and writing them by hand is refused (403)",
  ),
});

/** A run's status. */
export const RunStatusSchema = z.enum([
  "queued",
  "running",
  "succeeded",
  "failed",
  "cancelled",
  "timed-out",
]);

const RunError = z.object({ node: z.string().optional(), message: z.string() }).nullable();

/** What `leaseLapsedAt` (of a run summary and a run's answers) means. */
const LEASE_LAPSED =
  "present on a queued run recorded running whose worker wrote no heartbeat within its " +
  "claim's lease (ms since the epoch: its last heartbeat, or its claim, plus the lease): " +
  "that worker is gone (killed, stopped while its store was down, or cut off from it), " +
  "and the next worker that polls the queue takes the run back and runs it again";

/** A run summary (an index entry; `leaseLapsedAt` is computed when it is served). */
export const RunSummarySchema = z.looseObject({
  id: z.string(),
  flowId: z.string(),
  flowVersion: z.string(),
  status: RunStatusSchema,
  startedAt: z.number(),
  endedAt: z.number().nullable(),
  durationMs: z.number().nullable(),
  error: RunError,
  parentRunId: z.string().optional(),
  resumeOf: z.string().optional()
    .describe("a run started by resuming another (POST /api/runs/{id}/resume): that run's id"),
  enqueuedAt: z.number().optional().describe(
    "present on a run that went through the queue: when it was enqueued (its startedAt, its " +
      "id's time); with parentRunId, a queue node of that run enqueued it (not a sub-flow: " +
      "nothing waits for it). Absent in summaries written by earlier versions",
  ),
  claimedAt: z.number().optional().describe(
    "for a run that went through the queue: when its current or last attempt was claimed, " +
      "that is when it really started (durationMs is that attempt's); absent before its first claim",
  ),
  leaseLapsedAt: z.number().optional().describe(
    LEASE_LAPSED,
  ),
  archived: z.literal(true).optional()
    .describe("present on an archived run: the archive job moved it out of the records store"),
  archive: z.string().optional()
    .describe("an archived run's archive file (under <home>/archive/), read-only"),
});

/** What marks an archived run's answers: `archived` and its archive file. */
const ArchivedMark = {
  archived: z.literal(true).optional()
    .describe("present when the run is archived (read from <home>/archive/, read-only)"),
  archive: z.string().optional().describe("the archived run's archive file"),
};

/** A full run record. */
export const RunRecordSchema = RunSummarySchema.omit({
  enqueuedAt: true,
  claimedAt: true,
  leaseLapsedAt: true,
}).extend({
  inputs: z.record(z.string(), z.unknown()),
  outputs: z.record(z.string(), z.unknown()).nullable(),
  nodes: z.record(
    z.string(),
    z.looseObject({
      status: z.string(),
      reused: z.string().optional().describe(
        "a node a resumed run did not run: the id of the run whose recorded output it reuses",
      ),
      subRuns: z.array(z.string().nullable()).optional().describe(
        "a node that ran sub-flows (not one with forEach): the sub-runs its last attempt started, one a call (null: its sub-run did not start)",
      ),
      items: z.looseObject({
        count: z.number(),
        succeeded: z.number(),
        failed: z.number(),
        failedIndex: z.number().optional(),
      }).optional().describe(
        "a node with forEach: how many items its list held, succeeded and failed, and the first failed item's index",
      ),
    }),
  ),
  scheduledAt: z.number().optional().describe(
    "a run a schedule started: its tick's nominal time (ms since the epoch; `run.scheduledAt` in templates)",
  ),
  schedule: z.string().optional().describe(
    "a run a schedule started: the schedule's id (`flow:<flow>` or `flow:<flow>#<entry>`)",
  ),
  onFailureOf: z.string().optional().describe(
    "on a run of the config's `runs.onFailure` flow: the id of the run it reports on",
  ),
  mocked: z.literal(true).optional().describe(
    "present on a run made with a test's mocks (of its nodes or its sub-flows' nodes): its " +
      "outputs are not real, and it cannot be resumed",
  ),
  inputsMasked: z.literal(true).optional().describe(
    "present when a secret's value in `inputs` was masked (`***`): they are not what the run " +
      "ran with, and the run cannot be resumed",
  ),
  owner: z.looseObject({
    pid: z.number().int(),
    host: z.string().optional(),
    lock: z.string().optional().describe(
      "the file its process holds locked while it lives (under the home's owners/)",
    ),
    lockIno: z.number().int().optional().describe(
      "the inode of that file: another file at its path tells nothing of the process",
    ),
    boot: z.string().optional(),
    pidNs: z.string().optional(),
    startTicks: z.number().optional(),
  }).optional().describe(
    "the process that recorded the run's start (not for a run claimed from the queue): on " +
      "the same host, a dead one makes the run abandoned at once, a live one is never " +
      "abandoned for a late heartbeat. Absent in records of versions before 0.8",
  ),
  queue: z.looseObject({
    runAt: z.number().describe("it does not start before this time (ms since the epoch)"),
    priority: z.number(),
    attempt: z.number().int().describe("the current (or last) attempt; 0 before the first claim"),
    maxAttempts: z.number().int(),
    limit: z.looseObject({
      concurrency: z.number().int().optional(),
      rate: z.object({ limit: z.number().int(), perMs: z.number() }).optional(),
      partition: z.string(),
    }).optional().describe("the flow's `queue:` limits for this run, per partition"),
    waiting: z.enum(["rate", "slot"]).optional().describe(
      "why a queued run is not starting: `rate`, its partition's rate window is full (due at " +
        "`runAt`, when the window has room); `slot`, its partition is at its `concurrency` " +
        "limit (it starts when one of the partition's runs ends). Absent once claimed",
    ),
  }).optional().describe("present on a run that was enqueued: its place in the queue"),
});

/**
 * One recorded event of a run (node events may carry `reads`/`writes` key lists; those of a
 * node with forEach carry `items` on `node.start` and `node.end`, and `item` on the others; such
 * a node running records `node.progress`, `{ count, succeeded, failed, running, failedItems? }`,
 * at most once a second; a node that starts a sub-run records `node.subrun`, `{ run, call }`).
 */
export const RunEventSchema = z.looseObject({ at: z.number(), type: z.string() });

/** A page of run summaries. */
export const RunPageSchema = z.object({
  runs: z.array(RunSummarySchema),
  cursor: z.string().optional(),
});

/** The config's `runs.onFailure` flow started about a run (`flowstate runs show`'s `onFailure:`). */
export const OnFailureMarkerSchema = z.object({
  flow: z.string().describe("the `runs.onFailure` flow, as the config names it"),
  runId: z.string().optional().describe(
    "its run, once started (absent: the process that claimed it stopped before starting it)",
  ),
  host: z.string().describe("the host of the process that ran it"),
  pid: z.number().int().describe("that process's id"),
  at: z.number().describe("when that process claimed it (ms since the epoch)"),
});

/** A run with its events. */
export const RunDetailSchema = z.object({
  run: RunRecordSchema,
  events: z.array(RunEventSchema),
  /** How many events the run has in all: the `after` of a later request for the ones added since. */
  eventCount: z.number().int().nonnegative(),
  onFailure: OnFailureMarkerSchema.optional().describe(
    "present when the config's `runs.onFailure` flow was started about this run (it ended " +
      "failed, timed-out, abandoned or as `on:` lists): which flow, and its run",
  ),
  resumedBy: z.string().optional().describe(
    "present when a run resumes this one (`POST /api/runs/{id}/resume`): its id; this run is " +
      "not resumed again (resume that one)",
  ),
  waiting: z.array(z.object({
    runId: z.string(),
    node: z.string(),
    signal: z.string(),
    message: z.string().optional(),
    since: z.number(),
  })).optional().describe(
    "present while the run is running: the `wait` nodes waiting for a signal now, in the run " +
      "and in its running sub-runs (`runId` says which; a signal sent to this run reaches " +
      "them all), each with its signal, its `message` and since when it waits",
  ),
  leaseLapsedAt: z.number().optional().describe(LEASE_LAPSED),
  ...ArchivedMark,
});

/** A run with a page of its nodes (`GET /api/runs/{id}/nodes`). */
export const RunNodesPageSchema = RunDetailSchema.extend({
  nodeIds: z.array(z.string()),
  offset: z.number(),
  total: z.number(),
  next: z.number().optional(),
});

/** A flow of `GET /api/flows`. */
export const FlowInfoSchema = z.object({
  id: z.string(),
  head: z.string().nullable(),
  /** Versions ever created, those retention deleted included. */
  versions: z.number(),
  /** Versions the retention job deleted (unused, older than its maxAge). */
  prunedVersions: z.number(),
  lastRun: RunSummarySchema.nullable(),
  archived: z.literal(true).optional()
    .describe(
      "present when the flow is known only from the archive (<home>/archive/): the records " +
        "store holds nothing of it; `head` is then the version its newest archived run ran, " +
        "`versions` the versions its archived runs ran",
    ),
  file: z.string().optional(),
  schedule: z.object({ cron: z.string(), timezone: z.string(), next: z.number().nullable() })
    .optional(),
});

/** A flow version. */
export const VersionSchema = z.object({
  hash: z.string(),
  parent: z.string().nullable(),
  seq: z.number(),
  createdAt: z.number(),
  source: z.string().optional(),
  archived: z.literal(true).optional()
    .describe("present when the version is read from the archive (the records store lost it)"),
  archive: z.string().optional()
    .describe("the archive file whose runs ran it (its versions file holds it)"),
});

/** A flow's graph (`src/flow/graph.ts`): its nodes and the edges between them. */
export const FlowGraphSchema = z.object({
  nodes: z.object({
    id: z.string(),
    type: z.string(),
    when: z.enum(["on_success", "on_failure", "always"]),
    if: z.string().nullable().describe("the node's if: template"),
    forEach: z.string().nullable().describe("its forEach list as text (a template, `3 items`)"),
    subFlow: z.string().nullable().describe("for type: flow, the sub-flow's file (`inline: <id>`)"),
  }).array(),
  edges: z.object({
    from: z.string(),
    to: z.string(),
    kind: z.enum(["needs", "end"]).describe(
      "`needs`: to needs from; `end`: to has no needs and when: on_failure/always, and waits " +
        "for the end of the rest of the run (from is one of its last nodes)",
    ),
  }).array(),
});

/** `GET /api/flows/{flow}/graph`: the graph, of the config's file or of the newest version. */
export const FlowGraphAnswerSchema = z.object({
  from: z.enum(["file", "version"])
    .describe("`file`: the flow's file under the config's flows; `version`: its newest version"),
  file: z.string().optional().describe("the file, relative to the config's folder"),
  hash: z.string().optional().describe("the version's hash"),
  graph: FlowGraphSchema,
  archived: z.literal(true).optional()
    .describe("present when the version is read from the archive (the records store lost it)"),
  archive: z.string().optional().describe("the archive file whose runs ran it"),
});

/** A flow version with its source, definition and graph (from the archive: marked `archived`). */
export const VersionDetailSchema = VersionSchema.extend({
  definition: z.unknown(),
  graph: FlowGraphSchema.describe("the definition's nodes and edges, for drawing"),
});

/** The flow version a run ran, with its definition (`GET /api/runs/{id}/definition`). */
export const RunDefinitionSchema = VersionDetailSchema.extend({
  runId: z.string(),
  flowId: z.string(),
  from: z.enum(["records", "archive"])
    .describe("where the version was read: the records store, or the archive beside the run"),
  ...ArchivedMark,
});

/** `{ runId }`. */
export const RunIdSchema = z.object({ runId: z.string() });

/** The body of `POST /api/runs/{id}/resume`. */
export const ResumeRunBody = z.strictObject({
  from: z.string().min(1).optional().describe(
    "run this node and every node that needs it again, even if they succeeded (required for a run that succeeded)",
  ),
  again: z.boolean().optional().describe(
    "resume the run although an earlier resume of it ended (refused by default: resume that run instead)",
  ),
});

/** The answer of `GET /api/runs/{id}/resume` (see `ResumePreview`). */
export const ResumePreviewSchema = z.object({
  runId: z.string(),
  flowId: z.string(),
  from: z.string().optional(),
  sameVersion: z.boolean().describe("the flow now is the very version the run ran"),
  nodes: z.array(z.object({
    node: z.string(),
    reused: z.boolean().describe("true: its recorded output is taken; false: it runs again"),
    reason: z.enum([
      "succeeded",
      "from",
      "not-run",
      "status",
      "output",
      "masked",
      "mocked",
      "handler",
      "definition",
      "code",
      "needs",
    ]),
    message: z.string().describe("the reason, said for a person"),
    status: z.enum(["succeeded", "failed", "skipped", "cancelled", "timed-out"]).optional()
      .describe("its status in the run resumed, if it ran"),
    need: z.string().optional().describe("with reason needs: the node it needs that runs again"),
    subRuns: z.array(z.string()).optional().describe(
      "a node that failed running sub-flows: its sub-runs, which the resume resumes (their nodes that succeeded reused) when called with the same inputs",
    ),
  })),
});

/** The answer to a cancel. */
export const CancelSchema = z.object({ runId: z.string(), status: RunStatusSchema });

/** Body of `POST /api/runs/{id}/signals/{name}`. */
export const SignalBody = z.strictObject({
  data: z.unknown().optional()
    .describe(
      "the signal's data, any JSON value (at most 64 KiB as JSON): the wait node's output; absent: null",
    ),
});

/** The answer to a signal sent. */
export const SignalSentSchema = z.object({
  runId: z.string(),
  flowId: z.string(),
  signal: z.string(),
  waiting: z.array(z.string())
    .describe(
      "the nodes waiting for this signal when it was sent, as recorded so far (empty: it is kept for the run until a node waits)",
    ),
  expected: z.boolean().describe(
    "whether a wait node of the run's flow (or of a sub-flow written in it, or of a sub-run running now) waits for this name; false is most often a typo: the signal is kept all the same, since a custom node may take any name",
  ),
  waitSignals: z.array(z.string()).describe(
    "the names the wait nodes of the run's flow (as far as known) wait for, sorted",
  ),
  warning: z.string().optional().describe(
    "when expected is false: which names the flow's wait nodes wait for, and a close one",
  ),
});

/** A flow's metrics (`records.listMetrics`). */
export const FlowMetricsSchema = z.looseObject({
  flowId: z.string(),
  version: z.string(),
  count: z.number(),
  succeeded: z.number(),
  failed: z.number(),
  cancelled: z.number(),
  timedOut: z.number(),
  p50DurationMs: z.number().nullable(),
  p95DurationMs: z.number().nullable(),
});

const LastRun = z.object({
  id: z.string(),
  status: RunStatusSchema,
  startedAt: z.number(),
  durationMs: z.number().nullable(),
  ...ArchivedMark,
}).nullable();

/** A job of `GET /api/jobs`. */
export const JobInfoSchema = z.object({
  name: z.string(),
  description: z.string().nullable(),
  enabled: z.boolean(),
  schedule: z.string().nullable(),
  timezone: z.string(),
  next: z.number().nullable(),
  last: LastRun,
  error: z.string().nullable(),
  paths: z.record(z.string(), z.union([z.string(), z.array(z.string())])),
});

/** A schedule of `GET /api/schedules` (as `flowstate schedules ls --json`). */
export const ScheduleInfoSchema = z.object({
  id: z.string(),
  kind: z.enum(["job", "flow"]),
  cron: z.string().nullable(),
  timezone: z.string(),
  nextRun: z.number().nullable(),
  lastRun: LastRun,
  file: z.string().optional(),
  error: z.string().optional(),
  paths: z.record(z.string(), z.union([z.string(), z.array(z.string())])).optional(),
  flow: z.string().optional().describe("a flow's schedule: the flow's id"),
  entry: z.string().nullable().optional().describe(
    "a flow's schedule: its `schedule:` entry's `id` (`null`: the flow's own schedule)",
  ),
  inputs: z.record(z.string(), z.unknown()).optional().describe(
    "a flow's schedule: the inputs each of its runs gets",
  ),
});

/** A queue worker of `GET /api/workers` (as `flowstate workers --json`). */
export const WorkerInfoSchema = z.object({
  id: z.string(),
  status: z.enum(["live", "stale"]),
  host: z.string(),
  pid: z.number(),
  version: z.string(),
  startedAt: z.number(),
  heartbeatAt: z.number(),
  heartbeatMs: z.number(),
  staleAfterMs: z.number(),
  concurrency: z.number(),
  flows: z.array(z.string()).nullable(),
  leaseMs: z.number(),
  pollMs: z.number(),
  stopping: z.boolean(),
  claims: z.array(z.object({
    runId: z.string(),
    flowId: z.string(),
    attempt: z.number(),
    claimedAt: z.number(),
  })),
});

/** `GET /health`. */
export const HealthSchema = z.object({
  status: z.enum(["ok", "unavailable"]),
  /** Set when the runtime the server serves was closed (every store then says so too). */
  error: z.string().optional(),
  stores: z.record(
    z.string(),
    z.union([
      z.object({ ok: z.literal(true), plugin: z.string() }),
      z.object({ ok: z.literal(false), error: z.string() }),
    ]),
  ),
  /** The server's queue worker (the daemon's with `daemon --serve`), unless it runs none. */
  worker: z.object({
    status: z.enum(["starting", "waiting-for-store", "running", "stopping", "stopped"]),
    error: z.string().optional(),
  }).optional(),
  daemon: z.object({ ticking: z.boolean(), lastTickAt: z.number().nullable() }).optional(),
});

/** Body of `PUT …/entry` (request bodies refuse unknown fields: a typo is an error, not a default). */
export const PutEntryBody = z.strictObject({
  value: z.unknown(),
  expireIn: z.number().positive().optional(),
});

/** Body of `POST /api/flows/{flow}/runs`. */
export const StartRunBody = z.strictObject({
  input: z.record(z.string(), z.unknown()).optional(),
  delay: z.union([z.number().positive(), z.string().min(1)]).optional()
    .describe('do not start before this long from now: ms, or a duration like "10m"'),
  runAt: z.union([z.number().nonnegative(), z.iso.datetime({ offset: true })]).optional()
    .describe("do not start before this time: ms since the epoch, or an ISO date-time"),
  priority: z.number().int().optional().describe("higher starts first among due runs (default 0)"),
  key: z.string().optional()
    .describe(
      "dedupe key (or the Idempotency-Key header): while a run with it is queued or running, that run is answered",
    ),
  maxAttempts: z.number().int().min(1).optional()
    .describe("attempts in all when attempts fail (default 1)"),
  backoff: z.strictObject({
    delay: z.union([z.number().nonnegative(), z.string().min(1)])
      .describe('the wait before the first retry: ms, or a duration like "30s"'),
    factor: z.number().min(1).optional().describe(
      "each next wait is this many times longer (default 2)",
    ),
    max: z.union([z.number().nonnegative(), z.string().min(1)]).optional()
      .describe("the longest wait"),
  }).optional().describe("waits between attempts (as `flowstate enqueue --backoff`; default none)"),
});

/** The answer to starting (enqueueing) a run. */
export const QueuedRunSchema = z.object({
  runId: z.string(),
  status: RunStatusSchema,
  existing: z.boolean().describe("a run with the same dedupe key was queued or running: its id"),
});

/** Body of `POST /api/jobs/{name}/runs`. */
export const RunJobBody = z.strictObject({ options: z.record(z.string(), z.unknown()).optional() });

/** Body of `POST /api/session`. */
export const SessionBody = z.strictObject({ token: z.string() });
