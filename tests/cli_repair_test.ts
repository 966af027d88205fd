/**
 * `flowstate stores repair` sets aside damaged files only: another
 * application's database, a file a newer Flowstate wrote, and a server's
 * store are refused and left exactly as they are; jsonfile's
 * `onCorrupt: "start-empty"` moves only a damaged file.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { openClient } from "../plugins/postgres/client.ts";
import { withSandbox } from "./_cli_sandbox.ts";

const PG_URL = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL");

/** A store "main" made by `state set a 1` under `spec` (a flow-style YAML map). */
async function storeWithA(
  dir: string,
  run: (...args: string[]) => Promise<{ code: number; stderr: string }>,
  spec: string,
): Promise<void> {
  await Deno.writeTextFile(join(dir, "flowstate.yaml"), `stores:\n  main: ${spec}\n`);
  const set = await run("state", "set", "a", "1");
  assert.equal(set.code, 0, set.stderr);
}

async function files(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir), (e) => e.name)).sort();
}

Deno.test("stores repair leaves another application's SQLite database where it is", async () => {
  await withSandbox(async ({ dir, run }) => {
    const path = join(dir, "app.db");
    const db = new DatabaseSync(path);
    db.exec("CREATE TABLE users (id INTEGER, name TEXT); INSERT INTO users VALUES (1, 'ann')");
    db.close();
    const bytes = await Deno.readFile(path);
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  main: { plugin: sqlite, path: app.db }\n",
    );
    const before = await files(dir);
    const repair = await run("stores", "repair", "main");
    assert.equal(repair.code, 1, repair.stdout);
    assert.match(repair.stderr, /is a SQLite database but not a Flowstate store/);
    assert.match(
      repair.stderr,
      /Store "main" was left as it is: it is not a Flowstate store, so it is someone else's data/,
    );
    assert.deepEqual(await files(dir), before, "nothing moved");
    assert.deepEqual(await Deno.readFile(path), bytes, "the database is unchanged");
  });
});

Deno.test("stores repair leaves a SQLite store of a newer schema where it is, and says to upgrade", async () => {
  await withSandbox(async ({ dir, run }) => {
    await storeWithA(dir, run, "{ plugin: sqlite, path: state.db }");
    const db = new DatabaseSync(join(dir, "state.db"));
    db.exec("UPDATE flowstate_meta SET value = '99' WHERE key = 'schema_version'");
    db.close();
    const before = await files(dir);
    const bytes = await Deno.readFile(join(dir, "state.db"));
    const repair = await run("stores", "repair", "main", "--json");
    assert.equal(repair.code, 1, repair.stderr);
    const report = JSON.parse(repair.stdout);
    assert.equal(report.movedTo, null);
    assert.equal(report.reason, "newer");
    assert.match(
      report.error,
      /a newer Flowstate wrote it, so it is not damaged: upgrade Flowstate/,
    );
    assert.deepEqual(await files(dir), before, "nothing moved");
    assert.deepEqual(await Deno.readFile(join(dir, "state.db")), bytes);
  });
});

Deno.test("jsonfile with onCorrupt: start-empty moves only a damaged file, never a newer one or another document", async () => {
  await withSandbox(async ({ dir, run }) => {
    await storeWithA(dir, run, "{ plugin: jsonfile, path: state.json, onCorrupt: start-empty }");
    const path = join(dir, "state.json");
    const doc = JSON.parse(await Deno.readTextFile(path));
    const newer = JSON.stringify({ ...doc, version: doc.version + 1 });
    const foreign = JSON.stringify({ name: "my-app", version: "1.0.0" });
    for (
      const [text, says] of [
        [newer, /written by a newer Flowstate\)[^\n]*Upgrade Flowstate to open it/],
        [foreign, /is not a flowstate[^\n]*It is not a store: point the store's "path" option/],
      ] as const
    ) {
      await Deno.writeTextFile(path, text);
      const before = await files(dir);
      for (const args of [["state", "get", "a"], ["state", "set", "b", "2"]]) {
        const result = await run(...args);
        assert.equal(result.code, 1, `${args.join(" ")}: ${result.stdout}`);
        assert.match(result.stderr, says);
        assert.doesNotMatch(result.stderr, /stores repair/);
      }
      const repair = await run("stores", "repair", "main");
      assert.equal(repair.code, 1, repair.stdout);
      assert.match(repair.stderr, /Store "main" was left as it is/);
      assert.deepEqual(await files(dir), before, "nothing moved");
      assert.equal(await Deno.readTextFile(path), text, "the file is unchanged");
    }
    // A damaged file is still set aside at once, as the option says.
    await Deno.writeTextFile(path, newer.slice(0, 20));
    const get = await run("state", "get", "a");
    assert.equal(get.code, 1, "the new store is empty");
    assert.match(get.stderr, /moved it to .*state\.json\.corrupt-/);
  });
});

Deno.test("stores repair leaves a memory snapshot of a newer version where it is", async () => {
  await withSandbox(async ({ dir, run }) => {
    await storeWithA(dir, run, "{ plugin: memory, snapshot: snap.json }");
    const path = join(dir, "snap.json");
    const doc = JSON.parse(await Deno.readTextFile(path));
    const text = JSON.stringify({ ...doc, version: doc.version + 1 });
    await Deno.writeTextFile(path, text);
    const get = await run("state", "get", "a");
    assert.equal(get.code, 1);
    assert.match(get.stderr, /A newer Flowstate wrote it: upgrade Flowstate to restore it/);
    const repair = await run("stores", "repair", "main");
    assert.equal(repair.code, 1, repair.stdout);
    assert.match(repair.stderr, /a newer Flowstate wrote it/);
    assert.equal(await Deno.readTextFile(path), text);
  });
});

Deno.test({
  name: "stores repair of a postgres store says what to do instead of trying to move a file",
  ignore: PG_URL === undefined,
  async fn() {
    const table = `repair_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
    const sql = openClient(PG_URL!);
    try {
      await withSandbox(async ({ dir, run }) => {
        await Deno.writeTextFile(
          join(dir, "flowstate.yaml"),
          `stores:\n  main: { plugin: postgres, url: "${PG_URL}", table: ${table} }\n`,
        );
        assert.equal((await run("state", "set", "a", "1")).code, 0);
        await sql.unsafe(`UPDATE ${table}_meta SET value = 'zz' WHERE key = 'schema_version'`);
        const damaged = await run("stores", "repair", "main");
        assert.equal(damaged.code, 1, damaged.stdout);
        assert.match(damaged.stderr, /has no valid format and schema_version/);
        assert.match(
          damaged.stderr,
          /it is not kept in a file, so there is nothing to set aside: restore it from a backup/,
        );
        assert.doesNotMatch(damaged.stderr, /os error|rename/);
        await sql.unsafe(`UPDATE ${table}_meta SET value = '99' WHERE key = 'schema_version'`);
        const newer = await run("stores", "repair", "main", "--json");
        assert.equal(newer.code, 1, newer.stderr);
        assert.equal(JSON.parse(newer.stdout).reason, "newer");
        const [row] = await sql.unsafe(`SELECT count(*)::int AS n FROM ${table}`);
        assert.equal(row.n, 1, "the table is untouched");
      });
    } finally {
      await sql.unsafe(`DROP TABLE IF EXISTS ${table}, ${table}_meta, ${table}_feed CASCADE`);
      await sql.end();
    }
  },
});
