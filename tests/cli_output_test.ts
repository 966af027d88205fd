/**
 * The library prints nothing; the CLI prints what it always printed: a store's
 * warnings on stderr, and a job's log lines and progress unless --quiet.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openStore } from "../mod.ts";
import { withSandbox } from "./_cli_sandbox.ts";

const MOD = new URL("../mod.ts", import.meta.url).href;

Deno.test("the CLI prints a store's warning on stderr (a jsonfile store past 4 MiB)", async () => {
  await withSandbox(async ({ dir, run }) => {
    const path = join(dir, "big.json");
    const store = await openStore({ plugin: "jsonfile", path });
    const atomic = store.atomic();
    for (let i = 0; i < 1100; i++) atomic.set(["big", String(i)], "x".repeat(4096));
    assert.equal((await atomic.commit()).ok, true);
    await store.close();
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  main: { plugin: jsonfile, path: ./big.json }\n",
    );
    const result = await run("stores");
    assert.match(
      result.stderr,
      /Store "main": .*big\.json is 4\.\d MiB, past the 4\.0 MiB where a sqlite store is faster/,
    );
  });
});

Deno.test("jobs run prints a job's log lines and progress on stderr, and nothing with --quiet", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "report.ts"),
      `import { defineJob } from ${JSON.stringify(MOD)};
import { z } from "zod";
export default defineJob({
  name: "report",
  description: "logs and reports progress",
  optionsSchema: z.strictObject({}),
  run(ctx) {
    ctx.progress.start("steps", 2);
    ctx.progress.advance(2);
    ctx.progress.finish();
    ctx.log("hello from report");
    return { ok: true };
  },
});
`,
    );
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  main: { plugin: memory }\njobs:\n  report: { module: ./report.ts }\n",
    );
    const loud = await run("jobs", "run", "report");
    assert.equal(loud.code, 0, loud.stderr);
    assert.match(loud.stderr, /^\[report\] hello from report$/m);
    assert.match(loud.stderr, /^steps 100% 2\/2/m, "progress as plain lines (not a terminal)");
    const quiet = await run("jobs", "run", "report", "--quiet");
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.equal(quiet.stderr, "");
  });
});
