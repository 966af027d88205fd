// The inspector's client of the JSON API (/api/…). The page authenticates with
// the HttpOnly cookie that POST /api/session sets: it never keeps the token.

// One JSON parser with the server's: object keys as written despite V8's JSON.parse bug
// (see ../../_parse_json.js; the server serves it as /_parse_json.js).
import { parseJson } from "../../_parse_json.js";

/**
 * An error answer of the API: `status`, `code`, `message`, and the parsed `body`; `status` 0
 * (`code` "unreachable") when the server did not answer at all.
 */
export class ApiError extends Error {
  constructor(status, body, fallback) {
    const error = body && typeof body === "object" ? body.error : undefined;
    super(error?.message ?? fallback ?? `HTTP ${status}`);
    this.status = status;
    this.code = error?.code ?? (status === 0 ? "unreachable" : "http_" + status);
    this.body = body;
  }
}

let unauthorizedHandler = null;

/**
 * What to do on a 401: a function that asks for the token and resolves once a
 * session is open (the request is then tried once more).
 */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

/** Query string from an object; arrays become repeated parameters (keys: `key=a&key=b`). */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params ?? {})) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) { for (const v of value) search.append(name, String(v)); }
    else search.append(name, String(value));
  }
  const text = search.toString();
  return text === "" ? "" : `?${text}`;
}

const enc = encodeURIComponent;

/**
 * Call the API. Resolves to the parsed JSON (or null for 204); rejects with an
 * {@link ApiError} for any status >= 400 (after one retry past a 401 prompt).
 */
export async function request(method, path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers ?? {}) };
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    // No answer at all: the server stopped or restarts, or the network is down.
    throw new ApiError(
      0,
      null,
      `Cannot reach the Flowstate server (${e?.message ?? e}): it stopped, or the network is ` +
        "down; start it again (flowstate serve)",
    );
  }
  if (response.status === 401 && unauthorizedHandler && !options.noPrompt) {
    await unauthorizedHandler();
    return request(method, path, { ...options, noPrompt: true });
  }
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") ?? "";
  const body = type.includes("json") ? await readJson(response) : null;
  if (!response.ok) {
    throw new ApiError(response.status, body, body === null ? await safeText(response) : undefined);
  }
  return body;
}

/** The body parsed as JSON, or null when it is not JSON (or cannot be read). */
function readJson(response) {
  return response.text().then(parseJson).catch(() => null);
}

async function safeText(response) {
  try {
    const text = await response.text();
    return text ? `HTTP ${response.status}: ${text.slice(0, 200)}` : `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

/** Open a session with the token: the server answers with the cookie. */
export async function openSession(token) {
  const response = await fetch("/api/session", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    credentials: "same-origin",
    body: JSON.stringify({ token }),
  });
  if (!response.ok) {
    throw new ApiError(response.status, await readJson(response));
  }
}

// --- routes ---------------------------------------------------------------------

export const api = {
  health: () => request("GET", "/health"),
  stores: () => request("GET", "/api/stores"),
  children: (store, prefix, cursor, limit) =>
    request("GET", `/api/stores/${enc(store)}/children${query({ prefix, cursor, limit })}`),
  entries: (store, prefix, cursor, limit) =>
    request("GET", `/api/stores/${enc(store)}/entries${query({ prefix, cursor, limit })}`),
  entry: (store, key) => request("GET", `/api/stores/${enc(store)}/entry${query({ key })}`),
  /** Compare-and-set: `version` null means create only (If-None-Match: *); `expireIn` in ms. */
  putEntry: (store, key, value, version, expireIn) =>
    request("PUT", `/api/stores/${enc(store)}/entry${query({ key })}`, {
      body: expireIn === undefined ? { value } : { value, expireIn },
      headers: version === null ? { "If-None-Match": "*" } : { "If-Match": `"${version}"` },
    }),
  deleteEntry: (store, key, version) =>
    request("DELETE", `/api/stores/${enc(store)}/entry${query({ key })}`, {
      headers: { "If-Match": `"${version}"` },
    }),
  flows: () => request("GET", "/api/flows"),
  versions: (flow) => request("GET", `/api/flows/${enc(flow)}/versions`),
  version: (flow, hash) => request("GET", `/api/flows/${enc(flow)}/versions/${enc(hash)}`),
  /** A flow's graph: `{ from: "file" | "version", file?, hash?, graph: { nodes, edges } }`. */
  flowGraph: (flow) => request("GET", `/api/flows/${enc(flow)}/graph`),
  runs: (filters) => request("GET", `/api/runs${query(filters)}`),
  /**
   * A run and its events: `{ run, events, eventCount }`; with `after` (the
   * `eventCount` of an earlier answer) only the events added since.
   */
  run: (id, after) => request("GET", `/api/runs/${enc(id)}${query({ after })}`),
  /**
   * A run with a page of its nodes (`{ offset, limit }`):
   * `{ run, events, nodeIds, total, next?, eventCount }`.
   */
  runNodes: (id, page) => request("GET", `/api/runs/${enc(id)}/nodes${query(page)}`),
  runChanges: (id, page) => request("GET", `/api/runs/${enc(id)}/changes${query(page)}`),
  /** The flow version a run ran: `{ definition, source?, from, archived? … }` (records or archive). */
  runDefinition: (id) => request("GET", `/api/runs/${enc(id)}/definition`),
  startRun: (flow, input) =>
    request("POST", `/api/flows/${enc(flow)}/runs`, { body: { input: input ?? {} } }),
  cancelRun: (id) => request("POST", `/api/runs/${enc(id)}/cancel`, { body: {} }),
  /** Send signal `name` to run `id`'s wait node; `data` absent: null. */
  signalRun: (id, name, data) =>
    request("POST", `/api/runs/${enc(id)}/signals/${enc(name)}`, {
      body: data === undefined ? {} : { data },
    }),
  /** A new run resuming run `id` from where it failed: `{ runId }`. */
  /** Resume run `id`; `from` given: run that node and every node that needs it again. */
  /** What a resume from node `from` would do: `{ nodes: [{ node, reused, reason, message }] }`. */
  resumePreview: (id, from) => request("GET", `/api/runs/${enc(id)}/resume${query({ from })}`),
  resumeRun: (id, from) =>
    request("POST", `/api/runs/${enc(id)}/resume`, { body: from === undefined ? {} : { from } }),
  metrics: (flow) => request("GET", `/api/metrics${query({ flow })}`),
  jobs: () => request("GET", "/api/jobs"),
  schedules: () => request("GET", "/api/schedules"),
  runJob: (name) => request("POST", `/api/jobs/${enc(name)}/runs`, { body: {} }),
  /** The queue workers: `[{ id, status: "live" | "stale", host, pid, claims, … }]`. */
  workers: () => request("GET", "/api/workers"),
};
