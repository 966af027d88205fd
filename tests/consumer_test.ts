/**
 * Flowstate used as a package, end to end: a user's own project in a
 * temporary directory, whose deno.json imports `jsr:@flowstate/core@^0.4`
 * and links it to this repository (as it would resolve from JSR), runs the
 * exported CLI through its own `deno task run`, loads a plugin package with
 * its own npm dependency by its import-map name, a custom node by a mapped
 * name and one by path, and scripts the same store with `openRuntime`.
 * And `flowstate init` writes a project whose flow runs and whose test passes.
 *
 * Offline: every `deno` here runs with `--cached-only`, against the DENO_DIR
 * of the test run, which holds the npm packages already.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import denoJson from "../deno.json" with { type: "json" };
import redisJson from "../packages/redis/deno.json" with { type: "json" };
import { exitOf, hangGuard } from "./_deadline.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const PERMISSIONS =
  "--unstable-worker-options --allow-read --allow-write --allow-env --allow-net=127.0.0.1 --allow-run --allow-sys";
const CORE = `jsr:@flowstate/core@^${denoJson.version.split(".").slice(0, 2).join(".")}`;
const ZOD = (denoJson.imports as Record<string, string>).zod;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** `deno <args>` in `cwd`, without colours, its output piped. */
function denoCommand(cwd: string, args: string[], env: Record<string, string> = {}): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    env: { NO_COLOR: "1", RUST_BACKTRACE: "0", DENO_NO_UPDATE_CHECK: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/** Run `deno <args>` in `cwd`, without colours. */
async function deno(cwd: string, ...args: string[]): Promise<Result> {
  return await denoWith({}, cwd, ...args);
}

/** {@linkcode deno} with more environment variables. */
async function denoWith(
  env: Record<string, string>,
  cwd: string,
  ...args: string[]
): Promise<Result> {
  const out = await denoCommand(cwd, args, env).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/**
 * The npm packages the users' projects below resolve without this repository's lock file: Deno
 * then needs their registry metadata in the DENO_DIR, which a DENO_DIR filled from a lock file
 * (`deno install --frozen`) may not hold. Fetched once, before anything runs `--cached-only`
 * (a no-op when the DENO_DIR has them). A linked project resolves every workspace member's
 * packages too (ioredis of packages/redis, and its own dependencies).
 */
let npmMetadata: Promise<void> | undefined;
const npmReady = () =>
  npmMetadata ??= (async () => {
    const specs = [
      ...[denoJson, redisJson].flatMap((member) =>
        Object.values(member.imports as Record<string, string>).filter((s) => s.startsWith("npm:"))
      ),
      "npm:pure-rand@8.4.2",
    ];
    const dir = await Deno.makeTempDir({ prefix: "flowstate-consumer-npm-" });
    try {
      for (const spec of specs) ok(await deno(dir, "info", "--no-lock", "--no-config", spec), spec);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  })();

function ok(result: Result, what: string): Result {
  assert.equal(
    result.code,
    0,
    `${what} exited ${result.code}:\n${result.stdout}\n${result.stderr}`,
  );
  return result;
}

async function write(dir: string, files: Record<string, string>): Promise<void> {
  for (const [path, text] of Object.entries(files)) {
    await Deno.mkdir(join(dir, path, ".."), { recursive: true });
    await Deno.writeTextFile(join(dir, path), text);
  }
}

const json = (value: unknown) => JSON.stringify(value, null, 2) + "\n";

/** The example plugin (a Map saved to a JSON file), made to need an npm package of its own. */
async function pluginSource(): Promise<string> {
  const mapfile = await Deno.readTextFile(join(ROOT, "examples/plugins/mapfile.ts"));
  return `import { uniformInt } from "pure-rand/distribution/uniformInt";
if (typeof uniformInt !== "function") throw new Error("pure-rand did not load");
${mapfile}`;
}

Deno.test("a user's project runs the CLI, a mapped plugin with its own npm dependency and custom nodes", async () => {
  await npmReady();
  const dir = await Deno.makeTempDir({ prefix: "flowstate-consumer-" });
  try {
    await write(dir, {
      "deno.json": json({
        links: [ROOT, "./mapfile-plugin"],
        imports: {
          "@flowstate/core": CORE,
          "@example/flowstate-mapfile": "jsr:@example/flowstate-mapfile@^0.1",
          "#nodes/": "./nodes/",
          "#plugins/": "./plugins/",
          zod: ZOD,
        },
        tasks: {
          run: `deno run --cached-only ${PERMISSIONS} ${CORE}/cli run`,
          flowstate: `deno run --cached-only ${PERMISSIONS} ${CORE}/cli`,
        },
      }),
      // A plugin package of its own: a name, a version, and its npm dependency.
      "mapfile-plugin/deno.json": json({
        name: "@example/flowstate-mapfile",
        version: "0.1.0",
        exports: "./mod.ts",
        imports: {
          "@flowstate/core": CORE,
          "pure-rand": "npm:pure-rand@8.4.2",
          zod: ZOD,
        },
      }),
      "mapfile-plugin/mod.ts": await pluginSource(),
      "flowstate.yaml": `stores:
  default:
    plugin: "@example/flowstate-mapfile"
    path: state.json
`,
      "flows/count.flow.yaml": `id: count
nodes:
  - id: count
    type: state.increment
    with: { scope: flow, key: runs }
  - id: double
    type: "#nodes/double.ts"
    needs: [count]
    with: { n: "\${{ nodes.count.output }}" }
  - id: label
    type: ../nodes/label.ts
    needs: [double]
    with: { n: "\${{ nodes.double.output }}" }
outputs:
  runs: "\${{ nodes.count.output }}"
  label: "\${{ nodes.label.output }}"
`,
      "nodes/double.ts": `import { defineNode } from "@flowstate/core";
import { z } from "zod";
export default defineNode({
  optionsSchema: z.strictObject({ n: z.number() }),
  run: (_ctx, { n }) => n * 2,
});
`,
      "nodes/label.ts": `import { defineNode } from "@flowstate/core";
import { z } from "zod";
export default defineNode({
  optionsSchema: z.strictObject({ n: z.number() }),
  run: (_ctx, { n }) => \`doubled: \${n}\`,
});
`,
      "script.ts": `import { openRuntime } from "@flowstate/core";
await using rt = await openRuntime();
const run = await rt.runFlow("flows/count.flow.yaml");
const store = await rt.store();
console.log(JSON.stringify({
  status: run.status,
  outputs: run.outputs,
  plugin: rt.config.stores.default.plugin,
  runs: (await store.get(["flow", "count", "runs"]))?.value ?? null,
}));
`,
    });

    for (const n of [1, 2]) {
      const run = ok(await deno(dir, "task", "run", "flows/count.flow.yaml", "--json"), "run");
      const record = JSON.parse(run.stdout);
      assert.equal(record.status, "succeeded");
      assert.deepEqual(record.outputs, { runs: n, label: `doubled: ${n * 2}` });
    }
    // The plugin's own file holds the state the two runs wrote.
    assert.match(await Deno.readTextFile(join(dir, "state.json")), /flowstate\.mapfile\/1/);

    const script = ok(
      await deno(dir, "run", "--cached-only", ...PERMISSIONS.split(" "), "script.ts"),
      "script",
    );
    assert.deepEqual(JSON.parse(script.stdout), {
      status: "succeeded",
      outputs: { runs: 3, label: "doubled: 6" },
      plugin: "@example/flowstate-mapfile",
      runs: 3,
    });

    // A name nobody maps, and a plugin folder whose own import the project does not map:
    // each error says what to add, and to which deno.json.
    await write(dir, {
      "unmapped.yaml": `stores:\n  default: { plugin: "@example/nowhere", path: x.json }\n`,
      "needs-dep.yaml": `stores:\n  default: { plugin: "#plugins/needs-dep.ts", path: x.json }\n`,
      "plugins/needs-dep.ts": `export { default } from "ioredis";\n`,
    });
    const unmapped = await deno(dir, "task", "flowstate", "-c", "unmapped.yaml", "stores");
    assert.equal(unmapped.code, 2, unmapped.stderr);
    assert.match(
      unmapped.stderr,
      /add "@example\/nowhere": "jsr:@example\/nowhere@<version>" to the imports of \.\/deno\.json/,
    );
    const needsDep = await deno(dir, "task", "flowstate", "-c", "needs-dep.yaml", "stores");
    assert.notEqual(needsDep.code, 0, needsDep.stderr);
    assert.match(
      needsDep.stderr,
      /\.\/plugins\/needs-dep\.ts imports "ioredis", which no import map resolves: add "ioredis": "npm:ioredis@<version>" to the imports of \.\/deno\.json/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a package of custom nodes linked from outside the project loads by its import-map name and its jsr: specifier", async () => {
  await npmReady();
  const dir = await Deno.makeTempDir({ prefix: "flowstate-consumer-" });
  try {
    // Two sibling folders: the project, and a node package it links (as a monorepo would).
    await write(dir, {
      "nodes-pkg/deno.json": json({
        name: "@example/flowstate-nodes",
        version: "0.1.0",
        exports: { "./double": "./double.ts" },
        imports: { "@flowstate/core": CORE, zod: ZOD },
      }),
      "nodes-pkg/double.ts": `import { defineNode } from "@flowstate/core";
import { z } from "zod";
export default defineNode({
  optionsSchema: z.strictObject({ n: z.number() }),
  run: (_ctx, { n }) => n * 2,
});
`,
      "app/deno.json": json({
        links: [ROOT, "../nodes-pkg"],
        imports: {
          "@flowstate/core": CORE,
          "@example/flowstate-nodes": "jsr:@example/flowstate-nodes@^0.1",
          zod: ZOD,
        },
      }),
      "app/flowstate.yaml": "stores:\n  default: { plugin: memory }\n",
      "app/flows/double.flow.yaml": `id: double
nodes:
  - id: mapped
    type: "@example/flowstate-nodes/double"
    with: { n: 2 }
  - id: specifier
    type: jsr:@example/flowstate-nodes@^0.1/double
    needs: [mapped]
    with: { n: "\${{ nodes.mapped.output }}" }
outputs:
  n: "\${{ nodes.specifier.output }}"
`,
    });
    const app = join(dir, "app");
    const cli = ["run", "--cached-only", ...PERMISSIONS.split(" "), `${CORE}/cli`];
    ok(await deno(app, ...cli, "validate", "flows/double.flow.yaml"), "validate");
    const run = ok(await deno(app, ...cli, "run", "flows/double.flow.yaml", "--json"), "run");
    const record = JSON.parse(run.stdout);
    assert.equal(record.status, "succeeded", run.stdout);
    assert.deepEqual(record.outputs, { n: 8 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Run `deno <args>` in `cwd`, send it `signal` once its output matches `ready` (and read on until
 * it has stopped): its exit code and everything it printed.
 */
async function signalWhen(
  cwd: string,
  args: string[],
  ready: RegExp,
  signal: Deno.Signal,
): Promise<Result> {
  const child = denoCommand(cwd, args).spawn();
  const stderr = new Response(child.stderr).text();
  let stdout = "";
  using _hang = hangGuard(child, () => stdout);
  let signalled = false;
  for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
    stdout += chunk;
    if (!signalled && ready.test(stdout)) {
      signalled = true;
      child.kill(signal);
    }
  }
  return { code: (await exitOf(child)).code, stdout, stderr: await stderr };
}

/** `flowstate init app <extra>` in `dir`, run from this checkout's cli.ts. */
function initIn(dir: string, ...extra: string[]): Promise<Result> {
  const cli = join(ROOT, "cli.ts");
  return deno(dir, "run", "--cached-only", ...PERMISSIONS.split(" "), cli, "init", "app", ...extra);
}

/** `flowstate init app` in `dir`; the project's folder and its deno.json, parsed. */
async function initApp(dir: string): Promise<{ app: string; config: Record<string, unknown> }> {
  ok(await initIn(dir), "init");
  const app = join(dir, "app");
  return { app, config: JSON.parse(await Deno.readTextFile(join(app, "deno.json"))) };
}

Deno.test("flowstate init writes a project whose flow runs and whose test passes", async () => {
  await npmReady();
  const dir = await Deno.makeTempDir({ prefix: "flowstate-init-" });
  try {
    const init = ok(
      await initIn(dir),
      "init",
    );
    assert.match(init.stdout, /flows\/hello\.flow\.yaml/);
    assert.match(init.stdout, /deno task run flows\/hello\.flow\.yaml/);
    const app = join(dir, "app");
    // Link the package to this repository, and keep every deno offline.
    const config = JSON.parse(await Deno.readTextFile(join(app, "deno.json")));
    assert.equal(config.imports["@flowstate/core"], CORE);
    // The starter's tasks carry this repository's task flags (permissions, code cache).
    const repoFlags = denoJson.tasks.flowstate.replace(/^deno run (.*) cli\.ts$/, "$1");
    // …and run frozen: the runner never rewrites the project's deno.lock (see the test below).
    assert.equal(config.tasks.flowstate, `deno run --frozen ${repoFlags} ${CORE}/cli`);
    assert.equal(config.tasks.run, `deno run --frozen ${repoFlags} ${CORE}/cli run`);
    assert.match(init.stdout, /^ {2}deno install +# once: writes deno\.lock/m);
    assert.deepEqual(config.unstable, [...denoJson.unstable, "worker-options"]);
    // Run from this checkout, init links the package to it (offline, without jsr.io).
    assert.deepEqual(config.links, [ROOT.replace(/\/$/, "")]);
    assert.match(init.stdout, /deno\.json links @flowstate\/core to the checkout init ran from/);
    for (const [name, task] of Object.entries<string>(config.tasks)) {
      config.tasks[name] = task.replace(/^deno (run|test) /, "deno $1 --cached-only ");
    }
    await Deno.writeTextFile(join(app, "deno.json"), json(config));
    // The first step init prints: the lock the frozen tasks read.
    ok(await deno(app, "install", "--cached-only"), "deno install");

    for (const n of [1, 2]) {
      const run = ok(await deno(app, "task", "run", "flows/hello.flow.yaml", "--json"), "run");
      assert.deepEqual(JSON.parse(run.stdout).outputs, {
        greeting: `Hello, world! (greeting number ${n})`,
        count: n,
      });
    }
    // The default sqlite store of its flowstate.yaml holds the count.
    await Deno.stat(join(app, ".flowstate/state.db"));
    // The project's first test, as on a machine that never type-checked Flowstate: a DENO_DIR
    // with the packages but no type-check cache. The task type-checks the node modules and the
    // tests, then runs them unchecked: `deno test` never type-checks a node Worker's generated
    // entry (it printed a `Check data:…` line holding every path the node may read).
    const denoDir = join(dir, "deno_dir");
    await Deno.mkdir(denoDir);
    const cache = JSON.parse(ok(await deno(dir, "info", "--json"), "info").stdout);
    for (const part of ["npm", "remote"]) {
      const from = join(cache.denoDir, part);
      if ((await Deno.lstat(from).catch(() => null)) !== null) {
        await Deno.symlink(from, join(denoDir, part));
      }
    }
    const test = ok(await denoWith({ DENO_DIR: denoDir }, app, "task", "test"), "test");
    assert.match(test.stderr, /Check tests\/hello_test\.ts/);
    assert.doesNotMatch(test.stderr + test.stdout, /Check data:/);

    // Scheduled: the daemon runs the flow on its schedule (every second here) until SIGINT.
    const flowFile = join(app, "flows/hello.flow.yaml");
    const flowText = await Deno.readTextFile(flowFile);
    assert.match(flowText, /^# schedule: "\*\/5 \* \* \* \*"$/m);
    await Deno.writeTextFile(
      flowFile,
      flowText.replace(/^# schedule: .*$/m, 'schedule: "* * * * * *"'),
    );
    // The command of the project's `flowstate` task, run directly: a SIGINT sent to `deno task`
    // reaches the daemon, but `deno task` may exit before the daemon's last lines pass through it.
    const tasks = JSON.parse(await Deno.readTextFile(join(app, "deno.json"))).tasks;
    const [program, ...taskArgs] = String(tasks.flowstate).split(/\s+/);
    assert.equal(program, "deno");
    const daemon = await signalWhen(app, [...taskArgs, "daemon"], /flow:hello succeeded/, "SIGINT");
    const { stdout: seen, stderr } = daemon;
    assert.match(seen, /flow:hello succeeded/, stderr);
    assert.match(seen, /Stopped/, stderr);
    assert.equal(daemon.code, 0, `${seen}\n${stderr}`);

    // A second init keeps every file as it is.
    const before = await Deno.readTextFile(join(app, "deno.json"));
    const again = ok(
      await initIn(dir, "--json"),
      "init again",
    );
    const result = JSON.parse(again.stdout);
    assert.deepEqual(result.written, []);
    assert.equal(result.toMerge, null, "the deno.json lacks nothing");
    const againText = ok(
      await initIn(dir),
      "init again (text)",
    );
    assert.doesNotMatch(againText.stdout, /merge|added to its unstable/);
    assert.ok(result.kept.includes("deno.json") && result.kept.includes("flows/hello.flow.yaml"));
    assert.equal(await Deno.readTextFile(join(app, "deno.json")), before);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an init'ed project's run task is frozen: a node without permissions cannot add a package to deno.lock", async () => {
  await npmReady();
  const dir = await Deno.makeTempDir({ prefix: "flowstate-init-" });
  try {
    const { app, config } = await initApp(dir);
    const tasks = config.tasks as Record<string, string>;
    tasks.run = tasks.run.replace(/^deno run /, "deno run --cached-only ");
    await write(app, {
      "deno.json": json(config),
      // pure-rand is in the DENO_DIR (fast-check's dependency), but no module of the project
      // names it: importing it adds a specifier to the lock.
      "nodes/sneaky.ts": `import { defineNode } from "@flowstate/core";
import { z } from "zod";
export default defineNode({
  optionsSchema: z.strictObject({ name: z.string() }),
  async run(_ctx, { name }) {
    return typeof (await import("npm:" + name)).default;
  },
});
`,
      "flows/sneaky.flow.yaml": `id: sneaky
nodes:
  - id: s
    type: ../nodes/sneaky.ts
    with: { name: "pure-rand@8.4.2" }
`,
    });
    ok(await deno(app, "install", "--cached-only"), "deno install");
    const lock = await Deno.readTextFile(join(app, "deno.lock"));
    assert.doesNotMatch(lock, /"npm:pure-rand@8\.4\.2"/);
    const run = await deno(app, "task", "run", "flows/sneaky.flow.yaml");
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /\[s\] attempt 1 failed: The lockfile is out of date/);
    assert.equal(await Deno.readTextFile(join(app, "deno.lock")), lock);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const RUN_HELLO = `import { openRuntime } from "@flowstate/core";
import { fileURLToPath } from "node:url";
await using rt = await openRuntime({ config: { stores: { default: { plugin: "memory" } } } });
try {
  const run = await rt.runFlow(fileURLToPath(new URL("../flows/hello.flow.yaml", import.meta.url)));
  console.log(run.status, run.outputs?.greeting);
} catch (err) {
  console.log(\`caught \${(err as Error).name}: \${(err as Error).message}\`);
}
`;

Deno.test("an init'ed project's script runs a custom node with plain deno run, without --unstable-worker-options (its deno.json's unstable list)", async () => {
  await npmReady();
  const dir = await Deno.makeTempDir({ prefix: "flowstate-init-" });
  try {
    const { app, config } = await initApp(dir);
    await write(app, { "scripts/hello.ts": RUN_HELLO });
    const plain = ["run", "--cached-only", "--allow-read", "--allow-write", "--allow-env"];
    const run = ok(await deno(app, ...plain, "scripts/hello.ts"), "deno run scripts/hello.ts");
    assert.equal(run.stdout.trim(), "succeeded Hello, world! (greeting number 1)");
    // With --allow-all the command line is readable: it lacks the flag, and the deno.json
    // around the script is what says the feature is on.
    const all = ok(
      await deno(app, "run", "--cached-only", "-A", "scripts/hello.ts"),
      "deno run -A",
    );
    assert.equal(all.stdout.trim(), "succeeded Hello, world! (greeting number 1)");
    // Without it in the deno.json, a readable command line without the flag refuses the node,
    // as an error the script catches (Deno would end the process with exit 70).
    await Deno.writeTextFile(
      join(app, "deno.json"),
      json({
        ...config,
        unstable: (config.unstable as string[]).filter((u) => u !== "worker-options"),
      }),
    );
    const refused = ok(
      await deno(app, "run", "--cached-only", "-A", "scripts/hello.ts"),
      "deno run -A, no worker-options",
    );
    assert.match(
      refused.stdout,
      /^caught FlowValidationError: .*nodes\[1\]\.type: custom nodes run in Workers .*--unstable-worker-options/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an init'ed (linked) project runs a custom node with deno run -A jsr:@flowstate/core/cli, its deno.json enabling worker-options", async () => {
  await npmReady();
  const dir = await Deno.makeTempDir({ prefix: "flowstate-init-" });
  try {
    const { app, config } = await initApp(dir);
    // The CLI by its jsr: name: links make its main module the checkout's cli.ts, whose own
    // deno.json is not the one Deno applies (the project's, in the working directory).
    const cli = ["run", "--cached-only", "-A", `${CORE}/cli`, "run", "flows/hello.flow.yaml"];
    const run = ok(await deno(app, ...cli, "--json"), "deno run -A jsr:…/cli run");
    assert.equal(JSON.parse(run.stdout).outputs.greeting, "Hello, world! (greeting number 1)");
    // Without the entry in the project's deno.json, the node is refused (exit 2) as before.
    await Deno.writeTextFile(
      join(app, "deno.json"),
      json({
        ...config,
        unstable: (config.unstable as string[]).filter((u) => u !== "worker-options"),
      }),
    );
    const refused = await deno(app, ...cli);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(
      refused.stderr,
      /nodes\[1\]\.type: custom nodes run in Workers .*--unstable-worker-options/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an init'ed project's deno task check type-checks its node modules and the job and plugin modules added later (run and validate do not)", async () => {
  await npmReady();
  const dir = await Deno.makeTempDir({ prefix: "flowstate-init-" });
  try {
    const { app, config } = await initApp(dir);
    const tasks = config.tasks as Record<string, string>;
    assert.equal(tasks.check, "deno check");
    assert.match(tasks.test, /^deno check && deno test --no-check /);
    tasks.check = "deno check --cached-only";
    await write(app, {
      "deno.json": json(config),
      "nodes/typeerr.ts":
        `const n: number = 1;\nexport const s: string = n;\nexport default { run: () => s };\n`,
      "jobs/typeerr.ts": `export const count: number = "three";\n`,
      "plugins/typeerr.ts": `export const ok: boolean = 0;\n`,
    });
    const check = await deno(app, "task", "check");
    assert.notEqual(check.code, 0, check.stderr);
    assert.match(check.stderr, /TS2322[\s\S]*nodes\/typeerr\.ts:2:14/);
    assert.match(check.stderr, /jobs\/typeerr\.ts:1:14/);
    assert.match(check.stderr, /plugins\/typeerr\.ts:1:14/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("importing @flowstate/core loads no postgres driver and no plugin dependency", async () => {
  await npmReady();
  const dir = await Deno.makeTempDir({ prefix: "flowstate-consumer-" });
  try {
    await write(dir, {
      "deno.json": json({ links: [ROOT], imports: { "@flowstate/core": CORE } }),
      "main.ts":
        `import { openRuntime } from "@flowstate/core";\nconsole.log(typeof openRuntime);\n`,
    });
    const info = ok(await deno(dir, "info", "--json", "main.ts"), "deno info");
    const graph = JSON.parse(info.stdout) as { npmPackages?: Record<string, unknown> };
    const npm = Object.keys(graph.npmPackages ?? {});
    assert.ok(npm.length > 0, "the graph lists npm packages"); // zod, yaml, croner…
    assert.deepEqual(npm.filter((id) => !/^(zod|yaml|croner)@/.test(id)), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno publish --dry-run publishes no tests, fixtures or test data", async () => {
  await npmReady();
  const result = ok(
    await deno(ROOT, "publish", "--dry-run", "--allow-dirty", "--no-check"),
    "publish",
  );
  const files = [...(result.stdout + result.stderr).matchAll(/file:\/\/\S+/g)].map((m) => m[0]);
  assert.ok(files.some((f) => f.endsWith("/mod.ts")), "the file list is printed");
  assert.deepEqual(
    files.filter((f) =>
      /\/testdata\/|\/tests\/|_test\.ts$|\/_test_utils\.ts$|\/\.flowstate\//.test(f)
    ),
    [],
  );
});

Deno.test("a user's program scripts Flowstate from its own project: a typed custom node, a worker, a scheduler and the HTTP API under await using, stopped by SIGTERM", async () => {
  await npmReady();
  const dir = await Deno.makeTempDir({ prefix: "flowstate-consumer-" });
  try {
    await write(dir, {
      "deno.json": json({
        links: [ROOT],
        imports: { "@flowstate/core": CORE, zod: ZOD },
        unstable: ["worker-options"],
      }),
      "nodes/double.ts": `import { defineNode } from "@flowstate/core";
import { z } from "zod";
export default defineNode({
  optionsSchema: z.strictObject({ n: z.number() }),
  async run(ctx, { n }) {
    const calls = await ctx.flow.increment("calls");
    return { doubled: n * 2, calls };
  },
});
`,
      "flows/double.flow.yaml": `id: double
inputs:
  n: { type: number, default: 1 }
nodes:
  - id: double
    type: ../nodes/double.ts
    with: { n: "\${{ inputs.n }}" }
outputs:
  doubled: "\${{ nodes.double.output.doubled }}"
`,
      "main.ts": `import { NotFoundError, openRuntime, startWorker } from "@flowstate/core";
import { Scheduler } from "@flowstate/core/scheduler";
import { serve } from "@flowstate/core/serve";

const stop = Promise.withResolvers<void>();
Deno.addSignalListener("SIGTERM", () => stop.resolve());

await using rt = await openRuntime({
  config: {
    stores: { main: { plugin: "memory" } },
    flows: ["./flows"],
    jobs: { retention: { enabled: false }, gc: { enabled: false } },
  },
});
const changes: string[] = [];
const watching = (async () => {
  for await (const event of rt.events()) {
    if (event.type === "state.changed") changes.push(event.key.join("/"));
  }
})();
const direct = await rt.runFlow("./flows/double.flow.yaml", { input: { n: 21 } });
console.log("direct", direct.status, direct.outputs?.doubled);
const ended = Promise.withResolvers<string>();
await using _worker = startWorker(rt, {
  onEvent: (e) => void (e.type === "end" && ended.resolve(e.status)),
});
await using scheduler = new Scheduler(rt, { startProblems: "report" });
await scheduler.start();
const { runId } = await rt.enqueue("double", { input: { n: 2 } });
console.log("queued", await ended.promise);
const records = await rt.records();
console.log("record", (await records.getRun(runId))?.outputs?.doubled);
console.log("metrics", (await records.getMetrics("double"))?.succeeded);
const missing = await rt.enqueue("nope").catch((e) => e);
console.log("missing", missing instanceof NotFoundError && missing.code);
// The HTTP API and the inspector, from the program (the worker above runs what it enqueues).
await using server = await serve(rt, { port: 0, worker: false });
const api = await fetch(new URL(\`/api/runs/\${runId}\`, server.url));
console.log("api", api.status, (await api.json()).run.outputs?.doubled);
const page = await fetch(server.url);
console.log("inspector", page.status, (await page.text()).includes("<html"));
console.log("ready");
await stop.promise;
rt.close().then(() => watching).then(() => console.log("changes", changes.join(",")));
`,
      "bad_node.ts": `import { defineNode } from "@flowstate/core";
import { z } from "zod";
export default defineNode({
  optionsSchema: z.strictObject({}),
  run: () => ({ at: new Date() }),
});
`,
    });
    const flags = ["--cached-only", ...PERMISSIONS.split(" ")];
    ok(await deno(dir, "check", "--cached-only", "main.ts", "nodes/double.ts"), "deno check");
    // The output type check reaches a user's node through the linked package.
    const bad = await deno(dir, "check", "--cached-only", "bad_node.ts");
    assert.notEqual(bad.code, 0, bad.stderr);
    assert.match(bad.stderr, /TS2322[\s\S]*a Date is not JSON[\s\S]*bad_node\.ts:5:3/);

    const program = await signalWhen(dir, ["run", ...flags, "main.ts"], /^ready$/m, "SIGTERM");
    assert.equal(program.code, 0, `${program.stdout}\n${program.stderr}`);
    assert.deepEqual(program.stdout.trim().split("\n"), [
      "direct succeeded 42",
      "queued succeeded",
      "record 4",
      "metrics 2",
      "missing NOT_FOUND",
      "api 200 4",
      "inspector 200 true",
      "ready",
      "changes flow/double/calls,flow/double/calls",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
