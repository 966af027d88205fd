/**
 * `flowstate runs show` of an archived run gives the flow version it ran, with
 * its definition, after the retention job deleted that version from the
 * records store (the archive keeps it); an archive that does not hold it says
 * so.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliOk, withCliProject } from "./_cli_sandbox.ts";

const CONFIG = "home: home\nstores:\n  main: { plugin: sqlite, path: data/main.db }\n";

const flow = (message: string) =>
  `id: hello\nnodes:\n  - id: say\n    type: log\n    with: { message: ${message} }\n`;

Deno.test("flowstate runs show of an archived run gives its definition after retention deleted its version", async () => {
  await withCliProject(CONFIG, async (run, dir) => {
    const file = join(dir, "hello.flow.yaml");
    await Deno.writeTextFile(file, flow("first"));
    const first = JSON.parse(await cliOk(run, "run", "hello.flow.yaml", "--json")).id as string;
    await Deno.writeTextFile(file, flow("second"));
    await cliOk(run, "run", "hello.flow.yaml", "--quiet");

    const archive = JSON.parse(
      await cliOk(run, "jobs", "run", "archive", "--option", "olderThan=0", "--json", "--quiet"),
    );
    assert.equal(archive.outputs.archived, 2, JSON.stringify(archive.outputs));
    const retention = JSON.parse(
      await cliOk(run, "jobs", "run", "retention", "--option", "maxAge=0", "--json", "--quiet"),
    );
    assert.equal(retention.outputs.versionsDeleted, 1, JSON.stringify(retention.outputs));
    const versions = JSON.parse(await cliOk(run, "flows", "versions", "hello", "--json"));
    assert.equal(versions.length, 1, "the first version is gone from the records store");

    const shown = JSON.parse(await cliOk(run, "runs", "show", first, "--json"));
    assert.equal(shown.run.id, first);
    assert.equal(shown.version.hash, shown.run.flowVersion);
    assert.equal(shown.version.definition.nodes[0].with.message, "first");
    assert.equal(shown.version.source, flow("first"));

    const text = await cliOk(run, "runs", "show", first);
    assert.match(
      text,
      /^definition: in the archive \(version 1, saved .*\); print it with: flowstate runs show \w+ --json/m,
    );

    // An archive written before archives kept flow versions: the run reads, the definition is
    // said not to be there.
    const archiveDir = join(dir, "home", "archive");
    const names = (await Array.fromAsync(Deno.readDir(archiveDir))).map((e) => e.name);
    for (const name of names.filter((n) => n.endsWith(".versions.ndjson.gz"))) {
      await Deno.remove(join(archiveDir, name));
    }
    const older = JSON.parse(await cliOk(run, "runs", "show", first, "--json"));
    assert.equal(older.run.id, first);
    assert.equal(older.version, null);
    assert.match(await cliOk(run, "runs", "show", first), /^definition: not in the archive/m);
  });
});
