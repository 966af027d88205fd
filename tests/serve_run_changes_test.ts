/** `GET /api/runs/{id}/changes`: the changes a run made, by node, with the value before. */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { StoreSpec } from "../mod.ts";
import { documented, withServed } from "./_serve.ts";
import { trimChanges } from "../src/store/store.ts";

type Before =
  | { kind: "value"; value: unknown; version: string }
  | { kind: "truncated"; version: string; size: number }
  | { kind: "absent" }
  | { kind: "unknown"; reason: string };
type RunChange = {
  store: string;
  seq: number;
  key: string[];
  op: "set" | "delete";
  value?: unknown;
  truncated?: true;
  size?: number;
  version: string | null;
  previousVersion: string | null;
  by: { runId?: string; nodeId?: string };
  before: Before;
};
type Page = {
  runId: string;
  scopes: Record<string, string>;
  stores: { name: string; feed: boolean; reason?: string }[];
  changes: RunChange[];
  scanned: number;
  cursor?: string;
};

const PATH = "/api/runs/{id}/changes";

/** Three nodes write two keys of flow state; `a` twice. */
const TWO_NODES = `id: two
inputs:
  text: { type: string, default: small }
nodes:
  - id: first
    type: state.set
    with: { scope: flow, key: a, value: { n: 1, text: "\${{ inputs.text }}" } }
  - id: second
    type: state.increment
    needs: [first]
    with: { scope: flow, key: count, by: 2 }
  - id: third
    type: state.set
    needs: [second]
    with: { scope: flow, key: a, value: { n: 2 } }
  - id: gone
    type: state.delete
    needs: [third]
    with: { scope: flow, key: temp }
`;

async function writeFlow(dir: string): Promise<string> {
  const file = join(dir, "flows", "two.flow.yaml");
  await Deno.writeTextFile(file, TWO_NODES);
  return file;
}

const brief = (c: RunChange) => [c.by.nodeId, c.op, c.key.join("/"), c.before, c.value];

const POSTGRES_URL = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL");

/** The store with a feed, on sqlite and (when FLOWSTATE_TEST_POSTGRES_URL is set) postgres. */
const FED: [string, (dir: string) => StoreSpec, boolean][] = [
  [
    "sqlite",
    (dir) => ({ plugin: "sqlite", path: join(dir, "state.db"), changes: { keep: "30d" } }),
    false,
  ],
  [
    "postgres",
    () => ({
      plugin: "postgres",
      url: POSTGRES_URL ?? "",
      table: `runchanges_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`,
      changes: { keep: "30d" },
    }),
    POSTGRES_URL === undefined,
  ],
];

for (const [backend, fed, ignore] of FED) {
  Deno.test({
    name:
      `serve on ${backend}: GET /api/runs/{id}/changes lists a run's changes by node with before and after`,
    ignore,
    fn: () =>
      withServed((dir) => ({
        main: fed(dir),
        plain: { plugin: "memory" },
      }), async ({ dir, request, runtime }) => {
        const file = await writeFlow(dir);
        const store = await runtime.store("main");
        await store.set(["flow", "two", "count"], 5); // before any run: read back through getAt
        await store.set(["flow", "two", "temp"], "scratch");
        const first = await runtime.runFlow(file, {});
        const second = await runtime.runFlow(file, {});
        assert.equal(second.status, "succeeded");

        const page = await documented<Page>(
          "GET",
          PATH,
          await request(`/api/runs/${second.id}/changes`),
        );
        assert.equal(page.runId, second.id);
        assert.deepEqual(page.stores.map((s) => [s.name, s.feed]), [["main", true], [
          "plain",
          false,
        ]]);
        assert.match(page.stores[1].reason!, /store "plain" keeps no change feed/);
        assert.deepEqual(page.scopes, { node: "main", flow: "main", global: "main" });
        assert.equal(page.cursor, undefined);
        const v = (c: RunChange) => c.previousVersion!;
        assert.deepEqual(page.changes.map(brief), [
          // Before it: the first run's last write of a, read back through the feed.
          ["first", "set", "flow/two/a", {
            kind: "value",
            value: { n: 2 },
            version: v(page.changes[0]),
          }, { n: 1, text: "small" }],
          [
            "second",
            "set",
            "flow/two/count",
            { kind: "value", value: 7, version: v(page.changes[1]) },
            9,
          ],
          // Before it: this run's own first write.
          ["third", "set", "flow/two/a", {
            kind: "value",
            value: { n: 1, text: "small" },
            version: page.changes[0].version,
          }, { n: 2 }],
        ]);
        assert.ok(page.changes.every((c) => c.store === "main" && c.by.runId === second.id));

        // The first run: count came from before any run, temp existed and was deleted.
        const firstPage = await documented<Page>(
          "GET",
          PATH,
          await request(`/api/runs/${first.id}/changes`),
        );
        assert.deepEqual(firstPage.changes.map(brief), [
          ["first", "set", "flow/two/a", { kind: "absent" }, { n: 1, text: "small" }],
          ["second", "set", "flow/two/count", {
            kind: "value",
            value: 5,
            version: v(firstPage.changes[1]),
          }, 7],
          ["third", "set", "flow/two/a", {
            kind: "value",
            value: { n: 1, text: "small" },
            version: firstPage.changes[0].version,
          }, { n: 2 }],
          ["gone", "delete", "flow/two/temp", {
            kind: "value",
            value: "scratch",
            version: v(firstPage.changes[3]),
          }, undefined],
        ]);

        // A run that changed nothing (the hello flow only transforms).
        const hello = await runtime.runFlow(join(dir, "flows", "hello.flow.yaml"), {});
        const none = await documented<Page>(
          "GET",
          PATH,
          await request(`/api/runs/${hello.id}/changes`),
        );
        assert.deepEqual(none.changes, []);
        assert.equal(none.cursor, undefined);
      }),
  });
}

Deno.test("serve: GET /api/runs/{id}/changes pages by cursor; bad cursors and unknown runs are refused", async () => {
  await withServed((dir) => ({
    main: { plugin: "sqlite", path: join(dir, "state.db"), changes: { keep: "30d" } },
  }), async ({ dir, request, runtime }) => {
    const file = await writeFlow(dir);
    const run = await runtime.runFlow(file, {});
    const whole = await documented<Page>("GET", PATH, await request(`/api/runs/${run.id}/changes`));
    assert.equal(whole.changes.length, 3); // temp did not exist: its delete changed nothing

    const pages: Page[] = [];
    let cursor: string | undefined;
    do {
      const page = await documented<Page>(
        "GET",
        PATH,
        await request(
          `/api/runs/${run.id}/changes?limit=2${
            cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""
          }`,
        ),
      );
      pages.push(page);
      cursor = page.cursor;
      assert.ok(pages.length <= 3, "a page of 2 changes, then 1, then none at most");
    } while (cursor !== undefined);
    assert.deepEqual(pages[0].changes.length, 2);
    assert.deepEqual(pages.flatMap((p) => p.changes), whole.changes);

    for (const bad of ["nope", btoa(JSON.stringify(["elsewhere", 3]))]) {
      const res = await documented<{ error: { message: string } }>(
        "GET",
        PATH,
        await request(`/api/runs/${run.id}/changes?cursor=${encodeURIComponent(bad)}`),
      );
      assert.match(res.error.message, /^Invalid cursor/);
    }
    const limit = await request(`/api/runs/${run.id}/changes?limit=0`);
    assert.equal(limit.status, 400);
    await limit.body?.cancel();

    const missing = await request("/api/runs/0mx9nosuchrun0000000/changes");
    const body = await documented<{ error: { message: string } }>("GET", PATH, missing);
    assert.equal(missing.status, 404);
    assert.match(body.error.message, /No run 0mx9nosuchrun0000000/);
  });
});

Deno.test("serve: GET /api/runs/{id}/changes says which stores keep no feed, and why", async () => {
  await withServed(() => ({
    main: { plugin: "memory" },
  }), async ({ dir, request, runtime }) => {
    const file = await writeFlow(dir);
    const run = await runtime.runFlow(file, {});
    const page = await documented<Page>("GET", PATH, await request(`/api/runs/${run.id}/changes`));
    assert.deepEqual(page.changes, []);
    assert.equal(page.cursor, undefined);
    assert.equal(page.stores.length, 1);
    assert.equal(page.stores[0].feed, false);
    assert.match(
      page.stores[0].reason!,
      /store "main" keeps no change feed; add `changes: \{ keep: 30d \}` to stores\.main/,
    );
    // The run's write sets still name the keys (what the inspector falls back to).
    const detail = await (await request(`/api/runs/${run.id}`)).json();
    const writes = detail.events.filter((e: { type: string }) => e.type === "node.end")
      .flatMap((e: { writes?: { key: string[] }[] }) => e.writes ?? []);
    assert.deepEqual(writes.map((w: { key: string[] }) => w.key.join("/")), ["a", "count", "a"]);
  });
});

Deno.test("serve: GET /api/runs/{id}/changes leaves values over 64 KiB out, with their size", async () => {
  await withServed((dir) => ({
    main: { plugin: "sqlite", path: join(dir, "state.db"), changes: { keep: "30d" } },
  }), async ({ dir, request, runtime }) => {
    const file = await writeFlow(dir);
    const text = "x".repeat(70_000);
    await runtime.runFlow(file, { input: { text } });
    const run = await runtime.runFlow(file, { input: { text } });
    const page = await documented<Page>("GET", PATH, await request(`/api/runs/${run.id}/changes`));
    const [first, , third] = page.changes;
    assert.equal(first.truncated, true);
    assert.equal(first.value, undefined);
    assert.equal(first.size, JSON.stringify({ n: 1, text }).length);
    assert.deepEqual(first.before, {
      kind: "value",
      value: { n: 2 },
      version: first.previousVersion,
    });
    assert.equal(third.before.kind, "truncated");
    assert.equal((third.before as { size: number }).size, first.size);
  });
});

Deno.test("serve: GET /api/runs/{id}/changes says when the feed no longer holds the value before", async () => {
  await withServed((dir) => ({
    main: { plugin: "sqlite", path: join(dir, "state.db"), changes: { keep: { count: 5 } } },
  }), async ({ dir, request, runtime }) => {
    const file = await writeFlow(dir);
    const store = await runtime.store("main");
    await store.set(["flow", "two", "a"], "old");
    for (let i = 0; i < 10; i++) await store.set(["filler", String(i)], i);
    assert.ok((await trimChanges(store) ?? 0) > 0);
    const run = await runtime.runFlow(file, {});
    const page = await documented<Page>("GET", PATH, await request(`/api/runs/${run.id}/changes`));
    const first = page.changes[0];
    assert.equal(first.by.nodeId, "first");
    assert.equal(first.before.kind, "unknown");
    assert.match(
      (first.before as { reason: string }).reason,
      /had a value from before the change feed's oldest entry/,
    );
    // The third node's before is the run's own first write, still held.
    assert.equal(page.changes[2].before.kind, "value");
  });
});
