/**
 * A queued run whose worker is killed (SIGKILL) after its `wait` node took
 * the signal: the worker that takes the run back (its lease lapsed) runs the
 * node again, which gets that same signal at once, and the run ends with its
 * data, without a new signal (CLI subprocesses, on SQLite, and on PostgreSQL
 * when FLOWSTATE_TEST_POSTGRES_URL is set).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cliCommand, runCli } from "./_cli_sandbox.ts";
import { streamLines, within } from "./fixtures/daemon_process.ts";
import { exitOf } from "./_deadline.ts";

const PG_URL = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL") || undefined;
const WAIT_FOR_FILE = fileURLToPath(new URL("./fixtures/nodes/wait_for_file.ts", import.meta.url));
/** How long any one wait of this test may take before it fails (not a timing assertion). */
const WAIT_MS = 120_000;

/** Takes the signal, then holds until the file $HOLD exists (the first worker dies meanwhile). */
const FLOW = `id: approval
env: [HOLD]
nodes:
  - id: approve
    type: wait
    with: { signal: go, timeout: 30s }
  - id: hold
    type: ${WAIT_FOR_FILE}
    needs: [approve]
    with: { path: "\${{ env.HOLD }}" }
    permissions: { read: true }
outputs:
  by: "\${{ nodes.approve.output.by }}"
`;

const BACKENDS: { name: string; stores: () => string; ignore: boolean }[] = [
  { name: "sqlite", stores: () => "", ignore: false },
  {
    name: "postgres",
    stores: () =>
      `stores:\n  main: { plugin: postgres, url: "${PG_URL}", table: waitsig_${
        crypto.randomUUID().replaceAll("-", "").slice(0, 12)
      } }\n`,
    ignore: PG_URL === undefined,
  },
];

for (const backend of BACKENDS) {
  Deno.test({
    name:
      `wait (worker, ${backend.name}): the worker that took the signal is killed; the worker that takes the run back finishes it with that signal, none sent again`,
    ignore: backend.ignore,
    sanitizeResources: false,
    async fn() {
      const dir = await Deno.makeTempDir({ prefix: "flowstate-wait-worker-" });
      const hold = join(dir, "release");
      const children: Deno.ChildProcess[] = [];
      try {
        await Deno.mkdir(join(dir, "flows"));
        await Deno.writeTextFile(join(dir, "flows", "approval.flow.yaml"), FLOW);
        await Deno.writeTextFile(
          join(dir, "flowstate.yaml"),
          `${backend.stores()}flows: [./flows]\n`,
        );
        const run = (...args: string[]) => runCli(dir, args, { env: { HOLD: hold } });
        const enqueued = await run("enqueue", "approval");
        assert.equal(enqueued.code, 0, enqueued.stderr);
        const id = enqueued.stdout.trim();
        // Sent while queued: kept for the run, taken as soon as its node waits.
        const sent = await run("runs", "signal", id, "go", "--data", '{"by":"ada"}');
        assert.equal(sent.code, 0, sent.stderr);
        const worker = () => {
          const child = cliCommand(
            dir,
            ["worker", "--json", "--lease", "2s", "--poll", "100ms"],
            { env: { HOLD: hold } },
          ).spawn();
          children.push(child);
          return child;
        };

        // The first worker takes the signal (node approve ends, hold waits), and is killed.
        const a = worker();
        const deadline = Date.now() + WAIT_MS;
        for (;;) {
          const shown = await run("runs", "show", id, "--json");
          assert.equal(shown.code, 0, shown.stderr);
          const { events } = JSON.parse(shown.stdout) as {
            events: { type: string; node?: string }[];
          };
          if (events.some((e) => e.type === "node.start" && e.node === "hold")) break;
          assert.ok(Date.now() < deadline, `node hold did not start: ${shown.stdout}`);
          await new Promise((r) => setTimeout(r, 100));
        }
        a.kill("SIGKILL");
        await exitOf(a);
        await a.stdout.cancel();
        await a.stderr.cancel();
        await Deno.writeTextFile(hold, ""); // the next attempt's hold ends at once

        // The second takes the run back and finishes it: no signal is sent again.
        const b = worker();
        const lines = streamLines(b.stdout);
        const ended = JSON.parse(await within(lines.next(/"type":"end"/), "the run's end"));
        b.kill("SIGTERM");
        assert.equal((await exitOf(b, () => lines.lines.join("\n"))).code, 0);
        await lines.done;
        await b.stderr.cancel();
        assert.equal(ended.runId, id);
        const shown = JSON.parse((await run("runs", "show", id, "--json")).stdout);
        assert.equal(shown.run.status, "succeeded", JSON.stringify(shown.run.error));
        assert.deepEqual(shown.run.outputs, { by: "ada" });
        assert.deepEqual(shown.run.nodes.approve.output, { by: "ada" });
        assert.deepEqual(
          shown.run.queue.attempts.map((x: { outcome: string }) => x.outcome),
          ["lost", "succeeded"],
        );
        // The run ended: no signal of it is kept, and none can be sent.
        const late = await run("runs", "signal", id, "go");
        assert.equal(late.code, 1);
        assert.match(late.stderr, /already ended \(succeeded\)/);
      } finally {
        for (const child of children) {
          try {
            child.kill("SIGKILL");
          } catch {
            // gone
          }
        }
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}
