/**
 * A node's state call waiting for a lock another session holds on PostgreSQL,
 * with the store's `lockTimeout: 0` (wait without limit): the first Ctrl-C of
 * `flowstate run` cancels the statement, and the run ends at once, recorded
 * `cancelled` (exit 130), the key unchanged; a node's `timeout:` ends the
 * attempt at its timeout the same way. Before, the first signal waited for the
 * lock's release (the abort grace, then the store's close, waited for the
 * statement) and the write went through after it. Through the CLI as a
 * subprocess; each test bounds its own wait, so a regression fails instead of
 * hanging. Needs FLOWSTATE_TEST_POSTGRES_URL (ignored without it).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type postgres from "postgres";
import { cliCommand, runCli } from "./_cli_sandbox.ts";
import { openStore } from "../src/plugin.ts";
import { encodeKey } from "../src/store/keys.ts";
import {
  dropTestSchema,
  newTable,
  pgTest,
  SCHEMA,
  untilWaitingOnLock,
  withAdmin,
} from "../plugins/postgres/_test_utils.ts";

/** How long a test waits for the CLI to end once it should, before it kills it and fails. */
const BOUND_MS = 30_000;
/** The key the flows write, as the store keeps it (scope `global`, key `k`). */
const KEY = ["global", "k"];

interface ShownRun {
  status: string;
  error: { message: string } | null;
  nodes: Record<string, { status: string; error?: string }>;
}

/** What `promise` resolves, or `"timed out"` once `ms` passed first. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | "timed out"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<"timed out">((resolve) => timer = setTimeout(() => resolve("timed out"), ms)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A project whose default store is a postgres table with `lockTimeout: 0`
 * holding `k` = 1 in the global scope, and the flow `flow` in `put.flow.yaml`;
 * `fn` runs while another session holds the key's row lock (`SELECT … FOR
 * UPDATE` in an open transaction: `holder`), with `watcher` to look at the server.
 */
async function withLockedKey(
  url: string,
  flow: string,
  fn: (
    ctx: { dir: string; table: string; holder: postgres.ReservedSql; watcher: postgres.Sql },
  ) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-pg-lock-cancel-" });
  const table = newTable("cli");
  const spec = { plugin: "postgres", url, schema: SCHEMA, table, lockTimeout: 0 };
  try {
    await Deno.writeTextFile(join(dir, "put.flow.yaml"), flow);
    // A long abort grace: a node that did not stop would keep the run from ending in the bound.
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      `runs: { abortGrace: 60s }\nstores: { default: ${JSON.stringify(spec)} }\n`,
    );
    {
      await using store = await openStore(spec);
      await store.set(KEY, 1);
    }
    await withAdmin(url, (watcher) =>
      withAdmin(url, async (admin) => {
        const holder = await admin.reserve();
        try {
          await holder.unsafe("BEGIN");
          await holder.unsafe(
            `SELECT key FROM "${SCHEMA}"."${table}" WHERE key = $1 FOR UPDATE`,
            [encodeKey(KEY)],
          );
          await fn({ dir, table, holder, watcher });
        } finally {
          await holder.unsafe("ROLLBACK").catch(() => {});
          holder.release();
        }
      }));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * `flowstate <args>` (default `run put.flow.yaml`) in `dir`: with `signal`,
 * sent (once) when its node's statement waits for the lock. Resolves
 * the exit code and what it printed, or fails (the process killed) when it
 * has not ended {@linkcode BOUND_MS} later.
 */
async function runWhileLocked(
  dir: string,
  table: string,
  watcher: postgres.Sql,
  signal: Deno.Signal | undefined,
  args = ["run", "put.flow.yaml"],
): Promise<{ code: number; stderr: string; stdout: string }> {
  const child = cliCommand(dir, args).spawn();
  const output = child.output();
  // With a signal to send, once the statement waits. Without one (a node's 200 ms timeout ends
  // the wait), the wait is not looked for: it lasts 200 ms, which a poll of pg_stat_activity
  // missed on a loaded machine (the CLI had long exited when the test killed it); the process
  // must end on its own while the lock is held either way.
  if (signal !== undefined) {
    const waiting = await within(untilWaitingOnLock(watcher, table), BOUND_MS);
    if (waiting === "timed out") {
      child.kill("SIGKILL");
      const { stderr } = await output;
      assert.fail(`the node never waited for the lock:\n${new TextDecoder().decode(stderr)}`);
    }
    child.kill(signal);
  }
  const ended = await within(output, BOUND_MS);
  if (ended === "timed out") {
    child.kill("SIGKILL");
    const { stderr } = await output;
    assert.fail(
      `still running ${BOUND_MS} ms after ${signal ?? "the node's timeout"}:\n${
        new TextDecoder().decode(stderr)
      }`,
    );
  }
  const decoder = new TextDecoder();
  return {
    code: ended.code,
    stderr: decoder.decode(ended.stderr),
    stdout: decoder.decode(ended.stdout),
  };
}

/** The one run recorded in `dir`'s project. */
async function onlyRun(dir: string): Promise<ShownRun> {
  const listed = await runCli(dir, ["runs", "ls", "--json"]);
  assert.equal(listed.code, 0, listed.stderr);
  const runs: { id: string }[] = JSON.parse(listed.stdout);
  assert.equal(runs.length, 1, listed.stdout);
  const shown = await runCli(dir, ["runs", "show", runs[0].id, "--json"]);
  assert.equal(shown.code, 0, shown.stderr);
  return JSON.parse(shown.stdout).run;
}

/** The holder writes the key and commits: its lock was never taken over. Resolves the key's value then. */
async function holderCommits(
  holder: postgres.ReservedSql,
  watcher: postgres.Sql,
  table: string,
): Promise<unknown> {
  const [before] = await holder.unsafe<{ value: string }[]>(
    `SELECT value FROM "${SCHEMA}"."${table}" WHERE key = $1`,
    [encodeKey(KEY)],
  );
  assert.equal(before.value, "1", "the key is unchanged");
  await holder.unsafe(`UPDATE "${SCHEMA}"."${table}" SET value = '3' WHERE key = $1`, [
    encodeKey(KEY),
  ]);
  await holder.unsafe("COMMIT");
  const [after] = await watcher.unsafe<{ value: string }[]>(
    `SELECT value FROM "${SCHEMA}"."${table}" WHERE key = $1`,
    [encodeKey(KEY)],
  );
  return JSON.parse(after.value);
}

pgTest(
  "flowstate run on postgres (lockTimeout 0): the first Ctrl-C cancels a node's write waiting for another session's row lock, exits 130 and records the run cancelled, the key unchanged",
  async (url) => {
    const flow = "id: put\nnodes:\n" +
      "  - { id: put, type: state.set, with: { scope: global, key: k, value: 2 } }\n";
    await withLockedKey(url, flow, async ({ dir, table, holder, watcher }) => {
      const { code, stderr } = await runWhileLocked(dir, table, watcher, "SIGINT");
      assert.equal(code, 130, stderr);
      assert.match(stderr, /Cancelling the run \(SIGINT/);
      // One signal was enough: nothing waited for the grace period or the lock.
      assert.doesNotMatch(stderr, /grace period|exiting without waiting/, stderr);
      assert.equal(await holderCommits(holder, watcher, table), 3);
      const run = await onlyRun(dir);
      assert.equal(run.status, "cancelled");
      assert.equal(run.error?.message, "the run was cancelled");
      assert.equal(run.nodes.put.status, "cancelled");
    });
  },
);

pgTest(
  "flowstate run on postgres (lockTimeout 0): a node's increment waiting for another session's row lock ends at the node's timeout, not at the lock's release",
  async (url) => {
    const flow = "id: put\nnodes:\n" +
      "  - id: put\n    type: state.increment\n    timeout: 200ms\n" +
      "    with: { scope: global, key: k }\n";
    await withLockedKey(url, flow, async ({ dir, table, holder, watcher }) => {
      const { code, stderr } = await runWhileLocked(dir, table, watcher, undefined);
      assert.equal(code, 1, stderr);
      assert.doesNotMatch(stderr, /grace period/, stderr);
      assert.equal(await holderCommits(holder, watcher, table), 3);
      const run = await onlyRun(dir);
      assert.equal(run.status, "failed");
      assert.equal(run.nodes.put.status, "timed-out");
      assert.match(run.nodes.put.error ?? "", /timed out after 200 ms/);
    });
  },
);

pgTest(
  "flowstate worker on postgres (lockTimeout 0): a SIGTERM ends a run whose node waits for another session's row lock after --grace, back in the queue, the key unchanged",
  async (url) => {
    const flow = "id: put\nnodes:\n" +
      "  - { id: put, type: state.set, with: { scope: global, key: k, value: 2 } }\n";
    await withLockedKey(url, flow, async ({ dir, table, holder, watcher }) => {
      const enqueued = await runCli(dir, ["enqueue", "put.flow.yaml"]);
      assert.equal(enqueued.code, 0, enqueued.stderr);
      const id = enqueued.stdout.trim();
      const { code, stderr, stdout } = await runWhileLocked(dir, table, watcher, "SIGTERM", [
        "worker",
        "--poll",
        "50ms",
        "--grace",
        "1s",
      ]);
      assert.equal(code, 0, stderr);
      assert.match(`${stdout}${stderr}`, /released to the queue/);
      assert.doesNotMatch(stderr, /exiting without waiting/, stderr);
      assert.equal(await holderCommits(holder, watcher, table), 3);
      const shown = await runCli(dir, ["runs", "show", id, "--json"]);
      assert.equal(shown.code, 0, shown.stderr);
      assert.equal(JSON.parse(shown.stdout).run.status, "queued");
    });
  },
);

dropTestSchema();
