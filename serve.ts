/**
 * Flowstate's HTTP face in your own program: the JSON API (described by
 * OpenAPI at `/api/openapi.json`), `/health`, `/metrics` and the web
 * inspector, over a runtime you opened, the same server `flowstate serve`
 * runs. It binds 127.0.0.1 unless told otherwise; any other address requires
 * a token (one is generated when none is given: show `server.token` once).
 * By default it runs a queue worker of its own for the runs started over
 * HTTP; `worker: false` leaves them to `flowstate worker` processes or a
 * `startWorker` (from `@flowstate/core`) elsewhere.
 *
 * @example
 * ```ts
 * import { openRuntime } from "@flowstate/core";
 * import { serve } from "@flowstate/core/serve";
 * import assert from "node:assert/strict";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * await using server = await serve(rt, { port: 0, worker: false });
 * const health = await fetch(new URL("/health", server.url));
 * assert.equal((await health.json()).status, "ok");
 * ```
 *
 * @module
 */
export {
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_PORT,
  type FlowstateServer,
  serve,
  type ServeOptions,
} from "./src/serve/server.ts";
export type { SchedulerStatus } from "./src/serve/metrics.ts";
