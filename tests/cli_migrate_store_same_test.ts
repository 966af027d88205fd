/**
 * `flowstate migrate store` between two store names that are one store under
 * different spellings (a symlinked path, `localhost` for `127.0.0.1`): the
 * move is refused before anything is written, so `--force` never clears the
 * source.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliOk, type ProjectCli, withCliProject } from "./_cli_sandbox.ts";

/** `migrate store --from main --to other --force` is refused, and main still holds item/a. */
async function refusedAndKept(run: ProjectCli): Promise<void> {
  const moved = await run("migrate", "store", "--from", "main", "--to", "other", "--force");
  assert.equal(moved.code, 2, moved.stdout + moved.stderr);
  assert.match(moved.stderr, /Cannot move store "main" to "other": both are the same \w+ store/);
  assert.equal(await cliOk(run, "state", "get", "--store", "main", "item/a"), "1\n");
}

for (const plugin of ["sqlite", "jsonfile"] as const) {
  Deno.test(`migrate store --force between two names of one ${plugin} file (a symlink) is refused, the source kept`, async () => {
    const ext = plugin === "sqlite" ? "db" : "json";
    const config = `
stores:
  main: { plugin: ${plugin}, path: data/main.${ext} }
  other: { plugin: ${plugin}, path: data/link.${ext} }
`;
    await withCliProject(config, async (run, dir) => {
      await cliOk(run, "state", "set", "--store", "main", "item/a", "1");
      await cliOk(run, "state", "set", "--store", "main", "item/b", "2");
      await Deno.symlink(`main.${ext}`, join(dir, `data/link.${ext}`));
      await refusedAndKept(run);
      assert.equal(await cliOk(run, "state", "get", "--store", "main", "item/b"), "2\n");
      // Nothing of the check is left behind in it.
      const left = await cliOk(run, "state", "ls", "flowstate", "--store", "main", "--json");
      assert.deepEqual(JSON.parse(left), []);
    });
  });
}

const PG = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL");

Deno.test({
  name: "migrate store --force between two URLs of one postgres table is refused, the source kept",
  ignore: PG === undefined,
  async fn() {
    const url = new URL(PG!);
    const table = `same_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
    const other = new URL(url);
    other.hostname = url.hostname === "localhost" ? "127.0.0.1" : "localhost";
    const config = `
stores:
  main: { plugin: postgres, url: "${url}", table: ${table} }
  other: { plugin: postgres, url: "${other}", table: ${table} }
`;
    await withCliProject(config, async (run) => {
      try {
        await cliOk(run, "state", "set", "--store", "main", "item/a", "1");
        await refusedAndKept(run);
      } finally {
        const { default: postgres } = await import("postgres");
        const sql = postgres(PG!, { onnotice: () => {} });
        await sql.unsafe(`drop table if exists ${table}`);
        await sql.end();
      }
    });
  },
});
