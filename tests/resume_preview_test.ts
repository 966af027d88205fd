/**
 * Previewing a resume (`Runtime.previewResume`, `flowstate runs resume
 * --dry-run`, `GET /api/runs/{id}/resume`): each node reused or run again,
 * with the reason; exactly what the resume then does; refused as the resume
 * would be; nothing run or written.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  NotFoundError,
  openRuntime,
  ResumeRefusedError,
  type RunRecord,
  type Runtime,
} from "../mod.ts";
import { APPEND, failedRun, lines, project } from "./_resume_fixture.ts";
import { documented, eventually, withServed } from "./_serve.ts";

const memory = { stores: { main: { plugin: "memory" as const } } };

/** Six nodes, one per way a node is decided; `b`'s `with:` is `bWith`. */
const SIX = (bWith: string) => ({
  id: "six",
  nodes: [
    { id: "a", type: "state.increment", with: { key: "a" } },
    { id: "b", type: "transform", needs: ["a"], with: { value: bWith } },
    { id: "c", type: "fail", needs: ["b"], with: { message: "down" } },
    { id: "d", type: "log", needs: ["c"], with: { message: "after c" } },
    { id: "e", type: "log", if: "${{ false }}", with: { message: "never" } },
    { id: "f", type: "transform", needs: ["a"], with: { value: "${{ nodes.a.output }}" } },
    { id: "g", type: "transform", needs: ["b"], with: { value: "after b" } },
    { id: "h", type: "log", when: "always", with: { message: "cleanup" } },
  ],
});

/** What is in the records store that a preview could have written: runs, versions, resume marks. */
async function written(rt: Runtime, runId: string) {
  const records = await rt.records();
  const runs = (await records.listRuns({ limit: 1000 })).runs.map((r) => `${r.id} ${r.status}`);
  const versions = (await records.listVersions("six")).map((v) => v.hash);
  return { runs, versions, mark: await records.resumeMarker(runId) };
}

Deno.test("previewResume: each node reused or run again with its reason, exactly what resumeRun then does; nothing run or written", async () => {
  await using rt = await openRuntime({ config: memory });
  const failed = await rt.runFlow(SIX("one"));
  assert.equal(failed.status, "failed");
  const before = await written(rt, failed.id);

  // b's definition changed since the run: it runs again, and so does what needs it.
  const preview = await rt.previewResume(failed.id, { flow: SIX("two") });
  assert.equal(preview.runId, failed.id);
  assert.equal(preview.flowId, "six");
  assert.equal(preview.sameVersion, false);
  assert.deepEqual(
    preview.nodes.map((n) => [n.node, n.reused, n.reason, n.status ?? null, n.need ?? null]),
    [
      ["a", true, "succeeded", "succeeded", null],
      ["b", false, "definition", "succeeded", null],
      ["c", false, "status", "failed", null],
      ["d", false, "status", "skipped", null],
      ["e", false, "status", "skipped", null],
      ["f", true, "succeeded", "succeeded", null],
      ["g", false, "needs", "succeeded", "b"],
      ["h", false, "handler", "succeeded", null],
    ],
  );
  const said = Object.fromEntries(preview.nodes.map((n) => [n.node, n.message]));
  assert.equal(said.b, `its definition changed since run ${failed.id}`);
  assert.equal(said.c, `failed in run ${failed.id}`);
  assert.equal(said.d, `skipped in run ${failed.id}`);
  assert.equal(said.e, `skipped in run ${failed.id}: its if: is evaluated again`);
  assert.equal(said.g, "needs b, which runs again");
  assert.deepEqual(await written(rt, failed.id), before, "the preview wrote nothing");
  const store = await rt.store();
  assert.equal((await store.get(["flow", "six", "a"]))?.value, 1, "a was not run");

  // The resume does what the preview said.
  const resumed = await rt.resumeRun(failed.id, { flow: SIX("two") });
  const reused = (run: RunRecord) =>
    Object.entries(run.nodes).filter(([, n]) => n.reused !== undefined).map(([id]) => id).sort();
  assert.deepEqual(reused(resumed), preview.nodes.filter((n) => n.reused).map((n) => n.node));

  // With from (the same version): that node and what needs it run again, the rest is reused.
  const fromB = await rt.previewResume(resumed.id, { flow: SIX("two"), from: "b" });
  assert.equal(fromB.from, "b");
  assert.equal(fromB.sameVersion, true);
  assert.deepEqual(
    fromB.nodes.map((n) => [n.node, n.reused, n.reason]),
    [
      ["a", true, "succeeded"],
      ["b", false, "from"],
      ["c", false, "status"],
      ["d", false, "status"],
      ["e", false, "status"],
      ["f", true, "succeeded"],
      ["g", false, "needs"],
      ["h", false, "handler"],
    ],
  );
});

Deno.test("previewResume: refused exactly as resumeRun is (already resumed, unknown run, from naming no node, a bad option), and again lifts what it lifts", async () => {
  await using rt = await openRuntime({ config: memory });
  const failed = await rt.runFlow(SIX("one"));
  const resumed = await rt.resumeRun(failed.id, { flow: SIX("one") });
  assert.equal(resumed.status, "failed");

  const refusal = async (p: Promise<unknown>) => {
    const err = await p.then(() => assert.fail("not refused"), (e) => e);
    return err;
  };
  const byPreview = await refusal(rt.previewResume(failed.id, { flow: SIX("one") }));
  const byResume = await refusal(rt.resumeRun(failed.id, { flow: SIX("one") }));
  assert.ok(byPreview instanceof ResumeRefusedError);
  assert.equal(byPreview.reason, "resumed");
  assert.equal(byPreview.resumedBy, resumed.id);
  assert.equal(byPreview.message, byResume.message);
  // The resume that resumed it ended: again previews (and nothing is claimed by it).
  const again = await rt.previewResume(failed.id, { flow: SIX("one"), again: true });
  assert.equal(again.nodes.find((n) => n.node === "a")?.reused, true);
  assert.equal((await (await rt.records()).resumeMarker(failed.id))?.marker.runId, resumed.id);

  const from = await refusal(rt.previewResume(resumed.id, { flow: SIX("one"), from: "bb" }));
  assert.ok(from instanceof ResumeRefusedError);
  assert.equal(from.reason, "from");
  assert.match(from.message, /has no such node \(did you mean "b"\?\)/);
  const unknown = await refusal(rt.previewResume("0000000000cccccccccc"));
  assert.ok(unknown instanceof NotFoundError);
  const succeeded = await refusal(
    rt.previewResume(
      (await rt.runFlow({ id: "ok", nodes: [{ id: "x", type: "log", with: { message: "hi" } }] }))
        .id,
    ),
  );
  assert.equal(succeeded.reason, "succeeded");
  const option = await refusal(
    rt.previewResume(resumed.id, { flow: SIX("one"), form: "b" } as never),
  );
  assert.match(option.message, /form/);
});

Deno.test("runs resume --dry-run: a line per node and why, --json the preview; a module edited since is said; refusals exit as the resume's; nothing run or written", async () => {
  await project(async (run, dir) => {
    const failed = await failedRun(run, dir);
    const listed = (await run("runs", "ls", "--json")).stdout;

    const dry = await run("runs", "resume", failed, "--dry-run");
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(
      dry.stdout,
      `Resuming run ${failed} (flow "pipeline") would:\n` +
        `  reuse  fetch   succeeded in run ${failed}: its recorded output is taken\n` +
        `  run    load    failed in run ${failed}\n` +
        `  run    report  skipped in run ${failed}\n` +
        "1 node reused, 2 run again. Nothing was run or written (--dry-run).\n",
    );
    assert.deepEqual(await lines(join(dir, "fetch.log")), ["fetched for ada"], "fetch not run");
    assert.equal((await run("runs", "ls", "--json")).stdout, listed, "no run recorded");

    // The module fetch runs was edited since: it runs again (the fix may be there).
    await Deno.writeTextFile(join(dir, "append.ts"), APPEND + "// fixed\n");
    const json = await run("runs", "resume", failed, "--dry-run", "--json", "--from", "load");
    assert.equal(json.code, 0, json.stderr);
    const preview = JSON.parse(json.stdout);
    assert.equal(preview.from, "load");
    assert.deepEqual(
      preview.nodes.map((n: { node: string; reason: string }) => [n.node, n.reason]),
      [["fetch", "code"], ["load", "from"], ["report", "status"]],
    );
    assert.match(preview.nodes[0].message, /was modified after run \w+ started/);

    const typo = await run("runs", "resume", failed, "--dry-run", "--from", "laod");
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /has no such node \(did you mean "load"\?\)/);
    const unknown = await run("runs", "resume", "0000000000cccccccccc", "--dry-run");
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no such run/);

    // After a real resume, the dry run is refused as a second resume would be.
    const resumed = await run("runs", "resume", failed, "--json", "--quiet");
    assert.equal(resumed.code, 0, resumed.stderr);
    const by = JSON.parse(resumed.stdout).id;
    const refused = await run("runs", "resume", failed, "--dry-run");
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, new RegExp(`already resumed by run ${by} \\(succeeded\\)`));
    const again = await run("runs", "resume", failed, "--dry-run", "--again");
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^Resuming run \w+ \(flow "pipeline"\) would:$/m);
  });
});

const HTTP_FLOW = (failing: boolean) =>
  `id: billing
nodes:
  - { id: charge, type: state.increment, with: { key: charged } }
  - { id: mail, type: ${failing ? "fail" : "log"}, needs: [charge], with: { message: smtp } }
`;

Deno.test("GET /api/runs/{id}/resume: 200 with each node and why; 409 once resumed (200 with again=true); 400 and 404 as the POST's", async () => {
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ dir, request, runtime }) => {
    const file = join(dir, "flows", "billing.flow.yaml");
    await Deno.writeTextFile(file, HTTP_FLOW(true));
    const failed = await runtime.runFlow(file);
    assert.equal(failed.status, "failed");

    const get = (id: string, query = "") => request(`/api/runs/${id}/resume${query}`);
    const preview = await documented<{ nodes: { node: string; reused: boolean }[] }>(
      "GET",
      "/api/runs/{id}/resume",
      await get(failed.id),
    );
    assert.deepEqual(preview.nodes.map((n) => [n.node, n.reused]), [
      ["charge", true],
      ["mail", false],
    ]);
    const records = await runtime.records();
    assert.equal(await records.resumeMarker(failed.id), null, "nothing claimed");

    const post = await request(`/api/runs/${failed.id}/resume`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    assert.equal(post.status, 202);
    const { runId } = await post.json();
    await eventually("the resumed run ends", async () => {
      const status = (await records.getRun(runId))?.status;
      return status !== undefined && status !== "running";
    });
    const refused = await get(failed.id);
    assert.equal(refused.status, 409);
    const said = await documented<{ error: { message: string } }>(
      "GET",
      "/api/runs/{id}/resume",
      refused,
    );
    assert.match(said.error.message, new RegExp(`already resumed by run ${runId}`));
    assert.equal((await get(failed.id, "?again=true")).status, 200);

    for (const [query, status] of [["?again=yes", 400], ["?from=", 400], ["?from=mial", 400]]) {
      const answer = await get(runId, query as string);
      assert.equal(answer.status, status, query as string);
      await documented("GET", "/api/runs/{id}/resume", answer);
    }
    const unknown = await get("0000000000cccccccccc");
    assert.equal(unknown.status, 404);
    await unknown.body?.cancel();
  });
});

Deno.test("previewResume takes env as resume does: a flow's env: and secrets are read from it, not only from the process", async () => {
  await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  const name = "FLOWSTATE_PREVIEW_ENV_TEST";
  assert.equal(Deno.env.get(name), undefined);
  const flow = {
    id: "envy",
    env: [name],
    nodes: [
      { id: "a", type: "transform", with: { value: `\${{ env.${name} }}` } },
      { id: "b", type: "log", needs: ["a"], with: { message: "${{ nodes.a.output }}" } },
    ],
  };
  const env = { [name]: "hello" };
  const run = await rt.runFlow(flow, { env });
  assert.equal(run.status, "succeeded");
  const preview = await rt.previewResume(run.id, { flow, from: "a", env });
  assert.deepEqual(preview.nodes.map((n) => n.node), ["a", "b"]);
  // What the resume itself does with the same options: the preview said it would run.
  const resumed = await rt.resumeRun(run.id, { flow, from: "a", env });
  assert.equal(resumed.status, "succeeded");
  // Without it, refused as the resume is (the variable is not in the process's environment).
  await assert.rejects(
    () => rt.previewResume(run.id, { flow, from: "a", again: true }),
    new RegExp(`env ${name} is listed in env: but not set`),
  );
  await assert.rejects(
    () => rt.previewResume(run.id, { flow, from: "a", env: { [name]: 1 } as never }),
    /option env must be an object of strings by name/,
  );
});
