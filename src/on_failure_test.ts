import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime, type Warning } from "../mod.ts";
import type { RunRecord } from "./records/types.ts";
import { failedRunInput, failureKind, onFailureInputsProblem } from "./on_failure.ts";

const ALERT = `
id: alert
inputs:
  run: { type: object }
nodes:
  - id: keep
    type: state.set
    with: { key: last, value: "\${{ inputs.run }}" }
`;

function record(status: RunRecord["status"], message?: string): RunRecord {
  return {
    id: "0mjuw3ms0abcdefghijk",
    flowId: "f",
    flowVersion: "v",
    status,
    inputs: {},
    outputs: null,
    startedAt: 0,
    endedAt: 10,
    durationMs: 10,
    nodes: {
      a: { status: "failed", attempts: 2, error: "boom" },
      b: { status: "skipped", attempts: 0 },
    },
    error: message === undefined ? null : { node: "a", message },
  };
}

Deno.test("failureKind() tells abandoned (found gone, lost too often) from failed, and ignores good ends", () => {
  assert.equal(failureKind(record("failed", "boom")), "failed");
  assert.equal(
    failureKind(record("failed", "abandoned: no heartbeat for more than 60s")),
    "abandoned",
  );
  assert.equal(
    failureKind(record("failed", "lost 3 times (its worker stopped answering")),
    "abandoned",
  );
  assert.equal(failureKind(record("timed-out", "slow")), "timed-out");
  assert.equal(failureKind(record("cancelled", "by hand")), "cancelled");
  assert.equal(failureKind(record("succeeded")), null);
  assert.equal(failureKind(record("running")), null);
});

Deno.test("failedRunInput() names the failed nodes, the job of a job's run, and times as ISO 8601", () => {
  const input = failedRunInput(record("failed", "boom"), "failed", "cli", "h");
  assert.deepEqual(input.failed, [{ node: "a", error: "boom" }]);
  assert.equal(input.startedAt, "1970-01-01T00:00:00.000Z");
  assert.equal(input.flow, "f");
  assert.equal(input.job, null);
  const job = failedRunInput(
    { ...record("failed", "x"), flowId: "job:backup" },
    "failed",
    null,
    "h",
  );
  assert.equal(job.job, "backup");
  assert.equal(job.flow, null);
});

Deno.test("onFailureInputsProblem() wants run (object or any) and defaults for every other input", () => {
  const flow = (inputs?: Record<string, unknown>) => ({ id: "alert", inputs, nodes: [] }) as never;
  assert.equal(onFailureInputsProblem(flow({ run: { type: "object" } })), undefined);
  assert.equal(onFailureInputsProblem(flow({ run: {} })), undefined);
  assert.equal(
    onFailureInputsProblem(flow({ run: { type: "any" }, channel: { default: "#ops" } })),
    undefined,
  );
  assert.match(onFailureInputsProblem(flow())!, /does not declare the input run/);
  assert.match(
    onFailureInputsProblem(flow({ run: { type: "string" } }))!,
    /declares its input run as string/,
  );
  assert.match(
    onFailureInputsProblem(flow({ run: {}, channel: { type: "string" } }))!,
    /requires the input channel, but it is given run alone; give it a default/,
  );
});

Deno.test("Runtime.runFlow() from a program: a timed-out run resolves once the onFailure flow ran (source program)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "alert.flow.yaml"), ALERT);
    await using rt = await openRuntime({
      config: {
        stores: { main: { plugin: "memory" } },
        runs: { onFailure: { flow: join(dir, "alert.flow.yaml") } },
      },
    });
    const run = await rt.runFlow({
      id: "slow",
      timeout: "50ms",
      nodes: [{ id: "wait", type: "delay", with: { for: "1m" } }],
    });
    assert.equal(run.status, "timed-out");
    const last = await (await rt.store("main")).get<Record<string, unknown>>([
      "flow",
      "alert",
      "last",
    ]);
    assert.equal(last?.value.id, run.id);
    assert.equal(last?.value.kind, "timed-out");
    assert.equal(last?.value.source, "program");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Runtime.runFlow(): an onFailure flow that cannot run is a warning (ON_FAILURE); the run's record is returned", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      join(dir, "alert.flow.yaml"),
      ALERT.replace("type: object", "type: string"),
    );
    const warnings: Warning[] = [];
    await using rt = await openRuntime({
      config: {
        stores: { main: { plugin: "memory" } },
        runs: { onFailure: { flow: join(dir, "alert.flow.yaml") } },
      },
      onWarning: (w) => warnings.push(w),
    });
    const run = await rt.runFlow({
      id: "f",
      nodes: [{ id: "x", type: "fail", with: { message: "no" } }],
    });
    assert.equal(run.status, "failed");
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0].code, "ON_FAILURE");
    assert.match(warnings[0].message, /declares its input run as string/);
    assert.equal(await (await rt.records()).onFailureMarker(run.id), null, "not claimed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
