/**
 * `forEach:` through the library (`openRuntime().runFlow`): a node runs once
 * per element of a list, its templates reading `item` and `index`; its output
 * is the items' outputs in their order; items run one at a time unless
 * `concurrency` says otherwise (and never more than the flow's); the first
 * item that fails stops the others (with `continueOnError`, every item runs
 * and a failed one's output is `null`); `retry` and `timeout` apply to each
 * item's attempts; cancelling the run stops the items; the record and the
 * events say how many items ran and which failed; a sub-flow and a queue node
 * run per item too. Interleaving is controlled
 * with gates (promises the test resolves), never with time.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { z } from "zod";
import {
  defineNode,
  type FlowDefinition,
  FlowValidationError,
  openRuntime,
  type RunEvent,
  type Runtime,
} from "../mod.ts";
import { MAX_FOR_EACH_ITEMS } from "../src/flow/executor.ts";
import { withSandbox } from "./_cli_sandbox.ts";
import { firedTimers } from "./_fired_timers.ts";

/** A promise with its resolve. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => resolve = r);
  return { promise, resolve };
}

/**
 * Items that wait for the test: `started(n)` resolves once item `n` began,
 * `release(n, fail?)` lets it return `n * 10` (or throw); an attempt whose
 * signal aborts ends at once and is noted in `aborted`. `log` holds
 * `start n` and `end n` in the order they happened; `running` the most
 * items that ran at once.
 */
class Gates {
  log: string[] = [];
  aborted: number[] = [];
  running = 0;
  most = 0;
  #started = new Map<number, ReturnType<typeof deferred<void>>>();
  #released = new Map<number, ReturnType<typeof deferred<boolean>>>();

  #of<T>(map: Map<number, T>, n: number, make: () => T): T {
    let d = map.get(n);
    if (d === undefined) map.set(n, d = make());
    return d;
  }

  started(n: number): Promise<void> {
    return this.#of(this.#started, n, () => deferred<void>()).promise;
  }

  release(n: number, fail = false): void {
    this.#of(this.#released, n, () => deferred<boolean>()).resolve(fail);
  }

  /** The node type: waits for its gate, `auto` releasing every item at once. */
  node(auto = false) {
    return defineNode({
      description: "waits for the test",
      optionsSchema: z.strictObject({ n: z.number() }),
      run: async (ctx, { n }) => {
        this.log.push(`start ${n}`);
        this.most = Math.max(this.most, ++this.running);
        this.#of(this.#started, n, () => deferred<void>()).resolve();
        if (auto) this.release(n);
        try {
          const gate = this.#of(this.#released, n, () => deferred<boolean>()).promise;
          const stopped = new Promise<never>((_, reject) => {
            if (ctx.signal.aborted) reject(ctx.signal.reason);
            ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason));
          });
          const fail = await Promise.race([gate, stopped]).catch((err) => {
            this.aborted.push(n);
            throw err;
          });
          if (fail) throw new Error(`item ${n} broke`);
          return n * 10;
        } finally {
          this.running--;
          this.log.push(`end ${n}`);
        }
      },
    });
  }
}

/** `fn` with a runtime on a memory store whose program defines `test.gate` (`gates`). */
async function withRuntime(
  gates: Gates,
  fn: (rt: Runtime, dir: string) => Promise<void>,
  auto = false,
): Promise<void> {
  await withSandbox(async ({ dir, home }) => {
    await using rt = await openRuntime({
      cwd: dir,
      home,
      config: { stores: { main: { plugin: "memory" } } },
      nodeTypes: { "test.gate": gates.node(auto) },
    });
    await fn(rt, dir);
  });
}

/** A flow of one `test.gate` node `each` over `forEach`, plus `extra` fields on it. */
function gateFlow(forEach: unknown, extra: Record<string, unknown> = {}): FlowDefinition {
  return {
    id: "each",
    nodes: [{
      id: "each",
      type: "test.gate",
      forEach: forEach as FlowDefinition["nodes"][0]["forEach"],
      with: { n: "${{ item }}" },
      ...extra,
    }],
  };
}

Deno.test("forEach runs the items one after the other by default; the output is theirs in order", async () => {
  const gates = new Gates();
  await withRuntime(gates, async (rt) => {
    const events: RunEvent[] = [];
    const run = await rt.runFlow(gateFlow([0, 1, 2]), { onEvent: (e) => events.push(e) });
    assert.equal(run.status, "succeeded");
    // Released as soon as they start: items run in parallel would interleave their starts.
    assert.deepEqual(gates.log, ["start 0", "end 0", "start 1", "end 1", "start 2", "end 2"]);
    assert.deepEqual(run.nodes.each, {
      status: "succeeded",
      attempts: 3,
      output: [0, 10, 20],
      items: { count: 3, succeeded: 3, failed: 0 },
    });
    const start = events.find((e) => e.type === "node.start");
    assert.deepEqual(start && { ...start, at: 0 }, {
      at: 0,
      type: "node.start",
      node: "each",
      items: 3,
    });
    const attempts = events.filter((e) => e.type === "node.attempt");
    assert.deepEqual(attempts.map((e) => e.type === "node.attempt" && e.item), [0, 1, 2]);
    const end = events.find((e) => e.type === "node.end");
    assert.deepEqual(end?.type === "node.end" && end.items, {
      count: 3,
      succeeded: 3,
      failed: 0,
    });
    // As stored.
    const records = await rt.records();
    assert.deepEqual((await records.getRun(run.id))?.nodes.each, run.nodes.each);
  }, true);
});

Deno.test("forEach with concurrency runs that many at once; the output keeps the items' order", async () => {
  const gates = new Gates();
  await withRuntime(gates, async (rt) => {
    const running = rt.runFlow(gateFlow({ items: [0, 1, 2, 3], concurrency: 2 }));
    await gates.started(0);
    await gates.started(1);
    assert.deepEqual(gates.log, ["start 0", "start 1"]);
    gates.release(1);
    await gates.started(2);
    gates.release(2);
    await gates.started(3);
    gates.release(3);
    gates.release(0); // the first item ends last
    const run = await running;
    assert.equal(run.status, "succeeded");
    assert.equal(gates.most, 2);
    assert.deepEqual(run.nodes.each.output, [0, 10, 20, 30]);
  });
});

Deno.test("forEach stays within the flow's concurrency", async () => {
  const gates = new Gates();
  await withRuntime(gates, async (rt) => {
    const flow = { ...gateFlow({ items: [0, 1, 2], concurrency: 8 }), concurrency: 1 };
    const run = await rt.runFlow(flow);
    assert.equal(run.status, "succeeded");
    assert.equal(gates.most, 1);
    assert.deepEqual(gates.log, ["start 0", "end 0", "start 1", "end 1", "start 2", "end 2"]);
  }, true);
});

Deno.test("the first item that fails stops the running ones and starts no other", async () => {
  const gates = new Gates();
  await withRuntime(gates, async (rt) => {
    const events: RunEvent[] = [];
    const running = rt.runFlow(gateFlow({ items: [0, 1, 2, 3], concurrency: 2 }), {
      onEvent: (e) => events.push(e),
    });
    await gates.started(0);
    await gates.started(1);
    gates.release(1, true);
    // An item started after the failure would wait for ever: it fails the test at once.
    const late = Promise.race([gates.started(2), gates.started(3)]).then(() => {
      throw new Error("an item started after another failed");
    });
    const run = await Promise.race([running, late]);
    assert.equal(run.status, "failed");
    assert.deepEqual(gates.aborted, [0], "the running item's signal aborted");
    assert.deepEqual(gates.log.filter((l) => l.startsWith("start")), ["start 0", "start 1"]);
    assert.deepEqual(run.nodes.each, {
      status: "failed",
      attempts: 2,
      error: "item 1: item 1 broke",
      items: { count: 4, succeeded: 0, failed: 1, failedIndex: 1 },
    });
    assert.deepEqual(run.error, { node: "each", message: "item 1: item 1 broke" });
    const failed = events.filter((e) => e.type === "node.attempt" && e.error !== undefined);
    assert.deepEqual(
      failed.map((e) => e.type === "node.attempt" && [e.item, e.error]),
      [[1, "item 1 broke"]],
    );
  });
});

Deno.test("with continueOnError every item runs, a failed one's output is null, the run goes on", async () => {
  const gates = new Gates();
  await withRuntime(gates, async (rt) => {
    const flow = gateFlow([0, 1, 2], { continueOnError: true });
    flow.nodes.push({
      id: "after",
      type: "transform",
      needs: ["each"],
      with: { value: "${{ nodes.each.output }}" },
    });
    const running = rt.runFlow(flow);
    await gates.started(0);
    gates.release(0);
    await gates.started(1);
    gates.release(1, true);
    await gates.started(2);
    gates.release(2);
    const run = await running;
    assert.equal(run.status, "succeeded");
    assert.deepEqual(run.nodes.each, {
      status: "failed",
      attempts: 3,
      output: [0, null, 20],
      error: "item 1: item 1 broke",
      items: { count: 3, succeeded: 2, failed: 1, failedIndex: 1 },
    });
    assert.deepEqual(run.nodes.after.output, [0, null, 20]);
  });
});

Deno.test("retry applies to each item's attempts", async () => {
  await withSandbox(async ({ dir, home }) => {
    const tries = new Map<number, number>();
    const flaky = defineNode({
      description: "fails each item's first attempt",
      optionsSchema: z.strictObject({ n: z.number() }),
      run: (ctx, { n }) => {
        tries.set(n, (tries.get(n) ?? 0) + 1);
        if (ctx.attempt === 1) throw new Error(`first try of ${n}`);
        return n;
      },
    });
    await using rt = await openRuntime({
      cwd: dir,
      home,
      config: { stores: { main: { plugin: "memory" } } },
      nodeTypes: { "test.flaky": flaky },
    });
    const events: RunEvent[] = [];
    const run = await rt.runFlow({
      id: "retry",
      nodes: [{
        id: "each",
        type: "test.flaky",
        forEach: [5, 6, 7],
        retry: { attempts: 2, delay: 0 },
        with: { n: "${{ item }}" },
      }],
    }, { onEvent: (e) => events.push(e) });
    assert.equal(run.status, "succeeded");
    assert.deepEqual(run.nodes.each.output, [5, 6, 7]);
    assert.equal(run.nodes.each.attempts, 6);
    assert.deepEqual([...tries], [[5, 2], [6, 2], [7, 2]]);
    const failed = events.filter((e) => e.type === "node.attempt" && e.error !== undefined);
    assert.deepEqual(
      failed.map((e) => e.type === "node.attempt" && `${e.item}/${e.attempt}: ${e.error}`),
      ["0/1: first try of 5", "1/1: first try of 6", "2/1: first try of 7"],
    );
  });
});

Deno.test("timeout applies to each item's attempt: the item that takes too long times the node out", async () => {
  const gates = new Gates();
  await withRuntime(gates, async (rt) => {
    // The timeout (7m) is a sleep the test fires, for the item it chooses: a real 200 ms one
    // could fire for item 0 before the test released it, on a loaded machine.
    const { timers, nth } = firedTimers();
    const running = rt.runFlow(gateFlow([0, 1, 2], { timeout: "7m" }), { timers });
    await gates.started(0);
    gates.release(0);
    // Item 1 is never released: its attempt's timeout (the second one asked for) fires.
    await gates.started(1);
    (await nth(1))();
    const run = await running;
    assert.equal(run.status, "failed");
    assert.deepEqual(gates.aborted, [1]);
    assert.equal(run.nodes.each.status, "timed-out");
    assert.equal(run.nodes.each.error, "item 1: timed out after 420000 ms");
    assert.deepEqual(run.nodes.each.items, { count: 3, succeeded: 1, failed: 1, failedIndex: 1 });
    assert.ok(!gates.log.includes("start 2"));
  });
});

Deno.test("cancelling the run stops the running items and starts no other", async () => {
  const gates = new Gates();
  await withRuntime(gates, async (rt) => {
    const controller = new AbortController();
    const running = rt.runFlow(gateFlow({ items: [0, 1, 2, 3], concurrency: 2 }), {
      signal: controller.signal,
    });
    await gates.started(0);
    await gates.started(1);
    controller.abort();
    const late = Promise.race([gates.started(2), gates.started(3)]).then(() => {
      throw new Error("an item started after the run was cancelled");
    });
    const run = await Promise.race([running, late]);
    assert.equal(run.status, "cancelled");
    assert.deepEqual(gates.aborted.sort(), [0, 1]);
    assert.deepEqual(gates.log.filter((l) => l.startsWith("start")), ["start 0", "start 1"]);
    assert.equal(run.nodes.each.status, "cancelled");
    assert.deepEqual(run.nodes.each.items, { count: 4, succeeded: 0, failed: 0 });
  });
});

Deno.test("an empty list: the node succeeds with the output []", async () => {
  const gates = new Gates();
  await withRuntime(gates, async (rt) => {
    const run = await rt.runFlow({
      ...gateFlow("${{ inputs.list }}"),
      inputs: { list: { type: "array", default: [] } },
    });
    assert.equal(run.status, "succeeded");
    assert.deepEqual(run.nodes.each, {
      status: "succeeded",
      attempts: 0,
      output: [],
      items: { count: 0, succeeded: 0, failed: 0 },
    });
    assert.deepEqual(gates.log, []);
  });
});

Deno.test("a forEach whose value is not a list fails the node, saying what it got", async () => {
  const gates = new Gates();
  await withRuntime(gates, async (rt) => {
    const flow = { ...gateFlow("${{ inputs.list }}"), inputs: { list: { type: "any" as const } } };
    for (
      const [value, got] of [[5, "5"], ["abc", '"abc"'], [{ a: 1 }, "a mapping"], [null, "null"]]
    ) {
      const run = await rt.runFlow(flow, { input: { list: value } });
      assert.equal(run.status, "failed");
      assert.equal(run.nodes.each.status, "failed");
      assert.equal(run.nodes.each.error, `nodes[0].forEach: expected a list, got ${got}`);
    }
    assert.deepEqual(gates.log, []);
  });
});

Deno.test("a list of more than MAX_FOR_EACH_ITEMS items fails the node, naming the count and the limit", async () => {
  const gates = new Gates();
  await withRuntime(gates, async (rt) => {
    const flow = {
      ...gateFlow("${{ inputs.list }}"),
      inputs: { list: { type: "array" as const } },
    };
    const list = Array.from({ length: MAX_FOR_EACH_ITEMS + 1 }, (_, i) => i);
    // Were an item started, it would wait for ever: that fails the test at once.
    const started = gates.started(0).then(() => {
      throw new Error("an item started");
    });
    const run = await Promise.race([rt.runFlow(flow, { input: { list } }), started]);
    assert.equal(run.status, "failed");
    assert.equal(
      run.nodes.each.error,
      "nodes[0].forEach: the list holds 10,001 items; a node runs for at most 10,000 (split the list, or hand it to a sub-flow per part)",
    );
    assert.deepEqual(gates.log, []);
  });
});

Deno.test("item and index outside a forEach node, and item in its if, are validation errors", async () => {
  const gates = new Gates();
  await withRuntime(gates, async (rt) => {
    const error = await rt.runFlow({
      id: "bad",
      nodes: [
        { id: "a", type: "log", with: { message: "${{ item }} ${{ index }}" } },
        { id: "b", type: "log", forEach: [1], if: "${{ item }}", with: { message: "x" } },
      ],
      outputs: { x: "${{ index }}" },
    }).then(() => null, (err) => err);
    assert.ok(error instanceof FlowValidationError, String(error));
    const messages = error.problems.map((p) => `${p.path.join(".")}: ${p.message}`);
    assert.deepEqual(messages, [
      'nodes.0.with.message: node "a" reads item, which is set only in a node with forEach; add forEach: "${{ … }}" (the list to run the node for) to the node',
      'nodes.0.with.message: node "a" reads index, which is set only in a node with forEach; add forEach: "${{ … }}" (the list to run the node for) to the node',
      'nodes.1.if: node "b": if cannot read item: it is evaluated once for the whole node, before its items run; to skip some items, leave them out of the list (forEach: "${{ … }}")',
      'outputs.x: output "x" reads index, which is set only in a node with forEach; read that node\'s output (a list) instead',
    ]);
  });
});

Deno.test("if is evaluated once for the whole node: false skips every item", async () => {
  const gates = new Gates();
  await withRuntime(gates, async (rt) => {
    const run = await rt.runFlow(gateFlow([0, 1], { if: "${{ false }}" }));
    assert.equal(run.status, "succeeded");
    assert.deepEqual(run.nodes.each, { status: "skipped", attempts: 0 });
    assert.deepEqual(gates.log, []);
  });
});

Deno.test("every item sees the same node state; a sub-flow runs per item", async () => {
  const gates = new Gates();
  await withRuntime(gates, async (rt, dir) => {
    await Deno.writeTextFile(
      join(dir, "child.flow.yaml"),
      [
        "id: child",
        "inputs:",
        "  who: { type: string }",
        "  n: { type: number }",
        "nodes:",
        "  - id: hi",
        "    type: transform",
        '    with: { value: "hi ${{ inputs.who }} (${{ inputs.n }})" }',
        "outputs:",
        '  said: "${{ nodes.hi.output }}"',
        "",
      ].join("\n"),
    );
    await Deno.writeTextFile(
      join(dir, "parent.flow.yaml"),
      [
        "id: parent",
        "nodes:",
        "  - id: people",
        "    type: transform",
        "    with: { value: [{ name: ada }, { name: bob }] }",
        "  - id: count",
        "    type: state.increment",
        "    needs: [people]",
        '    forEach: "${{ nodes.people.output }}"',
        "    with: { key: seen }",
        "  - id: greet",
        "    type: flow",
        "    needs: [people]",
        '    forEach: { items: "${{ nodes.people.output }}", concurrency: 2 }',
        '    with: { flow: ./child.flow.yaml, input: { who: "${{ item.name }}", n: "${{ index }}" } }',
        "",
      ].join("\n"),
    );
    const run = await rt.runFlow("parent.flow.yaml");
    assert.equal(run.status, "succeeded", JSON.stringify(run.error));
    assert.deepEqual(run.nodes.count.output, [1, 2]);
    assert.deepEqual(run.nodes.greet.output, [{ said: "hi ada (0)" }, { said: "hi bob (1)" }]);
    const records = await rt.records();
    const subRuns = (await records.listRuns({ flowId: "child" })).runs;
    assert.equal(subRuns.length, 2);
    assert.ok(subRuns.every((r) => r.parentRunId === run.id));
  });
});

Deno.test("a queue node per item enqueues one run per element", async () => {
  const gates = new Gates();
  await withRuntime(gates, async (rt, dir) => {
    await Deno.writeTextFile(
      join(dir, "job.flow.yaml"),
      "id: job\ninputs:\n  n: { type: number }\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n",
    );
    const run = await rt.runFlow({
      id: "fan",
      nodes: [{
        id: "enqueue",
        type: "queue",
        forEach: [1, 2, 3],
        with: {
          flow: join(dir, "job.flow.yaml"),
          input: { n: "${{ item }}" },
          key: "n${{ item }}",
        },
      }],
    });
    assert.equal(run.status, "succeeded", JSON.stringify(run.error));
    const output = run.nodes.enqueue.output as { runId: string; existing: boolean }[];
    assert.equal(output.length, 3);
    assert.equal(new Set(output.map((o) => o.runId)).size, 3);
    assert.ok(output.every((o) => o.existing === false));
  });
});
