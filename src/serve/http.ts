/**
 * The HTTP vocabulary of `flowstate serve`: JSON responses, JSON errors
 * (`{ error: { code, message } }` with the matching status), and reading a
 * JSON request body within a size limit and a time limit.
 *
 * @module
 */

import { parseJson } from "../_json.ts";
import { messageOf, StoreClosedError, StoreUnavailableError } from "../errors.ts";
import { redactUrl } from "../plugin_define.ts";

/** The `code` of a JSON error (the contract's fixed set: {@linkcode ERROR_CODES}). */
export type ErrorCode = keyof typeof STATUS;

const STATUS = {
  not_found: 404,
  bad_request: 400,
  conflict: 409,
  unauthorized: 401,
  forbidden: 403,
  too_large: 413,
  unsupported_media_type: 415,
  precondition_required: 428,
  internal: 500,
  store_unavailable: 503,
  runtime_closed: 503,
} as const;

/** Every {@linkcode ErrorCode}, as the OpenAPI document lists them. */
export const ERROR_CODES = Object.keys(STATUS) as [ErrorCode, ...ErrorCode[]];

/** A request that cannot be served: turned into a JSON error response by the server. */
export class HttpError extends Error {
  /** The error's code. */
  readonly code: ErrorCode;
  /** The HTTP status. */
  readonly status: number;
  /** More fields of the error body (a conflict's `current` entry). */
  readonly extra: Record<string, unknown>;

  /**
   * An error with `code` and `message`, and `extra` fields beside `error` in
   * the body; `status` overrides the code's own (408 and 405 are
   * `bad_request` errors with their own status).
   */
  constructor(
    code: ErrorCode,
    message: string,
    extra: Record<string, unknown> = {},
    status?: number,
  ) {
    super(message);
    this.name = "HttpError";
    this.code = code;
    this.status = status ?? STATUS[code];
    this.extra = extra;
  }
}

/** The content type of every JSON response. */
export const JSON_TYPE = "application/json; charset=utf-8";

/** A JSON response: `value` serialized, with the JSON content type. */
export function json(value: unknown, status = 200, headers: HeadersInit = {}): Response {
  const h = new Headers(headers);
  h.set("content-type", JSON_TYPE);
  return new Response(JSON.stringify(value), { status, headers: h });
}

/** A location or message with any URL's password and secret parameters removed. */
export function redactText(text: string): string {
  // A quote may be in a password (`postgres://app:it's@db/x`): the URL runs on past it, and a
  // quote closing a quoted URL (`'postgres://…'`) is given back after its redacted form.
  return text.replace(/[a-z][a-z0-9+.-]*:\/\/[^\s"<>]+/gi, (found) => {
    const url = found.replace(/['`]+$/, "");
    return redactUrl(url) + found.slice(url.length);
  });
}

/** What a client is told to wait before it tries again a request a store could not serve, in s. */
export const STORE_RETRY_AFTER_S = 5;

/**
 * The 503 `store_unavailable` error of a request that failed because a
 * store cannot be reached (a `StoreUnavailableError`, or an error it
 * caused), naming the store (`store` beside `error` in the body), its
 * message scrubbed of passwords; else `undefined`.
 */
export function storeUnavailable(err: unknown): HttpError | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 10; e = e.cause, depth++) {
    if (!(e instanceof StoreUnavailableError)) continue;
    return new HttpError(
      "store_unavailable",
      `Store "${e.store}" is unavailable, try again later: ${redactText(messageOf(err))}`,
      { store: e.store },
    );
  }
  return undefined;
}

/**
 * The 503 `runtime_closed` error of a request that failed because the
 * runtime the server serves was closed (a `StoreClosedError`, or an error it
 * caused): nothing it asks can be served any more; else `undefined`.
 */
export function runtimeClosed(err: unknown): HttpError | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 10; e = e.cause, depth++) {
    if (!(e instanceof StoreClosedError)) continue;
    return new HttpError("runtime_closed", `${RUNTIME_CLOSED}: ${redactText(messageOf(err))}`);
  }
  return undefined;
}

/** What a `runtime_closed` error and `/health` say. */
export const RUNTIME_CLOSED =
  "The runtime this server serves is closed: start the server again over an open runtime";

/** The JSON response of an {@linkcode HttpError}. */
export function errorResponse(err: HttpError): Response {
  const headers: HeadersInit = err.status === 408
    ? { connection: "close" }
    : err.code === "store_unavailable"
    ? { "retry-after": String(STORE_RETRY_AFTER_S) }
    : {};
  return json(
    { error: { code: err.code, message: err.message }, ...err.extra },
    err.status,
    headers,
  );
}

/** How long a client may take to send a request body, in ms. */
export const BODY_TIMEOUT_MS = 10_000;

/**
 * Read `request`'s body as JSON: its media type must be `application/json`
 * (415), it must be at most `maxBytes` long, counted while reading (413),
 * and arrive within `timeoutMs` (408). An empty body is `undefined`.
 */
export async function readJson(
  request: Request,
  maxBytes: number,
  timeoutMs: number = BODY_TIMEOUT_MS,
): Promise<unknown> {
  const type = (request.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  if (type !== "application/json") {
    throw new HttpError(
      "unsupported_media_type",
      `Cannot read the request body: its Content-Type is ${
        type === "" ? "missing" : `"${type}"`
      }; send JSON with "Content-Type: application/json"`,
    );
  }
  const bytes = await readBytes(request, maxBytes, timeoutMs);
  if (bytes.length === 0) return undefined;
  let text: string;
  try {
    // Fatal: a byte that is not UTF-8 would otherwise become U+FFFD, stored in its place.
    text = UTF8.decode(bytes);
  } catch {
    const at = firstBadByte(bytes);
    throw new HttpError(
      "bad_request",
      `Cannot read the request body: it is not UTF-8 (byte ${at + 1} is 0x${
        bytes[at].toString(16).padStart(2, "0")
      }); JSON is UTF-8: convert the text (iconv -f latin1 -t utf-8) or escape the character (\\u00e9)`,
    );
  }
  try {
    return parseJson(text);
  } catch (err) {
    throw new HttpError(
      "bad_request",
      `Cannot read the request body: it is not valid JSON (${(err as Error).message})`,
    );
  }
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The index of the first byte of `bytes` that is not UTF-8: the lead byte of the sequence that
 * breaks (`é` in Latin-1, 0xe9, breaks at the byte after it).
 */
function firstBadByte(bytes: Uint8Array): number {
  let lo = 0;
  let hi = bytes.length;
  // The longest prefix that decodes (cut at a character boundary) ends before it.
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, mid), { stream: true });
      lo = mid;
    } catch {
      hi = mid - 1;
    }
  }
  const at = Math.min(lo, bytes.length - 1);
  // The character before it, if it is cut short by it, is where it breaks.
  let lead = at - 1;
  while (lead >= 0 && at - lead < 4 && (bytes[lead] & 0xc0) === 0x80) lead--;
  if (lead < 0) return at;
  const b = bytes[lead];
  const length = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
  return length > at - lead ? lead : at;
}

function tooLarge(maxBytes: number): HttpError {
  return new HttpError(
    "too_large",
    `Cannot read the request body: it is larger than ${maxBytes} bytes (the server's maxBodyBytes)`,
  );
}

/**
 * Read `request`'s body as bytes: at most `maxBytes`, counted while reading
 * (413), arriving within `timeoutMs` (408).
 */
export async function readBytes(
  request: Request,
  maxBytes: number,
  timeoutMs: number = BODY_TIMEOUT_MS,
): Promise<Uint8Array> {
  const declared = Number(request.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(maxBytes);
  if (request.body === null) return new Uint8Array();
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new HttpError(
            "bad_request",
            `Cannot read the request body: it did not arrive within ${timeoutMs / 1000} s`,
            {},
            408,
          ),
        ),
      timeoutMs,
    );
  });
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), timedOut]);
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) throw tooLarge(maxBytes);
      chunks.push(value);
    }
  } catch (err) {
    reader.cancel().catch(() => {});
    throw err;
  } finally {
    clearTimeout(timer);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return bytes;
}
