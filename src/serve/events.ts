/**
 * `GET /api/events` (placeholder until the event feed is merged).
 *
 * @module
 */
import type { Runtime } from "../runtime.ts";
import { json } from "./http.ts";

/** The Server-Sent Events route; this placeholder answers 501. */
export function eventsRoute(
  _runtime: Runtime,
  _request: Request,
  _options: { signal: AbortSignal },
): Response {
  return json({ error: { code: "internal", message: "not built yet" } }, 501);
}
