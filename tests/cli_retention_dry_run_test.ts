/**
 * `flowstate jobs run retention --dry-run` counts the flow versions the real
 * run deletes: those only the runs it would delete refer to (the runs are
 * still there in a dry run, so a count from the records as they are would
 * miss them), and never one a run it keeps refers to.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliOk, withCliProject } from "./_cli_sandbox.ts";

const CONFIG = "home: home\nstores:\n  main: { plugin: sqlite, path: data/main.db }\n";

const logFlow = (message: string) =>
  `id: hello\nnodes:\n  - id: say\n    type: log\n    with: { message: ${message} }\n`;
const failFlow = "id: hello\nnodes:\n  - id: boom\n    type: fail\n    with: { message: no }\n";

async function retention(
  run: Parameters<Parameters<typeof withCliProject>[1]>[0],
  ...options: string[]
): Promise<{ deleted: number; versionsDeleted: number; dryRun: boolean }> {
  const args = ["jobs", "run", "retention", "--json", "--quiet"];
  for (const option of options) {
    if (option.startsWith("--")) args.push(option);
    else args.push("--option", option);
  }
  return JSON.parse(await cliOk(run, ...args)).outputs;
}

Deno.test("retention --dry-run counts the versions only the runs it would delete use, as the real run deletes", async () => {
  await withCliProject(CONFIG, async (run, dir) => {
    const file = join(dir, "hello.flow.yaml");
    await Deno.writeTextFile(file, logFlow("first"));
    await cliOk(run, "run", "hello.flow.yaml", "--quiet");
    await Deno.writeTextFile(file, logFlow("second"));
    await cliOk(run, "run", "hello.flow.yaml", "--quiet");

    const dry = await retention(run, "maxAge=0", "--dry-run");
    assert.equal(dry.dryRun, true);
    assert.equal(dry.deleted, 2, JSON.stringify(dry));
    assert.equal(dry.versionsDeleted, 1, "the first version: only a run it deletes uses it");
    const versions = JSON.parse(await cliOk(run, "flows", "versions", "hello", "--json"));
    assert.equal(versions.length, 2, "a dry run deletes nothing");

    // (The real run deletes the dry run's own record too: it ended.)
    const real = await retention(run, "maxAge=0");
    assert.equal(real.versionsDeleted, dry.versionsDeleted);
  });
});

Deno.test("retention --dry-run does not count a version a run it keeps uses", async () => {
  await withCliProject(CONFIG, async (run, dir) => {
    const file = join(dir, "hello.flow.yaml");
    await Deno.writeTextFile(file, failFlow);
    const failed = await run("run", "hello.flow.yaml", "--quiet");
    assert.notEqual(failed.code, 0, "the first version fails");
    await Deno.writeTextFile(file, logFlow("second"));
    await cliOk(run, "run", "hello.flow.yaml", "--quiet");

    // Failed runs never age out: the failed run stays, and so does the version it ran.
    const dry = await retention(run, "maxAge=0", "failedMaxAge=null", "--dry-run");
    assert.equal(dry.deleted, 1, JSON.stringify(dry));
    assert.equal(dry.versionsDeleted, 0);
    const real = await retention(run, "maxAge=0", "failedMaxAge=null");
    assert.equal(real.versionsDeleted, 0);
  });
});
