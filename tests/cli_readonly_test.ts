/**
 * Read-only commands never create a store where none exists (issue 9): with a
 * config whose stores' files do not exist yet, each one succeeds with an
 * empty result (or "not found", exit 1, where it looks one thing up), says
 * "No store yet at …" on stderr, and leaves the directory as it was.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openStore, StoreMissingError } from "../mod.ts";
import { withSandbox } from "./_cli_sandbox.ts";

const CONFIG = `stores:
  default: { plugin: sqlite, path: data/state.db }
  files: { plugin: jsonfile, path: jdata/files.json }
  scratch: { plugin: memory, snapshot: mem/scratch.json }
`;

async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (at: string, rel: string) => {
    for await (const entry of Deno.readDir(at)) {
      const path = rel === "" ? entry.name : `${rel}/${entry.name}`;
      out.push(path);
      if (entry.isDirectory) await walk(join(at, entry.name), path);
    }
  };
  await walk(dir, "");
  return out.sort();
}

const NO_STORE =
  /No store yet at .*data\/state\.db \(store "default"\): nothing has been written to it$/m;

const COMMANDS: [string[], number, string][] = [
  [["runs", "ls"], 0, ""],
  [["runs", "ls", "--json"], 0, "[]\n"],
  [["runs", "show", "aaaaaaaaaaaaaaaaaaaa"], 1, ""],
  [["flows", "ls"], 0, ""],
  [["flows", "ls", "--json"], 0, "[]\n"],
  [["flows", "versions", "counter"], 1, ""],
  [["metrics"], 0, ""],
  [["metrics", "--json"], 0, "[]\n"],
  [["state", "ls"], 0, ""],
  [["state", "ls", "--json"], 0, "[]\n"],
  [["state", "get", "k"], 1, ""],
  [["state", "get", "k", "--json"], 1, "null\n"],
  [["state", "rm", "k"], 1, ""],
];

Deno.test("read-only commands on stores that do not exist yet succeed empty and create nothing", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), CONFIG);
    const before = await listTree(dir);
    for (const [args, code, stdout] of COMMANDS) {
      const result = await run(...args);
      const what = `${args.join(" ")}: ${result.stderr}`;
      assert.equal(result.code, code, what);
      assert.equal(result.stdout, stdout, what);
      assert.match(result.stderr, NO_STORE, what);
      assert.deepEqual(await listTree(dir), before, `${args.join(" ")} created files`);
    }
    for (const store of ["files", "scratch"]) {
      const result = await run("state", "ls", "--store", store);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, new RegExp(`^No store yet at .* \\(store "${store}"\\)`));
    }
    const jobs = await run("jobs", "ls", "--json");
    assert.equal(jobs.code, 0, jobs.stderr);
    assert.ok(JSON.parse(jobs.stdout).every((j: { lastRun: unknown }) => j.lastRun === null));

    const stores = await run("stores", "--json");
    assert.equal(stores.code, 0, stores.stderr);
    const rows = JSON.parse(stores.stdout) as { name: string; entries: number; missing?: true }[];
    assert.deepEqual(rows.map((r) => [r.name, r.entries, r.missing]), [
      ["default", 0, true],
      ["files", 0, true],
      ["scratch", 0, true],
    ]);
    const table = await run("stores");
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /data\/state\.db \(not created yet\)/);
    assert.deepEqual(await listTree(dir), before, "jobs ls and stores created files");
  });
});

Deno.test("without a config, read-only commands do not create the home or its default store", async () => {
  await withSandbox(async ({ dir, home, run }) => {
    for (const args of [["runs", "ls"], ["stores"], ["state", "ls"], ["flows", "ls"]]) {
      const result = await run(...args);
      assert.equal(result.code, 0, result.stderr);
    }
    assert.deepEqual(await listTree(dir), []);
    await assert.rejects(() => Deno.stat(home), Deno.errors.NotFound);
  });
});

Deno.test("once written to, a store is read as before by the read-only commands", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), CONFIG);
    for (const store of ["default", "files", "scratch"]) {
      assert.equal((await run("state", "set", "k", "1", "--store", store)).code, 0);
      const got = await run("state", "get", "k", "--store", store);
      assert.equal(got.code, 0, got.stderr);
      assert.equal(got.stdout, "1\n");
      assert.doesNotMatch(got.stderr, /No store yet/);
    }
    const stores = JSON.parse((await run("stores", "--json")).stdout) as { missing?: true }[];
    assert.ok(stores.every((s) => s.missing === undefined));
  });
});

Deno.test("openStore with mustExist: a missing store throws StoreMissingError and nothing is created", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (
      const spec of [
        { plugin: "sqlite", path: join(dir, "a", "state.db") },
        { plugin: "jsonfile", path: join(dir, "b", "state.json") },
        { plugin: "memory", snapshot: join(dir, "c", "snap.json") },
      ]
    ) {
      await assert.rejects(
        () => openStore(spec, { name: "main", mustExist: true }),
        (err) => {
          assert.ok(err instanceof StoreMissingError, String(err));
          assert.equal(err.store, "main");
          assert.equal(err.address, Object.values(spec)[1]);
          assert.equal(err.code, "STORE_MISSING");
          return true;
        },
      );
    }
    assert.deepEqual(await listTree(dir), []);
    // A memory store without a snapshot has nothing to miss: it opens, empty.
    await using memory = await openStore({ plugin: "memory" }, { mustExist: true });
    assert.equal(await memory.count(), 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const POSTGRES_URL = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL");

Deno.test({
  name: "postgres with mustExist: a missing table throws StoreMissingError and is not created",
  ignore: POSTGRES_URL === undefined,
  async fn() {
    const table = `readonly_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
    const spec = { plugin: "postgres", url: POSTGRES_URL!, table };
    await assert.rejects(
      () => openStore(spec, { name: "pg", mustExist: true }),
      (err) => err instanceof StoreMissingError && err.store === "pg",
    );
    // Still missing: the first open created nothing.
    await assert.rejects(() => openStore(spec, { mustExist: true }), StoreMissingError);
  },
});
