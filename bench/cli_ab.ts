/**
 * One `flowstate run` of a flow, cold (a new process each), before and after
 * a change, and after with `--log-format json`: each checkout's own `run`
 * task (its deno.json's flags, its `cli.ts run`), in its own directory (its
 * own `.flowstate`), the flow's path taken in each checkout. Rounds
 * interleaved (the order rotates per round, so load hits each alike); prints
 * medians, p25–p75 and the per-round ratios to "before" of wall and CPU time
 * (user + system of the child, from bash's `times`).
 *
 *   BEFORE=<another checkout> deno run -A bench/cli_ab.ts [rounds=15] [flow...]
 *
 * The flows default to examples/counter.flow.yaml (built-in nodes only) and
 * examples/retry.flow.yaml (a custom node in a Worker, retried twice: ~150 ms
 * of backoff, the same in both). Both modes print what a terminal would see:
 * the text summary, or one JSON line per event.
 */
import { loadAverage, medianSpread, timeDeno } from "./_cpu.ts";

const rounds = Number(Deno.args[0] ?? 15);
const flows = Deno.args.length > 1
  ? Deno.args.slice(1)
  : ["examples/counter.flow.yaml", "examples/retry.flow.yaml"];
const after = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const before = Deno.env.get("BEFORE")?.replace(/\/$/, "");
if (before === undefined) throw new Error("BEFORE=<another checkout> is required");

/** The `run` task of a checkout's deno.json, as `deno` arguments. */
function runTask(checkout: string): string[] {
  const task: string = JSON.parse(Deno.readTextFileSync(`${checkout}/deno.json`)).tasks.run;
  if (!task.startsWith("deno ")) throw new Error(`unexpected run task: ${task}`);
  return task.slice("deno ".length).split(" ");
}

const time = timeDeno;
const fmt = medianSpread;
const load = loadAverage;

console.log(`before: ${before}; after: ${after}; ${rounds} rounds; load average ${load()}`);
for (const flow of flows) {
  const variants: Record<string, [string, string[]]> = {
    before: [before, [...runTask(before), flow]],
    after: [after, [...runTask(after), flow]],
    "after, --log-format json": [after, [...runTask(after), flow, "--log-format", "json"]],
  };
  const names = Object.keys(variants);
  const wall: Record<string, number[]> = {};
  const cpu: Record<string, number[]> = {};
  for (const [cwd, args] of Object.values(variants)) await time(cwd, args); // warm the caches
  for (let r = 0; r < rounds; r++) {
    const order = names.map((_, i) => names[(i + r) % names.length]);
    for (const name of order) {
      const t = await time(...variants[name]);
      (wall[name] ??= []).push(t.wall);
      (cpu[name] ??= []).push(t.cpu);
    }
  }
  console.log(`\n${flow} (load average now ${load()})\n`);
  console.log(
    "| variant | wall ms, median (p25–p75) | CPU ms | wall / before, per round | CPU / before, per round |",
  );
  console.log("| --- | --- | --- | --- | --- |");
  for (const name of names) {
    const ratio = (xs: Record<string, number[]>) =>
      fmt(xs[name].map((x, i) => x / xs.before[i]), 2);
    console.log(
      `| ${name} | ${fmt(wall[name])} | ${fmt(cpu[name], 0)} | ${ratio(wall)} | ${ratio(cpu)} |`,
    );
  }
}
