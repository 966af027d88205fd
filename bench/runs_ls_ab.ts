/**
 * `flowstate runs ls` of 10,000 runs (half of them through the queue: enqueued,
 * claimed, finished; half run directly), before and after a change: each
 * checkout seeds its own sqlite home with its own code (the summaries it
 * writes), then a new `runs ls` process per round lists them all: the list of
 * all runs (summaries made from the records) and one flow's runs (summaries
 * read from its index), as a table and as `--json`. Rounds interleaved (the
 * order flips every round); prints medians and after/before ratios of wall time.
 *
 *   BEFORE=<another checkout> deno run -A bench/runs_ls_ab.ts [runs=10000] [rounds=9]
 */
import { join } from "node:path";

const N = Number(Deno.args[0] ?? 10_000);
const ROUNDS = Number(Deno.args[1] ?? 9);
const after = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const before = Deno.env.get("BEFORE")?.replace(/\/$/, "");
if (before === undefined) throw new Error("BEFORE=<another checkout> is required");

/** The seeding program, run by each checkout's own code. */
const SEED = `
import { openRuntime } from "CHECKOUT/mod.ts";
const [dir, n] = [Deno.args[0], Number(Deno.args[1])];
await using rt = await openRuntime({ cwd: dir, home: dir + "/home" });
const records = await rt.records();
const flow = (id) => ({ id, nodes: [{ id: "a", type: "log", with: { message: "hi" } }] });
const direct = (await records.saveVersion(flow("direct"))).hash;
const queued = (await records.saveVersion(flow("queued"))).hash;
for (let i = 0; i < n / 2; i++) {
  const t = Date.now();
  const id = (await import("CHECKOUT/records.ts")).newRunId(t);
  const run = { id, flowId: "direct", flowVersion: direct, status: "running", inputs: { i },
    outputs: null, startedAt: t, endedAt: null, durationMs: null, nodes: {}, error: null };
  await records.startRun(run);
  await records.finishRun({ ...run, status: "succeeded", outputs: {}, endedAt: t + 5 });
  await records.enqueueRun({ flowId: "queued", flowVersion: queued, inputs: { i },
    flowPath: dir + "/queued.flow.yaml" });
  const claimed = await records.claimRun({ worker: "w", leaseMs: 60_000 });
  await records.finishClaimedRun({ ...claimed, status: "succeeded", outputs: {} });
}
`;

async function sh(cwd: string, args: string[]): Promise<number> {
  const t0 = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1", FLOWSTATE_HOME: join(cwd, "home") },
  }).output();
  if (!out.success) throw new Error(`${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return performance.now() - t0;
}

const dirs: Record<string, string> = {};
for (const [name, checkout] of [["before", before], ["after", after]]) {
  const dir = await Deno.makeTempDir({ prefix: `runs-ls-${name}-` });
  await Deno.writeTextFile(
    join(dir, "flowstate.yaml"),
    "stores:\n  default: { plugin: sqlite, path: state.db }\n",
  );
  const seed = join(dir, "seed.js");
  await Deno.writeTextFile(seed, SEED.replaceAll("CHECKOUT", checkout));
  const ms = await sh(dir, [
    "run",
    "-A",
    "--config",
    join(checkout, "deno.json"),
    seed,
    dir,
    String(N),
  ]);
  console.error(`${name}: seeded ${N} runs in ${(ms / 1000).toFixed(1)} s`);
  dirs[name] = dir;
}

const cases: Record<string, string[]> = {
  "all runs, table": ["runs", "ls", "--limit", String(N)],
  "all runs, --json": ["runs", "ls", "--limit", String(N), "--json"],
  "--flow queued, table": ["runs", "ls", "--flow", "queued", "--limit", String(N)],
  "--flow queued, --json": ["runs", "ls", "--flow", "queued", "--limit", String(N), "--json"],
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log(`| runs ls of ${N} runs (${ROUNDS} rounds) | before ms | after ms | after/before |`);
console.log("|---|---|---|---|");
for (const [what, args] of Object.entries(cases)) {
  const times: Record<string, number[]> = { before: [], after: [] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const name of r % 2 ? ["after", "before"] : ["before", "after"]) {
      const checkout = name === "before" ? before : after;
      const argv = [
        "run",
        "-A",
        "--unstable-worker-options",
        "--config",
        join(checkout, "deno.json"),
        join(checkout, "cli.ts"),
        ...args,
      ];
      times[name].push(await sh(dirs[name], argv));
    }
  }
  const [b, a] = [median(times.before), median(times.after)];
  console.log(`| ${what} | ${b.toFixed(0)} | ${a.toFixed(0)} | ${(a / b).toFixed(2)} |`);
}
for (const dir of Object.values(dirs)) await Deno.remove(dir, { recursive: true });
