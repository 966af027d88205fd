/**
 * Edges of the maintenance jobs through the CLI, in a project that ran a flow
 * once:
 * - `jobs run archive` over job runs: a job has no flow version (its runs
 *   record `"job"`), so archiving one is not a run "archived without its flow
 *   version", neither in the result nor as a warning, nor when shown back;
 * - the folders the jobs write into (`<home>/archive`, `<home>/backups`) taken
 *   by a file: the job fails saying which path is a file and what to do, not
 *   with the OS's bare `File exists (os error 17)`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliOk, type ProjectCli, withCliProject } from "./_cli_sandbox.ts";

const CONFIG = "home: home\nstores:\n  main: { plugin: sqlite, path: data/main.db }\n";

/** A project whose flow `hello` ran once (from hello.flow.yaml). */
function withHelloRun(fn: (run: ProjectCli, dir: string) => Promise<void>): Promise<void> {
  return withCliProject(CONFIG, async (run, dir) => {
    await Deno.writeTextFile(
      join(dir, "hello.flow.yaml"),
      "id: hello\nnodes:\n  - id: say\n    type: log\n    with: { message: hi }\n",
    );
    await cliOk(run, "run", "hello.flow.yaml", "--quiet");
    await fn(run, dir);
  });
}

Deno.test("archiving job runs counts no missing flow version and warns of none", async () => {
  await withHelloRun(async (run) => {
    await cliOk(run, "jobs", "run", "gc", "--quiet");
    const archived = await run("jobs", "run", "archive", "--option", "olderThan=0", "--json");
    assert.equal(archived.code, 0, archived.stderr);
    const outputs = JSON.parse(archived.stdout).outputs;
    assert.equal(outputs.archived, 2, JSON.stringify(outputs));
    assert.equal(outputs.versionsArchived, 1, JSON.stringify(outputs));
    assert.equal(outputs.versionsMissing, 0, JSON.stringify(outputs));
    assert.doesNotMatch(archived.stderr, /without their flow version/);
    // Shown back, an archived job run has no definition line (as a live one), not "not in the
    // archive (archived before archives kept flow versions…)".
    const runs = JSON.parse(await cliOk(run, "runs", "ls", "--archived", "--json"));
    const gc = (runs.runs ?? runs).find((r: { flowId: string }) => r.flowId === "job:gc");
    const shown = await cliOk(run, "runs", "show", gc.id);
    assert.match(shown, /^archived: runs-/m);
    assert.doesNotMatch(shown, /definition/);
  });
});

Deno.test("archive and backup into a folder that is a file say so and what to do", async () => {
  await withHelloRun(async (run, dir) => {
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
