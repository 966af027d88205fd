/**
 * A run is resumed once: two resumes of the same run at once (two CLI
 * processes, two API calls, two programs) start one run; the other is
 * refused with the run that resumes it. Resuming the original again after
 * that run ended is refused too (resume that run instead), unless `again`.
 * On SQLite, and on PostgreSQL when FLOWSTATE_TEST_POSTGRES_URL is set.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliOk, type ProjectCli, withCliProject } from "./_cli_sandbox.ts";
import { defineNode, openRuntime, ResumeRefusedError } from "../mod.ts";
import { documented, eventually, withServed } from "./_serve.ts";
import { within } from "./_deadline.ts";
import { firedTimers } from "./_fired_timers.ts";
import { RESUME_CLAIM_MS, RESUME_RENEW_MS } from "../src/resume.ts";

const PG_URL = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL") || undefined;

/** A trusted node whose side effect is a line in effect.log; it then fails while the file FAIL exists. */
const EFFECT = `export default {
  optionsSchema: { "~standard": { version: 1, vendor: "t", validate: (v) => ({ value: v }) } },
  run() {
    Deno.writeTextFileSync("effect.log", "ran\\n", { append: true });
    try {
      Deno.statSync("FAIL");
    } catch {
      return "done";
    }
    throw new Error("the API is down");
  },
};
`;

const FLOW = `id: once
nodes:
  - { id: first, type: transform, with: { value: 1 } }
  - { id: effect, type: ../effect.ts, needs: [first] }
`;

const BACKENDS: { name: string; stores: () => string; ignore: boolean }[] = [
  { name: "sqlite", stores: () => "", ignore: false },
  {
    name: "postgres",
    stores: () =>
      `stores:\n  main: { plugin: postgres, url: "${PG_URL}", table: resume_${
        crypto.randomUUID().replaceAll("-", "").slice(0, 12)
      } }\n`,
    ignore: PG_URL === undefined,
  },
];

async function project(stores: string, fn: (run: ProjectCli, dir: string) => Promise<void>) {
  await withCliProject(
    `${stores}flows: [./flows]\nnodes:\n  trusted: [./effect.ts]\n`,
    async (run, dir) => {
      await Deno.mkdir(join(dir, "flows"));
      await Deno.writeTextFile(join(dir, "flows", "once.flow.yaml"), FLOW);
      await Deno.writeTextFile(join(dir, "effect.ts"), EFFECT);
      await fn(run, dir);
    },
  );
}

const effects = async (dir: string) =>
  (await Deno.readTextFile(join(dir, "effect.log")).catch(() => "")).split("\n").filter(Boolean)
    .length;

for (const backend of BACKENDS) {
  Deno.test({
    name: `runs resume (${backend.name}): two processes resuming one run at once start one run; ` +
      "the other is refused naming it; the original resumes again only with --again",
    ignore: backend.ignore,
    async fn() {
      await project(backend.stores(), async (run, dir) => {
        await Deno.writeTextFile(join(dir, "FAIL"), "");
        const first = await run("run", "flows/once.flow.yaml", "--json", "--quiet");
        assert.equal(first.code, 1, first.stderr);
        const failed = JSON.parse(first.stdout).id as string;
        assert.equal(await effects(dir), 1);
        await Deno.remove(join(dir, "FAIL"));

        // Started together: whichever claims the run first resumes it.
        const both = await Promise.all([
          run("runs", "resume", failed, "--json", "--quiet"),
          run("runs", "resume", failed, "--json", "--quiet"),
        ]);
        assert.deepEqual(both.map((r) => r.code).sort(), [0, 1], both.map((r) => r.stderr).join());
        const won = both.find((r) => r.code === 0)!;
        const lost = both.find((r) => r.code === 1)!;
        const resumed = JSON.parse(won.stdout);
        assert.equal(resumed.resumeOf, failed);
        assert.equal(resumed.status, "succeeded");
        assert.equal(await effects(dir), 2, "the failed node ran once more, not twice");
        assert.match(
          lost.stderr,
          new RegExp(
            `^error: Cannot resume run ${failed}: (run ${failed} is already resumed by run ${resumed.id} \\(running\\)|another resume of it is starting its run|run ${failed} was already resumed by run ${resumed.id} \\(succeeded\\))`,
            "m",
          ),
        );
        assert.equal(lost.stdout, "");

        // Later: refused, naming the run that resumed it and its status.
        const later = await run("runs", "resume", failed);
        assert.equal(later.code, 1);
        assert.match(
          later.stderr,
          new RegExp(
            `^error: Cannot resume run ${failed}: run ${failed} was already resumed by run ${resumed.id} \\(succeeded\\); .*--again`,
            "m",
          ),
        );
        assert.match(
          await cliOk(run, "runs", "show", failed),
          new RegExp(
            `^resumed by: run ${resumed.id} \\(flowstate runs show ${resumed.id}\\)$`,
            "m",
          ),
        );
        assert.equal(
          JSON.parse(await cliOk(run, "runs", "show", failed, "--json")).resumedBy,
          resumed.id,
        );
        const runs = JSON.parse(await cliOk(run, "runs", "ls", "--json"));
        assert.equal(runs.length, 2, "a refused resume writes no run");

        // That run failed: resume it instead (it holds the newer outputs), or --again.
        await Deno.writeTextFile(join(dir, "FAIL"), "");
        const again = await run("runs", "resume", failed, "--again", "--json", "--quiet");
        assert.equal(again.code, 1, again.stderr);
        const second = JSON.parse(again.stdout);
        assert.equal(second.status, "failed");
        assert.equal(second.resumeOf, failed);
        assert.equal(await effects(dir), 3);
        const pointer = await run("runs", "resume", failed);
        assert.equal(pointer.code, 1);
        assert.match(
          pointer.stderr,
          new RegExp(
            `^error: Cannot resume run ${failed}: run ${failed} was already resumed by run ${second.id} \\(failed\\); resume ${second.id} instead \\(flowstate runs resume ${second.id}\\)`,
            "m",
          ),
        );
        assert.equal(await effects(dir), 3);
        await Deno.remove(join(dir, "FAIL"));
        const next = JSON.parse(await cliOk(run, "runs", "resume", second.id, "--json"));
        assert.equal(next.resumeOf, second.id);
        assert.equal(await effects(dir), 4);
      });
    },
  });
}

const memory = { stores: { main: { plugin: "memory" as const } } };

Deno.test("resumeRun: a second resume while the first one's run is running is refused (reason resumed, resumedBy), even with again; once it ended, again resumes", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const waiting = Promise.withResolvers<void>();
  await using rt = await openRuntime({
    config: memory,
    nodeTypes: {
      "app.hold": defineNode({
        optionsSchema: {
          "~standard": { version: 1, vendor: "t", validate: (v) => ({ value: v }) },
        },
        async run() {
          waiting.resolve();
          await gate;
          return "held";
        },
      }),
    },
  });
  const flow = (type: string) => ({
    id: "hold",
    nodes: [{ id: "a", type: "transform", with: { value: 1 } }, {
      id: "b",
      type,
      needs: ["a"],
      ...(type === "fail" ? { with: { message: "down" } } : {}),
    }],
  });
  const failed = await rt.runFlow(flow("fail"));
  assert.equal(failed.status, "failed");

  let first: string | undefined;
  const resuming = rt.resumeRun(failed.id, { flow: flow("app.hold"), onStart: (id) => first = id });
  await within(waiting.promise, "the waiting event");
  for (const again of [false, true]) {
    const refused = await rt.resumeRun(failed.id, { flow: flow("app.hold"), again })
      .catch((e) => e);
    assert.ok(refused instanceof ResumeRefusedError, String(refused));
    assert.equal(refused.reason, "resumed");
    assert.equal(refused.resumedBy, first);
    assert.equal(
      refused.message,
      `Cannot resume run ${failed.id}: run ${failed.id} is already resumed by run ${first} ` +
        `(running); resume ${first} if it fails (flowstate runs resume ${first})`,
    );
  }
  release();
  const done = await resuming;
  assert.equal(done.id, first);
  assert.equal(done.status, "succeeded");
  const records = await rt.records();
  assert.equal((await records.resumeMarker(failed.id))?.marker.runId, first);

  const refused = await rt.resumeRun(failed.id, { flow: flow("app.hold") }).catch((e) => e);
  assert.ok(refused instanceof ResumeRefusedError);
  assert.equal(refused.reason, "resumed");
  const again = await rt.resumeRun(failed.id, { flow: flow("app.hold"), again: true });
  assert.equal(again.status, "succeeded");
  assert.equal(again.resumeOf, failed.id);
  assert.equal((await records.resumeMarker(failed.id))?.marker.runId, again.id);
  // Deleting the run deletes its mark.
  await records.deleteRuns([failed.id]);
  assert.equal(await records.resumeMarker(failed.id), null);
});

const HTTP_FLOW = (failing: boolean) =>
  `id: billing
nodes:
  - { id: charge, type: state.increment, with: { key: charged } }
  - id: mail
    type: ${failing ? "fail" : "transform"}
    needs: [charge]
    with: ${failing ? "{ message: smtp down }" : "{ value: mailed }"}
`;

Deno.test("POST /api/runs/{id}/resume: two calls at once start one run, the other is 409 naming it; { again: true } once it ended", async () => {
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ dir, request, runtime }) => {
    const file = join(dir, "flows", "billing.flow.yaml");
    await Deno.writeTextFile(file, HTTP_FLOW(true));
    const failed = await runtime.runFlow(file);
    assert.equal(failed.status, "failed");
    await Deno.writeTextFile(file, HTTP_FLOW(false));
    const post = (body: unknown) =>
      request(`/api/runs/${failed.id}/resume`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const both = await Promise.all([post({}), post({})]);
    assert.deepEqual(both.map((r) => r.status).sort(), [202, 409]);
    const won = both.find((r) => r.status === 202)!;
    const { runId } = await documented<{ runId: string }>("POST", "/api/runs/{id}/resume", won);
    const said = await documented<{ error: { message: string } }>(
      "POST",
      "/api/runs/{id}/resume",
      both.find((r) => r.status === 409)!,
    );
    assert.match(
      said.error.message,
      new RegExp(`already resumed by run ${runId}|another resume of it is starting its run`),
    );
    const records = await runtime.records();
    await eventually(
      "the resumed run ends",
      async () => (await records.getRun(runId))?.status === "succeeded",
    );
    const detail = await documented<{ resumedBy?: string }>(
      "GET",
      "/api/runs/{id}",
      await request(`/api/runs/${failed.id}`),
    );
    assert.equal(detail.resumedBy, runId);
    const later = await post({});
    assert.equal(later.status, 409);
    assert.match(
      (await documented<{ error: { message: string } }>("POST", "/api/runs/{id}/resume", later))
        .error.message,
      new RegExp(`was already resumed by run ${runId} \\(succeeded\\)`),
    );
    const again = await post({ again: true });
    assert.equal(again.status, 202);
    const other = (await again.json()).runId;
    await eventually(
      "the run resumed again ends",
      async () => (await records.getRun(other))?.status === "succeeded",
    );
    assert.equal((await records.getRun(other))?.nodes.charge.reused, failed.id);
  });
});

Deno.test("resumeRun: a resume starting its run renews its claim, which again never takes over; once lapsed (a stalled resume) again takes it, and the stalled one starts no run", async () => {
  const t0 = Date.parse("2026-12-07T12:00:00.000Z");
  let t = t0;
  const renewals = firedTimers(RESUME_RENEW_MS);
  // The resumed node's options are checked before its run starts: the first
  // resume is held there, between its claim and its run.
  let hold = true;
  const preparing = Promise.withResolvers<void>();
  const gate = Promise.withResolvers<void>();
  await using rt = await openRuntime({
    config: memory,
    clock: { now: () => t },
    nodeTypes: {
      "app.prep": defineNode({
        optionsSchema: {
          "~standard": {
            version: 1,
            vendor: "t",
            validate: async (v) => {
              if (hold) {
                hold = false;
                preparing.resolve();
                await gate.promise;
              }
              return { value: v };
            },
          },
        },
        run: () => "ok",
      }),
    },
  });
  const flow = (type: string) => ({
    id: "prep",
    nodes: [{ id: "a", type: "transform", with: { value: 1 } }, {
      id: "b",
      type,
      needs: ["a"],
      with: type === "fail" ? { message: "down" } : {},
    }],
  });
  const failed = await rt.runFlow(flow("fail"));
  const records = await rt.records();
  const runsBefore = (await records.listRuns({ flowId: "prep" })).runs.length;

  let started: string | undefined;
  const stalled = rt.resumeRun(failed.id, {
    flow: flow("app.prep"),
    timers: renewals.timers,
    onStart: (id) => started = id,
  }).catch((e) => e);
  await within(preparing.promise, "the first resume held before its run");
  const claimed = await records.resumeMarker(failed.id);
  assert.equal(claimed?.marker.runId, undefined);
  assert.equal(claimed?.marker.until, t0 + RESUME_CLAIM_MS);
  assert.equal(claimed?.marker.pid, Deno.pid);

  // Renewed at t0 + 25 s: it lasts until t0 + 55 s.
  t = t0 + 25_000;
  (await within(renewals.nth(0), "the first renewal"))();
  await eventually(
    "the claim renewed",
    async () => (await records.resumeMarker(failed.id))?.marker.until === t + RESUME_CLAIM_MS,
  );
  t = t0 + 40_000; // past the first claim's end, within the renewed one
  for (const again of [false, true]) {
    const refused = await rt.resumeRun(failed.id, { flow: flow("app.prep"), again }).catch((e) =>
      e
    );
    assert.ok(refused instanceof ResumeRefusedError, String(refused));
    assert.equal(refused.reason, "resumed");
    assert.equal(
      refused.message,
      `Cannot resume run ${failed.id}: another resume of it is starting its run (process ${Deno.pid} on ${Deno.hostname()}), ` +
        `claimed at 2026-12-07T12:00:00.000Z; wait for that run (flowstate runs ls); if that resume was stopped, ` +
        `its claim lapses at 2026-12-07T12:00:55.000Z and --again may then take the run over`,
    );
  }

  // The first resume stalls past its claim: refused without again, taken over with it.
  t = t0 + 90_000;
  const lapsed = await rt.resumeRun(failed.id, { flow: flow("app.prep") }).catch((e) => e);
  assert.ok(lapsed instanceof ResumeRefusedError, String(lapsed));
  assert.equal(
    lapsed.message,
    `Cannot resume run ${failed.id}: another resume of it (process ${Deno.pid} on ${Deno.hostname()}), ` +
      `claimed at 2026-12-07T12:00:00.000Z, was stopped before its run started; give --again to resume it`,
  );
  const took = await rt.resumeRun(failed.id, { flow: flow("app.prep"), again: true });
  assert.equal(took.status, "succeeded");
  assert.equal((await records.resumeMarker(failed.id))?.marker.runId, took.id);

  // The stalled resume's next renewal finds its claim gone: it starts no run.
  (await within(renewals.nth(1), "the second renewal"))();
  gate.resolve();
  const outcome = await within(stalled, "the stalled resume");
  assert.ok(outcome instanceof ResumeRefusedError, String(outcome));
  assert.match(outcome.message, /was stalled past its claim .* its run was not started/);
  assert.equal(started, undefined);
  assert.equal(
    (await records.listRuns({ flowId: "prep" })).runs.length,
    runsBefore + 1,
    "the takeover's run only",
  );
  assert.equal((await records.resumeMarker(failed.id))?.marker.runId, took.id);
});

Deno.test("resumeRun: a resume stalled past its claim, taken over meanwhile, starts no run even when it goes on before its next renewal", async () => {
  const t0 = Date.parse("2026-12-07T12:00:00.000Z");
  let t = t0;
  const renewals = firedTimers(RESUME_RENEW_MS);
  let hold = true;
  const preparing = Promise.withResolvers<void>();
  const gate = Promise.withResolvers<void>();
  await using rt = await openRuntime({
    config: memory,
    clock: { now: () => t },
    nodeTypes: {
      "app.prep": defineNode({
        optionsSchema: {
          "~standard": {
            version: 1,
            vendor: "t",
            validate: async (v) => {
              if (hold) {
                hold = false;
                preparing.resolve();
                await gate.promise;
              }
              return { value: v };
            },
          },
        },
        run: () => "ok",
      }),
    },
  });
  const flow = (type: string) => ({
    id: "stall",
    nodes: [{ id: "a", type: "transform", with: { value: 1 } }, {
      id: "b",
      type,
      needs: ["a"],
      with: type === "fail" ? { message: "down" } : {},
    }],
  });
  const failed = await rt.runFlow(flow("fail"));
  const records = await rt.records();
  let started: string | undefined;
  const stalled = rt.resumeRun(failed.id, {
    flow: flow("app.prep"),
    timers: renewals.timers,
    onStart: (id) => started = id,
  }).catch((e) => e);
  await within(preparing.promise, "the first resume held before its run");

  // Its process stalls (suspended, a machine asleep) past its claim: another resume takes over.
  t = t0 + RESUME_CLAIM_MS + 1;
  const took = await rt.resumeRun(failed.id, { flow: flow("app.prep"), again: true });
  assert.equal(took.status, "succeeded");

  // It wakes up and goes on loading before its renewal timer fires: still no run of its own.
  gate.resolve();
  const outcome = await within(stalled, "the stalled resume");
  assert.ok(outcome instanceof ResumeRefusedError, String(outcome));
  assert.match(outcome.message, /was stalled past its claim .* its run was not started/);
  assert.equal(started, undefined);
  assert.equal(
    (await records.listRuns({ flowId: "stall" })).runs.length,
    2,
    "the failed run and the takeover's run only",
  );
  assert.equal((await records.resumeMarker(failed.id))?.marker.runId, took.id);
});
