/**
 * Runs CLI command lines one after another in this process, for
 * `docs_commands_test.ts`: `deno run <the flowstate task's flags>
 * tests/_doc_commands.ts '<JSON array of argument arrays>'`, in the folder the
 * commands should run in. Before and after each command it writes a marker
 * line on stdout and on stderr (`::doc-command start <index>` and `::doc-command end <index> <exit code>`),
 * so the caller can tell each command's output and exit code. `<run-id>` in
 * an argument stands for the newest recorded run.
 *
 * @module
 */
import { main } from "../src/cli/main.ts";
import { openRuntime } from "../mod.ts";

async function newestRunId(): Promise<string> {
  await using rt = await openRuntime();
  const { runs } = await (await rt.records()).listRuns({ limit: 1 });
  return runs[0]?.id ?? "<no run recorded>";
}

const commands: string[][] = JSON.parse(Deno.args[0]);
for (const [i, args] of commands.entries()) {
  const resolved = args.includes("<run-id>")
    ? await Promise.all(args.map(async (a) => a === "<run-id>" ? await newestRunId() : a))
    : args;
  console.log(`::doc-command start ${i}`);
  console.error(`::doc-command start ${i}`);
  const code = await main(resolved);
  console.log(`::doc-command end ${i} ${code}`);
  console.error(`::doc-command end ${i} ${code}`);
}
