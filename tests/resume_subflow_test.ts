/**
 * Resuming a run whose sub-flow failed resumes the sub-run too: the nodes
 * that succeeded inside the sub-flow (a charge) are reused, not run again,
 * when the node calls the same sub-flow with the same inputs. Through
 * `mod.ts` (`runFlow`, `previewResume`, `resumeRun`) and the CLI (`runs show`,
 * `runs resume [--dry-run]`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliOk } from "./_cli_sandbox.ts";
import { lines, project } from "./_resume_fixture.ts";
import { defineNode, openRuntime } from "../mod.ts";

const memory = { stores: { main: { plugin: "memory" as const } } };
const anyOptions = {
  "~standard": { version: 1 as const, vendor: "t", validate: (v: unknown) => ({ value: v }) },
};

/** A runtime whose `app.charge` counts its charges and `app.mail` fails while `down.value`. */
async function billingRuntime() {
  const counts = { charges: 0 };
  const down = { value: true };
  const rt = await openRuntime({
    config: memory,
    nodeTypes: {
      "app.charge": defineNode({ optionsSchema: anyOptions, run: () => ++counts.charges }),
      "app.mail": defineNode({
        optionsSchema: anyOptions,
        run: () => {
          if (down.value) throw new Error("smtp down");
          return "mailed";
        },
      }),
    },
  });
  return { rt, counts, down };
}

const billing = {
  id: "billing",
  inputs: { customer: { type: "string" } },
  nodes: [
    { id: "charge", type: "app.charge", with: {} },
    { id: "mail", type: "app.mail", needs: ["charge"], with: {} },
  ],
};

const order = (customer: string) => ({
  id: "order",
  nodes: [
    { id: "prep", type: "transform", with: { value: customer } },
    {
      id: "bill",
      type: "flow",
      needs: ["prep"],
      with: { flow: billing, input: { customer: "${{ nodes.prep.output }}" } },
    },
    { id: "done", type: "transform", needs: ["bill"], with: { value: 1 } },
  ],
});

Deno.test("resumeRun: a failed flow node's sub-run is resumed: its nodes that succeeded (a charge) are reused, not run again", async () => {
  const { rt, counts, down } = await billingRuntime();
  await using _rt = rt;
  const failed = await rt.runFlow(order("ada"));
  assert.equal(failed.status, "failed");
  assert.equal(counts.charges, 1);
  const [sub] = failed.nodes.bill.subRuns!;
  assert.equal(typeof sub, "string");
  const records = await rt.records();
  const subRun = (await records.getRun(sub!))!;
  assert.equal(subRun.parentRunId, failed.id);
  assert.equal(subRun.status, "failed");

  // The preview says so.
  const preview = await rt.previewResume(failed.id, { flow: order("ada") });
  const bill = preview.nodes.find((n) => n.node === "bill")!;
  assert.equal(bill.reused, false);
  assert.deepEqual(bill.subRuns, [sub]);
  assert.equal(
    bill.message,
    `failed in run ${failed.id}; its sub-run ${sub} is resumed (the nodes that succeeded there ` +
      "are reused) if called with the same inputs",
  );

  down.value = false;
  const resumed = await rt.resumeRun(failed.id, { flow: order("ada") });
  assert.equal(resumed.status, "succeeded", JSON.stringify(resumed.error));
  assert.equal(counts.charges, 1, "the sub-flow's charge was not made again");
  const [again] = resumed.nodes.bill.subRuns!;
  const againRun = (await records.getRun(again!))!;
  assert.equal(againRun.resumeOf, sub);
  assert.equal(againRun.parentRunId, resumed.id);
  assert.equal(againRun.nodes.charge.reused, sub);
  assert.equal(againRun.nodes.charge.output, 1);
  assert.equal(againRun.nodes.mail.output, "mailed");
  assert.equal(resumed.nodes.prep.reused, failed.id);
});

Deno.test("resumeRun: a flow node's sub-run starts anew when its inputs changed, when the node is the --from node, or when the sub-flow is another", async () => {
  const { rt, counts, down } = await billingRuntime();
  await using _rt = rt;

  // Other inputs (the node before it gives another customer): a new sub-run, a new charge.
  const first = await rt.runFlow(order("ada"));
  assert.equal(counts.charges, 1);
  const other = await rt.resumeRun(first.id, { flow: order("bob") });
  assert.equal(other.status, "failed");
  assert.equal(counts.charges, 2, "bob is charged: his sub-run is not ada's");
  const records = await rt.records();
  const otherSub = (await records.getRun(other.nodes.bill.subRuns![0]!))!;
  assert.equal(otherSub.resumeOf, undefined);
  assert.equal(otherSub.inputs.customer, "bob");

  // --from the flow node: it runs again whole.
  const fromBill = await rt.resumeRun(other.id, { flow: order("bob"), from: "bill" });
  assert.equal(fromBill.status, "failed");
  assert.equal(counts.charges, 3);
  const preview = await rt.previewResume(fromBill.id, { flow: order("bob"), from: "bill" });
  assert.equal(preview.nodes.find((n) => n.node === "bill")!.subRuns, undefined);

  // Another sub-flow (another id): a new sub-run.
  const renamed = {
    ...order("bob"),
    nodes: order("bob").nodes.map((n) =>
      n.id === "bill" ? { ...n, with: { ...n.with, flow: { ...billing, id: "billing2" } } } : n
    ),
  };
  down.value = false;
  const elsewhere = await rt.resumeRun(fromBill.id, { flow: renamed });
  assert.equal(elsewhere.status, "succeeded");
  assert.equal(counts.charges, 4);
  const elsewhereSub = (await records.getRun(elsewhere.nodes.bill.subRuns![0]!))!;
  assert.equal(elsewhereSub.flowId, "billing2");
  assert.equal(elsewhereSub.resumeOf, undefined);
});

Deno.test("resumeRun: a sub-flow inside a sub-flow is resumed at every level", async () => {
  const { rt, counts, down } = await billingRuntime();
  await using _rt = rt;
  const middle = {
    id: "middle",
    inputs: { customer: { type: "string" } },
    nodes: [{
      id: "inner",
      type: "flow",
      with: { flow: billing, input: { customer: "ada" } },
    }],
  };
  const outer = {
    id: "outer",
    nodes: [{ id: "call", type: "flow", with: { flow: middle, input: { customer: "ada" } } }],
  };
  const failed = await rt.runFlow(outer);
  assert.equal(failed.status, "failed");
  assert.equal(counts.charges, 1);
  down.value = false;
  const resumed = await rt.resumeRun(failed.id, { flow: outer });
  assert.equal(resumed.status, "succeeded");
  assert.equal(counts.charges, 1, "the innermost charge was reused");
  const records = await rt.records();
  const mid = (await records.getRun(resumed.nodes.call.subRuns![0]!))!;
  const inner = (await records.getRun(mid.nodes.inner.subRuns![0]!))!;
  assert.equal(inner.nodes.charge.reused, inner.resumeOf);
  assert.equal(inner.nodes.mail.output, "mailed");
});

Deno.test("cli: runs show lists a flow node's sub-run; runs resume --dry-run says it is resumed; the resume does not repeat the sub-flow's first node", async () => {
  await project(async (run, dir) => {
    await Deno.writeTextFile(
      join(dir, "flows", "order.flow.yaml"),
      `id: order
nodes:
  - id: sync
    type: flow
    with: { flow: ./pipeline.flow.yaml, input: { who: ada } }
`,
    );
    await Deno.writeTextFile(join(dir, "FAIL"), "");
    const first = await run("run", "flows/order.flow.yaml", "--json");
    assert.equal(first.code, 1, first.stderr);
    const failed = JSON.parse(first.stdout);
    const [sub] = failed.nodes.sync.subRuns;
    assert.deepEqual(await lines(join(dir, "fetch.log")), ["fetched for ada"]);

    const shown = await cliOk(run, "runs", "show", failed.id);
    assert.match(shown, new RegExp(`^ {4}sub-run: ${sub}$`, "m"));
    const plan = await cliOk(run, "runs", "resume", failed.id, "--dry-run");
    assert.match(
      plan,
      new RegExp(
        `sync.*failed in run ${failed.id}; its sub-run ${sub} is resumed \\(the nodes that succeeded there are reused\\) if called with the same inputs`,
      ),
    );

    await Deno.remove(join(dir, "FAIL"));
    const resumed = await run("runs", "resume", failed.id, "--json");
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.deepEqual(await lines(join(dir, "fetch.log")), ["fetched for ada"], "fetched once");
    assert.deepEqual(await lines(join(dir, "report.log")), ["loaded 1 from 1"]);
    const record = JSON.parse(resumed.stdout);
    const again = JSON.parse(
      await cliOk(run, "runs", "show", record.nodes.sync.subRuns[0], "--json"),
    );
    assert.equal(again.run.resumeOf, sub);
    assert.equal(again.run.nodes.fetch.reused, sub);
  });
});

Deno.test("resumeRun: a flow node that succeeded is reused with the sub-run it started (its outcome still names it)", async () => {
  await using rt = await openRuntime({ config: memory });
  const greet = { id: "greet", nodes: [{ id: "hi", type: "transform", with: { value: "hi" } }] };
  const flow = (failing: boolean) => ({
    id: "twice",
    nodes: [
      { id: "call", type: "flow", with: { flow: greet } },
      failing
        ? { id: "after", type: "fail", needs: ["call"], with: { message: "down" } }
        : { id: "after", type: "transform", needs: ["call"], with: { value: 1 } },
    ],
  });
  const failed = await rt.runFlow(flow(true));
  const [sub] = failed.nodes.call.subRuns!;
  const resumed = await rt.resumeRun(failed.id, { flow: flow(false) });
  assert.equal(resumed.status, "succeeded");
  assert.equal(resumed.nodes.call.reused, failed.id);
  assert.deepEqual(resumed.nodes.call.subRuns, [sub]);
});

Deno.test("resumeRun: a custom node that failed after its ctx.runFlow succeeded resumes that sub-run (its charge reused, as the preview says), not a new one", async () => {
  const counts = { charges: 0 };
  const broken = { value: true };
  await using rt = await openRuntime({
    config: memory,
    nodeTypes: {
      "app.charge": defineNode({ optionsSchema: anyOptions, run: () => ++counts.charges }),
      "app.mail": defineNode({ optionsSchema: anyOptions, run: () => "mailed" }),
      // Bills, then fails on its own (a receipt it cannot write, a bug fixed since).
      "app.checkout": defineNode({
        optionsSchema: anyOptions,
        run: async (ctx) => {
          const billed = await ctx.runFlow(billing, { customer: "ada" });
          if (broken.value) throw new Error(`receipt failed after the sub-run ${billed.status}`);
          return billed.status;
        },
      }),
    },
  });
  const flow = { id: "checkout", nodes: [{ id: "pay", type: "app.checkout", with: {} }] };
  const failed = await rt.runFlow(flow);
  assert.equal(failed.status, "failed");
  assert.equal(counts.charges, 1);
  const [sub] = failed.nodes.pay.subRuns!;
  const preview = await rt.previewResume(failed.id, { flow });
  assert.deepEqual(preview.nodes.find((n) => n.node === "pay")!.subRuns, [sub]);

  broken.value = false;
  const resumed = await rt.resumeRun(failed.id, { flow });
  assert.equal(resumed.status, "succeeded", resumed.error?.message);
  assert.equal(counts.charges, 1, "charged once: the sub-run's charge is reused");
  const again = (await (await rt.records()).getRun(resumed.nodes.pay.subRuns![0]!))!;
  assert.equal(again.resumeOf, sub);
  assert.equal(again.nodes.charge.reused, sub);
});

Deno.test("resumeRun: a sub-run given a secret's value as input (recorded ***) is resumed when called with the same inputs (its charge reused), not started anew", async () => {
  const { rt, counts, down } = await billingRuntime();
  await using _rt = rt;
  const env = { TOKEN: "s3cret-token-value" };
  const flow = {
    id: "secret_order",
    secrets: ["TOKEN"],
    nodes: [
      {
        id: "bill",
        type: "flow",
        with: { flow: billing, input: { customer: "ada:${{ secrets.TOKEN }}" } },
      },
    ],
  };
  const failed = await rt.runFlow(flow, { env });
  assert.equal(failed.status, "failed");
  assert.equal(counts.charges, 1);
  const [sub] = failed.nodes.bill.subRuns!;
  const records = await rt.records();
  const subRun = (await records.getRun(sub!))!;
  assert.deepEqual(subRun.inputs, { customer: "ada:***" });
  assert.equal(subRun.inputsMasked, true);

  down.value = false;
  const resumed = await rt.resumeRun(failed.id, { flow, env });
  assert.equal(resumed.status, "succeeded", resumed.error?.message);
  assert.equal(counts.charges, 1, "charged once: the sub-run's charge is reused");
  const again = (await records.getRun(resumed.nodes.bill.subRuns![0]!))!;
  assert.equal(again.resumeOf, sub);
  assert.equal(again.nodes.charge.reused, sub);
  assert.deepEqual(again.inputs, { customer: "ada:***" });
});
