import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime, type Runtime, startWorker } from "../../mod.ts";
import { handleWebhook, MAX_WEBHOOK_BODY } from "./webhooks.ts";
import { sameToken } from "./auth.ts";
import { parseFlow } from "../flow/parse.ts";
import { FlowValidationError } from "../flow/parse.ts";

const DEPLOY = `id: deploy
trigger:
  http:
    path: /hooks/deploy
    secret: { env: FLOWSTATE_TEST_HOOK_SECRET }
    inputs:
      ref: body.ref
      sender: headers.x-sender
      dry: query.dry
      repo: body.repository.name
inputs:
  ref: { type: string }
  sender: { type: string, default: nobody }
  dry: { type: string, default: "no" }
  repo: { type: string, default: "-" }
nodes:
  - { id: a, type: log, with: { message: "deploy \${{ inputs.ref }}" } }
outputs:
  got: "\${{ inputs.ref }} \${{ inputs.sender }} \${{ inputs.dry }} \${{ inputs.repo }}"
`;

const OPEN = `id: open
trigger: { http: { path: /hooks/open, method: PUT } }
inputs:
  name: { type: string }
nodes:
  - { id: a, type: log, with: { message: "hi \${{ inputs.name }}" } }
outputs:
  name: "\${{ inputs.name }}"
`;

async function withHooks(
  fn: (rt: Runtime, dir: string) => Promise<void>,
  { worker: withWorker = true } = {},
) {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-hooks-" });
  Deno.env.set("FLOWSTATE_TEST_HOOK_SECRET", "s3cret");
  try {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(join(dir, "flows", "deploy.flow.yaml"), DEPLOY);
    await Deno.writeTextFile(join(dir, "flows", "open.flow.yaml"), OPEN);
    await using rt = await openRuntime({
      config: { stores: { default: { plugin: "memory" } }, flows: [join(dir, "flows")] },
      home: dir,
      cwd: dir,
    });
    // Webhooks enqueue; this worker runs what they enqueue.
    const worker = withWorker ? startWorker(rt, { pollMs: 50 }) : undefined;
    try {
      await fn(rt, dir);
    } finally {
      await worker?.stop();
    }
  } finally {
    Deno.env.delete("FLOWSTATE_TEST_HOOK_SECRET");
    await Deno.remove(dir, { recursive: true });
  }
}

async function sign(secret: string, body: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(body)));
  return "sha256=" + [...mac].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function post(
  path: string,
  body: BodyInit | null,
  headers: Record<string, string> = {},
  method = "POST",
) {
  return new Request(`http://127.0.0.1:8377${path}`, { method, body, headers });
}

async function runsOf(rt: Runtime) {
  return (await (await rt.records()).listRunSummaries()).runs;
}

Deno.test("a webhook's JSON body is read with its object keys as written, despite V8's JSON.parse bug", async () => {
  // nodejs/node#63785: after a native parse of `{"st":1,"nam\\":1}`, the key `nam\u0065`
  // ("name", escaped) of an object of the same shape parsed as "nam\\": the input mapping
  // `body.repository.name` would then miss it.
  await withHooks(async (rt) => {
    const body = '{"ref":"main","repository":{"st":1,"nam\\u0065":"site"}}';
    JSON.parse('{"st":1,"nam\\\\":1}');
    const res = await handleWebhook(
      rt,
      post("/hooks/deploy?wait=true", body, {
        "content-type": "application/json",
        "x-flowstate-signature": await sign("s3cret", body),
        "x-sender": "ci",
      }),
      "/hooks/deploy",
    );
    assert.equal(res.status, 200, await res.clone().text());
    const { run } = await res.json();
    assert.deepEqual(run.outputs, { got: "main ci no site" });
  });
});

Deno.test("a signed webhook runs its flow with inputs mapped from body, headers and query", async () => {
  await withHooks(async (rt) => {
    const body = JSON.stringify({ ref: "main", repository: { name: "site" } });
    for (const header of ["x-flowstate-signature", "x-hub-signature-256"]) {
      const res = await handleWebhook(
        rt,
        post("/hooks/deploy?wait=true&dry=yes", body, {
          "content-type": "application/json",
          [header]: await sign("s3cret", body),
          "x-sender": "ci",
        }),
        "/hooks/deploy",
      );
      assert.equal(res.status, 200, await res.clone().text());
      const { run } = await res.json();
      assert.equal(run.status, "succeeded");
      assert.deepEqual(run.outputs, { got: "main ci yes site" });
    }
    // Without wait: 202 with the run id, and the run is recorded.
    const res = await handleWebhook(
      rt,
      post("/hooks/deploy", body, {
        "content-type": "application/json",
        "x-flowstate-signature": await sign("s3cret", body),
      }),
      "/hooks/deploy",
    );
    assert.equal(res.status, 202);
    const { runId, status } = await res.json();
    assert.equal(status, "queued");
    assert.equal(res.headers.get("location"), `/api/runs/${runId}`);
    const records = await rt.records();
    for (;;) {
      const run = await records.getRun(runId);
      if (run?.status !== "running" && run?.status !== "queued") {
        assert.equal(run?.status, "succeeded");
        break;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  });
});

Deno.test("a webhook delivered twice with one Idempotency-Key is one run while it is queued or running", async () => {
  await withHooks(async (rt) => {
    // No worker: the first run stays queued.
    const body = JSON.stringify({ name: "once" });
    const send = () =>
      handleWebhook(
        rt,
        post("/hooks/open", body, {
          "content-type": "application/json",
          "idempotency-key": "delivery-1",
        }, "PUT"),
        "/hooks/open",
      );
    const first = await (await send()).json();
    const second = await (await send()).json();
    assert.equal(second.runId, first.runId);
    assert.equal(first.existing, false);
    assert.equal(second.existing, true);
    assert.equal((await runsOf(rt)).filter((r) => r.flowId === "open").length, 1);
    const tooLong = await handleWebhook(
      rt,
      post("/hooks/open", body, {
        "content-type": "application/json",
        "idempotency-key": "x".repeat(201),
      }, "PUT"),
      "/hooks/open",
    );
    assert.equal(tooLong.status, 400);
    assert.match((await tooLong.json()).error.message, /Idempotency-Key/);
  }, { worker: false });
});

Deno.test("a webhook with a missing or wrong signature is refused and runs nothing", async () => {
  await withHooks(async (rt) => {
    const body = JSON.stringify({ ref: "main" });
    const missing = await handleWebhook(
      rt,
      post("/hooks/deploy", body, { "content-type": "application/json" }),
      "/hooks/deploy",
    );
    assert.equal(missing.status, 401);
    assert.match((await missing.json()).error.message, /needs a signature: X-Flowstate-Signature/);
    for (
      const signature of [
        await sign("wrong", body),
        await sign("s3cret", body + " "),
        "sha256=",
        "x",
      ]
    ) {
      const res = await handleWebhook(
        rt,
        post("/hooks/deploy", body, {
          "content-type": "application/json",
          "x-flowstate-signature": signature,
        }),
        "/hooks/deploy",
      );
      assert.equal(res.status, 401, signature);
      assert.match((await res.json()).error.message, /does not match its body/);
    }
    assert.deepEqual(await runsOf(rt), []);
  });
});

Deno.test("webhook errors: unknown path, wrong method, bad JSON, non-object body, bad inputs, too large, too slow", async () => {
  await withHooks(async (rt) => {
    const unknown = await handleWebhook(rt, post("/hooks/nope", "{}"), "/hooks/nope");
    assert.equal(unknown.status, 404);
    assert.match(
      (await unknown.json()).error.message,
      /no flow declares the webhook \/hooks\/nope/,
    );

    const wrong = await handleWebhook(rt, post("/hooks/open", "{}"), "/hooks/open");
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get("allow"), "PUT");

    const json = { "content-type": "application/json" };
    const bad = await handleWebhook(rt, post("/hooks/open", "{nope", json, "PUT"), "/hooks/open");
    assert.equal(bad.status, 400);
    assert.match((await bad.json()).error.message, /the body is not valid JSON/);

    const list = await handleWebhook(rt, post("/hooks/open", "[1]", json, "PUT"), "/hooks/open");
    assert.equal(list.status, 400);
    assert.match((await list.json()).error.message, /not a JSON object of inputs/);

    const missing = await handleWebhook(rt, post("/hooks/open", "{}", json, "PUT"), "/hooks/open");
    assert.equal(missing.status, 400);
    const problems = (await missing.json()).error.problems;
    assert.ok(problems.some((p: { path: string[] }) => p.path.join(".") === "inputs.name"));

    const ok = await handleWebhook(
      rt,
      post("/hooks/open?wait=true", JSON.stringify({ name: "ann" }), json, "PUT"),
      "/hooks/open",
    );
    assert.equal(ok.status, 200);
    assert.deepEqual((await ok.json()).run.outputs, { name: "ann" });

    // Over the limit, without a Content-Length: counted while reading.
    const chunk = new Uint8Array(64 * 1024).fill(32);
    let sent = 0;
    const big = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent > MAX_WEBHOOK_BODY + chunk.length) return controller.close();
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const large = await handleWebhook(rt, post("/hooks/open", big, json, "PUT"), "/hooks/open");
    assert.equal(large.status, 413);

    // A body that never finishes.
    const slow = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("{"));
      },
    });
    const late = await handleWebhook(rt, post("/hooks/open", slow, json, "PUT"), "/hooks/open", {
      bodyTimeoutMs: 50,
    });
    assert.equal(late.status, 408);
    assert.equal((await runsOf(rt)).length, 1, "only the good request ran");
  });
});

Deno.test("two flows declaring one webhook path are refused, naming both", async () => {
  await withHooks(async (rt, dir) => {
    await Deno.writeTextFile(
      join(dir, "flows", "again.flow.yaml"),
      OPEN.replace("id: open", "id: again"),
    );
    const res = await handleWebhook(rt, post("/hooks/open", "{}", {}, "PUT"), "/hooks/open");
    assert.equal(res.status, 500);
    assert.match(
      (await res.json()).error.message,
      /flows again \(.*again\.flow\.yaml\) and open \(.*open\.flow\.yaml\) both declare the webhook \/hooks\/open/,
    );
  });
});

Deno.test("trigger.http is checked with file:line:column", () => {
  const cases: [string, RegExp][] = [
    ["trigger: { http: { path: /deploy } }", /1:26.*expected a path under \/hooks\//],
    [
      "trigger: { http: { path: /hooks/x, secret: abc } }",
      /trigger\.http\.secret: expected { env: NAME }, the name of the environment variable holding the secret/,
    ],
    [
      "trigger: { http: { path: /hooks/x, inputs: { a: cookies.x } } }",
      /expected body, body\.<field>/,
    ],
    ["trigger: { http: { path: /hooks/x, method: GET } }", /method/],
  ];
  for (const [line, pattern] of cases) {
    const yaml = `${line}\nid: t\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n`;
    assert.throws(() => parseFlow(yaml, { file: "t.flow.yaml" }), (err) => {
      assert.ok(err instanceof FlowValidationError, String(err));
      assert.match(err.message, pattern);
      assert.match(err.message, /^t\.flow\.yaml:1:\d+: /m);
      return true;
    });
  }
});

Deno.test("signatures are compared whole (sameToken)", async () => {
  assert.equal(await sameToken("sha256=ab", "sha256=ab"), true);
  assert.equal(await sameToken("sha256=ab", "sha256=ac"), false);
  assert.equal(await sameToken("sha256=ab", "sha256=abc"), false);
  assert.equal(await sameToken("", ""), true);
});

Deno.test("webhooks through the server: no token needed, a signed request runs, a server shutdown gives a webhook's run back to the queue", async () => {
  const { withServed } = await import("../../tests/_serve.ts");
  Deno.env.set("FLOWSTATE_TEST_HOOK_SECRET", "s3cret");
  try {
    await withServed(
      (dir) => ({ default: { plugin: "sqlite", path: join(dir, "s.db") } }),
      async (served) => {
        await Deno.writeTextFile(join(served.dir, "flows", "deploy.flow.yaml"), DEPLOY);
        await Deno.writeTextFile(
          join(served.dir, "flows", "hold.flow.yaml"),
          "id: hold\ntrigger: { http: { path: /hooks/hold } }\nnodes:\n  - { id: wait, type: delay, with: { for: 60s } }\n",
        );
        const body = JSON.stringify({ ref: "v1" });
        // A token protects the API, never a webhook (it has its own secret); no Origin header.
        const res = await fetch(new URL("/hooks/deploy?wait=true", served.server.url), {
          method: "POST",
          body,
          headers: {
            "content-type": "application/json",
            "x-flowstate-signature": await sign("s3cret", body),
          },
        });
        assert.equal(res.status, 200, await res.clone().text());
        assert.equal((await res.json()).run.outputs.got, "v1 nobody no -");
        const api = await fetch(new URL("/api/runs", served.server.url));
        assert.equal(api.status, 401, "the API needs the token");
        await api.body?.cancel();

        const held = await fetch(new URL("/hooks/hold", served.server.url), { method: "POST" });
        assert.equal(held.status, 202);
        const { runId } = await held.json();
        await served.server.shutdown();
        const run = await (await served.runtime.records()).getRun(runId);
        // Claimed or not, the run waits in the queue for the next worker: never left running.
        assert.equal(run?.status, "queued", "the server's shutdown gives the webhook's run back");
      },
      { token: "t0ken" },
    );
  } finally {
    Deno.env.delete("FLOWSTATE_TEST_HOOK_SECRET");
  }
});
