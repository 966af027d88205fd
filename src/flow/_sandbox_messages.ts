/**
 * The messages a sandboxed node's Worker sends its host, checked before the
 * host acts on one. The Worker runs code the host does not trust, so a
 * message may be anything: not a string, not JSON, an unknown `op`, fields
 * missing or of the wrong type. {@linkcode readWorkerMessage} never throws;
 * it returns either a message of a known shape or what is wrong with it.
 *
 * | op          | fields                                                   |
 * | ----------- | -------------------------------------------------------- |
 * | `ready`     | (none): the node module loaded                           |
 * | `loadError` | `error: { name, message }`: it did not                   |
 * | `done`      | `id`, and `value` or `error: { name, message, issues? }` |
 * | `log`       | `run`, `message` (string, cut: see `logLine`), `level`   |
 * | `mask`      | `run`, `value` (string): `ctx.mask(value)`               |
 * | `call`      | `id`, `run`, `method` (string), `args` (array), `scope`? |
 * | `heap`      | `heapUsed` (bytes): the answer to the host's `ping`      |
 * | `stray`     | `quote`: the node posted on its Worker's own channel     |
 * | `crash`     | `message`: an error the node left uncaught (Deno's words) |
 *
 * @module
 */
import { parseJson } from "../_json.ts";
import { LOG_LINE_BYTES, MASK_MAX_LENGTH } from "./_context_args.ts";

/** An error as it crosses the Worker boundary. */
export interface ErrorShape {
  name: string;
  message: string;
  /** Options the node's schema refused: each field's path under `with`, and the problem. */
  issues?: { path: string[]; message: string }[];
}

/** A message from a node's Worker whose shape was checked. */
export type WorkerMessage =
  | { op: "ready" }
  | { op: "loadError"; error: ErrorShape }
  | { op: "done"; id: number; value?: unknown; error?: ErrorShape }
  | { op: "log"; run: number; message: string; level: string }
  | { op: "mask"; run: number; value: string }
  | { op: "call"; id: number; run: number; scope?: string; method: string; args: { v?: unknown }[] }
  | { op: "heap"; heapUsed: number }
  | { op: "stray"; quote: string }
  | { op: "crash"; message: string };

/**
 * The host's heap check, answered `{"op":"heap","heapUsed":n}`. Here, not in `sandbox_worker.ts`
 * (the Worker's side), so that the host (`sandbox.ts`) does not load the Worker's module.
 */
export const PING = '{"op":"ping"}';

/** The start of the error a Worker sending a message of no known shape is stopped with. */
export const NOT_UNDERSTOOD = "the node's Worker sent a message Flowstate does not understand";

const isId = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isIssue = (v: unknown): boolean =>
  typeof v === "object" && v !== null && typeof (v as { message?: unknown }).message === "string" &&
  Array.isArray((v as { path?: unknown }).path) &&
  (v as { path: unknown[] }).path.every((p) => typeof p === "string");
const isError = (v: unknown): v is ErrorShape =>
  typeof v === "object" && v !== null && typeof (v as ErrorShape).name === "string" &&
  typeof (v as ErrorShape).message === "string" &&
  ((v as ErrorShape).issues === undefined ||
    (Array.isArray((v as ErrorShape).issues) && (v as ErrorShape).issues!.every(isIssue)));
const isArgs = (v: unknown): v is { v?: unknown }[] =>
  Array.isArray(v) && v.every((a) => typeof a === "object" && a !== null && !Array.isArray(a));

/** An options schema that passes every value through (checked elsewhere). */
export const PASS_THROUGH = {
  "~standard": {
    version: 1,
    vendor: "flowstate-sandbox",
    validate: (value: unknown): { value: unknown } => ({ value }),
  },
} as const;

/** At most this much of a message is quoted in the error. */
const QUOTED = 120;

/** `data` as it is quoted in an error (shortened). */
export function quoteMessage(data: unknown): string {
  let text: string;
  // Only as much of a string as is quoted: it may be hundreds of MiB.
  if (typeof data === "string") {
    text = JSON.stringify(data.length > QUOTED ? data.slice(0, QUOTED + 1) : data);
  } else {
    try {
      text = `${typeof data} ${JSON.stringify(data) ?? String(data)}`;
    } catch {
      text = typeof data;
    }
  }
  return text.length > QUOTED ? `${text.slice(0, QUOTED)}…` : text;
}

/**
 * The message `data` holds, or `{ problem }`: what is wrong with it, worded
 * for the error that stops its Worker (after {@linkcode NOT_UNDERSTOOD}).
 */
export function readWorkerMessage(data: unknown): WorkerMessage | { problem: string } {
  if (typeof data !== "string") return { problem: `not a string: ${quoteMessage(data)}` };
  let msg: Record<string, unknown>;
  try {
    msg = parseJson(data);
  } catch {
    return { problem: `not JSON: ${quoteMessage(data)}` };
  }
  if (typeof msg !== "object" || msg === null || Array.isArray(msg)) {
    return { problem: `not an object: ${quoteMessage(data)}` };
  }
  const ok = (() => {
    switch (msg.op) {
      case "ready":
        return true;
      case "loadError":
        return isError(msg.error);
      case "done":
        return isId(msg.id) && (msg.error === undefined || isError(msg.error));
      case "log":
        // ctx.log in the Worker cuts a line to LOG_LINE_BYTES (UTF-8, so as many characters at
        // most) before it sends it: a longer one did not come from it.
        return isId(msg.run) && typeof msg.message === "string" &&
          msg.message.length <= LOG_LINE_BYTES && typeof msg.level === "string";
      case "mask":
        // ctx.mask in the Worker refuses a longer value: a longer one did not come from it.
        return isId(msg.run) && typeof msg.value === "string" &&
          msg.value.length <= MASK_MAX_LENGTH;
      case "call":
        return isId(msg.id) && isId(msg.run) && typeof msg.method === "string" &&
          isArgs(msg.args) && (msg.scope === undefined || typeof msg.scope === "string");
      case "heap":
        return typeof msg.heapUsed === "number" && Number.isFinite(msg.heapUsed);
      case "stray":
        // quoteMessage made it in the Worker: a longer one did not come from it.
        return typeof msg.quote === "string" && msg.quote.length <= QUOTED + 1;
      case "crash":
        return typeof msg.message === "string";
      default:
        return false;
    }
  })();
  return ok ? msg as WorkerMessage : { problem: quoteMessage(data) };
}
