/**
 * Flows and versions the archive alone keeps, on the command line: after the
 * archive job moved a flow's runs to `<home>/archive/` and the retention job
 * deleted its old version, `flows versions` lists that version from the
 * archive (marked); and once the records store holds nothing of the flow
 * (the config's `records:` moved to a new store, the archive staying under
 * the home), `flows ls` still lists it (marked archived), before the new
 * store exists and after, `flows versions` lists its versions, `runs ls
 * --flow` knows it and says where its runs are, `runs show` reads its runs,
 * and `metrics` says why it has none.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { archiveThenPrune, cliOk, withCliProject } from "./_cli_sandbox.ts";

const CONFIG = "home: home\nstores:\n  main: { plugin: sqlite, path: data/main.db }\n";
/** The same project, its records moved to a new store (nothing of the old flows in it). */
const MOVED = "home: home\nstores:\n  main: { plugin: sqlite, path: data/main.db }\n" +
  "  fresh: { plugin: sqlite, path: data/fresh.db }\nrecords: fresh\n";

const flow = (id: string, message: string) =>
  `id: ${id}\nnodes:\n  - id: say\n    type: log\n    with: { message: ${message} }\n`;

type Flow = {
  id: string;
  head: string | null;
  versions: number;
  lastRunAt: number | null;
  lastStatus: string | null;
  lastRunArchive: string | null;
  archived?: true;
};
type Version = { hash: string; seq: number; archived?: true; archive?: string };

Deno.test("flowstate flows ls, flows versions, runs ls --flow and metrics answer for flows and versions only the archive keeps", async () => {
  await withCliProject(CONFIG, async (run, dir) => {
    const file = join(dir, "old.flow.yaml");
    await Deno.writeTextFile(file, flow("old", "first"));
    const first = JSON.parse(await cliOk(run, "run", "old.flow.yaml", "--json"));
    await Deno.writeTextFile(file, flow("old", "second"));
    const second = JSON.parse(await cliOk(run, "run", "old.flow.yaml", "--json"));
    assert.notEqual(first.flowVersion, second.flowVersion);

    await archiveThenPrune(run, { archived: 2, versionsDeleted: 1 });

    // The version the retention job deleted is listed from the archive, marked.
    const versions: Version[] = JSON.parse(await cliOk(run, "flows", "versions", "old", "--json"));
    assert.deepEqual(
      versions.map((v) => [v.hash, v.seq, v.archived ?? false]),
      [[second.flowVersion, 2, false], [first.flowVersion, 1, true]],
    );
    assert.match(versions[1].archive ?? "", /^runs-\d{4}-\d{2}\.ndjson\.gz$/);
    const table = await run("flows", "versions", "old");
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^1 \(archived\) +\S+ +- /m);
    assert.match(
      table.stderr,
      /^\(archived\): deleted from the records store, kept in the archive/m,
    );

    // The records move to a new store: nothing of "old" is in it (it does not exist yet).
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), MOVED);
    const check = async () => {
      const flows: Flow[] = JSON.parse(await cliOk(run, "flows", "ls", "--json"));
      const old = flows.find((f) => f.id === "old");
      assert.ok(old, `old is listed: ${JSON.stringify(flows)}`);
      assert.equal(old.archived, true);
      assert.equal(old.head, second.flowVersion, "the version its newest archived run ran");
      assert.equal(old.versions, 2);
      assert.equal(old.lastRunAt, second.startedAt);
      assert.equal(old.lastStatus, "succeeded");
      assert.equal(old.lastRunArchive, versions[1].archive);
      const text = await run("flows", "ls");
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^old \(archived\) +\S+ +2 .* succeeded \(archived\)$/m);
      assert.match(text.stderr, /^\(archived\): known only from the archive/m);

      const listed: Version[] = JSON.parse(await cliOk(run, "flows", "versions", "old", "--json"));
      assert.deepEqual(
        listed.map((v) => [v.hash, v.seq, v.archived]),
        [[second.flowVersion, 2, true], [first.flowVersion, 1, true]],
      );

      // runs ls --flow knows the flow (no "unknown flow" error), and says where its runs are.
      const runs = await run("runs", "ls", "--flow", "old");
      assert.equal(runs.code, 0, runs.stderr);
      assert.match(
        runs.stderr,
        /^"old" has archived runs \(the newest in runs-.*\): flowstate runs ls --archived --flow old$/m,
      );
      const archived = JSON.parse(
        await cliOk(run, "runs", "ls", "--archived", "--flow", "old", "--json"),
      );
      assert.deepEqual(archived.map((r: { id: string }) => r.id), [second.id, first.id]);
      const shown = JSON.parse(await cliOk(run, "runs", "show", first.id, "--json"));
      assert.equal(shown.version.hash, first.flowVersion);

      const metrics = await run("metrics", "old", "--json");
      assert.equal(metrics.code, 0, metrics.stderr);
      assert.equal(metrics.stdout.trim(), "[]");
      const said = await run("metrics", "old");
      assert.equal(said.code, 0, said.stderr);
      assert.match(said.stderr, /^No metrics of "old": it is known only from the archive/m);
    };
    await check();
    // Once the new records store exists (another flow ran), the same answers.
    await Deno.writeTextFile(join(dir, "new.flow.yaml"), flow("new", "hi"));
    await cliOk(run, "run", "new.flow.yaml", "--quiet");
    const flows: Flow[] = JSON.parse(await cliOk(run, "flows", "ls", "--json"));
    assert.deepEqual(flows.map((f) => [f.id, f.archived ?? false]), [["new", false], [
      "old",
      true,
    ]]);
    await check();

    // A flow no record nor archive knows is still an error.
    const unknown = await run("flows", "versions", "nope");
    assert.equal(unknown.code, 1);
  });
});
