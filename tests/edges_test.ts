/**
 * Edge cases through the public surface (the CLI and mod.ts): a plugin's own
 * open() error names the store and where it is declared; an alias bomb in a
 * flow or the config is refused at once, at its place; a key checked twice
 * is one conflict; write-behind purgeExpired() counts what it removed;
 * getAt() refuses both seq and time; ctx.log() refuses an unknown level and
 * ctx.sleep() refuses NaN and negative waits, in-process and sandboxed.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { withSandbox } from "./_cli_sandbox.ts";
import { openRuntime, openStore } from "../mod.ts";
import { cached } from "../cache.ts";
import { fakeClock } from "../testing.ts";

const FAILING_OPEN = new URL("./fixtures/failing_open_store.ts", import.meta.url).pathname;

/** `count` aliases of one anchor `&m`, one per line, as items of a list. */
function aliases(count: number): string {
  return Array.from({ length: count }, () => "        - *m\n").join("");
}

Deno.test("CLI: a plugin whose open() throws a plain Error is named with the store and its line in flowstate.yaml", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      `stores:\n  main:\n    plugin: ${FAILING_OPEN}\n`,
    );
    const result = await run("state", "get", "k");
    assert.equal(result.code, 1, result.stderr);
    assert.equal(
      result.stderr.split("\n")[0],
      'error: flowstate.yaml:2:3: stores.main: Cannot open store "main" (plugin "flaky"): the disk is on fire',
    );
  });
});

Deno.test("CLI: a flow of more than 1000 aliases is refused at alias 1001, before it is read", async () => {
  await withSandbox(async ({ dir, run, home }) => {
    const flow = "id: bomb\nnodes:\n  - id: a\n    type: log\n    with:\n      message: &m hi\n" +
      "      extra:\n" + aliases(16_000);
    await Deno.writeTextFile(join(dir, "bomb.flow.yaml"), flow);
    for (const command of ["validate", "run"]) {
      const result = await run(command, "bomb.flow.yaml");
      assert.equal(result.code, 2, result.stderr);
      assert.equal(
        result.stderr.trim(),
        'error: bomb.flow.yaml:1008:11: more than 1000 aliases (this is alias 1001): this looks like an alias bomb ("billion laughs"); write the repeated data out, or use fewer aliases',
      );
    }
    await assert.rejects(Deno.stat(home), Deno.errors.NotFound, "nothing was written");
  });
});

Deno.test("CLI: a flowstate.yaml of more than 1000 aliases is refused at alias 1001", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  main: &m { plugin: memory }\nx-extra:\n" + aliases(2_000),
    );
    const result = await run("state", "get", "k");
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      result.stderr,
      /^error: flowstate\.yaml:1004:11: invalid YAML: more than 1000 aliases \(this is alias 1001\)/,
    );
  });
});

Deno.test("mod.ts: atomic() with a key checked twice reports it once", async () => {
  await using store = await openStore({ plugin: "memory" });
  const first = await store.set(["k"], 1);
  await store.set(["k"], 2);
  const result = await store.atomic().check(["k"], first.version).check(["k"], first.version)
    .set(["other"], 1).commit();
  assert.deepEqual(result, { ok: false, version: null, conflicts: [["k"]] });
});

Deno.test("cache.ts: write-behind purgeExpired() counts an expired entry still queued", async () => {
  const clock = fakeClock();
  await using store = cached(await openStore({ plugin: "memory" }, { clock }), {
    clock,
    mode: "write-behind",
    flushInterval: 0,
  });
  await store.set(["session"], "s", { expireIn: 1_000 });
  clock.advance(1_000);
  assert.equal(await store.purgeExpired(), 1);
});

Deno.test("mod.ts: getAt() with both seq and time is a TypeError saying to give one", async () => {
  await using store = await openStore({ plugin: "memory", changes: { keep: "1d" } });
  await store.set(["k"], 1);
  await assert.rejects(
    () => store.getAt(["k"], { seq: 1, time: Date.now() } as unknown as { seq: number }),
    (err: Error) =>
      err instanceof TypeError &&
      /at has both time .* and seq \(1\); give one of them/.test(err.message),
  );
});

Deno.test("mod.ts: a node timeout past a timer's range (30d) does not fire at once", async () => {
  await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  const run = await rt.runFlow({
    id: "long",
    nodes: [{ id: "wait", type: "delay", with: { for: "20ms" }, timeout: "30d" }],
  });
  // A timer reads 2,592,000,000 ms as 1 ms: the node "timed out after 2592000000 ms" at once.
  assert.equal(run.status, "succeeded", run.error?.message);
});

Deno.test("runFlow: the internal options depth and parentRunId are checked when a caller passes them", async () => {
  await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  const flow = { id: "one", nodes: [{ id: "a", type: "transform", with: { value: 1 } }] };
  for (const depth of [-5, 1.5, Number.NaN]) {
    await assert.rejects(
      () => rt.runFlow(flow, { depth }),
      (err: Error) =>
        err instanceof TypeError && /option depth must be a non-negative integer/.test(err.message),
      `depth ${depth}`,
    );
  }
  await assert.rejects(
    () => rt.runFlow(flow, { parentRunId: "not a run" }),
    /Cannot run flow: option parentRunId: run id must be/,
  );
  const dir = await Deno.makeTempDir();
  const file = join(dir, "one.flow.yaml");
  await Deno.writeTextFile(
    file,
    "id: one\nnodes:\n  - id: a\n    type: transform\n    with: { value: 1 }\n",
  );
  await assert.rejects(
    () => rt.enqueue(file, { parentRunId: "not a run" } as never),
    /Cannot enqueue .*: parentRunId: run id must be/,
  );
  await Deno.remove(dir, { recursive: true });
  // Nothing was recorded by the refused calls; a proper call still runs.
  assert.equal((await (await rt.records()).listRuns({ flowId: "one" })).runs.length, 0);
  assert.equal((await rt.runFlow(flow, { depth: 0 })).status, "succeeded");
});
