/**
 * Webhooks `POST|PUT /hooks/{path…}` (placeholder until they are merged).
 *
 * @module
 */
import type { Runtime } from "../runtime.ts";
import { json } from "./http.ts";

/** Start the flow whose `trigger.http.path` is `path`; this placeholder knows none. */
export function handleWebhook(
  _runtime: Runtime,
  _request: Request,
  path: string,
): Promise<Response> {
  return Promise.resolve(
    json({ error: { code: "not_found", message: `no flow declares the webhook ${path}` } }, 404),
  );
}
