/**
 * A runtime on a memory store, in a temporary directory holding a one-node flow file
 * (`q.flow.yaml`, flow id `q`) to enqueue: for the queue tests of the library surface.
 */
import { join } from "node:path";
import { openRuntime, type Runtime } from "../mod.ts";

/** Run `fn` with such a runtime and the flow file's path; everything is removed after. */
export async function withQueueFlow(
  fn: (rt: Runtime, flow: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-queue-flow-" });
  try {
    const flow = join(dir, "q.flow.yaml");
    await Deno.writeTextFile(
      flow,
      "id: q\nnodes:\n  - id: n\n    type: transform\n    with: { value: 1 }\n",
    );
    await using rt = await openRuntime({
      config: { stores: { main: { plugin: "memory" } } },
      cwd: dir,
      home: dir,
    });
    await fn(rt, flow);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * A flow (id `q`) whose `queue.by` template fails on its default input
 * (`round("a")`): enqueueing it with no inputs is refused, queueing nothing.
 */
export const QUEUE_BY_FAILS = `id: q
inputs:
  x: { type: any, default: "a" }
queue:
  concurrency: 1
  by: "\${{ round(inputs.x) }}"
nodes:
  - { id: a, type: log, with: { message: hi } }
`;
