/**
 * A flow's check of its custom node modules (each loaded in a Worker, its
 * options checked) holds one of the runtime's check turns: a module that
 * never finishes loading must not keep its turn (nodes.checkTimeout, and a
 * cancelled run's check stops), and a kept check must see an edit of a file
 * the module imports.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime } from "../mod.ts";

/** A node module (JavaScript: nothing to type-check) needing no imports; `top` runs at its top level. */
const nodeModule = (top = "") =>
  `${top}
const schema = { "~standard": { version: 1, vendor: "test", validate: (value) => ({ value }) } };
export default { kind: "flowstate.node", optionsSchema: schema, run: () => ({ ok: true }) };
`;

/** A module whose import never settles (a connection awaited at import that never answers). */
const HUNG = nodeModule("await new Promise(() => {});");

/** The checks the runtime runs at once by default (`SandboxPool`'s maxChecks): all of them hung. */
const TURNS = Math.max(2, Math.max(1, navigator.hardwareConcurrency ?? 1) * 2);

/** `promise`, or a failure saying it still waited after `ms` (a hang is a failed test, not a stuck one). */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: still waiting after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A project with `TURNS` flows of a hung module (`flows/hung<i>.flow.yaml`) and one good flow. */
async function project(nodes: string, hungFlowExtra = ""): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-checks-" });
  await Deno.mkdir(join(dir, "nodes"));
  await Deno.mkdir(join(dir, "flows"));
  await Deno.mkdir(join(dir, "marks"));
  await Deno.writeTextFile(join(dir, "nodes", "hung.js"), HUNG);
  await Deno.writeTextFile(join(dir, "nodes", "good.js"), nodeModule());
  for (let i = 0; i < TURNS; i++) {
    await Deno.writeTextFile(
      join(dir, "flows", `hung${i}.flow.yaml`),
      `id: hung${i}\nnodes:\n  - id: a\n    type: ../nodes/hung.js\n${hungFlowExtra}`,
    );
  }
  await Deno.writeTextFile(
    join(dir, "flows", "good.flow.yaml"),
    "id: good\nnodes:\n  - { id: a, type: ../nodes/good.js }\n",
  );
  await Deno.writeTextFile(
    join(dir, "flowstate.yaml"),
    `stores:\n  main: { plugin: memory }\nnodes:\n${nodes}`,
  );
  return dir;
}

/**
 * Check the good flow once without a short limit, so that what a first
 * Worker compiles (Flowstate's Worker entry) is in Deno's cache before a
 * check under a limit of seconds.
 */
async function warmUp(dir: string): Promise<void> {
  await Deno.writeTextFile(
    join(dir, "warm.yaml"),
    "stores:\n  main: { plugin: memory }\nnodes:\n  checkTimeout: 1h\n",
  );
  await using rt = await openRuntime({ config: join(dir, "warm.yaml"), home: join(dir, "warm") });
  await rt.enqueue(join(dir, "flows", "good.flow.yaml"));
}

Deno.test("nodes.checkTimeout: a module that never loads fails its flow's check and gives its turn back", async () => {
  const dir = await project("  checkTimeout: 10s\n");
  try {
    await warmUp(dir);
    await using rt = await openRuntime({
      config: join(dir, "flowstate.yaml"),
      home: join(dir, "home"),
    });
    // Every check turn taken by a hung module (as many webhooks of such flows would).
    const hung = Array.from(
      { length: TURNS },
      (_, i) =>
        rt.enqueue(join(dir, "flows", `hung${i}.flow.yaml`)).then(() => "accepted", (e) => e),
    );
    const outcomes = await within(Promise.all(hung), 120_000, "the hung flows' enqueues");
    for (const outcome of outcomes) {
      assert.ok(outcome instanceof Error, `a hung module's flow was ${outcome}`);
      assert.match(
        outcome.message,
        /cannot load node module \.\.\/nodes\/hung\.js: it did not load and check its options within 10s \(nodes\.checkTimeout/,
      );
    }
    // The turns are free: another flow is checked and enqueued.
    const run = await within(
      rt.enqueue(join(dir, "flows", "good.flow.yaml")),
      120_000,
      "the good flow's enqueue after the hung checks",
    );
    assert.equal(typeof run.runId, "string");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a run cancelled while its check holds a turn stops that check and frees the turn", async () => {
  // No time limit to speak of: only the cancel can free the turns.
  const dir = await project(
    "  checkTimeout: 1h\n",
    "    permissions: { write: [../marks] }\n",
  );
  // Each Worker marks that its module started loading (its check holds a turn), then hangs.
  await Deno.writeTextFile(
    join(dir, "nodes", "hung.js"),
    nodeModule(
      `Deno.writeTextFileSync(new URL("../marks/" + crypto.randomUUID(), import.meta.url), "");\nawait new Promise(() => {});`,
    ),
  );
  try {
    await using rt = await openRuntime({
      config: join(dir, "flowstate.yaml"),
      home: join(dir, "home"),
    });
    const cancel = new AbortController();
    const runs = Array.from(
      { length: TURNS },
      (_, i) =>
        rt.runFlow(join(dir, "flows", `hung${i}.flow.yaml`), { signal: cancel.signal }).then(
          (record) => record.status,
          (e) => e,
        ),
    );
    // Wait (bounded) until every turn is held by a check whose module is loading.
    await within(
      (async () => {
        for (;;) {
          let marks = 0;
          for await (const _ of Deno.readDir(join(dir, "marks"))) marks++;
          if (marks >= TURNS) return;
          await new Promise((r) => setTimeout(r, 50));
        }
      })(),
      120_000,
      "the hung checks to start",
    );
    cancel.abort(new Error("cancelled by the test"));
    const outcomes = await within(Promise.all(runs), 60_000, "the cancelled runs");
    for (const outcome of outcomes) assert.notEqual(outcome, "succeeded");
    const run = await within(
      rt.enqueue(join(dir, "flows", "good.flow.yaml")),
      60_000,
      "the good flow's enqueue after the cancelled checks",
    );
    assert.equal(typeof run.runId, "string");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("nodes.checkTimeout must be a duration longer than 0", async () => {
  for (
    const [value, expected] of [["0", /longer than 0/], ["soon", /nodes\.checkTimeout/]] as const
  ) {
    const dir = await Deno.makeTempDir({ prefix: "flowstate-checks-" });
    try {
      await Deno.writeTextFile(
        join(dir, "flowstate.yaml"),
        `stores:\n  main: { plugin: memory }\nnodes:\n  checkTimeout: ${value}\n`,
      );
      await assert.rejects(
        openRuntime({ config: join(dir, "flowstate.yaml"), home: join(dir, "home") }),
        (err: Error) => {
          assert.match(err.message, /checkTimeout/);
          assert.match(err.message, expected);
          return true;
        },
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("enqueue's kept check of a flow sees an edit of a file its node module imports", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-checks-" });
  try {
    await Deno.mkdir(join(dir, "nodes"));
    await Deno.writeTextFile(join(dir, "nodes", "helper.js"), `export const greeting = "hi";\n`);
    await Deno.writeTextFile(
      join(dir, "nodes", "a.js"),
      nodeModule(
        `import { greeting } from "./helper.js";\nif (greeting !== "hi") throw new Error("no");`,
      ),
    );
    await Deno.writeTextFile(
      join(dir, "f.flow.yaml"),
      "id: f\nnodes:\n  - { id: a, type: ./nodes/a.js }\n",
    );
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), "stores:\n  main: { plugin: memory }\n");
    await using rt = await openRuntime({
      config: join(dir, "flowstate.yaml"),
      home: join(dir, "home"),
    });
    await rt.enqueue(join(dir, "f.flow.yaml"));
    // The imported file now throws at import: the node module cannot load.
    await Deno.writeTextFile(
      join(dir, "nodes", "helper.js"),
      `throw new Error("helper broken");\nexport const greeting = "hi";\n`,
    );
    await assert.rejects(
      rt.enqueue(join(dir, "f.flow.yaml")),
      /cannot load node module \.\/nodes\/a\.js: .*helper broken/,
    );
    // Mended: accepted again.
    await Deno.writeTextFile(join(dir, "nodes", "helper.js"), `export const greeting = "hi";\n`);
    const run = await rt.enqueue(join(dir, "f.flow.yaml"));
    assert.equal(typeof run.runId, "string");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
