/**
 * What a sandboxed custom node prints with `console.*` is its log lines,
 * through the CLI: recorded with the run (`runs show --json`) at a matching
 * level, formatted as Deno's console formats it, secrets masked, limited as
 * `ctx.log` lines are, and `flowstate run --log-format json` keeps one JSON
 * object a line on stderr (nothing of the node's on stdout). Output printed
 * outside an attempt (the module's top level, a timer an ended attempt left)
 * is attributed with a note, never lost silently.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type Sandbox, withSandbox } from "./_cli_sandbox.ts";

/** With a `"` and a `\`, so that its JSON-escaped form differs from it. */
const SECRET = 'Sup3r"Console\\Secret-42';

/** A node module that prints with console.* what `with.attempt` asks for. */
const TALKER = `
const schema = { "~standard": { version: 1, vendor: "test", validate: (value) => ({ value }) } };
console.log("loaded at %s", "top level");
let lateDone;
const late = new Promise((resolve) => lateDone = resolve);
let arrived = 0;
let bothArrived;
const both = new Promise((resolve) => bothArrived = resolve);
export default {
  kind: "flowstate.node",
  optionsSchema: schema,
  async run(ctx, input) {
    switch (input.attempt) {
      case "talk":
        console.log("an object:", { a: [1, "two"], nested: { deep: true } });
        console.log("%s has %d items", "list", 3);
        console.error("the token is " + input.token);
        console.warn("careful");
        console.debug("details");
        console.info("info line");
        console.assert(1 === 2, "math broke");
        ctx.log("from ctx.log");
        return "talked";
      case "flood":
        for (let i = 0; i < 12000; i++) console.log("line " + i);
        console.error("x".repeat(100000));
        return "flooded";
      case "leave":
        setTimeout(() => { console.warn("left behind, token " + input.token); lateDone(); }, 0);
        return "left";
      case "wait":
        await late;
        return "waited";
      case "pair":
        if (++arrived === 2) bothArrived();
        await both;
        console.log("I am " + ctx.nodeId);
        await new Promise((resolve) => setTimeout(resolve, 1));
        console.warn("still " + ctx.nodeId);
        return ctx.nodeId;
    }
    throw new Error("unknown attempt " + input.attempt);
  },
};
`;

/** A node module printing 250 lines at its top level. */
const LOUD_TOP = `
for (let i = 0; i < 250; i++) console.log("top " + i);
export default {
  kind: "flowstate.node",
  optionsSchema: { "~standard": { version: 1, vendor: "test", validate: (value) => ({ value }) } },
  run: () => "quiet now",
};
`;

/** A run's event as `runs show --json` has it. */
interface RunEvent {
  type: string;
  node?: string;
  message?: string;
  level?: string;
}

/** A JSON log line on stderr. */
type Line = Record<string, unknown> & { level: string; msg: string };

async function project(sandbox: Sandbox, flow: string): Promise<void> {
  await Deno.mkdir(join(sandbox.dir, "nodes"), { recursive: true });
  await Deno.writeTextFile(join(sandbox.dir, "nodes", "talker.ts"), TALKER);
  await Deno.writeTextFile(join(sandbox.dir, "nodes", "loud.ts"), LOUD_TOP);
  await Deno.writeTextFile(join(sandbox.dir, "t.flow.yaml"), flow);
}

/** `flowstate run t.flow.yaml --json`, then the run's events by `runs show --json`. */
async function runEvents(sandbox: Sandbox, env: Record<string, string> = {}) {
  const result = await sandbox.runWith(env, "run", "t.flow.yaml", "--json");
  const record = JSON.parse(result.stdout) as { id: string; status: string };
  const shown = await sandbox.run("runs", "show", record.id, "--json");
  assert.equal(shown.code, 0, shown.stderr);
  const events = (JSON.parse(shown.stdout) as { events: RunEvent[] }).events;
  return { result, record, shown, events };
}

/** The `[level, message]` of node `node`'s log lines. */
function logsOf(events: RunEvent[], node: string): [string, string][] {
  return events.filter((e) => e.type === "node.log" && e.node === node).map((e) => [
    e.level!,
    e.message!,
  ]);
}

const TALK_FLOW = `id: t
secrets: [API_TOKEN]
nodes:
  - id: talk
    type: ./nodes/talker.ts
    with: { attempt: talk, token: "\${{ secrets.API_TOKEN }}" }
`;

const TALK_LINES: [string, string][] = [
  ["info", "(printed by the node's module outside an attempt) loaded at top level"],
  ["info", 'an object: { a: [ 1, "two" ], nested: { deep: true } }'],
  ["info", "list has 3 items"],
  ["error", "the token is ***"],
  ["warn", "careful"],
  ["debug", "details"],
  ["info", "info line"],
  ["error", "Assertion failed: math broke"],
  ["info", "from ctx.log"],
];

Deno.test("a custom node's console output is its log lines: levels, Deno's format, the secret masked, the top level noted", async () => {
  await withSandbox(async (sandbox) => {
    await project(sandbox, TALK_FLOW);
    const { result, record, shown, events } = await runEvents(sandbox, { API_TOKEN: SECRET });
    assert.equal(record.status, "succeeded", result.stderr);
    assert.deepEqual(logsOf(events, "talk"), TALK_LINES);
    for (const [what, text] of [["run", result], ["runs show", shown]] as const) {
      assert.ok(!text.stdout.includes("Sup3r"), `${what} stdout: ${text.stdout}`);
      assert.ok(!text.stderr.includes("Sup3r"), `${what} stderr: ${text.stderr}`);
    }
    // Text mode prints them as ctx.log lines are printed, the node's name first; stdout keeps
    // the summary only.
    const text = await sandbox.runWith({ API_TOKEN: SECRET }, "run", "t.flow.yaml");
    assert.equal(text.code, 0, text.stderr);
    assert.match(
      text.stderr,
      /^\[talk\] an object: \{ a: \[ 1, "two" \], nested: \{ deep: true \} \}$/m,
    );
    assert.match(text.stderr, /^\[talk\] error: the token is \*\*\*$/m);
    assert.match(text.stderr, /^\[talk\] warn: careful$/m);
    assert.ok(!text.stdout.includes("an object") && !text.stdout.includes("Sup3r"), text.stdout);
    assert.ok(!text.stderr.includes("Sup3r"), text.stderr);
  });
});

Deno.test("cli --log-format json: a custom node's console output is node.log JSON lines on stderr, nothing raw", async () => {
  await withSandbox(async (sandbox) => {
    await project(sandbox, TALK_FLOW);
    const result = await sandbox.runWith(
      { API_TOKEN: SECRET },
      "run",
      "t.flow.yaml",
      "--log-format",
      "json",
      "--debug",
    );
    assert.equal(result.code, 0, result.stderr);
    for (const stream of [result.stdout, result.stderr]) {
      assert.ok(!stream.includes("Sup3r"), stream);
      assert.ok(!stream.includes(JSON.stringify(SECRET).slice(1, -1)), stream);
    }
    // stdout: the summary only, nothing the node printed.
    assert.match(result.stdout, /^run: {6}\w{20}\n/);
    assert.ok(!result.stdout.includes("careful"), result.stdout);
    const lines = result.stderr.split("\n").filter((l) => l !== "").map((text): Line => {
      try {
        return JSON.parse(text);
      } catch {
        throw new assert.AssertionError({ message: `not a JSON line on stderr: ${text}` });
      }
    });
    const logs = lines.filter((l) => l.event === "node.log" && l.node === "talk");
    assert.deepEqual(logs.map((l) => [l.level, l.msg]), TALK_LINES);
  });
});

Deno.test("console floods keep ctx.log's limits: lines, a line's bytes, what waits outside an attempt", async () => {
  await withSandbox(async (sandbox) => {
    await project(
      sandbox,
      `id: t
nodes:
  - { id: flood, type: ./nodes/talker.ts, with: { attempt: flood } }
  - { id: loud, type: ./nodes/loud.ts }
`,
    );
    const { result, record, events } = await runEvents(sandbox);
    assert.equal(record.status, "succeeded", result.stderr);
    assert.ok(!result.stdout.includes("line 1") && !result.stderr.includes("line 1"));
    const flood = logsOf(events, "flood");
    // The top-level line, then 9,999 of the attempt's 12,001 (an attempt keeps 10,000), then
    // the executor's note.
    assert.equal(flood.length, 10_001);
    assert.equal(flood[1][1], "line 0");
    assert.equal(flood[9_999][1], "line 9998");
    assert.deepEqual(flood[10_000], [
      "warn",
      "2,002 log lines of attempt 1 dropped: an attempt logs at most 10,000 lines and 4 MiB",
    ]);
    // 250 lines at the top level: 100 wait for the attempt, the rest are counted.
    const loud = logsOf(events, "loud");
    assert.equal(loud.length, 101);
    assert.deepEqual(loud[0], [
      "info",
      "(printed by the node's module outside an attempt) top 0",
    ]);
    assert.equal(loud[99][1], "(printed by the node's module outside an attempt) top 99");
    assert.deepEqual(loud[100], [
      "warn",
      "150 console lines printed outside an attempt dropped: at most 100 wait for the next attempt",
    ]);
  });
});

Deno.test("a huge console line is cut in the Worker, as a ctx.log line is", async () => {
  await withSandbox(async (sandbox) => {
    await project(sandbox, "id: t\nnodes:\n  - { id: huge, type: ./nodes/huge.ts }\n");
    await Deno.writeTextFile(
      join(sandbox.dir, "nodes", "huge.ts"),
      `export default {
  kind: "flowstate.node",
  optionsSchema: { "~standard": { version: 1, vendor: "test", validate: (value) => ({ value }) } },
  run: () => { console.error("x".repeat(100000)); },
};
`,
    );
    const { record, events } = await runEvents(sandbox);
    assert.equal(record.status, "succeeded");
    const [[level, message]] = logsOf(events, "huge");
    assert.equal(level, "error");
    assert.match(message, /^x+ … \(cut: 100,000 bytes, over the 16 KiB a log line may hold\)$/);
    assert.ok(new TextEncoder().encode(message).length <= 16 * 1024);
  });
});

Deno.test("console output of attempts running at once is each attempt's; a timer an ended attempt left is noted", async () => {
  await withSandbox(async (sandbox) => {
    await project(
      sandbox,
      `id: t
secrets: [API_TOKEN]
nodes:
  - { id: x, type: ./nodes/talker.ts, with: { attempt: pair } }
  - { id: y, type: ./nodes/talker.ts, with: { attempt: pair } }
  - id: a
    type: ./nodes/talker.ts
    with: { attempt: leave, token: "\${{ secrets.API_TOKEN }}" }
  - { id: b, type: ./nodes/talker.ts, needs: [a], with: { attempt: wait } }
`,
    );
    const { result, record, events } = await runEvents(sandbox, { API_TOKEN: SECRET });
    assert.equal(record.status, "succeeded", result.stderr);
    assert.ok(!result.stderr.includes("Sup3r") && !result.stdout.includes("Sup3r"));
    const own = (node: string) =>
      logsOf(events, node).filter(([, m]) => !m.startsWith("(printed by the node's module"));
    assert.deepEqual(own("x"), [["info", "I am x"], ["warn", "still x"]]);
    assert.deepEqual(own("y"), [["info", "I am y"], ["warn", "still y"]]);
    assert.deepEqual(own("a"), []);
    assert.deepEqual(own("b"), [[
      "warn",
      "(printed after node a's attempt 1 ended) left behind, token ***",
    ]]);
  });
});

/** `nodes/<name>` holding `module`, and t.flow.yaml (secret API_TOKEN) with the node list `nodes`. */
async function moduleProject(
  sandbox: Sandbox,
  name: string,
  module: string,
  nodes: string,
): Promise<void> {
  await Deno.mkdir(join(sandbox.dir, "nodes"), { recursive: true });
  await Deno.writeTextFile(join(sandbox.dir, "nodes", name), module);
  await Deno.writeTextFile(
    join(sandbox.dir, "t.flow.yaml"),
    `id: t\nsecrets: [API_TOKEN]\nnodes:\n${nodes}`,
  );
}

/** A node module whose attempt leaves an error uncaught, then waits for what never comes. */
const THROWER = `
const schema = { "~standard": { version: 1, vendor: "test", validate: (value) => ({ value }) } };
export default {
  kind: "flowstate.node",
  optionsSchema: schema,
  async run(ctx, input) {
    if (input.how === "rejected") Promise.reject(new Error("rejected with " + input.token));
    else setTimeout(() => { throw new Error("thrown with " + input.token); }, 0);
    await new Promise(() => {});
  },
};
`;

Deno.test("cli: a node's uncaught error fails its attempt and is not printed raw on stderr (its secret unmasked, not JSON)", async () => {
  await withSandbox(async (sandbox) => {
    await moduleProject(
      sandbox,
      "thrower.ts",
      THROWER,
      `  - id: rejected
    type: ./nodes/thrower.ts
    continueOnError: true
    with: { how: rejected, token: "\${{ secrets.API_TOKEN }}" }
  - id: thrown
    type: ./nodes/thrower.ts
    needs: [rejected]
    with: { how: thrown, token: "\${{ secrets.API_TOKEN }}" }
`,
    );
    for (const format of ["text", "json"]) {
      const result = await sandbox.runWith(
        { API_TOKEN: SECRET },
        "run",
        "t.flow.yaml",
        "--log-format",
        format,
      );
      assert.equal(result.code, 1, result.stderr);
      assert.ok(!result.stderr.includes("Sup3r"), result.stderr);
      assert.doesNotMatch(result.stderr, /Uncaught \(in worker/);
      if (format === "json") {
        for (const line of result.stderr.split("\n").filter((l) => l !== "")) {
          assert.doesNotThrow(() => JSON.parse(line), `not a JSON line on stderr: ${line}`);
        }
      }
      const id = /^run: +(\w+)$/m.exec(result.stdout)?.[1];
      const shown = await sandbox.run("runs", "show", id!, "--json");
      const { nodes } = JSON.parse(shown.stdout).run;
      assert.equal(nodes.rejected.error, "Uncaught (in promise) Error: rejected with ***");
      assert.equal(nodes.thrown.error, "Uncaught Error: thrown with ***");
    }
  });
});

/** A node module (like an npm dependency would) writing to stdout and stderr directly. */
const WRITER = `
import process from "node:process";
import { Console } from "node:console";
const schema = { "~standard": { version: 1, vendor: "test", validate: (value) => ({ value }) } };
export default {
  kind: "flowstate.node",
  optionsSchema: schema,
  async run(ctx, input) {
    process.stdout.write("process.stdout " + input.token + "\\n");
    process.stderr.write("process.stderr\\n");
    new Console(process.stdout).log("a Console of its own");
    await Deno.stdout.write(new TextEncoder().encode("Deno.stdout\\n"));
    Deno.stderr.writeSync(new TextEncoder().encode("Deno.stderr"));
    ctx.log("from ctx.log");
    return "wrote";
  },
};
`;

Deno.test("cli: what a node writes to stdout or stderr itself (process.stdout, Deno.stderr) is its log lines, not the runner's output", async () => {
  await withSandbox(async (sandbox) => {
    await moduleProject(
      sandbox,
      "writer.ts",
      WRITER,
      `  - id: w
    type: ./nodes/writer.ts
    with: { token: "\${{ secrets.API_TOKEN }}" }
`,
    );
    const { result, events } = await runEvents(sandbox, { API_TOKEN: SECRET });
    assert.equal(result.code, 0, result.stderr);
    assert.ok(!result.stderr.includes("Sup3r") && !result.stdout.includes("Sup3r"));
    assert.doesNotMatch(result.stderr, /^process\.stderr|^Deno\.stderr/m);
    assert.deepEqual(logsOf(events, "w"), [
      ["info", "process.stdout ***"],
      ["error", "process.stderr"],
      ["info", "a Console of its own"],
      ["info", "Deno.stdout"],
      ["error", "Deno.stderr"],
      ["info", "from ctx.log"],
    ]);
  });
});
