/**
 * What a running run's inspector page and a flows list cost the server and
 * the wire: `GET /api/runs/{id}?after=` answers only the events recorded
 * since an earlier answer, and `GET /api/flows` parses a flow file again only
 * when it changed.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { documented, eventually, withServed } from "./_serve.ts";
import { gatedFlow } from "./_gated_flow.ts";
import { flowCacheOf } from "../src/runtime.ts";

type RunDetail = {
  run: { status: string; nodes: Record<string, { status: string }> };
  events: { at: number; type: string; node?: string }[];
  eventCount: number;
};

Deno.test("serve: GET /api/runs/{id}?after= answers only the events recorded since an earlier answer, from the first page to the run's end", async () => {
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ dir, runtime, request }) => {
    const width = 300;
    await Deno.writeTextFile(join(dir, "flows", "gated.flow.yaml"), gatedFlow(dir, width));
    const first = join(dir, "release-first");
    const second = join(dir, "release-second");
    const started = await request("/api/flows/gated/runs", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ input: { first, second } }),
    });
    assert.equal(started.status, 202, await started.clone().text());
    const { runId } = await started.json();
    const records = await runtime.records();
    const startedNode = (node: string) => async () =>
      (await records.getEvents(runId)).some((e) =>
        e.type === "node.start" && "node" in e && e.node === node
      );
    await eventually("the first gate runs", startedNode("first"));

    // The page's first answer: every node in one page, with the cursor.
    const page = await documented<RunDetail & { nodeIds: string[] }>(
      "GET",
      "/api/runs/{id}/nodes",
      await request(`/api/runs/${runId}/nodes?limit=1000`),
    );
    assert.equal(page.nodeIds.length, width + 4);
    assert.equal(page.eventCount, page.events.length, "one page: every event, and their count");
    const whole = await request(`/api/runs/${runId}`);
    const wholeBytes = (await whole.clone().arrayBuffer()).byteLength;
    const wholeBody = await documented<RunDetail>("GET", "/api/runs/{id}", whole);
    assert.ok(wholeBody.eventCount >= page.eventCount);
    assert.equal(wholeBody.eventCount, wholeBody.events.length);

    // Polls from the cursor: each answers what was added since, and is small.
    const seen = [...page.events];
    let cursor = page.eventCount;
    const sizes: number[] = [];
    const poll = async () => {
      const res = await request(`/api/runs/${runId}?after=${cursor}`);
      sizes.push((await res.clone().arrayBuffer()).byteLength);
      const body = await documented<RunDetail>("GET", "/api/runs/{id}", res);
      assert.ok(body.eventCount >= cursor, "the count never goes back");
      assert.equal(body.eventCount - cursor, body.events.length, "exactly the events since");
      seen.push(...body.events);
      cursor = body.eventCount;
      return body;
    };
    const quiet = await poll();
    assert.equal(quiet.run.status, "running");
    await Deno.writeTextFile(first, "go");
    await eventually("the second gate runs", startedNode("second"));
    const middle = await poll();
    assert.ok(
      middle.events.some((e) => e.type === "node.end" && e.node === "middle"),
      "the node that ended since is in the answer",
    );
    assert.ok(
      middle.events.every((e) => !(e.node ?? "").match(/^n\d+$/)),
      "the nodes that ended before are not",
    );
    await Deno.writeTextFile(second, "go");
    await eventually(
      "the run ends",
      async () => (await records.getRun(runId))?.status === "succeeded",
    );
    const end = await poll();
    assert.equal(end.run.status, "succeeded");
    assert.equal(end.run.nodes.last.status, "succeeded", "the ended record has every outcome");
    assert.ok(end.events.some((e) => e.type === "run.end"));

    // Nothing missed, nothing twice: the pieces are the whole run's events, in order.
    const final = await documented<RunDetail>(
      "GET",
      "/api/runs/{id}",
      await request(`/api/runs/${runId}`),
    );
    assert.deepEqual(seen, final.events);
    assert.equal(final.eventCount, cursor);
    // Each poll while it ran carried a small part of what the whole run weighed (the last
    // one brings the ended record, with every node's outcome: the final consistent state).
    assert.equal(sizes.length, 3);
    for (const size of sizes.slice(0, -1)) {
      assert.ok(size < wholeBytes / 20, `${size} of ${wholeBytes} bytes`);
    }

    // After the end: nothing more, and a cursor past the events is refused, said how to fix.
    const after = await poll();
    assert.deepEqual(after.events, []);
    for (const bad of ["-1", "x", "1.5", String(cursor + 1)]) {
      const res = await request(`/api/runs/${runId}?after=${bad}`);
      const body = await documented<{ error: { message: string } }>(
        "GET",
        "/api/runs/{id}",
        res,
      );
      assert.equal(res.status, 400, bad);
      assert.match(body.error.message, new RegExp(`^Invalid query parameter after=${bad}: `));
    }
    const past = await request(`/api/runs/${runId}?after=${cursor + 1}`);
    assert.match(
      (await past.json()).error.message,
      new RegExp(`has ${cursor} events; pass the eventCount of an earlier answer`),
    );
    // The parameter is in the OpenAPI document.
    const doc = await (await request("/api/openapi.json")).json();
    const params = doc.paths["/api/runs/{id}"].get.parameters as { name: string; in: string }[];
    assert.ok(params.some((p) => p.name === "after" && p.in === "query"));
  });
});

Deno.test("serve: GET /api/flows parses a flow file again only when it changed, and shows an edit at once", async () => {
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ dir, runtime, request }) => {
    const file = join(dir, "flows", "nightly.flow.yaml");
    const nightly = (cron: string) =>
      `id: nightly\nschedule: "${cron}"\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n`;
    await Deno.writeTextFile(file, nightly("0 3 * * *"));
    await Deno.writeTextFile(
      join(dir, "flows", "broken.flow.yaml"),
      "id: broken\nnodes: [{ id: a, type: nope }]\n",
    );
    const cache = flowCacheOf(runtime)!;
    const list = async () =>
      await documented<{ id: string; file?: string; schedule?: { cron: string } }[]>(
        "GET",
        "/api/flows",
        await request("/api/flows"),
      );
    const cronOf = async () => (await list()).find((f) => f.id === "nightly")?.schedule?.cron;
    assert.equal(await cronOf(), "0 3 * * *");
    const parses = cache.parseStats.parses;
    assert.equal(parses, 4, "each of the four files parsed once (the broken one too)");
    // Nothing changed: nothing is parsed again (the broken file neither).
    const ids = (await list()).map((f) => f.id);
    assert.deepEqual(ids, ["hello", "nightly", "slow"]);
    assert.equal(await cronOf(), "0 3 * * *");
    assert.equal(cache.parseStats.parses, parses);
    // An edit shows at the next request, and only that file is parsed.
    await Deno.writeTextFile(file, nightly("30 4 * * *"));
    assert.equal(await cronOf(), "30 4 * * *");
    assert.equal(cache.parseStats.parses, parses + 1);
    // A file that became invalid is left out, as before; fixed, it is back.
    await Deno.writeTextFile(file, "id: nightly\nnodes: [{ id: a, type: nope }]\n");
    assert.equal((await list()).some((f) => f.id === "nightly"), false);
    await Deno.writeTextFile(file, nightly("0 5 * * *"));
    assert.equal(await cronOf(), "0 5 * * *");
    // A file removed is gone from the list.
    await Deno.remove(file);
    assert.equal((await list()).some((f) => f.id === "nightly"), false);
    // Starting a flow uses the same parsed files: nothing parsed again.
    const before = cache.parseStats.parses;
    const start = await request("/api/flows/hello/runs", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    assert.equal(start.status, 202, await start.clone().text());
    await start.body?.cancel();
    assert.equal(cache.parseStats.parses, before);
  });
});
