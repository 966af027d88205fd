/**
 * The HTTP API of `flowstate serve` on every built-in backend (postgres when
 * FLOWSTATE_TEST_POSTGRES_URL is set), through `serve()` on port 0 and real
 * `fetch`; every answer of the main routes is checked against the shape the
 * route table (and so the OpenAPI document) gives it.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type ConfigObject, startWorker } from "../mod.ts";
import { documented, eventually, FLOWS, withServed } from "./_serve.ts";
import { QUEUE_BY_FAILS } from "./_queue_flow.ts";
import { flowCacheOf } from "../src/runtime.ts";

const POSTGRES_URL = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL");

const BACKENDS: [string, (dir: string) => ConfigObject["stores"], boolean][] = [
  ["memory", () => ({ main: { plugin: "memory" } }), false],
  ["jsonfile", (dir) => ({ main: { plugin: "jsonfile", path: join(dir, "state.json") } }), false],
  ["sqlite", (dir) => ({ main: { plugin: "sqlite", path: join(dir, "state.db") } }), false],
  [
    "postgres",
    () => ({
      main: {
        plugin: "postgres",
        url: POSTGRES_URL ?? "",
        table: `serve_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`,
      },
    }),
    POSTGRES_URL === undefined,
  ],
];

type Entry = { key: string[]; value: unknown; version: string; expiresAt: number | null };
type RunDetail = {
  run: { id: string; status: string; flowId: string; outputs: Record<string, unknown> | null };
  events: { type: string }[];
};

const json = (value: unknown) => ({
  headers: { "content-type": "application/json" },
  body: JSON.stringify(value),
});

for (const [backend, stores, ignore] of BACKENDS) {
  Deno.test({
    name:
      `serve API on ${backend}: stores, tree, entries with compare-and-set, runs, flows, metrics, jobs`,
    ignore,
    async fn(t) {
      await withServed(stores, async ({ request, runtime }) => {
        await t.step("stores list with location and entry count", async () => {
          const res = await request("/api/stores");
          const list = await documented<
            { name: string; plugin: string; location: string; ok: boolean }[]
          >(
            "GET",
            "/api/stores",
            res,
          );
          assert.equal(list.length, 1);
          assert.equal(list[0].name, "main");
          assert.equal(list[0].plugin, backend);
          assert.equal(list[0].ok, true);
          if (POSTGRES_URL !== undefined) {
            const password = new URL(POSTGRES_URL).password;
            if (password) assert.ok(!list[0].location.includes(password), "no password");
          }
          const health = await documented<{ status: string }>(
            "GET",
            "/health",
            await request("/health"),
          );
          assert.equal(health.status, "ok");
        });

        await t.step("entries and children page by cursor over more than 1000 keys", async () => {
          const store = await runtime.store("main");
          for (let start = 0; start < 1100; start += 275) {
            const op = store.atomic();
            for (let i = start; i < start + 275; i++) {
              op.set(["bulk", String(i).padStart(4, "0")], { i });
            }
            assert.equal((await op.commit()).ok, true);
          }
          await store.set(["bulk", "0005", "child"], "deep");
          await store.set(["other"], 1);

          const first = await documented<{ entries: Entry[]; cursor?: string }>(
            "GET",
            "/api/stores/{store}/entries",
            await request("/api/stores/main/entries?prefix=bulk&limit=1000"),
          );
          assert.equal(first.entries.length, 1000);
          assert.deepEqual(first.entries[0].key, ["bulk", "0000"]);
          assert.ok(first.cursor, "a cursor for the next page");
          const second = await documented<{ entries: Entry[]; cursor?: string }>(
            "GET",
            "/api/stores/{store}/entries",
            await request(
              `/api/stores/main/entries?prefix=bulk&limit=1000&cursor=${
                encodeURIComponent(first.cursor)
              }`,
            ),
          );
          assert.equal(second.entries.length, 101); // 1100 and the deep one
          assert.equal(second.cursor, undefined, "the last page has no cursor");
          const keys = [...first.entries, ...second.entries].map((e) => e.key.join("/"));
          assert.equal(new Set(keys).size, 1101);

          const top = await documented<
            { children: { part: string; hasChildren: boolean; isEntry: boolean }[] }
          >(
            "GET",
            "/api/stores/{store}/children",
            await request("/api/stores/main/children"),
          );
          const parts = top.children.map((c) => c.part);
          assert.ok(parts.includes("bulk") && parts.includes("other"), parts.join(","));
          assert.deepEqual(top.children.find((c) => c.part === "other"), {
            part: "other",
            hasChildren: false,
            isEntry: true,
          });
          const page1 = await documented<
            {
              children: { part: string; hasChildren: boolean; isEntry: boolean }[];
              cursor?: string;
            }
          >(
            "GET",
            "/api/stores/{store}/children",
            await request("/api/stores/main/children?prefix=bulk&limit=1000"),
          );
          assert.equal(page1.children.length, 1000);
          assert.deepEqual(page1.children[5], { part: "0005", hasChildren: true, isEntry: true });
          assert.ok(page1.cursor);
          const page2 = await documented<{ children: { part: string }[]; cursor?: string }>(
            "GET",
            "/api/stores/{store}/children",
            await request(
              `/api/stores/main/children?prefix=bulk&limit=1000&cursor=${page1.cursor}`,
            ),
          );
          assert.equal(page2.children.length, 100);
          assert.equal(page2.children[0].part, "1000");
          assert.equal(page2.cursor, undefined);
          await store.clear(["bulk"]);
        });

        await t.step("entry get, put and delete with If-Match; 409 with current; 428", async () => {
          const path = "/api/stores/main/entry?key=app&key=greeting";
          const missing = await request(path);
          assert.equal(missing.status, 404);
          await documented("GET", "/api/stores/{store}/entry", missing);

          const bare = await request(path, { method: "PUT", ...json({ value: "hi" }) });
          assert.equal(bare.status, 428);
          assert.equal(
            (await documented<{ error: { code: string } }>(
              "PUT",
              "/api/stores/{store}/entry",
              bare,
            ))
              .error.code,
            "precondition_required",
          );

          const created = await documented<Entry>(
            "PUT",
            "/api/stores/{store}/entry",
            await request(path, {
              method: "PUT",
              ...json({ value: "hi" }),
              headers: { "content-type": "application/json", "if-none-match": "*" },
            }),
          );
          assert.deepEqual(created.key, ["app", "greeting"]);
          assert.equal(created.value, "hi");

          const again = await request(path, {
            method: "PUT",
            ...json({ value: "other" }),
            headers: { "content-type": "application/json", "if-none-match": "*" },
          });
          assert.equal(again.status, 409);
          const conflict = await documented<{ error: { code: string }; current: Entry }>(
            "PUT",
            "/api/stores/{store}/entry",
            again,
          );
          assert.equal(conflict.error.code, "conflict");
          assert.equal(conflict.current.value, "hi");
          assert.equal(conflict.current.version, created.version);

          const got = await request(path);
          assert.equal(got.headers.get("etag"), `"${created.version}"`);
          assert.deepEqual(
            (await documented<Entry>("GET", "/api/stores/{store}/entry", got)).value,
            "hi",
          );

          // Someone else writes meanwhile: a write with the old version conflicts.
          const store = await runtime.store("main");
          await store.set(["app", "greeting"], "changed elsewhere");
          const stale = await request(path, {
            method: "PUT",
            ...json({ value: "mine" }),
            headers: { "content-type": "application/json", "if-match": `"${created.version}"` },
          });
          assert.equal(stale.status, 409);
          const current = (await stale.json()).current as Entry;
          assert.equal(current.value, "changed elsewhere");

          const updated = await documented<Entry>(
            "PUT",
            "/api/stores/{store}/entry",
            await request(path, {
              method: "PUT",
              ...json({ value: { nested: [1, 2] }, expireIn: 60_000 }),
              headers: { "content-type": "application/json", "if-match": `"${current.version}"` },
            }),
          );
          assert.deepEqual(updated.value, { nested: [1, 2] });
          assert.equal(typeof updated.expiresAt, "number");
          assert.deepEqual((await store.get(["app", "greeting"]))?.value, { nested: [1, 2] });

          const noMatch = await request(path, { method: "DELETE" });
          assert.equal(noMatch.status, 428);
          assert.equal(
            (await documented<{ error: { code: string } }>(
              "DELETE",
              "/api/stores/{store}/entry",
              noMatch,
            )).error.code,
            "precondition_required",
          );
          const staleDelete = await request(path, {
            method: "DELETE",
            headers: { "if-match": `"${current.version}"` },
          });
          assert.equal(staleDelete.status, 409);
          assert.deepEqual(((await staleDelete.json()).current as Entry).value, { nested: [1, 2] });
          const deleted = await request(path, {
            method: "DELETE",
            headers: { "if-match": `"${updated.version}"` },
          });
          assert.equal(deleted.status, 204);
          assert.equal(await store.get(["app", "greeting"]), null);
        });

        let helloRun = "";
        await t.step(
          "start a run: 202 with its id at once (queued), then GET shows it; wait=true",
          async () => {
            const started = await request("/api/flows/hello/runs", {
              method: "POST",
              ...json({ input: { name: "api" } }),
            });
            assert.equal(started.status, 202);
            const { runId, status, existing } = await documented<
              { runId: string; status: string; existing: boolean }
            >(
              "POST",
              "/api/flows/{flow}/runs",
              started,
            );
            assert.equal(status, "queued");
            assert.equal(existing, false);
            assert.equal(started.headers.get("location"), `/api/runs/${runId}`);
            const shown = await documented<RunDetail>(
              "GET",
              "/api/runs/{id}",
              await request(`/api/runs/${runId}`),
            );
            assert.equal(shown.run.id, runId);
            assert.equal(shown.run.flowId, "hello");
            await eventually("the server's worker runs it to its end", async () => {
              const res = await request(`/api/runs/${runId}`);
              return !["queued", "running"].includes((await res.json()).run.status);
            });
            const ended = await documented<RunDetail>(
              "GET",
              "/api/runs/{id}",
              await request(`/api/runs/${runId}`),
            );
            assert.equal(ended.run.status, "succeeded");
            assert.equal(ended.run.outputs?.greeting, "hello api");
            assert.ok(ended.events.some((e) => e.type === "node.end"), "node events are included");

            const waited = await documented<RunDetail>(
              "POST",
              "/api/flows/{flow}/runs",
              await request("/api/flows/hello/runs?wait=true", { method: "POST", ...json({}) }),
            );
            assert.equal(waited.run.status, "succeeded");
            assert.equal(waited.run.outputs?.greeting, "hello world");
            helloRun = waited.run.id;

            const unknown = await request("/api/flows/nope/runs", { method: "POST", ...json({}) });
            assert.equal(unknown.status, 404);
            const badInput = await request("/api/flows/hello/runs", {
              method: "POST",
              ...json({ input: { name: 5 } }),
            });
            assert.equal(badInput.status, 400);
            assert.match((await badInput.json()).error.message, /name/);
          },
        );

        await t.step("run list pages and filters", async () => {
          const page = await documented<
            { runs: { id: string; flowId: string }[]; cursor?: string }
          >(
            "GET",
            "/api/runs",
            await request("/api/runs?flow=hello&limit=1"),
          );
          assert.equal(page.runs.length, 1);
          assert.equal(page.runs[0].id, helloRun, "newest first");
          assert.ok(page.cursor);
          const next = await documented<{ runs: { id: string }[] }>(
            "GET",
            "/api/runs",
            await request(`/api/runs?flow=hello&limit=1&cursor=${encodeURIComponent(page.cursor)}`),
          );
          assert.equal(next.runs.length, 1);
          assert.notEqual(next.runs[0].id, helloRun);
          const bad = await request("/api/runs?status=nope");
          assert.equal(bad.status, 400);
        });

        await t.step("cancel a running run", async () => {
          const started = await request("/api/flows/slow/runs", { method: "POST", ...json({}) });
          const { runId } = await started.json();
          const cancel = await request(`/api/runs/${runId}/cancel`, { method: "POST" });
          assert.equal(cancel.status, 202);
          const answer = await documented<{ runId: string; status: string }>(
            "POST",
            "/api/runs/{id}/cancel",
            cancel,
          );
          assert.equal(answer.runId, runId);
          await eventually("the run is recorded cancelled", async () => {
            const res = await request(`/api/runs/${runId}`);
            return (await res.json()).run.status === "cancelled";
          });
          const again = await request(`/api/runs/${runId}/cancel`, { method: "POST" });
          assert.equal(again.status, 409);
          assert.match((await again.json()).error.message, /already ended \(cancelled\)/);
          const unknown = await request(`/api/runs/0mjuw3ms0abcdefghijk/cancel`, {
            method: "POST",
          });
          assert.equal(unknown.status, 404);
        });

        await t.step("flows and versions", async () => {
          const flows = await documented<
            { id: string; head: string | null; versions: number; file?: string; lastRun: unknown }[]
          >(
            "GET",
            "/api/flows",
            await request("/api/flows"),
          );
          const hello = flows.find((f) => f.id === "hello");
          assert.ok(hello);
          assert.equal(hello.versions, 1);
          assert.equal(hello.file, join("flows", "hello.flow.yaml"));
          assert.ok(hello.lastRun);
          const versions = await documented<{ hash: string }[]>(
            "GET",
            "/api/flows/{flow}/versions",
            await request("/api/flows/hello/versions"),
          );
          assert.equal(versions[0].hash, hello.head);
          const version = await documented<{ source?: string }>(
            "GET",
            "/api/flows/{flow}/versions/{hash}",
            await request(`/api/flows/hello/versions/${hello.head}`),
          );
          assert.match(version.source ?? "", /^id: hello/);
          assert.equal((await request("/api/flows/nope/versions")).status, 404);
        });

        await t.step("metrics: Prometheus text and per-flow JSON", async () => {
          const res = await request("/metrics");
          assert.equal(res.status, 200);
          assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
          const text = await res.text();
          assert.match(text, /^flowstate_runs_total\{flow="hello",status="succeeded"\} 2$/m);
          assert.match(text, /^flowstate_runs_total\{flow="slow",status="cancelled"\} 1$/m);
          assert.match(text, /^flowstate_run_duration_seconds_bucket\{flow="hello",le="60"\} 2$/m);
          assert.match(text, /^flowstate_run_duration_seconds_count\{flow="hello"\} 2$/m);
          assert.match(text, /^flowstate_store_entries\{store="main"\} \d+$/m);
          assert.match(text, /^flowstate_up 1$/m);
          const metrics = await documented<
            { flowId: string; version: string; succeeded: number }[]
          >(
            "GET",
            "/api/metrics",
            await request("/api/metrics?flow=hello"),
          );
          assert.equal(metrics.find((m) => m.version === "*")?.succeeded, 2);
        });

        await t.step("jobs and schedules; run a job now", async () => {
          const jobs = await documented<{ name: string }[]>(
            "GET",
            "/api/jobs",
            await request("/api/jobs"),
          );
          assert.ok(jobs.some((j) => j.name === "gc"));
          const schedules = await documented<{ id: string }[]>(
            "GET",
            "/api/schedules",
            await request("/api/schedules"),
          );
          assert.ok(schedules.some((s) => s.id === "job:retention"));
          const ran = await documented<RunDetail>(
            "POST",
            "/api/jobs/{name}/runs",
            await request("/api/jobs/gc/runs?wait=true", { method: "POST", ...json({}) }),
          );
          assert.equal(ran.run.flowId, "job:gc");
          assert.equal(ran.run.status, "succeeded");
          const started = await request("/api/jobs/gc/runs", {
            method: "POST",
            ...json({ options: { orphans: false } }),
          });
          assert.equal(started.status, 202);
          const { runId } = await documented<{ runId: string }>(
            "POST",
            "/api/jobs/{name}/runs",
            started,
          );
          await eventually("the job ends", async () => {
            const res = await request(`/api/runs/${runId}`);
            return (await res.json()).run.status === "succeeded";
          });
          const badOption = await request("/api/jobs/gc/runs", {
            method: "POST",
            ...json({ options: { orphans: "yes" } }),
          });
          assert.equal(badOption.status, 400);
          assert.equal(
            (await request("/api/jobs/nope/runs", { method: "POST", ...json({}) })).status,
            404,
          );
          const text = await (await request("/metrics")).text();
          assert.match(text, /^flowstate_job_runs_total\{job="gc",status="succeeded"\} 2$/m);
        });
      });
    },
  });
}

Deno.test("serve: shutdown gives a run in flight back to the queue, never leaves it running", async () => {
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ request, server, runtime }) => {
    const started = await request("/api/flows/slow/runs", { method: "POST", ...json({}) });
    assert.equal(started.status, 202);
    const { runId } = await started.json();
    const records = await runtime.records();
    await eventually(
      "the server's worker starts it",
      async () => (await records.getRun(runId))?.status === "running",
    );
    await server.shutdown();
    await server.finished;
    const run = await records.getRun(runId);
    assert.equal(run?.status, "queued", "released for the next worker");
    assert.deepEqual(run?.queue?.attempts.map((a) => a.outcome), ["lost"]);
  });
});

Deno.test("serve: POST runs enqueues with delay, priority and a dedupe key; without a worker here, runs wait for one", async () => {
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ request, runtime }) => {
    const post = (body: unknown, headers: Record<string, string> = {}, query = "") =>
      request(`/api/flows/hello/runs${query}`, {
        method: "POST",
        ...json(body),
        headers: { "content-type": "application/json", ...headers },
      });
    const records = await runtime.records();

    const first = await documented<{ runId: string; status: string; existing: boolean }>(
      "POST",
      "/api/flows/{flow}/runs",
      await post({ input: { name: "a" }, key: "k1" }),
    );
    assert.deepEqual({ status: first.status, existing: first.existing }, {
      status: "queued",
      existing: false,
    });
    // The Idempotency-Key header is the same dedupe key as the body's "key".
    const again = await (await post({ input: { name: "b" } }, { "idempotency-key": "k1" })).json();
    assert.deepEqual(again, { runId: first.runId, status: "queued", existing: true });

    const before = Date.now();
    const delayed = await (await post({ delay: "1h", priority: 5 })).json();
    const queued = await records.getRun(delayed.runId);
    assert.equal(queued?.queue?.priority, 5);
    assert.ok(queued!.queue!.runAt >= before + 3_600_000, "not before an hour from now");

    // Retries with waits between them, as `flowstate enqueue --max-attempts 3 --backoff 30s`.
    const retried = await (await post({
      delay: "1h",
      maxAttempts: 3,
      backoff: { delay: "30s", factor: 3, max: "5m" },
    })).json();
    const withBackoff = await records.getRun(retried.runId);
    assert.equal(withBackoff?.queue?.maxAttempts, 3);
    assert.deepEqual(withBackoff?.queue?.backoff, { delay: 30_000, factor: 3, max: 300_000 });

    const at = new Date(Date.now() + 86_400_000).toISOString();
    const dated = await (await post({ runAt: at })).json();
    assert.equal((await records.getRun(dated.runId))?.queue?.runAt, Date.parse(at));

    for (
      const [body, pattern] of [
        [{ delay: "soon" }, /delay/],
        [{ priority: 2_000_000 }, /priority/],
        [{ maxAttempts: 0 }, /maxAttempts/],
        [{ runAt: "tomorrow" }, /runAt/],
        [{ backoff: { delay: "later" } }, /backoff\.delay/],
        [{ backoff: { delay: "1s", factor: 0.5 } }, /backoff\.factor/],
      ] as const
    ) {
      const res = await post(body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.match((await res.json()).error.message, pattern);
    }

    // Nothing runs here: the first run is still queued; ?wait=true waits for a worker anywhere.
    assert.equal((await records.getRun(first.runId))?.status, "queued");
    const waiting = post({ input: { name: "w" } }, {}, "?wait=true");
    await new Promise((r) => setTimeout(r, 100));
    const worker = startWorker(runtime, { pollMs: 50 });
    try {
      const waited = await documented<{ run: { status: string; outputs: { greeting: string } } }>(
        "POST",
        "/api/flows/{flow}/runs",
        await waiting,
      );
      assert.equal(waited.run.status, "succeeded");
      assert.equal(waited.run.outputs.greeting, "hello w");
      await eventually(
        "the first run ran too",
        async () => (await records.getRun(first.runId))?.status === "succeeded",
      );
      assert.equal((await records.getRun(delayed.runId))?.status, "queued", "never early");
    } finally {
      await worker.stop();
    }
  }, { worker: false });
});

Deno.test("serve: a body field the route does not know (a typo) is refused with the fields it knows, and nothing is queued or written", async () => {
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ request, runtime }) => {
    const send = async (method: string, path: string, body: unknown, headers = {}) => {
      const res = await request(path, {
        method,
        body: JSON.stringify(body),
        headers: { "content-type": "application/json", ...headers },
      });
      return { status: res.status, message: (await res.json()).error?.message as string };
    };
    // "inputs" for "input": the run would have run with its defaults.
    assert.deepEqual(await send("POST", "/api/flows/hello/runs", { inputs: { name: "x" } }), {
      status: 400,
      message:
        'Invalid body of POST /api/flows/hello/runs: inputs: unknown field (did you mean "input"?); the fields are input, delay, runAt, priority, key, maxAttempts, backoff',
    });
    assert.deepEqual((await (await runtime.records()).listRuns({})).runs, [], "nothing was queued");

    const put = await send("PUT", "/api/stores/main/entry?key=app&key=k", {
      value: 1,
      expiresIn: 1000,
    }, { "if-none-match": "*" });
    assert.deepEqual(put, {
      status: 400,
      message:
        'Invalid body of PUT /api/stores/main/entry: expiresIn: unknown field (did you mean "expireIn"?); the fields are value, expireIn',
    });
    assert.equal(await (await runtime.store("main")).get(["app", "k"]), null, "nothing written");
    // "valu" for "value": the field it lacks is named as missing, in words.
    const missing = await send("PUT", "/api/stores/main/entry?key=app&key=k", { valu: 1 }, {
      "if-none-match": "*",
    });
    assert.deepEqual(missing, {
      status: 400,
      message:
        'Invalid body of PUT /api/stores/main/entry: value: missing required field; valu: unknown field (did you mean "value"?); the fields are value, expireIn',
    });
    assert.equal(await (await runtime.store("main")).get(["app", "k"]), null, "nothing written");

    const job = await send("POST", "/api/jobs/gc/runs", { option: { orphans: true } });
    assert.equal(job.status, 400);
    assert.match(
      job.message,
      /^Invalid body of POST \/api\/jobs\/gc\/runs: option: unknown field \(did you mean "options"\?\)/,
    );
  });
});

Deno.test("serve: starting an invalid flow, by the API or its webhook, answers with that flow's problems (not 'no flow')", async () => {
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ request, runtime, dir }) => {
    await Deno.writeTextFile(
      join(dir, "flows", "typo.flow.yaml"),
      "id: typo\ntrigger: { http: { path: /hooks/typo } }\nnodes:\n  - { id: go, type: lgo }\n",
    );
    const started = await request("/api/flows/typo/runs", { method: "POST", ...json({}) });
    assert.equal(started.status, 400);
    assert.match(
      (await started.json()).error.message,
      /^Cannot start flow "typo": .*typo\.flow\.yaml:4:21: nodes\[0\]\.type: unknown node type "lgo"/,
    );
    const hooked = await request("/hooks/typo", { method: "POST", ...json({}) });
    assert.equal(hooked.status, 500);
    assert.match(
      (await hooked.json()).error.message,
      /^the flow typo \(.*typo\.flow\.yaml\), which declares the webhook \/hooks\/typo, is invalid: .*4:21: nodes\[0\]\.type: unknown node type "lgo".*flowstate validate/,
    );
    assert.deepEqual((await (await runtime.records()).listRuns({})).runs, [], "nothing queued");
  });
});

Deno.test("serve: GET /api/runs/{id}/nodes pages a run's nodes, those not started too (in the flow's order); GET /api/runs/{id} answers as before", async () => {
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ dir, runtime, request }) => {
    await Deno.writeTextFile(
      join(dir, "flows", "steps.flow.yaml"),
      `id: steps
nodes:
  - { id: first, type: log, with: { message: one } }
  - { id: hold, type: delay, needs: [first], with: { for: 60s } }
  - { id: zeta, type: log, needs: [hold], with: { message: three } }
  - { id: alpha, type: log, needs: [zeta], with: { message: four } }
`,
    );
    const started = await request("/api/flows/steps/runs", { method: "POST", ...json({}) });
    assert.equal(started.status, 202);
    const { runId } = await started.json();
    const records = await runtime.records();
    await eventually(
      "hold runs",
      async () =>
        (await records.getEvents(runId)).some((e) =>
          e.type === "node.start" && "node" in e && e.node === "hold"
        ),
    );
    type Page = RunDetail & {
      nodeIds: string[];
      offset: number;
      total: number;
      next?: number;
      run: { nodes: Record<string, unknown> };
    };
    const page = async (query: string) =>
      await documented<Page>(
        "GET",
        "/api/runs/{id}/nodes",
        await request(`/api/runs/${runId}/nodes${query}`),
      );
    const first = await page("?limit=3");
    assert.equal(first.run.status, "running");
    assert.deepEqual(first.nodeIds, ["first", "hold", "zeta"]);
    assert.equal(first.total, 4);
    assert.equal(first.next, 3);
    assert.ok(first.events.some((e) => e.type === "run.start"), "the run's own events come first");
    const second = await page("?offset=3&limit=3");
    assert.deepEqual(second.nodeIds, ["alpha"]);
    assert.equal(second.next, undefined);
    assert.deepEqual(second.events, [], "a node not started has no events");
    assert.deepEqual(second.run.nodes, {});
    // Without a page: the whole run, as before.
    const whole = await documented<RunDetail & { nodeIds?: unknown }>(
      "GET",
      "/api/runs/{id}",
      await request(`/api/runs/${runId}`),
    );
    assert.equal(whole.nodeIds, undefined);
    assert.ok(whole.events.length >= first.events.length);
    const cancel = await request(`/api/runs/${runId}/cancel`, { method: "POST" });
    assert.equal(cancel.status, 202, await cancel.clone().text());
    await cancel.body?.cancel();
    await eventually(
      "cancelled",
      async () => (await records.getRun(runId))?.status === "cancelled",
    );
    // Ended: every node in one page, its outcomes with it.
    const ended = await page("");
    assert.deepEqual(ended.nodeIds, ["first", "hold", "zeta", "alpha"]);
    assert.equal(ended.next, undefined);
    assert.deepEqual(Object.keys(ended.run.nodes).sort(), ["alpha", "first", "hold", "zeta"]);
    for (const bad of ["?limit=0", "?offset=-1", "?limit=10001", "?nodes=5"]) {
      const res = await request(`/api/runs/${runId}/nodes${bad}`);
      assert.equal(res.status, 400, bad);
      await res.body?.cancel();
    }
    const missing = await request("/api/runs/0mxbaaaaaaaaaaaaaaaa/nodes");
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  });
});

Deno.test("serve: GET /api/schedules parses a flow file again only when it changed, and shows a change at once", async () => {
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ dir, runtime, request }) => {
    const file = join(dir, "flows", "nightly.flow.yaml");
    const nightly = (cron: string) =>
      `id: nightly\nschedule: "${cron}"\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n`;
    await Deno.writeTextFile(file, nightly("0 3 * * *"));
    const cache = flowCacheOf(runtime)!;
    const cronOf = async () => {
      const list = await documented<{ id: string; cron: string }[]>(
        "GET",
        "/api/schedules",
        await request("/api/schedules"),
      );
      return list.find((s) => s.id === "flow:nightly")?.cron;
    };
    assert.equal(await cronOf(), "0 3 * * *");
    const parsed = cache.stats.misses;
    assert.ok(parsed >= 3, "every flow file was parsed once");
    // Nothing changed: nothing is parsed again.
    assert.equal(await cronOf(), "0 3 * * *");
    assert.equal(await cronOf(), "0 3 * * *");
    assert.equal(cache.stats.misses, parsed);
    // An edit shows at the next request, and only that file is parsed.
    await Deno.writeTextFile(file, nightly("30 4 * * *"));
    assert.equal(await cronOf(), "30 4 * * *");
    assert.equal(cache.stats.misses, parsed + 1);
    // A file that became invalid: the rest is listed (200), and a row says which file and why.
    await Deno.writeTextFile(
      file,
      "id: nightly\nschedule: 0 3 * * *\nnodes: [{ id: a, type: nope }]\n",
    );
    const listed = await documented<
      { id: string; cron: string | null; file?: string; error?: string }[]
    >("GET", "/api/schedules", await request("/api/schedules"));
    assert.ok(listed.some((s) => s.id === "job:gc" && s.error === undefined), "the jobs listed");
    assert.equal(listed.find((s) => s.id === "flow:nightly"), undefined);
    const broken = listed.filter((s) => s.error !== undefined);
    assert.equal(broken.length, 1, JSON.stringify(listed));
    assert.equal(broken[0].id, "file:flows/nightly.flow.yaml");
    assert.equal(broken[0].file, "flows/nightly.flow.yaml");
    assert.equal(broken[0].cron, null);
    assert.match(broken[0].error!, /nightly\.flow\.yaml.*nope/);
  });
});

Deno.test("serve: starting a flow that two files declare is refused naming both, nothing queued", async () => {
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ request, runtime, dir }) => {
    await Deno.writeTextFile(join(dir, "flows", "copy.flow.yaml"), FLOWS["hello.flow.yaml"]);
    const res = await request("/api/flows/hello/runs", { method: "POST", ...json({}) });
    assert.equal(res.status, 400);
    assert.match(
      (await res.json()).error.message,
      /^Cannot start flow "hello": both \S*copy\.flow\.yaml and \S*hello\.flow\.yaml define it; flow ids must be unique/,
    );
    assert.deepEqual((await (await runtime.records()).listRuns({})).runs, []);
  });
});

Deno.test("serve API: an unknown query parameter is a 400 naming the ones the route takes (it was ignored: entries?key= listed the whole store); the inspector's own queries pass", async () => {
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ request, runtime }) => {
    const store = await runtime.store("main");
    await store.set(["flow", "tally"], 1);
    await store.set(["other"], 2);
    const res = await request("/api/stores/main/entries?key=flow&key=tally");
    const body = await documented<{ error: { code: string; message: string } }>(
      "GET",
      "/api/stores/{store}/entries",
      res,
    );
    assert.equal(res.status, 400);
    assert.equal(body.error.code, "bad_request");
    assert.equal(
      body.error.message,
      'Unknown query parameter "key" for GET /api/stores/{store}/entries: it takes prefix, limit, cursor (GET /api/stores/{store}/entry takes key)',
    );
    const typo = await (await request("/api/runs?stauts=failed")).json();
    assert.match(
      typo.error.message,
      /"stauts" .*\(did you mean "status"\?\): it takes flow, status/,
    );
    // What the inspector sends (src/serve/ui/api.js) is still served.
    for (
      const path of [
        "/api/stores/main/entries?prefix=flow&limit=10",
        "/api/stores/main/children?prefix=flow&limit=10",
        "/api/stores/main/entry?key=flow&key=tally",
        "/api/runs?flow=hello&status=failed&limit=60",
        "/api/metrics?flow=hello",
      ]
    ) {
      const ok = await request(path);
      assert.equal(ok.status, 200, `${path}: ${await ok.text()}`);
    }
    const listed = await (await request("/api/stores/main/entries?prefix=flow")).json();
    assert.deepEqual(listed.entries.map((e: { key: string[] }) => e.key), [["flow", "tally"]]);
  });
});

Deno.test("POST /api/flows/{flow}/runs of a flow whose queue.by fails on the inputs is a 400 saying where, and queues nothing", async () => {
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ dir, runtime, request }) => {
    const flow = QUEUE_BY_FAILS;
    await Deno.writeTextFile(join(dir, "flows", "q.flow.yaml"), flow);
    const res = await request("/api/flows/q/runs", { method: "POST", ...json({}) });
    const body = await documented<{ error: { code: string; message: string } }>(
      "POST",
      "/api/flows/{flow}/runs",
      res,
    );
    assert.equal(res.status, 400);
    assert.equal(body.error.code, "bad_request");
    assert.match(
      body.error.message,
      /^Cannot start flow "q": \S*q\.flow\.yaml:6:\d+: queue\.by: Cannot evaluate \$\{\{ round\(inputs\.x\) \}\}: round\(\) takes a number/,
    );
    const records = await runtime.records();
    assert.deepEqual((await records.listRuns({ flowId: "q" })).runs, []);
  });
});
