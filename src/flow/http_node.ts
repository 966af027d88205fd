/**
 * The built-in `http` node as a flow runs it: the request is sent from a
 * sandboxed Worker (`http_worker.ts`, taken from the run's `SandboxPool` as
 * a custom node's is) whose only permission is the node's declared
 * `permissions: { net: [...] }`. Deno checks every request the Worker makes,
 * each redirect hop included, against that list: a host the node did not
 * declare is refused by Deno, not by a string comparison here. The runner
 * checks the URL's host first only to word the refusal (with the exact
 * `permissions:` line to add): a literal `url` when the flow is checked
 * (`flowstate validate`), a templated one when the run evaluates it.
 *
 * Secrets never leave the node: an error's message and the output have the
 * request's secret values replaced, and URLs show no userinfo (see
 * `_http.ts`). The response's credential headers (`set-cookie`…) are made
 * run secrets with `ctx.mask`: recorded as `***`, passed on as they came.
 *
 * @module
 */
import type { NodeContext, NodeType } from "./node.ts";
import { builtinNodes, httpOptionsSchema } from "./nodes.ts";
import {
  type HttpOptions,
  isCredentialResponseHeader,
  REDACTED,
  requestUrl,
  responseCredentials,
  scrub,
  scrubValue,
  secretValues,
} from "./_http.ts";
import { SECRET_MIN_LENGTH } from "./secrets.ts";
import { type ResolvedPermissions, sandboxedNodeType, type SandboxPool } from "./sandbox.ts";

/** The module the `http` node's Worker runs. */
export const HTTP_WORKER_URL: string = new URL("./http_worker.ts", import.meta.url).href;

/**
 * The `http` node type of one node of a flow: its request runs in a Worker
 * from `pool` with `permissions` (only `net` granted), the Worker shared by
 * the run's `http` nodes of the same permissions until the run ends
 * (`releaseSandbox`).
 */
export function httpNodeType(
  permissions: ResolvedPermissions,
  pool: SandboxPool,
  baseDir?: string,
): NodeType<unknown> {
  const sandboxed = sandboxedNodeType(HTTP_WORKER_URL, "http", permissions, pool, baseDir);
  return {
    // Its release (a symbol) comes along: the executor gives the Worker back through it.
    ...sandboxed,
    description: builtinNodes.get("http")!.description,
    optionsSchema: httpOptionsSchema(permissions.net) as NodeType<unknown>["optionsSchema"],
    async run(ctx, input) {
      const options = input as HttpOptions;
      const secrets = secretValues(requestUrl(options.url, options.query), options.headers);
      let result: unknown;
      try {
        result = scrubValue(await sandboxed.run(ctx, input), secrets);
      } catch (err) {
        const e = err as Error;
        throw Object.assign(new Error(scrub(String(e?.message ?? e), secrets)), {
          name: e?.name ?? "Error",
        });
      }
      return maskCredentials(ctx, result);
    },
  };
}

/**
 * `result` (the Worker's `{ status, headers, body }`) with its credential response headers
 * (`set-cookie`, `x-auth-token`…: see `isCredentialResponseHeader`) made run secrets through
 * `ctx.mask`: the nodes after it get them, the records show `***`. A value too short to mask
 * (under `SECRET_MIN_LENGTH`) is `[redacted]` in the output itself.
 */
function maskCredentials(ctx: NodeContext<unknown>, result: unknown): unknown {
  const headers = (result as { headers?: unknown } | null)?.headers;
  if (typeof headers !== "object" || headers === null) return result;
  let changed: Record<string, unknown> | undefined;
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value !== "string" || value === "" || !isCredentialResponseHeader(name)) continue;
    if (value.length < SECRET_MIN_LENGTH) {
      (changed ??= { ...headers })[name] = REDACTED;
      continue;
    }
    for (const secret of responseCredentials(name, value, SECRET_MIN_LENGTH)) ctx.mask(secret);
  }
  return changed === undefined ? result : { ...(result as object), headers: changed };
}
