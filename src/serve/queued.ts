/**
 * Runs started over HTTP go through the run queue: `POST /api/flows/{flow}/runs`
 * and webhooks enqueue, and a queue worker (the server's own, the daemon's,
 * or `flowstate worker` processes anywhere on the same records store) runs
 * them. `?wait=true` waits for the run's end by reading its record, so it
 * works whichever process runs it.
 *
 * @module
 */
import type { Runtime } from "../runtime.ts";
import type { EnqueueOptions, EnqueueResult } from "../queue/enqueue.ts";
import type { Records } from "../records/records.ts";
import type { RunRecord, RunStatus } from "../records/types.ts";
import { HttpError } from "./http.ts";

/** The longest dedupe key an HTTP client may give (`Idempotency-Key` or `key`). */
export const MAX_HTTP_KEY = 200;

/** First and longest wait between two reads of a waited-for run's record, in ms. */
const POLL_FIRST_MS = 20;
const POLL_MAX_MS = 250;

/**
 * The dedupe key of a request: its body's `key`, else its `Idempotency-Key`
 * header, scoped to the flow (`http:<flow>:<key>`) so that two flows' keys
 * never collide with each other or with keys enqueued by programs.
 */
export function httpDedupeKey(
  flowId: string,
  request: Request,
  bodyKey: string | undefined,
): string | undefined {
  const given = bodyKey ?? request.headers.get("idempotency-key") ?? undefined;
  if (given === undefined) return undefined;
  const key = given.trim();
  if (key === "" || key.length > MAX_HTTP_KEY) {
    throw new HttpError(
      "bad_request",
      `The dedupe key (body "key" or the Idempotency-Key header) must be 1 to ${MAX_HTTP_KEY} characters`,
    );
  }
  return `http:${flowId}:${key}`;
}

/** What {@linkcode enqueueOverHttp} answers. */
export interface QueuedAnswer extends EnqueueResult {
  /** The run's status now: `queued`, or for an existing run (dedupe key) its own. */
  status: RunStatus;
  /** With `wait`: the run's record once it ended. */
  record?: RunRecord;
}

/**
 * Enqueue a run of `file` and, with `wait`, wait until it ends (it may run in
 * any process). Bad options (a delay that does not parse, a priority out of
 * range) are answered 400; the flow's own problems are thrown as they are
 * (the caller turns them into 400 answers).
 */
export async function enqueueOverHttp(
  runtime: Runtime,
  file: string,
  options: EnqueueOptions,
  wait: { signal: AbortSignal } | undefined,
): Promise<QueuedAnswer> {
  if (wait?.signal.aborted) {
    throw new HttpError("internal", "Cannot start a run: the server is stopping", {}, 503);
  }
  let result: EnqueueResult;
  try {
    result = await runtime.enqueue(file, options);
  } catch (err) {
    // The body's types were checked; what is left are values out of range or unparsable.
    if (err instanceof RangeError || err instanceof TypeError) {
      throw new HttpError("bad_request", err.message);
    }
    throw err;
  }
  const records = await runtime.records();
  if (wait !== undefined) {
    const record = await waitForEnd(records, result.runId, wait.signal);
    return { ...result, status: record.status, record };
  }
  const status = result.existing
    ? (await records.getRun(result.runId))?.status ?? "queued"
    : "queued";
  return { ...result, status };
}

/**
 * Resolve a run's record once it is neither `queued` nor `running` (read
 * from the records store, so the run may be anyone's); rejects with a 503
 * when `signal` aborts first (the server stops or the client went away).
 */
export async function waitForEnd(
  records: Records,
  runId: string,
  signal: AbortSignal,
): Promise<RunRecord> {
  let pause = POLL_FIRST_MS;
  for (;;) {
    const run = await records.getRun(runId);
    if (run === null) throw new HttpError("not_found", `The run ${runId} was deleted`);
    if (run.status !== "queued" && run.status !== "running") return run;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, pause);
      signal.addEventListener("abort", done, { once: true });
      function done() {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      }
    });
    if (signal.aborted) {
      throw new HttpError(
        "internal",
        `Stopped waiting for run ${runId}: the server is stopping (the run stays in the queue; GET /api/runs/${runId})`,
        {},
        503,
      );
    }
    pause = Math.min(POLL_MAX_MS, pause * 2);
  }
}
