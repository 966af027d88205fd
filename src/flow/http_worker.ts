/**
 * The built-in `http` node's request, as it runs in its Worker: a sandboxed
 * node module (see `sandbox.ts`) whose Worker has only the node's declared
 * `permissions: { net }`, so Deno refuses a request, or a redirect, to any
 * other host. The runner checked the options (`node_schemas.ts`) before they
 * crossed; this module sends the request, follows redirects itself (at most
 * {@linkcode MAX_REDIRECTS}, each hop a request of its own that Deno checks),
 * reads at most `maxBytes` of the response and returns
 * `{ status, headers, body }`. Every message it throws shows URLs without
 * their secrets and has the request's secret values replaced (see
 * `_http.ts`).
 *
 * @module
 */
import {
  basicCredentials,
  displayUrl,
  type HttpOptions,
  isSecretName,
  MAX_REDIRECTS,
  requestUrl,
  scrub,
  secretValues,
} from "./_http.ts";
import { PASS_THROUGH } from "./_sandbox_messages.ts";

/** What the node returns. */
export interface HttpResult {
  /** The response's status. */
  status: number;
  /** Its headers, names in lower case (repeated ones joined by `, `). */
  headers: Record<string, string>;
  /** Its body: parsed JSON, text, or `null` (none, or a `HEAD`). */
  body: unknown;
}

/** How much of an unexpected response's body its error quotes (characters). */
const QUOTED_BODY = 300;

/**
 * The headers that may follow a redirect to another origin: not those that carry credentials
 * (`Authorization`, `Cookie`, as browsers drop them, and every header the records redact:
 * `X-Api-Key`, `Private-Token`…), which would reach another host, or go over plain HTTP.
 */
function withoutCredentials(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers).filter(([name]) => !isSecretName(name) || NOT_CREDENTIALS.test(name)),
  );
}

/**
 * Headers whose name says "key" without holding a credential: an `Idempotency-Key` dropped at a
 * redirect would let a retried POST take effect twice.
 */
const NOT_CREDENTIALS = /^(x-)?idempotency-key$/i;

function isJsonType(contentType: string | null): boolean {
  if (contentType === null) return false;
  const type = contentType.split(";")[0].trim().toLowerCase();
  return type === "application/json" || type.endsWith("+json");
}

/**
 * Read at most `max` bytes of `response`'s body; `undefined` when it holds
 * more (the rest is not read).
 */
async function readAtMost(response: Response, max: number): Promise<Uint8Array | undefined> {
  if (response.body === null) return new Uint8Array();
  const reader = response.body.getReader();
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  return new Uint8Array(await new Blob(chunks).arrayBuffer());
}

/** Send the request `options` describe; `signal` aborts it. */
export async function httpRequest(options: HttpOptions, signal?: AbortSignal): Promise<HttpResult> {
  const first = requestUrl(options.url, options.query);
  const secrets = secretValues(first, options.headers);
  const method0 = options.method;
  const what = `${method0} ${displayUrl(first)}`;
  const fail = (message: string, name = "Error"): never => {
    throw Object.assign(new Error(scrub(message, secrets)), { name });
  };
  let headers: Record<string, string> = { ...options.headers };
  // The URL's userinfo becomes the Authorization header (unless one is given) and leaves the URL.
  if (first.username !== "" || first.password !== "") {
    if (!Object.keys(headers).some((h) => h.toLowerCase() === "authorization")) {
      const decode = (s: string) => {
        try {
          return decodeURIComponent(s);
        } catch {
          return s;
        }
      };
      headers.authorization = `Basic ${
        basicCredentials(decode(first.username), decode(first.password))
      }`;
    }
    first.username = "";
    first.password = "";
  }
  let body: string | undefined;
  if (typeof options.body === "string") body = options.body;
  else if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    if (!Object.keys(headers).some((h) => h.toLowerCase() === "content-type")) {
      headers["content-type"] = "application/json";
    }
  }
  let url = first;
  let method: string = method0;
  let response: Response;
  for (let hop = 0;; hop++) {
    try {
      response = await fetch(url, { method, headers, body, redirect: "manual", signal });
    } catch (err) {
      if (signal?.aborted) {
        fail(`${what}: aborted (${String(signal.reason?.message ?? signal.reason)})`, "AbortError");
      }
      const e = err as Error & { cause?: { message?: string } };
      const reason = String(e.cause?.message ?? e.message)
        .replace(/^error sending request for url \([^)]*\): /, "");
      const where = hop === 0 ? what : `${what} (redirected to ${displayUrl(url)})`;
      // A refused host keeps Deno's name and words: the runner adds the permissions: line to add.
      fail(`${where}: ${reason}`, e.name === "NotCapable" ? "NotCapable" : "Error");
    }
    const location = response!.headers.get("location");
    if (
      !options.followRedirects || location === null ||
      ![301, 302, 303, 307, 308].includes(response!.status)
    ) {
      break;
    }
    await response!.body?.cancel().catch(() => {});
    if (hop + 1 > MAX_REDIRECTS) {
      fail(`${what}: more than ${MAX_REDIRECTS} redirects (the last to ${displayUrl(location)})`);
    }
    let next: URL;
    try {
      next = new URL(location, url);
    } catch {
      fail(`${what}: redirected to ${JSON.stringify(location)}, which is not a URL`);
    }
    if (next!.protocol !== "http:" && next!.protocol !== "https:") {
      fail(`${what}: redirected to a ${next!.protocol} URL, which the http node does not follow`);
    }
    if (next!.origin !== url.origin) headers = withoutCredentials(headers);
    // 303, and 301/302 after a POST, go on as a GET without the body (as browsers do).
    const status = response!.status;
    if (status === 303 || ((status === 301 || status === 302) && method === "POST")) {
      if (method !== "HEAD") method = "GET";
      body = undefined;
      headers = Object.fromEntries(
        Object.entries(headers).filter(([h]) => h.toLowerCase() !== "content-type"),
      );
    }
    url = next!;
  }
  const res = response!;
  const status = res.status;
  const expected = options.expectStatus === undefined
    ? status >= 200 && status < 300
    : options.expectStatus.includes(status);
  const declared = Number(res.headers.get("content-length"));
  const limit = options.maxBytes;
  const tooBig = () =>
    fail(
      `${what}: the response body is larger than maxBytes (${limit.toLocaleString("en-US")} bytes${
        Number.isFinite(declared) && declared > limit
          ? `; it declares ${declared.toLocaleString("en-US")}`
          : ""
      }); raise maxBytes or ask for less`,
    );
  if (!expected) {
    // Only the start of its body is read, for the message.
    const start = await readAtMost(res, Math.min(limit, 4 * QUOTED_BODY)).catch(() => undefined);
    const text = start === undefined ? "" : new TextDecoder().decode(start);
    const quoted = text.length > QUOTED_BODY ? `${text.slice(0, QUOTED_BODY)}…` : text;
    if (start === undefined) await res.body?.cancel().catch(() => {});
    fail(
      `${what} answered ${status}${res.statusText ? ` ${res.statusText}` : ""} (expected ${
        options.expectStatus === undefined ? "2xx" : options.expectStatus.join(", ")
      })${url.href === first.href ? "" : ` after redirects to ${displayUrl(url)}`}${
        quoted.trim() === "" ? "" : `: ${JSON.stringify(quoted)}`
      }`,
      "HttpStatusError",
    );
  }
  if (Number.isFinite(declared) && declared > limit) tooBig();
  let bytes: Uint8Array | undefined;
  try {
    bytes = await readAtMost(res, limit);
  } catch (err) {
    if (signal?.aborted) {
      fail(`${what}: aborted (${String(signal.reason?.message ?? signal.reason)})`, "AbortError");
    }
    fail(`${what}: the response body could not be read: ${(err as Error).message}`);
  }
  if (bytes === undefined) tooBig();
  const text = new TextDecoder().decode(bytes);
  const responseHeaders: Record<string, string> = {};
  for (const [name, value] of res.headers) {
    const key = name.toLowerCase();
    responseHeaders[key] = key in responseHeaders ? `${responseHeaders[key]}, ${value}` : value;
  }
  let parsed: unknown = text;
  const json = options.responseType === "json" ||
    (options.responseType === "auto" && isJsonType(res.headers.get("content-type")));
  if (method === "HEAD") parsed = null;
  else if (json) {
    if (text.trim() === "") parsed = null;
    else {
      try {
        parsed = JSON.parse(text);
      } catch (err) {
        fail(
          `${what}: the response body is not JSON (${(err as Error).message})${
            options.responseType === "auto"
              ? `, though its content-type is ${res.headers.get("content-type")}`
              : ""
          }; use responseType: text to get it as text: ${
            JSON.stringify(text.length > QUOTED_BODY ? `${text.slice(0, QUOTED_BODY)}…` : text)
          }`,
        );
      }
    }
  }
  return { status, headers: responseHeaders, body: parsed };
}

/** The node module the `http` node's Worker runs (see `sandbox_worker.ts`). */
export default {
  kind: "flowstate.node",
  name: "http",
  // Every value is taken as it is: the runner checked the options.
  optionsSchema: PASS_THROUGH,
  run: (ctx: { signal: AbortSignal }, options: HttpOptions): Promise<HttpResult> =>
    httpRequest(options, ctx.signal),
};
