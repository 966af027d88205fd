/**
 * Archived runs over HTTP: every route that takes a run id answers for a run
 * the archive job moved to `<home>/archive/` (marked `archived`, with its
 * file), cancelling one is a 409, its definition comes from the archive, and
 * `GET /api/runs?archived=true` lists archived runs a page at a time. The
 * server reads the archive through one reader that keeps the indexes: a file
 * the archive job rewrote afterwards is read again.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runJob } from "../mod.ts";
import { documented, withServed } from "./_serve.ts";

const SQLITE = (dir: string) => ({ main: { plugin: "sqlite", path: join(dir, "state.db") } });

type RunDetail = {
  run: { id: string; status: string; flowId: string; outputs: Record<string, unknown> | null };
  events: { type: string }[];
  eventCount: number;
  archived?: true;
  archive?: string;
};

Deno.test("serve: an archived run is served by id, read-only, with its nodes, changes and definition", async () => {
  await withServed(SQLITE, async ({ request, runtime, dir }) => {
    const hello = join(dir, "flows", "hello.flow.yaml");
    const first = await runtime.runFlow(hello, { input: { name: "Ada" } });
    const archive = await runJob(runtime, "archive", { options: { olderThan: 0 } });
    assert.equal(archive.outputs?.archived, 1, JSON.stringify(archive.outputs));
    assert.equal(await (await runtime.records()).getRun(first.id), null, "moved out");

    const detail = await documented<RunDetail>(
      "GET",
      "/api/runs/{id}",
      await request(`/api/runs/${first.id}`),
    );
    assert.equal(detail.run.id, first.id);
    assert.equal(detail.run.status, "succeeded");
    assert.deepEqual(detail.run.outputs, { greeting: "hello Ada" });
    assert.equal(detail.archived, true);
    assert.match(detail.archive ?? "", /^runs-\d{4}-\d{2}\.ndjson\.gz$/);
    assert.equal(detail.eventCount, detail.events.length);
    assert.ok(detail.events.some((e) => e.type === "node.end"));
    const later = await documented<RunDetail>(
      "GET",
      "/api/runs/{id}",
      await request(`/api/runs/${first.id}?after=${detail.eventCount}`),
    );
    assert.deepEqual(later.events, []);

    const nodes = await documented<RunDetail & { nodeIds: string[]; total: number }>(
      "GET",
      "/api/runs/{id}/nodes",
      await request(`/api/runs/${first.id}/nodes`),
    );
    assert.deepEqual(nodes.nodeIds, ["greet"]);
    assert.equal(nodes.archived, true);

    const changes = await documented<{ runId: string }>(
      "GET",
      "/api/runs/{id}/changes",
      await request(`/api/runs/${first.id}/changes`),
    );
    assert.equal(changes.runId, first.id);

    const definition = await documented<
      { from: string; definition: { id: string }; source?: string; archived?: true }
    >("GET", "/api/runs/{id}/definition", await request(`/api/runs/${first.id}/definition`));
    assert.equal(definition.from, "archive");
    assert.equal(definition.definition.id, "hello");
    assert.match(definition.source ?? "", /^id: hello/);
    assert.equal(definition.archived, true);

    const cancel = await request(`/api/runs/${first.id}/cancel`, { method: "POST" });
    assert.equal(cancel.status, 409);
    const refused = await documented<{ error: { message: string } }>(
      "POST",
      "/api/runs/{id}/cancel",
      cancel,
    );
    assert.match(
      refused.error.message,
      new RegExp(
        `^Cannot cancel run ${first.id}: it already ended \\(succeeded\\) and is archived in runs-`,
      ),
    );

    // A live run's definition comes from the records store.
    const live = await runtime.runFlow(hello);
    const liveDefinition = await documented<{ from: string; archived?: true }>(
      "GET",
      "/api/runs/{id}/definition",
      await request(`/api/runs/${live.id}/definition`),
    );
    assert.equal(liveDefinition.from, "records");
    assert.equal(liveDefinition.archived, undefined);

    // The archive job rewrites the period's file with the second run: the server reads it anew.
    await runJob(runtime, "archive", { options: { olderThan: 0 } });
    const second = await documented<RunDetail>(
      "GET",
      "/api/runs/{id}",
      await request(`/api/runs/${live.id}`),
    );
    assert.equal(second.archived, true);
    assert.equal(second.run.id, live.id);

    // Unknown stays a 404.
    const unknown = await request("/api/runs/0mjuw3ms0abcdefghijk");
    assert.equal(unknown.status, 404);
    await unknown.body?.cancel();
  });
});

Deno.test("serve: GET /api/runs?archived=true lists archived runs, filtered, a page at a time", async () => {
  await withServed(SQLITE, async ({ request, runtime, dir }) => {
    const hello = join(dir, "flows", "hello.flow.yaml");
    const ids: string[] = [];
    for (const name of ["a", "b", "c"]) {
      ids.push((await runtime.runFlow(hello, { input: { name } })).id);
    }
    await runJob(runtime, "archive", { options: { olderThan: 0 } });

    type Page = { runs: { id: string; archived?: true; archive?: string }[]; cursor?: string };
    const live = await documented<Page>("GET", "/api/runs", await request("/api/runs"));
    assert.deepEqual(live.runs.filter((r) => ids.includes(r.id)), [], "no longer recorded");

    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 5; page++) {
      const query = `/api/runs?archived=true&flow=hello&limit=2${
        cursor ? `&cursor=${cursor}` : ""
      }`;
      const body = await documented<Page>("GET", "/api/runs", await request(query));
      for (const r of body.runs) {
        assert.equal(r.archived, true);
        assert.match(r.archive ?? "", /^runs-.*\.ndjson\.gz$/);
        seen.push(r.id);
      }
      cursor = body.cursor;
      if (cursor === undefined) break;
    }
    assert.deepEqual(seen, [...ids].reverse(), "newest first, each once");

    const none = await documented<Page>(
      "GET",
      "/api/runs",
      await request("/api/runs?archived=true&status=failed"),
    );
    assert.deepEqual(none.runs, []);

    for (const bad of ["archived=yes", "archived=true&cursor=nope"]) {
      const res = await request(`/api/runs?${bad}`);
      assert.equal(res.status, 400, bad);
      const body = await documented<{ error: { message: string } }>("GET", "/api/runs", res);
      assert.match(body.error.message, /archived/);
    }
  });
});

Deno.test("serve: an archived run asked for again is not decompressed again; a rewritten file is", async () => {
  await withServed(SQLITE, async ({ request, runtime, dir }) => {
    const hello = join(dir, "flows", "hello.flow.yaml");
    const run = await runtime.runFlow(hello);
    await runJob(runtime, "archive", { options: { olderThan: 0 } });
    const first = await request(`/api/runs/${run.id}`);
    const { archive } = await documented<RunDetail>("GET", "/api/runs/{id}", first);
    const path = join(dir, "home", "archive", archive!);

    // Zeros in its place, same size, same inode, same modification time: a reader that
    // decompressed the file again would find it damaged. The server answers from memory.
    const { size, mtime, atime } = await Deno.stat(path);
    const bytes = await Deno.readFile(path);
    await Deno.writeFile(path, new Uint8Array(size));
    await Deno.utime(path, atime!, mtime!);
    for (const route of ["", "/nodes", "/definition"]) {
      const res = await request(`/api/runs/${run.id}${route}`);
      assert.equal(res.status, 200, `${route}: ${await res.clone().text()}`);
      await documented("GET", `/api/runs/{id}${route}`, res);
    }

    // Once the file changes (as the archive job renames a new one over it), it is read again.
    await Deno.utime(path, atime!, new Date(mtime!.getTime() + 1000));
    const damaged = await request(`/api/runs/${run.id}`);
    assert.equal(damaged.status, 500);
    const body = await documented<{ error: { message: string } }>(
      "GET",
      "/api/runs/{id}",
      damaged,
    );
    assert.match(body.error.message, /the archive file .* is damaged/);
    await Deno.writeFile(path, bytes);
    const again = await request(`/api/runs/${run.id}`);
    assert.equal((await documented<RunDetail>("GET", "/api/runs/{id}", again)).run.id, run.id);
  });
});

Deno.test("serve: a flow version the retention job deleted after its runs were archived is read from the archive", async () => {
  await withServed(SQLITE, async ({ request, runtime, dir }) => {
    const hello = join(dir, "flows", "hello.flow.yaml");
    const original = await Deno.readTextFile(hello);
    const first = await runtime.runFlow(hello);
    await Deno.writeTextFile(hello, original.replace("hello ${{", "hi ${{"));
    const second = await runtime.runFlow(hello);
    assert.notEqual(first.flowVersion, second.flowVersion);
    await runJob(runtime, "archive", { options: { olderThan: 0 } });
    const retention = await runJob(runtime, "retention", { options: { maxAge: 0 } });
    assert.equal(retention.outputs?.versionsDeleted, 1, JSON.stringify(retention.outputs));
    const records = await runtime.records();
    assert.equal(await records.getVersion("hello", first.flowVersion), null, "deleted");

    type Version = {
      hash: string;
      parent: string | null;
      seq: number;
      source?: string;
      definition: { id: string };
      archived?: true;
      archive?: string;
    };
    const path = `/api/flows/hello/versions/${first.flowVersion}`;
    const version = await documented<Version>(
      "GET",
      "/api/flows/{flow}/versions/{hash}",
      await request(path),
    );
    assert.equal(version.hash, first.flowVersion);
    assert.equal(version.seq, 1);
    assert.equal(version.source, original);
    assert.equal(version.definition.id, "hello");
    assert.equal(version.archived, true);
    assert.match(version.archive ?? "", /^runs-\d{4}-\d{2}\.ndjson\.gz$/);

    // The head is still recorded: not marked.
    const head = await documented<Version>(
      "GET",
      "/api/flows/{flow}/versions/{hash}",
      await request(`/api/flows/hello/versions/${second.flowVersion}`),
    );
    assert.equal(head.parent, first.flowVersion);
    assert.equal(head.archived, undefined);

    // A hash no run ran, or of another flow: 404.
    for (
      const other of [
        `/api/flows/hello/versions/${"0".repeat(64)}`,
        `/api/flows/slow/versions/${first.flowVersion}`,
      ]
    ) {
      const res = await request(other);
      assert.equal(res.status, 404, other);
      await documented("GET", "/api/flows/{flow}/versions/{hash}", res);
    }

    // The archive's versions file moved aside: the 404 says the archive does not keep it.
    const versionsFile = join(
      dir,
      "home",
      "archive",
      version.archive!.replace(".ndjson.gz", ".versions.ndjson.gz"),
    );
    await Deno.rename(versionsFile, `${versionsFile}.aside`);
    const gone = await request(path);
    assert.equal(gone.status, 404);
    const body = await documented<{ error: { message: string } }>(
      "GET",
      "/api/flows/{flow}/versions/{hash}",
      gone,
    );
    assert.match(
      body.error.message,
      new RegExp(
        `the archive does not keep it: the runs archived in ${
          version.archive!.replaceAll(".", "\\.")
        } ran it`,
      ),
    );
  });
});

Deno.test("serve: a flow's and a job's last run may be archived (marked so); metrics still count archived runs", async () => {
  await withServed(SQLITE, async ({ request, runtime, dir }) => {
    const hello = join(dir, "flows", "hello.flow.yaml");
    await Deno.writeTextFile(
      join(dir, "flows", "tick.flow.yaml"),
      'id: tick\nschedule: "0 * * * *"\nnodes:\n  - { id: say, type: log, with: { message: tick } }\n',
    );
    await runtime.runFlow(hello, { input: { name: "a" } });
    const last = await runtime.runFlow(hello, { input: { name: "b" } });
    const tick = await runtime.runFlow(join(dir, "flows", "tick.flow.yaml"));
    const gc = await runJob(runtime, "gc");
    await runJob(runtime, "archive", { options: { olderThan: 0 } });
    const records = await runtime.records();
    assert.deepEqual((await records.listRunSummaries({ flowId: "hello" })).runs, [], "archived");

    type Last = { id: string; status: string; archived?: true; archive?: string } | null;
    const flows = await documented<{ id: string; lastRun: Last }[]>(
      "GET",
      "/api/flows",
      await request("/api/flows"),
    );
    const byId = new Map(flows.map((f) => [f.id, f.lastRun]));
    assert.equal(byId.get("hello")?.id, last.id);
    assert.equal(byId.get("hello")?.status, "succeeded");
    assert.equal(byId.get("hello")?.archived, true);
    assert.match(byId.get("hello")?.archive ?? "", /^runs-\d{4}-\d{2}\.ndjson\.gz$/);
    assert.equal(byId.get("slow"), null, "never ran");

    // Asked again, the server answers from what it kept of the archive's index: its file and
    // index replaced by zeros (same size, inode and modification time) are not read again.
    const file = join(dir, "home", "archive", byId.get("hello")!.archive!);
    const index = file.replace(".ndjson.gz", ".index.json");
    const saved = await Promise.all([file, index].map(async (path) => {
      const { size, mtime, atime } = await Deno.stat(path);
      const bytes = await Deno.readFile(path);
      await Deno.writeFile(path, new Uint8Array(size));
      await Deno.utime(path, atime!, mtime!);
      return { path, bytes, atime: atime!, mtime: mtime! };
    }));
    const fromMemory = await documented<{ id: string; lastRun: Last }[]>(
      "GET",
      "/api/flows",
      await request("/api/flows"),
    );
    assert.deepEqual(fromMemory, flows);
    for (const { path, bytes, atime, mtime } of saved) {
      await Deno.writeFile(path, bytes);
      await Deno.utime(path, atime, mtime);
    }

    const jobs = await documented<{ name: string; last: Last }[]>(
      "GET",
      "/api/jobs",
      await request("/api/jobs"),
    );
    const gcLast = jobs.find((j) => j.name === "gc")?.last;
    assert.equal(gcLast?.id, gc.id);
    assert.equal(gcLast?.archived, true);
    // The archive job's own run ended after the others were archived: recorded, not marked.
    const archiveLast = jobs.find((j) => j.name === "archive")?.last;
    assert.equal(archiveLast?.archived, undefined);

    const schedules = await documented<{ id: string; lastRun: Last }[]>(
      "GET",
      "/api/schedules",
      await request("/api/schedules"),
    );
    const tickLast = schedules.find((s) => s.id === "flow:tick")?.lastRun;
    assert.equal(tickLast?.id, tick.id);
    assert.equal(tickLast?.archived, true);

    // A newer recorded run is the last run again, unmarked.
    const live = await runtime.runFlow(hello);
    const again = await documented<{ id: string; lastRun: Last }[]>(
      "GET",
      "/api/flows",
      await request("/api/flows"),
    );
    const helloAgain = again.find((f) => f.id === "hello")?.lastRun;
    assert.equal(helloAgain?.id, live.id);
    assert.equal(helloAgain?.archived, undefined);

    // Metrics count every finished run, the archived ones too.
    const metrics = await documented<{ flowId: string; version: string; count: number }[]>(
      "GET",
      "/api/metrics",
      await request("/api/metrics?flow=hello"),
    );
    assert.equal(metrics.find((m) => m.version === "*")?.count, 3);

    // A damaged archive file fails no listing: its runs are left out of the last runs.
    const bytes = await Deno.readFile(file);
    await Deno.writeFile(file, bytes.slice(0, bytes.length >> 1));
    for (const route of ["/api/flows", "/api/jobs", "/api/schedules"]) {
      const res = await request(route);
      assert.equal(res.status, 200, `${route}: ${await res.clone().text()}`);
      await documented("GET", route, res);
    }
  });
});
