/**
 * `flowstate backup --all` with one store that cannot be backed up (its file
 * damaged, its server down): the stores after it are backed up all the same,
 * and the command fails (exit 1) naming the store that was not and the files
 * that were written.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliOk, withCliProject } from "./_cli_sandbox.ts";

const CONFIG = `stores:
  a: { plugin: sqlite, path: data/a.db }
  broken: { plugin: sqlite, path: data/broken.db }
  z: { plugin: jsonfile, path: data/z.json }
scopes: { global: a, flow: a, node: a }
`;

Deno.test("backup --all backs up every store it can, then fails naming the one it could not", async () => {
  await withCliProject(CONFIG, async (run, dir) => {
    await cliOk(run, "state", "set", "--store", "a", "k", "1");
    await cliOk(run, "state", "set", "--store", "z", "k", "2");
    await Deno.writeTextFile(join(dir, "data/broken.db"), "not a database, a damaged file");
    const out = join(dir, "out");
    const backup = await run("backup", "--all", "--out", out);
    assert.equal(backup.code, 1, backup.stdout + backup.stderr);
    const files = [];
    for await (const e of Deno.readDir(out)) if (e.name.endsWith(".fsbackup")) files.push(e.name);
    assert.deepEqual(files.map((f) => f.split("-")[0]).sort(), ["a", "z"], files.join(", "));
    assert.match(
      backup.stderr,
      /Cannot back up store "broken" \(1 of 3\): .*; the others were backed up: a → .*a-\d{8}T\d+Z\.fsbackup, z → .*z-\d{8}T\d+Z\.fsbackup/,
    );
    const runs = JSON.parse(await cliOk(run, "runs", "ls", "--flow", "job:backup", "--json"));
    assert.equal((runs.runs ?? runs)[0].status, "failed");
  });
});
