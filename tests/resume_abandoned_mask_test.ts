/**
 * A node's output is kept beside its `node.end` event, masked with the
 * secrets known when the node ended. A value made a secret later in the run
 * (a later node's `mask:`, `ctx.mask`) may be in an output kept before: the
 * run's end records that output masked, and so must everything else that
 * holds it — the run recorded abandoned after a kill -9, the chunks a long
 * run keeps after its end, an end recorded by `interruptAll`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { waitUntil } from "./_deadline.ts";
import { firedTimers } from "./_fired_timers.ts";
import { openRuntime } from "../mod.ts";
import { HEARTBEAT_MS, openStore, Records, RunRecorder } from "../records.ts";
import { SecretMasker } from "../src/flow/secrets.ts";

/** The token a node obtains: `upper(…)` of a text the flow holds (its source is recorded too). */
const TOKEN = "TOK-OBTAINED-4F9A2C71";
const OBTAIN = `{ token: "\${{ upper('${TOKEN.toLowerCase()}') }}" }`;

/** Every stored value of `store`, as JSON text. */
async function storedText(store: { list(s: { prefix: [] }): AsyncIterable<{ value: unknown }> }) {
  const texts: string[] = [];
  for await (const e of store.list({ prefix: [] })) texts.push(JSON.stringify(e.value));
  return texts.join("\n");
}

/** A custom node module's text: `defineNode` of any options with `run` (its source). */
function nodeModule(run: string): string {
  return `import { defineNode } from ${JSON.stringify(new URL("../mod.ts", import.meta.url).href)};
export default defineNode({
  optionsSchema: { "~standard": { version: 1, vendor: "t", validate: (v) => ({ value: v }) } },
  ${run}
});
`;
}

/**
 * Start `flow` (a file of `dir`) on a memory store, and wait until one of its
 * recorded events is `until`'s: then its process "dies" (what is stored is
 * what a kill -9 leaves). `abandon()` records it abandoned, then stops it.
 */
async function runUntilDeath(
  dir: string,
  flow: string,
  until: { type: "node.start" | "node.attempt"; node: string },
) {
  const rt = await openRuntime({ cwd: dir, config: { stores: { main: { plugin: "memory" } } } });
  const records = await rt.records();
  const stop = new AbortController();
  let runId: string | undefined;
  const running = rt.runFlow(join(dir, flow), {
    signal: stop.signal,
    onStart: (id) => runId = id,
  }).catch((err) => err);
  await waitUntil(`${until.type} of ${until.node} recorded`, async () => {
    if (runId === undefined) return false;
    const events = await records.getEvents(runId);
    return events.some((e) => e.type === until.type && "node" in e && e.node === until.node);
  });
  return {
    rt,
    records,
    runId: runId!,
    async abandon() {
      // Its process is this one, alive: its record loses its owner (as an older version's has
      // none), so that its heartbeat alone decides.
      const store = await rt.store("main");
      const key = ["flowstate", "runs", runId!];
      const { owner: _owner, ...stored } = (await store.get<Record<string, unknown>>(key))!.value;
      await store.set(key, stored);
      const marked = await records.abandonRun(runId!, { afterMs: 1, now: Date.now() + 120_000 });
      stop.abort();
      await running;
      return marked;
    },
    [Symbol.asyncDispose]: () => rt[Symbol.asyncDispose](),
  };
}

Deno.test("a value a later node masks, kept before in an earlier node's output, is masked in the run recorded abandoned and in the stored chunks; its resume runs that node again", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      join(dir, "m.flow.yaml"),
      `id: m
nodes:
  - { id: login, type: transform, with: { value: ${OBTAIN} } }
  - id: keep
    type: transform
    needs: [login]
    with: { value: "\${{ nodes.login.output.token }}" }
    mask: true
  - { id: wait, type: delay, needs: [keep], with: { for: 10m } }
`,
    );
    await using run = await runUntilDeath(dir, "m.flow.yaml", { type: "node.start", node: "wait" });
    const { rt, records, runId } = run;
    assert.equal((await storedText(await rt.store())).includes(TOKEN), false);
    const marked = await run.abandon();
    assert.deepEqual(marked?.nodes.login, {
      status: "succeeded",
      attempts: 1,
      output: { token: "***" },
      masked: true,
    });
    assert.equal(JSON.stringify(await records.getRun(runId)).includes(TOKEN), false);
    const preview = await rt.previewResume(runId, { flow: join(dir, "m.flow.yaml") });
    const login = preview.nodes.find((n) => n.node === "login");
    assert.equal(login?.reused, false);
    assert.match(login?.message ?? "", /held a secret and was recorded masked/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a value a node masks (ctx.mask) and then waits, with no event since, is masked in the outputs kept before: a kill -9 while it waits leaves it in no stored value", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      join(dir, "masker.ts"),
      nodeModule(`async run(ctx, options) {
    ctx.mask(options.token);
    // Waits for good, logging nothing: no event of the run comes after the mask.
    await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
    return null;
  },`),
    );
    await Deno.writeTextFile(
      join(dir, "w.flow.yaml"),
      `id: w
nodes:
  - { id: login, type: transform, with: { value: ${OBTAIN} } }
  - id: hold
    type: ./masker.ts
    needs: [login]
    with: { token: "\${{ nodes.login.output.token }}" }
`,
    );
    await using run = await runUntilDeath(dir, "w.flow.yaml", {
      type: "node.attempt",
      node: "hold",
    });
    const store = await run.rt.store();
    // Within a heartbeat, with no event: the output kept beside login's end is masked.
    await waitUntil(
      "login's kept output masked where it is stored",
      async () => !(await storedText(store)).includes(TOKEN),
    );
    const marked = await run.abandon();
    assert.deepEqual(marked?.nodes.login, {
      status: "succeeded",
      attempts: 1,
      output: { token: "***" },
      masked: true,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a long run's chunks, kept after its end, hold no output in the clear that its end masked", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // Over 1,000 events: the run's end keeps its chunks rather than inline its events.
    await Deno.writeTextFile(
      join(dir, "chatty.ts"),
      nodeModule(`run(ctx) {
    for (let i = 0; i < 1100; i++) ctx.log("line " + i);
    return 1100;
  },`),
    );
    await Deno.writeTextFile(
      join(dir, "long.flow.yaml"),
      `id: long
nodes:
  - { id: login, type: transform, with: { value: ${OBTAIN} } }
  - { id: many, type: ./chatty.ts, needs: [login] }
  - id: keep
    type: transform
    needs: [many]
    with: { value: "\${{ nodes.login.output.token }}" }
    mask: true
`,
    );
    await using rt = await openRuntime({
      cwd: dir,
      config: { stores: { main: { plugin: "memory" } } },
    });
    const run = await rt.runFlow(join(dir, "long.flow.yaml"));
    assert.equal(run.status, "succeeded");
    assert.deepEqual(run.nodes.login.output, { token: "***" });
    const records = await rt.records();
    assert.ok((await records.getEvents(run.id)).length > 1000, "the run keeps its chunks");
    assert.equal((await storedText(await rt.store())).includes(TOKEN), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("recorder: outputs given before a secret was added to the run's masker are masked in an end recorded by interruptAll and where they are stored, with no event since", async () => {
  await using store = await openStore({ plugin: "memory" });
  const records = new Records(store);
  const clock = { now: () => Date.now() };
  const recorder = await RunRecorder.start(records, clock, {
    flowId: "f",
    flowVersion: "job",
    inputs: {},
  });
  const end = (node: string) => ({
    at: clock.now(),
    type: "node.end" as const,
    node,
    status: "succeeded" as const,
    attempt: 1,
    durationMs: 0,
  });
  // The run's masker, given as the run starts: no secret yet.
  const masker = new SecretMasker();
  recorder.secretsAdded(masker);
  recorder.event({ at: clock.now(), type: "node.start", node: "login" });
  recorder.event(end("login"), { token: TOKEN });
  recorder.event({ at: clock.now(), type: "node.start", node: "other" });
  recorder.event(end("other"), "plain");
  // Appended with its output in the clear (a later batch's secret was not known yet).
  await waitUntil(
    "login's end appended",
    async () => (await records.getEvents(recorder.id)).some((e) => e.type === "node.end"),
  );
  // A node masks the token (`ctx.mask`), then the process is told to exit at once before any
  // other event.
  masker.add([TOKEN]);
  const { ended } = await RunRecorder.interruptAll("cancelled: exiting at once");
  assert.deepEqual(ended, [recorder.id]);
  const stored = await records.getRun(recorder.id);
  assert.deepEqual(stored?.nodes, {
    login: { status: "succeeded", attempts: 1, output: { token: "***" }, masked: true },
    other: { status: "succeeded", attempts: 1, output: "plain" },
  });
  assert.equal((await storedText(store)).includes(TOKEN), false);
});

Deno.test("recorder: a secret added to the run's masker while no event comes is masked in the outputs already stored within a heartbeat", async () => {
  await using store = await openStore({ plugin: "memory" });
  const records = new Records(store);
  const clock = { now: () => Date.now() };
  // The heartbeats fire when the test says; the appends of events are on their own timers.
  const { timers, nth } = firedTimers(HEARTBEAT_MS);
  const recorder = await RunRecorder.start(records, clock, {
    flowId: "f",
    flowVersion: "job",
    inputs: {},
  }, { timers });
  const masker = new SecretMasker();
  recorder.secretsAdded(masker);
  recorder.event({ at: clock.now(), type: "node.start", node: "login" });
  recorder.event({
    at: clock.now(),
    type: "node.end",
    node: "login",
    status: "succeeded",
    attempt: 1,
    durationMs: 0,
  }, { token: TOKEN });
  await waitUntil(
    "login's end appended",
    async () => (await records.getEvents(recorder.id)).some((e) => e.type === "node.end"),
  );
  assert.equal((await storedText(store)).includes(TOKEN), true);
  masker.add([TOKEN]); // a node's ctx.mask; then nothing for long
  (await nth(0))();
  await waitUntil(
    "login's kept output masked where it is stored",
    async () => !(await storedText(store)).includes(TOKEN),
  );
  await recorder.close(); // its process "dies"
  const marked = await records.abandonRun(recorder.id, { afterMs: 1, now: Date.now() + 60_000 });
  assert.deepEqual(marked?.nodes.login, {
    status: "succeeded",
    attempts: 1,
    output: { token: "***" },
    masked: true,
  });
});
