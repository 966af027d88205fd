/**
 * Workers of sandboxed custom nodes are started once per module and run
 * (the Worker that checks a module runs it), and reused across runs where a
 * runtime keeps them (`nodes.workerIdle`; the daemon's default is 1 minute).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime } from "../mod.ts";
import { sandboxPoolOf } from "../src/runtime.ts";
import { SandboxPool } from "../src/flow/sandbox.ts";
import { cliCommand, withSandbox } from "./_cli_sandbox.ts";
import { streamLines, within } from "./fixtures/daemon_process.ts";
import { exitOf, killQuietly, waitUntil } from "./_deadline.ts";

/**
 * A node module that appends a line to starts.log when a Worker loads it, and
 * returns how many times this Worker has run it, tagged with `version`.
 */
function counter(version: string): string {
  return `
const schema = { "~standard": { version: 1, vendor: "test", validate: (value) => ({ value }) } };
await Deno.writeTextFile(new URL("../starts.log", import.meta.url), "start\\n", { append: true });
let calls = 0;
export default {
  kind: "flowstate.node",
  optionsSchema: schema,
  run() { calls++; return "${version}:" + calls; },
};
`;
}

const FLOW = "id: count\nnodes:\n" +
  "  - { id: a, type: ./nodes/counter.js, permissions: { write: [./starts.log] } }\n" +
  "  - { id: b, type: ./nodes/counter.js, needs: [a], permissions: { write: [./starts.log] } }\n";

async function project(dir: string, config: string): Promise<void> {
  await Deno.mkdir(join(dir, "nodes"), { recursive: true });
  await Deno.writeTextFile(join(dir, "nodes", "counter.js"), counter("v1"));
  await Deno.writeTextFile(join(dir, "count.flow.yaml"), FLOW);
  await Deno.writeTextFile(join(dir, "flowstate.yaml"), config);
}

async function starts(dir: string): Promise<number> {
  const log = await Deno.readTextFile(join(dir, "starts.log")).catch(() => "");
  return log.split("\n").filter((l) => l === "start").length;
}

Deno.test("one Worker per module and run: the Worker that checks a module runs it (CLI run)", async () => {
  await withSandbox(async ({ dir, run }) => {
    await project(dir, "stores:\n  default: { plugin: memory }\n");
    const result = await run("run", "count.flow.yaml", "--json");
    assert.equal(result.code, 0, result.stderr);
    const record = JSON.parse(result.stdout);
    // Both nodes ran in the same Worker, which was also the one that checked the module.
    assert.deepEqual([record.nodes.a.output, record.nodes.b.output], ["v1:1", "v1:2"]);
    assert.equal(await starts(dir), 1);
  });
});

Deno.test("a runtime with nodes.workerIdle reuses a module's Worker across runs, never a stale one", async () => {
  await withSandbox(async ({ dir }) => {
    await project(dir, "stores:\n  default: { plugin: memory }\nnodes:\n  workerIdle: 1m\n");
    await using rt = await openRuntime({ config: join(dir, "flowstate.yaml"), cwd: dir });
    const pool = sandboxPoolOf(rt)!;
    const outputs = async () => {
      const record = await rt.runFlow("count.flow.yaml");
      assert.equal(record.status, "succeeded", JSON.stringify(record.nodes));
      return [record.nodes.a.output, record.nodes.b.output];
    };
    assert.deepEqual(await outputs(), ["v1:1", "v1:2"]);
    assert.equal(pool.idle, 1, "the Worker is kept after the run");
    assert.deepEqual(await outputs(), ["v1:3", "v1:4"], "the second run uses the same Worker");
    assert.equal(await starts(dir), 1);
    assert.equal(pool.started, 1);

    // An edited module is never served by the Worker of its old version.
    await Deno.writeTextFile(join(dir, "nodes", "counter.js"), counter("v2") + "\n// edited\n");
    assert.deepEqual(await outputs(), ["v2:1", "v2:2"]);
    assert.equal(pool.started, 2);

    // Two runs at once never share a Worker.
    const [x, y] = await Promise.all([
      rt.runFlow("count.flow.yaml"),
      rt.runFlow("count.flow.yaml"),
    ]);
    const pairs = [x, y].map((r) => [r.nodes.a.output, r.nodes.b.output]);
    for (const [a, b] of pairs) {
      assert.equal(Number(String(b).split(":")[1]), Number(String(a).split(":")[1]) + 1);
    }
    assert.equal(pool.started, 3);
    await rt.close();
    assert.equal(pool.idle, 0, "close stops idle Workers (they would keep the process alive)");
  });
});

Deno.test("without nodes.workerIdle a runtime keeps no Worker after a run", async () => {
  await withSandbox(async ({ dir }) => {
    await project(dir, "stores:\n  default: { plugin: memory }\n");
    await using rt = await openRuntime({ config: join(dir, "flowstate.yaml"), cwd: dir });
    const pool = sandboxPoolOf(rt)!;
    for (let i = 0; i < 2; i++) {
      const record = await rt.runFlow("count.flow.yaml");
      assert.deepEqual([record.nodes.a.output, record.nodes.b.output], ["v1:1", "v1:2"]);
      assert.equal(pool.idle, 0);
    }
    assert.equal(pool.started, 2, "one start per run, check included");
  });
});

Deno.test("the daemon reuses a scheduled flow's node Worker from tick to tick", async () => {
  await withSandbox(async ({ dir, home }) => {
    await project(
      dir,
      "stores:\n  default: { plugin: memory }\nflows: [./count.flow.yaml]\n" +
        "jobs:\n  retention: { enabled: false }\n  gc: { enabled: false }\n",
    );
    await Deno.writeTextFile(
      join(dir, "count.flow.yaml"),
      'schedule: "* * * * * *"\n' + FLOW,
    );
    const child = cliCommand(dir, ["daemon", "--json"], { home }).spawn();
    const stdout = streamLines(child.stdout);
    const stderr = new Response(child.stderr).text();
    await stdout.next(/"type":"tick\.end"/);
    // Two more ticks (one a second): wait for them, as long as the daemon lives.
    const ticks = () => stdout.lines.filter((l) => l.includes('"type":"tick.end"')).length;
    let exited = false;
    child.status.then(() => exited = true);
    await waitUntil("two more ticks (or the daemon's exit)", () => ticks() >= 3 || exited, {
      details: () => stdout.lines.join("\n"),
      onHang: () => killQuietly(child),
    });
    child.kill("SIGTERM");
    const status = await exitOf(child);
    await stdout.done;
    assert.equal(status.code, 0, await stderr);
    const ends = stdout.lines.map((l) => JSON.parse(l)).filter((e) => e.type === "tick.end");
    assert.ok(ends.length >= 3);
    for (const end of ends) assert.equal(end.status, "succeeded", JSON.stringify(end));
    assert.equal(await starts(dir), 1, "one Worker start for every tick");
  });
});

/** A node module that returns (and logs) the word its imported lib.js exports, through two imports. */
const GREET = `
import { word } from "./lib/word.js";
const schema = { "~standard": { version: 1, vendor: "test", validate: (value) => ({ value }) } };
export default {
  kind: "flowstate.node",
  optionsSchema: schema,
  run(ctx) { ctx.log("word " + word); return word; },
};
`;
const WORD_INDIRECT = 'export { word } from "./text.js";\n';
const wordFile = (word: string) => `export const word = ${JSON.stringify(word)};\n`;

Deno.test("the daemon starts a new node Worker when a file its module imports changed, not only the module file", async () => {
  await withSandbox(async ({ dir, home }) => {
    await Deno.mkdir(join(dir, "nodes", "lib"), { recursive: true });
    await Deno.writeTextFile(join(dir, "nodes", "greet.js"), GREET);
    await Deno.writeTextFile(join(dir, "nodes", "lib", "word.js"), WORD_INDIRECT);
    await Deno.writeTextFile(join(dir, "nodes", "lib", "text.js"), wordFile("first"));
    await Deno.writeTextFile(
      join(dir, "greet.flow.yaml"),
      'id: greet\nschedule: "* * * * * *"\nnodes:\n  - { id: g, type: ./nodes/greet.js }\n',
    );
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  default: { plugin: memory }\nflows: [./greet.flow.yaml]\n" +
        "jobs:\n  retention: { enabled: false }\n  gc: { enabled: false }\n",
    );
    const child = cliCommand(dir, ["daemon", "--grace", "1s"], { home }).spawn();
    try {
      const stdout = streamLines(child.stdout);
      const stderr = streamLines(child.stderr);
      await within(stderr.next(/^\[flow:greet\] g: word first$/), "a run", 90_000);
      // Two imports down from the module, the module file itself untouched.
      await Deno.writeTextFile(join(dir, "nodes", "lib", "text.js"), wordFile("second"));
      await within(stderr.next(/^\[flow:greet\] g: word second$/), "a run of the edit", 90_000);
      child.kill("SIGTERM");
      assert.equal(
        (await exitOf(child, () => stderr.lines.join("\n"))).code,
        0,
        stderr.lines.join("\n"),
      );
      await Promise.all([stdout.done, stderr.done]);
      assert.deepEqual(stderr.lines.filter((l) => l.startsWith("error")), []);
    } finally {
      try {
        child.kill("SIGKILL");
      } catch {
        // gone
      }
    }
  });
});

Deno.test("enqueueing an unchanged flow with custom nodes checks its modules in a Worker once", async () => {
  await withSandbox(async ({ dir }) => {
    await project(dir, "stores:\n  default: { plugin: memory }\n");
    await using rt = await openRuntime({ config: join(dir, "flowstate.yaml"), cwd: dir });
    const pool = sandboxPoolOf(rt)!;
    const ids = new Set<string>();
    // Five at once (as webhook deliveries come), then five more one after the other.
    const burst = await Promise.all(Array.from({ length: 5 }, () => rt.enqueue("count.flow.yaml")));
    for (const { runId } of burst) ids.add(runId);
    for (let i = 0; i < 5; i++) ids.add((await rt.enqueue("count.flow.yaml")).runId);
    assert.equal(ids.size, 10);
    assert.equal(pool.started, 1, "one check for ten enqueues");
    // An edited module is checked again (and a broken one refused).
    await Deno.writeTextFile(join(dir, "nodes", "counter.js"), "export default 42;\n");
    await assert.rejects(() => rt.enqueue("count.flow.yaml"), /does not export a node type/);
    assert.equal(pool.started, 2);
  });
});

Deno.test("a burst of flows with custom nodes checks at most maxChecks at once; idle Workers are capped", async () => {
  await withSandbox(async ({ dir }) => {
    const cap = Math.max(2, 2 * Math.max(1, navigator.hardwareConcurrency ?? 1));
    const maxIdle = Math.max(8, 2 * Math.max(1, navigator.hardwareConcurrency ?? 1));
    await project(dir, "stores:\n  default: { plugin: memory }\nnodes:\n  workerIdle: 1m\n");
    // Distinct flows: no check is saved by the cache.
    const n = cap + 3;
    for (let i = 0; i < n; i++) {
      // A module of its own each: no Worker is shared either.
      await Deno.copyFile(join(dir, "nodes", "counter.js"), join(dir, "nodes", `c${i}.js`));
      await Deno.writeTextFile(
        join(dir, `f${i}.flow.yaml`),
        FLOW.replace("id: count", `id: f${i}`).replaceAll("counter.js", `c${i}.js`),
      );
    }
    await using rt = await openRuntime({ config: join(dir, "flowstate.yaml"), cwd: dir });
    const pool = sandboxPoolOf(rt)!;
    await Promise.all(Array.from({ length: n }, (_, i) => rt.enqueue(`f${i}.flow.yaml`)));
    assert.equal(pool.started, n);
    assert.ok(pool.peakChecks >= 1 && pool.peakChecks <= cap, `peak ${pool.peakChecks} > ${cap}`);
    // Runs at once, each with its own Worker, all released to the idle list: at most maxIdle kept.
    const runs = await Promise.all(
      Array.from({ length: maxIdle + 2 }, () => rt.runFlow("count.flow.yaml")),
    );
    assert.deepEqual(runs.map((r) => r.status), Array(maxIdle + 2).fill("succeeded"));
    assert.ok(pool.idle <= maxIdle, `idle ${pool.idle} > ${maxIdle}`);
  });
});

Deno.test("SandboxPool.checkTurn(): a waiting check gives up when its signal aborts; turns pass on in order", async () => {
  const pool = new SandboxPool({ maxChecks: 1 });
  const first = await pool.checkTurn();
  const gaveUp = new AbortController();
  const waiting = pool.checkTurn(gaveUp.signal);
  const order: string[] = [];
  const next = pool.checkTurn().then((turn) => {
    order.push("next");
    return turn;
  });
  gaveUp.abort(new Error("client went away"));
  await assert.rejects(waiting, /client went away/);
  first[Symbol.dispose]();
  (await next)[Symbol.dispose]();
  assert.deepEqual(order, ["next"]);
  assert.equal(pool.peakChecks, 1);
  assert.throws(() => new SandboxPool({ maxIdle: 0 }), /maxIdle must be a whole number >= 1/);
  pool.close();
});

Deno.test("a kept Worker is replaced when a file its module imports through the import map changed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-import-map-" });
  try {
    const root = new URL("../", import.meta.url);
    const repo = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
    // The project's import map: Flowstate's own names, and one for the node's library.
    await Deno.writeTextFile(
      join(dir, "deno.json"),
      JSON.stringify({
        imports: { ...repo.imports, "words/": "./nodes/lib/" },
        unstable: [...repo.unstable, "worker-options"],
        lock: false,
      }),
    );
    await Deno.mkdir(join(dir, "nodes", "lib"), { recursive: true });
    await Deno.writeTextFile(
      join(dir, "nodes", "greet.js"),
      GREET.replace('"./lib/word.js"', '"words/word.js"'),
    );
    await Deno.writeTextFile(join(dir, "nodes", "lib", "word.js"), wordFile("first"));
    await Deno.writeTextFile(
      join(dir, "greet.flow.yaml"),
      "id: greet\nnodes:\n  - { id: g, type: ./nodes/greet.js }\n",
    );
    await Deno.writeTextFile(
      join(dir, "main.ts"),
      `import { openRuntime } from ${JSON.stringify(new URL("mod.ts", root).href)};
await using rt = await openRuntime({
  config: { stores: { main: { plugin: "memory" } }, nodes: { workerIdle: "1m" } },
});
const first = await rt.runFlow("greet.flow.yaml");
await Deno.writeTextFile("nodes/lib/word.js", ${JSON.stringify(wordFile("second"))});
const second = await rt.runFlow("greet.flow.yaml");
console.log(JSON.stringify([first.nodes.g.output, second.nodes.g.output]));
`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--config", join(dir, "deno.json"), "-A", "main.ts"],
      cwd: dir,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), ["first", "second"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
