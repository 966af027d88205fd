/**
 * Flows and versions the archive alone keeps, through the library (mod.ts:
 * a runtime's `records().listFlows()` and `listVersions()`) and over HTTP
 * (`GET /api/flows`, `GET /api/flows/{flow}/versions`), on SQLite and on
 * PostgreSQL (ignored without FLOWSTATE_TEST_POSTGRES_URL): runs archived by
 * the archive job, a version deleted by the retention job, then a runtime
 * whose records store holds nothing of the flow (the same home, a new
 * records store) still lists it, marked archived, with its versions.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type ConfigObject, openRuntime, runJob } from "../mod.ts";
import { serve } from "../src/serve/server.ts";
import { openClient } from "../plugins/postgres/client.ts";
import { documented } from "./_serve.ts";
import { hangSignal } from "./_deadline.ts";

const PG_URL = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL");

const flow = (message: string) => ({
  id: "old",
  nodes: [{ id: "say", type: "log", with: { message } }],
});

type Flow = {
  id: string;
  head: string | null;
  versions: number;
  lastRun: { id: string; archived?: true } | null;
  archived?: true;
};
type Version = { hash: string; seq: number; archived?: true; archive?: string };

/** The test, over the records stores `store("old")` and then `store("new")`. */
async function archivedFlows(store: (name: string) => NonNullable<ConfigObject["stores"]>[string]) {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-archived-flows-" });
  const home = join(dir, "home");
  try {
    let first, second;
    {
      await using rt = await openRuntime({
        cwd: dir,
        home,
        config: { stores: { main: store("old") } },
      });
      first = await rt.runFlow(flow("first"));
      second = await rt.runFlow(flow("second"));
      const archived = await runJob(rt, "archive", { options: { olderThan: 0 } });
      assert.equal(archived.outputs?.archived, 2, JSON.stringify(archived.outputs));
      const pruned = await runJob(rt, "retention", { options: { maxAge: 0 } });
      assert.equal(pruned.outputs?.versionsDeleted, 1, JSON.stringify(pruned.outputs));

      // The version retention deleted is listed from the archive, marked.
      const versions = await (await rt.records()).listVersions("old");
      assert.deepEqual(
        versions.map((v) => [v.hash, v.seq, v.archived ?? false]),
        [[second.flowVersion, 2, false], [first.flowVersion, 1, true]],
      );
      assert.match(versions[1].archive ?? "", /^runs-\d{4}-\d{2}\.ndjson\.gz$/);
      assert.deepEqual(versions[1].definition, flow("first"), "with its definition");
      const [listed] = await (await rt.records()).listFlows();
      assert.equal(listed.archived, undefined, "still recorded");
      assert.equal(listed.lastRunAt, second.startedAt);
      assert.match(listed.lastRunArchive ?? "", /^runs-/);
    }

    // The same home, a records store that holds nothing of "old".
    await using rt = await openRuntime({
      cwd: dir,
      home,
      config: { stores: { main: store("new") } },
    });
    const records = await rt.records();
    const [old, ...rest] = await records.listFlows();
    assert.deepEqual(rest, []);
    assert.deepEqual(old, {
      id: "old",
      head: second.flowVersion,
      versions: 2,
      prunedVersions: 0,
      lastRunAt: second.startedAt,
      lastStatus: "succeeded",
      description: null,
      archived: true,
      lastRunArchive: old.lastRunArchive,
    });
    assert.deepEqual(
      (await records.listVersions("old")).map((v) => [v.hash, v.seq, v.archived]),
      [[second.flowVersion, 2, true], [first.flowVersion, 1, true]],
    );

    const server = await serve(rt, { port: 0 });
    try {
      const get = (path: string) => fetch(new URL(path, server.url), { signal: hangSignal() });
      const flows = await documented<Flow[]>("GET", "/api/flows", await get("/api/flows"));
      const listed = flows.find((f) => f.id === "old");
      assert.equal(listed?.archived, true, JSON.stringify(flows));
      assert.equal(listed?.head, second.flowVersion);
      assert.equal(listed?.versions, 2);
      assert.equal(listed?.lastRun?.id, second.id);
      assert.equal(listed?.lastRun?.archived, true);

      const versions = await documented<Version[]>(
        "GET",
        "/api/flows/{flow}/versions",
        await get("/api/flows/old/versions"),
      );
      assert.deepEqual(
        versions.map((v) => [v.hash, v.seq, v.archived, v.archive]),
        [
          [second.flowVersion, 2, true, old.lastRunArchive],
          [first.flowVersion, 1, true, old.lastRunArchive],
        ],
      );
      const one = await documented<{ archived?: true; definition: unknown }>(
        "GET",
        "/api/flows/{flow}/versions/{hash}",
        await get(`/api/flows/old/versions/${first.flowVersion}`),
      );
      assert.equal(one.archived, true);
      assert.deepEqual(one.definition, flow("first"));
      const missing = await get("/api/flows/nope/versions");
      assert.equal(missing.status, 404);
      await documented("GET", "/api/flows/{flow}/versions", missing);
    } finally {
      await server.shutdown();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a flow and versions only the archive keeps are listed by the records and the API (sqlite)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-archived-flows-db-" });
  try {
    await archivedFlows((name) => ({ plugin: "sqlite", path: join(dir, `${name}.db`) }));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "a flow and versions only the archive keeps are listed by the records and the API (postgres)",
  ignore: PG_URL === undefined,
  async fn() {
    const prefix = `archflows_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
    const sql = openClient(PG_URL!);
    try {
      await archivedFlows((name) => ({
        plugin: "postgres",
        url: PG_URL!,
        table: `${prefix}_${name}`,
      }));
    } finally {
      for (const name of ["old", "new"]) {
        const table = `${prefix}_${name}`;
        await sql.unsafe(`DROP TABLE IF EXISTS ${table}, ${table}_meta, ${table}_feed CASCADE`);
      }
      await sql.end();
    }
  },
});
