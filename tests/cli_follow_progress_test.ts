/**
 * A running `forEach` node's progress in the terminal (subprocesses):
 * `enqueue --follow` of a run a `flowstate worker` process runs prints
 * `notify: 1 of 4 items done (25%)` lines as its items end (the failed item
 * named), no escape codes (NO_COLOR, not a TTY), none once the node ended;
 * `flowstate run` says the same on stderr; `runs show` of the ended run
 * prints none (the node's line says how its items went). Each item waits for
 * its own file, which the test writes ("go", or "fail" to fail it): no timing.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cliCommand, cliOk, runCli } from "./_cli_sandbox.ts";
import { Watched } from "./_watched.ts";

const WAIT_FOR_FILE = fileURLToPath(new URL("./fixtures/nodes/wait_for_file.ts", import.meta.url));

/** `fn` in a project whose flow `each` runs 4 items, each waiting for `<dir>/gates/<k>`. */
async function withProject(
  fn: (p: {
    dir: string;
    spawn: (...args: string[]) => Watched;
    run: (...args: string[]) => ReturnType<typeof runCli>;
    release: (k: number, text: "go" | "fail") => Promise<void>;
  }) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-progress-" });
  try {
    const gates = join(dir, "gates");
    await Deno.mkdir(join(dir, "flows"));
    await Deno.mkdir(gates);
    await Deno.writeTextFile(
      join(dir, "flows", "each.flow.yaml"),
      `id: each
nodes:
  - id: notify
    type: ${WAIT_FOR_FILE}
    forEach: [ada, bob, cy, dee]
    continueOnError: true
    permissions: { read: [${JSON.stringify(gates)}] }
    with: { path: "${gates}/\${{ index }}" }
`,
    );
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), "flows: [./flows]\n");
    const home = join(dir, "home");
    await fn({
      dir,
      spawn: (...args) => new Watched(cliCommand(dir, args, { home })),
      run: (...args) => runCli(dir, args, { home }),
      // Written whole before the item can see it.
      release: async (k, text) => {
        await Deno.writeTextFile(join(dir, `tmp-${k}`), text);
        await Deno.rename(join(dir, `tmp-${k}`), join(gates, String(k)));
      },
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The progress lines of `text`. */
const progressLines = (text: string) => text.split("\n").filter((l) => /items done/.test(l));

Deno.test("cli follow: a running forEach node's progress prints as its items end, plain, never after the node's end", async () => {
  await withProject(async (p) => {
    // The follower first, the worker once it follows: the run's events then print live
    // (`notify: item 0 attempt 1`). A worker already polling may claim and start the run before
    // a slow follower's first read, which prints them in the run's timeline instead.
    await using follower = p.spawn("enqueue", "each", "--follow");
    await follower.until(/is queued, waiting for a worker to claim it/, "stderr");
    await using worker = p.spawn("worker", "--json", "--poll", "50ms");
    await follower.until(/notify: item 0 attempt 1/);
    await p.release(0, "go");
    await follower.until(/^\+\S+ +notify: 1 of 4 items done \(25%\), 1 running$/m);
    await p.release(1, "fail");
    await follower.until(
      /^\+\S+ +notify: 2 of 4 items done \(50%\), 1 failed \(item 1\), 1 running$/m,
    );
    await p.release(2, "go");
    await follower.until(/notify: 3 of 4 items done \(75%\), 1 failed \(item 1\), 1 running/);
    await p.release(3, "go");
    await follower.code();
    const out = follower.stdout;
    assert.match(out, /Run \w+ \(each\) (succeeded|failed) in /);
    assert.ok(!(out + follower.stderr).includes("\x1b["), "no escape codes");
    const lines = out.split("\n");
    const end = lines.findIndex((l) => /notify: failed: item 1: told to fail/.test(l));
    assert.ok(end > 0, out);
    assert.deepEqual(progressLines(lines.slice(end).join("\n")), [], "none after the end");
    // One line per count: no line repeats the one before.
    const said = progressLines(out).map((l) => l.replace(/^\+\S+\s+/, ""));
    assert.deepEqual(said, [...new Set(said)], out);

    // The ended run as runs show prints it: its node's items, no progress line.
    const runId = /Run (\w+) \(each\)/.exec(out)![1];
    const shown = await cliOk(p.run, "runs", "show", runId);
    assert.match(shown, /notify: failed, 4 items: 3 succeeded, 1 failed \(item 1\)/);
    assert.deepEqual(progressLines(shown), []);
    worker.kill("SIGTERM");
    assert.equal(await worker.code(), 0);
  });
});

Deno.test("cli run: a running forEach node's progress is said on stderr as its items end", async () => {
  await withProject(async (p) => {
    await using run = p.spawn("run", "flows/each.flow.yaml");
    await run.until(/\[notify item 0\] waiting for /, "stderr");
    await p.release(0, "go");
    await run.until(/^\[notify\] 1 of 4 items done \(25%\), 1 running$/m, "stderr");
    await p.release(1, "fail");
    await run.until(
      /^\[notify\] 2 of 4 items done \(50%\), 1 failed \(item 1\), 1 running$/m,
      "stderr",
    );
    await p.release(2, "go");
    await p.release(3, "go");
    await run.code();
    assert.ok(!run.stderr.includes("\x1b["), "no escape codes");
  });
});
