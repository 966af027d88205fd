/**
 * Helpers of the `flowstate serve` tests: a runtime served on port 0 in a
 * temporary directory with flow files, and a check of a response against
 * the shape the route table documents.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type Clock, type ConfigObject, openRuntime, type Runtime } from "../mod.ts";
import { type FlowstateServer, serve, type ServeOptions } from "../src/serve/server.ts";
import { apiRoutes } from "../src/serve/api.ts";
import { hangSignal, waitUntil } from "./_deadline.ts";

/** Flow files every served test directory holds. */
export const FLOWS: Record<string, string> = {
  "hello.flow.yaml": `id: hello
inputs:
  name: { type: string, default: world }
nodes:
  - { id: greet, type: transform, with: { value: "hello \${{ inputs.name }}" } }
outputs:
  greeting: "\${{ nodes.greet.output }}"
`,
  "slow.flow.yaml": `id: slow
nodes:
  - { id: hello, type: log, with: { message: waiting } }
  - { id: wait, type: delay, needs: [hello], with: { for: 60s } }
`,
};

/** What a served test gets. */
export interface Served {
  dir: string;
  runtime: Runtime;
  server: FlowstateServer;
  /** `fetch` relative to the server, with `Origin` set for mutating requests. */
  request(path: string, init?: RequestInit): Promise<Response>;
}

/** Serve a runtime over `stores` (made in a temporary directory by `stores(dir)`), run `fn`, clean up. */
export async function withServed(
  stores: (dir: string) => ConfigObject["stores"],
  fn: (served: Served) => Promise<void>,
  options: ServeOptions = {},
  /** The runtime's clock (default: the system clock). */
  clock?: Clock,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-serve-" });
  try {
    await Deno.mkdir(join(dir, "flows"));
    for (const [name, text] of Object.entries(FLOWS)) {
      await Deno.writeTextFile(join(dir, "flows", name), text);
    }
    const runtime = await openRuntime({
      cwd: dir,
      home: join(dir, "home"),
      config: { stores: stores(dir), flows: [join(dir, "flows")] },
      ...(clock === undefined ? {} : { clock }),
    });
    try {
      const server = await serve(runtime, { port: 0, ...options });
      const origin = server.url.slice(0, -1);
      try {
        await fn({
          dir,
          runtime,
          server,
          request(path, init = {}) {
            const headers = new Headers(init.headers);
            const method = init.method ?? "GET";
            if (method !== "GET" && !headers.has("origin")) headers.set("origin", origin);
            // A server that never answers fails the test instead of hanging it.
            const hang = hangSignal();
            const signal = init.signal ? AbortSignal.any([init.signal, hang]) : hang;
            return fetch(new URL(path, server.url), { ...init, headers, signal });
          },
        });
      } finally {
        await server.shutdown();
      }
    } finally {
      await runtime.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Read `response`'s JSON and check it against the schema the route table
 * documents for `method` `pattern` and the response's status; returns the body.
 */
export async function documented<T = unknown>(
  method: string,
  pattern: string,
  response: Response,
): Promise<T> {
  const route = apiRoutes.find((r) => r.method === method && r.path === pattern);
  assert.ok(route, `no route ${method} ${pattern} in the table`);
  const doc = route.responses[response.status];
  const text = await response.text();
  assert.ok(
    doc,
    `${method} ${pattern} answered ${response.status}, which it does not document: ${text}`,
  );
  if (doc.schema === undefined) return text as T;
  assert.equal(response.headers.get("content-type"), "application/json; charset=utf-8");
  const body = JSON.parse(text);
  const parsed = doc.schema.safeParse(body);
  assert.ok(
    parsed.success,
    `${method} ${pattern} ${response.status} does not match its documented shape: ${
      parsed.success ? "" : JSON.stringify(parsed.error.issues)
    }\n${text.slice(0, 500)}`,
  );
  return body as T;
}

/**
 * Wait until `check` resolves true, polling every 50 ms; fails naming `what`
 * after the hang limit of tests/_deadline.ts (a check that itself hangs included).
 */
export async function eventually(
  what: string,
  check: () => Promise<boolean>,
): Promise<void> {
  await waitUntil(what, check);
}
