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

/** Wall and CPU time (ms) of one `deno <args>` in `cwd`; throws on a failure. */
async function time(cwd: string, args: string[]): Promise<{ wall: number; cpu: number }> {
  const start = performance.now();
  const out = await new Deno.Command("/bin/bash", {
    args: ["-c", '"$@"; s=$?; times >&2; exit $s', "bash", Deno.execPath(), ...args],
    cwd,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const wall = performance.now() - start;
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`deno ${args.join(" ")} failed in ${cwd}:\n${stderr}`);
  const m = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s\s*$/.exec(stderr);
  if (!m) throw new Error(`no times in: ${stderr}`);
  return { wall, cpu: ((+m[1] + +m[3]) * 60 + +m[2] + +m[4]) * 1000 };
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const fmt = (xs: number[], digits = 1) =>
  `${quantile(xs, 0.5).toFixed(digits)} (${quantile(xs, 0.25).toFixed(digits)}–${
    quantile(xs, 0.75).toFixed(digits)
  })`;
const load = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");

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
