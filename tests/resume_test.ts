/**
 * Resuming a failed run (`flowstate runs resume`, `Runtime.resumeRun`): a new
 * run that reuses the outputs its succeeded nodes recorded, without running
 * them again, and runs the rest; `--from`; nodes whose definition changed, or
 * whose output was masked, run again; refusals.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliOk } from "./_cli_sandbox.ts";
import { APPEND, failedRun, FLOW, lines, project } from "./_resume_fixture.ts";
import {
  defineNode,
  NotFoundError,
  openRuntime,
  ResumeRefusedError,
  type RunRecord,
  startWorker,
} from "../mod.ts";
import { documented, eventually, withServed } from "./_serve.ts";
import { waitUntil, within } from "./_deadline.ts";

Deno.test("runs resume: the failed node and what comes after it run, the nodes before are not run again and their outputs reach the rest", async () => {
  await project(async (run, dir) => {
    const failed = await failedRun(run, dir);
    assert.deepEqual(await lines(join(dir, "fetch.log")), ["fetched for ada"]);

    const resumed = await run("runs", "resume", failed);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout, /^status: {3}succeeded$/m);
    assert.match(resumed.stdout, /^ {2}fetched: 1$/m);
    assert.match(resumed.stdout, /^ {2}loaded: "loaded 1"$/m);
    // fetch did not run again (its side effect happened once); load and report ran.
    assert.deepEqual(await lines(join(dir, "fetch.log")), ["fetched for ada"]);
    assert.deepEqual(await lines(join(dir, "report.log")), ["loaded 1 from 1"]);
    const id = /^run: +(\w+)$/m.exec(resumed.stdout)![1];
    assert.notEqual(id, failed);

    const shown = JSON.parse(await cliOk(run, "runs", "show", id, "--json"));
    assert.equal(shown.run.resumeOf, failed);
    assert.equal(shown.run.inputs.who, "ada", "the original run's inputs");
    assert.deepEqual(shown.run.nodes.fetch, {
      status: "succeeded",
      attempts: 1,
      output: 1,
      reused: failed,
    });
    assert.equal(shown.run.nodes.load.reused, undefined);
    assert.equal(shown.run.nodes.report.reused, undefined);
    const fetchEvents = shown.events.filter((e: { node?: string }) => e.node === "fetch");
    assert.deepEqual(fetchEvents.map((e: { type: string }) => e.type), ["node.end"]);
    assert.equal(fetchEvents[0].reused, failed);

    const text = await cliOk(run, "runs", "show", id);
    assert.match(text, new RegExp(`^resumes: +run ${failed} `, "m"));
    assert.match(
      text,
      new RegExp(`^ {2}fetch: succeeded, 1 attempt.*\\(reused from run ${failed}\\)$`, "m"),
    );
    assert.doesNotMatch(text, /^ {2}load: .*reused/m);

    const listed = JSON.parse(await cliOk(run, "runs", "ls", "--json"));
    assert.equal(listed.find((r: { id: string }) => r.id === id).resumeOf, failed);
    assert.equal(listed.find((r: { id: string }) => r.id === failed).resumeOf, undefined);

    // --json prints the new record; --from runs that node and what needs it again.
    const again = await run("runs", "resume", id, "--from", "load", "--json");
    assert.equal(again.code, 0, again.stderr);
    const record = JSON.parse(again.stdout);
    assert.equal(record.resumeOf, id);
    assert.equal(record.nodes.fetch.reused, id);
    assert.equal(record.nodes.load.reused, undefined);
    assert.deepEqual(await lines(join(dir, "fetch.log")), ["fetched for ada"]);
    assert.deepEqual(await lines(join(dir, "report.log")), ["loaded 1 from 1", "loaded 1 from 1"]);

    // --from the first node: every node runs again (--again: the run was resumed already).
    const all = JSON.parse(
      (await run("runs", "resume", failed, "--from", "fetch", "--again", "--json", "--quiet"))
        .stdout,
    );
    assert.deepEqual(Object.values(all.nodes).map((n) => (n as { reused?: string }).reused), [
      undefined,
      undefined,
      undefined,
    ]);
    assert.deepEqual(all.outputs, { fetched: 2, loaded: "loaded 2" });
  });
});

const TWO_STEP = `id: twostep
nodes:
  - id: part
    type: flow
    with: { flow: ../subs/part.flow.yaml }
  - id: load
    type: ../flaky.ts
    needs: [part]
    with: { n: "\${{ nodes.part.output.v }}" }
outputs:
  loaded: "\${{ nodes.load.output }}"
`;

const PART = (value: string) =>
  `id: part
nodes:
  - id: t
    type: transform
    with: { value: ${value} }
outputs:
  v: "\${{ nodes.t.output }}"
`;

Deno.test("runs resume: a node whose module or sub-flow file was edited after the run runs again, with what comes after it", async () => {
  await project(async (run, dir) => {
    // A module edited since the run (the fix is there): its node runs again.
    const failed = await failedRun(run, dir);
    await Deno.writeTextFile(join(dir, "append.ts"), APPEND + "// fixed\n");
    const resumed = JSON.parse((await run("runs", "resume", failed, "--json", "--quiet")).stdout);
    assert.equal(resumed.status, "succeeded");
    assert.equal(resumed.nodes.fetch.reused, undefined);
    assert.deepEqual(await lines(join(dir, "fetch.log")), ["fetched for ada", "fetched for ada"]);
    assert.deepEqual(resumed.outputs, { fetched: 2, loaded: "loaded 2" });

    // A sub-flow file edited since the run: the flow node runs again, and so does what needs it.
    await Deno.mkdir(join(dir, "subs"));
    await Deno.writeTextFile(join(dir, "subs", "part.flow.yaml"), PART("old"));
    await Deno.writeTextFile(join(dir, "flows", "twostep.flow.yaml"), TWO_STEP);
    await Deno.writeTextFile(join(dir, "FAIL"), "");
    const first = await run("run", "flows/twostep.flow.yaml", "--json", "--quiet");
    assert.equal(first.code, 1, first.stderr);
    const failedTwo = JSON.parse(first.stdout).id;
    await Deno.remove(join(dir, "FAIL"));
    // Unchanged, the sub-flow node is reused (resumed once, as a check of the rule)…
    const same = JSON.parse(
      (await run("runs", "resume", failedTwo, "--from", "load", "--json", "--quiet")).stdout,
    );
    assert.equal(same.nodes.part.reused, failedTwo);
    assert.deepEqual(same.outputs, { loaded: "loaded old" });
    // …edited, it runs again.
    await Deno.writeTextFile(join(dir, "subs", "part.flow.yaml"), PART("new"));
    const edited = JSON.parse(
      (await run("runs", "resume", failedTwo, "--again", "--json", "--quiet")).stdout,
    );
    assert.equal(edited.status, "succeeded");
    assert.equal(edited.nodes.part.reused, undefined);
    assert.deepEqual(edited.outputs, { loaded: "loaded new" });
  });
});

Deno.test("runs resume: a resumed run that fails again exits 1, and its logs say so as flowstate run's", async () => {
  await project(async (run, dir) => {
    const failed = await failedRun(run, dir);
    await Deno.writeTextFile(join(dir, "FAIL"), "");
    const again = await run("runs", "resume", failed);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^Running flow "pipeline" \(run \w+\)$/m);
    assert.match(again.stderr, /^\[load\] attempt 1 failed: the API is down$/m);
    assert.match(again.stdout, /^status: {3}failed$/m);
    assert.deepEqual(await lines(join(dir, "fetch.log")), ["fetched for ada"]);
  });
});

Deno.test("runs resume: refused clearly, nothing written: unknown run, succeeded without --from, an unknown --from node, a job's run, a flow found nowhere", async () => {
  await project(async (run, dir) => {
    const unknown = await run("runs", "resume", "0000000000aaaaaaaaaa");
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^error: Cannot resume run 0000000000aaaaaaaaaa: no such run/m);

    const failed = await failedRun(run, dir);
    // Refused once the flow is loaded: the run's resume mark is taken back, so it resumes next.
    const typo = await run("runs", "resume", failed, "--from", "laod");
    assert.equal(typo.code, 2);
    assert.match(
      typo.stderr,
      /^error: Cannot resume run \w+ from node "laod": flow "pipeline" has no such node \(did you mean "load"\?\); its nodes: fetch, load, report$/m,
    );
    const ok = JSON.parse(await cliOk(run, "runs", "resume", failed, "--json"));
    const before = JSON.parse(await cliOk(run, "runs", "ls", "--json")).length;

    const succeeded = await run("runs", "resume", ok.id);
    assert.equal(succeeded.code, 1);
    assert.match(
      succeeded.stderr,
      new RegExp(
        `^error: Cannot resume run ${ok.id}: it succeeded, so there is nothing to resume; .*--from <node>`,
        "m",
      ),
    );

    const gc = JSON.parse(await cliOk(run, "jobs", "run", "gc", "--json", "--quiet"));
    const job = await run("runs", "resume", gc.id);
    assert.equal(job.code, 1);
    assert.match(job.stderr, /^error: Cannot resume run \w+: it is a run of job "gc"/m);

    assert.equal(JSON.parse(await cliOk(run, "runs", "ls", "--json")).length, before + 1);

    // A flow run from a file outside the config's flows: the record does not say where it is.
    await Deno.writeTextFile(join(dir, "FAIL"), "");
    await Deno.writeTextFile(
      join(dir, "other.flow.yaml"),
      FLOW.replace("id: pipeline", "id: other").replaceAll("../", "./"),
    );
    const other = JSON.parse(
      (await run("run", "other.flow.yaml", "--input", "who=bob", "--json")).stdout,
    );
    await Deno.remove(join(dir, "FAIL"));
    const lost = await run("runs", "resume", other.id);
    assert.equal(lost.code, 1);
    assert.match(
      lost.stderr,
      /^error: Cannot resume run \w+: no file under the config's flows: has flow id "other", .*pass the flow file with --flow <file>/m,
    );
    const wrong = await run("runs", "resume", other.id, "--flow", "flows/pipeline.flow.yaml");
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /with flow "pipeline": give the file of flow "other"/);
    const given = await run("runs", "resume", other.id, "--flow", "other.flow.yaml", "--json");
    assert.equal(given.code, 0, given.stderr);
    assert.equal(JSON.parse(given.stdout).nodes.fetch.reused, other.id);
  });
});

const ALERT = `id: alert
inputs:
  run: { type: object }
nodes:
  - { id: tell, type: log, with: { message: "\${{ inputs.run.id }} \${{ inputs.run.status }}" } }
`;

Deno.test("runs resume: a resumed run that fails fires runs.onFailure as any run; an archived run is refused (its outputs are not in the records store)", async () => {
  await project(async (run, dir) => {
    await Deno.writeTextFile(join(dir, "flows", "alert.flow.yaml"), ALERT);
    const failed = await failedRun(run, dir);
    await Deno.writeTextFile(join(dir, "FAIL"), "");
    const again = await run("runs", "resume", failed);
    assert.equal(again.code, 1, again.stderr);
    const id = /^run: +(\w+)$/m.exec(again.stdout)![1];
    const handler = /^onFailure: alert ran as run (\w+)$/m.exec(again.stdout)?.[1];
    assert.ok(handler, again.stdout);
    const shown = JSON.parse(await cliOk(run, "runs", "show", handler, "--json"));
    assert.equal(shown.run.onFailureOf, id);
    assert.equal(shown.run.inputs.run.id, id);

    await cliOk(run, "jobs", "run", "archive", "--option", "olderThan=0", "--json", "--quiet");
    const archived = await run("runs", "resume", failed);
    assert.equal(archived.code, 1);
    assert.match(
      archived.stderr,
      new RegExp(
        `^error: Cannot resume run ${failed}: it is archived \\(in .*\\), and a resumed run reuses outputs from the records store only`,
        "m",
      ),
    );
  }, "runs:\n  onFailure: { flow: alert }\n");
});

// Through mod.ts: definitions that changed, masked outputs, mocks, runs still running.

const memory = { stores: { main: { plugin: "memory" as const } } };

Deno.test("resumeRun: a node whose definition changed runs again, and so does every node after it; unchanged ones before it are reused", async () => {
  await using rt = await openRuntime({ config: memory });
  const flow = (label: string, fail: boolean) => ({
    id: "chain",
    nodes: [
      { id: "a", type: "state.increment", with: { key: "a" } },
      { id: "b", type: "transform", needs: ["a"], with: { value: label } },
      { id: "c", type: "state.increment", needs: ["b"], with: { key: "c" } },
      {
        id: "d",
        type: fail ? "fail" : "transform",
        needs: ["c"],
        with: fail ? { message: "down" } : { value: "${{ nodes.b.output }}" },
      },
    ],
  });
  const failed = await rt.runFlow(flow("one", true));
  assert.equal(failed.status, "failed");
  const resumed = await rt.resumeRun(failed.id, { flow: flow("two", false) });
  assert.equal(resumed.status, "succeeded");
  assert.equal(resumed.nodes.a.reused, failed.id);
  assert.equal(resumed.nodes.b.reused, undefined, "its with: changed");
  assert.equal(resumed.nodes.c.reused, undefined, "it needs b");
  assert.equal(resumed.nodes.c.output, 2, "c ran again");
  assert.equal(resumed.nodes.a.output, 1);
  assert.equal(resumed.nodes.d.output, "two");
});

Deno.test("resumeRun: a node whose recorded output was masked for a secret runs again (its record says masked)", async () => {
  await using rt = await openRuntime({ config: memory });
  const env = { TOKEN: "s3cret-token-value" };
  const flow = (fail: boolean) => ({
    id: "secretive",
    secrets: ["TOKEN"],
    nodes: [
      { id: "header", type: "transform", with: { value: "Bearer ${{ secrets.TOKEN }}" } },
      { id: "plain", type: "transform", with: { value: "no secret" } },
      {
        id: "use",
        type: fail ? "fail" : "transform",
        needs: ["header", "plain"],
        with: fail
          ? { message: "down" }
          : { value: "${{ nodes.header.output == 'Bearer ' + secrets.TOKEN }}" },
      },
    ],
  });
  const failed = await rt.runFlow(flow(true), { env });
  assert.equal(failed.nodes.header.output, "Bearer ***");
  assert.equal(failed.nodes.header.masked, true);
  assert.equal(failed.nodes.plain.masked, undefined);
  const resumed = await rt.resumeRun(failed.id, { flow: flow(false), env });
  assert.equal(resumed.status, "succeeded");
  assert.equal(resumed.nodes.header.reused, undefined, "masked: run again");
  assert.equal(resumed.nodes.plain.reused, failed.id);
  assert.equal(resumed.nodes.use.output, true, "the real value, not ***, reached use");
});

Deno.test("resumeRun: when: always and on_failure nodes run again; skipped nodes are evaluated again; a mocked run and a running one are refused", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  await using rt = await openRuntime({
    config: memory,
    nodeTypes: {
      "app.wait": defineNode({
        optionsSchema: {
          "~standard": { version: 1, vendor: "t", validate: (v) => ({ value: v }) },
        },
        async run() {
          await gate;
          return "waited";
        },
      }),
    },
  });
  const flow = (fail: boolean) => ({
    id: "cleanup",
    nodes: [
      { id: "a", type: "transform", with: { value: 1 } },
      {
        id: "maybe",
        type: "transform",
        needs: ["a"],
        if: "${{ nodes.a.output > 5 }}",
        with: { value: 2 },
      },
      {
        id: "b",
        type: fail ? "fail" : "transform",
        needs: ["a"],
        with: fail ? { message: "down" } : { value: 3 },
      },
      { id: "tidy", type: "state.increment", needs: ["b"], when: "always", with: { key: "tidy" } },
      // Its needs are reused, and it succeeded: it runs again all the same (its when: says always).
      {
        id: "audit",
        type: "state.increment",
        needs: ["a"],
        when: "always",
        with: { key: "audit" },
      },
    ],
  });
  const failed = await rt.runFlow(flow(true));
  assert.equal(failed.nodes.tidy.status, "succeeded");
  const resumed = await rt.resumeRun(failed.id, { flow: flow(false) });
  assert.equal(resumed.nodes.a.reused, failed.id);
  assert.equal(resumed.nodes.maybe.status, "skipped");
  assert.equal(resumed.nodes.tidy.reused, undefined);
  assert.equal(resumed.nodes.tidy.output, 2, "when: always ran again");
  assert.equal(failed.nodes.audit.status, "succeeded");
  assert.equal(resumed.nodes.audit.reused, undefined);
  assert.equal(resumed.nodes.audit.output, 2, "when: always ran again, though a is reused");

  const mocked = await rt.runFlow(flow(true), { mocks: { a: 9 } });
  const refusal = await rt.resumeRun(mocked.id, { flow: flow(false) }).catch((e) => e);
  assert.ok(refusal instanceof ResumeRefusedError);
  assert.equal(refusal.reason, "mocked");

  let runId: string | undefined;
  const started = Promise.withResolvers<void>();
  const slow = rt.runFlow({ id: "slow", nodes: [{ id: "w", type: "app.wait", with: {} }] }, {
    onStart: (id) => {
      runId = id;
      started.resolve();
    },
  });
  await within(started.promise, "the started event");
  const running = await rt.resumeRun(runId!, { from: "w" }).catch((e) => e);
  assert.ok(running instanceof ResumeRefusedError);
  assert.equal(running.reason, "running");
  assert.match(running.message, /it is still running/);
  release();
  await slow;

  // A sub-run is resumed through its parent run.
  const inner = (fail: boolean) => ({
    id: "inner",
    nodes: [{
      id: "x",
      type: fail ? "fail" : "transform",
      with: fail ? { message: "no" } : { value: 1 },
    }],
  });
  const outer = (fail: boolean) => ({
    id: "outer",
    nodes: [{ id: "call", type: "flow", with: { flow: inner(fail) } }],
  });
  const parent = await rt.runFlow(outer(true));
  assert.equal(parent.status, "failed");
  const sub = (await (await rt.records()).listRuns({ flowId: "inner" })).runs
    .find((r) => r.parentRunId === parent.id)!;
  const subRefusal = await rt.resumeRun(sub.id, { flow: inner(false) }).catch((e) => e);
  assert.ok(subRefusal instanceof ResumeRefusedError);
  assert.equal(subRefusal.reason, "sub-run");
  assert.ok(subRefusal.message.includes(`resume that run (flowstate runs resume ${parent.id})`));
  assert.equal((await rt.resumeRun(parent.id, { flow: outer(false) })).status, "succeeded");

  const unknown = await rt.resumeRun("0000000000bbbbbbbbbb").catch((e) => e);
  assert.ok(unknown instanceof NotFoundError);
  assert.equal(unknown.kind, "run");
});

// Over HTTP: POST /api/runs/{id}/resume.

const HTTP_FLOW = (failing: boolean) =>
  `id: billing
inputs:
  customer: { type: string }
nodes:
  - { id: charge, type: state.increment, with: { key: charged } }
  - id: mail
    type: ${failing ? "fail" : "transform"}
    needs: [charge]
    with: ${
    failing
      ? "{ message: smtp down }"
      : '{ value: "mailed ${{ inputs.customer }} #${{ nodes.charge.output }}" }'
  }
`;

Deno.test("POST /api/runs/{id}/resume: 202 with the new run's id; the new run resumes the failed one; refusals are 409, 400 and 404", async () => {
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ dir, request, runtime }) => {
    const file = join(dir, "flows", "billing.flow.yaml");
    await Deno.writeTextFile(file, HTTP_FLOW(true));
    const failed = await runtime.runFlow(file, { input: { customer: "ada" } });
    assert.equal(failed.status, "failed");
    await Deno.writeTextFile(file, HTTP_FLOW(false));

    const post = (id: string, body?: unknown, headers: Record<string, string> = {}) =>
      request(`/api/runs/${id}/resume`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const response = await post(failed.id);
    assert.equal(response.status, 202);
    const { runId } = await documented<{ runId: string }>(
      "POST",
      "/api/runs/{id}/resume",
      response,
    );
    assert.equal(response.headers.get("location"), `/api/runs/${runId}`);
    const records = await runtime.records();
    await eventually(
      "the resumed run ends",
      async () => (await records.getRun(runId))?.status === "succeeded",
    );
    const detail = await documented<{ run: RunRecord }>(
      "GET",
      "/api/runs/{id}",
      await request(`/api/runs/${runId}`),
    );
    assert.equal(detail.run.resumeOf, failed.id);
    assert.equal(detail.run.nodes.charge.reused, failed.id);
    assert.equal(detail.run.nodes.mail.output, "mailed ada #1", "charged once, its output reused");
    const listed = await documented<{ runs: { id: string; resumeOf?: string }[] }>(
      "GET",
      "/api/runs",
      await request("/api/runs"),
    );
    assert.equal(listed.runs.find((r) => r.id === runId)?.resumeOf, failed.id);

    const succeeded = await post(runId, {});
    assert.equal(succeeded.status, 409);
    const said = await documented<{ error: { message: string } }>(
      "POST",
      "/api/runs/{id}/resume",
      succeeded,
    );
    assert.match(said.error.message, /it succeeded, so there is nothing to resume/);

    const typo = await post(runId, { from: "mial" });
    assert.equal(typo.status, 400);
    assert.match(
      (await documented<{ error: { message: string } }>("POST", "/api/runs/{id}/resume", typo))
        .error.message,
      /has no such node \(did you mean "mail"\?\)/,
    );
    const badField = await post(runId, { form: "mail" });
    assert.equal(badField.status, 400);
    await badField.body?.cancel();
    const unknown = await post("0000000000cccccccccc");
    assert.equal(unknown.status, 404);
    await unknown.body?.cancel();
    const notAnId = await post("nope");
    assert.equal(notAnId.status, 400);
    await notAnId.body?.cancel();
    // A write endpoint: a cross-origin request is refused as the others are.
    const foreign = await post(runId, { from: "mail" }, { origin: "https://evil.example" });
    assert.equal(foreign.status, 403);
    await foreign.body?.cancel();

    // With from: allowed on a run that succeeded.
    const from = await post(runId, { from: "mail" });
    assert.equal(from.status, 202);
    const again = (await from.json()).runId;
    await eventually(
      "the run from mail ends",
      async () => (await records.getRun(again))?.status === "succeeded",
    );
    assert.equal((await records.getRun(again))?.nodes.charge.reused, runId);
  });
});

Deno.test("a run a queue node enqueued is resumed like any queued run (nothing waits for it: it is not a sub-run)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const child = (failing: boolean) =>
      `id: child\nnodes:\n  - { id: a, type: state.increment, with: { key: n } }\n` +
      (failing
        ? "  - { id: b, type: fail, needs: [a], with: { message: the API is down } }\n"
        : "  - { id: b, type: transform, needs: [a], with: { value: fixed } }\n");
    await Deno.writeTextFile(join(dir, "child.flow.yaml"), child(true));
    await Deno.writeTextFile(
      join(dir, "parent.flow.yaml"),
      "id: parent\nnodes:\n  - { id: later, type: queue, with: { flow: child } }\n",
    );
    await using rt = await openRuntime({
      config: { stores: { main: { plugin: "memory" } }, flows: [dir] },
      home: dir,
    });
    const parent = await rt.runFlow(join(dir, "parent.flow.yaml"));
    assert.equal(parent.status, "succeeded", "the queue node does not wait for the run");
    const childId = (parent.nodes.later.output as { runId: string }).runId;
    const records = await rt.records();
    {
      await using _worker = startWorker(rt, { concurrency: 1 });
      await waitUntil(
        "the enqueued run failed",
        async () => (await records.getRun(childId))?.status === "failed",
      );
    }
    const failed = (await records.getRun(childId))!;
    assert.equal(failed.parentRunId, parent.id);
    await Deno.writeTextFile(join(dir, "child.flow.yaml"), child(false));
    const resumed = await rt.resumeRun(childId);
    assert.equal(resumed.status, "succeeded", JSON.stringify(resumed.error));
    assert.equal(resumed.resumeOf, childId);
    assert.equal(resumed.nodes.a.reused, childId, "a is not run again");
    assert.equal(resumed.nodes.b.output, "fixed");
    assert.equal((await (await rt.store("main")).get(["flow", "child", "n"]))?.value, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
