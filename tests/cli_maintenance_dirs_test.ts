/**
 * The folders the maintenance jobs write into (`<home>/archive`,
 * `<home>/backups`) taken by a file: the job fails saying which path is a
 * file and what to do, not with the OS's bare `File exists (os error 17)`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliOk, withCliProject } from "./_cli_sandbox.ts";

const CONFIG = "home: home\nstores:\n  main: { plugin: sqlite, path: data/main.db }\n";

Deno.test("archive and backup into a folder that is a file say so and what to do", async () => {
  await withCliProject(CONFIG, async (run, dir) => {
    await Deno.writeTextFile(
      join(dir, "hello.flow.yaml"),
      "id: hello\nnodes:\n  - id: say\n    type: log\n    with: { message: hi }\n",
    );
    await cliOk(run, "run", "hello.flow.yaml", "--quiet");
    for (const name of ["archive", "backups"]) {
      await Deno.writeTextFile(join(dir, "home", name), "a file in the way\n");
    }
    const archive = await run("jobs", "run", "archive", "--option", "olderThan=0");
    assert.equal(archive.code, 1, archive.stdout + archive.stderr);
    assert.match(
      archive.stdout + archive.stderr,
      /Cannot archive runs: .*home[/\\]archive is a file, not a directory: move it aside/,
    );
    const backup = await run("backup");
    assert.equal(backup.code, 1, backup.stdout + backup.stderr);
    assert.match(
      backup.stderr,
      /Cannot back up store "main": .*home[/\\]backups is a file, not a directory: move it aside, or write elsewhere with --out/,
    );
    assert.equal(await Deno.readTextFile(join(dir, "home", "backups")), "a file in the way\n");
  });
});
