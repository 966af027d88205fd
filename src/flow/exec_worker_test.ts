import assert from "node:assert/strict";
import { type ExecContext, execProgram } from "./exec_worker.ts";
import type { ExecRequest } from "./_exec.ts";
import { programEnv, runProblem } from "./_exec.ts";

function request(command: string, args: string[], more: Partial<ExecRequest> = {}): ExecRequest {
  return {
    command,
    args,
    env: {},
    okCodes: [0],
    stdout: "text",
    maxBytes: 1024 * 1024,
    fullEnv: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
    killGroup: false,
    killPath: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    ...more,
  };
}

function context(signal = new AbortController().signal) {
  const lines: [string, string | undefined][] = [];
  const ctx: ExecContext = { signal, log: (message, level) => lines.push([message, level]) };
  return { ctx, lines };
}

Deno.test("execProgram: stdin is fed; stdout as lines; each stderr line is logged", async () => {
  const { ctx, lines } = context();
  const result = await execProgram(
    request("sh", ["-c", "cat; echo two; echo 'warn a' >&2; printf 'warn b' >&2"], {
      stdin: "one\n",
      stdout: "lines",
    }),
    ctx,
  );
  assert.deepEqual(result, { code: 0, stdout: ["one", "two"], stderr: "warn a\nwarn b" });
  assert.deepEqual(lines, [["warn a", "info"], ["warn b", "info"]]);
});

Deno.test("execProgram: stdout: json that is not JSON fails, quoting it", async () => {
  const { ctx } = context();
  await assert.rejects(
    execProgram(request("sh", ["-c", "echo not json"], { stdout: "json" }), ctx),
    /^Error: "sh"'s stdout is not JSON \([\s\S]*\); use stdout: text to get it as text: "not json\\n"$/,
  );
  const empty = await execProgram(request("true", [], { stdout: "json" }), context().ctx);
  assert.equal(empty.stdout, null);
});

Deno.test("execProgram: a program killed by a signal fails naming it", async () => {
  await assert.rejects(
    execProgram(request("sh", ["-c", "echo dying >&2; kill -9 $$"]), context().ctx),
    { message: '"sh" was killed by SIGKILL; the last lines of its stderr:\ndying' },
  );
});

Deno.test("execProgram: aborted, the program gets SIGTERM and the attempt ends as aborted", async () => {
  const controller = new AbortController();
  const { ctx } = context(controller.signal);
  // It says it runs on stderr; the abort follows that line.
  const logged = Promise.withResolvers<void>();
  ctx.log = () => logged.resolve();
  const running = execProgram(request("sh", ["-c", "echo up >&2; exec sleep 300.93"]), ctx);
  await logged.promise;
  controller.abort(new Error("the node timed out"));
  await assert.rejects(running, {
    name: "AbortError",
    message: '"sh" was stopped (the node timed out) by SIGTERM',
  });
});

Deno.test("execProgram: stderr lines past maxBytes are not logged, with one line saying so", async () => {
  const { ctx, lines } = context();
  const result = await execProgram(
    request("sh", ["-c", "for i in 1 2 3 4 5 6; do echo line-$i >&2; done"], { maxBytes: 20 }),
    ctx,
  );
  assert.deepEqual(lines.map(([m]) => m), [
    "line-1",
    "line-2",
    "sh: stderr is over maxBytes (20 bytes); its further lines are not logged",
  ]);
  assert.match(
    result.stderr,
    /^\[stderr cut: its first 22 bytes are not kept \(maxBytes 20 bytes\)\]\n/,
  );
});

Deno.test("programEnv: PATH always, the runner's HOME/LANG/LC_ALL/TZ when set, then with.env", () => {
  const runner: Record<string, string> = { HOME: "/root", TZ: "UTC", SECRET: "no", USER: "x" };
  assert.deepEqual(programEnv({ TZ: "Europe/Paris", A: "1" }, (n) => runner[n]), {
    HOME: "/root",
    TZ: "Europe/Paris",
    PATH: "/usr/local/bin:/usr/bin:/bin",
    A: "1",
  });
});

Deno.test("runProblem: names the permissions: line to add", () => {
  assert.equal(
    runProblem(false, "pg_dump"),
    'program "pg_dump" is not in the node\'s permissions: run (none declared); an exec node may start only the programs it declares: add to the node in its flow file: permissions: { run: ["pg_dump"] }',
  );
  assert.equal(runProblem(true, "anything"), undefined);
});
