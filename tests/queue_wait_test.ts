/**
 * Why a queued run is not starting, through the public surface: a run a
 * worker set aside because its partition was at its `queue: { concurrency }`
 * limit (`queue.waiting: "slot"`) and one put off by its `queue: { rate }`
 * (`"rate"`), as `flowstate runs show`, `flowstate runs ls` and
 * `GET /api/runs/{id}` tell it; gone once the run is claimed. The claims are
 * the test's own (`Records.claimRun`, no worker): nothing here waits on time.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime } from "../mod.ts";
import type { RunRecord } from "../records.ts";
import { withSandbox } from "./_cli_sandbox.ts";
import { documented, withServed } from "./_serve.ts";

const LIMITED = `id: limited
inputs:
  customer: { type: string }
queue:
  concurrency: 2
  by: "\${{ inputs.customer }}"
nodes:
  - { id: a, type: log, with: { message: "hi \${{ inputs.customer }}" } }
`;

const RATED = `id: rated
queue:
  rate: "1/1h"
nodes:
  - { id: a, type: log, with: { message: hi } }
`;

const LEASE = { worker: "test-worker", leaseMs: 3_600_000 };

Deno.test("runs show and runs ls say a queued run waits for a slot of its partition, or for its rate, until it is claimed", async () => {
  await withSandbox(async ({ dir, home, run }) => {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(join(dir, "flows", "limited.flow.yaml"), LIMITED);
    await Deno.writeTextFile(join(dir, "flows", "rated.flow.yaml"), RATED);
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), "flows: [./flows]\n");
    const open = () => openRuntime({ cwd: dir, home, config: "flowstate.yaml" });
    const acme: string[] = [];
    const rated: string[] = [];
    let claimed: RunRecord[] = [];
    {
      await using rt = await open();
      for (let i = 0; i < 3; i++) {
        acme.push((await rt.enqueue("limited", { input: { customer: "acme" } })).runId);
      }
      for (let i = 0; i < 2; i++) rated.push((await rt.enqueue("rated")).runId);
      const records = await rt.records();
      // Two of acme's take its two slots and rated's one start of the hour; the third of acme
      // is set aside for a slot, the second of rated put off for an hour.
      for (;;) {
        const run = await records.claimRun(LEASE);
        if (run === null) break;
        claimed.push(run);
      }
      assert.deepEqual(claimed.map((r) => r.id).sort(), [acme[0], acme[1], rated[0]].sort());
      assert.equal((await records.getRun(acme[2]))?.queue?.waiting, "slot");
      assert.equal((await records.getRun(rated[1]))?.queue?.waiting, "rate");
    }
    const parked = await run("runs", "show", acme[2]);
    assert.equal(parked.code, 0, parked.stderr);
    assert.match(parked.stdout, /^status: {3}queued$/m);
    assert.match(
      parked.stdout,
      /^queue: {4}run at .*, priority 0, next attempt 1 of 1, waiting for a slot \(concurrency 2 reached, partition "acme"\)$/m,
    );
    const running = await run("runs", "show", acme[0]);
    assert.doesNotMatch(running.stdout, /waiting for/);

    const ls = await run("runs", "ls");
    assert.equal(ls.code, 0, ls.stderr);
    const row = (id: string) => ls.stdout.split("\n").find((line) => line.startsWith(id)) ?? "";
    assert.match(row(acme[2]), /^\S+ +limited +queued \(slot\) +- /);
    assert.match(row(rated[1]), /^\S+ +rated +queued \(rate\) +- /);
    assert.match(row(acme[0]), /^\S+ +limited +running /);
    assert.match(
      ls.stderr,
      /^queued \(slot\): its partition is at its flow's `queue: \{ concurrency \}` limit/m,
    );
    assert.match(
      ls.stderr,
      /^queued \(rate\): its partition's `queue: \{ rate \}` window is full/m,
    );

    // One of acme's ends: the run set aside takes the slot, and waits for nothing any more.
    {
      await using rt = await open();
      const records = await rt.records();
      const first = claimed.find((r) => r.id === acme[0])!;
      assert.ok(await records.finishClaimedRun({ ...first, status: "succeeded", outputs: {} }));
      claimed = [];
      assert.equal((await records.claimRun(LEASE))?.id, acme[2]);
    }
    const started = await run("runs", "show", acme[2]);
    assert.match(started.stdout, /^status: {3}running$/m);
    assert.doesNotMatch(started.stdout, /waiting for/);
    const after = await run("runs", "ls", "--status", "queued");
    assert.equal(after.code, 0, after.stderr);
    assert.doesNotMatch(after.stdout, new RegExp(acme[2]));
    assert.doesNotMatch(after.stderr, /queued \(slot\)/);
    assert.match(after.stdout, /queued \(rate\)/, "rated's second run still waits for its hour");
  });
});

Deno.test('GET /api/runs/{id}: a queued run set aside for a slot of its partition has queue.waiting "slot" until it is claimed', async () => {
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ runtime, request }) => {
    const records = await runtime.records();
    const { runId: any } = await runtime.enqueue("hello");
    const { flowVersion, queue } = (await records.getRun(any))!;
    assert.equal((await records.claimRun(LEASE))?.id, any); // out of the way
    const limit = { concurrency: 2, partition: "acme" };
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const init = { flowId: "hello", flowVersion, inputs: {}, flowPath: queue!.flowPath, limit };
      ids.push((await records.enqueueRun(init)).runId);
    }
    const first = await records.claimRun(LEASE);
    assert.equal(first?.id, ids[0]);
    assert.equal((await records.claimRun(LEASE))?.id, ids[1]);
    assert.equal(await records.claimRun(LEASE), null, "acme is at its limit");

    type Detail = { run: RunRecord };
    const get = async (id: string) =>
      (await documented<Detail>("GET", "/api/runs/{id}", await request(`/api/runs/${id}`))).run;
    const waiting = await get(ids[2]);
    assert.equal(waiting.status, "queued");
    assert.equal(waiting.queue?.waiting, "slot");
    assert.deepEqual(waiting.queue?.limit, limit);
    assert.equal((await get(ids[0])).queue?.waiting, undefined);

    assert.ok(await records.finishClaimedRun({ ...first!, status: "succeeded", outputs: {} }));
    assert.equal((await records.claimRun(LEASE))?.id, ids[2]);
    const started = await get(ids[2]);
    assert.equal(started.status, "running");
    assert.equal(started.queue?.waiting, undefined);
  }, { worker: false });
});

Deno.test("OpenAPI: a run's queue.waiting is documented, with both reasons", async () => {
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ request }) => {
    const doc = await (await request("/api/openapi.json")).json();
    const text = JSON.stringify(doc);
    assert.match(text, /"waiting":\{[^}]*"enum":\["rate","slot"\]/);
  }, { worker: false });
});
