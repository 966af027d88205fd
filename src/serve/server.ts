/**
 * `serve(runtime, options)`: the HTTP server of `flowstate serve`, on
 * `Deno.serve`. Routes: the JSON API and `/health`, `/metrics` (`api.ts`,
 * one table that the OpenAPI document is built from), the event feed
 * (`events.ts`), webhooks under `/hooks/` (`webhooks.ts`), and the
 * inspector page at `/` and `/ui/*` (the files of `ui/`).
 *
 * Security (see `auth.ts`): 127.0.0.1 by default; any other host needs a
 * token, generated when none is given. Every response has
 * `X-Content-Type-Options: nosniff`; errors are JSON.
 *
 * @module
 */
import type { Runtime } from "../runtime.ts";
import type { ResolvedConfig } from "../config.ts";
import type { ScheduleSource } from "../scheduler/listing.ts";
import { messageOf } from "../errors.ts";
import { apiRoutes, type SchedulerStatus, type ServerState } from "./api.ts";
import { checkRequest, generateToken, isLoopbackHost, tokenProblem } from "./auth.ts";
import { errorResponse, HttpError, runtimeClosed, storeUnavailable } from "./http.ts";
import { badQueryValue, Router, unknownQueryParam } from "./router.ts";
import { handleWebhook } from "./webhooks.ts";
import { startWorker, type Worker, type WorkerOptions } from "../queue/worker.ts";

/**
 * Options of {@linkcode serve}.
 *
 * @example
 * ```ts
 * import { openRuntime } from "@flowstate/core";
 * import { serve, type ServeOptions } from "@flowstate/core/serve";
 * import assert from "node:assert/strict";
 *
 * const options: ServeOptions = { port: 0, worker: { concurrency: 2 }, maxBodyBytes: 64 * 1024 };
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * await using server = await serve(rt, options);
 * assert.equal(server.hostname, "127.0.0.1");
 * assert.ok(server.worker !== undefined);
 * ```
 */
export interface ServeOptions {
  /** The port (default 8377; 0 picks a free one). */
  port?: number;
  /** The address to bind (default `127.0.0.1`; any other requires a token). */
  hostname?: string;
  /**
   * The token requests must carry; generated when the host is not 127.0.0.1 and none is given.
   * Printable ASCII but space, `"`, `,`, `;` and `\` (what a client can send as a bearer token
   * and the page keep in its cookie): another is refused with a `RangeError`.
   */
  token?: string;
  /** Shuts the server down when aborted. */
  signal?: AbortSignal;
  /** Called once the server listens. */
  onListen?: (info: { hostname: string; port: number; url: string }) => void;
  /** The largest request body, in bytes (default 1 MiB). */
  maxBodyBytes?: number;
  /** The status of a scheduler running beside the server (for /health and /metrics). */
  scheduler?: () => SchedulerStatus;
  /**
   * The config whose jobs and schedules the server lists and runs (`GET
   * /api/jobs`, `GET /api/schedules`, `POST /api/jobs/{name}/runs`), when it
   * can change while the server runs: `flowstate daemon --serve` passes the
   * config its scheduler last applied. Default: the runtime's.
   */
  config?: () => ResolvedConfig;
  /**
   * The schedules a scheduler running beside the server runs, and the flow
   * files it cannot use (`GET /api/schedules` lists them): `flowstate daemon
   * --serve` passes its scheduler's, which keep a broken file's last good
   * schedule. Default: the config's schedules, loaded at each request.
   */
  schedules?: () => ScheduleSource;
  /**
   * The queue worker that runs the runs started over HTTP and by webhooks
   * (they are enqueued): its options (default `{}`: a worker with the
   * defaults), or `false` to run none here (other processes' workers, the
   * daemon or `flowstate worker`, run them).
   */
  worker?: WorkerOptions | false;
  /**
   * A queue worker running beside the server, whose status `/health`
   * reports (with `worker: false`): `flowstate daemon --serve` passes its
   * own.
   */
  workerBeside?: Worker;
}

/**
 * A running server; `await using` shuts it down (see `shutdown()`).
 *
 * @example
 * ```ts
 * import { openRuntime } from "@flowstate/core";
 * import { type FlowstateServer, serve } from "@flowstate/core/serve";
 * import assert from "node:assert/strict";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const server: FlowstateServer = await serve(rt, { port: 0, worker: false });
 * assert.equal(server.url, `http://127.0.0.1:${server.port}/`);
 * assert.equal(server.token, undefined); // 127.0.0.1 needs none
 * await server.shutdown();
 * await server.finished;
 * ```
 */
export interface FlowstateServer extends AsyncDisposable {
  /** Its URL: `http://127.0.0.1:8377/`. */
  readonly url: string;
  /** The port it listens on. */
  readonly port: number;
  /** The address it is bound to. */
  readonly hostname: string;
  /** The token requests must carry, or `undefined`. */
  readonly token: string | undefined;
  /** Whether the token was generated (print it once). */
  readonly tokenGenerated: boolean;
  /**
   * Stop: stop the worker (runs in flight get `runs.abortGrace`, then go back
   * to the queue), cancel the jobs started over HTTP (recorded cancelled),
   * close streams and connections.
   */
  shutdown(): Promise<void>;
  /** Settles when the server has stopped. */
  readonly finished: Promise<void>;
  /** The server's queue worker, unless `worker: false`. */
  readonly worker: Worker | undefined;
}

/**
 * The default port: 8377.
 *
 * @example
 * ```ts
 * import { DEFAULT_PORT } from "@flowstate/core/serve";
 * import assert from "node:assert/strict";
 * assert.equal(DEFAULT_PORT, 8377);
 * ```
 */
export const DEFAULT_PORT = 8377;
/**
 * The default largest request body: 1 MiB (`maxBodyBytes`); a larger one is
 * answered 413.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_BODY_BYTES } from "@flowstate/core/serve";
 * import assert from "node:assert/strict";
 * assert.equal(DEFAULT_MAX_BODY_BYTES, 1024 * 1024);
 * ```
 */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

const UI_TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  json: "application/json; charset=utf-8",
};

/** The inspector's Content-Security-Policy. */
export const UI_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

const PLACEHOLDER_PAGE =
  '<!doctype html><meta charset="utf-8"><title>Flowstate</title><p>The inspector page is not built yet. The API is at <a href="/api/openapi.json">/api/openapi.json</a>.</p>';

/** The inspector's files, read by name where a directory cannot be listed (a remote package). */
export const UI_FILES: readonly string[] = [
  "index.html",
  "style.css",
  "app.js",
  "api.js",
  "dom.js",
  "diff.js",
  "charts.js",
  "state.js",
  "runs.js",
  "changes.js",
  "flows.js",
  "jobs.js",
  "graph.js",
];

/**
 * Files outside `ui/` that the inspector loads, by URL path: the file, from
 * `ui/`. The JSON parser the server uses too: `ui/*.js` import it as
 * `../../_parse_json.js`, which is `src/_parse_json.js` on disk (for the
 * tests that import them) and `/_parse_json.js` in the browser (a URL path
 * cannot climb above the root).
 */
const UI_SHARED_FILES: ReadonlyMap<string, string> = new Map([
  ["/_parse_json.js", "../../_parse_json.js"],
]);

/** The files of `ui/`, read once at start (a placeholder page when there are none). */
async function loadUi(): Promise<Map<string, { body: Uint8Array; type: string }>> {
  const files = new Map<string, { body: Uint8Array; type: string }>();
  const dir = new URL("./ui/", import.meta.url);
  const typeOf = (name: string) => UI_TYPES[name.split(".").pop() ?? ""];
  if (dir.protocol === "file:") {
    try {
      for await (const item of Deno.readDir(dir)) {
        if (!item.isFile || typeOf(item.name) === undefined) continue;
        files.set(item.name, {
          body: await Deno.readFile(new URL(item.name, dir)),
          type: typeOf(item.name),
        });
      }
    } catch {
      // No ui/ directory: the placeholder page.
    }
    for (const [path, file] of UI_SHARED_FILES) {
      files.set(path, { body: await Deno.readFile(new URL(file, dir)), type: typeOf(file) });
    }
  } else {
    const names = [...UI_FILES.map((name) => [name, name]), ...UI_SHARED_FILES];
    for (const [name, file] of names) {
      try {
        const res = await fetch(new URL(file, dir));
        if (res.ok) files.set(name, { body: await res.bytes(), type: typeOf(file) });
        else await res.body?.cancel();
      } catch {
        // Not published: the placeholder page (for index.html) or a 404.
      }
    }
  }
  if (!files.has("index.html")) {
    files.set("index.html", {
      body: new TextEncoder().encode(PLACEHOLDER_PAGE),
      type: UI_TYPES.html,
    });
  }
  return files;
}

/**
 * Serve `runtime` over HTTP. Resolves once the server listens.
 *
 * @example
 * ```ts
 * import { openRuntime } from "../runtime.ts";
 * import { serve } from "./server.ts";
 * import assert from "node:assert/strict";
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const server = await serve(rt, { port: 0 });
 * const res = await fetch(new URL("/health", server.url));
 * assert.equal((await res.json()).status, "ok");
 * await server.shutdown();
 * ```
 */
export async function serve(
  runtime: Runtime,
  options: ServeOptions = {},
): Promise<FlowstateServer> {
  const hostname = options.hostname ?? "127.0.0.1";
  let token = options.token === "" ? undefined : options.token;
  let tokenGenerated = false;
  const problem = token === undefined ? undefined : tokenProblem(token);
  if (problem !== undefined) throw new RangeError(`Cannot serve: ${problem}`);
  if (token === undefined && !isLoopbackHost(hostname)) {
    token = generateToken();
    tokenGenerated = true;
  }
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < 1) {
    throw new RangeError(
      `Cannot serve: maxBodyBytes must be a positive integer (got ${maxBodyBytes})`,
    );
  }
  const ui = await loadUi();
  const stopping = new AbortController();
  const state: ServerState = {
    runtime,
    maxBodyBytes,
    token,
    signal: stopping.signal,
    runs: new Map(),
    controllers: new Set(),
    pending: new Set(),
    ...(options.scheduler ? { scheduler: options.scheduler } : {}),
    config: options.config ?? (() => runtime.config),
    ...(options.schedules ? { schedules: options.schedules } : {}),
  };
  const router = new Router(apiRoutes);
  let port = 0;

  const handle = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    const path = url.pathname;
    if (path.startsWith("/hooks/")) {
      if (request.method !== "POST" && request.method !== "PUT") {
        throw new HttpError(
          "bad_request",
          `A webhook takes POST or PUT, not ${request.method}`,
          {},
          405,
        );
      }
      return await handleWebhook(runtime, request, path, {
        signal: stopping.signal,
        tokenless: token === undefined,
      });
    }
    if (
      (request.method === "GET" || request.method === "HEAD") &&
      (path === "/" || path.startsWith("/ui/") || UI_SHARED_FILES.has(path))
    ) {
      await checkRequest(request, { token, port }, { open: true });
      // The files of ui/ by name, the shared ones by their path.
      const name = path === "/"
        ? "index.html"
        : path.startsWith("/ui/")
        ? path.slice("/ui/".length)
        : path;
      const file = ui.get(name);
      if (file === undefined) throw new HttpError("not_found", `No file ${path} in the inspector`);
      return new Response(request.method === "HEAD" ? null : file.body as Uint8Array<ArrayBuffer>, {
        headers: {
          "content-type": file.type,
          "cache-control": "no-cache",
          "content-security-policy": UI_CSP,
          "referrer-policy": "no-referrer",
        },
      });
    }
    const match = router.match(request.method, path);
    if (match === null) throw new HttpError("not_found", `No route ${path}: see /api/openapi.json`);
    if (match === "method") {
      // The methods it takes, in the message and (as HTTP requires of a 405) in Allow.
      const allow = router.allowed(path).join(", ");
      const response = errorResponse(
        new HttpError(
          "bad_request",
          `${path} does not take ${request.method}: it takes ${allow} (see /api/openapi.json)`,
          {},
          405,
        ),
      );
      response.headers.set("allow", allow);
      return response;
    }
    await checkRequest(request, { token, port }, { open: match.route.open ?? false });
    const unknown = unknownQueryParam(match.route, url, apiRoutes) ??
      badQueryValue(match.route, url);
    if (unknown !== undefined) throw new HttpError("bad_request", unknown);
    return await match.route.handler({ request, url, params: match.params, server: state });
  };

  const listening = Promise.withResolvers<void>();
  const httpServer = Deno.serve({
    port: options.port ?? DEFAULT_PORT,
    hostname,
    onListen(addr) {
      port = addr.port;
      listening.resolve();
    },
    onError(err) {
      return errorResponse(new HttpError("internal", `Internal error: ${messageOf(err)}`));
    },
  }, async (request) => {
    let response: Response;
    try {
      response = await handle(request);
    } catch (err) {
      // A store that cannot be reached: 503, naming it (clients try again later), not a 500;
      // a runtime that was closed under the server: 503 saying so.
      response = err instanceof HttpError ? errorResponse(err) : errorResponse(
        storeUnavailable(err) ?? runtimeClosed(err) ??
          new HttpError("internal", `Internal error: ${messageOf(err)}`),
      );
    }
    try {
      response.headers.set("x-content-type-options", "nosniff");
    } catch {
      response = new Response(response.body, response);
      response.headers.set("x-content-type-options", "nosniff");
    }
    return response;
  });
  await listening.promise;
  const worker = options.worker === false ? undefined : startWorker(runtime, options.worker ?? {});
  const reported = worker ?? options.workerBeside;
  if (reported !== undefined) state.worker = reported;
  const shownHost = hostname.includes(":") ? `[${hostname}]` : hostname;
  const url = `http://${shownHost}:${port}/`;
  options.onListen?.({ hostname, port, url });

  let shuttingDown: Promise<void> | undefined;
  const shutdown = () => {
    shuttingDown ??= (async () => {
      stopping.abort();
      for (const controller of state.controllers) controller.abort("the server is stopping");
      // Runs in flight get the grace period, then go back to the queue (never left running).
      await Promise.allSettled([...state.pending, worker?.stop()]);
      await httpServer.shutdown();
    })();
    return shuttingDown;
  };
  const onAbort = () => void shutdown();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  const finished = httpServer.finished.finally(() =>
    options.signal?.removeEventListener("abort", onAbort)
  );

  return {
    url,
    port,
    hostname,
    token,
    tokenGenerated,
    shutdown,
    finished,
    worker,
    [Symbol.asyncDispose]: shutdown,
  };
}
