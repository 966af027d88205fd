/**
 * A worker or daemon on a terminal that closes (a real hang-up: SIGHUP, then
 * every write to the terminal fails with EIO) stops cleanly: its running run
 * goes back to the queue and it exits 0; a `jobs run` whose progress bar is
 * on that terminal is cancelled at its own stopping point, not cut short by
 * the bar's failed writes. Driven through a pseudo-terminal
 * made by python3's `pty` module; without python3 the test is ignored.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliArgv, runCli } from "./_cli_sandbox.ts";

const PYTHON = await new Deno.Command("python3", {
  args: ["--version"],
  stdout: "null",
  stderr: "null",
})
  .output().then((o) => o.success, () => false);

/** Runs argv on a pty, waits for its first line and `settle` seconds, closes the terminal. */
const HANG_UP = `
import os, pty, sys, time, select
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
buf = b""
deadline = time.time() + 60
while time.time() < deadline and b"\\n" not in buf:
    if select.select([fd], [], [], 0.5)[0]:
        try: buf += os.read(fd, 4096)
        except OSError: break
time.sleep(float(sys.argv[1]))
os.close(fd)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
`;

for (const command of ["worker", "daemon"]) {
  Deno.test({
    name:
      `flowstate ${command} on a terminal that hangs up stops cleanly: its run back in the queue, exit 0`,
    ignore: !PYTHON,
    async fn() {
      const dir = await Deno.makeTempDir({ prefix: "flowstate-hangup-" });
      try {
        await Deno.mkdir(join(dir, "flows"));
        await Deno.writeTextFile(
          join(dir, "flows", "slow.flow.yaml"),
          "id: slow\nnodes:\n  - { id: w, type: delay, with: { for: 60s } }\n",
        );
        await Deno.writeTextFile(join(dir, "flowstate.yaml"), "flows: [./flows]\n");
        const enqueued = await runCli(dir, ["enqueue", "slow"]);
        assert.equal(enqueued.code, 0, enqueued.stderr);
        const id = enqueued.stdout.trim();
        // The worker claims the run within its first poll; the daemon's worker too.
        const out = await new Deno.Command("python3", {
          args: [
            "-c",
            HANG_UP,
            "2",
            ...cliArgv([
              command,
              "--grace",
              "1s",
              ...(command === "worker" ? ["--poll", "100ms"] : []),
            ]),
          ],
          cwd: dir,
          env: { FLOWSTATE_HOME: join(dir, "home"), NO_COLOR: "1", RUST_BACKTRACE: "0" },
          stdout: "piped",
          stderr: "piped",
        }).output();
        const said = new TextDecoder().decode(out.stderr);
        assert.equal(new TextDecoder().decode(out.stdout).trim(), "0", `exit status; ${said}`);
        const shown = await runCli(dir, ["runs", "show", id, "--json"]);
        const run = JSON.parse(shown.stdout).run;
        assert.equal(run.status, "queued", "released to the queue, not left running");
        assert.equal(run.queue.claim, undefined);
        assert.deepEqual(run.queue.attempts.map((a: { outcome: string }) => a.outcome), ["lost"]);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

Deno.test({
  name:
    "flowstate jobs run on a terminal that hangs up: its progress bar's failed writes do not cut the job short, it is cancelled at its own stopping point",
  ignore: !PYTHON,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "flowstate-hangup-job-" });
    try {
      const mod = new URL("../mod.ts", import.meta.url).href;
      await Deno.writeTextFile(
        join(dir, "slow.ts"),
        `import { defineJob } from ${JSON.stringify(mod)};
import { z } from "zod";
export default defineJob({
  name: "slow",
  description: "counts to 600, one step per 100 ms, with a progress bar; stops when cancelled",
  optionsSchema: z.strictObject({}),
  async run(ctx) {
    ctx.log("counting");
    ctx.progress.start("steps", 600);
    let done = 0;
    for (; done < 600 && !ctx.signal.aborted; done++) {
      await new Promise((r) => setTimeout(r, 100));
      ctx.progress.advance();
    }
    ctx.progress.finish("stopped");
    return { done };
  },
});
`,
      );
      await Deno.writeTextFile(
        join(dir, "flowstate.yaml"),
        "jobs:\n  slow: { module: ./slow.ts }\n",
      );
      const env = { FLOWSTATE_HOME: join(dir, "home"), NO_COLOR: "1", RUST_BACKTRACE: "0" };
      // The terminal closes 1 s after the job's first line: the bar has been drawn by then.
      const out = await new Deno.Command("python3", {
        args: ["-c", HANG_UP, "1", ...cliArgv(["jobs", "run", "slow"])],
        cwd: dir,
        env,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const said = new TextDecoder().decode(out.stderr);
      assert.ok(out.success, said);
      const listed = await runCli(dir, ["runs", "ls", "--flow", "job:slow", "--json"], { env });
      const [{ id }] = JSON.parse(listed.stdout).runs ?? JSON.parse(listed.stdout);
      const shown = await runCli(dir, ["runs", "show", id, "--json"], { env });
      const run = JSON.parse(shown.stdout).run;
      assert.equal(run.status, "cancelled");
      assert.deepEqual(run.error, { message: "the job was cancelled" }, "not the terminal's EIO");
      assert.equal(typeof run.outputs?.done, "number", "the job returned what it had done");
      assert.ok(run.outputs.done < 600);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
