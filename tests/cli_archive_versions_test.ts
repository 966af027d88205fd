/**
 * `flowstate runs show` of an archived run gives the flow version it ran, with
 * its definition, after the retention job deleted that version from the
 * records store (the archive keeps it), `--definition` prints it (the flow
 * file as it was); an archive that does not hold it says so. Cancel and retry
 * of an archived run are refused, saying why.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { archiveThenPrune, cliOk, withCliProject } from "./_cli_sandbox.ts";

const CONFIG = "home: home\nstores:\n  main: { plugin: sqlite, path: data/main.db }\n";

const flow = (message: string) =>
  `id: hello\nnodes:\n  - id: say\n    type: log\n    with: { message: ${message} }\n`;

Deno.test("flowstate runs show of an archived run gives its definition after retention deleted its version; cancel and retry refuse it", async () => {
  await withCliProject(CONFIG, async (run, dir) => {
    const file = join(dir, "hello.flow.yaml");
    await Deno.writeTextFile(file, flow("first"));
    const first = JSON.parse(await cliOk(run, "run", "hello.flow.yaml", "--json")).id as string;
    await Deno.writeTextFile(file, flow("second"));
    await cliOk(run, "run", "hello.flow.yaml", "--quiet");

    await archiveThenPrune(run, { archived: 2, versionsDeleted: 1 });
    const versions = JSON.parse(await cliOk(run, "flows", "versions", "hello", "--json"));
    assert.deepEqual(
      versions.map((v: { archived?: true }) => v.archived ?? false),
      [false, true],
      "the first version is gone from the records store: listed from the archive",
    );

    const shown = JSON.parse(await cliOk(run, "runs", "show", first, "--json"));
    assert.equal(shown.run.id, first);
    assert.equal(shown.version.hash, shown.run.flowVersion);
    assert.equal(shown.version.definition.nodes[0].with.message, "first");
    assert.equal(shown.version.source, flow("first"));

    const text = await cliOk(run, "runs", "show", first);
    assert.match(
      text,
      /^definition: in the archive \(version 1, saved .*\); print it with: flowstate runs show \w+ --definition$/m,
    );
    // --definition prints the flow file as it was (from the archive: the store lost it).
    assert.equal(await cliOk(run, "runs", "show", first, "--definition"), flow("first"));
    const version = JSON.parse(await cliOk(run, "runs", "show", first, "--definition", "--json"));
    assert.equal(version.hash, shown.run.flowVersion);
    // A run still recorded: from the records store.
    const live = JSON.parse(await cliOk(run, "run", "hello.flow.yaml", "--json")).id as string;
    assert.equal(await cliOk(run, "runs", "show", live, "--definition"), flow("second"));

    // Archived runs are read-only: cancel and retry say so (exit 1), and what to do instead.
    const cancel = await run("runs", "cancel", first);
    assert.equal(cancel.code, 1);
    assert.match(
      cancel.stderr,
      new RegExp(
        `Cannot cancel run ${first}: it already ended \\(succeeded\\) and is archived in runs-`,
      ),
    );
    const retry = await run("runs", "retry", first);
    assert.equal(retry.code, 1);
    assert.match(
      retry.stderr,
      new RegExp(
        `Cannot retry run ${first}: it ended \\(succeeded\\) and is archived in runs-.*; ` +
          'archived runs are read-only .*start a new run of flow "hello"',
      ),
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
    const nowhere = await run("runs", "show", first, "--definition");
    assert.equal(nowhere.code, 1);
    assert.match(
      nowhere.stderr,
      /is kept nowhere: it is neither in the records store nor in the archive/,
    );
  });
});
