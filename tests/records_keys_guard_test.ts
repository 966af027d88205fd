/**
 * Flowstate's own records (under `flowstate/` in the records store: runs,
 * flow versions, metrics, leases) are not written by hand by accident:
 * `state set` and `state rm` refuse them (exit 2, the record untouched)
 * unless `--force`, and the HTTP API's `PUT`/`DELETE …/entry` answer 403.
 * Keys under `flowstate/` in another store, or in a scope, are a user's.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { withCliProject } from "./_cli_sandbox.ts";
import { withServed } from "./_serve.ts";

const COUNTER = `id: counter
nodes:
  - { id: bump, type: state.increment, with: { key: n } }
`;

Deno.test("cli: state set and state rm refuse a key of Flowstate's records (exit 2, the run untouched) unless --force; another store's flowstate/ keys are the user's", async () => {
  await withCliProject(
    "stores:\n  default: { plugin: sqlite, path: .flowstate/state.db }\n  other: { plugin: sqlite, path: .flowstate/other.db }\n",
    async (run, dir) => {
      await Deno.writeTextFile(join(dir, "counter.flow.yaml"), COUNTER);
      const first = await run("run", "counter.flow.yaml", "--json");
      assert.equal(first.code, 0, first.stderr);
      const id = JSON.parse(first.stdout).id;
      const key = `flowstate/runs/${id}`;

      const set = await run("state", "set", key, '"oops"');
      assert.equal(set.code, 2, set.stderr);
      assert.equal(
        set.stderr.trim(),
        `error: ${key} in store "default" is one of Flowstate's records (runs, flow versions, ` +
          "metrics, leases under flowstate/), written by Flowstate only: a value written by hand " +
          "breaks what it belongs to. Change them with the runs, flows and gc commands; to write " +
          "it anyway, add --force",
      );
      const rm = await run("state", "rm", key);
      assert.equal(rm.code, 2, rm.stderr);
      assert.match(rm.stderr, /to delete it anyway, add --force/);
      const shown = await run("runs", "show", id, "--json");
      assert.equal(shown.code, 0, shown.stderr);
      assert.equal(JSON.parse(shown.stdout).run.status, "succeeded", "the record is untouched");

      // Another store's flowstate/ keys are the user's; so is a scope's.
      const other = await run("state", "set", "flowstate/x", "1", "--store", "other");
      assert.equal(other.code, 0, other.stderr);
      const scoped = await run("state", "set", "flowstate", "2", "--flow", "counter");
      assert.equal(scoped.code, 0, scoped.stderr);
      // The key flowstate itself is not a record (they are under it): `state ls` lists it as
      // the user's, and it is written and deleted as any other.
      const root = await run("state", "set", "flowstate", "3");
      assert.equal(root.code, 0, root.stderr);
      assert.equal((await run("state", "get", "flowstate")).stdout.trim(), "3");
      const rootRm = await run("state", "rm", "flowstate");
      assert.equal(rootRm.code, 0, rootRm.stderr);

      // --force: the user said so.
      const forced = await run("state", "rm", key, "--force");
      assert.equal(forced.code, 0, forced.stderr);
      assert.equal((await run("runs", "show", id)).code, 1, "deleted, as asked");
    },
  );
});

Deno.test("PUT and DELETE /api/stores/{store}/entry of a key of Flowstate's records answer 403, nothing written", async () => {
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ request, runtime }) => {
    const done = await runtime.runFlow({
      id: "t",
      nodes: [{ id: "a", type: "transform", with: { value: 1 } }],
    });
    const path = `/api/stores/main/entry?key=flowstate&key=runs&key=${done.id}`;
    const entry = await request(path);
    assert.equal(entry.status, 200);
    const etag = entry.headers.get("etag")!;
    await entry.body?.cancel();
    const put = await request(path, {
      method: "PUT",
      headers: { "content-type": "application/json", "if-match": etag },
      body: JSON.stringify({ value: "oops" }),
    });
    assert.equal(put.status, 403);
    const body = await put.json();
    assert.equal(body.error.code, "forbidden");
    assert.match(body.error.message, /are Flowstate's records .* written by Flowstate only/);
    const del = await request(path, { method: "DELETE", headers: { "if-match": etag } });
    assert.equal(del.status, 403);
    await del.body?.cancel();
    const records = await runtime.records();
    assert.equal((await records.getRun(done.id))?.status, "succeeded", "the record is untouched");
    // A user's key is written as before.
    const mine = await request("/api/stores/main/entry?key=mine", {
      method: "PUT",
      headers: { "content-type": "application/json", "if-none-match": "*" },
      body: JSON.stringify({ value: 1 }),
    });
    assert.equal(mine.status, 200);
    await mine.body?.cancel();
    // So is the key ["flowstate"] itself: the records are under it.
    const root = await request("/api/stores/main/entry?key=flowstate", {
      method: "PUT",
      headers: { "content-type": "application/json", "if-none-match": "*" },
      body: JSON.stringify({ value: 2 }),
    });
    assert.equal(root.status, 200);
    await root.body?.cancel();
  });
});
