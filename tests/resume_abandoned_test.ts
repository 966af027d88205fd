/**
 * A run whose process was killed (kill -9) and that gc then recorded
 * abandoned keeps what its nodes' events said, and the outputs kept beside
 * them: `runs show` prints the node that succeeded as succeeded with its
 * output, and a resume reuses it (its side effect does not happen twice)
 * rather than run it again. An output not kept (the last fraction of a
 * second, a large one) still runs again, and the preview says why. The same
 * for a run ended by a process told to exit at once (`interruptAll`), and
 * outputs holding a secret's value are kept masked (a resume runs them again).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliCommand, cliOk, withCliProject } from "./_cli_sandbox.ts";
import { killQuietly, waitUntil } from "./_deadline.ts";
import { openRuntime } from "../mod.ts";
import { newRunId, openStore, Records, RunRecorder } from "../records.ts";
import { MAX_VALUE_BYTES } from "../src/store/values.ts";
import type { JsonValue } from "../mod.ts";

const FLOW = `id: k
nodes:
  - { id: a, type: state.increment, with: { key: n } }
  - { id: b, type: delay, needs: [a], with: { for: 10m } }
`;

/**
 * Run `flowstate run <flow>` in the project `dir` (its home `home`) and kill
 * it with SIGKILL once `ready` (asked of the project's records, again and
 * again; a records store still being created answers `false`) says so.
 */
async function runKilledOnce(
  dir: string,
  home: string,
  flow: string,
  what: string,
  ready: (records: Records) => Promise<boolean>,
): Promise<void> {
  const child = cliCommand(dir, ["run", flow], { home, stdout: "null" }).spawn();
  try {
    await using rt = await openRuntime({ cwd: dir, home });
    await waitUntil(what, async () => {
      const records = await rt.records().catch(() => undefined);
      return records !== undefined && await ready(records).catch(() => false);
    });
  } finally {
    killQuietly(child);
    await child.status;
    await child.stderr.cancel();
  }
}

Deno.test("an abandoned run (kill -9) keeps its nodes' outcomes and outputs from their events; its resume reuses the node that succeeded (its side effect does not happen twice)", async () => {
  await withCliProject("", async (run, dir) => {
    await Deno.writeTextFile(join(dir, "k.flow.yaml"), FLOW);
    const home = join(dir, "home"); // where the project's CLI runs keep it (withCliProject)
    let runId: string | undefined;
    await runKilledOnce(
      dir,
      home,
      "k.flow.yaml",
      "node a's end and b's attempt recorded",
      async (records) => {
        runId = (await records.listRuns({ flowId: "k" })).runs[0]?.id;
        if (runId === undefined) return false;
        const events = await records.getEvents(runId);
        return events.some((e) => e.type === "node.end" && e.node === "a") &&
          events.some((e) => e.type === "node.attempt" && e.node === "b");
      },
    );
    {
      await using rt = await openRuntime({ cwd: dir, home });
      const records = await rt.records();
      // The events read back are as they were: the output is kept beside them, not in them.
      const end = (await records.getEvents(runId!)).find((e) => e.type === "node.end");
      assert.equal(end !== undefined && "output" in end, false);
      const marked = await records.abandonRun(runId!, {
        afterMs: 20_000,
        now: Date.now() + 120_000,
      });
      assert.equal(marked?.status, "failed");
      assert.deepEqual(marked?.nodes.a, { status: "succeeded", attempts: 1, output: 1 });
      // b was running when its process died: stopped (as a run interrupted by SIGTERM records
      // it), not "did not run".
      assert.deepEqual(marked?.nodes.b, { status: "cancelled", attempts: 1 });
    }
    const shown = await cliOk(run, "runs", "show", runId!);
    assert.match(shown, /^ {2}a: succeeded, 1 attempt/m);
    assert.match(shown, /^ {2}b: cancelled, 1 attempt/m);
    const plan = await cliOk(run, "runs", "resume", runId!, "--dry-run", "--flow", "k.flow.yaml");
    assert.match(plan, new RegExp(`reuse +a +succeeded in run ${runId}`));
    assert.match(plan, /run +b +cancelled in run/);
    // b no longer waits: the resume runs it, and reuses a, whose increment happened once.
    await Deno.writeTextFile(join(dir, "k.flow.yaml"), FLOW.replace("for: 10m", "for: 1ms"));
    const resumed = await cliOk(run, "runs", "resume", runId!, "--flow", "k.flow.yaml");
    assert.match(resumed, /status: +succeeded/);
    assert.match(await cliOk(run, "state", "get", "n", "--flow", "k"), /^1$/m);
  });
});

/** A running run's record with a heartbeat now, for the records API. */
function started(id = newRunId(Date.now())) {
  return {
    id,
    flowId: "f",
    flowVersion: "job",
    status: "running" as const,
    inputs: {},
    outputs: null,
    error: null,
    startedAt: Date.now(),
    endedAt: null,
    durationMs: null,
    nodes: {},
    heartbeatAt: Date.now(),
  };
}

Deno.test("records: outputs kept beside a chunk's events are recorded by abandonRun with their masked flag, only for the node.end they came with", async () => {
  await using store = await openStore({ plugin: "memory" });
  const records = new Records(store);
  const run = started();
  await records.startRun(run);
  const end = (node: string, status: "succeeded" | "failed" = "succeeded") => ({
    at: run.startedAt,
    type: "node.end" as const,
    node,
    status,
    attempt: 1,
    durationMs: 0,
  });
  await records.appendEvents(run.id, [end("a"), end("b"), end("c", "failed")], {
    nodes: ["a", "b", "c"],
    outputs: [{ ok: true }, "***", 3],
    masked: ["b"],
  });
  // d's output was not kept (the batch with it was never written): it has none.
  await records.appendEvents(run.id, [end("d")]);
  assert.equal((await records.getEvents(run.id)).some((e) => "output" in e), false);
  const marked = await records.abandonRun(run.id, { afterMs: 1, now: Date.now() + 60_000 });
  assert.deepEqual(marked?.nodes, {
    a: { status: "succeeded", attempts: 1, output: { ok: true } },
    b: { status: "succeeded", attempts: 1, output: "***", masked: true },
    // A failed node's end carries no output, whatever a chunk says.
    c: { status: "failed", attempts: 1 },
    d: { status: "succeeded", attempts: 1 },
  });
  assert.deepEqual((await records.getRun(run.id))?.nodes, marked?.nodes);
});

Deno.test("records: a chunk whose kept outputs are too large or too deep for the store is stored with its events, without them", async () => {
  await using store = await openStore({ plugin: "memory" });
  const records = new Records(store);
  const run = started();
  await records.startRun(run);
  const event = {
    at: run.startedAt,
    type: "node.end" as const,
    node: "big",
    status: "succeeded" as const,
    attempt: 1,
    durationMs: 0,
  };
  await records.appendEvents(run.id, [event], {
    nodes: ["big"],
    outputs: ["x".repeat(MAX_VALUE_BYTES + 1)],
  });
  // As deep as a node's output may be (255 levels), which nests too deep beside the events.
  let deep: JsonValue = 1;
  for (let i = 0; i < 255; i++) deep = [deep];
  const deepEnd = { ...event, node: "deep" };
  await records.appendEvents(run.id, [deepEnd], { nodes: ["deep"], outputs: [deep] });
  assert.deepEqual(await records.getEvents(run.id), [event, deepEnd]);
  const marked = await records.abandonRun(run.id, { afterMs: 1, now: Date.now() + 60_000 });
  assert.deepEqual(marked?.nodes.big, { status: "succeeded", attempts: 1 });
  assert.deepEqual(marked?.nodes.deep, { status: "succeeded", attempts: 1 });
});

Deno.test("recorder: a run ended by interruptAll keeps the outputs of its nodes that ended (masked ones flagged); too large together, it is recorded without them", async () => {
  await using store = await openStore({ plugin: "memory" });
  const records = new Records(store);
  const clock = { now: () => Date.now() };
  const end = (node: string) => ({
    at: clock.now(),
    type: "node.end" as const,
    node,
    status: "succeeded" as const,
    attempt: 1,
    durationMs: 0,
  });
  const small = await RunRecorder.start(records, clock, {
    flowId: "f",
    flowVersion: "job",
    inputs: {},
  });
  small.event({ at: clock.now(), type: "node.start", node: "a" });
  small.event({ ...end("a"), outputBytes: 2 }, 42);
  small.event({ ...end("s"), outputBytes: 5 }, "***", true);
  small.event({ at: clock.now(), type: "node.start", node: "b" });
  // Four outputs of 5 MiB: the record with them is over the store's 16 MiB.
  const large = await RunRecorder.start(records, clock, {
    flowId: "f",
    flowVersion: "job",
    inputs: {},
  });
  const chunk = "y".repeat(5 * 1024 * 1024);
  for (const node of ["w", "x", "y", "z"]) {
    large.event({ at: clock.now(), type: "node.start", node });
    large.event({ ...end(node), outputBytes: chunk.length + 2 }, chunk);
  }
  const { ended, notEnded } = await RunRecorder.interruptAll("cancelled: exiting at once");
  assert.deepEqual([ended.sort(), notEnded], [[small.id, large.id].sort(), []]);
  const first = await records.getRun(small.id);
  assert.equal(first?.status, "cancelled");
  assert.deepEqual(first?.nodes, {
    a: { status: "succeeded", attempts: 1, output: 42 },
    s: { status: "succeeded", attempts: 1, output: "***", masked: true },
    b: { status: "cancelled", attempts: 0 },
  });
  const second = await records.getRun(large.id);
  assert.equal(second?.status, "cancelled");
  assert.deepEqual(second?.nodes.z, { status: "succeeded", attempts: 1 });
});

Deno.test("an output holding a secret's value is kept masked beside its event: the abandoned run's resume runs that node again and says why", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      join(dir, "s.flow.yaml"),
      `id: s
secrets: [RESUME_ABANDONED_TOKEN]
nodes:
  - { id: plain, type: transform, with: { value: "hello" } }
  - { id: secret, type: transform, with: { value: "token \${{ secrets.RESUME_ABANDONED_TOKEN }}" } }
  - { id: wait, type: delay, needs: [plain, secret], with: { for: 10m } }
`,
    );
    Deno.env.set("RESUME_ABANDONED_TOKEN", "hunter2-hunter2");
    await using rt = await openRuntime({
      cwd: dir,
      config: { stores: { main: { plugin: "memory" } } },
    });
    const records = await rt.records();
    const stop = new AbortController();
    let runId: string | undefined;
    const running = rt.runFlow(join(dir, "s.flow.yaml"), {
      signal: stop.signal,
      onStart: (id) => runId = id,
    }).catch((err) => err);
    await waitUntil("the wait node's start recorded", async () => {
      if (runId === undefined) return false;
      const events = await records.getEvents(runId);
      return events.some((e) => e.type === "node.start" && e.node === "wait");
    });
    // Its process "dies": a record without an owner (an older version's) is judged by its
    // heartbeat alone (this process, its owner, is alive: it would never be abandoned).
    const store = await rt.store("main");
    const key = ["flowstate", "runs", runId!];
    const { owner: _owner, ...stored } = (await store.get<Record<string, unknown>>(key))!.value;
    await store.set(key, stored);
    const marked = await records.abandonRun(runId!, {
      afterMs: 1,
      now: Date.now() + 120_000,
    });
    stop.abort();
    await running;
    assert.deepEqual(marked?.nodes.plain, { status: "succeeded", attempts: 1, output: "hello" });
    assert.deepEqual(marked?.nodes.secret, {
      status: "succeeded",
      attempts: 1,
      output: "token ***",
      masked: true,
    });
    const preview = await rt.previewResume(runId!, { flow: join(dir, "s.flow.yaml") });
    const by = new Map(preview.nodes.map((n) => [n.node, n]));
    assert.equal(by.get("plain")?.reused, true);
    assert.equal(by.get("secret")?.reused, false);
    assert.match(by.get("secret")?.message ?? "", /held a secret and was recorded masked/);
  } finally {
    Deno.env.delete("RESUME_ABANDONED_TOKEN");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an abandoned run (kill -9) whose flow node's sub-flow was running keeps that sub-run (node.subrun): its resume resumes it, and the charge made inside is not made again", async () => {
  await withCliProject("", async (run, dir) => {
    await Deno.writeTextFile(
      join(dir, "child.flow.yaml"),
      `id: c
nodes:
  - { id: charge, type: state.increment, with: { key: n } }
  - { id: slow, type: delay, needs: [charge], with: { for: 10m } }
`,
    );
    await Deno.writeTextFile(
      join(dir, "p.flow.yaml"),
      `id: p
nodes:
  - { id: call, type: flow, with: { flow: ./child.flow.yaml } }
`,
    );
    const home = join(dir, "home");
    let parentId: string | undefined;
    let subId: string | undefined;
    await runKilledOnce(
      dir,
      home,
      "p.flow.yaml",
      "the sub-run's slow node started, and the sub-run recorded in p's events",
      async (records) => {
        parentId = (await records.listRuns({ flowId: "p" })).runs[0]?.id;
        subId = (await records.listRuns({ flowId: "c" })).runs[0]?.id;
        if (parentId === undefined || subId === undefined) return false;
        const sub = await records.getEvents(subId);
        const parent = await records.getEvents(parentId);
        return sub.some((e) => e.type === "node.attempt" && e.node === "slow") &&
          parent.some((e) => e.type === "node.subrun" && e.run === subId);
      },
    );
    {
      await using rt = await openRuntime({ cwd: dir, home });
      const records = await rt.records();
      const later = { afterMs: 20_000, now: Date.now() + 120_000 };
      const parent = await records.abandonRun(parentId!, later);
      assert.deepEqual(parent?.nodes.call, {
        status: "cancelled",
        attempts: 1,
        subRuns: [subId!],
      });
      const sub = await records.abandonRun(subId!, later);
      assert.deepEqual(sub?.nodes.charge, { status: "succeeded", attempts: 1, output: 1 });
    }
    const shown = await cliOk(run, "runs", "show", parentId!);
    assert.match(shown, new RegExp(`started sub-run ${subId}`));
    assert.match(shown, new RegExp(`sub-run: ${subId}`));
    const plan = await cliOk(
      run,
      "runs",
      "resume",
      parentId!,
      "--dry-run",
      "--flow",
      "p.flow.yaml",
    );
    assert.match(plan, new RegExp(`its sub-run ${subId} is resumed`));
    await Deno.writeTextFile(
      join(dir, "child.flow.yaml"),
      (await Deno.readTextFile(join(dir, "child.flow.yaml"))).replace("for: 10m", "for: 1ms"),
    );
    const resumed = await cliOk(run, "runs", "resume", parentId!, "--flow", "p.flow.yaml");
    assert.match(resumed, /status: +succeeded/);
    // The charge inside the sub-flow happened once: its sub-run was resumed, its charge reused.
    assert.match(await cliOk(run, "state", "get", "n", "--flow", "c"), /^1$/m);
  });
});
