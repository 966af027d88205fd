/**
 * `flowstate jobs run archive` over job runs: a job has no flow version (its
 * runs record `"job"`), so archiving one is not a run "archived without its
 * flow version", neither in the result nor as a warning, nor when shown back.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliOk, withCliProject } from "./_cli_sandbox.ts";

const CONFIG = "home: home\nstores:\n  main: { plugin: sqlite, path: data/main.db }\n";

Deno.test("archiving job runs counts no missing flow version and warns of none", async () => {
  await withCliProject(CONFIG, async (run, dir) => {
    await Deno.writeTextFile(
      join(dir, "hello.flow.yaml"),
      "id: hello\nnodes:\n  - id: say\n    type: log\n    with: { message: hi }\n",
    );
    await cliOk(run, "run", "hello.flow.yaml", "--quiet");
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
