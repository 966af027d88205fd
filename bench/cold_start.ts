/**
 * Cold start of `deno task run examples/counter.flow.yaml` beside a bare Deno
 * start doing the same write (bench/cold_bare.ts), interleaved and repeated;
 * then what each module on the run path costs to import, each in a fresh
 * process, interleaved too. Prints medians and ratios (markdown tables).
 *
 * Run (from the repository root):
 *   deno run -A bench/cold_start.ts [rounds=15]
 *
 * Both write under `./.flowstate` of the repository (state.db, bare.db).
 * "The task's command" is the `run` task of deno.json as it stands (its flags,
 * `cli.ts run`), without `deno task`. With `BEFORE=<another checkout>`, that
 * checkout's own `run` task (its flags, its `cli.ts`) is timed in the same
 * rounds too (before/after a change).
 *
 * CPU time (user + system) of each child comes from bash's `times` (to the
 * millisecond) when `/bin/bash` is there; the load average is printed before
 * and after. The import probes and bench/cold_probe.ts run with the task's
 * `--v8-flags` (the same code cache as the run). At the end,
 * bench/cold_probe.ts says whether a run loaded zod (it should not, on a hit
 * without flowstate.yaml).
 *
 * A project made by `flowstate init` (a `flowstate.yaml`, `flows/hello.flow.yaml`;
 * its deno.json links `@flowstate/core` to this checkout, as
 * tests/consumer_test.ts does, and its tasks run `--cached-only`) is timed too:
 * `deno task run flows/hello.flow.yaml` there (its custom node runs in a
 * Worker that loads zod), and `flows/counter.flow.yaml` (a copy of the
 * example: built-in nodes only), in a temporary directory. With
 * `BEFORE`, a second such project, made by and linked to that checkout, runs
 * in the same rounds.
 */
const rounds = Number(Deno.args[0] ?? 15);
const root = new URL("..", import.meta.url).pathname;

/** The `run` task of a checkout's deno.json, as `deno` arguments (its own flags, its cli.ts). */
function runTask(checkout: string): string[] {
  const config = JSON.parse(Deno.readTextFileSync(`${checkout}/deno.json`));
  const task: string = config.tasks.run;
  if (!task.startsWith("deno ")) throw new Error(`unexpected run task: ${task}`);
  return task.slice("deno ".length).split(" ").map((a) =>
    a === "cli.ts" && checkout !== root ? `${checkout}/cli.ts` : a
  );
}

const TASK_COMMAND = "deno run … cli.ts run examples/counter.flow.yaml (the task's command)";
const commands: Record<string, string[]> = {
  "bare: deno run bench/cold_bare.ts": [
    "run",
    "--allow-read",
    "--allow-write=.flowstate",
    "bench/cold_bare.ts",
  ],
  // The floor of any task: `deno task` itself (reading deno.json, the lock, the workspace, then
  // starting the command) around the bare start. No task can be cheaper than this.
  "floor: deno task bench:cold-bare (the bare start through deno task)": [
    "task",
    "--quiet",
    "bench:cold-bare",
  ],
  // Deno's own start: a file that does nothing.
  "deno run bench/cold_empty.ts (Deno's start alone)": ["run", "bench/cold_empty.ts"],
  "deno task run examples/counter.flow.yaml": [
    "task",
    "--quiet",
    "run",
    "examples/counter.flow.yaml",
    "--quiet",
  ],
  [TASK_COMMAND]: [...runTask(root), "examples/counter.flow.yaml", "--quiet"],
};

// With BEFORE=<checkout>: that checkout's `run` task (its flags, its cli.ts), from here.
const before = Deno.env.get("BEFORE")?.replace(/\/$/, "");
if (before !== undefined) {
  commands[`the same, with ${before}'s run task (before)`] = [
    ...runTask(before),
    "examples/counter.flow.yaml",
    "--quiet",
  ];
}

/** A project made by `<checkout>/cli.ts init`, linked to that checkout (see tests/consumer_test.ts). */
function initProject(checkout: string): string {
  const dir = Deno.makeTempDirSync({ prefix: "flowstate-bench-init-" });
  const out = new Deno.Command(Deno.execPath(), {
    args: ["run", "--cached-only", "-A", `${checkout}/cli.ts`, "init", "app"],
    cwd: dir,
    stdout: "null",
    stderr: "piped",
  }).outputSync();
  if (!out.success) throw new Error(`init failed: ${new TextDecoder().decode(out.stderr)}`);
  const app = `${dir}/app`;
  const config = JSON.parse(Deno.readTextFileSync(`${app}/deno.json`));
  config.links = [checkout];
  for (const [name, task] of Object.entries<string>(config.tasks)) {
    config.tasks[name] = task.replace(/^deno (run|test) /, "deno $1 --cached-only ");
  }
  Deno.writeTextFileSync(`${app}/deno.json`, JSON.stringify(config, null, 2));
  // The first step init prints: the lock its `--frozen` tasks read (as tests/consumer_test.ts).
  const install = new Deno.Command(Deno.execPath(), {
    args: ["install", "--cached-only"],
    cwd: app,
    stdout: "null",
    stderr: "piped",
  }).outputSync();
  if (!install.success) {
    throw new Error(`deno install failed: ${new TextDecoder().decode(install.stderr)}`);
  }
  // A flow of built-in nodes only: the starter's runs a sandboxed custom node, whose Worker
  // loads zod (the node's options schema) whatever the config costs.
  Deno.copyFileSync(`${root}/examples/counter.flow.yaml`, `${app}/flows/counter.flow.yaml`);
  return app;
}

/** The working directory of commands that do not run in the repository. */
const cwds: Record<string, string> = {};
const projects: string[] = [];
const initRun = (flow: string) => ["task", "--quiet", "run", `flows/${flow}.flow.yaml`, "--quiet"];
for (const checkout of [root.replace(/\/$/, ""), ...(before === undefined ? [] : [before])]) {
  const app = initProject(checkout);
  projects.push(app);
  const which = checkout === before ? ` (before: made by and linked to ${before})` : "";
  for (const flow of ["counter", "hello"]) {
    const name = `flowstate init's project${which}: deno task run flows/${flow}.flow.yaml`;
    commands[name] = initRun(flow);
    cwds[name] = app;
  }
}

// The probes below run with the task's V8 flags: the code cache they use (and write) is the run's.
const v8Flags = commands[TASK_COMMAND].filter((a) => a.startsWith("--v8-flags="));

const cpu: Record<string, number[]> = {};
const loadavg = () => {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "n/a";
  }
};
/** Whether bash is there: it reports the child's CPU time (`times`) to the millisecond. */
const bash = (() => {
  try {
    return Deno.statSync("/bin/bash").isFile;
  } catch {
    return false;
  }
})();

/**
 * Wall time of one `deno <args>` process; with `name`, its CPU time (user +
 * system, from bash's `times`) is kept too. bash adds ~1 ms of wall time to
 * every command alike.
 */
async function time(args: string[], name?: string): Promise<number> {
  const cwd = (name !== undefined ? cwds[name] : undefined) ?? root;
  const start = performance.now();
  const out = await new Deno.Command(bash ? "/bin/bash" : Deno.execPath(), {
    args: bash ? ["-c", '"$@"; s=$?; times >&2; exit $s', "bash", Deno.execPath(), ...args] : args,
    cwd,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const ms = performance.now() - start;
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`deno ${args.join(" ")} failed:\n${stderr}`);
  // The last line of `times`: the children's user and system time, `0m0.041s 0m0.012s`.
  const m = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s\s*$/.exec(stderr);
  if (m && name !== undefined) {
    (cpu[name] ??= []).push(((+m[1] + +m[3]) * 60 + +m[2] + +m[4]) * 1000);
  }
  return ms;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const loadBefore = loadavg();
// Warm Deno's caches (transpiled modules, code cache, the config and flow disk caches) first:
// "cold" is a new process.
for (const [name, args] of Object.entries(commands)) {
  await time(args, name);
  await time(args, name);
}
for (const name of Object.keys(cpu)) delete cpu[name];
const samples = Object.fromEntries(Object.keys(commands).map((k) => [k, [] as number[]]));
const ratios = Object.fromEntries(Object.keys(commands).map((k) => [k, [] as number[]]));
for (let r = 0; r < rounds; r++) {
  // Interleaved, the order rotating each round.
  const names = Object.keys(commands);
  const order = names.map((_, i) => names[(i + r) % names.length]);
  const round: Record<string, number> = {};
  for (const name of order) round[name] = await time(commands[name], name);
  const bare = round[names[0]];
  for (const name of names) {
    samples[name].push(round[name]);
    ratios[name].push(round[name] / bare);
  }
}
console.log(
  `\nCold start, ${rounds} interleaved rounds (wall time of the process; load average ${loadBefore} before, ${loadavg()} after)\n`,
);
console.log(
  "| command | median | min | ratio to bare (median of per-round ratios) | CPU (user+sys) median | CPU ratio |",
);
console.log("| --- | --- | --- | --- | --- | --- |");
const bareCpu = cpu[Object.keys(commands)[0]];
for (const name of Object.keys(commands)) {
  const c = cpu[name];
  console.log(
    `| ${name} | ${median(samples[name]).toFixed(1)} ms | ${
      Math.min(...samples[name]).toFixed(1)
    } ms | ${median(ratios[name]).toFixed(2)} | ${c ? `${median(c).toFixed(1)} ms` : "n/a"} | ${
      c && bareCpu ? (median(c) / median(bareCpu)).toFixed(2) : "n/a"
    } |`,
  );
}

// What importing each module costs, measured inside a fresh process.
const modules = [
  "node:sqlite",
  "node:path",
  "npm:yaml@2.9.1",
  "npm:zod@4.6.7",
  "npm:@commander-js/extra-typings@15.1.0",
  "./src/cli/main.ts",
  "./src/cli/program.ts",
  "./src/cli/run.ts",
  "./src/runtime.ts",
  "./src/flow/parse.ts",
  "./plugins/sqlite/plugin.ts",
  "./plugins/sqlite/mod.ts",
];
const probe = (m: string) => [
  "eval",
  ...v8Flags,
  "--ext=ts",
  `const t = performance.now(); await import(${
    JSON.stringify(m.startsWith(".") ? new URL(m, `file://${root}`).href : m)
  }); console.log(performance.now() - t);`,
];
const importMs = Object.fromEntries(modules.map((m) => [m, [] as number[]]));
for (const m of modules) await time(probe(m));
for (let r = 0; r < Math.max(5, Math.round(rounds / 2)); r++) {
  for (const m of modules) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: probe(m),
      cwd: root,
      stdout: "piped",
      stderr: "piped",
    }).output();
    importMs[m].push(Number(new TextDecoder().decode(out.stdout).trim()));
  }
}
console.log("\nImport cost, alone in a fresh process (median)\n");
console.log("| module | import |");
console.log("| --- | --- |");
for (const m of modules) console.log(`| ${m} | ${median(importMs[m]).toFixed(1)} ms |`);

// Import-time breakdown of the run path: one fresh process imports these in order (each
// after the ones above it, so a row is what it adds), repeated; medians.
const layers = [
  "./src/errors.ts",
  "./src/store/store.ts",
  "./src/plugin.ts",
  "./src/records/records.ts",
  "./src/flow/executor.ts",
  "./src/config.ts",
  "./src/runtime.ts",
  "./src/flow_disk_cache.ts",
  "./src/cli/run.ts",
  "./plugins/sqlite/plugin.ts",
];
const layerProbe = [
  "eval",
  ...v8Flags,
  "--ext=ts",
  `const out = []; for (const m of ${
    JSON.stringify(layers.map((m) => new URL(m, `file://${root}`).href))
  }) { const t = performance.now(); await import(m); out.push(performance.now() - t); } console.log(JSON.stringify(out));`,
];
const layerMs = layers.map(() => [] as number[]);
await time(layerProbe);
for (let r = 0; r < Math.max(5, Math.round(rounds / 2)); r++) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: layerProbe,
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  (JSON.parse(new TextDecoder().decode(out.stdout)) as number[]).forEach((ms, i) =>
    layerMs[i].push(ms)
  );
}
console.log("\nImport-time breakdown of the run path (one process, in this order; median)\n");
console.log("| module (with what it adds) | import |");
console.log("| --- | --- |");
layers.forEach((m, i) => console.log(`| ${m} | ${median(layerMs[i]).toFixed(1)} ms |`));

// What a run loaded (bench/cold_probe.ts: one run in-process, then whether zod is there).
console.log("\nbench/cold_probe.ts (one run in a fresh process), 3 times:\n");
for (let i = 0; i < 3; i++) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...v8Flags, "-A", "bench/cold_probe.ts"],
    cwd: root,
    stdout: "null",
    stderr: "piped",
  }).output();
  console.log(new TextDecoder().decode(out.stderr).trim());
}

// What Deno reads before the first line of cli.ts runs: the module graph of its static and
// literal dynamic imports (`deno info`), and the transpiled code it keeps for each module in its
// cache (`gen/`), which carries the JSDoc and an inline source map holding the whole source.
{
  const info = new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "cli.ts"],
    cwd: root,
    stdout: "piped",
    stderr: "null",
  }).outputSync();
  const graph = JSON.parse(new TextDecoder().decode(info.stdout)) as {
    modules: { specifier: string; local?: string; size?: number }[];
  };
  const local = graph.modules.filter((m) => m.specifier.startsWith("file://") && m.local);
  const dirInfo = new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    stdout: "piped",
    stderr: "null",
  }).outputSync();
  const denoDir: string | undefined = JSON.parse(new TextDecoder().decode(dirInfo.stdout)).denoDir;
  let emitted = 0;
  let emittedCount = 0;
  for (const m of local) {
    try {
      emitted += Deno.statSync(`${denoDir}/gen/file${m.local}.js`).size;
      emittedCount++;
    } catch {
      // A .js module, or one not transpiled yet: no emitted file.
    }
  }
  const mb = (n: number) => `${(n / 1e6).toFixed(2)} MB`;
  console.log(
    `\nThe module graph of cli.ts (static and literal dynamic imports): ${local.length} local ` +
      `modules, ${mb(local.reduce((n, m) => n + (m.size ?? 0), 0))} of source; their ` +
      `transpiled code in Deno's cache: ${mb(emitted)} (${emittedCount} files)`,
  );
}
for (const app of projects) await Deno.remove(app.replace(/\/app$/, ""), { recursive: true });
